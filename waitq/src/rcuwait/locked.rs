//! Locked waits on an [`RcuWait`]: the wait's lock also guards its
//! owner's state, the waiter's condition reads that state under the lock,
//! and a waker changes it and takes the waiter's waker in one lock hold.
//!
//! Kernel: `struct completion` over a simple wait queue. `complete()`
//! bumps `done` and calls `swake_up_locked()` under the wait's lock, and
//! `wait_for_completion()` tests `done` under the same lock before it
//! sleeps. One lock hold per side, no fence, and no window between the
//! test and the store for a wake to fall into.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::task::{Context, Poll, Waker};
use std::thread;

use super::{budgeted, LockKind, RcuWait, SlotGuard, StdLock};
use crate::error::{Closed, Reason};
use crate::hook::{self, PointKind, WakeKind};
use crate::registry::{Listed, WaitApi};
use crate::sync::Ordering;

impl<S, L: LockKind> RcuWait<S, L> {
    /// Locks the state. [`RcuWaitGuard::wake_up`] takes the waiter's
    /// waker in the same hold, releases the lock and wakes it.
    ///
    /// A waiter's locked condition runs under this lock: do not wait on
    /// the same `RcuWait` while holding the guard.
    ///
    /// Kernel: `spin_lock(&x->wait.lock)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::with_state(None, 0u32);
    /// let mut done = wait.lock();
    /// *done += 1; // complete(): the state first,
    /// done.wake_up(); // then the wake, taken in the same hold
    /// ```
    pub fn lock(&self) -> RcuWaitGuard<'_, S, L> {
        RcuWaitGuard {
            wait: self,
            slot: self.lock_slot(),
        }
    }

    /// One step of a locked wait: `cond` runs on the state under the lock;
    /// `Ready(Ok(r))` once it returns `Some(r)`, `Pending` with `cx`'s
    /// waker stored (in the same hold) otherwise. Spends one unit of the
    /// [`coop`](crate::coop) budget. The waker is cloned before the lock, so call it
    /// when a cheaper test (an atomic the state mirrors) said "not yet".
    ///
    /// `cond` must not touch this `RcuWait`. A waiter that gives up calls
    /// [`finish_wait`](Self::finish_wait).
    ///
    /// Kernel: one pass of `wait_for_completion()`'s loop.
    ///
    /// # Errors
    ///
    /// `Ready(Err(Closed))` if the wait is (or gets) closed while `cond`
    /// returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let wait = waitq::RcuWait::with_state(None, None::<u32>);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(wait.poll_wait_event_locked(&mut cx, |v| v.take()).is_pending());
    /// let mut slot = wait.lock();
    /// *slot = Some(7);
    /// assert!(slot.wake_up());
    /// assert_eq!(wait.poll_wait_event_locked(&mut cx, |v| v.take()), Poll::Ready(Ok(7)));
    /// ```
    #[track_caller]
    pub fn poll_wait_event_locked<R>(
        &self,
        cx: &mut Context<'_>,
        cond: impl FnMut(&mut S) -> Option<R>,
    ) -> Poll<Result<R, Closed>> {
        self.poll_wait_event_locked_at(cx, Location::caller(), cond)
    }

    /// [`poll_wait_event_locked`](Self::poll_wait_event_locked), listing
    /// the wait at `site` (see
    /// [`poll_wait_event_at`](Self::poll_wait_event_at)).
    ///
    /// # Errors
    ///
    /// As [`poll_wait_event_locked`](Self::poll_wait_event_locked).
    pub fn poll_wait_event_locked_at<R>(
        &self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
        mut cond: impl FnMut(&mut S) -> Option<R>,
    ) -> Poll<Result<R, Closed>> {
        if hook::is_probing() {
            self.probe(site, &mut || cond(&mut self.lock_slot().state).is_some());
            return Poll::Pending;
        }
        budgeted(cx, |waker| {
            self.poll_step_locked(waker, &mut cond, site, WaitApi::RcuWait)
        })
    }

    /// Blocks the current thread until `cond` (run on the state under the
    /// lock) returns `Some`. Do not call it from an async task.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the wait is (or gets) closed while `cond` returns
    /// `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::with_state(None, None::<u32>);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let mut slot = wait.lock();
    ///         *slot = Some(7);
    ///         slot.wake_up();
    ///     });
    ///     assert_eq!(wait.blocking_wait_event_locked(|v| v.take()), Ok(7));
    /// });
    /// ```
    #[track_caller]
    pub fn blocking_wait_event_locked<R>(
        &self,
        mut cond: impl FnMut(&mut S) -> Option<R>,
    ) -> Result<R, Closed> {
        let site = Location::caller();
        let waker = crate::blocking::thread_waker();
        loop {
            if let Poll::Ready(res) =
                self.poll_step_locked(&waker, &mut cond, site, WaitApi::Blocking)
            {
                return res;
            }
            thread::park();
        }
    }

    /// One locked step without the budget: test and store in one hold.
    fn poll_step_locked<R>(
        &self,
        waker: &Waker,
        cond: &mut impl FnMut(&mut S) -> Option<R>,
        site: &'static Location<'static>,
        api: WaitApi,
    ) -> Poll<Result<R, Closed>> {
        self.forget_stale();
        hook::decide_on(PointKind::BeforeLink, self.id(), self.name, site);
        let new = waker.clone();
        let mut slot = self.lock_slot();
        let res = match cond(&mut slot.state) {
            Some(value) => Ok(value),
            None if self.is_closed() => Err(Closed::new(Reason::Closed)),
            None => {
                let old = self.store_locked(&mut slot, new, site, api);
                drop(slot);
                drop(old);
                return Poll::Pending;
            }
        };
        // The wait is over: take back a waker an earlier poll stored (only
        // this waiter stores one, so its own store is what it reads).
        let (old, listed) = match self.armed.load(Ordering::Relaxed) {
            true => self.take_locked(&mut slot),
            false => (None, Listed::No),
        };
        drop(slot);
        drop((old, new));
        self.unlist_mine(listed);
        Poll::Ready(res)
    }
}

/// The state of an [`RcuWait`], locked (see [`RcuWait::lock`]). Derefs to
/// the state; [`wake_up`](Self::wake_up) ends the hold and wakes the
/// waiter after the lock is released.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RcuWaitGuard<'a, S, L: LockKind = StdLock> {
    wait: &'a RcuWait<S, L>,
    slot: SlotGuard<'a, S, L>,
}

impl<S, L: LockKind> RcuWaitGuard<'_, S, L> {
    /// Takes the waiter's waker, if one is stored, in this hold, releases
    /// the lock, then wakes it; returns whether there was one. Change the
    /// state first (the waiter reads it under this same lock).
    ///
    /// Kernel: `swake_up_locked()`, then the unlock.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::with_state(None, false);
    /// let mut done = wait.lock();
    /// *done = true;
    /// assert!(!done.wake_up()); // nobody waiting: the state is enough
    /// ```
    #[track_caller]
    #[inline(always)]
    pub fn wake_up(mut self) -> bool {
        let site = Location::caller();
        let wait = self.wait;
        // Under the lock `armed` is exact: with nobody stored there is
        // nothing to take (the common case for a channel's sends).
        let waker = match wait.armed.load(Ordering::Relaxed) {
            true => wait.take_stored(&mut self.slot),
            false => None,
        };
        drop(self);
        let woken = waker.is_some();
        if let Some(waker) = waker {
            // Not while unwinding: a waker's panic would abort.
            crate::wake_batch::wake_one(waker);
        }
        hook::woke_on(
            wait.id(),
            wait.name,
            site,
            usize::from(woken),
            WakeKind::WakeUp,
        );
        woken
    }
}

impl<S, L: LockKind> Deref for RcuWaitGuard<'_, S, L> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.slot.state
    }
}

impl<S, L: LockKind> DerefMut for RcuWaitGuard<'_, S, L> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.slot.state
    }
}

impl<S: fmt::Debug, L: LockKind> fmt::Debug for RcuWaitGuard<'_, S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcuWaitGuard")
            .field("state", &**self)
            .finish()
    }
}
