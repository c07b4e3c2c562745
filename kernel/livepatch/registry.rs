// SPDX-License-Identifier: GPL-2.0

//! The registry: enabling a patch a livepatch module hands in
//! (`klp_enable_patch()`), disabling and freeing it, atomic replace, and
//! patching modules that come and go.
//!
//! `klp_mutex` serialises all of it (and the transition work). Patches,
//! objects and functions are the module's C structures, reached as
//! [`Patch`], [`Object`] and [`Func`] references; the dynamic objects and
//! `nop` functions of atomic replace are made and freed by
//! [`crate::structs`].

use core::sync::atomic::{fence, Ordering::Release};

use kernel::bindings;
use kernel::ffi::c_int;
use kernel::loaded_module::ModuleState;
use kernel::prelude::*;

use crate::kallsyms;
use crate::lock::{lock, ready, Locked};
use crate::modules::{ModRef, MODULE_NAME_LEN};
use crate::redirect;
use crate::reloc;
use crate::structs::{
    installed_patches as patches, FreeWork, NewPatch, Object, ObjectDecl, Patch, PatchDecl,
    Retiring,
};
use crate::sysfs;
use crate::transition::{self, transition_patch};

/// Checks what upstream's `klp_check_patch()` checks, and what upstream
/// only finds out halfway through, when sysfs refuses a duplicate name or a
/// function turns out to have no replacement: before anything is set up,
/// so that refusing needs no rollback.
fn check_patch(patch: &PatchDecl) -> Result {
    let name = patch.name();
    for (i, obj) in patch.static_objects().enumerate() {
        if !obj.has_funcs() {
            pr_err!(
                "object '{}' of patch '{}' has no functions\n",
                obj.display_name(),
                name
            );
            return Err(EINVAL);
        }
        if let Some(obj_name) = obj.name() {
            if obj_name.to_bytes().len() >= MODULE_NAME_LEN {
                pr_err!(
                    "object name '{}' in patch '{}' is too long\n",
                    obj_name,
                    name
                );
                return Err(EINVAL);
            }
        }
        if patch
            .static_objects()
            .take(i)
            .any(|other| other.same_object(obj))
        {
            pr_err!(
                "object '{}' is listed twice in patch '{}'\n",
                obj.display_name(),
                name
            );
            return Err(EINVAL);
        }
        let listed_twice = first_listed_twice(obj)?;
        for (j, func) in obj.static_funcs().enumerate() {
            let Some(old_name) = func.old_name_checked() else {
                pr_err!(
                    "a function of object '{}' in patch '{}' has no old_name\n",
                    obj.display_name(),
                    name
                );
                return Err(EINVAL);
            };
            if old_name.to_bytes().len() >= bindings::KSYM_NAME_LEN as usize {
                pr_err!(
                    "function name '{}' in patch '{}' is too long\n",
                    old_name,
                    name
                );
                return Err(EINVAL);
            }
            if func.new_func() == 0 {
                pr_err!(
                    "function '{}' of patch '{}' has no new_func\n",
                    old_name,
                    name
                );
                return Err(EINVAL);
            }
            if listed_twice == Some(j) {
                pr_err!(
                    "function '{},{}' is listed twice in object '{}'\n",
                    old_name,
                    func.shown_sympos(),
                    obj.display_name()
                );
                return Err(EINVAL);
            }
        }
    }
    Ok(())
}

/// The position of the first function of `obj` that names the same symbol
/// as one before it (see `FuncDecl::same_symbol`), found by sorting: a
/// comparison of every pair costs seconds in a patch of 5,000 functions.
fn first_listed_twice(obj: &ObjectDecl) -> Result<Option<usize>> {
    let mut keys = KVec::new();
    for (position, func) in obj.static_funcs().enumerate() {
        // A function without a name is refused before it could be compared.
        if let Some(name) = func.old_name_checked() {
            keys.push((name.to_bytes(), func.shown_sympos(), position), GFP_KERNEL)?;
        }
    }
    keys.sort_unstable();
    // In a run of equal symbols (sorted by position), each after the first
    // repeats an earlier one.
    Ok(keys
        .windows(2)
        .filter(|pair| (pair[0].0, pair[0].1) == (pair[1].0, pair[1].1))
        .map(|pair| pair[1].2)
        .min())
}

/// `klp_enable_patch()`: sets up and enables the patch a livepatch module
/// hands in from its init; on any error, nothing is left behind.
pub(crate) fn enable_patch(new: NewPatch<'_>) -> Result {
    // First: nothing can be registered before the core is set up.
    if !ready() {
        pr_err!("the livepatch core did not initialise: refusing the patch\n");
        return Err(ENODEV);
    }
    let patch = new.decl();
    check_patch(patch)?;
    let module = patch.module();
    if !module.is_livepatch() {
        pr_err!(
            "module {} is not marked as a livepatch module\n",
            module.name()
        );
        return Err(EINVAL);
    }
    // Before taking anything: a relocation section for an object the patch
    // does not patch would never be applied.
    reloc::check_sections(patch)?;

    let locked = lock();
    if !crate::state::is_patch_compatible(&locked, patch) {
        pr_err!(
            "Livepatch patch ({}) is not compatible with the already installed livepatches.\n",
            module.name()
        );
        return Err(EINVAL);
    }
    let Some(module_ref) = new.get_module() else {
        return Err(ENODEV);
    };
    let fresh = new.init_early::<FreePatchWork>();
    let patch = fresh.patch();
    let result = match init_patch(&locked, patch) {
        Ok(()) => {
            fresh.install(&locked);
            start_enable(&locked, patch).map_err(|err| (err, patch.uninstall(&locked)))
        }
        Err(err) => Err((err, Some(fresh.abandon()))),
    };
    match result {
        Ok(()) => {
            module_ref.hand_to_patch();
            Ok(())
        }
        Err((err, retiring)) => {
            // A transition `start_enable` began was cancelled, which unpatched
            // everything, so the patch can be freed now.
            let Some(retiring) = retiring else {
                // Cannot happen; if it did, keep the patch and its module.
                crate::warn_on_once!(true);
                module_ref.keep();
                return Err(err);
            };
            retiring.release_objects(&locked);
            drop(locked);
            if retiring.put_kobject_and_wait() {
                module_ref.keep();
            } else {
                module_ref.put();
            }
            Err(err)
        }
    }
}

/// Adds the sysfs tree and the nops of a replace patch, and resolves every
/// loaded object (`klp_init_patch()`, but for installing the patch, which
/// the caller does).
fn init_patch(locked: &Locked, patch: &Patch) -> Result {
    patch.add_kobject(locked)?;
    if patch.replace() {
        add_nops(locked, patch)?;
    }
    for obj in patch.objects() {
        init_object(locked, patch, obj)?;
    }
    Ok(())
}

fn init_object(locked: &Locked, patch: &Patch, obj: &Object) -> Result {
    obj.reset(locked);
    if let Some(name) = obj.name() {
        obj.set_module(locked, ModRef::find_loaded(name));
    }
    obj.add_kobject(locked, patch)?;
    for func in obj.funcs() {
        func.add_kobject(locked, obj)?;
    }
    if obj.is_loaded() {
        init_object_loaded(locked, patch, obj)?;
    }
    Ok(())
}

/// What can only be done once the object is loaded: the module-specific
/// relocations, and the addresses and sizes of the old and new code. On an
/// error nothing stays written (upstream leaves a module's relocations in
/// place, and the module's next load then fails on them).
fn init_object_loaded(locked: &Locked, patch: &Patch, obj: &Object) -> Result {
    if !obj.is_module() {
        // vmlinux relocations were written when the livepatch module loaded.
        return resolve_funcs(locked, obj);
    }
    reloc::apply_object_relocs(patch, obj)?;
    resolve_funcs(locked, obj).inspect_err(|_| reloc::clear_object_relocs(patch, obj))
}

/// Finds the old code of every function of the loaded `obj`, and the sizes
/// of it and of its replacement.
fn resolve_funcs(locked: &Locked, obj: &Object) -> Result {
    // A module's symbols in one walk for all the functions; vmlinux's are
    // found by name in its sorted table.
    let mut found = KVec::new();
    if let Some(module) = obj.name() {
        for func in obj.funcs() {
            found.push(
                kallsyms::SymbolQuery::new(func.old_name(), func.old_sympos()),
                GFP_KERNEL,
            )?;
        }
        kallsyms::find_module_symbols(module, &mut found)?;
    }
    for (index, func) in obj.funcs().enumerate() {
        let old_func = match found.get(index) {
            Some(query) => query.address(obj.name())?,
            None => kallsyms::find_symbol(obj.name(), func.old_name(), func.old_sympos())?,
        };
        let Some(old_size) = kallsyms::symbol_size(old_func) else {
            pr_err!("kallsyms size lookup failed for '{}'\n", func.old_name());
            return Err(ENOENT);
        };
        let new_func = if func.nop() {
            old_func
        } else {
            func.new_func()
        };
        let Some(new_size) = kallsyms::symbol_size(new_func) else {
            pr_err!(
                "kallsyms size lookup failed for '{}' replacement\n",
                func.old_name()
            );
            return Err(ENOENT);
        };
        func.set_addresses(locked, old_func, old_size, new_func, new_size)?;
    }
    Ok(())
}

/// `__klp_enable_patch()`: patches every loaded object and starts the
/// transition.
fn start_enable(locked: &Locked, patch: &Patch) -> Result {
    if transition_patch(locked).is_some() {
        return Err(EBUSY);
    }
    if crate::warn_on_once!(patch.enabled()) {
        return Err(EINVAL);
    }
    pr_notice!("enabling patch '{}'\n", patch.name());
    transition::init_transition(locked, patch, bindings::KLP_TRANSITION_PATCHED as c_int);
    // The handler must see `func->transition` set before it sees the new
    // functions on the stacks.
    fence(Release);
    let result = patch
        .objects()
        .filter(|obj| obj.is_loaded())
        .try_for_each(|obj| {
            obj.pre_patch_callback(locked).inspect_err(|_| {
                pr_warn!(
                    "pre-patch callback failed for object '{}'\n",
                    obj.display_name()
                )
            })?;
            redirect::patch_object(locked, obj)
                .inspect_err(|_| pr_warn!("failed to patch object '{}'\n", obj.display_name()))
        });
    if let Err(err) = result {
        pr_warn!("failed to enable patch '{}'\n", patch.name());
        transition::cancel_transition(locked);
        return Err(err);
    }
    transition::start_transition(locked);
    patch.set_enabled(locked, true);
    if let Some(patch) = transition::try_complete_transition(locked) {
        finish_transition(locked, patch);
    }
    Ok(())
}

/// Finishes a transition every task has switched for, in upstream's order
/// (`klp_complete_transition()` and what follows it): a cumulative patch's
/// predecessors come off the stacks and its nops go first, then the
/// transition ends, then what is no longer needed is freed.
pub(crate) fn finish_transition(locked: &Locked, patch: &Patch) {
    transition::complete(locked, patch, |target| {
        if patch.replace() && target == transition::PATCHED {
            unpatch_replaced_patches(locked, patch);
            discard_nops(locked, patch);
        }
    });
    if !patch.enabled() {
        free_patch_async(locked, patch);
    } else if patch.replace() {
        free_replaced_patches_async(locked, patch);
    }
}

/// `__klp_disable_patch()`: starts unpatching.
fn start_disable(locked: &Locked, patch: &Patch) -> Result {
    if crate::warn_on_once!(!patch.enabled()) {
        return Err(EINVAL);
    }
    if transition_patch(locked).is_some() {
        return Err(EBUSY);
    }
    transition::init_transition(locked, patch, bindings::KLP_TRANSITION_UNPATCHED as c_int);
    for obj in patch.objects().filter(|obj| obj.patched()) {
        obj.pre_unpatch_callback(locked);
    }
    // `func->transition` must be seen set before a task's pending flag is.
    fence(Release);
    transition::start_transition(locked);
    patch.set_enabled(locked, false);
    if let Some(patch) = transition::try_complete_transition(locked) {
        finish_transition(locked, patch);
    }
    Ok(())
}

/// What the sysfs files ask of the registry, which sits above them.
pub(crate) const SYSFS_OPS: sysfs::RegistryOps = sysfs::RegistryOps { set_enabled };

/// A write to `enabled`: reverses the patch's transition, or disables it.
/// A disabled patch cannot come back.
fn set_enabled(patch: &Patch, enable: bool) -> Result {
    let locked = lock();
    if patch.enabled() == enable {
        return Err(EINVAL);
    }
    if transition_patch(&locked) == Some(patch) {
        transition::reverse_transition(&locked);
        Ok(())
    } else if !enable {
        start_disable(&locked, patch)
    } else {
        Err(EINVAL)
    }
}

/// `klp_add_nops()`: for every function an installed patch changes and the
/// replace patch does not, a nop that returns to the original code.
fn add_nops(locked: &Locked, patch: &Patch) -> Result {
    for old_patch in patches(locked) {
        for old_obj in old_patch.objects() {
            let obj = match patch.objects().find(|obj| obj.same_object(old_obj)) {
                Some(obj) => obj,
                None => patch.add_dynamic_object(locked, old_obj)?,
            };
            for old_func in old_obj.funcs() {
                if !obj.funcs().any(|func| func.same_symbol(old_func)) {
                    obj.add_nop(locked, old_func)?;
                }
            }
        }
    }
    Ok(())
}

/// The part done without the lock, since sysfs callbacks take it: remove
/// the patch's directory and wait until no callback runs
/// (`klp_free_patch_finish()`). Returns whether the patch's module
/// reference goes too: a forced patch may still be in use on some stack, so
/// its module stays.
fn free_patch_finish(patch: Retiring<'_>) -> bool {
    !patch.put_kobject_and_wait()
}

/// The patch's `free_work`: [`free_patch_finish`] outside the lock.
struct FreePatchWork;

impl FreeWork for FreePatchWork {
    fn run(patch: Retiring<'_>) -> bool {
        free_patch_finish(patch)
    }
}

/// Frees a patch whose transition ended, from a work item: the caller may
/// be one of the patch's own sysfs callbacks (`klp_free_patch_async()`).
/// Uninstalls it and drops its objects now (`klp_free_patch_start()`).
fn free_patch_async(locked: &Locked, patch: &Patch) {
    let Some(retiring) = patch.uninstall(locked) else {
        crate::warn_on_once!(true);
        return;
    };
    retiring.release_objects(locked);
    retiring.queue_free_work(locked);
}

/// Frees the patches a replace patch took over: those installed before it.
fn free_replaced_patches_async(locked: &Locked, new_patch: &Patch) {
    for old_patch in patches(locked).take_while(|&old| old != new_patch) {
        free_patch_async(locked, old_patch);
    }
}

/// Unpatches the patches a replace patch took over, now that every task
/// runs its code (`klp_unpatch_replaced_patches()`). Their functions may
/// still be on the ftrace handler's stacks only after `force`, and RCU keeps
/// that safe.
fn unpatch_replaced_patches(locked: &Locked, new_patch: &Patch) {
    for old_patch in patches(locked).take_while(|&old| old != new_patch) {
        old_patch.set_enabled(locked, false);
        redirect::unpatch_all(locked, old_patch);
    }
}

/// Drops the nops of the patch in transition once the patches they stood
/// in for are gone (`klp_discard_nops()`).
fn discard_nops(locked: &Locked, patch: &Patch) {
    redirect::unpatch_dynamic(locked, patch);
    // SAFETY: the nops are off their stacks now, and each was the last one
    // on its stack (the patches it stood in for are gone), so taking it off
    // retired the stack, after ftrace stopped calling the handler there and
    // a grace period let running handlers finish (`func_stack::pop_all`); the
    // core's own uses of nops and dynamic objects iterate the patch's lists
    // anew, and keep no reference across this call.
    unsafe { patch.release_objects(locked, true) };
}

/// Takes what patches do to `module` off them, for patches installed before
/// `limit` (all with `None`), as `klp_cleanup_module_patches_limited()`.
fn cleanup_module_patches(locked: &Locked, module: ModRef, limit: Option<&Patch>) {
    let in_transition = transition_patch(locked);
    for patch in patches(locked).take_while(|&patch| Some(patch) != limit) {
        let Some(obj) = patch
            .objects()
            .find(|obj| obj.name() == Some(module.name()))
        else {
            continue;
        };
        if in_transition != Some(patch) {
            obj.pre_unpatch_callback(locked);
        }
        pr_notice!(
            "reverting patch '{}' on unloading module '{}'\n",
            patch.name(),
            module.name()
        );
        redirect::unpatch_object(locked, obj);
        obj.post_unpatch_callback(locked);
        reloc::clear_object_relocs(patch, obj);
        obj.set_module(locked, None);
        for func in obj.funcs() {
            func.forget_old(locked);
        }
    }
}

/// `klp_module_coming()`: applies the installed patches to a module being
/// loaded; an error refuses the load.
pub(crate) fn module_coming(module: ModRef) -> Result {
    if crate::warn_on_once!(module.state() != ModuleState::Coming) {
        return Err(EINVAL);
    }
    if module.name() == c"vmlinux" {
        pr_err!("vmlinux.ko: invalid module name\n");
        return Err(EINVAL);
    }
    let locked = lock();
    // Every module is marked, since any later patch may be for it.
    module.set_klp_alive(&transition::WRITER, true);
    for patch in patches(&locked) {
        let Some(obj) = patch
            .objects()
            .find(|obj| obj.name() == Some(module.name()))
        else {
            continue;
        };
        obj.set_module(&locked, Some(module));
        if let Err(err) = apply_to_coming(&locked, patch, obj) {
            pr_warn!(
                "patch '{}' failed for module '{}', refusing to load module '{}'\n",
                patch.name(),
                module.name(),
                module.name()
            );
            module.set_klp_alive(&transition::WRITER, false);
            obj.set_module(&locked, None);
            cleanup_module_patches(&locked, module, Some(patch));
            return Err(err);
        }
    }
    Ok(())
}

/// Applies `patch` to its object `obj`, whose module is coming. On an
/// error, the relocations written for it are cleared again (upstream leaves
/// them, and the next load of the module then fails on them).
fn apply_to_coming(locked: &Locked, patch: &Patch, obj: &Object) -> Result {
    init_object_loaded(locked, patch, obj).inspect_err(|err| {
        pr_warn!(
            "failed to initialize patch '{}' for module '{}' ({})\n",
            patch.name(),
            obj.display_name(),
            err.to_errno()
        )
    })?;
    patch_coming(locked, patch, obj).inspect_err(|_| reloc::clear_object_relocs(patch, obj))
}

/// The callbacks and the patching of [`apply_to_coming`].
fn patch_coming(locked: &Locked, patch: &Patch, obj: &Object) -> Result {
    let module_name = obj.display_name();
    pr_notice!(
        "applying patch '{}' to loading module '{}'\n",
        patch.name(),
        module_name
    );
    obj.pre_patch_callback(locked)
        .inspect_err(|_| pr_warn!("pre-patch callback failed for object '{}'\n", module_name))?;
    let patched = redirect::patch_object(locked, obj);
    if let Err(err) = patched {
        pr_warn!(
            "failed to apply patch '{}' to module '{}' ({})\n",
            patch.name(),
            module_name,
            err.to_errno()
        );
        obj.post_unpatch_callback(locked);
        return Err(err);
    }
    if transition_patch(locked) != Some(patch) {
        obj.post_patch_callback(locked);
    }
    Ok(())
}

/// `klp_module_going()`: takes the patches off a module being unloaded (or
/// whose load failed after `klp_module_coming()`).
pub(crate) fn module_going(module: ModRef) {
    let state = module.state();
    if crate::warn_on_once!(state != ModuleState::Going && state != ModuleState::Coming) {
        return;
    }
    let locked = lock();
    module.set_klp_alive(&transition::WRITER, false);
    cleanup_module_patches(&locked, module, None);
}
