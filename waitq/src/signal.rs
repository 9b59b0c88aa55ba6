//! Signals without a runtime: the [`SignalSource`] trait the interruptible
//! and killable waits ask, and [`TaskSignals`], a ready-made source.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::entry::TaskState;
use crate::sync::{Mutex, PoisonError};

/// A signal that can end a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignalKind {
    /// An ordinary signal: ends interruptible waits only.
    Interrupt,
    /// A fatal signal (kernel: `SIGKILL`): ends interruptible and killable waits.
    Kill,
}

/// Where an interruptible or killable wait learns that its task was signalled.
///
/// Kernel: `signal_pending_state(state, current)`. The runtime implements it
/// for its per-task signals; on another executor, use [`TaskSignals`] (one
/// per task, shared with whoever may signal it) or implement it over your
/// own cancellation state.
///
/// # Examples
///
/// ```
/// use std::task::{Context, Poll};
/// use waitq::{SignalKind, SignalSource, TaskState};
///
/// /// A source that never signals.
/// struct Never;
/// impl SignalSource for Never {
///     fn poll_signal(&self, _: TaskState, _: &mut Context<'_>) -> Poll<SignalKind> {
///         Poll::Pending
///     }
/// }
/// let queue = waitq::WaitQueue::new();
/// futures::executor::block_on(queue.wait_event_interruptible(Never, || true)).unwrap();
/// ```
pub trait SignalSource {
    /// Returns `Ready(kind)` if a signal that a sleep in `state` honours is
    /// pending (any signal for [`TaskState::Interruptible`], only
    /// [`SignalKind::Kill`] for [`TaskState::Killable`]); otherwise arranges
    /// for `cx`'s waker to be woken when one is raised and returns `Pending`.
    /// Checking must not consume the signal: it stays pending until cleared.
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind>;
}

impl<S: SignalSource + ?Sized> SignalSource for &S {
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind> {
        (**self).poll_signal(state, cx)
    }
}

impl<S: SignalSource + ?Sized> SignalSource for Arc<S> {
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind> {
        (**self).poll_signal(state, cx)
    }
}

const INTERRUPT: u8 = 0b01;
const KILL: u8 = 0b10;

/// The most wakers a [`TaskSignals`] keeps between signals. Wakers are
/// kept once each (`will_wake`), but an executor whose wakers do not
/// compare equal from poll to poll would otherwise add one per poll until
/// the next signal. At the bound every kept waker is woken (a spurious
/// wake: each wait polls again and registers anew) and the list restarts.
const MAX_KEPT_WAKERS: usize = 1024;

/// A task's pending-signal set, usable as a [`SignalSource`] on any executor.
///
/// Kernel: a task's `TIF_SIGPENDING` plus `fatal_signal_pending()`. Signals
/// stay pending until [`clear`](Self::clear)ed, as in the kernel.
///
/// # Examples
///
/// ```
/// use waitq::{TaskSignals, WaitQueue};
///
/// let queue = WaitQueue::new();
/// let signals = TaskSignals::new();
/// signals.interrupt();
/// let err = futures::executor::block_on(queue.wait_event_interruptible(&signals, || false))
///     .unwrap_err();
/// assert!(!err.is_closed());
/// ```
pub struct TaskSignals {
    pending: AtomicU8,
    wakers: Mutex<Vec<Waker>>,
    /// A waker was ever kept: [`forget_wakers`](Self::forget_wakers) takes
    /// the lock only then (most tasks never wait interruptibly).
    kept: std::sync::atomic::AtomicBool,
}

impl TaskSignals {
    /// A signal set with nothing pending.
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = waitq::TaskSignals::new();
    /// assert_eq!(signals.pending(), None);
    /// ```
    pub const fn new() -> Self {
        TaskSignals {
            pending: AtomicU8::new(0),
            wakers: Mutex::new(Vec::new()),
            kept: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Raises an ordinary signal and wakes every wait polling this set.
    /// Kernel: `signal_wake_up(t, 0)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = waitq::TaskSignals::new();
    /// signals.interrupt();
    /// assert_eq!(signals.pending(), Some(waitq::SignalKind::Interrupt));
    /// ```
    pub fn interrupt(&self) {
        self.raise(INTERRUPT);
    }

    /// Raises a fatal signal and wakes every wait polling this set.
    /// Kernel: `signal_wake_up(t, 1)` for `SIGKILL`.
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = waitq::TaskSignals::new();
    /// signals.interrupt();
    /// signals.kill();
    /// assert_eq!(signals.pending(), Some(waitq::SignalKind::Kill)); // the most severe
    /// ```
    pub fn kill(&self) {
        self.raise(KILL);
    }

    /// Clears every pending signal (kernel: the signal was delivered).
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = waitq::TaskSignals::new();
    /// signals.kill();
    /// signals.clear();
    /// assert_eq!(signals.pending(), None);
    /// ```
    pub fn clear(&self) {
        self.pending.store(0, Ordering::SeqCst);
    }

    /// Drops the wakers kept for a signal, without waking them: for an
    /// executor whose task has ended. A task's own waker kept in its own
    /// signal set (an interruptible wait that ended without a signal
    /// leaves it there, to be woken by the next one) holds the task, and
    /// so the set, alive: a cycle that only a signal or this breaks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// use waitq::{SignalSource, TaskSignals, TaskState};
    /// let signals = TaskSignals::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(signals.poll_signal(TaskState::Interruptible, &mut cx).is_pending());
    /// signals.forget_wakers(); // the task ended: nothing left to wake
    /// ```
    pub fn forget_wakers(&self) {
        // Set by the poll that kept a waker, which the executor's poll
        // ordered before the task's end: a plain load sees it.
        if !self.kept.load(Ordering::Relaxed) {
            return;
        }
        let wakers = std::mem::take(&mut *self.lock());
        drop(wakers);
    }

    /// The most severe pending signal, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = waitq::TaskSignals::new();
    /// assert!(signals.pending().is_none());
    /// ```
    pub fn pending(&self) -> Option<SignalKind> {
        kind_of(self.pending.load(Ordering::SeqCst))
    }

    fn raise(&self, bit: u8) {
        self.pending.fetch_or(bit, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.lock());
        crate::wake_batch::resume(crate::wake_batch::wake_each(wakers));
    }

    fn honoured(&self, state: TaskState) -> Option<SignalKind> {
        let bits = self.pending.load(Ordering::SeqCst);
        match state {
            TaskState::Uninterruptible => None,
            TaskState::Interruptible => kind_of(bits),
            TaskState::Killable => (bits & KILL != 0).then_some(SignalKind::Kill),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn kind_of(bits: u8) -> Option<SignalKind> {
    if bits & KILL != 0 {
        Some(SignalKind::Kill)
    } else if bits & INTERRUPT != 0 {
        Some(SignalKind::Interrupt)
    } else {
        None
    }
}

impl SignalSource for TaskSignals {
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind> {
        if let Some(kind) = self.honoured(state) {
            return Poll::Ready(kind);
        }
        if state == TaskState::Uninterruptible {
            return Poll::Pending;
        }
        let overflow = {
            let mut wakers = self.lock();
            let mut overflow = Vec::new();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                if wakers.len() >= MAX_KEPT_WAKERS {
                    overflow = std::mem::take(&mut *wakers);
                }
                wakers.push(cx.waker().clone());
                self.kept.store(true, Ordering::Relaxed);
            }
            overflow
        };
        overflow.into_iter().for_each(Waker::wake);
        // Re-check after registering: a raise in between is not lost.
        match self.honoured(state) {
            Some(kind) => Poll::Ready(kind),
            None => Poll::Pending,
        }
    }
}

impl Default for TaskSignals {
    fn default() -> Self {
        TaskSignals::new()
    }
}

impl fmt::Debug for TaskSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSignals")
            .field("pending", &self.pending())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    use super::{SignalSource, TaskSignals, MAX_KEPT_WAKERS};
    use crate::entry::TaskState;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn wakers_that_never_compare_equal_are_kept_within_a_bound_and_still_woken() {
        let signals = TaskSignals::new();
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        // A new waker for every poll, as some executors make.
        for _ in 0..3 * MAX_KEPT_WAKERS {
            let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
            let polled =
                signals.poll_signal(TaskState::Interruptible, &mut Context::from_waker(&waker));
            assert_eq!(polled, Poll::Pending);
        }
        assert!(signals.lock().len() <= MAX_KEPT_WAKERS);
        // The latest wait is still woken by a signal.
        let waker = Waker::from(woken.clone());
        let polled =
            signals.poll_signal(TaskState::Interruptible, &mut Context::from_waker(&waker));
        assert_eq!(polled, Poll::Pending);
        signals.interrupt();
        assert_eq!(woken.0.load(SeqCst), 1);
    }

    #[test]
    fn the_same_waker_is_kept_once() {
        let signals = TaskSignals::new();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        for _ in 0..10 {
            let polled = signals.poll_signal(TaskState::Killable, &mut Context::from_waker(&waker));
            assert_eq!(polled, Poll::Pending);
        }
        assert_eq!(signals.lock().len(), 1);
    }
}
