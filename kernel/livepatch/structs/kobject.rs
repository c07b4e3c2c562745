// SPDX-License-Identifier: GPL-2.0

//! The kobjects embedded in patches, objects and functions: their types,
//! attributes and callbacks as statics, and `/sys/kernel/livepatch`.
//!
//! The callbacks turn sysfs's raw arguments into a [`Patch`] or an
//! [`Object`] and the bytes written, and hand them to the [`Handlers`]
//! `crate::sysfs` installs with [`init`]: what the files mean is decided
//! there, in safe code. A kobject's release frees what the core made
//! (dynamic objects, nops) and lets a patch's freeing go on.

use core::cell::UnsafeCell;
use core::ptr::{null, null_mut};
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use kernel::bindings;
use kernel::error::{to_result, Result};
use kernel::ffi::{c_char, c_int, c_ulong};
use kernel::prelude::*;
use kernel::str::{CStr, CStrExt};
use kernel::sync::SetOnce;

use super::{Object, Patch};

type KobjPtr = *mut bindings::kobject;

/// The files of a patch's directory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchFile {
    Enabled,
    Transition,
    Force,
    Replace,
    StackOrder,
    Signal,
}

/// What was written to a file: the bytes, NUL-terminated by sysfs.
pub(crate) struct Written<'a>(&'a CStr);

impl Written<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.to_bytes()
    }

    /// `kstrtobool()`, so that exactly what upstream accepts is accepted.
    pub(crate) fn parse_bool(&self) -> Result<bool> {
        let mut value = false;
        // SAFETY: a NUL-terminated string and a valid `bool` to write.
        to_result(unsafe { bindings::kstrtobool(self.0.as_char_ptr(), &mut value) })?;
        Ok(value)
    }
}

/// What the files do, set by `crate::sysfs` before any kobject exists.
pub(crate) struct Handlers {
    /// A read of one of the patch's files; the number it shows.
    pub(crate) show: fn(&Patch, PatchFile) -> c_int,
    /// A write to one of the patch's files.
    pub(crate) store: fn(&Patch, PatchFile, &Written<'_>) -> Result,
    /// A read of an object's `patched`.
    pub(crate) patched: fn(&Object) -> bool,
}

static HANDLERS: SetOnce<Handlers> = SetOnce::new();

/// A C structure that lives in a static and that C may write to (the
/// attributes' lockdep keys), hence kept out of read-only memory.
#[repr(transparent)]
pub(crate) struct CStatic<T>(UnsafeCell<T>);

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

const RW: (Option<Show>, Option<Store>) = (Some(patch_show), Some(patch_store));
const RO: (Option<Show>, Option<Store>) = (Some(patch_show), None);
const WO: (Option<Show>, Option<Store>) = (None, Some(patch_store));

static ENABLED: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"enabled", 0o644, RW.0, RW.1));
static TRANSITION: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"transition", 0o444, RO.0, RO.1));
static FORCE: CStatic<bindings::kobj_attribute> = CStatic::new(attr(c"force", 0o200, WO.0, WO.1));
static REPLACE: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"replace", 0o444, RO.0, RO.1));
static STACK_ORDER: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"stack_order", 0o444, RO.0, RO.1));
static SIGNAL: CStatic<bindings::kobj_attribute> = CStatic::new(attr(c"signal", 0o200, WO.0, WO.1));
static PATCHED: CStatic<bindings::kobj_attribute> =
    CStatic::new(attr(c"patched", 0o444, Some(patched_show), None));

/// Which file of a patch `attr` is.
fn patch_file(attr: *mut bindings::kobj_attribute) -> Option<PatchFile> {
    [
        (&ENABLED, PatchFile::Enabled),
        (&TRANSITION, PatchFile::Transition),
        (&FORCE, PatchFile::Force),
        (&REPLACE, PatchFile::Replace),
        (&STACK_ORDER, PatchFile::StackOrder),
        (&SIGNAL, PatchFile::Signal),
    ]
    .into_iter()
    .find(|(file, _)| file.get() == attr)
    .map(|(_, which)| which)
}

/// The `attribute` inside a static `kobj_attribute`: its first member.
const fn attribute(attr: &'static CStatic<bindings::kobj_attribute>) -> *mut bindings::attribute {
    attr.get().cast()
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

/// The type of a patch's kobject, and only of those: a kobject of this
/// type is the `kobj` member of a [`Patch`]. Likewise below.
pub(super) static PATCH_KTYPE: CStatic<bindings::kobj_type> =
    CStatic::new(ktype(release_patch, PATCH_GROUPS.get().cast()));
pub(super) static OBJECT_KTYPE: CStatic<bindings::kobj_type> =
    CStatic::new(ktype(release_object, OBJECT_GROUPS.get().cast()));
pub(super) static FUNC_KTYPE: CStatic<bindings::kobj_type> =
    CStatic::new(ktype(release_func, null_mut()));

/// `/sys/kernel/livepatch`, made once at boot.
static ROOT: AtomicPtr<bindings::kobject> = AtomicPtr::new(null_mut());

/// Installs the handlers and creates `/sys/kernel/livepatch`; until this
/// worked, no patch is enabled.
pub(crate) fn init(handlers: Handlers) -> Result {
    HANDLERS.populate(handlers);
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

/// `kobject_init()`.
///
/// # Safety
///
/// `kobj` is the `kobj` member of a patch, object or function (as `ktype`
/// says) that is not initialised yet.
pub(super) unsafe fn init_kobject(kobj: KobjPtr, ktype: &'static CStatic<bindings::kobj_type>) {
    // SAFETY: (caller's contract) a fresh kobject; the type is static.
    unsafe { bindings::kobject_init(kobj, ktype.get()) };
}

/// `kobject_add()` of a patch, under `/sys/kernel/livepatch`.
///
/// # Safety
///
/// `kobj` was initialised with [`init_kobject`] and not yet added.
pub(super) unsafe fn add_patch(kobj: KobjPtr, name: &CStr) -> Result {
    // SAFETY: (caller's contract); `ROOT` is set, since patches are only
    // added once `lock::ready()`, which the initcall sets (Release) after
    // `init` succeeded; "%s" takes the NUL-terminated name.
    to_result(unsafe {
        bindings::kobject_add(
            kobj,
            ROOT.load(Relaxed),
            c"%s".as_char_ptr(),
            name.as_char_ptr(),
        )
    })
}

/// `kobject_add()` of an object under its patch (`name`), or of a function
/// under its object (`name,sympos`).
///
/// # Safety
///
/// As [`add_patch`]; `parent` is an added kobject.
pub(super) unsafe fn add_child(
    kobj: KobjPtr,
    parent: KobjPtr,
    name: &CStr,
    sympos: Option<u64>,
) -> Result {
    // SAFETY: (caller's contract); the formats take the NUL-terminated name
    // and an unsigned long.
    to_result(unsafe {
        match sympos {
            None => bindings::kobject_add(kobj, parent, c"%s".as_char_ptr(), name.as_char_ptr()),
            Some(sympos) => bindings::kobject_add(
                kobj,
                parent,
                c"%s,%lu".as_char_ptr(),
                name.as_char_ptr(),
                sympos as c_ulong,
            ),
        }
    })
}

/// `kobject_put()`: drops the reference `kobject_init()` took; on the last
/// one the release callback below runs.
///
/// # Safety
///
/// `kobj` was initialised with [`init_kobject`] and the caller owns that reference.
pub(super) unsafe fn put(kobj: KobjPtr) {
    // SAFETY: (caller's contract).
    unsafe { bindings::kobject_put(kobj) };
}

/// # Safety
///
/// Called by the kobject core with a patch's kobject, on its last put.
unsafe extern "C" fn release_patch(kobj: KobjPtr) {
    let offset = core::mem::offset_of!(bindings::klp_patch, kobj);
    // SAFETY: `PATCH_KTYPE` is only given to patches' kobjects, by
    // `init_early`; stepping back from the member gives the patch.
    unsafe { super::release_patch(kobj.byte_sub(offset).cast()) };
}

/// # Safety
///
/// Called by the kobject core with an object's kobject, on its last put.
unsafe extern "C" fn release_object(kobj: KobjPtr) {
    let offset = core::mem::offset_of!(bindings::klp_object, kobj);
    // SAFETY: as in `release_patch`, with `OBJECT_KTYPE`.
    unsafe { super::release_object(kobj.byte_sub(offset).cast()) };
}

/// # Safety
///
/// Called by the kobject core with a function's kobject, on its last put.
unsafe extern "C" fn release_func(kobj: KobjPtr) {
    let offset = core::mem::offset_of!(bindings::klp_func, kobj);
    // SAFETY: as in `release_patch`, with `FUNC_KTYPE`.
    unsafe { super::release_func(kobj.byte_sub(offset).cast()) };
}

/// The patch a patch file's callback was called for.
///
/// # Safety
///
/// `kobj` is what sysfs passed to a callback of `PATCH_KTYPE`'s attributes:
/// a patch's kobject, which stays alive during the callback (removing it
/// waits for running callbacks).
unsafe fn patch_of<'a>(kobj: KobjPtr) -> &'a Patch {
    let offset = core::mem::offset_of!(bindings::klp_patch, kobj);
    // SAFETY: (caller's contract) stepping back from the member gives a
    // patch set up by `init_early`.
    unsafe { &*kobj.byte_sub(offset).cast::<Patch>() }
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

/// # Safety
///
/// Called by sysfs with a patch's kobject, one of its attributes, and a
/// page-sized buffer.
unsafe extern "C" fn patch_show(
    kobj: KobjPtr,
    attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    let (Some(handlers), Some(file)) = (HANDLERS.as_ref(), patch_file(attr)) else {
        return EIO.to_errno() as isize;
    };
    // SAFETY: a patch attribute's callback (caller's contract).
    let value = (handlers.show)(unsafe { patch_of(kobj) }, file);
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, value) }
}

/// # Safety
///
/// Called by sysfs with a patch's kobject, one of its attributes, and
/// `count` written bytes, NUL-terminated.
unsafe extern "C" fn patch_store(
    kobj: KobjPtr,
    attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    let (Some(handlers), Some(file)) = (HANDLERS.as_ref(), patch_file(attr)) else {
        return EIO.to_errno() as isize;
    };
    // SAFETY: sysfs hands a store callback a NUL-terminated copy of what was
    // written, alive during the callback (caller's contract).
    let written = Written(unsafe { CStr::from_char_ptr(buf) });
    // SAFETY: a patch attribute's callback (caller's contract).
    match (handlers.store)(unsafe { patch_of(kobj) }, file, &written) {
        Ok(()) => count as isize,
        Err(err) => err.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by sysfs with an object's kobject and a page-sized buffer.
unsafe extern "C" fn patched_show(
    kobj: KobjPtr,
    _attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    let Some(handlers) = HANDLERS.as_ref() else {
        return EIO.to_errno() as isize;
    };
    let offset = core::mem::offset_of!(bindings::klp_object, kobj);
    // SAFETY: `OBJECT_KTYPE`'s attribute: `kobj` is an object's, alive
    // during the callback.
    let obj = unsafe { &*kobj.byte_sub(offset).cast::<Object>() };
    // SAFETY: a show callback's buffer (caller's contract).
    unsafe { emit(buf, c_int::from((handlers.patched)(obj))) }
}
