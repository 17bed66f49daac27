// SPDX-License-Identifier: GPL-2.0-only
/*
 * mmu_shrinker_memcg_test: memory cgroup reclaim of KVM's shadow pages.
 *
 * Two VMs, each created by a process in its own memory cgroup (A and B),
 * build several hundred shadow pages: the guest maps one 4 KiB data page
 * in each of NR_CHUNKS 2 MiB regions, so that each region needs a leaf
 * shadow page of its own, and writes a pattern there.  Then:
 *
 *  1. writing to A's memory.reclaim frees A's shadow pages (shrinker_debugfs
 *     count for A's inode, A's sec_pagetables, A's mmu_shrinker_freed stat)
 *     and leaves B's exactly as they were; the write succeeds whenever the
 *     cgroup's usage dropped by what it asked for (the freed page tables
 *     are reported to the reclaim in progress);
 *  2. both guests read back what they wrote;
 *  3. the shrinker's aging hides no guest access from the host's page
 *     aging (the idle page bitmap, which reads the leaf SPTEs' Accessed
 *     bits through the MMU notifiers);
 *  4. a shrinker_debugfs scan of 10^7 pages ends in bounded time, and no
 *     scan held the list_lru lock for long;
 *  5. drop_caches=2 frees shadow pages of both VMs;
 *  6. a third VM, in a cgroup whose memory.max leaves less room than its
 *     shadow pages need, builds them anyway: the shrinker frees its own
 *     cold pages and the cgroup does not OOM; a fourth one under
 *     memory.high runs to the end and triggers memory.high reclaim.
 *
 * With -N the chunks are written and read by an L2 guest that L1 runs with
 * SVM: the case the shrinker matters most for, since L1 cannot limit the
 * shadow pages L0 builds for its L2 and they are charged to L1's VMM.
 * With kvm_amd.npt=1, L1 gives L2 nested page tables that put each chunk
 * in its own 2 MiB of L2 memory, and L0 builds a nested shadow page (of
 * L1's NPT) per chunk; with npt=0, L0 shadows L2's page tables.
 *
 * Needs shadow paging (kvm_amd.npt=0 or kvm_intel.ept=0), or SVM with -N,
 * cgroup v2 with the memory controller and debugfs.  On a kernel without
 * CONFIG_KVM_MMU_SHRINKER_RUST (with the historical C shrinker, or
 * without any) it reports the baseline instead: memcg reclaim frees
 * nothing, and the memory.max VM is OOM-killed; those cases are reported
 * as expected failures (XFAIL), not as passes.  Without the memory
 * controller (cgroup_disable=memory, CONFIG_MEMCG=n) the shrinker is a
 * per-node one: only drop_caches and the guests' data are checked.
 *
 * -b measures what reclaim costs a guest (see run_bench()), -l SECONDS what
 * reclaim in one cgroup costs the page faults of a VM in another (see
 * run_latency()), -r whether the shrinker makes the host evict hot guest
 * memory (see run_refaults()), -s NVMS what reclaim costs as the same pages
 * are spread over more VMs (see run_scale()), -t SECONDS races VM
 * teardown and cgroup removal with reclaim (see run_race()), and -S
 * SECONDS runs VMs, reclaim, cgroup churn and memory limits all at once
 * (see run_stress()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "svm_util.h"

#define CHUNK_SIZE	(2UL << 20)
#define GUEST_BASE_GVA	0x100000000UL
#define CGROUP_ROOT	"/sys/fs/cgroup"
#define TEST_CGROUP	CGROUP_ROOT "/kvm_mmu_shrinker_test"
#define SHRINKER_DIR	"/sys/kernel/debug/shrinker"
#define KVM_PARAMS	"/sys/module/kvm/parameters/"
#define LRU_HOLD_PARAM	KVM_PARAMS "mmu_shrinker_lru_hold_max_ns"
#define UNLOCK_DELAY	KVM_PARAMS "mmu_shrinker_unlock_delay_ms"
#define PAGE_IDLE	"/sys/kernel/mm/page_idle/bitmap"

static int nr_chunks = 384;
static bool rust_shrinker;
/*
 * -N: the data is written and read by an L2 guest that L1 runs with SVM.
 * With nested_npt (kvm_amd.npt=1) L1 gives L2 nested page tables, and L0
 * shadows those; without it (npt=0) L0 shadows L2's own page tables.
 */
static bool nested;
static bool nested_npt;
/* L2's physical address space with nested_npt: chunk i at L2_BASE + i * 2 MiB. */
#define L2_BASE		0x200000000UL
/* The memory controller is available; otherwise the VMs share one list. */
static bool memcg_on;
static char shrinker_count_path[512];
static char shrinker_scan_path[512];
static char cache_count_path[512];
static char cache_scan_path[512];

/* Checks visit every stride-th chunk: 1, or HOT_STRIDE for the hot set. */
#define HOT_STRIDE	4
static uint64_t guest_stride = 1;

/*
 * TSC cycles of phase 1's write to each of the first MAX_TIMED chunks: the
 * guest's first touch of a chunk faults, and KVM builds its shadow page
 * (and puts it on the lru) to resolve the fault.
 */
#define MAX_TIMED	1024
static uint64_t write_cycles[MAX_TIMED];

/* Where the guest's chunks are, how many, and the seed of the pattern. */
static uint64_t data_base, data_nr, data_seed;

/*
 * Stress (-S): each pass checks the STRESS_WORDS words the previous pass
 * wrote at the start of every chunk and writes new ones; the words depend
 * on the VM's seed, the chunk and the pass, so that a lost write, a stale
 * page or a chunk mapped to another chunk's page shows up.  Host and guest
 * compute them with stress_word().
 */
#define STRESS_WORDS	8
static bool stress_data;
static uint64_t stress_pass_nr, stress_bad;

static uint64_t stress_word(uint64_t chunk, uint64_t pass, int w)
{
	uint64_t x = data_seed ^ (chunk << 24) ^ (pass << 40) ^ w;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 33);
}

static void stress_passes(void (*sync)(uint64_t stage))
{
	uint64_t pass, i, bad, *p;
	int w;

	for (pass = 1;; pass++) {
		bad = 0;
		for (i = 0; i < data_nr; i++) {
			p = (uint64_t *)(data_base + i * CHUNK_SIZE);
			for (w = 0; w < STRESS_WORDS; w++) {
				if (pass > 1 &&
				    READ_ONCE(p[w]) != stress_word(i, pass - 1, w))
					bad++;
				WRITE_ONCE(p[w], stress_word(i, pass, w));
			}
		}
		WRITE_ONCE(stress_bad, bad);
		WRITE_ONCE(stress_pass_nr, pass);
		sync(3);
	}
}

/*
 * Phase 1 writes a pattern in every chunk, then every phase checks it;
 * @sync ends a phase.  Under -S, the stress passes instead.
 */
static void data_phases(void (*sync)(uint64_t stage))
{
	uint64_t i, t;

	if (READ_ONCE(stress_data))
		stress_passes(sync);
	for (i = 0; i < data_nr; i++) {
		t = rdtsc();
		WRITE_ONCE(*(uint64_t *)(data_base + i * CHUNK_SIZE), data_seed ^ i);
		if (i < MAX_TIMED)
			write_cycles[i] = rdtsc() - t;
	}
	sync(1);
	for (;;) {
		for (i = 0; i < data_nr; i += READ_ONCE(guest_stride))
			GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(data_base + i * CHUNK_SIZE)),
					data_seed ^ i);
		sync(2);
	}
}

static void guest_sync(uint64_t stage)
{
	GUEST_SYNC(stage);
}

static void guest_code(void)
{
	data_phases(guest_sync);
}

/* L2 ends a phase with VMMCALL; L1 passes it on to the host. */
static void l2_sync(uint64_t stage)
{
	vmmcall();
}

static void l2_guest_code(void)
{
	data_phases(l2_sync);
}

#define L2_STACK_SIZE	256

static void l1_guest_code(struct svm_test_data *svm)
{
	unsigned long l2_stack[L2_STACK_SIZE];
	uint64_t stage = 1;

	generic_svm_setup(svm, l2_guest_code);
	svm->vmcb->save.rsp = (u64)&l2_stack[L2_STACK_SIZE];
	for (;;) {
		run_guest(svm->vmcb, svm->vmcb_gpa);
		GUEST_ASSERT_EQ(svm->vmcb->control.exit_code, SVM_EXIT_VMMCALL);
		svm->vmcb->save.rip += 3;	/* VMMCALL */
		GUEST_SYNC(stage);
		stage = 2;
	}
}

/*
 * The warm layout (-r): WARM_PAGES 4 KiB pages in each of nr 2 MiB chunks.
 * Phase 1 writes every page; each later pass reads the hot half (the even
 * chunks) only.
 */
#define WARM_PAGES	16

static void warm_guest_code(void)
{
	uint64_t c, i;

	for (c = 0; c < data_nr; c++)
		for (i = 0; i < WARM_PAGES; i++)
			WRITE_ONCE(*(uint64_t *)(data_base + c * CHUNK_SIZE + i * 4096),
				   data_seed ^ (c << 8 | i));
	GUEST_SYNC(1);
	for (;;) {
		for (c = 0; c < data_nr; c += 2)
			for (i = 0; i < WARM_PAGES; i++)
				GUEST_ASSERT_EQ(READ_ONCE(*(uint64_t *)(data_base +
									c * CHUNK_SIZE +
									i * 4096)),
						data_seed ^ (c << 8 | i));
		GUEST_SYNC(2);
	}
}

/* A VM owned by a child process, driven over two pipes. */
struct vm_proc {
	const char *name;
	/* The cgroup exists already (other VMs run in it): join it. */
	bool join;
	char cgroup[128];
	unsigned long ino;
	pid_t pid;
	int cmd_fd;
	int reply_fd;
};

struct vm_report {
	int ok;
	uint64_t run_ns;
	uint64_t shrinker_freed;
	uint64_t shrinker_locks;
	uint64_t shadow_zapped;
	uint64_t cache_miss;
	int64_t idle;
};

/*
 * Writes @val to @path; returns 0, -errno, or -EIO for a short write.
 * For writes that may legitimately fail (memory.reclaim returns EAGAIN);
 * with @may_vanish, @path may also be gone (a cgroup that -S removed).
 */
static int __try_write_file(const char *path, const char *val, bool may_vanish)
{
	int fd = open(path, O_WRONLY), ret = 0;
	ssize_t n;

	if (fd < 0 && may_vanish)
		return -errno;
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	n = write(fd, val, strlen(val));
	if (n < 0)
		ret = -errno;
	else if (n != (ssize_t)strlen(val))
		ret = -EIO;
	close(fd);
	return ret;
}

static int try_write_file(const char *path, const char *val)
{
	return __try_write_file(path, val, false);
}

static void write_file(const char *path, const char *val)
{
	int ret = try_write_file(path, val);

	TEST_ASSERT(!ret, "write '%s' to %s: %s", val, path, strerror(-ret));
}

/* The value of @key in the flat-keyed file @file of @cgroup, if it has one. */
static bool memcg_keyed(const char *cgroup, const char *file, const char *key,
			uint64_t *val)
{
	char path[256], name[64];
	unsigned long long v;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cgroup, file);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s", path);
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, key)) {
			fclose(f);
			*val = v;
			return true;
		}
	}
	fclose(f);
	return false;
}

static uint64_t memcg_stat(const char *cgroup, const char *key)
{
	uint64_t val;

	TEST_ASSERT(memcg_keyed(cgroup, "memory.stat", key, &val),
		    "%s/memory.stat has no %s", cgroup, key);
	return val;
}

static uint64_t memcg_u64(const char *cgroup, const char *file)
{
	unsigned long long val = 0;
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cgroup, file);
	f = fopen(path, "r");
	TEST_ASSERT(f && fscanf(f, "%llu", &val) == 1, "read %s", path);
	fclose(f);
	return val;
}

/* A memory.events counter; 0 if the kernel does not have it. */
static uint64_t memcg_event(const char *cgroup, const char *key)
{
	uint64_t val = 0;

	memcg_keyed(cgroup, "memory.events", key, &val);
	return val;
}

/*
 * The objects of the shrinker whose debugfs count file is @path for one
 * memcg, summed over nodes (-1: no file).
 */
static long shrinker_count_at(const char *path, unsigned long ino)
{
	char line[512], *p, *end;
	long total = 0;
	FILE *f;

	if (!path[0])
		return -1;
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		if (strtoul(line, &p, 10) != ino)
			continue;
		for (;;) {
			long n = strtol(p, &end, 10);

			if (end == p)
				break;
			total += n;
			p = end;
		}
	}
	fclose(f);
	return total;
}

/* The kvm-mmu shrinker's shadow pages of one memcg (-1: no shrinker). */
static long shrinker_count(unsigned long ino)
{
	return shrinker_count_at(shrinker_count_path, ino);
}

static void find_shrinker(void)
{
	struct dirent *d;
	DIR *dir = opendir(SHRINKER_DIR);

	TEST_ASSERT(dir, "%s: %s (needs CONFIG_SHRINKER_DEBUG and debugfs)",
		    SHRINKER_DIR, strerror(errno));
	while ((d = readdir(dir))) {
		if (!strncmp(d->d_name, "kvm-mmu-cache-", 14)) {
			/* The vCPUs' MMU page caches: used by -S only. */
			snprintf(cache_count_path, sizeof(cache_count_path),
				 SHRINKER_DIR "/%s/count", d->d_name);
			snprintf(cache_scan_path, sizeof(cache_scan_path),
				 SHRINKER_DIR "/%s/scan", d->d_name);
		} else if (!strncmp(d->d_name, "kvm-mmu-", 8)) {
			rust_shrinker = true;
			snprintf(shrinker_count_path, sizeof(shrinker_count_path),
				 SHRINKER_DIR "/%s/count", d->d_name);
			snprintf(shrinker_scan_path, sizeof(shrinker_scan_path),
				 SHRINKER_DIR "/%s/scan", d->d_name);
		} else if (!strncmp(d->d_name, "x86-mmu-", 8)) {
			snprintf(shrinker_scan_path, sizeof(shrinker_scan_path),
				 SHRINKER_DIR "/%s/scan", d->d_name);
		}
	}
	closedir(dir);
}

static bool shadow_paging(void)
{
	static const char * const params[] = {
		"/sys/module/kvm_amd/parameters/npt",
		"/sys/module/kvm_intel/parameters/ept",
	};
	char c = 0;
	int i;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(params[i], "r");

		if (!f)
			continue;
		if (fscanf(f, "%c", &c) != 1)
			c = 0;
		fclose(f);
		return c == 'N' || c == '0';
	}
	return false;
}

static bool memory_controller(void)
{
	char buf[512] = "";
	FILE *f = fopen(CGROUP_ROOT "/cgroup.controllers", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "memory");
}

static void make_cgroup(struct vm_proc *p)
{
	struct stat st;

	if (!memcg_on) {
		/* Shrinker lists are per node only, filed under inode 0. */
		p->cgroup[0] = 0;
		p->ino = 0;
		return;
	}

	snprintf(p->cgroup, sizeof(p->cgroup), TEST_CGROUP "/%s", p->name);
	if (!p->join) {
		rmdir(p->cgroup);
		TEST_ASSERT(!mkdir(p->cgroup, 0755), "mkdir %s: %s", p->cgroup,
			    strerror(errno));
	}
	TEST_ASSERT(!stat(p->cgroup, &st), "stat %s", p->cgroup);
	p->ino = st.st_ino;
}

/* Child: runs the guest to the next GUEST_SYNC; returns false on failure. */
static bool run_to_sync(struct kvm_vcpu *vcpu, uint64_t stage)
{
	struct ucall uc;

	vcpu_run(vcpu);
	if (vcpu->run->exit_reason != KVM_EXIT_IO)
		return false;
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

/* A zeroed page shared with the processes forked afterwards. */
static void *shared_page(void)
{
	void *p = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap");
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The guest's data pages as the host's idle page tracking sees them: 'I'
 * marks them idle (which also clears the young bits KVM keeps for them, the
 * Accessed bits of their leaf SPTEs), 'J' counts those still idle, i.e.
 * not accessed since, through any mapping.  Returns -1 if the kernel has no
 * idle page tracking.
 */
static int64_t data_pages_idle(struct kvm_vm *vm, gpa_t data_gpa, bool mark)
{
	int pagemap = open("/proc/self/pagemap", O_RDONLY);
	int bitmap = open(PAGE_IDLE, O_RDWR);
	int64_t idle = -1;
	uint64_t ent, word;
	int i;

	if (pagemap < 0 || bitmap < 0)
		goto out;
	idle = 0;
	for (i = 0; i < nr_chunks; i++) {
		uint64_t hva = (uint64_t)addr_gpa2hva(vm, data_gpa + i * getpagesize());
		off_t off = hva / getpagesize() * sizeof(ent);
		uint64_t pfn;

		TEST_ASSERT(pread(pagemap, &ent, sizeof(ent), off) == sizeof(ent),
			    "pagemap");
		TEST_ASSERT(ent >> 63, "guest data page %d not present", i);
		pfn = ent & ((1ULL << 55) - 1);
		TEST_ASSERT(pfn, "no PFN in pagemap (not root?)");
		off = pfn / 64 * sizeof(word);
		if (mark) {
			word = 1ULL << (pfn % 64);
			TEST_ASSERT(pwrite(bitmap, &word, sizeof(word), off) == sizeof(word),
				    "page_idle write");
		} else {
			TEST_ASSERT(pread(bitmap, &word, sizeof(word), off) == sizeof(word),
				    "page_idle read");
			idle += (word >> (pfn % 64)) & 1;
		}
	}
out:
	if (pagemap >= 0)
		close(pagemap);
	if (bitmap >= 0)
		close(bitmap);
	return idle;
}

static void child_reply(int fd, struct kvm_vm *vm, bool ok, uint64_t run_ns)
{
	struct vm_report r = {
		.ok = ok,
		.run_ns = run_ns,
		.shrinker_freed = vm_get_stat(vm, mmu_shrinker_freed),
		.shrinker_locks = vm_get_stat(vm, mmu_shrinker_locks),
		.shadow_zapped = vm_get_stat(vm, mmu_shadow_zapped),
		.cache_miss = vm_get_stat(vm, mmu_cache_miss),
		.idle = -1,
	};

	TEST_ASSERT(write(fd, &r, sizeof(r)) == sizeof(r), "reply");
}

/*
 * Creates the VM of 'P': nr_chunks 2 MiB chunks, each with one 4 KiB data
 * page of memslot 1 (at *@data_gpa), so that each chunk needs a page
 * table of its own: in L0's shadow of the guest's page tables, of L2's
 * page tables (-N, npt=0) or of L2's nested page tables (-N, npt=1).
 * With @warm, the VM of 'w': WARM_PAGES data pages per chunk, no L2.
 */
static struct kvm_vm *prepare_vm(struct vm_proc *p, struct kvm_vcpu **vcpu,
				 gpa_t *data_gpa, bool warm)
{
	int i, per_chunk = warm ? WARM_PAGES : 1;
	bool npt = nested_npt && !warm;
	gva_t svm_gva;
	struct kvm_vm *vm;
	uint64_t gpa;

	/*
	 * Memslot 0 holds the page tables of nr_chunks chunks: one per chunk
	 * (and with nested_npt, one nested page table per chunk too).
	 */
	vm = __vm_create_with_one_vcpu(vcpu, (uint64_t)nr_chunks * 512,
				       warm ? warm_guest_code :
				       nested ? (void *)l1_guest_code : guest_code);
	/*
	 * KVM recycles the oldest shadow pages of a VM beyond a cap (by
	 * default 2% of its memory); set it well above what the test builds,
	 * so that only reclaim frees pages.
	 */
	vm_ioctl(vm, KVM_SET_NR_MMU_PAGES,
		 (void *)(unsigned long)(2 * nr_chunks + 64));
	*data_gpa = 1UL << 30;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, *data_gpa, 1,
				    nr_chunks * per_chunk + 16, 0);
	if (npt)
		vm_enable_npt(vm);
	if (nested && !warm) {
		vcpu_alloc_svm(vm, &svm_gva);
		vcpu_args_set(*vcpu, 1, svm_gva);
	}
	for (i = 0; i < nr_chunks * per_chunk; i++) {
		uint64_t gva = GUEST_BASE_GVA + i / per_chunk * CHUNK_SIZE +
			       i % per_chunk * getpagesize();

		gpa = *data_gpa + i * getpagesize();
		if (npt) {
			/* L2's chunk i is in its own 2 MiB of L2 memory. */
			tdp_map(vm, L2_BASE + i * CHUNK_SIZE, gpa, PAGE_SIZE);
			gpa = L2_BASE + i * CHUNK_SIZE;
		}
		virt_pg_map(vm, gva, gpa);
	}
	/* L2 runs L1's code on L1's stack and page tables. */
	if (npt)
		tdp_identity_map_default_memslots(vm);
	memset(addr_gpa2hva(vm, *data_gpa), 0,
	       (size_t)nr_chunks * per_chunk * getpagesize());

	data_base = GUEST_BASE_GVA;
	data_nr = nr_chunks;
	data_seed = (uint64_t)random() << 32 | p->ino;
	sync_global_to_guest(vm, data_base);
	sync_global_to_guest(vm, data_nr);
	sync_global_to_guest(vm, data_seed);
	return vm;
}

static int nr_timed(void)
{
	return nr_chunks < MAX_TIMED ? nr_chunks : MAX_TIMED;
}

/* Child: the times of phase 1's first writes, in ns, after the report. */
static void child_reply_timings(int fd, struct kvm_vm *vm, struct kvm_vcpu *vcpu)
{
	uint64_t ns[MAX_TIMED];
	long khz;
	int i;

	sync_global_from_guest(vm, write_cycles);
	khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);
	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ");
	for (i = 0; i < nr_timed(); i++)
		ns[i] = write_cycles[i] * 1000000 / khz;
	child_reply(fd, vm, true, 0);
	TEST_ASSERT(write(fd, ns, nr_timed() * sizeof(ns[0])) ==
		    (ssize_t)(nr_timed() * sizeof(ns[0])), "reply");
}

/*
 * Commands: 'P' prepare (create the VM and populate guest memory), 'w'
 * prepare with the warm layout, 'W'
 * write (phase 1), 'V' verify (phase 2), 'H' verify the hot set only
 * (every HOT_STRIDE-th chunk), 'S' stats, 'T' stats and phase 1's write
 * times, 'I' mark the data pages idle, 'J' count the idle data pages, 'Q'
 * quit.
 */
static void child_main(struct vm_proc *p, int cmd_fd, int reply_fd)
{
	struct kvm_vcpu *vcpu = NULL;
	struct kvm_vm *vm = NULL;
	char path[192], cmd;
	gpa_t data_gpa = 0;
	uint64_t t;
	bool ok;

	if (memcg_on) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", p->cgroup);
		write_file(path, "0");
	}

	while (read(cmd_fd, &cmd, 1) == 1) {
		switch (cmd) {
		case 'P':
		case 'w':
			vm = prepare_vm(p, &vcpu, &data_gpa, cmd == 'w');
			child_reply(reply_fd, vm, true, 0);
			break;
		case 'W':
			child_reply(reply_fd, vm, run_to_sync(vcpu, 1), 0);
			break;
		case 'V':
		case 'H':
			guest_stride = cmd == 'H' ? HOT_STRIDE : 1;
			sync_global_to_guest(vm, guest_stride);
			t = now_ns();
			ok = run_to_sync(vcpu, 2);
			child_reply(reply_fd, vm, ok, now_ns() - t);
			break;
		case 'S':
			child_reply(reply_fd, vm, true, 0);
			break;
		case 'T':
			child_reply_timings(reply_fd, vm, vcpu);
			break;
		case 'I':
		case 'J': {
			int64_t idle = data_pages_idle(vm, data_gpa, cmd == 'I');
			struct vm_report r = { .ok = idle >= 0, .idle = idle };

			TEST_ASSERT(write(reply_fd, &r, sizeof(r)) == sizeof(r), "reply");
			break;
		}
		case 'Q':
			kvm_vm_free(vm);
			exit(0);
		}
	}
	exit(1);
}

static void start_vm(struct vm_proc *p)
{
	int cmd[2], reply[2];

	make_cgroup(p);
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

/* Returns false if the child died (for example OOM-killed). */
static bool vm_cmd(struct vm_proc *p, char cmd, struct vm_report *r)
{
	struct vm_report dummy;

	if (write(p->cmd_fd, &cmd, 1) != 1)
		return false;
	return read(p->reply_fd, r ? r : &dummy, sizeof(*r)) == sizeof(*r);
}

static int stop_vm(struct vm_proc *p)
{
	char cmd = 'Q';
	int status;

	if (write(p->cmd_fd, &cmd, 1) != 1)
		kill(p->pid, SIGKILL);
	close(p->cmd_fd);
	close(p->reply_fd);
	TEST_ASSERT(waitpid(p->pid, &status, 0) == p->pid, "waitpid");
	if (memcg_on && !p->join)
		rmdir(p->cgroup);
	return status;
}

struct snapshot {
	long count;
	uint64_t sec_pagetables;
	struct vm_report stats;
};

/*
 * memory.stat is flushed from per-CPU counters every 2 seconds, or sooner
 * after enough updates; wait for the periodic flush before reading it.
 */
static void wait_stats_flush(void)
{
	usleep(2500 * 1000);
}

static void snap(struct vm_proc *p, struct snapshot *s)
{
	s->count = shrinker_count(p->ino);
	s->sec_pagetables = memcg_on ? memcg_stat(p->cgroup, "sec_pagetables") : 0;
	TEST_ASSERT(vm_cmd(p, 'S', &s->stats), "%s: VM process died", p->name);
}

static void print_snap(const char *when, struct vm_proc *p, struct snapshot *s)
{
	ksft_print_msg("%s %s: count %ld, sec_pagetables %lu KiB, freed %lu, zapped %lu\n",
		       when, p->name, s->count, s->sec_pagetables >> 10,
		       s->stats.shrinker_freed, s->stats.shadow_zapped);
}

/*
 * On the baseline kernel, a case that shows the old shrinker's behaviour
 * is an expected failure of the feature, not a pass.
 */
static void report_baseline(bool as_expected, const char *what)
{
	if (as_expected)
		ksft_test_result_xfail("baseline: %s\n", what);
	else
		ksft_test_result_fail("baseline, unexpectedly not: %s\n", what);
}

static int online_nodes(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (access(path, F_OK))
			return n ? n : 1;
		n++;
	}
}

/*
 * Writes @bytes to @p's memory.reclaim and checks the answer against what
 * the cgroup's usage did: a write may fail with EAGAIN only if the usage
 * dropped by less than it asked for.
 */
static bool memory_reclaim(struct vm_proc *p, uint64_t bytes, int *ret)
{
	uint64_t before, after, dropped;
	char path[192], val[32];

	snprintf(path, sizeof(path), "%s/memory.reclaim", p->cgroup);
	snprintf(val, sizeof(val), "%lu", bytes);
	before = memcg_u64(p->cgroup, "memory.current");
	*ret = try_write_file(path, val);
	after = memcg_u64(p->cgroup, "memory.current");
	dropped = before > after ? before - after : 0;
	ksft_print_msg("memory.reclaim of %lu KiB in %s returned %d; usage %lu -> %lu KiB\n",
		       bytes >> 10, p->name, *ret, before >> 10, after >> 10);
	return !*ret || dropped < bytes;
}

/*
 * The roots that a scan parked off the lru are in sec_pagetables but not
 * in the count: at most the current root and three cached ones of the
 * VM's one vCPU, without TDP.
 */
#define MAX_ROOTS	4

static bool parked_roots_ok(struct snapshot *s)
{
	int64_t parked = (int64_t)(s->sec_pagetables / 4096) - s->count;

	return parked >= 0 && parked <= MAX_ROOTS;
}

static void test_memcg_reclaim(struct vm_proc *a, struct vm_proc *b)
{
	struct snapshot a0, b0, a1, b1;
	bool targeted, spared, honest;
	int ret_half, ret_all;
	uint64_t shadow, freed;

	wait_stats_flush();
	snap(a, &a0);
	snap(b, &b0);
	print_snap("before A memory.reclaim", a, &a0);
	print_snap("before A memory.reclaim", b, &b0);

	/*
	 * What A's shadow pages take: sec_pagetables also counts TDP MMU
	 * pages with nested paging, and the baseline has no count.
	 */
	shadow = a0.count >= 0 ? a0.count * 4096UL : a0.sec_pagetables;
	/*
	 * Half of what A's shadow pages take, which the shrinker can free:
	 * the write must succeed.  Then as much again as they took at first,
	 * which frees the rest (and may fail, if there is not that much).
	 */
	honest = memory_reclaim(a, shadow / 2, &ret_half);
	honest &= memory_reclaim(a, shadow, &ret_all);

	wait_stats_flush();
	snap(a, &a1);
	snap(b, &b1);
	print_snap("after A memory.reclaim", a, &a1);
	print_snap("after A memory.reclaim", b, &b1);

	spared = b1.count == b0.count &&
		 b1.sec_pagetables == b0.sec_pagetables &&
		 b1.stats.shrinker_freed == b0.stats.shrinker_freed &&
		 b1.stats.shadow_zapped == b0.stats.shadow_zapped;
	ksft_test_result(spared,
			 "memcg reclaim in A leaves B's shadow pages exactly as they were\n");

	if (!rust_shrinker) {
		targeted = a1.sec_pagetables == a0.sec_pagetables &&
			   a1.stats.shadow_zapped == a0.stats.shadow_zapped;
		report_baseline(targeted,
				"memcg reclaim in A freed no shadow pages (no memcg-aware shrinker)");
		if (ret_half)
			report_baseline(honest, "memory.reclaim in A failed (no progress)");
		else
			ksft_test_result_skip("baseline: memory.reclaim in A found other memory\n");
		return;
	}
	ksft_test_result(!ret_half && honest,
			 "memory.reclaim succeeds when the shrinker frees what it asks (%d, %d)\n",
			 ret_half, ret_all);
	/*
	 * Nearly all of A's pages are cold: expect at least half gone, and
	 * every page that left the count freed, but the roots a scan parked.
	 */
	freed = a1.stats.shrinker_freed - a0.stats.shrinker_freed;
	targeted = a0.count >= nr_chunks && a1.count <= a0.count / 2 &&
		   a1.sec_pagetables < a0.sec_pagetables &&
		   freed + MAX_ROOTS >= (uint64_t)(a0.count - a1.count);
	/*
	 * Each shadow page has one page table page, and that is all that
	 * sec_pagetables counts for these cgroups, except with TDP, where it
	 * also counts L0's TDP MMU pages for L1's memory, which the shrinker
	 * does not take: what A's sec_pagetables lost must be what the
	 * shrinker freed, and without TDP it must be the count and the
	 * parked roots.
	 */
	targeted &= a0.sec_pagetables - a1.sec_pagetables == freed * 4096UL;
	if (!nested_npt)
		targeted &= parked_roots_ok(&a0) && parked_roots_ok(&a1) &&
			    parked_roots_ok(&b1);
	ksft_test_result(targeted, "memcg reclaim in A frees A's shadow pages (%ld -> %ld)\n",
			 a0.count, a1.count);
}

/*
 * Asks the shrinker, through shrinker_debugfs, to scan @nr pages of the
 * memcg with inode @ino on each of @nr_nodes nodes (the C shrinker, which
 * is neither memcg- nor NUMA-aware: of node 0, for all memcgs); returns
 * the time the writes took.
 */
static uint64_t scan_nodes(unsigned long ino, int nr_nodes, unsigned long nr)
{
	uint64_t ns = 0, t;
	char val[64];
	int nid;

	for (nid = 0; nid < (rust_shrinker ? nr_nodes : 1); nid++) {
		snprintf(val, sizeof(val), "%lu %d %lu", rust_shrinker ? ino : 0,
			 nid, nr);
		t = now_ns();
		write_file(shrinker_scan_path, val);
		ns += now_ns() - t;
	}
	return ns;
}

/*
 * The guest's data pages are marked idle, the guest reads them all, then
 * the shrinker visits every shadow page of the VM once (which ages them,
 * since the guest just walked through all of them).  The host's idle page
 * tracking must still see every data page as accessed: the shrinker must
 * not clear the leaf SPTEs' Accessed bits that KVM reports to it.
 */
static void test_aging(struct vm_proc *p)
{
	struct vm_report r, idle;
	struct snapshot s0, s1;

	if (!rust_shrinker) {
		ksft_test_result_skip("aging: the baseline does not age pages\n");
		return;
	}
	TEST_ASSERT(vm_cmd(p, 'I', &r), "%s: VM process died", p->name);
	if (!r.ok) {
		ksft_test_result_skip("aging: no idle page tracking (%s)\n", PAGE_IDLE);
		return;
	}
	TEST_ASSERT(vm_cmd(p, 'V', &r) && r.ok, "%s: the guest lost data", p->name);
	snap(p, &s0);
	scan_nodes(p->ino, online_nodes(), s0.count);
	snap(p, &s1);
	TEST_ASSERT(vm_cmd(p, 'J', &idle) && idle.ok, "%s: idle count", p->name);
	ksft_print_msg("aging: %ld of %d accessed data pages look idle to the host\n",
		       (long)idle.idle, nr_chunks);
	ksft_print_msg("aging: after a scan of %ld shadow pages (%ld left)\n",
		       s0.count, s1.count);
	ksft_test_result(idle.idle == 0 && s1.count > 0,
			 "aging by the shrinker hides no guest access from host page aging\n");
}

/* The longest list_lru lock hold of the shrinker, in ns (0: unknown). */
static uint64_t lru_hold_max_ns(void)
{
	unsigned long long v = 0;
	FILE *f = fopen(LRU_HOLD_PARAM, "r");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/*
 * shrinker_debugfs passes any count through: a scan of 10^7 pages must
 * still visit each page at most once, reschedule between batches and hold
 * the list_lru lock only briefly.  Reported: the scan's time and the
 * longest lru lock hold since the module was loaded.
 */
#define HUGE_SCAN	10000000UL
#define HUGE_SCAN_MAX_S	20
#define LRU_HOLD_MAX_NS	(10 * 1000 * 1000)

static void test_huge_scan(struct vm_proc *p)
{
	uint64_t ns, hold;
	struct snapshot s0, s1;

	if (!rust_shrinker) {
		ksft_test_result_skip("huge scan: not checked on the baseline\n");
		return;
	}
	snap(p, &s0);
	ns = scan_nodes(p->ino, online_nodes(), HUGE_SCAN);
	snap(p, &s1);
	hold = lru_hold_max_ns();
	ksft_print_msg("huge scan of %s: %lu ms for %ld pages (%ld left)\n",
		       p->name, ns / 1000000, s0.count, s1.count);
	ksft_print_msg("longest lru lock hold: %lu us\n", hold / 1000);
	ksft_test_result(ns < HUGE_SCAN_MAX_S * 1000000000ULL && hold &&
			 hold < LRU_HOLD_MAX_NS,
			 "a scan of %lu pages ends in bounded time and lock holds\n",
			 HUGE_SCAN);
}

static void test_read_back(struct vm_proc *a, struct vm_proc *b, const char *when)
{
	struct vm_report ra, rb;
	bool ok;

	ok = vm_cmd(a, 'V', &ra) && ra.ok && vm_cmd(b, 'V', &rb) && rb.ok;
	ksft_test_result(ok, "both guests read back their data %s\n", when);
}

static void test_drop_caches(struct vm_proc *a, struct vm_proc *b)
{
	struct snapshot a0, b0, a1, b1;
	bool ok;

	wait_stats_flush();
	snap(a, &a0);
	snap(b, &b0);
	print_snap("before drop_caches", a, &a0);
	print_snap("before drop_caches", b, &b0);
	write_file("/proc/sys/vm/drop_caches", "2");
	wait_stats_flush();
	snap(a, &a1);
	snap(b, &b1);
	print_snap("after drop_caches", a, &a1);
	print_snap("after drop_caches", b, &b1);

	if (!rust_shrinker) {
		ksft_print_msg("baseline: drop_caches zapped %lu pages of A, %lu of B\n",
			       a1.stats.shadow_zapped - a0.stats.shadow_zapped,
			       b1.stats.shadow_zapped - b0.stats.shadow_zapped);
		ksft_test_result_skip("drop_caches: not checked on the baseline\n");
		return;
	}
	ok = a1.count < a0.count && b1.count < b0.count &&
	     a1.stats.shrinker_freed > a0.stats.shrinker_freed &&
	     b1.stats.shrinker_freed > b0.stats.shrinker_freed;
	ksft_test_result(ok, "drop_caches=2 frees shadow pages of both VMs\n");
}

/*
 * Once a VM has only roots left, the kvm-mmu shrinker must count nothing
 * for its memcg, so that memcg reclaim stops calling it there and stops
 * taking the VM's mmu_lock on every pass: a scan parks the roots it finds
 * off the lru.  Reported: the count and the shrinker's mmu_lock
 * acquisitions over ROOTS_PASSES memory.reclaim writes.
 */
#define ROOTS_PASSES	4

static void test_roots_only(struct vm_proc *p)
{
	struct snapshot s0, s1;
	uint64_t locks;
	int i, ret;

	if (!rust_shrinker || !memcg_on) {
		ksft_test_result_skip("roots only: needs the kvm-mmu shrinker and memcg\n");
		return;
	}
	/*
	 * Scan until the count stops falling: what is left cannot be freed.
	 * The first scan after the guest ran only ages what it walked.
	 */
	scan_nodes(p->ino, online_nodes(), HUGE_SCAN);
	snap(p, &s1);
	do {
		s0 = s1;
		scan_nodes(p->ino, online_nodes(), HUGE_SCAN);
		snap(p, &s1);
	} while (s1.count < s0.count);
	s0 = s1;
	for (i = 0; i < ROOTS_PASSES; i++)
		memory_reclaim(p, 1 << 20, &ret);
	snap(p, &s1);
	locks = s1.stats.shrinker_locks - s0.stats.shrinker_locks;
	ksft_print_msg("roots only: count %ld, then %lu mmu_lock acquisitions in %d reclaims\n",
		       s0.count, locks, ROOTS_PASSES);
	ksft_test_result(s0.count == 0 && s1.count == 0 && !locks,
			 "a VM with only roots left drops out of memcg reclaim\n");
}

/*
 * Starts @p's VM in a cgroup whose @limit_file (memory.max or memory.high)
 * leaves room for 64 shadow pages at most, while the guest needs about
 * nr_chunks, and runs the guest through its data.  Returns whether it ran
 * to the end; *limit is the limit set.
 */
static bool run_limited_vm(struct vm_proc *p, const char *limit_file,
			   struct vm_report *r, uint64_t *limit)
{
	char path[192], val[32];

	start_vm(p);
	TEST_ASSERT(vm_cmd(p, 'P', r), "%s: prepare", p->name);
	*limit = memcg_u64(p->cgroup, "memory.current") + 64 * 2 * 4096;
	snprintf(path, sizeof(path), "%s/%s", p->cgroup, limit_file);
	snprintf(val, sizeof(val), "%lu", *limit);
	write_file(path, val);
	return vm_cmd(p, 'W', r) && r->ok && vm_cmd(p, 'V', r) && r->ok;
}

static void test_memory_max(void)
{
	struct vm_proc c = { .name = "C" };
	struct vm_report r;
	uint64_t limit, oom;
	bool ran;
	int status;

	ran = run_limited_vm(&c, "memory.max", &r, &limit);
	oom = memcg_event(c.cgroup, "oom_kill");
	ksft_print_msg("memory.max VM: %s, oom_kill %lu, freed %lu, max %lu\n",
		       ran ? "ran to the end" : "died", oom,
		       ran ? r.shrinker_freed : 0, limit);
	status = stop_vm(&c);

	if (!rust_shrinker) {
		ksft_print_msg("memory.max VM exit status %#x\n", status);
		report_baseline(!ran && oom, "the VM under memory.max was OOM-killed");
		return;
	}
	ksft_test_result(ran && !oom && r.shrinker_freed > 0,
			 "a VM under memory.max builds its shadow pages without OOM\n");
}

/*
 * A VM in a cgroup whose memory.high leaves room for 64 shadow pages:
 * memory.high reclaim (memory.events "high") frees its cold shadow pages
 * and reports them, and the guest runs to the end.  Reported: the guest's
 * time and the cgroup's memory stall time (memory.pressure, with PSI).
 */
static void test_memory_high(void)
{
	struct vm_proc h = { .name = "H" };
	uint64_t limit, high, stall = 0;
	struct vm_report r;
	char path[192];
	bool ran;

	ran = run_limited_vm(&h, "memory.high", &r, &limit);
	high = memcg_event(h.cgroup, "high");
	snprintf(path, sizeof(path), "%s/memory.pressure", h.cgroup);
	if (!access(path, R_OK)) {
		FILE *f = fopen(path, "r");
		unsigned long long total;

		if (f && fscanf(f, "some avg10=%*s avg60=%*s avg300=%*s total=%llu",
				&total) == 1)
			stall = total;
		if (f)
			fclose(f);
	}
	ksft_print_msg("memory.high VM: %s, high events %lu, freed %lu, high %lu\n",
		       ran ? "ran to the end" : "died", high,
		       ran ? r.shrinker_freed : 0, limit);
	ksft_print_msg("memory.high VM: memory stall %lu us\n", stall);
	stop_vm(&h);

	if (!rust_shrinker) {
		ksft_test_result_skip("memory.high: not checked on the baseline\n");
		return;
	}
	ksft_test_result(ran && high > 0 && r.shrinker_freed > 0,
			 "a VM under memory.high runs, its shadow pages reclaimed\n");
}

/*
 * Benchmark (-b): the cost of reclaim to a guest.  One VM writes all chunks,
 * then its working set is every HOT_STRIDE-th chunk.  Rounds of "the guest
 * checks its working set, then the shrinker is asked to scan STEP pages
 * through shrinker_debugfs" repeat until at least nr_chunks / 2 pages were
 * freed.  Reported: pages freed, shrinker time per freed page, and what the
 * working set passes cost on top of a pass without reclaim, in time and in
 * shadow pages the guest had to rebuild.  The same command runs on the
 * baseline kernel (the C shrinker, oldest pages first) and on ours.
 */
#define BENCH_STEP	32

static void run_bench(void)
{
	struct vm_proc v = { .name = "bench" };
	uint64_t nominal, scan_ns = 0, extra_ns = 0, freed, zapped0;
	uint64_t rebuilt, miss0;
	struct vm_report r;
	int rounds = 0, nr_nodes = online_nodes();

	/* Without CONFIG_KVM_MMU_SHRINKER_RUST there is no MMU shrinker. */
	__TEST_REQUIRE(shrinker_scan_path[0],
		       "no kvm-mmu or x86-mmu shrinker in %s", SHRINKER_DIR);
	start_vm(&v);
	TEST_ASSERT(vm_cmd(&v, 'P', &r) && vm_cmd(&v, 'W', &r) && r.ok, "bench: write");
	/* Two passes without reclaim; the second is the nominal cost. */
	TEST_ASSERT(vm_cmd(&v, 'H', &r) && r.ok && vm_cmd(&v, 'H', &r) && r.ok,
		    "bench: hot pass");
	nominal = r.run_ns;
	zapped0 = r.shadow_zapped;
	miss0 = r.cache_miss;
	do {
		scan_ns += scan_nodes(v.ino, nr_nodes, BENCH_STEP);
		TEST_ASSERT(vm_cmd(&v, 'H', &r) && r.ok, "bench: hot pass");
		extra_ns += r.run_ns > nominal ? r.run_ns - nominal : 0;
		freed = r.shadow_zapped - zapped0;
		rounds++;
	} while (freed < (uint64_t)nr_chunks / 2 && rounds < 100);
	rebuilt = r.cache_miss - miss0;
	TEST_ASSERT(vm_cmd(&v, 'V', &r) && r.ok, "bench: the guest lost data");
	stop_vm(&v);

	ksft_print_msg("bench: shrinker=%s chunks=%d hot=%d freed=%lu rounds=%d\n",
		       rust_shrinker ? "rust" : "c", nr_chunks,
		       nr_chunks / HOT_STRIDE, freed, rounds);
	ksft_print_msg("bench: ns_per_freed=%lu nominal_us=%lu extra_us=%lu rebuilt=%lu\n",
		       freed ? scan_ns / freed : 0, nominal / 1000,
		       extra_ns / 1000, rebuilt);
	ksft_test_result(freed >= (uint64_t)nr_chunks / 2,
			 "bench: reclaimed %lu pages in %d rounds\n", freed, rounds);
}

/*
 * Teardown race (-t SECONDS): VMs are created, fill their shadow pages,
 * read their data back and are destroyed, one after another, each in a
 * fresh cgroup that is removed afterwards (memcg offline, reparenting),
 * while another process keeps reclaiming: drop_caches, and the shrinker's
 * scan file for the current cgroup.  Run it under lockdep and KASAN.
 */
static void reclaim_loop(unsigned long *cur_ino, uint64_t deadline)
{
	int nid, nr_nodes = online_nodes();
	unsigned long ino;
	char val[64];

	while (now_ns() < deadline) {
		try_write_file("/proc/sys/vm/drop_caches", "2");
		ino = READ_ONCE(*cur_ino);
		for (nid = 0; nid < nr_nodes && shrinker_scan_path[0]; nid++) {
			snprintf(val, sizeof(val), "%lu %d 64",
				 rust_shrinker ? ino : 0, nid);
			try_write_file(shrinker_scan_path, val);
		}
	}
	exit(0);
}

static void run_race(int seconds)
{
	uint64_t deadline = now_ns() + seconds * 1000000000ULL;
	int rounds = 0, failed = 0, status;
	uint64_t freed = 0, zapped = 0;
	unsigned long *cur_ino;
	struct vm_report r;
	pid_t reclaimer;

	/*
	 * In a kernel with CONFIG_KVM_PROVE_MMU, widen the window between the
	 * two unlocks at the end of every shrinker batch, where VM teardown
	 * must not free the VM under the shrinker.
	 */
	if (!access(UNLOCK_DELAY, W_OK)) {
		write_file(UNLOCK_DELAY, "5");
		ksft_print_msg("race: %s = 5\n", UNLOCK_DELAY);
	}

	/* The inode of the current VM's cgroup, shared with the reclaimer. */
	cur_ino = shared_page();
	reclaimer = fork();
	TEST_ASSERT(reclaimer >= 0, "fork");
	if (!reclaimer)
		reclaim_loop(cur_ino, deadline);

	while (now_ns() < deadline) {
		struct vm_proc v = { .name = "race" };

		start_vm(&v);
		WRITE_ONCE(*cur_ino, v.ino);
		if (vm_cmd(&v, 'P', &r) && vm_cmd(&v, 'W', &r) && r.ok &&
		    vm_cmd(&v, 'V', &r) && r.ok) {
			freed += r.shrinker_freed;
			zapped += r.shadow_zapped;
		} else {
			failed++;
		}
		/* The VM is destroyed while the reclaimer runs. */
		stop_vm(&v);
		rounds++;
	}
	TEST_ASSERT(waitpid(reclaimer, &status, 0) == reclaimer, "waitpid");
	if (!access(UNLOCK_DELAY, W_OK))
		write_file(UNLOCK_DELAY, "0");
	ksft_print_msg("race: %d VMs destroyed under reclaim, %d failed, freed %lu, zapped %lu\n",
		       rounds, failed, freed, zapped);
	/* Reclaim must really have run against the VMs. */
	ksft_test_result(rounds > 0 && !failed && zapped > 0 &&
			 (freed > 0 || !rust_shrinker),
			 "VM teardown and memcg removal race with reclaim\n");
}

/*
 * Neighbour latency (-l SECONDS): what reclaim in cgroup A costs the page
 * faults of a VM in cgroup B, whose faults take the list_lru lock of their
 * memcg and node to put each new shadow page on the lru.  B's VMs are
 * created one after another, each faulting in one page per chunk; the
 * guest times each of those first writes with the TSC.  Three phases of
 * SECONDS each: A idle; A's guest re-reading its data in a loop (the same
 * CPU load, no reclaim); and that loop with a
 * memory.reclaim of A after each pass, which frees A's shadow pages for
 * the next pass to rebuild.  Reported per phase: the median, 99th
 * percentile and longest fault of B, and for the last phase the longest
 * list_lru lock hold of the shrinker.
 */
enum lat_phase { LAT_QUIET, LAT_BUSY, LAT_RECLAIM, NR_LAT_PHASES };

static const char * const lat_phase_name[] = {
	[LAT_QUIET] = "A idle",
	[LAT_BUSY] = "A busy, no reclaim",
	[LAT_RECLAIM] = "A busy and reclaimed",
};

struct lat_counts {
	uint64_t passes;
	uint64_t reclaims;
};

/* Drives A until @deadline: passes over its data, each followed by reclaim. */
static void lat_load_a(struct vm_proc *a, bool reclaim, uint64_t deadline,
		       struct lat_counts *counts)
{
	char path[192];
	struct vm_report r;

	snprintf(path, sizeof(path), "%s/memory.reclaim", a->cgroup);
	while (now_ns() < deadline) {
		TEST_ASSERT(vm_cmd(a, 'V', &r) && r.ok, "A lost its data");
		counts->passes++;
		if (reclaim) {
			try_write_file(path, "1M");
			counts->reclaims++;
		}
	}
	exit(0);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* B's VMs, one after another until @deadline; returns the faults timed. */
static size_t lat_run_b(uint64_t deadline, uint64_t **ns, size_t *cap)
{
	struct vm_report r;
	size_t n = 0;

	while (now_ns() < deadline) {
		struct vm_proc b = { .name = "B" };
		size_t bytes = nr_timed() * sizeof(**ns);

		if (n + nr_timed() > *cap) {
			*cap = 2 * (*cap + nr_timed());
			*ns = realloc(*ns, *cap * sizeof(**ns));
			TEST_ASSERT(*ns, "realloc");
		}
		start_vm(&b);
		TEST_ASSERT(vm_cmd(&b, 'P', &r) && vm_cmd(&b, 'W', &r) && r.ok &&
			    vm_cmd(&b, 'T', &r) &&
			    read(b.reply_fd, *ns + n, bytes) == (ssize_t)bytes,
			    "B: write and timings");
		n += nr_timed();
		stop_vm(&b);
	}
	return n;
}

static void run_latency(int seconds)
{
	struct vm_proc a = { .name = "A" };
	struct lat_counts *counts;
	uint64_t *ns = NULL, freed0, deadline, hold = 0;
	size_t n, cap = 0;
	struct vm_report r;
	int phase, status;
	pid_t loader;

	if (!rust_shrinker || !memcg_on) {
		ksft_test_result_skip("neighbour latency: needs the memcg-aware shrinker\n");
		return;
	}
	counts = shared_page();
	start_vm(&a);
	TEST_ASSERT(vm_cmd(&a, 'P', &r) && vm_cmd(&a, 'W', &r) && r.ok,
		    "A: write");
	TEST_ASSERT(vm_cmd(&a, 'S', &r), "A: stats");
	freed0 = r.shrinker_freed;

	for (phase = 0; phase < NR_LAT_PHASES; phase++) {
		deadline = now_ns() + seconds * 1000000000ULL;
		loader = 0;
		if (phase != LAT_QUIET) {
			if (phase == LAT_RECLAIM && !access(LRU_HOLD_PARAM, W_OK))
				write_file(LRU_HOLD_PARAM, "0");
			loader = fork();
			TEST_ASSERT(loader >= 0, "fork");
			if (!loader)
				lat_load_a(&a, phase == LAT_RECLAIM, deadline,
					   &counts[phase]);
		}
		n = lat_run_b(deadline, &ns, &cap);
		if (loader)
			TEST_ASSERT(waitpid(loader, &status, 0) == loader &&
				    WIFEXITED(status) && !WEXITSTATUS(status),
				    "the process driving A failed");
		if (phase == LAT_RECLAIM && !access(LRU_HOLD_PARAM, R_OK))
			hold = lru_hold_max_ns();
		TEST_ASSERT(n, "no VM of B finished in %d s", seconds);
		qsort(ns, n, sizeof(*ns), cmp_u64);
		ksft_print_msg("latency: %-21s B faults %6zu p50 %6lu us p99 %6lu us max %6lu us\n",
			       lat_phase_name[phase], n, ns[n / 2] / 1000,
			       ns[n * 99 / 100] / 1000, ns[n - 1] / 1000);
		ksft_print_msg("latency: %-21s A passes %lu, memory.reclaim writes %lu\n",
			       lat_phase_name[phase], counts[phase].passes,
			       counts[phase].reclaims);
	}
	TEST_ASSERT(vm_cmd(&a, 'V', &r) && r.ok, "A: read back");
	stop_vm(&a);
	free(ns);
	ksft_print_msg("latency: A's shadow pages freed %lu; longest lru lock hold %lu ns%s\n",
		       r.shrinker_freed - freed0, hold,
		       access(LRU_HOLD_PARAM, R_OK) ? " (not measured by this kernel)" : "");
	ksft_test_result(r.shrinker_freed > freed0 && counts[LAT_RECLAIM].reclaims,
			 "neighbour fault latency measured while A is reclaimed\n");
}

/*
 * Host page aging under the shrinker (-r): a warm guest, whose hot half is
 * read on every pass, in a cgroup under memory.high with swap, while the
 * shrinker scans the cgroup's shadow pages in a loop and memory.reclaim
 * takes 1 MiB after each pass, REFAULT_STEPS times: less than the cold
 * half.  If the host's page aging sees the guest's accesses, reclaim takes
 * cold pages only and the hot half never refaults.  Reported: the
 * cgroup's anon workingset refaults and the guest's time for its passes.
 * Run it on a kernel whose shrinker clears the leaf SPTEs' Accessed bits
 * (what the host's aging reads) to see the difference.
 */
#define REFAULT_STEPS	8
#define REFAULT_STEP	"1M"

static void shrinker_scan_loop(unsigned long ino, bool *stop)
{
	int nr_nodes = online_nodes();

	while (!READ_ONCE(*stop)) {
		scan_nodes(ino, nr_nodes, 64);
		usleep(2000);
	}
	exit(0);
}

static bool swap_on(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	return n > 1;
}

static void run_refaults(void)
{
	struct vm_proc v = { .name = "R" };
	uint64_t refault0, refaults, current, pass_ns = 0;
	char path[192], val[32];
	bool *stop;
	struct vm_report r;
	int i, status;
	pid_t scanner;

	if (!rust_shrinker || !memcg_on || !swap_on()) {
		ksft_test_result_skip("host page aging: needs the memcg-aware shrinker and swap\n");
		return;
	}
	stop = shared_page();
	start_vm(&v);
	TEST_ASSERT(vm_cmd(&v, 'w', &r) && vm_cmd(&v, 'W', &r) && r.ok &&
		    vm_cmd(&v, 'V', &r) && r.ok, "R: write");
	/* memory.high below the usage by a quarter of the cold half. */
	current = memcg_u64(v.cgroup, "memory.current");
	snprintf(path, sizeof(path), "%s/memory.high", v.cgroup);
	snprintf(val, sizeof(val), "%lu",
		 current - (uint64_t)nr_chunks / 2 * WARM_PAGES * 4096 / 4);
	write_file(path, val);
	snprintf(path, sizeof(path), "%s/memory.reclaim", v.cgroup);
	refault0 = memcg_stat(v.cgroup, "workingset_refault_anon");

	scanner = fork();
	TEST_ASSERT(scanner >= 0, "fork");
	if (!scanner)
		shrinker_scan_loop(v.ino, stop);
	for (i = 0; i < REFAULT_STEPS; i++) {
		TEST_ASSERT(vm_cmd(&v, 'V', &r) && r.ok, "R: the guest lost data");
		pass_ns += r.run_ns;
		try_write_file(path, REFAULT_STEP);
	}
	WRITE_ONCE(*stop, true);
	TEST_ASSERT(waitpid(scanner, &status, 0) == scanner, "waitpid");
	TEST_ASSERT(vm_cmd(&v, 'V', &r) && r.ok, "R: the guest lost data");
	pass_ns += r.run_ns;
	refaults = memcg_stat(v.cgroup, "workingset_refault_anon") - refault0;
	ksft_print_msg("aging: %d chunks x %d pages, hot half read %d times; high events %lu\n",
		       nr_chunks, WARM_PAGES, REFAULT_STEPS + 1,
		       memcg_event(v.cgroup, "high"));
	ksft_print_msg("aging: anon refaults %lu, swapped out %lu KiB, guest time %lu ms\n",
		       refaults, memcg_u64(v.cgroup, "memory.swap.current") >> 10,
		       pass_ns / 1000000);
	ksft_print_msg("aging: shrinker freed %lu, shadow pages zapped %lu\n",
		       r.shrinker_freed, r.shadow_zapped);
	stop_vm(&v);
	ksft_test_result(r.shrinker_freed > 0 || r.shadow_zapped > 0,
			 "host page aging measured with the shrinker scanning\n");
}

/*
 * Scale (-s NVMS): NVMS VMs in one cgroup share nr_chunks chunks (the same
 * total of shadow pages however many VMs there are), and fill them at the
 * same time, so that their pages are interleaved on the cgroup's list as
 * they would be on a busy host.  Then the shrinker is asked through
 * shrinker_debugfs to scan BENCH_STEP pages at a time until the VMs' pages
 * are freed (the C shrinker takes one VM per call, walking the VM list
 * under kvm_lock); the VMs fill again, and one memory.reclaim call asks
 * for all their pages; SCALE_REPS times.  Reported: the shrinker's time
 * per freed page over all repetitions, and the mean time of the
 * memory.reclaim call with what it freed.
 */
static uint64_t scale_zapped(struct vm_proc *v, int nr_vms)
{
	uint64_t zapped = 0;
	struct vm_report r;
	int i;

	for (i = 0; i < nr_vms; i++) {
		TEST_ASSERT(vm_cmd(&v[i], 'S', &r), "scale: VM %d died", i);
		zapped += r.shadow_zapped;
	}
	return zapped;
}

/* 'c' to every VM, then every reply: the VMs run at the same time. */
static void scale_all(struct vm_proc *v, int nr_vms, char c)
{
	struct vm_report r;
	int i;

	for (i = 0; i < nr_vms; i++)
		TEST_ASSERT(write(v[i].cmd_fd, &c, 1) == 1, "scale: command");
	for (i = 0; i < nr_vms; i++)
		TEST_ASSERT(read(v[i].reply_fd, &r, sizeof(r)) == sizeof(r) && r.ok,
			    "scale: VM %d failed '%c'", i, c);
}

#define SCALE_REPS	3

static void run_scale(int nr_vms)
{
	int i, rep, rounds = 0, nr_nodes = online_nodes(), total = nr_chunks;
	uint64_t scan_ns = 0, zapped0, freed = 0, reclaim_ns = 0, reclaimed = 0, t;
	struct vm_proc *v = calloc(nr_vms, sizeof(*v));
	char path[192], val[32];
	bool all = true;
	long count;

	TEST_ASSERT(v && nr_vms <= nr_chunks, "scale: %d VMs", nr_vms);
	/* Without CONFIG_KVM_MMU_SHRINKER_RUST there is no MMU shrinker. */
	__TEST_REQUIRE(shrinker_scan_path[0],
		       "no kvm-mmu or x86-mmu shrinker in %s", SHRINKER_DIR);
	/* Each VM process creates its VM with nr_chunks chunks. */
	nr_chunks = total / nr_vms;
	for (i = 0; i < nr_vms; i++) {
		v[i].name = "scale";
		v[i].join = i > 0;
		start_vm(&v[i]);
		TEST_ASSERT(vm_cmd(&v[i], 'P', NULL), "scale: prepare VM %d", i);
	}
	scale_all(v, nr_vms, 'W');
	count = shrinker_count(v[0].ino);
	snprintf(path, sizeof(path), "%s/memory.reclaim", v[0].cgroup);
	snprintf(val, sizeof(val), "%lu", (uint64_t)total * 2 * 4096);
	/* TCG times vary from run to run: add up SCALE_REPS of each. */
	for (rep = 0; rep < SCALE_REPS; rep++) {
		uint64_t done = 0;
		int n = 0;

		zapped0 = scale_zapped(v, nr_vms);
		do {
			scan_ns += scan_nodes(v[0].ino, nr_nodes, BENCH_STEP);
			done = scale_zapped(v, nr_vms) - zapped0;
			n++;
		} while (done < (uint64_t)total && n < 4 * total);
		all &= done >= (uint64_t)total;
		freed += done;
		rounds += n;
		/* The guests rebuild their pages, for memory.reclaim. */
		scale_all(v, nr_vms, 'V');
		if (memcg_on) {
			zapped0 = scale_zapped(v, nr_vms);
			t = now_ns();
			try_write_file(path, val);
			reclaim_ns += now_ns() - t;
			reclaimed += scale_zapped(v, nr_vms) - zapped0;
		}
		scale_all(v, nr_vms, 'V');
	}
	for (i = nr_vms - 1; i >= 0; i--)
		stop_vm(&v[i]);
	rmdir(v[0].cgroup);
	free(v);
	nr_chunks = total;

	ksft_print_msg("scale: shrinker=%s vms=%d pages=%ld freed=%lu rounds=%d reps=%d\n",
		       rust_shrinker ? "rust" : "c", nr_vms, count, freed, rounds, SCALE_REPS);
	ksft_print_msg("scale: ns_per_freed=%lu reclaim_us=%lu reclaim_freed=%lu\n",
		       freed ? scan_ns / freed : 0, reclaim_ns / SCALE_REPS / 1000,
		       reclaimed / SCALE_REPS);
	ksft_test_result(all, "scale: %d VMs, %lu pages freed in %d rounds\n",
			 nr_vms, freed, rounds);
}

/*
 * Stress (-S SECONDS): one generation of `make stress` (tooling/guest/
 * stress.sh runs generations, with module reloads between them), with
 * everything at once for SECONDS:
 *
 *  - STRESS_VMS VM processes, two in each of four cgroups: c0 and c1 sit
 *    under a parent ("high") whose memory.high is kept below its usage,
 *    c2 is squeezed by memory.max from time to time, c3 is left alone.
 *    The odd ones run their chunks in an L2 guest.  Every guest rewrites
 *    its chunks on each pass and checks what the previous pass wrote (see
 *    stress_passes()), and its VM process checks the same words in guest
 *    memory.  Each VM lives a few seconds; then it is destroyed and another
 *    one is created in its place.
 *  - One process writes memory.reclaim to each cgroup, the parent and the
 *    test's root in turn, and times every call; another writes drop_caches
 *    and huge shrinker_debugfs scans of both KVM shrinkers.
 *  - The main process moves the VM processes out of one cgroup after
 *    another, removes the cgroup (its list_lru lists are reparented),
 *    creates it again and moves them back.
 *
 * The "stress-stat NAME VALUE" lines count what was done; the test passes
 * if no VM died, no word was wrong, nothing was OOM-killed and reclaim
 * freed pages.
 */
#define STRESS_VMS	8
#define STRESS_CHUNKS	128
/* A VM lives STRESS_LIFE_MS plus up to as much again. */
#define STRESS_LIFE_MS	3000
#define STRESS_TICK_US	100000
#define STRESS_CHURN_MS	2000
#define STRESS_SQUEEZE_MS 1500
#define STRESS_SCAN	"1000000"
#define SPARE_CGROUP	TEST_CGROUP "/spare"
#define HIGH_CGROUP	TEST_CGROUP "/high"

static const char * const stress_cgroups[] = { "high/c0", "high/c1", "c2", "c3" };
#define NR_STRESS_CGROUPS	ARRAY_SIZE(stress_cgroups)
static const char * const high_children[] = {
	TEST_CGROUP "/high/c0", TEST_CGROUP "/high/c1",
};

/* c2: memory.max */
#define SQUEEZED	2

/* What the VM processes and the two reclaiming processes report. */
struct stress_vm {
	uint64_t passes;
	uint64_t mismatches;
	uint64_t freed;
	uint64_t cache_freed;
};

struct stress_shared {
	struct stress_vm vm[STRESS_VMS];
	uint64_t reclaims, reclaim_eagain, reclaim_gone, reclaim_max_ns;
	uint64_t drop_caches, scans;
};

/* What the main process counts. */
struct stress_totals {
	uint64_t created, destroyed, died, passes, mismatches;
	uint64_t freed[NR_STRESS_CGROUPS], cache_freed[NR_STRESS_CGROUPS];
	uint64_t rmdirs, mkdirs, moved, squeezes, high_updates;
};

static void stress_cgroup_path(char *buf, size_t len, int c)
{
	snprintf(buf, len, TEST_CGROUP "/%s", stress_cgroups[c]);
}

static void stress_read_stats(struct kvm_vm *vm, struct stress_vm *s)
{
	WRITE_ONCE(s->freed, vm_get_stat(vm, mmu_shrinker_freed));
	WRITE_ONCE(s->cache_freed, vm_get_stat(vm, mmu_shrinker_cache_freed));
}

/* Child: one pass of the guest, then the host's check of the same words. */
static bool stress_pass(struct kvm_vm *vm, struct kvm_vcpu *vcpu,
			gpa_t data_gpa, struct stress_vm *s)
{
	uint64_t i, *p, bad;
	struct ucall uc;
	int w;

	vcpu_run(vcpu);
	if (vcpu->run->exit_reason != KVM_EXIT_IO)
		return false;
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		return false;
	default:
		return false;
	}
	sync_global_from_guest(vm, stress_bad);
	sync_global_from_guest(vm, stress_pass_nr);
	bad = stress_bad;
	for (i = 0; i < data_nr; i++) {
		p = addr_gpa2hva(vm, data_gpa + i * getpagesize());
		for (w = 0; w < STRESS_WORDS; w++)
			bad += p[w] != stress_word(i, stress_pass_nr, w);
	}
	WRITE_ONCE(s->mismatches, s->mismatches + bad);
	WRITE_ONCE(s->passes, s->passes + 1);
	return true;
}

/* Child: a VM that runs stress passes until @until, then is destroyed. */
static void stress_child(struct vm_proc *p, struct stress_vm *s, uint64_t until,
			 int go_fd)
{
	struct kvm_vcpu *vcpu;
	gpa_t data_gpa;
	struct kvm_vm *vm;
	char go;

	/* The parent puts this process in its cgroup first. */
	TEST_ASSERT(read(go_fd, &go, 1) == 1, "stress: start");
	close(go_fd);
	vm = prepare_vm(p, &vcpu, &data_gpa, false);
	stress_data = true;
	sync_global_to_guest(vm, stress_data);
	do {
		TEST_ASSERT(stress_pass(vm, vcpu, data_gpa, s), "stress: guest failed");
		stress_read_stats(vm, s);
	} while (now_ns() < until);
	kvm_vm_free(vm);
	exit(0);
}

static void stress_start(struct vm_proc *v, int slot, bool svm,
			 struct stress_shared *sh, uint64_t deadline)
{
	uint64_t until = now_ns() + (STRESS_LIFE_MS + random() % STRESS_LIFE_MS) *
				    1000000ULL;
	char path[192], val[16];
	struct stat st;
	int go[2];

	stress_cgroup_path(v->cgroup, sizeof(v->cgroup), slot / 2);
	TEST_ASSERT(!stat(v->cgroup, &st), "stat %s", v->cgroup);
	v->ino = st.st_ino;
	memset(&sh->vm[slot], 0, sizeof(sh->vm[slot]));
	TEST_ASSERT(!pipe(go), "pipe");
	v->pid = fork();
	TEST_ASSERT(v->pid >= 0, "fork");
	if (!v->pid) {
		close(go[1]);
		nested = svm && (slot & 1);
		nested_npt &= nested;
		stress_child(v, &sh->vm[slot], until < deadline ? until : deadline, go[0]);
	}
	close(go[0]);
	snprintf(path, sizeof(path), "%s/cgroup.procs", v->cgroup);
	snprintf(val, sizeof(val), "%d", v->pid);
	write_file(path, val);
	TEST_ASSERT(write(go[1], "g", 1) == 1, "stress: start");
	close(go[1]);
}

/* Waits for the VM process of @slot if it has exited (or, with @block, until it does). */
static void stress_reap(struct vm_proc *v, int slot, struct stress_shared *sh,
			struct stress_totals *t, bool block)
{
	struct stress_vm *s = &sh->vm[slot];
	int status, c = slot / 2;

	if (!v->pid || waitpid(v->pid, &status, block ? 0 : WNOHANG) != v->pid)
		return;
	if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		t->destroyed++;
	} else {
		t->died++;
		ksft_print_msg("stress: VM %d in %s: exit status %#x\n", slot,
			       stress_cgroups[c], status);
	}
	t->passes += s->passes;
	t->mismatches += s->mismatches;
	t->freed[c] += s->freed;
	t->cache_freed[c] += s->cache_freed;
	v->pid = 0;
}

/* Moves every process of cgroup @from to @to; returns how many moved. */
static int move_procs(const char *from, const char *to)
{
	char path[192], pid[32];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", from);
	f = fopen(path, "r");
	if (!f)
		return 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", to);
	while (fgets(pid, sizeof(pid), f))
		n += !__try_write_file(path, pid, true);
	fclose(f);
	return n;
}

/* Out of cgroup @c, remove it (reparenting), create it again, back in. */
static void stress_churn(int c, struct stress_totals *t)
{
	char path[192];

	stress_cgroup_path(path, sizeof(path), c);
	t->moved += move_procs(path, SPARE_CGROUP);
	if (!rmdir(path))
		t->rmdirs++;
	else
		ksft_print_msg("stress: rmdir %s: %s\n", path, strerror(errno));
	TEST_ASSERT(!mkdir(path, 0755) || errno == EEXIST, "mkdir %s", path);
	t->mkdirs++;
	t->moved += move_procs(SPARE_CGROUP, path);
}

/* The kvm-mmu shrinker's shadow pages of @cgroup (0 if it is gone). */
static uint64_t stress_lru_pages(const char *cgroup)
{
	struct stat st;
	long n;

	if (stat(cgroup, &st))
		return 0;
	n = shrinker_count(st.st_ino);
	return n > 0 ? n : 0;
}

/*
 * What a VM of the stress test may hold that no reclaim can free: its
 * roots (the current one and three cached ones, in L1 and in L2), and
 * the pages its vCPU's two page caches top up to while it faults
 * (KVM_ARCH_NR_OBJS_PER_MEMORY_CACHE each), which the cache shrinker
 * cannot take while the vCPU uses them.
 */
#define STRESS_VM_UNFREEABLE	(2 * 4 + 2 * 40)

/*
 * Sets @cgroup's @file (memory.max or memory.high) so that its usage must
 * drop by half of the shadow pages on the lists of @cgroup and of its
 * @children, but by no more than the @nr_vms VMs there can give up (see
 * STRESS_VM_UNFREEABLE): only the kvm-mmu shrinker can free them (the
 * guests' memory is anonymous, without swap), and a memory.max that asked
 * for more would be an OOM kill by design.  memory.current is read first:
 * the reclaiming process may free shadow pages at any time, and a count
 * read before memory.current could promise pages that are already gone.
 */
static bool stress_limit(const char *cgroup, const char *file,
			 const char * const *children, int nr_children,
			 int nr_vms)
{
	uint64_t cur = memcg_u64(cgroup, "memory.current");
	uint64_t lru_pages = stress_lru_pages(cgroup);
	uint64_t keep = nr_vms * STRESS_VM_UNFREEABLE;
	char path[256], val[32];
	int i;

	for (i = 0; i < nr_children; i++)
		lru_pages += stress_lru_pages(children[i]);
	if (lru_pages < keep + 64)
		return false;
	snprintf(path, sizeof(path), "%s/%s", cgroup, file);
	snprintf(val, sizeof(val), "%lu",
		 cur - min(lru_pages / 2, lru_pages - keep) * getpagesize());
	return !__try_write_file(path, val, true);
}

static void stress_unlimit(const char *cgroup, const char *file)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cgroup, file);
	__try_write_file(path, "max", true);
}

static void stress_reclaim_loop(struct stress_shared *sh, uint64_t deadline)
{
	char path[192], val[32];
	uint64_t t, ns;
	int i, ret;

	for (i = 0; now_ns() < deadline; i++) {
		int c = i % (NR_STRESS_CGROUPS + 2);

		if (c < (int)NR_STRESS_CGROUPS)
			stress_cgroup_path(path, sizeof(path), c);
		else
			snprintf(path, sizeof(path), "%s",
				 c == NR_STRESS_CGROUPS ? HIGH_CGROUP : TEST_CGROUP);
		strcat(path, "/memory.reclaim");
		/* 256 KiB to 4 MiB */
		snprintf(val, sizeof(val), "%lu", (1 + random() % 16) << 18);
		t = now_ns();
		ret = __try_write_file(path, val, true);
		ns = now_ns() - t;
		if (ret == -ENOENT) {
			sh->reclaim_gone++;
			continue;
		}
		sh->reclaims++;
		sh->reclaim_eagain += ret == -EAGAIN;
		if (ns > sh->reclaim_max_ns)
			sh->reclaim_max_ns = ns;
		usleep(20000);
	}
	exit(0);
}

static void stress_scan_loop(struct stress_shared *sh, uint64_t deadline)
{
	static const char * const scan[] = { shrinker_scan_path, cache_scan_path };
	int i, j, nid, nr_nodes = online_nodes();
	char path[192], val[64];
	struct stat st;

	for (i = 0; now_ns() < deadline; i++) {
		if (!(i % NR_STRESS_CGROUPS)) {
			/* 2: slab objects (shrinkers); 4: no log line */
			__try_write_file("/proc/sys/vm/drop_caches", "6", false);
			sh->drop_caches++;
		}
		stress_cgroup_path(path, sizeof(path), i % NR_STRESS_CGROUPS);
		if (stat(path, &st))
			continue;
		for (j = 0; j < 2; j++) {
			for (nid = 0; nid < nr_nodes && scan[j][0]; nid++) {
				snprintf(val, sizeof(val), "%lu %d " STRESS_SCAN,
					 (unsigned long)st.st_ino, nid);
				/* The cgroup may be gone meanwhile. */
				sh->scans += !__try_write_file(scan[j], val, true);
			}
		}
		usleep(20000);
	}
	exit(0);
}

static pid_t stress_fork(void (*fn)(struct stress_shared *, uint64_t),
			 struct stress_shared *sh, uint64_t deadline)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (!pid)
		fn(sh, deadline);
	return pid;
}

static void stress_mkdir(const char *path, bool parent)
{
	rmdir(path);
	TEST_ASSERT(!mkdir(path, 0755), "mkdir %s: %s", path, strerror(errno));
	if (parent) {
		char sub[192];

		snprintf(sub, sizeof(sub), "%s/cgroup.subtree_control", path);
		write_file(sub, "+memory");
	}
}

static void stress_stat(const char *name, uint64_t val)
{
	ksft_print_msg("stress-stat %s %lu\n", name, val);
}

static void run_stress(int seconds)
{
	uint64_t now, deadline = now_ns() + seconds * 1000000000ULL;
	uint64_t next_churn = 0, next_squeeze = 0, freed = 0;
	struct stress_shared *sh = shared_page();
	struct vm_proc v[STRESS_VMS] = {};
	struct stress_totals t = {};
	bool svm, squeezed = false;
	pid_t helpers[2];
	char path[192];
	int i, c, status, churned = 0;

	TEST_ASSERT(sizeof(*sh) <= (size_t)getpagesize(), "stress_shared fits in a page");
	__TEST_REQUIRE(rust_shrinker && memcg_on,
		       "stress needs the kvm-mmu shrinker and the memory controller");
	svm = kvm_cpu_has(X86_FEATURE_SVM);
	nested_npt = svm && !shadow_paging() && kvm_cpu_has(X86_FEATURE_NPT);
	nr_chunks = STRESS_CHUNKS;
	ksft_print_msg("stress: %d s, %d VMs of %d chunks, %s paging, %s\n", seconds,
		       STRESS_VMS, nr_chunks, shadow_paging() ? "shadow" : "nested",
		       svm ? "odd VMs run an L2 guest" : "no SVM: no L2 guests");
	stress_mkdir(HIGH_CGROUP, true);
	for (c = 0; c < (int)NR_STRESS_CGROUPS; c++) {
		stress_cgroup_path(path, sizeof(path), c);
		stress_mkdir(path, false);
	}
	stress_mkdir(SPARE_CGROUP, false);
	helpers[0] = stress_fork(stress_reclaim_loop, sh, deadline);
	helpers[1] = stress_fork(stress_scan_loop, sh, deadline);

	while ((now = now_ns()) < deadline) {
		for (i = 0; i < STRESS_VMS; i++) {
			stress_reap(&v[i], i, sh, &t, false);
			if (v[i].pid || (squeezed && i / 2 == SQUEEZED))
				continue;
			stress_start(&v[i], i, svm, sh, deadline);
			t.created++;
		}
		if (now >= next_churn) {
			c = churned++ % NR_STRESS_CGROUPS;
			stress_churn(c, &t);
			squeezed &= c != SQUEEZED;
			next_churn = now + STRESS_CHURN_MS * 1000000ULL;
		}
		if (now >= next_squeeze) {
			stress_cgroup_path(path, sizeof(path), SQUEEZED);
			if (squeezed) {
				stress_unlimit(path, "memory.max");
				squeezed = false;
			} else if (sh->vm[2 * SQUEEZED].passes &&
				   sh->vm[2 * SQUEEZED + 1].passes) {
				/* Only VMs that built their pages: no room for a new one. */
				squeezed = stress_limit(path, "memory.max", NULL, 0, 2);
				t.squeezes += squeezed;
			}
			t.high_updates += stress_limit(HIGH_CGROUP, "memory.high",
						       high_children,
						       ARRAY_SIZE(high_children), 4);
			next_squeeze = now + STRESS_SQUEEZE_MS * 1000000ULL;
		}
		usleep(STRESS_TICK_US);
	}
	for (i = 0; i < STRESS_VMS; i++)
		stress_reap(&v[i], i, sh, &t, true);
	for (i = 0; i < 2; i++) {
		TEST_ASSERT(waitpid(helpers[i], &status, 0) == helpers[i], "waitpid");
		t.died += !WIFEXITED(status) || WEXITSTATUS(status);
	}

	stress_stat("seconds", seconds);
	stress_stat("vms_created", t.created);
	stress_stat("vms_destroyed", t.destroyed);
	stress_stat("processes_died", t.died);
	stress_stat("guest_passes", t.passes);
	stress_stat("mismatches", t.mismatches);
	for (c = 0; c < (int)NR_STRESS_CGROUPS; c++) {
		ksft_print_msg("stress-stat freed_c%d %lu\n", c, t.freed[c]);
		ksft_print_msg("stress-stat cache_freed_c%d %lu\n", c, t.cache_freed[c]);
		freed += t.freed[c] + t.cache_freed[c];
	}
	stress_stat("memory_reclaim", sh->reclaims);
	stress_stat("memory_reclaim_eagain", sh->reclaim_eagain);
	stress_stat("memory_reclaim_gone", sh->reclaim_gone);
	stress_stat("reclaim_max_us", sh->reclaim_max_ns / 1000);
	stress_stat("drop_caches", sh->drop_caches);
	stress_stat("debugfs_scans", sh->scans);
	stress_stat("cgroup_rmdirs", t.rmdirs);
	stress_stat("cgroup_mkdirs", t.mkdirs);
	stress_stat("procs_moved", t.moved);
	stress_stat("memory_max_squeezes", t.squeezes);
	stress_stat("memory_high_updates", t.high_updates);
	stress_stat("memory_max_hits", memcg_event(TEST_CGROUP, "max"));
	stress_stat("memory_high_hits", memcg_event(TEST_CGROUP, "high"));
	stress_stat("oom_kills", memcg_event(TEST_CGROUP, "oom_kill"));
	stress_stat("lru_hold_max_us", lru_hold_max_ns() / 1000);

	for (c = NR_STRESS_CGROUPS - 1; c >= 0; c--) {
		stress_cgroup_path(path, sizeof(path), c);
		rmdir(path);
	}
	rmdir(HIGH_CGROUP);
	rmdir(SPARE_CGROUP);
	ksft_test_result(t.created >= STRESS_VMS && t.destroyed == t.created && !t.died &&
			 t.passes && !t.mismatches &&
			 !memcg_event(TEST_CGROUP, "oom_kill") && freed && t.rmdirs,
			 "stress: %lu VMs, %lu passes, %lu pages freed, %lu wrong words\n",
			 t.created, t.passes, freed, t.mismatches);
}

int main(int argc, char *argv[])
{
	struct vm_proc a = { .name = "A" }, b = { .name = "B" };
	int opt, race = 0, latency = 0, scale = 0, stress = 0;
	bool bench_only = false, refaults = false, one_mode;

	/* A write to the pipe of a VM process that was OOM-killed. */
	signal(SIGPIPE, SIG_IGN);

	while ((opt = getopt(argc, argv, "bl:Nn:rS:s:t:")) != -1) {
		if (opt == 'n')
			nr_chunks = atoi_positive("Number of chunks", optarg);
		else if (opt == 'b')
			bench_only = true;
		else if (opt == 't')
			race = atoi_positive("Seconds", optarg);
		else if (opt == 'l')
			latency = atoi_positive("Seconds", optarg);
		else if (opt == 'r')
			refaults = true;
		else if (opt == 'N')
			nested = true;
		else if (opt == 's')
			scale = atoi_positive("Number of VMs", optarg);
		else if (opt == 'S')
			stress = atoi_positive("Seconds", optarg);
	}

	if (nested) {
		TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
		/* Without NPT for L1, L0 shadows L2's page tables. */
		nested_npt = !shadow_paging() && kvm_cpu_has(X86_FEATURE_NPT);
	} else if (!stress) {
		TEST_REQUIRE(shadow_paging());
	}
	/* A measurement or race mode runs alone, as one test. */
	one_mode = bench_only || race || latency || refaults || scale || stress;
	TEST_ASSERT(!nested || !(refaults || scale || latency || race || stress),
		    "-N goes with the checks or -b only");
	memcg_on = memory_controller();
	find_shrinker();

	ksft_print_header();
	ksft_set_plan(one_mode ? 1 : 13);
	ksft_print_msg("%s shrinker, %d chunks per VM, memory controller %s\n",
		       rust_shrinker ? "Rust memcg-aware (kvm-mmu)" :
		       shrinker_scan_path[0] ? "baseline C (x86-mmu)" :
		       "baseline: no MMU", nr_chunks,
		       memcg_on ? "on" : "off (both VMs share the lists)");
	if (nested)
		ksft_print_msg("nested: L2 guests under L1, %s\n",
			       nested_npt ? "with nested paging (L0 shadows L1's NPT)" :
					    "without nested paging (L0 shadows L2's page tables)");

	if (memcg_on) {
		write_file(CGROUP_ROOT "/cgroup.subtree_control", "+memory");
		rmdir(TEST_CGROUP);
		TEST_ASSERT(!mkdir(TEST_CGROUP, 0755) || errno == EEXIST,
			    "mkdir %s", TEST_CGROUP);
		write_file(TEST_CGROUP "/cgroup.subtree_control", "+memory");
	}

	if (one_mode) {
		if (stress)
			run_stress(stress);
		else if (race)
			run_race(race);
		else if (scale)
			run_scale(scale);
		else if (latency)
			run_latency(latency);
		else if (refaults)
			run_refaults();
		else
			run_bench();
		rmdir(TEST_CGROUP);
		ksft_finished();
	}

	start_vm(&a);
	start_vm(&b);
	TEST_ASSERT(vm_cmd(&a, 'P', NULL) && vm_cmd(&b, 'P', NULL), "prepare");
	TEST_ASSERT(vm_cmd(&a, 'W', NULL) && vm_cmd(&b, 'W', NULL),
		    "the guests could not write their data");

	if (memcg_on) {
		test_memcg_reclaim(&a, &b);
	} else {
		ksft_test_result_skip("memcg reclaim spares B (no memory controller)\n");
		ksft_test_result_skip("memory.reclaim reports success (no memory controller)\n");
		ksft_test_result_skip("memcg reclaim frees A's pages (no memory controller)\n");
	}
	test_read_back(&a, &b, "after memcg reclaim");
	test_aging(&b);
	test_huge_scan(&b);
	test_read_back(&a, &b, "after the shrinker's scans");
	test_drop_caches(&a, &b);
	test_read_back(&a, &b, "after drop_caches");
	test_roots_only(&a);
	test_read_back(&a, &b, "with only roots left in A");

	stop_vm(&a);
	stop_vm(&b);
	if (memcg_on) {
		test_memory_max();
		test_memory_high();
	} else {
		ksft_test_result_skip("memory.max (no memory controller)\n");
		ksft_test_result_skip("memory.high (no memory controller)\n");
	}
	rmdir(TEST_CGROUP);

	ksft_finished();
}
