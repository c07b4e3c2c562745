// SPDX-License-Identifier: GPL-2.0

//! Symbol lookup through kallsyms: the address of the `pos`-th symbol of a
//! name in vmlinux or in one module, and the size of the symbol at an
//! address. Every `unsafe` about kallsyms in the core is here.

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::CStr;

/// What a walk over the symbols of one name found so far.
struct Matches {
    /// The position asked for: 0 for "the name must be unique".
    pos: u64,
    /// Symbols of the name seen so far, and the last one's address.
    count: u64,
    addr: usize,
}

impl Matches {
    /// Notes one more symbol; returns whether the walk can stop: the
    /// position asked for was reached, or uniqueness already failed.
    fn found(&mut self, addr: usize) -> bool {
        self.count += 1;
        self.addr = addr;
        if self.pos != 0 {
            self.count == self.pos
        } else {
            self.count > 1
        }
    }
}

/// Callback of `kallsyms_on_each_match_symbol`: every symbol it passes has
/// the name asked for.
///
/// # Safety
///
/// `data` is the `Matches` that [`find_symbol`] passed.
unsafe extern "C" fn on_vmlinux_match(data: *mut c_void, addr: c_ulong) -> c_int {
    // SAFETY: `data` is the `Matches` `lookup` passed, alive and not
    // otherwise borrowed during the walk.
    let matches = unsafe { &mut *data.cast::<Matches>() };
    c_int::from(matches.found(addr))
}

/// The name and state of a walk over one module's symbols.
struct ModuleWalk<'a> {
    name: &'a CStr,
    matches: Matches,
}

/// Callback of `module_kallsyms_on_each_symbol`: it passes every symbol of
/// the module, so compare names here.
///
/// # Safety
///
/// `data` is the `ModuleWalk` that [`find_symbol`] passed; `name` is
/// NUL-terminated.
unsafe extern "C" fn on_module_symbol(
    data: *mut c_void,
    name: *const c_char,
    addr: c_ulong,
) -> c_int {
    // SAFETY: `data` is the `ModuleWalk` `lookup` passed, alive and not
    // otherwise borrowed during the walk.
    let walk = unsafe { &mut *data.cast::<ModuleWalk<'_>>() };
    // SAFETY: kallsyms passes a NUL-terminated symbol name.
    let name = unsafe { CStr::from_char_ptr(name) };
    if name != walk.name {
        return 0;
    }
    c_int::from(walk.matches.found(addr))
}

/// The address of symbol `name` in `object` (`None`: vmlinux) at position
/// `pos` (1-based; 0: the symbol must be unique), with upstream's log lines
/// and `EINVAL` when it is absent, ambiguous, or has no such position.
pub(crate) fn find_symbol(object: Option<&CStr>, name: &CStr, pos: u64) -> Result<usize> {
    let matches = Matches {
        pos,
        count: 0,
        addr: 0,
    };
    let matches = match object {
        Some(module) => {
            let mut walk = ModuleWalk { name, matches };
            // SAFETY: the callback matches the expected signature and only
            // uses `walk`, which outlives the call; the names are
            // NUL-terminated. The walk takes `module_mutex` itself.
            unsafe {
                bindings::module_kallsyms_on_each_symbol(
                    module.as_char_ptr(),
                    Some(on_module_symbol),
                    (&raw mut walk).cast(),
                )
            };
            walk.matches
        }
        None => {
            let mut matches = matches;
            // SAFETY: as above, with `matches`.
            unsafe {
                bindings::kallsyms_on_each_match_symbol(
                    Some(on_vmlinux_match),
                    name.as_char_ptr(),
                    (&raw mut matches).cast(),
                )
            };
            matches
        }
    };
    let object_name = object.unwrap_or(c"vmlinux");
    if matches.addr == 0 {
        pr_err!("symbol '{}' not found in symbol table\n", name);
    } else if matches.count > 1 && pos == 0 {
        pr_err!(
            "unresolvable ambiguity for symbol '{}' in object '{}'\n",
            name,
            object_name
        );
    } else if pos > 0 && matches.count != pos {
        pr_err!(
            "symbol position {} for symbol '{}' in object '{}' not found\n",
            pos,
            name,
            object_name
        );
    } else {
        return Ok(matches.addr);
    }
    Err(EINVAL)
}

/// The size of the symbol containing `addr`, if kallsyms knows it.
pub(crate) fn symbol_size(addr: usize) -> Option<usize> {
    let mut size: c_ulong = 0;
    // SAFETY: `size` is a valid out-parameter; the offset one may be NULL.
    let found = unsafe {
        bindings::kallsyms_lookup_size_offset(addr as c_ulong, &mut size, core::ptr::null_mut())
    };
    (found != 0).then_some(size as usize)
}
