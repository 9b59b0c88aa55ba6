//! Waits from plain threads, on the same queue as async waiters.
//!
//! A blocking wait is the async wait driven by a tiny loop: the waker of
//! the entry unparks the thread (made once per thread, so no allocation per
//! wait), and `thread::park` is the `schedule()`.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::entry::TaskState;
use crate::error::{Closed, Reason, TimedOut};
use crate::registry::WaitApi;
use crate::wait::{as_option, Waiter};
use crate::WaitQueue;

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
    static THREAD_WAKER: Waker = Waker::from(Arc::new(Unparker(thread::current())));
}

/// The current thread's waker: it unparks the thread.
pub(crate) fn thread_waker() -> Waker {
    THREAD_WAKER.with(Waker::clone)
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Blocks the current thread until `cond` holds.
    ///
    /// Kernel: `wait_event()` from a kernel thread. Same list, same rules as
    /// [`wait_event`](Self::wait_event); async and thread waiters mix freely.
    /// Do not call it from an async task: it blocks the executor thread.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let queue = waitq::WaitQueue::new();
    /// let ready = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         ready.store(true, Ordering::SeqCst);
    ///         queue.wake_up();
    ///     });
    ///     queue.blocking_wait_event(|| ready.load(Ordering::SeqCst)).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn blocking_wait_event(&self, mut cond: impl FnMut() -> bool) -> Result<(), Closed> {
        let mut waiter =
            Waiter::new(self, false, TaskState::Uninterruptible, 0).with_api(WaitApi::Blocking);
        block(&mut waiter, &mut as_option(&mut cond), None).map_err(Closed::new)
    }

    /// [`blocking_wait_event`](Self::blocking_wait_event) as an exclusive waiter.
    ///
    /// Kernel: `wait_event_exclusive()` from a kernel thread.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// queue.blocking_wait_event_exclusive(|| true).unwrap();
    /// ```
    #[track_caller]
    pub fn blocking_wait_event_exclusive(
        &self,
        mut cond: impl FnMut() -> bool,
    ) -> Result<(), Closed> {
        let mut waiter =
            Waiter::new(self, true, TaskState::Uninterruptible, 0).with_api(WaitApi::Blocking);
        block(&mut waiter, &mut as_option(&mut cond), None).map_err(Closed::new)
    }

    /// Blocks the current thread until `cond` holds or `timeout` passes;
    /// returns the time left, with the conventions of
    /// [`wait_event_timeout`](Self::wait_event_timeout) (measured on the
    /// system clock).
    ///
    /// Kernel: `wait_event_timeout()` from a kernel thread.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passed with `cond` false, or the queue
    /// was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let queue = waitq::WaitQueue::new();
    /// let res = queue.blocking_wait_event_timeout(Duration::from_millis(1), || false);
    /// assert!(res.is_err());
    /// ```
    #[track_caller]
    pub fn blocking_wait_event_timeout(
        &self,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Result<Duration, TimedOut> {
        let mut waiter =
            Waiter::new(self, false, TaskState::Uninterruptible, 0).with_api(WaitApi::Blocking);
        block_timed(&mut waiter, &mut as_option(&mut cond), timeout)
    }
}

impl WaitQueue {
    /// [`blocking_wait_event_timeout`](Self::blocking_wait_event_timeout) as
    /// an exclusive waiter (timing out after being picked hands the wake on).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when the deadline passed with `cond` false, or the queue
    /// was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let queue = waitq::WaitQueue::new();
    /// let left = queue.blocking_wait_event_exclusive_timeout(Duration::from_secs(1), || true);
    /// assert!(left.is_ok());
    /// ```
    #[track_caller]
    pub fn blocking_wait_event_exclusive_timeout(
        &self,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Result<Duration, TimedOut> {
        let mut waiter =
            Waiter::new(self, true, TaskState::Uninterruptible, 0).with_api(WaitApi::Blocking);
        block_timed(&mut waiter, &mut as_option(&mut cond), timeout)
    }
}

fn block_timed(
    waiter: &mut Waiter<&WaitQueue>,
    cond: &mut impl FnMut() -> Option<()>,
    timeout: Duration,
) -> Result<Duration, TimedOut> {
    let deadline = Instant::now().checked_add(timeout);
    block(waiter, cond, deadline)
        .map(|()| match deadline {
            Some(at) => at.saturating_duration_since(Instant::now()),
            // No deadline (the timeout overflowed `Instant`): never more
            // time left than was asked for.
            None => timeout,
        })
        .map_err(TimedOut::new)
}

/// Drives `waiter` on this thread, parking between polls.
fn block<T>(
    waiter: &mut Waiter<&WaitQueue>,
    cond: &mut impl FnMut() -> Option<T>,
    deadline: Option<Instant>,
) -> Result<T, Reason> {
    let waker = THREAD_WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut ends = |_: &mut Context<'_>| {
        deadline
            .filter(|at| Instant::now() >= *at)
            .map(|_| Reason::TimedOut)
    };
    loop {
        if let Poll::Ready(res) = waiter.poll_blocking(&mut cx, cond, &mut ends) {
            return res;
        }
        if deadline.is_some() {
            waiter.note_deadline(deadline);
        }
        match deadline {
            None => thread::park(),
            Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
        }
    }
}
