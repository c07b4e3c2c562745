// SPDX-License-Identifier: GPL-2.0

//! Declaring a livepatch in Rust.
//!
//! [`klp_patch!`](crate::klp_patch) builds a patch's `klp_patch`, its
//! `klp_object` and `klp_func` arrays (each with the zero entry that ends it)
//! and its `klp_state`s as statics, at compile time, and marks the module
//! as a livepatch in its modinfo. The module's init hands the patch to the
//! core with [`Patch::enable`], on the same `klp_enable_patch()` path a C
//! module takes: the core cannot tell the two apart.
//!
//! What the macro checks at compile time: every object has a function or a
//! callback; a replacement has the signature of the original it replaces,
//! taken from the bindings (or, where the original is not declared there,
//! from a signature the patch author writes and vouches for with `unsafe`);
//! a state's id is not 0, which ends the list.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).

use crate::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_int, c_ulong, c_void},
    loaded_module::LoadedModule,
    prelude::*,
    sync::atomic::{AtomicFlag, Relaxed},
    types::Opaque,
    ThisModule,
};
use core::marker::PhantomData;

/// A function of a patch (`struct klp_func`): the original's name and
/// position, and its replacement.
///
/// # Invariants
///
/// `old_name` is a NUL-terminated static string; `new_func` is an
/// `extern "C"` function with the original's signature. Every other field is
/// the core's.
#[repr(transparent)]
pub struct Func(Opaque<bindings::klp_func>);

impl Func {
    /// A function entry; [`klp_patch!`](crate::klp_patch) makes these.
    ///
    /// # Safety
    ///
    /// `new_func` is an `extern "C"` function with the signature of the
    /// function `old_name` names (the `sympos`-th of that name, 0 if it is
    /// unique), in the module that enables the patch.
    #[doc(hidden)]
    pub const unsafe fn new(
        old_name: &'static CStr,
        sympos: usize,
        new_func: *const c_void,
    ) -> Self {
        // SAFETY: all-zero is a valid `klp_func` (null pointers, zero
        // counts, false flags), and the one the core expects it to start as.
        let mut func: bindings::klp_func = unsafe { core::mem::zeroed() };
        // `as_char_ptr()` is not a `const fn`; this is the same cast.
        #[allow(clippy::disallowed_methods)]
        let old_name = old_name.as_ptr().cast();
        func.old_name = old_name;
        func.new_func = new_func.cast_mut();
        func.old_sympos = sympos as c_ulong;
        // INVARIANT: as the caller promised.
        Func(Opaque::new(func))
    }
}

/// An entry of a list the core walks up to an all-zero entry: a [`Func`],
/// an [`Object`] or a [`State`].
///
/// # Safety
///
/// `Self` is a `repr(transparent)` wrapper of an `Opaque<Self::Raw>`, and an
/// all-zero `Raw` is the entry that ends such a list.
pub unsafe trait Entry: Sync {
    /// The C struct of the entry.
    type Raw;
}

// SAFETY: `repr(transparent)` over `Opaque<klp_func>`; the core stops at an
// entry without `old_name`, `new_func` and `old_sympos`.
unsafe impl Entry for Func {
    type Raw = bindings::klp_func;
}
// SAFETY: `repr(transparent)` over `Opaque<klp_object>`; the core stops at an
// entry without `name` and `funcs`.
unsafe impl Entry for Object {
    type Raw = bindings::klp_object;
}
// SAFETY: `repr(transparent)` over `Opaque<klp_state>`; the core stops at id 0.
unsafe impl Entry for State {
    type Raw = bindings::klp_state;
}

/// Entries, then the all-zero entry the core stops at.
#[repr(C)]
pub struct List<E: Entry, const N: usize> {
    entries: [E; N],
    end: Opaque<E::Raw>,
}

impl<E: Entry, const N: usize> List<E, N> {
    /// The list of `entries` and its terminator.
    #[doc(hidden)]
    pub const fn new(entries: [E; N]) -> Self {
        List {
            entries,
            end: Opaque::zeroed(),
        }
    }

    /// The entries, without the terminator.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    const fn as_ptr(&'static self) -> *mut E::Raw {
        // The entries and the terminator, which follows them (`repr(C)`,
        // each entry a transparent `Raw`).
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

// SAFETY: the entries are `Sync` (`Entry`); the terminator is all-zero and
// nobody writes it.
unsafe impl<E: Entry, const N: usize> Sync for List<E, N> {}

/// The functions of one object (none only for an object with callbacks,
/// which [`Object::new`] checks).
pub type FuncList<const N: usize> = List<Func, N>;
/// The objects of a patch.
pub type ObjectList<const N: usize> = List<Object, N>;
/// The states of a patch (possibly none).
pub type StateList<const N: usize> = List<State, N>;

/// What a patch changes in one object (`struct klp_object`): vmlinux, or a
/// module by name, which may be loaded before or after the patch.
#[repr(transparent)]
pub struct Object(Opaque<bindings::klp_object>);

impl Object {
    /// An object entry; [`klp_patch!`](crate::klp_patch) makes these.
    /// `name` is `None` for vmlinux.
    ///
    /// # Safety
    ///
    /// `funcs` belongs to this object alone: the core links its entries into
    /// the object's lists, which two objects cannot share. `callbacks` made
    /// by [`callbacks::<C, P>()`](callbacks) have `P` name the patch this
    /// object is in (their `Target` looks up that patch's states).
    #[doc(hidden)]
    pub const unsafe fn new<const N: usize>(
        name: Option<&'static CStr>,
        funcs: &'static FuncList<N>,
        callbacks: bindings::klp_callbacks,
    ) -> Self {
        // An object that neither patches nor calls back does nothing: a
        // mistake. (Objects with callbacks only are fine, as upstream's demo
        // has.)
        assert!(
            N > 0
                || callbacks.pre_patch.is_some()
                || callbacks.post_patch.is_some()
                || callbacks.pre_unpatch.is_some()
                || callbacks.post_unpatch.is_some(),
            "a livepatch object needs at least one function or a callback"
        );
        // SAFETY: all-zero is a valid `klp_object`, as for `klp_func`.
        let mut obj: bindings::klp_object = unsafe { core::mem::zeroed() };
        obj.name = match name {
            // As in `Func::new`.
            #[allow(clippy::disallowed_methods)]
            Some(name) => name.as_ptr().cast(),
            None => core::ptr::null(),
        };
        obj.funcs = funcs.as_ptr();
        obj.callbacks = callbacks;
        Object(Opaque::new(obj))
    }

    /// The module's name, or `None` for vmlinux.
    pub fn name(&self) -> Option<&CStr> {
        // SAFETY: `name` was set by `new` and is never written again.
        let name = unsafe { (*self.0.get()).name };
        // SAFETY: null or a static NUL-terminated string (`new`).
        (!name.is_null()).then(|| unsafe { CStr::from_char_ptr(name) })
    }
}

/// A state a patch declares it changes (`struct klp_state`), by id and
/// version: what atomic replace checks before one patch replaces another.
#[repr(transparent)]
pub struct State(Opaque<bindings::klp_state>);

impl State {
    /// A state entry; the id 0 does not compile (it ends the list).
    #[doc(hidden)]
    pub const fn new(id: c_ulong, version: u32) -> Self {
        assert!(id != 0, "a klp_state id must not be 0: 0 ends the list");
        // SAFETY: all-zero is a valid `klp_state`.
        let mut state: bindings::klp_state = unsafe { core::mem::zeroed() };
        state.id = id;
        state.version = version;
        State(Opaque::new(state))
    }

    /// The state's id.
    pub fn id(&self) -> c_ulong {
        // SAFETY: `id` is set by `new` and never written again.
        unsafe { (*self.0.get()).id }
    }

    /// The state's version.
    pub fn version(&self) -> u32 {
        // SAFETY: as for `id`.
        unsafe { (*self.0.get()).version }
    }
}

/// The states with id `ID`, whose data is a `KBox<T>`: what gives the
/// `void *data` of a `klp_state` a type. A cumulative patch finds the state
/// of the patch it replaces by id ([`Target::prev_state`]) and takes its
/// data over, so every patch that declares the id must agree on the type.
///
/// The data is reached only from the patch's callbacks ([`Target::state`]),
/// which the core runs one at a time, under its lock: that is what makes a
/// `&mut T` of it sound, and why `T` needs to be `Send` (the callbacks run in
/// whichever task enables, disables or loads) but not `Sync`.
///
/// ```
/// use kernel::livepatch::StateData;
///
/// // SAFETY: every livepatch that declares state 0x5253_0001 keeps a
/// // `KBox<u64>` in its data, if anything.
/// const SAVED: StateData<u64, 0x5253_0001> = unsafe { StateData::new() };
/// assert_eq!(SAVED.id(), 0x5253_0001);
/// ```
pub struct StateData<T, const ID: c_ulong>(PhantomData<fn(T) -> T>);

impl<T: Send + 'static, const ID: c_ulong> StateData<T, ID> {
    /// The data of the states with id `ID`.
    ///
    /// # Safety
    ///
    /// For every livepatch (Rust or C, in this module or another) that
    /// declares a state with id `ID`:
    ///
    /// - its `data` is NULL or points at a `T` from `kmalloc()` (what a
    ///   `KBox<T>` holds), `T` having the same layout and drop in every
    ///   module (a primitive, or a `#[repr(C)]` type defined alike);
    /// - it reaches the data only from its (un)patch callbacks;
    /// - if it copies the pointer from the state it takes over instead of
    ///   taking it ([`StateRef::take`]), as C's `test_klp_state2.c` does, it
    ///   is a `replace` patch: the patches it replaces never run a callback
    ///   again, so only one patch that can still use the data has it.
    ///
    /// And `T` holds nothing that lives in a module's memory (references to
    /// its statics, pointers to its functions, its trait objects): a later
    /// patch takes the data over and its module may outlive the one that
    /// made it.
    pub const unsafe fn new() -> Self {
        assert!(ID != 0, "a klp_state id must not be 0: 0 ends the list");
        assert!(
            core::mem::size_of::<T>() > 0,
            "klp_state data must not be zero-sized: C would kfree() a pointer kmalloc() never gave"
        );
        StateData(PhantomData)
    }

    /// The id, for the patch's `states:` list.
    pub const fn id(&self) -> c_ulong {
        ID
    }
}

/// A state of a patch with data of type `T`, while a callback runs: see
/// [`StateData`].
pub struct StateRef<'a, T> {
    state: &'a State,
    _data: PhantomData<&'a mut Option<KBox<T>>>,
}

impl<'a, T: Send + 'static> StateRef<'a, T> {
    /// # Safety
    ///
    /// `state` is a state whose data is NULL or owned by a `KBox<T>`
    /// ([`StateData::new`]), and no other reference to its data exists for
    /// `'a` (callbacks run one at a time and this borrows the one [`Target`]
    /// of the running one mutably).
    unsafe fn new(state: &'a State) -> Self {
        StateRef {
            state,
            _data: PhantomData,
        }
    }

    fn data(&self) -> *mut T {
        // SAFETY: `data` is written only by callbacks, which run one at a
        // time (`new`'s contract); this one runs now.
        unsafe { (*self.state.0.get()).data }.cast()
    }

    fn set_data(&mut self, data: *mut T) {
        // SAFETY: as in `data`.
        unsafe { (*self.state.0.get()).data = data.cast() };
    }

    /// The version the patch declared the state with.
    pub fn version(&self) -> u32 {
        self.state.version()
    }

    /// The data, if the state has any.
    pub fn get(&self) -> Option<&T> {
        // SAFETY: NULL or a live `KBox<T>`'s pointer, not referenced
        // elsewhere for `'a` (`new`'s contract).
        unsafe { self.data().as_ref() }
    }

    /// The data, if the state has any, to change in place.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        // SAFETY: as in `get`; `&mut self` makes the reference unique.
        unsafe { self.data().as_mut() }
    }

    /// Gives the state `data`, handing back what it had.
    pub fn set(&mut self, data: KBox<T>) -> Option<KBox<T>> {
        let old = self.take();
        self.set_data(KBox::into_raw(data));
        old
    }

    /// Takes the data out of the state, leaving it without: for the last
    /// patch to drop it, or for a later patch to take over.
    pub fn take(&mut self) -> Option<KBox<T>> {
        let data = self.data();
        if data.is_null() {
            return None;
        }
        self.set_data(core::ptr::null_mut());
        // SAFETY: a `KBox<T>`'s pointer (`new`'s contract), which the state
        // no longer holds.
        Some(unsafe { KBox::from_raw(data) })
    }
}

/// A livepatch (`struct klp_patch`), declared with
/// [`klp_patch!`](crate::klp_patch) as a static of the livepatch module.
///
/// # Invariants
///
/// `objs` and `states` point at an [`ObjectList`] and a [`StateList`] of
/// statics; `mod` is written once, by the one call of [`Patch::enable`]
/// that `enabling` lets through, before the core sees the patch. After that
/// only the core writes the patch, under its lock.
pub struct Patch {
    patch: Opaque<bindings::klp_patch>,
    states: &'static [State],
    enabling: AtomicFlag,
}

// SAFETY: Rust writes the patch only in the one `enable` call `enabling`
// admits, before the core sees it, and reads only fields set at compile
// time; the core serialises its own accesses.
unsafe impl Sync for Patch {}
// SAFETY: the entries are read by the core and by `name`/`id`/`version`
// (fields set at compile time); written only by the core, under its lock.
unsafe impl Sync for Object {}
// SAFETY: as for `Object`.
unsafe impl Sync for Func {}
// SAFETY: as for `Object`; the data pointer is the core's and the
// callbacks'.
unsafe impl Sync for State {}

impl Patch {
    /// A patch of `objects` that changes `states`; with `replace`, enabling
    /// it replaces every patch enabled before it (atomic replace).
    ///
    /// # Safety
    ///
    /// `objects` and `states` belong to this patch alone, as in
    /// [`Object::new`].
    #[doc(hidden)]
    pub const unsafe fn new<const O: usize, const S: usize>(
        objects: &'static ObjectList<O>,
        states: &'static StateList<S>,
        replace: bool,
    ) -> Self {
        assert!(O > 0, "a livepatch needs at least one object");
        // SAFETY: all-zero is a valid `klp_patch`.
        let mut patch: bindings::klp_patch = unsafe { core::mem::zeroed() };
        patch.objs = objects.as_ptr();
        patch.states = states.as_ptr();
        patch.replace = replace;
        Patch {
            patch: Opaque::new(patch),
            states: &states.entries,
            enabling: AtomicFlag::new(false),
        }
    }

    /// Hands the patch to the core (`klp_enable_patch()`) on behalf of
    /// `module`, the livepatch module whose statics hold it. The patch is in
    /// transition when this returns; a second call fails with `EBUSY`.
    ///
    /// # Safety
    ///
    /// Called from `module`'s init, as its last fallible step: once this
    /// returned `Ok`, the init returns `Ok` too. (The core keeps the patch,
    /// which lives in the module's memory, until it is disabled; the loader
    /// frees a module whose init failed, whatever references it has.)
    pub unsafe fn enable(&'static self, module: &'static ThisModule) -> Result {
        let claim = self.claim()?;
        // SAFETY: the caller's contract.
        unsafe { self.enable_claimed(claim, module) }
    }

    /// The one right to enable the patch; `EBUSY` for every caller after
    /// the first.
    fn claim(&self) -> Result<EnableClaim> {
        if self.enabling.xchg(true, Relaxed) {
            return Err(EBUSY);
        }
        Ok(EnableClaim(()))
    }

    /// [`Patch::enable`] with the right to it taken already.
    ///
    /// # Safety
    ///
    /// As for [`Patch::enable`]; `_claim` is this patch's.
    unsafe fn enable_claimed(
        &'static self,
        _claim: EnableClaim,
        module: &'static ThisModule,
    ) -> Result {
        // SAFETY: the claim is had once (`claim`), and the core has not seen
        // the patch yet: nothing else accesses it.
        unsafe { (*self.patch.get()).mod_ = module.as_ptr() };
        // SAFETY: a complete patch: its lists end in zero entries (the list
        // types), its names are static strings and every replacement has its
        // original's signature (`Func::new`), all in `module`.
        to_result(unsafe { bindings::klp_enable_patch(self.patch.get()) })
    }
}

/// What [`Patch::claim`] gives its one successful caller.
struct EnableClaim(());

/// The object a callback is called for, with its module while it runs, and
/// the patch's states. There is one for each callback call, and the core
/// runs one callback at a time: a `&mut Target` is the right to a state's
/// data.
pub struct Target<'a> {
    patch: &'a Patch,
    object: &'a Object,
    module: Option<&'a LoadedModule>,
}

impl<'a> Target<'a> {
    /// The object's entry in the patch.
    pub fn object(&self) -> &'a Object {
        self.object
    }

    /// The module the object names, loaded (or being loaded or removed);
    /// `None` for vmlinux.
    pub fn module(&self) -> Option<&'a LoadedModule> {
        self.module
    }

    /// The patch's state with id `ID` (`klp_get_state()`), if it declares
    /// one.
    pub fn state<T: Send + 'static, const ID: c_ulong>(
        &mut self,
        _data: &StateData<T, ID>,
    ) -> Option<StateRef<'_, T>> {
        let state = self.patch.states.iter().find(|state| state.id() == ID)?;
        // SAFETY: the data of state `ID` is NULL or a `KBox<T>`'s
        // (`StateData::new`); `&mut self` is the running callback's one
        // right to it.
        Some(unsafe { StateRef::new(state) })
    }

    /// The state with id `ID` that this patch takes over
    /// (`klp_get_prev_state()`): that of the last patch before it on the
    /// core's list that declares one. `None` if there is none, and always
    /// for a module object's callbacks (see below).
    ///
    /// The core answers for the patch in transition, and asked while none is
    /// it warns. A vmlinux object's callbacks run only in the transitions of
    /// its own patch (enabling, disabling, reversing), but a module object's
    /// also run when the module comes or goes, outside of them, and the
    /// callback cannot tell which: so only the former ask, and a patch hands
    /// its states over in its vmlinux object's callbacks (an object with
    /// callbacks and no functions will do).
    pub fn prev_state<T: Send + 'static, const ID: c_ulong>(
        &mut self,
        _data: &StateData<T, ID>,
    ) -> Option<StateRef<'_, T>> {
        if self.object.name().is_some() {
            return None;
        }
        // SAFETY: a vmlinux object's callback, run by the core with
        // `klp_mutex` held while its patch is the one in transition, which is
        // what the function asks; it only reads the list of patches.
        let state = unsafe { bindings::klp_get_prev_state(ID) };
        // SAFETY: NULL, or a state of a patch on the core's list (enabled, or
        // replaced by this transition, which frees such patches only after
        // its callbacks ran), so alive while this callback runs. `State` is a
        // transparent `klp_state`.
        let state = unsafe { state.cast::<State>().as_ref() }?;
        // SAFETY: as in `state`: the same id, so the same data type, and
        // only callbacks, this one now, touch it.
        Some(unsafe { StateRef::new(state) })
    }

    /// # Safety
    ///
    /// `obj` is an [`Object`] of `patch`, which the core calls a callback
    /// of, for the duration of the callback (the core keeps its `mod` set
    /// and the module in memory meanwhile).
    unsafe fn from_raw(patch: &'a Patch, obj: *mut bindings::klp_object) -> Self {
        // SAFETY: `Object` is a transparent `klp_object`, alive as long as
        // its module (the caller's contract).
        let object = unsafe { &*obj.cast::<Object>() };
        // SAFETY: the core sets `mod` for a loaded object before a callback.
        let module = unsafe { (*obj).mod_ };
        Target {
            patch,
            object,
            // SAFETY: null, or the object's module, alive during the call.
            module: (!module.is_null()).then(|| unsafe { LoadedModule::from_raw(module) }),
        }
    }
}

/// What a patch runs around patching and unpatching one of its objects,
/// as upstream's `klp_callbacks`: `pre_patch` may refuse (the object, and
/// the patch or the module, are then not patched); the post-unpatch one runs
/// only if the pre-patch one succeeded. They run with the core's lock
/// (`klp_mutex`) held, so they must not enable or disable patches.
#[vtable]
pub trait Callbacks {
    /// Before the object is patched.
    fn pre_patch(_target: &mut Target<'_>) -> Result {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
    /// After the object is patched and the transition completed.
    fn post_patch(_target: &mut Target<'_>) {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
    /// Before the object is unpatched.
    fn pre_unpatch(_target: &mut Target<'_>) {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
    /// After the object is unpatched and the transition completed.
    fn post_unpatch(_target: &mut Target<'_>) {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The `klp_callbacks` of an object declared without any.
#[doc(hidden)]
pub const fn no_callbacks() -> bindings::klp_callbacks {
    // SAFETY: all-zero is "no callbacks".
    unsafe { core::mem::zeroed() }
}

/// The [`Patch`] static a [`klp_patch!`](crate::klp_patch) declares, for
/// the callbacks of its objects to find it.
#[doc(hidden)]
pub trait PatchStatic {
    /// The static.
    fn patch() -> &'static Patch;
}

/// The `klp_callbacks` of `C`, with only the callbacks it implements, for an
/// object of `P`'s patch.
#[doc(hidden)]
pub const fn callbacks<C: Callbacks, P: PatchStatic>() -> bindings::klp_callbacks {
    // SAFETY: all-zero is "no callbacks".
    let mut cb: bindings::klp_callbacks = unsafe { core::mem::zeroed() };
    if C::HAS_PRE_PATCH {
        cb.pre_patch = Some(pre_patch::<C, P>);
    }
    if C::HAS_POST_PATCH {
        cb.post_patch = Some(post_patch::<C, P>);
    }
    if C::HAS_PRE_UNPATCH {
        cb.pre_unpatch = Some(pre_unpatch::<C, P>);
    }
    if C::HAS_POST_UNPATCH {
        cb.post_unpatch = Some(post_unpatch::<C, P>);
    }
    cb
}

/// # Safety
///
/// Called by the core with an object of `P`'s patch, as `klp_callbacks` are.
unsafe extern "C" fn pre_patch<C: Callbacks, P: PatchStatic>(
    obj: *mut bindings::klp_object,
) -> c_int {
    // SAFETY: the core calls a callback with the object it belongs to.
    let mut target = unsafe { Target::from_raw(P::patch(), obj) };
    from_result(|| C::pre_patch(&mut target).map(|()| 0))
}

/// # Safety
///
/// Called by the core with an object of `P`'s patch, as `klp_callbacks` are.
unsafe extern "C" fn post_patch<C: Callbacks, P: PatchStatic>(obj: *mut bindings::klp_object) {
    // SAFETY: as in `pre_patch`.
    C::post_patch(&mut unsafe { Target::from_raw(P::patch(), obj) });
}

/// # Safety
///
/// Called by the core with an object of `P`'s patch, as `klp_callbacks` are.
unsafe extern "C" fn pre_unpatch<C: Callbacks, P: PatchStatic>(obj: *mut bindings::klp_object) {
    // SAFETY: as in `pre_patch`.
    C::pre_unpatch(&mut unsafe { Target::from_raw(P::patch(), obj) });
}

/// # Safety
///
/// Called by the core with an object of `P`'s patch, as `klp_callbacks` are.
unsafe extern "C" fn post_unpatch<C: Callbacks, P: PatchStatic>(obj: *mut bindings::klp_object) {
    // SAFETY: as in `pre_patch`.
    C::post_unpatch(&mut unsafe { Target::from_raw(P::patch(), obj) });
}

/// A livepatch module: a `module!` type that implements this instead of
/// [`Module`](crate::Module) gets an init that runs [`LivepatchModule::init`]
/// and then enables [`LivepatchModule::patch`] as its last step, which is
/// what makes enabling safe here (see [`Patch::enable`]). The right to
/// enable is taken before `init` runs, so calling that `Module::init` again
/// (from `init`, say) fails with `EBUSY` instead of enabling the patch in a
/// load that may still fail.
pub trait LivepatchModule: Sized + Sync + Send {
    /// The module's patch, declared in the module with
    /// [`klp_patch!`](crate::klp_patch).
    fn patch() -> &'static Patch;

    /// What the module sets up before its patch is enabled. If enabling
    /// fails, the value is dropped and the module's load fails.
    fn init(module: &'static ThisModule) -> Result<Self>;
}

impl<M: LivepatchModule> crate::Module for M {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let patch = M::patch();
        // Taken before `M::init` runs, so that this function, which anyone
        // may call, enables the patch only where nothing can fail after it:
        // a call from inside `M::init` (which could then fail the load with
        // the patch enabled) gets `EBUSY`.
        let claim = patch.claim()?;
        let this = <M as LivepatchModule>::init(module)?;
        // SAFETY: the last fallible step: `Ok` follows. The patch is a static
        // of the module (`klp_patch!` makes it in the module that invokes
        // it, and `Patch::new` is not for anyone else), and the claim is its.
        unsafe { patch.enable_claimed(claim, module) }?;
        Ok(this)
    }
}

/// Declares a livepatch as a static [`Patch`], with its objects, functions
/// and states, and marks the module as a livepatch (`livepatch=Y` in its
/// modinfo, as C's `MODULE_INFO(livepatch, "Y")`).
///
/// Each function is `{ original => replacement }`, where `original` is
/// declared in the bindings and the replacement, an `extern "C"` function,
/// must have its signature; or, for an original the bindings do not
/// declare (a `static` C function), `{ unsafe fn original(types) -> ret =>
/// replacement }`, where the author vouches for the signature written.
/// The second form takes `, sympos = N` for the N-th function of that name.
///
/// ```ignore
/// kernel::klp_patch! {
///     static PATCH = {
///         objects: [
///             vmlinux {
///                 funcs: [
///                     // SAFETY: `cmdline_proc_show()` in fs/proc/cmdline.c.
///                     { unsafe fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
///                         => cmdline_proc_show_patched },
///                 ],
///             },
///             module "livepatch_callbacks_mod" {
///                 funcs: [ { callbacks_mod_work_func => work_func_patched } ],
///                 callbacks: Demo,
///             },
///         ],
///         states: [ { id: 1, version: 1 } ],
///         replace: true,
///     };
/// }
/// ```
#[macro_export]
macro_rules! klp_patch {
    (
        $(#[$meta:meta])*
        $vis:vis static $name:ident = {
            objects: [ $(
                $kind:ident $($module:literal)? {
                    funcs: [ $( { $($func:tt)* } ),* $(,)? ]
                    $(, callbacks: $callbacks:ty)?
                    $(,)?
                }
            ),+ $(,)? ]
            $(, states: [ $( { id: $id:expr, version: $version:expr } ),* $(,)? ])?
            $(, replace: $replace:expr)?
            $(,)?
        };
    ) => {
        #[cfg(MODULE)]
        #[link_section = ".modinfo"]
        #[used(compiler)]
        static __KLP_MODINFO_LIVEPATCH: [u8; 12] = *b"livepatch=Y\0";
        #[cfg(not(MODULE))]
        ::core::compile_error!("a livepatch must be built as a loadable module");

        $(#[$meta])*
        $vis static $name: $crate::livepatch::Patch = {
            // What the objects' callbacks find the patch by.
            struct __KlpPatchStatic;
            impl $crate::livepatch::PatchStatic for __KlpPatchStatic {
                fn patch() -> &'static $crate::livepatch::Patch {
                    &$name
                }
            }
            static OBJECTS: $crate::livepatch::ObjectList<{ 0 $(+ $crate::__klp_one!($kind))+ }> =
                $crate::livepatch::ObjectList::new([ $(
                    // SAFETY: the function list is the static just above,
                    // which nothing else names.
                    unsafe { $crate::livepatch::Object::new(
                        $crate::__klp_object_name!($kind $($module)?),
                        {
                            static FUNCS: $crate::livepatch::FuncList<
                                { 0 $(+ $crate::__klp_one!({ $($func)* }))* }
                            > = $crate::livepatch::FuncList::new([
                                $( $crate::__klp_func!($($func)*) ),*
                            ]);
                            &FUNCS
                        },
                        $crate::__klp_callbacks!($($callbacks)?),
                    ) }
                ),+ ]);
            static STATES: $crate::livepatch::StateList<
                { 0 $($(+ $crate::__klp_one!($id))*)? }
            > = $crate::livepatch::StateList::new([
                $($( $crate::livepatch::State::new($id, $version) ),*)?
            ]);
            // SAFETY: `OBJECTS` and `STATES` are the statics just above, which
            // nothing else names.
            unsafe {
                $crate::livepatch::Patch::new(&OBJECTS, &STATES, $crate::__klp_replace!($($replace)?))
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __klp_one {
    ($($x:tt)*) => {
        1
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __klp_object_name {
    (vmlinux) => {
        ::core::option::Option::None
    };
    (module $name:literal) => {
        ::core::option::Option::Some($crate::c_str!($name))
    };
    ($($other:tt)*) => {
        ::core::compile_error!("an object is `vmlinux { ... }` or `module \"name\" { ... }`")
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __klp_callbacks {
    () => {
        $crate::livepatch::no_callbacks()
    };
    ($callbacks:ty) => {
        $crate::livepatch::callbacks::<$callbacks, __KlpPatchStatic>()
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __klp_replace {
    () => {
        false
    };
    ($replace:expr) => {
        $replace
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __klp_func {
    // The original as the bindings declare it.
    // (No `sympos`: the bindings describe the one global declaration, not
    // the static functions of the same name a position would pick.)
    ($old:ident => $new:path) => {{
        // The replacement has the original's type: both coerce to one
        // function pointer type, or the build fails here.
        const _: () = {
            let _ = [$crate::bindings::$old, $new];
        };
        // SAFETY: `$new` has the signature of `$old` (checked above), which
        // is the function of that name the core looks up.
        unsafe {
            $crate::livepatch::Func::new(
                $crate::c_str!(::core::stringify!($old)),
                0,
                $new as *const $crate::ffi::c_void,
            )
        }
    }};
    // An original the bindings do not declare: the author states its type.
    (unsafe fn $old:ident ( $($arg:ty),* $(,)? ) $(-> $ret:ty)? => $new:path
        $(, sympos = $sympos:expr)?) => {{
        const _: unsafe extern "C" fn($($arg),*) $(-> $ret)? = $new;
        // SAFETY: the patch author vouches (`unsafe fn` in the declaration)
        // that `$old` has the signature written, which `$new` has (checked
        // above).
        unsafe {
            $crate::livepatch::Func::new(
                $crate::c_str!(::core::stringify!($old)),
                0 $(+ $sympos)?,
                $new as *const $crate::ffi::c_void,
            )
        }
    }};
    (fn $($rest:tt)*) => {
        ::core::compile_error!(
            "a signature written by hand must be `unsafe fn`: only the patch author can vouch for it"
        )
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "a function is `{ original => replacement }` or \
             `{ unsafe fn original(types) -> type => replacement }`"
        )
    };
}

#[kunit_tests(rust_livepatch_patch)]
mod tests {
    use super::*;

    extern "C" fn replacement() {}

    static FUNCS: FuncList<2> = FuncList::new(
        // SAFETY: never enabled: only the layout is looked at.
        unsafe {
            [
                Func::new(c"first", 0, replacement as *const c_void),
                Func::new(c"second", 2, replacement as *const c_void),
            ]
        },
    );
    static OBJECTS: ObjectList<1> = ObjectList::new([
        // SAFETY: `FUNCS` belongs to this object alone.
        unsafe {
            Object::new(
                Some(c"a_module"),
                &FUNCS,
                callbacks::<OnlyPostPatch, ThisPatch>(),
            )
        },
    ]);
    static STATES: StateList<1> = StateList::new([State::new(7, 3)]);
    // SAFETY: `OBJECTS` and `STATES` belong to this patch alone.
    static PATCH: Patch = unsafe { Patch::new(&OBJECTS, &STATES, true) };

    struct OnlyPostPatch;

    struct ThisPatch;

    impl PatchStatic for ThisPatch {
        fn patch() -> &'static Patch {
            &PATCH
        }
    }

    #[vtable]
    impl Callbacks for OnlyPostPatch {
        fn post_patch(_target: &mut Target<'_>) {}
    }

    #[test]
    fn lists_end_in_the_zero_entry_the_core_stops_at() {
        let funcs = FUNCS.as_ptr();
        // SAFETY: `FUNCS` holds two entries and the terminator.
        let (first, second, end) = unsafe { (&*funcs, &*funcs.add(1), &*funcs.add(2)) };
        // SAFETY: set from static C strings.
        assert_eq!(unsafe { CStr::from_char_ptr(first.old_name) }, c"first");
        assert_eq!(second.old_sympos, 2);
        assert!(end.old_name.is_null() && end.new_func.is_null());
        // SAFETY: `OBJECTS` holds one entry and the terminator.
        let end = unsafe { &*OBJECTS.as_ptr().add(1) };
        assert!(end.name.is_null() && end.funcs.is_null());
        // SAFETY: `STATES` holds one entry and the terminator.
        assert_eq!(unsafe { (*STATES.as_ptr().add(1)).id }, 0);
    }

    #[test]
    fn the_patch_points_at_its_lists() {
        // SAFETY: never enabled: nothing writes it.
        let patch = unsafe { &*PATCH.patch.get() };
        assert_eq!(patch.objs, OBJECTS.as_ptr());
        assert_eq!(patch.states, STATES.as_ptr());
        assert!(patch.replace && patch.mod_.is_null());
        assert_eq!(OBJECTS.entries()[0].name(), Some(c"a_module"));
        assert_eq!(
            (STATES.entries()[0].id(), STATES.entries()[0].version()),
            (7, 3)
        );
    }

    // SAFETY: nothing else uses state 7 (of `STATES`) or 8: these tests
    // keep a `KBox<u32>` there.
    const SEVEN: StateData<u32, 7> = unsafe { StateData::new() };
    // SAFETY: as for `SEVEN`.
    const EIGHT: StateData<u32, 8> = unsafe { StateData::new() };

    #[test]
    fn callbacks_find_the_states_of_their_patch() -> Result {
        // SAFETY: an object of `PATCH`, which is never enabled: no callback
        // runs meanwhile.
        let mut target = unsafe { Target::from_raw(&PATCH, OBJECTS.entries()[0].0.get()) };
        assert!(target.module().is_none());
        // The patch declares no state 8.
        assert!(target.state(&EIGHT).is_none());
        let mut seven = target.state(&SEVEN).expect("the patch declares state 7");
        assert_eq!(seven.version(), 3);
        assert!(seven.get().is_none() && seven.take().is_none());
        assert!(seven.set(KBox::new(41, GFP_KERNEL)?).is_none());
        *seven.get_mut().expect("just set") += 1;
        assert_eq!(seven.get(), Some(&42));
        // What it holds is handed back when it is given another value.
        let old = seven.set(KBox::new(1, GFP_KERNEL)?);
        assert_eq!(old.as_deref(), Some(&42));
        // A later lookup sees the data; taking it leaves the state without.
        let mut again = target.state(&SEVEN).expect("declared");
        assert_eq!(again.take().as_deref(), Some(&1));
        // SAFETY: read back with no callback running (see above).
        assert!(unsafe { (*STATES.entries()[0].0.get()).data }.is_null());
        assert!(again.take().is_none());
        Ok(())
    }

    static NESTED_FUNCS: FuncList<1> = FuncList::new(
        // SAFETY: never enabled (the core refuses it, see below).
        unsafe { [Func::new(c"nested", 0, replacement as *const c_void)] },
    );
    static NESTED_OBJECTS: ObjectList<1> = ObjectList::new([
        // SAFETY: `NESTED_FUNCS` belongs to this object alone.
        unsafe { Object::new(None, &NESTED_FUNCS, no_callbacks()) },
    ]);
    static NESTED_STATES: StateList<0> = StateList::new([]);
    // SAFETY: `NESTED_OBJECTS` and `NESTED_STATES` belong to this patch alone.
    static NESTED: Patch = unsafe { Patch::new(&NESTED_OBJECTS, &NESTED_STATES, false) };
    static INNER_ERRNO: crate::sync::atomic::Atomic<i32> = crate::sync::atomic::Atomic::new(0);
    static NESTED_ONCE: AtomicFlag = AtomicFlag::new(false);

    /// A livepatch module whose init runs the module init it is part of.
    struct Nested;

    impl LivepatchModule for Nested {
        fn patch() -> &'static Patch {
            &NESTED
        }

        fn init(module: &'static ThisModule) -> Result<Self> {
            // Once, so that an init that did run `Nested::init` again would
            // not recurse for ever.
            if !NESTED_ONCE.xchg(true, Relaxed) {
                let inner = <Nested as crate::Module>::init(module);
                INNER_ERRNO.store(inner.err().map_or(0, |err| err.to_errno()), Relaxed);
            }
            Ok(Nested)
        }
    }

    #[test]
    fn only_the_outer_module_init_may_enable() {
        // SAFETY: NULL is the built-in kernel's module; the core refuses to
        // enable a patch of it (`EINVAL`), so nothing is enabled here.
        static BUILT_IN: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };
        let outer = <Nested as crate::Module>::init(&BUILT_IN);
        // The inner call could not enable the patch: the outer one had taken
        // the right to before running `Nested::init`.
        assert_eq!(INNER_ERRNO.load(Relaxed), EBUSY.to_errno());
        // The outer one asked the core, which refused the module.
        assert!(matches!(outer, Err(err) if err == EINVAL));
        // And the right is gone for good.
        assert!(matches!(<Nested as crate::Module>::init(&BUILT_IN), Err(err) if err == EBUSY));
    }

    #[test]
    fn only_the_callbacks_implemented_are_set() {
        let none = no_callbacks();
        assert!(none.pre_patch.is_none() && none.post_patch.is_none());
        assert!(none.pre_unpatch.is_none() && none.post_unpatch.is_none());
        // SAFETY: never enabled: nothing writes it.
        let cb = unsafe { (*OBJECTS.entries()[0].0.get()).callbacks };
        assert!(cb.post_patch.is_some());
        assert!(cb.pre_patch.is_none() && cb.pre_unpatch.is_none() && cb.post_unpatch.is_none());
    }
}
