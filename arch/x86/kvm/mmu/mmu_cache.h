/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVM_X86_MMU_CACHE_H
#define __KVM_X86_MMU_CACHE_H

/*
 * Reclaim of the vCPUs' MMU page caches, per memcg and NUMA node, by the
 * shrinker "kvm-mmu-cache" (CONFIG_KVM_MMU_SHRINKER_RUST).  The policy
 * is in cache_shrinker.rs, the vCPU side in mmu_cache.c; rust/bindings
 * includes this header, and the Rust side checks its definitions against
 * the declarations below when it builds.
 */

#include <linux/types.h>
#ifndef __BINDGEN__
#include <linux/kvm_host.h>
#endif

struct kvm_mmu_memory_cache;
struct kvm_vcpu;
struct list_head;
struct page;

/* Implemented in Rust (cache_shrinker.rs), called by mmu_cache.c. */
int kvm_mmu_cache_shrinker_init(void);
void kvm_mmu_cache_shrinker_exit(void);
void kvm_mmu_cache_lru_prepare(void);
bool kvm_mmu_cache_lru_add(struct list_head *link, struct page *page);
void kvm_mmu_cache_lru_del(struct list_head *link, struct page *page);

/* Implemented in mmu_cache.c, called by the Rust shrinker. */
int kvm_mmu_cache_take(struct list_head *link);
void kvm_mmu_cache_free(struct list_head *link);

/* Called by KVM: mmu.c, tdp_mmu.c and x86.c. */
#ifdef CONFIG_KVM_MMU_SHRINKER_RUST
void kvm_mmu_caches_init(struct kvm_vcpu *vcpu);
void kvm_mmu_caches_begin(struct kvm_vcpu *vcpu);
void kvm_mmu_caches_end(struct kvm_vcpu *vcpu);
int kvm_mmu_topup_page_cache(struct kvm_vcpu *vcpu,
			     struct kvm_mmu_memory_cache *mc, int min);
void kvm_mmu_cache_page_used(void *addr);
void kvm_mmu_caches_release(struct kvm_vcpu *vcpu);

#ifndef __BINDGEN__
/*
 * On guest entry: stop using the caches if the shrinker asked for them.
 * Nothing uses them until the next fault tops them up.
 */
static inline void kvm_mmu_caches_entry(struct kvm_vcpu *vcpu)
{
	if (unlikely(READ_ONCE(vcpu->arch.mmu_caches_wanted)))
		kvm_mmu_caches_end(vcpu);
}
#endif
#else
static inline void kvm_mmu_caches_init(struct kvm_vcpu *vcpu) {}
static inline void kvm_mmu_caches_begin(struct kvm_vcpu *vcpu) {}
static inline void kvm_mmu_caches_end(struct kvm_vcpu *vcpu) {}
static inline void kvm_mmu_caches_entry(struct kvm_vcpu *vcpu) {}
static inline int kvm_mmu_topup_page_cache(struct kvm_vcpu *vcpu,
					   struct kvm_mmu_memory_cache *mc,
					   int min)
{
	return kvm_mmu_topup_memory_cache(mc, min);
}

static inline void kvm_mmu_cache_page_used(void *addr) {}
static inline void kvm_mmu_caches_release(struct kvm_vcpu *vcpu) {}
#endif

#endif /* __KVM_X86_MMU_CACHE_H */
