//! [`Check`]: run a test body under many schedules, shrink and report a
//! failure, count what was covered.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::command::replay_command;
use super::report::{Failure, FailureKind};
use super::schedule::{dfs_next, Policy, Schedule};
use super::sim::{self, PointCounts, RunConfig, RunOutcome};
use super::watchdog::{self, Watchdog};
use waitq::hook::PointKind;

/// Pins one seed: `RUNTIME_TEST_SEED=<n>`.
pub const SEED_VAR: &str = "RUNTIME_TEST_SEED";
/// Replays one schedule: `RUNTIME_TEST_REPLAY=<schedule>`, or
/// `RUNTIME_TEST_REPLAY=@<file>` for a schedule in a file (a report writes
/// a schedule longer than 64 entries to one).
pub const REPLAY_VAR: &str = "RUNTIME_TEST_REPLAY";
/// Overrides the number of seeds: `RUNTIME_TEST_SEEDS=<n>`.
pub const SEEDS_VAR: &str = "RUNTIME_TEST_SEEDS";

/// Replays tried while shrinking a failure.
const SHRINK_BUDGET: usize = 400;
/// Replays of a failure's final schedule that check it reproduces.
const CONFIRM_REPLAYS: usize = 3;

thread_local! {
    /// This thread replays a failure: its panics are not printed.
    static REPLAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (the replays that shrink and confirm a failure) with the panic
/// messages of this thread unprinted: they repeat the first run's, which
/// was printed (with its backtrace, if asked for) and which the report
/// quotes; each replay printed it again, up to [`SHRINK_BUDGET`] times.
/// The panic hook that does this wraps the one in place at the first
/// failure; other threads' panics, and this one's outside replays, go to
/// that hook as before.
fn replaying<R>(f: impl FnOnce() -> R) -> R {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !REPLAYING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REPLAYING.with(|replaying| replaying.set(self.0));
        }
    }
    let _restore = Restore(REPLAYING.with(|replaying| replaying.replace(true)));
    f()
}

/// A test body run under many schedules of the deterministic test runtime.
///
/// Each run builds a fresh current-thread runtime with a paused clock and
/// runs the body as its main task; `spawn`, `JoinHandle`, `WaitQueue`,
/// timers and signals are the production ones. The policy picks which
/// runnable task runs next and whether a task is preempted at a wait-queue
/// decision point; a run fails on a lost wake-up, a hang, a panic, too many
/// polls or too much virtual time. A failure is shrunk and reported with
/// its seed, its schedule and a one-line replay command.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use waitrt::sync::WaitQueue;
/// use waitrt::test_util::{Check, Policy};
///
/// let stats = Check::new().seeds(32).policy(Policy::Random).run(|| async {
///     let queue = Arc::new(WaitQueue::new());
///     let ready = Arc::new(AtomicBool::new(false));
///     let waiter = {
///         let (queue, ready) = (queue.clone(), ready.clone());
///         waitrt::spawn(async move { queue.wait_event(|| ready.load(Ordering::SeqCst)).await })
///     };
///     ready.store(true, Ordering::SeqCst);
///     queue.wake_up();
///     waiter.await.unwrap().unwrap();
/// });
/// assert_eq!(stats.runs(), 32);
/// ```
#[derive(Debug, Clone)]
pub struct Check {
    seeds: u64,
    first_seed: u64,
    policy: Policy,
    max_polls: u64,
    max_poll_decisions: u64,
    max_time: Duration,
    max_depth: usize,
    spurious: bool,
    weak_memory: bool,
    signals: bool,
    time_jumps: bool,
    oracle: bool,
    late_wake_grace: Duration,
    allow_panics: bool,
    determinism: bool,
    shrink: bool,
    quiet: bool,
    coverage: bool,
    watchdog: Duration,
}

/// What a check covered.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    runs: u64,
    distinct: u64,
    max_decisions: usize,
    polls: u64,
    exhausted: bool,
    elapsed: Duration,
    policy: Option<Policy>,
    points: PointCounts,
}

/// The decision-point kinds in the order the coverage line lists them.
const KINDS: [PointKind; 7] = [
    PointKind::BeforeLink,
    PointKind::AfterLink,
    PointKind::BetweenWakes,
    PointKind::AfterWake,
    PointKind::BeforeFinish,
    PointKind::Acquire,
    PointKind::Switch,
];

impl Stats {
    /// Runs made.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = waitrt::test_util::Check::new().seeds(3).run(|| async {});
    /// assert_eq!(stats.runs(), 3);
    /// ```
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Distinct schedules among them (by their full decision sequence).
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = waitrt::test_util::Check::new().seeds(3).run(|| async {});
    /// assert_eq!(stats.distinct_schedules(), 1); // nothing to choose
    /// ```
    pub fn distinct_schedules(&self) -> u64 {
        self.distinct
    }

    /// Decision points of one kind over all runs: `(hits, sites, sites
    /// that ever led elsewhere)`. A site *led elsewhere* when a run took a
    /// non-default choice there (ran another task nested, or injected a
    /// fault); a site that never did was either never offered a choice
    /// (nothing else was runnable) or never picked one.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::hook::PointKind;
    /// let stats = waitrt::test_util::Check::new().seeds(4).quiet(true).run(|| async {
    ///     let lock = waitrt::sync::Mutex::new(0);
    ///     *lock.lock().await += 1;
    /// });
    /// let (hits, sites, led) = stats.points(PointKind::Acquire);
    /// assert_eq!((hits, sites, led), (4, 1, 0)); // one per run; nothing else to run
    /// ```
    pub fn points(&self, kind: PointKind) -> (u64, usize, usize) {
        let mut out = (0, 0, 0);
        for (&(k, _), c) in &self.points {
            if k == kind {
                out.0 += c[0];
                out.1 += 1;
                out.2 += usize::from(c[2] > 0);
            }
        }
        out
    }

    /// The coverage line: decision points hit per kind (`kind hits/sites,
    /// N led elsewhere`), then the sites offered a choice that never led
    /// elsewhere. Printed by [`Check::run`] with [`Check::coverage`], and
    /// in every failure report.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = waitrt::test_util::Check::new().quiet(true).run(|| async {});
    /// assert!(stats.coverage_line().starts_with("points:"));
    /// ```
    pub fn coverage_line(&self) -> String {
        let mut line = String::from("points:");
        let mut any = false;
        for kind in KINDS {
            let (hits, sites, led) = self.points(kind);
            if hits > 0 {
                any = true;
                line.push_str(&format!(
                    " {} {hits} at {sites} site{}, {led} led elsewhere;",
                    kind.name(),
                    if sites == 1 { "" } else { "s" }
                ));
            }
        }
        if !any {
            line.push_str(" none");
        }
        let mut idle: Vec<String> = self
            .points
            .iter()
            .filter(|(_, c)| c[1] > 0 && c[2] == 0)
            .map(|((k, site), _)| format!("{} at {site}", k.name()))
            .collect();
        idle.sort();
        if !idle.is_empty() {
            line.push_str(&format!(
                " offered a choice but never led elsewhere: {}",
                idle.join(", ")
            ));
        }
        line.trim_end_matches(';').to_string()
    }

    fn add_points(&mut self, points: &PointCounts) {
        for (key, c) in points {
            let mine = self.points.entry(*key).or_default();
            for i in 0..3 {
                mine[i] += c[i];
            }
        }
    }

    /// Whether a [`Policy::Dfs`] check explored its whole bounded tree.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::{Check, Policy};
    /// let stats = Check::new().policy(Policy::Dfs { preemption_bound: 1 }).run(|| async {});
    /// assert!(stats.exhausted());
    /// ```
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "toolkit: {} runs ({:?}{}), {} distinct schedules, up to {} decisions, {} polls, {:?}",
            self.runs,
            self.policy.unwrap_or(Policy::Fifo),
            match (self.exhausted, self.policy) {
                (true, _) => ", exhausted",
                // A bounded search cut short by the seed budget says so:
                // one run of `Dfs` (the default budget) is no search.
                (false, Some(Policy::Dfs { .. })) => {
                    ", NOT exhausted: the seed budget ran out first (raise `.seeds(n)`)"
                }
                (false, _) => "",
            },
            self.distinct,
            self.max_decisions,
            self.polls,
            self.elapsed
        )
    }
}

impl Default for Check {
    fn default() -> Self {
        Check::new()
    }
}

type Body<'a> = &'a dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>;

impl Check {
    /// One seed, [`Policy::Random`], limits of 100,000 polls and one hour
    /// of virtual time, preemption up to two levels deep, the lost-wakeup
    /// oracle and shrinking on, spurious wake-ups on, signals and time
    /// jumps off.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().run(|| async {});
    /// ```
    pub fn new() -> Check {
        Check {
            seeds: 1,
            first_seed: 0,
            policy: Policy::Random,
            max_polls: 100_000,
            max_poll_decisions: 100_000,
            max_time: Duration::from_secs(3600),
            max_depth: 2,
            spurious: true,
            weak_memory: true,
            signals: false,
            time_jumps: false,
            oracle: true,
            late_wake_grace: Duration::ZERO,
            allow_panics: false,
            determinism: false,
            shrink: true,
            quiet: false,
            coverage: false,
            watchdog: Duration::from_secs(10),
        }
    }

    /// Runs `n` seeds (schedules, for DFS); 0 counts as 1, so a check
    /// always runs. `RUNTIME_TEST_SEEDS` overrides (also at least 1; a
    /// value that is not a number panics).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(waitrt::test_util::Check::new().seeds(5).run(|| async {}).runs(), 5);
    /// ```
    pub fn seeds(mut self, n: u64) -> Self {
        self.seeds = n.max(1);
        self
    }

    /// The first seed (default 0); seeds `first..first + n` run.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().first_seed(1000).run(|| async {});
    /// ```
    pub fn first_seed(mut self, seed: u64) -> Self {
        self.first_seed = seed;
        self
    }

    /// The scheduling policy (default [`Policy::Random`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::{Check, Policy};
    /// Check::new().policy(Policy::Fifo).run(|| async {});
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Most polls per run before it fails as a livelock.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::{Check, FailureKind};
    /// let spin = || async { loop { waitrt::task::yield_now().await } };
    /// let failure = Check::new().max_polls(100).try_run(spin).unwrap_err();
    /// assert_eq!(failure.kind(), FailureKind::Livelock);
    /// ```
    pub fn max_polls(mut self, n: u64) -> Self {
        self.max_polls = n;
        self
    }

    /// Most decision points (the toolkit's atomics, wait-queue and lock
    /// operations) within one poll before the run fails as a livelock: a
    /// poll that meets them without end spins (a busy-wait), and nothing
    /// else runs until it returns. Default 100,000.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering::SeqCst;
    /// use waitrt::sync::atomic::AtomicBool;
    /// use waitrt::test_util::{Check, FailureKind};
    /// let spin = || async {
    ///     let never = AtomicBool::new(false);
    ///     while !never.load(SeqCst) {} // no await: nothing else can run
    /// };
    /// let failure = Check::new().max_poll_decisions(1_000).try_run(spin).unwrap_err();
    /// assert_eq!(failure.kind(), FailureKind::Livelock);
    /// ```
    pub fn max_poll_decisions(mut self, n: u64) -> Self {
        self.max_poll_decisions = n;
        self
    }

    /// Most virtual time per run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitrt::test_util::{Check, FailureKind};
    /// let failure = Check::new()
    ///     .max_time(Duration::from_secs(1))
    ///     .try_run(|| async { waitrt::time::sleep(Duration::from_secs(2)).await })
    ///     .unwrap_err();
    /// assert_eq!(failure.kind(), FailureKind::TimeLimit);
    /// ```
    pub fn max_time(mut self, limit: Duration) -> Self {
        self.max_time = limit;
        self
    }

    /// How deep preemptions nest (default 2; 0 disables preemption at
    /// wait-queue decision points).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().max_depth(1).run(|| async {});
    /// ```
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Whether decision points may inject a spurious wake-up (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().spurious_wakeups(false).run(|| async {});
    /// ```
    pub fn spurious_wakeups(mut self, on: bool) -> Self {
        self.spurious = on;
        self
    }

    /// Whether stores through [`waitrt::sync::atomic`](crate::sync::atomic)
    /// with an ordering weaker than `SeqCst` may stay in their task's
    /// *store buffer* for a while (default on): other tasks keep reading
    /// the old value until the storing task passes a full barrier (a
    /// read-modify-write, a `SeqCst` store,
    /// [`fence`](crate::sync::atomic::fence)`(SeqCst)`, a wait-queue or lock
    /// operation, a spawn, a wake or a channel send, the end of its poll).
    /// This is x86's TSO model, each task on a core of its own, and it
    /// finds the weak-memory bug of a Release store followed by a Relaxed
    /// [`waitqueue_active`](crate::sync::WaitQueue::waitqueue_active) check
    /// with no fence between (see the toolkit's guide, class 4). Plain
    /// `std` atomics are not modelled.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().weak_memory(false).run(|| async {});
    /// ```
    pub fn weak_memory(mut self, on: bool) -> Self {
        self.weak_memory = on;
        self
    }

    /// Whether decision points of interruptible and killable waits may
    /// signal their task (default off: a signal changes what the code
    /// under test must handle).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().inject_signals(true).run(|| async {});
    /// ```
    pub fn inject_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Whether decision points may fire the next timer early (as if the
    /// task had been slow; default off).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().time_jumps(true).run(|| async {});
    /// ```
    pub fn time_jumps(mut self, on: bool) -> Self {
        self.time_jumps = on;
        self
    }

    /// Whether the lost-wakeup oracle probes sleepers (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().oracle(false).run(|| async {});
    /// ```
    pub fn oracle(mut self, on: bool) -> Self {
        self.oracle = on;
        self
    }

    /// How long (in virtual time, while timers fire) a sleeper whose
    /// condition holds may wait for its wake before the oracle calls it
    /// lost; default zero: at the first quiescent point, strict as the
    /// kernel's rule (a change, then a wake). Code that means to wake late
    /// (sets the condition, sleeps on a timer, a flush or a batching tick,
    /// then wakes) needs the delay here; the oracle then looks again at
    /// each quiescent point while a timer is due within it, and a wake
    /// that never comes is still reported once it has passed (or at once
    /// with no timer due within it). A grace the run outlasts its limits
    /// in (`max_time`, `max_polls`; `Duration::MAX`, "off" in the
    /// attribute) ends it as a time limit or a livelock instead, whose
    /// report then names the waiter still pending. Note the cost: a wake
    /// that is lost but covered by another within the grace (a periodic
    /// wake on the same queue) passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// waitrt::test_util::Check::new()
    ///     .late_wake_grace(Duration::from_millis(10))
    ///     .run(|| async {});
    /// ```
    pub fn late_wake_grace(mut self, grace: Duration) -> Self {
        self.late_wake_grace = grace;
        self
    }

    /// Whether a panicking task is fine (its `JoinHandle` reports it);
    /// default: a task panic fails the run at once.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().allow_task_panics(true).run(|| async {
    ///     assert!(waitrt::spawn(async { panic!("expected") }).await.unwrap_err().is_panic());
    /// });
    /// ```
    pub fn allow_task_panics(mut self, on: bool) -> Self {
        self.allow_panics = on;
        self
    }

    /// Runs the first seed twice first and fails at the first event where
    /// the two runs differ (`HashMap` order, `std::time`, state leaking
    /// between runs).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().check_determinism(true).run(|| async {});
    /// ```
    pub fn check_determinism(mut self, on: bool) -> Self {
        self.determinism = on;
        self
    }

    /// Whether a failure is shrunk before it is reported (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().shrink(false).run(|| async {});
    /// ```
    pub fn shrink(mut self, on: bool) -> Self {
        self.shrink = on;
        self
    }

    /// Whether [`run`](Self::run) prints its coverage line (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().quiet(true).run(|| async {});
    /// ```
    pub fn quiet(mut self, on: bool) -> Self {
        self.quiet = on;
        self
    }

    /// Whether [`run`](Self::run) also prints the coverage of decision
    /// points ([`Stats::coverage_line`]; default off, always in a failure
    /// report).
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().coverage(true).run(|| async {});
    /// ```
    pub fn coverage(mut self, on: bool) -> Self {
        self.coverage = on;
        self
    }

    /// The real-time watchdog's limit (default 10 s; `Duration::MAX`
    /// turns it off): how long one poll may run, and how long a run waits
    /// for work outside the check (blocking jobs, tasks spawned from other
    /// threads) when nothing else can run (10 s with the watchdog off).
    /// Time the process spends stopped (a debugger's breakpoint, `^Z`) is
    /// not counted.
    ///
    /// # Panics
    ///
    /// On a zero limit.
    ///
    /// A check runs every task on the test's thread, so a poll that
    /// blocks that thread stops the whole check: a `std::sync::Mutex`
    /// held across a decision point and taken again by a task run nested
    /// there, a spin on a `std` atomic (the toolkit's own atomics are
    /// decision points, bounded by
    /// [`max_poll_decisions`](Self::max_poll_decisions)), a blocking call
    /// that waits for the check's own tasks. When a poll has met no
    /// decision point for the limit, a watchdog thread prints a report to
    /// stderr (past the test harness's capture) naming the task stuck in
    /// its poll (id, spawn site, future type), the tasks it runs nested
    /// in, its last decision point, the step and the schedule so far with
    /// its replay command, and **ends the process with status 101**: the
    /// stuck poll cannot be unwound from another thread, and the check
    /// cannot return while its caller is the thread that is stuck, so the
    /// alternative is a test binary that hangs with no word. Other tests
    /// of the binary running at that moment end with it. Turn it off (or
    /// raise it) to step through a check in a debugger.
    ///
    /// Outside work still unfinished after the limit fails the run as
    /// [`FailureKind::External`], naming the tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// waitrt::test_util::Check::new().watchdog(Duration::from_secs(60)).run(|| async {});
    /// waitrt::test_util::Check::new().watchdog(Duration::MAX).run(|| async {}); // off
    /// ```
    pub fn watchdog(mut self, limit: Duration) -> Self {
        assert!(
            !limit.is_zero(),
            "Check::watchdog(0) would end any poll at once: give a limit, or Duration::MAX for none"
        );
        self.watchdog = limit;
        self
    }

    /// Runs the check; panics with the failure report if a run fails.
    /// Prints the coverage (runs, distinct schedules) on success.
    ///
    /// # Panics
    ///
    /// When a run fails: the message is the full [`Failure`] report.
    ///
    /// # Examples
    ///
    /// ```
    /// waitrt::test_util::Check::new().seeds(4).run(|| async {
    ///     waitrt::time::sleep(std::time::Duration::from_secs(60)).await; // instant
    /// });
    /// ```
    #[track_caller]
    pub fn run<F, Fut>(self, body: F) -> Stats
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let (quiet, coverage) = (self.quiet, self.coverage);
        match self.try_run(body) {
            Ok(stats) => {
                if !quiet {
                    println!("{stats}");
                }
                if coverage {
                    println!("  {}", stats.coverage_line());
                }
                stats
            }
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Runs the check and returns the failure instead of panicking.
    ///
    /// # Errors
    ///
    /// The first failing run's [`Failure`], shrunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::test_util::{Check, FailureKind};
    /// let failure = Check::new().try_run(|| async {
    ///     waitrt::spawn(std::future::pending::<()>()).await.unwrap();
    /// });
    /// assert_eq!(failure.unwrap_err().kind(), FailureKind::Hang);
    /// ```
    #[track_caller]
    pub fn try_run<F, Fut>(self, body: F) -> Result<Stats, Failure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let caller = Location::caller();
        let boxed = move || -> Pin<Box<dyn Future<Output = ()>>> { Box::pin(body()) };
        self.run_boxed(&boxed, caller)
    }

    fn config(&self, seed: u64, prefix: Vec<u32>, steps_hint: u64) -> RunConfig {
        RunConfig {
            policy: self.policy,
            seed: mix(seed),
            prefix,
            steps_hint,
            ..self.replay_config(Vec::new())
        }
    }

    /// A replay: the schedule's choices, then every default (FIFO) choice.
    fn replay_config(&self, prefix: Vec<u32>) -> RunConfig {
        RunConfig {
            policy: Policy::Fifo,
            seed: 0,
            prefix,
            steps_hint: 0,
            max_polls: self.max_polls,
            max_poll_decisions: self.max_poll_decisions,
            max_time: self.max_time,
            max_depth: self.max_depth,
            spurious: self.spurious,
            weak_memory: self.weak_memory,
            signals: self.signals,
            time_jumps: self.time_jumps,
            oracle: self.oracle,
            late_wake_grace: self.late_wake_grace,
            allow_panics: self.allow_panics,
            watchdog: self.watchdog,
        }
    }

    fn run_boxed(self, body: Body<'_>, caller: &Location<'_>) -> Result<Stats, Failure> {
        let start = Instant::now();
        // Declared first, dropped last: every run, shrinking included, is
        // watched; the thread is stopped and joined on the way out.
        let watchdog = Watchdog::start(self.watchdog, caller);
        let _active = watchdog::activate(watchdog.as_ref());
        if let Some(replay) = env(REPLAY_VAR) {
            let schedule = read_replay(&replay).unwrap_or_else(|e| panic!("{REPLAY_VAR}: {e}"));
            let outcome = sim::run(self.replay_config(schedule.prefix()), false, body);
            let stats = self.stats(1, 1, &outcome, start);
            return match outcome.failure {
                None => Ok(stats),
                Some(_) => Err(self.report(None, outcome, body, caller, &stats)),
            };
        }
        let mut seeds = self.first_seed..self.first_seed + self.seeds;
        if let Some(n) = env(SEEDS_VAR) {
            // As `seeds(n)`: at least one. A value that is not a number is
            // an error, not the default: a script that meant to widen the
            // search must not pass having run what it did not ask for.
            let n = parse_seed(&n)
                .unwrap_or_else(|| panic!("{SEEDS_VAR}: {n:?} is not a number of seeds"));
            seeds = self.first_seed..self.first_seed + n.max(1);
        }
        if let Some(seed) = env(SEED_VAR) {
            let seed = parse_seed(&seed).unwrap_or_else(|| panic!("{SEED_VAR}: not a number"));
            seeds = seed..seed + 1;
        }
        if self.determinism {
            self.check_determinism_of(seeds.start, body)?;
        }
        let mut distinct = HashSet::new();
        let mut stats = Stats {
            policy: Some(self.policy),
            ..Stats::default()
        };
        let mut steps_hint = 50;
        let mut dfs_prefix = Some(Vec::new());
        for seed in seeds {
            let prefix = match self.policy {
                Policy::Dfs { .. } => match dfs_prefix.take() {
                    Some(prefix) => prefix,
                    None => break,
                },
                _ => Vec::new(),
            };
            let outcome = sim::run(self.config(seed, prefix, steps_hint), false, body);
            stats.runs += 1;
            stats.polls += outcome.polls;
            stats.max_decisions = stats.max_decisions.max(outcome.record.len());
            steps_hint = steps_hint.max(outcome.record.len() as u64);
            distinct.insert(hash_of(&outcome.record));
            stats.add_points(&outcome.points);
            if outcome.failure.is_some() {
                let seed = match self.policy {
                    Policy::Dfs { .. } => None,
                    _ => Some(seed),
                };
                stats.distinct = distinct.len() as u64;
                return Err(self.report(seed, outcome, body, caller, &stats));
            }
            if let Policy::Dfs { preemption_bound } = self.policy {
                dfs_prefix = dfs_next(&outcome.record, preemption_bound);
            }
        }
        if let Policy::Dfs { .. } = self.policy {
            stats.exhausted = dfs_prefix.is_none();
        }
        stats.distinct = distinct.len() as u64;
        stats.elapsed = start.elapsed();
        Ok(stats)
    }

    fn stats(&self, runs: u64, distinct: u64, outcome: &RunOutcome, start: Instant) -> Stats {
        Stats {
            runs,
            distinct,
            max_decisions: outcome.record.len(),
            polls: outcome.polls,
            exhausted: false,
            elapsed: start.elapsed(),
            policy: Some(self.policy),
            points: outcome.points.clone(),
        }
    }

    /// Runs `seed` twice with tracing and compares.
    fn check_determinism_of(&self, seed: u64, body: Body<'_>) -> Result<(), Failure> {
        let a = sim::run(self.config(seed, Vec::new(), 50), true, body);
        let b = sim::run(self.config(seed, Vec::new(), 50), true, body);
        let diverge = a
            .trace
            .iter()
            .zip(&b.trace)
            .position(|(x, y)| x != y)
            .or_else(|| (a.trace.len() != b.trace.len()).then(|| a.trace.len().min(b.trace.len())));
        let Some(at) = diverge else {
            return Ok(());
        };
        let show = |t: &[String]| t.get(at).cloned().unwrap_or_else(|| "(end of run)".into());
        let report = format!(
            "nondeterminism: seed {seed} ran twice and diverged at event {at}:\n  first run:  {}\n  second run: {}\n  \
             (common causes: HashMap iteration order, std::time::Instant, thread-locals or statics \
             kept between runs, real threads)",
            show(&a.trace),
            show(&b.trace)
        );
        Err(Failure {
            kind: FailureKind::Nondeterminism,
            report,
            schedule: Schedule::from_record(&a.record),
            seed: Some(seed),
        })
    }

    /// Shrinks a failing run and builds its report; `caller` is where the
    /// check was run from (it tells the replay command the test's target).
    fn report(
        &self,
        seed: Option<u64>,
        outcome: RunOutcome,
        body: Body<'_>,
        caller: &Location<'_>,
        stats: &Stats,
    ) -> Failure {
        let first = outcome.failure.clone().expect("a failing run");
        let original = Schedule::from_record(&outcome.record);
        let (mut schedule, mut failure, tries) = if self.shrink {
            replaying(|| self.shrink_schedule(original.clone(), first.clone(), body))
        } else {
            (original.clone(), first.clone(), 0)
        };
        // A schedule fixes every choice the toolkit makes; a choice the
        // code makes on its own (`select!`'s random branch order, a random
        // number, the wall clock) it does not, and then the replay line
        // may pass. Replay the schedule found a few times and say so, so
        // that nobody trusts a replay that does not reproduce; if the
        // shrunk one is less faithful than the original, give the original.
        let mut reproduced = self.reproductions(&schedule, failure.kind, body);
        let mut unshrunk_kept = false;
        if reproduced < CONFIRM_REPLAYS && schedule != original {
            let unshrunk = self.reproductions(&original, failure.kind, body);
            if unshrunk > reproduced {
                (schedule, failure, reproduced) = (original.clone(), first, unshrunk);
                unshrunk_kept = true;
            }
        }
        let mut report = String::new();
        report.push_str(&failure.message);
        report.push_str("\n\n");
        match seed {
            Some(seed) => report.push_str(&format!("seed: {seed} (policy {:?})", self.policy)),
            None => report.push_str(&format!("policy {:?}", self.policy)),
        }
        report.push_str(&format!(", virtual time {:?}\n", failure.time));
        // A long schedule (a livelock, or one shrinking could not cut) goes
        // to a file: the report stays readable and the replay exact.
        let (shown, replay_value) = match long_schedule_file(&schedule) {
            Some(path) => (
                format!(
                    "{} ({}, in full in {})",
                    head_of(&schedule),
                    schedule.len(),
                    path.display()
                ),
                format!("@{}", path.display()),
            ),
            None => (schedule.to_string(), schedule.to_string()),
        };
        let how = match unshrunk_kept {
            false => format!("shrunk from {} in {tries} replays", original.len()),
            true => {
                format!("not shrunk: its shrunk form, {tries} replays in, came back less often")
            }
        };
        report.push_str(&format!(
            "schedule: {shown} ({} non-default decisions; {how})\n",
            schedule.len(),
        ));
        // The faults this schedule injects (a schedule entry is only a
        // choice number: which choices were a signal or a time jump, into
        // which task, is not in it).
        if !failure.faults.is_empty() {
            report.push_str("injected faults (steps are the schedule's indices):\n");
            for line in &failure.faults {
                report.push_str(&format!("  {line}\n"));
            }
        }
        let replay = replay_command(&replay_value, caller.file());
        report.push_str(&format!("replay: {replay}"));
        if reproduced < CONFIRM_REPLAYS {
            report.push_str(&format!(
                "\nwarning: this schedule reproduced the failure in {reproduced} of {CONFIRM_REPLAYS} \
                 replays: the code under check makes a choice the toolkit does not control, so a \
                 replay (or the seed) may pass. The usual one is `select!`'s random branch order \
                 (tokio's and futures'): write `biased;` (tokio) or use `select_biased!` (futures) \
                 in code under check; others are random numbers, the wall clock, a HashMap's \
                 order, real threads (`check_determinism(true)` shows where two runs part)."
            ));
        }
        if let Some(seed) = seed {
            report.push_str(&format!("\n   or: {SEED_VAR}={seed} (the unshrunk run)"));
        }
        report.push_str(&format!(
            "\ncoverage: {} runs, {} distinct schedules; {}",
            stats.runs,
            stats.distinct,
            stats.coverage_line()
        ));
        Failure {
            kind: failure.kind,
            report,
            schedule,
            seed,
        }
    }

    /// How many of [`CONFIRM_REPLAYS`] replays of `schedule` fail with
    /// `kind`.
    fn reproductions(&self, schedule: &Schedule, kind: FailureKind, body: Body<'_>) -> usize {
        replaying(|| {
            (0..CONFIRM_REPLAYS)
                .filter(|_| {
                    let outcome = sim::run(self.replay_config(schedule.prefix()), false, body);
                    matches!(outcome.failure, Some(f) if f.kind == kind)
                })
                .count()
        })
    }

    /// Delta debugging: drops chunks of non-default decisions, then single
    /// ones, then lowers choices to 1, while the failure (same kind) persists.
    fn shrink_schedule(
        &self,
        mut best: Schedule,
        mut failure: super::report::RunFailure,
        body: Body<'_>,
    ) -> (Schedule, super::report::RunFailure, usize) {
        let mut tries = 0;
        let kind = failure.kind;
        let attempt = |candidate: Schedule, tries: &mut usize| {
            *tries += 1;
            let outcome = sim::run(self.replay_config(candidate.prefix()), false, body);
            match outcome.failure {
                Some(f) if f.kind == kind => Some((Schedule::from_record(&outcome.record), f)),
                _ => None,
            }
        };
        // The all-default schedule first: many failures need no choice at all.
        if !best.is_empty() {
            if let Some((s, f)) = attempt(Schedule::default(), &mut tries) {
                return (s, f, tries);
            }
        }
        let mut chunk = best.len().div_ceil(2).max(1);
        while tries < SHRINK_BUDGET && !best.is_empty() {
            let mut progressed = false;
            let mut start = 0;
            while start < best.len() && tries < SHRINK_BUDGET {
                let mut entries = best.entries().to_vec();
                let end = (start + chunk).min(entries.len());
                entries.drain(start..end);
                match attempt(Schedule::with_entries(entries), &mut tries) {
                    Some((s, f)) if s.len() < best.len() => {
                        best = s;
                        failure = f;
                        progressed = true;
                    }
                    _ => start += chunk,
                }
            }
            if !progressed {
                if chunk == 1 {
                    break;
                }
                chunk = chunk.div_ceil(2);
            }
        }
        // Lower each remaining choice to 1 where that still fails.
        for i in 0..best.len() {
            if tries >= SHRINK_BUDGET {
                break;
            }
            let mut entries = best.entries().to_vec();
            if i >= entries.len() || entries[i].1 <= 1 {
                continue;
            }
            entries[i].1 = 1;
            if let Some((s, f)) = attempt(Schedule::with_entries(entries), &mut tries) {
                if s.len() <= best.len() {
                    best = s;
                    failure = f;
                }
            }
        }
        (best, failure, tries)
    }
}

/// Schedules longer than this many entries are written to a file rather
/// than into the report (see [`long_schedule_file`]).
const SHOWN_ENTRIES: usize = 64;

/// Writes `schedule` to a file of its own in the temporary directory if
/// it is too long to show, returning the path; `None` if it is short (or
/// the file cannot be written: the report then shows it whole).
fn long_schedule_file(schedule: &Schedule) -> Option<std::path::PathBuf> {
    static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if schedule.len() <= SHOWN_ENTRIES {
        return None;
    }
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("waitrt-replay-{}-{n}.txt", std::process::id()));
    std::fs::write(&path, schedule.to_string()).ok()?;
    Some(path)
}

/// The first few entries of a long schedule, then `…`.
fn head_of(schedule: &Schedule) -> String {
    let head = Schedule::with_entries(schedule.entries()[..8.min(schedule.len())].to_vec());
    format!("{head},…")
}

/// The schedule a replay variable names: the schedule string itself, or
/// `@path` for a file holding it (what a report gives for a long one).
fn read_replay(value: &str) -> Result<Schedule, String> {
    let text = match value.trim().strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the schedule file {path}: {e}"))?,
        None => value.to_string(),
    };
    text.parse().map_err(|e| format!("{e}"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Spreads consecutive seeds apart.
fn mix(seed: u64) -> u64 {
    let mut rng = super::rng::Rng::new(seed);
    rng.next_u64()
}

fn hash_of(record: &[(u32, u32)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    record.hash(&mut h);
    h.finish()
}
