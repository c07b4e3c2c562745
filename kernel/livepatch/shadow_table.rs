// SPDX-License-Identifier: GPL-2.0

//! The table behind shadow variables: nodes (a header and the variable's
//! data, in one `kzalloc()` block), the published bucket array readers walk
//! under RCU, the writer lock that serialises every change, and the resize
//! work. See [`crate::shadow`] for the design; what the C API means (the
//! constructor, duplicates, the destructor) is decided there, and every
//! `unsafe` of the table's memory is here.

use core::marker::PhantomData;
use core::ptr::{null_mut, without_provenance_mut, NonNull};
use core::sync::atomic::{
    AtomicBool, AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use kernel::ffi::{c_ulong, c_void};

use kernel::alloc::KVVec;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::lock::GlobalGuard;
use kernel::sync::rcu::{self, RcuHead};
use kernel::sync::Arc;
use kernel::workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem};

use crate::shadow_sizing::{bucket_of, wanted_buckets, Bounds, MIN_BUCKETS};

/// One shadow variable; its data follows the header in the same
/// `kzalloc()` allocation, aligned as upstream's (to 8 bytes).
#[repr(C)]
struct Node {
    /// Chain links, indexed by [`Table::slot`] of the table walked.
    next: [AtomicPtr<Node>; 2],
    /// Written by `kvfree_rcu` while readers may still hold the node.
    rcu: RcuHead,
    obj: usize,
    id: c_ulong,
}

// `kzalloc()` aligns to 8 bytes (`ARCH_KMALLOC_MINALIGN`), so a node may
// need no more. (Its size depends on the configuration, as upstream's does:
// 48 bytes here, more on debug kernels.)
const _: () = assert!(align_of::<Node>() <= 8);

kernel::impl_has_rcu_head!(Node { rcu });

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
    /// The object the variable is attached to (only compared or handed to
    /// a destructor, never read here).
    fn obj(self) -> usize {
        // SAFETY: a node reachable from a published table is alive while the
        // caller keeps it (the `KeepsAlive` proof it was found with).
        unsafe { self.0.as_ref().obj }
    }

    #[inline(always)]
    fn data(self) -> *mut c_void {
        // SAFETY: the data area starts right after the header, inside the
        // same allocation (see `NewNode::alloc`); no access happens here.
        unsafe { self.0.as_ptr().add(1) }.cast()
    }
}

/// A node allocated but not published yet; freed at once when dropped.
pub(crate) struct NewNode(NonNull<Node>);

impl NewNode {
    /// A zeroed node with `size` bytes of data, from `kzalloc()` with the
    /// caller's flags as upstream (the kernel crate's `Kmalloc` goes through
    /// `krealloc()`, which costs a third more per allocation here).
    #[inline]
    pub(crate) fn alloc(
        obj: *mut c_void,
        id: c_ulong,
        size: usize,
        gfp: bindings::gfp_t,
    ) -> Option<Self> {
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

    pub(crate) fn data(&self) -> *mut c_void {
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
    // SAFETY: the node starts its `kzalloc()` block; it is unlinked, so only
    // readers that started before can still reach it, and nothing else frees
    // it (each node is retired once, so its head is unused).
    unsafe { rcu::kvfree_rcu_raw(node.0) };
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
#[inline(always)]
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

/// The table's lock, held: what inserting and removing variables takes.
pub(crate) struct TableWriter(GlobalGuard<WRITER>);

/// Takes the writer lock, if the table is set up (by [`init`], which any
/// module may call us before, or which may have failed).
#[inline(always)]
pub(crate) fn lock_table() -> Option<TableWriter> {
    writer()
        .filter(|writer| writer.table.is_some())
        .map(TableWriter)
}

/// The data of `<obj, id>`, or NULL: a lockless lookup.
#[inline(always)]
pub(crate) fn lookup(obj: *mut c_void, id: c_ulong) -> *mut c_void {
    let rcu = rcu::Guard::new();
    match published(&rcu).find(obj as usize, id) {
        Some(node) => node.data(),
        None => null_mut(),
    }
}

impl TableWriter {
    #[inline(always)]
    fn view(&self) -> Option<View<'_>> {
        self.0.table.as_ref().map(|table| table.view(&self.0))
    }

    /// The data of `<obj, id>`, if it exists.
    #[inline(always)]
    pub(crate) fn find(&self, obj: *mut c_void, id: c_ulong) -> Option<*mut c_void> {
        self.view()?.find(obj as usize, id).map(NodeRef::data)
    }

    /// Publishes `new`, which must not exist yet (the caller looked under
    /// this lock), unlocks, and returns its data.
    #[inline(always)]
    pub(crate) fn insert(mut self, new: NewNode) -> *mut c_void {
        let data = new.data();
        match self.view() {
            Some(view) => view.insert(&self.0, new),
            // `lock_table` only gives a writer with a table.
            None => return null_mut(),
        }
        self.0.live += 1;
        let resizer = self.0.resize_needed();
        drop(self);
        queue_resize(resizer);
        data
    }

    /// Unlinks the variables with `id` (only `<obj, id>`, one chain to
    /// walk, when `obj` is given), hands each one's object and data to
    /// `each` while the lock is held and before it is retired, unlocks, and
    /// returns how many there were.
    #[inline(always)]
    pub(crate) fn remove(
        mut self,
        obj: Option<usize>,
        id: c_ulong,
        mut each: impl FnMut(*mut c_void, *mut c_void),
    ) -> usize {
        let Some(view) = self.view() else {
            return 0;
        };
        let take = |n: &Node| n.id == id && obj.is_none_or(|obj| n.obj == obj);
        let mut freed = 0;
        let mut unlink = |head, only_one| {
            view.unlink_where(&self.0, head, take, only_one, |node| {
                each(node.obj() as *mut c_void, node.data());
                retire(node);
            })
        };
        match obj {
            // `<obj, id>` is unique: allocation never adds a second one.
            Some(obj) => freed += unlink(view.head(obj), true),
            None => {
                for head in view.heads() {
                    freed += unlink(head, false);
                }
            }
        }
        // Last use of `view`: the count may change now.
        self.0.live -= freed;
        let resizer = self.0.resize_needed();
        drop(self);
        queue_resize(resizer);
        freed
    }
}
