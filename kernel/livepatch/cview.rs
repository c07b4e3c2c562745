// SPDX-License-Identifier: GPL-2.0

//! Thin views of data that the C half of the core (`core.c`, `transition.c`)
//! still owns, and of C-only logging. Every `unsafe` of the crate that
//! concerns those lives here, with the contract it relies on.

use core::ptr::{addr_of_mut, null_mut};
use kernel::ffi::{c_int, c_ulong, c_void};

use kernel::bindings;
use kernel::str::CStrExt;

use crate::state_rules::StateVersion;

/// The patch now in transition, if any.
///
/// # Safety
///
/// The caller holds `klp_mutex`.
pub(crate) unsafe fn transition_patch() -> *mut bindings::klp_patch {
    // SAFETY: `klp_transition_patch` is only written under `klp_mutex`, which
    // the caller holds, so this read does not race.
    unsafe { *core::ptr::addr_of!(bindings::klp_transition_patch) }
}

/// The installed patches, in install order.
///
/// # Safety
///
/// The caller holds `klp_mutex` for as long as it uses the iterator and the
/// patches it yields: the list and its patches change only under that mutex.
pub(crate) unsafe fn installed_patches() -> impl Iterator<Item = *mut bindings::klp_patch> {
    let head = addr_of_mut!(bindings::klp_patches);
    // SAFETY: `klp_patches` is a statically initialised list head; reading its
    // `next` is valid under `klp_mutex` (caller's contract).
    let mut pos = unsafe { (*head).next };
    core::iter::from_fn(move || {
        if pos == head {
            return None;
        }
        let offset = core::mem::offset_of!(bindings::klp_patch, list);
        // SAFETY: every entry of `klp_patches` is the `list` member of a live
        // `struct klp_patch` (core.c adds only those), so stepping back by the
        // member offset gives that patch; `next` is valid for the same reason.
        let patch = unsafe { pos.byte_sub(offset) }.cast::<bindings::klp_patch>();
        // SAFETY: as above, `pos` is a live list entry.
        pos = unsafe { (*pos).next };
        Some(patch)
    })
}

/// The states a patch carries, with pointers for handing back to C.
///
/// # Safety
///
/// `patch` points to a `struct klp_patch` that stays valid while the iterator
/// is used; its `states` is NULL or an array ended by an entry whose id is 0,
/// as `livepatch.h` requires of every livepatch module.
pub(crate) unsafe fn states(
    patch: *mut bindings::klp_patch,
) -> impl Iterator<Item = (StateVersion, *mut bindings::klp_state)> {
    // SAFETY: `patch` is valid (caller's contract).
    let mut cur = unsafe { (*patch).states };
    core::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        // SAFETY: `cur` is within the states array and not past its end
        // marker: we stop at the entry with id 0 and never step beyond it.
        let state = unsafe { &*cur };
        if state.id == 0 {
            return None;
        }
        let found = (
            StateVersion {
                id: state.id as u64,
                version: state.version,
            },
            cur,
        );
        // SAFETY: `cur` is not the end marker, so the next entry exists.
        cur = unsafe { cur.add(1) };
        Some(found)
    })
}

/// Whether `patch` is a cumulative (`replace`) patch.
///
/// # Safety
///
/// `patch` points to a valid `struct klp_patch`.
pub(crate) unsafe fn is_replace(patch: *mut bindings::klp_patch) -> bool {
    // SAFETY: valid by the caller's contract.
    unsafe { (*patch).replace }
}

/// Looks `id` up among the states of `patch`.
///
/// # Safety
///
/// As for [`states`].
pub(crate) unsafe fn find_state(
    patch: *mut bindings::klp_patch,
    id: c_ulong,
) -> Option<(StateVersion, *mut bindings::klp_state)> {
    // SAFETY: forwarded from the caller.
    unsafe { states(patch) }.find(|(state, _)| state.id == id as u64)
}

/// Logs a failed shadow constructor with the pointer hashed as C's `%p` does
/// (Rust's `{:p}` would print the raw kernel address).
pub(crate) fn log_shadow_ctor_failure(obj: *mut c_void, id: c_ulong, err: c_int) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed, never dereferenced), %lx an unsigned long,
    // %d an int.
    unsafe {
        bindings::_printk(
            c"\x013livepatch: Failed to construct shadow variable <%p, %lx> (%d)\n".as_char_ptr(),
            obj,
            id,
            err,
        )
    };
}

/// `WARN(1, "Duplicate shadow variable <%p, %lx>\n", obj, id)` as upstream:
/// the message inside the cut-here block, the pointer hashed.
pub(crate) fn warn_shadow_duplicate(obj: *mut c_void, id: c_ulong) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed), %lx an unsigned long.
    unsafe {
        bindings::__warn_printk(
            c"Duplicate shadow variable <%p, %lx>\n".as_char_ptr(),
            obj,
            id,
        )
    };
    kernel::warn_flags!(
        file!(),
        bindings::BUGFLAG_NO_CUT_HERE | kernel::bug::bugflag_taint(bindings::TAINT_WARN)
    );
}

/// `WARN_ON_ONCE(1)`: once until `clear_warn_once` resets it.
pub(crate) fn warn_once() {
    kernel::warn_flags!(
        file!(),
        bindings::BUGFLAG_ONCE | kernel::bug::bugflag_taint(bindings::TAINT_WARN)
    );
}

/// A null `klp_state` pointer, the "not found" answer to C.
pub(crate) const NO_STATE: *mut bindings::klp_state = null_mut();
