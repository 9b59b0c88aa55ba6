//! The deterministic test toolkit: our runtime with two things swapped,
//! the scheduling policy and the clock.
//!
//! [`Check`] runs a test body on a fresh current-thread runtime whose clock
//! is paused and whose run loop is the toolkit's: a [`Policy`] picks which
//! runnable task runs next, and at the wait queue's decision points
//! ([`waitq::hook`]) it may preempt the running task by polling others
//! re-entrantly, or inject a spurious wake-up, a signal or an early timer.
//! `spawn`, `JoinHandle`, `WaitQueue`, timers and signals are the
//! production ones: no `cfg` rebuild, no replacement types.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use waitrt::sync::WaitQueue;
//! use waitrt::test_util::{Check, Policy};
//!
//! Check::new().seeds(64).policy(Policy::Pct { depth: 2 }).run(|| async {
//!     let queue = Arc::new(WaitQueue::new());
//!     let items = Arc::new(AtomicUsize::new(0));
//!     let consumer = {
//!         let (queue, items) = (queue.clone(), items.clone());
//!         waitrt::spawn(async move {
//!             queue.wait_event(|| items.load(Ordering::SeqCst) == 2).await.unwrap();
//!         })
//!     };
//!     for _ in 0..2 {
//!         items.fetch_add(1, Ordering::SeqCst);
//!         queue.wake_up();
//!         waitrt::task::yield_now().await;
//!     }
//!     consumer.await.unwrap();
//! });
//! ```
#![doc = include_str!("test_util/guide.md")]

mod check;
mod command;
mod duplex;
pub mod io;
mod report;
mod rng;
mod schedule;
mod sim;
mod watchdog;

/// A task's poll (or its future's drop) panicked with `payload`: under a
/// [`Check`], its report quotes the message (with `quiet` there is no
/// "printed above"). Nothing outside a check (one thread-local read).
pub(crate) fn note_task_panic(payload: &(dyn std::any::Any + Send)) {
    if let Some(sim) = sim::current() {
        sim.note_panic(payload);
    }
}

/// Whether this thread runs a [`Check`]'s simulation (for error messages
/// that would point a test elsewhere).
pub(crate) fn in_check() -> bool {
    sim::current().is_some()
}
/// The store buffers `crate::sync::atomic` consults under a check.
pub(crate) use sim::memory as weak_memory;

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use check::{Check, Stats, REPLAY_VAR, SEEDS_VAR, SEED_VAR};
pub use duplex::{duplex, DuplexStream};
pub use report::{Failure, FailureKind};
pub use schedule::{ParseScheduleError, Policy, Schedule};

use crate::task::raw::TaskRef;

/// Records a task spawned on a thread that runs a check (its spawn site and
/// future type, for reports). Called by the scheduler only while a waitq
/// hook is installed somewhere.
pub(crate) fn on_spawn(task: &TaskRef, site: &'static Location<'static>, name: &'static str) {
    waitq::hook::barrier(); // publishing a task: the spawner's store buffer drains
    if let Some(sim) = sim::current() {
        sim.on_spawn(task, site, name);
    }
}

/// Whether this thread runs a [`Check`].
///
/// # Examples
///
/// ```
/// assert!(!waitrt::test_util::is_checking());
/// waitrt::test_util::Check::new().run(|| async {
///     assert!(waitrt::test_util::is_checking());
/// });
/// ```
pub fn is_checking() -> bool {
    sim::current().is_some()
}

/// A decision point at the caller: under a [`Check`], other tasks may run
/// here, as if this task were preempted between the statements around it.
/// Put it between two accesses to shared memory that another task's writes
/// may land between (or declare that memory with
/// [`waitrt::sync::atomic`](crate::sync::atomic), which puts one before
/// every access). Outside a check: one `Relaxed` load of a global and a
/// branch.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
/// use std::sync::Arc;
/// use waitrt::test_util::{switch_point, Check, FailureKind};
///
/// // Reads "empty?" and "closed?" apart: a sender's item and close can land between.
/// let failure = Check::new().seeds(200).try_run(|| async {
///     let (item, closed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
///     let (i, c) = (item.clone(), closed.clone());
///     let sender = waitrt::spawn(async move {
///         i.store(true, SeqCst);
///         c.store(true, SeqCst);
///     });
///     let empty = !item.load(SeqCst);
///     switch_point();
///     if empty && closed.load(SeqCst) {
///         assert!(!item.load(SeqCst), "an item was left behind");
///     }
///     sender.await.unwrap();
/// });
/// assert_eq!(failure.unwrap_err().kind(), FailureKind::Panic);
/// ```
#[track_caller]
#[inline]
pub fn switch_point() {
    waitq::hook::switch_point();
}

/// Names `queue` in the failure reports of the current check (no-op
/// outside one).
///
/// # Examples
///
/// ```
/// use waitrt::test_util::{name_queue, Check};
/// let failure = Check::new().try_run(|| async {
///     let queue = waitrt::sync::WaitQueue::new();
///     name_queue(&queue, "smbiod_wait");
///     queue.wait_event(|| false).await.unwrap();
/// });
/// assert!(failure.unwrap_err().report().contains("smbiod_wait"));
/// ```
pub fn name_queue(queue: &waitq::WaitQueue, name: &str) {
    if let Some(sim) = sim::current() {
        sim.name_queue(waitq::hook::QueueId::of(queue), name.to_string());
    }
}

/// Completes once no task of the check is runnable (every other task is
/// asleep), before the clock moves. Outside a check it yields once.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// waitrt::test_util::Check::new().seeds(8).run(|| async {
///     let done = Arc::new(AtomicBool::new(false));
///     let d = done.clone();
///     waitrt::spawn(async move { d.store(true, Ordering::SeqCst) });
///     waitrt::test_util::until_idle().await;
///     assert!(done.load(Ordering::SeqCst));
/// });
/// ```
pub fn until_idle() -> UntilIdle {
    UntilIdle { epoch: None }
}

/// The future [`until_idle`] returns.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct UntilIdle {
    epoch: Option<u64>,
}

impl Future for UntilIdle {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if waitq::hook::is_probing() {
            return Poll::Pending;
        }
        let Some(sim) = sim::current() else {
            if self.epoch.take().is_some() {
                return Poll::Ready(());
            }
            self.epoch = Some(0);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        match self.epoch {
            Some(epoch) if sim.idle_epoch() > epoch => Poll::Ready(()),
            _ => {
                self.epoch = Some(sim.idle_waiter(cx.waker()));
                Poll::Pending
            }
        }
    }
}

/// Moves the paused clock forward by `duration` one timer at a time: every
/// timer it passes fires at its own deadline, in deadline order, and the
/// tasks it wakes run (until idle) before the clock moves on; returns once
/// the clock reads `now + duration` and everything woken has run.
///
/// # Cancel safety
///
/// Not cancel safe: a future dropped part way leaves the clock where it
/// got to (some timers fired, not all), as a test that stopped midway.
///
/// # Panics
///
/// Outside a runtime with a paused clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use waitrt::time::{now, sleep};
/// waitrt::test_util::Check::new().run(|| async {
///     let start = now();
///     let sleeper = waitrt::spawn(async move {
///         sleep(Duration::from_millis(10)).await;
///         now() - start // when it woke
///     });
///     waitrt::test_util::advance(Duration::from_secs(1)).await;
///     assert_eq!(now() - start, Duration::from_secs(1));
///     assert!(sleeper.is_finished());
///     assert_eq!(sleeper.await.unwrap(), Duration::from_millis(10)); // not 1 s
/// });
/// ```
pub async fn advance(duration: Duration) {
    let scheduler = crate::context::scheduler().expect("`advance` needs a runtime");
    let common = scheduler.common();
    let driver = common.time.as_ref().expect("`advance` needs timers");
    assert!(driver.clock().is_paused(), "`advance` needs a paused clock");
    let target = crate::time::saturating_add(driver.clock().now(), duration);
    loop {
        until_idle().await;
        match driver.next_deadline() {
            Some(next) if next <= target => fire(driver, next),
            _ => break,
        }
    }
    fire(driver, target);
    until_idle().await;
}

fn fire(driver: &crate::time::Driver, at: std::time::Instant) {
    match sim::current() {
        Some(sim) => sim.fire_until(at),
        None => {
            driver.clock().advance_to(at);
            driver.process();
        }
    }
}
