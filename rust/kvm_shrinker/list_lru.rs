// SPDX-License-Identifier: GPL-2.0

//! Memcg-aware, NUMA-aware LRU lists of objects (`struct list_lru`).
//!
//! C header: [`include/linux/list_lru.h`](srctree/include/linux/list_lru.h).
//!
//! A [`ListLru`] keeps one list per possible NUMA node and, if its shrinker
//! is memcg-aware, one per node and memcg. Items embed a `struct list_head`
//! (see [`LruItem`]) and are added to the list of the node and memcg their
//! memory belongs to, so that a shrinker asked to reclaim from one memcg and
//! node counts and walks exactly those items. Nodes are [`NodeId`]s: only
//! the lists of possible nodes exist.
//!
//! # Per-memcg lists
//!
//! The lists of a memcg are allocated on demand: `list_lru_add()` for a
//! memcg whose lists were never allocated files the item under an
//! ancestor, with a warning. They are allocated by `kmem_cache_alloc_lru()`
//! when an object is allocated for this lru, or explicitly with
//! [`ListLru::prepare_memcg`]. Adding an item is therefore `unsafe`: the
//! caller promises that one of the two happened for the item's memcg.
//!
//! # Memcg offline
//!
//! When a memcg goes offline, `memcg_reparent_list_lrus()` splices its
//! lists into its parent's and sets the parent's shrinker bit. The items
//! stay on the lru and remain reclaimable, now on behalf of the parent;
//! `count` and `walk` for the dead memcg find nothing.
//!
//! # Ownership of items
//!
//! An item is on one list of the lru or on none. Its owner adds it
//! ([`ListLru::add`]) and may take it off again ([`ListLru::del`], which
//! returns whether it was on the lru). A walk may take it off too
//! ([`Isolate::remove`], [`Isolate::remove_into`]): `list_lru_isolate()`
//! unlinks it and leaves it on *no* list, so a later `del` returns `false`
//! and changes no count. From then on the lru never touches the item again,
//! and what happens to it is a matter between the walker and the owner, for
//! example "whoever takes an item off the lru frees it". The walker only
//! gets the item as a raw pointer, and needs `unsafe` and that protocol to
//! use it.
//!
//! # Locking
//!
//! Each list (of one node and memcg) has its own spinlock, which `add`,
//! `del` and walks take. Each lru has its own lockdep class (the key given to
//! [`ListLru::new`]), so that the lock nesting of one user does not make
//! lockdep report another's. The isolate callback of a walk runs with the
//! lock held. Lock order: any lock taken around `add`/`del` (for example a
//! subsystem's own lock) comes before the lru lock, so the isolate callback
//! may only *try* to take such locks. The callback decides for one item at
//! a time ([`Isolate`]):
//!
//! - leave it ([`Isolate::skip`]), move it to the young end
//!   ([`Isolate::rotate`]), or end the walk ([`Isolate::stop`]);
//! - take it off the lru and put it into a [`Batch`]
//!   ([`Isolate::remove_into`]), to work on the batch after the walk, with
//!   the lru lock released: this is how a shrinker frees items. Walks in
//!   batches of a bounded size (`nr_to_walk` at most the batch's capacity)
//!   also bound the time the lock is held; call [`cond_resched`] between
//!   them;
//! - take it off the lru ([`Isolate::remove`]) and either report that
//!   ([`Removed::done`]) or drop the lock for a closure that may sleep or
//!   take other locks in their order ([`Removed::unlock_then`]), like
//!   `shadow_lru_isolate()` in mm/workingset.c;
//! - drop the lock for a closure without removing the item
//!   ([`Isolate::unlock_then`]).
//!
//! After a closure that dropped the lock the walk goes on with the lock
//! retaken, from the list's head, since the list may have changed
//! meanwhile. The lock state that the C walker expects after each decision
//! is the business of this module alone.

use crate::memcg::MemCgroup;
use crate::node::NodeId;
use crate::shrinker::{CountResult, ShrinkControl, Shrinker};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use kernel::alloc::Flags;
use kernel::bindings;
use kernel::error::{to_result, Error, Result};
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::LockClassKey;
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
    // The address of the links, computed without dereferencing anything:
    // `item` may be any pointer here, and only callers of unsafe functions
    // promise that it points to a `T`.
    item.as_ptr()
        .cast::<u8>()
        .wrapping_add(T::LINKS_OFFSET)
        .cast()
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

/// Calls the kernel's `cond_resched()`: lets another task run if this one
/// has used up its time slice. For loops that walk an lru in batches, between
/// two batches (never inside an isolate callback, which holds a spinlock).
pub fn cond_resched() {
    // SAFETY: `cond_resched()` has no precondition for memory safety. Like
    // any function that may sleep (`Mutex::lock()`, say), calling it in
    // atomic context is a bug, which `might_sleep()` reports.
    unsafe { bindings::cond_resched() };
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
    /// Creates a list_lru for the items of `shrinker`, whose locks are in
    /// the lockdep class `key` (give each lru its own, with
    /// `kernel::static_lock_class!()`).
    ///
    /// The lru is memcg-aware if the shrinker is, and then sets the
    /// shrinker's bit in a memcg's shrinker map when an item is added there.
    /// `__list_lru_init()` only reads the shrinker's id: the lru belongs in
    /// the shrinker's private data (see [`Shrinker::register`]), which is
    /// dropped after the shrinker is freed, so that the id is not reused
    /// meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::prelude::*;
    /// use kvm_shrinker::list_lru::{ListLru, LruItem, LruLinks};
    /// use kvm_shrinker::shrinker::{
    ///     CountResult, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags,
    /// };
    ///
    /// #[pin_data]
    /// struct Item {
    ///     #[pin]
    ///     links: LruLinks,
    /// }
    ///
    /// // SAFETY: `links` is used for this lru only.
    /// unsafe impl LruItem for Item {
    ///     const LINKS_OFFSET: usize = core::mem::offset_of!(Item, links);
    /// }
    ///
    /// #[pin_data]
    /// struct Cache {
    ///     #[pin]
    ///     lru: ListLru<Item>,
    /// }
    ///
    /// impl Shrink for Cache {
    ///     fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
    ///         self.lru.count(sc)
    ///     }
    ///     fn scan_objects(&self, _sc: &ShrinkControl) -> ScanResult {
    ///         ScanResult::Stop
    ///     }
    /// }
    ///
    /// let shrinker = Shrinker::new(
    ///     kernel::c_str!("example"),
    ///     ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE,
    /// )?;
    /// let _reg = shrinker.register(|s| {
    ///     KBox::pin_init(
    ///         try_pin_init!(Cache {
    ///             lru <- ListLru::new(s, kernel::static_lock_class!()),
    ///         }),
    ///         GFP_KERNEL,
    ///     )
    /// })?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new<'a>(
        shrinker: &'a Shrinker,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self, Error> + 'a
    where
        T: 'a,
    {
        try_pin_init!(Self {
            // SAFETY: `list_lru_init_key` (`__list_lru_init()`) initialises
            // the lru in place, and on error leaves nothing to clean up. It
            // reads the shrinker's id, and the shrinker is alive: the
            // initialiser borrows it. `key` is static, as lockdep requires.
            // `Opaque<T>` is `repr(transparent)` over a `T`.
            lru <- unsafe {
                pin_init::pin_init_from_closure(move |slot: *mut Opaque<bindings::list_lru>| {
                    let memcg_aware = shrinker.is_memcg_aware();
                    // Without memcg lists no shrinker bit is ever set: no
                    // shrinker then (id -1), as `list_lru_init()` does.
                    let shrinker = if memcg_aware {
                        shrinker.as_raw()
                    } else {
                        ptr::null_mut()
                    };
                    to_result(bindings::list_lru_init_key(
                        slot.cast(),
                        memcg_aware,
                        shrinker,
                        key.as_ptr(),
                    ))
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

    /// Adds `item` to the list of node `nid` and `memcg` (the node's global
    /// list for `None` and for the root memcg). Returns `false`, and does
    /// nothing, if it was already on a list of this lru.
    ///
    /// # Safety
    ///
    /// - `item` is a valid `T` that stays valid and pinned while it is on
    ///   the lru, that is until [`ListLru::del`] takes it off or a walk
    ///   removes it ([`Isolate::remove`], [`Isolate::remove_into`]); the lru
    ///   does not touch it afterwards;
    /// - the lists of `memcg` exist (see the module documentation);
    /// - `item` is on no list (its [`LruLinks`] point to themselves, as
    ///   after [`LruLinks::new`] or a removal by a walk), or on this lru
    ///   with the same `nid` and `memcg`.
    pub unsafe fn add(&self, item: NonNull<T>, nid: NodeId, memcg: Option<&MemCgroup>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant; `nid`
        // is a possible node, whose lists are initialised.
        unsafe {
            bindings::list_lru_add(self.raw(), links_of(item), nid.as_raw(), memcg_ptr(memcg))
        }
    }

    /// Adds `item`, a slab object, to the list of its own node and memcg.
    ///
    /// # Safety
    ///
    /// As for [`ListLru::add`], and `item` is a slab object (allocated with
    /// `kmalloc` or `kmem_cache_alloc`).
    pub unsafe fn add_obj(&self, item: NonNull<T>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant. The
        // node of a slab object's memory is online, hence possible.
        unsafe { bindings::list_lru_add_obj(self.raw(), links_of(item)) }
    }

    /// Adds `item`, which lives in the `struct page` of `page` (its `lru`
    /// field, for example), to the list of the page's node and of the memcg
    /// the page is charged to (the node's global list for an uncharged page).
    /// Looks the memcg up under RCU, without a reference, and allocates its
    /// lists without sleeping if they do not exist yet: call
    /// [`ListLru::prepare_memcg`] beforehand, where sleeping is allowed, to
    /// make that rare. Returns `false`, and does nothing, if the lists could
    /// not be allocated or `item` was already on a list of this lru.
    ///
    /// # Safety
    ///
    /// - `page` points to the `struct page` of an allocated page;
    /// - `item` is a valid `T` in that `struct page`, and stays valid and
    ///   pinned, with the page allocated, while it is on the lru (as for
    ///   [`ListLru::add`]);
    /// - `item` is on no list, or on this lru as added by this method.
    pub unsafe fn add_page(&self, item: NonNull<T>, page: *mut bindings::page) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant; the
        // node of an allocated page is online, hence possible.
        unsafe { bindings::list_lru_add_page(self.raw(), links_of(item), page) }
    }

    /// Takes `item`, added by [`ListLru::add_page`], off its list. Returns
    /// `false`, and changes no count, if it was on no list.
    ///
    /// # Safety
    ///
    /// `page` points to the `struct page` of an allocated page, `item` is a
    /// valid `T` in it, and `item` is on no list or on this lru as added by
    /// [`ListLru::add_page`] for `page`.
    pub unsafe fn del_page(&self, item: NonNull<T>, page: *mut bindings::page) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant; the
        // item is filed under the page's node and (current) memcg, which is
        // where reparenting moves it.
        unsafe { bindings::list_lru_del_page(self.raw(), links_of(item), page) }
    }

    /// Takes `item` off the list of node `nid` and `memcg`. Returns `false`,
    /// and changes no count, if it was on no list: never added, already
    /// deleted, or removed by a walk.
    ///
    /// # Safety
    ///
    /// `item` is a valid `T` that is on no list, or on this lru with the same
    /// `nid` and `memcg`.
    pub unsafe fn del(&self, item: NonNull<T>, nid: NodeId, memcg: Option<&MemCgroup>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant; `nid`
        // is a possible node.
        unsafe {
            bindings::list_lru_del(self.raw(), links_of(item), nid.as_raw(), memcg_ptr(memcg))
        }
    }

    /// Takes `item`, a slab object, off the list of its node and memcg.
    ///
    /// # Safety
    ///
    /// As for [`ListLru::del`], and `item` is a slab object.
    pub unsafe fn del_obj(&self, item: NonNull<T>) -> bool {
        // SAFETY: By the caller's guarantees and the type invariant.
        unsafe { bindings::list_lru_del_obj(self.raw(), links_of(item)) }
    }

    /// The number of items on the list of node `nid` and `memcg`. O(1).
    pub fn count_one(&self, nid: NodeId, memcg: Option<&MemCgroup>) -> usize {
        // SAFETY: By the type invariant, the lru is initialised, and `nid`
        // is a possible node, whose lists are.
        unsafe { bindings::list_lru_count_one(self.raw(), nid.as_raw(), memcg_ptr(memcg)) }
    }

    /// The number of items of node `nid`, over all memcgs.
    pub fn count_node(&self, nid: NodeId) -> usize {
        // SAFETY: As in `count_one`.
        unsafe { bindings::list_lru_count_node(self.raw(), nid.as_raw()) }
    }

    /// The count for a shrinker's `count_objects`: [`CountResult::Empty`]
    /// when the list of `sc`'s node and memcg is empty, or when `sc` names
    /// a node that is not possible (see [`ShrinkControl::nid`]).
    pub fn count(&self, sc: &ShrinkControl) -> CountResult {
        let Some(nid) = sc.nid() else {
            return CountResult::Empty;
        };
        match self.count_one(nid, sc.memcg()) {
            0 => CountResult::Empty,
            n => CountResult::Freeable(n),
        }
    }

    /// Walks the list of node `nid` and `memcg` from its oldest item,
    /// calling `isolate` for each until `*nr_to_walk` items were visited
    /// (it is decremented per item) or the callback stops the walk. Returns
    /// the number of items removed.
    ///
    /// `isolate` runs under the list's spinlock, outside the closures of
    /// [`Isolate::unlock_then`] and [`Removed::unlock_then`]: it must not
    /// sleep (no `cond_resched()`, no allocation that may sleep) and must
    /// not walk, add to or delete from this lru, whose lock it would take
    /// again. (The type system does not check this; lockdep does.)
    pub fn walk_one<F>(
        &self,
        nid: NodeId,
        memcg: Option<&MemCgroup>,
        nr_to_walk: &mut usize,
        mut isolate: F,
    ) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        let mut nr = *nr_to_walk;
        // SAFETY: By the type invariant, the lru is initialised, and `nid`
        // is a possible node. The callback gets `isolate` back as its
        // argument, which lives on this stack frame for the whole walk.
        let removed = unsafe {
            bindings::list_lru_walk_one(
                self.raw(),
                nid.as_raw(),
                memcg_ptr(memcg),
                Some(isolate_callback::<T, F>),
                ptr::from_mut(&mut isolate).cast::<c_void>(),
                &mut nr,
            )
        };
        *nr_to_walk = nr;
        removed
    }

    /// Walks every list of node `nid`: the global one and those of all
    /// memcgs (for example, to empty the lru before dropping it).
    pub fn walk_node<F>(&self, nid: NodeId, nr_to_walk: &mut usize, mut isolate: F) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        // SAFETY: As in `walk_one`.
        unsafe {
            bindings::list_lru_walk_node(
                self.raw(),
                nid.as_raw(),
                Some(isolate_callback::<T, F>),
                ptr::from_mut(&mut isolate).cast::<c_void>(),
                nr_to_walk,
            )
        }
    }

    /// Walks the list of `sc`'s node and memcg for a shrinker's
    /// `scan_objects`, visiting up to `sc.nr_to_scan()` items. Walks
    /// nothing, and returns 0, when `sc` names a node that is not possible.
    ///
    /// `nr_to_scan` is the core's batch (128 objects by default), but a user
    /// of shrinker_debugfs `scan` may ask for any number: a shrinker that
    /// holds the lock for each item's work should rather walk in bounded
    /// batches, with [`ListLru::walk_one`].
    pub fn walk<F>(&self, sc: &ShrinkControl, isolate: F) -> usize
    where
        F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
    {
        let Some(nid) = sc.nid() else {
            return 0;
        };
        let mut nr = sc.nr_to_scan();
        self.walk_one(nid, sc.memcg(), &mut nr, isolate)
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

// The decisions of an isolate callback (`enum lru_status`).
const LRU_REMOVED: bindings::lru_status = bindings::lru_status::LRU_REMOVED;
const LRU_REMOVED_RETRY: bindings::lru_status = bindings::lru_status::LRU_REMOVED_RETRY;
const LRU_ROTATE: bindings::lru_status = bindings::lru_status::LRU_ROTATE;
const LRU_SKIP: bindings::lru_status = bindings::lru_status::LRU_SKIP;
const LRU_RETRY: bindings::lru_status = bindings::lru_status::LRU_RETRY;
const LRU_STOP: bindings::lru_status = bindings::lru_status::LRU_STOP;

/// The isolate callback that [`ListLru::walk_one`] passes to
/// `list_lru_walk_one()`.
///
/// # Safety
///
/// Called by the lru walker only, with `list`'s lock held, `links` on
/// `list`, and `arg` pointing to the walk's `F`.
unsafe extern "C" fn isolate_callback<T: LruItem, F>(
    links: *mut bindings::list_head,
    list: *mut bindings::list_lru_one,
    arg: *mut c_void,
) -> bindings::lru_status
where
    F: for<'a> FnMut(Isolate<'a, T>) -> Isolated<'a>,
{
    // SAFETY: The walker passes a valid list; this only computes the
    // address of its lock.
    let lock = unsafe { &raw mut (*list).lock };
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
    /// take it off the lru first, which takes the lock.
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
        Isolated::new(LRU_SKIP)
    }

    /// Moves the item to the young end of the list (`LRU_ROTATE`).
    pub fn rotate(self) -> Isolated<'a> {
        Isolated::new(LRU_ROTATE)
    }

    /// Leaves the item and ends the walk (`LRU_STOP`).
    pub fn stop(self) -> Isolated<'a> {
        stop_walk(self.lock)
    }

    /// Drops the lock for `f`, leaving the item on the list, then retakes it
    /// (`LRU_RETRY`: the walk restarts from the list's head). `f` gets the
    /// item as a raw pointer: once the lock is dropped, the item may be
    /// taken off the lru and freed by its owner.
    pub fn unlock_then<R>(self, f: impl FnOnce(NonNull<T>) -> R) -> (R, Isolated<'a>) {
        unlock_then_retry(self.lock, || f(self.item), LRU_RETRY)
    }

    /// Takes the item off the lru (`list_lru_isolate()`): it is then on no
    /// list, and the lru never touches it again. A later [`ListLru::del`]
    /// of it returns `false`.
    pub fn remove(self) -> Removed<'a, T> {
        // SAFETY: By the type invariant, the lock is held and the item is on
        // `list`.
        unsafe { bindings::list_lru_isolate(self.list, links_of(self.item)) };
        // INVARIANT: The lock is still held; the item is on no list now.
        Removed {
            item: self.item,
            lock: self.lock,
            _lt: PhantomData,
        }
    }

    /// Takes the item off the lru, as [`Isolate::remove`] does, and puts it
    /// into `batch`, to be worked on after the walk (`LRU_REMOVED`). If the
    /// batch is full, leaves the item on the lru and ends the walk instead
    /// (`LRU_STOP`).
    pub fn remove_into<const N: usize>(self, batch: &mut Batch<T, N>) -> Isolated<'a> {
        let Some(slot) = batch.items.get_mut(batch.len) else {
            return self.stop();
        };
        let removed = self.remove();
        *slot = removed.item;
        // INVARIANT: `slot` was the first free one; it holds an item that
        // was just taken off an lru.
        batch.len += 1;
        removed.done()
    }
}

/// An item just taken off the lru by [`Isolate::remove`], lock still held.
///
/// # Invariants
///
/// `lock` is held; `item` is on no list.
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
        Isolated::new(LRU_REMOVED)
    }

    /// Drops the lru lock for `f` (which may sleep, take other locks in
    /// their order, or free the item), then retakes it and reports
    /// `LRU_REMOVED_RETRY`: the walk restarts from the list's head, since
    /// the list may have changed meanwhile.
    pub fn unlock_then<R>(self, f: impl FnOnce(NonNull<T>) -> R) -> (R, Isolated<'a>) {
        unlock_then_retry(self.lock, || f(self.item), LRU_REMOVED_RETRY)
    }
}

// What the lru walker expects of the list lock after each decision: the
// callback is called with the lock held, and `list_lru_walk_one()` expects
// it released after `LRU_RETRY`, `LRU_REMOVED_RETRY` and `LRU_STOP` (it
// relocks to restart, and returns without unlocking after a stop), held
// after any other decision. These two functions are the only ones that
// change the lock's state.

/// Ends the walk (`LRU_STOP`), with the lock as the walker expects it:
/// released.
fn stop_walk<'a>(lock: *mut bindings::spinlock_t) -> Isolated<'a> {
    // SAFETY: The callers hold `lock` (their type invariants), and return
    // `LRU_STOP` to the walker, which does not touch it again.
    unsafe { bindings::spin_unlock(lock) };
    Isolated::new(LRU_STOP)
}

/// Runs `f` with `lock` released, then reports `status` (`LRU_RETRY` or
/// `LRU_REMOVED_RETRY`: the walk restarts from the list's head), with the
/// lock as the walker expects it: released (the walker relocks).
fn unlock_then_retry<'a, R>(
    lock: *mut bindings::spinlock_t,
    f: impl FnOnce() -> R,
    status: bindings::lru_status,
) -> (R, Isolated<'a>) {
    // SAFETY: The callers hold `lock` (their type invariants), and return
    // `status` to the walker, which retakes it.
    unsafe { bindings::spin_unlock(lock) };
    (f(), Isolated::new(status))
}

/// Up to `N` items taken off a [`ListLru`] by [`Isolate::remove_into`], to
/// be worked on after the walk, without the lru lock.
///
/// A batch holds raw pointers only: the lru no longer refers to these items
/// and writes nothing to them, and whether they are still valid is up to
/// the protocol between the walker and the items' owner (for example "the
/// walker frees what it removes"). Using one needs `unsafe` and that
/// protocol. A batch dropped with items in it forgets them.
///
/// Walks that fill a batch visit at most its capacity (`nr_to_walk` =
/// [`Batch::CAPACITY`]); the walk stops if it is full anyway.
///
/// # Invariants
///
/// `len <= N`, and the first `len` entries of `items` are items that a walk
/// took off a `ListLru<T>`.
///
/// # Examples
///
/// ```
/// use kvm_shrinker::list_lru::{Batch, LruItem, LruLinks};
///
/// struct Item {
///     links: LruLinks,
/// }
///
/// // SAFETY: `links` is used for one lru only.
/// unsafe impl LruItem for Item {
///     const LINKS_OFFSET: usize = core::mem::offset_of!(Item, links);
/// }
///
/// let mut batch = Batch::<Item, 16>::new();
/// assert!(batch.is_empty() && !batch.is_full());
/// assert_eq!(Batch::<Item, 16>::CAPACITY, 16);
/// assert_eq!(batch.drain().count(), 0);
/// ```
pub struct Batch<T: LruItem, const N: usize> {
    items: [NonNull<T>; N],
    len: usize,
}

impl<T: LruItem, const N: usize> Batch<T, N> {
    /// How many items the batch holds at most.
    pub const CAPACITY: usize = N;

    /// An empty batch.
    pub fn new() -> Self {
        // INVARIANT: No item yet.
        Self {
            items: [NonNull::dangling(); N],
            len: 0,
        }
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch has no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch has `N` items.
    pub fn is_full(&self) -> bool {
        self.len >= N
    }

    /// The items, in the order the walk removed them.
    pub fn as_slice(&self) -> &[NonNull<T>] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// Takes the most recently removed item out of the batch.
    pub fn pop(&mut self) -> Option<NonNull<T>> {
        let last = self.len.checked_sub(1)?;
        let item = self.items.get(last).copied();
        self.len = last;
        item
    }

    /// Empties the batch, returning its items in the order the walk removed
    /// them.
    pub fn drain(&mut self) -> impl Iterator<Item = NonNull<T>> {
        let len = core::mem::take(&mut self.len);
        self.items.into_iter().take(len)
    }
}

impl<T: LruItem, const N: usize> Default for Batch<T, N> {
    fn default() -> Self {
        Self::new()
    }
}
