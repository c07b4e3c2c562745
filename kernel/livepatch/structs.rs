// SPDX-License-Identifier: GPL-2.0

//! The C structures a livepatch module hands in (`klp_patch`, `klp_object`,
//! `klp_func`, `klp_state`), as typed references: [`Patch`], [`Object`],
//! [`Func`], [`State`]. Also what the core keeps inside them: the C lists
//! that link them, their kobjects ([`kobject`]), the patch's free work and
//! completion, and the objects and `nop` functions the core makes for
//! atomic replace.
//!
//! Every `unsafe` about these structures is here. The logic above gets
//! `&'a Patch` (and so on) only from the installed list under the
//! [`Locked`] proof, from a kobject of the right type, or at a C entry
//! point (`crate::exports`), and never frees what it holds: freeing happens
//! here, on the last kobject put.

use core::ptr::{addr_of_mut, null_mut, NonNull};
use core::sync::atomic::Ordering::Relaxed as CoreRelaxed;
use kernel::sync::atomic::{Atomic, Relaxed};

use kernel::bindings;
use kernel::error::{to_result, Result};
use kernel::ffi::{c_ulong, c_void};
use kernel::interop::list::{CList, CListIter};
use kernel::kobject::Kobject;
use kernel::prelude::*;
use kernel::str::{CStr, CStrExt, CString};
use kernel::types::Opaque;

use crate::lock::Locked;
use crate::modules::ModRef;
use crate::state_rules::StateVersion;

pub(crate) mod kobject;

/// `INIT_LIST_HEAD()`.
///
/// # Safety
///
/// `head` is valid for writes and on no list.
unsafe fn list_init(head: *mut bindings::list_head) {
    // SAFETY: valid for writes (caller's contract).
    unsafe {
        (*head).next = head;
        (*head).prev = head;
    }
}

/// `list_add_tail()`.
///
/// # Safety
///
/// `head` is an initialised list head and `new` an entry on no list, both
/// valid and changed by no one else meanwhile.
unsafe fn list_add_tail(new: *mut bindings::list_head, head: *mut bindings::list_head) {
    // SAFETY: valid and exclusively ours (caller's contract).
    unsafe {
        let prev = (*head).prev;
        (*new).next = head;
        (*new).prev = prev;
        (*prev).next = new;
        (*head).prev = new;
    }
}

/// `list_del_init()`: unlinks `entry` (a no-op if it is an empty list).
///
/// # Safety
///
/// `entry` is initialised, valid, and changed by no one else meanwhile.
unsafe fn list_del_init(entry: *mut bindings::list_head) {
    // SAFETY: valid and exclusively ours (caller's contract).
    unsafe {
        let next = (*entry).next;
        let prev = (*entry).prev;
        (*next).prev = prev;
        (*prev).next = next;
        list_init(entry);
    }
}

/// Where the list links sit in the structures, for [`CList`].
const PATCH_LIST: usize = core::mem::offset_of!(bindings::klp_patch, list);
const OBJECT_NODE: usize = core::mem::offset_of!(bindings::klp_object, node);
const FUNC_NODE: usize = core::mem::offset_of!(bindings::klp_func, node);

/// A patch a livepatch module handed to `klp_enable_patch()`.
///
/// # Invariants
///
/// A `&'a Patch` wraps a `struct klp_patch` that is valid for `'a` and was
/// set up by [`NewPatch::init_early`]: its lists, kobject, free work and
/// completion are initialised. Its object and function lists change only
/// under `klp_mutex`.
#[repr(transparent)]
pub(crate) struct Patch(Opaque<bindings::klp_patch>);

/// An object of a [`Patch`] (vmlinux or a module by name); same invariants.
#[repr(transparent)]
pub(crate) struct Object(Opaque<bindings::klp_object>);

/// A function of an [`Object`]; same invariants. Its `transition`,
/// `patched` and stack links are shared with the ftrace handler.
#[repr(transparent)]
pub(crate) struct Func(Opaque<bindings::klp_func>);

/// A `klp_state` of a patch, valid as long as its patch.
#[repr(transparent)]
pub(crate) struct State(Opaque<bindings::klp_state>);

/// What a livepatch module declared in its `klp_patch`: the fields it sets
/// and its static arrays, readable before the core set anything up. Every
/// [`Patch`] is one too (through `Deref`).
///
/// # Invariants
///
/// A `&'a PatchDecl` wraps a `struct klp_patch` valid for `'a` with `mod`
/// and `objs` set; through it only the fields the module declares are
/// read (for a nop, which the core makes, the same fields).
#[repr(transparent)]
pub(crate) struct PatchDecl(Opaque<bindings::klp_patch>);

/// An entry of a patch's static `objs` array; same invariants.
#[repr(transparent)]
pub(crate) struct ObjectDecl(Opaque<bindings::klp_object>);

/// An entry of an object's static `funcs` array (or a nop); same
/// invariants.
#[repr(transparent)]
pub(crate) struct FuncDecl(Opaque<bindings::klp_func>);

/// A set-up view is also a declaration.
macro_rules! deref_to_decl {
    ($($t:ty => $d:ty),*) => {$(
        impl core::ops::Deref for $t {
            type Target = $d;

            #[inline(always)]
            fn deref(&self) -> &$d {
                // SAFETY: both are transparent over the same C structure,
                // and a set-up one was declared by its module (or made by
                // the core with the same fields).
                unsafe { &*core::ptr::from_ref(self).cast::<$d>() }
            }
        }
    )*};
}
deref_to_decl!(Patch => PatchDecl, Object => ObjectDecl, Func => FuncDecl);

impl PatchDecl {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_patch {
        self.0.get()
    }

    /// The livepatch module's name, for log lines.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: `mod` is set (invariant), and the module outlives its
        // patch.
        unsafe { kernel::loaded_module::LoadedModule::from_raw((*self.as_ptr()).mod_) }.name()
    }

    /// The livepatch module the patch belongs to.
    pub(crate) fn module(&self) -> ModRef {
        // SAFETY: as in `name`.
        unsafe { ModRef::from_raw((*self.as_ptr()).mod_).unwrap_unchecked() }
    }

    pub(crate) fn replace(&self) -> bool {
        // SAFETY: valid (invariant); set by the module, never changed.
        unsafe { (*self.as_ptr()).replace }
    }

    /// The objects of the module's static `objs` array (ended by an entry
    /// with neither `funcs` nor `name`, as upstream's
    /// `klp_for_each_object_static`), as opposed to [`Patch::objects`], the
    /// list the core builds from them plus the dynamic ones. An object
    /// without `funcs` is yielded: [`ObjectDecl::has_funcs`] tells.
    pub(crate) fn static_objects(&self) -> impl Iterator<Item = &ObjectDecl> {
        // SAFETY: valid (invariant).
        let mut cur = unsafe { (*self.as_ptr()).objs };
        core::iter::from_fn(move || {
            // SAFETY: `cur` is NULL or within the module's array, not past
            // its end marker: we stop at the entry without `funcs` and
            // `name`.
            if cur.is_null() || unsafe { (*cur).funcs.is_null() && (*cur).name.is_null() } {
                return None;
            }
            let obj = cur;
            // SAFETY: `obj` is not the end marker, so the next entry exists.
            cur = unsafe { cur.add(1) };
            // SAFETY: an element of the patch's array lives as long as it.
            Some(unsafe { &*obj.cast::<ObjectDecl>() })
        })
    }

    /// The states the patch carries (`states`: NULL or an array ended by an
    /// entry whose id is 0, as `livepatch.h` requires).
    pub(crate) fn states(&self) -> impl Iterator<Item = (StateVersion, &State)> {
        // SAFETY: valid (invariant); set by the module, never changed.
        let mut cur = unsafe { (*self.as_ptr()).states };
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            // SAFETY: `cur` is within the states array and not past its end
            // marker: we stop at the entry with id 0 and never step beyond.
            let state = unsafe { &*cur };
            if state.id == 0 {
                return None;
            }
            let version = StateVersion {
                id: state.id as u64,
                version: state.version,
            };
            // SAFETY: `cur` lives as long as the patch; it is not the end
            // marker, so the next entry exists.
            let (found, next) = unsafe { (&*cur.cast::<State>(), cur.add(1)) };
            cur = next;
            Some((version, found))
        })
    }

    /// Looks `id` up among the patch's states.
    pub(crate) fn find_state(&self, id: c_ulong) -> Option<(StateVersion, &State)> {
        self.states().find(|(state, _)| state.id == id as u64)
    }
}

impl ObjectDecl {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_object {
        self.0.get()
    }

    /// The set-up object this entry is.
    ///
    /// # Safety
    ///
    /// The entry's patch went through [`NewPatch::init_early`].
    unsafe fn set_up(&self) -> &Object {
        // SAFETY: transparent over the same structure; set up (caller's
        // contract).
        unsafe { &*core::ptr::from_ref(self).cast::<Object>() }
    }

    /// The module name, or `None` for vmlinux.
    pub(crate) fn name(&self) -> Option<&CStr> {
        // SAFETY: valid (invariant); a set name is a NUL-terminated string
        // in the livepatch module (or the dynamic object's copy), which
        // lives as long as the object.
        unsafe {
            let name = (*self.as_ptr()).name;
            (!name.is_null()).then(|| CStr::from_char_ptr(name))
        }
    }

    /// `klp_is_module()`.
    pub(crate) fn is_module(&self) -> bool {
        self.name().is_some()
    }

    /// The name as sysfs and the log lines show it.
    pub(crate) fn display_name(&self) -> &CStr {
        self.name().unwrap_or(c"vmlinux")
    }

    /// Whether `other` names the same object (vmlinux, or the same module).
    pub(crate) fn same_object(&self, other: &ObjectDecl) -> bool {
        self.name() == other.name()
    }

    /// Whether the object has a static `funcs` array (a module's object
    /// without one is refused).
    pub(crate) fn has_funcs(&self) -> bool {
        // SAFETY: valid (invariant).
        unsafe { !(*self.as_ptr()).funcs.is_null() }
    }

    /// The functions of the module's static `funcs` array, which ends with
    /// an entry that has neither `old_name`, `new_func` nor `old_sympos`.
    pub(crate) fn static_funcs(&self) -> impl Iterator<Item = &FuncDecl> {
        // SAFETY: valid (invariant).
        let mut cur = unsafe { (*self.as_ptr()).funcs };
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            // SAFETY: `cur` is within the module's array, not past its end
            // marker: we stop at it.
            let end = unsafe {
                (*cur).old_name.is_null() && (*cur).new_func.is_null() && (*cur).old_sympos == 0
            };
            if end {
                return None;
            }
            let func = cur;
            // SAFETY: `func` is not the end marker, so the next entry exists.
            cur = unsafe { cur.add(1) };
            // SAFETY: an element of the object's array lives as long as it.
            Some(unsafe { &*func.cast::<FuncDecl>() })
        })
    }
}

impl FuncDecl {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_func {
        self.0.get()
    }

    /// The set-up function this entry is.
    ///
    /// # Safety
    ///
    /// As for [`ObjectDecl::set_up`].
    unsafe fn set_up(&self) -> &Func {
        // SAFETY: as in `ObjectDecl::set_up`.
        unsafe { &*core::ptr::from_ref(self).cast::<Func>() }
    }

    pub(crate) fn new_func(&self) -> usize {
        // SAFETY: valid (invariant); set by the module (for a nop, by the
        // core under `klp_mutex` while it is not patched).
        unsafe { (*self.as_ptr()).new_func as usize }
    }

    /// `old_name`, which a module may have left NULL (refused on enable).
    pub(crate) fn old_name_checked(&self) -> Option<&CStr> {
        // SAFETY: valid (invariant); a set name is NUL-terminated and lives
        // in the module with the patch (or in the nop).
        unsafe {
            let name = (*self.as_ptr()).old_name;
            (!name.is_null()).then(|| CStr::from_char_ptr(name))
        }
    }

    /// The name of the patched function. `klp_enable_patch()` refuses a
    /// function without one (and a nop copies its name), so an empty name
    /// only shows up in the refusal path's own messages.
    pub(crate) fn old_name(&self) -> &CStr {
        self.old_name_checked().unwrap_or(c"")
    }

    pub(crate) fn old_sympos(&self) -> u64 {
        // SAFETY: valid (invariant); set by the module.
        unsafe { (*self.as_ptr()).old_sympos as u64 }
    }

    /// The position as the sysfs name shows it: 0 ("unique") is the first.
    pub(crate) fn shown_sympos(&self) -> u64 {
        self.old_sympos().max(1)
    }

    /// Whether `other` names the same symbol: the same name and position,
    /// where positions 0 and 1 both mean the first (`klp_find_func()`).
    pub(crate) fn same_symbol(&self, other: &FuncDecl) -> bool {
        self.old_name_checked() == other.old_name_checked()
            && self.shown_sympos() == other.shown_sympos()
    }
}

/// Two views are the same when they wrap the same C structure.
macro_rules! identity_eq {
    ($($t:ty),*) => {$(
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                core::ptr::eq(self, other)
            }
        }
        impl Eq for $t {}
    )*};
}
identity_eq!(Patch, Object, Func);

/// The installed patches, in install order: the list `klp_mutex` guards.
pub(crate) fn installed_patches(locked: &Locked) -> Patches<'_> {
    // SAFETY: the list's entries are the `list` members of installed
    // patches, all set up by `init_early` and kept until they are taken off
    // it under the lock `locked` proves held.
    Patches(unsafe { CList::<Patch, PATCH_LIST>::from_raw(locked.patch_list()) }.iter())
}

/// Iterator over the installed patches (a named type: the symbols of
/// closure-based iterator chains grow past what kallsyms takes).
pub(crate) struct Patches<'a>(CListIter<'a, Patch, PATCH_LIST>);

impl<'a> Iterator for Patches<'a> {
    type Item = &'a Patch;

    fn next(&mut self) -> Option<&'a Patch> {
        self.0.next()
    }
}

/// Iterator over a patch's objects.
pub(crate) type Objects<'a> = CListIter<'a, Object, OBJECT_NODE>;

/// Iterator over an object's functions.
pub(crate) type Funcs<'a> = CListIter<'a, Func, FUNC_NODE>;

/// A patch handed to `klp_enable_patch()`, not yet set up: only what its
/// module declared can be read.
///
/// # Invariants
///
/// Wraps a valid `struct klp_patch` of the calling module, with `mod` and
/// `objs` set, whose core-owned members no one has initialised yet, handed
/// in from the module's init.
pub(crate) struct NewPatch<'a>(&'a PatchDecl);

impl<'a> NewPatch<'a> {
    /// # Safety
    ///
    /// `patch` is a livepatch module's patch, handed in once, from the
    /// module's init, and valid for `'a` (what `livepatch.h` asks of a
    /// caller of `klp_enable_patch()`).
    pub(crate) unsafe fn from_raw(patch: *mut bindings::klp_patch) -> Option<Self> {
        if patch.is_null() {
            return None;
        }
        // SAFETY: valid (caller's contract); only read here.
        let has_parts = unsafe { !(*patch).mod_.is_null() && !(*patch).objs.is_null() };
        // SAFETY: valid for `'a`, with `mod` and `objs` set, as just checked.
        has_parts.then(|| NewPatch(unsafe { &*patch.cast::<PatchDecl>() }))
    }

    /// What the module declared, for the checks before setting up.
    pub(crate) fn decl(&self) -> &'a PatchDecl {
        self.0
    }

    /// Takes a reference to the patch's module, so it stays while the
    /// patch is installed; `None` if the module is already going.
    pub(crate) fn get_module(&self) -> Option<PatchModuleRef> {
        // SAFETY: the module is calling us from its init (type invariant),
        // so it is live, in `MODULE_STATE_COMING`, for the whole call.
        unsafe { self.0.module().try_get() }.then_some(PatchModuleRef(self.0.module()))
    }

    /// Initialises the lists, kobjects, free work and completion of the
    /// patch and of everything in its static arrays, and resets the flags
    /// the core keeps in them (`klp_init_patch_early()`). `W` runs when the
    /// patch's free work is queued.
    pub(crate) fn init_early<W: FreeWork>(self) -> FreshPatch<'a> {
        let p = self.0.as_ptr();
        // SAFETY: fresh (type invariant): no one else knows these members;
        // the work function, its name and the lockdep key are static. The
        // patch lives until its kobject's release: its module's exit waits
        // for that (`put_kobject_and_wait`).
        unsafe {
            list_init(addr_of_mut!((*p).list));
            list_init(addr_of_mut!((*p).obj_list));
            Kobject::init(
                NonNull::new_unchecked(p.cast::<Patch>()),
                &kobject::PATCH_KTYPE,
            );
            bindings::init_work_with_key(
                addr_of_mut!((*p).free_work),
                Some(free_work_trampoline::<W>),
                false,
                c"klp_free_patch_work".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            );
            bindings::init_completion(addr_of_mut!((*p).finish));
            (*p).enabled = false;
            (*p).forced = false;
        }
        // SAFETY: its lists, kobject, work and completion are set up now.
        let patch = unsafe { &*p.cast::<Patch>() };
        for obj in self.0.static_objects() {
            // SAFETY: an element of the fresh patch's array, as fresh; set
            // up by the call.
            let obj = unsafe {
                obj.set_up().init_early(patch);
                obj.set_up()
            };
            for func in obj.static_funcs() {
                // SAFETY: as above.
                unsafe { func.set_up().init_early(obj) };
            }
        }
        FreshPatch(patch)
    }
}

/// The module reference [`NewPatch::get_module`] took for a patch being
/// enabled. Once the patch is installed the patch's free work owns it
/// ([`PatchModuleRef::hand_to_patch`]); if enabling fails first, it is put
/// back ([`PatchModuleRef::put`]).
pub(crate) struct PatchModuleRef(ModRef);

impl PatchModuleRef {
    /// The patch's free work will give the reference back.
    pub(crate) fn hand_to_patch(self) {
        core::mem::forget(self);
    }

    /// The module stays loaded for good: a forced patch may still run in
    /// it.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }

    /// Gives the reference back on a failed `klp_enable_patch()`.
    pub(crate) fn put(self) {
        let module = self.0;
        core::mem::forget(self);
        // SAFETY: the reference `get_module` took, given back once (this
        // consumes it); we run in the module's init, so the module (and the
        // patch in it) stays while we return.
        unsafe { module.put() };
    }
}

impl Drop for PatchModuleRef {
    fn drop(&mut self) {
        // Every path hands it on or puts it: a drop would leak a reference.
        crate::warn_on_once!(true);
    }
}

/// A patch set up by [`NewPatch::init_early`], not installed yet: it is
/// installed once, or freed.
#[must_use = "a patch that is neither installed nor abandoned leaks"]
pub(crate) struct FreshPatch<'a>(&'a Patch);

impl<'a> FreshPatch<'a> {
    pub(crate) fn patch(&self) -> &'a Patch {
        self.0
    }

    /// Puts the patch on the installed list.
    pub(crate) fn install(self, locked: &Locked) {
        // SAFETY: the list `klp_mutex` guards, which `locked` holds, and the
        // patch's link, on no list since `init_early` (a `FreshPatch` is
        // consumed by installing it).
        unsafe { list_add_tail(addr_of_mut!((*self.0.as_ptr()).list), locked.patch_list()) };
    }

    /// Gives up on a patch that was never installed, to free it.
    pub(crate) fn abandon(self) -> Retiring<'a> {
        Retiring(self.0)
    }
}

/// A patch being freed: off the installed list (or never on it). Made once
/// per patch, it is consumed by queueing the free work or by the last put
/// of the patch's kobject, so neither happens twice.
#[must_use = "a patch taken off the list must be freed"]
pub(crate) struct Retiring<'a>(&'a Patch);

impl<'a> Retiring<'a> {
    /// Unlinks the functions and objects of the patch and drops the core's
    /// kobject reference to each (`__klp_free_objects()`); the last put
    /// frees what the core made.
    pub(crate) fn release_objects(&self, locked: &Locked) {
        // SAFETY: the patch is being freed: nothing will use its objects
        // or functions again.
        unsafe { self.0.release_objects(locked, false) };
    }

    /// `schedule_work(&patch->free_work)`: the work then does the rest.
    pub(crate) fn queue_free_work(self, _locked: &Locked) {
        // SAFETY: initialised by `init_early`; a patch has one `Retiring`,
        // consumed here, so the work item is idle.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as kernel::ffi::c_int,
                bindings::system_percpu_wq,
                addr_of_mut!((*self.0.as_ptr()).free_work),
            )
        };
    }

    /// Drops the core's reference to the patch's kobject and waits until
    /// its release ran, that is until no sysfs callback uses the patch.
    /// Must not hold `klp_mutex` (the callbacks take it). Returns whether
    /// the patch was forced, in which case its module must stay.
    pub(crate) fn put_kobject_and_wait(self) -> bool {
        let p = self.0.as_ptr();
        // SAFETY: the core's reference, taken by `init_early`, put once
        // (this consumes the patch's one `Retiring`); the release signals the
        // completion.
        unsafe {
            self.0.kobj().put();
            bindings::wait_for_completion(addr_of_mut!((*p).finish));
        }
        self.0.forced()
    }
}

/// What a patch's free work does, given the patch.
pub(crate) trait FreeWork {
    /// The last use of the patch; returns whether to give back the module
    /// reference [`NewPatch::get_module`] took, which the trampoline does
    /// once the patch (which may live in that module) is no longer borrowed.
    fn run(patch: Retiring<'_>) -> bool;
}

/// The `free_work` of a patch set up by `init_early::<W>`.
///
/// # Safety
///
/// Called by the workqueue with the `free_work` member of such a patch,
/// which stays valid until its module reference is given back below.
unsafe extern "C" fn free_work_trampoline<W: FreeWork>(work: *mut bindings::work_struct) {
    let offset = core::mem::offset_of!(bindings::klp_patch, free_work);
    // SAFETY: stepping back from the member gives its patch (caller's
    // contract), set up by `init_early`; it stays valid while its module
    // does, which our reference keeps until the end.
    let patch = unsafe { &*work.byte_sub(offset).cast::<Patch>() };
    let module = patch.module();
    // The free work is queued only by `Retiring::queue_free_work`, which
    // consumed the patch's one `Retiring`: hand it on.
    if W::run(Retiring(patch)) {
        // SAFETY: the reference `get_module` took for this patch, whose free
        // work runs once; `patch` is not used any more.
        unsafe { module.put() };
    }
}

impl Patch {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_patch {
        self.0.get()
    }

    /// The installed patch behind a C pointer, such as the transition
    /// patch.
    ///
    /// # Safety
    ///
    /// `patch` is NULL, or meets the type invariants for `'a`.
    pub(crate) unsafe fn from_raw<'a>(patch: *mut bindings::klp_patch) -> Option<&'a Self> {
        // SAFETY: (caller's contract).
        unsafe { patch.cast::<Patch>().as_ref() }
    }

    pub(crate) fn objects(&self) -> Objects<'_> {
        // SAFETY: set up by `init_early`; the entries are the `node` members
        // of the patch's objects, which live as long as it (invariants). The
        // list changes only under `klp_mutex`; the walkers without it (the
        // scheduler's stack check) rely on it not changing while the patch
        // is in transition.
        unsafe { CList::<Object, OBJECT_NODE>::from_raw(addr_of_mut!((*self.as_ptr()).obj_list)) }
            .iter()
    }

    pub(crate) fn funcs(&self) -> impl Iterator<Item = &Func> {
        self.objects().flat_map(Object::funcs)
    }

    pub(crate) fn enabled(&self) -> bool {
        // SAFETY: valid (invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).enabled }
    }

    pub(crate) fn set_enabled(&self, _locked: &Locked, enabled: bool) {
        // SAFETY: valid (invariant); written under `klp_mutex`, which the
        // caller holds.
        unsafe { (*self.as_ptr()).enabled = enabled };
    }

    pub(crate) fn forced(&self) -> bool {
        // SAFETY: valid (invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).forced }
    }

    pub(crate) fn set_forced(&self, _locked: &Locked) {
        // SAFETY: as in `set_enabled`.
        unsafe { (*self.as_ptr()).forced = true };
    }

    /// Takes the installed patch off the list, to free it; `None` if it
    /// is not installed (or already taken off).
    ///
    /// A patch with a function still on a stack is refused (with a
    /// warning): freeing its nops would pull them from under the handler.
    pub(crate) fn uninstall(&self, locked: &Locked) -> Option<Retiring<'_>> {
        let _ = locked;
        if crate::warn_on_once!(self.funcs().any(|func| func.patched())) {
            return None;
        }
        // SAFETY: valid (invariant); only the address is taken.
        let link = unsafe { addr_of_mut!((*self.as_ptr()).list) };
        // SAFETY: an initialised link (invariant), on the list `klp_mutex`
        // guards or empty; the lock is held.
        let installed = unsafe { (*link).next != link };
        if !installed {
            return None;
        }
        // SAFETY: as above.
        unsafe { list_del_init(link) };
        Some(Retiring(self))
    }

    /// Unlinks the functions and objects of the patch and drops the core's
    /// kobject reference to each; with `nops_only`, only the nops and the
    /// dynamic objects (`__klp_free_objects()`). The last put frees what
    /// the core made.
    ///
    /// # Safety
    ///
    /// No reference to a released function or object is used afterwards.
    pub(crate) unsafe fn release_objects(&self, _locked: &Locked, nops_only: bool) {
        for obj in self.objects() {
            for func in obj.funcs() {
                if nops_only && !func.nop() {
                    continue;
                }
                let f = func.as_ptr();
                // SAFETY: under `klp_mutex`; the iterator already stepped
                // past the function; the kobject reference is the core's,
                // and `func` is not used after it goes (our contract).
                unsafe {
                    list_del_init(addr_of_mut!((*f).node));
                    func.kobj().put();
                }
            }
            if nops_only && !obj.dynamic() {
                continue;
            }
            let o = obj.as_ptr();
            // SAFETY: as above.
            unsafe {
                list_del_init(addr_of_mut!((*o).node));
                obj.kobj().put();
            }
        }
    }

    /// Adds the patch's directory under `/sys/kernel/livepatch`.
    pub(crate) fn add_kobject(&self, _locked: &Locked) -> Result {
        // SAFETY: only the registry calls this, once per patch, under
        // `klp_mutex` before the patch is installed: no one else uses the
        // kobject yet.
        unsafe { self.kobj().add(Some(kobject::root()?), self.name()) }
    }

    /// A new object the core makes for atomic replace, named like `like`,
    /// linked into the patch (`klp_alloc_object_dynamic()`); freed on its
    /// kobject's release.
    pub(crate) fn add_dynamic_object(&self, _locked: &Locked, like: &Object) -> Result<&Object> {
        let name = like.name().map(CString::try_from).transpose()?;
        let dynamic = KBox::new(
            DynObject {
                obj: Opaque::zeroed(),
                name,
            },
            GFP_KERNEL,
        )?;
        let dynamic = KBox::into_raw(dynamic);
        // SAFETY: just allocated and all-zero (a valid `klp_object`, as
        // `kzalloc` gives C); `obj` is the first member of a `repr(C)`
        // struct, so the object is the allocation, which lives until its
        // kobject's release. The name lives in the same allocation.
        let obj = unsafe {
            let o = (*dynamic).obj.get();
            (*o).name = (*dynamic)
                .name
                .as_deref()
                .map_or(core::ptr::null(), CStr::as_char_ptr);
            (*o).dynamic = true;
            let obj = &*o.cast::<Object>();
            obj.init_early(self);
            obj
        };
        Ok(obj)
    }
}

/// A pointer to one installed patch that C may read too (the transition
/// patch, exported as `klp_transition_patch` for debuggers), written under
/// `klp_mutex`.
///
/// # Invariants
///
/// NULL, or a patch meeting the [`Patch`] invariants that stays installed
/// until the slot is cleared (under `klp_mutex`).
#[repr(transparent)]
pub(crate) struct PatchSlot(core::sync::atomic::AtomicPtr<bindings::klp_patch>);

impl PatchSlot {
    pub(crate) const fn new() -> Self {
        PatchSlot(core::sync::atomic::AtomicPtr::new(null_mut()))
    }

    /// The patch, under the lock that keeps it installed.
    pub(crate) fn get<'l>(&self, _locked: &'l Locked) -> Option<&'l Patch> {
        // SAFETY: NULL or installed until cleared under `klp_mutex`, which
        // is held for `'l` (invariant).
        unsafe { Patch::from_raw(self.0.load(CoreRelaxed)) }
    }

    /// The patch, without the lock.
    ///
    /// # Safety
    ///
    /// Something else keeps the patch from being freed for `'a` (for the
    /// transition patch: preemption stays disabled, which the transition
    /// waits out before it clears the slot and lets the patch go).
    pub(crate) unsafe fn get_unlocked<'a>(&self) -> Option<&'a Patch> {
        // SAFETY: (invariant, and the caller's contract).
        unsafe { Patch::from_raw(self.0.load(CoreRelaxed)) }
    }

    /// Whether the slot holds `patch`; only compares addresses.
    pub(crate) fn holds(&self, patch: &Patch) -> bool {
        self.0.load(CoreRelaxed) == patch.as_ptr()
    }

    pub(crate) fn set(&self, _locked: &Locked, patch: Option<&Patch>) {
        self.0
            .store(patch.map_or(null_mut(), Patch::as_ptr), CoreRelaxed);
    }
}

/// An object the core made for atomic replace: the C structure, with the
/// name it points to.
#[repr(C)]
struct DynObject {
    obj: Opaque<bindings::klp_object>,
    name: Option<CString>,
}

/// A `nop` function the core made for atomic replace, with its name.
#[repr(C)]
struct NopFunc {
    func: Opaque<bindings::klp_func>,
    old_name: CString,
}

impl Object {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_object {
        self.0.get()
    }

    /// `INIT_LIST_HEAD(&obj->func_list)`, its kobject, and its link into
    /// `patch` (`klp_init_object_early()`).
    ///
    /// # Safety
    ///
    /// The object is fresh: its core-owned members are not initialised,
    /// and it belongs to `patch`, which no one else uses meanwhile.
    unsafe fn init_early(&self, patch: &Patch) {
        let o = self.as_ptr();
        // SAFETY: fresh (caller's contract); the object lives until its
        // kobject's release, as its patch does or, if dynamic, because only
        // that release frees it.
        unsafe {
            list_init(addr_of_mut!((*o).func_list));
            Kobject::init(NonNull::from(self), &kobject::OBJECT_KTYPE);
            list_add_tail(
                addr_of_mut!((*o).node),
                addr_of_mut!((*patch.as_ptr()).obj_list),
            );
        }
    }

    pub(crate) fn funcs(&self) -> Funcs<'_> {
        // SAFETY: as for `Patch::objects`, with `klp_func::node`.
        unsafe { CList::<Func, FUNC_NODE>::from_raw(addr_of_mut!((*self.as_ptr()).func_list)) }
            .iter()
    }

    pub(crate) fn patched(&self) -> bool {
        // SAFETY: valid (invariant); written under `klp_mutex`, but the
        // stack checks of `__schedule()` read it without, hence volatile.
        unsafe { core::ptr::read_volatile(addr_of_mut!((*self.as_ptr()).patched)) }
    }

    pub(crate) fn set_patched(&self, _locked: &Locked, patched: bool) {
        // SAFETY: valid (invariant); the caller holds `klp_mutex`.
        unsafe { core::ptr::write_volatile(addr_of_mut!((*self.as_ptr()).patched), patched) };
    }

    pub(crate) fn dynamic(&self) -> bool {
        // SAFETY: valid (invariant); fixed when the object is made.
        unsafe { (*self.as_ptr()).dynamic }
    }

    /// `klp_is_object_loaded()`: vmlinux, or a module that is present.
    pub(crate) fn is_loaded(&self) -> bool {
        // SAFETY: valid (invariant); `mod` changes under `klp_mutex`.
        unsafe { (*self.as_ptr()).name.is_null() || !(*self.as_ptr()).mod_.is_null() }
    }

    pub(crate) fn set_module(&self, _locked: &Locked, module: Option<ModRef>) {
        let module = module.map_or(null_mut(), ModRef::as_ptr);
        // SAFETY: valid (invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).mod_ = module };
    }

    /// Resets what the core keeps in an object before it is installed.
    pub(crate) fn reset(&self, locked: &Locked) {
        self.set_patched(locked, false);
        self.set_module(locked, None);
    }

    /// Adds the object's directory under its patch's.
    pub(crate) fn add_kobject(&self, _locked: &Locked, patch: &Patch) -> Result {
        // SAFETY: as in `Patch::add_kobject`: once per object, while the
        // registry sets its patch up.
        unsafe { self.kobj().add(Some(patch.kobj()), self.display_name()) }
    }

    /// A `nop` of this object for the function `like`, linked into it
    /// (`klp_alloc_func_nop()`); freed on its kobject's release. Its
    /// replacement is the old code, set once the object is loaded.
    pub(crate) fn add_nop(&self, _locked: &Locked, like: &Func) -> Result<&Func> {
        let nop = KBox::new(
            NopFunc {
                func: Opaque::zeroed(),
                old_name: CString::try_from(like.old_name())?,
            },
            GFP_KERNEL,
        )?;
        let nop = KBox::into_raw(nop);
        // SAFETY: just allocated and all-zero, as in `add_dynamic_object`.
        let func = unsafe {
            let f = (*nop).func.get();
            (*f).old_name = (*nop).old_name.as_char_ptr();
            (*f).old_sympos = like.old_sympos() as c_ulong;
            (*f).nop = true;
            let func = &*f.cast::<Func>();
            func.init_early(self);
            func
        };
        Ok(func)
    }

    /// Runs the pre-patch callback, if any, and records whether the
    /// post-unpatch one may run (`klp_pre_patch_callback()`).
    pub(crate) fn pre_patch_callback(&self, _locked: &Locked) -> Result {
        let obj = self.as_ptr();
        // SAFETY: valid (invariant); the callback is the module's, which is
        // live while its patch is, and takes the object; the flag is written
        // under `klp_mutex`, which the caller holds.
        let ret = unsafe {
            let ret = match (*obj).callbacks.pre_patch {
                Some(cb) => cb(obj),
                None => 0,
            };
            (*obj).callbacks.post_unpatch_enabled = ret == 0;
            ret
        };
        to_result(ret)
    }

    /// Runs the post-patch callback, if any.
    pub(crate) fn post_patch_callback(&self, _locked: &Locked) {
        let obj = self.as_ptr();
        // SAFETY: as in `pre_patch_callback`.
        unsafe {
            if let Some(cb) = (*obj).callbacks.post_patch {
                cb(obj)
            }
        }
    }

    /// Runs the pre-unpatch callback, if any.
    pub(crate) fn pre_unpatch_callback(&self, _locked: &Locked) {
        let obj = self.as_ptr();
        // SAFETY: as in `pre_patch_callback`.
        unsafe {
            if let Some(cb) = (*obj).callbacks.pre_unpatch {
                cb(obj)
            }
        }
    }

    /// Runs the post-unpatch callback if the pre-patch one succeeded, then
    /// forgets that it did (`klp_post_unpatch_callback()`).
    pub(crate) fn post_unpatch_callback(&self, _locked: &Locked) {
        let obj = self.as_ptr();
        // SAFETY: as in `pre_patch_callback`.
        unsafe {
            if (*obj).callbacks.post_unpatch_enabled {
                if let Some(cb) = (*obj).callbacks.post_unpatch {
                    cb(obj)
                }
            }
            (*obj).callbacks.post_unpatch_enabled = false;
        }
    }
}

impl Func {
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_func {
        self.0.get()
    }

    /// Its kobject, its link into `obj` (`klp_init_func_early()`), and
    /// what `klp_init_func()` resets: an empty stack link, not patched, not
    /// in transition.
    ///
    /// # Safety
    ///
    /// As for [`Object::init_early`], with `obj` for the patch.
    unsafe fn init_early(&self, obj: &Object) {
        let f = self.as_ptr();
        // SAFETY: fresh (caller's contract): on no stack, unseen by the
        // handler; alive until its kobject's release, as for objects.
        unsafe {
            list_init(addr_of_mut!((*f).stack_node));
            (*f).patched = false;
            (*f).transition = false;
            Kobject::init(NonNull::from(self), &kobject::FUNC_KTYPE);
            list_add_tail(
                addr_of_mut!((*f).node),
                addr_of_mut!((*obj.as_ptr()).func_list),
            );
        }
    }

    /// Adds the function's `<function,sympos>` directory under its object's.
    pub(crate) fn add_kobject(&self, _locked: &Locked, obj: &Object) -> Result {
        // `<function,sympos>`, with the name's bytes as they are, as C's
        // "%s,%lu" makes it.
        let mut name = KVec::new();
        name.extend_from_slice(self.old_name().to_bytes(), GFP_KERNEL)?;
        let sympos = CString::try_from_fmt(fmt!(",{}", self.shown_sympos()))?;
        name.extend_from_slice(sympos.to_bytes_with_nul(), GFP_KERNEL)?;
        let name = CStr::from_bytes_with_nul(&name).map_err(|_| EINVAL)?;
        // SAFETY: as in `Object::add_kobject`, one level down.
        unsafe { self.kobj().add(Some(obj.kobj()), name) }
    }

    /// The patched function's address.
    pub(crate) fn old_func(&self) -> usize {
        // SAFETY: valid (invariant); resolved before patching.
        unsafe { (*self.as_ptr()).old_func as usize }
    }

    pub(crate) fn old_size(&self) -> usize {
        // SAFETY: as `old_func`.
        unsafe { (*self.as_ptr()).old_size }
    }

    pub(crate) fn new_size(&self) -> usize {
        // SAFETY: as `old_func`.
        unsafe { (*self.as_ptr()).new_size }
    }

    pub(crate) fn nop(&self) -> bool {
        // SAFETY: valid (invariant); fixed when the function is made.
        unsafe { (*self.as_ptr()).nop }
    }

    pub(crate) fn patched(&self) -> bool {
        // SAFETY: valid (invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).patched }
    }

    /// Sets `patched`, which says whether the function is on a
    /// `func_stack`: only the stacks' code, which `_stacks` stands for, may.
    pub(crate) fn set_patched(&self, _stacks: &StackWriter, _locked: &Locked, patched: bool) {
        // SAFETY: valid (invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).patched = patched };
    }

    /// `func->transition`, which the ftrace handler reads on other CPUs
    /// while the core writes it: a C field shared through the kernel's
    /// atomics.
    #[inline(always)]
    fn transition_cell(&self) -> &Atomic<bool> {
        // SAFETY: valid (invariant), aligned, and accessed only atomically
        // (by us and by C readers of the same type).
        unsafe { Atomic::from_ptr(addr_of_mut!((*self.as_ptr()).transition)) }
    }

    /// `func->transition`, as the ftrace handler reads it.
    #[inline(always)]
    pub(crate) fn in_transition(&self) -> bool {
        self.transition_cell().load(Relaxed)
    }

    pub(crate) fn set_transition(&self, _locked: &Locked, transition: bool) {
        self.transition_cell().store(transition, Relaxed)
    }

    /// Records where the old code and its replacement are.
    pub(crate) fn set_addresses(
        &self,
        _locked: &Locked,
        old_func: usize,
        old_size: usize,
        new_func: usize,
        new_size: usize,
    ) -> Result {
        // The stacks are found by `old_func`: never change it under them.
        if crate::warn_on_once!(self.patched()) {
            return Err(EINVAL);
        }
        // SAFETY: valid (invariant); the caller holds `klp_mutex` and the
        // function is not patched, so the handler does not read these.
        unsafe {
            let func = self.as_ptr();
            (*func).old_func = old_func as *mut c_void;
            (*func).old_size = old_size as c_ulong;
            (*func).new_func = new_func as *mut c_void;
            (*func).new_size = new_size as c_ulong;
        }
        Ok(())
    }

    /// Forgets the addresses in an object that went away
    /// (`klp_free_object_loaded()`); a nop's replacement was the old code.
    pub(crate) fn forget_old(&self, _locked: &Locked) {
        if crate::warn_on_once!(self.patched()) {
            return;
        }
        // SAFETY: as in `set_addresses`.
        unsafe {
            let func = self.as_ptr();
            (*func).old_func = null_mut();
            if (*func).nop {
                (*func).new_func = null_mut();
            }
        }
    }

    /// The `stack_node` that links the function into its `func_stack`.
    pub(crate) fn stack_node(&self) -> *mut bindings::list_head {
        // SAFETY: valid (invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).stack_node) }
    }

    /// The function whose `stack_node` is `node`.
    ///
    /// # Safety
    ///
    /// `node` is the `stack_node` of a function meeting the invariants for
    /// `'a`.
    #[inline(always)]
    pub(crate) unsafe fn from_stack_node<'a>(node: *mut bindings::list_head) -> &'a Self {
        let offset = core::mem::offset_of!(bindings::klp_func, stack_node);
        // SAFETY: `node` is that member (caller's contract), so stepping
        // back by its offset gives the live function.
        unsafe { &*node.byte_sub(offset).cast::<Func>() }
    }
}

/// Stands for the `func_stack` code, the only writer of a function's
/// `patched` flag: with it, "not patched" means "on no stack".
pub(crate) struct StackWriter(());

impl StackWriter {
    /// # Safety
    ///
    /// Only `crate::func_stack` makes one, and it sets `patched` exactly
    /// when it links a function into a stack or unlinks it.
    pub(crate) const unsafe fn new() -> Self {
        StackWriter(())
    }
}

impl State {
    /// The pointer handed back to C.
    pub(crate) fn as_ptr(&self) -> *mut bindings::klp_state {
        self.0.get()
    }
}

/// Frees a dynamic object on its kobject's release.
///
/// # Safety
///
/// `obj` is an object whose last kobject reference was just dropped.
unsafe fn release_object(obj: *mut bindings::klp_object) {
    // SAFETY: valid until we return (caller's contract).
    if unsafe { (*obj).dynamic } {
        // SAFETY: dynamic objects are made only by `add_dynamic_object`,
        // from a `KBox<DynObject>` whose first member is the object;
        // nothing uses it any more.
        drop(unsafe { KBox::from_raw(obj.cast::<DynObject>()) });
    }
}

/// Frees a nop on its kobject's release.
///
/// # Safety
///
/// `func` is a function whose last kobject reference was just dropped.
unsafe fn release_func(func: *mut bindings::klp_func) {
    // SAFETY: valid until we return (caller's contract).
    if unsafe { (*func).nop } {
        // SAFETY: nops are made only by `add_nop`, from a `KBox<NopFunc>`.
        drop(unsafe { KBox::from_raw(func.cast::<NopFunc>()) });
    }
}

/// Signals the patch's completion on its kobject's release.
///
/// # Safety
///
/// `patch` is a patch set up by `init_early` whose last kobject reference
/// was just dropped.
unsafe fn release_patch(patch: *mut bindings::klp_patch) {
    // SAFETY: initialised by `init_early` (caller's contract).
    unsafe { bindings::complete(addr_of_mut!((*patch).finish)) };
}

/// `WARN_ON_ONCE(cond)`: one report per call site; evaluates to `cond`.
#[macro_export]
macro_rules! warn_on_once {
    ($cond:expr) => {{
        let cond = $cond;
        if cond {
            kernel::warn_flags!(
                file!(),
                kernel::bindings::BUGFLAG_ONCE
                    | kernel::bug::bugflag_taint(kernel::bindings::TAINT_WARN)
            );
        }
        cond
    }};
}
