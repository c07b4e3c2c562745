// SPDX-License-Identifier: GPL-2.0

//! Shadow variables with a type.
//!
//! A shadow variable attaches data to an object the patched code cannot
//! change the layout of, keyed by the object's address and an id
//! (`klp_shadow_*()`). [`Shadow<T, ID>`] is that id with the one type its
//! data has, so a Rust livepatch attaches, finds and detaches a `T` and never
//! sees the `void *` the C API hands around.
//!
//! The C variable holds a pointer to a heap cell with the `T`. Detaching
//! frees the cell after an RCU grace period, so an [`Attached`] reference,
//! which holds the RCU read lock, stays valid however the variable is
//! detached meanwhile. A `T` without drop glue is freed by `kvfree_rcu`, in
//! the kernel's code; a `T` with a `Drop` is dropped by an RCU callback of
//! the module (softirq context: it must not sleep), which is why a module
//! with such a `T` must call [`Shadow::detach_all`] or
//! [`Shadow::wait_for_drops`], which wait for those callbacks, in its exit.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).

use crate::{
    alloc::Flags,
    bindings,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    sync::rcu,
    types::Opaque,
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

/// The heap cell a shadow variable of a [`Shadow`] points at.
#[repr(C)]
struct Cell<T> {
    rcu: Opaque<bindings::callback_head>,
    value: T,
}

/// The shadow variables with id `ID`, all of type `T`.
///
/// ```
/// use kernel::{livepatch::Shadow, prelude::*, sync::atomic::{Atomic, Relaxed}};
///
/// /// What the patched code cannot add a field to.
/// struct Connection {
///     _port: u16,
/// }
///
/// // SAFETY: only this example uses id 0x5253_d0c7, always with this type,
/// // which needs no drop.
/// static RETRIES: Shadow<Atomic<u32>, 0x5253_d0c7> = unsafe { Shadow::new() };
///
/// let conn = Connection { _port: 22 };
/// assert!(RETRIES.get(&conn).is_none());
/// RETRIES.attach(&conn, GFP_KERNEL, Atomic::new(1))?;
/// assert_eq!(RETRIES.attach(&conn, GFP_KERNEL, Atomic::new(5)).err(), Some(EEXIST));
/// RETRIES.get_or_insert_with(&conn, GFP_KERNEL, || Atomic::new(0))?.add(1, Relaxed);
/// assert_eq!(RETRIES.get(&conn).map(|n| n.load(Relaxed)), Some(2));
/// // The object goes: its variable goes with it.
/// RETRIES.detach(&conn);
/// assert!(RETRIES.get(&conn).is_none());
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Every shadow variable with id `ID`, on any object, is one this type
/// attached: its data is a pointer to a [`Cell<T>`] from a `KBox`, owned by
/// the variable until its destructor ([`dtor`]) hands it to RCU.
pub struct Shadow<T, const ID: c_ulong>(PhantomData<fn(T) -> T>);

/// The data of a shadow variable, readable while this is held: it holds the
/// RCU read lock, so it must not be held across anything that sleeps.
pub struct Attached<T> {
    _rcu: rcu::Guard,
    value: NonNull<T>,
}

impl<T> Deref for Attached<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the cell is freed only after a grace period that started
        // after it was detached; `_rcu` holds this one off.
        unsafe { self.value.as_ref() }
    }
}

impl<T: Send + Sync + 'static, const ID: c_ulong> Shadow<T, ID> {
    /// The shadow variables of id `ID`.
    ///
    /// # Safety
    ///
    /// - No other code (Rust or C, in this module or another) uses shadow
    ///   variables with id `ID`, other than through a `Shadow<T, ID>` of this
    ///   `T` or, in another module, of a type with the same layout and drop;
    /// - if `T` needs dropping, the exit of every module that detaches such
    ///   variables calls [`Shadow::detach_all`] or [`Shadow::wait_for_drops`],
    ///   so that no drop of its code is left for RCU to run once the module
    ///   is gone.
    pub const unsafe fn new() -> Self {
        // INVARIANT: the caller's promise.
        Shadow(PhantomData)
    }

    /// The variable attached to `obj`, if any.
    pub fn get<O>(&self, obj: *const O) -> Option<Attached<T>> {
        let rcu = rcu::Guard::new();
        // SAFETY: `obj` is only compared, never read.
        let data = unsafe { bindings::klp_shadow_get(obj.cast_mut().cast(), ID) };
        if data.is_null() {
            return None;
        }
        // SAFETY: a variable of `ID` holds a pointer to a live `Cell<T>`
        // (type invariant); the memory stays while `rcu` is held.
        let cell = unsafe { data.cast::<*mut Cell<T>>().read() };
        Some(Attached {
            _rcu: rcu,
            // SAFETY: `cell` is a live, non-null cell (just read).
            value: unsafe { NonNull::new_unchecked(&raw mut (*cell).value) },
        })
    }

    /// Attaches `value` to `obj`; `EEXIST` (and `value` is dropped) if `obj`
    /// has one already. `flags` are for the allocations, made before anything
    /// is published. (Unlike C's `klp_shadow_alloc()`, a duplicate is an
    /// error for the caller, not a kernel warning.)
    pub fn attach<O>(&self, obj: *const O, flags: Flags, value: T) -> Result<Attached<T>> {
        if !self.insert(obj, flags, value)? {
            return Err(EEXIST);
        }
        self.found(obj)
    }

    /// The variable attached to `obj`, attaching `f()` first if there is
    /// none. `f` runs only when none is found, and its value is dropped if
    /// another caller attached one in the meantime.
    pub fn get_or_insert_with<O>(
        &self,
        obj: *const O,
        flags: Flags,
        f: impl FnOnce() -> T,
    ) -> Result<Attached<T>> {
        if let Some(found) = self.get(obj) {
            return Ok(found);
        }
        self.insert(obj, flags, f())?;
        self.found(obj)
    }

    /// Detaches the variable of `obj`, if any; its `T` is dropped after a
    /// grace period.
    pub fn detach<O>(&self, obj: *const O) {
        // SAFETY: `obj` is only compared; `dtor::<T>` is this id's
        // destructor (type invariant).
        unsafe { bindings::klp_shadow_free(obj.cast_mut().cast(), ID, Some(dtor::<T>)) };
    }

    /// Detaches every variable of id `ID`, and waits until their `T`s (and
    /// those of earlier [`detach`](Self::detach)es) were dropped. May sleep,
    /// so never with an [`Attached`] held.
    pub fn detach_all(&self) {
        // SAFETY: as in `detach`.
        unsafe { bindings::klp_shadow_free_all(ID, Some(dtor::<T>)) };
        // SAFETY: no requirements beyond a context that may sleep.
        unsafe { bindings::rcu_barrier() };
    }

    /// Waits until the `T`s of every variable detached so far were dropped,
    /// without detaching any more: for the exit of a module that detached
    /// some and leaves the rest to others. May sleep.
    pub fn wait_for_drops(&self) {
        // SAFETY: no requirements beyond a context that may sleep.
        unsafe { bindings::rcu_barrier() };
    }

    /// Attaches `value` to `obj` unless it has a variable already; returns
    /// whether it did (`value` is dropped if not).
    fn insert<O>(&self, obj: *const O, flags: Flags, value: T) -> Result<bool> {
        let cell = KBox::new(
            Cell {
                rcu: Opaque::uninit(),
                value,
            },
            flags,
        )?;
        let mut cell = Some(cell);
        // SAFETY: `obj` is only compared; `ctor::<T>` fills the data from
        // `ctor_data`, an `Option<KBox<Cell<T>>>` that lives through the call.
        let data = unsafe {
            bindings::klp_shadow_get_or_alloc(
                obj.cast_mut().cast(),
                ID,
                size_of::<*mut Cell<T>>(),
                flags.as_raw(),
                Some(ctor::<T>),
                (&raw mut cell).cast(),
            )
        };
        if data.is_null() {
            return Err(ENOMEM);
        }
        // The constructor took the cell, unless `obj` had a variable.
        Ok(cell.is_none())
    }

    /// The variable of `obj` after inserting: gone again only if someone
    /// detached it in between.
    fn found<O>(&self, obj: *const O) -> Result<Attached<T>> {
        self.get(obj).ok_or(ENOENT)
    }
}

/// Fills a new variable's data with the cell in `ctor_data`.
///
/// # Safety
///
/// Called by the core for a new variable of `insert`, with its
/// `ctor_data`.
unsafe extern "C" fn ctor<T>(_obj: *mut c_void, data: *mut c_void, cell: *mut c_void) -> c_int {
    // SAFETY: `cell` is the `Option<KBox<Cell<T>>>` `insert` passed, alive
    // during its call, which this runs in.
    let cell = unsafe { &mut *cell.cast::<Option<KBox<Cell<T>>>>() };
    match cell.take() {
        Some(cell) => {
            // SAFETY: the core allocated `data` with room for a pointer.
            unsafe { data.cast::<*mut Cell<T>>().write(KBox::into_raw(cell)) };
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// Hands a detached variable's cell to RCU, which frees it (dropping the
/// `T`) after a grace period.
///
/// # Safety
///
/// Called by the core, once, for a variable of a `Shadow<T, _>` it detached.
unsafe extern "C" fn dtor<T>(_obj: *mut c_void, data: *mut c_void) {
    // SAFETY: the data of a variable of a `Shadow<T, _>`: a pointer to its
    // cell, which the variable owned until now.
    let cell = unsafe { data.cast::<*mut Cell<T>>().read() };
    // SAFETY: `cell` is live: only the pointer to its field is taken.
    let head = Opaque::cast_into(unsafe { &raw const (*cell).rcu });
    if core::mem::needs_drop::<T>() {
        // SAFETY: the cell's RCU head is unused (a cell is detached once);
        // `free_cell::<T>` frees it as the `KBox` it came from.
        unsafe { bindings::call_rcu(head, Some(free_cell::<T>)) };
    } else {
        // Nothing to drop: the kernel frees the memory and no code of the
        // module is left to run. As with C's `kvfree_rcu()`, the `rcu_head`
        // serves as the batching's link.
        // SAFETY: the cell is a `kmalloc()` block starting at `cell`, with an
        // unused head of at least a `kvfree_rcu_head`'s size at its start.
        unsafe { bindings::kvfree_call_rcu(head.cast(), cell.cast()) };
    }
}

/// # Safety
///
/// Called by RCU for the head `dtor` queued.
unsafe extern "C" fn free_cell<T>(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the `rcu` field, first in the `repr(C)` cell, of a
    // cell `dtor` handed over, and RCU calls this once, after every reader.
    drop(unsafe { KBox::from_raw(head.cast::<Cell<T>>()) });
}

#[kunit_tests(rust_livepatch_shadow)]
mod tests {
    use super::*;
    use crate::sync::atomic::{Atomic, Relaxed};

    static DROPPED: Atomic<usize> = Atomic::new(0);

    struct Counted(u64);

    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Relaxed);
        }
    }

    // SAFETY: ids "RS" 1: used by these tests only.
    static COUNTED: Shadow<Counted, 0x5253_0001> = unsafe { Shadow::new() };

    #[test]
    fn attach_get_detach() -> Result {
        let key = 0u8;
        let obj = &raw const key;
        let dropped = DROPPED.load(Relaxed);
        assert!(COUNTED.get(obj).is_none());
        assert_eq!(COUNTED.attach(obj, GFP_KERNEL, Counted(7))?.0, 7);
        assert_eq!(COUNTED.get(obj).map(|found| found.0), Some(7));
        COUNTED.detach(obj);
        assert!(COUNTED.get(obj).is_none());
        // Waits for the drop that detaching deferred.
        COUNTED.detach_all();
        assert_eq!(DROPPED.load(Relaxed), dropped + 1);
        Ok(())
    }

    #[test]
    fn get_or_insert_with_keeps_the_first() -> Result {
        let key = 0u8;
        let obj = &raw const key;
        let dropped = DROPPED.load(Relaxed);
        let first = COUNTED
            .get_or_insert_with(obj, GFP_KERNEL, || Counted(1))?
            .0;
        let again = COUNTED
            .get_or_insert_with(obj, GFP_KERNEL, || Counted(2))?
            .0;
        assert_eq!((first, again), (1, 1));
        COUNTED.detach_all();
        assert_eq!(DROPPED.load(Relaxed), dropped + 1);
        Ok(())
    }

    #[test]
    fn attaching_twice_is_eexist() -> Result {
        let key = 0u8;
        let obj = &raw const key;
        let dropped = DROPPED.load(Relaxed);
        COUNTED.attach(obj, GFP_KERNEL, Counted(1))?;
        assert!(matches!(COUNTED.attach(obj, GFP_KERNEL, Counted(2)), Err(e) if e == EEXIST));
        // The second value was dropped at once; the first is still there.
        assert_eq!(DROPPED.load(Relaxed), dropped + 1);
        assert_eq!(COUNTED.get(obj).map(|found| found.0), Some(1));
        COUNTED.detach_all();
        assert_eq!(DROPPED.load(Relaxed), dropped + 2);
        Ok(())
    }

    // SAFETY: "RS" 2: used by these tests only; `Atomic` needs no dropping.
    static PLAIN: Shadow<Atomic<u64>, 0x5253_0002> = unsafe { Shadow::new() };

    #[test]
    fn data_without_drop_is_freed_by_the_kernel() -> Result {
        let key = 0u8;
        let obj = &raw const key;
        let counter = PLAIN.get_or_insert_with(obj, GFP_KERNEL, || Atomic::new(0))?;
        counter.fetch_add(2, Relaxed);
        drop(counter);
        let again = PLAIN.get_or_insert_with(obj, GFP_KERNEL, || Atomic::new(0))?;
        assert_eq!(again.load(Relaxed), 2);
        drop(again);
        PLAIN.detach(obj);
        assert!(PLAIN.get(obj).is_none());
        Ok(())
    }

    #[test]
    fn a_reader_outlives_a_detach() -> Result {
        let key = 0u8;
        let obj = &raw const key;
        let dropped = DROPPED.load(Relaxed);
        COUNTED.attach(obj, GFP_KERNEL, Counted(42))?;
        let reader = COUNTED.get(obj).ok_or(ENOENT)?;
        COUNTED.detach(obj);
        // The drop waits for a grace period, which `reader` holds off.
        assert_eq!(reader.0, 42);
        assert_eq!(DROPPED.load(Relaxed), dropped);
        drop(reader);
        COUNTED.detach_all();
        assert_eq!(DROPPED.load(Relaxed), dropped + 1);
        Ok(())
    }
}
