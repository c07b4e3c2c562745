// SPDX-License-Identifier: GPL-2.0

//! `klp_mutex`, the head of the list of installed patches it guards, and
//! whether the core finished its init. Below everything that takes the
//! mutex (the livepatch structures' views, the redirect, the transition,
//! states, sysfs, the registry); the guard, [`Locked`], is the proof they
//! pass around.

use core::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};

use kernel::bindings;
use kernel::sync::{Mutex, MutexGuard};
use kernel::types::Opaque;

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
/// dropping it unlocks. Not `Sync`: the proof is the holding thread's.
pub(crate) struct Locked {
    _guard: MutexGuard<'static, ()>,
    _not_sync: core::marker::PhantomData<*mut ()>,
}

/// A value `klp_mutex` guards, read and written only with a [`Locked`] in
/// hand: the lock proof is a type. (The kernel crate's `GlobalLockedBy`
/// needs a Rust `GlobalLock`; `klp_mutex` is C's, see `shim.c`.) Values are
/// copied in and out, so no reference outlives the access.
pub(crate) struct KlpLocked<T>(core::cell::UnsafeCell<T>);

// SAFETY: every access holds `klp_mutex` (a `Locked` of this thread, which
// cannot be shared with another), so accesses never overlap.
unsafe impl<T: Copy + Send> Sync for KlpLocked<T> {}

impl<T: Copy> KlpLocked<T> {
    pub(crate) const fn new(value: T) -> Self {
        KlpLocked(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn get(&self, _locked: &Locked) -> T {
        // SAFETY: `klp_mutex` is held by this thread: no other access runs.
        unsafe { *self.0.get() }
    }

    pub(crate) fn set(&self, _locked: &Locked, value: T) {
        // SAFETY: as in `get`.
        unsafe { *self.0.get() = value };
    }
}

/// `klp_mutex` as a kernel-crate mutex.
fn mutex() -> &'static Mutex<()> {
    // SAFETY: `klp_mutex` is a C static, initialised at compile time by
    // `DEFINE_MUTEX`, valid for the whole life of the kernel; a `Mutex<()>`
    // is the C mutex and nothing else.
    unsafe { Mutex::from_raw(klp_mutex.get()) }
}

/// Takes `klp_mutex`, which serialises the registry, the transition and
/// the sysfs files.
pub(crate) fn lock() -> Locked {
    Locked {
        _guard: mutex().lock(),
        _not_sync: core::marker::PhantomData,
    }
}

impl Locked {
    /// Runs `f` with a proof for a caller that holds `klp_mutex` without a
    /// [`Locked`] of its own: a callback that C calls under it. The proof
    /// cannot outlive `f`.
    ///
    /// # Safety
    ///
    /// The calling thread holds `klp_mutex` for the whole call.
    pub(crate) unsafe fn with_held<R>(f: impl FnOnce(&Locked) -> R) -> R {
        let held = core::mem::ManuallyDrop::new(Locked {
            // SAFETY: `klp_mutex` is held by this thread (caller's
            // contract); the guard is never dropped, so it never unlocks
            // what the caller will unlock itself.
            _guard: unsafe { MutexGuard::new(mutex(), ()) },
            _not_sync: core::marker::PhantomData,
        });
        f(&held)
    }

    /// The list head of the installed patches, read or changed only under
    /// `klp_mutex`, which `self` proves held.
    pub(crate) fn patch_list(&self) -> *mut bindings::list_head {
        // SAFETY: only the address of the C static is taken.
        unsafe { klp_patches.get() }
    }
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
