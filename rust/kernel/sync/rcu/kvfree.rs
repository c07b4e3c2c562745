// SPDX-License-Identifier: GPL-2.0

//! Freeing memory after an RCU grace period (`kvfree_rcu()`).
//!
//! An object that RCU readers may still be looking at when its owner lets go
//! of it cannot be freed at once. [`kvfree_rcu`] hands its box to the batched
//! `kvfree_call_rcu()`, which frees it after every read-side section that
//! could see it has ended, without the owner waiting or allocating. The
//! object carries the link the batching needs, an [`RcuHead`], at a place its
//! type declares through [`HasRcuHead`].
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use crate::{
    alloc::{
        allocator::{KVmalloc, Kmalloc, Vmalloc},
        Allocator, Box,
    },
    bindings,
    types::Opaque,
};
use core::ptr::NonNull;
use macros::kunit_tests;

/// The link `kvfree_call_rcu()` queues an object by (`struct kvfree_rcu_head`).
///
/// Only the RCU machinery reads or writes it, once the object is handed over.
#[repr(transparent)]
pub struct RcuHead(Opaque<bindings::kvfree_rcu_head>);

impl RcuHead {
    /// A head for an object not yet handed over.
    pub const fn new() -> Self {
        RcuHead(Opaque::uninit())
    }
}

impl Default for RcuHead {
    fn default() -> Self {
        Self::new()
    }
}

/// A type with an [`RcuHead`] in it, at a fixed offset. Implement it with
/// [`impl_has_rcu_head!`](crate::impl_has_rcu_head).
///
/// # Safety
///
/// `RCU_HEAD_OFFSET` is the offset in `Self` of a field of type [`RcuHead`]
/// that nothing but the RCU machinery uses after the object is handed to it.
pub unsafe trait HasRcuHead {
    /// Where the head is, in bytes from the start of `Self`.
    const RCU_HEAD_OFFSET: usize;
}

/// Implements [`HasRcuHead`] for a type, naming its [`RcuHead`] field.
///
/// # Examples
///
/// ```
/// use kernel::sync::rcu::RcuHead;
///
/// struct Entry {
///     key: u64,
///     rcu: RcuHead,
/// }
/// kernel::impl_has_rcu_head!(Entry { rcu });
/// ```
#[macro_export]
macro_rules! impl_has_rcu_head {
    ($type:ty { $field:ident }) => {
        // SAFETY: `offset_of!` names a field of `$type`, and the type check
        // below makes it an `RcuHead`.
        unsafe impl $crate::sync::rcu::HasRcuHead for $type {
            const RCU_HEAD_OFFSET: usize = {
                let _: fn(&$type) -> &$crate::sync::rcu::RcuHead = |this| &this.$field;
                ::core::mem::offset_of!($type, $field)
            };
        }
    };
}

mod private {
    pub trait Sealed {}
}

/// An allocator whose memory `kvfree()` frees: `kmalloc`, `vmalloc` and
/// `kvmalloc`.
pub trait FreedByKvfree: Allocator + private::Sealed {}

impl private::Sealed for Kmalloc {}
impl private::Sealed for Vmalloc {}
impl private::Sealed for KVmalloc {}
impl FreedByKvfree for Kmalloc {}
impl FreedByKvfree for Vmalloc {}
impl FreedByKvfree for KVmalloc {}

/// Checks, at compile time, what `kvfree_call_rcu()` needs of `T`.
const fn check<T: HasRcuHead>() {
    // The batching finds the start of a vmalloc'ed object from its head by
    // rounding down to the page: the head must sit in the first page.
    assert!(
        T::RCU_HEAD_OFFSET < 4096,
        "the RcuHead must be within 4096 bytes of the start"
    );
    // `kvfree()` frees the memory only: a destructor would be skipped.
    assert!(
        !core::mem::needs_drop::<T>(),
        "kvfree_rcu frees memory only: the type must not need dropping"
    );
}

/// Frees `object` after a grace period: readers that are in an RCU read-side
/// section now may keep reading it until they leave it. Does not sleep or
/// allocate, so it may be called from any context `kfree()` may.
#[inline]
pub fn kvfree_rcu<T: HasRcuHead, A: FreedByKvfree>(object: Box<T, A>) {
    let ptr = Box::into_raw(object);
    // SAFETY: `ptr` is the start of an allocation `kvfree()` frees (`A`),
    // owned by the box just consumed, so nothing frees it otherwise and its
    // head is not queued yet.
    unsafe { kvfree_rcu_raw(NonNull::new_unchecked(ptr)) };
}

/// Frees the allocation at `ptr` after a grace period, as [`kvfree_rcu`]
/// does, for memory no `Box` owns (an object with a tail of variable size).
///
/// # Safety
///
/// - `ptr` is the start of a live allocation of `kmalloc()`, `vmalloc()` or
///   `kvmalloc()` that starts with a `T`;
/// - the caller gives up that allocation: nothing frees it otherwise, and
///   nothing but RCU readers that started before this call reads it;
/// - its head was not handed over before.
#[inline]
pub unsafe fn kvfree_rcu_raw<T: HasRcuHead>(ptr: NonNull<T>) {
    const { check::<T>() };
    let base = ptr.as_ptr();
    // SAFETY: within the `T` at `ptr` (the trait's contract).
    let head = unsafe { base.cast::<u8>().add(T::RCU_HEAD_OFFSET) }.cast::<RcuHead>();
    // SAFETY: `head` is the object's own, unused head and `base` its start
    // (caller's contract); the batching frees it only after a grace period.
    unsafe { bindings::kvfree_call_rcu(Opaque::cast_into(head.cast_const().cast()), base.cast()) };
}

#[kunit_tests(rust_kvfree_rcu)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::sync::rcu;

    #[repr(C)]
    struct Entry {
        key: [u64; 3],
        rcu: RcuHead,
    }
    crate::impl_has_rcu_head!(Entry { rcu });

    #[test]
    fn the_offset_is_the_fields() {
        let entry = Entry {
            key: [0; 3],
            rcu: RcuHead::new(),
        };
        let start = core::ptr::from_ref(&entry).addr();
        let head = core::ptr::from_ref(&entry.rcu).addr();
        assert_eq!(<Entry as HasRcuHead>::RCU_HEAD_OFFSET, head - start);
        assert_eq!(<Entry as HasRcuHead>::RCU_HEAD_OFFSET, 24);
    }

    #[test]
    fn a_reader_that_started_before_still_reads() -> Result {
        const KEY: u64 = 0x6b6c_705f_7263_7521;
        let entry = KBox::new(
            Entry {
                key: [KEY; 3],
                rcu: RcuHead::new(),
            },
            GFP_KERNEL,
        )?;
        let reader = rcu::Guard::new();
        let key = core::ptr::from_ref(&entry.key);
        kvfree_rcu(entry);
        // The grace period cannot end while `reader` is held (KASAN would
        // report a read of freed memory here if it did).
        // SAFETY: the object is freed only after `reader` is dropped.
        let seen = unsafe { key.read_volatile() };
        drop(reader);
        assert_eq!(seen, [KEY; 3]);
        Ok(())
    }

    #[test]
    fn vmalloc_memory_goes_the_same_way() -> Result {
        let entry = VBox::new(
            Entry {
                key: [1; 3],
                rcu: RcuHead::new(),
            },
            GFP_KERNEL,
        )?;
        let reader = rcu::Guard::new();
        let key = core::ptr::from_ref(&entry.key);
        kvfree_rcu(entry);
        // SAFETY: as above.
        let seen = unsafe { key.read_volatile() };
        drop(reader);
        assert_eq!(seen, [1; 3]);
        // Everything queued is freed by now: nothing left for kmemleak.
        // SAFETY: no requirements; may sleep, as a test may.
        unsafe { bindings::kvfree_rcu_barrier() };
        Ok(())
    }
}
