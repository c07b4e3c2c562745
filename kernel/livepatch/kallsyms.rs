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

/// A symbol to look up, and what the walk found of it.
pub(crate) struct SymbolQuery<'a> {
    name: &'a CStr,
    matches: Matches,
    /// The walk needs no more of this name.
    done: bool,
}

impl<'a> SymbolQuery<'a> {
    /// The symbol `name` at position `pos` (1-based; 0: it must be unique).
    pub(crate) fn new(name: &'a CStr, pos: u64) -> Self {
        SymbolQuery {
            name,
            matches: Matches {
                pos,
                count: 0,
                addr: 0,
            },
            done: false,
        }
    }

    fn found(&mut self, addr: usize) {
        if !self.done {
            self.done = self.matches.found(addr).is_break();
        }
    }

    /// The address found in `object` (`None`: vmlinux), with upstream's log
    /// lines and `EINVAL` when the symbol is absent, ambiguous, or has no
    /// such position.
    pub(crate) fn address(&self, object: Option<&CStr>) -> Result<usize> {
        let Matches { pos, count, addr } = self.matches;
        let name = self.name;
        let object_name = object.unwrap_or(c"vmlinux");
        if addr == 0 {
            pr_err!("symbol '{}' not found in symbol table\n", name);
        } else if count > 1 && pos == 0 {
            pr_err!(
                "unresolvable ambiguity for symbol '{}' in object '{}'\n",
                name,
                object_name
            );
        } else if pos > 0 && count != pos {
            pr_err!(
                "symbol position {} for symbol '{}' in object '{}' not found\n",
                pos,
                name,
                object_name
            );
        } else {
            return Ok(addr);
        }
        Err(EINVAL)
    }
}

/// The address of symbol `name` in `object` (`None`: vmlinux) at position
/// `pos` (1-based; 0: the symbol must be unique), with upstream's log lines
/// and `EINVAL` when it is absent, ambiguous, or has no such position.
pub(crate) fn find_symbol(object: Option<&CStr>, name: &CStr, pos: u64) -> Result<usize> {
    let mut query = SymbolQuery::new(name, pos);
    match object {
        // The module walk passes every symbol of the module: compare names.
        Some(module) => kallsyms::for_each_module_symbol(module, |symbol, addr| {
            if symbol == name {
                query.found(addr);
                if query.done {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }),
        None => kallsyms::for_each_vmlinux_symbol_named(name, |addr| {
            query.found(addr);
            if query.done {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }),
    }
    query.address(object)
}

/// Looks up every query of `queries` in `module` in one walk over its
/// symbols (a walk per name would cost the module's whole symbol table per
/// function of a patch); read each result with [`SymbolQuery::address`].
/// Fails only without memory for the index.
pub(crate) fn find_module_symbols(module: &CStr, queries: &mut [SymbolQuery<'_>]) -> Result {
    // The queries by name, for a binary search per symbol.
    let mut by_name = KVec::with_capacity(queries.len(), GFP_KERNEL)?;
    for index in 0..queries.len() {
        by_name.push(index, GFP_KERNEL)?;
    }
    by_name.sort_unstable_by(|&a, &b| queries[a].name.to_bytes().cmp(queries[b].name.to_bytes()));
    let mut left = queries.len();
    kallsyms::for_each_module_symbol(module, |symbol, addr| {
        let symbol = symbol.to_bytes();
        let first = by_name.partition_point(|&index| queries[index].name.to_bytes() < symbol);
        for &index in &by_name[first..] {
            let query = &mut queries[index];
            if query.name.to_bytes() != symbol {
                break;
            }
            if !query.done {
                query.found(addr);
                left -= usize::from(query.done);
            }
        }
        if left == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    Ok(())
}

/// The size of the symbol containing `addr`, if kallsyms knows it.
pub(crate) fn symbol_size(addr: usize) -> Option<usize> {
    kallsyms::lookup_size_offset(addr).map(|found| found.size)
}
