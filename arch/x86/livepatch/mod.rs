// SPDX-License-Identifier: GPL-2.0

//! The x86_64 layer of the livepatch core.
//!
//! Compiled into the core's crate (`kernel/livepatch/klp.rs` includes it by
//! path). It holds what depends on the architecture: where ftrace calls in at
//! the start of a function and how the redirect rewrites the instruction
//! pointer. The checks and writes of livepatch relocations are in
//! [`reloc`].

pub(crate) mod reloc;

use kernel::bindings;
use kernel::ffi::c_ulong;

/// The address ftrace patches in the function that starts at `func`, if it
/// is traceable.
///
/// With `-mfentry` the `call __fentry__` is the first instruction, except
/// when IBT puts an `endbr64` in front of it (then it is 4 bytes in);
/// `ftrace_location()` looks the function's record up by its whole range, so
/// both cases resolve here. `None` means the function has no ftrace record
/// (notrace, inlined, or not a function start), and cannot be patched.
pub(crate) fn fentry_location(func: usize) -> Option<usize> {
    // SAFETY: `ftrace_location` only looks the address up in ftrace's
    // records and kallsyms; any value is accepted.
    let loc = unsafe { bindings::ftrace_location(func as c_ulong) };
    (loc != 0).then_some(loc as usize)
}

/// Makes the traced function return into `target` instead of continuing in
/// its own body: `ftrace_regs_set_instruction_pointer()`.
///
/// # Safety
///
/// `fregs` is the `ftrace_regs` that ftrace passed to the running handler.
#[inline(always)]
pub(crate) unsafe fn set_instruction_pointer(fregs: *mut bindings::ftrace_regs, target: usize) {
    // On x86, `struct ftrace_regs` is an opaque name for
    // `struct __arch_ftrace_regs`, which wraps a `pt_regs`.
    let regs = fregs.cast::<bindings::__arch_ftrace_regs>();
    // SAFETY: `fregs` is ftrace's live register frame for this call (the
    // caller's contract); the trampoline reloads `ip` from it on return.
    unsafe { (*regs).regs.ip = target as c_ulong };
}
