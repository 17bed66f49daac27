// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the crate (suite `rust_kvm_shrinker`), run at boot when
//! KUnit is built in.
//!
//! Each test drives the real C code: shrinkers are allocated and registered,
//! their callbacks are called through the function pointers the shrinker
//! core uses, and items go through real list_lrus.

use crate::list_lru::{Batch, ListLru, LruItem, LruLinks};
use crate::memcg::MemCgroup;
use crate::node::NodeId;
use crate::shrinker::{CountResult, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::bindings;
use kernel::c_str;
use kernel::init::InPlaceInit;
use kernel::prelude::*;

/// Fails the running KUnit test (and ends it) unless `$cond` holds.
macro_rules! check {
    ($cond:expr) => {
        kernel::kunit_assert!("rust_kvm_shrinker", c"rust/kvm_shrinker/kunit.rs", 0, $cond)
    };
}

#[pin_data]
struct Item {
    #[pin]
    links: LruLinks,
    value: u32,
}

// SAFETY: `links` is an `LruLinks` used only for the lru under test.
unsafe impl LruItem for Item {
    const LINKS_OFFSET: usize = core::mem::offset_of!(Item, links);
}

fn new_item(value: u32) -> Option<NonNull<Item>> {
    let item = KBox::pin_init(
        pin_init!(Item {
            links <- LruLinks::new(),
            value,
        }),
        GFP_KERNEL,
    )
    .ok()?;
    // SAFETY: The item is freed only by `free_item`, after it has left the
    // lru, and is never moved meanwhile.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(item) });
    NonNull::new(raw)
}

/// # Safety
///
/// `item` comes from `new_item`, is on no list and is not used afterwards.
unsafe fn free_item(item: NonNull<Item>) {
    // SAFETY: By the caller's guarantee.
    drop(unsafe { KBox::from_raw(item.as_ptr()) });
}

/// The first possible node (node 0 is not always possible).
fn first_node() -> Option<NodeId> {
    NodeId::possible().next()
}

/// `nr_node_ids`, as the C code sees it.
fn nr_node_ids() -> i32 {
    // SAFETY: Reads a variable that is written once during boot.
    i32::try_from(unsafe { bindings::get_nr_node_ids() }).unwrap_or(i32::MAX)
}

fn shrink_control(
    nid: i32,
    nr_to_scan: kernel::ffi::c_ulong,
    gfp: bindings::gfp_t,
) -> bindings::shrink_control {
    bindings::shrink_control {
        gfp_mask: gfp,
        nid,
        nr_to_scan,
        nr_scanned: 0,
        memcg: ptr::null_mut(),
    }
}

extern "C" fn results(_test: *mut bindings::kunit) {
    check!(CountResult::Freeable(5).to_raw() == 5);
    check!(CountResult::Unknown.to_raw() == 0);
    check!(CountResult::Freeable(0).to_raw() == 0);
    check!(CountResult::Empty.to_raw() == !0 - 1);
    // Clamped to LONG_MAX: do_shrink_slab() keeps counts in a `long`.
    check!(CountResult::Freeable(usize::MAX).to_raw() == isize::MAX as usize);
    check!(CountResult::Freeable(isize::MAX as usize + 1).to_raw() == isize::MAX as usize);
    check!(CountResult::Freeable(isize::MAX as usize).to_raw() == isize::MAX as usize);
    check!(ScanResult::Stop.to_raw() == !0);
    check!(ScanResult::Freed(usize::MAX).to_raw() == isize::MAX as usize);
}

extern "C" fn shrink_control_fields(_test: *mut bindings::kunit) {
    let node = first_node();
    check!(node.is_some());
    let Some(node) = node else { return };
    let mut raw = shrink_control(node.as_raw(), 128, bindings::GFP_KERNEL);
    // SAFETY: `raw` lives on this stack frame for the whole test.
    let sc = unsafe { ShrinkControl::from_raw(&mut raw) };
    check!(sc.nid() == Some(node));
    check!(sc.nr_to_scan() == 128);
    check!(sc.fs_allowed() && sc.io_allowed() && sc.may_sleep());
    check!(sc.memcg().is_none());
    // Not clamped to nr_to_scan: the shrinker reports its real work.
    sc.set_nr_scanned(300);
    check!(sc.nr_scanned() == 300);
    check!(raw.nr_scanned == 300);

    let mut raw = shrink_control(node.as_raw(), 1, bindings::GFP_NOWAIT);
    // SAFETY: As above.
    let sc = unsafe { ShrinkControl::from_raw(&mut raw) };
    check!(!sc.fs_allowed() && !sc.io_allowed() && !sc.may_sleep());

    // shrinker_debugfs passes on any id below nr_node_ids.
    for nid in [-1, nr_node_ids(), i32::MAX] {
        let mut raw = shrink_control(nid, 1, bindings::GFP_KERNEL);
        // SAFETY: As above.
        let sc = unsafe { ShrinkControl::from_raw(&mut raw) };
        check!(sc.nid().is_none());
    }
}

extern "C" fn memcg_root(_test: *mut bindings::kunit) {
    // KUnit runs in a kernel thread, which belongs to the root memcg.
    match MemCgroup::current() {
        None => check!(MemCgroup::disabled()),
        Some(memcg) => {
            check!(!MemCgroup::disabled());
            check!(memcg.is_root());
            check!(memcg.ino() != 0);
            let again = memcg.clone();
            check!(again.id() == memcg.id());
            let mut raw = shrink_control(0, 1, bindings::GFP_KERNEL);
            raw.memcg = memcg.as_raw();
            // SAFETY: `raw` lives on this stack frame; `memcg` holds a
            // reference on the memcg for longer than `sc` exists.
            let sc = unsafe { ShrinkControl::from_raw(&mut raw) };
            check!(sc.memcg().map(MemCgroup::as_raw) == Some(memcg.as_raw()));
            // An uncharged page belongs to the root memcg.
            let page = kernel::page::Page::alloc_page(GFP_KERNEL);
            check!(page.is_ok());
            if let Ok(page) = page {
                let of_page = MemCgroup::from_page(&page);
                check!(of_page.is_some_and(|m| m.is_root()));
            }
        }
    }
}

#[pin_data]
struct TestCache {
    #[pin]
    lru: ListLru<Item>,
    freed: AtomicUsize,
}

impl Shrink for TestCache {
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
        self.lru.count(sc)
    }

    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult {
        let freed = self.lru.walk(sc, |isolate| {
            let ((), status) = isolate.remove().unlock_then(|item| {
                // SAFETY: The item was just removed from the lru; nothing
                // else refers to it.
                unsafe { free_item(item) };
            });
            status
        });
        self.freed.fetch_add(freed, Ordering::Relaxed);
        if freed == 0 {
            return ScanResult::Stop;
        }
        sc.set_nr_scanned(freed);
        ScanResult::Freed(freed)
    }
}

fn new_cache(name: &'static kernel::str::CStr) -> Option<crate::shrinker::Registration<TestCache>> {
    let mut shrinker =
        Shrinker::new(name, ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE).ok()?;
    shrinker.set_seeks(2);
    shrinker
        .register(|s| {
            KBox::pin_init(
                try_pin_init!(TestCache {
                    lru <- ListLru::new(s, kernel::static_lock_class!()),
                    freed: AtomicUsize::new(0),
                }),
                GFP_KERNEL,
            )
        })
        .ok()
}

extern "C" fn shrinker_callbacks(_test: *mut bindings::kunit) {
    let reg = new_cache(c_str!("rust_kvm_shrinker-kunit"));
    check!(reg.is_some());
    let Some(reg) = reg else { return };
    let Some(node) = first_node() else { return };
    let shrinker = reg.as_raw();
    // SAFETY: `reg` keeps the shrinker registered for the whole test.
    let (count, scan) = unsafe { ((*shrinker).count_objects, (*shrinker).scan_objects) };
    check!(count.is_some() && scan.is_some());
    let (Some(count), Some(scan)) = (count, scan) else {
        return;
    };

    let mut sc = shrink_control(node.as_raw(), 16, bindings::GFP_KERNEL);
    // An empty list reports SHRINK_EMPTY, so memcg reclaim can clear the bit.
    // SAFETY: The shrinker core's calling convention: a registered shrinker
    // and a shrink_control used by this thread only.
    check!(unsafe { count(shrinker, &mut sc) } == CountResult::Empty.to_raw());

    for value in 0..3 {
        let item = new_item(value);
        check!(item.is_some());
        let Some(item) = item else { return };
        // SAFETY: A new item is on no list and stays valid until removed;
        // the root lists always exist.
        check!(unsafe { reg.lru.add(item, node, None) });
    }
    check!(reg.lru.count_one(node, None) == 3);

    // Node ids that are not possible: nothing to count or scan, although
    // the lru has items (shrinker_debugfs `scan` passes on any id below
    // nr_node_ids, a hole of a sparse node map included).
    for nid in (-1..=nr_node_ids()).filter(|&nid| NodeId::new(nid).is_none()) {
        let mut bad = shrink_control(nid, 16, bindings::GFP_KERNEL);
        // SAFETY: As above.
        check!(unsafe { count(shrinker, &mut bad) } == CountResult::Empty.to_raw());
        // SAFETY: As above.
        check!(unsafe { scan(shrinker, &mut bad) } == ScanResult::Stop.to_raw());
        // SAFETY: `bad` lives on this stack frame and is used by `sc` only.
        let sc = unsafe { ShrinkControl::from_raw(&mut bad) };
        check!(reg.lru.walk(sc, |it| it.stop()) == 0);
    }
    check!(reg.lru.count_one(node, None) == 3);
    // SAFETY: As above.
    check!(unsafe { count(shrinker, &mut sc) } == 3);

    sc.nr_to_scan = 2;
    // SAFETY: As above.
    let freed = unsafe { scan(shrinker, &mut sc) };
    check!(freed == 2);
    check!(sc.nr_scanned == 2);
    check!(reg.freed.load(Ordering::Relaxed) == 2);
    check!(reg.lru.count_one(node, None) == 1);

    // Empty the lru before the registration (and the lru) goes away.
    sc.nr_to_scan = 16;
    // SAFETY: As above.
    check!(unsafe { scan(shrinker, &mut sc) } == 1);
    check!(reg.lru.count_node(node) == 0);
}

/// Adds `N` new items with values 0 to N - 1, oldest first, to the root list
/// of `node`.
fn add_items<const N: usize>(lru: &ListLru<Item>, node: NodeId) -> Option<[NonNull<Item>; N]> {
    let mut items = [NonNull::dangling(); N];
    for (value, slot) in items.iter_mut().enumerate() {
        let item = new_item(u32::try_from(value).ok()?)?;
        *slot = item;
        // SAFETY: A new item is on no list and stays valid until it is
        // taken off (the tests free items only then); the root lists always
        // exist.
        if !unsafe { lru.add(item, node, None) } {
            return None;
        }
    }
    Some(items)
}

/// A registered test cache, its first node and `N` new items on that
/// node's root list, oldest first; `None` after reporting what failed.
fn setup<const N: usize>(
    name: &'static kernel::str::CStr,
) -> Option<(
    crate::shrinker::Registration<TestCache>,
    NodeId,
    [NonNull<Item>; N],
)> {
    let reg = new_cache(name);
    check!(reg.is_some());
    let reg = reg?;
    let node = first_node()?;
    let items = add_items::<N>(&reg.lru, node);
    check!(items.is_some());
    Some((reg, node, items?))
}

extern "C" fn lru_walk_protocol(_test: *mut bindings::kunit) {
    let Some((reg, node, items)) = setup::<4>(c_str!("rust_kvm_shrinker-kunit-walk")) else {
        return;
    };

    // Oldest first: 0 is rotated, 1 skipped, 2 taken off into a batch, 3
    // taken off and freed with the lock dropped.
    let mut batch = Batch::<Item, 4>::new();
    let mut seen = [0u32; 4];
    let mut nr = 4;
    let removed = reg.lru.walk_one(node, None, &mut nr, |isolate| {
        let value = isolate.item().value;
        if let Some(n) = seen.get_mut(value as usize) {
            *n += 1;
        }
        match value {
            0 => isolate.rotate(),
            1 => isolate.skip(),
            2 => isolate.remove_into(&mut batch),
            _ => {
                let ((), status) = isolate.remove().unlock_then(|item| {
                    // SAFETY: Taken off the lru; nothing else refers to it.
                    unsafe { free_item(item) };
                });
                status
            }
        }
    });
    check!(removed == 2);
    check!(seen == [1, 1, 1, 1]);
    check!(reg.lru.count_one(node, None) == 2);
    check!(reg.lru.count_node(node) == 2);
    check!(batch.as_slice() == [items[2]]);
    let popped = batch.pop();
    check!(popped == Some(items[2]));
    check!(batch.is_empty());
    if let Some(item) = popped {
        // SAFETY: Off every list now.
        unsafe { free_item(item) };
    }

    // Rotation moved 0 behind 1: a walk of one item now sees 1.
    let mut nr = 1;
    let mut first = u32::MAX;
    reg.lru.walk_one(node, None, &mut nr, |isolate| {
        first = isolate.item().value;
        isolate.skip()
    });
    check!(first == 1);
    check!(nr == 0);

    // The lock dropped without a removal (`LRU_RETRY`: the walk restarts
    // from the head, so 1 is visited again), then an explicit stop; the
    // `del`s below take the same lock, which each decision must have left
    // as the walker expects (released after both).
    let mut nr = 4;
    let mut visits = [0u32; 2];
    let removed = reg.lru.walk_one(node, None, &mut nr, |isolate| {
        let value = isolate.item().value;
        let n = visits.get_mut(value as usize).map_or(0, |n| {
            *n += 1;
            *n
        });
        if n == 1 {
            let ((), status) = isolate.unlock_then(|_| ());
            status
        } else {
            isolate.stop()
        }
    });
    check!(removed == 0);
    check!(visits == [0, 2]);
    check!(nr == 2);
    check!(reg.lru.count_one(node, None) == 2);

    for item in [items[0], items[1]] {
        // SAFETY: Both are still on the root list of `node`.
        check!(unsafe { reg.lru.del(item, node, None) });
        // SAFETY: Off the lru now.
        unsafe { free_item(item) };
    }
    check!(reg.lru.count_node(node) == 0);
}

/// An item that a walk took off the lru is on no list: a later `del` of it
/// returns `false` and changes no count. (Before, an item moved to a
/// private list by `list_lru_isolate_move()` was still linked there, and
/// `del` unlinked it behind that list's back and decremented the counts a
/// second time.)
extern "C" fn lru_remove_then_del(_test: *mut bindings::kunit) {
    let Some((reg, node, items)) = setup::<3>(c_str!("rust_kvm_shrinker-kunit-del")) else {
        return;
    };

    let mut batch = Batch::<Item, 2>::new();
    let mut nr = Batch::<Item, 2>::CAPACITY;
    let removed = reg.lru.walk_one(node, None, &mut nr, |isolate| {
        isolate.remove_into(&mut batch)
    });
    check!(removed == 2 && nr == 0);
    check!(batch.is_full());
    check!(batch.as_slice() == [items[0], items[1]]);
    check!(reg.lru.count_one(node, None) == 1 && reg.lru.count_node(node) == 1);

    for item in [items[0], items[1]] {
        // SAFETY: Valid (not freed yet) and on no list.
        check!(!unsafe { reg.lru.del(item, node, None) });
        check!(reg.lru.count_one(node, None) == 1 && reg.lru.count_node(node) == 1);
    }
    // The last one is still there, and counted once.
    let mut nr = 8;
    let mut left = 0;
    reg.lru.walk_one(node, None, &mut nr, |isolate| {
        left += 1;
        isolate.skip()
    });
    check!(left == 1 && nr == 7);
    // SAFETY: On the root list of `node`.
    check!(unsafe { reg.lru.del(items[2], node, None) });
    check!(reg.lru.count_one(node, None) == 0 && reg.lru.count_node(node) == 0);
    // A removed item can be added again, and is counted once.
    // SAFETY: On no list, valid; the root lists exist.
    check!(unsafe { reg.lru.add(items[0], node, None) });
    check!(reg.lru.count_node(node) == 1);
    // SAFETY: On the root list of `node`.
    check!(unsafe { reg.lru.del(items[0], node, None) });
    check!(reg.lru.count_node(node) == 0);
    check!(batch.drain().count() == 2 && batch.is_empty());
    for item in items {
        // SAFETY: Off every list, not used afterwards.
        unsafe { free_item(item) };
    }
}

/// A full batch ends the walk and leaves the item on the lru.
extern "C" fn lru_batch_full(_test: *mut bindings::kunit) {
    let Some((reg, node, items)) = setup::<3>(c_str!("rust_kvm_shrinker-kunit-batch")) else {
        return;
    };

    let mut batch = Batch::<Item, 1>::new();
    let mut nr = 3;
    let removed = reg.lru.walk_one(node, None, &mut nr, |isolate| {
        isolate.remove_into(&mut batch)
    });
    // The second visit found the batch full and stopped the walk there.
    check!(removed == 1 && nr == 1);
    check!(batch.as_slice() == [items[0]]);
    check!(reg.lru.count_node(node) == 2);
    check!(batch.drain().eq([items[0]]));
    check!(batch.is_empty() && batch.pop().is_none());
    for item in [items[1], items[2]] {
        // SAFETY: Still on the root list of `node`.
        check!(unsafe { reg.lru.del(item, node, None) });
    }
    check!(reg.lru.count_node(node) == 0);
    for item in items {
        // SAFETY: Off every list, not used afterwards.
        unsafe { free_item(item) };
    }
}

/// Node ids: out of range or not possible is `None`; every possible node
/// has lists, empty in a new lru.
extern "C" fn node_ids(_test: *mut bindings::kunit) {
    let nr = nr_node_ids();
    check!(nr >= 1);
    check!(NodeId::new(-1).is_none());
    check!(NodeId::new(i32::MIN).is_none());
    check!(NodeId::new(nr).is_none());
    check!(NodeId::new(i32::MAX).is_none());
    check!(first_node().is_some());

    let reg = new_cache(c_str!("rust_kvm_shrinker-kunit-nodes"));
    check!(reg.is_some());
    let Some(reg) = reg else { return };
    let Some(memcg) = MemCgroup::current() else {
        check!(MemCgroup::disabled());
        return;
    };
    let mut last = -1;
    for node in NodeId::possible() {
        let nid = node.as_raw();
        check!(nid > last && nid < nr);
        last = nid;
        check!(NodeId::new(nid) == Some(node));
        check!(reg.lru.count_one(node, None) == 0);
        check!(reg.lru.count_one(node, Some(&memcg)) == 0);
        check!(reg.lru.count_node(node) == 0);
        let mut nr_walk = 4;
        check!(reg.lru.walk_node(node, &mut nr_walk, |it| it.skip()) == 0);
        check!(nr_walk == 4);
    }
    // Every id below nr_node_ids is a possible node or a hole.
    let possible = NodeId::possible().count();
    let holes = (0..nr).filter(|&nid| NodeId::new(nid).is_none()).count();
    check!(usize::try_from(nr).is_ok_and(|nr| possible + holes == nr));
}

extern "C" fn lru_root_memcg(_test: *mut bindings::kunit) {
    let Some(memcg) = MemCgroup::current() else {
        check!(MemCgroup::disabled());
        return;
    };
    let reg = new_cache(c_str!("rust_kvm_shrinker-kunit-memcg"));
    check!(reg.is_some());
    let Some(reg) = reg else { return };
    check!(reg.lru.prepare_memcg(&memcg, GFP_KERNEL).is_ok());
    let Some(node) = first_node() else { return };
    let item = new_item(7);
    check!(item.is_some());
    let Some(item) = item else { return };
    // SAFETY: A new item; the root memcg's lists are the global ones.
    check!(unsafe { reg.lru.add(item, node, Some(&memcg)) });
    // The root memcg's items live on the node's global list.
    check!(reg.lru.count_one(node, Some(&memcg)) == 1);
    check!(reg.lru.count_one(node, None) == 1);
    // SAFETY: On the lru with the same node and memcg.
    check!(unsafe { reg.lru.del(item, node, Some(&memcg)) });
    // SAFETY: Off the lru now.
    unsafe { free_item(item) };
}

macro_rules! kunit_case {
    ($name:ident) => {
        bindings::kunit_case {
            run_case: Some($name as unsafe extern "C" fn(*mut bindings::kunit)),
            name: concat!(stringify!($name), "\0").as_ptr().cast(),
            // SAFETY: All-zero is the initial state of the remaining fields
            // (as with C's designated initialisers).
            ..unsafe { core::mem::zeroed() }
        }
    };
}

const fn suite_name(name: &[u8]) -> [kernel::ffi::c_char; 256] {
    let mut out = [0; 256];
    let mut i = 0;
    while i < name.len() && i < 255 {
        out[i] = name[i];
        i += 1;
    }
    out
}

// KUnit writes its per-case state into these, hence `static mut`; only the
// KUnit executor accesses them, through the pointer in `SUITES`.
static mut CASES: [bindings::kunit_case; 10] = [
    kunit_case!(results),
    kunit_case!(shrink_control_fields),
    kunit_case!(memcg_root),
    kunit_case!(node_ids),
    kunit_case!(shrinker_callbacks),
    kunit_case!(lru_walk_protocol),
    kunit_case!(lru_remove_then_del),
    kunit_case!(lru_batch_full),
    kunit_case!(lru_root_memcg),
    // SAFETY: An all-zero case ends the array.
    unsafe { core::mem::zeroed() },
];

static mut SUITE: bindings::kunit_suite = bindings::kunit_suite {
    name: suite_name(b"rust_kvm_shrinker"),
    test_cases: ptr::addr_of_mut!(CASES).cast(),
    // SAFETY: All-zero is the initial state of the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

/// What `kunit_test_suite()` emits in C: a pointer to the suite in the
/// section that the KUnit executor reads at boot.
#[used]
#[link_section = ".kunit_test_suites"]
static mut SUITES: [*mut bindings::kunit_suite; 1] = [ptr::addr_of_mut!(SUITE)];
