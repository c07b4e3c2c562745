// SPDX-License-Identifier: GPL-2.0

//! `klp_mutex` and what it guards: the list of installed patches; and
//! whether the core finished its init. Below everything that takes the
//! mutex (the redirect, the transition, states, sysfs, the registry); the
//! guard, [`Locked`], is the proof they pass around.

use core::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};

use kernel::bindings;
use kernel::sync::{Mutex, MutexGuard};
use kernel::types::Opaque;

use crate::cview::{self, PatchRef};

extern "C" {
    /// `DEFINE_MUTEX(klp_mutex)` in `shim.c`: initialised at compile time,
    /// so usable from the first call of any entry point.
    static klp_mutex: Opaque<bindings::mutex>;
    /// `LIST_HEAD(klp_patches)` in `shim.c`: the installed patches
    /// (enabled, or in transition), in install order, linked through the
    /// `list` members of their `klp_patch`es.
    static klp_patches: Opaque<bindings::list_head>;
}

/// Proof that the caller holds `klp_mutex`: only [`lock`] makes one, and
/// dropping it unlocks.
pub(crate) struct Locked {
    _guard: MutexGuard<'static, ()>,
}

/// Takes `klp_mutex`, which serialises the registry, the transition and
/// the sysfs files.
pub(crate) fn lock() -> Locked {
    // SAFETY: `klp_mutex` is a C static, initialised at compile time by
    // `DEFINE_MUTEX`, valid for the whole life of the kernel.
    let mutex: &'static Mutex<()> = unsafe { Mutex::from_raw(klp_mutex.get()) };
    Locked {
        _guard: mutex.lock(),
    }
}

/// The list head of the installed patches; read or changed only under
/// `klp_mutex`, which `_locked` proves held.
pub(crate) fn patch_list(_locked: &Locked) -> *mut bindings::list_head {
    // SAFETY: only the address of the C static is taken.
    unsafe { klp_patches.get() }
}

/// Set (with Release) when the livepatch initcall completed every step.
static READY: AtomicBool = AtomicBool::new(false);

/// Called last by the livepatch initcall, once everything is set up.
pub(crate) fn set_ready() {
    READY.store(true, Release);
}

/// Whether the core can patch: its initcall ran and every step succeeded
/// (the sysfs root, the transition's work items). Until then no patch may be
/// registered, so every entry point that takes one checks this first.
pub(crate) fn ready() -> bool {
    READY.load(Acquire)
}

/// The installed patches, under the lock.
pub(crate) fn patches(locked: &Locked) -> Patches<'_> {
    Patches {
        // SAFETY: `klp_patches` is an initialised list head of installed
        // patches; the iterator borrows the guard, so the lock is held while
        // it is used.
        inner: unsafe { cview::installed_patches(patch_list(locked)) },
        _locked: locked,
    }
}

/// The installed patches, for a caller that holds `klp_mutex` without a
/// [`Locked`] of its own (a callback C calls under it).
///
/// # Safety
///
/// The caller holds `klp_mutex` for as long as it uses the iterator and the
/// patches it yields.
pub(crate) unsafe fn patches_unlocked() -> cview::Patches {
    // SAFETY: `klp_patches` is an initialised list head of installed
    // patches, and the lock is held (the caller's contract).
    unsafe { cview::installed_patches(klp_patches.get()) }
}

/// The installed patches, walked under the lock.
pub(crate) struct Patches<'a> {
    inner: cview::Patches,
    _locked: &'a Locked,
}

impl Iterator for Patches<'_> {
    type Item = PatchRef;

    fn next(&mut self) -> Option<PatchRef> {
        self.inner.next()
    }
}
