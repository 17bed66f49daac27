// SPDX-License-Identifier: GPL-2.0-only
/*
 * mmu_cache_reclaim_test: memory cgroup reclaim of the vCPUs' MMU page
 * caches (the "kvm-mmu-cache" shrinker).
 *
 * Every vCPU keeps free pages in its MMU caches, topped up before each
 * fault and charged to the memory cgroup of the vCPU's task; the TDP MMU
 * takes its page tables from them too, so the test runs with
 * kvm_amd.npt=1 as well as with shadow paging.  Two processes, in memory
 * cgroups A and B, each run a VM of -v vCPUs (8 by default); each vCPU
 * writes a pattern into pages of its own and so faults.  Then:
 *
 *  1. both cgroups hold cached pages: the shrinker's per-memcg count in
 *     shrinker_debugfs (printed per vCPU: the memory the caches hold);
 *  2. writing to A's memory.reclaim frees all of A's cached pages: A's
 *     count drops to 0, the VM's mmu_shrinker_cache_freed stat counts
 *     exactly those pages and A's memory.stat "kernel" drops by at least
 *     as much; B's count and stat do not change;
 *  3. both guests read back what they wrote and write and check new pages:
 *     the faults after the reclaim succeed, and A's caches are topped up
 *     again.
 *
 * -f ROUNDS measures what the feature costs the fault path instead: the
 * same fault-heavy guest (one write to each of 512 fresh 2 MiB regions,
 * each of which needs a new page table, so the caches are consumed and
 * topped up over and over) in VMs created alternately with
 * kvm.mmu_cache_shrinker=0 and =1, in the same boot.
 *
 * On a kernel without the shrinker, the test is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"

#define REGION		(2UL << 20)
#define DATA_GPA	BIT_ULL(32)
#define DATA_GVA	DATA_GPA
/* Pages each vCPU writes per phase, in a 2 MiB region of its own. */
#define PHASE_PAGES	16
#define FAULT_REGIONS	512
#define CGROUP_ROOT	"/sys/fs/cgroup"
#define TEST_CGROUP	CGROUP_ROOT "/kvm_mmu_cache_test"
#define SHRINKER_DIR	"/sys/kernel/debug/shrinker"
#define CACHE_PARAM	"/sys/module/kvm/parameters/mmu_cache_shrinker"

static int nr_vcpus = 8;
static char count_path[300];

/*
 * vCPU @id owns regions 2 * id (phase 1) and 2 * id + 1 (phase 2); -f
 * writes one page in each of regions 0 .. FAULT_REGIONS - 1.
 */
static void guest_code(uint64_t id, uint64_t seed)
{
	uint64_t base = DATA_GVA + 2 * id * REGION, i;

	for (i = 0; i < PHASE_PAGES; i++)
		WRITE_ONCE(*(uint64_t *)(base + i * PAGE_SIZE), seed ^ i);
	GUEST_SYNC(1);
	for (i = PHASE_PAGES; i < 2 * PHASE_PAGES; i++)
		WRITE_ONCE(*(uint64_t *)(base + REGION + i * PAGE_SIZE), seed ^ i);
	for (i = 0; i < PHASE_PAGES; i++) {
		GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(base + i * PAGE_SIZE)), seed ^ i);
		GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(base + REGION + (i + PHASE_PAGES) *
							 PAGE_SIZE)),
				seed ^ (i + PHASE_PAGES));
	}
	GUEST_SYNC(2);
}

static void fault_guest_code(void)
{
	uint64_t i;

	for (i = 0; i < FAULT_REGIONS; i++)
		WRITE_ONCE(*(uint64_t *)(DATA_GVA + i * REGION), i);
	GUEST_SYNC(1);
}

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val),
		    "write '%s' to %s: %s", val, path, strerror(errno));
	close(fd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The VM's count of cached pages the shrinker freed. */
static uint64_t cache_freed_stat(struct kvm_vm *vm)
{
	return vm_get_stat(vm, mmu_shrinker_cache_freed);
}

/* The shrinker's count for the memcg with inode @ino, over all nodes. */
static long cached_pages(unsigned long ino)
{
	char line[512], *p, *end;
	long total = 0, n;
	FILE *f = fopen(count_path, "r");

	TEST_ASSERT(f, "open %s", count_path);
	while (fgets(line, sizeof(line), f)) {
		if (strtoul(line, &p, 10) != ino)
			continue;
		while ((n = strtol(p, &end, 10)), end != p) {
			total += n;
			p = end;
		}
	}
	fclose(f);
	return total;
}

static bool find_shrinker(void)
{
	DIR *dir = opendir(SHRINKER_DIR);
	struct dirent *d;

	TEST_ASSERT(dir, "%s: %s (needs CONFIG_SHRINKER_DEBUG and debugfs)",
		    SHRINKER_DIR, strerror(errno));
	while ((d = readdir(dir))) {
		if (!strncmp(d->d_name, "kvm-mmu-cache-", 14))
			snprintf(count_path, sizeof(count_path), SHRINKER_DIR "/%s/count",
				 d->d_name);
	}
	closedir(dir);
	return count_path[0];
}

static uint64_t memcg_stat(const char *cgroup, const char *key)
{
	unsigned long long v;
	char path[256], name[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", cgroup);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s", path);
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, key)) {
			fclose(f);
			return v;
		}
	}
	TEST_FAIL("%s has no %s", path, key);
	return 0;
}

/* Runs @vcpu to GUEST_SYNC(@stage); false if the guest failed. */
static bool run_to_sync(struct kvm_vcpu *vcpu, uint64_t stage)
{
	struct ucall uc;

	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		return uc.args[1] == stage;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		return false;
	default:
		return false;
	}
}

static struct kvm_vm *create_vm(int n, struct kvm_vcpu **vcpus, void *code,
				uint64_t regions)
{
	uint64_t pages = regions * REGION / PAGE_SIZE;
	/* Sizes memslot 0 for the page tables that map @pages. */
	struct kvm_vm *vm = __vm_create_with_vcpus(VM_SHAPE_DEFAULT, n, pages, code, vcpus);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, 1, pages, 0);
	virt_map(vm, DATA_GVA, DATA_GPA, pages);
	return vm;
}

/* A VM process in a memory cgroup. */
struct vm_proc {
	const char *name;
	char cgroup[128];
	unsigned long ino;
	pid_t pid;
	int cmd_fd, reply_fd;
};

struct reply {
	bool ok;
	uint64_t freed;
};

static void child_main(struct vm_proc *p, int cmd_fd, int reply_fd)
{
	struct kvm_vcpu *vcpus[nr_vcpus];
	struct reply r = { .ok = true };
	struct kvm_vm *vm;
	char path[160], cmd;
	int i;

	snprintf(path, sizeof(path), "%s/cgroup.procs", p->cgroup);
	write_file(path, "0");
	vm = create_vm(nr_vcpus, vcpus, guest_code, 2 * nr_vcpus);
	for (i = 0; i < nr_vcpus; i++)
		vcpu_args_set(vcpus[i], 2, i, (uint64_t)p->ino << 32 | i << 16);

	while (read(cmd_fd, &cmd, 1) == 1) {
		if (cmd == 'Q')
			break;
		/* '1', '2': run every vCPU through that phase; 'S': the stat. */
		for (i = 0; cmd != 'S' && i < nr_vcpus; i++)
			r.ok &= run_to_sync(vcpus[i], cmd - '0');
		r.freed = cache_freed_stat(vm);
		TEST_ASSERT(write(reply_fd, &r, sizeof(r)) == sizeof(r), "reply");
	}
	kvm_vm_free(vm);
	exit(0);
}

static void start_vm(struct vm_proc *p)
{
	int cmd[2], reply[2];
	struct stat st;

	snprintf(p->cgroup, sizeof(p->cgroup), TEST_CGROUP "/%s", p->name);
	rmdir(p->cgroup);
	TEST_ASSERT(!mkdir(p->cgroup, 0755), "mkdir %s: %s", p->cgroup, strerror(errno));
	TEST_ASSERT(!stat(p->cgroup, &st), "stat %s", p->cgroup);
	p->ino = st.st_ino;
	TEST_ASSERT(!pipe(cmd) && !pipe(reply), "pipe");
	p->pid = fork();
	TEST_ASSERT(p->pid >= 0, "fork");
	if (!p->pid) {
		close(cmd[1]);
		close(reply[0]);
		child_main(p, cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	p->cmd_fd = cmd[1];
	p->reply_fd = reply[0];
}

static struct reply vm_cmd(struct vm_proc *p, char cmd)
{
	struct reply r = {};

	TEST_ASSERT(write(p->cmd_fd, &cmd, 1) == 1 &&
		    read(p->reply_fd, &r, sizeof(r)) == sizeof(r),
		    "VM process %s died", p->name);
	return r;
}

static void stop_vm(struct vm_proc *p)
{
	int status;

	TEST_ASSERT(write(p->cmd_fd, "Q", 1) == 1, "VM process %s died", p->name);
	TEST_ASSERT(waitpid(p->pid, &status, 0) == p->pid && WIFEXITED(status) &&
		    !WEXITSTATUS(status), "VM process %s failed", p->name);
	close(p->cmd_fd);
	close(p->reply_fd);
	rmdir(p->cgroup);
}

/* memory.stat is flushed every 2 seconds: wait for the next flush. */
static void wait_stats_flush(void)
{
	usleep(2500 * 1000);
}

static void test_reclaim(void)
{
	struct vm_proc a = { .name = "A" }, b = { .name = "B" };
	long a0, b0, a1, b1, a2;
	uint64_t kernel0, kernel1;
	struct reply ra, rb;
	char buf[32];
	int fd;

	start_vm(&a);
	start_vm(&b);
	TEST_ASSERT(vm_cmd(&a, '1').ok && vm_cmd(&b, '1').ok,
		    "the guests could not write their data");

	a0 = cached_pages(a.ino);
	b0 = cached_pages(b.ino);
	ksft_print_msg("cached pages after the faults: A %ld, B %ld (%ld KiB per vCPU)\n",
		       a0, b0, a0 * (long)PAGE_SIZE / 1024 / nr_vcpus);
	ksft_test_result(a0 > 0 && b0 > 0, "both cgroups' vCPUs hold cached pages\n");

	wait_stats_flush();
	kernel0 = memcg_stat(a.cgroup, "kernel");
	/* More than A has: reclaim gives up (EAGAIN) once nothing is left. */
	fd = open(TEST_CGROUP "/A/memory.reclaim", O_WRONLY);
	TEST_ASSERT(fd >= 0, "open A/memory.reclaim");
	snprintf(buf, sizeof(buf), "%lu", 256UL << 20);
	TEST_ASSERT(write(fd, buf, strlen(buf)) > 0 || errno == EAGAIN,
		    "memory.reclaim: %s", strerror(errno));
	close(fd);
	wait_stats_flush();
	kernel1 = memcg_stat(a.cgroup, "kernel");
	a1 = cached_pages(a.ino);
	b1 = cached_pages(b.ino);
	ra = vm_cmd(&a, 'S');
	rb = vm_cmd(&b, 'S');
	ksft_print_msg("memory.reclaim on A: A's cached pages %ld -> %ld, %lu freed (%lu KiB)\n",
		       a0, a1, ra.freed, (uint64_t)(ra.freed * PAGE_SIZE / 1024));
	ksft_print_msg("A's kernel memory %lu -> %lu KiB; B's cached %ld -> %ld, %lu freed\n",
		       kernel0 / 1024, kernel1 / 1024, b0, b1, rb.freed);
	ksft_test_result(a1 == 0 && ra.freed == (uint64_t)a0 &&
			 kernel0 - kernel1 >= ra.freed * PAGE_SIZE,
			 "memcg reclaim frees all of A's cached pages\n");
	ksft_test_result(b1 == b0 && rb.freed == 0, "memcg reclaim leaves B's alone\n");

	ra = vm_cmd(&a, '2');
	rb = vm_cmd(&b, '2');
	a2 = cached_pages(a.ino);
	ksft_print_msg("after new faults: A's cached pages %ld\n", a2);
	ksft_test_result(ra.ok && rb.ok && a2 > 0,
			 "the guests' data is intact and new faults succeed\n");
	stop_vm(&a);
	stop_vm(&b);
}

/* One VM with kvm.mmu_cache_shrinker=@on: ns per fault of the guest. */
static uint64_t fault_cost(bool on)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t t;

	write_file(CACHE_PARAM, on ? "Y" : "N");
	vm = create_vm(1, &vcpu, fault_guest_code, FAULT_REGIONS);
	t = now_ns();
	TEST_ASSERT(run_to_sync(vcpu, 1), "fault guest failed");
	t = now_ns() - t;
	kvm_vm_free(vm);
	return t / FAULT_REGIONS;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void run_fault_cost(int rounds)
{
	uint64_t off[rounds], on[rounds];
	int i;

	TEST_REQUIRE(!access(CACHE_PARAM, W_OK));
	for (i = 0; i < rounds; i++) {
		off[i] = fault_cost(false);
		on[i] = fault_cost(true);
	}
	write_file(CACHE_PARAM, "Y");
	qsort(off, rounds, sizeof(off[0]), cmp_u64);
	qsort(on, rounds, sizeof(on[0]), cmp_u64);
	ksft_print_msg("fault cost, median of %d VMs x %d faults: off %lu, on %lu ns (%+.1f%%)\n",
		       rounds, FAULT_REGIONS, off[rounds / 2], on[rounds / 2],
		       100.0 * ((double)on[rounds / 2] - off[rounds / 2]) / off[rounds / 2]);
	ksft_print_msg("(kvm.mmu_cache_shrinker=0 and =1); ranges %lu-%lu ns and %lu-%lu ns\n",
		       off[0], off[rounds - 1], on[0], on[rounds - 1]);
	ksft_test_result_pass("fault cost measured\n");
}

int main(int argc, char *argv[])
{
	int opt, rounds = 0;

	while ((opt = getopt(argc, argv, "f:v:")) != -1) {
		if (opt == 'f')
			rounds = atoi_positive("Rounds", optarg);
		else if (opt == 'v')
			nr_vcpus = atoi_positive("Number of vCPUs", optarg);
	}

	ksft_print_header();
	TEST_REQUIRE(find_shrinker());
	ksft_set_plan(rounds ? 1 : 4);
	if (rounds) {
		run_fault_cost(rounds);
		ksft_finished();
	}

	TEST_REQUIRE(!access(CGROUP_ROOT "/cgroup.controllers", R_OK));
	write_file(CGROUP_ROOT "/cgroup.subtree_control", "+memory");
	rmdir(TEST_CGROUP);
	TEST_ASSERT(!mkdir(TEST_CGROUP, 0755), "mkdir %s", TEST_CGROUP);
	write_file(TEST_CGROUP "/cgroup.subtree_control", "+memory");
	ksft_print_msg("%d vCPUs per VM, %s\n", nr_vcpus,
		       kvm_is_tdp_enabled() ? "TDP MMU" : "shadow paging");
	test_reclaim();
	rmdir(TEST_CGROUP);
	ksft_finished();
}
