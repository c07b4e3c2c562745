// SPDX-License-Identifier: GPL-2.0

//! Thin views of `struct module`: the livepatch module a patch comes from,
//! and the modules that patches apply to. Fields are read through bindgen's
//! layout, which [`crate::layout`] checks against C's at build time. Every
//! `unsafe` about modules in the core is here.

use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use kernel::bindings;
use kernel::ffi::{c_char, c_void};
use kernel::prelude::*;
use kernel::str::CStr;

/// A module that stays loaded while the value is used: the livepatch module
/// of a patch being enabled or installed (the patch holds a reference), a
/// module the loader is bringing up or taking down (it calls us), or one
/// found under RCU that patches only use until `klp_module_going()`.
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

    /// The module's name.
    pub(crate) fn name(self) -> &'static CStr {
        // SAFETY: `name` is a NUL-terminated array inside the live module;
        // the 'static lifetime never outlives the module in our uses (log
        // lines and comparisons while it is pinned as described above).
        unsafe { CStr::from_char_ptr(addr_of_mut!((*self.as_ptr()).name).cast::<c_char>()) }
    }

    /// `mod->state`.
    pub(crate) fn state(self) -> u32 {
        // SAFETY: an enum (int) field of the live module; the loader writes
        // it, we only compare it, as C does, with a plain read.
        unsafe { addr_of_mut!((*self.as_ptr()).state).read_volatile() }
    }

    /// `mod->klp`: whether the module says it is a livepatch
    /// (`MODULE_INFO(livepatch, "Y")`).
    pub(crate) fn is_livepatch(self) -> bool {
        // SAFETY: a bool field of the live module, set when it was loaded.
        unsafe { (*self.as_ptr()).klp }
    }

    fn klp_alive_cell(self) -> &'static AtomicBool {
        // SAFETY: a bool field of the live module; written under
        // `klp_mutex`, read by `find_loaded` under RCU only, hence atomic.
        unsafe { AtomicBool::from_ptr(addr_of_mut!((*self.as_ptr()).klp_alive)) }
    }

    /// `mod->klp_alive`: `klp_module_coming()` ran for it, and
    /// `klp_module_going()` not yet.
    pub(crate) fn klp_alive(self) -> bool {
        self.klp_alive_cell().load(Relaxed)
    }

    pub(crate) fn set_klp_alive(self, alive: bool) {
        self.klp_alive_cell().store(alive, Relaxed)
    }

    /// The ELF data the loader kept for a livepatch module, if any.
    pub(crate) fn klp_info(self) -> Option<KlpInfo> {
        // SAFETY: a pointer field of the live module; set at load time for
        // livepatch modules (NULL otherwise) and freed only when it goes.
        let info = unsafe { (*self.as_ptr()).klp_info };
        NonNull::new(info).map(|info| KlpInfo { module: self, info })
    }

    /// Takes a reference that keeps the module loaded; fails if it is going.
    pub(crate) fn try_get(self) -> bool {
        // SAFETY: the module is live (type invariant).
        unsafe { bindings::try_module_get(self.as_ptr()) }
    }

    /// Drops a reference taken with [`ModRef::try_get`].
    pub(crate) fn put(self) {
        // SAFETY: the module is live and we hold a reference (caller's
        // duty, as in C).
        unsafe { bindings::module_put(self.as_ptr()) }
    }

    /// The loaded module called `name` that `klp_module_coming()` has seen
    /// and `klp_module_going()` not yet, as `klp_find_object_module()`.
    ///
    /// No reference is taken, so that patches never keep a patched module
    /// from unloading; `klp_module_going()` removes the patches instead.
    pub(crate) fn find_loaded(name: &CStr) -> Option<Self> {
        let _rcu = kernel::sync::rcu::read_lock();
        // SAFETY: `find_module` walks the module list, which RCU protects
        // while we read it; the name is NUL-terminated.
        let module = unsafe { bindings::find_module(name.as_char_ptr()) };
        // SAFETY: under RCU the module is live; the caller holds
        // `klp_mutex`, which keeps `klp_module_going()`, and so the unload
        // of a module found alive, away while it uses the result.
        let module = unsafe { ModRef::from_raw(module) }?;
        module.klp_alive().then_some(module)
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
