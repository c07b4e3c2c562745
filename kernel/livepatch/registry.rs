// SPDX-License-Identifier: GPL-2.0

//! The registry: enabling a patch a livepatch module hands in
//! (`klp_enable_patch()`), disabling and freeing it, atomic replace, and
//! patching modules that come and go.
//!
//! `klp_mutex` serialises all of it (and the transition work). Patches,
//! objects and functions are the module's C structures, reached through
//! [`crate::cview`]; the core adds dynamic objects and `nop` functions for
//! atomic replace, which it allocates and frees itself.

use core::sync::atomic::{fence, Ordering::Release};

use kernel::bindings;
use kernel::error::from_result;
use kernel::ffi::c_int;
use kernel::loaded_module::ModuleState;
use kernel::prelude::*;
use kernel::str::{CStr, CString};

use crate::cview::{self, FuncRef, ObjRef, PatchRef};
use crate::kallsyms;
use crate::lock::{self, lock, patches, ready, Locked};
use crate::modules::{ModRef, MODULE_NAME_LEN};
use crate::patch;
use crate::reloc;
use crate::sysfs::{self, Kind};
use crate::transition::{self, transition_patch};

/// Checks what upstream's `klp_check_patch()` checks, and what upstream
/// only finds out halfway through, when sysfs refuses a duplicate name or a
/// function turns out to have no replacement: before anything is set up,
/// so that refusing needs no rollback.
///
/// # Safety
///
/// `patch` is NULL or a `klp_patch` of the module calling us, which lives
/// at least as long as this call.
unsafe fn check_patch(patch: *mut bindings::klp_patch) -> Result<PatchRef> {
    // SAFETY: (caller's contract); only read here.
    let has_parts =
        !patch.is_null() && unsafe { !(*patch).mod_.is_null() && !(*patch).objs.is_null() };
    if !has_parts {
        return Err(EINVAL);
    }
    // SAFETY: (caller's contract) the patch is valid and its module, which
    // is calling us, is live.
    let patch = unsafe { PatchRef::from_raw(patch) }.ok_or(EINVAL)?;
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
            if obj
                .static_funcs()
                .take(j)
                .any(|other| other.same_symbol(func))
            {
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
    Ok(patch)
}

/// `klp_enable_patch()`: sets up and enables the patch a livepatch module
/// hands in from its init; on any error, nothing is left behind.
///
/// # Safety
///
/// Called by a livepatch module's init with its own static patch, as
/// `livepatch.h` documents.
#[export]
pub(crate) unsafe extern "C" fn klp_enable_patch(patch: *mut bindings::klp_patch) -> c_int {
    from_result(|| {
        // SAFETY: forwarded from our caller.
        unsafe { enable_patch(patch) }?;
        Ok(0)
    })
}

/// # Safety
///
/// As [`klp_enable_patch`].
unsafe fn enable_patch(patch: *mut bindings::klp_patch) -> Result {
    // First: nothing can be registered before the core is set up.
    if !ready() {
        pr_err!("the livepatch core did not initialise: refusing the patch\n");
        return Err(ENODEV);
    }
    // SAFETY: forwarded from our caller.
    let patch = unsafe { check_patch(patch) }?;
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
    // SAFETY: `klp_enable_patch()` is called by the livepatch module's init,
    // which returns its result (the contract `livepatch.h` states).
    if !unsafe { module.try_get() } {
        return Err(ENODEV);
    }
    init_patch_early(patch);
    let result = init_patch(&locked, patch).and_then(|()| start_enable(&locked, patch));
    if result.is_err() {
        free_patch_start(&locked, patch);
        drop(locked);
        free_patch_finish(patch);
    }
    result
}

/// Initialises the kobjects and lists of the patch and of everything in
/// its static arrays (`klp_init_patch_early()`).
fn init_patch_early(patch: PatchRef) {
    // SAFETY: the patch is not installed: only we touch these.
    unsafe {
        cview::list_init(patch.list_node());
        cview::list_init(patch.obj_list());
        sysfs::init_kobject(patch.kobj(), Kind::Patch);
        init_free_work(patch);
        bindings::init_completion(patch.finish());
    }
    patch.reset_flags();
    for obj in patch.static_objects() {
        init_object_early(patch, obj);
        for func in obj.static_funcs() {
            init_func_early(obj, func);
        }
    }
}

/// `INIT_WORK(&patch->free_work, ...)`.
///
/// # Safety
///
/// The patch's work item is idle (not queued, not running).
unsafe fn init_free_work(patch: PatchRef) {
    let key = kernel::static_lock_class!();
    // SAFETY: an idle work item of a live patch; the key and the name are
    // static, as lockdep needs.
    unsafe {
        bindings::init_work_with_key(
            patch.free_work(),
            Some(free_patch_work),
            false,
            c"klp_free_patch_work".as_char_ptr(),
            key.as_ptr(),
        )
    };
}

fn init_object_early(patch: PatchRef, obj: ObjRef) {
    // SAFETY: the object belongs to a patch being set up, not yet visible.
    unsafe {
        cview::list_init(obj.func_list());
        sysfs::init_kobject(obj.kobj(), Kind::Object);
        cview::list_add_tail(obj.node(), patch.obj_list());
    }
}

fn init_func_early(obj: ObjRef, func: FuncRef) {
    // SAFETY: as in `init_object_early`.
    unsafe {
        sysfs::init_kobject(func.kobj(), Kind::Func);
        cview::list_add_tail(func.node(), obj.func_list());
    }
}

/// Adds the sysfs tree, the nops of a replace patch, resolves every loaded
/// object, and installs the patch (`klp_init_patch()`).
fn init_patch(locked: &Locked, patch: PatchRef) -> Result {
    // SAFETY: set up by `init_patch_early`, not added yet.
    unsafe { sysfs::add_patch(patch.kobj(), patch.name()) }?;
    if patch.replace() {
        add_nops(locked, patch)?;
    }
    for obj in patch.objects() {
        init_object(patch, obj)?;
    }
    // SAFETY: the patch is ours to link; we hold `klp_mutex`.
    unsafe { cview::list_add_tail(patch.list_node(), lock::patch_list(locked)) };
    Ok(())
}

fn init_object(patch: PatchRef, obj: ObjRef) -> Result {
    obj.reset();
    if let Some(name) = obj.name() {
        obj.set_module(ModRef::find_loaded(name));
    }
    // SAFETY: the patch's kobject was added; the object's was only set up.
    unsafe { sysfs::add_object(obj.kobj(), patch.kobj(), obj.display_name()) }?;
    for func in obj.funcs() {
        func.reset();
        // SAFETY: as above, one level down. `old_name` was checked (or
        // copied, for a nop).
        unsafe {
            sysfs::add_func(
                func.kobj(),
                obj.kobj(),
                func.old_name(),
                func.shown_sympos(),
            )
        }?;
    }
    if obj.is_loaded() {
        init_object_loaded(patch, obj)?;
    }
    Ok(())
}

/// What can only be done once the object is loaded: the module-specific
/// relocations, and the addresses and sizes of the old and new code. On an
/// error nothing stays written (upstream leaves a module's relocations in
/// place, and the module's next load then fails on them).
fn init_object_loaded(patch: PatchRef, obj: ObjRef) -> Result {
    if !obj.is_module() {
        // vmlinux relocations were written when the livepatch module loaded.
        return resolve_funcs(obj);
    }
    reloc::apply_object_relocs(patch, obj)?;
    resolve_funcs(obj).inspect_err(|_| reloc::clear_object_relocs(patch, obj))
}

/// Finds the old code of every function of the loaded `obj`, and the sizes
/// of it and of its replacement.
fn resolve_funcs(obj: ObjRef) -> Result {
    for func in obj.funcs() {
        let old_func = kallsyms::find_symbol(obj.name(), func.old_name(), func.old_sympos())?;
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
        func.set_addresses(old_func, old_size, new_func, new_size);
    }
    Ok(())
}

/// `__klp_enable_patch()`: patches every loaded object and starts the
/// transition.
fn start_enable(locked: &Locked, patch: PatchRef) -> Result {
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
            obj.pre_patch_callback().inspect_err(|_| {
                pr_warn!(
                    "pre-patch callback failed for object '{}'\n",
                    obj.display_name()
                )
            })?;
            patch::patch_object(locked, obj)
                .inspect_err(|_| pr_warn!("failed to patch object '{}'\n", obj.display_name()))
        });
    if let Err(err) = result {
        pr_warn!("failed to enable patch '{}'\n", patch.name());
        transition::cancel_transition(locked);
        return Err(err);
    }
    transition::start_transition(locked);
    patch.set_enabled(true);
    if let Some(patch) = transition::try_complete_transition(locked) {
        finish_transition(locked, patch);
    }
    Ok(())
}

/// Finishes a transition every task has switched for, in upstream's order
/// (`klp_complete_transition()` and what follows it): a cumulative patch's
/// predecessors come off the stacks and its nops go first, then the
/// transition ends, then what is no longer needed is freed.
pub(crate) fn finish_transition(locked: &Locked, patch: PatchRef) {
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
fn start_disable(locked: &Locked, patch: PatchRef) -> Result {
    if crate::warn_on_once!(!patch.enabled()) {
        return Err(EINVAL);
    }
    if transition_patch(locked).is_some() {
        return Err(EBUSY);
    }
    transition::init_transition(locked, patch, bindings::KLP_TRANSITION_UNPATCHED as c_int);
    for obj in patch.objects().filter(|obj| obj.patched()) {
        obj.pre_unpatch_callback();
    }
    // `func->transition` must be seen set before a task's pending flag is.
    fence(Release);
    transition::start_transition(locked);
    patch.set_enabled(false);
    if let Some(patch) = transition::try_complete_transition(locked) {
        finish_transition(locked, patch);
    }
    Ok(())
}

/// What the sysfs files ask of the registry, which sits above them.
pub(crate) const SYSFS_OPS: sysfs::RegistryOps = sysfs::RegistryOps {
    set_enabled,
    object_released,
    func_released,
};

/// A write to `enabled`: reverses the patch's transition, or disables it.
/// A disabled patch cannot come back.
fn set_enabled(patch: PatchRef, enable: bool) -> Result {
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

/// An object the core made for atomic replace: the C structure, with the
/// name it points to.
#[repr(C)]
struct DynObject {
    obj: bindings::klp_object,
    name: Option<CString>,
}

/// A `nop` function the core made for atomic replace, with its name.
#[repr(C)]
struct NopFunc {
    func: bindings::klp_func,
    old_name: CString,
}

/// `klp_alloc_object_dynamic()`: a new object of `patch` named like `like`.
fn alloc_object_dynamic(patch: PatchRef, like: ObjRef) -> Result<ObjRef> {
    let name = like.name().map(CString::try_from).transpose()?;
    let dynamic = KBox::new(
        DynObject {
            // SAFETY: all-zero is a valid `klp_object` (NULL pointers,
            // false flags), as C's `kzalloc` gives it.
            obj: unsafe { core::mem::zeroed() },
            name,
        },
        GFP_KERNEL,
    )?;
    let dynamic = KBox::into_raw(dynamic);
    // SAFETY: just allocated; `obj` is the first member of a `repr(C)`
    // struct. The name lives in the same allocation's `CString`.
    let obj = unsafe {
        (*dynamic).obj.name = (*dynamic)
            .name
            .as_deref()
            .map_or(core::ptr::null(), CStr::as_char_ptr);
        ObjRef::from_raw(dynamic.cast())
    };
    obj.set_dynamic();
    init_object_early(patch, obj);
    Ok(obj)
}

/// `klp_alloc_func_nop()`: a nop of `obj` for the function `like`.
fn alloc_func_nop(obj: ObjRef, like: FuncRef) -> Result<FuncRef> {
    let nop = KBox::new(
        NopFunc {
            // SAFETY: all-zero is a valid `klp_func`.
            func: unsafe { core::mem::zeroed() },
            old_name: CString::try_from(like.old_name())?,
        },
        GFP_KERNEL,
    )?;
    let nop = KBox::into_raw(nop);
    // SAFETY: just allocated, as in `alloc_object_dynamic`. The replacement
    // address is the old code's, set once the object is loaded.
    let func = unsafe {
        (*nop).func.old_name = (*nop).old_name.as_char_ptr();
        (*nop).func.old_sympos = like.old_sympos() as kernel::ffi::c_ulong;
        (*nop).func.nop = true;
        FuncRef::from_raw(nop.cast())
    };
    init_func_early(obj, func);
    Ok(func)
}

/// `klp_add_nops()`: for every function an installed patch changes and the
/// replace patch does not, a nop that returns to the original code.
fn add_nops(locked: &Locked, patch: PatchRef) -> Result {
    for old_patch in patches(locked) {
        for old_obj in old_patch.objects() {
            let obj = match patch.objects().find(|obj| obj.same_object(old_obj)) {
                Some(obj) => obj,
                None => alloc_object_dynamic(patch, old_obj)?,
            };
            for old_func in old_obj.funcs() {
                if !obj.funcs().any(|func| func.same_symbol(old_func)) {
                    alloc_func_nop(obj, old_func)?;
                }
            }
        }
    }
    Ok(())
}

/// Release of an object's kobject: frees a dynamic object.
///
/// # Safety
///
/// The last reference to the object's kobject was dropped.
unsafe fn object_released(obj: ObjRef) {
    if obj.dynamic() {
        // SAFETY: dynamic objects are made only by `alloc_object_dynamic`,
        // from a `KBox<DynObject>`; nothing uses it any more.
        drop(unsafe { KBox::from_raw(obj.as_ptr().cast::<DynObject>()) });
    }
}

/// Release of a function's kobject: frees a nop.
///
/// # Safety
///
/// The last reference to the function's kobject was dropped.
unsafe fn func_released(func: FuncRef) {
    if func.nop() {
        // SAFETY: nops are made only by `alloc_func_nop`, from a
        // `KBox<NopFunc>`; nothing uses it any more.
        drop(unsafe { KBox::from_raw(func.as_ptr().cast::<NopFunc>()) });
    }
}

/// Unlinks and puts the patch's objects and functions; with `nops_only`,
/// only the nops and dynamic objects (`__klp_free_objects()`).
fn free_objects(patch: PatchRef, nops_only: bool) {
    for obj in patch.objects() {
        for func in obj.funcs() {
            if nops_only && !func.nop() {
                continue;
            }
            // SAFETY: we hold `klp_mutex` (all callers do); the iterator
            // already stepped past the function it unlinks; the function's
            // kobject reference is the core's.
            unsafe {
                cview::list_del_init(func.node());
                sysfs::put(func.kobj());
            }
        }
        if nops_only && !obj.dynamic() {
            continue;
        }
        // SAFETY: as above.
        unsafe {
            cview::list_del_init(obj.node());
            sysfs::put(obj.kobj());
        }
    }
}

/// The part of freeing a patch done under the lock: uninstall it and drop
/// its objects (`klp_free_patch_start()`).
fn free_patch_start(_locked: &Locked, patch: PatchRef) {
    // SAFETY: we hold `klp_mutex`; the patch's link was initialised.
    unsafe {
        if !cview::list_is_empty(patch.list_node()) {
            cview::list_del_init(patch.list_node());
        }
    }
    free_objects(patch, false);
}

/// The part done without the lock, since sysfs callbacks take it: remove
/// the patch's directory, wait until no callback runs, and let its module
/// go (`klp_free_patch_finish()`). Last to touch the patch.
fn free_patch_finish(patch: PatchRef) {
    let forced = patch.forced();
    let module = patch.module();
    // SAFETY: the core's reference, set up in `init_patch_early`; the
    // completion is signalled by the release callback.
    unsafe {
        sysfs::put(patch.kobj());
        bindings::wait_for_completion(patch.finish());
    }
    // A forced patch may still be in use on some stack: keep its module.
    if !forced {
        // SAFETY: the reference `enable_patch` took for the patch, given up
        // here, its last use.
        unsafe { module.put() };
    }
}

/// The patch's `free_work`: [`free_patch_finish`] outside the lock.
///
/// # Safety
///
/// `work` is the `free_work` of a patch queued by [`free_patch_async`].
unsafe extern "C" fn free_patch_work(work: *mut bindings::work_struct) {
    // SAFETY: only the `free_work` of patches runs this; the patch stays
    // until `free_patch_finish` is done with it.
    free_patch_finish(unsafe { PatchRef::from_free_work(work) });
}

/// Frees a patch whose transition ended, from a work item: the caller may
/// be one of the patch's own sysfs callbacks (`klp_free_patch_async()`).
fn free_patch_async(locked: &Locked, patch: PatchRef) {
    free_patch_start(locked, patch);
    // SAFETY: `schedule_work()`: the work item was initialised with the
    // patch and is idle until now.
    unsafe {
        bindings::queue_work_on(
            bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
            bindings::system_percpu_wq,
            patch.free_work(),
        )
    };
}

/// Frees the patches a replace patch took over: those installed before it.
fn free_replaced_patches_async(locked: &Locked, new_patch: PatchRef) {
    for old_patch in patches(locked).take_while(|&old| old != new_patch) {
        free_patch_async(locked, old_patch);
    }
}

/// Unpatches the patches a replace patch took over, now that every task
/// runs its code (`klp_unpatch_replaced_patches()`). Their functions may
/// still be on the ftrace handler's stacks only after `force`, and RCU keeps
/// that safe.
fn unpatch_replaced_patches(locked: &Locked, new_patch: PatchRef) {
    for old_patch in patches(locked).take_while(|&old| old != new_patch) {
        old_patch.set_enabled(false);
        patch::unpatch_all(locked, old_patch);
    }
}

/// Drops the nops of the patch in transition once the patches they stood
/// in for are gone (`klp_discard_nops()`).
fn discard_nops(locked: &Locked, patch: PatchRef) {
    patch::unpatch_dynamic(locked, patch);
    free_objects(patch, true);
}

/// Takes what patches do to `module` off them, for patches installed before
/// `limit` (all with `None`), as `klp_cleanup_module_patches_limited()`.
fn cleanup_module_patches(locked: &Locked, module: ModRef, limit: Option<PatchRef>) {
    let in_transition = transition_patch(locked);
    for patch in patches(locked).take_while(|&patch| Some(patch) != limit) {
        let Some(obj) = patch
            .objects()
            .find(|obj| obj.name() == Some(module.name()))
        else {
            continue;
        };
        if in_transition != Some(patch) {
            obj.pre_unpatch_callback();
        }
        pr_notice!(
            "reverting patch '{}' on unloading module '{}'\n",
            patch.name(),
            module.name()
        );
        patch::unpatch_object(locked, obj);
        obj.post_unpatch_callback();
        reloc::clear_object_relocs(patch, obj);
        obj.set_module(None);
        for func in obj.funcs() {
            func.forget_old();
        }
    }
}

/// `klp_module_coming()`: applies the installed patches to a module being
/// loaded; an error refuses the load.
///
/// # Safety
///
/// Called by the module loader with the module in `MODULE_STATE_COMING`.
#[export]
pub(crate) unsafe extern "C" fn klp_module_coming(module: *mut bindings::module) -> c_int {
    // SAFETY: the loader keeps the module alive during the call.
    let Some(module) = (unsafe { ModRef::from_raw(module) }) else {
        return EINVAL.to_errno();
    };
    from_result(|| module_coming(module).map(|()| 0))
}

fn module_coming(module: ModRef) -> Result {
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
        obj.set_module(Some(module));
        if let Err(err) = apply_to_coming(&locked, patch, obj) {
            pr_warn!(
                "patch '{}' failed for module '{}', refusing to load module '{}'\n",
                patch.name(),
                module.name(),
                module.name()
            );
            module.set_klp_alive(&transition::WRITER, false);
            obj.set_module(None);
            cleanup_module_patches(&locked, module, Some(patch));
            return Err(err);
        }
    }
    Ok(())
}

/// Applies `patch` to its object `obj`, whose module is coming. On an
/// error, the relocations written for it are cleared again (upstream leaves
/// them, and the next load of the module then fails on them).
fn apply_to_coming(locked: &Locked, patch: PatchRef, obj: ObjRef) -> Result {
    init_object_loaded(patch, obj).inspect_err(|err| {
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
fn patch_coming(locked: &Locked, patch: PatchRef, obj: ObjRef) -> Result {
    let module_name = obj.display_name();
    pr_notice!(
        "applying patch '{}' to loading module '{}'\n",
        patch.name(),
        module_name
    );
    obj.pre_patch_callback()
        .inspect_err(|_| pr_warn!("pre-patch callback failed for object '{}'\n", module_name))?;
    let patched = patch::patch_object(locked, obj);
    if let Err(err) = patched {
        pr_warn!(
            "failed to apply patch '{}' to module '{}' ({})\n",
            patch.name(),
            module_name,
            err.to_errno()
        );
        obj.post_unpatch_callback();
        return Err(err);
    }
    if transition_patch(locked) != Some(patch) {
        obj.post_patch_callback();
    }
    Ok(())
}

/// `klp_module_going()`: takes the patches off a module being unloaded (or
/// whose load failed after `klp_module_coming()`).
///
/// # Safety
///
/// Called by the module loader with the module going or coming.
#[export]
pub(crate) unsafe extern "C" fn klp_module_going(module: *mut bindings::module) {
    // SAFETY: the loader keeps the module alive during the call.
    let Some(module) = (unsafe { ModRef::from_raw(module) }) else {
        return;
    };
    let state = module.state();
    if crate::warn_on_once!(state != ModuleState::Going && state != ModuleState::Coming) {
        return;
    }
    let locked = lock();
    module.set_klp_alive(&transition::WRITER, false);
    cleanup_module_patches(&locked, module, None);
}
