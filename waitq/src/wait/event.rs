//! `wait_event`, `wait_event_exclusive`, `wait_event_value`, `wait_event_key`.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::entry::TaskState;
use crate::error::Closed;
use crate::wait::{as_option, no_end, Waiter};
use crate::WaitQueue;

/// Future returned by [`WaitQueue::wait_event`] and its exclusive and keyed
/// forms. Resolves to `Ok(())` once the condition holds.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitEvent<'a, F> {
    waiter: Waiter<&'a WaitQueue>,
    cond: F,
}

/// Future returned by [`WaitQueue::wait_event_value`] and
/// [`WaitQueue::wait_event_value_exclusive`]: resolves to the value the
/// condition produced.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitEventValue<'a, F> {
    waiter: Waiter<&'a WaitQueue>,
    cond: F,
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Sleeps until `cond` returns true.
    ///
    /// Kernel: `wait_event()`. The waiter is non-exclusive: every wake wakes
    /// it. `cond` is called on the first poll and after every wake, never
    /// with the queue lock held, so it may lock other things or even call
    /// `wake_up` on this queue; keep it cheap and free of side effects.
    ///
    /// The side that makes `cond` true must do so *before* calling a
    /// `wake_up*` method, or this wait may sleep forever.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; nothing is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use waitq::WaitQueue;
    ///
    /// let queue = WaitQueue::new();
    /// let items = AtomicUsize::new(0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         items.fetch_add(1, Ordering::SeqCst);
    ///         queue.wake_up();
    ///     });
    ///     futures::executor::block_on(queue.wait_event(|| items.load(Ordering::SeqCst) > 0))
    ///         .unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn wait_event<F: FnMut() -> bool>(&self, cond: F) -> WaitEvent<'_, F> {
        WaitEvent {
            waiter: Waiter::new(self, false, TaskState::Uninterruptible, 0),
            cond,
        }
    }

    /// Sleeps until `cond` returns true, as an exclusive waiter: a
    /// [`wake_up`](Self::wake_up) wakes only the oldest exclusive waiter.
    ///
    /// Kernel: `wait_event_exclusive()` (`___wait_event(..., 1, ...)`).
    /// Exclusive waiters are woken in FIFO order. One that is woken but ends
    /// without success (dropped, its condition stolen and the future then
    /// dropped) passes its wake to the next exclusive waiter.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a wake it had been picked for
    /// is handed on to the next exclusive waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use waitq::WaitQueue;
    ///
    /// let queue = WaitQueue::new();
    /// let jobs = Mutex::new(vec![1, 2]);
    /// let take = || jobs.lock().unwrap().pop().is_some();
    /// futures::executor::block_on(queue.wait_event_exclusive(take)).unwrap();
    /// assert_eq!(jobs.lock().unwrap().len(), 1);
    /// ```
    #[track_caller]
    pub fn wait_event_exclusive<F: FnMut() -> bool>(&self, cond: F) -> WaitEvent<'_, F> {
        WaitEvent {
            waiter: Waiter::new(self, true, TaskState::Uninterruptible, 0),
            cond,
        }
    }

    /// Sleeps until `cond` returns `Some(value)`, and resolves to the value.
    ///
    /// Lets a waiter take a resource in the same check that decides it is
    /// ready (maitake's `wait_for_value`, Asterinas's `wait_until`).
    /// Non-exclusive, like [`wait_event`](Self::wait_event).
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` returns `None`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unlinks its entry; a value is only taken by a
    /// poll that returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    /// let queue = waitq::WaitQueue::new();
    /// let slot = Mutex::new(Some(7));
    /// let got = futures::executor::block_on(queue.wait_event_value(|| slot.lock().unwrap().take()));
    /// assert_eq!(got.unwrap(), 7);
    /// ```
    #[track_caller]
    pub fn wait_event_value<T, F: FnMut() -> Option<T>>(&self, cond: F) -> WaitEventValue<'_, F> {
        WaitEventValue {
            waiter: Waiter::new(self, false, TaskState::Uninterruptible, 0),
            cond,
        }
    }

    /// [`wait_event_value`](Self::wait_event_value) as an exclusive waiter.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` returns `None`.
    ///
    /// # Cancel safety
    ///
    /// As [`wait_event_exclusive`](Self::wait_event_exclusive).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Mutex;
    /// let queue = waitq::WaitQueue::new();
    /// let slot = Mutex::new(vec!["job"]);
    /// let job = futures::executor::block_on(
    ///     queue.wait_event_value_exclusive(|| slot.lock().unwrap().pop()),
    /// );
    /// assert_eq!(job.unwrap(), "job");
    /// ```
    #[track_caller]
    pub fn wait_event_value_exclusive<T, F: FnMut() -> Option<T>>(
        &self,
        cond: F,
    ) -> WaitEventValue<'_, F> {
        WaitEventValue {
            waiter: Waiter::new(self, true, TaskState::Uninterruptible, 0),
            cond,
        }
    }

    /// Sleeps until `cond` holds, woken only by wakes whose poll key shares
    /// a bit with `mask` (and by wakes without a key, such as `wake_up`).
    ///
    /// Kernel: a poll-table entry with `pollwake()`'s key filter; pairs with
    /// [`wake_up_poll`](Self::wake_up_poll). `mask == 0` matches every wake.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Cancel safety
    ///
    /// As [`wait_event`](Self::wait_event).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// const READABLE: u32 = 0b01;
    /// let queue = waitq::WaitQueue::new();
    /// let readable = AtomicBool::new(true);
    /// futures::executor::block_on(
    ///     queue.wait_event_key(READABLE, || readable.load(Ordering::SeqCst)),
    /// )
    /// .unwrap();
    /// ```
    #[track_caller]
    pub fn wait_event_key<F: FnMut() -> bool>(&self, mask: u32, cond: F) -> WaitEvent<'_, F> {
        WaitEvent {
            waiter: Waiter::new(self, false, TaskState::Uninterruptible, mask),
            cond,
        }
    }

    /// [`wait_event_key`](Self::wait_event_key) as an exclusive waiter:
    /// a matching wake uses up one exclusive slot, a non-matching one none.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the queue is (or gets) closed while `cond` is false.
    ///
    /// # Cancel safety
    ///
    /// As [`wait_event_exclusive`](Self::wait_event_exclusive).
    ///
    /// # Examples
    ///
    /// ```
    /// const WRITABLE: u32 = 0b10;
    /// let queue = waitq::WaitQueue::new();
    /// futures::executor::block_on(queue.wait_event_key_exclusive(WRITABLE, || true)).unwrap();
    /// ```
    #[track_caller]
    pub fn wait_event_key_exclusive<F: FnMut() -> bool>(
        &self,
        mask: u32,
        cond: F,
    ) -> WaitEvent<'_, F> {
        WaitEvent {
            waiter: Waiter::new(self, true, TaskState::Uninterruptible, mask),
            cond,
        }
    }
}

// ===== impl WaitEvent =====

impl<F> WaitEvent<'_, F> {
    /// Lists this wait at `site` (in the wait registry's dumps and the
    /// test toolkit's reports) instead of where the future was made: for a
    /// method that wraps the wait, so the listing names *its* caller (mark
    /// the method `#[track_caller]` and pass `Location::caller()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::panic::Location;
    /// use waitq::WaitQueue;
    ///
    /// #[track_caller]
    /// fn ready(queue: &WaitQueue) -> impl std::future::Future<Output = Result<(), waitq::Closed>> + '_ {
    ///     queue.wait_event(|| true).at(Location::caller())
    /// }
    /// futures::executor::block_on(ready(&WaitQueue::new())).unwrap();
    /// ```
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }
}

impl<F> WaitEventValue<'_, F> {
    /// Lists this wait at `site` instead of where the future was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)).
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }
}

impl<F: FnMut() -> bool> Future for WaitEvent<'_, F> {
    type Output = Result<(), Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.waiter
            .poll(cx, &mut as_option(&mut this.cond), &mut no_end)
            .map_err(Closed::new)
    }
}

impl<F: FnMut() -> bool> FusedFuture for WaitEvent<'_, F> {
    fn is_terminated(&self) -> bool {
        self.waiter.is_done()
    }
}

// The condition is never pinned: these futures move freely.
impl<F> Unpin for WaitEvent<'_, F> {}

// ===== impl WaitEventValue =====

impl<T, F: FnMut() -> Option<T>> Future for WaitEventValue<'_, F> {
    type Output = Result<T, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.waiter
            .poll(cx, &mut this.cond, &mut no_end)
            .map_err(Closed::new)
    }
}

impl<T, F: FnMut() -> Option<T>> FusedFuture for WaitEventValue<'_, F> {
    fn is_terminated(&self) -> bool {
        self.waiter.is_done()
    }
}

impl<F> Unpin for WaitEventValue<'_, F> {}
