// SPDX-License-Identifier: GPL-2.0

//! Livepatch relocations: `.klp.rela.<object>.<section>` sections of a
//! livepatch module, whose symbols are `.klp.sym.<object>.<symbol>,<pos>`
//! (Documentation/livepatch/module-elf-format.rst).
//!
//! The module loader hands us the vmlinux ones while loading a livepatch
//! module; the core applies a module's when that module is (or becomes)
//! loaded, and clears them when it goes. Every name is checked with the
//! strict parsers of [`crate::klp_names`], every symbol resolved and every
//! relocation checked (by the arch layer) before the first byte is written,
//! so a bad section is refused whole.

use kernel::bindings::{self, Elf64_Rela, Elf64_Shdr, Elf64_Sym};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::{CStr, CStrExt};

use crate::arch::reloc as arch_reloc;
use crate::cview::{ObjRef, PatchRef};
use crate::kallsyms;
use crate::klp_names;
use crate::modules::{self, KlpInfo, ModRef};

const SHF_RELA_LIVEPATCH: u64 = bindings::SHF_RELA_LIVEPATCH as u64;
const SHN_LIVEPATCH: u16 = bindings::SHN_LIVEPATCH as u16;

/// A livepatch module's ELF data, as the loader (or `klp_info`) gives it.
struct Elf {
    module: ModRef,
    sechdrs: *mut Elf64_Shdr,
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: usize,
}

impl Elf {
    fn section(&self, index: usize) -> &Elf64_Shdr {
        // SAFETY: indices come from the ELF data the loader validated
        // (`e_shnum` bounds every index we use: a section's own, its
        // `sh_info`, the symbol table's).
        unsafe { &*self.sechdrs.add(index) }
    }

    fn section_name(&self, shdr: &Elf64_Shdr) -> &CStr {
        // SAFETY: the loader checked that the section names are
        // NUL-terminated and that `sh_name` points into them.
        unsafe { CStr::from_char_ptr(self.shstrtab.add(shdr.sh_name as usize)) }
    }

    /// The symbol table.
    fn symbols(&self) -> &[Elf64_Sym] {
        let symtab = self.section(self.symndx);
        let count = symtab.sh_size as usize / core::mem::size_of::<Elf64_Sym>();
        // SAFETY: the loaded symbol table holds `sh_size` bytes of symbols.
        unsafe { core::slice::from_raw_parts(symtab.sh_addr as *const Elf64_Sym, count) }
    }

    /// Stores the resolved address of symbol `index` (below the table's
    /// length), where the relocation writer reads it.
    fn set_symbol_value(&self, index: usize, value: u64) {
        let symtab = self.section(self.symndx);
        let sym = (symtab.sh_addr as *mut Elf64_Sym).wrapping_add(index);
        // SAFETY: `index` is inside the table (caller's check). Only the
        // core writes symbol values, under `klp_mutex` or while the loader
        // (single-threaded for this module) calls us, and no reference to
        // the entry is held across this write.
        unsafe { (*sym).st_value = value };
    }

    fn symbol_name(&self, sym: &Elf64_Sym) -> &CStr {
        // SAFETY: the string table is NUL-terminated (loader-checked) and
        // `st_name` is an offset into it.
        unsafe { CStr::from_char_ptr(self.strtab.add(sym.st_name as usize)) }
    }

    fn relas(&self, shdr: &Elf64_Shdr) -> &[Elf64_Rela] {
        let count = shdr.sh_size as usize / core::mem::size_of::<Elf64_Rela>();
        // SAFETY: a relocation section loaded at `sh_addr` with `sh_size`
        // bytes of entries; relocation sections are never written.
        unsafe { core::slice::from_raw_parts(shdr.sh_addr as *const Elf64_Rela, count) }
    }
}

/// The object a section name says its relocations are for.
fn section_object(name: &CStr) -> Result<&[u8]> {
    klp_names::parse_rela(name.to_bytes())
        .map(|rela| rela.object)
        .map_err(|_| {
            pr_err!("section {} has an incorrectly formatted name\n", name);
            EINVAL
        })
}

/// Resolves the symbols of one section into the symbol table.
fn resolve_symbols(elf: &Elf, shdr: &Elf64_Shdr, sec_object: &[u8]) -> Result {
    let sec_vmlinux = sec_object == b"vmlinux";
    let section_name = elf.section_name(shdr);
    for (index, rela) in elf.relas(shdr).iter().enumerate() {
        let sym_index = (rela.r_info >> 32) as usize;
        let Some(sym) = elf.symbols().get(sym_index) else {
            pr_err!(
                "section {}: relocation {} refers to symbol {}, past the symbol table\n",
                section_name,
                index,
                sym_index
            );
            return Err(EINVAL);
        };
        let name = elf.symbol_name(sym);
        if sym.st_shndx != SHN_LIVEPATCH {
            pr_err!(
                "symbol {} at rela sec {} idx {} is not marked as a livepatch symbol\n",
                name,
                elf.symndx,
                index
            );
            return Err(EINVAL);
        }
        let Ok(parsed) = klp_names::parse_sym(name.to_bytes()) else {
            pr_err!("symbol {} has an incorrectly formatted name\n", name);
            return Err(EINVAL);
        };
        // The parser checked both parts are short, printable and NUL-free.
        let mut object_buf = [0u8; klp_names::MAX_OBJECT_NAME + 1];
        let mut symbol_buf = [0u8; klp_names::MAX_SYMBOL_NAME + 1];
        let object = c_string(&mut object_buf, parsed.object)?;
        let symbol = c_string(&mut symbol_buf, parsed.symbol)?;
        // Module sections may not reach into vmlinux: such symbols should
        // be exported, and resolving them late would hide ordering bugs.
        if !sec_vmlinux && parsed.in_vmlinux() {
            pr_err!(
                "invalid access to vmlinux symbol '{}' from module-specific livepatch relocation section\n",
                symbol
            );
            return Err(EINVAL);
        }
        let object = (!parsed.in_vmlinux()).then_some(object);
        let addr = kallsyms::find_symbol(object, symbol, parsed.position)?;
        elf.set_symbol_value(sym_index, addr as u64);
    }
    Ok(())
}

/// `bytes` with a NUL, in `buf`.
fn c_string<'a>(buf: &'a mut [u8], bytes: &[u8]) -> Result<&'a CStr> {
    let with_nul = buf.get_mut(..=bytes.len()).ok_or(EINVAL)?;
    with_nul[..bytes.len()].copy_from_slice(bytes);
    with_nul[bytes.len()] = 0;
    CStr::from_bytes_with_nul(with_nul).map_err(|_| EINVAL)
}

/// Applies or clears section `secndx` if it is for `object` (`None`:
/// vmlinux), as `klp_write_section_relocs()`.
fn write_section(elf: &Elf, secndx: usize, object: Option<&CStr>, apply: bool) -> Result {
    let shdr = elf.section(secndx);
    let name = elf.section_name(shdr);
    let sec_object = section_object(name)?;
    if sec_object != object.unwrap_or(c"vmlinux").to_bytes() {
        return Ok(());
    }
    let target = elf.section(shdr.sh_info as usize);
    if apply {
        resolve_symbols(elf, shdr, sec_object)?;
    }
    let section = arch_reloc::Section {
        name,
        relas: elf.relas(shdr),
        symbols: elf.symbols(),
        target,
    };
    arch_reloc::check(&section, apply)?;
    // SAFETY: the section was checked: every relocation has a supported
    // type, lands inside its loaded target, fits, and (when applying) finds
    // zeros there; every symbol is resolved.
    unsafe {
        arch_reloc::write(
            elf.sechdrs,
            elf.strtab,
            elf.symndx,
            secndx,
            elf.module.as_ptr(),
            apply,
        )
    }
}

/// `klp_apply_section_relocs()`: the module loader's entry, for the
/// vmlinux sections of a livepatch module it is loading.
///
/// # Safety
///
/// Called by the module loader with the ELF data of `pmod` it validated, in
/// its relocation pass; `objname` is NULL (vmlinux) or a module name.
#[export]
pub(crate) unsafe extern "C" fn klp_apply_section_relocs(
    pmod: *mut bindings::module,
    sechdrs: *mut Elf64_Shdr,
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: c_uint,
    secndx: c_uint,
    objname: *const c_char,
) -> c_int {
    // SAFETY: the loader keeps the module alive during the call.
    let Some(module) = (unsafe { ModRef::from_raw(pmod) }) else {
        return EINVAL.to_errno();
    };
    let elf = Elf {
        module,
        sechdrs,
        shstrtab,
        strtab,
        symndx: symndx as usize,
    };
    // SAFETY: NULL or a NUL-terminated module name (caller's contract).
    let object = (!objname.is_null()).then(|| unsafe { CStr::from_char_ptr(objname) });
    crate::registry::to_errno(write_section(&elf, secndx as usize, object, true))
}

fn elf_of(info: &KlpInfo, module: ModRef) -> Elf {
    Elf {
        module,
        sechdrs: info.sechdrs(),
        shstrtab: info.secstrings(),
        strtab: info.strtab(),
        symndx: info.symndx() as usize,
    }
}

/// The indices of the livepatch relocation sections.
fn klp_sections(info: &KlpInfo) -> impl Iterator<Item = usize> + '_ {
    info.sections()
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, shdr)| shdr.sh_flags & SHF_RELA_LIVEPATCH != 0)
        .map(|(index, _)| index)
}

/// Refuses a patch whose module has a relocation section it could never
/// apply: a malformed name, or an object the patch does not patch (upstream
/// silently ignores those; the code they were meant for would run with
/// zeros in place of addresses).
pub(crate) fn check_sections(patch: PatchRef) -> Result {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return Ok(());
    };
    let elf = elf_of(&info, module);
    for index in klp_sections(&info) {
        let name = elf.section_name(elf.section(index));
        let object = section_object(name)?;
        let known = object == b"vmlinux"
            || patch
                .static_objects()
                .any(|obj| obj.name().is_some_and(|name| name.to_bytes() == object));
        if !known {
            pr_err!(
                "section '{}' relocates object '{}', which patch '{}' does not patch\n",
                name,
                kernel::str::BStr::from_bytes(object),
                patch.name()
            );
            return Err(EINVAL);
        }
    }
    Ok(())
}

/// Applies the relocations of the patch's module for module object `obj`,
/// now loaded. On an error, the sections already written are cleared again.
pub(crate) fn apply_object_relocs(patch: PatchRef, obj: ObjRef) -> Result {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return Ok(());
    };
    let elf = elf_of(&info, module);
    let object = obj.name();
    for (applied, index) in klp_sections(&info).enumerate() {
        if let Err(err) = write_section(&elf, index, object, true) {
            for done in klp_sections(&info).take(applied) {
                let _ = write_section(&elf, done, object, false);
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Clears what [`apply_object_relocs`] wrote, when `obj`'s module goes, so
/// that it can be written again if the module comes back.
pub(crate) fn clear_object_relocs(patch: PatchRef, obj: ObjRef) {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return;
    };
    let elf = elf_of(&info, module);
    for index in klp_sections(&info) {
        let _ = write_section(&elf, index, obj.name(), false);
    }
}

/// `klp_find_section_by_name()`: where a livepatch module's section was
/// loaded, and its size.
///
/// # Safety
///
/// `module` is a live livepatch module (its `klp_info` is set), `name` a
/// NUL-terminated string and `sec_size` valid for writes.
#[export]
pub(crate) unsafe extern "C" fn klp_find_section_by_name(
    module: *const bindings::module,
    name: *const c_char,
    sec_size: *mut usize,
) -> *mut c_void {
    // SAFETY: (caller's contract); only read.
    let module = unsafe { ModRef::from_raw(module.cast_mut()) };
    // SAFETY: (caller's contract).
    let name = unsafe { CStr::from_char_ptr(name) };
    let found = module
        .and_then(|module| module.klp_info())
        .and_then(|info| {
            info.sections()
                .iter()
                .skip(1)
                .find(|shdr| info.section_name(shdr) == name)
                .map(|shdr| (modules::section_address(shdr), shdr.sh_size as usize))
        });
    let (addr, size) = found.unwrap_or((core::ptr::null_mut(), 0));
    // SAFETY: (caller's contract).
    unsafe { *sec_size = size };
    addr
}
