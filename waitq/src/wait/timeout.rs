//! `wait_event_timeout`, `_interruptible_timeout`, `_killable_timeout`.
//!
//! Kernel convention, in Rust types: `Ok(time_left)` when the condition
//! holds (`Ok(Duration::ZERO)` when it was found true only at or after the
//! deadline, the kernel's `1`), `Err` when the deadline passed with the
//! condition false (the kernel's `0`). A zero timeout checks once and never
//! registers. The deadline is fixed when the future is created.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::FusedFuture;
use pin_project_lite::pin_project;

use crate::clock::Clock;
use crate::entry::TaskState;
use crate::error::{Reason, TimedOut, WaitError};
use crate::signal::SignalSource;
use crate::wait::interruptible::signal_end;
use crate::wait::{as_option, Waiter};
use crate::WaitQueue;

pin_project! {
    /// A deadline on a caller-supplied clock; the sleep is created only if
    /// the wait actually has to sleep.
    struct Deadline<C: Clock> {
        clock: C,
        // `None`: the timeout overflowed `Instant`, i.e. no deadline.
        at: Option<Instant>,
        // The time left reported when there is no deadline: never more
        // than was asked for.
        timeout: Duration,
        fired: bool,
        #[pin]
        sleep: Option<C::Sleep>,
    }
}

impl<C: Clock> Deadline<C> {
    fn new(clock: C, timeout: Duration) -> Self {
        let at = clock.now().checked_add(timeout);
        Deadline {
            clock,
            at,
            timeout,
            fired: false,
            sleep: None,
        }
    }

    /// Whether the deadline has passed; otherwise registers `cx` with the sleep.
    fn poll_expired(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let mut this = self.project();
        let Some(at) = *this.at else {
            return false;
        };
        if *this.fired || this.clock.now() >= at {
            return true;
        }
        if this.sleep.is_none() {
            let sleep = this.clock.sleep_until(at);
            this.sleep.set(Some(sleep));
        }
        let sleep = this
            .sleep
            .as_mut()
            .as_pin_mut()
            .expect("sleep was just set");
        if sleep.poll(cx).is_ready() {
            *this.fired = true;
            this.sleep.set(None);
        }
        *this.fired
    }

    fn remaining(&self) -> Duration {
        match self.at {
            Some(at) => at.saturating_duration_since(self.clock.now()),
            // No deadline (the timeout overflowed `Instant`): the time
            // left is not more than the timeout (it was `Duration::MAX`).
            None => self.timeout,
        }
    }
}

macro_rules! timed_future {
    ($(#[$doc:meta])* $name:ident<$($sig:ident)?>, $err:ty) => {
        pin_project! {
            $(#[$doc])*
            #[must_use = "futures do nothing unless polled"]
            pub struct $name<'a, $($sig,)? C: Clock, F> {
                waiter: Waiter<&'a WaitQueue>,
                $(signals: $sig,)?
                #[pin]
                deadline: Deadline<C>,
                cond: F,
            }
        }

        impl<$($sig,)? C: Clock, F> $name<'_, $($sig,)? C, F> {
            /// Lists this wait at `site` instead of where the future was
            /// made (see [`WaitEvent::at`](crate::WaitEvent::at)).
            pub fn at(mut self, site: &'static Location<'static>) -> Self {
                self.waiter.at(site);
                self
            }
        }

        impl<$($sig,)? C: Clock, F> fmt::Debug for $name<'_, $($sig,)? C, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("waiter", &self.waiter)
                    .field("deadline", &self.deadline.at)
                    .finish_non_exhaustive()
            }
        }

        impl<$($sig: SignalSource,)? C: Clock, F: FnMut() -> bool> FusedFuture
            for $name<'_, $($sig,)? C, F>
        {
            fn is_terminated(&self) -> bool {
                self.waiter.is_done()
            }
        }
    };
}

timed_future! {
    /// Future returned by [`WaitQueue::wait_event_timeout`] and
    /// [`WaitQueue::wait_event_exclusive_timeout`].
    WaitEventTimeout<>, TimedOut
}

timed_future! {
    /// Future returned by [`WaitQueue::wait_event_interruptible_timeout`] and
    /// [`WaitQueue::wait_event_interruptible_exclusive_timeout`].
    WaitEventInterruptibleTimeout<S>, WaitError
}

timed_future! {
    /// Future returned by [`WaitQueue::wait_event_killable_timeout`].
    WaitEventKillableTimeout<S>, WaitError
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Sleeps until `cond` holds or `timeout` (measured on `clock`) passes,
    /// and returns the time left.
    ///
    /// Kernel: `wait_event_timeout()`. A true condition wins over an expired
    /// deadline.
    ///
    /// # Returns
    ///
    /// `Ok(time_left)` once `cond` holds; `Ok(Duration::ZERO)` if it was
    /// found true only at or after the deadline (the kernel's `1`).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passed with `cond` false (the kernel's
    /// `0`), or when the queue was closed ([`TimedOut::is_closed`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// See [`Clock`] for a clock on any executor; here the condition already
    /// holds, so nothing sleeps:
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # struct SysClock;
    /// # impl waitq::Clock for SysClock {
    /// #     type Sleep = std::future::Pending<()>;
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
    /// # }
    /// let queue = waitq::WaitQueue::new();
    /// let left = futures::executor::block_on(
    ///     queue.wait_event_timeout(SysClock, Duration::from_secs(1), || true),
    /// )
    /// .unwrap();
    /// assert!(left > Duration::ZERO);
    /// ```
    #[track_caller]
    pub fn wait_event_timeout<C: Clock, F: FnMut() -> bool>(
        &self,
        clock: C,
        timeout: Duration,
        cond: F,
    ) -> WaitEventTimeout<'_, C, F> {
        WaitEventTimeout {
            waiter: Waiter::new(self, false, TaskState::Uninterruptible, 0),
            deadline: Deadline::new(clock, timeout),
            cond,
        }
    }

    /// [`wait_event_timeout`](Self::wait_event_timeout) as an exclusive
    /// waiter. Timing out after being picked by a wake, with `cond` false, it
    /// passes the wake to the next exclusive waiter.
    ///
    /// Kernel: `___wait_event(..., exclusive = 1, ...)` with a timeout, as in
    /// `wait_event_idle_exclusive_timeout()`.
    ///
    /// # Returns
    ///
    /// As [`wait_event_timeout`](Self::wait_event_timeout).
    ///
    /// # Errors
    ///
    /// As [`wait_event_timeout`](Self::wait_event_timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a wake it had been picked for
    /// is handed on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # struct SysClock;
    /// # impl waitq::Clock for SysClock {
    /// #     type Sleep = std::future::Pending<()>;
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
    /// # }
    /// let queue = waitq::WaitQueue::new();
    /// let res = futures::executor::block_on(
    ///     queue.wait_event_exclusive_timeout(SysClock, Duration::ZERO, || false),
    /// );
    /// assert!(res.is_err());
    /// ```
    #[track_caller]
    pub fn wait_event_exclusive_timeout<C: Clock, F: FnMut() -> bool>(
        &self,
        clock: C,
        timeout: Duration,
        cond: F,
    ) -> WaitEventTimeout<'_, C, F> {
        WaitEventTimeout {
            waiter: Waiter::new(self, true, TaskState::Uninterruptible, 0),
            deadline: Deadline::new(clock, timeout),
            cond,
        }
    }

    /// [`wait_event_timeout`](Self::wait_event_timeout) that a signal also ends.
    ///
    /// Kernel: `wait_event_interruptible_timeout()`.
    ///
    /// # Returns
    ///
    /// As [`wait_event_timeout`](Self::wait_event_timeout).
    ///
    /// # Errors
    ///
    /// [`WaitError`] with `cond` false: a signal
    /// ([`is_interrupted`](WaitError::is_interrupted)), the deadline
    /// ([`is_timed_out`](WaitError::is_timed_out)) or a close.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # struct SysClock;
    /// # impl waitq::Clock for SysClock {
    /// #     type Sleep = std::future::Pending<()>;
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
    /// # }
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// signals.interrupt();
    /// let err = futures::executor::block_on(queue.wait_event_interruptible_timeout(
    ///     &signals,
    ///     SysClock,
    ///     Duration::from_secs(1),
    ///     || false,
    /// ))
    /// .unwrap_err();
    /// assert!(err.is_interrupted());
    /// ```
    #[track_caller]
    pub fn wait_event_interruptible_timeout<S: SignalSource, C: Clock, F: FnMut() -> bool>(
        &self,
        signals: S,
        clock: C,
        timeout: Duration,
        cond: F,
    ) -> WaitEventInterruptibleTimeout<'_, S, C, F> {
        WaitEventInterruptibleTimeout {
            waiter: Waiter::new(self, false, TaskState::Interruptible, 0),
            signals,
            deadline: Deadline::new(clock, timeout),
            cond,
        }
    }

    /// [`wait_event_interruptible_timeout`](Self::wait_event_interruptible_timeout)
    /// as an exclusive waiter (hand-off as in
    /// [`wait_event_exclusive_timeout`](Self::wait_event_exclusive_timeout)).
    ///
    /// # Returns
    ///
    /// As [`wait_event_timeout`](Self::wait_event_timeout).
    ///
    /// # Errors
    ///
    /// As [`wait_event_interruptible_timeout`](Self::wait_event_interruptible_timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a wake it had been picked for
    /// is handed on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # struct SysClock;
    /// # impl waitq::Clock for SysClock {
    /// #     type Sleep = std::future::Pending<()>;
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
    /// # }
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// let wait = queue.wait_event_interruptible_exclusive_timeout(
    ///     &signals,
    ///     SysClock,
    ///     Duration::from_secs(1),
    ///     || true,
    /// );
    /// assert!(futures::executor::block_on(wait).is_ok());
    /// ```
    #[track_caller]
    pub fn wait_event_interruptible_exclusive_timeout<
        S: SignalSource,
        C: Clock,
        F: FnMut() -> bool,
    >(
        &self,
        signals: S,
        clock: C,
        timeout: Duration,
        cond: F,
    ) -> WaitEventInterruptibleTimeout<'_, S, C, F> {
        WaitEventInterruptibleTimeout {
            waiter: Waiter::new(self, true, TaskState::Interruptible, 0),
            signals,
            deadline: Deadline::new(clock, timeout),
            cond,
        }
    }

    /// [`wait_event_timeout`](Self::wait_event_timeout) that a fatal signal
    /// also ends. Kernel: `wait_event_killable_timeout()`.
    ///
    /// # Returns
    ///
    /// As [`wait_event_timeout`](Self::wait_event_timeout).
    ///
    /// # Errors
    ///
    /// [`WaitError`] with `cond` false: a fatal signal
    /// ([`is_killed`](WaitError::is_killed)), the deadline or a close.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # struct SysClock;
    /// # impl waitq::Clock for SysClock {
    /// #     type Sleep = std::future::Pending<()>;
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
    /// # }
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// let err = futures::executor::block_on(queue.wait_event_killable_timeout(
    ///     &signals,
    ///     SysClock,
    ///     Duration::ZERO,
    ///     || false,
    /// ))
    /// .unwrap_err();
    /// assert!(err.is_timed_out());
    /// ```
    #[track_caller]
    pub fn wait_event_killable_timeout<S: SignalSource, C: Clock, F: FnMut() -> bool>(
        &self,
        signals: S,
        clock: C,
        timeout: Duration,
        cond: F,
    ) -> WaitEventKillableTimeout<'_, S, C, F> {
        WaitEventKillableTimeout {
            waiter: Waiter::new(self, false, TaskState::Killable, 0),
            signals,
            deadline: Deadline::new(clock, timeout),
            cond,
        }
    }
}

// ===== impl Future =====

impl<C: Clock, F: FnMut() -> bool> Future for WaitEventTimeout<'_, C, F> {
    type Output = Result<Duration, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut deadline = this.deadline;
        let mut ends = |cx: &mut Context<'_>| {
            deadline
                .as_mut()
                .poll_expired(cx)
                .then_some(Reason::TimedOut)
        };
        let poll = this.waiter.poll(cx, &mut as_option(this.cond), &mut ends);
        if poll.is_pending() {
            this.waiter.note_deadline(deadline.at);
        }
        poll.map(|res| match res {
            Ok(()) => Ok(deadline.remaining()),
            Err(reason) => Err(TimedOut::new(reason)),
        })
    }
}

impl<S: SignalSource, C: Clock, F: FnMut() -> bool> Future
    for WaitEventInterruptibleTimeout<'_, S, C, F>
{
    type Output = Result<Duration, WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_signalled(
            this.waiter,
            this.signals,
            this.deadline,
            this.cond,
            TaskState::Interruptible,
            cx,
        )
    }
}

impl<S: SignalSource, C: Clock, F: FnMut() -> bool> Future
    for WaitEventKillableTimeout<'_, S, C, F>
{
    type Output = Result<Duration, WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_signalled(
            this.waiter,
            this.signals,
            this.deadline,
            this.cond,
            TaskState::Killable,
            cx,
        )
    }
}

/// The timed wait with a signal source: the signal is asked first.
fn poll_signalled<S: SignalSource, C: Clock, F: FnMut() -> bool>(
    waiter: &mut Waiter<&WaitQueue>,
    signals: &S,
    mut deadline: Pin<&mut Deadline<C>>,
    cond: &mut F,
    state: TaskState,
    cx: &mut Context<'_>,
) -> Poll<Result<Duration, WaitError>> {
    let mut signal = signal_end(signals, state);
    let mut ends = |cx: &mut Context<'_>| {
        signal(cx).or_else(|| {
            deadline
                .as_mut()
                .poll_expired(cx)
                .then_some(Reason::TimedOut)
        })
    };
    let poll = waiter.poll(cx, &mut as_option(cond), &mut ends);
    if poll.is_pending() {
        waiter.note_deadline(deadline.at);
    }
    poll.map(|res| match res {
        Ok(()) => Ok(deadline.remaining()),
        Err(reason) => Err(WaitError::new(reason)),
    })
}
