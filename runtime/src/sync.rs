//! Synchronization for tasks, every sleep a [`WaitQueue`] (or, where only
//! one task can ever wait, its one-waiter form [`RcuWait`]; for locks and
//! semaphores, its hand-off form [`HandoffQueue`]): the wait queue itself
//! (re-exported from [`waitq`]), and the channels, locks and counters a
//! service uses every day, built on it.
//!
//! # The primitives
//!
//! | ours | tokio | kernel |
//! | --- | --- | --- |
//! | [`WaitQueue`] | `Notify` | `wait_queue_head_t` |
//! | [`RcuWait`] (one waiter; with state under its lock) | `AtomicWaker` | `struct rcuwait` (`struct completion`'s locked wake) |
//! | [`HandoffQueue`] (a FIFO whose wakers hand the oldest what it waits for) | `batch_semaphore`'s waiter list | `struct semaphore`'s `wait_list` (`__down_common`, `__up`) |
//! | [`mpsc::channel`], [`mpsc::unbounded_channel`] | `mpsc::channel`, `mpsc::unbounded_channel` | a `kfifo` with a wait queue per side (a pipe); the one receiver's poll sleeps on the ring's lock as on a completion |
//! | [`oneshot::channel`] | `oneshot::channel` | `struct completion` (`complete`, `wait_for_completion`): one state word decides who owns the value and the receiver's waker |
//! | [`broadcast`] | `broadcast` | a multi-reader ring, readers in `wait_event()` |
//! | [`watch`] | `watch` | a `seqcount_t`-versioned value, readers in `wait_event()` |
//! | [`Semaphore`] | `Semaphore` | `struct semaphore` (`down`, `up`): acquirers queue on a [`HandoffQueue`] |
//! | [`Mutex`], [`MutexGuard::map`] | `Mutex`, `MutexGuard::map` | `struct mutex` |
//! | [`RwLock`], [`RwLockReadGuard::map`], [`RwLockWriteGuard::map`] | `RwLock` and its guards' `map` | `struct rw_semaphore` |
//! | [`Barrier`] | `Barrier` | none (`pthread_barrier_wait`) |
//! | [`OnceCell`] | `OnceCell` | `DO_ONCE()` (closest) |
//!
//! # The kernel family on the main waits
//!
//! The main waits (a channel's `recv`, `send` and `reserve`, watch's
//! `changed`, `lock`, `read`, `write`, `acquire`) come in
//! the forms the wait queue has: the plain one (`lock`, `recv`),
//! `_interruptible` (ends with
//! [`Interrupted`] when the current task is signalled, as
//! `mutex_lock_interruptible` ends with `-EINTR`), `_killable` (ends only
//! on a fatal signal, [`Killed`]) and `_timeout(d)` (ends with
//! [`TimedOut`] after `d` on the runtime's clock, as `down_timeout`).
//! The three forms of a receive (`recv`, `changed`) return `Result<P, E>`,
//! `P` being exactly what the plain form returns and `E` the wait's error
//! (mpsc's `recv() -> Option<T>` gives
//! `recv_timeout(d) -> Result<Option<T>, TimedOut>`), so
//! `rx.recv_timeout(d).await?` leaves the plain form's result; a send that
//! fails hands its value back in one error instead (mpsc's
//! `SendTimeoutError`).
//! The signals are the current task's ([`task::signals`](crate::task::signals));
//! outside a task (a `block_on` future, another executor) nothing can
//! signal the caller, and the interruptible and killable forms wait as
//! the plain one does.
//!
//! # Contract
//!
//! - **Cancel safety.** Every async method says what a dropped future
//!   loses (`# Cancel safety`): a dropped `recv` loses no message, a
//!   dropped `lock`, `acquire` or `send` gives its place (or the permit or
//!   slot it was granted) to the next waiter.
//! - **Cooperative budget.** An operation that completes at once spends a
//!   unit of the task's budget, so a loop over a channel that is never
//!   empty (or a lock never contended) still yields.
//! - **Fairness.** Lockers and acquirers are exclusive waiters, served in
//!   FIFO order (a released lock or permit is handed to the oldest). The
//!   senders of a full bounded channel are woken oldest first, one per
//!   freed slot, but a free slot goes to whoever asks first: a `try_send`
//!   or a new `send` can take it before the woken sender runs (tokio hands
//!   it to the woken sender), so a producer that refills the channel right
//!   after each receive can keep a sleeping sender waiting as long as it
//!   does (see [`mpsc`]'s fairness notes).

pub mod atomic;
pub mod broadcast;
pub mod mpsc;
pub mod oneshot;
mod signals;
pub(crate) mod spin;
pub mod watch;

pub use waitq::*;

mod semaphore;

pub use semaphore::{
    AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError,
};

mod mutex;

pub use mutex::{MappedMutexGuard, Mutex, MutexGuard, OwnedMutexGuard, TryLockError};

mod rwlock;

pub use rwlock::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard,
    RwLock, RwLockReadGuard, RwLockWriteGuard,
};

mod barrier;
mod once_cell;

/// `blocking_*` from a thread that drives tasks would stall them (on a
/// current-thread runtime for good, if a task of it holds what is waited
/// for): a panic, as tokio's.
#[track_caller]
pub(crate) fn assert_blocking_allowed(what: &str) {
    if crate::context::is_driving() {
        panic!(
            "`{what}` called from inside a runtime: it would block the thread that \
             drives tasks (use the async form, or call it from `spawn_blocking`)"
        );
    }
}

pub use barrier::{Barrier, BarrierWaitResult};
pub use once_cell::{OnceCell, SetError};
