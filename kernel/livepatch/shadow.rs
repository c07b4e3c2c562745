// SPDX-License-Identifier: GPL-2.0

//! Shadow variables: data a livepatch attaches to an existing object, found
//! by `<obj, id>`.
//!
//! A hash table of singly linked chains that grows and shrinks with the
//! number of live variables ([`crate::shadow_sizing`]), so `klp_shadow_get`
//! visits about one node at any count (upstream's fixed 4096 buckets degrade
//! linearly). Lookups are lock-free under RCU; changes take one IRQ-safe
//! spinlock, as upstream.
//!
//! Resizing without stopping readers: every node has two chain links, one
//! per table generation. A resize runs in a work item, where it may sleep to
//! allocate the new bucket array; holding the lock, it links every node into
//! the new table through the spare link, publishes the new table, then waits
//! for a grace period and frees the old array. Readers still in the old table
//! follow the old links, which nothing changes after the switch; the old link
//! becomes the spare again only after that grace period.

use core::marker::PhantomData;
use core::ptr::{addr_of, null_mut, NonNull};
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
use crate::shadow_sizing::{bucket_at_shift, wanted_buckets, MIN_BUCKETS};

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

/// Low bits of the published word that hold `slot << 6 | shift`; bucket
/// arrays are aligned well past them (see [`Table::new`]). The shift is in
/// the lowest six bits, so that the lookup shifts by the word itself (x86
/// shifts by the count's low six bits).
const TAG_MASK: usize = (1 << 7) - 1;
const SHIFT_MASK: usize = (1 << 6) - 1;
const SLOT_BIT: u32 = 6;

/// One generation of the table: owns the bucket array.
struct Table {
    buckets: KVVec<AtomicPtr<Node>>,
    /// `64 - log2(bucket count)`, what [`bucket_at_shift`] takes.
    shift: u32,
    /// Which of a node's two links the chains of this table use.
    slot: usize,
}

impl Table {
    fn new(len: usize, slot: usize) -> Result<Self> {
        let mut buckets = KVVec::with_capacity(len, GFP_KERNEL)?;
        for _ in 0..len {
            buckets.push(AtomicPtr::new(null_mut()), GFP_KERNEL)?;
        }
        // Power-of-two kmalloc sizes are naturally aligned and vmalloc is
        // page aligned, so an array of at least MIN_BUCKETS heads leaves the
        // tag bits free; checked rather than assumed.
        if buckets.as_ptr().addr() & TAG_MASK != 0 {
            return Err(ENOMEM);
        }
        Ok(Table {
            buckets,
            shift: 64 - len.trailing_zeros(),
            slot,
        })
    }

    /// The word readers load: bucket array address, shift and slot.
    fn packed(&self) -> *mut AtomicPtr<Node> {
        let tag = self.slot << SLOT_BIT | self.shift as usize;
        self.buckets.as_ptr().cast_mut().map_addr(|addr| addr | tag)
    }

    fn view<'g>(&'g self, _writer: &'g GlobalGuard<WRITER>) -> View<'g> {
        // SAFETY: our own packed word; the table outlives the borrow.
        unsafe { View::unpack(self.packed()) }
    }
}

/// The published table, as readers and writers walk it; valid for `'g`.
#[derive(Clone, Copy)]
struct View<'g> {
    buckets: NonNull<AtomicPtr<Node>>,
    shift: u32,
    /// The tag bits, where [`View::slot`] finds the slot when needed.
    tag: usize,
    _alive: PhantomData<&'g Node>,
}

/// What readers find before [`init`] published the first table: two empty
/// buckets, never written, aligned past the tag bits. Lookups need no NULL
/// check, and find nothing.
#[repr(C, align(128))]
struct EmptyTable([AtomicPtr<Node>; 2]);

static EMPTY: EmptyTable = EmptyTable([AtomicPtr::new(null_mut()), AtomicPtr::new(null_mut())]);

/// The table as published to readers, packed as [`Table::packed`] packs it:
/// [`EMPTY`] (shift 63: two buckets; slot 0) until [`init`] ran.
static PUBLISHED: AtomicPtr<AtomicPtr<Node>> = AtomicPtr::new(
    (&raw const EMPTY)
        .cast::<AtomicPtr<Node>>()
        .cast_mut()
        .wrapping_byte_add(EMPTY_SHIFT),
);

/// `64 - log2(2)`: the shift of [`EMPTY`]'s two buckets.
const EMPTY_SHIFT: usize = 63;

/// The published table, valid while `alive` is held.
#[inline(always)]
fn published<'g>(_alive: &'g impl KeepsAlive) -> View<'g> {
    let word = PUBLISHED.load(Acquire);
    // SAFETY: the word is `EMPTY`'s, which lives forever, or was made by
    // `Table::packed` of a table that readers can reach until a grace period
    // after it is replaced; `alive` holds such a period open.
    unsafe { View::unpack(word) }
}

impl<'g> View<'g> {
    /// # Safety
    ///
    /// `word` comes from [`Table::packed`] of a table alive for `'g`.
    #[inline(always)]
    unsafe fn unpack(word: *mut AtomicPtr<Node>) -> Self {
        let tag = word.addr() & TAG_MASK;
        View {
            // SAFETY: the bucket array of a table is never NULL.
            buckets: unsafe { NonNull::new_unchecked(word.map_addr(|addr| addr & !TAG_MASK)) },
            shift: (tag & SHIFT_MASK) as u32,
            tag,
            _alive: PhantomData,
        }
    }

    /// Which of a node's two links this table's chains use.
    #[inline(always)]
    fn slot(self) -> usize {
        self.tag >> SLOT_BIT
    }

    #[inline]
    fn len(self) -> usize {
        1 << (64 - self.shift)
    }

    #[inline(always)]
    fn head(self, obj: usize, id: c_ulong) -> &'g AtomicPtr<Node> {
        let index = bucket_at_shift(obj, id as u64, self.shift);
        // SAFETY: `index` is below `1 << (64 - shift)`, the length of the
        // bucket array, which outlives `'g`: a table is replaced only under
        // the writer lock and freed only after a grace period that follows.
        unsafe { &*self.buckets.as_ptr().add(index) }
    }

    fn heads(self) -> impl Iterator<Item = &'g AtomicPtr<Node>> {
        // SAFETY: as in `head`, every index below `len` is in the array.
        (0..self.len()).map(move |index| unsafe { &*self.buckets.as_ptr().add(index) })
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
        let first = NonNull::new(self.head(obj, id).load(Acquire))?;
        let node = self.node(NodeRef(first));
        if node.obj == obj && node.id == id {
            return Some(NodeRef(first));
        }
        let mut next = node.next[self.slot()].load(Acquire);
        while let Some(ptr) = NonNull::new(next) {
            let node = self.node(NodeRef(ptr));
            if node.obj == obj && node.id == id {
                return Some(NodeRef(ptr));
            }
            next = node.next[self.slot()].load(Acquire);
        }
        None
    }

    /// Publishes `node` at the head of its chain.
    fn insert(self, _writer: &GlobalGuard<WRITER>, node: NewNode) {
        let ptr = node.into_raw();
        // SAFETY: not published yet, so we are its only user.
        let node = unsafe { ptr.as_ref() };
        let head = self.head(node.obj, node.id);
        node.next[self.slot()].store(head.load(Relaxed), Relaxed);
        // Release: a reader that finds the node sees it fully initialised.
        head.store(ptr.as_ptr(), Release);
    }

    /// Unlinks every node of `head`'s chain that `take` selects and hands it
    /// to `taken` (which must retire it). Returns how many were taken.
    fn unlink_where(
        self,
        _writer: &GlobalGuard<WRITER>,
        head: &'g AtomicPtr<Node>,
        take: impl Fn(&Node) -> bool,
        mut taken: impl FnMut(NodeRef),
    ) -> usize {
        let mut count = 0;
        let mut link = head;
        while let Some(ptr) = NonNull::new(link.load(Relaxed)) {
            let node = self.node(NodeRef(ptr));
            if take(node) {
                // Readers on this node keep following its own link, intact.
                link.store(node.next[self.slot()].load(Relaxed), Release);
                taken(NodeRef(ptr));
                count += 1;
            } else {
                link = &node.next[self.slot()];
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
    resizer: Option<Arc<Resizer>>,
}

kernel::sync::global_lock! {
    // SAFETY: `init` initialises it once, from the livepatch initcall, and
    // then sets `WRITER_READY`; every user checks `writer()` first, since
    // any module may call the exported functions before that, or after an
    // init that never got here.
    unsafe(uninit) static WRITER: SpinLockIrq<Writer> = Writer { live: 0, table: None, resizer: None };
}

/// Set (with Release) once `WRITER` is initialised.
static WRITER_READY: AtomicBool = AtomicBool::new(false);

/// Takes the writer lock, if it was initialised.
fn writer() -> Option<GlobalGuard<WRITER>> {
    WRITER_READY.load(Acquire).then(|| WRITER.lock())
}

impl Writer {
    /// The resize work to queue, if a table of `buckets` no longer fits
    /// `live`.
    #[inline]
    fn resize_needed(&self, buckets: usize) -> Option<Arc<Resizer>> {
        if wanted_buckets(self.live, buckets) == buckets {
            return None;
        }
        self.resizer.clone()
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

fn queue_resize(resizer: Option<Arc<Resizer>>) {
    if let Some(resizer) = resizer {
        // A delay of one jiffy only arms a timer: queueing at once would wake
        // a worker from the caller's context, which may be a patched
        // scheduler path holding a runqueue lock (kfree_rcu avoids it too).
        // Already queued is fine: that run sees the latest count.
        let _ = workqueue::system_unbound().enqueue_delayed(resizer, 1);
    }
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
    let (len, slot) = {
        let Some(writer) = writer() else {
            return;
        };
        let Some(table) = writer.table.as_ref() else {
            return;
        };
        let len = table.buckets.len();
        match wanted_buckets(writer.live, len) {
            n if n == len => return,
            n => (n, 1 - table.slot),
        }
    };
    // Allocate outside the lock, where we may sleep; on failure the old
    // table keeps working, only slower.
    let Ok(new) = Table::new(len, slot) else {
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
                let new_head = to.head(node.obj, node.id);
                node.next[to.slot()].store(new_head.load(Relaxed), Relaxed);
                new_head.store(ptr.as_ptr(), Relaxed);
            }
        }
        // Release: readers of the new table see all the links made above.
        PUBLISHED.store(new.packed(), Release);
        writer.table.replace(new)
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
    PUBLISHED.store(table.packed(), Release);
    writer.table = Some(table);
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
                let buckets = view.len();
                view.insert(&writer, new);
                // Last use of `view`: the count may change now.
                writer.live += 1;
                let resizer = writer.resize_needed(buckets);
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

/// Unlinks the nodes `take` selects from the chains `heads` gives, calls
/// `dtor` on each and retires it, all under the writer lock. Returns how many.
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
    dtor: bindings::klp_shadow_dtor_t,
) -> usize {
    let mut freed = 0;
    for head in heads {
        freed += view.unlink_where(writer, head, &take, |node| {
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
            Some(obj) => unlink_chains(
                &writer,
                view,
                core::iter::once(view.head(obj, id)),
                take,
                dtor,
            ),
            None => unlink_chains(&writer, view, view.heads(), take, dtor),
        }
    };
    let buckets = view.len();
    // Last use of `view`: the count may change now.
    writer.live -= freed;
    let resizer = writer.resize_needed(buckets);
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
