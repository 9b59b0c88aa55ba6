//! The poll logic every wait future shares (kernel: `___wait_event()`).
//!
//! # The loop, per poll
//!
//! 1. Not registered: test the condition; if true, done without touching
//!    the queue (the fast path). Otherwise ask the *end sources* (signal,
//!    deadline) whether the wait must end; they register their own wakers.
//!    Then link an entry (waker cloned before the lock), and **test the
//!    condition again**: a waker that changed the state before we were
//!    linked is caught here, one that changes it after finds us linked.
//! 2. Registered: test the condition; if true, unlink and finish. Otherwise
//!    look at the entry: still linked means no wake picked us (the poll came
//!    from an end source or a spurious wake): refresh the waker and ask the
//!    end sources. Gone means a wake picked us (or `close()` did) and the
//!    condition was false when we looked: go back to 1 and register again,
//!    at the tail (kernel: an exclusive waiter woken with its condition
//!    false re-queues at the tail).
//!
//! # Ending without success
//!
//! A true condition always wins: every failure path re-tests it after the
//! entry is unlinked. An exclusive waiter whose entry had been taken by a
//! wake and that still fails (signal, deadline, drop) calls
//! [`WaitQueue::hand_off`] so the next exclusive waiter gets the wake.
//!
//! # Budget
//!
//! Every async poll (the `wait_event*` futures, [`Wait`](crate::Wait),
//! [`PollWaiter`](crate::PollWaiter)) first spends one unit of the task's
//! [`coop`](crate::coop) budget. With the budget exhausted it returns
//! `Pending` at once, touching neither the registration nor the condition:
//! [`coop::poll_proceed`](crate::coop::poll_proceed) has woken the task, so
//! the next poll (with a fresh budget) resumes exactly where this one would
//! have, and a wake picked meanwhile is acted on (or handed off) then. A
//! poll that ends `Pending` anyway made no progress and refunds its unit.
//! Blocking (thread) waits never spend budget. Without
//! [`coop::with_budget`](crate::coop::with_budget) nothing is constrained.

use std::fmt;
use std::ops::Deref;
use std::panic::Location;
use std::task::{Context, Poll};

use crate::coop;
use crate::entry::{Entry, Notifier, TaskState};
use crate::error::Reason;
use crate::hook::{self, PointKind, QueueId};
use crate::list::{Class, Handle};
use crate::queue::{Registration, WaitQueue};
use crate::registry::{self, WaitApi, WaitKind};

/// One waiter's registration state, shared by every wait future. `Q` is
/// how it reaches its queue: `&WaitQueue` for the borrowing futures, an
/// owner (`Arc<WaitQueue>`, ...) for [`PollWaiter`](crate::PollWaiter).
pub(crate) struct Waiter<Q: Deref<Target = WaitQueue>> {
    queue: Q,
    handle: Option<Handle>,
    class: Class,
    state: TaskState,
    key: u32,
    /// A wake took our entry and we have not yet acted on it: success
    /// consumes it, re-queuing consumes it, anything else (failure, drop,
    /// a panicking condition) must pass it on. See [`Waiter::pass_on`].
    picked: bool,
    /// [`DONE`], [`RECORDED`], and from [`API_SHIFT`] up the wait's kind
    /// as the registry's slots store it (`registry::pack_kind`: the
    /// [`WaitApi`]'s three bits, the state's two, exclusive): one byte, so
    /// that a waiter is no larger than it was before the wait registry
    /// (the `sizes` test checks it), and a sleep's record takes its kind
    /// with one shift (packing it there cost every sleep ~10 instructions).
    flags: u8,
    /// Where the wait was created (for the test toolkit's reports and the
    /// wait registry).
    site: &'static Location<'static>,
    /// The sequence number of the entry linked last: the one a pick we
    /// hold took, which a hand-off names (see [`WaitQueue::hand_off`]).
    linked_seq: u64,
}

/// The wait returned `Ready`.
const DONE: u8 = 1;
/// The current entry (`handle`) is listed in the wait registry.
const RECORDED: u8 = 2;
/// The [`WaitApi`] bits start here (three bits), then the state's two and
/// the exclusive bit: `registry::pack_kind`'s six bits.
const API_SHIFT: u32 = 2;

// ===== impl Waiter =====

impl<Q: Deref<Target = WaitQueue>> Waiter<Q> {
    #[track_caller]
    pub(crate) fn new(queue: Q, exclusive: bool, state: TaskState, key: u32) -> Self {
        Waiter {
            queue,
            handle: None,
            class: if exclusive {
                Class::Exclusive
            } else {
                Class::Shared
            },
            state,
            key,
            picked: false,
            flags: Self::kind_flags(WaitApi::Event.to_bits(), state, exclusive),
            site: Location::caller(),
            linked_seq: 0,
        }
    }

    /// Lists the wait at `site` instead of where it was made.
    pub(crate) fn at(&mut self, site: &'static Location<'static>) {
        self.site = site;
    }

    /// Sets the API the registry names (`WaitApi::Event` by default).
    pub(crate) fn with_api(mut self, api: WaitApi) -> Self {
        self.flags = (self.flags & !(7 << API_SHIFT)) | (api.to_bits() << API_SHIFT);
        self
    }

    /// The kind's bits in `flags` (see there).
    #[inline(always)]
    fn kind_flags(api_bits: u8, state: TaskState, exclusive: bool) -> u8 {
        // Six bits from bit 2: they fit the byte.
        (registry::pack_kind(api_bits, state, exclusive) as u8) << API_SHIFT
    }

    /// A timed wait tells the registry its deadline after each poll that
    /// left it asleep (the waiter does not carry the deadline: see
    /// `flags`). Off, or not asleep: one byte test.
    #[inline]
    pub(crate) fn note_deadline(&self, deadline: Option<std::time::Instant>) {
        if self.flags & RECORDED != 0 {
            if let Some(handle) = self.handle {
                registry::set_deadline(&self.queue, handle.seq(), deadline);
            }
        }
    }

    /// Forgets our entry (a wake took it, or we unlink it now), and its
    /// record in the wait registry if it has one. The record goes first,
    /// by a call that reads the handle itself: a hot caller keeps nothing
    /// live across it (passing the handle cost every `finish` ~10
    /// instructions of spills).
    #[inline(always)]
    fn take_handle(&mut self) -> Option<Handle> {
        if self.flags & RECORDED != 0 {
            self.unrecord();
        }
        self.handle.take()
    }

    #[inline(never)]
    fn unrecord(&mut self) {
        self.flags &= !RECORDED;
        if let Some(handle) = self.handle {
            registry::remove(&self.queue, handle.seq());
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.flags & DONE != 0
    }

    pub(crate) fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    /// Whether a wait is in progress: an entry is linked, or a wake took it
    /// and the waiter has not acted on that yet.
    pub(crate) fn is_waiting(&self) -> bool {
        self.handle.is_some() || self.picked
    }

    /// Polls the wait from a task, spending one unit of its
    /// [`coop`](crate::coop) budget (see "Budget" above). `cond` returns
    /// `Some` when the wait is over; `ends` returns why the wait must end
    /// early (it is only asked while the condition is false) and registers
    /// `cx`'s waker with its sources.
    ///
    /// # Panics
    ///
    /// If called again after it returned `Ready` (see [`Waiter::reset`]).
    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        cond: &mut impl FnMut() -> Option<T>,
        ends: &mut impl FnMut(&mut Context<'_>) -> Option<Reason>,
    ) -> Poll<Result<T, Reason>> {
        assert!(!self.is_done(), "wait future polled after it completed");
        if hook::is_probing() {
            self.probe(cond);
            return Poll::Pending;
        }
        if coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let poll = self.poll_blocking(cx, cond, ends);
        if poll.is_pending() {
            coop::refund();
        }
        poll
    }

    /// [`Waiter::poll`] without the budget, for blocking (thread) waits.
    pub(crate) fn poll_blocking<T>(
        &mut self,
        cx: &mut Context<'_>,
        cond: &mut impl FnMut() -> Option<T>,
        ends: &mut impl FnMut(&mut Context<'_>) -> Option<Reason>,
    ) -> Poll<Result<T, Reason>> {
        assert!(!self.is_done(), "wait future polled after it completed");
        let poll = self.poll_inner(cx, cond, ends);
        if poll.is_ready() {
            self.flags |= DONE;
        }
        poll
    }

    /// Makes a finished waiter ready for a new wait. A `Ready` poll leaves
    /// no entry linked and no pick held (success or close consumed it).
    pub(crate) fn reset(&mut self) {
        debug_assert!(self.handle.is_none(), "reset with an entry linked");
        self.picked = false;
        self.flags &= !DONE;
    }

    fn poll_inner<T>(
        &mut self,
        cx: &mut Context<'_>,
        cond: &mut impl FnMut() -> Option<T>,
        ends: &mut impl FnMut(&mut Context<'_>) -> Option<Reason>,
    ) -> Poll<Result<T, Reason>> {
        let picked_before = self.picked_already();
        if let Some(value) = cond() {
            if self.handle.is_some() {
                self.decide(PointKind::BeforeFinish);
            }
            self.finish_success(picked_before);
            return Poll::Ready(Ok(value));
        }
        match self.check_linked(cx) {
            Some(Registration::Linked) => {
                if let Some(reason) = ends(cx) {
                    return Poll::Ready(self.fail(reason, cond));
                }
                return Poll::Pending;
            }
            Some(Registration::Gone) => {
                // Picked by a wake (or closed) after our test above. Until
                // we act on it, a panic in `cond` or `ends` hands it on (Drop).
                self.picked = true;
                if let Some(value) = cond() {
                    self.picked = false;
                    return Poll::Ready(Ok(value));
                }
                if self.queue.is_closed() {
                    self.picked = false;
                    return Poll::Ready(Err(Reason::Closed));
                }
                if let Some(reason) = ends(cx) {
                    // The state may have changed since the test above (a
                    // setter that also signals): a true condition wins.
                    if let Some(value) = cond() {
                        self.picked = false;
                        return Poll::Ready(Ok(value));
                    }
                    self.pass_on();
                    return Poll::Ready(Err(reason));
                }
                // Woken with the condition false: queue again, at the tail
                // (`link` consumes the pick).
            }
            None if self.queue.is_closed() => {
                // Closed since our test: a true condition still wins.
                return Poll::Ready(cond().ok_or(Reason::Closed));
            }
            None => {
                if let Some(reason) = ends(cx) {
                    // Kernel order: the condition is tested after the
                    // signal, so one set just before the signal wins. (A
                    // deadline already past at the first poll is a zero
                    // timeout: the kernel tests the condition once.)
                    if reason == Reason::TimedOut {
                        return Poll::Ready(Err(reason));
                    }
                    return Poll::Ready(cond().ok_or(reason));
                }
            }
        }
        self.decide(PointKind::BeforeLink);
        let handle = match self.link(cx) {
            Ok(handle) => handle,
            Err(reason) => {
                // Closed since our test: a true condition still wins.
                if let Some(value) = cond() {
                    return Poll::Ready(Ok(value));
                }
                return Poll::Ready(Err(reason));
            }
        };
        self.decide(PointKind::AfterLink);
        // The re-check that makes the wait lossless (see the module docs).
        let picked_before = self.queue.is_gone(handle);
        if let Some(value) = cond() {
            self.decide(PointKind::BeforeFinish);
            self.finish_success(picked_before);
            return Poll::Ready(Ok(value));
        }
        Poll::Pending
    }

    /// A test toolkit's decision point (see [`hook`]): no lock is held here.
    fn decide(&self, kind: PointKind) {
        let exclusive = self.class == Class::Exclusive;
        hook::decide(kind, &self.queue, self.site, exclusive, self.state);
    }

    /// Probe mode (see [`hook::probe`]): report this waiter, change nothing.
    /// The condition is evaluated only while the entry is linked; a true
    /// one is a lost wake-up, so its side effects no longer matter.
    #[cold]
    fn probe<T>(&mut self, cond: &mut impl FnMut() -> Option<T>) {
        let Some(handle) = self.handle else {
            return; // not asleep: nothing registered, or a wake picked it
        };
        let linked = self.queue.is_linked(handle);
        hook::probed(hook::Sleeper {
            queue: hook::QueueId::of(&self.queue),
            site: self.site,
            exclusive: self.class == Class::Exclusive,
            state: self.state,
            linked,
            condition: linked.then(|| cond().is_some()),
            kind: self.probe_kind(),
        });
    }

    /// The wait's kind, for a probe's report (no deadline).
    fn probe_kind(&self) -> WaitKind {
        let api = WaitApi::from_bits((self.flags >> API_SHIFT) & 7);
        WaitKind::new(api, self.state, self.class == Class::Exclusive, None)
    }

    /// Probe mode for a future that evaluates its condition itself.
    pub(crate) fn probe_with(&mut self, cond: impl FnOnce() -> Option<bool>) {
        let Some(handle) = self.handle else {
            return;
        };
        let linked = self.queue.is_linked(handle);
        hook::probed(hook::Sleeper {
            queue: hook::QueueId::of(&self.queue),
            site: self.site,
            exclusive: self.class == Class::Exclusive,
            state: self.state,
            linked,
            condition: if linked { cond() } else { None },
            kind: self.probe_kind(),
        });
    }

    /// If registered: whether the entry is still linked (its waker made
    /// `cx`'s) or gone (the handle is then forgotten). `None` if not registered.
    pub(crate) fn check_linked(&mut self, cx: &mut Context<'_>) -> Option<Registration> {
        let handle = self.handle?;
        let registration = self.queue.refresh(handle, cx.waker());
        if let Registration::Gone = registration {
            self.take_handle();
        }
        Some(registration)
    }

    /// Links a new entry for `cx`'s waker at the tail of the waiter's list.
    pub(crate) fn link(&mut self, cx: &mut Context<'_>) -> Result<Handle, Reason> {
        debug_assert!(self.handle.is_none());
        let entry = Entry::new(Notifier::Waker(cx.waker().clone()), self.state, self.key);
        let registered = self.queue.register(self.class, entry);
        // Re-queued (or closed): a pick we held is consumed either way.
        self.picked = false;
        let handle = registered.ok_or(Reason::Closed)?;
        self.handle = Some(handle);
        self.linked_seq = handle.seq();
        if registry::is_recording() {
            self.record(handle);
        }
        Ok(handle)
    }

    /// Lists this sleep in the wait registry (the slow path only: we just
    /// linked an entry because the condition was false).
    #[inline(never)]
    fn record(&mut self, handle: Handle) {
        // The common case first, with no call in it: a task's sleep goes
        // to the task's own slot.
        if let Some((slot, owner, name)) = registry::free_slot(&self.queue) {
            let kind = u32::from(self.flags >> API_SHIFT);
            debug_assert_eq!(
                kind,
                registry::pack_kind(
                    (self.flags >> API_SHIFT) & 7,
                    self.state,
                    self.class == Class::Exclusive
                )
            );
            slot.write(
                owner,
                QueueId::of(&self.queue),
                name,
                handle.seq(),
                self.site,
                kind,
            );
            self.flags |= RECORDED;
            return;
        }
        self.record_elsewhere(handle);
    }

    /// [`record`](Self::record) of a sleep its fast path does not take (a
    /// named queue, a busy slot, no task, or the whole registry on).
    #[cold]
    #[inline(never)]
    fn record_elsewhere(&mut self, handle: Handle) {
        let api = WaitApi::from_bits((self.flags >> API_SHIFT) & 7);
        let exclusive = self.class == Class::Exclusive;
        let kind = WaitKind::new(api, self.state, exclusive, None);
        if registry::record(&self.queue, handle.seq(), self.site, kind) {
            self.flags |= RECORDED;
        }
    }

    /// Marks the wait over (for futures that drive the steps themselves).
    pub(crate) fn set_done(&mut self) {
        self.flags |= DONE;
    }

    /// Ends the wait successfully: unlinks the entry if a wake has not.
    /// A wake that picked us is consumed by this success.
    pub(crate) fn finish(&mut self) {
        if let Some(handle) = self.take_handle() {
            drop(self.queue.unregister(handle));
        }
    }

    /// Whether a wake is known to have taken our entry already (lock-free;
    /// `true` when not registered). Read before a condition test, so that
    /// [`finish_success`](Self::finish_success) can tell a wake that came
    /// for what the test saw from one that came after it.
    fn picked_already(&self) -> bool {
        self.handle.is_none_or(|handle| self.queue.is_gone(handle))
    }

    /// Ends the wait successfully (the condition held). If a wake took an
    /// exclusive entry *after* the condition test began, that wake was
    /// meant for a state change this waiter did not consume (it succeeded
    /// on an earlier one): it is handed on, so a success never absorbs a
    /// wake another exclusive waiter needs. A wake that took the entry
    /// before the test is this waiter's own. (Found by the test toolkit:
    /// three consumers taking items, three producers waking once each.)
    fn finish_success(&mut self, picked_before: bool) {
        let Some(handle) = self.take_handle() else {
            return;
        };
        let picked = self.queue.unregister(handle).is_none();
        if picked && !picked_before && self.class == Class::Exclusive && !self.queue.is_closed() {
            self.queue.hand_off(self.linked_seq);
        }
    }

    /// Ends the wait for `reason`, unless the condition turns out true.
    fn fail<T>(
        &mut self,
        reason: Reason,
        cond: &mut impl FnMut() -> Option<T>,
    ) -> Result<T, Reason> {
        let Some(handle) = self.take_handle() else {
            return Err(reason);
        };
        if let Some(entry) = self.queue.unregister(handle) {
            drop(entry); // still linked: no wake was ours to pass on
                         // The state may have changed after our last test, just before
                         // the signal or the deadline: a true condition still wins.
            return cond().ok_or(reason);
        }
        // A wake (or close) took the entry since we last looked.
        self.picked = true;
        if let Some(value) = cond() {
            self.picked = false;
            return Ok(value);
        }
        self.pass_on();
        Err(reason)
    }

    /// Gives up a pick we hold: an exclusive waiter passes the wake to the
    /// next exclusive waiter (not needed once the queue is closed).
    fn pass_on(&mut self) {
        if std::mem::take(&mut self.picked)
            && self.class == Class::Exclusive
            && !self.queue.is_closed()
        {
            self.queue.hand_off(self.linked_seq);
        }
    }
}

impl<Q: Deref<Target = WaitQueue>> Drop for Waiter<Q> {
    fn drop(&mut self) {
        if let Some(handle) = self.take_handle() {
            if self.queue.unregister(handle).is_none() {
                // Picked by a wake we will never act on.
                self.picked = true;
            }
        }
        self.pass_on();
    }
}

impl<Q: Deref<Target = WaitQueue>> fmt::Debug for Waiter<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("queue", self.queue())
            .field("handle", &self.handle)
            .field("class", &self.class)
            .field("state", &self.state)
            .field("key", &self.key)
            .field("picked", &self.picked)
            .field("done", &self.is_done())
            .finish()
    }
}

/// Adapts a `bool` condition to the `Option` form the core uses.
pub(crate) fn as_option(cond: &mut impl FnMut() -> bool) -> impl FnMut() -> Option<()> + '_ {
    move || cond().then_some(())
}

/// No end sources: the wait ends only on its condition or `close()`.
pub(crate) fn no_end(_: &mut Context<'_>) -> Option<Reason> {
    None
}

mod event;
mod interruptible;
mod locked;
mod timeout;

pub use event::{WaitEvent, WaitEventValue};
pub use interruptible::{WaitEventInterruptible, WaitEventKillable};
pub use locked::WaitEventLock;
pub use timeout::{WaitEventInterruptibleTimeout, WaitEventKillableTimeout, WaitEventTimeout};
