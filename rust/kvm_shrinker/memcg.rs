// SPDX-License-Identifier: GPL-2.0

//! Memory cgroups.
//!
//! C header: [`include/linux/memcontrol.h`](srctree/include/linux/memcontrol.h).
//!
//! With `CONFIG_MEMCG=n`, or with memcg disabled at boot
//! (`cgroup_disable=memory`), there are no memory cgroups: every lookup
//! here returns `None`, and [`MemCgroup::disabled`] returns `true`. Callers
//! then treat all objects as belonging to the root (global) lists, which is
//! what `list_lru` and the shrinker core do with a `NULL` memcg.

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::page::Page;
use kernel::sync::aref::{ARef, AlwaysRefCounted};
use kernel::types::Opaque;

/// A memory cgroup (`struct mem_cgroup`).
///
/// Owned references are [`ARef<MemCgroup>`]: they hold a reference on the
/// memcg's css, so the memcg stays valid (possibly offline) until it is
/// dropped. Borrowed references (`&MemCgroup`) come from contexts that hold
/// such a reference for as long as the borrow, such as a shrinker callback
/// (see [`crate::shrinker::ShrinkControl::memcg`]).
///
/// # Invariants
///
/// A `&MemCgroup` points to a valid `struct mem_cgroup` on which a
/// reference is held for the lifetime of the borrow.
#[repr(transparent)]
pub struct MemCgroup(Opaque<bindings::mem_cgroup>);

// SAFETY: A memcg may be used and released from any thread: its reference
// count is atomic and the functions called here are thread-safe.
unsafe impl Send for MemCgroup {}
// SAFETY: All methods take `&self` and call C functions that may run
// concurrently on the same memcg.
unsafe impl Sync for MemCgroup {}

// SAFETY: `css_get` and `css_put` (through `mem_cgroup_put`) are the memcg's
// reference counting; the memcg is not freed while a reference is held.
unsafe impl AlwaysRefCounted for MemCgroup {
    fn inc_ref(&self) {
        // SAFETY: By the type invariant, `self` is valid and referenced.
        unsafe { bindings::mem_cgroup_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns on a valid memcg.
        unsafe { bindings::mem_cgroup_put(obj.as_ptr().cast()) };
    }
}

impl MemCgroup {
    /// Borrows a memcg from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct mem_cgroup` on which a reference
    /// is held for all of `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mem_cgroup) -> &'a MemCgroup {
        // SAFETY: `MemCgroup` is a transparent wrapper of `mem_cgroup`, and
        // the caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Takes ownership of a reference returned by a C function.
    ///
    /// # Safety
    ///
    /// `ptr` must be null or point to a valid `struct mem_cgroup` with a
    /// reference that the caller transfers to the returned value.
    unsafe fn from_owned_raw(ptr: *mut bindings::mem_cgroup) -> Option<ARef<MemCgroup>> {
        let ptr = NonNull::new(ptr.cast::<MemCgroup>())?;
        // SAFETY: The caller transfers a reference on a valid memcg.
        Some(unsafe { ARef::from_raw(ptr) })
    }

    /// Returns the raw pointer to the `struct mem_cgroup`.
    pub fn as_raw(&self) -> *mut bindings::mem_cgroup {
        self.0.get()
    }

    /// Returns `true` if memory cgroups are compiled out or were disabled at
    /// boot with `cgroup_disable=memory`.
    pub fn disabled() -> bool {
        // SAFETY: Reads a static key; always safe to call.
        unsafe { bindings::mem_cgroup_disabled() }
    }

    /// The memcg of the current task, or `None` if memcg is disabled.
    pub fn current() -> Option<ARef<MemCgroup>> {
        // SAFETY: Always safe to call; returns null or a referenced memcg.
        unsafe { Self::from_owned_raw(bindings::get_current_mem_cgroup()) }
    }

    /// The memcg that `page` is charged to (the root memcg for an uncharged
    /// page), or `None` if memcg is disabled.
    pub fn from_page(page: &Page) -> Option<ARef<MemCgroup>> {
        // SAFETY: `page` is a valid page; the helper returns null or a
        // referenced memcg.
        unsafe { Self::from_owned_raw(bindings::get_mem_cgroup_from_page(page.as_ptr())) }
    }

    /// The memcg that the slab object at `ptr` is charged to, or `None` if
    /// it is not charged (or memcg is disabled).
    ///
    /// If that memcg is dying, its closest live ancestor is returned, which
    /// is where the object's charge and list_lru entries are reparented to.
    ///
    /// # Safety
    ///
    /// `ptr` must point into a live slab object (for example one allocated
    /// with `kmalloc` or `kmem_cache_alloc`).
    pub unsafe fn from_slab_obj(ptr: *const c_void) -> Option<ARef<MemCgroup>> {
        // SAFETY: The caller guarantees `ptr` is a live slab object; the
        // helper returns null or a referenced memcg.
        unsafe { Self::from_owned_raw(bindings::get_mem_cgroup_from_slab_obj(ptr.cast_mut())) }
    }

    /// Returns `true` for the root memcg.
    pub fn is_root(&self) -> bool {
        // SAFETY: By the type invariant, `self` is valid.
        unsafe { bindings::mem_cgroup_is_root(self.as_raw()) }
    }

    /// The memcg's id (as in `mem_cgroup_private_id()`), stable while it is
    /// online.
    pub fn id(&self) -> u16 {
        // SAFETY: By the type invariant, `self` is valid.
        unsafe { bindings::mem_cgroup_private_id(self.as_raw()) }
    }

    /// The inode number of the memcg's cgroup directory. This is how
    /// userspace names a memcg, for example in shrinker_debugfs `count` and
    /// `scan` files.
    pub fn ino(&self) -> u64 {
        // SAFETY: By the type invariant, `self` is valid.
        unsafe { bindings::mem_cgroup_ino(self.as_raw()) }
    }
}
