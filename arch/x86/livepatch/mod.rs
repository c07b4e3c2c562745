// SPDX-License-Identifier: GPL-2.0

//! The x86_64 layer of the livepatch core.
//!
//! Compiled into the core's crate (`kernel/livepatch/klp.rs` includes it by
//! path). It holds what depends on the architecture: where ftrace calls in at
//! the start of a function (the redirect's instruction pointer is set
//! through `kernel::ftrace::FtraceRegs`). The checks and writes of livepatch
//! relocations are in [`reloc`].

pub(crate) mod reloc;

/// The address ftrace patches in the function that starts at `func`, if it
/// is traceable.
///
/// With `-mfentry` the `call __fentry__` is the first instruction, except
/// when IBT puts an `endbr64` in front of it (then it is 4 bytes in);
/// `ftrace_location()` looks the function's record up by its whole range, so
/// both cases resolve here. `None` means the function has no ftrace record
/// (notrace, inlined, or not a function start), and cannot be patched.
pub(crate) fn fentry_location(func: usize) -> Option<usize> {
    kernel::ftrace::location(func)
}
