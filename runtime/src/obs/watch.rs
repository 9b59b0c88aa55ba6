//! The background side: the hung-task and stuck-worker detectors (one
//! low-rate thread) and the dump on SIGQUIT (a signal listener thread).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::panic::Location;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use waitq::hook::QueueId;
use waitq::registry::{HeldAs, Waiting};

use super::dump::{Held, QueueName, TaskLabel, WaitBracket};
use super::fmt_duration;
use crate::scheduler::{current_thread, multi_thread, Scheduler};
use crate::task::local::LocalTask;
use crate::task::raw::TaskRef;
use crate::task::Id;

/// A callback for hung tasks.
pub(crate) type OnHung = Arc<dyn Fn(&HungTask) + Send + Sync>;
/// A callback for stuck workers.
pub(crate) type OnStuck = Arc<dyn Fn(&StuckWorker) + Send + Sync>;

/// A callback for lost grants.
pub(crate) type OnLostGrant = Arc<dyn Fn(&LostGrant) + Send + Sync>;

/// What `Builder` collects for this module.
#[derive(Clone, Default)]
pub(crate) struct Config {
    pub(crate) dump_on_sigquit: bool,
    /// Turn the wait registry on (also implied by the options below).
    pub(crate) wait_registry: bool,
    pub(crate) hung_task_timeout: Option<Duration>,
    pub(crate) on_hung_task: Option<OnHung>,
    pub(crate) stuck_worker_threshold: Option<Duration>,
    pub(crate) on_stuck_worker: Option<OnStuck>,
    pub(crate) lost_grant_timeout: Option<Duration>,
    pub(crate) on_lost_grant: Option<OnLostGrant>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dump_on_sigquit", &self.dump_on_sigquit)
            .field("hung_task_timeout", &self.hung_task_timeout)
            .field("stuck_worker_threshold", &self.stuck_worker_threshold)
            .field("lost_grant_timeout", &self.lost_grant_timeout)
            .finish_non_exhaustive()
    }
}

/// A task asleep in an uninterruptible, untimed wait for longer than
/// `Builder::hung_task_timeout`, as the detector reports it (once per
/// sleep). [`Display`](fmt::Display) gives the default one-line report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HungTask {
    /// The task.
    pub id: Id,
    /// Its name.
    pub name: Option<Arc<str>>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// The wait it is stuck in.
    pub wait: Waiting,
    /// How long it has slept, when detected.
    pub asleep: Duration,
    /// The timeout it exceeded.
    pub timeout: Duration,
    /// The task that holds the lock it waits for ([`Mutex`](crate::sync::Mutex),
    /// an [`RwLock`](crate::sync::RwLock)'s writer or its longest-standing
    /// reader), or that last took the [`Semaphore`](crate::sync::Semaphore)
    /// it waits on, and its name, when known; `wait.held_as` says which
    /// (kernel: the blocker the hung-task detector names since 2025,
    /// "likely last held by" for a semaphore, "likely owned by" a reader
    /// for an rw-semaphore).
    pub holder: Option<(Id, Option<Arc<str>>)>,
    /// With no holder known: the task a wake handed the lock (or permits)
    /// to, whose future has not taken it since, its name, and since when
    /// (the futurelock: that task awaits something else; the lost-grant
    /// detector names it too). The waiter queued behind it cannot get the
    /// lock until it does.
    pub granted_to: Option<(Id, Option<Arc<str>>, Instant)>,
}

impl fmt::Display for HungTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.wait.since + self.asleep;
        write!(
            f,
            "hung task: {} [{}] spawned at {}, waits at {} (asleep longer than ",
            TaskLabel(self.id, self.name.as_deref()),
            WaitBracket(&self.wait, now),
            self.spawned_at,
            self.wait.site
        )?;
        fmt_duration(self.timeout, f)?;
        f.write_str(")")?;
        if let Some((id, name)) = &self.holder {
            let label = TaskLabel(*id, name.as_deref());
            let what = match self.wait.held_as {
                HeldAs::LastTaker => "semaphore",
                _ => "lock",
            };
            write!(f, ", {what} {}", Held(self.wait.held_as, label))?;
        } else if let Some((id, name, picked)) = &self.granted_to {
            let label = TaskLabel(*id, name.as_deref());
            f.write_str(", handed to ")?;
            write!(f, "{label} by a wake ")?;
            fmt_duration(now.saturating_duration_since(*picked), f)?;
            f.write_str(" ago, not yet taken (a lost grant)")?;
        }
        Ok(())
    }
}

/// A worker that has not returned from one poll for longer than
/// `Builder::stuck_worker_threshold`, reported once per poll.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StuckWorker {
    /// The worker.
    pub worker: usize,
    /// The task it polls.
    pub task: Id,
    /// Its name.
    pub name: Option<Arc<str>>,
    /// Where that task was spawned.
    pub spawned_at: Option<&'static Location<'static>>,
    /// How long the poll has run, at least.
    pub busy: Duration,
    /// The threshold it exceeded.
    pub threshold: Duration,
}

impl fmt::Display for StuckWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stuck worker: worker {} has been polling {} for ",
            self.worker,
            TaskLabel(self.task, self.name.as_deref())
        )?;
        fmt_duration(self.busy, f)?;
        if let Some(site) = self.spawned_at {
            write!(f, ", spawned at {site}")?;
        }
        f.write_str(" (blocking code in async? threshold ")?;
        fmt_duration(self.threshold, f)?;
        f.write_str(")")
    }
}

/// A task handed a lock, permit, slot or turn by an exclusive wake more
/// than `Builder::lost_grant_timeout` ago, that has run since without
/// polling the future waiting for it (reported once per sleep).
/// [`Display`](fmt::Display) gives the default one-line report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LostGrant {
    /// The task.
    pub id: Id,
    /// Its name.
    pub name: Option<Arc<str>>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// The wait whose grant is unclaimed (`wait.picked` says when).
    pub wait: Waiting,
    /// How long the grant has gone unclaimed, when detected.
    pub unclaimed: Duration,
    /// The threshold it exceeded.
    pub threshold: Duration,
}

impl fmt::Display for LostGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lost grant: {} was handed {} by a wake ",
            TaskLabel(self.id, self.name.as_deref()),
            QueueName(&self.wait),
        )?;
        fmt_duration(self.unclaimed, f)?;
        write!(
            f,
            " ago and has run since without polling the wait at {} (a future left unpolled in a select!? threshold ",
            self.wait.site
        )?;
        fmt_duration(self.threshold, f)?;
        write!(f, "), spawned at {}", self.spawned_at)
    }
}

/// Grants already reported (by sleep id), kept while their records live;
/// and for each unclaimed grant past the threshold whose task was running
/// when seen, the task's poll count then.
#[derive(Default)]
struct LostState {
    reported: HashSet<u64>,
    polls_at: HashMap<u64, u32>,
}

impl LostState {
    /// The lost-grant pass: a record picked by an exclusive wake more than
    /// `threshold` ago (the future has not acted on it, or the record would
    /// be gone) whose task is idle (it was woken by the grant, so it has
    /// been polled since, and went back to sleep without that future), or
    /// runs on: polled twice more since a pass saw it running (a whole poll
    /// went by without that future; a task that keeps running, the
    /// futurelock's usual shape, is never idle when a pass looks).
    fn check(&mut self, scheduler: &Scheduler, threshold: Duration, on: Option<&OnLostGrant>) {
        let now = Instant::now();
        let mut live = HashSet::new();
        let mut candidates = Vec::new();
        for w in waitq::registry::snapshot() {
            let Some(picked) = w.picked else { continue };
            live.insert(w.sleep);
            if w.task.is_some()
                && !self.reported.contains(&w.sleep)
                && now.saturating_duration_since(picked) >= threshold
            {
                candidates.push((w, picked));
            }
        }
        self.reported.retain(|sleep| live.contains(sleep));
        self.polls_at.retain(|sleep, _| live.contains(sleep));
        if candidates.is_empty() {
            return;
        }
        let tasks = scheduler.common().owned.snapshot();
        // The local tasks of the sets this runtime drives, as in the
        // hung-task pass.
        let locals = crate::task::local::live_tasks(scheduler.common().id);
        for (w, picked) in candidates {
            // Who, whether it runs or is queued, and its poll count.
            let (id, name, spawned_at, busy, polls) =
                match tasks.iter().find(|t| Some(t.header().id.0) == w.task) {
                    Some(task) => {
                        let header = task.header();
                        let state = header.state.load();
                        let busy = state.is_running() || state.is_scheduled();
                        let name = header.name().cloned();
                        (header.id, name, header.site, busy, header.poll_count())
                    }
                    None => match locals.iter().find(|t| Some(t.id.0) == w.task) {
                        Some(t) => (t.id, None, t.spawned_at, t.polling || t.scheduled, t.polls),
                        None => continue, // another runtime's task
                    },
                };
            if busy {
                // About to poll it, stuck in a poll (another detector), or
                // running on without it: a whole poll since a pass saw it
                // running tells.
                let first = *self.polls_at.entry(w.sleep).or_insert(polls);
                if polls.wrapping_sub(first) < 2 {
                    continue;
                }
            }
            // Idle now: still unclaimed? (It may have run, claimed the grant
            // and gone idle on something else since the snapshot above.)
            if !waitq::registry::snapshot()
                .iter()
                .any(|now| now.sleep == w.sleep && now.picked.is_some())
            {
                continue;
            }
            self.reported.insert(w.sleep);
            let report = LostGrant {
                id,
                name,
                spawned_at,
                unclaimed: now.saturating_duration_since(picked),
                wait: w,
                threshold,
            };
            match on {
                Some(on) => on(&report),
                None => eprintln!("{report}"),
            }
        }
    }
}

/// A scheduler that does not keep its runtime alive.
#[derive(Clone)]
enum WeakScheduler {
    CurrentThread(Weak<current_thread::Shared>),
    MultiThread(Weak<multi_thread::Shared>),
}

impl WeakScheduler {
    fn new(scheduler: &Scheduler) -> Self {
        match scheduler {
            Scheduler::CurrentThread(s) => WeakScheduler::CurrentThread(Arc::downgrade(s)),
            Scheduler::MultiThread(s) => WeakScheduler::MultiThread(Arc::downgrade(s)),
        }
    }

    fn upgrade(&self) -> Option<Scheduler> {
        match self {
            WeakScheduler::CurrentThread(s) => s.upgrade().map(Scheduler::CurrentThread),
            WeakScheduler::MultiThread(s) => s.upgrade().map(Scheduler::MultiThread),
        }
    }
}

/// Starts what `config` asks for on the runtime of `scheduler`.
pub(crate) fn start(scheduler: &Scheduler, config: &Config) -> std::io::Result<()> {
    super::install();
    // The detectors compare each sleep between their checks and note the
    // exclusive wakes' picks: the whole registry (the shared map). A dump
    // needs only what each task sleeps on: its slot (a sleep's record is a
    // few plain stores there).
    if config.hung_task_timeout.is_some() || config.lost_grant_timeout.is_some() {
        waitq::registry::enable();
    } else if config.wait_registry || config.dump_on_sigquit {
        waitq::registry::enable_slots();
    }
    let weak = WeakScheduler::new(scheduler);
    if config.dump_on_sigquit {
        sigquit_dumps(weak.clone())?;
    }
    if config.hung_task_timeout.is_some()
        || config.stuck_worker_threshold.is_some()
        || config.lost_grant_timeout.is_some()
    {
        let config = config.clone();
        std::thread::Builder::new()
            .name("runtime-watchdog".into())
            .spawn(move || watchdog(weak, config))?;
    }
    Ok(())
}

/// The runtimes that print a dump on SIGQUIT, and whether the listener
/// thread they share runs.
struct Sigquit {
    runtimes: Vec<WeakScheduler>,
    listening: bool,
}

static SIGQUIT: Mutex<Sigquit> = Mutex::new(Sigquit {
    runtimes: Vec::new(),
    listening: false,
});

/// Adds a runtime to those that dump on SIGQUIT, starting the one listener
/// thread with the first (a failed start leaves nothing behind: the next
/// runtime tries again). The listener prints a dump of every such runtime
/// still alive; once none is (all dropped), a SIGQUIT gets its default
/// action again (quit with a core dump), unless the program listens for it
/// through [`crate::signal`]: signal-hook cannot uninstall its handler,
/// which would otherwise swallow the signal for the rest of the process.
fn sigquit_dumps(runtime: WeakScheduler) -> std::io::Result<()> {
    let mut state = SIGQUIT.lock().unwrap_or_else(PoisonError::into_inner);
    if !state.listening {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGQUIT])?;
        std::thread::Builder::new()
            .name("runtime-sigquit".into())
            .spawn(move || {
                for _ in signals.forever() {
                    on_sigquit();
                }
            })?;
        state.listening = true;
    }
    state.runtimes.push(runtime);
    Ok(())
}

/// One SIGQUIT: the dumps, or the default action.
fn on_sigquit() {
    let alive: Vec<Scheduler> = {
        let mut state = SIGQUIT.lock().unwrap_or_else(PoisonError::into_inner);
        state.runtimes.retain(|weak| {
            weak.upgrade()
                .is_some_and(|scheduler| !scheduler.common().is_shutdown())
        });
        state
            .runtimes
            .iter()
            .filter_map(WeakScheduler::upgrade)
            .collect()
    };
    if alive.is_empty() {
        if !crate::signal::handles(signal_hook::consts::SIGQUIT) {
            let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGQUIT);
        }
        return;
    }
    for scheduler in alive {
        let dump = super::dump::take(&scheduler);
        drop(scheduler);
        let _ = write!(std::io::stderr().lock(), "{dump}");
    }
}

/// The detectors' thread: wakes every quarter of the smallest threshold
/// (at most once a second, at least every 10 ms) until the runtime goes.
fn watchdog(weak: WeakScheduler, config: Config) {
    let smallest = [
        config.hung_task_timeout,
        config.stuck_worker_threshold,
        config.lost_grant_timeout,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(Duration::from_secs(1));
    let period = (smallest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut hung = HungState::default();
    let mut lost = LostState::default();
    let mut stuck: HashMap<usize, (crate::obs::SeenPoll, Instant, bool)> = HashMap::new();
    loop {
        std::thread::sleep(period);
        let Some(scheduler) = weak.upgrade() else {
            return;
        };
        if scheduler.common().is_shutdown() {
            return;
        }
        let now = waitq::registry::tick();
        if let Some(timeout) = config.hung_task_timeout {
            hung.check(&scheduler, timeout, now, config.on_hung_task.as_ref());
        }
        if let Some(threshold) = config.lost_grant_timeout {
            lost.check(&scheduler, threshold, config.on_lost_grant.as_ref());
        }
        if let Some(threshold) = config.stuck_worker_threshold {
            check_stuck(
                &scheduler,
                threshold,
                now,
                &mut stuck,
                config.on_stuck_worker.as_ref(),
            );
        }
    }
}

/// Sleeps seen by the previous check, those already reported, and the
/// poll count of each task seen asleep, with when it was first seen.
#[derive(Default)]
struct HungState {
    seen: HashSet<u64>,
    reported: HashSet<u64>,
    polls: HashMap<u64, (u32, Instant)>,
}

impl HungState {
    /// khungtaskd's pass: every task of this runtime asleep in an
    /// uninterruptible untimed wait for longer than `timeout`, reported once
    /// per sleep, and only if the previous check saw that same sleep (so a
    /// stale coarse clock cannot make a fresh sleep look old) and the task
    /// has not been polled for `timeout` either, counted from the first
    /// check that saw its poll count (khungtaskd's unchanged context-switch
    /// count: a report comes between one and two timeouts into a hang).
    /// A wait stays listed while its registration stands, also after its
    /// task moved on (a `&mut JoinHandle` or a socket read inside a
    /// `timeout` that expired): such a task runs, so it is not hung (an
    /// independent probe: reported while it was polled every 10 ms). Reading
    /// a task's poll count makes its rare part if it had none.
    fn check(
        &mut self,
        scheduler: &Scheduler,
        timeout: Duration,
        now: Instant,
        on: Option<&OnHung>,
    ) {
        let waits = waitq::registry::snapshot();
        // Queues whose lock a wake handed to a task that has not taken it:
        // the holder a task queued behind such a grant waits for.
        let granted: HashMap<QueueId, (u64, Instant)> = waits
            .iter()
            .filter_map(|w| Some((w.queue, (w.task?, w.picked?))))
            .collect();
        let mut seen = HashSet::new();
        let mut asleep = Vec::new();
        for w in waits {
            // A wait an exclusive wake already granted (`picked`) is not
            // asleep: its task has what it waited for and has not come
            // back for it, which the lost-grant detector reports.
            if w.task.is_none()
                || !w.kind.is_uninterruptible()
                || w.picked.is_some()
                || waits_for_an_event(w.queue_name)
            {
                continue;
            }
            seen.insert(w.sleep);
            asleep.push(w);
        }
        self.reported.retain(|sleep| seen.contains(sleep));
        if asleep.is_empty() {
            self.seen = seen;
            self.polls.clear();
            return;
        }
        let tasks = scheduler.common().owned.snapshot();
        let by_id: HashMap<u64, &TaskRef> = tasks.iter().map(|t| (t.header().id.0, t)).collect();
        // The local tasks of the sets this runtime drives.
        let runtime = scheduler.common().id;
        let locals: HashMap<u64, LocalTask> = crate::task::local::live_tasks(runtime)
            .into_iter()
            .map(|t| (t.id.0, t))
            .collect();
        // Each sleeping task's poll count: unchanged since first seen, or
        // seen afresh now (it ran, or it is new).
        let mut polls = HashMap::new();
        for w in &asleep {
            let Some(id) = w.task else { continue };
            let count = match (by_id.get(&id), locals.get(&id)) {
                (Some(task), _) => task.header().poll_count(),
                (None, Some(local)) => local.polls,
                (None, None) => continue, // another runtime's task
            };
            let first_seen = match self.polls.get(&id) {
                Some(&(before, since)) if before == count => since,
                _ => now,
            };
            polls.insert(id, (count, first_seen));
        }
        let candidates: Vec<Waiting> = asleep
            .into_iter()
            .filter(|w| {
                self.seen.contains(&w.sleep)
                    && !self.reported.contains(&w.sleep)
                    && now.saturating_duration_since(w.since) >= timeout
                    && w.task
                        .and_then(|id| polls.get(&id))
                        .is_some_and(|&(_, first)| {
                            // Not polled for the timeout either.
                            now.saturating_duration_since(first) >= timeout
                        })
            })
            .collect();
        self.seen = seen;
        self.polls = polls;
        for w in candidates {
            let Some(id) = w.task else { continue };
            // Who it is, unless woken (no longer asleep).
            let (id, name, spawned_at) = match (by_id.get(&id), locals.get(&id)) {
                (Some(task), _) => {
                    let header = task.header();
                    let state = header.state.load();
                    if state.is_running() || state.is_scheduled() {
                        continue;
                    }
                    (header.id, header.name().cloned(), header.site)
                }
                (None, Some(local)) if !local.polling && !local.scheduled => {
                    (local.id, None, local.spawned_at)
                }
                _ => continue,
            };
            self.reported.insert(w.sleep);
            let holder = w.holder.map(|holder| {
                let name = tasks
                    .iter()
                    .find(|t| t.header().id.0 == holder)
                    .and_then(|t| t.header().name().cloned());
                (Id(holder), name)
            });
            let named = |task: u64| {
                tasks
                    .iter()
                    .find(|t| t.header().id.0 == task)
                    .and_then(|t| t.header().name().cloned())
            };
            let granted_to = match holder {
                Some(_) => None,
                None => granted
                    .get(&w.queue)
                    .filter(|(task, _)| *task != id.0)
                    .map(|&(task, picked)| (Id(task), named(task), picked)),
            };
            let report = HungTask {
                id,
                name,
                spawned_at,
                asleep: now.saturating_duration_since(w.since),
                wait: w,
                timeout,
                holder,
                granted_to,
            };
            match on {
                Some(on) => on(&report),
                None => eprintln!("{report}"),
            }
        }
    }
}

/// The stuck-worker pass: a worker still in the same poll after
/// `threshold` (measured between this thread's own observations, so never
/// early) is reported once per poll.
fn check_stuck(
    scheduler: &Scheduler,
    threshold: Duration,
    now: Instant,
    state: &mut HashMap<usize, (crate::obs::SeenPoll, Instant, bool)>,
    on: Option<&OnStuck>,
) {
    let slots = scheduler.common().obs.slots();
    for (index, slot) in slots.iter().enumerate() {
        // The slot's sequence number tells one poll from the next.
        let Some(poll) = slot.read() else {
            state.remove(&index);
            continue;
        };
        let task = poll.task;
        let entry = state.entry(index).or_insert((poll, now, false));
        if entry.0 != poll {
            *entry = (poll, now, false);
            continue;
        }
        let busy = now.saturating_duration_since(entry.1);
        if entry.2 || busy < threshold {
            continue;
        }
        entry.2 = true;
        let found = scheduler
            .common()
            .owned
            .snapshot()
            .into_iter()
            .find(|t| t.header().id == task);
        let report = StuckWorker {
            worker: index,
            task,
            name: found.as_ref().and_then(|t| t.header().name().cloned()),
            spawned_at: found.as_ref().map(|t| t.header().site),
            busy,
            threshold,
        };
        match on {
            Some(on) => on(&report),
            None => eprintln!("{report}"),
        }
    }
}

/// Whether a wait on the queue named `name` waits for an event from
/// outside the program rather than for a resource another task holds: a
/// socket's readiness or an accept, a message on a channel, a channel's
/// receivers all gone (a sender's `closed()`), a task's end (a join), a
/// process signal. The kernel sleeps in those as
/// `TASK_INTERRUPTIBLE` or `TASK_IDLE`, which khungtaskd never reports: an
/// idle server or consumer is not hung (reported, every idle connection
/// and accept loop of a service with the detector on was, smbiod's own
/// included: an independent audit). Locks, semaphores, a full channel's
/// senders, `OnceCell`, `Barrier` and the user's own queues stay reported.
/// Named by the queues the runtime names.
fn waits_for_an_event(name: Option<&str>) -> bool {
    let Some(name) = name else {
        return false;
    };
    name.ends_with("_readable")
        || name.ends_with("_writable")
        || name.ends_with("_accept")
        || matches!(name, "mpsc_closed" | "broadcast_closed" | "watch_closed")
        || matches!(
            name,
            "mpsc_recv" | "broadcast" | "watch" | "oneshot" | "join" | "join_set" | "signal"
        )
}

#[cfg(test)]
mod event_wait_tests {
    use super::waits_for_an_event;

    #[test]
    fn idle_waits_are_told_from_resource_waits() {
        for idle in [
            "tcp_listener_accept",
            "tcp_stream_readable",
            "udp_socket_writable",
            "unix_listener_accept",
            "mpsc_recv",
            "broadcast",
            "watch",
            "oneshot",
            "join",
            "join_set",
            "signal",
            "mpsc_closed",
            "watch_closed",
        ] {
            assert!(waits_for_an_event(Some(idle)), "{idle}");
        }
        for held in [
            "sync::Mutex",
            "mpsc_send",
            "barrier",
            "obs_hung",
            "smbiod_wait",
        ] {
            assert!(!waits_for_an_event(Some(held)), "{held}");
        }
        assert!(!waits_for_an_event(None));
    }
}
