//! One run: our current-thread scheduler, driven by the toolkit's loop
//! instead of `block_on`'s, with the paused clock and a [`Chooser`].
//!
//! # Borrowing rule
//!
//! The state lives in `RefCell`s that are borrowed only between polls:
//! every poll of a task (at top level, nested at a decision point, or in a
//! probe) runs with no borrow held, because the task may reach a decision
//! point, wake a queue or spawn, and all of those come back here.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use waitq::hook::{
    self, Handed, Held, HeldShared, Hook, Point, PointKind, QueueId, Sleeper, Wake as WakeEvent,
};
use waitq::TaskState;

use super::report::{
    queue_name, sleeper_line, wake_line, FailureKind, RunFailure, TaskName, WakeRecord,
};
use super::schedule::{Ask, Chooser, Policy};
use crate::context;
use crate::scheduler::{self, current_thread, Scheduler};
use crate::task::raw::{PollOutcome, TaskRef, BUDGET};

mod decide;
pub(crate) mod memory;
mod oracle;

/// Settings of one run.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    pub(crate) policy: Policy,
    pub(crate) seed: u64,
    pub(crate) prefix: Vec<u32>,
    pub(crate) steps_hint: u64,
    pub(crate) max_polls: u64,
    pub(crate) max_poll_decisions: u64,
    pub(crate) max_time: Duration,
    pub(crate) max_depth: usize,
    pub(crate) spurious: bool,
    pub(crate) weak_memory: bool,
    pub(crate) signals: bool,
    pub(crate) time_jumps: bool,
    pub(crate) oracle: bool,
    /// See `Check::late_wake_grace`.
    pub(crate) late_wake_grace: Duration,
    pub(crate) allow_panics: bool,
    /// The real-time limit of one poll and of a wait for outside work
    /// (`Check::watchdog`).
    pub(crate) watchdog: Duration,
}

/// What one run produced.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    pub(crate) record: Vec<(u32, u32)>,
    pub(crate) failure: Option<RunFailure>,
    pub(crate) trace: Vec<String>,
    pub(crate) polls: u64,
    pub(crate) points: PointCounts,
}

/// Decision points of one run, by kind and site: `[hits, hits with a
/// choice to make, hits where a non-default choice was taken]`.
pub(crate) type PointCounts = HashMap<(PointKind, &'static Location<'static>), [u64; 3]>;

/// A fault the toolkit may inject at a decision point.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Spurious,
    Signal(TaskState),
    TimeJump,
}

struct TaskInfo {
    task: Option<TaskRef>,
    name: TaskName,
    poll_start: u64,
    /// Decision points met in the task's current poll (a bound on them
    /// ends a poll that spins, see `decide`).
    poll_decisions: u64,
    asleep_since: Duration,
    /// Per queue: (sequence number of the link, of the start of that poll).
    links: Vec<(QueueId, u64, u64)>,
}

#[derive(Default)]
struct State {
    tasks: Vec<TaskInfo>,
    by_id: BTreeMap<u64, u32>,
    runnable: Vec<u32>,
    running: Vec<u32>,
    main_done: bool,
    polls: u64,
    seq: u64,
    failure: Option<RunFailure>,
    wakes: BTreeMap<QueueId, WakeRecord>,
    probing: Option<u32>,
    probed: Vec<(u32, Sleeper)>,
    /// The lost-wake-up suspect the oracle is giving time (a timer is due
    /// within `Check::late_wake_grace`): (task slot, queue, wait site), and
    /// the virtual time it was first seen (see `oracle`).
    late: Option<((u32, QueueId, &'static Location<'static>), Duration)>,
    idle_waiters: Vec<Waker>,
    idle_epoch: u64,
    in_driver: bool,
    external_wait: Duration,
    trace: Vec<String>,
    /// The holder (task id) of each lock built on a queue (`Hook::held`).
    holders: BTreeMap<QueueId, u64>,
    /// The task slot a hand-off queue last handed what it waited for
    /// (`Hook::handed`), until a guard is made or the lock released: a
    /// holder the guards have not named yet (the futurelock's, for good).
    granted: BTreeMap<QueueId, u32>,
    /// The shared holders of each lock built on a queue (an `RwLock`'s
    /// readers, `Hook::held_shared`): task id → holds.
    shared: BTreeMap<QueueId, BTreeMap<u64, usize>>,
    /// Join queues: no decision point after their wakes (runtime internals).
    join_queues: BTreeSet<QueueId>,
    /// The faults injected so far, as the report lists them.
    injected: Vec<String>,
    /// The tasks' store buffers (`Check::weak_memory`).
    weak: memory::WeakMemory,
    points: PointCounts,
}

struct MainWake {
    woken: AtomicBool,
    shared: Arc<current_thread::Shared>,
}

impl Wake for MainWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        waitq::hook::barrier(); // as a task's wake
        self.woken.store(true, Release);
        self.shared.unpark();
    }
}

type MainFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The simulation of one run (installed as the thread's waitq hook).
pub(crate) struct Sim {
    cfg: RunConfig,
    shared: Arc<current_thread::Shared>,
    main: RefCell<Option<MainFuture>>,
    main_wake: Arc<MainWake>,
    main_waker: Waker,
    st: RefCell<State>,
    chooser: RefCell<Chooser>,
    names: RefCell<BTreeMap<QueueId, String>>,
    tracing: Cell<bool>,
    /// The message of the last task panic, for the failure report.
    last_panic: RefCell<Option<String>>,
    /// The check's real-time watchdog, told of every poll and decision.
    watch: Option<Arc<super::watchdog::Watch>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Sim>>> = const { RefCell::new(None) };
}

/// The run on this thread, if any.
pub(crate) fn current() -> Option<Rc<Sim>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

struct CurrentGuard(Option<Rc<Sim>>);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

/// Runs `body` once under `cfg`.
pub(crate) fn run(cfg: RunConfig, trace: bool, body: &dyn Fn() -> MainFuture) -> RunOutcome {
    let rt = crate::Builder::new_current_thread()
        .start_paused(true)
        .drop_timeout(Duration::from_secs(1))
        .build()
        .expect("the test runtime builds");
    let Scheduler::CurrentThread(shared) = rt.handle().scheduler.clone() else {
        unreachable!("a current-thread builder builds a current-thread scheduler");
    };
    let main_wake = Arc::new(MainWake {
        woken: AtomicBool::new(false),
        shared: shared.clone(),
    });
    let chooser = Chooser::new(cfg.policy, cfg.seed, cfg.prefix.clone(), cfg.steps_hint);
    let sim = Rc::new(Sim {
        cfg,
        shared: shared.clone(),
        main: RefCell::new(None),
        main_waker: Waker::from(main_wake.clone()),
        main_wake,
        st: RefCell::new(State::default()),
        chooser: RefCell::new(chooser),
        names: RefCell::new(BTreeMap::new()),
        tracing: Cell::new(trace),
        last_panic: RefCell::new(None),
        watch: super::watchdog::active(),
    });
    if let Some(watch) = &sim.watch {
        watch.run_started();
    }
    sim.st.borrow_mut().tasks.push(TaskInfo {
        task: None,
        name: TaskName {
            slot: 0,
            id: None,
            site: None,
            type_name: "",
        },
        poll_start: 0,
        poll_decisions: 0,
        asleep_since: Duration::ZERO,
        links: Vec::new(),
    });
    // A lock the test body holds names it (slot 0) as the holder.
    sim.st.borrow_mut().by_id.insert(hook::NOT_A_TASK, 0);
    {
        let scheduler = Scheduler::CurrentThread(shared.clone());
        let _enter = context::enter(scheduler);
        let _driving = context::enter_driving();
        let _core = shared.enter_core().expect("a fresh runtime's core is free");
        let _current = CurrentGuard(CURRENT.with(|c| c.borrow_mut().replace(sim.clone())));
        let installed = hook::install(sim.clone());
        *sim.main.borrow_mut() = Some(body());
        sim.st.borrow_mut().runnable.push(0);
        sim.run_loop();
        if sim.st.borrow().failure.is_none() && sim.st.borrow().main_done {
            // Tasks still asleep with a true condition lost their wake-up,
            // whether or not the test body waited for them.
            sim.collect();
            sim.oracle();
        }
        drop(installed);
        let main = sim.main.borrow_mut().take();
        drop(catch_unwind(AssertUnwindSafe(move || drop(main))));
    }
    drop(rt);
    let record = std::mem::take(&mut sim.chooser.borrow_mut().record);
    let mut st = sim.st.borrow_mut();
    let outcome = RunOutcome {
        record,
        failure: st.failure.take(),
        trace: std::mem::take(&mut st.trace),
        polls: st.polls,
        points: std::mem::take(&mut st.points),
    };
    drop(st);
    outcome
}

impl Sim {
    fn now(&self) -> Duration {
        let driver = self.driver();
        driver
            .clock()
            .now()
            .saturating_duration_since(driver.clock().origin())
    }

    fn driver(&self) -> &crate::time::Driver {
        self.shared
            .common
            .time
            .as_ref()
            .expect("the test runtime has timers")
    }

    fn trace(&self, event: impl FnOnce() -> String) {
        if self.tracing.get() {
            let line = event();
            self.st.borrow_mut().trace.push(line);
        }
    }

    fn fail(&self, kind: FailureKind, mut message: String) {
        let time = self.now();
        // A run that hits its limits while the oracle gives a suspect time
        // (`late_wake_grace` longer than the run can last) names it: the
        // limit is then not the news.
        if matches!(kind, FailureKind::Livelock | FailureKind::TimeLimit) {
            let late = self.st.borrow().late;
            if let Some(((slot, queue, site), since)) = late {
                let queue = queue_name(queue, self.names.borrow().get(&queue).map(String::as_str));
                let name = self.st.borrow().tasks[slot as usize].name.to_string();
                let _ = write!(
                    message,
                    "\n  and a lost wake-up was pending under `late_wake_grace`: {name} sleeps on \
                     {queue} at {site} with its condition true since t={since:?}"
                );
            }
        }
        let mut st = self.st.borrow_mut();
        if st.failure.is_none() {
            let faults = st.injected.clone();
            st.failure = Some(RunFailure {
                kind,
                message,
                time,
                faults,
            });
        }
    }

    fn failed(&self) -> bool {
        self.st.borrow().failure.is_some()
    }

    /// Names a queue in this run's reports.
    pub(crate) fn name_queue(&self, queue: QueueId, name: String) {
        self.names.borrow_mut().insert(queue, name);
    }

    /// Names a queue by the name an event carries, unless it has one
    /// already (a name given by `name_queue` or an earlier event stays).
    pub(crate) fn name_queue_once(&self, queue: QueueId, name: Option<&str>) {
        if let Some(name) = name {
            self.names
                .borrow_mut()
                .entry(queue)
                .or_insert_with(|| name.to_string());
        }
    }

    /// A future of `until_idle` registers here; returns the epoch to wait past.
    pub(crate) fn idle_waiter(&self, waker: &Waker) -> u64 {
        let mut st = self.st.borrow_mut();
        st.idle_waiters.push(waker.clone());
        st.idle_epoch
    }

    pub(crate) fn idle_epoch(&self) -> u64 {
        self.st.borrow().idle_epoch
    }

    /// A task spawned on this thread.
    pub(crate) fn on_spawn(
        &self,
        task: &TaskRef,
        site: &'static Location<'static>,
        name: &'static str,
    ) {
        let mut st = self.st.borrow_mut();
        let slot = Self::slot_of(&mut st, task);
        let info = &mut st.tasks[slot as usize];
        info.name.site = Some(site);
        info.name.type_name = name;
        drop(st);
        let join = QueueId::of_rcuwait(task.header().join_queue());
        self.st.borrow_mut().join_queues.insert(join);
        self.name_queue(join, format!("join queue of task {slot}"));
    }

    fn slot_of(st: &mut State, task: &TaskRef) -> u32 {
        let id = task.header().id.0;
        if let Some(&slot) = st.by_id.get(&id) {
            return slot;
        }
        let slot = st.tasks.len() as u32;
        st.tasks.push(TaskInfo {
            task: Some(task.clone()),
            name: TaskName {
                slot,
                id: Some(id),
                site: None,
                type_name: "",
            },
            poll_start: 0,
            poll_decisions: 0,
            asleep_since: Duration::ZERO,
            links: Vec::new(),
        });
        st.by_id.insert(id, slot);
        slot
    }

    /// Moves every woken task (and the test body) onto the runnable list.
    fn collect(&self) {
        let mut ready = Vec::new();
        self.shared.drain_ready(&mut ready);
        let mut st = self.st.borrow_mut();
        for task in ready {
            let slot = Self::slot_of(&mut st, &task);
            if !st.runnable.contains(&slot) {
                st.runnable.push(slot);
            }
        }
        if !st.main_done
            && !st.running.contains(&0)
            && !st.runnable.contains(&0)
            && self.main_wake.woken.swap(false, AcqRel)
        {
            st.runnable.push(0);
        }
    }

    fn run_loop(&self) {
        loop {
            if self.failed() || self.st.borrow().main_done {
                return;
            }
            self.collect();
            let runnable = self.st.borrow().runnable.clone();
            if runnable.is_empty() {
                if !self.quiescent() {
                    return;
                }
                continue;
            }
            let choice = self.choose(Ask::Pick { slots: &runnable }, runnable.len());
            let slot = self.st.borrow_mut().runnable.remove(choice);
            self.trace(|| format!("run {slot}"));
            self.poll_slot(slot);
        }
    }

    /// One poll of `slot` (top level or nested).
    fn poll_slot(&self, slot: u32) {
        let task = {
            let mut st = self.st.borrow_mut();
            st.polls += 1;
            if st.polls > self.cfg.max_polls {
                drop(st);
                self.fail(
                    FailureKind::Livelock,
                    format!(
                        "livelock: more than {} polls without finishing (raise `max_polls` if the test is just big)",
                        self.cfg.max_polls
                    ),
                );
                return;
            }
            st.seq += 1;
            let seq = st.seq;
            st.tasks[slot as usize].poll_start = seq;
            st.tasks[slot as usize].poll_decisions = 0;
            st.running.push(slot);
            st.tasks[slot as usize].task.clone()
        };
        self.watched(slot, || match task {
            None => self.poll_main(),
            Some(task) => self.poll_task(slot, task),
        });
        self.st.borrow_mut().running.pop();
        self.weak_poll_end(slot);
    }

    /// The chooser's answer to `ask` among `n` options; the watchdog
    /// hears of a non-default one (for the schedule its report shows).
    fn choose(&self, ask: Ask<'_>, n: usize) -> usize {
        let mut chooser = self.chooser.borrow_mut();
        let choice = chooser.choose(ask, n);
        if choice != 0 {
            if let Some(watch) = &self.watch {
                watch.chose(chooser.record.len() - 1, choice as u32);
            }
        }
        choice
    }

    /// Runs `poll`, a poll of `slot`, with the watchdog told when it
    /// starts and ends (see `watchdog`).
    fn watched(&self, slot: u32, poll: impl FnOnce()) {
        let Some(watch) = &self.watch else {
            return poll();
        };
        watch.poll_started(self.st.borrow().tasks[slot as usize].name.clone());
        /// Ends the poll for the watchdog even if it unwinds.
        struct Ended<'a>(&'a super::watchdog::Watch);
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                self.0.poll_ended();
            }
        }
        let _ended = Ended(watch);
        poll();
    }

    fn poll_main(&self) {
        let Some(mut main) = self.main.borrow_mut().take() else {
            return;
        };
        let mut cx = Context::from_waker(&self.main_waker);
        let polled = catch_unwind(AssertUnwindSafe(|| {
            waitq::coop::with_budget(BUDGET, || main.as_mut().poll(&mut cx)).0
        }));
        match polled {
            Ok(Poll::Ready(())) => {
                self.st.borrow_mut().main_done = true;
                self.trace(|| "main done".into());
            }
            Ok(Poll::Pending) => {
                let probing = hook::is_probing();
                *self.main.borrow_mut() = Some(main);
                if !probing
                    && self
                        .main_wake
                        .woken
                        .load(std::sync::atomic::Ordering::Acquire)
                {
                    self.chooser.borrow_mut().yielded(0);
                }
                let now = self.now();
                self.st.borrow_mut().tasks[0].asleep_since = now;
            }
            Err(payload) => {
                let msg = panic_message(&*payload);
                self.st.borrow_mut().main_done = true;
                self.fail(FailureKind::Panic, format!("the test body panicked: {msg}"));
            }
        }
    }

    fn poll_task(&self, slot: u32, task: TaskRef) {
        let mut outcome = None;
        let again = scheduler::run_outcome(task, None, &mut outcome);
        if let Some(task) = again {
            scheduler::schedule_via_own_handle(task, true);
        }
        self.trace(|| format!("polled {slot}: {outcome:?}"));
        match outcome {
            Some(PollOutcome::Panicked) if !self.cfg.allow_panics => {
                let name = self.st.borrow().tasks[slot as usize].name.clone();
                let message = match self.last_panic.borrow_mut().take() {
                    Some(message) => format!("{name} panicked: {message}"),
                    None => format!("{name} panicked (its message is printed above)"),
                };
                self.fail(FailureKind::Panic, message);
            }
            Some(PollOutcome::Requeue | PollOutcome::Yielded) if !hook::is_probing() => {
                self.chooser.borrow_mut().yielded(slot);
            }
            Some(PollOutcome::Idle) => {
                let now = self.now();
                self.st.borrow_mut().tasks[slot as usize].asleep_since = now;
            }
            _ => {}
        }
    }

    /// Nothing is runnable. Returns `false` when the run must stop.
    fn quiescent(&self) -> bool {
        // 1. Outside work in flight (blocking jobs, spawns from other
        //    threads): wait for it in real time, never advance the clock.
        let alive = self.shared.common.owned.alive();
        let known = {
            let st = self.st.borrow();
            st.tasks
                .iter()
                .filter_map(|t| t.task.as_ref())
                .filter(|t| !t.header().state.load().is_complete())
                .count()
        };
        if alive > known {
            let step = Duration::from_millis(1);
            self.shared.park_timeout(step);
            let waited = {
                let mut st = self.st.borrow_mut();
                st.external_wait += step;
                st.external_wait
            };
            // The watchdog's limit, or 10 s with the watchdog off (a
            // check waiting on outside work must still end).
            let limit = match self.cfg.watchdog {
                Duration::MAX => Duration::from_secs(10),
                limit => limit,
            };
            if waited > limit {
                let message = self.external_message(alive - known);
                self.fail(FailureKind::External, message);
                return false;
            }
            return true;
        }
        // 2. The lost-wakeup oracle.
        if self.cfg.oracle {
            self.oracle();
            if self.failed() {
                return false;
            }
            self.collect();
            if !self.st.borrow().runnable.is_empty() {
                return true;
            }
        }
        // 3. `until_idle` / `advance` waiters.
        let waiters = {
            let mut st = self.st.borrow_mut();
            st.idle_epoch += 1;
            std::mem::take(&mut st.idle_waiters)
        };
        if !waiters.is_empty() {
            waiters.into_iter().for_each(Waker::wake);
            return true;
        }
        // 4. Time: jump to the next timer.
        if let Some(next) = self.driver().next_deadline() {
            let at = next.saturating_duration_since(self.driver().clock().origin());
            if at > self.cfg.max_time {
                self.fail(
                    FailureKind::TimeLimit,
                    format!(
                        "the virtual clock would pass the limit of {:?} (next timer at {at:?})",
                        self.cfg.max_time
                    ),
                );
                return false;
            }
            self.trace(|| format!("time {}", at.as_nanos()));
            self.fire_until(next);
            return true;
        }
        // 5. A hang.
        self.hang();
        false
    }

    /// Moves the clock to `at` and fires what is due (no decision points
    /// inside: the driver is not a task).
    /// Keeps a task panic's message for the report (see `poll_task`).
    pub(crate) fn note_panic(&self, payload: &(dyn std::any::Any + Send)) {
        *self.last_panic.borrow_mut() = Some(panic_message(payload));
    }

    pub(crate) fn fire_until(&self, at: std::time::Instant) {
        self.st.borrow_mut().in_driver = true;
        self.driver().clock().advance_to(at);
        self.driver().process();
        self.st.borrow_mut().in_driver = false;
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".into()
    }
}
