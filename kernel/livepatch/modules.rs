// SPDX-License-Identifier: GPL-2.0

//! The modules patches come from and apply to, over the kernel crate's
//! [`LoadedModule`], and the ELF data the loader keeps for a livepatch
//! module.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::ffi::{c_char, c_void};
use kernel::livepatch::TransitionWriter;
use kernel::loaded_module::{LoadedModule, ModuleGet, ModuleState};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::rcu;

/// A module that stays loaded while the value is used: the livepatch module
/// of a patch being enabled or installed (the patch holds a reference), a
/// module the loader is bringing up or taking down (it calls us), or one
/// found alive that patches only use until `klp_module_going()`.
///
/// # Invariants
///
/// Points to a live `struct module` for as long as the value is used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModRef(NonNull<bindings::module>);

/// `MODULE_NAME_LEN`: a module name is shorter than this.
pub(crate) const MODULE_NAME_LEN: usize = bindings::MODULE_NAME_LEN;

impl ModRef {
    /// # Safety
    ///
    /// `module` is NULL or satisfies the type invariant while the result is
    /// used.
    pub(crate) unsafe fn from_raw(module: *mut bindings::module) -> Option<Self> {
        NonNull::new(module).map(ModRef)
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::module {
        self.0.as_ptr()
    }

    /// The module, for as long as this handle is borrowed.
    fn module(&self) -> &LoadedModule {
        // SAFETY: alive while the value is used (type invariant).
        unsafe { LoadedModule::from_raw(self.as_ptr()) }
    }

    /// The module's name.
    pub(crate) fn name(&self) -> &CStr {
        self.module().name()
    }

    pub(crate) fn state(self) -> ModuleState {
        self.module().state()
    }

    /// Whether the module says it is a livepatch.
    pub(crate) fn is_livepatch(self) -> bool {
        self.module().is_livepatch()
    }

    /// Sets `mod->klp_alive`: `klp_module_coming()` ran for it, and
    /// `klp_module_going()` not yet.
    pub(crate) fn set_klp_alive(self, writer: &TransitionWriter, alive: bool) {
        writer.set_klp_alive(self.module(), alive)
    }

    /// The ELF data the loader kept for a livepatch module, if any.
    pub(crate) fn klp_info(self) -> Option<KlpInfo> {
        // SAFETY: a pointer field of the live module; set at load time for
        // livepatch modules (NULL otherwise) and freed only when it goes.
        let info = unsafe { (*self.as_ptr()).klp_info };
        NonNull::new(info).map(|info| KlpInfo { module: self, info })
    }

    /// Takes a reference that keeps the livepatch module loaded, for the
    /// patch that holds it until [`ModRef::put`]; fails if the module is
    /// going.
    ///
    /// # Safety
    ///
    /// The module is a livepatch module enabling its patch from its init, or
    /// is live: if that init fails after this, the loader frees the module
    /// under the patch (upstream's contract for `klp_enable_patch()` too).
    pub(crate) unsafe fn try_get(self) -> bool {
        // SAFETY: the function's contract.
        unsafe { self.module().try_get_coming() }
            .map(ModuleGet::into_raw)
            .is_some()
    }

    /// Drops the reference [`ModRef::try_get`] took.
    ///
    /// # Safety
    ///
    /// The caller owns a reference taken by `try_get` on this module, and
    /// gives it up.
    pub(crate) unsafe fn put(self) {
        // SAFETY: that reference (the function's contract).
        drop(unsafe { ModuleGet::from_raw(self.as_ptr()) });
    }

    /// The loaded module called `name` that `klp_module_coming()` has seen
    /// and `klp_module_going()` not yet, as `klp_find_object_module()`.
    ///
    /// No reference is taken, so that patches never keep a patched module
    /// from unloading. The handle outlives the RCU section of the lookup:
    /// the caller holds `klp_mutex`, which keeps `klp_module_going()`, and
    /// so the unload of a module found alive, away while it uses the
    /// result; `klp_module_going()` then removes the patches' uses.
    pub(crate) fn find_loaded(name: &CStr) -> Option<Self> {
        let rcu = rcu::Guard::new();
        let module = LoadedModule::find(name, &rcu)?;
        // INVARIANT: alive while used, as argued above.
        module
            .klp_alive()
            .then(|| ModRef(NonNull::from(module).cast()))
    }
}

/// The section headers and strings the loader kept for a livepatch module
/// (`struct klp_modinfo`).
///
/// # Invariants
///
/// `info` is the live `klp_info` of `module`: it holds the module's ELF
/// header, a copy of its section headers (with the addresses the sections
/// were loaded at), their names, and the index of the symbol table.
#[derive(Clone, Copy)]
pub(crate) struct KlpInfo {
    module: ModRef,
    info: NonNull<bindings::klp_modinfo>,
}

impl KlpInfo {
    fn get(&self) -> &bindings::klp_modinfo {
        // SAFETY: live while the module is (type invariant); the loader
        // writes it before module init and never again.
        unsafe { self.info.as_ref() }
    }

    /// The section headers, index 0 (the null section) included.
    pub(crate) fn sections(&self) -> &[bindings::Elf64_Shdr] {
        let info = self.get();
        // SAFETY: `sechdrs` holds `e_shnum` headers (type invariant).
        unsafe { core::slice::from_raw_parts(info.sechdrs, usize::from(info.hdr.e_shnum)) }
    }

    pub(crate) fn secstrings(&self) -> *const c_char {
        self.get().secstrings
    }

    pub(crate) fn symndx(&self) -> u32 {
        self.get().symndx
    }

    /// The string table of the symbols the relocations refer to; the
    /// loader keeps a livepatch module's full symbol table in its core
    /// kallsyms.
    pub(crate) fn strtab(&self) -> *const c_char {
        // SAFETY: a pointer field of the live module (type invariant).
        unsafe { (*self.module.as_ptr()).core_kallsyms.strtab }
    }

    /// The name of section `shdr`.
    pub(crate) fn section_name(&self, shdr: &bindings::Elf64_Shdr) -> &CStr {
        // SAFETY: `secstrings` holds the NUL-terminated section names and
        // `sh_name` is an offset into it, as the loader checked.
        unsafe { CStr::from_char_ptr(self.secstrings().add(shdr.sh_name as usize)) }
    }
}

/// Address of a section's contents, for handing back to C.
pub(crate) fn section_address(shdr: &bindings::Elf64_Shdr) -> *mut c_void {
    shdr.sh_addr as *mut c_void
}
