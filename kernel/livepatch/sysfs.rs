// SPDX-License-Identifier: GPL-2.0

//! The sysfs interface, as upstream 7.3 has it, plus `signal`:
//!
//! ```text
//! /sys/kernel/livepatch/<patch>/{enabled,transition,force,replace,stack_order,signal}
//! /sys/kernel/livepatch/<patch>/<object>/patched
//! /sys/kernel/livepatch/<patch>/<object>/<function,sympos>/
//! ```
//!
//! What each file shows and does. The kobjects, their attributes and the
//! C callbacks are in [`crate::structs::kobject`], which calls the handlers
//! here with typed references; `force`, `signal` and `stack_order` act
//! through the lock and the transition, `enabled` through the
//! [`RegistryOps`] the crate root hands to [`init`] (the registry sits above
//! this layer).

use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::sync::SetOnce;

use crate::lock::lock;
use crate::structs::kobject::{self, Handlers, PatchFile, Written};
use crate::structs::{installed_patches, Object, Patch};
use crate::transition::{self, transition_patch};

/// What the files need from the registry.
pub(crate) struct RegistryOps {
    /// A write to `enabled`.
    pub(crate) set_enabled: fn(&Patch, bool) -> Result,
}

/// Set by [`init`], before any kobject exists.
static REGISTRY: SetOnce<RegistryOps> = SetOnce::new();

/// Creates `/sys/kernel/livepatch`; until this worked, no patch is enabled.
pub(crate) fn init(registry: RegistryOps) -> Result {
    REGISTRY.populate(registry);
    kobject::init(Handlers {
        show,
        store,
        patched,
    })
}

/// A read of one of a patch's files.
fn show(patch: &Patch, file: PatchFile) -> c_int {
    match file {
        PatchFile::Enabled => c_int::from(patch.enabled()),
        PatchFile::Transition => c_int::from(transition::is_transition_patch(patch)),
        PatchFile::Replace => c_int::from(patch.replace()),
        PatchFile::StackOrder => stack_order(patch),
        // Write-only files have no show callback.
        PatchFile::Force | PatchFile::Signal => 0,
    }
}

/// A write to one of a patch's files.
fn store(patch: &Patch, file: PatchFile, written: &Written<'_>) -> Result {
    match file {
        PatchFile::Enabled => {
            let enable = written.parse_bool()?;
            match REGISTRY.as_ref() {
                Some(registry) => (registry.set_enabled)(patch, enable),
                None => Err(ENODEV),
            }
        }
        PatchFile::Force => {
            if written.parse_bool()? {
                force_transition(patch)
            } else {
                Ok(())
            }
        }
        PatchFile::Signal => parse_signal(written.bytes()).and_then(|()| signal(patch)),
        // Read-only files have no store callback.
        PatchFile::Transition | PatchFile::Replace | PatchFile::StackOrder => Err(EPERM),
    }
}

/// An object's `patched`.
fn patched(obj: &Object) -> bool {
    obj.patched()
}

/// A write of true to `force`: every task switches now.
fn force_transition(patch: &Patch) -> Result {
    let locked = lock();
    if transition_patch(&locked) != Some(patch) {
        return Err(EINVAL);
    }
    transition::force_transition(&locked);
    Ok(())
}

/// A write of `1` to `signal`: hurries every task still pending now.
fn signal(patch: &Patch) -> Result {
    let locked = lock();
    if transition_patch(&locked) != Some(patch) {
        return Err(EINVAL);
    }
    transition::signal_stragglers();
    Ok(())
}

/// The patch's place among the installed patches, from 1 (`stack_order`).
fn stack_order(patch: &Patch) -> c_int {
    let locked = lock();
    let mut order = 0;
    for installed in installed_patches(&locked) {
        order += 1;
        if installed == patch {
            break;
        }
    }
    order
}

/// `signal` takes exactly `1` (as `echo 1` writes it, with its newline).
fn parse_signal(written: &[u8]) -> Result {
    match written {
        b"1" | b"1\n" => Ok(()),
        _ => Err(EINVAL),
    }
}
