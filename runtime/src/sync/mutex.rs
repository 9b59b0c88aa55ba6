//! [`Mutex`]: an async mutual-exclusion lock, FIFO fair.
//!
//! Kernel: `struct mutex` (`kernel/locking/mutex.c`): [`lock`] is
//! `mutex_lock()`, [`lock_interruptible`] `mutex_lock_interruptible()`,
//! [`lock_killable`] `mutex_lock_killable()`, [`try_lock`]
//! `mutex_trylock()`; dropping the guard is `mutex_unlock()`. Like the
//! kernel's, it remembers its owner ([`holder`]).
//!
//! [`lock`]: Mutex::lock
//! [`lock_interruptible`]: Mutex::lock_interruptible
//! [`lock_killable`]: Mutex::lock_killable
//! [`try_lock`]: Mutex::try_lock
//! [`holder`]: Mutex::holder
//!
//! # Contract
//!
//! - **FIFO.** Lockers that have to wait are served in arrival order; an
//!   unlock with waiters hands the lock straight to the first one (no
//!   barging: a task that arrives while others wait queues behind them).
//! - **Cancel safety.** A dropped lock future gives back its place, or the
//!   lock it was handed, to the next waiter.
//! - **Budget.** An uncontended lock spends a unit of the task's
//!   cooperative budget, so a loop over it yields.
//!
//! # Internals
//!
//! A [`Semaphore`] with one permit (its strict FIFO and hand-off are the
//! lock's), and the value in an `UnsafeCell` that only the permit's holder
//! reaches: one of the crate's audited `unsafe` places (see the crate
//! docs). Each guard turns the cell's pointer into a reference only while
//! it holds the permit, so that reference is the only one. (The first
//! version kept the value in a spin lock to stay safe: two more atomic
//! read-modify-writes per lock, and no mapped guards.)

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use crate::sync::semaphore::{self, Semaphore};
use crate::task::Id;

/// An async mutex: one task at a time holds the value, the others sleep
/// on the lock's wait queue in FIFO order.
///
/// Kernel: `struct mutex`. Unlike `std::sync::Mutex`, the guard may be
/// held across `.await` (it is `Send` when `T: Send`), and there is no
/// poisoning.
///
/// # Contract
///
/// - **FIFO.** Lockers that have to wait are served in arrival order; an
///   unlock with waiters hands the lock straight to the first one (no
///   barging: a task that arrives while others wait queues behind them).
/// - **Cancel safety.** A dropped lock future gives back its place, or the
///   lock it was handed, to the next waiter.
/// - **Budget.** An uncontended lock spends a unit of the task's
///   cooperative budget, so a loop over it yields.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use waitrt::sync::Mutex;
///
/// waitrt::block_on(async {
///     let count = Arc::new(Mutex::new(0));
///     let mut tasks = Vec::new();
///     for _ in 0..10 {
///         let count = count.clone();
///         tasks.push(waitrt::spawn(async move {
///             *count.lock().await += 1;
///         }));
///     }
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(*count.lock().await, 10);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    /// The last holder's task id (0: none, or not a task). Kept for dumps.
    owner: AtomicU64,
    /// Reached only by the holder of `sem`'s one permit.
    data: UnsafeCell<T>,
}

// SAFETY: a `&Mutex<T>` hands out `&mut T` only to the holder of the one
// permit, so it moves `T` between threads (hence `T: Send`) but never
// shares it; `Send` for the mutex itself follows from `UnsafeCell<T>`'s.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Holds a [`Mutex`] locked; unlocks it when dropped.
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync` (as tokio's).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    /// `&mut T`'s auto traits: `Send` when `T: Send`, `Sync` when `T: Sync`.
    _value: PhantomData<&'a mut T>,
}

/// A [`MutexGuard`] narrowed to a part of the value
/// ([`MutexGuard::map`]); unlocks the whole mutex when dropped.
///
/// `Send` when `U: Send`, `Sync` when `U: Sync` (as tokio's).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedMutexGuard<'a, U: ?Sized> {
    value: NonNull<U>,
    unlock: Unlock<'a>,
    _value: PhantomData<&'a mut U>,
}

// SAFETY: the guard is a `&mut U` (its pointer came from one, made while the
// mutex was locked, and it keeps the mutex locked until dropped) plus an
// unlock that is `Send + Sync`: exactly `&mut U`'s auto traits.
unsafe impl<U: ?Sized + Send> Send for MappedMutexGuard<'_, U> {}
// SAFETY: as above: a shared `&MappedMutexGuard` only gives `&U`.
unsafe impl<U: ?Sized + Sync> Sync for MappedMutexGuard<'_, U> {}

/// Holds an `Arc<Mutex>` locked (for guards moved into spawned tasks);
/// unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMutexGuard<T: ?Sized> {
    lock: Arc<Mutex<T>>,
}

// SAFETY: a shared `&OwnedMutexGuard` gives `&T` to every thread that has
// it, so sharing the guard needs `T: Sync` (its `Arc<Mutex<T>>` alone would
// be `Sync` with `T: Send`); this impl replaces the automatic one, as in
// tokio. `Send` stays automatic: moving the guard moves `T`'s ownership.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedMutexGuard<T> {}

/// The lock was held ([`Mutex::try_lock`]), or held in a conflicting mode
/// ([`RwLock::try_read`](super::RwLock::try_read),
/// [`RwLock::try_write`](super::RwLock::try_write)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryLockError(());

/// Releases the permit when dropped.
struct Unlock<'a> {
    sem: &'a Semaphore,
    owner: &'a AtomicU64,
}

// ===== impl Mutex =====

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// Kernel: `mutex_init()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::Mutex::new(5);
    /// assert_eq!(lock.into_inner(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::named(1, "sync::Mutex"),
            owner: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// [`new`](Self::new) for `static`s.
    ///
    /// Kernel: `DEFINE_MUTEX()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::Mutex;
    /// static LOG: Mutex<Vec<String>> = Mutex::const_new(Vec::new());
    /// waitrt::block_on(async { LOG.lock().await.push("up".into()) });
    /// ```
    pub const fn const_new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::const_named(1, "sync::Mutex"),
            owner: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }
    /// The value, consuming the mutex.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitrt::sync::Mutex::new("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting for it in FIFO order.
    ///
    /// Kernel: `mutex_lock()`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back its place in the queue, or the lock
    /// if it had just been handed over, to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::Mutex::new(1);
    ///     *lock.lock().await += 1;
    ///     assert_eq!(*lock.lock().await, 2);
    /// });
    /// ```
    #[doc(alias = "mutex_lock")]
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> + '_ {
        // The wait is listed at our caller's site.
        let site = std::panic::Location::caller();
        async move {
            if semaphore::acquire_at(&self.sem, 1, site).await.is_err() {
                unreachable!("a mutex's semaphore is never closed");
            }
            self.guard()
        }
    }

    /// Locks the mutex unless the current task is signalled first.
    ///
    /// Kernel: `mutex_lock_interruptible()` (`-EINTR`). A lock handed over
    /// before the signal is looked at wins. Outside a task nothing can
    /// signal the caller.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on any signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::Mutex::new(()));
    ///     let held = lock.lock().await;
    ///     let waiter = {
    ///         let lock = lock.clone();
    ///         waitrt::spawn(async move { lock.lock_interruptible().await.map(drop) })
    ///     };
    ///     waitrt::task::yield_now().await;
    ///     waiter.interrupt();
    ///     assert!(waiter.await.unwrap().is_err());
    ///     drop(held);
    /// });
    /// ```
    #[doc(alias = "mutex_lock_interruptible")]
    #[track_caller]
    pub fn lock_interruptible(
        &self,
    ) -> impl Future<Output = Result<MutexGuard<'_, T>, Interrupted>> + '_ {
        let acquire = semaphore::acquire_interruptible(&self.sem, 1);
        async move {
            acquire.await?;
            Ok(self.guard())
        }
    }

    /// Locks the mutex unless the current task is killed first (ordinary
    /// signals are ignored).
    ///
    /// Kernel: `mutex_lock_killable()`.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a fatal signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::Mutex::new(0);
    ///     *lock.lock_killable().await.unwrap() += 1;
    /// });
    /// ```
    #[doc(alias = "mutex_lock_killable")]
    #[track_caller]
    pub fn lock_killable(&self) -> impl Future<Output = Result<MutexGuard<'_, T>, Killed>> + '_ {
        let acquire = semaphore::acquire_killable(&self.sem, 1);
        async move {
            acquire.await?;
            Ok(self.guard())
        }
    }

    /// Locks the mutex unless `timeout` passes first on the runtime's clock.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passes first.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Panics
    ///
    /// When called outside a runtime with timers.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let lock = waitrt::sync::Mutex::new(());
    ///     let held = lock.lock().await;
    ///     assert!(lock.lock_timeout(Duration::from_secs(1)).await.is_err());
    ///     drop(held);
    ///     assert!(lock.lock_timeout(Duration::from_secs(1)).await.is_ok());
    /// });
    /// ```
    #[track_caller]
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<MutexGuard<'_, T>, TimedOut>> + '_ {
        let acquire = semaphore::acquire_timeout(&self.sem, 1, timeout);
        async move {
            acquire.await?;
            Ok(self.guard())
        }
    }

    /// Locks the mutex, blocking the current thread (for code outside
    /// async tasks). Do not call it from a task: it blocks the worker.
    ///
    /// # Panics
    ///
    /// When called from a thread that drives tasks (inside a task or a
    /// runtime's `block_on`), as tokio's does: it would block them, for
    /// good on a current-thread runtime whose task holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(waitrt::sync::Mutex::new(0));
    /// let other = {
    ///     let lock = lock.clone();
    ///     std::thread::spawn(move || *lock.blocking_lock() += 1)
    /// };
    /// other.join().unwrap();
    /// assert_eq!(*lock.blocking_lock(), 1);
    /// ```
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        crate::sync::assert_blocking_allowed("Mutex::blocking_lock");
        if semaphore::block_on(semaphore::acquire_one(&self.sem)).is_err() {
            unreachable!("a mutex's semaphore is never closed");
        }
        self.guard()
    }

    /// Locks the mutex if it is free and nobody waits for it.
    ///
    /// Kernel: `mutex_trylock()`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is locked (or others wait).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::Mutex::new(1);
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// assert!(lock.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_take_for_lock(1) {
            Ok(()) => Ok(self.guard()),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// [`lock`](Self::lock) for an `Arc<Mutex>`: the guard keeps the mutex
    /// alive and can move into a spawned task.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::Mutex::new(1));
    ///     let mut guard = lock.clone().lock_owned().await;
    ///     waitrt::spawn(async move { *guard += 1 }).await.unwrap();
    ///     assert_eq!(*lock.lock().await, 2);
    /// });
    /// ```
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> {
        let site = std::panic::Location::caller();
        async move {
            if semaphore::acquire_at(&self.sem, 1, site).await.is_err() {
                unreachable!("a mutex's semaphore is never closed");
            }
            self.owned_guard()
        }
    }

    /// [`try_lock`](Self::try_lock) for an `Arc<Mutex>`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is locked (or others wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(waitrt::sync::Mutex::new(1));
    /// let guard = lock.clone().try_lock_owned().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// ```
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        match self.sem.try_take_for_lock(1) {
            Ok(()) => Ok(self.owned_guard()),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through `&mut self` (no locking needed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = waitrt::sync::Mutex::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The task that holds the lock, if it is locked by a task (kernel:
    /// `__mutex_owner()`): for dumps and hang reports. A hint: it may
    /// change as soon as it is read.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = std::sync::Arc::new(waitrt::sync::Mutex::new(()));
    ///     assert!(lock.holder().is_none());
    ///     let task = waitrt::spawn({
    ///         let lock = lock.clone();
    ///         async move { std::mem::forget(lock.lock_owned().await) }
    ///     });
    ///     let id = task.id();
    ///     task.await.unwrap();
    ///     assert_eq!(lock.holder(), Some(id));
    /// });
    /// ```
    pub fn holder(&self) -> Option<Id> {
        match self.owner.load(Relaxed) {
            0 => None,
            id => Some(Id(id)),
        }
    }

    /// The guard for a caller that holds the permit.
    fn guard(&self) -> MutexGuard<'_, T> {
        self.set_owner();
        MutexGuard {
            lock: self,
            _value: PhantomData,
        }
    }

    fn owned_guard(self: Arc<Self>) -> OwnedMutexGuard<T> {
        self.set_owner();
        OwnedMutexGuard { lock: self }
    }

    /// Gives the permit back (the guards' drop).
    fn unlock(&self) {
        self.owner.store(0, Relaxed);
        self.sem.set_holder(None);
        self.sem.release(1);
    }

    #[inline]
    fn set_owner(&self) {
        match crate::task::try_id() {
            Some(id) => {
                self.owner.store(id.0, Relaxed);
                self.sem.set_holder(Some(id.0));
            }
            None => self.sem.set_holder_not_a_task(),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

// ===== impl MutexGuard =====

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Narrows the guard to a part of the value: the mutex stays locked
    /// until the returned guard drops. An associated function (call it as
    /// `MutexGuard::map(guard, ..)`), so it does not hide a method of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{MutexGuard, Mutex};
    /// waitrt::block_on(async {
    ///     let lock = Mutex::new((1, String::from("a")));
    ///     let mut name = MutexGuard::map(lock.lock().await, |pair| &mut pair.1);
    ///     name.push('b');
    ///     assert!(lock.try_lock().is_err(), "still locked");
    ///     drop(name);
    ///     assert_eq!(lock.lock().await.1, "ab");
    /// });
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        let lock = this.lock;
        std::mem::forget(this); // the mapped guard unlocks
        let unlock = Unlock {
            sem: &lock.sem,
            owner: &lock.owner,
        };
        // SAFETY: we hold the permit (taken over from `this`), so no other
        // reference to the value exists; the `&mut T` lives for `'a`, the
        // mutex's borrow, and `unlock` gives the permit back only when the
        // mapped guard (which alone holds the projection) drops.
        let value = f(unsafe { &mut *lock.data.get() });
        MappedMutexGuard {
            value: NonNull::from(value),
            unlock,
            _value: PhantomData,
        }
    }

    /// Like [`map`](Self::map), but `f` may decline: the guard comes back
    /// unchanged in `Err`.
    ///
    /// # Errors
    ///
    /// `Err(this)` if `f` returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{MutexGuard, Mutex};
    /// waitrt::block_on(async {
    ///     let lock = Mutex::new(vec![1, 2]);
    ///     let guard = MutexGuard::try_map(lock.lock().await, |v| v.get_mut(5)).unwrap_err();
    ///     let mut first = MutexGuard::try_map(guard, |v| v.first_mut()).unwrap();
    ///     *first = 7;
    ///     drop(first);
    ///     assert_eq!(*lock.lock().await, [7, 2]);
    /// });
    /// ```
    pub fn try_map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        let value = match f(&mut *this) {
            Some(value) => NonNull::from(value),
            None => return Err(this),
        };
        let lock = this.lock;
        std::mem::forget(this); // the mapped guard unlocks
        Ok(MappedMutexGuard {
            value,
            unlock: Unlock {
                sem: &lock.sem,
                owner: &lock.owner,
            },
            _value: PhantomData,
        })
    }

    /// The mutex this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::Mutex::new(0);
    ///     let guard = lock.lock().await;
    ///     assert!(std::ptr::eq(waitrt::sync::MutexGuard::mutex(&guard), &lock));
    /// });
    /// ```
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the permit, so the only references to the
        // value are the ones made through this guard, whose borrows of the
        // guard keep them exclusive (`&mut self`) or shared (`&self`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Relaxed);
        self.sem.set_holder(None);
        self.sem.release(1);
    }
}

// ===== impl MappedMutexGuard =====

impl<'a, U: ?Sized> MappedMutexGuard<'a, U> {
    /// Narrows the guard further (see [`MutexGuard::map`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{MappedMutexGuard, Mutex, MutexGuard};
    /// waitrt::block_on(async {
    ///     let lock = Mutex::new(((1, 2), 3));
    ///     let inner = MutexGuard::map(lock.lock().await, |v| &mut v.0);
    ///     let mut second = MappedMutexGuard::map(inner, |v| &mut v.1);
    ///     *second = 20;
    ///     drop(second);
    ///     assert_eq!(*lock.lock().await, ((1, 20), 3));
    /// });
    /// ```
    pub fn map<V: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> MappedMutexGuard<'a, V> {
        let value = NonNull::from(f(&mut *this));
        MappedMutexGuard {
            value,
            unlock: this.unlock,
            _value: PhantomData,
        }
    }
}

impl<U: ?Sized> Deref for MappedMutexGuard<'_, U> {
    type Target = U;

    fn deref(&self) -> &U {
        // SAFETY: `value` came from the `&mut` that `map` made while the
        // mutex was locked, and `unlock` keeps it locked while we exist.
        unsafe { self.value.as_ref() }
    }
}

impl<U: ?Sized> DerefMut for MappedMutexGuard<'_, U> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.value.as_mut() }
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedMutexGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<U: ?Sized + fmt::Display> fmt::Display for MappedMutexGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

// ===== impl OwnedMutexGuard =====

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(waitrt::sync::Mutex::new(()));
    /// let guard = lock.clone().try_lock_owned().unwrap();
    /// assert!(Arc::ptr_eq(guard.mutex(), &lock));
    /// ```
    pub fn mutex(&self) -> &Arc<Mutex<T>> {
        &self.lock
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the permit (see `MutexGuard::deref`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the permit; `&mut self` makes this the
        // only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

// ===== impl TryLockError =====

impl TryLockError {
    pub(crate) fn new() -> Self {
        TryLockError(())
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryLockError {}
