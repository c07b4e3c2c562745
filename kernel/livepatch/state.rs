// SPDX-License-Identifier: GPL-2.0

//! System states (`struct klp_state`): which patch modified what, so that a
//! later patch can take it over or refuse to load. The rules themselves are
//! in [`crate::state_rules`]; this file applies them to the C structures.

use kernel::ffi::c_ulong;

use crate::lock::Locked;
use crate::state_rules::{patch_compatible, previous_state, StateVersion};
use crate::structs::{installed_patches, PatchDecl, State};
use crate::transition::transition_patch;

/// The state with `id` of `patch` (`klp_get_state()`).
pub(crate) fn get_state(patch: &PatchDecl, id: c_ulong) -> Option<&State> {
    patch.find_state(id).map(|(_, state)| state)
}

/// The state with `id` that the patch in transition takes over: the one of
/// the last installed patch before it that has one (`klp_get_prev_state()`,
/// which the (un)patch callbacks call, under `klp_mutex`).
pub(crate) fn get_prev_state(locked: &Locked, id: c_ulong) -> Option<&State> {
    let Some(transition) = transition_patch(locked) else {
        crate::warn_on_once!(true);
        return None;
    };
    previous_state(
        installed_patches(locked),
        |&patch| patch == transition,
        |&patch| get_state(patch, id),
    )
}

/// Whether `patch` can be enabled on top of the states of every installed
/// patch: upstream's `klp_is_patch_compatible()`, which `klp_enable_patch()`
/// asks before installing it.
pub(crate) fn is_patch_compatible(locked: &Locked, patch: &PatchDecl) -> bool {
    let mut installed =
        installed_patches(locked).flat_map(|old| old.states().map(|(state, _)| state));
    // Through `dyn`: the fully monomorphised iterator chain gets a symbol
    // name longer than kallsyms takes (KSYM_NAME_LEN).
    let installed: &mut dyn Iterator<Item = StateVersion> = &mut installed;
    patch_compatible(
        |id| {
            patch
                .find_state(id as c_ulong)
                .map(|(state, _)| state.version)
        },
        patch.replace(),
        installed,
    )
}
