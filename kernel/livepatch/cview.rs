// SPDX-License-Identifier: GPL-2.0

//! Thin views of the C structures a livepatch module hands in (`klp_patch`,
//! `klp_object`, `klp_func`, `klp_state`), the C lists that link them, and
//! C-only logging. Every `unsafe` of the crate that concerns those lives
//! here, with the contract it relies on.

use core::ptr::{addr_of_mut, null_mut, NonNull};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::ffi::{c_int, c_ulong, c_void};

use kernel::bindings;
use kernel::str::CStrExt;

use crate::modules::ModRef;
use crate::state_rules::StateVersion;

/// The installed patches, in install order. The iterator reads an entry's
/// successor before yielding it, so the caller may unlink the patch it was
/// given.
///
/// # Safety
///
/// `head` is the initialised head of a list of installed patches, linked
/// through their `list` members, and the caller holds the lock that guards
/// it (`klp_mutex`) for as long as it uses the iterator and the patches it
/// yields.
pub(crate) unsafe fn installed_patches(head: *mut bindings::list_head) -> Patches {
    // SAFETY: the caller's contract.
    Patches(unsafe { ListIter::new(head, core::mem::offset_of!(bindings::klp_patch, list)) })
}

/// Iterator over the installed patches (a named type: the symbols of
/// closure-based iterator chains grow past what kallsyms takes).
pub(crate) struct Patches(ListIter<bindings::klp_patch>);

impl Iterator for Patches {
    type Item = PatchRef;

    fn next(&mut self) -> Option<PatchRef> {
        self.0.next().map(PatchRef)
    }
}

/// `INIT_LIST_HEAD()`.
///
/// # Safety
///
/// `head` is valid for writes and on no list, or the list it heads is
/// being thrown away.
pub(crate) unsafe fn list_init(head: *mut bindings::list_head) {
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
/// valid and only changed by the caller meanwhile (it holds the lock that
/// guards the list).
pub(crate) unsafe fn list_add_tail(new: *mut bindings::list_head, head: *mut bindings::list_head) {
    // SAFETY: valid and exclusively ours (caller's contract).
    unsafe {
        let prev = (*head).prev;
        (*new).next = head;
        (*new).prev = prev;
        (*prev).next = new;
        (*head).prev = new;
    }
}

/// `list_del_init()`: unlinks `entry`, which then reads as an empty list.
///
/// # Safety
///
/// `entry` is on a list (or empty), valid, and the caller holds the lock
/// that guards that list.
pub(crate) unsafe fn list_del_init(entry: *mut bindings::list_head) {
    // SAFETY: valid and exclusively ours (caller's contract).
    unsafe {
        let next = (*entry).next;
        let prev = (*entry).prev;
        (*next).prev = prev;
        (*prev).next = next;
        list_init(entry);
    }
}

/// `list_empty()`.
///
/// # Safety
///
/// `head` is an initialised list head or entry, valid, guarded by a lock
/// the caller holds.
pub(crate) unsafe fn list_is_empty(head: *mut bindings::list_head) -> bool {
    // SAFETY: valid (caller's contract).
    unsafe { (*head).next == head }
}

/// The states a patch carries, with pointers for handing back to C.
///
/// # Safety
///
/// `patch` points to a `struct klp_patch` that stays valid while the iterator
/// is used; its `states` is NULL or an array ended by an entry whose id is 0,
/// as `livepatch.h` requires of every livepatch module.
pub(crate) unsafe fn states(
    patch: *mut bindings::klp_patch,
) -> impl Iterator<Item = (StateVersion, *mut bindings::klp_state)> {
    // SAFETY: `patch` is valid (caller's contract).
    let mut cur = unsafe { (*patch).states };
    core::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        // SAFETY: `cur` is within the states array and not past its end
        // marker: we stop at the entry with id 0 and never step beyond it.
        let state = unsafe { &*cur };
        if state.id == 0 {
            return None;
        }
        let found = (
            StateVersion {
                id: state.id as u64,
                version: state.version,
            },
            cur,
        );
        // SAFETY: `cur` is not the end marker, so the next entry exists.
        cur = unsafe { cur.add(1) };
        Some(found)
    })
}

/// Looks `id` up among the states of `patch`.
///
/// # Safety
///
/// As for [`states`].
pub(crate) unsafe fn find_state(
    patch: *mut bindings::klp_patch,
    id: c_ulong,
) -> Option<(StateVersion, *mut bindings::klp_state)> {
    // SAFETY: forwarded from the caller.
    unsafe { states(patch) }.find(|(state, _)| state.id == id as u64)
}

/// Logs a failed shadow constructor with the pointer hashed as C's `%p` does
/// (Rust's `{:p}` would print the raw kernel address).
pub(crate) fn log_shadow_ctor_failure(obj: *mut c_void, id: c_ulong, err: c_int) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed, never dereferenced), %lx an unsigned long,
    // %d an int.
    unsafe {
        bindings::_printk(
            c"\x013livepatch: Failed to construct shadow variable <%p, %lx> (%d)\n".as_char_ptr(),
            obj,
            id,
            err,
        )
    };
}

/// `WARN(1, "Duplicate shadow variable <%p, %lx>\n", obj, id)` as upstream:
/// the message inside the cut-here block, the pointer hashed.
pub(crate) fn warn_shadow_duplicate(obj: *mut c_void, id: c_ulong) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed), %lx an unsigned long.
    unsafe {
        bindings::__warn_printk(
            c"Duplicate shadow variable <%p, %lx>\n".as_char_ptr(),
            obj,
            id,
        )
    };
    kernel::warn_flags!(
        file!(),
        bindings::BUGFLAG_NO_CUT_HERE | kernel::bug::bugflag_taint(bindings::TAINT_WARN)
    );
}

/// A null `klp_state` pointer, the "not found" answer to C.
pub(crate) const NO_STATE: *mut bindings::klp_state = null_mut();

/// Walks a C `list_head` whose entries are the member at `offset` of `T`.
/// An entry's successor is read before the entry is yielded, so the caller
/// may unlink (or free) the entry it was given.
pub(crate) struct ListIter<T> {
    head: *mut bindings::list_head,
    pos: *mut bindings::list_head,
    offset: usize,
    _entries: core::marker::PhantomData<T>,
}

impl<T> ListIter<T> {
    /// # Safety
    ///
    /// `head` is a valid list head whose entries are such members of live
    /// `T`s, and the list changes only through the iterator's user while it
    /// is used.
    unsafe fn new(head: *mut bindings::list_head, offset: usize) -> Self {
        // SAFETY: valid head (caller's contract).
        let pos = unsafe { (*head).next };
        ListIter {
            head,
            pos,
            offset,
            _entries: core::marker::PhantomData,
        }
    }
}

impl<T> Iterator for ListIter<T> {
    type Item = NonNull<T>;

    fn next(&mut self) -> Option<NonNull<T>> {
        if self.pos == self.head {
            return None;
        }
        // SAFETY: `pos` is an entry, the member at `offset` of a live `T`
        // (invariant of `new`); its `next` is valid for the same reason.
        unsafe {
            let entry = NonNull::new_unchecked(self.pos.byte_sub(self.offset).cast::<T>());
            self.pos = (*self.pos).next;
            Some(entry)
        }
    }
}

/// A patch a livepatch module handed in.
///
/// # Invariants
///
/// Points to a registered `struct klp_patch`; its object and function lists
/// change only under `klp_mutex`, which every holder of a `PatchRef` holds,
/// or it is the transition patch, which stays until the transition ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PatchRef(NonNull<bindings::klp_patch>);

/// An object of a [`PatchRef`]; same invariant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjRef(NonNull<bindings::klp_object>);

/// A function of an [`ObjRef`]; same invariant. Its `transition`,
/// `patched` and stack links are shared with the ftrace handler.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct FuncRef(NonNull<bindings::klp_func>);

/// Iterator over a patch's objects.
pub(crate) struct Objects(ListIter<bindings::klp_object>);

impl Iterator for Objects {
    type Item = ObjRef;

    fn next(&mut self) -> Option<ObjRef> {
        self.0.next().map(ObjRef)
    }
}

/// Iterator over an object's functions.
pub(crate) struct Funcs(ListIter<bindings::klp_func>);

impl Iterator for Funcs {
    type Item = FuncRef;

    fn next(&mut self) -> Option<FuncRef> {
        self.0.next().map(FuncRef)
    }
}

impl PatchRef {
    /// # Safety
    ///
    /// `patch` is NULL or satisfies the type invariant while the result is
    /// used.
    pub(crate) unsafe fn from_raw(patch: *mut bindings::klp_patch) -> Option<Self> {
        NonNull::new(patch).map(PatchRef)
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::klp_patch {
        self.0.as_ptr()
    }

    pub(crate) fn objects(self) -> Objects {
        // SAFETY: the list is stable (type invariant); its entries are the
        // `node` members of the patch's objects.
        Objects(unsafe {
            ListIter::new(
                addr_of_mut!((*self.as_ptr()).obj_list),
                core::mem::offset_of!(bindings::klp_object, node),
            )
        })
    }

    pub(crate) fn funcs(self) -> impl Iterator<Item = FuncRef> {
        self.objects().flat_map(ObjRef::funcs)
    }

    /// The livepatch module's name, for log lines.
    pub(crate) fn name(&self) -> &kernel::str::CStr {
        // SAFETY: valid (type invariant); its module outlives it, so the
        // name lives as long as this handle's borrow.
        unsafe { kernel::loaded_module::LoadedModule::from_raw((*self.as_ptr()).mod_) }.name()
    }

    pub(crate) fn enabled(self) -> bool {
        // SAFETY: valid (type invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).enabled }
    }

    pub(crate) fn set_enabled(self, enabled: bool) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).enabled = enabled };
    }

    pub(crate) fn replace(self) -> bool {
        // SAFETY: valid (type invariant); set by the module, never changed.
        unsafe { (*self.as_ptr()).replace }
    }

    pub(crate) fn set_forced(self) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).forced = true };
    }
}

impl ObjRef {
    /// # Safety
    ///
    /// `obj` is not NULL and satisfies the type invariant while the result
    /// is used.
    pub(crate) unsafe fn from_raw(obj: *mut bindings::klp_object) -> Self {
        // SAFETY: not NULL (caller's contract).
        ObjRef(unsafe { NonNull::new_unchecked(obj) })
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::klp_object {
        self.0.as_ptr()
    }

    pub(crate) fn funcs(self) -> Funcs {
        // SAFETY: as for `PatchRef::objects`, with `klp_func::node`.
        Funcs(unsafe {
            ListIter::new(
                addr_of_mut!((*self.as_ptr()).func_list),
                core::mem::offset_of!(bindings::klp_func, node),
            )
        })
    }

    pub(crate) fn patched(self) -> bool {
        // SAFETY: valid (type invariant); written under `klp_mutex`, but the
        // stack checks of `__schedule()` read it without, hence volatile.
        unsafe { core::ptr::read_volatile(addr_of_mut!((*self.as_ptr()).patched)) }
    }

    pub(crate) fn set_patched(self, patched: bool) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex`.
        unsafe { core::ptr::write_volatile(addr_of_mut!((*self.as_ptr()).patched), patched) };
    }

    pub(crate) fn dynamic(self) -> bool {
        // SAFETY: valid (type invariant); fixed when the object is made.
        unsafe { (*self.as_ptr()).dynamic }
    }

    /// `klp_is_object_loaded()`: vmlinux, or a module that is present.
    pub(crate) fn is_loaded(self) -> bool {
        // SAFETY: valid (type invariant); `mod` changes under `klp_mutex`.
        unsafe { (*self.as_ptr()).name.is_null() || !(*self.as_ptr()).mod_.is_null() }
    }

    /// Runs the object's post-patch callback, if any.
    pub(crate) fn post_patch_callback(self) {
        let obj = self.as_ptr();
        // SAFETY: valid (type invariant); the callback is the module's, which
        // is live while its patch is, and takes the object.
        unsafe {
            if let Some(cb) = (*obj).callbacks.post_patch {
                cb(obj)
            }
        }
    }

    /// Runs the post-unpatch callback if the pre-patch one succeeded, then
    /// forgets that it did (`klp_post_unpatch_callback()`).
    pub(crate) fn post_unpatch_callback(self) {
        let obj = self.as_ptr();
        // SAFETY: as in `post_patch_callback`; the flag is written under
        // `klp_mutex`, which the caller holds.
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

impl FuncRef {
    pub(crate) fn as_ptr(self) -> *mut bindings::klp_func {
        self.0.as_ptr()
    }

    /// The patched function's address.
    pub(crate) fn old_func(self) -> usize {
        // SAFETY: valid (type invariant); resolved before patching.
        unsafe { (*self.as_ptr()).old_func as usize }
    }

    pub(crate) fn old_size(self) -> usize {
        // SAFETY: as `old_func`.
        unsafe { (*self.as_ptr()).old_size }
    }

    pub(crate) fn new_func(self) -> usize {
        // SAFETY: valid (type invariant); set by the module.
        unsafe { (*self.as_ptr()).new_func as usize }
    }

    pub(crate) fn new_size(self) -> usize {
        // SAFETY: as `old_func`.
        unsafe { (*self.as_ptr()).new_size }
    }

    /// The name of the patched function. `klp_enable_patch()` refuses a
    /// function without one (and a nop copies its name), so an empty name
    /// only shows up in the refusal path's own messages.
    pub(crate) fn old_name(self) -> &'static kernel::str::CStr {
        self.old_name_checked().unwrap_or(c"")
    }

    pub(crate) fn nop(self) -> bool {
        // SAFETY: valid (type invariant); fixed when the function is made.
        unsafe { (*self.as_ptr()).nop }
    }

    pub(crate) fn patched(self) -> bool {
        // SAFETY: valid (type invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).patched }
    }

    pub(crate) fn set_patched(self, patched: bool) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).patched = patched };
    }

    fn transition_cell(self) -> &'static AtomicBool {
        // SAFETY: valid (type invariant); `transition` is a bool the ftrace
        // handler reads on other CPUs while it is written, hence atomic.
        unsafe { AtomicBool::from_ptr(addr_of_mut!((*self.as_ptr()).transition)) }
    }

    /// `func->transition`, as the ftrace handler reads it.
    #[inline(always)]
    pub(crate) fn in_transition(self) -> bool {
        self.transition_cell().load(Relaxed)
    }

    pub(crate) fn set_transition(self, transition: bool) {
        self.transition_cell().store(transition, Relaxed)
    }

    /// The `stack_node` that links the function into its `func_stack`.
    pub(crate) fn stack_node(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).stack_node) }
    }

    /// The function whose `stack_node` is `node`.
    ///
    /// # Safety
    ///
    /// `node` is the `stack_node` of a function satisfying the invariant.
    #[inline(always)]
    pub(crate) unsafe fn from_stack_node(node: *mut bindings::list_head) -> Self {
        let offset = core::mem::offset_of!(bindings::klp_func, stack_node);
        // SAFETY: `node` is that member (caller's contract), so stepping
        // back by its offset gives the live function.
        FuncRef(unsafe { NonNull::new_unchecked(node.byte_sub(offset).cast()) })
    }
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

/// The part of a `struct kobject` embedded in a patch, object or function:
/// where it lives, for the sysfs code.
pub(crate) type KobjPtr = *mut bindings::kobject;

impl PatchRef {
    /// The patch whose `kobj` is `kobj`.
    ///
    /// # Safety
    ///
    /// `kobj` is the `kobj` member of a patch satisfying the type invariant
    /// (sysfs passes only those to the patch's attributes and release).
    pub(crate) unsafe fn from_kobj(kobj: KobjPtr) -> Self {
        let offset = core::mem::offset_of!(bindings::klp_patch, kobj);
        // SAFETY: stepping back from the member gives its live patch.
        PatchRef(unsafe { NonNull::new_unchecked(kobj.byte_sub(offset).cast()) })
    }

    /// The patch whose `free_work` is `work`.
    ///
    /// # Safety
    ///
    /// `work` is the `free_work` member of a patch satisfying the invariant.
    pub(crate) unsafe fn from_free_work(work: *mut bindings::work_struct) -> Self {
        let offset = core::mem::offset_of!(bindings::klp_patch, free_work);
        // SAFETY: stepping back from the member gives its live patch.
        PatchRef(unsafe { NonNull::new_unchecked(work.byte_sub(offset).cast()) })
    }

    /// The livepatch module the patch belongs to.
    pub(crate) fn module(self) -> ModRef {
        // SAFETY: valid (type invariant); `klp_enable_patch` checked that
        // `mod` is set, and the module outlives its patch.
        unsafe { ModRef::from_raw((*self.as_ptr()).mod_).unwrap_unchecked() }
    }

    pub(crate) fn forced(self) -> bool {
        // SAFETY: valid (type invariant); written under `klp_mutex`.
        unsafe { (*self.as_ptr()).forced }
    }

    pub(crate) fn kobj(self) -> KobjPtr {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).kobj) }
    }

    /// The patch's link in the list of installed patches.
    pub(crate) fn list_node(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).list) }
    }

    pub(crate) fn obj_list(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).obj_list) }
    }

    pub(crate) fn free_work(self) -> *mut bindings::work_struct {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).free_work) }
    }

    pub(crate) fn finish(self) -> *mut bindings::completion {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).finish) }
    }

    /// Resets the flags the core keeps in a patch before it is installed.
    pub(crate) fn reset_flags(self) {
        // SAFETY: valid (type invariant); not yet visible to anyone else.
        unsafe {
            (*self.as_ptr()).enabled = false;
            (*self.as_ptr()).forced = false;
        }
    }

    /// The objects of the module's static `objs` array (ended by an entry
    /// with neither `funcs` nor `name`, as upstream's
    /// `klp_for_each_object_static`), as opposed to [`PatchRef::objects`],
    /// the list the core builds from them plus the dynamic ones. An object
    /// without `funcs` is yielded: [`ObjRef::has_funcs`] tells.
    pub(crate) fn static_objects(self) -> impl Iterator<Item = ObjRef> {
        // SAFETY: valid (type invariant).
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
            Some(unsafe { ObjRef::from_raw(obj) })
        })
    }
}

impl ObjRef {
    /// The object whose `kobj` is `kobj`.
    ///
    /// # Safety
    ///
    /// `kobj` is the `kobj` member of an object satisfying the invariant.
    pub(crate) unsafe fn from_kobj(kobj: KobjPtr) -> Self {
        let offset = core::mem::offset_of!(bindings::klp_object, kobj);
        // SAFETY: stepping back from the member gives its live object.
        ObjRef(unsafe { NonNull::new_unchecked(kobj.byte_sub(offset).cast()) })
    }

    /// The module name, or `None` for vmlinux.
    pub(crate) fn name(self) -> Option<&'static kernel::str::CStr> {
        // SAFETY: valid (type invariant); a set name is a NUL-terminated
        // string in the livepatch module (or the dynamic object's copy),
        // which lives as long as the object.
        unsafe {
            let name = (*self.as_ptr()).name;
            (!name.is_null()).then(|| kernel::str::CStr::from_char_ptr(name))
        }
    }

    /// `klp_is_module()`.
    pub(crate) fn is_module(self) -> bool {
        self.name().is_some()
    }

    /// The name as sysfs and the log lines show it.
    pub(crate) fn display_name(self) -> &'static kernel::str::CStr {
        self.name().unwrap_or(c"vmlinux")
    }

    /// Whether `other` names the same object (vmlinux, or the same module).
    pub(crate) fn same_object(self, other: ObjRef) -> bool {
        self.name() == other.name()
    }

    pub(crate) fn set_module(self, module: Option<ModRef>) {
        let module = module.map_or(null_mut(), ModRef::as_ptr);
        // SAFETY: valid (type invariant); the caller holds `klp_mutex`.
        unsafe { (*self.as_ptr()).mod_ = module };
    }

    pub(crate) fn kobj(self) -> KobjPtr {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).kobj) }
    }

    pub(crate) fn node(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).node) }
    }

    pub(crate) fn func_list(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).func_list) }
    }

    /// Whether the object has a static `funcs` array (a module's object
    /// without one is refused).
    pub(crate) fn has_funcs(self) -> bool {
        // SAFETY: valid (type invariant).
        unsafe { !(*self.as_ptr()).funcs.is_null() }
    }

    /// The functions of the module's static `funcs` array, which ends with
    /// an entry that has neither `old_name`, `new_func` nor `old_sympos`.
    pub(crate) fn static_funcs(self) -> impl Iterator<Item = FuncRef> {
        // SAFETY: valid (type invariant).
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
            Some(FuncRef(unsafe { NonNull::new_unchecked(func) }))
        })
    }

    /// Resets what the core keeps in an object before it is installed.
    pub(crate) fn reset(self) {
        self.set_patched(false);
        self.set_module(None);
    }

    /// Marks a core-made object for freeing on release.
    pub(crate) fn set_dynamic(self) {
        // SAFETY: valid (type invariant); not yet visible to anyone else.
        unsafe { (*self.as_ptr()).dynamic = true };
    }

    /// Runs the pre-patch callback, if any, and records whether the
    /// post-unpatch one may run (`klp_pre_patch_callback()`).
    pub(crate) fn pre_patch_callback(self) -> kernel::error::Result {
        let obj = self.as_ptr();
        // SAFETY: as in `post_patch_callback`; the flag is written under
        // `klp_mutex`, which the caller holds.
        let ret = unsafe {
            let ret = match (*obj).callbacks.pre_patch {
                Some(cb) => cb(obj),
                None => 0,
            };
            (*obj).callbacks.post_unpatch_enabled = ret == 0;
            ret
        };
        kernel::error::to_result(ret)
    }

    /// Runs the pre-unpatch callback, if any.
    pub(crate) fn pre_unpatch_callback(self) {
        let obj = self.as_ptr();
        // SAFETY: as in `post_patch_callback`.
        unsafe {
            if let Some(cb) = (*obj).callbacks.pre_unpatch {
                cb(obj)
            }
        }
    }
}

impl FuncRef {
    /// # Safety
    ///
    /// `func` satisfies the type invariant while the result is used.
    pub(crate) unsafe fn from_raw(func: *mut bindings::klp_func) -> Self {
        // SAFETY: never NULL (caller's contract).
        FuncRef(unsafe { NonNull::new_unchecked(func) })
    }

    /// The function whose `kobj` is `kobj`.
    ///
    /// # Safety
    ///
    /// `kobj` is the `kobj` member of a function satisfying the invariant.
    pub(crate) unsafe fn from_kobj(kobj: KobjPtr) -> Self {
        let offset = core::mem::offset_of!(bindings::klp_func, kobj);
        // SAFETY: stepping back from the member gives its live function.
        FuncRef(unsafe { NonNull::new_unchecked(kobj.byte_sub(offset).cast()) })
    }

    /// `old_name`, which a module may have left NULL (refused on enable).
    pub(crate) fn old_name_checked(self) -> Option<&'static kernel::str::CStr> {
        // SAFETY: valid (type invariant); a set name is NUL-terminated and
        // lives in the module with the patch.
        unsafe {
            let name = (*self.as_ptr()).old_name;
            (!name.is_null()).then(|| kernel::str::CStr::from_char_ptr(name))
        }
    }

    pub(crate) fn old_sympos(self) -> u64 {
        // SAFETY: valid (type invariant); set by the module.
        unsafe { (*self.as_ptr()).old_sympos as u64 }
    }

    /// The position as the sysfs name shows it: 0 ("unique") is the first.
    pub(crate) fn shown_sympos(self) -> u64 {
        self.old_sympos().max(1)
    }

    /// Whether `other` names the same symbol: the same name and position,
    /// where positions 0 and 1 both mean the first (`klp_find_func()`).
    pub(crate) fn same_symbol(self, other: FuncRef) -> bool {
        self.old_name_checked() == other.old_name_checked()
            && self.shown_sympos() == other.shown_sympos()
    }

    /// Records where the old code and its replacement are.
    pub(crate) fn set_addresses(
        self,
        old_func: usize,
        old_size: usize,
        new_func: usize,
        new_size: usize,
    ) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex` and
        // the function is not patched, so the handler does not read these.
        unsafe {
            let func = self.as_ptr();
            (*func).old_func = old_func as *mut c_void;
            (*func).old_size = old_size as c_ulong;
            (*func).new_func = new_func as *mut c_void;
            (*func).new_size = new_size as c_ulong;
        }
    }

    /// Forgets the addresses in an object that went away
    /// (`klp_free_object_loaded()`); a nop's replacement was the old code.
    pub(crate) fn forget_old(self) {
        // SAFETY: valid (type invariant); the caller holds `klp_mutex` and
        // the function is not patched.
        unsafe {
            let func = self.as_ptr();
            (*func).old_func = null_mut();
            if (*func).nop {
                (*func).new_func = null_mut();
            }
        }
    }

    /// Resets what the core keeps in a function before it is installed.
    pub(crate) fn reset(self) {
        // SAFETY: `stack_node` is ours to initialise; on no stack yet.
        unsafe { list_init(self.stack_node()) };
        self.set_patched(false);
        self.set_transition(false);
    }

    pub(crate) fn kobj(self) -> KobjPtr {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).kobj) }
    }

    pub(crate) fn node(self) -> *mut bindings::list_head {
        // SAFETY: valid (type invariant); only the address is taken.
        unsafe { addr_of_mut!((*self.as_ptr()).node) }
    }
}
