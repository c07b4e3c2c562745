// SPDX-License-Identifier: GPL-2.0

//! Shadow variables: data a livepatch attaches to an existing object, found
//! by `<obj, id>`.
//!
//! A hash table of singly linked chains that grows and shrinks with the
//! number of live variables ([`crate::shadow_sizing`]), so `klp_shadow_get`
//! visits about one node at any count of objects (upstream's fixed 4096
//! buckets degrade linearly). Lookups are lock-free under RCU; changes take
//! one IRQ-safe spinlock, as upstream.
//!
//! Resizing without stopping readers: every node has two chain links, one
//! per table generation. A resize runs in a work item, where it may sleep to
//! allocate the new bucket array; holding the lock, it links every node into
//! the new table through the spare link, publishes the new table, then waits
//! for a grace period and frees the old array. Readers still in the old table
//! follow the old links, which nothing changes after the switch; the old link
//! becomes the spare again only after that grace period.

use core::ptr::null_mut;
use core::sync::atomic::AtomicPtr;
use kernel::ffi::{c_ulong, c_void};

use kernel::bindings;
use kernel::sync::lock::GlobalGuard;
use kernel::sync::rcu;

use crate::shadow_table::{
    published, queue_resize, retire, writer, KeepsAlive, NewNode, Node, View, WRITER,
};
use crate::shim::{self, ShadowCtor, ShadowDtor};

pub(crate) use crate::shadow_table::init;

#[inline(always)]
fn lookup(alive: &impl KeepsAlive, obj: *mut c_void, id: c_ulong) -> *mut c_void {
    match published(alive).find(obj as usize, id) {
        Some(node) => node.data(),
        None => null_mut(),
    }
}

/// Returns the data of shadow variable `<obj, id>`, or NULL
/// (`klp_shadow_get()`); `obj` is only compared, never read.
pub(crate) fn get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    lookup(&rcu::Guard::new(), obj, id)
}

/// `klp_shadow_alloc()` (with `warn_on_exist`) and
/// `klp_shadow_get_or_alloc()`: the data of `<obj, id>`, made with `size`
/// zeroed bytes and `ctor` if it does not exist yet.
pub(crate) fn get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: ShadowCtor,
    warn_on_exist: bool,
) -> *mut c_void {
    let mut existing = lookup(&rcu::Guard::new(), obj, id);
    if existing.is_null() {
        // Allocate before taking the lock: `gfp` may allow sleeping.
        let Some(new) = NewNode::alloc(obj, id, size, gfp) else {
            return null_mut();
        };
        let Some(mut writer) = writer() else {
            return null_mut();
        };
        // Allocations wait for a table of our own (`EMPTY` is never written).
        let Some(view) = writer.table.as_ref().map(|table| table.view(&writer)) else {
            return null_mut();
        };
        // Someone may have won the race since the lockless look.
        match view.find(obj as usize, id) {
            Some(found) => existing = found.data(),
            None => {
                // Under the shadow lock, as upstream.
                let err = ctor.call(obj, new.data());
                if err != 0 {
                    drop(writer);
                    drop(new);
                    shim::log_shadow_ctor_failure(obj, id, err);
                    return null_mut();
                }
                let data = new.data();
                view.insert(&writer, new);
                // Last use of `view`: the count may change now.
                writer.live += 1;
                let resizer = writer.resize_needed();
                drop(writer);
                queue_resize(resizer);
                return data;
            }
        }
    }
    if warn_on_exist {
        shim::warn_shadow_duplicate(obj, id);
        return null_mut();
    }
    existing
}

/// Unlinks the nodes `take` selects from the chains `heads` gives (at most
/// one per chain if `only_one`), calls `dtor` on each and retires it, all
/// under the writer lock. Returns how many.
fn unlink_chains<'t>(
    writer: &GlobalGuard<WRITER>,
    view: View<'t>,
    heads: impl Iterator<Item = &'t AtomicPtr<Node>>,
    take: impl Fn(&Node) -> bool,
    only_one: bool,
    dtor: ShadowDtor,
) -> usize {
    let mut freed = 0;
    for head in heads {
        freed += view.unlink_where(writer, head, &take, only_one, |node| {
            // Under the shadow lock, as upstream; the node stays valid until
            // `retire`'s grace period.
            dtor.call(node.obj() as *mut c_void, node.data());
            retire(node);
        });
    }
    freed
}

/// Frees the variables with `id`, calling `dtor` on each first: only
/// `<obj, id>` when `obj` is given (`klp_shadow_free()`, one chain to
/// walk), else all of them (`klp_shadow_free_all()`).
pub(crate) fn free(obj: Option<usize>, id: c_ulong, dtor: ShadowDtor) {
    let Some(mut writer) = writer() else {
        return;
    };
    let Some(view) = writer.table.as_ref().map(|table| table.view(&writer)) else {
        return;
    };
    let take = |n: &Node| n.id == id && obj.is_none_or(|obj| n.obj == obj);
    let freed = {
        match obj {
            // `<obj, id>` is unique: allocation never adds a second one.
            Some(obj) => unlink_chains(
                &writer,
                view,
                core::iter::once(view.head(obj)),
                take,
                true,
                dtor,
            ),
            None => unlink_chains(&writer, view, view.heads(), take, false, dtor),
        }
    };
    // Last use of `view`: the count may change now.
    writer.live -= freed;
    let resizer = writer.resize_needed();
    drop(writer);
    queue_resize(resizer);
}
