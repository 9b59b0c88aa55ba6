//! The guards of an [`RwLock`]: each holds its permits (one for a reader,
//! all of them for a writer), reaches the value through the lock's cell
//! while it holds them, and gives them back when dropped.
//!
//! Every `unsafe` block here turns the cell's pointer into a reference
//! under one rule: a guard holding one permit makes only `&T`, a guard
//! holding every permit may make `&mut T`, and no reference outlives the
//! guard that made it (the borrow of the guard, or the mapped guard's
//! lifetime, ties them).

#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use super::RwLock;
use crate::sync::semaphore::Semaphore;

/// Holds an [`RwLock`] for reading; gives the read lock back when dropped.
///
/// `Send` and `Sync` when `T: Send + Sync`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    reader: Reader,
    _value: PhantomData<&'a T>,
}

/// A read guard narrowed to a part of the value by
/// [`RwLockReadGuard::map`]; gives the read lock back when dropped.
///
/// `Send` and `Sync` when `U: Sync` (it is a `&U`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedRwLockReadGuard<'a, U: ?Sized> {
    value: NonNull<U>,
    sem: &'a Semaphore,
    reader: Reader,
    _value: PhantomData<&'a U>,
}

// SAFETY: the guard is a `&U` (made while one permit was held, which it
// keeps until dropped) plus a `&Semaphore`: `&U`'s auto traits.
unsafe impl<U: ?Sized + Sync> Send for MappedRwLockReadGuard<'_, U> {}
// SAFETY: as above.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwLockReadGuard<'_, U> {}

/// Holds an [`RwLock`] for writing; unlocks it when dropped.
///
/// `Send` and `Sync` when `T: Send + Sync`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    _value: PhantomData<&'a mut T>,
}

/// A write guard narrowed to a part of the value by
/// [`RwLockWriteGuard::map`]; unlocks the whole lock when dropped.
///
/// `Send` when `U: Send`, `Sync` when `U: Sync` (it is a `&mut U`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedRwLockWriteGuard<'a, U: ?Sized> {
    value: NonNull<U>,
    release: WriteRelease<'a>,
    _value: PhantomData<&'a mut U>,
}

// SAFETY: the guard is a `&mut U` (made while every permit was held, which
// it keeps until dropped) plus a `Send + Sync` release: `&mut U`'s traits.
unsafe impl<U: ?Sized + Send> Send for MappedRwLockWriteGuard<'_, U> {}
// SAFETY: as above: a shared `&MappedRwLockWriteGuard` only gives `&U`.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwLockWriteGuard<'_, U> {}

/// Holds an `Arc<RwLock>` for reading.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockReadGuard<T> {
    lock: Arc<RwLock<T>>,
    reader: Reader,
}

/// Holds an `Arc<RwLock>` for writing.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockWriteGuard<T> {
    lock: Arc<RwLock<T>>,
    /// Cleared by `downgrade`, which gives the permits back itself.
    holds: bool,
}

/// The task a read guard named as a holder when it was made, to the test
/// toolkit's hook (`waitq::hook::held_shared`) and, while the whole wait
/// registry is on, to the hung-task detector (`waitq::registry::
/// held_shared`); named again when the guard drops, wherever the guard
/// has moved by then (a reader's hold is the reader's; the lock's
/// semaphore cannot say whose a permit is). 0: neither was on, nothing
/// to take back. Without them: two relaxed loads and a branch when a
/// guard is made, a branch on this field when it drops.
#[derive(Debug, Clone, Copy)]
struct Reader(u64);

impl Reader {
    /// Names the current task (or [`NOT_A_TASK`](waitq::hook::NOT_A_TASK))
    /// a holder of `sem` while a hook is installed.
    #[inline]
    fn new(sem: &Semaphore) -> Reader {
        if !waitq::hook::is_enabled() && !waitq::registry::is_enabled() {
            return Reader(0);
        }
        Reader::named(sem)
    }

    #[cold]
    #[inline(never)]
    fn named(sem: &Semaphore) -> Reader {
        let task = crate::task::try_id().map_or(waitq::hook::NOT_A_TASK, |id| id.0);
        sem.held_shared(task, true);
        Reader(task)
    }

    /// Takes the hold [`new`](Self::new) named back (before the permit
    /// goes, as a writer's record is cleared before its permits).
    #[inline]
    fn release(self, sem: &Semaphore) {
        if self.0 != 0 {
            self.unnamed(sem);
        }
    }

    /// Out of line, as [`named`](Self::named): inlined, it made every read
    /// guard's drop too big to inline (callgrind, rwlock_95r/ct: +22
    /// instructions per read).
    #[cold]
    #[inline(never)]
    fn unnamed(self, sem: &Semaphore) {
        sem.held_shared(self.0, false);
    }
}

/// Gives back a writer's permits when dropped.
struct WriteRelease<'a> {
    sem: &'a Semaphore,
    owner: &'a std::sync::atomic::AtomicU64,
    permits: u32,
}

// ===== impl RwLockReadGuard =====

impl<'a, T> RwLockReadGuard<'a, T> {
    pub(super) fn new(lock: &'a RwLock<T>) -> Self {
        RwLockReadGuard {
            lock,
            reader: Reader::new(&lock.sem),
            _value: PhantomData,
        }
    }

    /// Narrows the guard to a part of the value; the read lock is held
    /// until the returned guard drops. An associated function (call it as
    /// `RwLockReadGuard::map(guard, ..)`), so it hides no method of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{RwLock, RwLockReadGuard};
    /// waitrt::block_on(async {
    ///     let lock = RwLock::new((1, "one"));
    ///     let name = RwLockReadGuard::map(lock.read().await, |pair| &pair.1);
    ///     assert_eq!(*name, "one");
    ///     assert!(lock.try_write().is_err(), "still read-locked");
    /// });
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> MappedRwLockReadGuard<'a, U> {
        let lock = this.lock;
        // SAFETY: `this` holds a read permit, so no `&mut T` exists; the
        // `&T` lives for `'a`, and the permit goes from `this` to the mapped
        // guard, which gives it back only when it drops. (`f` runs while
        // `this` lives: if it panics, `this` gives the permit back.)
        let value = NonNull::from(f(unsafe { &*lock.data.get() }));
        let reader = this.reader;
        std::mem::forget(this); // the mapped guard gives the permit back
        MappedRwLockReadGuard {
            value,
            sem: &lock.sem,
            reader,
            _value: PhantomData,
        }
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: we hold a read permit, so no writer holds every permit
        // and no `&mut T` exists while this `&T` (tied to `&self`) lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.reader.release(&self.lock.sem);
        self.lock.sem.release(1);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// ===== impl MappedRwLockReadGuard =====

impl<'a, U: ?Sized> MappedRwLockReadGuard<'a, U> {
    /// Narrows the guard further (see [`RwLockReadGuard::map`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
    /// waitrt::block_on(async {
    ///     let lock = RwLock::new(((1, 2), 3));
    ///     let inner = RwLockReadGuard::map(lock.read().await, |v| &v.0);
    ///     assert_eq!(*MappedRwLockReadGuard::map(inner, |v| &v.1), 2);
    /// });
    /// ```
    pub fn map<V: ?Sized>(this: Self, f: impl FnOnce(&U) -> &V) -> MappedRwLockReadGuard<'a, V> {
        let value = NonNull::from(f(&*this));
        let (sem, reader) = (this.sem, this.reader);
        std::mem::forget(this); // the new guard gives the permit back
        MappedRwLockReadGuard {
            value,
            sem,
            reader,
            _value: PhantomData,
        }
    }
}

impl<U: ?Sized> Deref for MappedRwLockReadGuard<'_, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: `value` came from a `&U` made under the read permit we
        // still hold (see `RwLockReadGuard::map`).
        unsafe { self.value.as_ref() }
    }
}

impl<U: ?Sized> Drop for MappedRwLockReadGuard<'_, U> {
    fn drop(&mut self) {
        self.reader.release(self.sem);
        self.sem.release(1);
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedRwLockReadGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// ===== impl RwLockWriteGuard =====

impl<'a, T> RwLockWriteGuard<'a, T> {
    pub(super) fn new(lock: &'a RwLock<T>) -> Self {
        RwLockWriteGuard {
            lock,
            _value: PhantomData,
        }
    }

    /// Turns the write lock into a read lock without letting a writer in
    /// between; waiting readers behind it may then join.
    ///
    /// Kernel: `downgrade_write()`.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     let mut w = lock.write().await;
    ///     *w = 2;
    ///     let r = w.downgrade();
    ///     assert_eq!(*r, 2);
    ///     assert!(lock.try_read().is_ok(), "readers share it now");
    /// });
    /// ```
    #[doc(alias = "downgrade_write")]
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let lock = self.lock;
        std::mem::forget(self); // keeps one permit: the read guard's
                                // Named a reader before the writer's record goes: the task holds
                                // the lock throughout.
        let reader = Reader::new(&lock.sem);
        lock.release_write(1);
        RwLockReadGuard {
            lock,
            reader,
            _value: PhantomData,
        }
    }

    /// Narrows the guard to a part of the value; the lock stays
    /// write-locked until the returned guard drops. An associated function
    /// (call it as `RwLockWriteGuard::map(guard, ..)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{RwLock, RwLockWriteGuard};
    /// waitrt::block_on(async {
    ///     let lock = RwLock::new((1, String::from("a")));
    ///     let mut name = RwLockWriteGuard::map(lock.write().await, |pair| &mut pair.1);
    ///     name.push('b');
    ///     assert!(lock.try_read().is_err(), "still write-locked");
    ///     drop(name);
    ///     assert_eq!(lock.read().await.1, "ab");
    /// });
    /// ```
    pub fn map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedRwLockWriteGuard<'a, U> {
        let lock = this.lock;
        // SAFETY: `this` holds every permit, so this `&mut T` is the only
        // reference (`this` itself holds none); it lives for `'a`, and the
        // permits go from `this` to the mapped guard, which gives them back
        // only when it drops. (`f` runs while `this` lives: if it panics,
        // `this` gives the permits back.)
        let value = NonNull::from(f(unsafe { &mut *lock.data.get() }));
        std::mem::forget(this); // the mapped guard gives the permits back
        MappedRwLockWriteGuard {
            value,
            release: lock.write_release(),
            _value: PhantomData,
        }
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: we hold every permit: no other guard exists, and the
        // references we make are tied to our own borrow.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release_write(0);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// ===== impl MappedRwLockWriteGuard =====

impl<'a, U: ?Sized> MappedRwLockWriteGuard<'a, U> {
    /// Narrows the guard further (see [`RwLockWriteGuard::map`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{MappedRwLockWriteGuard, RwLock, RwLockWriteGuard};
    /// waitrt::block_on(async {
    ///     let lock = RwLock::new(((1, 2), 3));
    ///     let inner = RwLockWriteGuard::map(lock.write().await, |v| &mut v.0);
    ///     *MappedRwLockWriteGuard::map(inner, |v| &mut v.1) = 20;
    ///     assert_eq!(*lock.read().await, ((1, 20), 3));
    /// });
    /// ```
    pub fn map<V: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> MappedRwLockWriteGuard<'a, V> {
        let value = NonNull::from(f(&mut *this));
        MappedRwLockWriteGuard {
            value,
            release: this.release,
            _value: PhantomData,
        }
    }
}

impl<U: ?Sized> Deref for MappedRwLockWriteGuard<'_, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: `value` came from the `&mut U` that `map` made while every
        // permit was held, and `release` keeps them until we drop.
        unsafe { self.value.as_ref() }
    }
}

impl<U: ?Sized> DerefMut for MappedRwLockWriteGuard<'_, U> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.value.as_mut() }
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedRwLockWriteGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Drop for WriteRelease<'_> {
    fn drop(&mut self) {
        self.owner.store(0, std::sync::atomic::Ordering::Relaxed);
        self.sem.set_holder(None);
        self.sem.release(u64::from(self.permits));
    }
}

impl<T> RwLock<T> {
    /// The release of every permit, for a mapped write guard.
    fn write_release(&self) -> WriteRelease<'_> {
        WriteRelease {
            sem: &self.sem,
            owner: &self.owner,
            permits: self.max_readers,
        }
    }
}

// ===== impl OwnedRwLockReadGuard =====

impl<T> OwnedRwLockReadGuard<T> {
    pub(super) fn new(lock: Arc<RwLock<T>>) -> Self {
        let reader = Reader::new(&lock.sem);
        OwnedRwLockReadGuard { lock, reader }
    }

    /// The lock this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::RwLock::new(0));
    ///     let guard = lock.clone().read_owned().await;
    ///     assert!(Arc::ptr_eq(guard.rwlock(), &lock));
    /// });
    /// ```
    pub fn rwlock(&self) -> &Arc<RwLock<T>> {
        &self.lock
    }
}

impl<T> Deref for OwnedRwLockReadGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: we hold a read permit (see `RwLockReadGuard::deref`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for OwnedRwLockReadGuard<T> {
    fn drop(&mut self) {
        self.reader.release(&self.lock.sem);
        self.lock.sem.release(1);
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedRwLockReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// ===== impl OwnedRwLockWriteGuard =====

impl<T> OwnedRwLockWriteGuard<T> {
    pub(super) fn new(lock: Arc<RwLock<T>>) -> Self {
        OwnedRwLockWriteGuard { lock, holds: true }
    }

    /// Turns the write lock into a read lock without letting a writer in
    /// between (kernel: `downgrade_write()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::RwLock::new(1));
    ///     let r = lock.clone().write_owned().await.downgrade();
    ///     assert_eq!(*r, 1);
    ///     assert!(lock.try_read().is_ok());
    /// });
    /// ```
    #[doc(alias = "downgrade_write")]
    pub fn downgrade(mut self) -> OwnedRwLockReadGuard<T> {
        let lock = self.lock.clone();
        self.holds = false;
        drop(self);
        // Named a reader before the writer's record goes (as `downgrade`).
        let reader = Reader::new(&lock.sem);
        lock.release_write(1); // keeps one permit: the read guard's
        OwnedRwLockReadGuard { lock, reader }
    }

    /// The lock this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::RwLock::new(0));
    ///     let guard = lock.clone().write_owned().await;
    ///     assert!(Arc::ptr_eq(guard.rwlock(), &lock));
    /// });
    /// ```
    pub fn rwlock(&self) -> &Arc<RwLock<T>> {
        &self.lock
    }
}

impl<T> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: we hold every permit (see `RwLockWriteGuard::deref`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold every permit; `&mut self` makes this the only
        // reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        if self.holds {
            self.lock.release_write(0);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
