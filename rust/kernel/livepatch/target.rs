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
//! [`livepatch_patchable!`](crate::livepatch_patchable) gives a Rust
//! function the entry a C function has: an exported naked function made of
//! `endbr64` (with IBT) and `call __fentry__`, which then calls the body.
//! objtool records the ftrace call like any other, ftrace patches it like any
//! other, and a patch names the function by its unmangled name (`old_name`).
//!
//! The entry calls the body rather than jumping to it, so that while the body
//! runs, the entry's return address is on the stack: the consistency model
//! finds a task in the old function by looking for addresses within it on
//! the task's stack, and the body is a function of its own. The extra frame
//! moves arguments passed on the stack, so only functions whose arguments
//! all travel in registers qualify: at most six, each of at most 8 bytes,
//! and a result of at most 16.

/// Defines an `extern "C"`, unmangled function that livepatch can replace,
/// as it can a C function.
///
/// The function is a naked entry (`endbr64` with IBT, the ftrace call) that
/// calls the body, an ordinary `extern "C"` function, with the arguments
/// still in their registers. At most six arguments of at most 8 bytes each,
/// and a result of at most 16 bytes (all passed in registers); anything else
/// does not compile.
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
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        $vis extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            // The ftrace site first, then a frame of its own (keeping the
            // stack 16-byte aligned at the body's entry) around the call.
            #[cfg(CONFIG_X86_KERNEL_IBT)]
            ::core::arch::naked_asm!(
                "endbr64",
                "call __fentry__",
                "sub rsp, 8",
                "call {body}",
                "add rsp, 8",
                "ret",
                body = sym $name::body,
            );
            #[cfg(not(CONFIG_X86_KERNEL_IBT))]
            ::core::arch::naked_asm!(
                "call __fentry__",
                "sub rsp, 8",
                "call {body}",
                "add rsp, 8",
                "ret",
                body = sym $name::body,
            );
        }

        // Every argument and the result in registers (SysV x86_64: six
        // integer registers in, two out), so the extra frame moves nothing.
        const _: () = {
            ::core::assert!(
                <[&str]>::len(&[$(::core::stringify!($arg)),*]) <= 6,
                "a patchable function takes at most six arguments"
            );
            $(::core::assert!(
                ::core::mem::size_of::<$ty>() <= 8,
                "an argument of a patchable function is at most 8 bytes"
            );)*
            $(::core::assert!(
                ::core::mem::size_of::<$ret>() <= 16,
                "the result of a patchable function is at most 16 bytes"
            );)?
        };

        // What the entry does not do (yet): other architectures, the return
        // thunk, the padding call-depth tracking expects before a function,
        // and kCFI's preamble for calls from C.
        #[cfg(not(CONFIG_X86_64))]
        ::core::compile_error!("livepatch_patchable! is written for x86_64");
        #[cfg(CONFIG_MITIGATION_RETHUNK)]
        ::core::compile_error!(
            "livepatch_patchable! returns with `ret`, not through the return thunk"
        );
        #[cfg(CONFIG_CALL_PADDING)]
        ::core::compile_error!("livepatch_patchable! emits no call padding (CONFIG_CALL_PADDING)");
        #[cfg(CONFIG_CFI)]
        ::core::compile_error!("livepatch_patchable! emits no kCFI preamble (CONFIG_CFI)");

        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            pub(super) extern "C" fn body($($arg: $ty),*) $(-> $ret)? $body
        }
    };
}
