// SPDX-License-Identifier: GPL-2.0

//! Kobjects embedded in Rust-managed C structs, and their sysfs attributes
//! as statics.
//!
//! A type that embeds a `struct kobject` says where with [`HasKobject`] and
//! what its last put does with [`Release`]. Its files are [`Attribute`]s,
//! each implemented by an [`AttributeOperations`] type, gathered into an
//! [`AttributeList`]; a [`KobjType`] ties the list and the release together.
//! All of them are built at compile time and live in statics, as C's
//! `__ATTR()`, `ATTRIBUTE_GROUPS()` and `struct kobj_type` initialisers do:
//!
//! ```ignore
//! static SIZE: Attribute<0, SizeFile> = Attribute::new(c"size", 0o444);
//! static ATTRS: AttributeList<Thing, 1> = AttributeList::new([SIZE.erase()]);
//! static KTYPE: KobjType<Thing> = KobjType::new(&KTYPE, Some(&ATTRS));
//! ```
//!
//! A kobject of a [`KobjType<T>`] is always the kobject inside a `T`, so the
//! callbacks hand the attribute operations a `&T`.
//!
//! C header: [`include/linux/kobject.h`](srctree/include/linux/kobject.h).

use crate::{
    bindings,
    error::{to_result, Result},
    ffi::{c_char, c_void},
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CStrExt},
    types::Opaque,
};
use core::{
    cell::UnsafeCell,
    fmt,
    marker::PhantomData,
    ptr::{null, null_mut, NonNull},
};

/// A `struct kobject`.
///
/// # Invariants
///
/// The kobject has been initialised with `kobject_init()` (or made by
/// `kobject_create_and_add()`), and is alive while a `&Kobject` is.
#[repr(transparent)]
pub struct Kobject(Opaque<bindings::kobject>);

// SAFETY: a kobject's reference count and sysfs state are changed under
// the kobject core's own locks; nothing here is tied to a thread.
unsafe impl Sync for Kobject {}
// SAFETY: as above.
unsafe impl Send for Kobject {}

impl Kobject {
    /// The kobject at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is an initialised kobject that stays alive for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::kobject) -> &'a Self {
        // SAFETY: (caller's contract); `Kobject` is transparent over it.
        unsafe { &*ptr.cast() }
    }

    /// The C kobject.
    pub fn as_raw(&self) -> *mut bindings::kobject {
        self.0.get()
    }

    /// The kobject's name, once it has one (after [`Kobject::add`]).
    pub fn name(&self) -> Option<&CStr> {
        // SAFETY: the kobject is alive (type invariant); its name is set by
        // `kobject_add()` and freed only on its release.
        let name = unsafe { (*self.as_raw()).name };
        // SAFETY: a NUL-terminated string owned by the kobject, which
        // outlives `&self`.
        (!name.is_null()).then(|| unsafe { CStr::from_char_ptr(name) })
    }

    /// `kobject_init()` of the kobject inside `this`, with type `ktype`.
    ///
    /// # Safety
    ///
    /// `this` points to a `T` whose kobject is not initialised yet and is
    /// all-zero (as C's static and `kzalloc` initialisers leave it); from
    /// now on that `T` stays alive until `T::release` is called for it.
    pub unsafe fn init<T: Release>(this: NonNull<T>, ktype: &'static KobjType<T>) {
        // SAFETY: (caller's contract) a fresh kobject inside a live `T`, at
        // the offset `HasKobject` promises; the type is a static.
        unsafe { bindings::kobject_init(T::raw_kobject(this.as_ptr()), ktype.raw.get()) };
    }

    /// `kobject_add()`: names the kobject `name` and makes its directory
    /// under `parent` (or under `/sys` if there is none).
    ///
    /// # Safety
    ///
    /// Called once per kobject, and not while anyone else uses the
    /// kobject: a second add would rename it and free the old name under
    /// readers, leaving its first directory behind.
    pub unsafe fn add(&self, parent: Option<&Kobject>, name: &CStr) -> Result {
        let parent = parent.map_or(null_mut(), Kobject::as_raw);
        // SAFETY: the kobject is initialised and alive (type invariant), the
        // parent too; added once, by no one else meanwhile (our contract);
        // `%s` takes the NUL-terminated name.
        to_result(unsafe {
            bindings::kobject_add(
                self.as_raw(),
                parent,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        })
    }

    /// [`Kobject::add`] with a name formatted once, e.g.
    /// `fmt!("{name},{pos}")`.
    ///
    /// # Safety
    ///
    /// As for [`Kobject::add`].
    pub unsafe fn add_fmt(&self, parent: Option<&Kobject>, name: fmt::Arguments<'_>) -> Result {
        let parent = parent.map_or(null_mut(), Kobject::as_raw);
        // SAFETY: as in `add` (our contract is its); `%pA` formats the `fmt::Arguments` passed by
        // address, which lives across the call.
        to_result(unsafe {
            bindings::kobject_add(
                self.as_raw(),
                parent,
                c"%pA".as_char_ptr(),
                core::ptr::from_ref(&name).cast::<c_void>(),
            )
        })
    }

    /// `kobject_put()`: drops a reference; on the last one the kobject's
    /// directory goes and its type's release runs.
    ///
    /// # Safety
    ///
    /// The caller owns a reference to the kobject (the one `init` gave, or
    /// one it took), and does not use the kobject through it afterwards.
    pub unsafe fn put(&self) {
        // SAFETY: (caller's contract).
        unsafe { bindings::kobject_put(self.as_raw()) };
    }
}

/// `kernel_kobj`, the kobject of `/sys/kernel`; `None` before it is made
/// (a core initcall).
pub fn kernel_kobj() -> Option<&'static Kobject> {
    // SAFETY: a plain read of a pointer C sets once, at boot.
    let kobj = unsafe { bindings::kernel_kobj };
    // SAFETY: `ksysfs_init()` creates `/sys/kernel` once and never puts it:
    // the kobject lives as long as the kernel, so `'static` is true here.
    (!kobj.is_null()).then(|| unsafe { Kobject::from_raw(kobj) })
}

/// A directory kobject made with `kobject_create_and_add()`; dropping it
/// puts the reference, which removes the directory.
///
/// # Invariants
///
/// Owns one reference to a live kobject.
pub struct KobjectDir(NonNull<bindings::kobject>);

// SAFETY: see `Kobject`; the owned reference may be dropped on any thread.
unsafe impl Send for KobjectDir {}
// SAFETY: see `Kobject`.
unsafe impl Sync for KobjectDir {}

impl KobjectDir {
    /// `kobject_create_and_add()`: an empty directory `name` under `parent`.
    pub fn new(name: &CStr, parent: Option<&Kobject>) -> Result<Self> {
        let parent = parent.map_or(null_mut(), Kobject::as_raw);
        // SAFETY: a NUL-terminated name and a live parent (or none).
        let kobj = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        // INVARIANT: on success we hold the reference it returned.
        NonNull::new(kobj).map(KobjectDir).ok_or(ENOMEM)
    }
}

impl core::ops::Deref for KobjectDir {
    type Target = Kobject;

    fn deref(&self) -> &Kobject {
        // SAFETY: alive while we hold our reference (type invariant).
        unsafe { Kobject::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for KobjectDir {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant), not used again.
        unsafe { bindings::kobject_put(self.0.as_ptr()) };
    }
}

/// A type with a `struct kobject` inside.
///
/// # Safety
///
/// `KOBJ_OFFSET` is the offset of a `struct kobject` within `Self`, and
/// `Self` is valid for as long as that kobject is, i.e. until its release.
/// The kobject is inside an [`Opaque`] (or another `UnsafeCell`), since C
/// changes it while `&Self` exists. The provided methods are not
/// overridden.
pub unsafe trait HasKobject: Sized {
    /// Where the kobject is.
    const KOBJ_OFFSET: usize;

    /// The kobject inside `this`.
    ///
    /// # Safety
    ///
    /// `this` points into an allocation holding a `Self`.
    unsafe fn raw_kobject(this: *mut Self) -> *mut bindings::kobject {
        // SAFETY: (caller's contract) the offset stays inside the `Self`.
        unsafe { this.byte_add(Self::KOBJ_OFFSET).cast() }
    }

    /// The `Self` around `kobj`.
    ///
    /// # Safety
    ///
    /// `kobj` is the kobject inside a `Self`.
    unsafe fn from_raw_kobject(kobj: *mut bindings::kobject) -> *mut Self {
        // SAFETY: (caller's contract) stepping back stays inside the `Self`.
        unsafe { kobj.byte_sub(Self::KOBJ_OFFSET).cast() }
    }

    /// The kobject inside `self`, once initialised.
    ///
    /// # Safety
    ///
    /// The kobject has been initialised with [`Kobject::init`].
    unsafe fn kobject(&self) -> &Kobject {
        let this = core::ptr::from_ref(self).cast_mut();
        // SAFETY: initialised (caller's contract), and alive while `self` is.
        unsafe { Kobject::from_raw(Self::raw_kobject(this)) }
    }
}

/// What the last put of a `Self`'s kobject does.
pub trait Release: HasKobject {
    /// Called once, on the last put. The kobject's directory is gone and
    /// nothing else refers to `this`; the implementation may free it.
    ///
    /// # Safety
    ///
    /// Only the kobject core calls this, through [`KobjType`].
    unsafe fn release(this: NonNull<Self>);
}

/// What one file of a kobject's directory shows and does on a write.
///
/// Implemented by a type of its own per file; `ID` tells apart several
/// files implemented on one type.
#[vtable]
pub trait AttributeOperations<const ID: u64 = 0> {
    /// The type whose kobject's directory holds the file.
    type Data: HasKobject;

    /// Writes what the file shows into `page`, returning how many bytes.
    fn show(_data: &Self::Data, _page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Acts on `input`, the bytes written to the file.
    fn store(_data: &Self::Data, _input: &[u8]) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Formats into a show callback's page; how many bytes were written, less
/// than a page, as `sysfs_emit()` leaves it (sysfs warns on a full page).
pub fn emit(page: &mut [u8; PAGE_SIZE], args: fmt::Arguments<'_>) -> Result<usize> {
    let mut f = crate::str::Formatter::new(&mut page[..PAGE_SIZE - 1]);
    fmt::Write::write_fmt(&mut f, args).map_err(|_| EOVERFLOW)?;
    Ok(f.bytes_written())
}

/// A sysfs file of the directory of a `O::Data`'s kobject
/// (`struct kobj_attribute`).
///
/// # Invariants
///
/// Its callbacks are `O`'s; it is only ever listed in a [`KobjType`] of
/// `O::Data`.
#[repr(transparent)]
pub struct Attribute<const ID: u64, O> {
    // Opaque: handed to C as `*mut`; its `skey` is the file's lockdep key,
    // which must be in static memory, hence attributes are statics.
    raw: Opaque<bindings::kobj_attribute>,
    _p: PhantomData<O>,
}

// SAFETY: nothing writes the attribute once it is built; C only reads it.
unsafe impl<const ID: u64, O> Sync for Attribute<ID, O> {}
// SAFETY: as above.
unsafe impl<const ID: u64, O> Send for Attribute<ID, O> {}

impl<const ID: u64, O: AttributeOperations<ID>> Attribute<ID, O> {
    /// A file `name` with permissions `mode`.
    ///
    /// A mode that lets anyone read needs `show`, one that lets anyone
    /// write needs `store`; the other way round, the callback would never
    /// run. Checked at compile time where the attribute is a static.
    pub const fn new(name: &'static CStr, mode: u16) -> Self {
        assert!(
            (mode & 0o444 != 0) == O::HAS_SHOW,
            "a readable attribute needs show, and only a readable one has it"
        );
        assert!(
            (mode & 0o222 != 0) == O::HAS_STORE,
            "a writable attribute needs store, and only a writable one has it"
        );
        assert!(
            mode & !0o777 == 0,
            "an attribute's mode is permissions only"
        );
        // SAFETY: all-zero is a valid `kobj_attribute`: NULL pointers, no
        // callbacks, a zeroed lockdep key, as C's static initialisers leave
        // it.
        let mut attr: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
        attr.attr.name = crate::str::as_char_ptr_in_const_context(name);
        attr.attr.mode = mode;
        if O::HAS_SHOW {
            attr.__bindgen_anon_1.show = Some(Self::show_callback);
        }
        if O::HAS_STORE {
            attr.__bindgen_anon_2.store = Some(Self::store_callback);
        }
        Attribute {
            raw: Opaque::new(attr),
            _p: PhantomData,
        }
    }

    /// The attribute for an [`AttributeList`] of its data type.
    pub const fn erase(&'static self) -> ListedAttribute<O::Data> {
        // `attr` is the first member of a `kobj_attribute`.
        ListedAttribute(self.raw.get().cast(), PhantomData)
    }

    /// # Safety
    ///
    /// Called by `kobj_attr_show()` with a kobject whose type lists this
    /// attribute, during the callback alive, and a page-sized buffer.
    unsafe extern "C" fn show_callback(
        kobj: *mut bindings::kobject,
        _attr: *mut bindings::kobj_attribute,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: this attribute is only listed in a `KobjType<O::Data>`
        // (type invariant), so `kobj` is inside an `O::Data`; removing the
        // file waits for running callbacks, so it is alive for this call.
        let data = unsafe { &*O::Data::from_raw_kobject(kobj) };
        // SAFETY: sysfs hands show a page of its own for the call.
        let page = unsafe { &mut *buf.cast::<[u8; PAGE_SIZE]>() };
        match O::show(data, page) {
            // sysfs warns on a full page; `emit` never fills one.
            Ok(len) if len < PAGE_SIZE => len as isize,
            Ok(_) => EOVERFLOW.to_errno() as isize,
            Err(err) => err.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by `kobj_attr_store()` with a kobject as for `show_callback`
    /// and `count` bytes written.
    unsafe extern "C" fn store_callback(
        kobj: *mut bindings::kobject,
        _attr: *mut bindings::kobj_attribute,
        buf: *const c_char,
        count: usize,
    ) -> isize {
        // SAFETY: as in `show_callback`.
        let data = unsafe { &*O::Data::from_raw_kobject(kobj) };
        // SAFETY: sysfs's copy of the `count` written bytes, alive during
        // the call.
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        match O::store(data, input) {
            Ok(()) => count as isize,
            Err(err) => err.to_errno() as isize,
        }
    }
}

/// An [`Attribute`] of a `Data`'s directory, as an [`AttributeList`] holds
/// it.
#[repr(transparent)]
pub struct ListedAttribute<Data>(*mut bindings::attribute, PhantomData<Data>);

/// The files of a `Data`'s directory: `N` attributes and C's NULL after
/// them.
#[repr(C)]
pub struct AttributeList<Data, const N: usize> {
    attrs: [ListedAttribute<Data>; N],
    end: *mut bindings::attribute,
}

// SAFETY: immutable once built; the pointers are to `Sync` statics.
unsafe impl<Data, const N: usize> Sync for AttributeList<Data, N> {}
// SAFETY: as above.
unsafe impl<Data, const N: usize> Send for AttributeList<Data, N> {}

impl<Data, const N: usize> AttributeList<Data, N> {
    /// The list of `attrs`.
    pub const fn new(attrs: [ListedAttribute<Data>; N]) -> Self {
        AttributeList {
            attrs,
            end: null_mut(),
        }
    }
}

/// The type of the kobjects inside `T`s: their release and their files
/// (`struct kobj_type` with one default attribute group).
///
/// # Invariants
///
/// Its release is `T`'s and its attributes all have `T` as their data.
#[repr(C)]
pub struct KobjType<T> {
    raw: Opaque<bindings::kobj_type>,
    group: Opaque<bindings::attribute_group>,
    groups: UnsafeCell<[*const bindings::attribute_group; 2]>,
    _p: PhantomData<T>,
}

// SAFETY: only C reads it (and lockdep never writes into it).
unsafe impl<T> Sync for KobjType<T> {}
// SAFETY: as above.
unsafe impl<T> Send for KobjType<T> {}

impl<T: Release> KobjType<T> {
    /// The type, with the files of `attrs` (or none). `this` is the static
    /// being defined, which C's tables point into:
    /// `static KTYPE: KobjType<T> = KobjType::new(&KTYPE, Some(&ATTRS));`.
    pub const fn new<const N: usize>(
        this: &'static Self,
        attrs: Option<&'static AttributeList<T, N>>,
    ) -> Self {
        // SAFETY: all-zero is a valid `attribute_group` and `kobj_type`:
        // no name, callbacks or groups.
        let mut group: bindings::attribute_group = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut raw: bindings::kobj_type = unsafe { core::mem::zeroed() };
        raw.release = Some(Self::release_callback);
        raw.sysfs_ops = &raw const bindings::kobj_sysfs_ops;
        let groups = match attrs {
            Some(attrs) => {
                group.__bindgen_anon_2.attrs = core::ptr::from_ref(attrs).cast_mut().cast();
                raw.default_groups = this.groups.get().cast();
                [this.group.get().cast_const(), null()]
            }
            None => [null(), null()],
        };
        KobjType {
            raw: Opaque::new(raw),
            group: Opaque::new(group),
            groups: UnsafeCell::new(groups),
            _p: PhantomData,
        }
    }

    /// # Safety
    ///
    /// Called by the kobject core on the last put of a kobject of this type.
    unsafe extern "C" fn release_callback(kobj: *mut bindings::kobject) {
        // SAFETY: only `Kobject::init` gives this type, to the kobject
        // inside a `T` (type invariant), which is alive until here.
        let this = unsafe { NonNull::new_unchecked(T::from_raw_kobject(kobj)) };
        // SAFETY: the kobject core's last put.
        unsafe { T::release(this) };
    }
}

#[kunit_tests(rust_kobject)]
mod tests {
    use super::*;
    use crate::sync::atomic::{Atomic, Relaxed};

    /// A kobject with a value behind it, freed on release.
    #[repr(C)]
    struct Counter {
        kobj: Opaque<bindings::kobject>,
        value: Atomic<u32>,
    }

    // SAFETY: `kobj` is a kobject; a `Counter` lives until its release.
    unsafe impl HasKobject for Counter {
        const KOBJ_OFFSET: usize = core::mem::offset_of!(Counter, kobj);
    }

    static RELEASED: Atomic<u32> = Atomic::new(0);

    impl Release for Counter {
        unsafe fn release(this: NonNull<Self>) {
            RELEASED.fetch_add(1, Relaxed);
            // SAFETY: made by `KBox::into_raw` in `new_counter`; the last put.
            drop(unsafe { KBox::from_raw(this.as_ptr()) });
        }
    }

    struct ValueFile;

    #[vtable]
    impl AttributeOperations for ValueFile {
        type Data = Counter;

        fn show(data: &Counter, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
            emit(page, fmt!("{}\n", data.value.load(Relaxed)))
        }

        fn store(data: &Counter, input: &[u8]) -> Result {
            let value = match input {
                [digits @ .., b'\n'] | digits => digits,
            };
            let value = core::str::from_utf8(value).map_err(|_| EINVAL)?;
            data.value
                .store(value.parse().map_err(|_| EINVAL)?, Relaxed);
            Ok(())
        }
    }

    static VALUE: Attribute<0, ValueFile> = Attribute::new(c"value", 0o644);
    static ATTRS: AttributeList<Counter, 1> = AttributeList::new([VALUE.erase()]);
    static KTYPE: KobjType<Counter> = KobjType::new(&KTYPE, Some(&ATTRS));

    fn new_counter(value: u32) -> Result<NonNull<Counter>> {
        let counter = KBox::new(
            Counter {
                // SAFETY: all-zero is what `kobject_init()` expects.
                kobj: Opaque::new(unsafe { core::mem::zeroed() }),
                value: Atomic::new(value),
            },
            GFP_KERNEL,
        )?;
        let this = NonNull::new(KBox::into_raw(counter)).ok_or(ENOMEM)?;
        // SAFETY: fresh; freed only by its release.
        unsafe { Kobject::init(this, &KTYPE) };
        Ok(this)
    }

    #[test]
    fn the_last_put_releases() -> Result {
        let before = RELEASED.load(Relaxed);
        let counter = new_counter(1)?;
        // SAFETY: initialised by `new_counter`.
        let kobj = unsafe { counter.as_ref().kobject() };
        // SAFETY: the kobject is alive; a second reference, ours.
        unsafe { bindings::kobject_get(kobj.as_raw()) };
        // SAFETY: ours, dropped once.
        unsafe { kobj.put() };
        assert_eq!(RELEASED.load(Relaxed), before);
        // SAFETY: `init`'s reference, the last; not used again.
        unsafe { kobj.put() };
        assert_eq!(RELEASED.load(Relaxed), before + 1);
        Ok(())
    }

    #[test]
    fn files_reach_the_data_through_sysfs_ops() -> Result {
        let dir = KobjectDir::new(c"rust_kobject_test", kernel_kobj())?;
        assert_eq!(dir.name(), Some(c"rust_kobject_test"));
        let counter = new_counter(41)?;
        // SAFETY: initialised by `new_counter`.
        let kobj = unsafe { counter.as_ref().kobject() };
        // SAFETY: added once; only this test knows the kobject.
        let added = unsafe { kobj.add_fmt(Some(&dir), fmt!("counter,{}", 7)) };
        assert_eq!(kobj.name(), Some(c"counter,7"));
        // Through C's `kobj_sysfs_ops`, as a read and a write of
        // `/sys/kernel/rust_kobject_test/counter,7/value` would go.
        // SAFETY: a plain read of a constant C table.
        let ops = unsafe { bindings::kobj_sysfs_ops };
        let attr = VALUE.raw.get().cast::<bindings::attribute>();
        let mut page = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let store = ops.store.ok_or(EINVAL)?;
        let show = ops.show.ok_or(EINVAL)?;
        // SAFETY: a live kobject of `KTYPE`, its attribute, 3 bytes.
        let stored = unsafe { store(kobj.as_raw(), attr, c"42\n".as_char_ptr(), 3) };
        // SAFETY: as above, and a page-sized buffer.
        let shown = unsafe { show(kobj.as_raw(), attr, page.as_mut_ptr().cast()) };
        // SAFETY: as above; "x" does not parse.
        let refused = unsafe { store(kobj.as_raw(), attr, c"x".as_char_ptr(), 1) };
        // SAFETY: `init`'s reference, the last; not used again.
        unsafe { kobj.put() };
        added?;
        assert_eq!(stored, 3);
        assert_eq!(shown, 3);
        assert_eq!(&page[..3], b"42\n");
        assert_eq!(refused, EINVAL.to_errno() as isize);
        Ok(())
    }

    /// That many bytes of text.
    struct Bytes(usize);

    impl fmt::Display for Bytes {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (0..self.0).try_for_each(|_| fmt::Write::write_char(f, 'a'))
        }
    }

    #[test]
    fn emit_stops_at_a_page() -> Result {
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let page: &mut [u8; PAGE_SIZE] = buf.as_mut_slice().try_into().map_err(|_| EINVAL)?;
        assert_eq!(emit(page, fmt!("{}", 7)), Ok(1));
        assert_eq!(
            emit(page, format_args!("{}", Bytes(PAGE_SIZE - 1))),
            Ok(PAGE_SIZE - 1)
        );
        assert_eq!(
            emit(page, format_args!("{}", Bytes(PAGE_SIZE))),
            Err(EOVERFLOW)
        );
        Ok(())
    }
}
