// SPDX-License-Identifier: GPL-2.0

//! The sysfs interface, as upstream 7.3 has it, plus `signal`:
//!
//! ```text
//! /sys/kernel/livepatch/<patch>/{enabled,transition,force,replace,stack_order,signal}
//! /sys/kernel/livepatch/<patch>/<object>/patched
//! /sys/kernel/livepatch/<patch>/<object>/<function,sympos>/
//! ```
//!
//! The kobjects are the ones embedded in the module's `klp_patch`,
//! `klp_object` and `klp_func`; their types, attributes and callbacks are
//! statics here. The callbacks parse and format; `force`, `signal` and
//! `stack_order` act through the lock and the transition, `enabled` and the
//! releases through the [`RegistryOps`] the crate root hands to [`init`] (the
//! registry sits above this layer). Every `unsafe` about kobjects and sysfs
//! is here.

use core::cell::UnsafeCell;
use core::ptr::{addr_of_mut, null, null_mut};
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use kernel::bindings;
use kernel::ffi::{c_char, c_int};
use kernel::prelude::*;
use kernel::str::{CStr, CStrExt};
use kernel::sync::SetOnce;

use crate::cview::{FuncRef, KobjPtr, ObjRef, PatchRef};
use crate::lock::{lock, patches};
use crate::transition::{self, transition_patch};

/// What the files need from the registry.
pub(crate) struct RegistryOps {
    /// A write to `enabled`.
    pub(crate) set_enabled: fn(PatchRef, bool) -> Result,
    /// The last put of an object's kobject; called with that object.
    pub(crate) object_released: unsafe fn(ObjRef),
    /// The last put of a function's kobject; called with that function.
    pub(crate) func_released: unsafe fn(FuncRef),
}

/// Set by [`init`], before any kobject exists.
static REGISTRY: SetOnce<RegistryOps> = SetOnce::new();

/// A C structure that lives in a static and that C may write to (the
/// attributes' lockdep keys), hence kept out of read-only memory.
#[repr(transparent)]
struct CStatic<T>(UnsafeCell<T>);

// SAFETY: the contents are written only by C's sysfs and lockdep code,
// which synchronise themselves; Rust only takes their addresses.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    const fn new(value: T) -> Self {
        CStatic(UnsafeCell::new(value))
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

type Show = unsafe extern "C" fn(KobjPtr, *mut bindings::kobj_attribute, *mut c_char) -> isize;
type Store =
    unsafe extern "C" fn(KobjPtr, *mut bindings::kobj_attribute, *const c_char, usize) -> isize;

/// `__ATTR(name, mode, show, store)`.
const fn attr(
    name: &'static CStr,
    mode: u16,
    show: Option<Show>,
    store: Option<Store>,
) -> bindings::kobj_attribute {
    // SAFETY: all-zero is a valid `kobj_attribute` (NULL pointers, no
    // callbacks, a zeroed lockdep key, as C's static initialisers leave it).
    let mut attr: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
    attr.attr.name = kernel::str::as_char_ptr_in_const_context(name);
    attr.attr.mode = mode;
    attr.__bindgen_anon_1.show = show;
    attr.__bindgen_anon_2.store = store;
    attr
}

static ENABLED: CStatic<bindings::kobj_attribute> = CStatic::new(attr(
    c"enabled",
    0o644,
    Some(enabled_show),
    Some(enabled_store),
));
static TRANSITION: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"transition", 0o444, Some(transition_show), None));
static FORCE: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"force", 0o200, None, Some(force_store)));
static REPLACE: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"replace", 0o444, Some(replace_show), None));
static STACK_ORDER: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"stack_order", 0o444, Some(stack_order_show), None));
static SIGNAL: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"signal", 0o200, None, Some(signal_store)));
static PATCHED: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"patched", 0o444, Some(patched_show), None));

/// The `attribute` inside a static `kobj_attribute`.
const fn attribute(attr: &'static CStatic<bindings::kobj_attribute>) -> *mut bindings::attribute {
    // SAFETY: only the address of the first member is computed.
    unsafe { addr_of_mut!((*attr.get()).attr) }
}

static PATCH_ATTRS: CStatic<[*mut bindings::attribute; 7]> = CStatic::new([
    attribute(&ENABLED),
    attribute(&TRANSITION),
    attribute(&FORCE),
    attribute(&REPLACE),
    attribute(&STACK_ORDER),
    attribute(&SIGNAL),
    null_mut(),
]);
static OBJECT_ATTRS: CStatic<[*mut bindings::attribute; 2]> =
    CStatic::new([attribute(&PATCHED), null_mut()]);

/// `ATTRIBUTE_GROUPS()`: one unnamed group of `attrs`.
const fn group(attrs: *mut bindings::attribute) -> bindings::attribute_group {
    // SAFETY: all-zero is a valid group: no name, no visibility callbacks.
    let mut group: bindings::attribute_group = unsafe { core::mem::zeroed() };
    group.__bindgen_anon_2.attrs = attrs.cast();
    group
}

static PATCH_GROUP: CStatic<bindings::attribute_group> =
    CStatic::new(group(PATCH_ATTRS.get().cast()));
static OBJECT_GROUP: CStatic<bindings::attribute_group> =
    CStatic::new(group(OBJECT_ATTRS.get().cast()));
static PATCH_GROUPS: CStatic<[*const bindings::attribute_group; 2]> =
    CStatic::new([PATCH_GROUP.get().cast_const(), null()]);
static OBJECT_GROUPS: CStatic<[*const bindings::attribute_group; 2]> =
    CStatic::new([OBJECT_GROUP.get().cast_const(), null()]);

const fn ktype(
    release: unsafe extern "C" fn(KobjPtr),
    groups: *mut *const bindings::attribute_group,
) -> bindings::kobj_type {
    // SAFETY: all-zero is a valid `kobj_type`: no callbacks, no groups.
    let mut ktype: bindings::kobj_type = unsafe { core::mem::zeroed() };
    ktype.release = Some(release);
    ktype.sysfs_ops = &raw const bindings::kobj_sysfs_ops;
    ktype.default_groups = groups;
    ktype
}

static PATCH_KTYPE: CStatic<bindings::kobj_type> =
    CStatic::new(ktype(release_patch, PATCH_GROUPS.get().cast()));
static OBJECT_KTYPE: CStatic<bindings::kobj_type> =
    CStatic::new(ktype(release_object, OBJECT_GROUPS.get().cast()));
static FUNC_KTYPE: CStatic<bindings::kobj_type> = CStatic::new(ktype(release_func, null_mut()));

/// `/sys/kernel/livepatch`, made once at boot.
static ROOT: AtomicPtr<bindings::kobject> = AtomicPtr::new(null_mut());

/// Creates `/sys/kernel/livepatch`; until this worked, no patch is enabled.
pub(crate) fn init(registry: RegistryOps) -> Result {
    REGISTRY.populate(registry);
    // SAFETY: `kernel_kobj` is set up long before initcalls run; the name is
    // NUL-terminated.
    let root = unsafe {
        bindings::kobject_create_and_add(c"livepatch".as_char_ptr(), bindings::kernel_kobj)
    };
    if root.is_null() {
        return Err(ENOMEM);
    }
    ROOT.store(root, Relaxed);
    Ok(())
}

/// Which kind of kobject to set up.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Patch,
    Object,
    Func,
}

/// `kobject_init()` with the type of `kind`.
///
/// # Safety
///
/// `kobj` is the kobject of a patch, object or function (as `kind` says)
/// satisfying the invariants of [`crate::cview`], and not initialised yet
/// (or released).
pub(crate) unsafe fn init_kobject(kobj: KobjPtr, kind: Kind) {
    let ktype = match kind {
        Kind::Patch => &PATCH_KTYPE,
        Kind::Object => &OBJECT_KTYPE,
        Kind::Func => &FUNC_KTYPE,
    };
    // SAFETY: (caller's contract) a fresh kobject; the type is static.
    unsafe { bindings::kobject_init(kobj, ktype.get()) };
}

/// `kobject_add()` of a patch, under `/sys/kernel/livepatch`.
///
/// # Safety
///
/// `kobj` was set up with [`init_kobject`] and not yet added.
pub(crate) unsafe fn add_patch(kobj: KobjPtr, name: &CStr) -> Result {
    // SAFETY: (caller's contract); `ROOT` is set, since patches are only
    // added once `lock::ready()`, which the initcall sets (Release)
    // after this file's `init` succeeded; "%s" takes the NUL-terminated name.
    kernel::error::to_result(unsafe {
        bindings::kobject_add(
            kobj,
            ROOT.load(Relaxed),
            c"%s".as_char_ptr(),
            name.as_char_ptr(),
        )
    })
}

/// `kobject_add()` of an object under its patch.
///
/// # Safety
///
/// As [`add_patch`]; `parent` is the added kobject of the object's patch.
pub(crate) unsafe fn add_object(kobj: KobjPtr, parent: KobjPtr, name: &CStr) -> Result {
    // SAFETY: (caller's contract); "%s" takes the NUL-terminated name.
    kernel::error::to_result(unsafe {
        bindings::kobject_add(kobj, parent, c"%s".as_char_ptr(), name.as_char_ptr())
    })
}

/// `kobject_add()` of a function under its object, named
/// `<function,sympos>`.
///
/// # Safety
///
/// As [`add_patch`]; `parent` is the added kobject of the function's object.
pub(crate) unsafe fn add_func(kobj: KobjPtr, parent: KobjPtr, name: &CStr, sympos: u64) -> Result {
    // SAFETY: (caller's contract); "%s,%lu" takes the NUL-terminated name
    // and an unsigned long.
    kernel::error::to_result(unsafe {
        bindings::kobject_add(
            kobj,
            parent,
            c"%s,%lu".as_char_ptr(),
            name.as_char_ptr(),
            sympos as kernel::ffi::c_ulong,
        )
    })
}

/// `kobject_put()`: drops the reference `kobject_init()` took; on the last
/// one the release callback below runs.
///
/// # Safety
///
/// `kobj` was set up with [`init_kobject`] and the caller owns that
/// reference.
pub(crate) unsafe fn put(kobj: KobjPtr) {
    // SAFETY: (caller's contract).
    unsafe { bindings::kobject_put(kobj) };
}

/// # Safety
///
/// Called by the kobject core with a patch's kobject, on its last put.
unsafe extern "C" fn release_patch(kobj: KobjPtr) {
    // SAFETY: `PATCH_KTYPE` is only given to patches' kobjects.
    let patch = unsafe { PatchRef::from_kobj(kobj) };
    // The last sysfs user is gone: let `klp_free_patch_finish()` go on.
    // SAFETY: the completion was initialised with the patch.
    unsafe { bindings::complete(patch.finish()) };
}

/// # Safety
///
/// Called by the kobject core with an object's kobject, on its last put.
unsafe extern "C" fn release_object(kobj: KobjPtr) {
    // Kobjects exist only after `init`; otherwise this leaks.
    let Some(registry) = REGISTRY.as_ref() else {
        crate::warn_on_once!(true);
        return;
    };
    // SAFETY: `OBJECT_KTYPE` is only given to objects' kobjects; this is the
    // last reference, so no one else uses the object.
    unsafe { (registry.object_released)(ObjRef::from_kobj(kobj)) };
}

/// # Safety
///
/// Called by the kobject core with a function's kobject, on its last put.
unsafe extern "C" fn release_func(kobj: KobjPtr) {
    // Kobjects exist only after `init`; otherwise this leaks.
    let Some(registry) = REGISTRY.as_ref() else {
        crate::warn_on_once!(true);
        return;
    };
    // SAFETY: `FUNC_KTYPE` is only given to functions' kobjects; this is the
    // last reference.
    unsafe { (registry.func_released)(FuncRef::from_kobj(kobj)) };
}

/// `sysfs_emit(buf, "%d\n", value)`.
///
/// # Safety
///
/// `buf` is the page-sized buffer sysfs handed a show callback.
unsafe fn emit(buf: *mut c_char, value: c_int) -> isize {
    // SAFETY: a show callback's buffer (caller's contract); "%d\n" takes an
    // int.
    unsafe { bindings::sysfs_emit(buf, c"%d\n".as_char_ptr(), value) as isize }
}

/// What a store callback returns: the bytes consumed, or an error.
fn stored(result: Result, count: usize) -> isize {
    match result {
        Ok(()) => count as isize,
        Err(err) => err.to_errno() as isize,
    }
}

/// `kstrtobool()`, so that exactly what upstream accepts is accepted.
fn parse_bool(written: &CStr) -> Result<bool> {
    let mut value = false;
    // SAFETY: a NUL-terminated string and a valid `bool` to write.
    kernel::error::to_result(unsafe { bindings::kstrtobool(written.as_char_ptr(), &mut value) })?;
    Ok(value)
}

/// The patch a patch attribute was called for.
///
/// # Safety
///
/// `kobj` is what sysfs passed to a callback of `PATCH_KTYPE`'s attributes:
/// a patch's kobject, which stays alive during the callback (removing it
/// waits for running callbacks).
unsafe fn patch_of(kobj: KobjPtr) -> PatchRef {
    // SAFETY: (caller's contract).
    unsafe { PatchRef::from_kobj(kobj) }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and a page-sized buffer.
unsafe extern "C" fn enabled_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, c_int::from(patch.enabled())) }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and `count` written bytes,
/// NUL-terminated.
unsafe extern "C" fn enabled_store(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    stored(
        // SAFETY: sysfs hands a store callback a NUL-terminated copy of what
        // was written, alive during the callback (caller's contract).
        parse_bool(unsafe { CStr::from_char_ptr(buf) }).and_then(|enable| {
            match REGISTRY.as_ref() {
                Some(registry) => (registry.set_enabled)(patch, enable),
                None => Err(ENODEV),
            }
        }),
        count,
    )
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and a page-sized buffer.
unsafe extern "C" fn transition_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe {
        emit(
            buf,
            c_int::from(crate::transition::is_transition_patch(patch)),
        )
    }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and `count` written bytes,
/// NUL-terminated.
unsafe extern "C" fn force_store(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    stored(
        // SAFETY: sysfs hands a store callback a NUL-terminated copy of what
        // was written, alive during the callback (caller's contract).
        parse_bool(unsafe { CStr::from_char_ptr(buf) }).and_then(|force| {
            if force {
                force_transition(patch)
            } else {
                Ok(())
            }
        }),
        count,
    )
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and a page-sized buffer.
unsafe extern "C" fn replace_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, c_int::from(patch.replace())) }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and a page-sized buffer.
unsafe extern "C" fn stack_order_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, stack_order(patch)) }
}

/// A write of true to `force`: every task switches now.
fn force_transition(patch: PatchRef) -> Result {
    let locked = lock();
    if transition_patch(&locked) != Some(patch) {
        return Err(EINVAL);
    }
    transition::force_transition(&locked);
    Ok(())
}

/// A write of `1` to `signal`: hurries every task still pending now.
fn signal(patch: PatchRef) -> Result {
    let locked = lock();
    if transition_patch(&locked) != Some(patch) {
        return Err(EINVAL);
    }
    transition::signal_stragglers();
    Ok(())
}

/// The patch's place among the installed patches, from 1 (`stack_order`).
fn stack_order(patch: PatchRef) -> c_int {
    let locked = lock();
    let mut order = 0;
    for installed in patches(&locked) {
        order += 1;
        if installed == patch {
            break;
        }
    }
    order
}

/// `signal` takes exactly `1` (as `echo 1` writes it, with its newline).
fn parse_signal(written: &[u8]) -> Result {
    match written {
        b"1" | b"1\n" => Ok(()),
        _ => Err(EINVAL),
    }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject and `count` written bytes,
/// NUL-terminated.
unsafe extern "C" fn signal_store(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: a patch attribute's callback.
    let patch = unsafe { patch_of(kobj) };
    stored(
        // SAFETY: sysfs passes `count` readable bytes (caller's contract).
        parse_signal(unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) })
            .and_then(|()| signal(patch)),
        count,
    )
}

/// # Safety
///
/// Called by sysfs with an object's kobject and a page-sized buffer.
unsafe extern "C" fn patched_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `OBJECT_KTYPE`'s attribute: `kobj` is an object's, alive
    // during the callback.
    let obj = unsafe { ObjRef::from_kobj(kobj) };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, c_int::from(obj.patched())) }
}
