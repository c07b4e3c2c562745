// SPDX-License-Identifier: GPL-2.0

//! Kernel symbol lookup.
//!
//! The symbols kallsyms keeps for vmlinux and for loaded modules: walks over
//! the symbols of one name or of one module, and the size of the symbol
//! that contains an address.
//!
//! C headers: [`include/linux/kallsyms.h`](srctree/include/linux/kallsyms.h),
//! [`include/linux/module.h`](srctree/include/linux/module.h).

use crate::{
    bindings,
    ffi::{c_char, c_int, c_ulong, c_void},
    prelude::*,
};
use core::ops::ControlFlow;

/// Calls `f` with the address of every vmlinux symbol called `name`, in
/// kallsyms' order, until `f` breaks.
///
/// Module symbols are not visited; see [`for_each_module_symbol`].
///
/// # Examples
///
/// ```
/// use core::ops::ControlFlow;
/// use kernel::kallsyms;
///
/// let mut count = 0;
/// kallsyms::for_each_vmlinux_symbol_named(c"kallsyms_lookup_size_offset", |_addr| {
///     count += 1;
///     ControlFlow::Continue(())
/// });
/// assert_eq!(count, 1);
/// ```
pub fn for_each_vmlinux_symbol_named<F>(name: &CStr, mut f: F)
where
    F: FnMut(usize) -> ControlFlow<()>,
{
    /// # Safety
    ///
    /// `data` is the `F` passed below, not otherwise borrowed.
    unsafe extern "C" fn visit<F>(data: *mut c_void, addr: c_ulong) -> c_int
    where
        F: FnMut(usize) -> ControlFlow<()>,
    {
        // SAFETY: `data` is the exclusive borrow of `f` taken below, alive
        // for the whole walk (the function's contract).
        let f = unsafe { &mut *data.cast::<F>() };
        c_int::from(f(addr).is_break())
    }

    // SAFETY: `visit::<F>` has the signature the walk expects and only uses
    // `data` as the `F` it is; `f` outlives the call, which returns only
    // after the last callback; `name` is NUL-terminated.
    unsafe {
        bindings::kallsyms_on_each_match_symbol(
            Some(visit::<F>),
            name.as_char_ptr(),
            (&raw mut f).cast(),
        )
    };
}

/// Calls `f` with the name and address of every symbol of the loaded module
/// called `module`, until `f` breaks. Nothing is visited when no such module
/// is loaded.
///
/// The walk holds the module list's lock, so the module cannot go away
/// meanwhile; the names passed to `f` are only valid during its call.
#[cfg(CONFIG_MODULES)]
pub fn for_each_module_symbol<F>(module: &CStr, mut f: F)
where
    F: FnMut(&CStr, usize) -> ControlFlow<()>,
{
    /// # Safety
    ///
    /// `data` is the `F` passed below, not otherwise borrowed; `name` is
    /// NUL-terminated and valid during the call.
    unsafe extern "C" fn visit<F>(data: *mut c_void, name: *const c_char, addr: c_ulong) -> c_int
    where
        F: FnMut(&CStr, usize) -> ControlFlow<()>,
    {
        // SAFETY: `data` is the exclusive borrow of `f` taken below, alive
        // for the whole walk (the function's contract).
        let f = unsafe { &mut *data.cast::<F>() };
        // SAFETY: kallsyms passes a NUL-terminated name valid for this call,
        // and the higher-ranked bound of `F` keeps `f` from holding on to it.
        let name = unsafe { CStr::from_char_ptr(name) };
        c_int::from(f(name, addr).is_break())
    }

    // SAFETY: as for `for_each_vmlinux_symbol_named`, with `visit::<F>` of
    // the signature this walk expects.
    unsafe {
        bindings::module_kallsyms_on_each_symbol(
            module.as_char_ptr(),
            Some(visit::<F>),
            (&raw mut f).cast(),
        )
    };
}

/// The symbol that contains an address, as [`lookup_size_offset`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeOffset {
    /// The symbol's size in bytes.
    pub size: usize,
    /// How far into the symbol the address is.
    pub offset: usize,
}

/// The size of the symbol (of vmlinux or a loaded module) that contains
/// `addr`, and the offset of `addr` in it; `None` if kallsyms knows no such
/// symbol.
///
/// # Examples
///
/// ```
/// use kernel::kallsyms;
///
/// let addr = kernel::bindings::kallsyms_lookup_size_offset as *const () as usize;
/// let found = kallsyms::lookup_size_offset(addr).unwrap();
/// assert_eq!(found.offset, 0);
/// assert!(found.size > 0);
/// ```
pub fn lookup_size_offset(addr: usize) -> Option<SizeOffset> {
    let (mut size, mut offset) = (0, 0);
    // SAFETY: both out-parameters are valid for writes; any address may be
    // asked about.
    let found = unsafe { bindings::kallsyms_lookup_size_offset(addr, &mut size, &mut offset) };
    (found != 0).then_some(SizeOffset { size, offset })
}

#[kunit_tests(rust_kallsyms)]
mod tests {
    use super::*;

    /// An address kallsyms must know: a vmlinux function's entry.
    fn known() -> usize {
        bindings::kallsyms_lookup_size_offset as *const () as usize
    }

    #[test]
    fn finds_a_vmlinux_function_by_name() {
        let mut found = KVec::new();
        for_each_vmlinux_symbol_named(c"kallsyms_lookup_size_offset", |addr| {
            let _ = found.push(addr, GFP_KERNEL);
            ControlFlow::Continue(())
        });
        assert_eq!(found.as_slice(), &[known()]);
    }

    #[test]
    fn visits_nothing_for_an_unknown_name() {
        let mut calls = 0;
        for_each_vmlinux_symbol_named(c"rust_kallsyms_no_such_symbol", |_| {
            calls += 1;
            ControlFlow::Continue(())
        });
        assert_eq!(calls, 0);
    }

    #[test]
    fn stops_when_the_callback_breaks() {
        // Many drivers define a static `type_show()`; the walk must see
        // several, then only one when the callback breaks at the first.
        let mut all = 0;
        for_each_vmlinux_symbol_named(c"type_show", |_| {
            all += 1;
            ControlFlow::Continue(())
        });
        assert!(all >= 2);
        let mut calls = 0;
        for_each_vmlinux_symbol_named(c"type_show", |_| {
            calls += 1;
            ControlFlow::Break(())
        });
        assert_eq!(calls, 1);
    }

    #[cfg(CONFIG_MODULES)]
    #[test]
    fn visits_nothing_for_a_module_not_loaded() {
        let mut calls = 0;
        for_each_module_symbol(c"rust_kallsyms_no_such_module", |_, _| {
            calls += 1;
            ControlFlow::Continue(())
        });
        assert_eq!(calls, 0);
    }

    #[test]
    fn sizes_the_symbol_around_an_address() {
        let entry = lookup_size_offset(known()).expect("a vmlinux function");
        assert_eq!(entry.offset, 0);
        assert!(entry.size > 0);
        let inside = lookup_size_offset(known() + 1).expect("inside the function");
        assert_eq!(
            inside,
            SizeOffset {
                size: entry.size,
                offset: 1
            }
        );
    }

    #[test]
    fn knows_no_symbol_at_address_zero() {
        assert_eq!(lookup_size_offset(0), None);
    }
}
