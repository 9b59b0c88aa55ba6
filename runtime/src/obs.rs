//! Who sleeps on what, for how long, and who can wake it: task dumps
//! ([`Handle::dump`](crate::Handle::dump)), the dump on SIGQUIT, the
//! hung-task and stuck-worker detectors.
//!
//! # Where the data comes from
//!
//! - **Sleeps** come from `waitq`'s [wait registry](waitq::registry): every
//!   waiter that links an entry is listed with its queue, wait site, kind
//!   and since when. This runtime names the task behind each one (its task
//!   source, installed when a runtime is built), and gives the time from a
//!   coarse clock that its threads refresh whenever they park or
//!   check their drivers, so a sleep costs no clock read.
//! - **Timers** come from the timer wheel: each pending timer holds its
//!   sleeper's waker, whose data pointer is the task.
//! - **Workers** publish "polling task X since t" in a per-worker slot
//!   (`PollSlot`): two plain stores per poll, the time once per turn of
//!   the worker loop, no clock read.
//! - **Tasks** come from the owned-task list: id, name, spawn site and state
//!   word. Nothing is polled, nothing waits for a worker: a dump returns
//!   while a worker is stuck in a poll, and reports it as busy.
//!
//! # Accuracy
//!
//! Durations are measured on the coarse clock: a sleep that starts after a
//! long poll on the same thread, before that thread parks again, may look
//! older by up to that poll. The detectors avoid false reports by also
//! requiring what they report to be unchanged between two of their checks.

pub(crate) mod dump;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub use dump::{Dump, TaskDump, TaskStatus, WorkerDump};
pub(crate) use watch::{start, Config};
pub use watch::{HungTask, LostGrant, StuckWorker};

use crate::task::Id;

// ===== the coarse clock =====

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Nanoseconds since `EPOCH` at the last [`tick`].
static COARSE: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Reads the clock into the coarse clock (a runtime thread that parks or
/// checks its drivers calls this; they read the clock there anyway).
pub(crate) fn tick() -> Instant {
    let now = Instant::now();
    let nanos = now.saturating_duration_since(epoch()).as_nanos();
    // A plain store: two threads' ticks may land out of order, which only
    // makes the coarse clock coarser (readers saturate).
    COARSE.store(u64::try_from(nanos).unwrap_or(u64::MAX), Relaxed);
    now
}

#[inline]
fn coarse_nanos() -> u64 {
    COARSE.load(Relaxed)
}

fn at(nanos: u64) -> Instant {
    epoch() + Duration::from_nanos(nanos)
}

/// The time at the last [`tick`].
pub(crate) fn coarse_now() -> Instant {
    at(coarse_nanos())
}

/// Names this runtime's tasks in the wait registry (once per process).
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tick();
        waitq::registry::set_task_source(task_stamp);
    });
}

/// The registry's task source: the task this thread polls, on a thread of
/// a runtime.
fn task_stamp() -> Option<waitq::registry::TaskStamp> {
    let task = crate::context::registry_task()?;
    Some(waitq::registry::TaskStamp {
        task: task.map(|id| id.0),
        now: coarse_now(),
    })
}

// ===== per-worker poll slots =====

/// What one worker is polling: the task (0: none), and since when, on the
/// coarse clock. Written only by its worker: one store when a poll begins
/// and one when it ends (plain moves on x86), and the time once per turn
/// of its loop (every `event_interval` polls at most, and after it
/// parks), so the start of a poll reads as the start of the loop turn it
/// runs in: a stuck poll looks older by the polls before it in that turn
/// (the coarse clock itself is as coarse). Read by dumps and the
/// detector. On its own cache lines: two workers' slots on one line made
/// every poll of each a cache miss for the other (yield_many, 2 workers:
/// 2.1x slower).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct PollSlot {
    task: AtomicU64,
    since: AtomicU64,
}

impl PollSlot {
    /// A turn of the worker's loop begins: its polls start from now.
    #[inline]
    pub(crate) fn turn(&self) {
        self.since.store(coarse_nanos(), Relaxed);
    }

    /// A poll of task `id` begins. (`Release`: a reader that sees the task
    /// sees the turn's time.)
    #[inline]
    pub(crate) fn begin(&self, id: Id) {
        self.task.store(id.0, Release);
    }

    /// The poll ended.
    #[inline]
    pub(crate) fn end(&self) {
        self.task.store(0, Relaxed);
    }

    /// `(task, since)` if a poll runs now; `since` on the coarse clock in
    /// nanoseconds: with the task, it tells one poll from the next (the
    /// same task polled again in the same loop turn reads the same).
    fn read(&self) -> Option<(Id, u64)> {
        let task = self.task.load(std::sync::atomic::Ordering::Acquire);
        if task == 0 {
            return None;
        }
        Some((Id(task), self.since.load(Relaxed)))
    }
}

/// The runtime's observability state (in `Common`).
#[derive(Debug, Default)]
pub(crate) struct Observer {
    /// Worker slots by worker index (the current-thread flavour's driving
    /// thread is worker 0).
    workers: Mutex<Vec<Arc<PollSlot>>>,
    /// The SIGQUIT listener, closed when the runtime goes.
    sigquit: Mutex<Option<signal_hook::iterator::Handle>>,
}

impl Observer {
    /// Worker `index`'s slot.
    pub(crate) fn slot(&self, index: usize) -> Arc<PollSlot> {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        while workers.len() <= index {
            workers.push(Arc::default());
        }
        workers[index].clone()
    }

    fn slots(&self) -> Vec<Arc<PollSlot>> {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let handle = self
            .sigquit
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = handle.take() {
            handle.close();
        }
    }
}

/// `12m03s`, `3s`, `250ms`: Go's style of wait durations.
pub(crate) fn fmt_duration(d: Duration, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let secs = d.as_secs();
    if secs == 0 {
        return write!(f, "{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => write!(f, "{s}s"),
        (0, _) => write!(f, "{m}m{s:02}s"),
        _ => write!(f, "{h}h{m:02}m{s:02}s"),
    }
}
