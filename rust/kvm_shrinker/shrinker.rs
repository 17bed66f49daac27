// SPDX-License-Identifier: GPL-2.0

//! Results of shrinker callbacks.
//!
//! The C API encodes special cases as reserved return values: a count of
//! `SHRINK_EMPTY` means "no objects at all" and lets memcg reclaim clear the
//! shrinker's bit for that memcg, a count of 0 means "nothing to free right
//! now", and a scan result of `SHRINK_STOP` means "cannot make progress in
//! this context". The types here keep those cases apart, so that a shrinker
//! cannot return one of them by accident (say, a count that happens to equal
//! `SHRINK_EMPTY`).

use core::ffi::c_ulong;
use kernel::bindings;

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
/// // A huge count never turns into one of the reserved values.
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

/// Clamps a count below the reserved values `SHRINK_EMPTY` and `SHRINK_STOP`.
fn clamp_count(n: usize) -> c_ulong {
    let max = SHRINK_EMPTY - 1;
    // `usize` and `c_ulong` have the same width on every architecture that
    // supports Rust in the kernel; `try_from` keeps this correct regardless.
    c_ulong::try_from(n).map_or(max, |n| n.min(max))
}
