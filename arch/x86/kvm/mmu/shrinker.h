/* SPDX-License-Identifier: GPL-2.0 */
#ifndef __KVM_X86_MMU_SHRINKER_H
#define __KVM_X86_MMU_SHRINKER_H

/*
 * The memcg-aware shadow MMU shrinker (CONFIG_KVM_MMU_SHRINKER_RUST).
 *
 * The policy lives in shrinker.rs; mmu.c keeps the page table internals.
 * This is the whole boundary between the two.  rust/bindings includes this
 * header, so the Rust side uses these declarations and constants as they
 * are here, and checks its own definitions against them when it builds.
 *
 * Lock order: kvm->srcu (read), kvm->mmu_lock, list_lru lock.  KVM adds
 * and deletes shadow pages under mmu_lock; the shrinker's isolate callback
 * holds the list_lru lock and therefore only try-locks mmu_lock (and takes
 * the srcu read lock, which never waits, inside the list_lru lock).
 */

#include <linux/bits.h>
#include <linux/types.h>

struct kvm;
struct list_head;
struct list_lru;

/* Implemented in Rust, called by mmu.c. */
int kvm_mmu_shrinker_init(void);
void kvm_mmu_shrinker_exit(void);
struct list_lru *kvm_mmu_shrinker_lru(void);
void kvm_mmu_shrinker_add(struct list_head *link, const void *obj, int nid);
void kvm_mmu_shrinker_del(struct list_head *link, const void *obj, int nid);

/* What kvm_mmu_shrink_inspect() returns. */
#define KVM_MMU_SHRINK_LEVEL_MASK	0xf
#define KVM_MMU_SHRINK_ROOT		BIT(4)
#define KVM_MMU_SHRINK_INVALID		BIT(5)
#define KVM_MMU_SHRINK_OBSOLETE		BIT(6)
#define KVM_MMU_SHRINK_YOUNG		BIT(7)

/* Implemented in mmu.c, called by the Rust shrinker. */
struct kvm *kvm_mmu_shrink_sp_kvm(struct list_head *link);
void kvm_mmu_shrink_putback(struct list_head *link);
void kvm_mmu_shrink_park(struct list_head *link);
int kvm_mmu_shrink_trylock(struct kvm *kvm);
void kvm_mmu_shrink_unlock(struct kvm *kvm, int srcu_idx);
unsigned int kvm_mmu_shrink_inspect(struct kvm *kvm, struct list_head *link,
				    bool age);
void kvm_mmu_shrink_zap(struct kvm *kvm, struct list_head *link,
			struct list_head *invalid_list);
unsigned long kvm_mmu_shrink_commit(struct kvm *kvm,
				    struct list_head *invalid_list);
void kvm_mmu_shrink_note_lru_hold(u64 ns);

#endif /* __KVM_X86_MMU_SHRINKER_H */
