// SPDX-License-Identifier: GPL-2.0

//! klp-rs: the kernel live patching core in Rust.
//!
//! Built into `kernel/livepatch/livepatch.o`. C reaches it through the
//! functions `include/linux/livepatch.h` and `livepatch_sched.h` declare:
//! livepatch modules (`klp_enable_patch`, shadow variables, states), the
//! module loader (`klp_module_coming`/`going`, `klp_apply_section_relocs`),
//! and the scheduler, fork and exit paths (the transition's switch points).
//! Every one of those functions is in [`exports`], which turns C's raw
//! arguments into typed references; the C structures modules hand in are
//! reached as `structs::{Patch, Object, Func}`, modules through
//! [`modules`], tasks and CPUs through the kernel crate (`kernel::tasklist`,
//! `kernel::cpus`); the few lines only C can express are in `shim.c`.
//!
//! # Layers
//!
//! Lowest first. A module uses only modules of lower layers;
//! `harness/layering.sh` (the `layering` result of `make check`) reads the
//! `crate::` paths of every file and fails on any other edge, and on a
//! listed back-edge that no longer exists.
//!
//! <!-- layers -->
//! 1. pure logic, also built for the host tests: `klp_names`, `shadow_sizing`, `state_rules`
//! 2. the x86_64 layer: `arch`
//! 3. views of C, and the Rust side of `shim.c`: `layout`, `kallsyms`, `modules`, `shim`
//! 4. `klp_mutex` and the proof of holding it: `lock`
//! 5. the livepatch structures a module hands in, with their lists and kobjects: `structs`
//! 6. the redirect's ops table and stacks, the shadow variables' table: `func_stack`, `shadow_table`
//! 7. the redirect, shadow variables: `redirect`, `shadow`
//! 8. the consistency model: `transition`
//! 9. states, relocations, the sysfs files: `state`, `reloc`, `sysfs`
//! 10. the registry: `registry`
//! 11. the C entry points: `exports`
//!
//! Where a lower layer must have a higher one act (finishing a transition
//! every task switched for, a write to `enabled`, a sysfs callback, a
//! patch's free work), the higher one hands it functions or a trait
//! implementation: see `transition::init`, `sysfs::init`,
//! `structs::kobject::Handlers`, `structs::FreeWork` and
//! the `kernel::ftrace::FtraceHandler` that `redirect` implements for
//! `func_stack::Redirects`.
//! <!-- /layers -->

use kernel::prelude::*;

#[path = "../../arch/x86/livepatch/mod.rs"]
mod arch;
mod exports;
mod func_stack;
mod kallsyms;
pub mod klp_names;
mod layout;
mod lock;
mod modules;
mod redirect;
mod registry;
mod reloc;
mod shadow;
pub mod shadow_sizing;
mod shadow_table;
mod shim;
mod state;
pub mod state_rules;
mod structs;
mod sysfs;
mod transition;

module! {
    type: Livepatch,
    name: "livepatch",
    authors: ["klp-rs developers"],
    description: "Kernel live patching core",
    license: "GPL",
    params: {
        test_fail_init: u32 {
            default: 0,
            description: "Testing only: fail init step N (1 first, 2 sysfs, 4 transition, 5 shadow)",
        },
    },
}

/// The init steps `livepatch.test_fail_init=` can fail on purpose, so that
/// the selftests can see what every exported function does after an init
/// that stopped there (1 stands for "the initcall has not run yet"; 3, the
/// layout check, moved to build time).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum InitStep {
    First = 1,
    Sysfs = 2,
    Transition = 4,
    Shadow = 5,
}

/// `Err(EINVAL)` if the boot asked for `step` to fail.
fn test_fail(step: InitStep) -> Result {
    if module_parameters::test_fail_init.value() == step as u32 {
        pr_err!("test_fail_init: failing init step {}\n", step as u32);
        return Err(EINVAL);
    }
    Ok(())
}

struct Livepatch;

impl kernel::Module for Livepatch {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // `klp_mutex` and the patch list are static (`shim.c`): the module
        // loader may call in before this runs, or after it failed.
        test_fail(InitStep::First)?;
        // Shadow variables need nothing else, so they come first: any
        // module may use them, whatever fails below.
        test_fail(InitStep::Shadow)?;
        shadow::init().inspect_err(|err| {
            pr_err!(
                "cannot set up shadow variables ({:?}): every shadow allocation will fail\n",
                err
            )
        })?;
        // Until these succeed no patch can be enabled: `klp_enable_patch`
        // checks `lock::ready()` first.
        test_fail(InitStep::Sysfs)?;
        sysfs::init(registry::SYSFS_OPS)
            .inspect_err(|_| pr_err!("cannot create /sys/kernel/livepatch\n"))?;
        test_fail(InitStep::Transition)?;
        transition::init(registry::finish_transition)
            .inspect_err(|err| pr_err!("cannot set up transition work ({:?})\n", err))?;
        lock::set_ready();
        Ok(Livepatch)
    }
}
