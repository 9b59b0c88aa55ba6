//! The timer driver: the wheel, the clock, and the sleeping thread.
//!
//! Each pending timer is an `Arc<TimerShared>` in the wheel; firing sets
//! its flag and wakes its wait queue. Ticks are microseconds since the
//! driver's origin: a deadline rounds *up* to its tick (never fires early),
//! `now` rounds down, and the parked thread's timeout is the exact time to
//! the next tick, so sub-millisecond deadlines are honoured (parking uses
//! the thread parker, which has nanosecond resolution, not epoll's ms).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use waitq::WaitQueue;

use super::clock::Clock;
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

    /// A deadline's tick, rounded up so the timer never fires early.
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

    fn tick_instant(&self, tick: u64) -> Instant {
        self.clock
            .origin()
            .checked_add(Duration::from_micros(tick))
            .unwrap_or_else(|| self.clock.origin() + Duration::from_secs(86_400 * 365 * 30))
    }

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
            Err(_) => Registered::Due,
        }
    }

    pub(crate) fn cancel(&self, key: TimerKey) {
        let removed = self.lock().wheel.remove(key);
        drop(removed);
    }

    /// Fires every due timer (their sleepers are woken after the lock).
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
        for timer in fired.drain(..) {
            timer.fire();
        }
        let mut inner = self.lock();
        if inner.fired.capacity() < fired.capacity() {
            inner.fired = fired;
        }
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
    /// is closed, so it ends with an error instead of hanging.
    pub(crate) fn shutdown(&self) {
        let mut pending = Vec::new();
        {
            let mut inner = self.lock();
            inner.shutdown = true;
            inner.wheel.poll(u64::MAX, |_, timer| pending.push(timer));
        }
        for timer in pending {
            timer.queue.close();
        }
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
