// SPDX-License-Identifier: GPL-2.0

//! Rust functions a livepatch can replace.
//!
//! Livepatch redirects a function at its ftrace site: the `call __fentry__`
//! that `-mfentry` makes the first instruction of every C function (after
//! `endbr64` with IBT), which objtool records in `__mcount_loc` and ftrace
//! turns into a NOP until someone traces the function. rustc 1.95 emits no
//! such call: `-Zinstrument-mcount` inserts an `mcount` call after the
//! prologue (where redirecting would run the new function on the old one's
//! frame) and has no `fentry` form, and `-Zpatchable-function-entry` pads
//! with NOPs that x86's ftrace does not look for. So an ordinary Rust
//! function has no ftrace site, and enabling a patch of it fails
//! (`klp_enable_patch()` finds no ftrace location).
//!
//! [`patchable!`](crate::livepatch_patchable) gives a Rust function the
//! same entry a C function has: an exported naked function made of
//! `endbr64` (with IBT), `call __fentry__` and a jump to the body. objtool
//! records the call like any other, ftrace patches it like any other, and a
//! patch names the function by its unmangled name (`old_name`).

/// Defines an `extern "C"`, unmangled function that livepatch can replace,
/// as it can a C function.
///
/// The function is a naked entry (`endbr64` with IBT, the ftrace call)
/// that jumps to the body, which is an ordinary `extern "C"` function: the
/// arguments are still in their registers and the caller's return address
/// on top of the stack, as ftrace and the body expect.
///
/// ```ignore
/// kernel::livepatch_patchable! {
///     /// What a livepatch may change.
///     pub fn answer(question: u32) -> u32 {
///         question + 42
///     }
/// }
/// ```
#[macro_export]
macro_rules! livepatch_patchable {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[no_mangle]
        #[unsafe(naked)]
        $vis extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(CONFIG_X86_KERNEL_IBT)]
            ::core::arch::naked_asm!(
                "endbr64",
                "call __fentry__",
                "jmp {body}",
                body = sym $name::body,
            );
            #[cfg(not(CONFIG_X86_KERNEL_IBT))]
            ::core::arch::naked_asm!(
                "call __fentry__",
                "jmp {body}",
                body = sym $name::body,
            );
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            pub(super) extern "C" fn body($($arg: $ty),*) $(-> $ret)? $body
        }
    };
}
