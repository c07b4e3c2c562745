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
use kernel::ffi::{c_ulong, c_void};

use kernel::bindings;

use crate::shadow_table::{lock_table, lookup, NewNode};
use crate::shim::{self, ShadowCtor, ShadowDtor};

pub(crate) use crate::shadow_table::init;

/// Returns the data of shadow variable `<obj, id>`, or NULL
/// (`klp_shadow_get()`); `obj` is only compared, never read.
pub(crate) fn get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    lookup(obj, id)
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
    let mut existing = lookup(obj, id);
    if existing.is_null() {
        // Allocate before taking the lock: `gfp` may allow sleeping.
        let Some(new) = NewNode::alloc(obj, id, size, gfp) else {
            return null_mut();
        };
        // Allocations wait for a table of our own.
        let Some(writer) = lock_table() else {
            return null_mut();
        };
        // Someone may have won the race since the lockless look.
        match writer.find(obj, id) {
            Some(found) => existing = found,
            None => {
                // Under the shadow lock, as upstream.
                // SAFETY: the new variable's zeroed data, unpublished.
                let err = unsafe { ctor.call(obj, new.data()) };
                if err != 0 {
                    drop(writer);
                    drop(new);
                    shim::log_shadow_ctor_failure(obj, id, err);
                    return null_mut();
                }
                return writer.insert(new);
            }
        }
    }
    if warn_on_exist {
        shim::warn_shadow_duplicate(obj, id);
        return null_mut();
    }
    existing
}

/// Frees the variables with `id`, calling `dtor` on each first (under the
/// shadow lock, as upstream): only `<obj, id>` when `obj` is given
/// (`klp_shadow_free()`), else all of them (`klp_shadow_free_all()`).
pub(crate) fn free(obj: Option<usize>, id: c_ulong, dtor: ShadowDtor) {
    let Some(writer) = lock_table() else {
        return;
    };
    writer.remove(obj, id, |obj, data| {
        // SAFETY: `remove` hands over each variable it just unlinked, before
        // retiring it.
        unsafe { dtor.call(obj, data) }
    });
}
