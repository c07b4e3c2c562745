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

use kernel::bindings::{self, Elf64_Rela, Elf64_Shdr};
use kernel::prelude::*;
use kernel::str::CStr;

use crate::kallsyms;
use crate::klp_names;
use crate::modules::{Elf, KlpInfo};
use crate::structs::{Object, Patch, PatchDecl};

const SHF_RELA_LIVEPATCH: u64 = bindings::SHF_RELA_LIVEPATCH as u64;
const SHN_LIVEPATCH: u16 = bindings::SHN_LIVEPATCH as u16;

/// A `.klp.rela` section whose header was checked against the section
/// table: an aligned array of relocations, in memory, for a target section
/// that exists and is loaded.
struct RelaSection<'e> {
    index: usize,
    name: &'e CStr,
    object: &'e [u8],
    shdr: &'e Elf64_Shdr,
    target: &'e Elf64_Shdr,
}

impl<'a> Elf<'a> {
    /// Section `index`, a `.klp.rela` section, with its header checked: its
    /// type, that it and its target are in memory, and its alignment. A
    /// section that fails is refused with a line naming it.
    fn rela_section(&self, index: usize) -> Result<RelaSection<'a>> {
        let shdr = self.section(index)?;
        let name = self.section_name(shdr);
        let object = section_object(name)?;
        if shdr.sh_type != bindings::SHT_RELA {
            pr_err!("section '{}' is not of type SHT_RELA\n", name);
            return Err(ENOEXEC);
        }
        if !self.in_memory(shdr) {
            pr_err!("section '{}' is not loaded\n", name);
            return Err(ENOEXEC);
        }
        let target = self.target(shdr, name)?;
        if !self.target_in_memory(target) {
            pr_err!(
                "section '{}' relocates a section that is not loaded\n",
                name
            );
            return Err(ENOEXEC);
        }
        let rela_align = core::mem::align_of::<Elf64_Rela>() as u64;
        if shdr.sh_addr % rela_align != 0 {
            pr_err!("section '{}' is misaligned\n", name);
            return Err(ENOEXEC);
        }
        Ok(RelaSection {
            index,
            name,
            object,
            shdr,
            target,
        })
    }

    /// The section `shdr` (named `name`) relocates, if it exists.
    fn target(&self, shdr: &Elf64_Shdr, name: &CStr) -> Result<&'a Elf64_Shdr> {
        let index = shdr.sh_info as usize;
        match self.section(index).ok() {
            // The loader marks the symbol and string tables SHF_ALLOC too;
            // a relocation never targets a table.
            Some(target)
                if matches!(
                    target.sh_type,
                    bindings::SHT_SYMTAB
                        | bindings::SHT_STRTAB
                        | bindings::SHT_RELA
                        | bindings::SHT_REL
                ) =>
            {
                pr_err!(
                    "section '{}' relocates section '{}', a table of symbols, strings or relocations\n",
                    name,
                    self.section_name(target)
                );
                Err(ENOEXEC)
            }
            Some(target) if index != 0 => Ok(target),
            _ => {
                pr_err!(
                    "section '{}' relocates section {}, which does not exist\n",
                    name,
                    index
                );
                Err(ENOEXEC)
            }
        }
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
fn resolve_symbols(elf: &Elf<'_>, section: &RelaSection<'_>) -> Result {
    let sec_vmlinux = section.object == b"vmlinux";
    let section_name = section.name;
    for (index, rela) in elf.relas(section.shdr).ok_or(ENOEXEC)?.iter().enumerate() {
        let sym_index = (rela.r_info >> 32) as usize;
        // A copy: the table is written below, so no reference into it may
        // live across that.
        let Some(sym) = elf.symbols()?.get(sym_index).copied() else {
            pr_err!(
                "section {}: relocation {} refers to symbol {}, past the symbol table\n",
                section_name,
                index,
                sym_index
            );
            return Err(EINVAL);
        };
        let name = elf.symbol_name(&sym);
        if sym.st_shndx != SHN_LIVEPATCH {
            pr_err!(
                "symbol {} at rela sec {} idx {} is not marked as a livepatch symbol\n",
                name,
                elf.symndx(),
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
        elf.set_symbol_value(sym_index, addr as u64)?;
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
pub(crate) fn write_section(
    elf: &Elf<'_>,
    secndx: usize,
    object: Option<&CStr>,
    apply: bool,
) -> Result {
    // Another object's sections are none of this call's business, whatever
    // their headers say (as upstream).
    let name = elf.section_name(elf.section(secndx)?);
    if section_object(name)? != object.unwrap_or(c"vmlinux").to_bytes() {
        return Ok(());
    }
    let section = elf.rela_section(secndx)?;
    if apply {
        resolve_symbols(elf, &section)?;
    }
    elf.relocate(section.index, section.name, section.target, apply)
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
pub(crate) fn check_sections(patch: &PatchDecl) -> Result {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return Ok(());
    };
    let elf = info.elf();
    for index in klp_sections(&info) {
        let name = elf.section_name(elf.section(index)?);
        let object = section_object(name)?;
        if object == b"vmlinux" {
            // The loader wrote these, or refused the module, unless their
            // target is not one it relocates: then they were never written.
            let target = elf.target(elf.section(index)?, name)?;
            // The loader clears the per-CPU template's SHF_ALLOC, and writes
            // relocations into it all the same.
            let percpu = elf.section_name(target).to_bytes() == b".data..percpu";
            if target.sh_flags & u64::from(bindings::SHF_ALLOC) == 0 && !percpu {
                pr_err!(
                    "section '{}' relocates a section that is not loaded\n",
                    name
                );
                return Err(ENOEXEC);
            }
            continue;
        }
        let known = patch
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
        // The loader never looked at a module object's sections: their
        // headers are checked here, before the object can load.
        elf.rela_section(index)?;
    }
    Ok(())
}

/// Applies the relocations of the patch's module for module object `obj`,
/// now loaded. On an error, the sections already written are cleared again.
pub(crate) fn apply_object_relocs(patch: &Patch, obj: &Object) -> Result {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return Ok(());
    };
    let elf = info.elf();
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
pub(crate) fn clear_object_relocs(patch: &Patch, obj: &Object) {
    let module = patch.module();
    let Some(info) = module.klp_info() else {
        return;
    };
    let elf = info.elf();
    for index in klp_sections(&info) {
        let _ = write_section(&elf, index, obj.name(), false);
    }
}
