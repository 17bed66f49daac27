// SPDX-License-Identifier: GPL-2.0

//! Memcg-aware, NUMA-aware LRU lists of objects (`struct list_lru`).
//!
//! C header: [`include/linux/list_lru.h`](srctree/include/linux/list_lru.h).
//!
//! A [`ListLru`] keeps one list per NUMA node and, if its shrinker is
//! memcg-aware, one per node and memcg. Items embed a `struct list_head`
//! (see [`LruItem`]) and are added to the list of the node and memcg their
//! memory belongs to, so that a shrinker asked to reclaim from one memcg and
//! node counts and walks exactly those items.
//!
//! # Per-memcg lists
//!
//! The lists of a memcg are allocated on demand: `list_lru_add()` for a
//! memcg whose lists were never allocated dereferences a null pointer. They
//! are allocated by `kmem_cache_alloc_lru()` when an object is allocated
//! for this lru, or explicitly with [`ListLru::prepare_memcg`]. Adding an
//! item is therefore `unsafe`: the caller promises that one of the two
//! happened for the item's memcg.
//!
//! # Memcg offline
//!
//! When a memcg goes offline, `memcg_reparent_list_lrus()` splices its
//! lists into its parent's and sets the parent's shrinker bit. The items
//! stay on the lru and remain reclaimable, now on behalf of the parent;
//! `count` and `walk` for the dead memcg find nothing.
//!
//! # Locking
//!
//! Each list has a spinlock. The isolate callback of [`ListLru::walk_one`]
//! runs with it held. Lock order: any lock taken around `add`/`del` (for
//! example a subsystem's own lock) comes before the lru lock, so the isolate
//! callback may only *try* to take such locks. To do work that needs to
//! sleep or take locks in order, the callback removes the item and drops
//! the lru lock for a closure ([`Removed::unlock_then`]), like
//! `shadow_lru_isolate()` in mm/workingset.c.

use crate::memcg::MemCgroup;
use crate::shrinker::{CountResult, ShrinkControl, Shrinker};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use kernel::alloc::Flags;
use kernel::bindings;
use kernel::error::{to_result, Error, Result};
use kernel::ffi::c_void;
use kernel::init::{self, PinInit};
use kernel::prelude::*;
use kernel::types::Opaque;

/// The links an [`LruItem`] embeds: a `struct list_head` that points to
/// itself while the item is on no list, as `list_lru_add()` expects.
#[repr(transparent)]
#[pin_data]
pub struct LruLinks {
    #[pin]
    head: Opaque<bindings::list_head>,
}

// SAFETY: The links are only accessed by list_lru functions under the lock
// of the list the item is on, or by its owner while it is on no list.
unsafe impl Send for LruLinks {}
// SAFETY: As above: shared references give no unsynchronised access.
unsafe impl Sync for LruLinks {}

impl LruLinks {
    /// Links of an item that is on no list (`INIT_LIST_HEAD()`).
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            head <- Opaque::ffi_init(|head: *mut bindings::list_head| {
                // SAFETY: `head` is valid for writes; an empty list head
                // points to itself.
                unsafe {
                    (*head).next = head;
                    (*head).prev = head;
                }
            }),
        })
    }

    /// Returns the raw pointer to the `struct list_head`, for C code that
    /// uses it as a list head of its own (for example a private list).
    pub fn as_raw(&self) -> *mut bindings::list_head {
        self.head.get()
    }
}

/// A type whose values can be on a [`ListLru`].
///
/// # Safety
///
/// `LINKS_OFFSET` is the offset in bytes of an [`LruLinks`] field of `Self`
/// that is used for no other list.
pub unsafe trait LruItem {
    /// The offset of the embedded [`LruLinks`], from `core::mem::offset_of!`.
    const LINKS_OFFSET: usize;
}

fn links_of<T: LruItem>(item: NonNull<T>) -> *mut bindings::list_head {
    // SAFETY: By the `LruItem` contract, the offset is inside the object.
    unsafe { item.as_ptr().cast::<u8>().add(T::LINKS_OFFSET).cast() }
}

/// # Safety
///
/// `links` must be the embedded `list_head` of a `T`.
unsafe fn item_of<T: LruItem>(links: *mut bindings::list_head) -> NonNull<T> {
    // SAFETY: By the caller's guarantee and the `LruItem` contract, going
    // back by the offset gives the start of the `T`, which is not null.
    unsafe { NonNull::new_unchecked(links.cast::<u8>().sub(T::LINKS_OFFSET).cast()) }
}

fn memcg_ptr(memcg: Option<&MemCgroup>) -> *mut bindings::mem_cgroup {
    memcg.map_or(ptr::null_mut(), MemCgroup::as_raw)
}

/// A list_lru of `T`s, memcg-aware if its shrinker is.
///
/// # Invariants
///
/// `lru` is initialised with `__list_lru_init()` and destroyed only on drop.
/// Every item on it is a valid `T` whose links are those given by
/// [`LruItem`].
#[pin_data(PinnedDrop)]
pub struct ListLru<T: LruItem> {
    #[pin]
    lru: Opaque<bindings::list_lru>,
    _items: PhantomData<T>,
}

// SAFETY: The lru is protected by its own spinlocks; the items are accessed
// only as `&T` under those locks, which requires `T: Sync`, and may be
// handed to another thread by a walk, which requires `T: Send`.
unsafe impl<T: LruItem + Send + Sync> Send for ListLru<T> {}
// SAFETY: As above; all methods take `&self` and lock internally.
unsafe impl<T: LruItem + Send + Sync> Sync for ListLru<T> {}

impl<T: LruItem> ListLru<T> {
    /// Creates a list_lru for the items of `shrinker`. It is memcg-aware if
    /// the shrinker is, and then sets the shrinker's memcg bits when items
    /// are added.
    ///
    /// The lru records the shrinker's id, so it belongs in the shrinker's
    /// private data (see [`Shrinker::register`]), which is dropped only
    /// after the shrinker is freed.
    pub fn new(shrinker: &Shrinker) -> impl PinInit<Self, Error> {
        let memcg_aware = shrinker.is_memcg_aware();
        #[cfg(CONFIG_MEMCG)]
        let shrinker_id = shrinker.id();
        try_pin_init!(Self {
            // SAFETY: `__list_lru_init` initialises the lru in place; on
            // error it leaves nothing to clean up. Passing no shrinker and
            // setting the id afterwards is what `__list_lru_init` does with
            // a shrinker, without keeping a pointer to it in the
            // initialiser.
            lru <- unsafe {
                init::pin_init_from_closure(move |slot: *mut Opaque<bindings::list_lru>| {
                    let lru = Opaque::raw_get(slot);
                    to_result(bindings::__list_lru_init(
                        lru,
                        memcg_aware,
                        ptr::null_mut(),
                        ptr::null_mut(),
                    ))?;
                    #[cfg(CONFIG_MEMCG)]
                    {
                        (*lru).shrinker_id = shrinker_id;
                    }
                    Ok::<(), Error>(())
                })
            },
            _items: PhantomData,
        })
    }

    fn raw(&self) -> *mut bindings::list_lru {
        self.lru.get()
    }

    /// Returns the raw pointer to the `struct list_lru`, for C code that
    /// allocates the lru's objects with `kmem_cache_alloc_lru()`, which
    /// allocates the per-memcg lists on the way. It is valid as long as
    /// `self`.
    pub fn as_raw(&self) -> *mut bindings::list_lru {
        self.raw()
    }

    /// Makes sure the lists of `memcg` (and its ancestors) exist, so that
    /// items of that memcg can be added. A no-op for the root memcg, for an
    /// lru that is not memcg-aware, or when memcg is disabled.
    pub fn prepare_memcg(&self, memcg: &MemCgroup, gfp: Flags) -> Result {
        // SAFETY: By the type invariant, the lru is initialised; the memcg
        // is valid and referenced.
        to_result(unsafe {
            bindings::memcg_list_lru_prepare(memcg.as_raw(), self.raw(), gfp.as_raw())
        })
    }

    /// Adds `item` to the list of node `nid` and `memcg` (the root list for
    /// `None`). Returns `false` if it was already on a list.
    ///
    /// # Safety
    ///
    /// - `item` is a valid `T` that stays valid and pinned until it is
    ///   removed, by [`ListLru::del`] or by a walk;
    /// - the lists of `memcg` exist (see the module documentation);
    /// - `item` is on no list (its [`LruLinks`] point to themselves), or on
    ///   this lru with the same `nid` and `memcg`.
    pub unsafe fn add(&self, item: NonNull<T>, nid: i32, memcg: Option<&MemCgroup>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant.
        unsafe { bindings::list_lru_add(self.raw(), links_of(item), nid, memcg_ptr(memcg)) }
    }

    /// Adds `item`, a slab object, to the list of its own node and memcg.
    ///
    /// # Safety
    ///
    /// As for [`ListLru::add`], and `item` is a slab object (allocated with
    /// `kmalloc` or `kmem_cache_alloc`).
    pub unsafe fn add_obj(&self, item: NonNull<T>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant.
        unsafe { bindings::list_lru_add_obj(self.raw(), links_of(item)) }
    }

    /// Removes `item` from the list of node `nid` and `memcg`. Returns
    /// `false` if it was on no list.
    ///
    /// # Safety
    ///
    /// `item` is a valid `T` that is on no list or on this lru with the same
    /// `nid` and `memcg`.
    pub unsafe fn del(&self, item: NonNull<T>, nid: i32, memcg: Option<&MemCgroup>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant.
        unsafe { bindings::list_lru_del(self.raw(), links_of(item), nid, memcg_ptr(memcg)) }
    }

    /// Removes `item`, a slab object, from the list of its node and memcg.
    ///
    /// # Safety
    ///
    /// As for [`ListLru::add_obj`].
    pub unsafe fn del_obj(&self, item: NonNull<T>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant.
        unsafe { bindings::list_lru_del_obj(self.raw(), links_of(item)) }
    }

    /// The number of items on the list of node `nid` and `memcg`. O(1).
    pub fn count_one(&self, nid: i32, memcg: Option<&MemCgroup>) -> usize {
        // SAFETY: By the type invariant, the lru is initialised.
        unsafe { bindings::list_lru_count_one(self.raw(), nid, memcg_ptr(memcg)) }
    }

    /// The number of items of node `nid`, over all memcgs.
    pub fn count_node(&self, nid: i32) -> usize {
        // SAFETY: By the type invariant, the lru is initialised.
        unsafe { bindings::list_lru_count_node(self.raw(), nid) }
    }

    /// The count for a shrinker's `count_objects`: [`CountResult::Empty`]
    /// when the list of `sc`'s node and memcg is empty.
    pub fn count(&self, sc: &ShrinkControl) -> CountResult {
        match self.count_one(sc.nid(), sc.memcg()) {
            0 => CountResult::Empty,
            n => CountResult::Freeable(n),
        }
    }

    /// Walks the list of node `nid` and `memcg` from its oldest item,
    /// calling `isolate` for each until `*nr_to_walk` items were visited
    /// (it is decremented per item). Returns the number of items removed.
    pub fn walk_one<F>(
        &self,
        nid: i32,
        memcg: Option<&MemCgroup>,
        nr_to_walk: &mut usize,
        mut isolate: F,
    ) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        let mut nr = *nr_to_walk;
        // SAFETY: By the type invariant, the lru is initialised. The
        // callback gets `isolate` back as its argument, which lives on this
        // stack frame for the whole walk.
        let removed = unsafe {
            bindings::list_lru_walk_one(
                self.raw(),
                nid,
                memcg_ptr(memcg),
                Some(isolate_callback::<T, F>),
                (&mut isolate as *mut F).cast::<c_void>(),
                &mut nr,
            )
        };
        *nr_to_walk = nr;
        removed
    }

    /// Walks every list of node `nid`: the global one and those of all
    /// memcgs (for example, to empty the lru before dropping it).
    pub fn walk_node<F>(&self, nid: i32, nr_to_walk: &mut usize, mut isolate: F) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        // SAFETY: As in `walk_one`.
        unsafe {
            bindings::list_lru_walk_node(
                self.raw(),
                nid,
                Some(isolate_callback::<T, F>),
                (&mut isolate as *mut F).cast::<c_void>(),
                nr_to_walk,
            )
        }
    }

    /// Walks the list of `sc`'s node and memcg for a shrinker's
    /// `scan_objects`, visiting up to `sc.nr_to_scan()` items.
    pub fn walk<F>(&self, sc: &ShrinkControl, isolate: F) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        let mut nr = sc.nr_to_scan();
        self.walk_one(sc.nid(), sc.memcg(), &mut nr, isolate)
    }
}

#[pinned_drop]
impl<T: LruItem> PinnedDrop for ListLru<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant, the lru is initialised; it is not
        // used after this.
        unsafe { bindings::list_lru_destroy(self.raw()) };
    }
}

/// The isolate callback that [`ListLru::walk_one`] passes to
/// `list_lru_walk_one()`.
///
/// # Safety
///
/// Called by the lru walker only, with `lock` held, `links` on `list`, and
/// `arg` pointing to the walk's `F`.
unsafe extern "C" fn isolate_callback<T: LruItem, F>(
    links: *mut bindings::list_head,
    list: *mut bindings::list_lru_one,
    lock: *mut bindings::spinlock_t,
    arg: *mut c_void,
) -> bindings::lru_status
where
    F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
{
    // SAFETY: `walk_one` passes a pointer to its `F`, used only here.
    let isolate = unsafe { &mut *arg.cast::<F>() };
    // SAFETY: Every item on the lru is a `T` (type invariant of `ListLru`).
    let item = unsafe { item_of::<T>(links) };
    // INVARIANT: We are called by `list_lru_walk_one` with `lock` held and
    // `item` on `list`.
    isolate(Isolate {
        item,
        list,
        lock,
        _lt: PhantomData,
    })
    .status
}

/// The decision of an isolate callback (`enum lru_status`).
///
/// Only the methods of [`Isolate`] and [`Removed`] make one, and the
/// lifetime ties it to the item it was made for: a callback cannot return
/// the decision made for another item.
#[must_use]
pub struct Isolated<'a> {
    status: bindings::lru_status,
    _lt: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a> Isolated<'a> {
    fn new(status: bindings::lru_status) -> Self {
        Self {
            status,
            _lt: PhantomData,
        }
    }
}

/// One item under the isolate callback, with the list lock held.
///
/// # Invariants
///
/// `lock` is held, `item` is on `list`, and `list` is the lru list that
/// `lock` protects.
pub struct Isolate<'a, T: LruItem> {
    item: NonNull<T>,
    list: *mut bindings::list_lru_one,
    lock: *mut bindings::spinlock_t,
    _lt: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a, T: LruItem> Isolate<'a, T> {
    /// The item. It cannot be freed while the lock is held: its owner must
    /// remove it from the lru first, which takes the lock.
    pub fn item(&self) -> &T {
        // SAFETY: By the type invariant the item is on the list and the lock
        // is held, and items stay valid while on the list (`add`'s safety
        // contract).
        unsafe { self.item.as_ref() }
    }

    /// The item as a raw pointer, for C code that identifies it so.
    pub fn item_ptr(&self) -> NonNull<T> {
        self.item
    }

    /// Leaves the item where it is and moves on (`LRU_SKIP`).
    pub fn skip(self) -> Isolated<'a> {
        Isolated::new(bindings::lru_status_LRU_SKIP)
    }

    /// Moves the item to the young end of the list (`LRU_ROTATE`).
    pub fn rotate(self) -> Isolated<'a> {
        Isolated::new(bindings::lru_status_LRU_ROTATE)
    }

    /// Leaves the item and ends the walk (`LRU_STOP`).
    pub fn stop(self) -> Isolated<'a> {
        Isolated::new(bindings::lru_status_LRU_STOP)
    }

    /// Drops the lock for `f`, leaving the item on the list, then retakes it
    /// (`LRU_RETRY`: the walk restarts from the list's head). `f` gets the
    /// item as a raw pointer: once the lock is dropped, the item may be
    /// removed and freed by its owner.
    pub fn unlock_then<R>(self, f: impl FnOnce(NonNull<T>) -> R) -> (R, Isolated<'a>) {
        let r = with_unlocked(self.lock, || f(self.item));
        (r, Isolated::new(bindings::lru_status_LRU_RETRY))
    }

    /// Removes the item from the lru (`list_lru_isolate()`). The caller now
    /// owns the item's membership: the lru no longer refers to it.
    pub fn remove(self) -> Removed<'a, T> {
        // SAFETY: By the type invariant, the lock is held and the item is on
        // `list`.
        unsafe { bindings::list_lru_isolate(self.list, links_of(self.item)) };
        Removed {
            item: self.item,
            lock: self.lock,
            _lt: PhantomData,
        }
    }

    /// Removes the item from the lru and puts it on `dispose`, to be handled
    /// after the walk without the lru lock (`list_lru_isolate_move()`).
    pub fn remove_to(self, dispose: Pin<&mut DisposeList<T>>) -> Isolated<'a> {
        // SAFETY: By the type invariant, the lock is held and the item is on
        // `list`; `dispose` is an initialised, pinned list head.
        unsafe {
            bindings::list_lru_isolate_move(self.list, links_of(self.item), dispose.head.head.get())
        };
        Isolated::new(bindings::lru_status_LRU_REMOVED)
    }
}

/// An item just removed from the lru by [`Isolate::remove`], lock still held.
///
/// # Invariants
///
/// `lock` is held; `item` is on no lru list.
pub struct Removed<'a, T: LruItem> {
    item: NonNull<T>,
    lock: *mut bindings::spinlock_t,
    _lt: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a, T: LruItem> Removed<'a, T> {
    /// The removed item.
    pub fn item_ptr(&self) -> NonNull<T> {
        self.item
    }

    /// Reports the removal (`LRU_REMOVED`).
    pub fn done(self) -> Isolated<'a> {
        Isolated::new(bindings::lru_status_LRU_REMOVED)
    }

    /// Drops the lru lock for `f` (which may sleep, take other locks in
    /// their order, or free the item), then retakes it and reports
    /// `LRU_REMOVED_RETRY`: the walk restarts from the list's head, since
    /// the list may have changed meanwhile.
    pub fn unlock_then<R>(self, f: impl FnOnce(NonNull<T>) -> R) -> (R, Isolated<'a>) {
        let r = with_unlocked(self.lock, || f(self.item));
        (r, Isolated::new(bindings::lru_status_LRU_REMOVED_RETRY))
    }
}

/// Runs `f` with `lock` released, and retakes it.
fn with_unlocked<R>(lock: *mut bindings::spinlock_t, f: impl FnOnce() -> R) -> R {
    // SAFETY: The callers hold `lock` (their type invariants); it is
    // released here and retaken below before returning to the lru walker,
    // which expects it held.
    unsafe { bindings::spin_unlock(lock) };
    let r = f();
    // SAFETY: Retakes the lock released above.
    unsafe { bindings::spin_lock(lock) };
    r
}

/// A private list of items removed from a [`ListLru`] by
/// [`Isolate::remove_to`], to be processed after the walk.
///
/// # Invariants
///
/// `head` is an initialised list head, and every entry on it is the links of
/// a `T` that is on no lru.
#[pin_data(PinnedDrop)]
pub struct DisposeList<T: LruItem> {
    #[pin]
    head: LruLinks,
    _items: PhantomData<T>,
}

impl<T: LruItem> DisposeList<T> {
    /// An empty list.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            head <- LruLinks::new(),
            _items: PhantomData,
        })
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        let head = self.head.head.get();
        // SAFETY: By the type invariant, `head` is initialised.
        unsafe { (*head).next == head }
    }

    /// Takes the first item off the list.
    pub fn pop(self: Pin<&mut Self>) -> Option<NonNull<T>> {
        if self.is_empty() {
            return None;
        }
        let head = self.head.head.get();
        // SAFETY: By the type invariant, the list is well formed and its
        // first entry is the links of a `T`; unlinking it and pointing it to
        // itself is `list_del_init()`.
        unsafe {
            let entry = (*head).next;
            let next = (*entry).next;
            (*head).next = next;
            (*next).prev = head;
            (*entry).next = entry;
            (*entry).prev = entry;
            Some(item_of::<T>(entry))
        }
    }
}

#[pinned_drop]
impl<T: LruItem> PinnedDrop for DisposeList<T> {
    fn drop(mut self: Pin<&mut Self>) {
        // Items left here belong to nobody but their owner; unlink them so
        // that none points to this list head once it is gone.
        while self.as_mut().pop().is_some() {}
    }
}
