// SPDX-License-Identifier: GPL-2.0

//! The memcg-aware shrinker of KVM's x86 shadow MMU.
//!
//! C side: [`arch/x86/kvm/mmu/shrinker.h`](srctree/arch/x86/kvm/mmu/shrinker.h).
//!
//! Every shadow page (`struct kvm_mmu_page` of the shadow MMU, including the
//! nested shadow pages of an L2 guest under the TDP MMU) is on one list_lru
//! from its allocation until it is freed, except while a scan holds it or
//! keeps it off as a root (see below). The list of a page is that of the
//! memcg its header is charged to (the task that topped up the vCPU's MMU
//! caches) and of the NUMA node of its page table page. Reclaim therefore
//! counts and frees exactly the pages of the memcg and node under pressure,
//! and `count_objects` is O(1).
//!
//! # Victim policy
//!
//! The list is in allocation order, oldest first, and a scan visits it as a
//! clock, each page at most once per scan call:
//!
//! - active roots (`root_count != 0`) are never freed; they stay off the
//!   list until they stop being roots (`kvm_mmu_shrink_park()`), so that
//!   the count is of pages a scan may free, and a memcg whose VMs have only
//!   roots left drops out of memcg reclaim instead of having each VM's
//!   `mmu_lock` taken on every reclaim pass;
//! - pages already being zapped (invalid) are left to their owner;
//! - obsolete pages (from an older MMU generation) are freed first, at no
//!   cost to the guest;
//! - any other page is young if the processor walked through it since the
//!   last visit: the Accessed bit of a parent SPTE that points to it is set.
//!   A young page has those bits cleared and a second chance; a cold page is
//!   freed, whatever its level: nothing walked through it, so no
//!   translation below it was used either. The leaf SPTEs' own Accessed
//!   bits, which the host's page aging reads through the MMU notifiers, are
//!   never touched.
//!
//! # Batches and locking
//!
//! Lock order: `kvm->srcu` (read), `kvm->mmu_lock`, list_lru lock. KVM adds
//! and deletes pages under `mmu_lock`, which nests the lru lock inside it.
//!
//! A scan works in batches of at most [`BATCH`] pages of one VM. Under the
//! lru lock it only takes the batch's pages off the list: it tries to take
//! the VM's `mmu_lock` (it must not wait for it under the lru lock; srcu
//! read locks never wait) and moves on to the next VM's batch at the first
//! page of another VM. Then, with the lru lock dropped and `mmu_lock` held,
//! it inspects, ages and zaps the pages, puts back the ones it keeps,
//! flushes the TLBs once, frees the zapped pages, unlocks the VM and
//! reschedules if needed. So the lru lock (one per memcg and node) is
//! held for a few list operations per batch, never for page table work,
//! and a scan of any size ends in bounded steps.
//!
//! # VM lifetime
//!
//! A page is deleted from the lru, under the lru lock, before it is freed;
//! KVM frees pages under `mmu_lock`, and every shadow page of a VM before
//! the VM. So while the walk holds the lru lock and sees a page, the page
//! and its VM are alive; once it holds the VM's `mmu_lock`, the VM stays
//! alive until it is released, because teardown must take `mmu_lock` to
//! free the VM's last pages. The pages of a batch are off the lru, so KVM
//! cannot delete them there, but it frees them only under `mmu_lock`, which
//! the batch holds until it ends. A batch ends by releasing the srcu read
//! lock, then `mmu_lock`, and touches nothing of the VM afterwards. The
//! shrinker is registered and freed by kvm.ko's vendor module init and
//! exit, when no VM exists; `shrinker_free()` waits for running callbacks,
//! so kvm.ko cannot be unloaded under a running scan.

use core::ptr::{self, NonNull};
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_int, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kvm_shrinker::list_lru::{self, Batch, Isolate, Isolated, ListLru, LruItem, LruLinks};
use kvm_shrinker::memcg::MemCgroup;
use kvm_shrinker::node::NodeId;
use kvm_shrinker::shrinker::{
    CountResult, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags, StaticRegistration,
};
use pin_init::stack_pin_init;

const __LOG_PREFIX: &[u8] = b"kvm\0";

/// `struct kvm`, which this file only passes back to C.
type Kvm = bindings::kvm;

/// `DEFAULT_SEEKS`. The clock policy protects recently used pages, so the
/// shrinker does not need to look more expensive than other caches.
const SEEKS: u32 = 2;

/// The most pages a batch takes off the lru under one lock hold.
const BATCH: usize = 32;

// What `kvm_mmu_shrink_inspect()` returns, as shrinker.h defines it (the
// policy does not look at the page's level, KVM_MMU_SHRINK_LEVEL_MASK).
/// The page is an active root.
const SP_ROOT: c_uint = bindings::KVM_MMU_SHRINK_ROOT;
/// The page is being zapped.
const SP_INVALID: c_uint = bindings::KVM_MMU_SHRINK_INVALID;
/// The page belongs to an older MMU generation.
const SP_OBSOLETE: c_uint = bindings::KVM_MMU_SHRINK_OBSOLETE;
/// A walk went through the page since the last aging.
const SP_YOUNG: c_uint = bindings::KVM_MMU_SHRINK_YOUNG;

/// Checks, when this file builds, that a function it defines for C has the
/// type that shrinker.h declares.
macro_rules! declared_as_in_shrinker_h {
    ($name:ident: $ty:ty) => {
        const _: [$ty; 2] = [bindings::$name, $name];
    };
}

declared_as_in_shrinker_h!(kvm_mmu_shrinker_init: unsafe extern "C" fn() -> c_int);
declared_as_in_shrinker_h!(kvm_mmu_shrinker_exit: unsafe extern "C" fn());
declared_as_in_shrinker_h!(kvm_mmu_shrinker_lru: unsafe extern "C" fn() -> *mut bindings::list_lru);
declared_as_in_shrinker_h!(kvm_mmu_shrinker_add:
    unsafe extern "C" fn(*mut bindings::list_head, *const c_void, c_int));
declared_as_in_shrinker_h!(kvm_mmu_shrinker_del:
    unsafe extern "C" fn(*mut bindings::list_head, *const c_void, c_int));

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

/// What to do with one page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    /// Free it.
    Zap,
    /// Keep it, at the young end of the list.
    Keep,
    /// Keep it off the list while it is a root.
    Park,
}

/// The victim policy (see the module documentation), for a page described
/// by `kvm_mmu_shrink_inspect()`.
fn decide(info: c_uint) -> Action {
    if info & SP_INVALID != 0 {
        return Action::Keep;
    }
    if info & SP_ROOT != 0 {
        return Action::Park;
    }
    if info & SP_OBSOLETE != 0 || info & SP_YOUNG == 0 {
        return Action::Zap;
    }
    Action::Keep
}

/// Pages of one VM taken off the lru, to be handled without the lru lock.
///
/// # Invariants
///
/// The batch holds `kvm`'s `mmu_lock` for write and its srcu read lock
/// `srcu_idx`, which keep the VM alive. `pages` are distinct shadow pages of
/// `kvm` that were taken off the lru under its lock while `mmu_lock` was
/// held, and that are on no list.
#[must_use]
struct VmBatch {
    kvm: NonNull<Kvm>,
    srcu_idx: c_int,
    pages: Batch<SpLink, BATCH>,
}

impl VmBatch {
    /// Tries to lock `kvm` for a batch.
    ///
    /// # Safety
    ///
    /// `kvm` is alive: the caller holds the lru lock and sees one of its
    /// pages on the lru.
    unsafe fn try_lock(kvm: NonNull<Kvm>) -> Option<Self> {
        // SAFETY: The VM is alive (caller's guarantee).
        let srcu_idx = unsafe { bindings::kvm_mmu_shrink_trylock(kvm.as_ptr()) };
        if srcu_idx < 0 {
            // Nothing is held. (No `VmBatch` may exist here: dropping one
            // unlocks.)
            return None;
        }
        // INVARIANT: A non-negative result means both locks are now held;
        // the batch is empty.
        Some(Self {
            kvm,
            srcu_idx,
            pages: Batch::new(),
        })
    }

    fn owns(&self, kvm: NonNull<Kvm>) -> bool {
        self.kvm == kvm
    }

    fn is_full(&self) -> bool {
        self.pages.is_full()
    }

    /// Takes the page under `it` off the lru into this batch.
    ///
    /// # Safety
    ///
    /// The page under `it` is a page of this batch's VM.
    unsafe fn take<'a>(&mut self, it: Isolate<'a, SpLink>) -> Isolated<'a> {
        // INVARIANT: The page is of this VM (caller's guarantee), and is
        // taken off the lru with its lock and `mmu_lock` held (or left
        // there if the batch is full).
        it.remove_into(&mut self.pages)
    }

    /// Takes the last page off the batch.
    fn pop(&mut self) -> Option<*mut bindings::list_head> {
        self.pages.pop().map(link_ptr)
    }

    /// Ages and zaps the pages of the batch, puts back those it keeps,
    /// flushes the TLBs once, frees the zapped pages and unlocks the VM.
    /// `invalid` is an empty list head. Returns the number of pages freed.
    ///
    /// The caller must not hold the lru lock: putting pages back and freeing
    /// them take it.
    fn finish(mut self, invalid: &LruLinks) -> c_ulong {
        let kvm = self.kvm.as_ptr();
        while let Some(link) = self.pop() {
            // SAFETY: By the type invariant `mmu_lock` is held and the page
            // is a live page of this VM (KVM frees pages only under
            // `mmu_lock`). A page that another zap of this batch zapped
            // comes back invalid, and is kept until that zap frees it.
            let info = unsafe { bindings::kvm_mmu_shrink_inspect(kvm, link, true) };
            match decide(info) {
                Action::Zap => {
                    // SAFETY: As above; the page is off the lru, valid and
                    // not a root.
                    unsafe { bindings::kvm_mmu_shrink_zap(kvm, link, invalid.as_raw()) };
                }
                Action::Keep => {
                    // SAFETY: As above, and the page is on no list.
                    unsafe { bindings::kvm_mmu_shrink_putback(link) };
                }
                Action::Park => {
                    // SAFETY: As above; the page is on no list and a root.
                    unsafe { bindings::kvm_mmu_shrink_park(link) };
                }
            }
        }
        // SAFETY: By the type invariant `mmu_lock` is held; `invalid` holds
        // pages of this VM.
        unsafe { bindings::kvm_mmu_shrink_commit(kvm, invalid.as_raw()) }
        // Dropping `self` unlocks the VM.
    }
}

impl Drop for VmBatch {
    fn drop(&mut self) {
        let kvm = self.kvm.as_ptr();
        // Pages not handled (none after `finish`) go back to the lru.
        while let Some(link) = self.pop() {
            // SAFETY: By the type invariant `mmu_lock` is held and the page
            // is a live page of this VM, on no list.
            unsafe { bindings::kvm_mmu_shrink_putback(link) };
        }
        // SAFETY: By the type invariant both locks are held. The srcu read
        // lock is released first, then `mmu_lock`, after which nothing of
        // the VM is touched: teardown may free it as soon as `mmu_lock` is
        // free.
        unsafe { bindings::kvm_mmu_shrink_unlock(kvm, self.srcu_idx) };
    }
}

/// The monotonic clock, in ns.
fn ktime_get_ns() -> i64 {
    // SAFETY: `ktime_get()` has no preconditions.
    unsafe { bindings::ktime_get() }
}

/// Taking one batch off the lru.
struct Isolation {
    batch: Option<VmBatch>,
    /// The pages visited (taken, or passed over because their VM was busy).
    visited: usize,
    /// When the walk, and so the lru lock hold, started (`ktime_get()`, ns).
    start: Option<i64>,
}

impl Isolation {
    fn isolate<'a>(&mut self, it: Isolate<'a, SpLink>) -> Isolated<'a> {
        self.start.get_or_insert_with(ktime_get_ns);
        let link = link_ptr(it.item_ptr());
        // SAFETY: The lru lock is held and the page is on the lru, so it is
        // a live shadow page.
        let kvm = NonNull::new(unsafe { bindings::kvm_mmu_shrink_sp_kvm(link) });
        let Some(kvm) = kvm else {
            self.visited += 1;
            return it.rotate();
        };
        match &self.batch {
            // One VM per batch: end the walk at another VM's page.
            Some(batch) if !batch.owns(kvm) || batch.is_full() => return it.stop(),
            Some(_) => {}
            None => {
                // SAFETY: The page keeps its VM alive while the lru lock is
                // held.
                match unsafe { VmBatch::try_lock(kvm) } {
                    Some(batch) => self.batch = Some(batch),
                    None => {
                        // Somebody holds the VM's `mmu_lock`: its pages are
                        // in use. Leave this one for the next round.
                        self.visited += 1;
                        return it.rotate();
                    }
                }
            }
        }
        let Some(batch) = self.batch.as_mut() else {
            return it.stop();
        };
        self.visited += 1;
        // SAFETY: The batch is of this page's VM.
        unsafe { batch.take(it) }
    }
}

/// The shrinker's private data.
#[pin_data]
struct MmuShrinker {
    #[pin]
    lru: ListLru<SpLink>,
}

impl Shrink for MmuShrinker {
    // The count leaves out the roots that a scan found (they are parked),
    // not those loaded since, nor pages being zapped (see
    // Documentation/virt/kvm/x86/mmu-shrinker.rst).
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
        let Some(nid) = sc.nid() else {
            return ScanResult::Stop;
        };
        let memcg = sc.memcg();
        // Each page at most once: the pages that were there at the start.
        // Pages put back go behind them.
        let limit = sc.nr_to_scan().min(self.lru.count_one(nid, memcg));
        stack_pin_init!(let invalid = LruLinks::new());
        let mut visited = 0;
        let mut freed: c_ulong = 0;
        while visited < limit {
            let mut iso = Isolation {
                batch: None,
                visited: 0,
                start: None,
            };
            let mut nr = (limit - visited).min(BATCH);
            self.lru.walk_one(nid, memcg, &mut nr, |it| iso.isolate(it));
            if let Some(start) = iso.start {
                let held = ktime_get_ns() - start;
                // SAFETY: Plain statistics update.
                unsafe { bindings::kvm_mmu_shrink_note_lru_hold(held.unsigned_abs()) };
            }
            if let Some(batch) = iso.batch.take() {
                freed += batch.finish(&invalid);
            }
            if iso.visited == 0 {
                break;
            }
            visited += iso.visited;
            list_lru::cond_resched();
        }
        sc.set_nr_scanned(visited);
        if visited == 0 {
            // Nothing to visit: tell reclaim to move on rather than call
            // again (reporting no progress would make it loop).
            return ScanResult::Stop;
        }
        ScanResult::Freed(freed)
    }
}

/// The registered shrinker, between [`kvm_mmu_shrinker_init`] and
/// [`kvm_mmu_shrinker_exit`].
static SHRINKER: StaticRegistration<MmuShrinker> = StaticRegistration::new();

/// The registered shrinker's data.
///
/// Only called while a VM exists, which is between init and exit.
fn shrinker() -> Option<&'static MmuShrinker> {
    // SAFETY: by its contract `kvm_mmu_shrinker_exit` runs when no VM
    // exists and no entry point of this file runs, so not
    // concurrently with the callers, which do not keep the reference.
    unsafe { SHRINKER.get() }
}

/// Registers the shrinker, named "kvm-mmu" in shrinker_debugfs. Called by
/// `kvm_mmu_vendor_module_init()`.
#[no_mangle]
pub extern "C" fn kvm_mmu_shrinker_init() -> c_int {
    let init = |s: &Shrinker| {
        KBox::pin_init(
            try_pin_init!(MmuShrinker {
                lru <- ListLru::new(s, kernel::static_lock_class!()),
            }),
            GFP_KERNEL,
        )
    };
    let flags = ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE;
    match SHRINKER.register(c_str!("kvm-mmu"), flags, SEEKS, init) {
        Ok(()) => 0,
        Err(e) => {
            pr_err!("cannot register the MMU shrinker: {:?}\n", e);
            e.to_errno()
        }
    }
}

/// Frees the shrinker, waiting for running callbacks. Called by
/// `kvm_mmu_vendor_module_exit()`.
///
/// # Safety
///
/// No VM may exist, and none of this file's other entry points may run
/// or run again afterwards: they hand out references to the shrinker.
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_shrinker_exit() {
    SHRINKER.unregister();
}

/// The shrinker's list_lru, for the MMU page header cache
/// (`kmem_cache_alloc_lru()` allocates the lists of the caller's memcg).
#[no_mangle]
pub extern "C" fn kvm_mmu_shrinker_lru() -> *mut bindings::list_lru {
    shrinker().map_or(ptr::null_mut(), |s| s.lru.as_raw())
}

/// A shadow page as the lru files it: the registered shrinker, the page's
/// lru item, the memcg its header is charged to and the node of its page
/// table.
struct Tracked {
    shrinker: &'static MmuShrinker,
    link: NonNull<SpLink>,
    memcg: Option<ARef<MemCgroup>>,
    nid: NodeId,
}

impl Tracked {
    /// Looks up the page at `link`, whose header is the slab object `obj`
    /// and whose page table is on node `nid`; `None` without a shrinker or
    /// for an invalid node.
    ///
    /// # Safety
    ///
    /// `obj` is a live slab object.
    unsafe fn new(link: *mut bindings::list_head, obj: *const c_void, nid: c_int) -> Option<Self> {
        let shrinker = shrinker()?;
        let link = NonNull::new(link.cast::<SpLink>())?;
        let nid = NodeId::new(nid)?;
        // SAFETY: `obj` is a live slab object (caller's guarantee).
        let memcg = unsafe { MemCgroup::from_slab_obj(obj) };
        Some(Self {
            shrinker,
            link,
            memcg,
            nid,
        })
    }
}

/// Adds a shadow page to the lru: a new one, or one a scan took off and
/// keeps.
///
/// # Safety
///
/// `link` is the initialised `lru_link`, on no list, of the shadow page
/// whose header is the slab object `obj` from the MMU page header cache,
/// which was allocated with `kmem_cache_alloc_lru()` for this lru; `nid` is
/// the node of its page table page. The caller holds the VM's `mmu_lock`,
/// and calls [`kvm_mmu_shrinker_del`] before freeing the page.
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_shrinker_add(
    link: *mut bindings::list_head,
    obj: *const c_void,
    nid: c_int,
) {
    // SAFETY: `obj` is a live slab object (caller's guarantee).
    let Some(t) = (unsafe { Tracked::new(link, obj, nid) }) else {
        return;
    };
    // SAFETY: The page stays valid until `kvm_mmu_shrinker_del`; the lists
    // of its memcg were allocated by `kmem_cache_alloc_lru()` (or, after
    // reparenting, are those of an ancestor, allocated with them).
    unsafe { t.shrinker.lru.add(t.link, t.nid, t.memcg.as_deref()) };
}

/// Deletes a shadow page from the lru before it is freed. A page that a
/// scan holds is on no list, and then nothing is deleted.
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
    let Some(t) = (unsafe { Tracked::new(link, obj, nid) }) else {
        return;
    };
    // SAFETY: The page is on this lru with this node and memcg, or on no
    // list (a scan took it off).
    unsafe { t.shrinker.lru.del(t.link, t.nid, t.memcg.as_deref()) };
}
