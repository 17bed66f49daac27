// SPDX-License-Identifier: GPL-2.0

//! Rust sample: a memcg-aware cache of objects behind a shrinker.
//!
//! Writing a number N to `/sys/kernel/debug/rust_shrinker_cache/fill`
//! allocates N objects of about 4 KiB. Each is charged to the memory cgroup
//! of the writing task (`GFP_KERNEL_ACCOUNT`) and put on a list_lru under
//! that memcg and the object's NUMA node. A memcg-aware, NUMA-aware
//! shrinker frees them, oldest first, when that memcg (or the whole
//! system) is under memory pressure. It takes them off the lru in batches
//! of `BATCH` objects and frees each batch with the lru lock released.
//!
//! Writing N to `fill_late` does the same, but looks up the writer's memcg
//! first and adds the objects to its lists 1.5 s later, passing that memcg
//! explicitly: the cgroup selftest removes the cgroup meanwhile, to check
//! that reclaim of the parent still finds the objects.
//!
//! Reading `/sys/kernel/debug/rust_shrinker_cache/stats` shows how many
//! objects the reader's memcg has, and the totals. It also allocates a page
//! charged to the reader's memcg and shows which memcg
//! `MemCgroup::from_page` finds for it (`page_memcg_ino`: that of the
//! reader's memcg, or of the root memcg for a task in the root, whose pages
//! are not charged; 0 without memcg). The shrinker shows up in
//! `/sys/kernel/debug/shrinker/rust_shrinker_cache-*`.
//!
//! tools/testing/selftests/cgroup/test_rust_shrinker.c uses this module.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::{flags, KBox};
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_char, c_long, c_ulong, c_void};
use kernel::page::Page;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::time::msecs_to_jiffies;
use kvm_shrinker::list_lru::{cond_resched, Batch, ListLru, LruItem, LruLinks};
use kvm_shrinker::memcg::MemCgroup;
use kvm_shrinker::node::NodeId;
use kvm_shrinker::shrinker::{
    CountResult, Registration, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags,
};

module! {
    type: ShrinkerCache,
    name: "rust_shrinker_cache",
    authors: ["KVM shrinker fork developers"],
    description: "Rust sample: a memcg-aware cache of objects behind a shrinker",
    license: "GPL",
}

/// Makes each object (with its links) take a 4 KiB kmalloc slot.
const PAYLOAD: usize = 4096 - 2 * core::mem::size_of::<usize>();

/// The most objects taken off the lru in one walk, that is under one hold of
/// its lock, and freed together after it.
const BATCH: usize = 32;

#[pin_data]
struct Object {
    #[pin]
    links: LruLinks,
    payload: [u8; PAYLOAD],
}

// SAFETY: `links` is an `LruLinks` used only for `Cache::lru`.
unsafe impl LruItem for Object {
    const LINKS_OFFSET: usize = core::mem::offset_of!(Object, links);
}

/// # Invariants
///
/// Every object on `lru` was allocated as a `KBox<Object>` by `fill` and is
/// owned by the lru: whoever takes it off the lru (only walks do) frees it.
#[pin_data(PinnedDrop)]
struct Cache {
    #[pin]
    lru: ListLru<Object>,
    allocated: AtomicUsize,
    freed: AtomicUsize,
}

impl Cache {
    /// A new object, charged to the current memcg, owned by the caller
    /// until it is on the lru (then freed by whoever takes it off).
    fn new_object() -> Result<NonNull<Object>> {
        let obj = KBox::pin_init(
            pin_init!(Object {
                links <- LruLinks::new(),
                payload <- pin_init::init_zeroed(),
            }),
            flags::GFP_KERNEL_ACCOUNT,
        )?;
        // SAFETY: The object is never moved: it lives on the lru until it is
        // freed as a `KBox` again.
        let obj = KBox::into_raw(unsafe { Pin::into_inner_unchecked(obj) });
        // SAFETY: `into_raw` never returns null.
        Ok(unsafe { NonNull::new_unchecked(obj) })
    }

    fn fill(&self, n: usize) -> Result {
        for _ in 0..n {
            let obj = Self::new_object()?;
            // SAFETY: `obj` is a live kmalloc object.
            let memcg = unsafe { MemCgroup::from_slab_obj(obj.as_ptr().cast()) };
            if let Some(memcg) = memcg {
                if let Err(e) = self.lru.prepare_memcg(&memcg, flags::GFP_KERNEL) {
                    // SAFETY: Not on the lru; we still own it.
                    drop(unsafe { KBox::from_raw(obj.as_ptr()) });
                    return Err(e);
                }
            }
            // SAFETY: A new object is on no list; the lists of its memcg were
            // prepared above (or it is uncharged and goes to the node's
            // global list); by the type invariant the lru owns it from now.
            unsafe { self.lru.add_obj(obj) };
            self.allocated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Adds `n` objects the way a caller that passes an explicit memcg does,
    /// with a delay between looking the memcg up and adding the objects:
    /// the memcg may go offline meanwhile (which the cgroup selftest makes
    /// happen). The objects go on the first possible node's list.
    fn fill_late(&self, n: usize, delay_ms: u32) -> Result {
        let nid = NodeId::possible().next().ok_or(EINVAL)?;
        let mut objs = KVec::new();
        let mut memcg = None;
        let res = self.alloc_into(n, &mut objs, &mut memcg);
        let res = res.and_then(|()| match &memcg {
            Some(m) => self.lru.prepare_memcg(m, flags::GFP_KERNEL),
            None => Ok(()),
        });
        if let Err(e) = res {
            for obj in objs {
                // SAFETY: Not on the lru; we still own it.
                drop(unsafe { KBox::from_raw(obj.as_ptr()) });
            }
            return Err(e);
        }
        // SAFETY: Sleeps; no lock is held.
        unsafe { bindings::schedule_timeout_uninterruptible(msecs_to_jiffies(delay_ms) as c_long) };
        for obj in objs {
            // SAFETY: A new object is on no list; the lists of the memcg
            // (or, once it is offline, of the ancestor its id now points
            // to) exist; by the type invariant the lru owns it from now.
            unsafe { self.lru.add(obj, nid, memcg.as_deref()) };
            self.allocated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Allocates `n` objects into `objs`, and looks up the memcg of the
    /// first.
    fn alloc_into(
        &self,
        n: usize,
        objs: &mut KVec<NonNull<Object>>,
        memcg: &mut Option<ARef<MemCgroup>>,
    ) -> Result {
        for _ in 0..n {
            let obj = Self::new_object()?;
            if memcg.is_none() {
                // SAFETY: `obj` is a live kmalloc object.
                *memcg = unsafe { MemCgroup::from_slab_obj(obj.as_ptr().cast()) };
            }
            if let Err(e) = objs.push(obj, flags::GFP_KERNEL) {
                // SAFETY: Not on the lru and not in `objs`; we own it.
                drop(unsafe { KBox::from_raw(obj.as_ptr()) });
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Objects of `memcg` (all nodes), or of the global lists for `None`.
    fn count_memcg(&self, memcg: Option<&MemCgroup>) -> usize {
        NodeId::possible()
            .map(|nid| self.lru.count_one(nid, memcg))
            .sum()
    }

    fn count_all(&self) -> usize {
        NodeId::possible().map(|nid| self.lru.count_node(nid)).sum()
    }

    /// Frees the objects of `batch`; returns how many.
    fn free(&self, batch: &mut Batch<Object, BATCH>) -> usize {
        let mut n = 0;
        for obj in batch.drain() {
            // SAFETY: A walk took the object off the lru, which owned it
            // (type invariant): it is ours now, and nothing else refers to
            // it.
            drop(unsafe { KBox::from_raw(obj.as_ptr()) });
            n += 1;
        }
        self.freed.fetch_add(n, Ordering::Relaxed);
        n
    }
}

impl Shrink for Cache {
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
        self.lru.count(sc)
    }

    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult {
        // A node that is not possible has no objects (and no lists).
        let Some(nid) = sc.nid() else {
            return ScanResult::Stop;
        };
        // Take the oldest objects off the lru in batches, each under one hold
        // of its lock, and free each batch without it. `nr_to_scan` is
        // usually the core's batch of 128, but shrinker_debugfs passes on
        // any number.
        let mut batch = Batch::new();
        let mut left = sc.nr_to_scan();
        let (mut scanned, mut freed) = (0, 0);
        while left > 0 {
            let want = left.min(BATCH);
            let mut nr = want;
            self.lru.walk_one(nid, sc.memcg(), &mut nr, |isolate| {
                isolate.remove_into(&mut batch)
            });
            let visited = want.saturating_sub(nr);
            scanned += visited;
            left = left.saturating_sub(visited);
            freed += self.free(&mut batch);
            if visited < want {
                // The list is empty.
                break;
            }
            cond_resched();
        }
        if scanned == 0 {
            // The list emptied since `count_objects`: stop this pass rather
            // than report no progress, which would be retried.
            return ScanResult::Stop;
        }
        sc.set_nr_scanned(scanned);
        ScanResult::Freed(freed)
    }
}

#[pinned_drop]
impl PinnedDrop for Cache {
    fn drop(self: Pin<&mut Self>) {
        // Free what is left, on every node and memcg, a batch at a time.
        let mut batch = Batch::new();
        for nid in NodeId::possible() {
            loop {
                let mut nr = BATCH;
                self.lru
                    .walk_node(nid, &mut nr, |isolate| isolate.remove_into(&mut batch));
                self.free(&mut batch);
                if nr > 0 {
                    // The walk ran out of objects before its budget.
                    break;
                }
                cond_resched();
            }
        }
    }
}

struct ShrinkerCache {
    dir: *mut bindings::dentry,
    _reg: Registration<Cache>,
}

// SAFETY: The dentry pointer is only used to remove the directory on drop.
unsafe impl Send for ShrinkerCache {}
// SAFETY: `&ShrinkerCache` gives no access to the dentry.
unsafe impl Sync for ShrinkerCache {}

/// `file_operations` in a `static`.
struct Fops(bindings::file_operations);
// SAFETY: Never written after initialisation.
unsafe impl Sync for Fops {}

impl Fops {
    /// Creates the debugfs file `name` in `dir` with these operations.
    ///
    /// # Safety
    ///
    /// `dir` is a debugfs directory, and `data` is valid for the operations
    /// until the file is removed.
    unsafe fn create(
        &'static self,
        name: &CStr,
        mode: u16,
        dir: *mut bindings::dentry,
        data: *mut c_void,
    ) {
        // SAFETY: By the caller's guarantees; `self` is static.
        unsafe {
            bindings::debugfs_create_file_full(
                name.as_char_ptr(),
                mode,
                dir,
                data,
                ptr::null(),
                &self.0,
            )
        };
    }
}

static FILL_FOPS: Fops = Fops(bindings::file_operations {
    open: Some(bindings::simple_open),
    write: Some(fill_write),
    // SAFETY: All-zero is the default for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});

static FILL_LATE_FOPS: Fops = Fops(bindings::file_operations {
    open: Some(bindings::simple_open),
    write: Some(fill_late_write),
    // SAFETY: All-zero is the default for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});

static STATS_FOPS: Fops = Fops(bindings::file_operations {
    open: Some(bindings::simple_open),
    read: Some(stats_read),
    llseek: Some(bindings::default_llseek),
    // SAFETY: All-zero is the default for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});

/// Parses the count written to a file whose private data is a `Cache`, and
/// fills the cache with `fill`. Returns what a `write` handler returns.
///
/// # Safety
///
/// `file` was opened with `simple_open` on a file whose private data is a
/// `Cache`, and `buf` is a user pointer of `count` bytes.
unsafe fn write_fill(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    fill: impl FnOnce(&Cache, usize) -> Result,
) -> isize {
    // SAFETY: `simple_open` set the private data to the `Cache`, which lives
    // until the file is removed, and debugfs waits for running calls.
    let cache = unsafe { &*(*file).private_data.cast::<Cache>() };
    let mut n: c_ulong = 0;
    // SAFETY: `buf` is a user pointer of `count` bytes.
    let ret = unsafe { bindings::kstrtoul_from_user(buf, count, 10, &mut n) };
    if ret != 0 {
        return ret as isize;
    }
    match fill(cache, n) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS for a file created with `FILL_FOPS` and a `Cache` as
/// private data.
unsafe extern "C" fn fill_write(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: As this function's contract.
    unsafe { write_fill(file, buf, count, |cache, n| cache.fill(n)) }
}

/// Writing N adds N objects, charged to the writer's memcg, 1.5 s after
/// looking that memcg up (see `Cache::fill_late`).
///
/// # Safety
///
/// Called by the VFS for a file created with `FILL_LATE_FOPS` and a `Cache`
/// as private data.
unsafe extern "C" fn fill_late_write(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: As this function's contract.
    unsafe { write_fill(file, buf, count, |cache, n| cache.fill_late(n, 1500)) }
}

/// # Safety
///
/// Called by the VFS for a file created with `STATS_FOPS` and a `Cache` as
/// private data.
unsafe extern "C" fn stats_read(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: As in `fill_write`.
    let cache = unsafe { &*(*file).private_data.cast::<Cache>() };
    let memcg = MemCgroup::current();
    // A kmem page charged to the reader's memcg, whose memcg is found
    // through its objcg under RCU.
    let page_memcg_ino = Page::alloc_page(flags::GFP_KERNEL_ACCOUNT)
        .ok()
        .and_then(|page| MemCgroup::from_page(&page))
        .map_or(0, |m| m.ino());
    let mut text = [0u8; 320];
    let mut w = Writer {
        buf: &mut text,
        len: 0,
    };
    let _ = core::fmt::write(
        &mut w,
        format_args!(
            "memcg_ino {}\nmemcg_objects {}\nobjects {}\nallocated {}\nfreed {}\n\
             page_memcg_ino {}\n",
            memcg.as_ref().map_or(0, |m| m.ino()),
            cache.count_memcg(memcg.as_deref()),
            cache.count_all(),
            cache.allocated.load(Ordering::Relaxed),
            cache.freed.load(Ordering::Relaxed),
            page_memcg_ino,
        ),
    );
    let len = w.len;
    // SAFETY: `buf` is a user buffer of `count` bytes, `ppos` the file
    // position, and `text` holds `len` bytes.
    unsafe {
        bindings::simple_read_from_buffer(
            buf.cast::<c_void>(),
            count,
            ppos,
            text.as_ptr().cast::<c_void>(),
            len,
        )
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl kernel::Module for ShrinkerCache {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut shrinker = Shrinker::new(
            c_str!("rust_shrinker_cache"),
            ShrinkerFlags::MEMCG_AWARE | ShrinkerFlags::NUMA_AWARE,
        )?;
        shrinker.set_seeks(2);
        let reg = shrinker.register(|s| {
            KBox::pin_init(
                try_pin_init!(Cache {
                    lru <- ListLru::new(s, kernel::static_lock_class!()),
                    allocated: AtomicUsize::new(0),
                    freed: AtomicUsize::new(0),
                }),
                flags::GFP_KERNEL,
            )
        })?;
        let data = ptr::from_ref::<Cache>(&*reg).cast_mut().cast::<c_void>();
        // SAFETY: Plain debugfs calls with NUL-terminated names; `data`
        // outlives the files, which `drop` removes before `reg` goes.
        let dir = unsafe {
            let dir = bindings::debugfs_create_dir(
                c_str!("rust_shrinker_cache").as_char_ptr(),
                ptr::null_mut(),
            );
            FILL_FOPS.create(c_str!("fill"), 0o200, dir, data);
            FILL_LATE_FOPS.create(c_str!("fill_late"), 0o200, dir, data);
            STATS_FOPS.create(c_str!("stats"), 0o444, dir, data);
            dir
        };
        pr_info!(
            "memcg-aware shrinker registered (memcg {})\n",
            if MemCgroup::disabled() {
                "disabled"
            } else {
                "enabled"
            }
        );
        Ok(ShrinkerCache { dir, _reg: reg })
    }
}

impl Drop for ShrinkerCache {
    fn drop(&mut self) {
        // SAFETY: Removes the files (waiting for running calls) before the
        // registration, which the files point to, is dropped.
        unsafe { bindings::debugfs_remove(self.dir) };
    }
}
