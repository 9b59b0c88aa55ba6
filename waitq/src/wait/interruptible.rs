//! `wait_event_interruptible[_exclusive]` and `wait_event_killable[_exclusive]`.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::entry::TaskState;
use crate::error::{Interrupted, Killed, Reason};
use crate::signal::{SignalKind, SignalSource};
use crate::wait::{as_option, Waiter};
use crate::WaitQueue;

/// Future returned by [`WaitQueue::wait_event_interruptible`] and
/// [`WaitQueue::wait_event_interruptible_exclusive`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitEventInterruptible<'a, S, F> {
    waiter: Waiter<&'a WaitQueue>,
    signals: S,
    cond: F,
}

/// Future returned by [`WaitQueue::wait_event_killable`] and
/// [`WaitQueue::wait_event_killable_exclusive`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitEventKillable<'a, S, F> {
    waiter: Waiter<&'a WaitQueue>,
    signals: S,
    cond: F,
}

/// Asks `signals` whether a signal a sleep in `state` honours is pending.
pub(crate) fn signal_end<S: SignalSource>(
    signals: &S,
    state: TaskState,
) -> impl FnMut(&mut Context<'_>) -> Option<Reason> + '_ {
    move |cx| match signals.poll_signal(state, cx) {
        Poll::Ready(SignalKind::Kill) => Some(Reason::Killed),
        Poll::Ready(SignalKind::Interrupt) if state == TaskState::Interruptible => {
            Some(Reason::Interrupted)
        }
        Poll::Ready(_) | Poll::Pending => None,
    }
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Sleeps until `cond` holds or `signals` reports a signal.
    ///
    /// Kernel: `wait_event_interruptible()`; the error is its `-ERESTARTSYS`.
    /// Only [`wake_up_interruptible`](Self::wake_up_interruptible) and the
    /// ordinary `wake_up*` wake it. A true condition wins over a pending
    /// signal: the signal is reported only when `cond` is false.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on a signal (fatal or not, see
    /// [`Interrupted::is_fatal`]) or when the queue is closed
    /// ([`Interrupted::is_closed`]), in both cases with `cond` false.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitq::{TaskSignals, WaitQueue};
    ///
    /// let queue = WaitQueue::new();
    /// let signals = TaskSignals::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| signals.interrupt());
    ///     let res = futures::executor::block_on(queue.wait_event_interruptible(&signals, || false));
    ///     assert!(res.is_err()); // -ERESTARTSYS
    /// });
    /// ```
    #[track_caller]
    pub fn wait_event_interruptible<S: SignalSource, F: FnMut() -> bool>(
        &self,
        signals: S,
        cond: F,
    ) -> WaitEventInterruptible<'_, S, F> {
        WaitEventInterruptible {
            waiter: Waiter::new(self, false, TaskState::Interruptible, 0),
            signals,
            cond,
        }
    }

    /// [`wait_event_interruptible`](Self::wait_event_interruptible) as an
    /// exclusive waiter. Interrupted after being picked by a wake, it passes
    /// the wake to the next exclusive waiter.
    ///
    /// Kernel: `wait_event_interruptible_exclusive()`.
    ///
    /// # Errors
    ///
    /// As [`wait_event_interruptible`](Self::wait_event_interruptible).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a wake it had been picked for
    /// is handed on.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// futures::executor::block_on(queue.wait_event_interruptible_exclusive(&signals, || true))
    ///     .unwrap();
    /// ```
    #[track_caller]
    pub fn wait_event_interruptible_exclusive<S: SignalSource, F: FnMut() -> bool>(
        &self,
        signals: S,
        cond: F,
    ) -> WaitEventInterruptible<'_, S, F> {
        WaitEventInterruptible {
            waiter: Waiter::new(self, true, TaskState::Interruptible, 0),
            signals,
            cond,
        }
    }

    /// Sleeps until `cond` holds or `signals` reports a *fatal* signal;
    /// ordinary signals are ignored.
    ///
    /// Kernel: `wait_event_killable()`. Not woken by
    /// `wake_up_interruptible*`. A true condition wins over a pending kill.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a fatal signal, or when the queue is closed
    /// ([`Killed::is_closed`]), with `cond` false.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// signals.interrupt(); // ignored by a killable wait...
    /// signals.kill(); // ...but not this
    /// let res = futures::executor::block_on(queue.wait_event_killable(&signals, || false));
    /// assert!(res.is_err());
    /// ```
    #[track_caller]
    pub fn wait_event_killable<S: SignalSource, F: FnMut() -> bool>(
        &self,
        signals: S,
        cond: F,
    ) -> WaitEventKillable<'_, S, F> {
        WaitEventKillable {
            waiter: Waiter::new(self, false, TaskState::Killable, 0),
            signals,
            cond,
        }
    }

    /// [`wait_event_killable`](Self::wait_event_killable) as an exclusive
    /// waiter. Kernel: `wait_event_killable_exclusive()`.
    ///
    /// # Errors
    ///
    /// As [`wait_event_killable`](Self::wait_event_killable).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a wake it had been picked for
    /// is handed on.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// futures::executor::block_on(queue.wait_event_killable_exclusive(&signals, || true)).unwrap();
    /// ```
    #[track_caller]
    pub fn wait_event_killable_exclusive<S: SignalSource, F: FnMut() -> bool>(
        &self,
        signals: S,
        cond: F,
    ) -> WaitEventKillable<'_, S, F> {
        WaitEventKillable {
            waiter: Waiter::new(self, true, TaskState::Killable, 0),
            signals,
            cond,
        }
    }
}

// ===== impl WaitEventInterruptible =====

impl<S, F> WaitEventInterruptible<'_, S, F> {
    /// Lists this wait at `site` instead of where the future was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)).
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }
}

impl<S, F> WaitEventKillable<'_, S, F> {
    /// Lists this wait at `site` instead of where the future was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)).
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }
}

impl<S: SignalSource, F: FnMut() -> bool> Future for WaitEventInterruptible<'_, S, F> {
    type Output = Result<(), Interrupted>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut ends = signal_end(&this.signals, TaskState::Interruptible);
        this.waiter
            .poll(cx, &mut as_option(&mut this.cond), &mut ends)
            .map_err(Interrupted::new)
    }
}

impl<S: SignalSource, F: FnMut() -> bool> FusedFuture for WaitEventInterruptible<'_, S, F> {
    fn is_terminated(&self) -> bool {
        self.waiter.is_done()
    }
}

impl<S, F> Unpin for WaitEventInterruptible<'_, S, F> {}

// ===== impl WaitEventKillable =====

impl<S: SignalSource, F: FnMut() -> bool> Future for WaitEventKillable<'_, S, F> {
    type Output = Result<(), Killed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut ends = signal_end(&this.signals, TaskState::Killable);
        this.waiter
            .poll(cx, &mut as_option(&mut this.cond), &mut ends)
            .map_err(Killed::new)
    }
}

impl<S: SignalSource, F: FnMut() -> bool> FusedFuture for WaitEventKillable<'_, S, F> {
    fn is_terminated(&self) -> bool {
        self.waiter.is_done()
    }
}

impl<S, F> Unpin for WaitEventKillable<'_, S, F> {}
