// SPDX-License-Identifier: GPL-2.0

//! The C interface: every function `include/linux/livepatch.h`,
//! `livepatch_sched.h` and the module loader call. Each turns C's raw
//! arguments into the typed references the logic takes (arguing, once,
//! why C's contract makes them valid) and maps the result back to C's
//! conventions; what the call means is decided by the layer it forwards
//! to. This is the top of the crate: nothing below imports it.

use kernel::bindings::{self, Elf64_Shdr};
use kernel::error::from_result;
use kernel::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::task::Task;

use crate::lock::{ready, Locked};
use crate::modules::{self, ModRef};
use crate::registry;
use crate::reloc;
use crate::shadow;
use crate::shim::{ShadowCtor, ShadowDtor};
use crate::state;
use crate::structs::{NewPatch, Patch, State};
use crate::transition;

/// `klp_enable_patch()`: sets up and enables the patch a livepatch module
/// hands in from its init; on any error, nothing is left behind.
///
/// # Safety
///
/// Called by a livepatch module's init with its own static patch, once, as
/// `livepatch.h` documents.
#[export]
pub(crate) unsafe extern "C" fn klp_enable_patch(patch: *mut bindings::klp_patch) -> c_int {
    // SAFETY: (our contract) the module's own patch, handed in once from its
    // init; the module, and so the patch, lives at least as long as the call.
    let Some(new) = (unsafe { NewPatch::from_raw(patch) }) else {
        return EINVAL.to_errno();
    };
    from_result(|| registry::enable_patch(new).map(|()| 0))
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
    from_result(|| registry::module_coming(module).map(|()| 0))
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
    if let Some(module) = unsafe { ModRef::from_raw(module) } {
        registry::module_going(module);
    }
}

/// The switch point on the way back to user space, in the idle loop, and
/// for every task under `force`.
///
/// # Safety
///
/// `task` is NULL or alive for the call.
#[export]
pub(crate) unsafe extern "C" fn klp_update_patch_state(task: *mut bindings::task_struct) {
    if task.is_null() {
        return;
    }
    // SAFETY: alive (our contract).
    transition::update_patch_state(unsafe { Task::from_raw(task) });
}

/// Gives the child of a fork its parent's state, pending flag included.
///
/// # Safety
///
/// `child` is NULL or the task `current` is creating, under `tasklist_lock`
/// held for writing.
#[export]
pub(crate) unsafe extern "C" fn klp_copy_process(child: *mut bindings::task_struct) {
    if child.is_null() {
        return;
    }
    // SAFETY: alive (our contract).
    transition::copy_process(unsafe { Task::from_raw(child) });
}

/// Stops counting `task` among the pending tasks: it leaves the task list.
///
/// # Safety
///
/// `task` is NULL, or a task being released or whose fork failed after
/// [`klp_copy_process`], under `tasklist_lock` held for writing.
#[export]
pub(crate) unsafe extern "C" fn klp_release_task(task: *mut bindings::task_struct) {
    if task.is_null() {
        return;
    }
    // SAFETY: alive (our contract).
    transition::release_task(unsafe { Task::from_raw(task) });
}

/// The scheduler's switch point for tasks sleeping in `schedule()`.
///
/// # Safety
///
/// Called by `__schedule()` with preemption disabled.
#[export]
pub(crate) unsafe extern "C" fn __klp_sched_try_switch() {
    transition::sched_switch_point();
}

/// The state with `id` of `patch`, or NULL.
///
/// # Safety
///
/// `patch` is a livepatch module's patch, enabled (its callbacks call this)
/// and so set up, whose `states` array is ended by an entry with id 0.
#[export]
pub(crate) unsafe extern "C" fn klp_get_state(
    patch: *mut bindings::klp_patch,
    id: c_ulong,
) -> *mut bindings::klp_state {
    // SAFETY: (our contract).
    let patch = unsafe { Patch::from_raw(patch) };
    patch
        .and_then(|patch| state::get_state(patch, id))
        .map_or(core::ptr::null_mut(), State::as_ptr)
}

/// The state with `id` that the patch in transition takes over, or NULL.
///
/// # Safety
///
/// Called from the (un)patch callbacks of the patch in transition, which
/// run under `klp_mutex`. Upstream's documentation says "typically"; a call
/// from anywhere else walks the patch list unlocked, racing with a
/// transition that frees patches, in C as here.
#[export]
pub(crate) unsafe extern "C" fn klp_get_prev_state(id: c_ulong) -> *mut bindings::klp_state {
    // Nothing is in transition before the core is ready.
    if !ready() {
        return core::ptr::null_mut();
    }
    // SAFETY: the caller holds `klp_mutex` (our contract).
    unsafe {
        Locked::with_held(|locked| {
            state::get_prev_state(locked, id).map_or(core::ptr::null_mut(), State::as_ptr)
        })
    }
}

/// The data of shadow variable `<obj, id>`, or NULL.
///
/// # Safety
///
/// None beyond the C API contract: `obj` is only compared, never read.
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    shadow::get(obj, id)
}

/// Allocates shadow variable `<obj, id>` with `size` zeroed bytes, runs
/// `ctor` on it, and returns its data; NULL (with a warning) if it exists.
///
/// # Safety
///
/// `ctor`, if any, is safe to call with `obj`, the new data and `ctor_data`.
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp_flags: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: (our contract).
    let ctor = unsafe { ShadowCtor::new(ctor, ctor_data) };
    shadow::get_or_alloc(obj, id, size, gfp_flags, ctor, true)
}

/// The data of `<obj, id>`, allocated as `klp_shadow_alloc()` does when it
/// does not exist yet.
///
/// # Safety
///
/// As for [`klp_shadow_alloc`].
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp_flags: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
) -> *mut c_void {
    // SAFETY: (our contract).
    let ctor = unsafe { ShadowCtor::new(ctor, ctor_data) };
    shadow::get_or_alloc(obj, id, size, gfp_flags, ctor, false)
}

/// Frees shadow variable `<obj, id>`, calling `dtor` first.
///
/// # Safety
///
/// `dtor`, if any, is safe to call with `obj` and the variable's data.
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_free(
    obj: *mut c_void,
    id: c_ulong,
    dtor: bindings::klp_shadow_dtor_t,
) {
    // SAFETY: (our contract).
    shadow::free(Some(obj as usize), id, unsafe { ShadowDtor::new(dtor) });
}

/// Frees every shadow variable with `id`, calling `dtor` on each first.
///
/// # Safety
///
/// `dtor`, if any, is safe to call with each variable's object and data.
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_free_all(
    id: c_ulong,
    dtor: bindings::klp_shadow_dtor_t,
) {
    // SAFETY: (our contract).
    shadow::free(None, id, unsafe { ShadowDtor::new(dtor) });
}

/// `klp_apply_section_relocs()`: the module loader's entry, for the
/// vmlinux sections of a livepatch module it is loading.
///
/// # Safety
///
/// Called by the module loader with the ELF data of `pmod` it validated, in
/// its relocation pass; `objname` is NULL (vmlinux) or a module name.
#[export]
pub(crate) unsafe extern "C" fn klp_apply_section_relocs(
    pmod: *mut bindings::module,
    sechdrs: *mut Elf64_Shdr,
    shstrtab: *const c_char,
    strtab: *const c_char,
    symndx: c_uint,
    secndx: c_uint,
    objname: *const c_char,
) -> c_int {
    // SAFETY: the loader keeps the module alive during the call.
    let Some(module) = (unsafe { ModRef::from_raw(pmod) }) else {
        return EINVAL.to_errno();
    };
    let (secndx, symndx) = (secndx as usize, symndx as usize);
    // SAFETY: the loader calls us only for a section below `e_shnum`.
    let target = unsafe { (*sechdrs.add(secndx)).sh_info } as usize;
    // The loader does not pass `e_shnum`, but it vouches for these three
    // indices (it skips a section whose target is not below `e_shnum`), so
    // the table has at least this many headers.
    let known = secndx.max(symndx).max(target) + 1;
    // SAFETY: `sechdrs` holds at least `known` headers, as just argued,
    // which the loader does not change while it relocates.
    let sections = unsafe { core::slice::from_raw_parts(sechdrs, known) };
    // SAFETY: the loader is relocating the module: its section names, string
    // table and symbol table are those it checked, and every section it
    // loaded is at its `sh_addr` (the invariants while loading).
    let elf = unsafe { modules::Elf::new(module, sections, shstrtab, strtab, symndx, false) };
    // SAFETY: NULL or a NUL-terminated module name (caller's contract).
    let object = (!objname.is_null()).then(|| unsafe { CStr::from_char_ptr(objname) });
    from_result(|| reloc::write_section(&elf, secndx, object, true).map(|()| 0))
}

/// `klp_find_section_by_name()`: where a livepatch module's section was
/// loaded, and its size.
///
/// # Safety
///
/// `module` is a live livepatch module (its `klp_info` is set), `name` a
/// NUL-terminated string and `sec_size` valid for writes.
#[export]
pub(crate) unsafe extern "C" fn klp_find_section_by_name(
    module: *const bindings::module,
    name: *const c_char,
    sec_size: *mut usize,
) -> *mut c_void {
    // SAFETY: (caller's contract); only read.
    let module = unsafe { ModRef::from_raw(module.cast_mut()) };
    // SAFETY: (caller's contract).
    let name = unsafe { CStr::from_char_ptr(name) };
    let found = module
        .and_then(|module| module.klp_info())
        .and_then(|info| {
            info.sections()
                .iter()
                .skip(1)
                .find(|shdr| info.section_name(shdr) == name)
                .map(|shdr| (modules::section_address(shdr), shdr.sh_size as usize))
        });
    let (addr, size) = found.unwrap_or((core::ptr::null_mut(), 0));
    // SAFETY: (caller's contract).
    unsafe { *sec_size = size };
    addr
}
