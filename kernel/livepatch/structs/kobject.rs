// SPDX-License-Identifier: GPL-2.0

//! The kobjects embedded in patches, objects and functions: their types
//! and files as [`kernel::kobject`] statics, and `/sys/kernel/livepatch`.
//!
//! The files hand a [`Patch`] or an [`Object`] and the bytes written to the
//! [`Handlers`] `crate::sysfs` installs with [`init`]: what the files mean
//! is decided there. A kobject's release frees what the core made (dynamic
//! objects, nops) and lets a patch's freeing go on.

use core::ptr::NonNull;

use kernel::kobject::{
    self, Attribute, AttributeList, AttributeOperations, HasKobject, KobjType, KobjectDir, Release,
};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::sync::SetOnce;

use super::{Func, Object, Patch};

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

impl PatchFile {
    /// The file an attribute's `ID` names; evaluated at compile time (see
    /// the callers), so an `ID` that names no file does not build.
    const fn from_id(raw: u64) -> Self {
        let file = match raw {
            0 => PatchFile::Enabled,
            1 => PatchFile::Transition,
            2 => PatchFile::Force,
            3 => PatchFile::Replace,
            4 => PatchFile::StackOrder,
            5 => PatchFile::Signal,
            _ => panic!("an attribute ID that names no patch file"),
        };
        assert!(id(file) == raw, "PatchFile ids out of step with the enum");
        file
    }
}

/// What was written to a file.
pub(crate) struct Written<'a>(&'a [u8]);

impl Written<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0
    }

    /// `kstrtobool()`, so that exactly what upstream accepts is accepted.
    pub(crate) fn parse_bool(&self) -> Result<bool> {
        kernel::str::kstrtobool_bytes(self.0)
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

fn handlers() -> Result<&'static Handlers> {
    HANDLERS.as_ref().ok_or(EIO)
}

/// A patch's file as upstream shows it: `"%d\n"`.
fn show_patch_file(patch: &Patch, file: PatchFile, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
    let value = (handlers()?.show)(patch, file);
    kobject::emit(page, fmt!("{value}\n"))
}

fn store_patch_file(patch: &Patch, file: PatchFile, input: &[u8]) -> Result {
    (handlers()?.store)(patch, file, &Written(input))
}

/// The read-only files of a patch, by [`PatchFile`] number.
struct ReadOnly;
/// The write-only files of a patch.
struct WriteOnly;
/// The files of a patch one can read and write.
struct ReadWrite;

#[vtable]
impl<const ID: u64> AttributeOperations<ID> for ReadOnly {
    type Data = Patch;

    fn show(patch: &Patch, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_patch_file(patch, const { PatchFile::from_id(ID) }, page)
    }
}

#[vtable]
impl<const ID: u64> AttributeOperations<ID> for WriteOnly {
    type Data = Patch;

    fn store(patch: &Patch, input: &[u8]) -> Result {
        store_patch_file(patch, const { PatchFile::from_id(ID) }, input)
    }
}

#[vtable]
impl<const ID: u64> AttributeOperations<ID> for ReadWrite {
    type Data = Patch;

    fn show(patch: &Patch, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_patch_file(patch, const { PatchFile::from_id(ID) }, page)
    }

    fn store(patch: &Patch, input: &[u8]) -> Result {
        store_patch_file(patch, const { PatchFile::from_id(ID) }, input)
    }
}

/// An object's `patched`.
struct PatchedFile;

#[vtable]
impl AttributeOperations for PatchedFile {
    type Data = Object;

    fn show(obj: &Object, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let patched = (handlers()?.patched)(obj);
        kobject::emit(page, fmt!("{}\n", u8::from(patched)))
    }
}

const fn id(file: PatchFile) -> u64 {
    file as u64
}

static ENABLED: Attribute<{ id(PatchFile::Enabled) }, ReadWrite> =
    Attribute::new(c"enabled", 0o644);
static TRANSITION: Attribute<{ id(PatchFile::Transition) }, ReadOnly> =
    Attribute::new(c"transition", 0o444);
static FORCE: Attribute<{ id(PatchFile::Force) }, WriteOnly> = Attribute::new(c"force", 0o200);
static REPLACE: Attribute<{ id(PatchFile::Replace) }, ReadOnly> = Attribute::new(c"replace", 0o444);
static STACK_ORDER: Attribute<{ id(PatchFile::StackOrder) }, ReadOnly> =
    Attribute::new(c"stack_order", 0o444);
static SIGNAL: Attribute<{ id(PatchFile::Signal) }, WriteOnly> = Attribute::new(c"signal", 0o200);
static PATCHED: Attribute<0, PatchedFile> = Attribute::new(c"patched", 0o444);

static PATCH_FILES: AttributeList<Patch, 6> = AttributeList::new([
    ENABLED.erase(),
    TRANSITION.erase(),
    FORCE.erase(),
    REPLACE.erase(),
    STACK_ORDER.erase(),
    SIGNAL.erase(),
]);
static OBJECT_FILES: AttributeList<Object, 1> = AttributeList::new([PATCHED.erase()]);

/// The types of the kobjects inside patches, objects and functions.
pub(super) static PATCH_KTYPE: KobjType<Patch> = KobjType::new(&PATCH_KTYPE, Some(&PATCH_FILES));
pub(super) static OBJECT_KTYPE: KobjType<Object> =
    KobjType::new(&OBJECT_KTYPE, Some(&OBJECT_FILES));
pub(super) static FUNC_KTYPE: KobjType<Func> =
    KobjType::new::<0>(&FUNC_KTYPE, None::<&AttributeList<Func, 0>>);

// SAFETY: `Patch` is transparent over `klp_patch`, whose `kobj` this is; a
// patch lives (in its module) until its kobject's release, which the
// module's exit waits for (`klp_free_patch_finish()`).
unsafe impl HasKobject for Patch {
    const KOBJ_OFFSET: usize = core::mem::offset_of!(kernel::bindings::klp_patch, kobj);
}

// SAFETY: as for `Patch`: the object lives in the patch's module, or is a
// dynamic object freed only by its release below.
unsafe impl HasKobject for Object {
    const KOBJ_OFFSET: usize = core::mem::offset_of!(kernel::bindings::klp_object, kobj);
}

// SAFETY: as for `Object`, with nops for dynamic objects.
unsafe impl HasKobject for Func {
    const KOBJ_OFFSET: usize = core::mem::offset_of!(kernel::bindings::klp_func, kobj);
}

impl Release for Patch {
    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: the last put (our contract) of a patch `init_early` set up.
        unsafe { super::release_patch(this.as_ptr().cast()) };
    }
}

impl Release for Object {
    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: the last put (our contract).
        unsafe { super::release_object(this.as_ptr().cast()) };
    }
}

impl Release for Func {
    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: the last put (our contract).
        unsafe { super::release_func(this.as_ptr().cast()) };
    }
}

/// `/sys/kernel/livepatch`, made once at boot.
static ROOT: SetOnce<KobjectDir> = SetOnce::new();

/// The directory patches are added under; there once [`init`] worked.
pub(super) fn root() -> Result<&'static kernel::kobject::Kobject> {
    ROOT.as_ref().map(|root| &**root).ok_or(ENODEV)
}

/// Installs the handlers and creates `/sys/kernel/livepatch`; until this
/// worked, no patch is enabled.
pub(crate) fn init(handlers: Handlers) -> Result {
    HANDLERS.populate(handlers);
    let kernel = kobject::kernel_kobj().ok_or(ENODEV)?;
    let root = KobjectDir::new(c"livepatch", Some(kernel))?;
    ROOT.populate(root);
    Ok(())
}

impl Patch {
    /// The patch's kobject.
    pub(super) fn kobj(&self) -> &kobject::Kobject {
        // SAFETY: `init_early` initialised it (type invariant).
        unsafe { self.kobject() }
    }
}

impl Object {
    /// The object's kobject.
    pub(super) fn kobj(&self) -> &kobject::Kobject {
        // SAFETY: as for `Patch::kobj`.
        unsafe { self.kobject() }
    }
}

impl Func {
    /// The function's kobject.
    pub(super) fn kobj(&self) -> &kobject::Kobject {
        // SAFETY: as for `Patch::kobj`.
        unsafe { self.kobject() }
    }
}
