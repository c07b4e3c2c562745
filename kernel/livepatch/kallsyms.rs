// SPDX-License-Identifier: GPL-2.0

//! Symbol lookup for patches and relocations: the address of the `pos`-th
//! symbol of a name in vmlinux or in one module, with upstream's log lines,
//! over the kernel crate's [`kernel::kallsyms`].

use core::ops::ControlFlow;

use kernel::kallsyms;
use kernel::prelude::*;

/// What a walk over the symbols of one name found so far.
struct Matches {
    /// The position asked for: 0 for "the name must be unique".
    pos: u64,
    /// Symbols of the name seen so far, and the last one's address.
    count: u64,
    addr: usize,
}

impl Matches {
    /// Notes one more symbol; breaks once the walk can stop: the position
    /// asked for was reached, or uniqueness already failed.
    fn found(&mut self, addr: usize) -> ControlFlow<()> {
        self.count += 1;
        self.addr = addr;
        let done = if self.pos != 0 {
            self.count == self.pos
        } else {
            self.count > 1
        };
        if done {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// The address of symbol `name` in `object` (`None`: vmlinux) at position
/// `pos` (1-based; 0: the symbol must be unique), with upstream's log lines
/// and `EINVAL` when it is absent, ambiguous, or has no such position.
pub(crate) fn find_symbol(object: Option<&CStr>, name: &CStr, pos: u64) -> Result<usize> {
    let mut matches = Matches {
        pos,
        count: 0,
        addr: 0,
    };
    match object {
        // The module walk passes every symbol of the module: compare names.
        Some(module) => kallsyms::for_each_module_symbol(module, |symbol, addr| {
            if symbol == name {
                matches.found(addr)
            } else {
                ControlFlow::Continue(())
            }
        }),
        None => kallsyms::for_each_vmlinux_symbol_named(name, |addr| matches.found(addr)),
    }
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
    kallsyms::lookup_size_offset(addr).map(|found| found.size)
}
