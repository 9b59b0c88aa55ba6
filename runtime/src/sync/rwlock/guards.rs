//! The guards of an [`RwLock`]: read guards hold an `Arc` of the value,
//! write guards the value's cell; each gives back its permits on drop,
//! after letting go of the value (so a writer finds no reader's clone).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use spin::mutex::SpinMutexGuard;

use super::cell::Slot;
use super::RwLock;
use crate::sync::semaphore::Semaphore;

/// Holds an [`RwLock`] for reading; gives the read lock back when dropped.
///
/// `Send` and `Sync` when `T: Send + Sync`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    value: Option<Arc<T>>,
    sem: &'a Semaphore,
}

/// A read guard narrowed to a part of the value by
/// [`RwLockReadGuard::map`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedRwLockReadGuard<'a, T, U: ?Sized> {
    guard: RwLockReadGuard<'a, T>,
    project: fn(&T) -> &U,
}

/// Holds an [`RwLock`] for writing; unlocks it when dropped.
///
/// `Send` and `Sync` when `T: Send + Sync`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    // Field order is drop order: the value's cell, then the permits.
    data: SpinMutexGuard<'a, Slot<T>>,
    release: WriteRelease<'a, T>,
}

/// Holds an `Arc<RwLock>` for reading.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockReadGuard<T> {
    value: Option<Arc<T>>,
    lock: Arc<RwLock<T>>,
}

/// Holds an `Arc<RwLock>` for writing (the value moves into the guard
/// while it holds the lock).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockWriteGuard<T> {
    slot: Slot<T>,
    lock: Arc<RwLock<T>>,
}

/// Gives back a writer's permits when dropped.
struct WriteRelease<'a, T>(&'a RwLock<T>);

// ===== impl RwLockReadGuard =====

impl<'a, T> RwLockReadGuard<'a, T> {
    pub(super) fn new(sem: &'a Semaphore, value: Arc<T>) -> Self {
        RwLockReadGuard {
            value: Some(value),
            sem,
        }
    }

    /// Narrows the guard to a part of the value.
    ///
    /// Unlike tokio's, `f` is a function (a closure that captures
    /// nothing), called again on every access: the guard keeps the whole
    /// value and no pointer into it (this crate has no `unsafe`).
    ///
    /// # Examples
    ///
    /// ```
    /// use runtime::sync::{RwLock, RwLockReadGuard};
    /// runtime::block_on(async {
    ///     let lock = RwLock::new((1, "one"));
    ///     let name = RwLockReadGuard::map(lock.read().await, |pair| &pair.1);
    ///     assert_eq!(*name, "one");
    /// });
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: fn(&T) -> &U) -> MappedRwLockReadGuard<'a, T, U> {
        MappedRwLockReadGuard {
            guard: this,
            project: f,
        }
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.value {
            Some(value) => value,
            None => unreachable!("a read guard holds the value until dropped"),
        }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.value.take()); // before the permit: see the module docs
        self.sem.release(1);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T, U: ?Sized> Deref for MappedRwLockReadGuard<'_, T, U> {
    type Target = U;

    fn deref(&self) -> &U {
        (self.project)(&self.guard)
    }
}

impl<T, U: ?Sized + fmt::Debug> fmt::Debug for MappedRwLockReadGuard<'_, T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// ===== impl RwLockWriteGuard =====

impl<'a, T> RwLockWriteGuard<'a, T> {
    pub(super) fn new(lock: &'a RwLock<T>, data: SpinMutexGuard<'a, Slot<T>>) -> Self {
        RwLockWriteGuard {
            data,
            release: WriteRelease(lock),
        }
    }

    /// Turns the write lock into a read lock without letting any other
    /// writer in between (waiting readers then join it).
    ///
    /// Kernel: `downgrade_write()`.
    ///
    /// # Examples
    ///
    /// ```
    /// runtime::block_on(async {
    ///     let lock = runtime::sync::RwLock::new(1);
    ///     let mut w = lock.write().await;
    ///     *w = 2;
    ///     let r = w.downgrade();
    ///     assert_eq!(*r, 2);
    ///     assert_eq!(*lock.try_read().unwrap(), 2); // readers share it now
    /// });
    /// ```
    #[doc(alias = "downgrade_write")]
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let RwLockWriteGuard { mut data, release } = self;
        let value = data.share();
        drop(data);
        let lock = release.0;
        std::mem::forget(release);
        lock.release_write(1);
        RwLockReadGuard::new(&lock.sem, value)
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.get()
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T> Drop for WriteRelease<'_, T> {
    fn drop(&mut self) {
        self.0.release_write(0);
    }
}

// ===== impl OwnedRwLockReadGuard =====

impl<T> OwnedRwLockReadGuard<T> {
    pub(super) fn new(lock: Arc<RwLock<T>>, value: Arc<T>) -> Self {
        OwnedRwLockReadGuard {
            value: Some(value),
            lock,
        }
    }

    /// The lock this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// runtime::block_on(async {
    ///     let lock = Arc::new(runtime::sync::RwLock::new(()));
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
        match &self.value {
            Some(value) => value,
            None => unreachable!("a read guard holds the value until dropped"),
        }
    }
}

impl<T> Drop for OwnedRwLockReadGuard<T> {
    fn drop(&mut self) {
        drop(self.value.take()); // before the permit
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
    pub(super) fn new(lock: Arc<RwLock<T>>, slot: Slot<T>) -> Self {
        OwnedRwLockWriteGuard { slot, lock }
    }

    /// Turns the write lock into a read lock without letting any other
    /// writer in between.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// runtime::block_on(async {
    ///     let lock = Arc::new(runtime::sync::RwLock::new(1));
    ///     let r = lock.clone().write_owned().await.downgrade();
    ///     assert_eq!(*r, 1);
    /// });
    /// ```
    pub fn downgrade(mut self) -> OwnedRwLockReadGuard<T> {
        let lock = self.lock.clone();
        let value = {
            let mut data = lock.data.lock();
            *data = std::mem::replace(&mut self.slot, Slot::Out);
            data.share()
        };
        drop(self); // its slot is `Out` now: dropping it gives nothing back
        lock.release_write(1);
        OwnedRwLockReadGuard::new(lock, value)
    }

    /// The lock this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// runtime::block_on(async {
    ///     let lock = Arc::new(runtime::sync::RwLock::new(()));
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
        self.slot.get()
    }
}

impl<T> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.slot.get_mut()
    }
}

impl<T> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        if let Slot::Out = self.slot {
            return; // downgraded
        }
        *self.lock.data.lock() = std::mem::replace(&mut self.slot, Slot::Out);
        self.lock.release_write(0);
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
