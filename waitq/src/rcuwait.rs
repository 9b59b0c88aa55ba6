//! [`RcuWait`]: a wait with room for exactly one waiter, and no list
//! (kernel: `struct rcuwait`); the type's docs hold the contract.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread;

use crate::coop;
use crate::error::{Closed, Reason};
use crate::hook::{self, PointKind, QueueId, WakeKind};
use crate::registry::{self, Listed, SlotRecord, WaitApi, WaitKind};
use crate::sync::{AtomicBool, AtomicU8, Mutex, Ordering};
use crate::TaskState;

/// A wait for one waiter at a time: [`poll_wait_event`](Self::poll_wait_event)
/// (or [`wait_event`](Self::wait_event)) until a condition holds, woken by
/// [`wake_up`](Self::wake_up).
///
/// Kernel: `struct rcuwait` (`include/linux/rcuwait.h`: `rcuwait_wait_event()`,
/// `rcuwait_wake_up()`, `rcuwait_active()`).
///
/// A channel's one receiver, a socket's `poll_read`
/// caller: where only one task can ever wait, a list, sequence numbers and
/// exclusive hand-off are cost without use. The waiter stores its waker in
/// the one slot; a wake takes it out and calls it.
///
/// # Contract
///
/// - **One waiter at a time** (the kernel's rule: `rcuwait_wait_event`
///   callers must serialize themselves). Two tasks waiting at once is not
///   supported: the second one's poll replaces the first one's waker, so
///   the first is not woken (tokio's `poll_*` rule), and the first one's
///   end (its condition true, its future dropped, [`finish_wait`]) empties
///   the slot whoever stored it, so the second is not woken either. Give
///   each waiter its own `RcuWait`, or use a [`WaitQueue`](crate::WaitQueue).
///   One task may make a new wait future for each wait (a loop of
///   `select!`s): only one of them is ever asleep.
///
/// [`finish_wait`]: RcuWait::finish_wait
/// - **No lost wake-ups**, by the queue's own rule: the waiter stores its
///   waker under the slot's lock and only then re-checks its condition; a
///   waker changes the state first and then takes the same lock to take
///   the waker. Whichever lock hold comes second sees the other's work.
///   [`rcuwait_active`](RcuWait::rcuwait_active) skips the lock, and is
///   only sound after a full barrier on both sides (see its docs).
/// - **Close** ends the wait with [`Closed`] (unless the condition holds),
///   and every later wait whose condition is false fails at once.
/// - **Nothing runs under the lock**: no condition, and no waker clone,
///   call or drop. The one exception is the locked form, for state that
///   lives under the wait's own lock ([`with_state`](RcuWait::with_state),
///   [`lock`](RcuWait::lock), [`poll_wait_event_locked`](RcuWait::poll_wait_event_locked),
///   kernel: `struct completion`): there the condition reads that state
///   under the lock, and a wake changes it and takes the waker in one hold.
/// - The wait spends the task's [`coop`] budget, reports the test
///   toolkit's decision points ([`hook`]) and lists its sleep in the
///   [wait registry](crate::registry) when that is on, as every other wait.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use waitq::RcuWait;
///
/// static DONE_WAIT: RcuWait = RcuWait::named("done_wait");
/// static DONE: AtomicBool = AtomicBool::new(false);
///
/// let setter = std::thread::spawn(|| {
///     DONE.store(true, Ordering::SeqCst); // change the state first,
///     DONE_WAIT.wake_up();                // then wake
/// });
/// futures::executor::block_on(DONE_WAIT.wait_event(|| DONE.load(Ordering::SeqCst))).unwrap();
/// setter.join().unwrap();
/// ```
pub struct RcuWait<S = (), L: LockKind = StdLock> {
    slot: L::Lock<Slot<S>>,
    /// `slot.waker.is_some()`, written under the lock and read without it
    /// (a hint: see [`RcuWait::rcuwait_active`]).
    armed: AtomicBool,
    /// A sleep of the waiter's may still be written in a task's slot
    /// (`Slot::recorded`): set when the waiter's store writes one, and
    /// cleared by the waiter when it ends the sleep. A wake leaves it, and
    /// the record, to the waiter.
    in_slot: AtomicBool,
    /// Where the sleep is listed in the wait registry (a [`Listed`], under
    /// the key `(address, 0)`: there is only one sleeper). Read and written
    /// under the slot's lock only; an atomic beside the flags rather than
    /// in the slot, so that the wait stays 56 bytes (a task's `Rare`
    /// holds one).
    listed: AtomicU8,
    closed: AtomicBool,
    /// The name the wait registry and the toolkit report.
    name: Option<&'static str>,
}

struct Slot<S> {
    waker: Option<Waker>,
    /// The slot the last sleep was written to: what a waiter that ends
    /// the sleep in another task than the one that slept clears (see
    /// `RcuWait::forget_elsewhere`). A wake takes `listed`, not this.
    recorded: Option<SlotRecord>,
    /// The owner's state, for locked waits (see [`RcuWait::lock`]).
    state: S,
}

impl<S> Slot<S> {
    /// No waker stored, nothing listed.
    const fn empty(state: S) -> Self {
        Slot {
            waker: None,
            recorded: None,
            state,
        }
    }
}

/// The registry key's sequence part: one sleeper, one key.
const SEQ: u64 = registry::SOLE_SEQ;

// ===== impl RcuWait =====

impl RcuWait {
    /// An empty wait. `const`, so it can be a `static`.
    ///
    /// Kernel: `rcuwait_init()`.
    ///
    /// # Examples
    ///
    /// ```
    /// static WAIT: waitq::RcuWait = waitq::RcuWait::new();
    /// assert!(!WAIT.rcuwait_active());
    /// ```
    pub const fn new() -> Self {
        Self::with_name(None)
    }

    /// An empty wait with a name, which task dumps and the wait registry
    /// report for its sleeper. `const`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::named("rx_wait");
    /// assert_eq!(wait.name(), Some("rx_wait"));
    /// ```
    pub const fn named(name: &'static str) -> Self {
        Self::with_name(Some(name))
    }

    const fn with_name(name: Option<&'static str>) -> Self {
        RcuWait::with_state(name, ())
    }
}

impl<S> RcuWait<S> {
    /// A wait whose lock also guards `state`, for waits whose condition
    /// reads that state under the lock and wakes that change it in the
    /// same lock hold (see [`lock`](Self::lock)). `const`.
    ///
    /// Kernel: a `struct completion`, whose `done` count lives under its
    /// wait's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::with_state(Some("done_wait"), 0u32);
    /// assert_eq!(*wait.lock(), 0);
    /// ```
    pub const fn with_state(name: Option<&'static str>, state: S) -> Self {
        RcuWait::around(Mutex::new(Slot::empty(state)), name)
    }
}

impl<S, L: LockKind> RcuWait<S, L> {
    /// [`with_state`](RcuWait::with_state) under a lock of kind `L` (see
    /// [`LockKind`]): e.g. a spin lock for state held a few instructions
    /// at a time. Not `const`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait: waitq::RcuWait<u32, waitq::StdLock> = waitq::RcuWait::with_lock(None, 7);
    /// assert_eq!(*wait.lock(), 7);
    /// ```
    pub fn with_lock(name: Option<&'static str>, state: S) -> Self {
        RcuWait::around(L::Lock::new(Slot::empty(state)), name)
    }

    /// A wait around a locked empty slot.
    const fn around(slot: L::Lock<Slot<S>>, name: Option<&'static str>) -> Self {
        RcuWait {
            slot,
            armed: AtomicBool::new(false),
            in_slot: AtomicBool::new(false),
            listed: AtomicU8::new(0),
            closed: AtomicBool::new(false),
            name,
        }
    }

    /// The name, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitq::RcuWait::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// Whether a waiter's waker is stored, read without the lock: a hint.
    ///
    /// Kernel: `rcuwait_active()` (a plain read). To skip a
    /// [`wake_up`](Self::wake_up) with it, the waker must issue a full
    /// barrier (`fence(SeqCst)`) between its state change and this read,
    /// and the waiter's condition must issue one before it reads the state
    /// (the kernel's `smp_mb()` pairing): then either the waker sees the
    /// waiter's waker or the waiter sees the state. The read itself claims
    /// no barrier: a caller that issued one and runs under a test toolkit
    /// that models store buffers says so with [`hook::barrier`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
    /// let wait = waitq::RcuWait::new();
    /// let ready = AtomicBool::new(false);
    /// ready.store(true, SeqCst);
    /// fence(SeqCst);
    /// waitq::hook::barrier(); // no hook installed: nothing happens
    /// if wait.rcuwait_active() {
    ///     wait.wake_up();
    /// }
    /// ```
    #[inline]
    pub fn rcuwait_active(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Whether [`close`](Self::close) has been called.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::new();
    /// wait.close();
    /// assert!(wait.is_closed());
    /// ```
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes the waiter, if one is stored; returns whether it woke one.
    /// Change the state its condition reads first. Always takes the
    /// slot's lock, so it never loses a wake-up.
    ///
    /// Kernel: `rcuwait_wake_up()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::new();
    /// assert!(!wait.wake_up()); // nobody waiting, nothing stored
    /// ```
    #[track_caller]
    pub fn wake_up(&self) -> bool {
        self.wake(Location::caller(), WakeKind::WakeUp)
    }

    /// Closes the wait: the waiter (if any) is woken and ends with
    /// [`Closed`] unless its condition holds, and every later wait whose
    /// condition is false fails at once. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::new();
    /// wait.close();
    /// let err = futures::executor::block_on(wait.wait_event(|| false)).unwrap_err();
    /// assert!(err.is_closed());
    /// ```
    #[track_caller]
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake(Location::caller(), WakeKind::Close);
    }

    fn wake(&self, site: &'static Location<'static>, kind: WakeKind) -> bool {
        let (waker, listed) = self.take();
        self.unlist(listed);
        let woken = waker.is_some();
        if let Some(waker) = waker {
            crate::wake_batch::wake_one(waker);
        }
        hook::woke_on(self.id(), self.name, site, usize::from(woken), kind);
        woken
    }

    /// One step of a wait: `Ready(Ok(()))` once `cond` is true, `Pending`
    /// with `cx`'s waker stored otherwise. The condition is tested, the
    /// waker stored, and the condition tested again, so a wake between
    /// the two tests is not lost. Spends one unit of the [`coop`] budget.
    /// A wait that ends on a true condition takes its waker back out, so a
    /// later wake wakes nobody.
    ///
    /// A waiter that gives up before its condition holds (its future is
    /// dropped) calls [`finish_wait`](Self::finish_wait).
    ///
    /// Kernel: one pass of `rcuwait_wait_event()`'s loop.
    ///
    /// # Errors
    ///
    /// `Ready(Err(Closed))` if the wait is (or gets) closed while `cond`
    /// is false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let wait = waitq::RcuWait::new();
    /// let ready = AtomicBool::new(false);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let cond = || ready.load(Ordering::SeqCst);
    /// assert!(wait.poll_wait_event(&mut cx, cond).is_pending());
    /// assert!(wait.rcuwait_active());
    /// ready.store(true, Ordering::SeqCst);
    /// assert!(wait.wake_up());
    /// assert_eq!(wait.poll_wait_event(&mut cx, cond), Poll::Ready(Ok(())));
    /// ```
    #[track_caller]
    pub fn poll_wait_event(
        &self,
        cx: &mut Context<'_>,
        cond: impl FnMut() -> bool,
    ) -> Poll<Result<(), Closed>> {
        self.poll_wait_event_at(cx, Location::caller(), cond)
    }

    /// [`poll_wait_event`](Self::poll_wait_event), listing the wait at
    /// `site` (in the wait registry's dumps and the test toolkit's
    /// reports): for a future that wraps the wait, so the listing names
    /// the code that made it.
    ///
    /// # Errors
    ///
    /// As [`poll_wait_event`](Self::poll_wait_event).
    pub fn poll_wait_event_at(
        &self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
        mut cond: impl FnMut() -> bool,
    ) -> Poll<Result<(), Closed>> {
        if hook::is_probing() {
            self.probe(site, &mut cond);
            return Poll::Pending;
        }
        budgeted(cx, |waker| {
            self.poll_step(waker, &mut cond, site, WaitApi::RcuWait)
        })
    }

    /// Waits until `cond` holds (a future for [`poll_wait_event`](Self::poll_wait_event)).
    ///
    /// Kernel: `rcuwait_wait_event(w, condition, TASK_UNINTERRUPTIBLE)`.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the wait is (or gets) closed while `cond` is false.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future takes its waker back out of the slot; it
    /// consumed nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let wait = waitq::RcuWait::new();
    /// futures::executor::block_on(wait.wait_event(|| true)).unwrap();
    /// ```
    #[track_caller]
    pub fn wait_event<F: FnMut() -> bool>(&self, cond: F) -> RcuWaitEvent<'_, F, S, L> {
        RcuWaitEvent {
            wait: self,
            cond,
            site: Location::caller(),
            stored: false,
        }
    }

    /// Blocks the current thread until `cond` holds (the waker unparks the
    /// thread). Do not call it from an async task.
    ///
    /// Kernel: `rcuwait_wait_event()` from a kernel thread.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the wait is (or gets) closed while `cond` is false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let wait = waitq::RcuWait::new();
    /// let ready = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         ready.store(true, Ordering::SeqCst);
    ///         wait.wake_up();
    ///     });
    ///     wait.blocking_wait_event(|| ready.load(Ordering::SeqCst)).unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn blocking_wait_event(&self, mut cond: impl FnMut() -> bool) -> Result<(), Closed> {
        let site = Location::caller();
        let waker = crate::blocking::thread_waker();
        loop {
            if let Poll::Ready(res) = self.poll_step(&waker, &mut cond, site, WaitApi::Blocking) {
                return res;
            }
            thread::park();
        }
    }

    /// Takes a waiter's waker back out, for a waiter that gives up (its
    /// future is dropped, or it stops waiting for another reason, such as
    /// finding what it waits for without polling the wait again). If a
    /// wake took the waker already, only the sleep's record is gone: the
    /// wait registry still lists it in the waiter's task's slot, where
    /// the wake could not reach, and this call (made by that task) ends it.
    ///
    /// Kernel: `finish_rcuwait()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// let wait = waitq::RcuWait::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(wait.poll_wait_event(&mut cx, || false).is_pending());
    /// wait.finish_wait();
    /// assert!(!wait.rcuwait_active());
    /// assert!(!wait.wake_up());
    /// ```
    #[inline]
    pub fn finish_wait(&self) {
        // Only this waiter's thread sets `armed`, so it sees its own store;
        // a wake that cleared it leaves nothing to take but the slot's
        // record (left, it kept the task's slot taken: its next sleeps went
        // to the registry's shared map, and a oneshot receive took the
        // observed path, two allocations more per receive after a join
        // that slept; an independent probe).
        if self.armed.load(Ordering::Relaxed) {
            self.finish_stored();
        } else {
            self.forget_stale();
        }
    }

    #[inline(never)]
    fn finish_stored(&self) {
        let (waker, listed) = self.take();
        self.unlist_mine(listed);
        drop(waker);
    }

    /// Unlists a sleep [`take`](Self::take) found listed (after the lock;
    /// see [`registry::remove_listed`]).
    #[inline]
    fn unlist(&self, listed: Listed) {
        if listed.any() {
            registry::remove_listed(self.id(), SEQ, listed);
        }
    }

    /// Unlists a sleep the waiter itself ends (it took its waker back):
    /// from its slot, which is the current one unless the wait moved to
    /// another task since it slept; from the map; or nowhere.
    ///
    /// The slot's record goes by `in_slot`, not by `listed`: a wake that
    /// took the waker between the waiter's look at `armed` and its own
    /// take also took `listed` (the waiter's take then finds it empty),
    /// and leaves the slot's record to the waiter, which must clear it
    /// all the same (it stayed, listing the task on a wait that was over
    /// while it lived: a real-thread test, about 1 round in 350).
    #[inline]
    fn unlist_mine(&self, listed: Listed) {
        if self.in_slot.load(Ordering::Relaxed) {
            self.forget_slot_record();
        }
        if listed == Listed::InMap {
            self.unlist(listed);
        }
    }

    /// The waiter runs again: if no waker of its is stored (a wake took
    /// it, unlisting the sleep only from the map), its task's slot may
    /// still list the sleep; it is over.
    #[inline]
    fn forget_stale(&self) {
        if !self.armed.load(Ordering::Relaxed) && self.in_slot.load(Ordering::Relaxed) {
            self.forget_slot_record();
        }
    }

    /// Ends the record of the waiter's sleep in a slot: in the current
    /// task's (the one that slept, as a rule), else where it was written.
    #[inline]
    fn forget_slot_record(&self) {
        self.in_slot.store(false, Ordering::Relaxed);
        if !registry::remove_here(self.id(), SEQ) {
            self.forget_elsewhere();
        }
    }

    /// The wait ends in another task than the one that slept (a join
    /// handle polled in one task, then awaited or dropped in another):
    /// that task's slot still lists the sleep, and, taken, sends all its
    /// later sleeps to the registry's shared map. Cleared from here.
    #[cold]
    #[inline(never)]
    fn forget_elsewhere(&self) {
        let recorded = self.lock_slot().recorded.take();
        if let Some(at) = recorded {
            at.clear(self.id(), SEQ);
        }
    }

    /// The wait's id for the toolkit and the registry: its address.
    pub(crate) fn id(&self) -> QueueId {
        QueueId::of_addr(self as *const Self as usize)
    }

    fn lock_slot(&self) -> SlotGuard<'_, S, L> {
        // Only a locked wait's condition or a guard's holder can panic
        // under the lock; the slot itself is never left half-written.
        self.slot.lock()
    }

    /// Empties the slot: its waker, and where its sleep was listed.
    fn take(&self) -> (Option<Waker>, Listed) {
        let mut slot = self.lock_slot();
        self.take_locked(&mut slot)
    }

    /// [`take`](Self::take) under a lock the caller holds.
    fn take_locked(&self, slot: &mut Slot<S>) -> (Option<Waker>, Listed) {
        self.armed.store(false, Ordering::Relaxed);
        let listed = Listed::from_bits(self.listed.swap(0, Ordering::Relaxed));
        (slot.waker.take(), listed)
    }

    /// Takes the stored waker under a lock the caller holds, unlisting its
    /// sleep (the registry's lock nests inside the slot's, as when the
    /// sleep was listed).
    #[inline(never)]
    fn take_stored(&self, slot: &mut Slot<S>) -> Option<Waker> {
        let (waker, listed) = self.take_locked(slot);
        self.unlist(listed);
        waker
    }

    /// Stores `waker` (cloned before the lock; the one it replaces is
    /// dropped after it) and lists the sleep if the registry is on.
    fn store(&self, waker: &Waker, site: &'static Location<'static>, api: WaitApi) {
        if self.armed.load(Ordering::Relaxed) {
            // Still stored from our last poll (no wake took it): keep it if
            // it wakes the same task, sparing a clone and a drop.
            if self
                .lock_slot()
                .waker
                .as_ref()
                .is_some_and(|stored| stored.will_wake(waker))
            {
                return;
            }
        }
        let new = waker.clone();
        let mut slot = self.lock_slot();
        let old = self.store_locked(&mut slot, new, site, api);
        drop(slot);
        drop(old);
    }

    /// Stores `new` under a lock the caller holds; returns the waker it
    /// replaced, for the caller to drop after the lock.
    fn store_locked(
        &self,
        slot: &mut Slot<S>,
        new: Waker,
        site: &'static Location<'static>,
        api: WaitApi,
    ) -> Option<Waker> {
        self.armed.store(true, Ordering::Relaxed);
        let old = slot.waker.replace(new);
        if registry::is_recording() {
            let mut listed = Listed::from_bits(self.listed.load(Ordering::Relaxed));
            let here = |at: SlotRecord| at.is_current(self.id(), SEQ);
            if listed == Listed::InSlot && !slot.recorded.is_some_and(here) {
                // Stored again from another task than the one whose slot
                // lists the sleep, or the record was written over (a later
                // `block_on` call on the thread): the sleep moves here.
                self.move_record(slot);
                listed = Listed::No;
            } else if listed == Listed::InMap
                && old
                    .as_ref()
                    .is_some_and(|old| !old.will_wake(slot.waker.as_ref().expect("just stored")))
            {
                // Listed in the shared map under the task that slept, and
                // stored again with another waker (another task, as a
                // rule): listed anew, under the task that waits now (a
                // hung-task report named the first one).
                self.listed.store(Listed::No.to_bits(), Ordering::Relaxed);
                self.unlist(Listed::InMap);
                listed = Listed::No;
            }
            if !listed.any() && self.in_slot.load(Ordering::Relaxed) {
                // A wake took the listing but left the record to us: the
                // record is stale, wherever it is (this task's slot, or
                // the slot of the task that slept before the wait moved
                // here). Cleared now, since the one written next replaces
                // our only pointer to it (left, a task that had polled a
                // join handle it then handed on stayed listed on the join
                // while it lived).
                self.forget_recorded(slot);
            }
            if !listed.any() {
                let kind = WaitKind::new(api, TaskState::Uninterruptible, false, None);
                let (listed, at) = registry::record_at(self.id(), self.name, SEQ, site, kind);
                self.listed.store(listed.to_bits(), Ordering::Relaxed);
                if at.is_some() {
                    slot.recorded = at;
                    self.in_slot.store(true, Ordering::Relaxed);
                }
            }
        }
        old
    }

    /// Clears a stale record of the waiter's sleep, wherever it was
    /// written (under the lock, so the next store writes the new one).
    #[cold]
    #[inline(never)]
    fn forget_recorded(&self, slot: &mut Slot<S>) {
        self.in_slot.store(false, Ordering::Relaxed);
        if let Some(at) = slot.recorded.take() {
            at.clear(self.id(), SEQ);
        }
    }

    /// Clears the record of the sleep from the slot of the task that slept
    /// (under the lock, so the next store writes the new one).
    #[cold]
    #[inline(never)]
    fn move_record(&self, slot: &mut Slot<S>) {
        self.forget_recorded(slot);
        self.listed.store(Listed::No.to_bits(), Ordering::Relaxed);
    }

    /// One step without the budget: test, store, test again.
    fn poll_step(
        &self,
        waker: &Waker,
        cond: &mut impl FnMut() -> bool,
        site: &'static Location<'static>,
        api: WaitApi,
    ) -> Poll<Result<(), Closed>> {
        // No stale check first: a record a wake left is ended by
        // `finish_wait` when the wait is over, or by the store when it
        // sleeps again (`store_locked`), whenever the wake came (a check
        // up front missed a wake that came after it: a real-thread test).
        if cond() {
            self.finish_wait();
            return Poll::Ready(Ok(()));
        }
        if self.is_closed() {
            self.finish_wait();
            return Poll::Ready(Err(Closed::new(Reason::Closed)));
        }
        hook::decide_on(PointKind::BeforeLink, self.id(), self.name, site);
        self.store(waker, site, api);
        hook::decide_on(PointKind::AfterLink, self.id(), self.name, site);
        // The re-check that makes the wait lossless (see the module docs).
        if cond() {
            hook::decide_on(PointKind::BeforeFinish, self.id(), self.name, site);
            self.finish_wait();
            return Poll::Ready(Ok(()));
        }
        if self.is_closed() {
            self.finish_wait();
            return Poll::Ready(Err(Closed::new(Reason::Closed)));
        }
        Poll::Pending
    }

    /// Probe mode (see [`hook::probe`]): report the sleeper, change nothing.
    #[cold]
    fn probe(&self, site: &'static Location<'static>, cond: &mut impl FnMut() -> bool) {
        let linked = self.armed.load(Ordering::Relaxed);
        hook::probed(hook::Sleeper {
            queue: self.id(),
            site,
            exclusive: false,
            state: TaskState::Uninterruptible,
            linked,
            condition: linked.then(cond),
            kind: WaitKind::new(WaitApi::RcuWait, TaskState::Uninterruptible, false, None),
        });
    }
}

/// One wait step under the task's [`coop`] budget: an exhausted budget
/// returns `Pending` at once (the task was woken to come back), and a step
/// that ends `Pending` anyway made no progress and refunds its unit.
#[inline]
fn budgeted<R>(cx: &mut Context<'_>, step: impl FnOnce(&Waker) -> Poll<R>) -> Poll<R> {
    if coop::poll_proceed(cx).is_pending() {
        return Poll::Pending;
    }
    let poll = step(cx.waker());
    if poll.is_pending() {
        coop::refund();
    }
    poll
}

impl<S: Default, L: LockKind> Default for RcuWait<S, L> {
    fn default() -> Self {
        RcuWait::with_lock(None, S::default())
    }
}

impl<S, L: LockKind> fmt::Debug for RcuWait<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcuWait")
            .field("name", &self.name)
            .field("active", &self.armed.load(Ordering::Relaxed))
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The future of [`RcuWait::wait_event`].
#[must_use = "futures do nothing unless polled"]
pub struct RcuWaitEvent<'a, F, S = (), L: LockKind = StdLock> {
    wait: &'a RcuWait<S, L>,
    cond: F,
    site: &'static Location<'static>,
    /// A poll stored our waker and no later poll ended the wait.
    stored: bool,
}

impl<F, S, L: LockKind> RcuWaitEvent<'_, F, S, L> {
    /// Lists this wait at `site` instead of where the future was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)).
    pub fn at(mut self, site: &'static Location<'static>) -> Self {
        self.site = site;
        self
    }
}

impl<F: FnMut() -> bool, S, L: LockKind> Future for RcuWaitEvent<'_, F, S, L> {
    type Output = Result<(), Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if hook::is_probing() {
            this.wait.probe(this.site, &mut this.cond);
            return Poll::Pending;
        }
        let (wait, site) = (this.wait, this.site);
        let poll = budgeted(cx, |waker| {
            wait.poll_step(waker, &mut this.cond, site, WaitApi::RcuWait)
        });
        this.stored = poll.is_pending();
        poll
    }
}

// Nothing is pinned: `F` is only called through `&mut`.
impl<F, S, L: LockKind> Unpin for RcuWaitEvent<'_, F, S, L> {}

impl<F, S, L: LockKind> Drop for RcuWaitEvent<'_, F, S, L> {
    fn drop(&mut self) {
        if self.stored {
            self.wait.finish_wait();
        }
    }
}

impl<F, S, L: LockKind> fmt::Debug for RcuWaitEvent<'_, F, S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcuWaitEvent")
            .field("wait", self.wait)
            .field("stored", &self.stored)
            .finish()
    }
}

/// The guard of an [`RcuWait`]'s slot under its lock kind.
type SlotGuard<'a, S, L> = <<L as LockKind>::Lock<Slot<S>> as StateLock<Slot<S>>>::Guard<'a>;

mod lock;
mod locked;

pub use lock::{LockKind, StateLock, StdLock};
pub use locked::RcuWaitGuard;
