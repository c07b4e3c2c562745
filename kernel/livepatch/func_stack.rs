// SPDX-License-Identifier: GPL-2.0

//! The redirect's data: one `ftrace_ops` for every patched function, the
//! table that finds a function's [`KlpStack`] by its ftrace location, and
//! the stacks: the `klp_func`s that redirect a function, newest first,
//! linked through their `stack_node`.
//!
//! Upstream registers an ops per patched function, so patching costs an
//! ftrace update per function and unpatching a synchronisation per
//! function. Here an ops covers every function an object's patching made a
//! stack for ([`push_all`]: one registration, so one update, whatever the
//! number of functions), and the handler finds the stack of the call's
//! location in one table ([`LocTable`]) that a change replaces as a whole:
//! readers see the old table or the new, never one being changed.
//! Unpatching ([`pop_all`]) removes the locations it empties from their
//! ops in one update per ops (unregistering one left empty) and waits one
//! grace period. Each registration goes through
//! `register_ftrace_function()`, which is where ftrace asks a BPF
//! trampoline on the same function to share it with an ops that modifies
//! the instruction pointer; adding locations to a registered ops would skip
//! that.
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
use core::sync::atomic::{
    AtomicBool, AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

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
/// Made by [`KlpStack::new`] in a `KBox`; in a published [`LocTable`] while
/// its stack holds a function, and otherwise only `retired`; freed only an
/// RCU grace period after it left the last published table. While
/// `filtered`, its location is in the filter of `owner`, a registered ops
/// made by [`trace`].
pub(crate) struct KlpStack {
    stack: FuncStack,
    old_func: usize,
    /// The ftrace location the filter names (`old_func`, or 4 bytes in
    /// after an `endbr64`): the handler's key.
    loc: usize,
    /// The ops whose filter holds `loc` (written under `klp_mutex`; the
    /// handler never reads it).
    owner: AtomicPtr<BatchOps>,
    /// Set once its last function is on its way off: the handler then
    /// leaves the call alone, as for a function not patched. Such a stack
    /// stays in the table only when taking its location out of the filter
    /// failed, or no memory was left for a smaller table.
    retired: AtomicBool,
    /// Whether `loc` is in `owner`'s filter (under `klp_mutex`).
    filtered: AtomicBool,
    /// Marks the stacks a [`pop_all`] empties (under `klp_mutex`).
    emptying: AtomicBool,
    /// What frees a stack with `kvfree_rcu()`.
    rcu: RcuHead,
}

kernel::impl_has_rcu_head!(KlpStack { rcu });

// SAFETY: shared by the handler on every CPU, which only reads the stack
// (published with Release, read with Acquire), the fixed `old_func` and
// `loc`, and `retired` (atomic); the stack and the other fields change only
// under `klp_mutex`, and `rcu` only once the stack left the table, through
// `kvfree_rcu()`.
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

/// The slot a location's probe starts at. Functions are 16-byte aligned,
/// so the low bits carry nothing; the next ones differ between neighbouring
/// functions, which then take neighbouring slots. No multiplicative hash:
/// the handler pays for every instruction here on every patched call, and
/// a table at most half full keeps probes short anyway.
#[inline(always)]
fn home_slot(loc: usize, mask: usize) -> usize {
    (loc >> 4) & mask
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
        // Raw slots, not `slots()`: no bounds or overflow checks on the
        // handler's path.
        let slots = core::ptr::from_ref(self).wrapping_add(1).cast::<Slot>();
        let mut index = home_slot(loc, self.mask);
        loop {
            // SAFETY: `index <= mask`, and `mask + 1` slots follow the header
            // (invariant); published tables are never written.
            let slot = unsafe { *slots.add(index) };
            if slot.loc == loc {
                // SAFETY: a non-empty slot holds a live stack while the table
                // is alive (invariant), which `&self` is.
                return Some(unsafe { &*slot.stack });
            }
            if slot.loc == 0 {
                return None;
            }
            index = index.wrapping_add(1) & self.mask;
        }
    }

    fn stacks(&self) -> impl Iterator<Item = &KlpStack> {
        self.slots()
            .iter()
            .filter(|slot| slot.loc != 0)
            .map(|slot| {
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

/// The ops' data. An ops of one location (the common patch of a function or
/// a few, one object each) knows its stack, and saves the handler the
/// lookup in [`TABLE`].
pub(crate) struct Redirects {
    single: *const KlpStack,
}

// SAFETY: `single` is set before the ops is registered and never changes;
// the stack it names stays alive while the handler can run through the ops
// (it is freed a grace period after its location left the filter, which
// for an ops of one location is after ftrace unregistered it and waited for
// its handlers), and is `Sync`.
unsafe impl Sync for Redirects {}
// SAFETY: as above; nothing in it belongs to a thread.
unsafe impl Send for Redirects {}

/// An ops that redirects the functions of the stacks it owns.
type BatchOps = FtraceOps<Redirects>;

// The handler runs with preemption disabled, and every wait for it below is
// an RCU grace period: enough where ftrace cannot trace code that runs
// while RCU does not watch, as on every architecture that wants `noinstr`
// (upstream's `klp_synchronize_transition()` waits for such code too).
const _: () = assert!(cfg!(CONFIG_ARCH_WANTS_NO_INSTR));

/// The published table, if any function is patched.
static TABLE: AtomicPtr<LocTable> = AtomicPtr::new(null_mut());

/// The published table.
///
/// # Safety
///
/// For `'a`, the caller holds `klp_mutex` or is in an RCU read-side
/// section (preemption disabled is one).
#[inline(always)]
unsafe fn published<'a>() -> Option<&'a LocTable> {
    let table = TABLE.load(Acquire);
    // SAFETY: published (and initialised before, Release), and freed only a
    // grace period after it is replaced, which replacing under `klp_mutex`
    // and waiting for readers keeps past `'a` (caller's contract).
    unsafe { table.as_ref() }
}

/// Publishes `table` (or none) and returns the table it replaced, which
/// readers may still hold until a grace period passes.
fn publish(_locked: &Locked, table: Option<NewTable>) -> Option<NonNull<LocTable>> {
    let new = table.map_or(null_mut(), NewTable::into_raw);
    NonNull::new(TABLE.swap(new, Release))
}

/// Publishes again the table `publish` replaced, when what replaced it
/// must go; returns that one, for the caller to free after a grace period.
fn restore(_locked: &Locked, old: Option<NonNull<LocTable>>) -> Option<NonNull<LocTable>> {
    let old = old.map_or(null_mut(), NonNull::as_ptr);
    NonNull::new(TABLE.swap(old, Release))
}

/// Frees, after readers are done with it, a table `publish` replaced, and
/// the stacks it held that left with it: those [`kept`] refuses (retired,
/// their location out of the filter), which every copy leaves out.
fn retire_table(old: Option<NonNull<LocTable>>) {
    let Some(old) = old else {
        return;
    };
    // SAFETY: replaced under `klp_mutex`, which the callers hold, and not
    // freed before the `kvfree_rcu` below.
    for stack in unsafe { old.as_ref() }.stacks() {
        if stack.retired.load(Relaxed) && !stack.filtered.load(Relaxed) {
            // SAFETY: made by `KlpStack::new` as a `KBox`; no table keeps it
            // (copies leave such stacks out), so only readers that found it
            // in `old` before may still hold it, and `kvfree_rcu` waits for
            // them.
            rcu::kvfree_rcu(unsafe { KBox::from_raw(core::ptr::from_ref(stack).cast_mut()) });
        }
    }
    // SAFETY: allocated by `KVmalloc` (`NewTable`), which `kvfree()` frees,
    // starting with the header; no longer published, so only readers that
    // started before reach it, and its head was never used.
    unsafe { rcu::kvfree_rcu_raw(old) };
}

/// Whether a copy of the table keeps `stack`: not one retired whose
/// location is out of the filter.
fn kept(stack: &KlpStack) -> bool {
    !stack.retired.load(Relaxed) || stack.filtered.load(Relaxed)
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
/// was unpatched finds none, or a retired stack, and runs the original
/// code).
#[inline(always)]
pub(crate) fn traced_stack<'a>(call: &FtraceCall<'a, Redirects>) -> Option<&'a KlpStack> {
    let single = call.data().single;
    let stack = if single.is_null() {
        // SAFETY: the handler runs with preemption disabled for `'a`
        // (ftrace's recursion lock), an RCU read-side section.
        unsafe { published() }?.find(call.ip())?
    } else {
        // SAFETY: the stack of the ops' one location, alive while the
        // handler runs through the ops (see `Redirects`).
        unsafe { &*single }
    };
    // Read the stack only after `retired` (pairs with the Release in
    // `pop_all`, which waits for readers before the stack empties).
    (!stack.retired.load(Acquire)).then_some(stack)
}

/// The only writer of functions' `patched` flags.
// SAFETY: this file sets `patched` exactly when it links a function into a
// stack (`KlpStack::push`) or unlinks it (`KlpStack::remove`).
static STACKS: StackWriter = unsafe { StackWriter::new() };

/// Redirects every function of `funcs` (none of them patched yet): pushes
/// each on the stack of its old code, making the stacks that are missing,
/// with one ftrace registration for all of them. All or nothing: on
/// failure, with upstream's log line naming the function that failed,
/// every function is off its stack again.
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
            let Some(stack) = (unsafe { find_any(func.old_func()) }) else {
                continue;
            };
            if stack.is_singular() {
                // A retired stack this call revived: retired again before it
                // empties, so that no handler finds it empty.
                stack.retired.store(true, Release);
                rcu::synchronize_rcu();
            }
            stack.remove(locked, func);
        }
    }
    result
}

fn push_each<'f, I: Iterator<Item = &'f Func>>(locked: &Locked, funcs: &impl Fn() -> I) -> Result {
    // SAFETY: `klp_mutex` is held, and nothing is retired while this runs.
    let old = unsafe { published() };
    let count = funcs().count();
    let mut table = match old {
        Some(old) => NewTable::copy(old, count, kept)?,
        None => NewTable::with_room(count)?,
    };
    let mut new_stacks: KVec<KBox<KlpStack>> = KVec::new();
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
            // `list_add_rcu()` makes it; one retired while its location
            // stayed in the filter comes back), or one made for an earlier
            // function of `funcs`.
            if let Err(err) = stack.push(locked, func) {
                failed = Some(err);
                break;
            }
            // Only after the function is on it (pairs with the Acquire in
            // `traced_stack`).
            stack.retired.store(false, Release);
            continue;
        }
        let made = KlpStack::new(func.old_func(), loc)
            .and_then(|stack| new_stacks.push(stack, GFP_KERNEL).map_err(Error::from));
        if let Err(err) = made {
            failed = Some(err);
            break;
        }
        let stack = &new_stacks[new_stacks.len() - 1];
        if let Err(err) = stack.push(locked, func) {
            failed = Some(err);
            break;
        }
        table.insert(stack);
    }
    if let Some(err) = failed {
        drop(table);
        take_off_new(locked, new_stacks);
        return Err(err);
    }
    if new_stacks.is_empty() {
        // Only pushes onto stacks the published table has; the copy goes.
        return Ok(());
    }
    // Handlers find the new stacks before ftrace calls them for their
    // locations.
    let replaced = publish(locked, Some(table));
    if let Err(err) = trace(&new_stacks) {
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
        // Now owned by the tables: freed by `pop_all` or `retire_table`
        // when it leaves them.
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

/// Registers an ops for the locations of `stacks` (new, so in no filter),
/// in one ftrace update, and records it as their owner. If that fails, one
/// ops per location, as upstream, to name the function that fails in
/// upstream's log line (if each goes through, that is a success). On
/// failure no location of `stacks` is traced.
fn trace(stacks: &[KBox<KlpStack>]) -> Result {
    let mut locs = KVec::with_capacity(stacks.len(), GFP_KERNEL)?;
    for stack in stacks {
        locs.push(stack.loc, GFP_KERNEL)?;
    }
    let single = match stacks {
        [stack] => Some(&**stack),
        _ => None,
    };
    if let Ok(ops) = register(&locs, single) {
        for stack in stacks {
            stack.own(ops);
        }
        return Ok(());
    }
    for (done, stack) in stacks.iter().enumerate() {
        match register(&[stack.loc], Some(stack)) {
            Ok(ops) => stack.own(ops),
            Err((what, err)) => {
                if let Some(top) = stack.top() {
                    pr_err!(
                        "failed to {} for function '{}' ({})\n",
                        what,
                        top.func().old_name(),
                        err.to_errno()
                    );
                }
                for stack in &stacks[..done] {
                    let _ = untrace_one(stack);
                }
                return Err(err);
            }
        }
    }
    Ok(())
}

/// A new ops, registered for `locs` (distinct, in no other filter); with
/// `single`, the stack of its one location.
fn register(
    locs: &[usize],
    single: Option<&KlpStack>,
) -> core::result::Result<NonNull<BatchOps>, (&'static str, Error)> {
    let single = single.map_or(core::ptr::null(), core::ptr::from_ref);
    let ops = KBox::new(FtraceOps::new(Redirects { single }), GFP_KERNEL)
        .map_err(|e| ("register ftrace handler", Error::from(e)))?;
    let ops = KBox::into_raw(ops);
    // SAFETY: new, so not registered; in a heap block freed only by
    // `unregister`, after it unregistered it; `locs` distinct. This ops is
    // changed only under `klp_mutex` (its owner stacks' callers').
    match unsafe { (*ops).register(locs, Flags::PERMANENT) } {
        // SAFETY: from `KBox::into_raw` above.
        Ok(()) => Ok(unsafe { NonNull::new_unchecked(ops) }),
        Err(err) => {
            // SAFETY: from `KBox::into_raw` above; registering failed and
            // cleaned up after itself, so ftrace holds no pointer to it.
            drop(unsafe { KBox::from_raw(ops) });
            Err(match err {
                RegisterError::Filter(e) => ("set ftrace filter", e),
                RegisterError::Register(e) => ("register ftrace handler", e),
            })
        }
    }
}

/// Takes `locs` (in `ops`'s filter) out of it, in one update; unregisters
/// and frees the ops if nothing else is left in it. `Ok(true)` when it
/// unregistered it: ftrace then waited for every handler running through
/// it. Otherwise handlers that entered before may still run: wait for a
/// grace period before taking their stacks away.
fn unregister(ops: NonNull<BatchOps>, locs: &[usize]) -> Result<bool> {
    // SAFETY: registered by `register` and not freed (it still has
    // locations); changed only under `klp_mutex`, which the callers hold.
    let this = unsafe { ops.as_ref() };
    if this.location_count() > locs.len() {
        // SAFETY: as above; `locs` are distinct and in its filter.
        return unsafe { this.remove_locations(locs) }.map(|()| false);
    }
    // SAFETY: as above.
    unsafe { this.unregister() }?;
    // SAFETY: from `KBox::into_raw` in `register`; unregistered, and
    // ftrace waited for the handlers running through it (a dynamic ops:
    // `synchronize_rcu_tasks()`, which no preemption-disabled section
    // outlasts).
    drop(unsafe { KBox::from_raw(ops.as_ptr()) });
    Ok(true)
}

/// Takes `stack`'s location out of its owner's filter; on failure (with a
/// warning, as upstream's failed unregister) it stays there. Returns
/// whether ftrace waited for the handlers of that location (see
/// [`unregister`]).
fn untrace_one(stack: &KlpStack) -> bool {
    let Some(owner) = NonNull::new(stack.owner.load(Relaxed)) else {
        return false;
    };
    match unregister(owner, &[stack.loc]) {
        Ok(waited) => {
            stack.filtered.store(false, Relaxed);
            waited
        }
        Err(_) => {
            kernel::warn_on!(true);
            false
        }
    }
}

/// Takes every function of `funcs` (all patched) off its stack. A stack
/// this empties is retired (handlers leave its calls alone), its location
/// leaves its ops' filter (one update per ops; an ops left empty is
/// unregistered), and after one grace period its last function comes off
/// and the stack goes. Allocates nothing it cannot do without: every
/// function is off its stack when it returns.
pub(crate) fn pop_all<'f>(locked: &Locked, funcs: impl Iterator<Item = &'f Func>) {
    let mut emptied = 0;
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
            // Its last function comes off once no handler can reach it.
            stack.emptying.store(true, Relaxed);
            stack.retired.store(true, Release);
            emptied += 1;
        } else {
            stack.remove(locked, func);
        }
    }
    if emptied != 0 {
        retire_emptied(locked);
    }
}

/// The second half of [`pop_all`], for the stacks marked `emptying` (not
/// generic over the caller's functions, which keeps its symbols short).
fn retire_emptied(locked: &Locked) {
    // SAFETY: `klp_mutex` is held.
    let Some(old) = (unsafe { published() }) else {
        kernel::warn_on!(true);
        return;
    };
    // Out of the filters: the locations of each ops in one update. Whether
    // ftrace waited for every handler that may hold these stacks (it does
    // when it unregisters an ops).
    let mut waited = true;
    for first in old.stacks() {
        if first.emptying.load(Relaxed) && first.filtered.load(Relaxed) {
            waited &= untrace_owned_by(old, first);
        }
    }
    // A table without the emptied stacks whose locations left the filters;
    // without memory for one, they stay in this one, retired, until the
    // next copy leaves them out.
    // (The emptied stacks are retired: `kept` leaves out those whose
    // location left the filter, and any such stack an earlier call had to
    // leave in the table, which `retire_table` then frees.)
    let replaced = match NewTable::copy(old, 0, kept) {
        Ok(table) => Some(publish(locked, (table.table().live != 0).then_some(table))),
        Err(_) => None,
    };
    // No handler that found these stacks, in the table just replaced or
    // before they were retired, runs any more after this. (A handler of a
    // location not among them never reads them.)
    if !waited {
        rcu::synchronize_rcu();
    }
    for stack in old.stacks() {
        if stack.emptying.load(Relaxed) {
            stack.emptying.store(false, Relaxed);
            if let Some(top) = stack.top() {
                stack.remove(locked, top.func());
            }
        }
    }
    if let Some(replaced) = replaced {
        // Frees the stacks that left with it: retired, and out of the
        // filters.
        retire_table(replaced);
    }
}

/// Takes the locations of the emptied stacks of `table` that `first`'s ops
/// owns out of its filter: in one update, or one at a time (which needs no
/// memory of ours) if that fails. Returns whether ftrace waited for the
/// handlers of all of them (see [`unregister`]).
fn untrace_owned_by(table: &LocTable, first: &KlpStack) -> bool {
    let owner = first.owner.load(Relaxed);
    let Some(ops) = NonNull::new(owner) else {
        return false;
    };
    let ours = |stack: &KlpStack| {
        stack.emptying.load(Relaxed)
            && stack.filtered.load(Relaxed)
            && stack.owner.load(Relaxed) == owner
    };
    let mut locs = KVec::new();
    let mut listed = true;
    for stack in table.stacks() {
        if ours(stack) && locs.push(stack.loc, GFP_KERNEL).is_err() {
            listed = false;
            break;
        }
    }
    if listed {
        if let Ok(waited) = unregister(ops, &locs) {
            for stack in table.stacks() {
                if ours(stack) {
                    stack.filtered.store(false, Relaxed);
                }
            }
            return waited;
        }
    }
    let mut waited = true;
    for stack in table.stacks() {
        if ours(stack) {
            waited &= untrace_one(stack);
        }
    }
    waited
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
                owner: AtomicPtr::new(null_mut()),
                retired: AtomicBool::new(false),
                filtered: AtomicBool::new(false),
                emptying: AtomicBool::new(false),
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

    /// Records that `ops` has this stack's location in its filter.
    fn own(&self, ops: NonNull<BatchOps>) {
        self.owner.store(ops.as_ptr(), Relaxed);
        self.filtered.store(true, Relaxed);
    }

    /// Pushes `func`, which is not patched and redirects this stack's
    /// function, and marks it patched.
    fn push(&self, locked: &Locked, func: &Func) -> Result {
        if kernel::warn_on!(func.patched() || func.old_func() != self.old_func) {
            return Err(EINVAL);
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
        Ok(())
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
