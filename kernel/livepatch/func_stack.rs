// SPDX-License-Identifier: GPL-2.0

//! The `func_stack` of one patched function: the `klp_func`s that redirect
//! it, newest first, linked through their `stack_node`. The ftrace handler
//! reads it without locks while the core pushes and removes entries under
//! `klp_mutex`, with the publication rules of the kernel's RCU lists
//! (`list_add_rcu()`, `list_del_rcu()`): readers see a fully linked entry or
//! none, and a removed entry stays readable until readers are done.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Release};

use kernel::bindings;
use kernel::types::Opaque;

use crate::cview::FuncRef;

/// `LIST_POISON2` (x86_64's `POISON_POINTER_DELTA` plus 0x122), left in a
/// removed entry's back link as C does, so a stray use faults recognisably.
const LIST_POISON2: *mut bindings::list_head =
    core::ptr::without_provenance_mut(0xdead_0000_0000_0122);

/// A `func_stack` head.
///
/// # Invariants
///
/// After [`FuncStack::init`], the head and every linked `stack_node` form a
/// valid circular list whose entries belong to live `klp_func`s; it changes
/// only under `klp_mutex`.
#[repr(transparent)]
pub(crate) struct FuncStack(Opaque<bindings::list_head>);

/// The RCU-published `next` link of a list node.
///
/// # Safety
///
/// `node` is a valid list node.
#[inline(always)]
unsafe fn next_cell<'a>(node: *mut bindings::list_head) -> &'a AtomicPtr<bindings::list_head> {
    // SAFETY: valid node (caller's contract); `next` is read concurrently by
    // the handler, so it is only accessed atomically.
    unsafe { AtomicPtr::from_ptr(addr_of_mut!((*node).next)) }
}

impl FuncStack {
    pub(crate) const fn new() -> Self {
        FuncStack(Opaque::zeroed())
    }

    fn head(&self) -> *mut bindings::list_head {
        self.0.get()
    }

    /// Makes the list empty; done once, where the head will stay.
    pub(crate) fn init(&self) {
        let head = self.head();
        // SAFETY: the head is ours and not yet visible to any reader.
        unsafe {
            (*head).next = head;
            (*head).prev = head;
        }
    }

    /// The function on top, which the handler redirects to.
    #[inline(always)]
    pub(crate) fn top(&self) -> Option<FuncRef> {
        // SAFETY: the head of this stack.
        unsafe { self.after(self.head()) }
    }

    /// The function below `func`: the previous redirect, or `None` when
    /// `func` is the last and the original code comes next.
    ///
    /// # Safety
    ///
    /// `func` is on this stack (or was removed from it less than a grace
    /// period ago, and the caller is an RCU reader).
    #[inline(always)]
    pub(crate) unsafe fn below(&self, func: FuncRef) -> Option<FuncRef> {
        // SAFETY: `func`'s node is an entry of this list (caller's contract).
        unsafe { self.after(func.stack_node()) }
    }

    /// The function after `node` on this list, if `node` is not the last.
    ///
    /// # Safety
    ///
    /// `node` is this list's head or one of its entries.
    #[inline(always)]
    unsafe fn after(&self, node: *mut bindings::list_head) -> Option<FuncRef> {
        // SAFETY: `node` is the head or an entry of this list (caller's
        // contract), valid as the type invariant says. Acquire pairs with the Release of `push`: the entry's fields were
        // written before it was linked. (On x86 it is a plain load.)
        let next = unsafe { next_cell(node) }.load(Acquire);
        // SAFETY: every node but the head is a `stack_node` of a live func.
        (next != self.head()).then(|| unsafe { FuncRef::from_stack_node(next) })
    }

    /// Whether exactly one function is on the stack.
    pub(crate) fn is_singular(&self) -> bool {
        let head = self.head();
        // SAFETY: the list is valid and, under `klp_mutex`, stable.
        unsafe { (*head).next != head && (*head).next == (*head).prev }
    }

    /// Puts `func` on top (`list_add_rcu()`).
    ///
    /// # Safety
    ///
    /// The caller holds `klp_mutex`; `func` is on no stack and stays alive
    /// until [`FuncStack::remove`] and a grace period after it.
    pub(crate) unsafe fn push(&self, func: FuncRef) {
        let head = self.head();
        let node = func.stack_node();
        // SAFETY: head and the old first node are valid (type invariant);
        // `node` is unlinked and ours until published by the Release store.
        unsafe {
            let first = (*head).next;
            (*node).next = first;
            (*node).prev = head;
            next_cell(head).store(node, Release);
            (*first).prev = node;
        }
    }

    /// Unlinks `func` (`list_del_rcu()`): readers already on it still find
    /// their way on.
    ///
    /// # Safety
    ///
    /// The caller holds `klp_mutex` and `func` is on this stack.
    pub(crate) unsafe fn remove(&self, func: FuncRef) {
        let node = func.stack_node();
        // SAFETY: `node` and its neighbours are linked and valid (type
        // invariant); its own `next` is left for readers standing on it.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            (*next).prev = prev;
            next_cell(prev).store(next, Release);
            (*node).prev = LIST_POISON2;
        }
    }
}
