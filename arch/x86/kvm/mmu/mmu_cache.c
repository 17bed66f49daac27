// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPUs' MMU page caches, as the shrinker "kvm-mmu-cache" sees them
 * (the shrinker itself is cache_shrinker.rs).
 *
 * Each vCPU keeps up to KVM_ARCH_NR_OBJS_PER_MEMORY_CACHE free pages in
 * mmu_shadow_page_cache, for the page tables of the shadow MMU and of the
 * TDP MMU alike, and as many in mmu_shadowed_info_cache with shadow
 * paging.  They are charged to the memcg of the vCPU's task when a fault
 * tops the caches up.  While such a page is in its cache it is on the
 * shrinker's list_lru, linked through page->lru, under the memcg it is
 * charged to and its node, and page->private points to its vCPU.  So
 * memcg reclaim finds, in O(1), exactly the cached pages of the memcg and
 * node under pressure, and touches no other vCPU.
 *
 * Locking.  A vCPU uses its caches without a lock from the top-up before
 * a fault (or a root load) until the fault is done.  kvm_mmu_caches_begin()
 * sets mmu_caches_in_use, under mmu_caches_lock, before a top-up, and
 * kvm_mmu_caches_end() clears it at a point where nothing of the caches is
 * in use: before the vCPU blocks (halts), at the end of KVM_RUN, and before
 * a guest entry if the shrinker asked for the caches (mmu_caches_wanted).
 * The shrinker takes a page out of a cache only under mmu_caches_lock and
 * only when mmu_caches_in_use is clear; otherwise it sets
 * mmu_caches_wanted and leaves the page for a later scan.  A cache that a
 * fault topped up therefore keeps its pages until the fault is done, no
 * allocation under mmu_lock finds it empty because of the shrinker, and a
 * cache emptied by the shrinker is topped up again by the next fault
 * before it is used.
 *
 * Cost.  A running vCPU keeps mmu_caches_in_use set from fault to fault:
 * a fault pays one test of a flag the vCPU owns, a guest entry one test of
 * mmu_caches_wanted, and the lock is taken once per halt or KVM_RUN, and
 * once per shrinker request.  Each cached page is added to the lru once
 * when a top-up allocates it and deleted once when it is used.  The
 * shrinker never waits for a vCPU.
 *
 * Lock order: list_lru lock, then mmu_caches_lock.  The vCPU takes the
 * lru lock (to add and delete its pages) without holding mmu_caches_lock.
 *
 * Lifetime.  A page leaves the lru, under the lru lock, before it leaves
 * its cache or is freed, and a vCPU deletes the pages of its caches from
 * the lru before freeing them and itself (kvm_mmu_caches_release()).  So
 * while the shrinker holds the lru lock and sees a page on it, the page,
 * its vCPU and the VM are alive.  kvm_mmu_cache_take() runs under the lru
 * lock, takes the page out of the cache and releases mmu_caches_lock; the
 * shrinker then moves the page off the lru, still under the lru lock, and
 * afterwards touches only the page, which is its own.
 */

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/swap.h>

#include "mmu_internal.h"
#include "mmu_cache.h"

/*
 * Whether vCPUs created from now on let the shrinker free their cached
 * pages.  N leaves the fault path exactly as without the shrinker, which
 * is how the cost of the feature is measured.
 */
static bool __read_mostly mmu_cache_shrinker = true;
module_param(mmu_cache_shrinker, bool, 0644);

void kvm_mmu_caches_init(struct kvm_vcpu *vcpu)
{
	spin_lock_init(&vcpu->arch.mmu_caches_lock);
	vcpu->arch.mmu_caches_in_use = false;
	vcpu->arch.mmu_caches_wanted = false;
	vcpu->arch.mmu_caches_reclaim = READ_ONCE(mmu_cache_shrinker);
}

/*
 * Only the vCPU's own thread writes mmu_caches_in_use (under the lock, for
 * the shrinker), so it reads it without the lock.
 */
void kvm_mmu_caches_begin(struct kvm_vcpu *vcpu)
{
	if (!vcpu->arch.mmu_caches_reclaim || vcpu->arch.mmu_caches_in_use)
		return;

	spin_lock(&vcpu->arch.mmu_caches_lock);
	vcpu->arch.mmu_caches_in_use = true;
	spin_unlock(&vcpu->arch.mmu_caches_lock);
}

void kvm_mmu_caches_end(struct kvm_vcpu *vcpu)
{
	if (!vcpu->arch.mmu_caches_in_use)
		return;

	spin_lock(&vcpu->arch.mmu_caches_lock);
	vcpu->arch.mmu_caches_in_use = false;
	WRITE_ONCE(vcpu->arch.mmu_caches_wanted, false);
	spin_unlock(&vcpu->arch.mmu_caches_lock);
}

/* The vCPU whose cache holds @page, or NULL if it is not on the lru. */
static struct kvm_vcpu *cached_page_vcpu(struct page *page)
{
	return (struct kvm_vcpu *)page_private(page);
}

/*
 * Tops up a page cache of @vcpu (mmu_shadow_page_cache or
 * mmu_shadowed_info_cache), between kvm_mmu_caches_begin() and
 * kvm_mmu_caches_end(), and puts the new pages on the lru.  A page whose
 * memcg's lists cannot be allocated stays in the cache, untracked.
 */
int kvm_mmu_topup_page_cache(struct kvm_vcpu *vcpu,
			     struct kvm_mmu_memory_cache *mc, int min)
{
	int i = mc->nobjs;
	int r = kvm_mmu_topup_memory_cache(mc, min);

	if (!vcpu->arch.mmu_caches_reclaim || i == mc->nobjs)
		return r;

	kvm_mmu_cache_lru_prepare();
	for (; i < mc->nobjs; i++) {
		struct page *page = virt_to_page(mc->objects[i]);

		/* Set before the page is on the lru, where the shrinker reads it. */
		set_page_private(page, (unsigned long)vcpu);
		INIT_LIST_HEAD(&page->lru);
		if (!kvm_mmu_cache_lru_add(&page->lru, page))
			set_page_private(page, 0);
	}
	return r;
}

/*
 * @addr, a page just taken from a page cache, is no longer cached: take it
 * off the lru.  Pages of caches the shrinker does not track (a VM's eager
 * split caches, a vCPU created with mmu_cache_shrinker=N) have no vCPU.
 */
void kvm_mmu_cache_page_used(void *addr)
{
	struct page *page = virt_to_page(addr);
	struct kvm_vcpu *vcpu = cached_page_vcpu(page);

	if (!vcpu)
		return;

	/*
	 * The invariant that keeps the shrinker from freeing a page KVM
	 * uses: a page leaves its cache only while the vCPU's caches are
	 * marked in use, so the shrinker could not take it.
	 */
	KVM_MMU_WARN_ON(!vcpu->arch.mmu_caches_in_use);

	kvm_mmu_cache_lru_del(&page->lru, page);
	set_page_private(page, 0);
}

/* Before the vCPU frees its caches: take their pages off the lru. */
void kvm_mmu_caches_release(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu_memory_cache *caches[] = {
		&vcpu->arch.mmu_shadow_page_cache,
		&vcpu->arch.mmu_shadowed_info_cache,
	};
	int c, i;

	if (!vcpu->arch.mmu_caches_reclaim)
		return;

	/* Keeps the shrinker out of the caches from now on. */
	kvm_mmu_caches_begin(vcpu);
	for (c = 0; c < ARRAY_SIZE(caches); c++)
		for (i = 0; i < caches[c]->nobjs; i++)
			kvm_mmu_cache_page_used(caches[c]->objects[i]);
}

/*
 * Whether @addr, a page of @mc, is still as the cache's top-up left it:
 * every entry non-present.  A page that KVM had taken for a page table
 * without kvm_mmu_cache_page_used() would fail this once it maps
 * something.  KVM_PROVE_MMU only (512 loads per freed page).
 */
static bool mmu_cache_page_unused(struct kvm_mmu_memory_cache *mc, void *addr)
{
	u64 *sptes = addr;
	int i;

	if (!IS_ENABLED(CONFIG_KVM_PROVE_MMU) || mc->kmem_cache)
		return true;
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		if (sptes[i] != mc->init_value)
			return false;
	return true;
}

/* Removes @addr from @mc, not in use; returns whether it was there. */
static bool mmu_cache_remove(struct kvm_mmu_memory_cache *mc, void *addr)
{
	int i;

	for (i = 0; i < mc->nobjs; i++) {
		if (mc->objects[i] == addr) {
			mc->objects[i] = mc->objects[--mc->nobjs];
			return true;
		}
	}
	return false;
}

/*
 * Called by the shrinker with the lru lock held and the page at @link on
 * the lru: takes the page out of its vCPU's cache, unless the vCPU is
 * using its caches (-EBUSY: then it is asked to stop at its next guest
 * entry).  On success the page belongs to the caller,
 * who takes it off the lru under the same lock hold and frees it with
 * kvm_mmu_cache_free().  Nothing of the vCPU is touched after
 * mmu_caches_lock is released.
 *
 * -ENOENT means the page is in neither cache, which breaks the tracking
 * rules above: it is no longer the vCPU's, so it must not stay on the lru
 * pointing at the vCPU, which it may outlive.  The caller takes it off
 * the lru and leaves it alone.
 */
int kvm_mmu_cache_take(struct list_head *link)
{
	struct page *page = list_entry(link, struct page, lru);
	struct kvm_vcpu *vcpu = cached_page_vcpu(page);
	struct kvm_mmu_memory_cache *pages = &vcpu->arch.mmu_shadow_page_cache;
	void *addr = page_address(page);
	int r = -EBUSY;

	spin_lock(&vcpu->arch.mmu_caches_lock);
	if (vcpu->arch.mmu_caches_in_use) {
		WRITE_ONCE(vcpu->arch.mmu_caches_wanted, true);
	} else if (mmu_cache_remove(pages, addr)) {
		KVM_MMU_WARN_ON(!mmu_cache_page_unused(pages, addr));
		r = 0;
	} else if (mmu_cache_remove(&vcpu->arch.mmu_shadowed_info_cache, addr)) {
		r = 0;
	} else {
		WARN_ON_ONCE(1);
		set_page_private(page, 0);
		r = -ENOENT;
	}
	if (!r)
		atomic64_inc(&vcpu->kvm->stat.mmu_shrinker_cache_freed);
	spin_unlock(&vcpu->arch.mmu_caches_lock);
	return r;
}

/*
 * Frees a page that kvm_mmu_cache_take() gave the shrinker, which is off
 * the lru, and tells the reclaim in progress: the page was charged to the
 * memcg being shrunk.
 */
void kvm_mmu_cache_free(struct list_head *link)
{
	struct page *page = list_entry(link, struct page, lru);

	set_page_private(page, 0);
	__free_page(page);
	mm_account_reclaimed_memcg_pages(1);
}
