//! The timer driver: the wheel, the clock, and the sleeping thread.
//!
//! Each pending timer is an `Arc<TimerShared>` in the wheel; firing sets
//! its flag and wakes its wait queue. Ticks are microseconds since the
//! driver's origin: a deadline rounds *up* to its tick (never fires early),
//! `now` rounds down, and the parked thread's timeout is the exact time to
//! the next tick, so sub-millisecond deadlines are honoured (parking uses
//! the thread parker, which has nanosecond resolution, not epoll's ms).
//!
//! Far deadlines: the wheel holds deadlines up to about 8.9 years ahead and
//! fires a later one at that horizon, early; the [`Sleep`](super::Sleep)
//! that owns it sees that its own deadline has not come and registers again,
//! until it has. Ticks end about 584,000 years after the origin: a deadline
//! beyond that can never be registered ([`Registered::Never`]): the sleep
//! never completes, unless a paused clock is moved past its deadline and
//! the sleep is polled.
//!
//! Wakers: firing a timer (or closing its queue at shutdown) runs its
//! sleepers' wakers on whatever thread drives the timers. A waker that
//! panics is caught ([`Common::wake_guarded`](crate::scheduler::Common::wake_guarded)
//! when that thread runs this runtime, which then follows its
//! `UnhandledPanic` policy); the other timers of the batch still fire, and
//! the panic never unwinds through a worker or `block_on`.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use waitq::WaitQueue;

use super::clock::{self, Clock};
use super::wheel::{TimerKey, Wheel};

/// One timer's shared state: fired flag plus the queue its sleeper waits on.
#[derive(Debug, Default)]
pub(crate) struct TimerShared {
    pub(crate) fired: AtomicBool,
    pub(crate) queue: WaitQueue,
}

impl TimerShared {
    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Acquire)
    }

    fn fire(&self) {
        self.fired.store(true, std::sync::atomic::Ordering::Release);
        self.queue.wake_up_all();
    }
}

#[derive(Debug)]
struct Inner {
    wheel: Wheel<Arc<TimerShared>>,
    shutdown: bool,
    fired: Vec<Arc<TimerShared>>,
}

/// The runtime's timer driver.
#[derive(Debug)]
pub(crate) struct Driver {
    clock: Clock,
    inner: Mutex<Inner>,
    /// The tick the driving thread sleeps until (`u64::MAX`: not asleep).
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
            sleep_until: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A deadline's tick, rounded up so the timer never fires early; a
    /// deadline past the last tick gets the last tick.
    fn deadline_tick(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.clock.origin());
        let micros = since.as_nanos().div_ceil(1_000);
        u64::try_from(micros).unwrap_or(u64::MAX)
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

    /// Stores `timer` to fire at `deadline`, or at the wheel's horizon
    /// (about 8.9 years ahead) if that comes first: the caller checks the
    /// deadline when it fires, and registers again if it is early.
    pub(crate) fn register(&self, deadline: Instant, timer: Arc<TimerShared>) -> Registered {
        let tick = self.deadline_tick(deadline);
        let mut inner = self.lock();
        if inner.shutdown {
            return Registered::Shutdown;
        }
        match inner.wheel.insert(tick, timer) {
            Ok(key) => Registered::Pending {
                key,
                unpark: tick < self.sleep_until.load(Acquire),
            },
            // The wheel's clock is at or past the tick. Ticks round the
            // deadline up and the clock down, so the deadline has passed,
            // unless the tick is the last one, which deadlines beyond it
            // share.
            Err(_) if tick == u64::MAX && self.clock.now() < deadline => Registered::Never,
            Err(_) => Registered::Due,
        }
    }

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
                return;
            }
            let mut fired = std::mem::take(&mut inner.fired);
            inner.wheel.poll(now, |_, timer| fired.push(timer));
            fired
        };
        let panic = self.wake_guarded(fired.drain(..), TimerShared::fire);
        {
            let mut inner = self.lock();
            if inner.fired.capacity() < fired.capacity() {
                inner.fired = fired;
            }
        }
        if let Some(panic) = panic {
            resume_unwind(panic);
        }
    }

    /// Runs `wake` (which runs wakers) on each timer, every one of them
    /// even if a waker panics. On a thread that runs this driver's runtime
    /// (every caller of `process`) each panic goes to
    /// [`Common::wake_guarded`](crate::scheduler::Common::wake_guarded) and
    /// nothing unwinds. Elsewhere the first panic is returned, for the
    /// caller to resume once its work is done (as `waitq` does for one
    /// queue's wakers).
    fn wake_guarded(
        &self,
        timers: impl Iterator<Item = Arc<TimerShared>>,
        wake: impl Fn(&TimerShared),
    ) -> Option<Box<dyn std::any::Any + Send>> {
        let mut timers = timers.peekable();
        timers.peek()?;
        // One handle per batch (a reference count), not one per timer.
        let here = crate::context::scheduler().filter(|scheduler| {
            let time = scheduler.common().time.as_ref();
            time.is_some_and(|time| std::ptr::eq(time, self))
        });
        let mut first = None;
        for timer in timers {
            match &here {
                Some(scheduler) => scheduler
                    .common()
                    .wake_guarded(|| "the waker of a timer".into(), || wake(&timer)),
                None => {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| wake(&timer))) {
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
        let next = self.lock().wheel.next_expiration()?;
        if self.clock.is_paused() {
            self.clock.advance_to(self.tick_instant(next));
            return Some(Duration::ZERO);
        }
        self.sleep_until
            .store(next, std::sync::atomic::Ordering::Release);
        let now = self.clock.now();
        Some(self.tick_instant(next).saturating_duration_since(now))
    }

    /// The parked thread woke.
    pub(crate) fn finish_park(&self) {
        self.sleep_until.swap(u64::MAX, AcqRel);
    }

    /// Shutdown: no timer can fire any more; every pending sleeper's queue
    /// is closed, so it ends with an error instead of hanging. A waker
    /// that panics as its queue closes is caught; off the runtime's
    /// threads (a `Runtime` dropped by its owner) the panic is dropped
    /// (the panic hook has reported it) rather than cut the shutdown short.
    pub(crate) fn shutdown(&self) {
        let mut pending = Vec::new();
        {
            let mut inner = self.lock();
            inner.shutdown = true;
            inner.wheel.poll(u64::MAX, |_, timer| pending.push(timer));
        }
        drop(self.wake_guarded(pending.into_iter(), |timer| {
            timer.queue.close();
        }));
    }

    /// When the next timer may fire (never later than its deadline), for
    /// the test toolkit's `advance`.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let next = self.lock().wheel.next_expiration()?;
        Some(self.tick_instant(next))
    }

    /// Pending timers (metrics).
    pub(crate) fn pending(&self) -> usize {
        self.lock().wheel.len()
    }
}
