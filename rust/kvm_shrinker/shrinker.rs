// SPDX-License-Identifier: GPL-2.0

//! Shrinkers: allocation, registration and the callbacks' context and results.
//!
//! C header: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h).
//!
//! A shrinker is set up in two steps, as in C: [`Shrinker::new`] allocates
//! it (`shrinker_alloc()`), which for a memcg-aware shrinker assigns the id
//! that list_lrus need; [`Shrinker::register`] then builds the private data
//! (which may contain a [`crate::list_lru::ListLru`] tied to the shrinker)
//! and registers it (`shrinker_register()`). The returned [`Registration`]
//! owns both. Dropping it calls `shrinker_free()`, which unregisters the
//! shrinker and waits for running callbacks to finish, and only then drops
//! the private data: a callback can never see freed data.
//!
//! # Reclaim context
//!
//! The shrinker core calls `count_objects` and then `scan_objects` with a
//! [`ShrinkControl`] naming a NUMA node and a memcg:
//!
//! - global reclaim (kswapd, direct reclaim outside any memcg limit,
//!   `drop_caches`) goes over each node it reclaims and over every memcg,
//!   from the root down: every shrinker is called with the root memcg, and
//!   memcg-aware shrinkers also with each other memcg whose bit for this
//!   shrinker and node is set (list_lrus set it when an item is added);
//! - memcg reclaim (`memory.max`, `memory.high`, `memory.reclaim`) goes
//!   over the memcg under pressure and its descendants, and calls only
//!   memcg-aware shrinkers, for the memcgs whose bit is set;
//! - shrinker_debugfs (`CONFIG_SHRINKER_DEBUG`) calls them with the memcg
//!   and node a user names in its `count` and `scan` files.
//!
//! With memcg disabled at boot (`cgroup_disable=memory`) or compiled out,
//! there is no memcg at all and every call gets `None`; see
//! [`ShrinkControl::nid`] and [`ShrinkControl::memcg`] for the details.
//!
//! # Results
//!
//! The C API encodes special cases as reserved return values: a count of
//! `SHRINK_EMPTY` means "no objects at all" and lets memcg reclaim clear the
//! shrinker's bit for that memcg, a count of 0 means "nothing to free right
//! now", and a scan result of `SHRINK_STOP` means "cannot make progress in
//! this context". [`CountResult`] and [`ScanResult`] keep those cases apart,
//! so that a shrinker cannot return one of them by accident (say, a count
//! that happens to equal `SHRINK_EMPTY`). Counts are clamped to `LONG_MAX`,
//! since the core keeps them in a `long`.

use crate::memcg::MemCgroup;
use crate::node::NodeId;
use core::mem::ManuallyDrop;
use core::ops::{BitOr, Deref};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::KBox;
use kernel::bindings;
use kernel::c_str;
use kernel::error::{
    code::{EBUSY, ENOMEM},
    Result,
};
use kernel::ffi::{c_int, c_long, c_ulong, c_void};
use kernel::str::{CStr, CStrExt as _};
use kernel::types::Opaque;

// bindgen turns the macros `(~0UL)` and `(~0UL - 1)` into `i32` constants -1
// and -2; sign extension gives back the C values, as the assertion checks.
const SHRINK_STOP: c_ulong = bindings::SHRINK_STOP as c_ulong;
const SHRINK_EMPTY: c_ulong = bindings::SHRINK_EMPTY as c_ulong;
const _: () = assert!(SHRINK_STOP == c_ulong::MAX && SHRINK_EMPTY == c_ulong::MAX - 1);

/// What a shrinker's `count_objects` callback reports for one memcg and node.
///
/// # Examples
///
/// ```
/// use kvm_shrinker::shrinker::CountResult;
///
/// assert_eq!(CountResult::Freeable(3).to_raw(), 3);
/// assert_eq!(CountResult::Unknown.to_raw(), 0);
/// assert_ne!(CountResult::Empty.to_raw(), 0);
/// // A huge count is clamped to `LONG_MAX`, which the core's `long` holds,
/// // and so never turns into one of the reserved values.
/// assert_eq!(CountResult::Freeable(usize::MAX).to_raw(), isize::MAX as usize);
/// assert!(CountResult::Freeable(usize::MAX).to_raw() < CountResult::Empty.to_raw());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountResult {
    /// There are no objects at all. Reported as `SHRINK_EMPTY`: memcg reclaim
    /// then clears this shrinker's bit for the memcg and does not call it
    /// again for that memcg until an object is added.
    Empty,
    /// The number of objects cannot be told now (for example, a lock could
    /// not be taken without blocking). Reported as 0, which skips this round
    /// but keeps the shrinker's memcg bit set.
    Unknown,
    /// This many objects exist and could be freed by a scan; 0 means objects
    /// exist but none can be freed now.
    Freeable(usize),
}

impl CountResult {
    /// The value to return to the C shrinker core.
    pub fn to_raw(self) -> c_ulong {
        match self {
            CountResult::Empty => SHRINK_EMPTY,
            CountResult::Unknown => 0,
            CountResult::Freeable(n) => clamp_count(n),
        }
    }
}

/// What a shrinker's `scan_objects` callback reports.
///
/// # Examples
///
/// ```
/// use kvm_shrinker::shrinker::ScanResult;
///
/// assert_eq!(ScanResult::Freed(7).to_raw(), 7);
/// assert_eq!(ScanResult::Freed(usize::MAX).to_raw(), isize::MAX as usize);
/// assert!(ScanResult::Freed(usize::MAX).to_raw() < ScanResult::Stop.to_raw());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanResult {
    /// This many objects were freed.
    Freed(usize),
    /// No progress is possible in this reclaim context (for example, the
    /// allocation that entered reclaim holds a lock the shrinker needs, or
    /// its gfp mask forbids the work). Reported as `SHRINK_STOP`, which ends
    /// this shrinker's part of the current reclaim pass.
    Stop,
}

impl ScanResult {
    /// The value to return to the C shrinker core.
    pub fn to_raw(self) -> c_ulong {
        match self {
            ScanResult::Freed(n) => clamp_count(n),
            ScanResult::Stop => SHRINK_STOP,
        }
    }
}

/// The largest count the shrinker core can take: `do_shrink_slab()` keeps
/// counts in a `long`, where anything above `LONG_MAX` would be negative.
const COUNT_MAX: c_ulong = c_long::MAX as c_ulong;
const _: () = assert!(COUNT_MAX < SHRINK_EMPTY && COUNT_MAX < SHRINK_STOP);

/// Clamps a count to `LONG_MAX`, which also keeps it below the reserved
/// values `SHRINK_EMPTY` and `SHRINK_STOP`.
fn clamp_count(n: usize) -> c_ulong {
    // The kernel's `c_ulong` is `usize`.
    n.min(COUNT_MAX)
}

/// The reclaim context of one shrinker callback (`struct shrink_control`).
///
/// # Invariants
///
/// `self.0` is a valid `shrink_control` that only the current thread
/// accesses while the reference exists. If its `memcg` is not null, a
/// reference on that memcg is held for as long.
#[repr(transparent)]
pub struct ShrinkControl(Opaque<bindings::shrink_control>);

impl ShrinkControl {
    /// Borrows a shrink control from a raw pointer.
    ///
    /// # Safety
    ///
    /// For all of `'a`, `ptr` must be valid for reads and writes and not be
    /// accessed by anything but the returned reference, and its `memcg`
    /// must be null or a memcg on which a reference is held.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::shrink_control) -> &'a ShrinkControl {
        // SAFETY: `ShrinkControl` is a transparent wrapper of
        // `shrink_control`; the caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer to the `struct shrink_control`.
    pub fn as_raw(&self) -> *mut bindings::shrink_control {
        self.0.get()
    }

    fn raw(&self) -> bindings::shrink_control {
        // SAFETY: By the type invariant, the pointer is valid and nobody
        // else accesses it; `shrink_control` is plain data.
        unsafe { self.0.get().read() }
    }

    /// The NUMA node to count or reclaim objects of, or `None` if the core
    /// passed a node that is not possible.
    ///
    /// Where the node id comes from:
    ///
    /// - reclaim and `drop_caches` pass the node being reclaimed, an online
    ///   node. They pass it to shrinkers that are not NUMA-aware
    ///   ([`ShrinkerFlags::NUMA_AWARE`]) too: the core only keeps their
    ///   deferred work under node 0, and calls them once per node;
    /// - shrinker_debugfs `count` asks NUMA-aware shrinkers about every
    ///   possible node, and the others about node 0;
    /// - shrinker_debugfs `scan` passes the number a user wrote, which the
    ///   core only checks to be below `nr_node_ids`. In a sparse node map
    ///   (nodes 0 and 2, say) that can be a node that is not possible and
    ///   has no per-node structures at all: this returns `None` then, and
    ///   there is nothing to count or scan.
    pub fn nid(&self) -> Option<NodeId> {
        NodeId::new(self.raw().nid)
    }

    /// How many objects the shrinker core asks this call to scan.
    pub fn nr_to_scan(&self) -> usize {
        self.raw().nr_to_scan
    }

    /// How many objects this call has reported as scanned so far.
    pub fn nr_scanned(&self) -> usize {
        self.raw().nr_scanned
    }

    /// Reports how many objects this call scanned.
    ///
    /// The shrinker core credits this number (instead of `nr_to_scan`)
    /// against its scan target. It is not clamped to `nr_to_scan`: a
    /// shrinker that had to look at more objects than it was asked to (for
    /// example, to skip pages in use) reports the real work.
    ///
    /// Do not report 0: the core would call again with the same target,
    /// for ever if the list stays empty. A shrinker that found nothing to
    /// scan returns [`ScanResult::Stop`] instead.
    pub fn set_nr_scanned(&self, nr: usize) {
        // SAFETY: By the type invariant, the pointer is valid for writes and
        // only this thread accesses it.
        unsafe { (*self.0.get()).nr_scanned = nr };
    }

    /// The memcg to count or reclaim objects of.
    ///
    /// Global reclaim (kswapd, direct reclaim outside a memcg limit,
    /// `drop_caches`) passes the root memcg to every shrinker, and each
    /// other memcg with objects to memcg-aware ones; memcg reclaim passes
    /// the memcgs under pressure to memcg-aware shrinkers; shrinker_debugfs
    /// passes the memcg whose inode number the user gave to memcg-aware
    /// shrinkers.
    ///
    /// `None` when memcg is disabled at boot (`cgroup_disable=memory`) or
    /// compiled out (`CONFIG_MEMCG=n`), and from shrinker_debugfs for a
    /// shrinker that is not memcg-aware. For a
    /// [`crate::list_lru::ListLru`], `None` and the root memcg both name the
    /// node's global list.
    pub fn memcg(&self) -> Option<&MemCgroup> {
        let memcg = self.raw().memcg;
        if memcg.is_null() {
            return None;
        }
        // SAFETY: By the type invariant, a reference on the memcg is held
        // for as long as `self` is borrowed.
        Some(unsafe { MemCgroup::from_raw(memcg) })
    }

    /// The gfp mask of the allocation that entered reclaim.
    pub fn gfp_mask(&self) -> bindings::gfp_t {
        self.raw().gfp_mask
    }

    /// Whether the allocation allows calls into filesystems (`__GFP_FS`).
    pub fn fs_allowed(&self) -> bool {
        self.gfp_mask() & bindings::__GFP_FS != 0
    }

    /// Whether the allocation allows starting I/O (`__GFP_IO`).
    pub fn io_allowed(&self) -> bool {
        self.gfp_mask() & bindings::__GFP_IO != 0
    }

    /// Whether the allocation may sleep in direct reclaim
    /// (`__GFP_DIRECT_RECLAIM`).
    pub fn may_sleep(&self) -> bool {
        self.gfp_mask() & bindings::__GFP_DIRECT_RECLAIM != 0
    }
}

/// Flags for [`Shrinker::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkerFlags(u32);

impl ShrinkerFlags {
    /// No flags: a shrinker called in global reclaim only, once per node
    /// reclaimed (see [`ShrinkControl::nid`]).
    pub const NONE: Self = Self(0);
    /// Called per NUMA node (`SHRINKER_NUMA_AWARE`).
    pub const NUMA_AWARE: Self = Self(bindings::SHRINKER_NUMA_AWARE);
    /// Called per memcg, including memcg reclaim (`SHRINKER_MEMCG_AWARE`).
    /// Falls back to a global shrinker when memcg is disabled.
    pub const MEMCG_AWARE: Self = Self(bindings::SHRINKER_MEMCG_AWARE);
    /// The objects are not slab memory (`SHRINKER_NONSLAB`): memcg reclaim
    /// calls the shrinker even when slab accounting is off.
    pub const NONSLAB: Self = Self(bindings::SHRINKER_NONSLAB);
}

impl BitOr for ShrinkerFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// The callbacks of a shrinker, implemented by its private data.
pub trait Shrink: Send + Sync {
    /// How many objects could be freed for `sc.nid()` and `sc.memcg()`.
    ///
    /// Must be cheap: it is called on every reclaim pass.
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult;

    /// Frees up to `sc.nr_to_scan()` objects of `sc.nid()` and `sc.memcg()`.
    ///
    /// Implementations report real work with
    /// [`ShrinkControl::set_nr_scanned`] and must not block on locks that
    /// the allocation entering reclaim might hold.
    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult;
}

/// An allocated shrinker that is not registered yet.
///
/// # Invariants
///
/// `ptr` is a shrinker returned by `shrinker_alloc()`, owned by this value
/// and not registered.
pub struct Shrinker {
    ptr: NonNull<bindings::shrinker>,
}

impl Shrinker {
    /// Allocates a shrinker named `name` (the name shown in
    /// `/sys/kernel/debug/shrinker/`).
    pub fn new(name: &CStr, flags: ShrinkerFlags) -> Result<Self> {
        // SAFETY: The format "%s" takes one NUL-terminated string, which
        // `name` is; `shrinker_alloc` copies it.
        let ptr = unsafe {
            bindings::shrinker_alloc(flags.0, c_str!("%s").as_char_ptr(), name.as_char_ptr())
        };
        // INVARIANT: A non-null result is a new, unregistered shrinker.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// Sets the shrinker's `seeks` (the cost to recreate an object, relative
    /// to `DEFAULT_SEEKS`; higher means scanned less).
    pub fn set_seeks(&mut self, seeks: u32) {
        // SAFETY: By the type invariant, the shrinker is valid and not yet
        // visible to the shrinker core.
        unsafe { (*self.ptr.as_ptr()).seeks = c_int::try_from(seeks).unwrap_or(c_int::MAX) };
    }

    /// Sets the shrinker's `batch` (objects per `scan_objects` call; 0 for
    /// the default).
    pub fn set_batch(&mut self, batch: usize) {
        // SAFETY: As in `set_seeks`.
        unsafe { (*self.ptr.as_ptr()).batch = c_long::try_from(batch).unwrap_or(c_long::MAX) };
    }

    /// Whether this shrinker is memcg-aware. It is not when memcg is
    /// disabled, even if [`ShrinkerFlags::MEMCG_AWARE`] was asked for.
    pub fn is_memcg_aware(&self) -> bool {
        // SAFETY: By the type invariant, the shrinker is valid.
        let flags = unsafe { (*self.ptr.as_ptr()).flags };
        flags & bindings::SHRINKER_MEMCG_AWARE != 0
    }

    /// Returns the raw pointer to the `struct shrinker`.
    pub fn as_raw(&self) -> *mut bindings::shrinker {
        self.ptr.as_ptr()
    }

    /// The shrinker's id, which memcg-aware list_lrus use to set its bit in
    /// a memcg's shrinker map; -1 if it is not memcg-aware.
    #[cfg(CONFIG_MEMCG)]
    pub fn id(&self) -> i32 {
        if !self.is_memcg_aware() {
            return -1;
        }
        // SAFETY: By the type invariant, the shrinker is valid.
        unsafe { (*self.ptr.as_ptr()).id }
    }

    /// Builds the private data with `init` and registers the shrinker.
    ///
    /// `init` gets the shrinker, to tie list_lrus to it
    /// ([`crate::list_lru::ListLru::new`]), and allocates the data, for
    /// example with `KBox::pin_init()`; the initialiser of a list_lru
    /// borrows the shrinker, so it must be run inside `init`.
    ///
    /// On error the shrinker is freed and nothing is registered.
    pub fn register<T, F>(self, init: F) -> Result<Registration<T>>
    where
        T: Shrink,
        F: FnOnce(&Shrinker) -> Result<Pin<KBox<T>>>,
    {
        let data = init(&self)?;
        let this = ManuallyDrop::new(self);
        let ptr = this.ptr.as_ptr();
        // SAFETY: By the type invariant the shrinker is valid and not yet
        // registered, so nothing else accesses these fields. The private
        // data outlives the registration: `Registration::drop` frees the
        // shrinker (waiting for callbacks) before dropping `data`.
        unsafe {
            (*ptr).private_data = core::ptr::from_ref(&*data).cast_mut().cast::<c_void>();
            (*ptr).count_objects = Some(count_objects_callback::<T>);
            (*ptr).scan_objects = Some(scan_objects_callback::<T>);
            bindings::shrinker_register(ptr);
        }
        // INVARIANT: The shrinker is registered with `data` as private data.
        Ok(Registration {
            shrinker: this.ptr,
            data,
        })
    }
}

impl Drop for Shrinker {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, we own an unregistered shrinker.
        unsafe { bindings::shrinker_free(self.ptr.as_ptr()) };
    }
}

/// A registered shrinker and its private data.
///
/// # Invariants
///
/// `shrinker` is registered, owned by this value, and its private data is
/// `data`, whose callbacks are [`Shrink`] for `T`.
pub struct Registration<T: Shrink> {
    shrinker: NonNull<bindings::shrinker>,
    data: Pin<KBox<T>>,
}

// SAFETY: The shrinker may be freed from any thread, and `T: Send`.
unsafe impl<T: Shrink> Send for Registration<T> {}
// SAFETY: `&Registration` only gives out `&T`, and `T: Sync`.
unsafe impl<T: Shrink> Sync for Registration<T> {}

impl<T: Shrink> Registration<T> {
    /// Returns the raw pointer to the `struct shrinker`.
    pub fn as_raw(&self) -> *mut bindings::shrinker {
        self.shrinker.as_ptr()
    }

    /// The private data, pinned.
    pub fn data(&self) -> Pin<&T> {
        self.data.as_ref()
    }
}

impl<T: Shrink> Deref for Registration<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: Shrink> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, we own a registered shrinker.
        // `shrinker_free` unregisters it and waits until no callback runs;
        // `data` is dropped after this function returns.
        unsafe { bindings::shrinker_free(self.shrinker.as_ptr()) };
    }
}

/// A [`Registration`] kept in a `static`: for C code that registers one
/// shrinker in its init function, frees it in its exit function, and
/// reaches the shrinker's data from other entry points in between.
///
/// # Invariants
///
/// `reg` is null, or a pointer from [`KBox::into_raw`] to a registration
/// owned by this value.
pub struct StaticRegistration<T: Shrink> {
    reg: AtomicPtr<Registration<T>>,
}

impl<T: Shrink> StaticRegistration<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        // INVARIANT: Null.
        Self {
            reg: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Allocates a shrinker named `name` with `flags` and `seeks` (see
    /// [`Shrinker::set_seeks`]), builds its data with `init` and registers
    /// it, as [`Shrinker::register`] does, and keeps the registration here.
    /// Fails with `EBUSY`, registering nothing, if this slot holds one.
    pub fn register<F>(&self, name: &CStr, flags: ShrinkerFlags, seeks: u32, init: F) -> Result
    where
        F: FnOnce(&Shrinker) -> Result<Pin<KBox<T>>>,
    {
        if !self.reg.load(Ordering::Acquire).is_null() {
            return Err(EBUSY);
        }
        let mut shrinker = Shrinker::new(name, flags)?;
        shrinker.set_seeks(seeks);
        let reg = KBox::new(shrinker.register(init)?, kernel::alloc::flags::GFP_KERNEL)?;
        let raw = KBox::into_raw(reg);
        if let Err(raw) =
            self.reg
                .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
        {
            // Registered concurrently: drop ours (which frees its shrinker).
            // SAFETY: `raw` came from `KBox::into_raw` above and was not
            // stored.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(EBUSY);
        }
        // INVARIANT: The slot now owns the registration.
        Ok(())
    }

    /// The registered shrinker's data, `None` if there is none.
    ///
    /// # Safety
    ///
    /// [`StaticRegistration::unregister`] does not run before the last use
    /// of the returned reference (for example: it runs at module exit, and
    /// this is called only while objects of the shrinker exist, which the
    /// exit function waits for).
    pub unsafe fn get(&self) -> Option<&T> {
        let reg = self.reg.load(Ordering::Acquire);
        // SAFETY: By the type invariant a non-null pointer is a live
        // registration owned by this slot, which `unregister` frees, and the
        // caller guarantees that it does not run while the reference lives.
        unsafe { reg.as_ref() }.map(|reg| &**reg)
    }

    /// Frees the registered shrinker, if any, waiting for running callbacks,
    /// then its data.
    pub fn unregister(&self) {
        let reg = self.reg.swap(ptr::null_mut(), Ordering::AcqRel);
        if !reg.is_null() {
            // SAFETY: By the type invariant the pointer came from
            // `KBox::into_raw`; it was swapped out, so it is freed once.
            drop(unsafe { KBox::from_raw(reg) });
        }
    }
}

impl<T: Shrink> Default for StaticRegistration<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Shrink> Drop for StaticRegistration<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The private data and the reclaim context of one shrinker callback.
///
/// # Safety
///
/// Called from a callback of the shrinker core only: `shrinker` was
/// registered by [`Shrinker::register`] with a `T` as private data, and `sc`
/// is valid and used by this call only, for all of `'a`.
unsafe fn callback_args<'a, T: Shrink>(
    shrinker: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> (&'a T, &'a ShrinkControl) {
    // SAFETY: The shrinker core calls back only for a shrinker registered by
    // `Shrinker::register::<T>`, whose private data is a pinned `T` that
    // stays alive until `shrinker_free` has waited for this call.
    let data = unsafe { &*(*shrinker).private_data.cast::<T>() };
    // SAFETY: The shrinker core passes a `shrink_control` that only this
    // call uses, and holds a reference on its memcg during the call.
    let sc = unsafe { ShrinkControl::from_raw(sc) };
    (data, sc)
}

/// The `count_objects` callback of shrinkers registered by [`Shrinker::register`].
///
/// # Safety
///
/// Called by the shrinker core only: `shrinker` was registered with a `T`
/// as private data, and `sc` is valid and used by this call only.
unsafe extern "C" fn count_objects_callback<T: Shrink>(
    shrinker: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: Called by the shrinker core (this function's contract).
    let (data, sc) = unsafe { callback_args::<T>(shrinker, sc) };
    data.count_objects(sc).to_raw()
}

/// The `scan_objects` callback of shrinkers registered by [`Shrinker::register`].
///
/// # Safety
///
/// As for [`count_objects_callback`].
unsafe extern "C" fn scan_objects_callback<T: Shrink>(
    shrinker: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: Called by the shrinker core (this function's contract).
    let (data, sc) = unsafe { callback_args::<T>(shrinker, sc) };
    data.scan_objects(sc).to_raw()
}
