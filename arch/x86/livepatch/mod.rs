// SPDX-License-Identifier: GPL-2.0

//! The x86_64 layer of the livepatch core.
//!
//! Compiled into the core's crate (`kernel/livepatch/klp.rs` includes it by
//! path). It holds what depends on the architecture: the checks and writes
//! of livepatch relocations, in [`reloc`]. Where ftrace calls in at the
//! start of a function, and setting the redirect's instruction pointer, are
//! `kernel::ftrace`'s.

pub(crate) mod reloc;
