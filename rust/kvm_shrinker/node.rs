// SPDX-License-Identifier: GPL-2.0

//! NUMA node ids.
//!
//! C header: [`include/linux/nodemask.h`](srctree/include/linux/nodemask.h).
//!
//! Per-node structures, such as the lists of a `struct list_lru`, are arrays
//! of `nr_node_ids` entries of which only those of *possible* nodes
//! (`for_each_node()`) are initialised. The possible nodes need not be
//! contiguous: with nodes 0 and 2 possible, `nr_node_ids` is 3 and node 1
//! is not. A [`NodeId`] is a node id that has been checked to be possible,
//! so that safe code can index such arrays with it. The set of possible
//! nodes is fixed at boot (a node that is hot-added later must already be
//! possible), so the check holds for as long as the kernel runs.

use kernel::bindings;

/// The id of a possible NUMA node.
///
/// # Invariants
///
/// `0 <= self.0 < nr_node_ids` and `node_possible(self.0)`.
///
/// # Examples
///
/// ```
/// use kvm_shrinker::node::NodeId;
///
/// assert!(NodeId::new(-1).is_none());
/// assert!(NodeId::new(i32::MAX).is_none());
/// for nid in NodeId::possible() {
///     assert_eq!(NodeId::new(nid.as_raw()), Some(nid));
/// }
/// // There is always at least one node.
/// assert!(NodeId::possible().next().is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(i32);

/// `nr_node_ids`: one more than the highest possible node id.
fn nr_node_ids() -> i32 {
    // SAFETY: `nr_node_ids` is written once during boot, before any Rust
    // code runs, and only read afterwards.
    let n = unsafe { bindings::get_nr_node_ids() };
    // `nr_node_ids` is at most `MAX_NUMNODES`, which is 1024 at most.
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl NodeId {
    /// Returns the node id `nid` if that node is possible, `None` otherwise
    /// (negative, at least `nr_node_ids`, or a hole in the node map).
    pub fn new(nid: i32) -> Option<NodeId> {
        if nid < 0 || nid >= nr_node_ids() {
            return None;
        }
        // SAFETY: `nid` is in `0..nr_node_ids`, within the node masks.
        let possible = unsafe { bindings::node_possible(nid) };
        // INVARIANT: Checked just above.
        possible.then_some(NodeId(nid))
    }

    /// The node id as the C API takes it.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// Every possible node, in increasing order (`for_each_node()`).
    pub fn possible() -> impl Iterator<Item = NodeId> {
        (0..nr_node_ids()).filter_map(NodeId::new)
    }
}
