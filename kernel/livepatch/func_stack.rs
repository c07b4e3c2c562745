// SPDX-License-Identifier: GPL-2.0

//! The redirect's data: one `ftrace_ops` for every patched function, the
//! table that finds a function's [`KlpStack`] by its ftrace location, and
//! the stacks: the `klp_func`s that redirect a function, newest first,
//! linked through their `stack_node`.
//!
//! Upstream registers an ops per patched function, so patching costs an
//! ftrace update per function and unpatching a synchronisation per
//! function. Here one ops serves every patched function; its filter grows
//! and shrinks by a whole object in one update ([`push_all`], [`pop_all`]),
//! and the handler finds the stack of the call's location in a table
//! ([`LocTable`]) that a change replaces as a whole: readers see the old
//! table or the new, never one being changed.
//!
//! The ftrace handler reads the table and the stacks without locks while
//! the core changes them under `klp_mutex`, with the publication rules of
//! the kernel's RCU lists (`list_add_rcu()`, `list_del_rcu()`): readers see
//! a fully linked entry or none, and a removed entry (a replaced table, a
//! retired stack) stays readable until readers are done. What the handler
//! decides is the redirect's (`crate::redirect` implements
//! `kernel::ftrace::FtraceHandler` for [`Redirects`]); every `unsafe` of the
//! table and the stacks is here, and the one of redirecting a call
//! ([`redirect`]).

use core::alloc::Layout;
use core::ptr::{addr_of_mut, null_mut, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Release};

use kernel::alloc::{allocator::KVmalloc, Allocator, NumaNode};
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::rcu::{self, RcuHead};
use kernel::types::Opaque;

use kernel::ftrace::{Flags, FtraceCall, FtraceOps, RegisterError};

use crate::lock::Locked;
use crate::structs::{Func, StackWriter};

/// `LIST_POISON2` (x86_64's `POISON_POINTER_DELTA` plus 0x122), left in a
/// removed entry's back link as C does, so a stray use faults recognisably.
const LIST_POISON2: *mut bindings::list_head =
    core::ptr::without_provenance_mut(0xdead_0000_0000_0122);

/// The forward link of a list node, as the lockless readers load it.
///
/// # Safety
///
/// `node` is a valid list node for `'a`.
#[inline(always)]
unsafe fn next_cell<'a>(node: *mut bindings::list_head) -> &'a AtomicPtr<bindings::list_head> {
    // SAFETY: valid (caller's contract); `next` is pointer-sized and
    // aligned, and every concurrent access to it is atomic.
    unsafe { AtomicPtr::from_ptr(addr_of_mut!((*node).next)) }
}

/// The `func_stack` of one patched function.
///
/// # Invariants
///
/// An initialised list head; its entries are the `stack_node`s of
/// functions whose `patched` flag is set, added and removed only under
/// `klp_mutex`, and readable until an RCU grace period after removal.
#[repr(transparent)]
struct FuncStack(Opaque<bindings::list_head>);

impl FuncStack {
    fn head(&self) -> *mut bindings::list_head {
        self.0.get()
    }

    /// The entry after `node`, or `None` at the end.
    ///
    /// # Safety
    ///
    /// `node` is the head or an entry of this stack.
    #[inline(always)]
    unsafe fn after(&self, node: *mut bindings::list_head) -> Option<&Func> {
        // SAFETY: a node of this stack (caller's contract).
        let next = unsafe { next_cell(node) }.load(Acquire);
        // SAFETY: not the head, so the `stack_node` of a function that stays
        // readable while the stack is (invariant).
        (next != self.head()).then(|| unsafe { Func::from_stack_node(next) })
    }
}

/// The `func_stack` of one patched function, and where ftrace traces it.
///
/// # Invariants
///
/// Made by [`KlpStack::new`] in a `KBox`; in a published [`LocTable`]
/// only while its stack holds a function; freed only an RCU grace period
/// after it left the last published table.
pub(crate) struct KlpStack {
    stack: FuncStack,
    old_func: usize,
    /// The ftrace location the filter names (`old_func`, or 4 bytes in
    /// after an `endbr64`): the handler's key.
    loc: usize,
    /// What frees a stack retired when no grace period is waited for.
    rcu: RcuHead,
}

kernel::impl_has_rcu_head!(KlpStack { rcu });

// SAFETY: shared by the handler on every CPU, which only reads the stack
// (published with Release, read with Acquire) and the fixed `old_func` and
// `loc`; the stack changes only under `klp_mutex`, and `rcu` only once the
// stack left the table, through `kvfree_rcu()`.
unsafe impl Sync for KlpStack {}

/// One slot of a [`LocTable`]: a location and its stack; `loc` 0 is empty.
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    loc: usize,
    stack: *const KlpStack,
}

/// The table from ftrace locations to stacks: open addressing with linear
/// probing, at most half full, never changed once published.
///
/// # Invariants
///
/// Made by [`NewTable`] in one `kvmalloc()` block: this header, then
/// `mask + 1` (a power of two) [`Slot`]s. Every non-empty slot holds a
/// stack that stays alive while the table is published, and one that was
/// published is freed only an RCU grace period after it was replaced.
#[repr(C)]
struct LocTable {
    rcu: RcuHead,
    mask: usize,
    /// The number of non-empty slots.
    live: usize,
}

kernel::impl_has_rcu_head!(LocTable { rcu });

/// The slot a location's probe starts at (Fibonacci hashing; function
/// addresses are 16-byte aligned, so the low bits carry nothing).
#[inline(always)]
fn home_slot(loc: usize, mask: usize) -> usize {
    ((loc as u64 >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

impl LocTable {
    fn layout(slots: usize) -> Result<Layout> {
        let (layout, _) = Layout::new::<LocTable>()
            .extend(Layout::array::<Slot>(slots).map_err(|_| ENOMEM)?)
            .map_err(|_| ENOMEM)?;
        Ok(layout.pad_to_align())
    }

    #[inline(always)]
    fn slots(&self) -> &[Slot] {
        // SAFETY: `mask + 1` slots follow the header in the same block
        // (invariant); `Slot` needs no more alignment than the header, and
        // published tables are never written.
        unsafe {
            core::slice::from_raw_parts(
                core::ptr::from_ref(self).add(1).cast::<Slot>(),
                self.mask + 1,
            )
        }
    }

    /// The stack of `loc`.
    #[inline(always)]
    fn find(&self, loc: usize) -> Option<&KlpStack> {
        let slots = self.slots();
        let mut index = home_slot(loc, self.mask);
        loop {
            let slot = slots[index];
            if slot.loc == loc {
                // SAFETY: a non-empty slot holds a live stack while the table
                // is alive (invariant), which `&self` is.
                return Some(unsafe { &*slot.stack });
            }
            if slot.loc == 0 {
                return None;
            }
            index = (index + 1) & self.mask;
        }
    }

    fn stacks(&self) -> impl Iterator<Item = &KlpStack> {
        self.slots().iter().filter(|slot| slot.loc != 0).map(|slot| {
            // SAFETY: as in `find`.
            unsafe { &*slot.stack }
        })
    }
}

/// A table being filled; freed when dropped unless published. Owns none of
/// the stacks it names.
struct NewTable(NonNull<LocTable>);

impl NewTable {
    /// An empty table for up to `live` stacks.
    fn with_room(live: usize) -> Result<Self> {
        let slots = live
            .checked_mul(2)
            .and_then(usize::checked_next_power_of_two)
            .ok_or(ENOMEM)?
            .max(16);
        let block = KVmalloc::alloc(
            LocTable::layout(slots)?,
            GFP_KERNEL | __GFP_ZERO,
            NumaNode::NO_NODE,
        )?;
        let table = block.cast::<LocTable>();
        // SAFETY: a fresh zeroed block large and aligned enough for the
        // header and `slots` slots (`layout`); zero is a valid header (an
        // unused RCU head) and an empty slot.
        unsafe { (*table.as_ptr()).mask = slots - 1 };
        Ok(NewTable(table))
    }

    fn table(&self) -> &LocTable {
        // SAFETY: ours, and initialised by `with_room`.
        unsafe { self.0.as_ref() }
    }

    /// Adds `stack` under its location, which the table does not hold.
    fn insert(&mut self, stack: &KlpStack) {
        let table = self.0.as_ptr();
        // SAFETY: ours alone until published; the slots follow the header
        // (`with_room`), and the table is at most half full, so the probe
        // ends at an empty slot.
        unsafe {
            let mask = (*table).mask;
            let slots = table.add(1).cast::<Slot>();
            let mut index = home_slot(stack.loc, mask);
            while (*slots.add(index)).loc != 0 {
                index = (index + 1) & mask;
            }
            *slots.add(index) = Slot {
                loc: stack.loc,
                stack,
            };
            (*table).live += 1;
        }
    }

    /// A copy of `from` with room for `more` stacks, without the stacks
    /// `keep` refuses.
    fn copy(from: &LocTable, more: usize, keep: impl Fn(&KlpStack) -> bool) -> Result<Self> {
        let mut table = Self::with_room(from.live + more)?;
        for stack in from.stacks().filter(|stack| keep(stack)) {
            table.insert(stack);
        }
        Ok(table)
    }

    /// Gives the block up, to be published.
    fn into_raw(self) -> *mut LocTable {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for NewTable {
    fn drop(&mut self) {
        // SAFETY: never published, so ours alone, and made by `with_room`.
        unsafe { free_table(self.0) };
    }
}

/// Frees a table at once.
///
/// # Safety
///
/// `table` was made by [`NewTable::with_room`] and nothing reads it any
/// more: never published, or unpublished a grace period ago.
unsafe fn free_table(table: NonNull<LocTable>) {
    // SAFETY: alive until here (the function's contract).
    let slots = unsafe { table.as_ref() }.mask + 1;
    // The layout `with_room` allocated with, which computed it already.
    let layout = LocTable::layout(slots).unwrap_or(Layout::new::<LocTable>());
    // SAFETY: allocated by `KVmalloc` with this layout; unused (contract).
    unsafe { KVmalloc::free(table.cast(), layout) };
}

/// The data of the one ops: the published table, if any function is
/// patched.
pub(crate) struct Redirects {
    table: AtomicPtr<LocTable>,
}

/// The ops that redirects every patched function.
static OPS: FtraceOps<Redirects> = FtraceOps::new(Redirects {
    table: AtomicPtr::new(null_mut()),
});

/// The published table.
///
/// # Safety
///
/// For `'a`, the caller holds `klp_mutex` or is in an RCU read-side
/// section (preemption disabled is one).
#[inline(always)]
unsafe fn published<'a>() -> Option<&'a LocTable> {
    let table = OPS.data().table.load(Acquire);
    // SAFETY: published (and initialised before, Release), and freed only a
    // grace period after it is replaced, which replacing under `klp_mutex`
    // and waiting for readers keeps past `'a` (caller's contract).
    unsafe { table.as_ref() }
}

/// Publishes `table` (or none) and returns the table it replaced, which
/// readers may still hold until a grace period passes.
fn publish(_locked: &Locked, table: Option<NewTable>) -> Option<NonNull<LocTable>> {
    let new = table.map_or(null_mut(), NewTable::into_raw);
    NonNull::new(OPS.data().table.swap(new, Release))
}

/// Publishes again the table `publish` replaced, when what replaced it
/// must go; returns that one, for the caller to free after a grace period.
fn restore(_locked: &Locked, old: Option<NonNull<LocTable>>) -> Option<NonNull<LocTable>> {
    let old = old.map_or(null_mut(), NonNull::as_ptr);
    NonNull::new(OPS.data().table.swap(old, Release))
}

/// Frees a table taken out of publication by [`publish`], after readers
/// are done with it.
fn retire_table(old: Option<NonNull<LocTable>>) {
    if let Some(old) = old {
        // SAFETY: allocated by `KVmalloc` (`NewTable`), which `kvfree()`
        // frees, starting with the header; no longer published, so only
        // readers that started before reach it, and its head was never
        // used.
        unsafe { rcu::kvfree_rcu_raw(old) };
    }
}

/// The stack of the function at `old_func`, for a caller that holds
/// `klp_mutex` (`_locked`) or an RCU read lock for `'a`.
///
/// # Safety
///
/// See above.
unsafe fn find_any<'a>(old_func: usize) -> Option<&'a KlpStack> {
    let loc = kernel::ftrace::location(old_func)?;
    // SAFETY: the caller's contract is `published`'s.
    unsafe { published() }?.find(loc)
}

/// The stack of `old_func`, in an RCU read-side section (which a retired
/// stack outlives).
pub(crate) fn find_rcu(_rcu: &rcu::Guard, old_func: usize) -> Option<&KlpStack> {
    // SAFETY: in a read-side section for the borrow of `_rcu`.
    unsafe { find_any(old_func) }
}

/// The stack of the function whose call ftrace hands the handler, if it
/// is still patched (a call that entered ftrace just before its function
/// was unpatched finds none, and runs the original code).
#[inline(always)]
pub(crate) fn traced_stack<'a>(call: &FtraceCall<'a, Redirects>) -> Option<&'a KlpStack> {
    // SAFETY: the handler runs with preemption disabled for `'a` (ftrace's
    // recursion lock), an RCU read-side section.
    unsafe { published() }?.find(call.ip())
}

/// The only writer of functions' `patched` flags.
// SAFETY: this file sets `patched` exactly when it links a function into a
// stack (`KlpStack::push`) or unlinks it (`KlpStack::remove`).
static STACKS: StackWriter = unsafe { StackWriter::new() };

/// Redirects every function of `funcs` (none of them patched yet): pushes
/// each on the stack of its old code, making the stacks that are missing,
/// with one ftrace update for all of them. All or nothing: on failure,
/// with upstream's log line naming the function that failed, every function
/// is off its stack again.
pub(crate) fn push_all<'f, I: Iterator<Item = &'f Func>>(
    locked: &Locked,
    funcs: impl Fn() -> I,
) -> Result {
    for func in funcs() {
        if kernel::warn_on!(func.old_func() == 0) || kernel::warn_on!(func.patched()) {
            return Err(EINVAL);
        }
    }
    let result = push_each(locked, &funcs);
    if result.is_err() {
        // What was pushed onto stacks that stay: the new stacks left with
        // their table, and handlers no longer reach these functions once
        // off (they are RCU list entries).
        for func in funcs().filter(|func| func.patched()) {
            // SAFETY: `klp_mutex` is held, and the stack is not kept.
            if let Some(stack) = unsafe { find_any(func.old_func()) } {
                stack.remove(locked, func);
            }
        }
    }
    result
}

fn push_each<'f, I: Iterator<Item = &'f Func>>(locked: &Locked, funcs: &impl Fn() -> I) -> Result {
    // SAFETY: `klp_mutex` is held, and nothing is retired while this runs.
    let old = unsafe { published() };
    let count = funcs().count();
    let mut table = match old {
        Some(old) => NewTable::copy(old, count, |_| true)?,
        None => NewTable::with_room(count)?,
    };
    let mut new_stacks: KVec<KBox<KlpStack>> = KVec::new();
    let mut locs: KVec<usize> = KVec::new();
    let mut failed = None;
    for func in funcs() {
        // The `call __fentry__`: the first instruction, or 4 bytes in after
        // an IBT `endbr64`; `None` for a function ftrace cannot trace
        // (notrace, inlined, or not a function start).
        let Some(loc) = kernel::ftrace::location(func.old_func()) else {
            pr_err!(
                "failed to find location for function '{}'\n",
                func.old_name()
            );
            failed = Some(EINVAL);
            break;
        };
        if let Some(stack) = table.table().find(loc) {
            // An existing stack (seen by handlers at once, as
            // `list_add_rcu()` makes it), or one made for an earlier
            // function of `funcs`.
            stack.push(locked, func);
            continue;
        }
        let made = KlpStack::new(func.old_func(), loc).and_then(|stack| {
            locs.push(loc, GFP_KERNEL)?;
            new_stacks.push(stack, GFP_KERNEL)?;
            Ok(())
        });
        if let Err(err) = made {
            failed = Some(err);
            break;
        }
        let stack = &new_stacks[new_stacks.len() - 1];
        stack.push(locked, func);
        table.insert(stack);
    }
    if let Some(err) = failed {
        drop(table);
        take_off_new(locked, new_stacks);
        return Err(err);
    }
    if locs.is_empty() {
        return Ok(());
    }
    // Handlers find the new stacks before ftrace calls them for their
    // locations.
    let replaced = publish(locked, Some(table));
    if let Err(err) = trace(&locs, &new_stacks) {
        // Back to the table before; the new stacks go once no handler that
        // found them in the other one runs any more.
        let unused = restore(locked, replaced);
        rcu::synchronize_rcu();
        if let Some(unused) = unused {
            // SAFETY: made by `NewTable`, unpublished a grace period ago.
            unsafe { free_table(unused) };
        }
        take_off_new(locked, new_stacks);
        return Err(err);
    }
    retire_table(replaced);
    for stack in new_stacks {
        // Now owned by the table: freed by `pop_all` when it leaves it.
        let _ = KBox::into_raw(stack);
    }
    Ok(())
}

/// Takes the functions off stacks that never were in a published table
/// (or no longer are, and no handler holds), and frees those stacks.
fn take_off_new(locked: &Locked, new_stacks: KVec<KBox<KlpStack>>) {
    for stack in new_stacks {
        while let Some(top) = stack.top() {
            stack.remove(locked, top.func());
        }
    }
}

/// Makes ftrace call the handler at `locs`, in one update; if that fails,
/// one location at a time, to name the function that fails as upstream's
/// log does (an update that then goes through for every location is a
/// success). On failure no location of `locs` is traced.
fn trace(locs: &[usize], stacks: &[KBox<KlpStack>]) -> Result {
    let batch = if OPS.is_registered() {
        // SAFETY: `OPS` is a static; changes to it happen only here and in
        // `untrace`, under `klp_mutex` (the callers'); `locs` are distinct
        // and in no stack of the table before, so not in the filter.
        unsafe { OPS.add_locations(locs) }
    } else {
        // SAFETY: as above, and not registered.
        unsafe { OPS.register(locs, Flags::PERMANENT) }.map_err(|err| match err {
            RegisterError::Filter(e) | RegisterError::Register(e) => e,
        })
    };
    if batch.is_ok() {
        return Ok(());
    }
    for (done, (&loc, stack)) in locs.iter().zip(stacks).enumerate() {
        let one = if OPS.is_registered() {
            // SAFETY: as above.
            unsafe { OPS.add_locations(&[loc]) }.map_err(|e| ("register ftrace handler", e))
        } else {
            // SAFETY: as above.
            unsafe { OPS.register(&[loc], Flags::PERMANENT) }.map_err(|err| match err {
                RegisterError::Filter(e) => ("set ftrace filter", e),
                RegisterError::Register(e) => ("register ftrace handler", e),
            })
        };
        if let Err((what, err)) = one {
            if let Some(top) = stack.top() {
                pr_err!(
                    "failed to {} for function '{}' ({})\n",
                    what,
                    top.func().old_name(),
                    err.to_errno()
                );
            }
            untrace(&locs[..done]);
            return Err(err);
        }
    }
    Ok(())
}

/// Stops ftrace calling the handler at `locs`, in one update: unregisters
/// the ops if no other location is left. Handlers that entered before may
/// still run: wait for a grace period before taking their stacks away.
fn untrace(locs: &[usize]) {
    if locs.is_empty() {
        return;
    }
    // SAFETY: `OPS` is a static, changed only here and in `trace`, under
    // `klp_mutex` (the callers'); `locs` are distinct and in the filter.
    let removed = unsafe { OPS.remove_locations(locs) };
    if removed == Err(EINVAL) {
        // They were the last: unregistering waits for running handlers.
        // SAFETY: as above; registered, since it had locations.
        kernel::warn_on!(unsafe { OPS.unregister() }.is_err());
    } else {
        kernel::warn_on!(removed.is_err());
    }
}

/// Takes every function of `funcs` (all patched) off its stack; the
/// stacks this empties stop being traced in one ftrace update (the last
/// one unregisters the ops) and go after one grace period.
pub(crate) fn pop_all<'f>(locked: &Locked, funcs: impl Iterator<Item = &'f Func>) {
    // The last function of each stack it empties, with the stack: taken off
    // only once the handler no longer runs for it, so that a handler never
    // finds an empty stack.
    let mut emptied: KVec<(&KlpStack, &Func)> = KVec::new();
    for func in funcs {
        if kernel::warn_on!(!func.patched()) || kernel::warn_on!(func.old_func() == 0) {
            continue;
        }
        // SAFETY: `klp_mutex` is held; the stack is used only in this call,
        // which frees it last.
        let Some(stack) = (unsafe { find_any(func.old_func()) }) else {
            kernel::warn_on!(true);
            continue;
        };
        if stack.is_singular() {
            if emptied.push((stack, func), GFP_KERNEL).is_err() {
                // No memory to batch: leave it patched, as a failed
                // unregister upstream does.
                kernel::warn_on!(true);
            }
        } else {
            stack.remove(locked, func);
        }
    }
    if emptied.is_empty() {
        return;
    }
    let mut locs = KVec::new();
    // The emptied stacks as a set, to copy the table without them.
    let mut going = match NewTable::with_room(emptied.len()) {
        Ok(set) => set,
        Err(_) => {
            kernel::warn_on!(true);
            return;
        }
    };
    for (stack, _) in emptied.iter() {
        if locs.push(stack.loc, GFP_KERNEL).is_err() {
            kernel::warn_on!(true);
            return;
        }
        going.insert(stack);
    }
    // SAFETY: `klp_mutex` is held.
    let Some(old) = (unsafe { published() }) else {
        kernel::warn_on!(true);
        return;
    };
    let table = if old.live == emptied.len() {
        None
    } else {
        match NewTable::copy(old, 0, |stack| going.table().find(stack.loc).is_none()) {
            Ok(table) => Some(table),
            Err(_) => {
                kernel::warn_on!(true);
                return;
            }
        }
    };
    let replaced = publish(locked, table);
    untrace(&locs);
    // No handler that found these stacks (in the table just replaced, or
    // through their ftrace location) runs any more after this.
    rcu::synchronize_rcu();
    for (stack, func) in emptied {
        stack.remove(locked, func);
        // SAFETY: made by `KlpStack::new` in a `KBox`, and owned by the
        // tables since `push_each`; in none now, and no reader is left.
        drop(unsafe { KBox::from_raw(core::ptr::from_ref(stack).cast_mut()) });
    }
    if let Some(old) = replaced {
        // SAFETY: made by `NewTable`, unpublished a grace period ago.
        unsafe { free_table(old) };
    }
}

/// Makes the traced `call` continue in `entry`'s function, unless it is a
/// nop (whose "replacement" is the original code, where the call goes on
/// anyway). `entry` must be on the stack of the traced location; another
/// stack's entry is refused (with a warning).
#[inline(always)]
pub(crate) fn redirect(call: &FtraceCall<'_, Redirects>, entry: &StackEntry<'_>) {
    if crate::warn_on_once!(entry.stack.loc != call.ip()) {
        return;
    }
    let func = entry.func();
    if func.nop() {
        return;
    }
    // SAFETY: the function is on the stack of the traced location (checked
    // above), not a nop: its `new_func` is the replacement its module
    // declared for that function (with its signature, as `livepatch.h`
    // requires), which kallsyms found when the patch was enabled, and which
    // stays while the function is on a stack (its module is held).
    unsafe { call.set_instruction_pointer(func.new_func()) };
}

/// A function on a stack, found by walking it: the handler's cursor.
pub(crate) struct StackEntry<'a> {
    stack: &'a KlpStack,
    func: &'a Func,
}

impl<'a> StackEntry<'a> {
    #[inline(always)]
    pub(crate) fn func(&self) -> &'a Func {
        self.func
    }

    /// The entry below this one.
    #[inline(always)]
    pub(crate) fn below(&self) -> Option<StackEntry<'a>> {
        // SAFETY: `func` was reached by walking `stack`, so its node is an
        // entry of it, or one removed since, whose `next` still leads along
        // the stack (RCU list removal), readable for `'a`.
        unsafe { self.stack.stack.after(self.func.stack_node()) }.map(|func| StackEntry {
            stack: self.stack,
            func,
        })
    }
}

impl KlpStack {
    /// An empty stack for the function at `old_func`, traced at `loc`.
    fn new(old_func: usize, loc: usize) -> Result<KBox<Self>> {
        let stack = KBox::new(
            KlpStack {
                stack: FuncStack(Opaque::zeroed()),
                old_func,
                loc,
                rcu: RcuHead::new(),
            },
            GFP_KERNEL,
        )?;
        let head = stack.stack.head();
        // SAFETY: ours alone until published.
        unsafe {
            (*head).next = head;
            (*head).prev = head;
        }
        Ok(stack)
    }

    /// The newest function of the stack, as the handler reads it.
    #[inline(always)]
    pub(crate) fn top(&self) -> Option<StackEntry<'_>> {
        // SAFETY: the head of this stack.
        unsafe { self.stack.after(self.stack.head()) }.map(|func| StackEntry { stack: self, func })
    }

    /// Whether one function is left on the stack.
    fn is_singular(&self) -> bool {
        let head = self.stack.head();
        // SAFETY: an initialised head (invariant).
        unsafe { (*head).next != head && (*head).next == (*head).prev }
    }

    /// Pushes `func`, which is not patched and redirects this stack's
    /// function, and marks it patched.
    fn push(&self, locked: &Locked, func: &Func) {
        if kernel::warn_on!(func.patched() || func.old_func() != self.old_func) {
            return;
        }
        let head = self.stack.head();
        let node = func.stack_node();
        // SAFETY: under `klp_mutex`, the only writer; `node` is on no stack
        // (it is not patched). Readers see the node only once fully linked.
        unsafe {
            let first = (*head).next;
            (*node).next = first;
            (*node).prev = head;
            next_cell(head).store(node, Release);
            (*first).prev = node;
        }
        func.set_patched(&STACKS, locked, true);
    }

    /// Removes `func`, which is on this stack, and marks it not patched.
    fn remove(&self, locked: &Locked, func: &Func) {
        if kernel::warn_on!(!func.patched() || func.old_func() != self.old_func) {
            return;
        }
        let node = func.stack_node();
        // SAFETY: under `klp_mutex`; `node` is on this stack (it is patched,
        // and for this stack's function). Readers that are on it still
        // follow its `next`.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            (*next).prev = prev;
            next_cell(prev).store(next, Release);
            (*node).prev = LIST_POISON2;
        }
        func.set_patched(&STACKS, locked, false);
    }
}
