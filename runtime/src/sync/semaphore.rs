//! [`Semaphore`]: a counting semaphore whose acquirers sleep on a wait
//! queue, served in strict FIFO order.
//!
//! Kernel: `struct semaphore` (`kernel/locking/semaphore.c`): [`acquire`]
//! is `down()`, [`acquire_interruptible`] `down_interruptible()`,
//! [`acquire_killable`] `down_killable()`, [`acquire_timeout`]
//! `down_timeout()`, [`try_acquire`] `down_trylock()`, and dropping a
//! permit is `up()`. As there, a release while somebody waits hands the
//! permits to the first waiter instead of making them free for anyone.
//!
//! [`acquire`]: Semaphore::acquire
//! [`acquire_interruptible`]: Semaphore::acquire_interruptible
//! [`acquire_killable`]: Semaphore::acquire_killable
//! [`acquire_timeout`]: Semaphore::acquire_timeout
//! [`try_acquire`]: Semaphore::try_acquire
//!
//! # Contract
//!
//! - **Strict FIFO.** Once anybody waits, new acquirers queue behind it,
//!   even when enough permits are free for them: the first waiter takes
//!   released permits as they come, and blocks everybody behind it until
//!   it has all it asked for, so [`acquire_many`](Semaphore::acquire_many)
//!   is never starved by a stream of small acquires.
//! - **Cancel safety.** A dropped acquire gives back every permit it had
//!   been assigned and wakes the next waiter.
//! - **Close** ends every current and future acquire with an error
//!   (permits held stay held and can still be released).
//! - **Budget.** An acquire that completes at once spends a unit of the
//!   task's cooperative budget.
//!
//! # Internals
//!
//! The free permits, a "somebody is queued" bit and the closed flag share
//! one atomic word, the whole fast path (`semaphore/state.rs`). Queued
//! acquirers wait in a [`HandoffQueue`](waitq::HandoffQueue), whose lock
//! orders them: a release that finds somebody queued gives its permits to
//! the oldest waiters under that lock and unlinks those it served, which
//! wakes them (kernel: `__up()`); `semaphore/acquire.rs` is the waiter's
//! side.

mod acquire;
mod state;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use waitq::{HandoffQueue, Interrupted, Killed, TimedOut};

pub(crate) use acquire::{
    acquire as acquire_n, acquire_at, acquire_interruptible, acquire_killable, acquire_one,
    acquire_timeout, block_on,
};
use state::{Fast, Waiter};

/// A counting semaphore: [`acquire`](Self::acquire) waits for a permit,
/// dropping the permit gives it back.
///
/// Kernel: `struct semaphore`. Waiters are served in strict FIFO order
/// (see the contract below).
///
/// # Contract
///
/// - **Strict FIFO.** Once anybody waits, new acquirers queue behind it,
///   even when enough permits are free for them: the first waiter takes
///   released permits as they come, and blocks everybody behind it until
///   it has all it asked for, so [`acquire_many`](Semaphore::acquire_many)
///   is never starved by a stream of small acquires.
/// - **Cancel safety.** A dropped acquire gives back every permit it had
///   been assigned and wakes the next waiter.
/// - **Close** ends every current and future acquire with an error
///   (permits held stay held and can still be released).
/// - **Budget.** An acquire that completes at once spends a unit of the
///   task's cooperative budget.
///
/// # Examples
///
/// At most two tasks in the critical section:
///
/// ```
/// use std::sync::Arc;
/// use waitrt::sync::Semaphore;
///
/// waitrt::block_on(async {
///     let sem = Arc::new(Semaphore::new(2));
///     let mut tasks = Vec::new();
///     for _ in 0..8 {
///         let sem = sem.clone();
///         tasks.push(waitrt::spawn(async move {
///             let _permit = sem.acquire().await.unwrap();
///             // ... at most two tasks here ...
///         }));
///     }
///     for task in tasks {
///         task.await.unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    /// Free permits, `WAITERS` and `CLOSED` (see `state.rs`).
    state: AtomicU64,
    /// The queued acquirers, oldest first.
    waiters: HandoffQueue<(), Waiter>,
}

/// Names a waiter whose waker panicked as permits were handed to it.
pub(crate) const WAITER: fn() -> String = || "the waker of a semaphore's or lock's waiter".into();

/// Permits taken from a [`Semaphore`], given back when dropped.
#[must_use = "the permits are given back as soon as the permit is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: u32,
}

/// Permits taken from an `Arc<Semaphore>`, given back when dropped.
#[must_use = "the permits are given back as soon as the permit is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    permits: u32,
}

/// The semaphore was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireError(());

/// Why [`Semaphore::try_acquire`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits free, or others are waiting for them.
    NoPermits,
}

// ===== impl Semaphore =====

impl Semaphore {
    /// The most permits a semaphore can hold: 2^39 - 1.
    pub const MAX_PERMITS: usize = state::MAX_PERMITS as usize;

    /// A semaphore with `permits` free permits.
    ///
    /// Kernel: `sema_init()`.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::const_new(permits)
    }

    /// [`new`](Self::new) for `static`s.
    ///
    /// Kernel: `DEFINE_SEMAPHORE()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::Semaphore;
    /// static CONNECTIONS: Semaphore = Semaphore::const_new(10);
    /// assert_eq!(CONNECTIONS.available_permits(), 10);
    /// ```
    pub const fn const_new(permits: usize) -> Semaphore {
        Semaphore::const_named(permits, "sync::Semaphore")
    }

    /// [`const_new`](Self::const_new) with the wait queue named for dumps
    /// (the locks built on a semaphore name theirs after themselves).
    pub(crate) const fn const_named(permits: usize, name: &'static str) -> Semaphore {
        Semaphore {
            state: AtomicU64::new(state::word(permits as u64)),
            waiters: HandoffQueue::with_state(Some(name), ()),
        }
    }

    /// [`new`](Self::new) with the wait queue named for dumps.
    pub(crate) fn named(permits: usize, name: &'static str) -> Semaphore {
        Semaphore::const_named(permits, name)
    }

    /// Tells the wait registry which task holds the semaphore now (a lock
    /// built on it: see `waitq::registry::set_holder`), and the test
    /// toolkit's hook; one relaxed load each while they are off.
    #[inline(always)]
    pub(crate) fn set_holder(&self, task: Option<u64>) {
        waitq::hook::held(&self.waiters, task); // for the test toolkit's deadlock report
        if waitq::registry::is_enabled() {
            waitq::registry::set_holder(&self.waiters, task);
        }
    }

    /// One shared holder of a lock built on the semaphore (an `RwLock`'s
    /// reader) came (`acquired`) or went: for the test toolkit's deadlock
    /// report (`waitq::hook::held_shared`) and, while the whole wait
    /// registry is on (the hung-task detector), for a writer's report to
    /// name the readers it waits for (`waitq::registry::held_shared`). A
    /// read guard tests both switches before it asks for its task's id.
    #[inline]
    pub(crate) fn held_shared(&self, task: u64, acquired: bool) {
        waitq::hook::held_shared(&self.waiters, task, acquired);
        if task != waitq::hook::NOT_A_TASK && waitq::registry::is_enabled() {
            waitq::registry::held_shared(&self.waiters, task, acquired);
        }
    }

    /// A task took permits through the `Semaphore` API: while the wait
    /// registry is on, it is named as the one that last took the
    /// semaphore (kernel: `sem->last_holder`, which the hung-task detector
    /// prints as "likely last held by"). A semaphore has no one owner:
    /// others may hold permits too. One relaxed load while the registry
    /// is off.
    #[inline]
    fn took(&self) {
        if waitq::registry::is_enabled() {
            if let Some(id) = crate::task::try_id() {
                waitq::registry::set_last_holder(&self.waiters, id.0);
            }
        }
    }

    /// [`set_holder`](Self::set_holder) for a holder that is not a task
    /// (a root future, a plain thread): only the test toolkit hears of it,
    /// so that a test body's lock can close a deadlock cycle; a dump names
    /// task holders only.
    #[inline]
    pub(crate) fn set_holder_not_a_task(&self) {
        waitq::hook::held(&self.waiters, Some(waitq::hook::NOT_A_TASK));
    }

    /// The free permits now (a waiter's partial assignment not included).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(2);
    /// let _p = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        state::permits(self.state.load(Ordering::Acquire)) as usize
    }

    /// Takes up to `n` free permits away for good; returns how many it took
    /// (fewer than `n` when fewer are free: none while others wait, since
    /// free permits then belong to the oldest waiter). As tokio's.
    ///
    /// Kernel: none (a `struct semaphore`'s count only moves through
    /// `down()` and `up()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(5);
    /// assert_eq!(sem.forget_permits(3), 3);
    /// assert_eq!(sem.forget_permits(3), 2);
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        state::forget(&self.state, n as u64) as usize
    }

    /// Adds `n` permits, serving waiters first, in order.
    ///
    /// Kernel: `up()` (`n` times).
    ///
    /// # Panics
    ///
    /// If the semaphore would hold more than [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        self.release(n as u64);
    }

    /// Gives back `n` permits: to the waiters first (handed off in FIFO
    /// order under the queue's lock), the rest free.
    pub(crate) fn release(&self, n: u64) {
        if n == 0 {
            return;
        }
        waitq::hook::barrier(); // a read-modify-write: store buffers drain
        if waitq::registry::is_enabled() {
            if let Some(id) = crate::task::try_id() {
                // Kernel `up()`: the last holder gives the semaphore back.
                waitq::registry::clear_last_holder(&self.waiters, id.0);
            }
        }
        if !state::add_unless_waiters(&self.state, n) {
            // Somebody is queued: the permits are theirs first. A woken
            // waiter's panicking waker does not unwind through the
            // releasing task (a guard's drop, a `select!` that dropped a
            // granted acquire beside a value it received): see
            // `scheduler::wake_aside`.
            crate::scheduler::wake_aside(WAITER, || {
                let mut waiters = self.waiters.lock();
                self.hand_off(&mut waiters, n);
            });
        }
    }

    /// Closes the semaphore: every waiting and future acquire fails.
    /// Permits already held stay valid.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(1);
    /// sem.close();
    /// assert!(sem.is_closed());
    /// assert!(sem.try_acquire().is_err());
    /// ```
    pub fn close(&self) {
        self.state.fetch_or(state::CLOSED, Ordering::AcqRel);
        crate::scheduler::wake_aside(WAITER, || {
            self.waiters.close();
        });
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!waitrt::sync::Semaphore::new(1).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        state::is_closed(self.state.load(Ordering::Acquire))
    }

    /// Takes one permit if one is free and nobody waits.
    ///
    /// Kernel: `down_trylock()` (which returns 0 on success).
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`], or [`TryAcquireError::NoPermits`] when
    /// none is free or others wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::{Semaphore, TryAcquireError};
    /// let sem = Semaphore::new(1);
    /// let permit = sem.try_acquire().unwrap();
    /// assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::NoPermits));
    /// drop(permit);
    /// assert!(sem.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody waits (zero permits:
    /// always, unless closed).
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(3);
    /// let permits = sem.try_acquire_many(2).unwrap();
    /// assert_eq!(permits.num_permits(), 2);
    /// assert!(sem.try_acquire_many(2).is_err());
    /// ```
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n)?;
        Ok(SemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    fn try_take(&self, n: u32) -> Result<(), TryAcquireError> {
        self.try_take_for_lock(n)?;
        self.took();
        Ok(())
    }

    /// Takes `n` free permits, if nobody waits, for a lock built on the
    /// semaphore, which names its holders itself (an owner, readers): the
    /// `Semaphore` API's "last taken by" record ([`took`](Self::took))
    /// would replace the readers an `RwLock` has named (an independent
    /// review: a `try_read`, or the lock's `Debug`, left a writer's hang
    /// report naming only the last reader, or nobody).
    pub(crate) fn try_take_for_lock(&self, n: u32) -> Result<(), TryAcquireError> {
        match state::try_take(&self.state, n as u64) {
            Fast::Acquired => Ok(()),
            Fast::Closed => Err(TryAcquireError::Closed),
            Fast::NoPermits => Err(TryAcquireError::NoPermits),
        }
    }

    /// [`try_acquire`](Self::try_acquire) for an `Arc<Semaphore>`.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(1));
    /// let permit = sem.clone().try_acquire_owned().unwrap();
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many) for an `Arc<Semaphore>`.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(4));
    /// let permits = sem.clone().try_acquire_many_owned(4).unwrap();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permits);
    /// ```
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(n)?;
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// Waits for one permit.
    ///
    /// Kernel: `down()`.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is (or gets) closed first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back the place in the queue and every
    /// permit it had been assigned, and wakes the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let sem = waitrt::sync::Semaphore::new(1);
    ///     let permit = sem.acquire().await.unwrap();
    ///     assert_eq!(sem.available_permits(), 0);
    ///     drop(permit);
    /// });
    /// ```
    #[doc(alias = "down")]
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, taking them as they come while it is the
    /// first waiter, and blocking later acquirers until it has all `n`.
    /// Zero permits are had at once, even while others wait (as tokio's):
    /// nothing is taken from them.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is (or gets) closed first.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire): the permits assigned so far go back.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::block_on(async {
    ///     let sem = waitrt::sync::Semaphore::new(5);
    ///     let permits = sem.acquire_many(3).await.unwrap();
    ///     assert_eq!(sem.available_permits(), 2);
    ///     drop(permits);
    /// });
    /// ```
    #[track_caller]
    pub fn acquire_many(
        &self,
        n: u32,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        // The wait is listed at our caller's site.
        self.acquire_many_at(n, std::panic::Location::caller())
    }

    /// [`acquire_many`](Self::acquire_many), the wait listed at `site`:
    /// for a primitive that makes the future inside its own (`OnceCell`),
    /// where a future made before it would be kept, whole, for as long as
    /// the outer one lives.
    // Not an `async fn`: as one, the future is 104 bytes instead of 88
    // (tokio's: 88; `tests/sync_sizes.rs`).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn acquire_many_at(
        &self,
        n: u32,
        site: &'static std::panic::Location<'static>,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        async move {
            match acquire::acquire_at(self, n as u64, site)
                .await
                .inspect(|()| self.took())
            {
                Ok(()) => Ok(SemaphorePermit {
                    sem: self,
                    permits: n,
                }),
                Err(_) => Err(AcquireError(())),
            }
        }
    }

    /// [`acquire`](Self::acquire) for an `Arc<Semaphore>`: the permit
    /// keeps the semaphore alive (for permits moved into spawned tasks).
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is (or gets) closed first.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let sem = Arc::new(waitrt::sync::Semaphore::new(1));
    ///     let permit = sem.clone().acquire_owned().await.unwrap();
    ///     waitrt::spawn(async move { drop(permit) }).await.unwrap();
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn acquire_owned(
        self: Arc<Self>,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, AcquireError>> {
        self.acquire_many_owned(1)
    }

    /// [`acquire_many`](Self::acquire_many) for an `Arc<Semaphore>`.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is (or gets) closed first.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let sem = Arc::new(waitrt::sync::Semaphore::new(2));
    ///     let permits = sem.clone().acquire_many_owned(2).await.unwrap();
    ///     assert_eq!(permits.num_permits(), 2);
    /// });
    /// ```
    #[track_caller]
    pub fn acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, AcquireError>> {
        let site = std::panic::Location::caller();
        async move {
            match acquire::acquire_at(&self, n as u64, site)
                .await
                .inspect(|()| self.took())
            {
                Ok(()) => Ok(OwnedSemaphorePermit {
                    sem: self,
                    permits: n,
                }),
                Err(_) => Err(AcquireError(())),
            }
        }
    }

    /// Waits for one permit unless the current task is signalled first.
    ///
    /// Kernel: `down_interruptible()` (`-EINTR`). A permit granted before
    /// the signal is looked at wins. Outside a task nothing can signal the
    /// caller and it waits as [`acquire`](Self::acquire).
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on any signal of the current task (see
    /// [`Interrupted::is_fatal`]), or when the semaphore is closed
    /// ([`Interrupted::is_closed`]).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use waitrt::sync::Semaphore;
    ///
    /// waitrt::block_on(async {
    ///     let sem = Arc::new(Semaphore::new(0));
    ///     let waiter = {
    ///         let sem = sem.clone();
    ///         waitrt::spawn(async move { sem.acquire_interruptible().await.map(drop) })
    ///     };
    ///     waitrt::task::yield_now().await; // let it start waiting
    ///     waiter.interrupt();
    ///     assert!(waiter.await.unwrap().is_err());
    /// });
    /// ```
    #[doc(alias = "down_interruptible")]
    #[track_caller]
    pub fn acquire_interruptible(
        &self,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, Interrupted>> + '_ {
        let acquire = acquire::acquire_interruptible(self, 1);
        async move {
            acquire.await?;
            self.took();
            Ok(SemaphorePermit {
                sem: self,
                permits: 1,
            })
        }
    }

    /// Waits for one permit unless the current task is killed first
    /// (ordinary signals are ignored).
    ///
    /// Kernel: `down_killable()`.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a fatal signal, or when the semaphore is closed
    /// ([`Killed::is_closed`]).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use waitrt::sync::Semaphore;
    ///
    /// waitrt::block_on(async {
    ///     let sem = Arc::new(Semaphore::new(0));
    ///     let waiter = {
    ///         let sem = sem.clone();
    ///         waitrt::spawn(async move { sem.acquire_killable().await.map(drop) })
    ///     };
    ///     waitrt::task::yield_now().await;
    ///     waiter.kill();
    ///     assert!(waiter.await.unwrap().is_err());
    /// });
    /// ```
    #[doc(alias = "down_killable")]
    #[track_caller]
    pub fn acquire_killable(
        &self,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, Killed>> + '_ {
        let acquire = acquire::acquire_killable(self, 1);
        async move {
            acquire.await?;
            self.took();
            Ok(SemaphorePermit {
                sem: self,
                permits: 1,
            })
        }
    }

    /// Waits for one permit at most `timeout` on the runtime's clock.
    ///
    /// Kernel: `down_timeout()`. A permit granted at the deadline wins.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passes first, or when the semaphore
    /// is closed ([`TimedOut::is_closed`]).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
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
    ///     let sem = waitrt::sync::Semaphore::new(0);
    ///     assert!(sem.acquire_timeout(Duration::from_secs(1)).await.is_err());
    /// });
    /// ```
    #[doc(alias = "down_timeout")]
    #[track_caller]
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<SemaphorePermit<'_>, TimedOut>> + '_ {
        let acquire = acquire::acquire_timeout(self, 1, timeout);
        async move {
            acquire.await?;
            self.took();
            Ok(SemaphorePermit {
                sem: self,
                permits: 1,
            })
        }
    }

    /// Waits for one permit, blocking the current thread (for code outside
    /// async tasks). Do not call it from a task: it blocks the worker.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is (or gets) closed first.
    ///
    /// # Panics
    ///
    /// When called from a thread that drives tasks (inside a task or a
    /// runtime's `block_on`), as tokio's does: it would block them, for
    /// good on a current-thread runtime whose task holds the permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(0));
    /// let giver = {
    ///     let sem = sem.clone();
    ///     std::thread::spawn(move || sem.add_permits(1))
    /// };
    /// let permit = sem.blocking_acquire().unwrap();
    /// drop(permit);
    /// giver.join().unwrap();
    /// ```
    #[track_caller]
    pub fn blocking_acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        crate::sync::assert_blocking_allowed("Semaphore::blocking_acquire");
        match acquire::blocking_acquire(self, 1).inspect(|()| self.took()) {
            Ok(()) => Ok(SemaphorePermit {
                sem: self,
                permits: 1,
            }),
            Err(_) => Err(AcquireError(())),
        }
    }
}

impl Drop for Semaphore {
    /// A lock dropped while the wait registry is on takes its holder out of
    /// the registry's table (a later queue at the same address must not
    /// inherit it).
    fn drop(&mut self) {
        self.set_holder(None);
        if waitq::registry::is_enabled() {
            // Not while only tasks' slots are on (the runtime's default):
            // nothing names holders then, and a drop would take a lock.
            waitq::registry::forget_holders(&self.waiters);
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .field("waiters", &self.waiters.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

// ===== impl SemaphorePermit =====

impl SemaphorePermit<'_> {
    /// Keeps the permits taken for good: they are not given back.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(2);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(2);
    /// assert_eq!(sem.try_acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// Splits `n` of its permits off into a permit of their own; `None`
    /// (and nothing changes) if it holds fewer than `n`. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(3);
    /// let mut three = sem.try_acquire_many(3).unwrap();
    /// let one = three.split(1).unwrap();
    /// assert_eq!((three.num_permits(), one.num_permits()), (2, 1));
    /// assert!(three.split(5).is_none());
    /// drop(one);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        let n = u32::try_from(n).ok().filter(|&n| n <= self.permits)?;
        self.permits -= n;
        Some(SemaphorePermit {
            sem: self.sem,
            permits: n,
        })
    }

    /// Takes `other`'s permits into this one. As tokio's.
    ///
    /// # Panics
    ///
    /// If `other` came from another semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = waitrt::sync::Semaphore::new(3);
    /// let mut two = sem.try_acquire_many(2).unwrap();
    /// two.merge(sem.try_acquire().unwrap());
    /// assert_eq!(two.num_permits(), 3);
    /// ```
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            std::ptr::eq(self.sem, other.sem),
            "merging permits of two different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release(self.permits as u64);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

// ===== impl OwnedSemaphorePermit =====

impl OwnedSemaphorePermit {
    /// Keeps the permits taken for good: they are not given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(1));
    /// sem.clone().try_acquire_owned().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(1));
    /// assert_eq!(sem.try_acquire_owned().unwrap().num_permits(), 1);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// The semaphore the permits came from.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(1));
    /// let permit = sem.clone().try_acquire_owned().unwrap();
    /// assert!(Arc::ptr_eq(permit.semaphore(), &sem));
    /// ```
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Splits `n` of its permits off into a permit of their own; `None`
    /// (and nothing changes) if it holds fewer than `n`. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(2));
    /// let mut two = sem.clone().try_acquire_many_owned(2).unwrap();
    /// let one = two.split(1).unwrap();
    /// assert_eq!((two.num_permits(), one.num_permits()), (1, 1));
    /// ```
    pub fn split(&mut self, n: usize) -> Option<Self> {
        let n = u32::try_from(n).ok().filter(|&n| n <= self.permits)?;
        self.permits -= n;
        Some(OwnedSemaphorePermit {
            sem: self.sem.clone(),
            permits: n,
        })
    }

    /// Takes `other`'s permits into this one. As tokio's.
    ///
    /// # Panics
    ///
    /// If `other` came from another semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(waitrt::sync::Semaphore::new(2));
    /// let mut one = sem.clone().try_acquire_owned().unwrap();
    /// one.merge(sem.clone().try_acquire_owned().unwrap());
    /// assert_eq!(one.num_permits(), 2);
    /// ```
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            Arc::ptr_eq(&self.sem, &other.sem),
            "merging permits of two different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.sem.release(self.permits as u64);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

// ===== errors =====

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl std::error::Error for TryAcquireError {}
