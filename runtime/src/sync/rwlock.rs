//! [`RwLock`]: an async reader-writer lock, fair: once a writer waits, new
//! readers queue behind it, so a stream of readers never starves writers.
//!
//! Kernel: `struct rw_semaphore` (`kernel/locking/rwsem.c`): [`read`] is
//! `down_read()`, [`write`] `down_write()`, the `_interruptible`,
//! `_killable` forms theirs, [`try_read`]/[`try_write`]
//! `down_read_trylock()`/`down_write_trylock()`, and
//! [`RwLockWriteGuard::downgrade`] `downgrade_write()`.
//!
//! [`read`]: RwLock::read
//! [`write`]: RwLock::write
//! [`try_read`]: RwLock::try_read
//! [`try_write`]: RwLock::try_write
//!
//! # Contract
//!
//! - **FIFO, writer-preferring.** Readers and writers are served in
//!   arrival order; consecutive readers share the lock. A writer that
//!   waits blocks every later reader (no writer starvation).
//! - **Cancel safety.** A dropped `read` or `write` future gives back its
//!   place, and whatever it had been granted, to the next waiter.
//! - **Budget.** An uncontended `read` or `write` spends a unit of the
//!   task's cooperative budget.
//!
//! # Internals
//!
//! A [`Semaphore`] with `max_readers` permits (as tokio's): a reader takes
//! one, a writer all of them (taking them as readers leave, while blocking
//! everyone behind it: the semaphore's strict FIFO). The value lives in an
//! `UnsafeCell`: one of the crate's audited `unsafe` places (see the crate
//! docs). A guard holding one permit makes `&T` of it, a guard holding
//! every permit `&mut T`, so a `&mut T` is never beside another reference.
//! (The first version stayed safe with an `Arc` per reader and a spin lock
//! for the writer: five atomic read-modify-writes per read instead of two,
//! and readers on two workers fought over one reference count.)

#![allow(unsafe_code)]

mod guards;

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use crate::sync::mutex::TryLockError;
use crate::sync::semaphore::{self, Semaphore};
use crate::task::Id;

pub use guards::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard,
    RwLockReadGuard, RwLockWriteGuard,
};

/// Readers an [`RwLock`] admits at once by default (tokio's `MAX_READS`).
const MAX_READS: u32 = u32::MAX >> 3;

/// An async reader-writer lock: many readers or one writer, served in
/// FIFO order.
///
/// Kernel: `struct rw_semaphore`. Guards may be held across `.await`.
///
/// # Contract
///
/// - **FIFO, writer-preferring.** Readers and writers are served in
///   arrival order; consecutive readers share the lock. A writer that
///   waits blocks every later reader (no writer starvation).
/// - **Cancel safety.** A dropped `read` or `write` future gives back its
///   place, and whatever it had been granted, to the next waiter.
/// - **Budget.** An uncontended `read` or `write` spends a unit of the
///   task's cooperative budget.
///
/// # Examples
///
/// ```
/// use waitrt::sync::RwLock;
///
/// waitrt::block_on(async {
///     let lock = RwLock::new(5);
///     {
///         let a = lock.read().await;
///         let b = lock.read().await; // readers share
///         assert_eq!(*a + *b, 10);
///     }
///     *lock.write().await += 1;
///     assert_eq!(*lock.read().await, 6);
/// });
/// ```
pub struct RwLock<T> {
    sem: Semaphore,
    max_readers: u32,
    /// The last writer's task id (0: none, or not a task). Kept for dumps.
    owner: AtomicU64,
    /// Shared by the holders of one permit each, or the holder of all.
    data: UnsafeCell<T>,
}

// SAFETY: a `&RwLock<T>` hands out `&T` to any number of readers on any
// threads (hence `T: Sync`) and `&mut T` to one writer (hence `T: Send`),
// never both at once (the permits); `Send` follows from `UnsafeCell<T>`'s.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

// ===== impl RwLock =====

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// Kernel: `init_rwsem()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::RwLock::new(1);
    /// assert_eq!(lock.into_inner(), 1);
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock::with_max_readers(value, MAX_READS)
    }

    /// An unlocked lock that admits at most `max_readers` readers at once.
    ///
    /// # Panics
    ///
    /// If `max_readers` is 0 or above `u32::MAX >> 3`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::RwLock::with_max_readers(0, 2);
    /// let _a = lock.try_read().unwrap();
    /// let _b = lock.try_read().unwrap();
    /// assert!(lock.try_read().is_err());
    /// ```
    pub fn with_max_readers(value: T, max_readers: u32) -> RwLock<T> {
        assert!(
            max_readers > 0 && max_readers <= MAX_READS,
            "max_readers must be in 1..={MAX_READS}"
        );
        RwLock {
            sem: Semaphore::named(max_readers as usize, "sync::RwLock"),
            max_readers,
            owner: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// [`new`](Self::new) for `static`s.
    ///
    /// Kernel: `DECLARE_RWSEM()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::RwLock;
    /// static CONFIG: RwLock<u32> = RwLock::const_new(80);
    /// waitrt::block_on(async { assert_eq!(*CONFIG.read().await, 80) });
    /// ```
    pub const fn const_new(value: T) -> RwLock<T> {
        RwLock {
            sem: Semaphore::const_named(MAX_READS as usize, "sync::RwLock"),
            max_readers: MAX_READS,
            owner: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Locks for reading, sharing the lock with other readers; waits
    /// behind every earlier writer (and reader).
    ///
    /// Kernel: `down_read()`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back its place in the queue, or the read
    /// lock it had been granted, to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(vec![1, 2]);
    ///     assert_eq!(lock.read().await.len(), 2);
    /// });
    /// ```
    #[doc(alias = "down_read")]
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> + '_ {
        // The wait is listed at our caller's site.
        let site = std::panic::Location::caller();
        async move {
            if semaphore::acquire_at(&self.sem, 1, site).await.is_err() {
                unreachable!("an rwlock's semaphore is never closed");
            }
            self.read_guard()
        }
    }

    /// [`read`](Self::read) unless the current task is signalled first.
    ///
    /// Kernel: `down_read_interruptible()`.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on any signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     assert_eq!(*lock.read_interruptible().await.unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn read_interruptible(
        &self,
    ) -> impl Future<Output = Result<RwLockReadGuard<'_, T>, Interrupted>> + '_ {
        let acquire = semaphore::acquire_interruptible(&self.sem, 1);
        async move {
            acquire.await?;
            Ok(self.read_guard())
        }
    }

    /// [`read`](Self::read) unless the current task is killed first.
    ///
    /// Kernel: `down_read_killable()`.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a fatal signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     assert_eq!(*lock.read_killable().await.unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn read_killable(
        &self,
    ) -> impl Future<Output = Result<RwLockReadGuard<'_, T>, Killed>> + '_ {
        let acquire = semaphore::acquire_killable(&self.sem, 1);
        async move {
            acquire.await?;
            Ok(self.read_guard())
        }
    }

    /// [`read`](Self::read) unless `timeout` passes first on the runtime's
    /// clock.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passes first.
    ///
    /// # Cancel safety
    ///
    /// As [`read`](Self::read).
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
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     let writer = lock.write().await;
    ///     assert!(lock.read_timeout(Duration::from_secs(1)).await.is_err());
    ///     drop(writer);
    /// });
    /// ```
    #[track_caller]
    pub fn read_timeout(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RwLockReadGuard<'_, T>, TimedOut>> + '_ {
        let acquire = semaphore::acquire_timeout(&self.sem, 1, timeout);
        async move {
            acquire.await?;
            Ok(self.read_guard())
        }
    }

    /// Locks for writing, alone; waits behind every earlier reader and
    /// writer, and blocks every later one.
    ///
    /// Kernel: `down_write()`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back its place in the queue and every
    /// reader slot it had collected, and wakes the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     *lock.write().await = 2;
    ///     assert_eq!(*lock.read().await, 2);
    /// });
    /// ```
    #[doc(alias = "down_write")]
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> + '_ {
        // The wait is listed at our caller's site.
        let site = std::panic::Location::caller();
        async move {
            let need = self.max_readers as u64;
            if semaphore::acquire_at(&self.sem, need, site).await.is_err() {
                unreachable!("an rwlock's semaphore is never closed");
            }
            self.write_guard()
        }
    }

    /// [`write`](Self::write) unless the current task is signalled first.
    ///
    /// Kernel: `down_write_interruptible()` (the kernel has only the
    /// killable form; this one follows `down_read_interruptible()`).
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on any signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`write`](Self::write).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     *lock.write_interruptible().await.unwrap() += 1;
    /// });
    /// ```
    #[track_caller]
    pub fn write_interruptible(
        &self,
    ) -> impl Future<Output = Result<RwLockWriteGuard<'_, T>, Interrupted>> + '_ {
        let acquire = semaphore::acquire_interruptible(&self.sem, self.max_readers as u64);
        async move {
            acquire.await?;
            Ok(self.write_guard())
        }
    }

    /// [`write`](Self::write) unless the current task is killed first.
    ///
    /// Kernel: `down_write_killable()`.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a fatal signal of the current task.
    ///
    /// # Cancel safety
    ///
    /// As [`write`](Self::write).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     *lock.write_killable().await.unwrap() += 1;
    /// });
    /// ```
    #[track_caller]
    pub fn write_killable(
        &self,
    ) -> impl Future<Output = Result<RwLockWriteGuard<'_, T>, Killed>> + '_ {
        let acquire = semaphore::acquire_killable(&self.sem, self.max_readers as u64);
        async move {
            acquire.await?;
            Ok(self.write_guard())
        }
    }

    /// [`write`](Self::write) unless `timeout` passes first on the
    /// runtime's clock.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passes first.
    ///
    /// # Cancel safety
    ///
    /// As [`write`](Self::write).
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
    ///     let lock = waitrt::sync::RwLock::new(1);
    ///     let reader = lock.read().await;
    ///     assert!(lock.write_timeout(Duration::from_secs(1)).await.is_err());
    ///     drop(reader);
    ///     assert!(lock.write_timeout(Duration::from_secs(1)).await.is_ok());
    /// });
    /// ```
    #[track_caller]
    pub fn write_timeout(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<RwLockWriteGuard<'_, T>, TimedOut>> + '_ {
        let acquire = semaphore::acquire_timeout(&self.sem, self.max_readers as u64, timeout);
        async move {
            acquire.await?;
            Ok(self.write_guard())
        }
    }

    /// [`read`](Self::read), blocking the current thread (for code outside
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
    /// let lock = waitrt::sync::RwLock::new(3);
    /// assert_eq!(*lock.blocking_read(), 3);
    /// ```
    #[track_caller]
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T> {
        crate::sync::assert_blocking_allowed("RwLock::blocking_read");
        if semaphore::block_on(semaphore::acquire_one(&self.sem)).is_err() {
            unreachable!("an rwlock's semaphore is never closed");
        }
        self.read_guard()
    }

    /// [`write`](Self::write), blocking the current thread (for code
    /// outside async tasks). Do not call it from a task: it blocks the
    /// worker.
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
    /// let lock = waitrt::sync::RwLock::new(3);
    /// *lock.blocking_write() += 1;
    /// assert_eq!(*lock.blocking_read(), 4);
    /// ```
    #[track_caller]
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T> {
        crate::sync::assert_blocking_allowed("RwLock::blocking_write");
        let acquire = semaphore::acquire_n(&self.sem, self.max_readers as u64);
        if semaphore::block_on(acquire).is_err() {
            unreachable!("an rwlock's semaphore is never closed");
        }
        self.write_guard()
    }

    /// Locks for reading if no writer holds or waits for the lock.
    ///
    /// Kernel: `down_read_trylock()`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if a writer holds or waits for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::RwLock::new(1);
    /// let r = lock.try_read().unwrap();
    /// assert!(lock.try_write().is_err());
    /// drop(r);
    /// ```
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        self.try_take(1)?;
        Ok(self.read_guard())
    }

    /// Locks for writing if nobody holds or waits for the lock.
    ///
    /// Kernel: `down_write_trylock()`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is held or waited for.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = waitrt::sync::RwLock::new(1);
    /// let w = lock.try_write().unwrap();
    /// assert!(lock.try_read().is_err());
    /// drop(w);
    /// ```
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        self.try_take(self.max_readers)?;
        Ok(self.write_guard())
    }

    fn try_take(&self, n: u32) -> Result<(), TryLockError> {
        self.sem
            .try_take_for_lock(n)
            .map_err(|_| TryLockError::new())
    }

    /// [`try_read`](Self::try_read) for an `Arc<RwLock>`: the guard keeps
    /// the lock alive and can move into a spawned task.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if a writer holds or waits for the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(waitrt::sync::RwLock::new(1));
    /// let r = lock.clone().try_read_owned().unwrap();
    /// assert!(lock.try_write().is_err());
    /// drop(r);
    /// ```
    pub fn try_read_owned(self: Arc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        self.try_take(1)?;
        Ok(OwnedRwLockReadGuard::new(self))
    }

    /// [`try_write`](Self::try_write) for an `Arc<RwLock>`.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if anybody holds or waits for the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let lock = Arc::new(waitrt::sync::RwLock::new(1));
    /// let w = lock.clone().try_write_owned().unwrap();
    /// assert!(lock.try_read().is_err());
    /// drop(w);
    /// ```
    pub fn try_write_owned(self: Arc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        self.try_take(self.max_readers)?;
        self.set_owner();
        Ok(OwnedRwLockWriteGuard::new(self))
    }

    /// [`read`](Self::read) for an `Arc<RwLock>`: the guard keeps the lock
    /// alive and can move into a spawned task.
    ///
    /// # Cancel safety
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::RwLock::new(1));
    ///     let guard = lock.clone().read_owned().await;
    ///     waitrt::spawn(async move { assert_eq!(*guard, 1) }).await.unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> {
        let site = std::panic::Location::caller();
        async move {
            if semaphore::acquire_at(&self.sem, 1, site).await.is_err() {
                unreachable!("an rwlock's semaphore is never closed");
            }
            OwnedRwLockReadGuard::new(self)
        }
    }

    /// [`write`](Self::write) for an `Arc<RwLock>`.
    ///
    /// # Cancel safety
    ///
    /// As [`write`](Self::write).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let lock = Arc::new(waitrt::sync::RwLock::new(1));
    ///     let mut guard = lock.clone().write_owned().await;
    ///     waitrt::spawn(async move { *guard += 1 }).await.unwrap();
    ///     assert_eq!(*lock.read().await, 2);
    /// });
    /// ```
    #[track_caller]
    pub fn write_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockWriteGuard<T>> {
        let site = std::panic::Location::caller();
        async move {
            let need = self.max_readers as u64;
            if semaphore::acquire_at(&self.sem, need, site).await.is_err() {
                unreachable!("an rwlock's semaphore is never closed");
            }
            self.set_owner();
            OwnedRwLockWriteGuard::new(self)
        }
    }

    /// The value, through `&mut self` (no locking needed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = waitrt::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The value, consuming the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitrt::sync::RwLock::new(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// The task that holds the lock for writing, if a task does: for dumps
    /// and hang reports. A hint: it may change as soon as it is read.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let lock = waitrt::sync::RwLock::new(());
    ///     assert!(lock.writer().is_none());
    /// });
    /// ```
    pub fn writer(&self) -> Option<Id> {
        match self.owner.load(Relaxed) {
            0 => None,
            id => Some(Id(id)),
        }
    }

    /// The read guard for a caller that holds one permit.
    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard::new(self)
    }

    /// The write guard for a caller that holds every permit.
    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        self.set_owner();
        RwLockWriteGuard::new(self)
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

    /// Gives back a writer's permits (`keep` of them stay with the caller).
    fn release_write(&self, keep: u32) {
        self.owner.store(0, Relaxed);
        self.sem.set_holder(None);
        self.sem.release((self.max_readers - keep) as u64);
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}
