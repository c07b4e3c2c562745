// SPDX-License-Identifier: GPL-2.0

//! Shadow variables: data a livepatch attaches to an existing object, found
//! by `<obj, id>`.
//!
//! A hash table of singly linked chains that grows and shrinks with the
//! number of live variables ([`crate::shadow_sizing`]), so `klp_shadow_get`
//! visits about one node at any count of objects (upstream's fixed 4096
//! buckets degrade linearly). Lookups are lock-free under RCU; changes take
//! one IRQ-safe spinlock, as upstream.
//!
//! Resizing without stopping readers: every node has two chain links, one
//! per table generation. A resize runs in a work item, where it may sleep to
//! allocate the new bucket array; holding the lock, it links every node into
//! the new table through the spare link, publishes the new table, then waits
//! for a grace period and frees the old array. Readers still in the old table
//! follow the old links, which nothing changes after the switch; the old link
//! becomes the spare again only after that grace period.

use core::marker::PhantomData;
use core::ptr::{addr_of, null_mut, without_provenance_mut, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use kernel::ffi::{c_ulong, c_void};

use kernel::alloc::KVVec;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::lock::GlobalGuard;
use kernel::sync::{rcu, Arc};
use kernel::types::Opaque;
use kernel::workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem};

use crate::cview;
use crate::shadow_sizing::{bucket_of, wanted_buckets, Bounds, MIN_BUCKETS};

/// One shadow variable; its data follows the header in the same
/// `kzalloc()` allocation, aligned as upstream's (to 8 bytes).
#[repr(C)]
struct Node {
    /// Chain links, indexed by [`Table::slot`] of the table walked.
    next: [AtomicPtr<Node>; 2],
    /// Written by `kvfree_call_rcu` while readers may still hold the node.
    rcu: Opaque<bindings::kvfree_rcu_head>,
    obj: usize,
    id: c_ulong,
}

// `kzalloc()` aligns to 8 bytes (`ARCH_KMALLOC_MINALIGN`), so a node may
// need no more. (Its size depends on the configuration, as upstream's does:
// 48 bytes here, more on debug kernels.)
const _: () = assert!(align_of::<Node>() <= 8);

/// Proof that published tables and nodes stay alive while it is held: the
/// RCU read lock, or the writer lock (nothing is retired without it, and
/// freeing waits for a grace period after that).
trait KeepsAlive {}
impl KeepsAlive for rcu::Guard {}
impl KeepsAlive for GlobalGuard<WRITER> {}

/// A node reachable from a published table.
#[derive(Clone, Copy)]
struct NodeRef(NonNull<Node>);

impl NodeRef {
    #[inline(always)]
    fn data(self) -> *mut c_void {
        // SAFETY: the data area starts right after the header, inside the
        // same allocation (see `NewNode::alloc`); no access happens here.
        unsafe { self.0.as_ptr().add(1) }.cast()
    }
}

/// A node allocated but not published yet; freed at once when dropped.
struct NewNode(NonNull<Node>);

impl NewNode {
    /// A zeroed node with `size` bytes of data, from `kzalloc()` with the
    /// caller's flags as upstream (the kernel crate's `Kmalloc` goes through
    /// `krealloc()`, which costs a third more per allocation here).
    #[inline]
    fn alloc(obj: *mut c_void, id: c_ulong, size: usize, gfp: bindings::gfp_t) -> Option<Self> {
        let total = size_of::<Node>().checked_add(size)?;
        // SAFETY: any size and flags are accepted; the result is NULL or a
        // zeroed allocation of `total` bytes, kmalloc-aligned (at least 8,
        // `Node`'s alignment).
        let mem = unsafe { bindings::kzalloc(total, gfp) };
        let node = NonNull::new(mem.cast::<Node>())?;
        // SAFETY: the allocation is fresh, large and aligned enough for a
        // `Node`, and zeroed, which is a valid `Node` (null links, an opaque
        // RCU head); we own it exclusively.
        unsafe {
            let node = &mut *node.as_ptr();
            node.obj = obj as usize;
            node.id = id;
        }
        Some(NewNode(node))
    }

    fn data(&self) -> *mut c_void {
        NodeRef(self.0).data()
    }

    /// Hands the node over to the table (see [`View::insert`]).
    fn into_raw(self) -> NonNull<Node> {
        let node = self.0;
        core::mem::forget(self);
        node
    }
}

impl Drop for NewNode {
    fn drop(&mut self) {
        // SAFETY: never published, so nobody else can see it; allocated by
        // `kzalloc()`.
        unsafe { bindings::kfree(self.0.as_ptr().cast()) };
    }
}

/// Frees `node` after a grace period, as `kfree_rcu()` does (batched). It
/// must already be unlinked.
fn retire(node: NodeRef) {
    let ptr = node.0.as_ptr();
    // SAFETY: the node is unlinked, so no new reader can reach it; its `rcu`
    // head is unused (each node is retired once); it was allocated by
    // `kzalloc()`, which `kvfree` frees, and only after the readers that could
    // still see it are done.
    unsafe { bindings::kvfree_call_rcu(Opaque::cast_into(addr_of!((*ptr).rcu)), ptr.cast()) };
}

/// A table's memory: a header of [`HEADER_CELLS`] words, then the chain
/// heads. Header words are stored as pointers without provenance, never
/// dereferenced: the bucket count first (where the lookup multiplies by it
/// straight from memory), then the link slot. The table's size, what
/// [`crate::shadow_sizing`] chooses, counts all cells: a power of two, so
/// that the array fills its allocation (a power-of-two number of buckets
/// plus a header would take the next size up, twice the memory); the
/// lookup needs no power of two.
const LEN_CELL: usize = 0;
const SLOT_CELL: usize = 1;
const HEADER_CELLS: usize = 2;

/// One generation of the table: owns its cells.
struct Table {
    cells: KVVec<AtomicPtr<Node>>,
}

impl Table {
    /// A table of `size` cells (more than [`HEADER_CELLS`]) whose chains use
    /// link `slot`.
    fn new(size: usize, slot: usize) -> Result<Self> {
        let len = size.checked_sub(HEADER_CELLS).ok_or(EINVAL)?;
        let mut cells = KVVec::with_capacity(size, GFP_KERNEL)?;
        for word in [len, slot] {
            cells.push(AtomicPtr::new(without_provenance_mut(word)), GFP_KERNEL)?;
        }
        for _ in 0..len {
            cells.push(AtomicPtr::new(null_mut()), GFP_KERNEL)?;
        }
        Ok(Table { cells })
    }

    /// The number of cells, header included.
    fn size(&self) -> usize {
        self.cells.len()
    }

    /// Which of a node's two links the chains of this table use.
    fn slot(&self) -> usize {
        self.cells[SLOT_CELL].load(Relaxed).addr()
    }

    /// What readers load to find the table.
    fn published(&self) -> *mut AtomicPtr<Node> {
        self.cells.as_ptr().cast_mut()
    }

    fn view<'g>(&'g self, _writer: &'g GlobalGuard<WRITER>) -> View<'g> {
        // SAFETY: our own cells, alive for the borrow.
        unsafe { View::new(self.published()) }
    }
}

/// The published table, as readers and writers walk it; valid for `'g`.
#[derive(Clone, Copy)]
struct View<'g> {
    cells: NonNull<AtomicPtr<Node>>,
    _alive: PhantomData<&'g Node>,
}

/// What readers find before [`init`] published the first table: one empty
/// bucket, never written. Lookups need no NULL check, and find nothing.
static EMPTY: [AtomicPtr<Node>; HEADER_CELLS + 1] = [
    AtomicPtr::new(without_provenance_mut(1)),
    AtomicPtr::new(null_mut()),
    AtomicPtr::new(null_mut()),
];

/// The table as published to readers: its first cell, [`EMPTY`]'s until
/// [`init`] ran.
static PUBLISHED: AtomicPtr<AtomicPtr<Node>> =
    AtomicPtr::new((&raw const EMPTY).cast::<AtomicPtr<Node>>().cast_mut());

/// The published table, valid while `alive` is held.
#[inline(always)]
fn published<'g>(_alive: &'g impl KeepsAlive) -> View<'g> {
    let cells = PUBLISHED.load(Acquire);
    // SAFETY: the cells are `EMPTY`'s, which live forever, or a table's that
    // readers can reach until a grace period after it is replaced; `alive`
    // holds such a period open.
    unsafe { View::new(cells) }
}

impl<'g> View<'g> {
    /// # Safety
    ///
    /// `cells` are those of [`EMPTY`] or of a [`Table`] alive for `'g`.
    #[inline(always)]
    unsafe fn new(cells: *mut AtomicPtr<Node>) -> Self {
        View {
            // SAFETY: a table's cells are never NULL.
            cells: unsafe { NonNull::new_unchecked(cells) },
            _alive: PhantomData,
        }
    }

    #[inline(always)]
    fn cell(self, index: usize) -> &'g AtomicPtr<Node> {
        // SAFETY: callers stay below `HEADER_CELLS + len`, the number of
        // cells, which outlive `'g`: a table is replaced only under the
        // writer lock and freed only after a grace period that follows.
        unsafe { &*self.cells.as_ptr().add(index) }
    }

    /// The number of buckets.
    #[inline(always)]
    fn len(self) -> usize {
        // SAFETY: header cells are written only before the table is
        // published (with Release, which our Acquire load or the lock
        // pairs with), so this plain read races with nothing; a plain read
        // lets the lookup multiply from memory.
        unsafe { *self.cell(LEN_CELL).as_ptr() }.addr()
    }

    /// Which of a node's two links this table's chains use: 0 or 1.
    #[inline(always)]
    fn slot(self) -> usize {
        self.cell(SLOT_CELL).load(Relaxed).addr() & 1
    }

    #[inline(always)]
    fn head(self, obj: usize) -> &'g AtomicPtr<Node> {
        let index = bucket_of(obj, self.len());
        // SAFETY: `index` is below `len`, so the cell is among the heads,
        // alive for `'g` as in `cell`.
        unsafe { &*self.cells.as_ptr().add(HEADER_CELLS).add(index) }
    }

    fn heads(self) -> impl Iterator<Item = &'g AtomicPtr<Node>> {
        (HEADER_CELLS..HEADER_CELLS + self.len()).map(move |index| self.cell(index))
    }

    #[inline(always)]
    fn node(self, node: NodeRef) -> &'g Node {
        // SAFETY: a node reachable from a published table is freed only
        // after a grace period that follows its unlinking under the writer
        // lock, so it outlives `'g`, which an RCU reader or the lock holds.
        unsafe { node.0.as_ref() }
    }

    #[inline(always)]
    fn find(self, obj: usize, id: c_ulong) -> Option<NodeRef> {
        // The first node apart: a hit there, the common case, needs no slot.
        let first = NonNull::new(self.head(obj).load(Acquire))?;
        let node = self.node(NodeRef(first));
        if node.obj == obj && node.id == id {
            return Some(NodeRef(first));
        }
        let slot = self.slot();
        let mut next = node.next[slot].load(Acquire);
        while let Some(ptr) = NonNull::new(next) {
            let node = self.node(NodeRef(ptr));
            if node.obj == obj && node.id == id {
                return Some(NodeRef(ptr));
            }
            next = node.next[slot].load(Acquire);
        }
        None
    }

    /// Publishes `node` at the head of its chain.
    fn insert(self, _writer: &GlobalGuard<WRITER>, node: NewNode) {
        let ptr = node.into_raw();
        // SAFETY: not published yet, so we are its only user.
        let node = unsafe { ptr.as_ref() };
        let head = self.head(node.obj);
        node.next[self.slot()].store(head.load(Relaxed), Relaxed);
        // Release: a reader that finds the node sees it fully initialised.
        head.store(ptr.as_ptr(), Release);
    }

    /// Unlinks the nodes of `head`'s chain that `take` selects (only the
    /// first if `only_one`) and hands each to `taken` (which must retire it).
    /// Returns how many were taken.
    fn unlink_where(
        self,
        _writer: &GlobalGuard<WRITER>,
        head: &'g AtomicPtr<Node>,
        take: impl Fn(&Node) -> bool,
        only_one: bool,
        mut taken: impl FnMut(NodeRef),
    ) -> usize {
        let slot = self.slot();
        let mut count = 0;
        let mut link = head;
        while let Some(ptr) = NonNull::new(link.load(Relaxed)) {
            let node = self.node(NodeRef(ptr));
            if take(node) {
                // Readers on this node keep following its own link, intact.
                link.store(node.next[slot].load(Relaxed), Release);
                taken(NodeRef(ptr));
                count += 1;
                if only_one {
                    break;
                }
            } else {
                link = &node.next[slot];
            }
        }
        count
    }
}

/// What the writer lock guards besides the chains.
struct Writer {
    live: usize,
    /// The published table's owner.
    table: Option<Table>,
    /// The live counts the published table is sized for.
    bounds: Bounds,
    resizer: Option<Arc<Resizer>>,
}

kernel::sync::global_lock! {
    // SAFETY: `init` initialises it once, from the livepatch initcall, and
    // then sets `WRITER_READY`; every user checks `writer()` first, since
    // any module may call the exported functions before that, or after an
    // init that never got here.
    unsafe(uninit) static WRITER: SpinLockIrq<Writer> = Writer {
        live: 0,
        table: None,
        bounds: Bounds { shrink_below: 0, grow_above: usize::MAX },
        resizer: None,
    };
}

/// Set (with Release) once `WRITER` is initialised.
static WRITER_READY: AtomicBool = AtomicBool::new(false);

/// Takes the writer lock, if it was initialised.
fn writer() -> Option<GlobalGuard<WRITER>> {
    WRITER_READY.load(Acquire).then(|| WRITER.lock())
}

impl Writer {
    /// The resize work to queue, if the published table no longer fits the
    /// live count.
    #[inline(always)]
    fn resize_needed(&self) -> Option<Arc<Resizer>> {
        if !self.bounds.exceeded_by(self.live) {
            return None;
        }
        self.resizer.clone()
    }

    /// Makes `table` the published one.
    fn publish(&mut self, table: Table) -> Option<Table> {
        PUBLISHED.store(table.published(), Release);
        self.bounds = Bounds::of(table.size());
        self.table.replace(table)
    }
}

#[pin_data]
struct Resizer {
    #[pin]
    work: DelayedWork<Resizer>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Resizer { self.work }
}

impl WorkItem for Resizer {
    type Pointer = Arc<Resizer>;

    fn run(_this: Arc<Resizer>) {
        // SAFETY: a work item never runs concurrently with itself, and this
        // is the only caller.
        unsafe { resize() };
    }
}

#[inline(always)]
fn queue_resize(resizer: Option<Arc<Resizer>>) {
    if let Some(resizer) = resizer {
        enqueue_resize(resizer);
    }
}

#[cold]
fn enqueue_resize(resizer: Arc<Resizer>) {
    // A delay of one jiffy only arms a timer: queueing at once would wake a
    // worker from the caller's context, which may be a patched scheduler path
    // holding a runqueue lock (kfree_rcu avoids it too). Already queued is
    // fine: that run sees the latest count.
    let _ = workqueue::system_unbound().enqueue_delayed(resizer, 1);
}

/// Moves every variable to a table sized for the live count, relinking them
/// all under the lock with interrupts off (a few milliseconds at 100,000
/// variables under emulation; the amortised cost per insert is constant).
///
/// # Safety
///
/// Never runs concurrently with itself: it reuses the spare link slot, which
/// only the previous resize's grace period has freed.
unsafe fn resize() {
    let (size, slot) = {
        let Some(writer) = writer() else {
            return;
        };
        let Some(table) = writer.table.as_ref() else {
            return;
        };
        let size = table.size();
        match wanted_buckets(writer.live, size) {
            n if n == size => return,
            n => (n, 1 - table.slot()),
        }
    };
    // Allocate outside the lock, where we may sleep; on failure the old
    // table keeps working, only slower.
    let Ok(new) = Table::new(size, slot) else {
        return;
    };
    let old = {
        let Some(mut writer) = writer() else {
            return;
        };
        let Some(old) = writer.table.as_ref() else {
            return;
        };
        let (from, to) = (old.view(&writer), new.view(&writer));
        for head in from.heads() {
            let mut next = head.load(Relaxed);
            while let Some(ptr) = NonNull::new(next) {
                let node = from.node(NodeRef(ptr));
                next = node.next[from.slot()].load(Relaxed);
                let new_head = to.head(node.obj);
                node.next[to.slot()].store(new_head.load(Relaxed), Relaxed);
                new_head.store(ptr.as_ptr(), Relaxed);
            }
        }
        // Release: readers of the new table see all the links made above.
        writer.publish(new)
    };
    // Readers may still walk the old array until a grace period passes.
    rcu::synchronize_rcu();
    drop(old);
}

/// Sets up the table; called once from the livepatch initcall.
pub(crate) fn init() -> Result {
    // SAFETY: called once; nothing locks `WRITER` before `WRITER_READY`.
    unsafe { WRITER.init() };
    WRITER_READY.store(true, Release);
    let resizer = Arc::pin_init(
        pin_init!(Resizer {
            work <- new_delayed_work!("klp_shadow_resize"),
        }),
        GFP_KERNEL,
    )?;
    let table = Table::new(MIN_BUCKETS, 0)?;
    let mut writer = WRITER.lock();
    writer.publish(table);
    writer.resizer = Some(resizer);
    Ok(())
}

#[inline(always)]
fn lookup(alive: &impl KeepsAlive, obj: *mut c_void, id: c_ulong) -> *mut c_void {
    match published(alive).find(obj as usize, id) {
        Some(node) => node.data(),
        None => null_mut(),
    }
}

/// Returns the data of shadow variable `<obj, id>`, or NULL.
///
/// # Safety
///
/// None beyond the C API contract: `obj` is only compared, never read.
#[export]
pub(crate) unsafe extern "C" fn klp_shadow_get(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    lookup(&rcu::Guard::new(), obj, id)
}

/// [`klp_shadow_alloc`] and [`klp_shadow_get_or_alloc`].
///
/// # Safety
///
/// `ctor`, if any, is safe to call with `obj`, the new data and `ctor_data`.
unsafe fn get_or_alloc(
    obj: *mut c_void,
    id: c_ulong,
    size: usize,
    gfp: bindings::gfp_t,
    ctor: bindings::klp_shadow_ctor_t,
    ctor_data: *mut c_void,
    warn_on_exist: bool,
) -> *mut c_void {
    let mut existing = lookup(&rcu::Guard::new(), obj, id);
    if existing.is_null() {
        // Allocate before taking the lock: `gfp` may allow sleeping.
        let Some(new) = NewNode::alloc(obj, id, size, gfp) else {
            return null_mut();
        };
        let Some(mut writer) = writer() else {
            return null_mut();
        };
        // Allocations wait for a table of our own (`EMPTY` is never written).
        let Some(view) = writer.table.as_ref().map(|table| table.view(&writer)) else {
            return null_mut();
        };
        // Someone may have won the race since the lockless look.
        match view.find(obj as usize, id) {
            Some(found) => existing = found.data(),
            None => {
                if let Some(ctor) = ctor {
                    // SAFETY: safe to call so (our contract, the constructor
                    // contract of `livepatch.h`): it gets the object, the
                    // zeroed data and `ctor_data`, and runs under the shadow
                    // lock like upstream.
                    let err = unsafe { ctor(obj, new.data(), ctor_data) };
                    if err != 0 {
                        drop(writer);
                        drop(new);
                        cview::log_shadow_ctor_failure(obj, id, err);
                        return null_mut();
                    }
                }
                let data = new.data();
                view.insert(&writer, new);
                // Last use of `view`: the count may change now.
                writer.live += 1;
                let resizer = writer.resize_needed();
                drop(writer);
                queue_resize(resizer);
                return data;
            }
        }
    }
    if warn_on_exist {
        cview::warn_shadow_duplicate(obj, id);
        return null_mut();
    }
    existing
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
    // SAFETY: forwarded from our caller.
    unsafe { get_or_alloc(obj, id, size, gfp_flags, ctor, ctor_data, true) }
}

/// Returns the data of `<obj, id>`, allocating it as `klp_shadow_alloc`
/// does when it does not exist yet.
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
    // SAFETY: forwarded from our caller.
    unsafe { get_or_alloc(obj, id, size, gfp_flags, ctor, ctor_data, false) }
}

/// Unlinks the nodes `take` selects from the chains `heads` gives (at most
/// one per chain if `only_one`), calls `dtor` on each and retires it, all
/// under the writer lock. Returns how many.
///
/// # Safety
///
/// `dtor`, if any, is safe to call with each selected variable's object and
/// data.
unsafe fn unlink_chains<'t>(
    writer: &GlobalGuard<WRITER>,
    view: View<'t>,
    heads: impl Iterator<Item = &'t AtomicPtr<Node>>,
    take: impl Fn(&Node) -> bool,
    only_one: bool,
    dtor: bindings::klp_shadow_dtor_t,
) -> usize {
    let mut freed = 0;
    for head in heads {
        freed += view.unlink_where(writer, head, &take, only_one, |node| {
            if let Some(dtor) = dtor {
                // SAFETY: safe to call so (our contract, the destructor
                // contract of `livepatch.h`): it gets the object and the
                // data of a variable being freed, under the shadow lock like
                // upstream. The node stays valid until `retire`'s grace
                // period.
                unsafe { dtor(node.0.as_ref().obj as *mut c_void, node.data()) };
            }
            retire(node);
        });
    }
    freed
}

/// Frees the variables with `id`: only `<obj, id>` when `obj` is given (one
/// chain to walk), else all of them.
///
/// # Safety
///
/// As for [`unlink_chains`], for the variables freed.
unsafe fn free(obj: Option<usize>, id: c_ulong, dtor: bindings::klp_shadow_dtor_t) {
    let Some(mut writer) = writer() else {
        return;
    };
    let Some(view) = writer.table.as_ref().map(|table| table.view(&writer)) else {
        return;
    };
    let take = |n: &Node| n.id == id && obj.is_none_or(|obj| n.obj == obj);
    // SAFETY: `dtor` is safe to call for these variables (our contract).
    let freed = unsafe {
        match obj {
            // `<obj, id>` is unique: allocation never adds a second one.
            Some(obj) => unlink_chains(
                &writer,
                view,
                core::iter::once(view.head(obj)),
                take,
                true,
                dtor,
            ),
            None => unlink_chains(&writer, view, view.heads(), take, false, dtor),
        }
    };
    // Last use of `view`: the count may change now.
    writer.live -= freed;
    let resizer = writer.resize_needed();
    drop(writer);
    queue_resize(resizer);
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
    // SAFETY: forwarded from our caller.
    unsafe { free(Some(obj as usize), id, dtor) };
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
    // SAFETY: forwarded from our caller.
    unsafe { free(None, id, dtor) };
}
