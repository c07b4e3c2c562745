// SPDX-License-Identifier: GPL-2.0

//! The `klp_state` rules as pure logic: no kernel types, so the host
//! workspace (`host/klp-logic`) compiles and tests this very file.

/// What the rules need to know of one `struct klp_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateVersion {
    /// `klp_state.id`.
    pub id: u64,
    /// `klp_state.version`.
    pub version: u32,
}

/// Whether a patch can take over a system state `installed` modified by a
/// patch already installed. `new_version` is the version of the state with
/// the same id in the new patch, if it has one.
///
/// A cumulative (`replace`) patch replaces every installed patch, so it must
/// know every state they modified; any patch that carries a state must carry
/// the same or a newer version of it.
pub fn state_compatible(new_version: Option<u32>, replace: bool, installed: StateVersion) -> bool {
    match new_version {
        None => !replace,
        Some(version) => version >= installed.version,
    }
}

/// Whether a new patch is compatible with every state of the installed
/// patches. `new_version_of(id)` looks the id up in the new patch.
pub fn patch_compatible<F, I>(new_version_of: F, replace: bool, installed: I) -> bool
where
    F: Fn(u64) -> Option<u32>,
    I: IntoIterator<Item = StateVersion>,
{
    installed
        .into_iter()
        .all(|old| state_compatible(new_version_of(old.id), replace, old))
}

/// The state a transition patch takes over: the one with `id` in the last
/// installed patch before the transition patch (patches in install order).
/// `state_of(patch)` looks the id up in one patch.
pub fn previous_state<P, S, T, G>(patches: P, is_transition: T, state_of: G) -> Option<S>
where
    P: IntoIterator,
    T: Fn(&P::Item) -> bool,
    G: Fn(&P::Item) -> Option<S>,
{
    let mut last = None;
    for patch in patches {
        if is_transition(&patch) {
            break;
        }
        if let Some(state) = state_of(&patch) {
            last = Some(state);
        }
    }
    last
}
