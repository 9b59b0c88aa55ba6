//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`], and
//! [`clock`], the runtime's clock for `waitq`'s `_timeout` waits.
//!
//! Timers live in a hierarchical timing wheel (8 levels of 64 slots, one
//! microsecond per level-0 slot): insert and cancel are O(1); each fired
//! timer is moved down at most once per level. A registered timer is one
//! 40-byte node of the wheel holding its sleeper's waker (no allocation per
//! timer; [`Sleep::reset`] moves it in place), which the driver wakes when
//! the timer fires and closes when the runtime shuts down; the wheel gives
//! its memory back as it empties. The clock can start paused
//! ([`Builder::start_paused`](crate::Builder::start_paused)): time then moves
//! only by [`advance`], or jumps to the next timer when nothing can run.
//!
//! What a user sees at the edges:
//!
//! - **A paused clock jumps past I/O.** "Nothing can run" counts a task
//!   asleep on a socket, a pipe or a thread outside the runtime as unable
//!   to run: with every task so, the clock jumps to the next timer at
//!   once, however soon the peer would answer in real time (a
//!   `timeout(5s, stream.read(..))` whose peer answers after 100 ms of
//!   real time ends `Elapsed` at once; hyper's header-read timeout closes
//!   a connection whose client is a plain thread). Only the blocking pool's
//!   running jobs hold the jump back. tokio's paused clock does the same.
//!   Paused tests keep their peers inside the runtime, or advance by hand.
//! - **Far deadlines are kept.** The wheel reaches about 8.9 years ahead; a
//!   later deadline is woken at that horizon and its [`Sleep`] registers
//!   again, as often as needed, so `sleep(20 years)`, `timeout(20 years, ..)`
//!   and `waitq`'s `_timeout` waits on [`clock`] end at 20 years, never
//!   before. On a paused clock each horizon is a jump (a few microseconds
//!   of real time each: `sleep` of 3,000 years, some 340 horizons, takes
//!   about 1 ms; tokio jumps there at once).
//! - **Time arithmetic saturates.** A deadline that overflows `Instant`
//!   (`sleep(Duration::MAX)`, `timeout(Duration::MAX, ..)`) is the latest
//!   instant the platform represents (some 292 billion years ahead on
//!   Linux): "never" on a real clock. (The driver counts microseconds from
//!   the runtime's start in 64 bits, about 584,000 years; a deadline beyond
//!   that completes only if a paused clock is moved past it.) An
//!   [`Interval`] whose next tick overflows has it at that latest instant:
//!   never on a real clock; on a paused clock moved there, where every
//!   deadline has passed, it ticks on every poll. [`advance`] by
//!   `Duration::MAX` moves a paused clock to that latest instant instead
//!   of panicking.
//! - **Due timers spend the cooperative budget.** A timer future that
//!   completes (a `sleep(Duration::ZERO)`, a past `sleep_until`, a
//!   `timeout(Duration::ZERO, ..)`, an [`Interval`] catching up missed ticks
//!   in burst mode) spends one unit of the task's [`coop`](waitq::coop)
//!   budget, so a loop over them yields to the other tasks on its thread
//!   after 128 polls instead of starving them.
//! - **Panics point at the caller.** The panics of [`sleep`], [`interval`]
//!   and the others (outside a runtime, timers disabled, a zero period)
//!   report the caller's file and line.
//! - **A panicking waker is contained.** When a timer fires (or its queue
//!   closes at shutdown), a sleeper's waker that panics is caught: the other
//!   timers still fire, and the thread that drives the timers (a worker or
//!   `block_on`) carries on under the runtime's
//!   [`UnhandledPanic`](crate::UnhandledPanic) policy.

mod clock;
mod driver;
mod interval;
mod sleep;
mod timeout;
mod wheel;

use std::future::Future;
use std::time::{Duration, Instant};

#[cfg(feature = "hyper")]
pub(crate) use clock::all_real as all_clocks_real;
pub(crate) use clock::{saturating_add, Clock};
pub(crate) use driver::Driver;
pub use interval::{Interval, MissedTickBehavior};
pub use sleep::Sleep;
pub use timeout::{Elapsed, Timeout};

use crate::context;
use crate::scheduler::Scheduler;

#[track_caller]
fn current() -> Scheduler {
    context::scheduler()
        .expect("there is no runtime here: timers must be used from inside a runtime")
}

/// Completes after `duration` (on the runtime's clock).
///
/// # Panics
///
/// Outside a runtime, or on a runtime built without timers.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now();
///     waitrt::time::sleep(Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let scheduler = current();
    let now = now_on(&scheduler);
    let sleep = Sleep::new(scheduler, clock::saturating_add(now, duration));
    if duration.is_zero() {
        sleep.due_now()
    } else {
        sleep
    }
}

/// Completes at `deadline`: on its first poll if the timer driver had
/// reached it at its last turn, else when the driver reaches it (for a
/// deadline that has passed: at its next turn; see [`Sleep`]).
///
/// # Panics
///
/// Outside a runtime, or on a runtime built without timers.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async { waitrt::time::sleep_until(Instant::now()).await }); // at the driver's next turn
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(current(), deadline)
}

/// Runs `future` with a time limit: `Err(Elapsed)` if `duration` passes first.
///
/// # Panics
///
/// Outside a runtime, or on a runtime built without timers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// let out = rt.block_on(async {
///     waitrt::time::timeout(Duration::from_millis(1), std::future::pending::<()>()).await
/// });
/// assert!(out.is_err());
/// ```
#[track_caller]
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout::new(future, sleep(duration))
}

/// [`timeout`] with an absolute deadline.
#[track_caller]
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout::new(future, sleep_until(deadline))
}

/// Ticks every `period`, the first tick at once.
///
/// # Panics
///
/// If `period` is zero, or outside a runtime with timers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     let mut ticks = waitrt::time::interval(Duration::from_millis(1));
///     let first = ticks.tick().await;
///     let second = ticks.tick().await;
///     assert_eq!(second - first, Duration::from_millis(1));
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    let scheduler = current();
    let now = now_on(&scheduler);
    Interval::new(Sleep::new(scheduler, now).due_now(), period)
}

/// Ticks every `period`, the first tick at `start` (if it has passed: as
/// soon as the timer driver has, see [`Sleep`]; missed ticks are then
/// handled as
/// [`set_missed_tick_behavior`](Interval::set_missed_tick_behavior) says).
///
/// # Panics
///
/// If `period` is zero, or outside a runtime with timers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let start = waitrt::time::now() + Duration::from_secs(5);
///     let mut ticks = waitrt::time::interval_at(start, Duration::from_secs(1));
///     assert_eq!(ticks.tick().await, start);
///     assert_eq!(ticks.tick().await, start + Duration::from_secs(1));
/// });
/// ```
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    Interval::new(Sleep::new(current(), start), period)
}

/// The current instant on this runtime's clock (differs from
/// `Instant::now()` only while the clock is paused).
#[track_caller]
pub fn now() -> Instant {
    now_on(&current())
}

/// Moves a paused clock forward by `duration`, firing the timers that
/// come due, and returns once the tasks they woke have run as far as they
/// can without more time or I/O (and the tasks those woke in turn): on
/// current-thread it yields, and they run before it returns; on
/// multi-thread, where they run on the workers beside the caller, it also
/// waits until no other thread of the runtime runs a task or has one
/// queued, for at most a second of real time (a task that
/// never stops running would otherwise hold it forever). tokio allows a
/// paused clock on current-thread only, and its `advance` promises less:
/// its woken tasks may not have run yet. The clock saturates: by
/// `Duration::MAX` it moves to the latest representable instant, where
/// every deadline has passed.
///
/// # Cancel safety
///
/// The clock moves and the timers fire on the first poll; dropping the
/// future after that only skips the wait for their tasks.
///
/// # Panics
///
/// Outside a runtime with timers, or if the runtime's clock is not paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let before = waitrt::time::now();
///     waitrt::time::advance(Duration::from_secs(3600)).await;
///     assert_eq!(waitrt::time::now() - before, Duration::from_secs(3600));
/// });
/// ```
pub async fn advance(duration: Duration) {
    let scheduler = current();
    let driver = driver(&scheduler);
    assert!(driver.clock().is_paused(), "`advance` needs a paused clock");
    let target = clock::saturating_add(driver.clock().now(), duration);
    driver.clock().advance_to(target);
    driver.process();
    crate::task::yield_now().await;
    if let Scheduler::MultiThread(shared) = &scheduler {
        let start = Instant::now();
        while !shared.settled_but_caller() && start.elapsed() < ADVANCE_SETTLE_LIMIT {
            // Real time passes for the workers; the yield lets this
            // thread's own queue run if it is a worker.
            std::thread::sleep(Duration::from_micros(50));
            crate::task::yield_now().await;
        }
    }
}

/// How long (in real time) [`advance`] waits, on a multi-thread runtime,
/// for the tasks its timers woke to finish running.
const ADVANCE_SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// The runtime's clock as a [`waitq::Clock`], for the `_timeout` waits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     let queue = waitrt::sync::WaitQueue::new();
///     let clock = waitrt::time::clock();
///     let left = queue
///         .wait_event_timeout(&clock, Duration::from_millis(1), || false)
///         .await;
///     assert!(left.is_err()); // timed out
/// });
/// ```
#[track_caller]
pub fn clock() -> RuntimeClock {
    let scheduler = current();
    driver(&scheduler);
    RuntimeClock { scheduler }
}

/// The runtime's clock, implementing [`waitq::Clock`]; see [`clock`].
#[derive(Debug, Clone)]
pub struct RuntimeClock {
    scheduler: Scheduler,
}

impl waitq::Clock for RuntimeClock {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        now_on(&self.scheduler)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(self.scheduler.clone(), deadline)
    }
}

#[track_caller]
fn driver(scheduler: &Scheduler) -> &Driver {
    scheduler.common().time.as_ref().expect(
        "timers are disabled on this runtime: build it with `enable_time()` or `enable_all()`",
    )
}

#[track_caller]
fn now_on(scheduler: &Scheduler) -> Instant {
    driver(scheduler).clock().now()
}
