// SPDX-License-Identifier: GPL-2.0
/*
 * Memcg-aware shrinking with rust/kvm_shrinker, through the
 * rust_shrinker_cache sample (samples/rust/rust_shrinker_cache.rs):
 *  - memory.reclaim on one cgroup frees that cgroup's objects only;
 *  - global reclaim (drop_caches=2) frees objects of every cgroup;
 *  - objects of a removed cgroup move to its parent and stay reclaimable;
 *  - a page charged to a cgroup (kmem) is found to be that cgroup's, by
 *    MemCgroup::from_page(), which reads the page's memcg under RCU.
 * With "--no-memcg" (a kernel booted with cgroup_disable=memory) it checks
 * that the same shrinker works as a plain global one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest.h"
#include "cgroup_util.h"

#define SAMPLE		"/sys/kernel/debug/rust_shrinker_cache"
#define NR_OBJS		2000	/* of 4 KiB each */

static char count_file[PATH_MAX];

static int find_shrinker(void)
{
	glob_t g;
	int ret = -1;

	if (glob("/sys/kernel/debug/shrinker/rust_shrinker_cache-*/count", 0,
		 NULL, &g))
		return -1;
	if (g.gl_pathc == 1) {
		snprintf(count_file, sizeof(count_file), "%s", g.gl_pathv[0]);
		ret = 0;
	}
	globfree(&g);
	return ret;
}

/*
 * Objects on the lists of the memcg with inode @ino, over all nodes, as
 * shrinker_debugfs reports them ("<ino> <node 0> <node 1> ..." per memcg
 * that has any).
 */
static long objects_of_ino(unsigned long ino)
{
	static char buf[1 << 16];
	char *line, *save;
	long sum = 0;

	if (read_text(count_file, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *end;

		if (strtoul(p, &end, 10) != ino)
			continue;
		for (p = end; *p; p = end) {
			long n = strtol(p, &end, 10);

			if (end == p)
				break;
			sum += n;
		}
	}
	return sum;
}

static long objects_of(const char *cgroup)
{
	struct stat st;

	if (stat(cgroup, &st))
		return -1;
	return objects_of_ino(st.st_ino);
}

static long sample_stat(const char *key)
{
	char buf[512], *p;

	if (read_text(SAMPLE "/stats", buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, key);
	if (!p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

static int fill_cache(const char *cgroup, void *arg)
{
	char num[32];

	snprintf(num, sizeof(num), "%ld", (long)arg);
	return write_text(SAMPLE "/fill", num, strlen(num)) < 0;
}

/* Run in @cgroup: the sample's kmem page must belong to it. */
static int page_memcg_is_own(const char *cgroup, void *arg)
{
	struct stat st;

	if (stat(cgroup, &st))
		return 1;
	return sample_stat("\npage_memcg_ino ") != (long)st.st_ino;
}

static int drop_slab(void)
{
	return write_text("/proc/sys/vm/drop_caches", "2", 1) < 0 ? -1 : 0;
}

#define NR_LATE		500

/* Looks up its memcg, then adds the objects 1.5 s later (see the sample). */
static int fill_cache_late(const char *cgroup, void *arg)
{
	char num[32];

	snprintf(num, sizeof(num), "%ld", (long)arg);
	return write_text(SAMPLE "/fill_late", num, strlen(num)) < 0;
}

/*
 * A cgroup goes offline between the lookup of its memcg and the adding of
 * objects for it: they land on the parent's list, and memcg reclaim of the
 * parent must find them.  (A list_lru_add() that set the shrinker bit on
 * the dead child instead would make reclaim of the parent never call the
 * shrinker, while shrinker_debugfs showed the objects.)
 */
static void test_offline_during_add(const char *root, const char *parent)
{
	char *late = cg_name(parent, "late"), *c = cg_name(late, "c");
	long n1, n2;
	int i, status;
	pid_t pid;

	if (!late || !c || cg_create(late) ||
	    cg_write(late, "cgroup.subtree_control", "+memory") || cg_create(c))
		ksft_exit_fail_msg("cannot create the late-add cgroups\n");
	pid = cg_run_nowait(c, fill_cache_late, (void *)NR_LATE);
	if (pid < 0)
		ksft_exit_fail_msg("cannot start the late filler\n");
	/*
	 * While the filler sleeps: move it out (to the root, as a cgroup with
	 * controllers for its children holds no process), remove its cgroup.
	 */
	usleep(300000);
	if (cg_enter(root, pid))
		ksft_exit_fail_msg("cannot move the late filler\n");
	for (i = 0; i < 20 && rmdir(c); i++)
		usleep(20000);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		ksft_exit_fail_msg("the late filler failed\n");
	n1 = objects_of(late);
	cg_write(late, "memory.reclaim", "64M");
	n2 = objects_of(late);
	ksft_test_result(i < 20 && n1 == NR_LATE && n2 < n1,
			 "objects added as the cgroup went offline: parent reclaim %ld -> %ld\n",
			 n1, n2);
	drop_slab();
	cg_destroy(late);
	free(c);
	free(late);
}

static void test_no_memcg(void)
{
	long before, after;

	ksft_set_plan(2);
	before = sample_stat("\nobjects ");
	if (fill_cache(NULL, (void *)NR_OBJS) ||
	    sample_stat("\nobjects ") != before + NR_OBJS ||
	    sample_stat("memcg_ino ") != 0 ||
	    sample_stat("\npage_memcg_ino ") != 0)
		ksft_test_result_fail("fill without memcg: %ld objects\n",
				      sample_stat("\nobjects "));
	else
		ksft_test_result_pass("fill without memcg: %ld objects\n",
				      before + NR_OBJS);
	before = sample_stat("\nobjects ");
	drop_slab();
	after = sample_stat("\nobjects ");
	ksft_test_result(after < before,
			 "global reclaim without memcg: %ld -> %ld objects\n",
			 before, after);
}

int main(int argc, char **argv)
{
	char root[PATH_MAX], *parent, *a, *b;
	bool nsdelegate;
	long na, nb, na2, nb2, na3, nb3, moved, np, np2;
	int i;

	ksft_print_header();
	if (access(SAMPLE, F_OK) && system("modprobe rust_shrinker_cache"))
		ksft_exit_skip("cannot load the rust_shrinker_cache sample\n");
	if (access(SAMPLE, F_OK))
		ksft_exit_skip("the sample has no " SAMPLE "\n");
	if (find_shrinker())
		ksft_exit_fail_msg("no shrinker_debugfs entry for the sample\n");

	if (argc > 1 && !strcmp(argv[1], "--no-memcg")) {
		test_no_memcg();
		ksft_finished();
	}

	if (cg_find_unified_root(root, sizeof(root), &nsdelegate))
		ksft_exit_skip("cgroup v2 isn't mounted\n");
	if (cg_read_strstr(root, "cgroup.controllers", "memory"))
		ksft_exit_skip("memory controller isn't available\n");
	if (cg_write(root, "cgroup.subtree_control", "+memory"))
		ksft_exit_fail_msg("cannot enable the memory controller\n");

	ksft_set_plan(7);
	parent = cg_name(root, "rust_shrinker_test");
	a = cg_name(parent, "a");
	b = cg_name(parent, "b");
	if (!parent || !a || !b || cg_create(parent) ||
	    cg_write(parent, "cgroup.subtree_control", "+memory") ||
	    cg_create(a) || cg_create(b))
		ksft_exit_fail_msg("cannot create the test cgroups\n");

	if (cg_run(a, fill_cache, (void *)NR_OBJS) || cg_run(b, fill_cache, (void *)NR_OBJS))
		ksft_exit_fail_msg("cannot fill the sample's cache\n");
	na = objects_of(a);
	nb = objects_of(b);
	ksft_test_result(na == NR_OBJS && nb == NR_OBJS,
			 "objects charged per cgroup: a %ld, b %ld (want %d)\n",
			 na, nb, NR_OBJS);
	ksft_test_result(cg_run(a, page_memcg_is_own, NULL) == 0,
			 "a page charged in a belongs to a\n");

	/* memory.reclaim may fail with EAGAIN short of its target: fine. */
	cg_write(a, "memory.reclaim", "16M");
	na2 = objects_of(a);
	nb2 = objects_of(b);
	ksft_test_result(na2 >= 0 && na2 < na && nb2 == nb,
			 "memory.reclaim on a: a %ld -> %ld, b %ld -> %ld (unchanged)\n",
			 na, na2, nb, nb2);

	/* Refill a, so that global reclaim has objects in both. */
	if (cg_run(a, fill_cache, (void *)NR_OBJS))
		ksft_exit_fail_msg("cannot refill a\n");
	na2 = objects_of(a);
	drop_slab();
	na3 = objects_of(a);
	nb3 = objects_of(b);
	ksft_test_result(na3 >= 0 && nb3 >= 0 && na3 < na2 && nb3 < nb2,
			 "global reclaim: a %ld -> %ld, b %ld -> %ld\n",
			 na2, na3, nb2, nb3);

	/* Refill a, remove it: its objects go to the parent. */
	if (cg_run(a, fill_cache, (void *)NR_OBJS))
		ksft_exit_fail_msg("cannot refill a\n");
	moved = objects_of(a);
	np = objects_of(parent);
	if (cg_destroy(a))
		ksft_exit_fail_msg("cannot remove a\n");
	/* Reparenting happens when the memcg goes offline, asynchronously. */
	for (i = 0; i < 50 && objects_of(parent) != np + moved; i++)
		usleep(100000);
	np2 = objects_of(parent);
	ksft_test_result(moved > 0 && np2 == np + moved,
			 "removing a moves its %ld objects to the parent: %ld -> %ld\n",
			 moved, np, np2);

	cg_write(parent, "memory.reclaim", "32M");
	ksft_test_result(objects_of(parent) < np2,
			 "reparented objects stay reclaimable: parent %ld -> %ld\n",
			 np2, objects_of(parent));

	test_offline_during_add(root, parent);

	drop_slab();
	cg_destroy(b);
	cg_destroy(parent);
	ksft_finished();
}
