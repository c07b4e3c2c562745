// SPDX-License-Identifier: GPL-2.0

//! Modules the loader has loaded: their names and states, finding one by
//! name, and references that keep one loaded.
//!
//! A [`LoadedModule`] is borrowed for as long as something keeps the module
//! from going away: the RCU read lock of a lookup, a `ModuleGet` reference
//! (with `CONFIG_MODULE_UNLOAD`; without it nothing is ever unloaded), or
//! the loader itself while it calls a notifier about it.
//!
//! C header: [`include/linux/module.h`](srctree/include/linux/module.h).

use crate::{bindings, ffi::c_char, prelude::*, sync::rcu, types::Opaque};
use core::ptr::{addr_of_mut, NonNull};

/// A module in the loader's list.
///
/// # Invariants
///
/// The wrapped `struct module` is alive for as long as the reference to it
/// is used.
#[repr(transparent)]
pub struct LoadedModule(Opaque<bindings::module>);

// SAFETY: a module is shared by every CPU; the fields read here are written
// by the loader before the module is listed or, for the state, read racily
// as C does.
unsafe impl Sync for LoadedModule {}

/// Where a module is in its life (`enum module_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleState {
    /// Initialised and running.
    Live,
    /// Being initialised: `init` has not returned yet.
    Coming,
    /// Being removed, or its `init` failed.
    Going,
    /// Still being set up by the loader.
    Unformed,
}

impl LoadedModule {
    /// The module `ptr` points to.
    ///
    /// # Safety
    ///
    /// `ptr` points to a `struct module` that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::module) -> &'a Self {
        // SAFETY: alive for `'a` (the function's contract); the type is a
        // transparent wrapper.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The `struct module` pointer, for C.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::module {
        self.0.get()
    }

    /// The loaded module called `name`, if any: `find_module()`. The module
    /// may start going at any time, but is only freed after a grace period,
    /// so it can be used while `_rcu` is held.
    pub fn find<'g>(name: &CStr, _rcu: &'g rcu::Guard) -> Option<&'g Self> {
        // SAFETY: `find_module` walks the module list, which the RCU read
        // lock protects; the name is NUL-terminated.
        let module = NonNull::new(unsafe { bindings::find_module(name.as_char_ptr()) })?;
        // SAFETY: found under RCU, which keeps it alive for `'g`.
        Some(unsafe { Self::from_raw(module.as_ptr()) })
    }

    /// The module's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: `name` is a NUL-terminated array inside the module, alive
        // for `&self` and never changed once the module is listed.
        unsafe { CStr::from_char_ptr(addr_of_mut!((*self.as_ptr()).name).cast::<c_char>()) }
    }

    /// The module's state, which the loader may change at any time.
    pub fn state(&self) -> ModuleState {
        // SAFETY: an enum field of the live module; C reads it racily too.
        match unsafe { addr_of_mut!((*self.as_ptr()).state).read_volatile() } {
            bindings::module_state_MODULE_STATE_LIVE => ModuleState::Live,
            bindings::module_state_MODULE_STATE_COMING => ModuleState::Coming,
            bindings::module_state_MODULE_STATE_GOING => ModuleState::Going,
            _ => ModuleState::Unformed,
        }
    }

    /// Takes a reference that keeps the module loaded: `try_module_get()`.
    /// Fails unless the module is live: one still coming is freed if its
    /// init fails, whatever references others hold (see
    /// [`LoadedModule::try_get_coming`]), and one going is on its way out.
    #[cfg(CONFIG_MODULE_UNLOAD)]
    pub fn try_get(&self) -> Option<ModuleGet> {
        // A live module never becomes coming again; `try_module_get` fails
        // if it started going since.
        if self.state() != ModuleState::Live {
            return None;
        }
        // SAFETY: not coming.
        unsafe { self.try_get_coming() }
    }

    /// [`LoadedModule::try_get`] that also takes a module still coming.
    ///
    /// # Safety
    ///
    /// If the module is coming, its init does not fail while the reference
    /// is held (as for a livepatch module, whose init returns the result of
    /// enabling its patch, which takes the reference).
    #[cfg(CONFIG_MODULE_UNLOAD)]
    pub unsafe fn try_get_coming(&self) -> Option<ModuleGet> {
        // SAFETY: the module is alive for `&self`.
        if !unsafe { bindings::try_module_get(self.as_ptr()) } {
            return None;
        }
        // INVARIANT: the reference was just taken, and (the function's
        // contract) the module stays until it is dropped.
        Some(ModuleGet(NonNull::from(self).cast()))
    }
}

/// A reference that keeps a module loaded, dropped with `module_put()`.
///
/// # Invariants
///
/// Holds one reference taken with `try_module_get()` on the module, which
/// stays loaded until it is dropped.
#[cfg(CONFIG_MODULE_UNLOAD)]
pub struct ModuleGet(NonNull<bindings::module>);

#[cfg(CONFIG_MODULE_UNLOAD)]
// SAFETY: the reference may be dropped on any CPU.
unsafe impl Send for ModuleGet {}
#[cfg(CONFIG_MODULE_UNLOAD)]
// SAFETY: it only hands out `&LoadedModule`, which is `Sync`.
unsafe impl Sync for ModuleGet {}

#[cfg(CONFIG_MODULE_UNLOAD)]
impl ModuleGet {
    /// Gives the reference up without dropping it, for C to keep (a
    /// `struct module *` that C code will `module_put()`).
    pub fn into_raw(self) -> *mut bindings::module {
        let module = self.0.as_ptr();
        core::mem::forget(self);
        module
    }

    /// Takes back a reference [`ModuleGet::into_raw`] gave up.
    ///
    /// # Safety
    ///
    /// `module` came from `into_raw`, and this is its only `from_raw`.
    pub unsafe fn from_raw(module: *mut bindings::module) -> Self {
        // SAFETY: not NULL, as `into_raw` gave it (the function's contract).
        // INVARIANT: the reference `into_raw` gave up.
        ModuleGet(unsafe { NonNull::new_unchecked(module) })
    }
}

#[cfg(CONFIG_MODULE_UNLOAD)]
impl core::ops::Deref for ModuleGet {
    type Target = LoadedModule;

    fn deref(&self) -> &LoadedModule {
        // SAFETY: the reference keeps the module alive (type invariant).
        unsafe { LoadedModule::from_raw(self.0.as_ptr()) }
    }
}

#[cfg(CONFIG_MODULE_UNLOAD)]
impl Drop for ModuleGet {
    fn drop(&mut self) {
        // SAFETY: we hold one reference (type invariant).
        unsafe { bindings::module_put(self.0.as_ptr()) };
    }
}

#[kunit_tests(rust_loaded_module)]
mod tests {
    use super::*;

    #[test]
    fn finds_nothing_for_a_name_never_loaded() {
        let rcu = rcu::Guard::new();
        assert!(LoadedModule::find(c"rust_loaded_module_none", &rcu).is_none());
    }
}
