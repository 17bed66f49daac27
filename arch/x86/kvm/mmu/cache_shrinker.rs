// SPDX-License-Identifier: GPL-2.0

//! The memcg-aware shrinker of the vCPUs' MMU page caches, "kvm-mmu-cache".
//!
//! C side: [`arch/x86/kvm/mmu/mmu_cache.c`](srctree/arch/x86/kvm/mmu/mmu_cache.c),
//! which describes how the caches' pages are tracked and locked.
//!
//! Every vCPU keeps free pages in its MMU page caches, topped up before
//! each fault and charged to the memcg of the vCPU's task. The TDP MMU
//! draws its page tables from them as the shadow MMU does, so this memory
//! exists whatever the paging mode. Every such page is on this shrinker's
//! list_lru while it is cached, under the memcg it is charged to and its
//! node, so `count_objects` is O(1) and a scan frees only pages of the
//! memcg and node under pressure.
//!
//! It is a shrinker of its own rather than a second list of "kvm-mmu":
//! cached pages are free memory that costs a page allocation to replace,
//! not page tables that a guest has to fault in again, so they are
//! reclaimed more eagerly ([`SEEKS`]), with no aging and no VM lock; and
//! shrinker_debugfs shows their count per memcg apart from the shadow
//! pages'.
//!
//! A scan works in batches of at most [`BATCH`] pages. Under the lru lock
//! it takes each page out of its vCPU's cache (unless the vCPU is using its
//! caches: then the page is left for the next round) and off the lru; with
//! the lock dropped, it frees the batch, reports the pages to the reclaim
//! in progress, and reschedules if needed.

use core::ptr::NonNull;
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kvm_shrinker::list_lru::{self, Batch, Isolate, Isolated, ListLru, LruItem, LruLinks};
use kvm_shrinker::memcg::MemCgroup;
use kvm_shrinker::shrinker::{
    CountResult, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags, StaticRegistration,
};

const __LOG_PREFIX: &[u8] = b"kvm\0";

/// Half of `DEFAULT_SEEKS`: a cached page is free memory, cheaper to
/// replace than the objects of most caches, so reclaim scans twice as many
/// of them.
const SEEKS: u32 = 1;

/// The most pages a batch takes off the lru under one lock hold.
const BATCH: usize = 32;

/// Checks, when this file builds, that a function it defines for C has the
/// type that mmu_cache.h declares.
macro_rules! declared_as_in_mmu_cache_h {
    ($name:ident: $ty:ty) => {
        const _: [$ty; 2] = [bindings::$name, $name];
    };
}

declared_as_in_mmu_cache_h!(kvm_mmu_cache_shrinker_init: unsafe extern "C" fn() -> c_int);
declared_as_in_mmu_cache_h!(kvm_mmu_cache_shrinker_exit: unsafe extern "C" fn());
declared_as_in_mmu_cache_h!(kvm_mmu_cache_lru_prepare: unsafe extern "C" fn());
declared_as_in_mmu_cache_h!(kvm_mmu_cache_lru_add:
    unsafe extern "C" fn(*mut bindings::list_head, *mut bindings::page) -> bool);
declared_as_in_mmu_cache_h!(kvm_mmu_cache_lru_del:
    unsafe extern "C" fn(*mut bindings::list_head, *mut bindings::page));

/// The `lru` link of a cached page's `struct page`.
#[repr(transparent)]
struct CachedPage(LruLinks);

// SAFETY: `CachedPage` is a transparent `LruLinks`, used only for this
// shrinker's list_lru.
unsafe impl LruItem for CachedPage {
    const LINKS_OFFSET: usize = 0;
}

fn link_ptr(link: NonNull<CachedPage>) -> *mut bindings::list_head {
    link.as_ptr().cast()
}

/// Takes pages out of the vCPUs' caches into a batch, under the lru lock.
struct Isolation {
    pages: Batch<CachedPage, BATCH>,
    /// The pages visited (taken, or left because their vCPU was busy).
    visited: usize,
}

impl Isolation {
    fn isolate<'a>(&mut self, it: Isolate<'a, CachedPage>) -> Isolated<'a> {
        // Before the page leaves its cache: a page taken out of a cache must
        // make it into the batch.
        if self.pages.is_full() {
            return it.stop();
        }
        self.visited += 1;
        // SAFETY: The lru lock is held and the page is on the lru, so it is
        // a cached page of a live vCPU.
        match unsafe { bindings::kvm_mmu_cache_take(link_ptr(it.item_ptr())) } {
            // The page is out of its cache and now ours; the batch has room.
            0 => it.remove_into(&mut self.pages),
            // In no cache (a broken rule, warned about): not the vCPU's any
            // more, so off the lru, and not ours to free.
            e if e == ENOENT.to_errno() => it.remove().done(),
            // The vCPU is using its caches: leave the page for next time.
            _ => it.rotate(),
        }
    }

    /// Frees the pages of the batch. The lru lock must not be held.
    fn free(&mut self) -> usize {
        let mut freed = 0;
        for page in self.pages.drain() {
            // SAFETY: `kvm_mmu_cache_take()` gave the page to this walk,
            // which took it off the lru: nothing else refers to it.
            unsafe { bindings::kvm_mmu_cache_free(link_ptr(page)) };
            freed += 1;
        }
        freed
    }
}

/// The shrinker's private data.
#[pin_data]
struct CacheShrinker {
    #[pin]
    lru: ListLru<CachedPage>,
}

impl Shrink for CacheShrinker {
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
        self.lru.count(sc)
    }

    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult {
        let Some(nid) = sc.nid() else {
            return ScanResult::Stop;
        };
        let memcg = sc.memcg();
        let limit = sc.nr_to_scan().min(self.lru.count_one(nid, memcg));
        let mut visited = 0;
        let mut freed = 0;
        while visited < limit {
            let mut iso = Isolation {
                pages: Batch::new(),
                visited: 0,
            };
            let mut nr = (limit - visited).min(BATCH);
            self.lru.walk_one(nid, memcg, &mut nr, |it| iso.isolate(it));
            freed += iso.free();
            if iso.visited == 0 {
                break;
            }
            visited += iso.visited;
            list_lru::cond_resched();
        }
        sc.set_nr_scanned(visited);
        if visited == 0 {
            return ScanResult::Stop;
        }
        ScanResult::Freed(freed as _)
    }
}

/// The registered shrinker, between [`kvm_mmu_cache_shrinker_init`] and
/// [`kvm_mmu_cache_shrinker_exit`].
static SHRINKER: StaticRegistration<CacheShrinker> = StaticRegistration::new();

/// The registered shrinker's data.
///
/// Only called while a VM exists, which is between init and exit.
fn shrinker() -> Option<&'static CacheShrinker> {
    // SAFETY: by its contract `kvm_mmu_cache_shrinker_exit` runs when no
    // VM exists and no entry point of this file runs, so not
    // concurrently with the callers, which do not keep the reference.
    unsafe { SHRINKER.get() }
}

/// Registers the shrinker, named "kvm-mmu-cache" in shrinker_debugfs.
/// Called by `kvm_mmu_vendor_module_init()`.
#[no_mangle]
pub extern "C" fn kvm_mmu_cache_shrinker_init() -> c_int {
    let init = |s: &Shrinker| {
        KBox::pin_init(
            try_pin_init!(CacheShrinker {
                lru <- ListLru::new(s, kernel::static_lock_class!()),
            }),
            GFP_KERNEL,
        )
    };
    let flags = ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE;
    match SHRINKER.register(c_str!("kvm-mmu-cache"), flags, SEEKS, init) {
        Ok(()) => 0,
        Err(e) => {
            pr_err!("cannot register the MMU cache shrinker: {:?}\n", e);
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
pub unsafe extern "C" fn kvm_mmu_cache_shrinker_exit() {
    SHRINKER.unregister();
}

/// Makes sure the current task's memcg has its lists on the lru, before a
/// top-up adds the pages charged to it. May sleep.
#[no_mangle]
pub extern "C" fn kvm_mmu_cache_lru_prepare() {
    if let (Some(shrinker), Some(memcg)) = (shrinker(), MemCgroup::current()) {
        // A failure is not fatal: `add_page` then tries without sleeping,
        // and a page it cannot add stays in its cache, untracked.
        let _ = shrinker.lru.prepare_memcg(&memcg, GFP_KERNEL);
    }
}

/// Puts a page that a vCPU just added to its cache on the lru, under its
/// node and the memcg it is charged to. Returns `false` if it is not
/// tracked (no shrinker, or its memcg's lists could not be allocated); the
/// caller then leaves it untracked.
///
/// # Safety
///
/// `page` is an allocated page of a vCPU's MMU page cache, whose `private`
/// field points to the vCPU, and `link` is its `lru` field, initialised
/// and on no list. The page stays allocated until
/// [`kvm_mmu_cache_lru_del`], or until the shrinker took it off the lru.
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_cache_lru_add(
    link: *mut bindings::list_head,
    page: *mut bindings::page,
) -> bool {
    let (Some(shrinker), Some(link)) = (shrinker(), NonNull::new(link.cast::<CachedPage>())) else {
        return false;
    };
    // SAFETY: As guaranteed by the caller; the link is on no list.
    unsafe { shrinker.lru.add_page(link, page) }
}

/// Takes a cached page off the lru: it is leaving its vCPU's cache. A page
/// that the shrinker took is on no list, and then nothing is deleted.
///
/// # Safety
///
/// `link` and `page` are as for a successful [`kvm_mmu_cache_lru_add`].
#[no_mangle]
pub unsafe extern "C" fn kvm_mmu_cache_lru_del(
    link: *mut bindings::list_head,
    page: *mut bindings::page,
) {
    let (Some(shrinker), Some(link)) = (shrinker(), NonNull::new(link.cast::<CachedPage>())) else {
        return;
    };
    // SAFETY: As guaranteed by the caller: the page is on this lru, added
    // by `add_page`, or on no list.
    unsafe { shrinker.lru.del_page(link, page) };
}
