// SPDX-License-Identifier: GPL-2.0

//! Thin views of data that the C half of the core (`core.c`) still owns:
//! patches, objects and functions, and C-only logging. Every `unsafe` of the crate that
//! concerns those lives here, with the contract it relies on.

use core::ptr::{addr_of_mut, null_mut, NonNull};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::ffi::{c_int, c_ulong, c_void};

use kernel::bindings;
use kernel::str::CStrExt;

use crate::state_rules::StateVersion;

/// The installed patches, in install order.
///
/// # Safety
///
/// The caller holds `klp_mutex` for as long as it uses the iterator and the
/// patches it yields: the list and its patches change only under that mutex.
pub(crate) unsafe fn installed_patches() -> impl Iterator<Item = *mut bindings::klp_patch> {
    let head = addr_of_mut!(bindings::klp_patches);
    // SAFETY: `klp_patches` is a statically initialised list head; reading its
    // `next` is valid under `klp_mutex` (caller's contract).
    let mut pos = unsafe { (*head).next };
    core::iter::from_fn(move || {
        if pos == head {
            return None;
        }
        let offset = core::mem::offset_of!(bindings::klp_patch, list);
        // SAFETY: every entry of `klp_patches` is the `list` member of a live
        // `struct klp_patch` (core.c adds only those), so stepping back by the
        // member offset gives that patch; `next` is valid for the same reason.
        let patch = unsafe { pos.byte_sub(offset) }.cast::<bindings::klp_patch>();
        // SAFETY: as above, `pos` is a live list entry.
        pos = unsafe { (*pos).next };
        Some(patch)
    })
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

/// Whether `patch` is a cumulative (`replace`) patch.
///
/// # Safety
///
/// `patch` points to a valid `struct klp_patch`.
pub(crate) unsafe fn is_replace(patch: *mut bindings::klp_patch) -> bool {
    // SAFETY: valid by the caller's contract.
    unsafe { (*patch).replace }
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
///
/// # Safety
///
/// `head` is a valid list head whose entries are such members of live `T`s,
/// and the list does not change while the iterator is used.
unsafe fn list_entries<T>(
    head: *mut bindings::list_head,
    offset: usize,
) -> impl Iterator<Item = NonNull<T>> {
    // SAFETY: valid head (caller's contract).
    let mut pos = unsafe { (*head).next };
    core::iter::from_fn(move || {
        if pos == head {
            return None;
        }
        // SAFETY: `pos` is an entry, the member at `offset` of a live `T`
        // (caller's contract); its `next` is valid for the same reason.
        let entry = unsafe { NonNull::new_unchecked(pos.byte_sub(offset).cast::<T>()) };
        // SAFETY: as above.
        pos = unsafe { (*pos).next };
        Some(entry)
    })
}

/// A patch as core.c built it.
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

    pub(crate) fn objects(self) -> impl Iterator<Item = ObjRef> {
        // SAFETY: the list is stable (type invariant); its entries are the
        // `node` members of the patch's objects.
        unsafe {
            list_entries(
                addr_of_mut!((*self.as_ptr()).obj_list),
                core::mem::offset_of!(bindings::klp_object, node),
            )
        }
        .map(ObjRef)
    }

    pub(crate) fn funcs(self) -> impl Iterator<Item = FuncRef> {
        self.objects().flat_map(ObjRef::funcs)
    }

    /// The livepatch module's name, for log lines.
    pub(crate) fn name(self) -> &'static kernel::str::CStr {
        // SAFETY: a registered patch has its module, whose name is a
        // NUL-terminated array; the module outlives its patch.
        unsafe { kernel::str::CStr::from_char_ptr((*(*self.as_ptr()).mod_).name.as_ptr()) }
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
    /// `obj` satisfies the type invariant while the result is used.
    pub(crate) unsafe fn from_raw(obj: *mut bindings::klp_object) -> Self {
        // SAFETY: core.c never passes NULL objects (caller's contract).
        ObjRef(unsafe { NonNull::new_unchecked(obj) })
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::klp_object {
        self.0.as_ptr()
    }

    pub(crate) fn funcs(self) -> impl Iterator<Item = FuncRef> {
        // SAFETY: as for `PatchRef::objects`, with `klp_func::node`.
        unsafe {
            list_entries(
                addr_of_mut!((*self.as_ptr()).func_list),
                core::mem::offset_of!(bindings::klp_func, node),
            )
        }
        .map(FuncRef)
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

    pub(crate) fn old_name(self) -> &'static kernel::str::CStr {
        // SAFETY: valid (type invariant); core.c checked the name is set,
        // and it lives in the module with the patch.
        unsafe { kernel::str::CStr::from_char_ptr((*self.as_ptr()).old_name) }
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
