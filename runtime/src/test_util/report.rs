//! What a failed run reports, and how it names tasks, queues and sites.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use waitq::hook::{QueueId, Sleeper, WakeKind};

use super::schedule::Schedule;

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A waiter sleeps although its condition holds and no wake will come
    /// (or, for a hand-written `prepare_to_wait` loop, it linked after the
    /// wake it needed ran, and nothing woke it since).
    LostWakeup,
    /// Nothing can run, no timer is pending and no blocking job or spawn
    /// from another thread is in flight (plain threads are not seen: a
    /// wake one would send cannot end the sleep).
    Hang,
    /// A hang where tasks sleep in a cycle on locks (our `Mutex`, an
    /// `RwLock`'s writer or readers) each held by the next: the report names
    /// every task, what it holds, what it waits for and where.
    Deadlock,
    /// A task (or the test body) panicked.
    Panic,
    /// More polls than the limit: a livelock, or a test too large.
    Livelock,
    /// The virtual clock passed the limit.
    TimeLimit,
    /// Outside work (blocking jobs, tasks spawned from other threads) did
    /// not finish within [`Check::watchdog`](super::Check::watchdog)'s limit
    /// while nothing in the check could run; the report names those tasks.
    External,
    /// The same seed ran twice and the runs diverged.
    Nondeterminism,
}

/// A failed check: the kind, a readable report (seed, virtual time, the
/// shrunk schedule, a replay command, the tasks), and the schedule.
#[derive(Debug, Clone)]
pub struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) report: String,
    pub(crate) schedule: Schedule,
    pub(crate) seed: Option<u64>,
}

impl Failure {
    /// Why the run failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::{Check, FailureKind};
    /// let failure = Check::new().seeds(1).try_run(|| async { std::future::pending::<()>().await })
    ///     .unwrap_err();
    /// assert_eq!(failure.kind(), FailureKind::Hang);
    /// ```
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The (shrunk) schedule that reproduces it.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::Check;
    /// let failure = Check::new().try_run(|| async { panic!("boom") }).unwrap_err();
    /// assert!(failure.schedule().is_empty()); // fails on the FIFO schedule already
    /// ```
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The seed of the failing run (`None` for a replayed or DFS run).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::Check;
    /// let failure = Check::new().try_run(|| async { panic!("boom") }).unwrap_err();
    /// assert_eq!(failure.seed(), Some(0));
    /// ```
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The full report, as [`Display`](fmt::Display) prints it.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::Check;
    /// let failure = Check::new().try_run(|| async { panic!("boom") }).unwrap_err();
    /// assert!(failure.report().contains("boom"));
    /// ```
    pub fn report(&self) -> &str {
        &self.report
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl std::error::Error for Failure {}

/// A failure inside one run, before seed and schedule are attached.
#[derive(Debug, Clone)]
pub(crate) struct RunFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    pub(crate) time: Duration,
    /// The faults the run injected before it failed, one line each (the
    /// step, what, into which task, at which point): the report lists
    /// those of the schedule it shows.
    pub(crate) faults: Vec<String>,
}

/// The last wake seen on a queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WakeRecord {
    pub(crate) site: &'static Location<'static>,
    pub(crate) woken: usize,
    pub(crate) kind: WakeKind,
    pub(crate) seq: u64,
    pub(crate) by: Option<u32>,
    pub(crate) time: Duration,
}

/// How a task is named in reports.
#[derive(Debug, Clone)]
pub(crate) struct TaskName {
    pub(crate) slot: u32,
    pub(crate) id: Option<u64>,
    pub(crate) site: Option<&'static Location<'static>>,
    pub(crate) type_name: &'static str,
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.slot == 0 {
            return f.write_str("the test body");
        }
        write!(f, "task {}", self.slot)?;
        if let Some(id) = self.id {
            write!(f, " (id {id})")?;
        }
        match self.site {
            // `Handle::spawn` does not forward `#[track_caller]`: the
            // future's type names the spawning function instead.
            Some(site) if !is_runtime_site(site) => write!(f, " spawned at {site}")?,
            _ => {}
        }
        if !self.type_name.is_empty() {
            write!(f, " [{}]", short_type(self.type_name))?;
        }
        Ok(())
    }
}

pub(crate) fn is_runtime_site(site: &Location<'_>) -> bool {
    let file = site.file().replace('\\', "/");
    file.contains("runtime/src/")
}

/// `a::b::{{closure}}<..>` without the generic noise.
fn short_type(name: &str) -> &str {
    name.split('<').next().unwrap_or(name)
}

/// A queue, by its test name if it has one.
pub(crate) fn queue_name(queue: QueueId, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("`{name}` ({queue})"),
        None => queue.to_string(),
    }
}

/// One line about a sleeper found by the probe: the wait named as the
/// production dump names it (`[wait_event_exclusive on `q` (queue@..),
/// linked, condition false] waits at src/x.rs:3:5`, the shared
/// [`WaitOn`](crate::obs::dump::WaitOn)), then what the probe saw.
pub(crate) fn sleeper_line(s: &Sleeper, queue: &str) -> String {
    let cond = match (s.linked, s.condition) {
        (false, _) => "picked by a wake (not linked)",
        (true, Some(true)) => "linked, condition TRUE",
        (true, Some(false)) => "linked, condition false",
        (true, None) => "linked, condition not visible",
    };
    let on = crate::obs::dump::WaitOn(&s.kind, &queue);
    format!("[{on}, {cond}] waits at {}", s.site)
}

/// One line about a wake.
pub(crate) fn wake_line(w: &WakeRecord, by: &str) -> String {
    let what = match w.kind {
        WakeKind::WakeUp => "wake_up",
        WakeKind::HandOff => "exclusive hand-off",
        WakeKind::Close => "close",
        _ => "wake",
    };
    format!(
        "{what} at {} by {by} at t={:?}, woke {}",
        w.site, w.time, w.woken
    )
}
