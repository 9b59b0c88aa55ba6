//! The real-time watchdog: a thread beside the check that notices a poll
//! which has run far too long ([`Check::watchdog`](super::Check::watchdog)).
//!
//! A check runs every task on the test's thread, so a poll that blocks
//! that thread (a `std::sync::Mutex` held across a decision point and
//! taken again by a task run nested there, a spin on a `std` atomic, a
//! blocking call waiting for the check's own tasks) stops the whole check,
//! and the test hung with no word: the toolkit's own limits (polls,
//! decision points per poll, virtual time) are counted by the thread that
//! is stuck. The simulation beats here at the start and end of every poll
//! and at every decision point; when a poll is in progress and no beat
//! came for the limit, the watchdog prints a report naming the task stuck
//! in its poll (id, spawn site, future type), the tasks it runs nested in,
//! its last decision point, the step and the schedule so far with its
//! replay command, and then ends the process with status 101 (what a
//! failed test binary returns).
//!
//! Why end the process: the stuck thread cannot be unwound from another
//! one (no panic can be sent to it), and the check cannot return its
//! report while its caller, the test, is the thread that is stuck. Left
//! alone, the test binary would hang until a CI timeout killed it with no
//! report. The report is written to the process's stderr directly, past
//! the test harness's output capture, which would have dropped it.

use std::io::Write as _;
use std::panic::Location;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use waitq::hook::PointKind;

use super::report::TaskName;

/// Stands for the schedule in the replay command made on the test thread
/// (the command names the test by its thread's name).
const SCHEDULE: &str = "<schedule>";

/// One poll in progress: the task, and the last decision point it met.
struct Poll {
    task: TaskName,
    point: Option<(PointKind, &'static Location<'static>, usize)>,
}

#[derive(Default)]
struct Beat {
    /// Bumped at every beat: the watchdog sees progress as a change.
    count: u64,
    /// The polls in progress, outermost first (a task preempted at a
    /// decision point, then the task run nested there, ...).
    polls: Vec<Poll>,
    /// The run's non-default choices so far (`index:choice`).
    schedule: Vec<(usize, u32)>,
    stop: bool,
}

/// What the simulation and the watchdog thread share.
pub(crate) struct Watch {
    beat: Mutex<Beat>,
    wake: Condvar,
    limit: Duration,
    /// The replay command with [`SCHEDULE`] for the schedule.
    replay: String,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("limit", &self.limit).finish()
    }
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Beat> {
        // A panic while the lock is held (none is expected) must not end
        // the watch: the data is plain.
        self.beat.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A run starts: no poll, no choice yet.
    pub(crate) fn run_started(&self) {
        let mut beat = self.lock();
        beat.count += 1;
        beat.polls.clear();
        beat.schedule.clear();
    }

    /// `task` starts a poll (at top level, nested, or in a probe).
    pub(crate) fn poll_started(&self, task: TaskName) {
        let mut beat = self.lock();
        beat.count += 1;
        beat.polls.push(Poll { task, point: None });
    }

    /// The innermost poll returned.
    pub(crate) fn poll_ended(&self) {
        let mut beat = self.lock();
        beat.count += 1;
        beat.polls.pop();
    }

    /// The innermost poll met a decision point; `step` decisions were made
    /// so far in the run.
    pub(crate) fn point(&self, kind: PointKind, site: &'static Location<'static>, step: usize) {
        let mut beat = self.lock();
        beat.count += 1;
        if let Some(poll) = beat.polls.last_mut() {
            poll.point = Some((kind, site, step));
        }
    }

    /// Decision `index` took the non-default option `choice`.
    pub(crate) fn chose(&self, index: usize, choice: u32) {
        let mut beat = self.lock();
        beat.count += 1;
        beat.schedule.push((index, choice));
    }

    /// The report for a poll stuck for `stuck`.
    fn report(&self, beat: &Beat, stuck: Duration) -> String {
        let Some(inner) = beat.polls.last() else {
            return String::new();
        };
        let mut m = format!(
            "waitrt::test_util watchdog: {} has been in one poll for {stuck:?} of real time \
             (the limit is {:?}, `Check::watchdog`)",
            inner.task, self.limit
        );
        match inner.point {
            Some((kind, site, step)) => m.push_str(&format!(
                "\n  its last decision point: {} at {site} (step {step})",
                kind.name()
            )),
            None => m.push_str("\n  it met no decision point in this poll"),
        }
        for outer in beat.polls.iter().rev().skip(1) {
            m.push_str(&format!("\n  run nested in the poll of {}", outer.task));
            if let Some((kind, site, step)) = outer.point {
                m.push_str(&format!(
                    ", preempted at its {} point at {site} (step {step})",
                    kind.name()
                ));
            }
        }
        m.push_str(
            "\n  A check runs every task on the test's thread: a poll that blocks it (a \
             `std::sync::Mutex` held across a decision point and taken again by a task run \
             nested there, a spin on a `std` atomic, a blocking call) stops the check. The \
             poll cannot be unwound from another thread, so the process ends (status 101).",
        );
        let schedule = super::Schedule::with_entries(beat.schedule.clone()).to_string();
        m.push_str(&format!("\nschedule so far: {schedule}"));
        m.push_str(&format!(
            "\nreplay: {}",
            self.replay.replace(SCHEDULE, &schedule)
        ));
        m
    }
}

/// The watchdog thread of one check; stopped and joined on drop.
pub(crate) struct Watchdog {
    watch: Arc<Watch>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog for a check called from `caller`; `None` when
    /// `limit` is `Duration::MAX` (off) or no thread can be started (the
    /// check then runs unwatched, as before).
    pub(crate) fn start(limit: Duration, caller: &Location<'_>) -> Option<Watchdog> {
        if limit == Duration::MAX {
            return None;
        }
        let watch = Arc::new(Watch {
            beat: Mutex::new(Beat::default()),
            wake: Condvar::new(),
            limit,
            replay: super::command::replay_command(SCHEDULE, caller.file()),
        });
        let watched = watch.clone();
        let thread = std::thread::Builder::new()
            .name("waitrt-check-watchdog".into())
            .spawn(move || watch_loop(&watched))
            .ok()?;
        Some(Watchdog {
            watch,
            thread: Some(thread),
        })
    }

    fn watch(&self) -> &Arc<Watch> {
        &self.watch
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.watch.lock().stop = true;
        self.watch.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wakes a few times per limit; fires when a poll is in progress and the
/// beat count has not moved for the limit.
fn watch_loop(watch: &Watch) {
    let period = (watch.limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut beat = watch.lock();
    let mut seen = (beat.count, Instant::now());
    let mut last_wake = Instant::now();
    loop {
        if beat.stop {
            return;
        }
        beat = match watch.wake.wait_timeout(beat, period) {
            Ok((beat, _)) => beat,
            Err(poisoned) => poisoned.into_inner().0,
        };
        if beat.stop {
            return;
        }
        let now = Instant::now();
        let wake = Wake {
            late: now.saturating_duration_since(last_wake) > period * 2,
            count: beat.count,
            polling: !beat.polls.is_empty(),
            now,
        };
        last_wake = now;
        match judge(watch.limit, &mut seen, wake) {
            None => {}
            Some(stuck) => {
                let report = watch.report(&beat, stuck);
                // Straight to the process's stderr: `eprintln!` from this
                // thread goes to the test's captured output, which is lost
                // when the process ends.
                let _ = writeln!(std::io::stderr(), "\n{report}\n");
                std::process::exit(101);
            }
        }
    }
}

/// What the watch loop saw when it woke.
#[derive(Debug, Clone, Copy)]
struct Wake {
    /// Far later than its period: this process (or this thread) was
    /// stopped meanwhile.
    late: bool,
    /// The beat count now.
    count: u64,
    /// A poll is in progress.
    polling: bool,
    now: Instant,
}

/// One wake-up of the watch loop: whether the poll in progress has been
/// stuck for `limit` (for how long), given `seen`, the beat count last
/// seen moving and since when (updated here). A late wake-up means the
/// process was stopped (a debugger, `^Z`, a suspended VM): that time is
/// nobody's poll, so the count starts again (an independent review: a
/// SIGSTOP of 3 s ended a check whose poll needed 1.2 s).
fn judge(limit: Duration, seen: &mut (u64, Instant), wake: Wake) -> Option<Duration> {
    if wake.count != seen.0 || !wake.polling || wake.late {
        *seen = (wake.count, wake.now);
        return None;
    }
    let stuck = wake.now.saturating_duration_since(seen.1);
    (stuck >= limit).then_some(stuck)
}

thread_local! {
    /// The watch of the check running on this thread, for its runs.
    static ACTIVE: std::cell::RefCell<Option<Arc<Watch>>> = const { std::cell::RefCell::new(None) };
}

/// The watch of the check running on this thread, if it has one.
pub(crate) fn active() -> Option<Arc<Watch>> {
    ACTIVE.try_with(|a| a.borrow().clone()).ok().flatten()
}

/// Makes `watchdog` the thread's active watch until dropped (then the one
/// before it again).
pub(crate) fn activate(watchdog: Option<&Watchdog>) -> Active {
    let watch = watchdog.map(|w| w.watch().clone());
    Active(ACTIVE.with(|a| std::mem::replace(&mut *a.borrow_mut(), watch)))
}

/// See [`activate`].
pub(crate) struct Active(Option<Arc<Watch>>);

impl Drop for Active {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = ACTIVE.try_with(|a| *a.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wake(at: Instant, count: u64, late: bool) -> Wake {
        Wake {
            late,
            count,
            polling: true,
            now: at,
        }
    }

    /// A poll whose beat count stands still for the limit is stuck; one
    /// whose count moves, or no poll at all, is not.
    #[test]
    fn a_poll_standing_still_for_the_limit_is_stuck() {
        let (limit, t0) = (Duration::from_millis(300), Instant::now());
        let mut seen = (7, t0);
        let ms = Duration::from_millis;
        assert_eq!(judge(limit, &mut seen, wake(t0 + ms(100), 7, false)), None);
        assert_eq!(
            judge(limit, &mut seen, wake(t0 + ms(300), 7, false)),
            Some(ms(300))
        );
        let mut seen = (7, t0);
        assert_eq!(judge(limit, &mut seen, wake(t0 + ms(200), 8, false)), None);
        assert_eq!(judge(limit, &mut seen, wake(t0 + ms(400), 8, false)), None);
        let idle = Wake {
            polling: false,
            ..wake(t0 + ms(900), 8, false)
        };
        assert_eq!(judge(limit, &mut seen, idle), None);
    }

    /// A wake-up far later than the period (the process was stopped)
    /// starts the count again: the stop is nobody's poll. Counted as poll
    /// time, a SIGSTOP of 3 s ended a check whose poll needed 1.2 s.
    #[test]
    fn a_stopped_process_is_no_stuck_poll() {
        let (limit, t0) = (Duration::from_secs(2), Instant::now());
        let secs = Duration::from_secs;
        let mut seen = (1, t0);
        // The poll began at t0; the process was stopped from 0.5 s to 3.5 s.
        assert_eq!(judge(limit, &mut seen, wake(t0 + secs(3), 1, true)), None);
        assert_eq!(seen.1, t0 + secs(3), "the count starts again");
        // The poll goes on after the stop: stuck only a limit later.
        assert_eq!(
            judge(
                limit,
                &mut seen,
                wake(t0 + Duration::from_millis(4200), 1, false)
            ),
            None
        );
        assert_eq!(
            judge(limit, &mut seen, wake(t0 + secs(5), 1, false)),
            Some(secs(2))
        );
    }
}
