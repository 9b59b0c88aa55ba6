//! The timer driver: the wheel, the clock, and the sleeping thread.
//!
//! A pending timer is one node of the wheel's slab: its deadline tick, its
//! list links and its sleeper's waker (40 bytes); the [`Sleep`](super::Sleep)
//! holds the node's key (owned: only the `Sleep` removes the node) and the
//! deadline it armed it with. Registering clones the waker and links the
//! node under the driver lock, which is also where firing takes the waker
//! out, so the sleeper's "link, then re-check" is one critical section and
//! no wake-up can fall between them. Firing marks the node fired, takes its
//! waker and wakes its sleeper after the lock; the node stays until the
//! sleeper's next poll (which finds it fired and removes it) or its drop.
//! Cancelling (dropping a `Sleep`) removes the node in O(1), and
//! [`reset`](Driver::reset) moves it in place. Nothing is allocated per
//! timer once the slab has grown, and the slab shrinks again when it empties
//! (see the wheel).
//!
//! Ticks are microseconds since the driver's origin: a deadline rounds *up*
//! to its tick (never fires early), `now` rounds down, and the parked
//! thread's timeout is the exact time to the next tick, so sub-millisecond
//! deadlines are honoured: the thread parker has nanosecond resolution,
//! and a driver asleep in the reactor polls for whole milliseconds, then
//! for the remainder with the reactor's `timerfd` ending the poll
//! (`park.rs`, "Timer precision with I/O enabled").
//!
//! Why not a wait queue per timer, as every other sleep in the runtime: a
//! `WaitQueue` is 136 bytes, and its first waiter allocates room for four
//! entries, 512-576 bytes per timer in all, where tokio's timer costs
//! nothing beyond its 112-byte `Sleep`; one shared queue would still cost a
//! 72-byte list entry plus a 40-byte `PollWaiter` per sleeper, and `waitq`
//! has no O(1) wake of one chosen entry (a keyed wake walks the list), so
//! firing one of a million timers would walk a million entries. The timer
//! is the kernel's `hrtimer` here, not a `wait_event`: its callback wakes
//! one task. What the test toolkit needs still holds: the driver fires
//! timers only where the toolkit lets it, and a probe poll of a `Sleep`
//! changes nothing.
//!
//! Far deadlines: the wheel holds deadlines up to about 8.9 years ahead and
//! fires a later one at that horizon, early; the [`Sleep`](super::Sleep)
//! that owns it sees that its own deadline has not come and registers again,
//! until it has. Ticks end about 584,000 years after the origin: a deadline
//! beyond that (`sleep(Duration::MAX)`) is never registered
//! ([`Registered::Never`]): the sleep holds no timer and never completes,
//! unless a paused clock is moved past its deadline and the sleep is
//! polled. (A paused clock whose only sleeps are such sleeps does not
//! move: nothing is due.)
//!
//! Shutdown closes every pending timer: its node stays (the wheel unlinks
//! it and marks it closed) and its sleeper is woken, to find on its next
//! poll that the timer can never fire. A timer that fired before shutdown
//! still completes.
//!
//! Wakers: firing a timer (or closing it at shutdown) runs its sleeper's
//! waker on whatever thread drives the timers. A waker that panics is
//! caught ([`Common::wake_guarded`](crate::scheduler::Common::wake_guarded)
//! when that thread runs this runtime, which then follows its
//! `UnhandledPanic` policy); the other timers of the batch still fire, and
//! the panic never unwinds through a worker or `block_on`.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::clock::{self, Clock};
pub(crate) use super::wheel::TimerKey;
use super::wheel::{Status, Wheel};

#[cfg(test)]
#[path = "driver/tests.rs"]
mod tests;

/// `Driver::sleep_until` while the driving thread is not parked: no tick is
/// below it, so registering a timer then unparks nobody.
const AWAKE: u64 = 0;

/// Fired wakers kept for the next batch; a bigger batch's buffer is freed.
const FIRED_KEEP: usize = 1024;

#[derive(Debug)]
struct Inner {
    /// Each timer's sleeper waker (`None` once fired or closed).
    wheel: Wheel<Option<Waker>>,
    shutdown: bool,
    fired: Vec<Waker>,
}

/// The runtime's timer driver.
#[derive(Debug)]
pub(crate) struct Driver {
    clock: Clock,
    inner: Mutex<Inner>,
    /// The tick the parked driving thread sleeps until: `u64::MAX` while it
    /// sleeps with no timer, [`AWAKE`] while it is not parked (it will look
    /// at the wheel before it parks, so a new timer need not wake it). Only
    /// one thread parks as the driver at a time (the current-thread
    /// runtime's core holder, or the multi-thread runtime's `driver_taken`
    /// worker); busy threads that fire timers never park here.
    sleep_until: AtomicU64,
}

/// The outcome of [`Driver::register`].
pub(crate) enum Registered {
    /// In the wheel; `unpark` says the driving thread sleeps past it.
    Pending { key: TimerKey, unpark: bool },
    /// The deadline has passed: done, nothing stored.
    Due,
    /// The deadline lies past the last tick (about 584,000 years after the
    /// origin) and the clock has reached that tick: nothing can be stored,
    /// and no timer will fire for it.
    Never,
    /// The runtime shut down: the timer can never fire.
    Shutdown,
}

impl Driver {
    pub(crate) fn new(clock: Clock) -> Driver {
        Driver {
            clock,
            inner: Mutex::new(Inner {
                wheel: Wheel::new(),
                shutdown: false,
                fired: Vec::new(),
            }),
            sleep_until: AtomicU64::new(AWAKE),
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Every pending timer whose sleeper has a waker: its deadline and the
    /// waker's data pointer, which names the task for a task dump (a
    /// task's waker points at the task). Fires nothing, wakes nobody.
    pub(crate) fn sleepers(&self) -> Vec<(Instant, usize)> {
        let inner = self.lock();
        let mut out = Vec::with_capacity(inner.wheel.len());
        inner.wheel.for_each(|tick, waker| {
            if let Some(waker) = waker {
                out.push((self.tick_instant(tick), waker.data() as usize));
            }
        });
        out
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A deadline's tick, rounded up so the timer never fires early; a
    /// deadline past the last tick gets the last tick. (64-bit arithmetic:
    /// a 128-bit division cost more than the rest of a registration.)
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.clock.origin());
        let micros = u64::from(since.subsec_nanos().div_ceil(1_000));
        since
            .as_secs()
            .checked_mul(1_000_000)
            .and_then(|secs| secs.checked_add(micros))
            .unwrap_or(u64::MAX)
    }

    fn now_tick(&self) -> u64 {
        let since = self
            .clock
            .now()
            .saturating_duration_since(self.clock.origin());
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant a tick starts at (saturating: never earlier than the
    /// tick, so a paused clock moved there reaches it).
    fn tick_instant(&self, tick: u64) -> Instant {
        clock::saturating_add(self.clock.origin(), Duration::from_micros(tick))
    }

    /// Stores a timer to fire at `deadline` and wake `waker`, or at the
    /// wheel's horizon (about 8.9 years ahead) if that comes first: the
    /// caller checks the deadline when it fires, and registers again if it
    /// is early. The waker is cloned by the caller and dropped after the
    /// lock if nothing is stored.
    pub(crate) fn register(&self, deadline: Instant, waker: Waker) -> Registered {
        let tick = self.deadline_tick(deadline);
        if tick == u64::MAX && deadline > self.tick_instant(u64::MAX) && self.clock.now() < deadline
        {
            // Past the last tick (`sleep(Duration::MAX)`, "forever"): no
            // timer could fire for it, so none is stored. Stored at the
            // last tick, it fired early at the wheel's horizon, about every
            // 8.9 years of the clock, and its sleeper registered again: a
            // paused clock with nothing else to do jumped from horizon to
            // horizon, some 65,000 times, with a core busy for seconds
            // (found by an independent probe).
            return Registered::Never;
        }
        let mut inner = self.lock();
        if inner.shutdown {
            drop(inner);
            return Registered::Shutdown;
        }
        let inserted = inner.wheel.insert(tick, Some(waker));
        let unpark = self.must_unpark(tick);
        drop(inner);
        self.registered(inserted, tick, deadline, unpark)
    }

    /// Whether a timer at `tick` comes before the parked driving thread
    /// wakes (called under the lock, see [`Driver::sleep_until`]). A
    /// thread parked with no timer (`u64::MAX`) is woken by every timer,
    /// the last tick's included: the wheel keeps that one at its horizon,
    /// which the thread must time its park by (with a paused clock that
    /// stood at the end of time, nothing else would wake it).
    fn must_unpark(&self, tick: u64) -> bool {
        tick.min(u64::MAX - 1) < self.sleep_until.load(Acquire)
    }

    /// The outcome of inserting a timer at `tick`.
    fn registered<T>(
        &self,
        inserted: Result<TimerKey, T>,
        tick: u64,
        deadline: Instant,
        unpark: bool,
    ) -> Registered {
        match inserted {
            Ok(key) => Registered::Pending { key, unpark },
            // The wheel's clock is at or past the tick. Ticks round the
            // deadline up and the clock down, so the deadline has passed,
            // unless the tick is the last one, which deadlines beyond it
            // share. (The payload, a waker, is dropped after the lock.)
            Err(_) if tick == u64::MAX && self.clock.now() < deadline => Registered::Never,
            Err(_) => Registered::Due,
        }
    }

    /// Where the registered timer `timer` holds the key of stands, making
    /// sure it will wake `waker` (cloned outside the lock, and only if the
    /// stored one would not wake the same task). A timer that fired or
    /// closed is removed: its key is taken out of `timer`.
    pub(crate) fn poll_timer(&self, timer: &mut Option<TimerKey>, waker: &Waker) -> TimerState {
        let Some(key) = timer.as_ref() else {
            return TimerState::Fired;
        };
        let mut inner = self.lock();
        match inner.wheel.status(key) {
            Status::Pending => match inner.wheel.get_mut(key) {
                Some(stored) if stored.will_wake(waker) => return TimerState::Pending,
                _ => {}
            },
            status => return Self::remove_done(inner, timer, status),
        }
        drop(inner);
        let waker = Some(waker.clone());
        let mut inner = self.lock();
        match inner.wheel.status(key) {
            Status::Pending => {
                let old = std::mem::replace(inner.wheel.get_mut(key), waker);
                drop(inner);
                drop(old);
                TimerState::Pending
            }
            status => Self::remove_done(inner, timer, status),
        }
    }

    /// Removes the fired or closed timer `timer` holds the key of, and says
    /// which it was. (Its waker is already gone, taken when it fired or
    /// closed.)
    fn remove_done(
        mut inner: MutexGuard<'_, Inner>,
        timer: &mut Option<TimerKey>,
        status: Status,
    ) -> TimerState {
        if let Some(key) = timer.take() {
            let waker = inner.wheel.remove(key);
            drop(inner);
            drop(waker);
        }
        match status {
            Status::Closed => TimerState::Closed,
            _ => TimerState::Fired,
        }
    }

    /// Moves the registered timer `timer` holds the key of to `deadline`,
    /// in place (same key, same waker, nothing allocated): `Some(unpark)`,
    /// where `unpark` says the driving thread sleeps past it. `None`: the
    /// timer was removed (its key taken out of `timer`) because the new
    /// deadline has passed, or it had fired or closed; the caller registers
    /// afresh on its next poll (which then completes, re-arms, or finds
    /// the runtime shut down).
    ///
    /// A timer removed while still pending (the new deadline has passed)
    /// has its sleeper's waker woken, as if it fired now: the task waiting
    /// on the sleep need not be the one that moved it (a shared idle
    /// timer, a hand-written future that resets and returns `Pending`),
    /// and nothing else would wake it (tokio fires such a timer at once).
    pub(crate) fn reset(&self, timer: &mut Option<TimerKey>, deadline: Instant) -> Option<bool> {
        let key = timer.as_ref()?;
        let tick = self.deadline_tick(deadline);
        let mut inner = self.lock();
        if inner.wheel.reset(key, tick) {
            return Some(self.must_unpark(tick));
        }
        let waker = inner.wheel.remove(timer.take()?);
        drop(inner);
        if let Some(panic) = self.wake_guarded(waker.into_iter()) {
            resume_unwind(panic);
        }
        None
    }

    /// Removes a registered timer (pending, fired or closed): O(1).
    pub(crate) fn cancel(&self, key: TimerKey) {
        let removed = self.lock().wheel.remove(key);
        drop(removed);
    }

    /// Fires every due timer (their sleepers are woken after the lock; a
    /// panicking waker is caught, see [`wake_guarded`](Self::wake_guarded)).
    pub(crate) fn process(&self) {
        let now = self.now_tick();
        let mut fired = {
            let mut inner = self.lock();
            if inner.wheel.next_expiration().is_none_or(|next| next > now) {
                // Nothing due: the wheel's clock moves all the same, so a
                // deadline passed by now completes on its first poll.
                inner.wheel.skip_to(now);
                return;
            }
            let mut fired = std::mem::take(&mut inner.fired);
            inner.wheel.poll(now, |waker| fired.extend(waker.take()));
            fired
        };
        let panic = self.wake_guarded(fired.drain(..));
        if fired.capacity() <= FIRED_KEEP {
            let mut inner = self.lock();
            if inner.fired.capacity() < fired.capacity() {
                inner.fired = fired;
            }
        }
        if let Some(panic) = panic {
            resume_unwind(panic);
        }
    }

    /// Wakes each timer's sleeper, every one of them even if a waker
    /// panics. On a thread that runs this driver's runtime
    /// (every caller of `process`) each panic goes to
    /// [`Common::wake_guarded`](crate::scheduler::Common::wake_guarded) and
    /// nothing unwinds. Elsewhere the first panic is returned, for the
    /// caller to resume once its work is done (as `waitq` does for one
    /// queue's wakers).
    fn wake_guarded(
        &self,
        timers: impl Iterator<Item = Waker>,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        let mut timers = timers.peekable();
        timers.peek()?;
        // One handle per batch (a reference count), not one per timer.
        let here = crate::context::scheduler().filter(|scheduler| {
            let time = scheduler.common().time.as_ref();
            time.is_some_and(|time| std::ptr::eq(time, self))
        });
        let mut first = None;
        for waker in timers {
            match &here {
                Some(scheduler) => scheduler
                    .common()
                    .wake_guarded(|| "the waker of a timer".into(), || waker.wake()),
                None => {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                        first.get_or_insert(panic);
                    }
                }
            }
        }
        first
    }

    /// The caller is about to park: how long it may sleep. With a paused
    /// clock nothing sleeps: time jumps to the next deadline instead.
    pub(crate) fn park_timeout(&self) -> Option<Duration> {
        let inner = self.lock();
        let Some(next) = inner.wheel.next_wake() else {
            // Asleep with no timer: every new timer must wake it.
            self.park_untimed();
            return None;
        };
        if self.clock.is_paused() {
            drop(inner);
            self.clock.advance_to(self.tick_instant(next));
            return Some(Duration::ZERO);
        }
        self.sleep_until
            .store(next, std::sync::atomic::Ordering::Release);
        drop(inner);
        let now = self.clock.now();
        Some(self.tick_instant(next).saturating_duration_since(now))
    }

    /// The caller parks for a while without a deadline from the wheel
    /// (no timer, or a paused clock's real-time step): any new timer
    /// unparks it.
    pub(crate) fn park_untimed(&self) {
        self.sleep_until.swap(u64::MAX, AcqRel);
    }

    /// The parked thread woke: until it parks again, a new timer need not
    /// unpark it (it reads the wheel before it parks, under the lock that
    /// registration takes).
    pub(crate) fn finish_park(&self) {
        self.sleep_until.swap(AWAKE, AcqRel);
    }

    /// Shutdown: no timer can fire any more; every pending timer is
    /// closed and its sleeper woken, so it ends with an error instead of
    /// hanging. A waker that panics is caught; off the runtime's threads
    /// (a `Runtime` dropped by its owner) the panic is dropped (the panic
    /// hook has reported it) rather than cut the shutdown short.
    pub(crate) fn shutdown(&self) {
        let mut pending = Vec::new();
        {
            let mut inner = self.lock();
            inner.shutdown = true;
            inner.wheel.close(|waker| pending.extend(waker.take()));
            inner.fired = Vec::new();
        }
        drop(self.wake_guarded(pending.into_iter()));
    }

    /// When the next timer may fire (never later than its deadline), for
    /// the test toolkit's `advance`.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let next = self.lock().wheel.next_expiration()?;
        Some(self.tick_instant(next))
    }

    /// Pending timers (metrics): neither fired nor closed.
    pub(crate) fn pending(&self) -> usize {
        self.lock().wheel.len()
    }

    /// Slots the wheel holds memory for (tests of the memory given back).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.lock().wheel.capacity()
    }

    /// Timers held, pending or not (a fired one stays until its key's
    /// holder removes it).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.lock().wheel.entries()
    }
}

/// Where a registered timer stands ([`Driver::poll_timer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerState {
    /// Not yet fired; the sleeper's waker is stored.
    Pending,
    /// Fired (at its deadline, or early at the wheel's horizon): removed.
    Fired,
    /// The runtime shut down before it fired: it never will (removed).
    Closed,
}
