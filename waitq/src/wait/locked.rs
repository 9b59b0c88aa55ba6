//! `wait_event_lock`: the condition runs under a user mutex (kernel:
//! `wait_event_lock_irq()`, the condition-variable pattern).

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::coop;
use crate::entry::TaskState;
use crate::error::{Closed, Reason};
use crate::queue::Registration;
use crate::registry::WaitApi;
use crate::wait::Waiter;
use crate::WaitQueue;

/// Future returned by [`WaitQueue::wait_event_lock`] and
/// [`WaitQueue::wait_event_lock_exclusive`]: resolves to the guard of the
/// user mutex, held, with the condition true.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WaitEventLock<'a, 'm, T, F> {
    waiter: Waiter<&'a WaitQueue>,
    lock: &'m Mutex<T>,
    cond: F,
}

// ===== impl WaitQueue =====

impl WaitQueue {
    /// Sleeps until `cond` holds, evaluating it with `lock` held, and
    /// resolves to the held guard.
    ///
    /// Kernel: `wait_event_lock_irq()`. Each poll locks `lock` and tests
    /// `cond`; if it is false, the waiter is linked on the queue *before*
    /// the lock is released, so a setter that takes the lock, changes the
    /// state, unlocks and calls `wake_up` can never be missed. `cond` never
    /// runs without the lock. The guard is never held across a `Pending`.
    /// A poisoned mutex is used as is (the poison is ignored).
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
    /// use std::sync::Mutex;
    /// use waitq::WaitQueue;
    ///
    /// let queue = WaitQueue::new();
    /// let state = Mutex::new(0);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         *state.lock().unwrap() = 5;
    ///         queue.wake_up();
    ///     });
    ///     let guard = futures::executor::block_on(queue.wait_event_lock(&state, |n| *n == 5))
    ///         .unwrap();
    ///     assert_eq!(*guard, 5);
    /// });
    /// ```
    #[doc(alias = "wait_event_lock_irq")]
    #[track_caller]
    pub fn wait_event_lock<'m, T, F: FnMut(&mut T) -> bool>(
        &self,
        lock: &'m Mutex<T>,
        cond: F,
    ) -> WaitEventLock<'_, 'm, T, F> {
        WaitEventLock {
            waiter: Waiter::new(self, false, TaskState::Uninterruptible, 0).with_api(WaitApi::Lock),
            lock,
            cond,
        }
    }

    /// [`wait_event_lock`](Self::wait_event_lock) as an exclusive waiter:
    /// an async condition variable whose `wake_up` is `notify_one`.
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
    /// let queue = waitq::WaitQueue::new();
    /// let items = Mutex::new(vec![1]);
    /// let mut guard =
    ///     futures::executor::block_on(queue.wait_event_lock_exclusive(&items, |v| !v.is_empty()))
    ///         .unwrap();
    /// assert_eq!(guard.pop(), Some(1));
    /// ```
    #[track_caller]
    pub fn wait_event_lock_exclusive<'m, T, F: FnMut(&mut T) -> bool>(
        &self,
        lock: &'m Mutex<T>,
        cond: F,
    ) -> WaitEventLock<'_, 'm, T, F> {
        WaitEventLock {
            waiter: Waiter::new(self, true, TaskState::Uninterruptible, 0).with_api(WaitApi::Lock),
            lock,
            cond,
        }
    }
}

// ===== impl WaitEventLock =====

impl<T, F> WaitEventLock<'_, '_, T, F> {
    /// Lists this wait at `site` instead of where the future was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)).
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }
}

impl<'m, T, F: FnMut(&mut T) -> bool> Future for WaitEventLock<'_, 'm, T, F> {
    type Output = Result<MutexGuard<'m, T>, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.waiter.is_done(),
            "wait future polled after it completed"
        );
        if crate::hook::is_probing() {
            // The user lock may be held by a sleeping task: never block on it.
            let (lock, cond) = (this.lock, &mut this.cond);
            this.waiter.probe_with(|| match lock.try_lock() {
                Ok(mut guard) => Some(cond(&mut guard)),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(cond(&mut p.into_inner())),
                Err(std::sync::TryLockError::WouldBlock) => None,
            });
            return Poll::Pending;
        }
        if coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let poll = this.poll_locked(cx);
        if poll.is_pending() {
            coop::refund();
        }
        poll
    }
}

impl<'m, T, F: FnMut(&mut T) -> bool> WaitEventLock<'_, 'm, T, F> {
    /// One poll, budget already spent.
    fn poll_locked(&mut self, cx: &mut Context<'_>) -> Poll<Result<MutexGuard<'m, T>, Closed>> {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if (self.cond)(&mut guard) {
            self.waiter.finish();
            self.waiter.set_done();
            return Poll::Ready(Ok(guard));
        }
        match self.waiter.check_linked(cx) {
            Some(Registration::Linked) => return Poll::Pending,
            Some(Registration::Gone) if self.waiter.queue().is_closed() => {
                self.waiter.set_done();
                return Poll::Ready(Err(Closed::new(Reason::Closed)));
            }
            // Woken with the condition false, or first poll: link (again).
            Some(Registration::Gone) | None => {}
        }
        // Linked while the user lock is still held: a setter must take the
        // lock to change the state, so its wake_up finds us linked.
        if let Err(reason) = self.waiter.link(cx) {
            self.waiter.set_done();
            return Poll::Ready(Err(Closed::new(reason)));
        }
        drop(guard);
        Poll::Pending
    }
}

impl<T, F: FnMut(&mut T) -> bool> FusedFuture for WaitEventLock<'_, '_, T, F> {
    fn is_terminated(&self) -> bool {
        self.waiter.is_done()
    }
}

impl<T, F> Unpin for WaitEventLock<'_, '_, T, F> {}
