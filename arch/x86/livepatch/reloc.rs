// SPDX-License-Identifier: GPL-2.0

//! x86_64 livepatch relocations: checking a whole `.klp.rela` section
//! before the module loader's `apply_relocate_add()` writes it (or
//! `clear_relocate_add()` zeroes it again).
//!
//! The loader's writer stops at the first relocation it cannot do and
//! leaves the earlier ones written. Checking the same conditions first
//! (type, bounds, range, the bytes found in place) makes a bad section
//! fail before any byte changes, so a refused patch leaves nothing behind.

use kernel::bindings::{self, Elf64_Rela, Elf64_Shdr, Elf64_Sym};
use kernel::ffi::c_char;
use kernel::prelude::*;
use kernel::str::CStr;

/// One relocation section, with what it refers to.
///
/// # Invariants
///
/// The `target.sh_size` bytes at `target.sh_addr` are the target section's
/// contents, in memory while the value lives.
pub(crate) struct Section<'a> {
    name: &'a CStr,
    relas: &'a [Elf64_Rela],
    /// The symbol table, with the livepatch symbols resolved.
    symbols: &'a [Elf64_Sym],
    /// The section the relocations write into, as loaded.
    target: &'a Elf64_Shdr,
}

impl<'a> Section<'a> {
    /// # Safety
    ///
    /// The `target.sh_size` bytes at `target.sh_addr` are readable for
    /// `'a`: the target section is loaded there.
    pub(crate) unsafe fn new(
        name: &'a CStr,
        relas: &'a [Elf64_Rela],
        symbols: &'a [Elf64_Sym],
        target: &'a Elf64_Shdr,
    ) -> Self {
        // INVARIANT: the caller's contract.
        Section {
            name,
            relas,
            symbols,
            target,
        }
    }
}

/// What one relocation writes: `size` bytes of `value` at `offset`.
struct Write {
    offset: u64,
    size: u64,
    value: u64,
}

/// The write relocation `index` asks for, or why it cannot be done.
fn plan(section: &Section<'_>, index: usize, rela: &Elf64_Rela) -> Result<Option<Write>> {
    let name = section.name;
    let kind = (rela.r_info & 0xffff_ffff) as u32;
    let sym = (rela.r_info >> 32) as usize;
    let Some(sym) = section.symbols.get(sym) else {
        pr_err!("section {}: relocation {} has no symbol\n", name, index);
        return Err(ENOEXEC);
    };
    let location = section.target.sh_addr.wrapping_add(rela.r_offset);
    let value = sym.st_value.wrapping_add(rela.r_addend as u64);
    let (size, value, fits) = match kind {
        bindings::R_X86_64_NONE => return Ok(None),
        bindings::R_X86_64_64 => (8, value, true),
        bindings::R_X86_64_32 => (4, value, u32::try_from(value).is_ok()),
        bindings::R_X86_64_32S => (4, value, i32::try_from(value as i64).is_ok()),
        bindings::R_X86_64_PC32 | bindings::R_X86_64_PLT32 => {
            let value = value.wrapping_sub(location);
            (4, value, i32::try_from(value as i64).is_ok())
        }
        bindings::R_X86_64_PC64 => (8, value.wrapping_sub(location), true),
        _ => {
            pr_err!(
                "section '{}': relocation {} has unsupported type {}\n",
                name,
                index,
                kind
            );
            return Err(ENOEXEC);
        }
    };
    if !fits {
        pr_err!(
            "section '{}': relocation {} of type {} overflows: value {:#x}\n",
            name,
            index,
            kind,
            value
        );
        return Err(ENOEXEC);
    }
    let inside = rela
        .r_offset
        .checked_add(size)
        .is_some_and(|end| end <= section.target.sh_size);
    if !inside {
        pr_err!(
            "section '{}': relocation {} at offset {:#x} is outside its target section\n",
            name,
            index,
            rela.r_offset
        );
        return Err(ENOEXEC);
    }
    Ok(Some(Write {
        offset: rela.r_offset,
        size,
        value,
    }))
}

/// The bytes now at the place `write` goes to, if that lies inside the
/// target section.
fn current_bytes(section: &Section<'_>, write: &Write) -> Option<u64> {
    let target = section.target;
    let inside = matches!(write.size, 4 | 8)
        && write
            .offset
            .checked_add(write.size)
            .is_some_and(|end| end <= target.sh_size);
    if !inside {
        return None;
    }
    let location = target.sh_addr.wrapping_add(write.offset) as *const u8;
    // SAFETY: the bytes lie inside the target section, just checked, whose
    // contents are in memory at `sh_addr` (`Section`'s invariant); unaligned
    // reads are fine on x86.
    Some(unsafe {
        if write.size == 8 {
            location.cast::<u64>().read_unaligned()
        } else {
            u64::from(location.cast::<u32>().read_unaligned())
        }
    })
}

/// Checks that every relocation of `section` can be written (or, with
/// `apply` false, cleared), so that [`write`] cannot stop halfway.
pub(crate) fn check(section: &Section<'_>, apply: bool) -> Result {
    let name = section.name;
    // Whether the target is loaded is the caller's to check (the per-CPU
    // template, which the loader relocates, is not SHF_ALLOC).
    if section.target.sh_addr == 0 {
        pr_err!(
            "section '{}' relocates a section that is not loaded\n",
            name
        );
        return Err(ENOEXEC);
    }
    for (index, rela) in section.relas.iter().enumerate() {
        let Some(write) = plan(section, index, rela)? else {
            continue;
        };
        let Some(found) = current_bytes(section, &write) else {
            return Err(ENOEXEC);
        };
        let mask = if write.size == 8 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let expected = if apply { 0 } else { write.value & mask };
        if found != expected {
            pr_err!(
                "section '{}': relocation {} at offset {:#x} finds {:#x} in place, not {:#x}\n",
                name,
                index,
                write.offset,
                found,
                expected
            );
            return Err(ENOEXEC);
        }
    }
    Ok(())
}

/// Writes (or clears) relocation section `secndx` with the module loader's
/// x86 writer, which pokes text safely once the module is live.
///
/// # Safety
///
/// The section was passed by [`check`] with the same `apply`, and the ELF
/// data is the live module's, as the loader or its `klp_info` keeps it.
pub(crate) unsafe fn write(
    sechdrs: *mut Elf64_Shdr,
    strtab: *const c_char,
    symndx: usize,
    secndx: usize,
    module: *mut bindings::module,
    apply: bool,
) -> Result {
    if apply {
        // SAFETY: (caller's contract).
        kernel::error::to_result(unsafe {
            bindings::apply_relocate_add(sechdrs, strtab, symndx as u32, secndx as u32, module)
        })
    } else {
        // SAFETY: (caller's contract).
        unsafe {
            bindings::clear_relocate_add(sechdrs, strtab, symndx as u32, secndx as u32, module)
        };
        Ok(())
    }
}
