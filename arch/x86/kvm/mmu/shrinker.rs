// SPDX-License-Identifier: GPL-2.0

//! The memcg-aware shrinker of KVM's x86 shadow MMU.
//!
//! C side: [`arch/x86/kvm/mmu/shrinker.h`](srctree/arch/x86/kvm/mmu/shrinker.h).
//!
//! Every shadow page (`struct kvm_mmu_page` of the shadow MMU, including the
//! nested shadow pages of an L2 guest under the TDP MMU) is on one list_lru
//! from its allocation until it is freed. The list of a page is that of the
//! memcg its header is charged to (the task that topped up the vCPU's MMU
//! caches) and of the NUMA node of its page table page. Reclaim therefore
//! counts and frees exactly the pages of the memcg and node under pressure,
//! and `count_objects` is O(1).
//!
//! # Victim policy
//!
//! The list is in allocation order, oldest first, and a scan visits it as a
//! clock:
//!
//! - active roots (`root_count != 0`) are never freed; they are rotated;
//! - pages already being zapped (invalid) are left to their owner;
//! - obsolete pages (from an older MMU generation) are freed first, at no
//!   cost to the guest;
//! - leaf pages (level 1) are the victims: a leaf page whose SPTEs were
//!   accessed since the last visit has their Accessed bits cleared and is
//!   rotated (second chance); one that was not accessed is freed;
//! - upper-level pages are rotated: zapping one forces the guest to rebuild
//!   it on its next access below it, and frees no more than itself. They are
//!   freed only under high pressure, that is, when a walk found no leaf page
//!   at all on the list of this memcg and node.
//!
//! # Locking
//!
//! Lock order: `kvm->srcu` (read), `kvm->mmu_lock`, list_lru lock. KVM adds
//! and deletes pages under `mmu_lock`, which nests the lru lock inside it.
//! The isolate callback runs with the lru lock held, so it only ever
//! *tries* to take a VM's `mmu_lock` (srcu read locks never block). The
//! shrinker never takes `kvm_lock`.
//!
//! # VM lifetime
//!
//! A page is deleted from the lru, under the lru lock, before it is freed,
//! and every shadow page of a VM is freed, under its `mmu_lock`, before the
//! VM is freed. So while the callback holds the lru lock and sees a page,
//! the page and its VM are alive; once the callback holds the VM's
//! `mmu_lock`, the VM stays alive until it is released, because teardown
//! must take `mmu_lock` to free this page. A batch ends by releasing that
//! lock and never touches the VM afterwards. The shrinker is registered
//! and freed by kvm.ko's vendor module init and exit, when no VM exists;
//! `shrinker_free()` waits for running callbacks, so kvm.ko cannot be
//! unloaded under a running scan.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::stack_pin_init;
use kernel::types::ARef;
use kvm_shrinker::list_lru::{Isolate, Isolated, ListLru, LruItem, LruLinks};
use kvm_shrinker::memcg::MemCgroup;
use kvm_shrinker::shrinker::{
    CountResult, Registration, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags,
};

const __LOG_PREFIX: &[u8] = b"kvm\0";

/// `struct kvm`, which this file only passes back to C.
#[repr(C)]
struct Kvm {
    _opaque: [u8; 0],
}

/// `DEFAULT_SEEKS`. The clock policy protects recently used pages, so the
/// shrinker does not need to look more expensive than other caches.
const SEEKS: u32 = 2;

// The C entry points of arch/x86/kvm/mmu/mmu.c, declared in shrinker.h;
// keep the two in sync. They work on the `lru_link` of a shadow page and
// hide every other field of `struct kvm_mmu_page`.
extern "C" {
    /// The VM of the shadow page; the caller holds the lru lock.
    fn kvm_mmu_shrink_sp_kvm(link: *mut bindings::list_head) -> *mut Kvm;
    /// Read-locks `kvm->srcu` and tries to write-lock `kvm->mmu_lock`.
    /// Returns the srcu index, or a negative value (nothing held).
    fn kvm_mmu_shrink_trylock(kvm: *mut Kvm) -> c_int;
    /// Releases what [`kvm_mmu_shrink_trylock`] took.
    fn kvm_mmu_shrink_unlock(kvm: *mut Kvm, srcu_idx: c_int);
    /// The `SP_*` description of the page; with `age`, also tests and
    /// clears the Accessed bits of its leaf SPTEs. `mmu_lock` held.
    fn kvm_mmu_shrink_inspect(kvm: *mut Kvm, link: *mut bindings::list_head, age: bool) -> c_uint;
    /// Zaps the page onto `invalid_list`; returns the number of pages
    /// zapped (with unsync children). `mmu_lock` held.
    fn kvm_mmu_shrink_zap(
        kvm: *mut Kvm,
        link: *mut bindings::list_head,
        invalid_list: *mut bindings::list_head,
    ) -> c_ulong;
    /// Flushes remote TLBs once and frees the pages of `invalid_list`;
    /// adds `nr_zapped` to the VM's `mmu_shrinker_freed` stat. `mmu_lock`
    /// held, lru lock not held.
    fn kvm_mmu_shrink_commit(
        kvm: *mut Kvm,
        invalid_list: *mut bindings::list_head,
        nr_zapped: c_ulong,
    );
}

/// Mask of the page's level (1 for a leaf page table) in an inspection.
const SP_LEVEL_MASK: c_uint = 0xf;
/// The page is an active root.
const SP_ROOT: c_uint = 1 << 4;
/// The page is being zapped.
const SP_INVALID: c_uint = 1 << 5;
/// The page belongs to an older MMU generation.
const SP_OBSOLETE: c_uint = 1 << 6;
/// A leaf SPTE of the page was accessed since the last aging.
const SP_YOUNG: c_uint = 1 << 7;

/// The `lru_link` of a shadow page.
#[repr(transparent)]
struct SpLink(LruLinks);

// SAFETY: `SpLink` is a transparent `LruLinks`, used only for the list_lru.
unsafe impl LruItem for SpLink {
    const LINKS_OFFSET: usize = 0;
}

fn link_ptr(link: NonNull<SpLink>) -> *mut bindings::list_head {
    link.as_ptr().cast()
}

/// What a walk may free.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pressure {
    /// Obsolete and cold leaf pages; young leaf pages are aged.
    Normal,
    /// Also upper-level pages (no leaf page was left to free).
    High,
}

/// What to do with one page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Zap,
    Rotate,
    Skip,
}

/// The victim policy (see the module documentation), for a page described
/// by `info` from `kvm_mmu_shrink_inspect()`.
fn decide(info: c_uint, pressure: Pressure) -> Action {
    if info & SP_INVALID != 0 {
        return Action::Skip;
    }
    if info & SP_ROOT != 0 {
        return Action::Rotate;
    }
    if info & SP_OBSOLETE != 0 {
        return Action::Zap;
    }
    if info & SP_LEVEL_MASK == 1 {
        if pressure == Pressure::Normal && info & SP_YOUNG != 0 {
            return Action::Rotate;
        }
        return Action::Zap;
    }
    match pressure {
        Pressure::High => Action::Zap,
        Pressure::Normal => Action::Rotate,
    }
}

/// The pages of one VM zapped by a walk, flushed and freed together.
///
/// It must be ended with [`VmBatch::finish`], outside the lru lock.
///
/// # Invariants
///
/// This batch holds `kvm`'s `mmu_lock` for write and its srcu read lock
/// `srcu_idx`, which keep the VM alive. `invalid` is an initialised list
/// head holding the pages zapped so far, `zapped` of them with children.
#[must_use]
struct VmBatch {
    kvm: NonNull<Kvm>,
    srcu_idx: c_int,
    invalid: *mut bindings::list_head,
    zapped: c_ulong,
}

impl VmBatch {
    /// Tries to lock `kvm` for a batch that collects its pages on `invalid`.
    ///
    /// # Safety
    ///
    /// `kvm` is alive (the caller holds the lru lock and sees one of its
    /// pages), and `invalid` is an empty, initialised list head that
    /// outlives the batch.
    unsafe fn try_lock(kvm: NonNull<Kvm>, invalid: *mut bindings::list_head) -> Option<Self> {
        // SAFETY: The VM is alive (caller's guarantee).
        let srcu_idx = unsafe { kvm_mmu_shrink_trylock(kvm.as_ptr()) };
        // INVARIANT: A non-negative result means both locks are now held.
        (srcu_idx >= 0).then_some(Self {
            kvm,
            srcu_idx,
            invalid,
            zapped: 0,
        })
    }

    fn owns(&self, kvm: NonNull<Kvm>) -> bool {
        self.kvm == kvm
    }

    /// Describes the page at `link` (and ages it if `age`).
    ///
    /// # Safety
    ///
    /// `link` is the lru link of a page of this batch's VM that is on the
    /// lru (its lock held).
    unsafe fn inspect(&self, link: *mut bindings::list_head, age: bool) -> c_uint {
        // SAFETY: By the type invariant `mmu_lock` is held; the page is
        // alive (caller's guarantee).
        unsafe { kvm_mmu_shrink_inspect(self.kvm.as_ptr(), link, age) }
    }

    /// Zaps the page at `link` into this batch.
    ///
    /// # Safety
    ///
    /// As for [`VmBatch::inspect`], and the page was just removed from the
    /// lru. Zapping takes no lru lock: pages are deleted from the lru only
    /// when they are freed, by [`VmBatch::finish`].
    unsafe fn zap(&mut self, link: *mut bindings::list_head) {
        // SAFETY: By the type invariant and the caller's guarantee.
        let n = unsafe { kvm_mmu_shrink_zap(self.kvm.as_ptr(), link, self.invalid) };
        self.zapped += n;
    }

    /// Flushes the TLBs once, frees the zapped pages and unlocks the VM.
    /// Returns the number of pages freed. The caller must not hold the lru
    /// lock: freeing deletes pages from the lru.
    fn finish(self) -> c_ulong {
        let zapped = self.zapped;
        // SAFETY: By the type invariant the locks are held and `invalid`
        // holds pages of this VM; the VM is not used after the unlock.
        unsafe {
            kvm_mmu_shrink_commit(self.kvm.as_ptr(), self.invalid, zapped);
            kvm_mmu_shrink_unlock(self.kvm.as_ptr(), self.srcu_idx);
        }
        zapped
    }
}

/// The state of one walk of the lru.
struct Walk {
    pressure: Pressure,
    invalid: *mut bindings::list_head,
    /// The batch of the VM whose `mmu_lock` the walk holds. It is only
    /// created inside the isolate callback and finished after the walk,
    /// never inside it, since finishing takes the lru lock.
    batch: Option<VmBatch>,
    /// The walk stopped at a page of another VM.
    switched: bool,
    /// The walk saw a leaf page.
    saw_leaf: bool,
    /// The walk skipped pages of a VM whose `mmu_lock` was taken.
    contended: bool,
}

impl Walk {
    fn isolate<'a>(&mut self, it: Isolate<'a, SpLink>) -> Isolated<'a> {
        let link = link_ptr(it.item_ptr());
        // SAFETY: The lru lock is held and the page is on the lru, so it is
        // a live shadow page.
        let Some(kvm) = NonNull::new(unsafe { kvm_mmu_shrink_sp_kvm(link) }) else {
            return it.skip();
        };
        if let Some(batch) = &self.batch {
            if !batch.owns(kvm) {
                // One VM per batch: end this walk, flush and free what it
                // zapped, and start over with the next VM.
                self.switched = true;
                return it.stop();
            }
        } else {
            // SAFETY: The page keeps its VM alive while the lru lock is
            // held; `invalid` is empty (batches are finished, which empties
            // it, before the next walk) and outlives the walk.
            match unsafe { VmBatch::try_lock(kvm, self.invalid) } {
                Some(batch) => self.batch = Some(batch),
                None => {
                    // Somebody holds the VM's `mmu_lock`: its pages are in
                    // use. Leave them in place.
                    self.contended = true;
                    return it.skip();
                }
            }
        }
        let Some(batch) = self.batch.as_mut() else {
            return it.skip();
        };
        // SAFETY: The page is of the batch's VM and on the lru.
        let info = unsafe { batch.inspect(link, self.pressure == Pressure::Normal) };
        if info & SP_LEVEL_MASK == 1 {
            self.saw_leaf = true;
        }
        match decide(info, self.pressure) {
            Action::Skip => it.skip(),
            Action::Rotate => it.rotate(),
            Action::Zap => {
                let removed = it.remove();
                // SAFETY: The page was just removed from the lru, with its
                // lock and the VM's `mmu_lock` held.
                unsafe { batch.zap(link) };
                removed.done()
            }
        }
    }
}

/// The shrinker's private data.
#[pin_data]
struct MmuShrinker {
    #[pin]
    lru: ListLru<SpLink>,
}

impl MmuShrinker {
    /// One walk over the list of `sc`'s memcg and node, visiting at most
    /// `*budget` pages. Returns the pages freed and whether to walk again.
    fn walk_once(
        &self,
        sc: &ShrinkControl,
        invalid: &LruLinks,
        budget: &mut usize,
        pressure: Pressure,
    ) -> (c_ulong, Pressure, bool) {
        let mut walk = Walk {
            pressure,
            invalid: invalid.as_raw(),
            batch: None,
            switched: false,
            saw_leaf: false,
            contended: false,
        };
        self.lru
            .walk_one(sc.nid(), sc.memcg(), budget, |it| walk.isolate(it));
        let freed = walk.batch.take().map_or(0, VmBatch::finish);
        if walk.switched {
            return (freed, pressure, true);
        }
        if freed == 0 && !walk.saw_leaf && !walk.contended && pressure == Pressure::Normal {
            // Only upper-level pages and roots are left here.
            return (freed, Pressure::High, true);
        }
        (freed, pressure, false)
    }
}

impl Shrink for MmuShrinker {
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
        self.lru.count(sc)
    }

    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult {
        // Freeing waits for every vCPU of the VM to leave guest mode (the
        // remote TLB flush); do not do that for an allocation that cannot
        // block.
        if !sc.may_sleep() {
            return ScanResult::Stop;
        }
        stack_pin_init!(let invalid = LruLinks::new());
        let to_scan = sc.nr_to_scan();
        let mut budget = to_scan;
        let mut freed: c_ulong = 0;
        let mut pressure = Pressure::Normal;
        while budget > 0 {
            let (n, next, again) = self.walk_once(sc, &invalid, &mut budget, pressure);
            freed += n;
            pressure = next;
            if !again {
                break;
            }
        }
        let scanned = to_scan - budget;
        sc.set_nr_scanned(scanned);
        if scanned == 0 {
            // Nothing to visit: tell reclaim to move on rather than call
            // again (reporting no progress would make it loop).
            return ScanResult::Stop;
        }
        ScanResult::Freed(freed)
    }
}

/// The registered shrinker, between [`kvm_mmu_shrinker_init`] and
/// [`kvm_mmu_shrinker_exit`]; null otherwise.
static SHRINKER: AtomicPtr<Registration<MmuShrinker>> = AtomicPtr::new(ptr::null_mut());

/// The registered shrinker's data.
///
/// Only called while a VM exists, which is between init and exit.
fn shrinker() -> Option<&'static MmuShrinker> {
    let reg = SHRINKER.load(Ordering::Acquire);
    // SAFETY: A non-null pointer is a registration that stays alive until
    // `kvm_mmu_shrinker_exit`, which runs when no VM exists, so not
    // concurrently with the callers.
    unsafe { reg.as_ref() }.map(|reg| &**reg)
}

/// Registers the shrinker, named "kvm-mmu" in shrinker_debugfs. Called by
/// `kvm_mmu_vendor_module_init()`.
#[no_mangle]
pub extern "C" fn kvm_mmu_shrinker_init() -> c_int {
    let reg = Shrinker::new(
        c_str!("kvm-mmu"),
        ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE,
    )
    .and_then(|mut s| {
        s.set_seeks(SEEKS);
        s.register(
            |s| {
                let lru = ListLru::new(s);
                try_pin_init!(MmuShrinker { lru <- lru })
            },
            GFP_KERNEL,
        )
    })
    .and_then(|reg| KBox::new(reg, GFP_KERNEL).map_err(Error::from));
    match reg {
        Ok(reg) => {
            SHRINKER.store(KBox::into_raw(reg), Ordering::Release);
            0
        }
        Err(e) => {
            pr_err!("cannot register the MMU shrinker: {:?}\n", e);
            e.to_errno()
        }
    }
}

/// Frees the shrinker, waiting for running callbacks. Called by
/// `kvm_mmu_vendor_module_exit()`, when no VM exists.
#[no_mangle]
pub extern "C" fn kvm_mmu_shrinker_exit() {
    let reg = SHRINKER.swap(ptr::null_mut(), Ordering::AcqRel);
    if !reg.is_null() {
        // SAFETY: The pointer came from `KBox::into_raw` in init and was
        // swapped out, so it is dropped once.
        drop(unsafe { KBox::from_raw(reg) });
    }
}

/// The shrinker's list_lru, for the MMU page header cache
/// (`kmem_cache_alloc_lru()` allocates the lists of the caller's memcg).
#[no_mangle]
pub extern "C" fn kvm_mmu_shrinker_lru() -> *mut bindings::list_lru {
    shrinker().map_or(ptr::null_mut(), |s| s.lru.as_raw())
}

/// A shadow page as the lru files it: the registered shrinker, the page's
/// lru item, and the memcg its header is charged to.
struct Tracked {
    shrinker: &'static MmuShrinker,
    link: NonNull<SpLink>,
    memcg: Option<ARef<MemCgroup>>,
}

impl Tracked {
    /// Looks up the page at `link`, whose header is the slab object `obj`.
    ///
    /// # Safety
    ///
    /// `obj` is a live slab object.
    unsafe fn new(link: *mut bindings::list_head, obj: *const c_void) -> Option<Self> {
        let shrinker = shrinker()?;
        let link = NonNull::new(link.cast::<SpLink>())?;
        // SAFETY: `obj` is a live slab object (caller's guarantee).
        let memcg = unsafe { MemCgroup::from_slab_obj(obj) };
        Some(Self {
            shrinker,
            link,
            memcg,
        })
    }
}

/// Adds a new shadow page to the lru.
///
/// # Safety
///
/// `link` is the initialised, unlinked `lru_link` of the shadow page whose
/// header is the slab object `obj` from the MMU page header cache, which
/// was allocated with `kmem_cache_alloc_lru()` for this lru; `nid` is the
/// node of its page table page. The caller holds the VM's `mmu_lock`, and
/// calls [`kvm_mmu_shrinker_del`] before freeing the page.
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_shrinker_add(
    link: *mut bindings::list_head,
    obj: *const c_void,
    nid: c_int,
) {
    // SAFETY: `obj` is a live slab object (caller's guarantee).
    let Some(t) = (unsafe { Tracked::new(link, obj) }) else {
        return;
    };
    // SAFETY: The page stays valid until `kvm_mmu_shrinker_del`; the lists
    // of its memcg were allocated by `kmem_cache_alloc_lru()` (or, after
    // reparenting, are those of an ancestor, allocated with them).
    unsafe { t.shrinker.lru.add(t.link, nid, t.memcg.as_deref()) };
}

/// Deletes a shadow page from the lru before it is freed.
///
/// # Safety
///
/// As for [`kvm_mmu_shrinker_add`], with the same `link`, `obj` and `nid`.
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_shrinker_del(
    link: *mut bindings::list_head,
    obj: *const c_void,
    nid: c_int,
) {
    // SAFETY: As in `kvm_mmu_shrinker_add`.
    let Some(t) = (unsafe { Tracked::new(link, obj) }) else {
        return;
    };
    // SAFETY: The page is on this lru with this node and memcg, or on no
    // list (a walk removed it).
    unsafe { t.shrinker.lru.del(t.link, nid, t.memcg.as_deref()) };
}
