//! One acquire: the fast path, then a hand-written exclusive wait on the
//! semaphore's queue (kernel: `__down_common()`'s loop), and the helpers
//! the lock types share (the kernel forms, the blocking driver).
//!
//! # Phases
//!
//! - `Start`: nothing registered. The first poll takes the permits at once
//!   (nobody queued, enough free) or counts itself queued and links its
//!   entry, with a wake function that assigns permits to it (see
//!   `state.rs`), then re-reads the word and runs a walk if permits are
//!   free (so none is left unassigned behind it).
//! - `Queued`: the entry is linked, or unlinked by the walk that granted
//!   it (`slot.granted`), or by `close()`. Each poll reads `granted` first;
//!   otherwise it refreshes the waker through [`WaitEntry::wait`].
//! - `Done`: the permits belong to the caller, or the acquire failed.
//!
//! # Ending without success
//!
//! Dropped, interrupted, killed or timed out in `Queued`, the acquirer
//! unlinks its entry (after which no walk can assign it anything), then
//! either gives back everything it was granted (a full release, which
//! serves the next waiter) or gives back the permits a walk had assigned
//! it so far and stops counting as queued, waking the next waiter if
//! permits are now free. Nothing is lost; a true condition wins: an
//! acquire granted just before its signal or deadline succeeds.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering::Acquire as Acq;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use waitq::{
    coop, Clock, Closed, Interrupted, Killed, SignalKind, SignalSource, TaskState, TimedOut,
    WaitEntry,
};

use super::state::{is_closed, permits, queued, Fast, Slot};
use super::Semaphore;
use crate::sync::signals;

/// An acquire of `need` permits in progress.
#[derive(Debug)]
pub(crate) struct Acquire<'a> {
    sem: &'a Semaphore,
    need: u64,
    state: TaskState,
    phase: Phase<'a>,
}

#[derive(Debug)]
enum Phase<'a> {
    Start,
    Queued {
        entry: WaitEntry<'a>,
        slot: Arc<Slot>,
    },
    Done,
}

/// Why a kernel-form acquire ended without its permits.
pub(crate) enum Ended<E> {
    Closed,
    By(E),
}

// ===== impl Acquire =====

impl<'a> Acquire<'a> {
    pub(crate) fn new(sem: &'a Semaphore, need: u64, state: TaskState) -> Self {
        Acquire {
            sem,
            need,
            state,
            phase: Phase::Start,
        }
    }

    /// One step: `Ready(Ok)` once the permits are the caller's, `Ready(Err)`
    /// if the semaphore is closed first.
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        if waitq::hook::is_probing() {
            // The test toolkit's oracle: report the entry, change nothing.
            if let Phase::Queued { entry, .. } = &mut self.phase {
                let _ = Pin::new(&mut entry.wait()).poll(cx);
            }
            return Poll::Pending;
        }
        if let Phase::Start = self.phase {
            if coop::poll_proceed(cx).is_pending() {
                return Poll::Pending;
            }
            // The test toolkit may switch tasks here, contended or not.
            waitq::hook::acquire_point(&self.sem.queue);
            match self.sem.shared().try_take(self.need, true) {
                Fast::Acquired => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Ok(()));
                }
                Fast::Closed => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Err(closed()));
                }
                Fast::Queued | Fast::NoPermits => {}
            }
            // Linked with `cx`'s waker: unless the walk after the link
            // granted us already, or the semaphore closed before it (the
            // wait below then ends at once), this poll is over.
            let sleeps = self.link(cx);
            if let Phase::Queued { slot, .. } = &self.phase {
                if slot.is_granted() {
                    // Granted by its own walk: progress, the unit is spent.
                    self.finish();
                    return Poll::Ready(Ok(()));
                }
            }
            // No progress here (the wait below spends its own unit).
            coop::refund();
            if sleeps {
                return Poll::Pending;
            }
        }
        let Phase::Queued { entry, slot } = &mut self.phase else {
            panic!("acquire polled after it completed");
        };
        if slot.is_granted() {
            self.finish();
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut entry.wait()).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) if slot.is_granted() => {
                self.finish();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(_) if self.sem.queue.is_closed() => match self.end() {
                true => Poll::Ready(Ok(())),
                false => Poll::Ready(Err(closed())),
            },
            Poll::Ready(_) => {
                // Unlinked by neither a grant nor close (cannot happen:
                // only the assignment wakes these entries); queue again.
                self.sem.queue.prepare_to_wait_exclusive(entry, self.state);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Counted as queued: links the entry with `cx`'s waker (one queue-lock
    /// hold; the slot, which is the wake function, is the thread's spare
    /// after the first wait, see `Slot`), then re-reads
    /// the word. Returns `false` if the semaphore was closed by then (the
    /// link may have failed, so the caller must not sleep on it).
    fn link(&mut self, cx: &Context<'_>) -> bool {
        let slot = Slot::obtain(self.sem.shared(), self.need);
        let mut entry = WaitEntry::with_shared_func(&self.sem.queue, slot.clone());
        entry.set_waker(cx.waker());
        self.sem
            .queue
            .prepare_to_wait_exclusive(&mut entry, self.state);
        // Pairs with the releaser's add-then-walk (see `state.rs`). `close`
        // sets CLOSED before it closes the queue, so a link refused by a
        // closed queue sees CLOSED here.
        let word = slot.shared.state.load(Acq);
        let closed = is_closed(word);
        if permits(word) > 0 && !closed {
            self.sem.queue.wake_up_all();
        }
        self.phase = Phase::Queued { entry, slot };
        !closed
    }

    /// Ends the acquire now. Returns whether it had been granted (the
    /// permits are then the caller's); otherwise everything it was
    /// assigned went back to the semaphore.
    pub(crate) fn end(&mut self) -> bool {
        let Phase::Queued { mut entry, slot } = std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return false;
        };
        // After this no walk can assign the slot anything.
        self.sem.queue.finish_wait(&mut entry);
        drop(entry);
        let granted = slot.is_granted();
        let assigned = slot.assigned.load(Acq);
        Slot::recycle(slot);
        if granted {
            return true;
        }
        let word = self.sem.shared().leave(assigned);
        if !is_closed(word) && queued(word) > 0 && permits(word) > 0 {
            self.sem.queue.wake_up_all();
        }
        false
    }

    /// Done, granted: the entry goes (a walk unlinked it already) and the
    /// slot becomes the thread's spare.
    #[inline]
    fn finish(&mut self) {
        if let Phase::Queued { entry, slot } = std::mem::replace(&mut self.phase, Phase::Done) {
            drop(entry);
            Slot::recycle(slot);
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
            Poll::Pending => {}
        }
        match end(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) if self.end() => Poll::Ready(Ok(())),
            Poll::Ready(reason) => Poll::Ready(Err(Ended::By(reason))),
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if self.end() {
            // Granted but never handed out: a full release.
            self.sem.release(self.need);
        }
    }
}

// ===== the kernel forms =====

/// Acquires one permit; on success it is the caller's.
pub(crate) async fn acquire_one(sem: &Semaphore) -> Result<(), Closed> {
    acquire(sem, 1).await
}

/// Acquires `need` permits; on success they are the caller's.
pub(crate) async fn acquire(sem: &Semaphore, need: u64) -> Result<(), Closed> {
    let mut acq = Acquire::new(sem, need, TaskState::Uninterruptible);
    poll_fn(|cx| acq.poll_acquire(cx)).await
}

/// Acquires `need` permits unless the current task is signalled first
/// (any signal; kernel: `down_interruptible()`).
pub(crate) async fn acquire_interruptible(sem: &Semaphore, need: u64) -> Result<(), Interrupted> {
    let signals = signals::current();
    let mut acq = Acquire::new(sem, need, TaskState::Interruptible);
    let end = |cx: &mut Context<'_>| signals.poll_signal(TaskState::Interruptible, cx);
    match poll_fn(|cx| acq.poll_until(cx, end)).await {
        Ok(()) => Ok(()),
        Err(Ended::Closed) => Err(Interrupted::from(closed())),
        Err(Ended::By(kind)) => Err(interrupted(kind)),
    }
}

/// Acquires `need` permits unless the current task is killed first
/// (kernel: `down_killable()`).
pub(crate) async fn acquire_killable(sem: &Semaphore, need: u64) -> Result<(), Killed> {
    let signals = signals::current();
    let mut acq = Acquire::new(sem, need, TaskState::Killable);
    let end = |cx: &mut Context<'_>| signals.poll_signal(TaskState::Killable, cx);
    match poll_fn(|cx| acq.poll_until(cx, end)).await {
        Ok(()) => Ok(()),
        Err(Ended::Closed) => Err(Killed::from(closed())),
        Err(Ended::By(_)) => Err(killed()),
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
    async move {
        let mut sleep = pin!(deadline.map(|at| clock.sleep_until(at)));
        let mut acq = Acquire::new(sem, need, TaskState::Uninterruptible);
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
