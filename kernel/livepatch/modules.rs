// SPDX-License-Identifier: GPL-2.0

//! The modules patches come from and apply to, over the kernel crate's
//! [`LoadedModule`], and the ELF data the loader keeps for a livepatch
//! module.

use core::ptr::NonNull;

use kernel::bindings::{self, Elf64_Rela, Elf64_Shdr, Elf64_Sym};
use kernel::ffi::{c_char, c_void};
use kernel::livepatch::TransitionWriter;
use kernel::loaded_module::{LoadedModule, ModuleGet, ModuleState};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::rcu;

use crate::arch::reloc as arch_reloc;

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

/// A livepatch module's ELF data, as the loader (or `klp_info`) gives it.
///
/// # Invariants
///
/// - `sections` is (a prefix of) the module's section header table, with
///   the addresses the loader placed the sections at;
/// - each section's `sh_name` is an offset into the NUL-terminated names at
///   `shstrtab`, and each symbol's `st_name` one into `strtab` (the loader
///   checked both when it loaded the module);
/// - unless `late`, the contents of every section in `sections` are at its
///   `sh_addr` (in the module's memory, or in the loader's temporary copy);
///   when `late`, only those of the SHF_ALLOC sections that live in the
///   module's core memory (not `.init*`, nor `.exit*` without
///   `CONFIG_MODULE_UNLOAD`, which go with the init memory; the string
///   tables, which the loader marks SHF_ALLOC, are never read through
///   their headers);
/// - the symbol table, section `symndx`, is in memory at its `sh_addr`
///   (the loader keeps a livepatch module's whole table);
/// - the data stays valid and, but for the symbol values the core writes,
///   unchanged while the value lives.
pub(crate) struct Elf<'a> {
    module: ModRef,
    sections: &'a [Elf64_Shdr],
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: usize,
    /// The loader is done with the module: only SHF_ALLOC sections are
    /// still in memory, and `.init` sections are gone.
    late: bool,
}

impl<'a> Elf<'a> {
    /// # Safety
    ///
    /// The arguments satisfy the type invariants for `'a`.
    pub(crate) unsafe fn new(
        module: ModRef,
        sections: &'a [Elf64_Shdr],
        shstrtab: *const c_char,
        strtab: *const c_char,
        symndx: usize,
        late: bool,
    ) -> Self {
        // INVARIANT: the caller's contract.
        Elf {
            module,
            sections,
            shstrtab,
            strtab,
            symndx,
            late,
        }
    }

    pub(crate) fn section(&self, index: usize) -> Result<&'a Elf64_Shdr> {
        self.sections.get(index).ok_or(ENOEXEC)
    }

    pub(crate) fn section_name(&self, shdr: &Elf64_Shdr) -> &'a CStr {
        // SAFETY: `sh_name` is an offset into the NUL-terminated section
        // names (type invariant).
        unsafe { CStr::from_char_ptr(self.shstrtab.add(shdr.sh_name as usize)) }
    }

    /// Whether the contents of `shdr` are in memory at its `sh_addr`.
    pub(crate) fn in_memory(&self, shdr: &Elf64_Shdr) -> bool {
        if shdr.sh_addr == 0 {
            return false;
        }
        if !self.late {
            return true;
        }
        // Once loaded: core memory only. The string tables, which the loader
        // marks SHF_ALLOC, and the init (and, without unloading, exit)
        // sections went with the init memory.
        let name = self.section_name(shdr).to_bytes();
        let freed = name.starts_with(b".init")
            || (!cfg!(CONFIG_MODULE_UNLOAD) && name.starts_with(b".exit"));
        shdr.sh_flags & u64::from(bindings::SHF_ALLOC) != 0
            && shdr.sh_type != bindings::SHT_STRTAB
            && !freed
    }

    /// Whether relocation target `target` is in memory: while loading, every
    /// section the loader relocates is (SHF_ALLOC ones and the per-CPU
    /// template, whose flag it cleared); later, only those of core memory.
    /// A table of symbols, strings or relocations is never a target: the
    /// writer must not change what the checks read.
    pub(crate) fn target_in_memory(&self, target: &Elf64_Shdr) -> bool {
        let table = matches!(
            target.sh_type,
            bindings::SHT_SYMTAB | bindings::SHT_STRTAB | bindings::SHT_RELA | bindings::SHT_REL
        );
        !table && self.in_memory(target)
    }

    /// The symbol table.
    pub(crate) fn symbols(&self) -> Result<&'a [Elf64_Sym]> {
        let symtab = self.section(self.symndx)?;
        if symtab.sh_addr % core::mem::align_of::<Elf64_Sym>() as u64 != 0 {
            pr_err!("the symbol table of {} is misaligned\n", self.module.name());
            return Err(ENOEXEC);
        }
        let count = symtab.sh_size as usize / core::mem::size_of::<Elf64_Sym>();
        // SAFETY: the symbol table is in memory at `sh_addr` with `sh_size`
        // bytes (type invariant), aligned as just checked.
        Ok(unsafe { core::slice::from_raw_parts(symtab.sh_addr as *const Elf64_Sym, count) })
    }

    /// Stores the resolved address of symbol `index`, where the relocation
    /// writer reads it.
    pub(crate) fn set_symbol_value(&self, index: usize, value: u64) -> Result {
        let symtab = self.section(self.symndx)?;
        if index >= self.symbols()?.len() {
            return Err(ENOEXEC);
        }
        let sym = (symtab.sh_addr as *mut Elf64_Sym).wrapping_add(index);
        // SAFETY: `index` is inside the table, which is in memory (type
        // invariant). Only the core writes symbol values, under `klp_mutex`
        // or while the loader (single-threaded for this module) calls us,
        // and no reference to the entry is held across this write.
        unsafe { (*sym).st_value = value };
        Ok(())
    }

    pub(crate) fn symbol_name(&self, sym: &Elf64_Sym) -> &'a CStr {
        // SAFETY: `st_name` is an offset into the NUL-terminated symbol
        // names (type invariant).
        unsafe { CStr::from_char_ptr(self.strtab.add(sym.st_name as usize)) }
    }

    /// The index of the symbol table.
    pub(crate) fn symndx(&self) -> usize {
        self.symndx
    }

    /// The relocations of section `shdr`, if its contents are in memory
    /// and aligned as relocations must be.
    pub(crate) fn relas(&self, shdr: &Elf64_Shdr) -> Option<&'a [Elf64_Rela]> {
        let in_table = self
            .sections
            .as_ptr_range()
            .contains(&core::ptr::from_ref(shdr));
        let aligned = shdr.sh_addr % core::mem::align_of::<Elf64_Rela>() as u64 == 0;
        if !in_table || shdr.sh_type != bindings::SHT_RELA || !self.in_memory(shdr) || !aligned {
            return None;
        }
        let count = shdr.sh_size as usize / core::mem::size_of::<Elf64_Rela>();
        // SAFETY: a relocation section of the table, in memory at `sh_addr`
        // with `sh_size` bytes (type invariant) and aligned, as just
        // checked; relocation sections are never targets (see
        // `target_in_memory`), so never written.
        Some(unsafe { core::slice::from_raw_parts(shdr.sh_addr as *const Elf64_Rela, count) })
    }

    /// Writes (`apply`) or clears the relocations of section `secndx`,
    /// named `name`, into its target `target`, after the arch layer checked
    /// every one of them against the target's bytes. Refuses a section or a
    /// target that is not in memory.
    pub(crate) fn relocate(
        &self,
        secndx: usize,
        name: &CStr,
        target: &'a Elf64_Shdr,
        apply: bool,
    ) -> Result {
        let shdr = self.section(secndx)?;
        let is_target = self
            .sections
            .get(shdr.sh_info as usize)
            .is_some_and(|t| core::ptr::eq(t, target));
        if !is_target || !self.target_in_memory(target) {
            return Err(ENOEXEC);
        }
        let relas = self.relas(shdr).ok_or(ENOEXEC)?;
        // SAFETY: the target is in memory at its `sh_addr`, with `sh_size`
        // bytes (checked above, type invariant).
        let section = unsafe { arch_reloc::Section::new(name, relas, self.symbols()?, target) };
        arch_reloc::check(&section, apply)?;
        // SAFETY: the section just passed `check` with the same `apply`:
        // every relocation has a supported type, lands inside its loaded
        // target, fits, and (when applying) finds zeros there. `sections` is
        // the module's table, and `secndx`, `symndx` and the target are
        // inside it.
        unsafe {
            arch_reloc::write(
                self.sections.as_ptr().cast_mut(),
                self.strtab,
                self.symndx,
                secndx,
                self.module.as_ptr(),
                apply,
            )
        }
    }
}

impl KlpInfo {
    /// The module's ELF data, as `klp_info` keeps it once loaded.
    pub(crate) fn elf(&self) -> Elf<'_> {
        // SAFETY: `klp_info` keeps the checked section headers and names of
        // the loaded livepatch module, whose core kallsyms hold the full
        // symbol table and its names; the headers carry the addresses of the
        // loaded sections (the invariants once loaded, `late`).
        unsafe {
            Elf::new(
                self.module,
                self.sections(),
                self.secstrings(),
                self.strtab(),
                self.symndx() as usize,
                true,
            )
        }
    }
}
