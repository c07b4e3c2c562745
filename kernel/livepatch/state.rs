// SPDX-License-Identifier: GPL-2.0

//! System states (`struct klp_state`): which patch modified what, so that a
//! later patch can take it over or refuse to load. The rules themselves are
//! in [`crate::state_rules`]; this file applies them to the C structures.

use kernel::ffi::c_ulong;

use kernel::bindings;
use kernel::prelude::*;

use crate::cview::{self, PatchRef, NO_STATE};
use crate::lock::Locked;
use crate::state_rules::{patch_compatible, previous_state, StateVersion};

/// Returns the state with `id` of `patch`, or NULL.
///
/// # Safety
///
/// `patch` is a valid `struct klp_patch` whose `states` array is ended by an
/// entry with id 0 (what `livepatch.h` asks of every livepatch module).
#[export]
pub(crate) unsafe extern "C" fn klp_get_state(
    patch: *mut bindings::klp_patch,
    id: c_ulong,
) -> *mut bindings::klp_state {
    // SAFETY: the caller's contract is that of `cview::find_state`.
    unsafe { cview::find_state(patch, id) }.map_or(NO_STATE, |(_, state)| state)
}

/// Returns the state with `id` that the patch in transition takes over: the
/// one of the last installed patch before it that has one, or NULL.
///
/// # Safety
///
/// Called from the (un)patch callbacks of the patch in transition, which
/// run under `klp_mutex`. Upstream's documentation says "typically"; a call
/// from anywhere else walks the patch list unlocked, racing with a
/// transition that frees patches, in C as here.
#[export]
pub(crate) unsafe extern "C" fn klp_get_prev_state(id: c_ulong) -> *mut bindings::klp_state {
    // Nothing is in transition before the core is ready.
    if !crate::lock::ready() {
        return NO_STATE;
    }
    // SAFETY: we run under `klp_mutex` (caller's contract).
    let Some(transition) = (unsafe { crate::transition::transition_patch_unlocked() }) else {
        crate::warn_on_once!(true);
        return NO_STATE;
    };
    let transition = transition.as_ptr();
    // SAFETY: under `klp_mutex`, the installed patches stay valid while we
    // walk them, and each has a properly ended states array.
    let patches = unsafe { crate::lock::patches_unlocked() }.map(|patch| patch.as_ptr());
    previous_state(
        patches,
        |&patch| patch == transition,
        // SAFETY: `patch` comes from the installed list, valid as above.
        |&patch| unsafe { cview::find_state(patch, id) }.map(|(_, state)| state),
    )
    .unwrap_or(NO_STATE)
}

/// Whether `patch` can be enabled on top of the states of every installed
/// patch: upstream's `klp_is_patch_compatible()`, which `klp_enable_patch()`
/// asks before installing it.
pub(crate) fn is_patch_compatible(locked: &Locked, patch: PatchRef) -> bool {
    let mut installed = crate::lock::patches(locked)
        // SAFETY: installed patches stay valid under `klp_mutex`, which
        // `locked` holds, and carry an ended states array.
        .flat_map(|old| unsafe { cview::states(old.as_ptr()) }.map(|(state, _)| state));
    // Through `dyn`: the fully monomorphised iterator chain gets a symbol
    // name longer than kallsyms takes (KSYM_NAME_LEN).
    let installed: &mut dyn Iterator<Item = StateVersion> = &mut installed;
    patch_compatible(
        |id| {
            // SAFETY: a patch being enabled is valid and its states array
            // ended, as `livepatch.h` requires.
            unsafe { cview::find_state(patch.as_ptr(), id as c_ulong) }
                .map(|(state, _)| state.version)
        },
        patch.replace(),
        installed,
    )
}
