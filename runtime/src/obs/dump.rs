//! [`Dump`]: one entry per task, grouped by what it sleeps on.

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitq::registry::{HeldAs, WaitKind, Waiting};

use super::fmt_duration;
use crate::scheduler::Scheduler;
use crate::task::Id;

/// A snapshot of a runtime: every live task, what each one does or sleeps
/// on and since when, the workers, and the plain threads asleep in
/// blocking waits. Taken by [`Handle::dump`](crate::Handle::dump) without
/// polling any task; [`Display`](fmt::Display) prints it grouped by queue,
/// one grep-friendly line per task:
///
/// ```text
/// task 7 "smbiod" [wait_event_interruptible on smbiod_wait, 12m03s] spawned at examples/smbiod/daemon/mod.rs:40, waits at examples/smbiod/daemon/iod.rs:41
/// ```
#[derive(Debug, Clone)]
pub struct Dump {
    pub(crate) taken: Instant,
    pub(crate) tasks: Vec<TaskDump>,
    pub(crate) workers: Vec<WorkerDump>,
    pub(crate) threads: Vec<Waiting>,
}

/// One task in a [`Dump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskDump {
    /// Its id.
    pub id: Id,
    /// Its name (`task::Builder::name`).
    pub name: Option<Arc<str>>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// Running, runnable or idle.
    pub status: TaskStatus,
    /// A [`spawn_blocking`](crate::spawn_blocking) job (also what
    /// [`fs`](crate::fs) runs): running on a blocking-pool thread, or
    /// runnable while it waits in the pool's queue for one.
    pub blocking: bool,
    /// The wait queues it sleeps on (while idle; a runnable task may still
    /// list the wait it was just woken from). While the hung-task or
    /// lost-grant detector is on, a wait an exclusive wake has picked (a
    /// lock, permit or slot handed to the task, or its turn on a plain
    /// queue) but whose future has not come back for it has
    /// [`Waiting::picked`] set, and the text says `picked by a wake 3s
    /// ago, not yet polled`.
    pub waits: Vec<Waiting>,
    /// The deadlines of its pending timers.
    pub timers: Vec<Instant>,
    /// For a task of a [`LocalSet`](crate::task::LocalSet): the task that
    /// drives the set (polled its `run_until` last;
    /// [`Id::BLOCK_ON_FUTURE`] for a `block_on` future). A local task is
    /// listed in the dump of the runtime that drives its set, as running
    /// while the set polls it. `None` for the runtime's own tasks.
    pub local_to: Option<Id>,
}

/// What a task in a [`Dump`] is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Being polled: by worker `worker` (`None`: a blocking-pool thread,
    /// or for a local task a set driven on a thread that is no worker)
    /// for `busy` so far (on the runtime's coarse clock).
    Running {
        /// The worker polling it.
        worker: Option<usize>,
        /// How long the poll has run.
        busy: Option<Duration>,
    },
    /// Queued to run.
    Runnable,
    /// Asleep: see its waits and timers.
    Idle,
}

/// One worker in a [`Dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerDump {
    /// Its index (the current-thread flavour's driving thread is 0).
    pub index: usize,
    /// The task it polls now and for how long, if any.
    pub polling: Option<(Id, Duration)>,
}

impl Dump {
    /// Every live task.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// let dump = rt.handle().dump();
    /// assert!(dump.tasks().is_empty());
    /// ```
    pub fn tasks(&self) -> &[TaskDump] {
        &self.tasks
    }

    /// The task with id `id`, if it is live.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// assert!(rt.handle().dump().task(task.id()).is_some());
    /// ```
    pub fn task(&self, id: Id) -> Option<&TaskDump> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The workers.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    /// # let _ = rt.block_on(rt.spawn(async {}));
    /// assert!(rt.handle().dump().workers().len() <= 1);
    /// ```
    pub fn workers(&self) -> &[WorkerDump] {
        &self.workers
    }

    /// Threads asleep in waits outside any task: `blocking_wait_event` on
    /// plain threads (of the whole process), `block_on` futures.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// let _ = rt.handle().dump().threads();
    /// ```
    pub fn threads(&self) -> &[Waiting] {
        &self.threads
    }

    /// When it was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Runtime::new().unwrap();
    /// assert!(rt.handle().dump().taken() <= std::time::Instant::now());
    /// ```
    pub fn taken(&self) -> Instant {
        self.taken
    }
}

/// Takes a dump of `scheduler`'s runtime (see [`Dump`]).
pub(crate) fn take(scheduler: &Scheduler) -> Dump {
    let taken = waitq::registry::tick();
    let common = scheduler.common();
    let tasks = common.owned.snapshot();
    let mut waits: HashMap<u64, Vec<Waiting>> = HashMap::new();
    let mut threads = Vec::new();
    for w in waitq::registry::snapshot() {
        match w.task {
            Some(task) => waits.entry(task).or_default().push(w),
            // Runtime threads idle in their own queues are not news.
            None if w.queue_name.is_some_and(|n| n.starts_with("waitrt::")) => {}
            None => threads.push(w),
        }
    }
    threads.extend(common.obs.block_ons.sleeps());
    let mut timers: HashMap<usize, Vec<Instant>> = HashMap::new();
    if let Some(time) = &common.time {
        for (deadline, task) in time.sleepers() {
            timers.entry(task).or_default().push(deadline);
        }
    }
    let workers: Vec<WorkerDump> = common
        .obs
        .slots()
        .iter()
        .enumerate()
        .map(|(index, slot)| WorkerDump {
            index,
            polling: slot.read().map(|poll| {
                (
                    poll.task,
                    taken.saturating_duration_since(waitq::registry::at(poll.since)),
                )
            }),
        })
        .collect();
    // The jobs blocking-pool threads run, and for how long.
    let pool: Vec<(Id, Duration)> = common
        .blocking
        .poll_slots()
        .iter()
        .filter_map(|slot| slot.read())
        .map(|poll| {
            let since = waitq::registry::at(poll.since);
            (poll.task, taken.saturating_duration_since(since))
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let header = task.header();
        let state = header.state.load();
        if state.is_complete() {
            continue;
        }
        let status = if state.is_running() {
            match pool.iter().find(|(id, _)| *id == header.id) {
                Some(&(_, busy)) => TaskStatus::Running {
                    worker: None,
                    busy: Some(busy),
                },
                None => running(&workers, header.id),
            }
        } else if state.is_scheduled() {
            TaskStatus::Runnable
        } else {
            TaskStatus::Idle
        };
        let data = Arc::as_ptr(&task) as *const () as usize;
        let mut mine = waits.remove(&header.id.0).unwrap_or_default();
        let slot = common.obs.sleeps.peek(header.owned_key());
        // A record another task left under this key is not this task's.
        let sleep = slot.and_then(|slot| slot.read());
        if let Some(sleep) = sleep.filter(|sleep| sleep.owner == header.id.0) {
            mine.push(super::slot_waiting(sleep, header.id));
        }
        mine.sort_by_key(|w| w.since);
        out.push(TaskDump {
            id: header.id,
            name: header.name().cloned(),
            spawned_at: header.site,
            status,
            blocking: state.is_blocking(),
            waits: mine,
            timers: timers.remove(&data).unwrap_or_default(),
            local_to: None,
        });
    }
    let runtime = common.id;
    for local in crate::task::local::live_tasks(runtime) {
        let status = if local.polling {
            // Polled inside its driver's poll, on its driver's worker.
            running(&workers, local.driver)
        } else if local.scheduled {
            TaskStatus::Runnable
        } else {
            TaskStatus::Idle
        };
        let mut mine = waits.remove(&local.id.0).unwrap_or_default();
        mine.sort_by_key(|w| w.since);
        out.push(TaskDump {
            id: local.id,
            name: None,
            spawned_at: local.spawned_at,
            status,
            blocking: false,
            waits: mine,
            timers: timers.remove(&local.waker_data).unwrap_or_default(),
            local_to: Some(local.driver),
        });
    }
    out.sort_by_key(|t| t.id);
    threads.sort_by_key(|w| w.since);
    Dump {
        taken,
        tasks: out,
        workers,
        threads,
    }
}

/// A running task's status: the worker seen polling `polled` (the task,
/// or for a local task its set's driver) and for how long, if any.
fn running(workers: &[WorkerDump], polled: Id) -> TaskStatus {
    let worker = workers
        .iter()
        .find(|w| w.polling.is_some_and(|(id, _)| id == polled));
    TaskStatus::Running {
        worker: worker.map(|w| w.index),
        busy: worker.and_then(|w| w.polling.map(|(_, busy)| busy)),
    }
}

// ===== formatting (shared with the test toolkit's reports) =====

/// `smbiod_wait`, or `queue@0x55d0c8a0` for a queue without a name.
pub(crate) struct QueueName<'a>(pub(crate) &'a Waiting);

impl fmt::Display for QueueName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.queue_name {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0.queue),
        }
    }
}

/// `wait_event_interruptible_exclusive on smbiod_wait`: what a sleeping
/// waiter waits in and on. The one formatter of a wait that the dump, the
/// hung-task and lost-grant reports and the test toolkit's hang report
/// share, so a wait reads the same in a test failure and in production.
pub(crate) struct WaitOn<'a>(pub(crate) &'a WaitKind, pub(crate) &'a dyn fmt::Display);

impl fmt::Display for WaitOn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.0, self.1)
    }
}

/// `wait_event_interruptible on smbiod_wait, 12m03s` (and `, deadline in
/// 3s` for a timed wait): the bracket of a dump line, also used by the
/// hung-task report.
pub(crate) struct WaitBracket<'a>(pub(crate) &'a Waiting, pub(crate) Instant);

impl fmt::Display for WaitBracket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, now) = (self.0, self.1);
        write!(f, "{}, ", WaitOn(&w.kind, &QueueName(w)))?;
        fmt_duration(now.saturating_duration_since(w.since), f)?;
        if let Some(deadline) = w.kind.deadline {
            f.write_str(", deadline in ")?;
            fmt_duration(deadline.saturating_duration_since(now), f)?;
        }
        if let Some(picked) = w.picked {
            // Picked by an exclusive wake (a lock's, a semaphore's or a
            // channel's hand-off made it the owner; a plain queue's wake,
            // its turn), but its future has not come back for it: a lost
            // grant if this grows.
            f.write_str(", picked by a wake ")?;
            fmt_duration(now.saturating_duration_since(picked), f)?;
            f.write_str(" ago, not yet polled")?;
        }
        Ok(())
    }
}

/// `task 7 "smbiod"`.
pub(crate) struct TaskLabel<'a>(pub(crate) Id, pub(crate) Option<&'a str>);

impl fmt::Display for TaskLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == Id::BLOCK_ON_FUTURE {
            return f.write_str("the block_on future");
        }
        write!(f, "task {}", self.0)?;
        if let Some(name) = self.1 {
            write!(f, " {name:?}")?;
        }
        Ok(())
    }
}

/// How a holder holds what a sleep waits for, before its label: `held
/// by task 3`, `last taken by task 3` (a semaphore), `held for reading by
/// task 3 and 2 other readers`. The dump's queue line and the hung-task
/// report say it alike.
pub(crate) struct Held<'a>(pub(crate) HeldAs, pub(crate) TaskLabel<'a>);

impl fmt::Display for Held<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = &self.1;
        match self.0 {
            HeldAs::LastTaker => write!(f, "last taken by {label}"),
            HeldAs::Reader { others: 0 } => write!(f, "held for reading by {label}"),
            HeldAs::Reader { others: 1 } => {
                write!(f, "held for reading by {label} and 1 other reader")
            }
            HeldAs::Reader { others } => {
                write!(f, "held for reading by {label} and {others} other readers")
            }
            _ => write!(f, "held by {label}"),
        }
    }
}

impl TaskDump {
    fn label(&self) -> TaskLabel<'_> {
        TaskLabel(self.id, self.name.as_deref())
    }

    /// The line for one of its waits.
    fn wait_line(&self, w: &Waiting, now: Instant, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = match self.status {
            TaskStatus::Idle => "",
            TaskStatus::Runnable => ", woken",
            TaskStatus::Running { .. } => ", running",
        };
        writeln!(
            f,
            "  {} [{}{note}] spawned at {}, waits at {}{}",
            self.label(),
            WaitBracket(w, now),
            self.spawned_at,
            w.site,
            LocalTo(self.local_to)
        )
    }
}

/// `, local to task 3` for a task of a `LocalSet` (see
/// [`TaskDump::local_to`]); nothing for a runtime task.
struct LocalTo(Option<Id>);

impl fmt::Display for LocalTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(driver) => write!(f, ", local to {}", TaskLabel(driver, None)),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.taken;
        writeln!(
            f,
            "runtime dump: {} tasks, {} workers",
            self.tasks.len(),
            self.workers.len()
        )?;
        for w in &self.workers {
            match w.polling {
                Some((id, busy)) => {
                    let task = self.task(id);
                    let label = TaskLabel(id, task.and_then(|t| t.name.as_deref()));
                    write!(f, "worker {}: busy polling {label} for ", w.index)?;
                    fmt_duration(busy, f)?;
                    match task {
                        Some(t) => writeln!(f, ", spawned at {}", t.spawned_at)?,
                        None => writeln!(f)?,
                    }
                }
                None => writeln!(f, "worker {}: idle", w.index)?,
            }
        }
        // Grouped by queue, oldest sleeper first.
        let mut queues: Vec<(&Waiting, &TaskDump)> = self
            .tasks
            .iter()
            .flat_map(|t| t.waits.iter().map(move |w| (w, t)))
            .collect();
        queues.sort_by_key(|(w, _)| (w.queue, w.since));
        let mut current = None;
        for (w, t) in &queues {
            if current != Some(w.queue) {
                current = Some(w.queue);
                let n = queues.iter().filter(|(o, _)| o.queue == w.queue).count();
                write!(f, "queue {} ({}): {n} sleeping", QueueName(w), w.queue)?;
                match w.holder {
                    Some(holder) => {
                        let id = Id(holder);
                        let name = self.task(id).and_then(|t| t.name.as_deref());
                        writeln!(f, ", {}", Held(w.held_as, TaskLabel(id, name)))?;
                    }
                    None => writeln!(f)?,
                }
            }
            t.wait_line(w, now, f)?;
        }
        let timed: Vec<&TaskDump> = self.tasks.iter().filter(|t| !t.timers.is_empty()).collect();
        if !timed.is_empty() {
            writeln!(f, "timers:")?;
        }
        for t in timed {
            for deadline in &t.timers {
                write!(f, "  {} [timer, fires in ", t.label())?;
                fmt_duration(deadline.saturating_duration_since(now), f)?;
                writeln!(f, "] spawned at {}{}", t.spawned_at, LocalTo(t.local_to))?;
            }
        }
        for (title, pick) in [
            ("running", 0),
            ("runnable", 1),
            ("idle, not on a wait queue or timer", 2),
        ] {
            let listed: Vec<&TaskDump> = self
                .tasks
                .iter()
                .filter(|t| match (pick, t.status) {
                    (0, TaskStatus::Running { .. }) => t.waits.is_empty(),
                    (1, TaskStatus::Runnable) => t.waits.is_empty(),
                    (2, TaskStatus::Idle) => t.waits.is_empty() && t.timers.is_empty(),
                    _ => false,
                })
                .collect();
            if !listed.is_empty() {
                writeln!(f, "{title}:")?;
            }
            for t in listed {
                write!(f, "  {} [", t.label())?;
                match t.status {
                    TaskStatus::Running { worker, busy } => {
                        match worker {
                            Some(worker) => write!(f, "running on worker {worker}")?,
                            // Its set is driven outside the workers.
                            None if t.local_to.is_some() => f.write_str("running")?,
                            None => f.write_str("running on a blocking-pool thread")?,
                        }
                        if let Some(busy) = busy {
                            f.write_str(", ")?;
                            fmt_duration(busy, f)?;
                        }
                    }
                    TaskStatus::Runnable if t.blocking => {
                        f.write_str("queued for a blocking-pool thread")?;
                    }
                    TaskStatus::Runnable => f.write_str("runnable")?,
                    TaskStatus::Idle => f.write_str("idle")?,
                }
                writeln!(f, "] spawned at {}{}", t.spawned_at, LocalTo(t.local_to))?;
            }
        }
        if !self.threads.is_empty() {
            writeln!(f, "threads:")?;
        }
        for w in &self.threads {
            let thread = w.thread.as_ref();
            let name = thread.and_then(|t| t.name()).unwrap_or("<unnamed>");
            let id = thread.map(|t| format!(" {:?}", t.id())).unwrap_or_default();
            writeln!(
                f,
                "  thread {name:?}{id} [{}] waits at {}",
                WaitBracket(w, now),
                w.site
            )?;
        }
        Ok(())
    }
}
