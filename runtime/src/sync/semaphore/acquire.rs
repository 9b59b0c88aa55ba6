//! One acquire: the fast path, then a wait for a hand-off on the
//! semaphore's [`HandoffQueue`](waitq::HandoffQueue) (kernel:
//! `__down_common()`'s loop), and the helpers the lock types share (the
//! kernel forms, the blocking driver).
//!
//! # Phases
//!
//! - Not queued: the first poll takes the permits with one
//!   compare-exchange (nobody queued, enough free); otherwise, under the
//!   queue's lock, it tests again and either takes them or links its entry
//!   (see `state.rs`).
//! - Queued: a release hands the permits to it and unlinks it; its next
//!   poll sees that and completes. `close()` wakes it to fail.
//! - Done: the permits belong to the caller, or the acquire failed.
//!
//! # Ending without success
//!
//! Dropped, interrupted, killed or timed out while queued, the acquirer
//! unlinks its entry under the lock. If a hand-off came first, the permits
//! are its own and it gives them all back (a full release, which serves
//! the next waiter); otherwise it gives back the permits assigned to it so
//! far, in the same hold, to the next waiters. Nothing is lost; a true
//! condition wins: an acquire served just before its signal or deadline
//! succeeds.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use waitq::{
    coop, Clock, Closed, HandoffEntry, Interrupted, Killed, SignalKind, SignalSource, TaskState,
    TimedOut,
};

use super::state::{self, Fast, Now};
use super::Semaphore;
use crate::sync::signals;

/// An acquire of `need` permits in progress.
#[derive(Debug)]
pub(crate) struct Acquire<'a> {
    sem: &'a Semaphore,
    need: u64,
    state: TaskState,
    entry: HandoffEntry,
    done: bool,
    /// The last poll ended `Pending` only because the task's cooperative
    /// budget was spent (a yield, not a wait): the kernel forms must not
    /// end on a signal then, since the permits may be free.
    yielded: bool,
    /// A timed acquire's deadline, for the wait registry (the caller
    /// watches it).
    deadline: Option<std::time::Instant>,
    /// Where the acquire was asked for (`#[track_caller]` from the lock's
    /// or semaphore's method): the wait site dumps name.
    site: &'static std::panic::Location<'static>,
}

/// Why a kernel-form acquire ended without its permits.
pub(crate) enum Ended<E> {
    Closed,
    By(E),
}

// ===== impl Acquire =====

impl<'a> Acquire<'a> {
    #[track_caller]
    pub(crate) fn new(sem: &'a Semaphore, need: u64, state: TaskState) -> Self {
        Acquire {
            sem,
            need,
            state,
            entry: HandoffEntry::new(),
            done: false,
            yielded: false,
            deadline: None,
            site: std::panic::Location::caller(),
        }
    }

    /// The acquire ends at `deadline` (listed with its sleep).
    fn until(mut self, deadline: Option<std::time::Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// One step: `Ready(Ok)` once the permits are the caller's, `Ready(Err)`
    /// if the semaphore is closed first.
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        let sem = self.sem;
        if waitq::hook::is_probing() {
            // The test toolkit's oracle: report a queued entry, change nothing.
            if self.entry.is_queued() {
                // The caller's site (a lock's `.lock()`), as the wait
                // registry lists it: the toolkit's reports named this line.
                sem.waiters.probe_entry(self.site, &self.entry, self.state);
            }
            return Poll::Pending;
        }
        // One budget unit per poll, fast path or queue (refunded below
        // when the poll ends `Pending`: no progress).
        self.yielded = coop::poll_proceed(cx).is_pending();
        if self.yielded {
            return Poll::Pending;
        }
        if !self.entry.is_queued() {
            assert!(!self.done, "acquire polled after it completed");
            // The test toolkit may switch tasks here, contended or not.
            waitq::hook::acquire_point(&sem.waiters);
            match state::try_take(&sem.state, self.need) {
                Fast::Acquired => return self.complete(Ok(())),
                Fast::Closed => return self.complete(Err(closed())),
                Fast::NoPermits => {}
            }
        }
        let need = self.need;
        let poll = sem.waiters.poll_wait_at(
            cx,
            &mut self.entry,
            self.state,
            self.deadline,
            self.site,
            |()| state::take_or_queue(&sem.state, need),
        );
        match poll {
            Poll::Pending => {
                coop::refund();
                Poll::Pending
            }
            // Taken under the lock, or handed off.
            Poll::Ready(Ok(Some(Now::Acquired) | None)) => self.complete(Ok(())),
            Poll::Ready(Ok(Some(Now::Closed)) | Err(_)) => match self.end() {
                // Served before it saw the close: a true condition wins.
                true => self.complete(Ok(())),
                false => self.complete(Err(closed())),
            },
        }
    }

    #[inline]
    fn complete(&mut self, res: Result<(), Closed>) -> Poll<Result<(), Closed>> {
        self.done = true;
        Poll::Ready(res)
    }

    /// Ends the acquire now. Returns whether it had been served (the
    /// permits are then the caller's); otherwise everything it was
    /// assigned went back to the semaphore.
    pub(crate) fn end(&mut self) -> bool {
        if !self.entry.is_queued() {
            return false;
        }
        let mut waiters = self.sem.waiters.lock();
        match waiters.unlink(&mut self.entry) {
            // Still queued: its assigned permits go to the next waiters
            // (woken as the guard drops, in `wake_aside`: a dropped
            // acquire is often beside a value its task keeps).
            Some(waiter) => {
                crate::scheduler::wake_aside(super::WAITER, move || {
                    let mut waiters = waiters;
                    self.sem.hand_off(&mut waiters, waiter.assigned);
                });
                false
            }
            None => true,
        }
    }

    /// Polls until the permits are the caller's, the semaphore closes, or
    /// `end` fires (a true condition winning over it).
    pub(crate) fn poll_until<E>(
        &mut self,
        cx: &mut Context<'_>,
        end: impl FnOnce(&mut Context<'_>) -> Poll<E>,
    ) -> Poll<Result<(), Ended<E>>> {
        match self.poll_acquire(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
            Poll::Ready(Err(_)) => return Poll::Ready(Err(Ended::Closed)),
            Poll::Pending if waitq::hook::is_probing() => return Poll::Pending,
            // Out of budget, not waiting: the task yields and tries again
            // (the kernel's fast path takes a free lock with a signal
            // pending; so must the next poll).
            Poll::Pending if self.yielded => return Poll::Pending,
            Poll::Pending => {}
        }
        match end(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(reason) => {
                self.done = true;
                match self.end() {
                    true => Poll::Ready(Ok(())),
                    false => Poll::Ready(Err(Ended::By(reason))),
                }
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        // Done or never queued (every completed acquire): nothing to give
        // back, and no call.
        if !self.entry.is_queued() {
            return;
        }
        if self.end() {
            // Served but never handed out: a full release (and the test
            // toolkit forgets that it was handed to this task).
            waitq::hook::held(&self.sem.waiters, None);
            self.sem.release(self.need);
        }
    }
}

// ===== the kernel forms =====

/// Acquires one permit; on success it is the caller's.
#[track_caller]
pub(crate) fn acquire_one(sem: &Semaphore) -> AcquireFuture<'_> {
    acquire(sem, 1)
}

/// [`acquire`] listed with the wait site `site` (a lock's or semaphore's
/// method that took it from its caller before an `async` block).
pub(crate) fn acquire_at<'a>(
    sem: &'a Semaphore,
    need: u64,
    site: &'static std::panic::Location<'static>,
) -> AcquireFuture<'a> {
    let mut acquire = Acquire::new(sem, need, TaskState::Uninterruptible);
    acquire.site = site;
    AcquireFuture(acquire)
}

/// Acquires `need` permits; on success they are the caller's.
#[track_caller]
pub(crate) fn acquire(sem: &Semaphore, need: u64) -> AcquireFuture<'_> {
    AcquireFuture(Acquire::new(sem, need, TaskState::Uninterruptible))
}

/// The future of a plain acquire: [`Acquire::poll_acquire`] itself, one
/// layer (two nested `async fn`s around a `poll_fn` cost a contended
/// `Mutex::lock` about 60 instructions: `benches/sync.rs`, mutex_16).
/// Dropping it is dropping the [`Acquire`] (see its `Drop`).
#[derive(Debug)]
pub(crate) struct AcquireFuture<'a>(Acquire<'a>);

impl Future for AcquireFuture<'_> {
    type Output = Result<(), Closed>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_acquire(cx)
    }
}

/// Acquires `need` permits unless the current task is signalled first
/// (any signal; kernel: `down_interruptible()`).
/// The wait is listed at the caller's site; the signals are those of the
/// task that polls it.
#[track_caller]
pub(crate) fn acquire_interruptible(
    sem: &Semaphore,
    need: u64,
) -> impl Future<Output = Result<(), Interrupted>> + '_ {
    let site = std::panic::Location::caller();
    async move {
        let signals = signals::current();
        let mut acq = Acquire::new(sem, need, TaskState::Interruptible);
        acq.site = site;
        let end = |cx: &mut Context<'_>| signals.poll_signal(TaskState::Interruptible, cx);
        match poll_fn(|cx| acq.poll_until(cx, end)).await {
            Ok(()) => Ok(()),
            Err(Ended::Closed) => Err(Interrupted::from(closed())),
            Err(Ended::By(kind)) => Err(interrupted(kind)),
        }
    }
}

/// Acquires `need` permits unless the current task is killed first
/// (kernel: `down_killable()`).
/// Listed as [`acquire_interruptible`] is.
#[track_caller]
pub(crate) fn acquire_killable(
    sem: &Semaphore,
    need: u64,
) -> impl Future<Output = Result<(), Killed>> + '_ {
    let site = std::panic::Location::caller();
    async move {
        let signals = signals::current();
        let mut acq = Acquire::new(sem, need, TaskState::Killable);
        acq.site = site;
        let end = |cx: &mut Context<'_>| signals.poll_signal(TaskState::Killable, cx);
        match poll_fn(|cx| acq.poll_until(cx, end)).await {
            Ok(()) => Ok(()),
            Err(Ended::Closed) => Err(Killed::from(closed())),
            Err(Ended::By(_)) => Err(killed()),
        }
    }
}

/// Acquires `need` permits unless `timeout` passes first on the runtime's
/// clock (kernel: `down_timeout()`).
#[track_caller]
pub(crate) fn acquire_timeout(
    sem: &Semaphore,
    need: u64,
    timeout: Duration,
) -> impl Future<Output = Result<(), TimedOut>> + '_ {
    let clock = crate::time::clock();
    let deadline = clock.now().checked_add(timeout);
    let site = std::panic::Location::caller();
    async move {
        let mut sleep = pin!(deadline.map(|at| clock.sleep_until(at)));
        let mut acq = Acquire::new(sem, need, TaskState::Uninterruptible).until(deadline);
        acq.site = site;
        let mut end = |cx: &mut Context<'_>| match sleep.as_mut().as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Pending,
        };
        match poll_fn(|cx| acq.poll_until(cx, &mut end)).await {
            Ok(()) => Ok(()),
            Err(Ended::Closed) => Err(TimedOut::from(closed())),
            Err(Ended::By(())) => Err(timed_out()),
        }
    }
}

/// Acquires `need` permits, blocking the current thread.
pub(crate) fn blocking_acquire(sem: &Semaphore, need: u64) -> Result<(), Closed> {
    block_on(acquire(sem, need))
}

// ===== helpers =====

/// Runs `future` to completion on this thread, parking between polls.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unparker(Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    thread_local! {
        static WAKER: Waker = Waker::from(Arc::new(Unparker(thread::current())));
    }
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

/// The error of a wait on a closed queue.
pub(crate) fn closed() -> Closed {
    Closed::queue_closed()
}

/// The error of a wait interrupted by `kind`.
pub(crate) fn interrupted(kind: SignalKind) -> Interrupted {
    Interrupted::by(kind)
}

/// The error of a killable wait ended by a fatal signal.
pub(crate) fn killed() -> Killed {
    Killed::by_kill()
}

/// The error of a wait whose deadline passed.
pub(crate) fn timed_out() -> TimedOut {
    TimedOut::deadline_passed()
}
