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
//! lock's), and the value in a spin lock that only the permit's holder
//! ever takes, so it never spins: it is how `&mut T` reaches the holder
//! without `unsafe`. An [`OwnedMutexGuard`] moves the value out of the
//! cell while it holds the lock and puts it back on unlock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use spin::mutex::{SpinMutex, SpinMutexGuard};
use waitq::{Interrupted, Killed, TimedOut};

use crate::sync::semaphore::{self, Semaphore, SemaphorePermit};
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
/// use runtime::sync::Mutex;
///
/// runtime::block_on(async {
///     let count = Arc::new(Mutex::new(0));
///     let mut tasks = Vec::new();
///     for _ in 0..10 {
///         let count = count.clone();
///         tasks.push(runtime::spawn(async move {
///             *count.lock().await += 1;
///         }));
///     }
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(*count.lock().await, 10);
/// });
/// ```
pub struct Mutex<T> {
    sem: Semaphore,
    /// The last holder's task id (0: none, or not a task). Kept for dumps.
    owner: AtomicU64,
    /// `None` only while an [`OwnedMutexGuard`] holds the value.
    data: SpinMutex<Option<T>>,
}

/// Holds a [`Mutex`] locked; unlocks it when dropped.
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync` (as tokio's).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    // Field order is drop order: the value's cell, then the unlock.
    data: SpinMutexGuard<'a, Option<T>>,
    _unlock: Unlock<'a>,
}

/// Holds an `Arc<Mutex>` locked (for guards moved into spawned tasks);
/// unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMutexGuard<T> {
    lock: Arc<Mutex<T>>,
    value: Option<T>,
}

/// The lock was held ([`Mutex::try_lock`]), or held in a conflicting mode
/// ([`RwLock::try_read`](super::RwLock::try_read),
/// [`RwLock::try_write`](super::RwLock::try_write)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryLockError(());

/// Releases the permit when dropped (after the value's cell).
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
    /// let lock = runtime::sync::Mutex::new(5);
    /// assert_eq!(lock.into_inner(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::new(1),
            owner: AtomicU64::new(0),
            data: SpinMutex::new(Some(value)),
        }
    }

    /// [`new`](Self::new) for `static`s.
    ///
    /// Kernel: `DEFINE_MUTEX()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use runtime::sync::Mutex;
    /// static LOG: Mutex<Vec<String>> = Mutex::const_new(Vec::new());
    /// runtime::block_on(async { LOG.lock().await.push("up".into()) });
    /// ```
    pub const fn const_new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::const_new(1),
            owner: AtomicU64::new(0),
            data: SpinMutex::new(Some(value)),
        }
    }

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
    /// runtime::block_on(async {
    ///     let lock = runtime::sync::Mutex::new(1);
    ///     *lock.lock().await += 1;
    ///     assert_eq!(*lock.lock().await, 2);
    /// });
    /// ```
    #[doc(alias = "mutex_lock")]
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        if semaphore::acquire_one(&self.sem).await.is_err() {
            unreachable!("a mutex's semaphore is never closed");
        }
        self.guard()
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
    /// runtime::block_on(async {
    ///     let lock = Arc::new(runtime::sync::Mutex::new(()));
    ///     let held = lock.lock().await;
    ///     let waiter = {
    ///         let lock = lock.clone();
    ///         runtime::spawn(async move { lock.lock_interruptible().await.map(drop) })
    ///     };
    ///     runtime::task::yield_now().await;
    ///     waiter.interrupt();
    ///     assert!(waiter.await.unwrap().is_err());
    ///     drop(held);
    /// });
    /// ```
    #[doc(alias = "mutex_lock_interruptible")]
    pub async fn lock_interruptible(&self) -> Result<MutexGuard<'_, T>, Interrupted> {
        semaphore::acquire_interruptible(&self.sem, 1).await?;
        Ok(self.guard())
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
    /// runtime::block_on(async {
    ///     let lock = runtime::sync::Mutex::new(0);
    ///     *lock.lock_killable().await.unwrap() += 1;
    /// });
    /// ```
    #[doc(alias = "mutex_lock_killable")]
    pub async fn lock_killable(&self) -> Result<MutexGuard<'_, T>, Killed> {
        semaphore::acquire_killable(&self.sem, 1).await?;
        Ok(self.guard())
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
    /// let rt = runtime::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let lock = runtime::sync::Mutex::new(());
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
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(runtime::sync::Mutex::new(0));
    /// let other = {
    ///     let lock = lock.clone();
    ///     std::thread::spawn(move || *lock.blocking_lock() += 1)
    /// };
    /// other.join().unwrap();
    /// assert_eq!(*lock.blocking_lock(), 1);
    /// ```
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
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
    /// let lock = runtime::sync::Mutex::new(1);
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// assert!(lock.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(permit) => {
                permit.forget();
                Ok(self.guard())
            }
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
    /// runtime::block_on(async {
    ///     let lock = Arc::new(runtime::sync::Mutex::new(1));
    ///     let mut guard = lock.clone().lock_owned().await;
    ///     runtime::spawn(async move { *guard += 1 }).await.unwrap();
    ///     assert_eq!(*lock.lock().await, 2);
    /// });
    /// ```
    pub async fn lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        if semaphore::acquire_one(&self.sem).await.is_err() {
            unreachable!("a mutex's semaphore is never closed");
        }
        self.owned_guard()
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
    /// let lock = Arc::new(runtime::sync::Mutex::new(1));
    /// let guard = lock.clone().try_lock_owned().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// ```
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        let taken = self.sem.try_acquire().map(SemaphorePermit::forget);
        match taken {
            Ok(()) => Ok(self.owned_guard()),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through `&mut self` (no locking needed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = runtime::sync::Mutex::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        match self.data.get_mut() {
            Some(value) => value,
            None => unreachable!("an owned guard borrows the mutex"),
        }
    }

    /// The value, consuming the mutex.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(runtime::sync::Mutex::new("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        match self.data.into_inner() {
            Some(value) => value,
            None => unreachable!("an owned guard borrows the mutex"),
        }
    }

    /// The task that holds the lock, if it is locked by a task (kernel:
    /// `__mutex_owner()`): for dumps and hang reports. A hint: it may
    /// change as soon as it is read.
    ///
    /// # Examples
    ///
    /// ```
    /// runtime::block_on(async {
    ///     let lock = std::sync::Arc::new(runtime::sync::Mutex::new(()));
    ///     assert!(lock.holder().is_none());
    ///     let task = runtime::spawn({
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
        let data = match self.data.try_lock() {
            Some(data) => data,
            None => unreachable!("only the permit's holder takes the cell"),
        };
        MutexGuard {
            data,
            _unlock: Unlock {
                sem: &self.sem,
                owner: &self.owner,
            },
        }
    }

    fn owned_guard(self: Arc<Self>) -> OwnedMutexGuard<T> {
        self.set_owner();
        let value = self.data.lock().take();
        OwnedMutexGuard { lock: self, value }
    }

    #[inline]
    fn set_owner(&self) {
        if let Some(id) = crate::task::try_id() {
            self.owner.store(id.0, Relaxed);
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

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
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

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &*self.data {
            Some(value) => value,
            None => unreachable!("the value is in the cell while a guard holds it"),
        }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut *self.data {
            Some(value) => value,
            None => unreachable!("the value is in the cell while a guard holds it"),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Relaxed);
        self.sem.release(1);
    }
}

// ===== impl OwnedMutexGuard =====

impl<T> OwnedMutexGuard<T> {
    /// The mutex this guard holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(runtime::sync::Mutex::new(()));
    /// let guard = lock.clone().try_lock_owned().unwrap();
    /// assert!(Arc::ptr_eq(guard.mutex(), &lock));
    /// ```
    pub fn mutex(&self) -> &Arc<Mutex<T>> {
        &self.lock
    }
}

impl<T> Deref for OwnedMutexGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.value {
            Some(value) => value,
            None => unreachable!("an owned guard holds the value until dropped"),
        }
    }
}

impl<T> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.value {
            Some(value) => value,
            None => unreachable!("an owned guard holds the value until dropped"),
        }
    }
}

impl<T> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        *self.lock.data.lock() = self.value.take();
        self.lock.owner.store(0, Relaxed);
        self.lock.sem.release(1);
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for OwnedMutexGuard<T> {
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
