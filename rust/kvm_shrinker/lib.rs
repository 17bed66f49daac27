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
//! else's. This crate wraps the pieces such a shrinker is made of, so that
//! users (the first is KVM's x86 MMU shrinker) need no `unsafe` code for
//! them.
//!
//! The crate is built into vmlinux like the `kernel` crate, and its symbols
//! are exported, so that Rust code in loadable modules can use it.

#![no_std]

pub mod shrinker;
