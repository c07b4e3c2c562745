// SPDX-License-Identifier: GPL-2.0

//! Static keys that Rust flips: a key C code tests with
//! `static_branch_unlikely()` (see [`crate::jump_label`] for testing one
//! from Rust), enabled and disabled at run time.
//!
//! C header: [`include/linux/jump_label.h`](srctree/include/linux/jump_label.h).

use crate::{bindings, prelude::*, task::might_sleep, types::Opaque};

/// A `struct static_key_false`: a key that starts disabled.
///
/// # Invariants
///
/// Wraps an initialised `static_key_false` (as `DEFINE_STATIC_KEY_FALSE()`
/// or [`StaticKeyFalse::new`] make it) that lives as long as the reference.
#[repr(transparent)]
pub struct StaticKeyFalse(Opaque<bindings::static_key_false>);

// SAFETY: the key is changed only through the C functions, which serialise
// themselves (`jump_label_lock()`), and read with atomics.
unsafe impl Sync for StaticKeyFalse {}
// SAFETY: as above; a key has no thread affinity.
unsafe impl Send for StaticKeyFalse {}

impl StaticKeyFalse {
    /// A disabled key, for a Rust static: `STATIC_KEY_FALSE_INIT`, which is
    /// all zeroes (a zero count, and the "false" type with no jump entries).
    pub const fn new() -> Self {
        StaticKeyFalse(Opaque::zeroed())
    }

    /// The key C defined at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is an initialised `struct static_key_false` that lives for
    /// `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::static_key_false) -> &'a Self {
        // SAFETY: `StaticKeyFalse` is a transparent `static_key_false`, valid
        // for `'a` (the function's contract).
        unsafe { &*ptr.cast::<Self>() }
    }

    fn key(&self) -> *mut bindings::static_key {
        // `key` is the first and only member.
        self.0.get().cast()
    }

    /// `static_branch_enable()`: patches every test of the key to taken.
    /// Sleeps (it takes the jump-label and CPU-hotplug locks).
    pub fn enable(&self) {
        might_sleep();
        // SAFETY: an initialised key (type invariant), in process context.
        unsafe { bindings::static_key_enable(self.key()) };
    }

    /// `static_branch_disable()`: the opposite of [`Self::enable`].
    pub fn disable(&self) {
        might_sleep();
        // SAFETY: as in `enable`.
        unsafe { bindings::static_key_disable(self.key()) };
    }

    /// `static_key_enabled()`.
    pub fn is_enabled(&self) -> bool {
        // SAFETY: an initialised key (type invariant); only read.
        unsafe { bindings::static_key_enabled(self.key()) }
    }
}

impl Default for StaticKeyFalse {
    fn default() -> Self {
        Self::new()
    }
}

#[kunit_tests(rust_static_key)]
mod tests {
    use super::StaticKeyFalse;

    static KEY: StaticKeyFalse = StaticKeyFalse::new();

    #[test]
    fn a_new_key_is_disabled() {
        assert!(!StaticKeyFalse::new().is_enabled());
    }

    #[test]
    fn enable_then_disable_flips_the_key() {
        assert!(!KEY.is_enabled());
        KEY.enable();
        assert!(KEY.is_enabled());
        KEY.disable();
        assert!(!KEY.is_enabled());
    }
}
