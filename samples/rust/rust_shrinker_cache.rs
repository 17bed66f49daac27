// SPDX-License-Identifier: GPL-2.0

//! Rust sample: a memcg-aware cache of objects behind a shrinker.
//!
//! Writing a number N to `/sys/kernel/debug/rust_shrinker_cache/fill`
//! allocates N objects of about 4 KiB. Each is charged to the memory cgroup
//! of the writing task (`GFP_KERNEL_ACCOUNT`) and put on a list_lru under
//! that memcg and the object's NUMA node. A memcg-aware, NUMA-aware
//! shrinker frees them, oldest first, when that memcg (or the whole
//! system) is under memory pressure.
//!
//! Reading `/sys/kernel/debug/rust_shrinker_cache/stats` shows how many
//! objects the reader's memcg has, and the totals. The shrinker shows up in
//! `/sys/kernel/debug/shrinker/rust_shrinker_cache-*`.
//!
//! tools/testing/selftests/cgroup/test_rust_shrinker.c uses this module.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::{flags, KBox};
use kernel::bindings;
use kernel::c_str;
use kernel::ffi::{c_char, c_ulong, c_void};
use kernel::init;
use kernel::prelude::*;
use kernel::stack_pin_init;
use kvm_shrinker::list_lru::{DisposeList, ListLru, LruItem, LruLinks};
use kvm_shrinker::memcg::MemCgroup;
use kvm_shrinker::shrinker::{
    CountResult, Registration, ScanResult, Shrink, ShrinkControl, Shrinker, ShrinkerFlags,
};

module! {
    type: ShrinkerCache,
    name: "rust_shrinker_cache",
    author: "KVM shrinker fork developers",
    description: "Rust sample: a memcg-aware cache of objects behind a shrinker",
    license: "GPL",
}

/// Makes each object (with its links) take a 4 KiB kmalloc slot.
const PAYLOAD: usize = 4096 - 2 * core::mem::size_of::<usize>();

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
/// owned by the lru: whoever removes it from the lru frees it.
#[pin_data(PinnedDrop)]
struct Cache {
    #[pin]
    lru: ListLru<Object>,
    allocated: AtomicUsize,
    freed: AtomicUsize,
}

impl Cache {
    fn fill(&self, n: usize) -> Result {
        for _ in 0..n {
            let obj = KBox::pin_init(
                pin_init!(Object {
                    links <- LruLinks::new(),
                    payload <- init::zeroed(),
                }),
                flags::GFP_KERNEL_ACCOUNT,
            )?;
            // SAFETY: The object is never moved: it lives on the lru until
            // it is freed as a `KBox` again.
            let obj = KBox::into_raw(unsafe { Pin::into_inner_unchecked(obj) });
            // SAFETY: `into_raw` never returns null.
            let obj = unsafe { NonNull::new_unchecked(obj) };
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

    /// Objects of `memcg` (all nodes), or of the global lists for `None`.
    fn count_memcg(&self, memcg: Option<&MemCgroup>) -> usize {
        (0..nr_node_ids())
            .map(|nid| self.lru.count_one(nid, memcg))
            .sum()
    }

    fn count_all(&self) -> usize {
        (0..nr_node_ids()).map(|nid| self.lru.count_node(nid)).sum()
    }
}

fn nr_node_ids() -> i32 {
    // SAFETY: `nr_node_ids` is set once during boot.
    let n = unsafe { bindings::nr_node_ids };
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Shrink for Cache {
    fn count_objects(&self, sc: &ShrinkControl) -> CountResult {
        self.lru.count(sc)
    }

    fn scan_objects(&self, sc: &ShrinkControl) -> ScanResult {
        // Move the oldest objects to a private list under the lru lock, then
        // free them without it.
        stack_pin_init!(let dispose = DisposeList::<Object>::new());
        let mut scanned = 0;
        self.lru.walk(sc, |isolate| {
            scanned += 1;
            isolate.remove_to(dispose.as_mut())
        });
        let mut freed = 0;
        while let Some(obj) = dispose.as_mut().pop() {
            // SAFETY: Removed from the lru, which owned it (type invariant).
            drop(unsafe { KBox::from_raw(obj.as_ptr()) });
            freed += 1;
        }
        self.freed.fetch_add(freed, Ordering::Relaxed);
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
        // Free what is left, on every node and memcg.
        for nid in 0..nr_node_ids() {
            let mut nr = usize::MAX;
            self.lru.walk_node(nid, &mut nr, |isolate| {
                let ((), status) = isolate.remove().unlock_then(|obj| {
                    // SAFETY: Removed from the lru, which owned it.
                    drop(unsafe { KBox::from_raw(obj.as_ptr()) });
                });
                status
            });
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

static FILL_FOPS: Fops = Fops(bindings::file_operations {
    open: Some(bindings::simple_open),
    write: Some(fill_write),
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
    // SAFETY: `simple_open` set the private data to the `Cache`, which lives
    // until the file is removed, and debugfs waits for running calls.
    let cache = unsafe { &*(*file).private_data.cast::<Cache>() };
    let mut n: c_ulong = 0;
    // SAFETY: `buf` is a user pointer of `count` bytes.
    let ret = unsafe { bindings::kstrtoul_from_user(buf, count, 10, &mut n) };
    if ret != 0 {
        return ret as isize;
    }
    match cache.fill(n) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
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
    let mut text = [0u8; 256];
    let mut w = Writer {
        buf: &mut text,
        len: 0,
    };
    let _ = core::fmt::write(
        &mut w,
        format_args!(
            "memcg_ino {}\nmemcg_objects {}\nobjects {}\nallocated {}\nfreed {}\n",
            memcg.as_ref().map_or(0, |m| m.ino()),
            cache.count_memcg(memcg.as_deref()),
            cache.count_all(),
            cache.allocated.load(Ordering::Relaxed),
            cache.freed.load(Ordering::Relaxed),
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
        let reg = shrinker.register(
            |s| {
                let lru = ListLru::new(s);
                try_pin_init!(Cache {
                    lru <- lru,
                    allocated: AtomicUsize::new(0),
                    freed: AtomicUsize::new(0),
                })
            },
            flags::GFP_KERNEL,
        )?;
        let data = (&*reg as *const Cache).cast_mut().cast::<c_void>();
        // SAFETY: Plain debugfs calls with NUL-terminated names; `data`
        // outlives the files, which `drop` removes before `reg` goes.
        let dir = unsafe {
            let dir = bindings::debugfs_create_dir(
                c_str!("rust_shrinker_cache").as_char_ptr(),
                ptr::null_mut(),
            );
            bindings::debugfs_create_file(
                c_str!("fill").as_char_ptr(),
                0o200,
                dir,
                data,
                &FILL_FOPS.0,
            );
            bindings::debugfs_create_file(
                c_str!("stats").as_char_ptr(),
                0o444,
                dir,
                data,
                &STATS_FOPS.0,
            );
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
