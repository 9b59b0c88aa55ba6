//! The two schedulers behind one [`Scheduler`] handle, and what they share
//! ([`Common`]): the owned-task list, the timer and I/O drivers, the
//! blocking pool, configuration and metrics.

pub(crate) mod current_thread;
pub(crate) mod multi_thread;
mod owned;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::blocking::BlockingPool;
use crate::reactor::Reactor;
use crate::task::error::JoinError;
use crate::task::raw::{Header, JoinRef, PollOutcome, Runnable, Task, TaskRef};
use crate::task::Id;
use crate::time::Driver;
pub(crate) use owned::OwnedTasks;

/// What happens when a spawned task panics, or a waker the runtime calls
/// does: a task's join waker (a local task's too), a timer's, a socket's
/// (from the reactor, passed on by a read or write that succeeded, or at
/// shutdown), a bounded channel's sleeping sender woken by a receive, a
/// semaphore's or lock's waiter handed permits by a release, a close or a
/// dropped acquire, a barrier's waiters woken by its last arrival. Such a
/// waker's panic never unwinds through the runtime's threads or through
/// the task whose operation made the wake (it keeps what it read,
/// received or led); the panic hook prints it. (A primitive's own
/// `waitq` queue used directly passes a waker's panic to whoever woke, as
/// `waitq` documents.)
/// A signal stream's waker, woken by the signal thread (no runtime's),
/// is caught the same way and follows no policy.
///
/// A task counts whether it panics in a poll or in its future's `Drop`
/// when it is aborted. A [`spawn_blocking`](crate::spawn_blocking) job's
/// panic does not: it goes to the job's `JoinHandle` only, under either
/// policy (as tokio's), since a blocking job is often how a service runs
/// panic-prone code and turns a panic into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// The panic goes to the task's [`JoinHandle`](crate::task::JoinHandle)
    /// as a [`JoinError`]; the runtime carries on (tokio's default).
    #[default]
    Ignore,
    /// The runtime shuts down and `block_on` panics, naming the task.
    ShutdownRuntime,
}

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Polls between checks of the global (injection) queue.
    pub(crate) global_queue_interval: u32,
    /// Polls between timer (and I/O) checks when work never runs out.
    pub(crate) event_interval: u32,
    /// How long an idle multi-thread worker polls the reactor without
    /// sleeping before it sleeps in it (while sources are registered).
    pub(crate) io_spin: std::time::Duration,
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) thread_name: String,
    pub(crate) thread_stack_size: Option<usize>,
    /// Child exits through pidfds (else the `SIGCHLD` reaper).
    pub(crate) process_pidfd: bool,
}

/// Counters behind [`crate::RuntimeMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) parks: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) forced_yields: AtomicU64,
    pub(crate) polls: AtomicU64,
    /// Checks of the timers and the reactor by a busy scheduler thread,
    /// without sleeping (`park::poll_drivers`).
    pub(crate) busy_driver_checks: AtomicU64,
}

impl Counters {
    pub(crate) fn forced_yield(&self) {
        self.forced_yields.fetch_add(1, Relaxed);
    }

    /// Adds a batch of polls (schedulers count locally and add per batch,
    /// so workers do not contend on one counter per poll).
    pub(crate) fn add_polls(&self, n: usize) {
        if n > 0 {
            self.polls.fetch_add(n as u64, Relaxed);
        }
    }
}

/// The tasks shutdown found running (see [`Common::unfinished`]).
#[derive(Default)]
pub(crate) struct Unfinished {
    tasks: Vec<TaskRef>,
    /// [`abandon_unfinished`] ran: a task found running later (a worker
    /// that ends the tasks after a fatal panic, outliving the shutdown's
    /// wait for it) is abandoned at once, never kept (it would keep the
    /// runtime alive: each task holds it).
    abandoned: bool,
}

/// State both scheduler flavours share.
pub(crate) struct Common {
    pub(crate) owned: OwnedTasks,
    pub(crate) time: Option<Driver>,
    pub(crate) io: Option<Arc<Reactor>>,
    pub(crate) blocking: BlockingPool,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    /// Shutdown began: spawning fails, workers stop.
    pub(crate) shutdown: AtomicBool,
    /// The panic that `UnhandledPanic::ShutdownRuntime` reports.
    pub(crate) fatal_panic: std::sync::Mutex<Option<FatalPanic>>,
    /// Tasks [`cancel_all_tasks`] found running (a blocking job, a stuck
    /// worker's poll): their joiners wait for them while shutdown waits
    /// for its threads, and [`abandon_unfinished`] ends the joiners of
    /// those still running after it.
    pub(crate) unfinished: std::sync::Mutex<Unfinished>,
    /// With a paused clock: threads of this runtime running tasks now
    /// (multi-thread workers out of their park, `block_on` threads polling
    /// their future). The clock jumps to the next timer only when none is:
    /// a thread about to register a timer must not find the clock moved
    /// past its deadline by an idle worker. Not counted on a real clock.
    pub(crate) busy: Arc<AtomicUsize>,
    /// Per-worker poll slots and the SIGQUIT listener (task dumps).
    pub(crate) obs: crate::obs::Observer,
    /// Unique for the process (never reused, unlike the address): a
    /// `LocalSet` names the runtime that drives it by it.
    pub(crate) id: u64,
}

impl Common {
    pub(crate) fn new(
        config: Config,
        time: Option<Driver>,
        io: Option<Arc<Reactor>>,
        blocking: BlockingPool,
    ) -> Self {
        Common {
            owned: OwnedTasks::new(),
            time,
            io,
            blocking,
            config,
            counters: Counters::default(),
            shutdown: AtomicBool::new(false),
            fatal_panic: std::sync::Mutex::new(None),
            unfinished: std::sync::Mutex::new(Unfinished::default()),
            busy: Arc::new(AtomicUsize::new(0)),
            obs: crate::obs::Observer::default(),
            id: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Relaxed)
            },
        }
    }

    /// Whether the clock is paused (then [`busy`](Self::busy) is counted).
    pub(crate) fn has_paused_clock(&self) -> bool {
        self.time
            .as_ref()
            .is_some_and(|time| time.clock().is_paused())
    }

    /// A thread of a paused runtime starts running tasks (see `busy`);
    /// the guard ends it. Nothing on a real clock.
    pub(crate) fn enter_busy(&self) -> BusyGuard<'_> {
        let counted = self.has_paused_clock();
        if counted {
            self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        BusyGuard {
            common: self,
            counted,
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `wake` (a wake of a wait queue on a runtime thread: a task's
    /// join queue as it completes, a timer's queue as it fires, a blocking
    /// job's join queue), catching a panicking waker so that it never
    /// unwinds through a worker, the timer driver or a pool thread. The
    /// panic hook has already printed it; the runtime then follows its
    /// [`UnhandledPanic`] policy and carries on. `whose` names the waker in
    /// the `ShutdownRuntime` report ("the join waker of task 7").
    pub(crate) fn wake_guarded(&self, whose: impl FnOnce() -> String, wake: impl FnOnce()) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(wake)).is_err()
            && self.on_fatal(FatalPanic::Waker(whose()))
        {
            // The runtime's threads sleep on parkers this does not reach:
            // the scheduler this thread runs (this one: the driver, the
            // workers and the pool run inside their runtime) wakes them.
            crate::context::with_scheduler(|here| {
                if std::ptr::eq(here.common(), self) {
                    here.wake_everyone();
                }
            });
        }
    }

    /// A panic escaped a task or a waker: under `ShutdownRuntime` the
    /// runtime shuts down and `block_on` panics with `what`.
    pub(crate) fn on_fatal(&self, what: FatalPanic) -> bool {
        if self.config.unhandled_panic != UnhandledPanic::ShutdownRuntime {
            return false;
        }
        let mut fatal = self.fatal_panic.lock().unwrap_or_else(|e| e.into_inner());
        fatal.get_or_insert(what);
        drop(fatal);
        self.shutdown
            .store(true, std::sync::atomic::Ordering::Release);
        // Every spawn is refused from now on, as after `Runtime::shutdown`
        // began (tasks, blocking jobs); the listed tasks end when a thread
        // of the runtime acts on the panic (`end_tasks_after_fatal`).
        self.owned.close();
        true
    }
}

/// Runs `wake`, a wake made on the side of an operation that has already
/// done its work (a socket read that passes the readiness on, a receive
/// that frees a sender's slot), so that a panicking waker (someone else's)
/// does not unwind through that operation and lose what it did (the data
/// read, the message received; an independent probe: both were lost, and
/// the innocent task died with the other's panic). The panic, which the
/// hook has printed, goes to the runtime's policy on a thread of a
/// runtime ([`Common::wake_guarded`], as a timer's waker does), and goes
/// no further elsewhere. Out of line: callers check for sleepers first,
/// so only an actual wake pays for the call.
#[inline(never)]
pub(crate) fn wake_aside(whose: fn() -> String, wake: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(wake)) {
        crate::context::with_scheduler(|scheduler| {
            scheduler
                .common()
                .wake_guarded(whose, || std::panic::resume_unwind(panic));
        });
    }
}

/// After a push to a scheduler's shared queue (`inject`): if shutdown has
/// begun, empties that queue. Every queued task holds its scheduler, and
/// the scheduler holds the queue, so a task left queued after shutdown
/// keeps the whole runtime (its threads' parkers, the reactor's fds, the
/// wheel) alive forever. Shutdown empties the queues once its workers have
/// stopped; a wake that pushes later (a task woken from another thread
/// just as the runtime drops, a stray waker after it) empties the queue
/// itself. The two sides are ordered like Dekker's: each writes (the push,
/// the flag) then fences then reads (the flag, the queue), so at least one
/// of them sees the other's write. Dropping a queued task here loses
/// nothing: after shutdown began, the owned-task list ends every task
/// (`cancel_all_tasks`), queued or not.
pub(crate) fn drain_after_shutdown(common: &Common, inject: &crossbeam_deque::Injector<TaskRef>) {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    if common.is_shutdown() {
        drain(inject);
    }
}

/// Empties a shared queue (see [`drain_after_shutdown`]).
pub(crate) fn drain(inject: &crossbeam_deque::Injector<TaskRef>) {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    loop {
        match inject.steal() {
            crossbeam_deque::Steal::Success(task) => drop(task),
            crossbeam_deque::Steal::Empty => return,
            crossbeam_deque::Steal::Retry => {}
        }
    }
}

/// Made by [`Common::enter_busy`].
pub(crate) struct BusyGuard<'a> {
    common: &'a Common,
    counted: bool,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.common
                .busy
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// What panicked, for `UnhandledPanic::ShutdownRuntime`'s report.
#[derive(Debug, Clone)]
pub(crate) enum FatalPanic {
    /// A task's poll (or its output's drop).
    Task(Id),
    /// A waker the runtime called (see [`Common::wake_guarded`]).
    Waker(String),
    /// The destructor of a task's output.
    Output(Id),
}

impl fmt::Display for FatalPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FatalPanic::Task(id) => write!(f, "task {id} panicked"),
            FatalPanic::Waker(whose) => write!(f, "{whose} panicked"),
            FatalPanic::Output(id) => {
                write!(f, "the output of task {id} panicked as it was dropped")
            }
        }
    }
}

/// A handle to one runtime's scheduler; every task holds one.
#[derive(Clone)]
pub(crate) enum Scheduler {
    CurrentThread(Arc<current_thread::Shared>),
    MultiThread(Arc<multi_thread::Shared>),
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheduler::CurrentThread(_) => f.write_str("Scheduler::CurrentThread"),
            Scheduler::MultiThread(_) => f.write_str("Scheduler::MultiThread"),
        }
    }
}

impl Scheduler {
    /// The current-thread run queue's room while no `block_on` holds it
    /// (tests of the room given back; 0 for the multi-thread flavour).
    #[cfg(test)]
    pub(crate) fn run_queue_room(&self) -> usize {
        match self {
            Scheduler::CurrentThread(s) => s.run_queue_room(),
            Scheduler::MultiThread(_) => 0,
        }
    }

    pub(crate) fn common(&self) -> &Common {
        match self {
            Scheduler::CurrentThread(s) => &s.common,
            Scheduler::MultiThread(s) => &s.common,
        }
    }

    pub(crate) fn metrics(&self) -> &Counters {
        &self.common().counters
    }

    /// Queues a woken task.
    pub(crate) fn schedule(&self, task: TaskRef) {
        match self {
            Scheduler::CurrentThread(s) => s.schedule(task),
            Scheduler::MultiThread(s) => s.schedule(task, false),
        }
    }

    /// Which runtime this is (the address of its shared state).
    fn addr(&self) -> usize {
        match self {
            Scheduler::CurrentThread(s) => Arc::as_ptr(s) as usize,
            Scheduler::MultiThread(s) => Arc::as_ptr(s) as usize,
        }
    }

    /// The address that identifies a current-thread scheduler's core.
    fn current_thread_owner(&self) -> Option<usize> {
        match self {
            Scheduler::CurrentThread(s) => Some(s.addr()),
            Scheduler::MultiThread(_) => None,
        }
    }

    /// Queues a task that was woken while it ran (a yield): behind the others.
    pub(crate) fn requeue(&self, task: TaskRef) {
        match self {
            Scheduler::CurrentThread(s) => s.schedule(task),
            Scheduler::MultiThread(s) => s.schedule(task, true),
        }
    }

    /// Wakes whatever thread drives the timers and the reactor (a timer
    /// earlier than its sleep was added).
    pub(crate) fn unpark_driver(&self) {
        match self {
            Scheduler::CurrentThread(s) => s.unpark(),
            Scheduler::MultiThread(s) => s.unpark_driver(),
        }
    }

    /// Removes a completed task from the owned list.
    pub(crate) fn release(&self, header: &Header) {
        // The task's sleep slot keeps whatever it last held: the next
        // task under this key stamps its own records (`enter_task`), and
        // a dump reads only those. Clearing it here cost spawn_many 1.16x
        // its time (a cache miss per task).
        drop(self.common().owned.remove(header.owned_key()));
    }

    /// Spawns `future` (spawned at `site`, named `name` for task dumps)
    /// and returns the task's join side; `Err` when the runtime is
    /// shutting down: the task was cancelled at once, and joining it gives
    /// a [`JoinError`] for which `is_shutdown()` holds.
    ///
    /// The caller builds the [`JoinHandle`](crate::task::JoinHandle) where
    /// it returns it: moved back through the layers of a spawn, the
    /// handle's trailing flag byte and its padding were copied in pieces
    /// that the next wide load could not forward from, a store-forwarding
    /// stall on every spawn (`perf annotate` of chained_spawn; the
    /// instruction count did not change). Measured, alternating single
    /// processes, `RT_BENCH_SCALE=5`: chained_spawn/ct 0.88x and
    /// spawn_many/ct 0.93x the time.
    pub(crate) fn spawn_cell<F>(
        &self,
        future: F,
        site: &'static std::panic::Location<'static>,
        name: Option<Arc<str>>,
    ) -> Result<JoinRef<F::Output>, JoinRef<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.clone().spawn_owned(future, site, name)
    }

    /// [`spawn_cell`](Self::spawn_cell) with the task's own clone of the
    /// scheduler: `task::spawn` takes the clone from the thread's context
    /// and hands the future straight here. (Through a closure borrowing
    /// the context's scheduler, the future was copied once more, in
    /// pieces that the next wide load could not forward from.)
    pub(crate) fn spawn_owned<F>(
        self,
        future: F,
        site: &'static std::panic::Location<'static>,
        name: Option<Arc<str>>,
    ) -> Result<JoinRef<F::Output>, JoinRef<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = Id::next();
        let task = Task::new(future, self, id, site, name);
        // The task's own scheduler; `task` itself becomes the join side.
        let this = &task.header().scheduler;
        match this.common().owned.insert(task.clone()) {
            Ok(key) => {
                task.header().owned_key.store(key, Relaxed);
                if waitq::hook::is_enabled() {
                    let erased: TaskRef = task.clone();
                    crate::test_util::on_spawn(&erased, site, std::any::type_name::<F>());
                }
                this.schedule_new(task.clone());
                Ok(task)
            }
            Err(unlisted) => {
                // Never published (no list, no queue, the handle is ours):
                // the claim cannot lose.
                let claimed = unlisted.header().state.claim_for_shutdown();
                debug_assert!(claimed, "an unpublished task is claimed");
                unlisted.cancel(JoinError::shutdown(id));
                Err(task)
            }
        }
    }

    fn schedule_new(&self, task: TaskRef) {
        match self {
            Scheduler::CurrentThread(s) => s.schedule(task),
            Scheduler::MultiThread(s) => s.schedule(task, true),
        }
    }

    /// The error for a cancelled task: plain, or "the runtime shut down".
    pub(crate) fn cancel_error(&self, id: Id) -> JoinError {
        if self.common().is_shutdown() {
            JoinError::shutdown(id)
        } else {
            JoinError::cancelled(id)
        }
    }

    /// Called when a task's poll panicked.
    pub(crate) fn on_panic(&self, id: Id) {
        if self.common().on_fatal(FatalPanic::Task(id)) {
            self.wake_everyone();
        }
    }

    /// Wakes every parked scheduler thread (shutdown).
    pub(crate) fn wake_everyone(&self) {
        match self {
            Scheduler::CurrentThread(s) => s.unpark(),
            Scheduler::MultiThread(s) => s.unpark_all(),
        }
    }
}

/// Queues a task whose wake claimed `SCHEDULED`, taking over the waker's
/// count: on a thread that holds its current-thread core the task goes
/// straight into the local queue; on one of its multi-thread runtime's
/// workers onto that worker's queue (runtime and core found in one look
/// at the thread's context); on another thread that runs its runtime (a
/// `block_on`) the thread's own handle queues it; each with no clone and
/// no drop. Anywhere else it is cloned once to reach its
/// scheduler (the handle lives inside the task being moved).
pub(crate) fn schedule_woken(task: TaskRef) {
    let runtime = task.header().scheduler.addr();
    // The current-thread check first: it skips the context's `RefCell`
    // borrow, and the general path below measured slower on current-thread
    // herd (84-89 against 82.5 ns per wake).
    let mut task = match task.header().scheduler.current_thread_owner() {
        Some(owner) => match current_thread::push_local(owner, task) {
            Ok(()) => return,
            Err(task) => Some(task),
        },
        None => {
            // On one of its runtime's workers: straight onto that worker's
            // queue, the runtime and the core found in one look.
            let mut task = Some(task);
            crate::context::with_scheduler_and_core(|here, core| {
                if here.addr() != runtime {
                    return;
                }
                if let (Scheduler::MultiThread(shared), crate::context::Core::MultiThread(core)) =
                    (here, core)
                {
                    task = shared.wake_on_own_core(core, task.take().expect("taken once"));
                }
            });
            if task.is_none() {
                return;
            }
            task
        }
    };
    crate::context::with_scheduler(|here| {
        if here.addr() == runtime {
            here.schedule(task.take().expect("taken once"));
        }
    });
    if let Some(task) = task {
        schedule_via_own_handle(task, false);
    }
}

/// Queues `task` through the scheduler handle stored inside it (a yield
/// when `requeue`: behind the others). The handle borrows from the task
/// being moved, so the task is cloned once to reach it.
pub(crate) fn schedule_via_own_handle(task: TaskRef, requeue: bool) {
    let me = task.clone();
    match requeue {
        true => me.header().scheduler.requeue(task),
        false => me.header().scheduler.schedule(task),
    }
}

/// Runs one queued task (a blocking job, on a pool thread whose poll slot
/// is `slot`): claim it, poll it (or drop it if cancelled), and requeue it
/// through its own scheduler when it was woken during its poll.
pub(crate) fn run_in(task: TaskRef, slot: &crate::obs::PollSlot) {
    if let Some(again) = run_outcome(task, Some(slot), &mut None) {
        schedule_via_own_handle(again, true);
    }
}

/// [`run_in`], telling what happened (`None` when shutdown had claimed the
/// task, `Complete` for a cancelled one; the test toolkit reads this) and
/// handing the task back when it must be queued again, behind the others:
/// the scheduler loops queue it themselves, which spares a reference-count
/// round trip per yield.
///
/// A worker passes its poll slot (task dumps, the stuck-worker detector):
/// it names the task while its poll runs (`poll_once` catches panics, so
/// the slot is always cleared).
///
/// The outcome goes to `outcome` (see [`Runnable::poll_once`] for why not
/// beside the task).
pub(crate) fn run_outcome(
    task: TaskRef,
    slot: Option<&crate::obs::PollSlot>,
    outcome: &mut Option<PollOutcome>,
) -> Option<TaskRef> {
    let header = task.header();
    let Some(before) = header.state.transition_to_running() else {
        *outcome = None; // claimed by shutdown
        return None;
    };
    if before.is_cancelled() {
        let panicked = task.cancel(header.scheduler.cancel_error(header.id));
        *outcome = Some(match panicked {
            true => PollOutcome::Panicked,
            false => PollOutcome::Complete,
        });
        return None;
    }
    if let Some(slot) = slot {
        slot.begin(header.id);
    }
    let mut polled = PollOutcome::Idle;
    let again = task.poll_once(&mut polled);
    if let Some(slot) = slot {
        slot.end();
    }
    *outcome = Some(polled);
    again
}

/// Shutdown step shared by both flavours: close the owned list and drop
/// every task nobody is polling; each one's join handle gets a shutdown
/// [`JoinError`]. A task running now (a blocking job's closure, a stuck
/// worker's poll) is kept in `unfinished`: its joiner still gets its
/// output if it ends while shutdown waits for the threads, and
/// [`abandon_unfinished`] ends the joiners of those that did not.
pub(crate) fn cancel_all_tasks(common: &Common) {
    // Dropping a future may spawn or wake; the list is closed so spawns fail.
    let mut running = Vec::new();
    for task in common.owned.close_and_drain() {
        let header = task.header();
        if header.state.load().is_mandatory() {
            // A blocking job that must run (a `fs::File`'s write): the pool
            // runs it before its threads exit (`BlockingPool::shutdown`).
            continue;
        }
        if header.state.claim_for_shutdown() {
            task.cancel(JoinError::shutdown(header.id));
        } else if !header.state.load().is_complete() {
            running.push(task);
        }
    }
    if running.is_empty() {
        return;
    }
    let mut unfinished = lock_unfinished(common);
    if unfinished.abandoned {
        drop(unfinished);
        abandon(running);
    } else {
        unfinished.tasks.append(&mut running);
    }
}

/// The last shutdown step for the tasks [`cancel_all_tasks`] found
/// running: those still running after shutdown waited for its threads
/// are abandoned, and whoever joins them ends now (`JoinError::Abandoned`).
pub(crate) fn abandon_unfinished(common: &Common) {
    let tasks = {
        let mut unfinished = lock_unfinished(common);
        unfinished.abandoned = true;
        std::mem::take(&mut unfinished.tasks)
    };
    abandon(tasks);
}

/// Ends the joiners of those of `tasks` still running.
fn abandon(tasks: Vec<TaskRef>) {
    for task in tasks {
        let header = task.header();
        if !header.state.load().is_complete() {
            header.join_queue().close();
        }
    }
}

fn lock_unfinished(common: &Common) -> std::sync::MutexGuard<'_, Unfinished> {
    common
        .unfinished
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `UnhandledPanic::ShutdownRuntime`: `block_on` panics once a task did,
/// after ending every task (see [`end_tasks_after_fatal`]).
pub(crate) fn check_fatal_panic(common: &Common) {
    let fatal = common
        .fatal_panic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(what) = fatal {
        end_tasks_after_fatal(common);
        panic!(
            "{what} and the runtime is configured with \
             `UnhandledPanic::ShutdownRuntime`: the runtime is shutting down"
        );
    }
}

/// After a fatal panic (`UnhandledPanic::ShutdownRuntime`), on a thread of
/// the runtime that acts on it (a `block_on` about to panic, a worker
/// leaving): every task ends now, as at shutdown (step 3), so that whoever
/// joins one, from any thread or runtime, gets a shutdown error instead of
/// waiting for the `Runtime` to be dropped. The threads, timers and
/// reactor stop when it is. Called again, it finds the list empty.
pub(crate) fn end_tasks_after_fatal(common: &Common) {
    if common
        .fatal_panic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        cancel_all_tasks(common);
    }
}

#[cfg(test)]
mod event_interval_tests;
#[cfg(test)]
mod unfinished_tests;
