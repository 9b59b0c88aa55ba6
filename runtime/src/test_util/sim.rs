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
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use waitq::hook::{self, Hook, Point, PointKind, QueueId, Sleeper, Wake as WakeEvent};
use waitq::TaskState;

use super::report::{
    queue_name, sleeper_line, wake_line, FailureKind, RunFailure, TaskName, WakeRecord,
};
use super::schedule::{Ask, Chooser, Policy};
use crate::context;
use crate::scheduler::{self, current_thread, Scheduler};
use crate::task::raw::{PollOutcome, TaskRef, BUDGET};

/// Settings of one run.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    pub(crate) policy: Policy,
    pub(crate) seed: u64,
    pub(crate) prefix: Vec<u32>,
    pub(crate) steps_hint: u64,
    pub(crate) max_polls: u64,
    pub(crate) max_time: Duration,
    pub(crate) max_depth: usize,
    pub(crate) spurious: bool,
    pub(crate) signals: bool,
    pub(crate) time_jumps: bool,
    pub(crate) oracle: bool,
    pub(crate) allow_panics: bool,
}

/// What one run produced.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    pub(crate) record: Vec<(u32, u32)>,
    pub(crate) failure: Option<RunFailure>,
    pub(crate) trace: Vec<String>,
    pub(crate) polls: u64,
}

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
    idle_waiters: Vec<Waker>,
    idle_epoch: u64,
    in_driver: bool,
    external_wait: Duration,
    trace: Vec<String>,
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
    });
    sim.st.borrow_mut().tasks.push(TaskInfo {
        task: None,
        name: TaskName {
            slot: 0,
            id: None,
            site: None,
            type_name: "",
        },
        poll_start: 0,
        asleep_since: Duration::ZERO,
        links: Vec::new(),
    });
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

    fn fail(&self, kind: FailureKind, message: String) {
        let time = self.now();
        let mut st = self.st.borrow_mut();
        if st.failure.is_none() {
            st.failure = Some(RunFailure {
                kind,
                message,
                time,
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
        let join = QueueId::of(&task.header().join_queue);
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
            let choice = self
                .chooser
                .borrow_mut()
                .choose(Ask::Pick { slots: &runnable }, runnable.len());
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
            st.running.push(slot);
            st.tasks[slot as usize].task.clone()
        };
        match task {
            None => self.poll_main(),
            Some(task) => self.poll_task(slot, task),
        }
        self.st.borrow_mut().running.pop();
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
        let outcome = scheduler::run_outcome(task);
        self.trace(|| format!("polled {slot}: {outcome:?}"));
        match outcome {
            Some(PollOutcome::Panicked) if !self.cfg.allow_panics => {
                let name = self.st.borrow().tasks[slot as usize].name.clone();
                self.fail(
                    FailureKind::Panic,
                    format!("{name} panicked (its message is printed above)"),
                );
            }
            Some(PollOutcome::Requeue) if !hook::is_probing() => {
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
            if waited > Duration::from_secs(10) {
                self.fail(
                    FailureKind::External,
                    format!(
                        "{} blocking job(s) or foreign task(s) never finished",
                        alive - known
                    ),
                );
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
    pub(crate) fn fire_until(&self, at: std::time::Instant) {
        self.st.borrow_mut().in_driver = true;
        self.driver().clock().advance_to(at);
        self.driver().process();
        self.st.borrow_mut().in_driver = false;
    }

    /// Probes every idle task (and the test body): a sleeper whose
    /// condition holds while linked is a lost wake-up.
    fn oracle(&self) {
        self.probe_all();
        let st = self.st.borrow();
        let lost = st.probed.iter().find(|(_, s)| s.is_lost_wakeup()).copied();
        drop(st);
        if let Some((slot, sleeper)) = lost {
            let message = self.lost_message(slot, &sleeper, None);
            self.fail(FailureKind::LostWakeup, message);
        }
    }

    fn probe_all(&self) {
        self.st.borrow_mut().probed.clear();
        let count = self.st.borrow().tasks.len();
        for slot in 0..count as u32 {
            let (task, skip) = {
                let st = self.st.borrow();
                let skip = st.runnable.contains(&slot) || st.running.contains(&slot);
                (st.tasks[slot as usize].task.clone(), skip)
            };
            if skip {
                continue;
            }
            self.st.borrow_mut().probing = Some(slot);
            match task {
                None => {
                    if !self.st.borrow().main_done {
                        self.st.borrow_mut().running.push(0);
                        hook::probe(|| self.poll_main());
                        self.st.borrow_mut().running.pop();
                    }
                }
                Some(task) => {
                    // Idle → scheduled, claimed by us; anything else (queued,
                    // complete) is not asleep.
                    if task.header().state.transition_to_scheduled() {
                        self.st.borrow_mut().running.push(slot);
                        hook::probe(|| self.poll_task(slot, task));
                        self.st.borrow_mut().running.pop();
                    }
                }
            }
            self.st.borrow_mut().probing = None;
        }
    }

    fn describe(&self, slot: u32) -> String {
        self.st.borrow().tasks[slot as usize].name.to_string()
    }

    fn queue(&self, queue: QueueId) -> String {
        queue_name(queue, self.names.borrow().get(&queue).map(String::as_str))
    }

    fn last_wake(&self, queue: QueueId) -> String {
        let wake = self.st.borrow().wakes.get(&queue).copied();
        match wake {
            None => "no wake_up on it so far".into(),
            Some(w) => {
                let by =
                    w.by.map_or_else(|| "the runtime".into(), |s| self.describe(s));
                format!("last: {}", wake_line(&w, &by))
            }
        }
    }

    fn lost_message(&self, slot: u32, s: &Sleeper, why: Option<String>) -> String {
        let queue = self.queue(s.queue);
        let mut m = format!(
            "lost wake-up: {} sleeps at {} on {queue}",
            self.describe(slot),
            s.site
        );
        match why {
            None => m.push_str(" although its condition is true"),
            Some(why) => {
                let _ = write!(m, " ({why})");
            }
        }
        let _ = write!(m, "\n  {}", self.last_wake(s.queue));
        m
    }

    /// Nothing runnable, no timer, no outside work: fail with every task.
    fn hang(&self) {
        self.probe_all();
        // A hand-written loop that linked after the wake it needed ran
        // (while it was preempted between its check and its link).
        let suspects: Vec<(u32, Sleeper)> = self.st.borrow().probed.clone();
        for (slot, s) in &suspects {
            if !s.linked || s.condition.is_some() {
                continue;
            }
            let st = self.st.borrow();
            let link = st.tasks[*slot as usize]
                .links
                .iter()
                .rev()
                .find(|l| l.0 == s.queue)
                .copied();
            let wake = st.wakes.get(&s.queue).copied();
            drop(st);
            if let (Some((_, linked, start)), Some(w)) = (link, wake) {
                if start < w.seq && w.seq < linked {
                    let why = "it linked after the wake it needed: that wake ran between the \
                               start of its poll (its condition check) and its prepare_to_wait"
                        .to_string();
                    let message = self.lost_message(*slot, s, Some(why));
                    let dump = self.dump();
                    self.fail(FailureKind::LostWakeup, format!("{message}\n{dump}"));
                    return;
                }
            }
        }
        let dump = self.dump();
        self.fail(
            FailureKind::Hang,
            format!("hang: nothing can run, no timer is pending and no outside work is in flight\n{dump}"),
        );
    }

    /// Every live task: name, sleep and what it sleeps on.
    fn dump(&self) -> String {
        let st = self.st.borrow();
        let mut out = String::from("live tasks:");
        for (slot, info) in st.tasks.iter().enumerate() {
            let slot = slot as u32;
            let live = match &info.task {
                None => !st.main_done,
                Some(t) => !t.header().state.load().is_complete(),
            };
            if !live {
                continue;
            }
            let _ = write!(
                out,
                "\n  {} (asleep since t={:?})",
                info.name, info.asleep_since
            );
            let mut any = false;
            for (_, s) in st.probed.iter().filter(|(p, _)| *p == slot) {
                any = true;
                let queue = queue_name(
                    s.queue,
                    self.names.borrow().get(&s.queue).map(String::as_str),
                );
                let _ = write!(out, "\n    sleeps: {}", sleeper_line(s, &queue));
                if let Some(w) = st.wakes.get(&s.queue) {
                    let by = w.by.map_or_else(
                        || "the runtime".into(),
                        |b| st.tasks[b as usize].name.to_string(),
                    );
                    let _ = write!(out, "\n      last: {}", wake_line(w, &by));
                }
            }
            if !any {
                out.push_str("\n    sleeps on something outside the wait queues");
            }
        }
        out
    }

    /// The faults that may be injected into `current` at `point`.
    fn faults(&self, current: u32, point: &Point) -> Vec<Fault> {
        let mut faults = Vec::new();
        if self.cfg.spurious {
            faults.push(Fault::Spurious);
        }
        if self.cfg.signals && current != 0 && point.state != TaskState::Uninterruptible {
            faults.push(Fault::Signal(point.state));
        }
        if self.cfg.time_jumps && self.driver().next_deadline().is_some() {
            faults.push(Fault::TimeJump);
        }
        faults
    }

    fn inject(&self, current: u32, fault: Fault) {
        self.trace(|| format!("fault {fault:?} into {current}"));
        let task = self.st.borrow().tasks[current as usize].task.clone();
        match (fault, task) {
            (Fault::Spurious, None) => self.main_wake.woken.store(true, Release),
            (Fault::Spurious, Some(task)) => {
                // Running: this marks it notified; it is polled again.
                let _ = task.header().state.transition_to_scheduled();
            }
            (Fault::Signal(TaskState::Killable), Some(task)) => task.header().signals.kill(),
            (Fault::Signal(_), Some(task)) => task.header().signals.interrupt(),
            (Fault::Signal(_), None) => {}
            (Fault::TimeJump, _) => {
                if let Some(next) = self.driver().next_deadline() {
                    self.fire_until(next);
                }
            }
        }
    }
}

impl Hook for Sim {
    fn decide(&self, point: &Point) {
        let current = {
            let mut st = self.st.borrow_mut();
            let Some(&current) = st.running.last() else {
                return; // the driver or the loop itself, not a task
            };
            if st.failure.is_some() || st.probing.is_some() || st.in_driver {
                return;
            }
            if point.kind == PointKind::AfterLink {
                st.seq += 1;
                let seq = st.seq;
                let info = &mut st.tasks[current as usize];
                let start = info.poll_start;
                info.links.retain(|l| l.0 != point.queue);
                info.links.push((point.queue, seq, start));
            }
            if st.running.len() > self.cfg.max_depth {
                return;
            }
            current
        };
        loop {
            self.collect();
            let slots: Vec<u32> = {
                let st = self.st.borrow();
                st.runnable
                    .iter()
                    .copied()
                    .filter(|s| !st.running.contains(s))
                    .collect()
            };
            let faults = self.faults(current, point);
            let n = 1 + slots.len() + faults.len();
            let ask = Ask::Point {
                current,
                slots: &slots,
                faults: faults.len(),
            };
            let choice = self.chooser.borrow_mut().choose(ask, n);
            if choice == 0 {
                return;
            }
            if let Some(&slot) = slots.get(choice - 1) {
                self.st.borrow_mut().runnable.retain(|&s| s != slot);
                self.trace(|| format!("preempt {current} at {} for {slot}", point.kind.name()));
                self.poll_slot(slot);
                if self.failed() {
                    return;
                }
                continue;
            }
            self.inject(current, faults[choice - 1 - slots.len()]);
            return;
        }
    }

    fn woke(&self, wake: &WakeEvent) {
        let time = self.now();
        let mut st = self.st.borrow_mut();
        st.seq += 1;
        let record = WakeRecord {
            site: wake.site,
            woken: wake.woken,
            kind: wake.kind,
            seq: st.seq,
            by: st.running.last().copied(),
            time,
        };
        st.wakes.insert(wake.queue, record);
    }

    fn probed(&self, sleeper: &Sleeper) {
        let mut st = self.st.borrow_mut();
        if let Some(slot) = st.probing {
            st.probed.push((slot, *sleeper));
        }
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
