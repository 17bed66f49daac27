// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions for memcg-aware and NUMA-aware shrinkers.
//!
//! C headers: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h),
//! [`include/linux/list_lru.h`](srctree/include/linux/list_lru.h) and
//! [`include/linux/memcontrol.h`](srctree/include/linux/memcontrol.h).
//!
//! A shrinker lets the memory-management core ask a cache to give memory
//! back. A memcg-aware shrinker is asked per memory cgroup and NUMA node, so
//! that reclaim inside one cgroup frees that cgroup's objects and nobody
//! else's. This crate wraps the pieces such a shrinker is made of:
//!
//! - [`shrinker`]: allocation and registration with `SHRINKER_MEMCG_AWARE`
//!   and `SHRINKER_NUMA_AWARE`, the callbacks' context
//!   ([`shrinker::ShrinkControl`]) and results;
//! - [`memcg`]: refcounted memory cgroup handles;
//! - [`node`]: ids of possible NUMA nodes, which per-node structures can
//!   be indexed with;
//! - [`list_lru`]: per-node, per-memcg LRU lists tied to a shrinker, with an
//!   isolate protocol that takes items off in bounded batches, and can drop
//!   the list lock safely.
//!
//! The crate is built into vmlinux like the `kernel` crate, and its symbols
//! are exported, so that Rust code in loadable modules can use it. Its first
//! user is KVM's x86 MMU shrinker.

#![no_std]

#[cfg(CONFIG_KUNIT = "y")]
mod kunit;
pub mod list_lru;
pub mod memcg;
pub mod node;
pub mod shrinker;
