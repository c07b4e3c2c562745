// SPDX-License-Identifier: GPL-2.0

//! The x86_64 layer of the livepatch core.
//!
//! Compiled into the core's crate (`kernel/livepatch/klp.rs` includes it by
//! path). It holds what depends on the architecture: where ftrace calls in at
//! the start of a function, how the redirect rewrites the instruction
//! pointer, and the per-CPU reads (`current`, the preempt count) that the
//! ftrace handler needs inline. Those reads are inline assembly because rustc
//! cannot inline the C helpers (its LLVM is not clang's), and an out-of-line
//! call per patched call would cost more than the handler itself. The
//! checks and writes of livepatch relocations are in [`reloc`].

pub(crate) mod reloc;

use kernel::bindings;
use kernel::ffi::c_ulong;

// The preempt count is 8 bytes wide when the need-resched bit has a word of
// its own, 4 otherwise (`__pc_op` in `asm/preempt.h`).
#[cfg(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS)]
macro_rules! pc_inc {
    () => {
        "incq"
    };
}
#[cfg(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS)]
macro_rules! pc_dec {
    () => {
        "decq"
    };
}
#[cfg(not(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS))]
macro_rules! pc_inc {
    () => {
        "incl"
    };
}
#[cfg(not(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS))]
macro_rules! pc_dec {
    () => {
        "decl"
    };
}

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

/// This CPU's running task: `current`.
#[inline(always)]
pub(crate) fn current() -> *mut bindings::task_struct {
    let task: *mut bindings::task_struct;
    // SAFETY: reads this CPU's `current_task` through %gs, as the C
    // `get_current()` does; the value is stable for the running task.
    unsafe {
        core::arch::asm!(
            "movq %gs:{cur}(%rip), {out}",
            cur = sym bindings::current_task,
            out = out(reg) task,
            options(att_syntax, nostack, readonly, preserves_flags, pure),
        )
    };
    task
}

/// Preempt count bits above the preemption depth, as `preempt_count()`
/// returns them (the inverted need-resched bit masked off).
#[inline(always)]
pub(crate) fn preempt_count() -> u32 {
    let count: usize;
    // SAFETY: a plain read of this CPU's `__preempt_count` through %gs, as
    // C's `raw_cpu_read()`. Not `pure`: the count changes under us
    // (interrupts), so every call must read it again.
    #[cfg(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS)]
    unsafe {
        core::arch::asm!(
            "movq %gs:{count}(%rip), {out}",
            count = sym bindings::__preempt_count,
            out = out(reg) count,
            options(att_syntax, nostack, readonly, preserves_flags),
        )
    };
    // The inverted need-resched bit is the top bit of the word.
    #[cfg(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS)]
    const NEED_RESCHED: usize = 1 << 63;
    // SAFETY: as above, the 4-byte variant (zero-extended into the register).
    #[cfg(not(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS))]
    unsafe {
        core::arch::asm!(
            "movl %gs:{count}(%rip), {out:e}",
            count = sym bindings::__preempt_count,
            out = out(reg) count,
            options(att_syntax, nostack, readonly, preserves_flags),
        )
    };
    #[cfg(not(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS))]
    const NEED_RESCHED: usize = 1 << 31;
    // Every context bit sits in the low 32 bits.
    (count & !NEED_RESCHED) as u32
}

/// `preempt_disable()`, which on x86 is also `preempt_disable_notrace()`.
///
/// # Safety
///
/// Paired with exactly one [`preempt_enable`] or [`preempt_enable_notrace`]
/// on the same CPU.
#[inline(always)]
pub(crate) unsafe fn preempt_disable() {
    // SAFETY: one increment of this CPU's preempt count through %gs, as C.
    // Without `nomem` the asm is a compiler barrier, as C's `barrier()`.
    unsafe {
        core::arch::asm!(
            concat!(pc_inc!(), " %gs:{count}(%rip)"),
            count = sym bindings::__preempt_count,
            options(att_syntax, nostack),
        )
    };
}

/// The function C's `preempt_enable*()` calls when the count drops to
/// zero with a reschedule pending: the register-preserving thunk, or with
/// dynamic preemption the static call trampoline in front of it.
#[cfg(not(CONFIG_PREEMPT_DYNAMIC))]
macro_rules! resched_call {
    ($name:literal) => {
        concat!("call ", $name, "_thunk")
    };
}
#[cfg(CONFIG_PREEMPT_DYNAMIC)]
macro_rules! resched_call {
    ($name:literal) => {
        concat!("call __SCT__", $name)
    };
}

/// Decrements this CPU's preempt count and, with preemption, reschedules
/// through `$name` when that leaves it at zero (a reschedule is pending).
macro_rules! preempt_count_dec {
    ($name:literal) => {
        // Not `nostack` because of the call; the callee preserves every
        // register. Without `nomem` the asm is a compiler barrier.
        #[cfg(CONFIG_PREEMPTION)]
        core::arch::asm!(
            concat!(pc_dec!(), " %gs:{count}(%rip)"),
            "jnz 2f",
            resched_call!($name),
            "2:",
            count = sym bindings::__preempt_count,
            options(att_syntax),
        );
        // Without preemption, C only decrements.
        #[cfg(not(CONFIG_PREEMPTION))]
        core::arch::asm!(
            concat!(pc_dec!(), " %gs:{count}(%rip)"),
            count = sym bindings::__preempt_count,
            options(att_syntax, nostack),
        );
    };
}

/// `preempt_enable()`.
///
/// # Safety
///
/// Undoes one earlier [`preempt_disable`] on this CPU.
#[inline(always)]
#[allow(
    dead_code,
    reason = "only rcu_read.rs uses it, on configurations where rcu_read_lock() is preempt_disable()"
)]
pub(crate) unsafe fn preempt_enable() {
    // SAFETY: the paired disable raised the count; the scheduler call is
    // C's own for this point.
    unsafe {
        preempt_count_dec!("preempt_schedule");
    }
}

/// `preempt_enable_notrace()`.
///
/// # Safety
///
/// Undoes one earlier [`preempt_disable`] on this CPU.
#[inline(always)]
pub(crate) unsafe fn preempt_enable_notrace() {
    // SAFETY: as in `preempt_enable`, with the notrace scheduler entry.
    unsafe {
        preempt_count_dec!("preempt_schedule_notrace");
    }
}
