//! The work-stealing multi-thread scheduler.
//!
//! # Queues
//!
//! Each worker owns a local FIFO deque (crossbeam's Chase-Lev deque; others
//! steal half of it at a time) and a one-task **next-task (LIFO) slot**: a
//! task woken by the running task while the worker's queue is empty goes
//! there and runs next, which keeps a message ping-pong on one core. With
//! tasks queued, a woken task queues behind them, as on the current-thread
//! scheduler: a task woken by many in a row (an HTTP/2 connection, by each
//! of its streams' tasks as it answers) then handles all their work in one
//! poll, where the slot ran it once per waker. (Measured with `h2load -c64
//! -m10` against `benches/http.rs`'s server on 2 workers: 0.95 `writev`
//! per response with the slot taking every wake, 0.10 with this rule, and
//! 1.6-1.8x the requests per second; tokio, whose slot takes every wake,
//! 0.78.) The slot is capped: after 3 slot polls in
//! a row the worker takes from its queue instead, and an idle worker steals
//! from the slot too, so a long-running task can never pin another behind
//! it. Spawns from outside the runtime, and wakes from threads that are not
//! workers, go to the global injection queue.
//!
//! # Fairness guarantee
//!
//! A worker serves the global queue first every `global_queue_interval`
//! (31) polls, and fires due timers and collects ready I/O every
//! `event_interval` (61) polls (counted across its parks) and whenever it
//! sleeps as the driver (see "Sleeping"). So with a bounded number of
//! tasks, each poll bounded, a woken task is polled within a bounded time; a task that
//! never yields still blocks its own worker (the cooperative budget makes
//! our own resources yield).
//!
//! # Yields
//!
//! A task that yields (it ran out of cooperative budget, or called
//! `yield_now`) is held back on its worker: it runs again when the worker
//! has nothing else (no slot task, queued task or global task), or joins
//! the back of the local queue at the end of the event interval, where
//! other workers can steal it (woken as for any push). Queued at once, a
//! yield would wake an idle worker, which would steal one side of a busy
//! channel and run it across cores from then on (the 2-worker mpsc rows
//! of `benches/sync.rs` ran at about 40 or about 100 ns per message,
//! depending on the luck of that race). Tokio keeps a yield on its worker
//! too. Before the held-back yields run again, the worker checks the
//! timers and the reactor (`park::YieldCheck`) if it has not for 100 µs,
//! so a task that yields (or spends its budget) in a loop of long polls
//! delays a due timer or ready I/O by at most one of its polls (before
//! this check, by up to `event_interval` polls: a 10 ms sleep fired 378
//! ms late next to a loop of 6.4 ms polls). Tokio checks before every
//! such run, a system call each; the gap makes the check a clock read for
//! a loop of short yields. The cost of keeping yields local: a
//! poll that blocks its worker (never yielding) also delays the tasks
//! that yielded just before it, as it delays the slot's task; the
//! stuck-worker detector (`Builder::stuck_worker_threshold`) reports such
//! a poll.
//!
//! # Waking workers
//!
//! On these machines waking a sleeping thread costs ~35 µs, so a worker is
//! woken only when there is work it can take: a push to the global queue,
//! a push that brings a worker's local queue to two tasks (the first is
//! that worker's own next job; longer queues were checked when they
//! reached two), or a batch taken from the global queue that leaves two or
//! more, wakes one parked worker if no worker is already searching; a task
//! placed in the LIFO slot wakes nobody (its waker's worker runs it next). A searching worker that finds work and was the
//! last searcher wakes one more only if more work is visible. A worker that
//! is about to park re-checks every queue after announcing itself idle, so a
//! push that raced with it is never stranded (see [`idle`]).
//!
//! # Sleeping
//!
//! One idle worker at a time is the driver and sleeps in the reactor; the
//! others sleep on their parkers. While a few sockets (at most 8) are
//! registered the driver first polls the reactor without sleeping for up
//! to `io_spin` (20 µs by
//! default, [`Builder::io_spin`](crate::Builder::io_spin)): I/O that comes
//! back that soon (the next chunk of a transfer, a peer's answer) is taken
//! without the ~35 µs sleep and wake-up, which the waking side pays too.
//! After 4 spins in a row that found nothing it spins on one park in 64
//! until one finds I/O again (`park::spin_for_io`). A worker that runs
//! out of work while a blocking-pool job is in flight first spins for the
//! job's result as a searcher, for up to `blocking_spin` (30 µs by
//! default, [`Builder::blocking_spin`](crate::Builder::blocking_spin)), so
//! that the result wakes nobody (see the blocking pool's "Spinning").
//!
//! # Shutdown (the runtime's numbered protocol calls these steps)
//!
//! `shutdown` sets the flag and closes every worker's parker; each worker
//! finishes its current poll, drops the tasks in its queues and exits. The
//! owned-task list then cancels every task nobody is polling.

mod idle;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{
    AtomicU8, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread;
use std::time::Instant;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use waitq::WaitQueue;

use super::{run_outcome, Common, Scheduler};
use crate::context::{self, Core as AnyCore};
use crate::park::Parker;
use crate::task::raw::{PollOutcome, TaskRef, BUDGET};
use idle::Idle;

/// Polls the LIFO slot may take in a row before the local queue gets a turn.
const MAX_LIFO_POLLS: u32 = 3;
const NO_WORKER: usize = usize::MAX;

/// What other threads can reach of one worker.
struct Remote {
    stealer: Stealer<TaskRef>,
    lifo: Mutex<Option<TaskRef>>,
    parker: Parker,
    /// How many yields the worker holds back (`Core::deferred`), for the
    /// metrics' queue depths.
    deferred: AtomicUsize,
}

/// State shared by the workers and every handle.
pub(crate) struct Shared {
    pub(crate) common: Common,
    inject: Injector<TaskRef>,
    remotes: Box<[Remote]>,
    idle: Idle,
    /// Which worker sleeps as the driver (in the reactor, or parked with
    /// the next timer's deadline as its timeout).
    driver_worker: AtomicUsize,
    driver_taken: std::sync::atomic::AtomicBool,
    /// Threads in `block_on`: woken when a panic shuts the runtime down.
    block_on_parkers: Mutex<Vec<Arc<ThreadParker>>>,
    /// Worker threads still running, and the queue shutdown waits on.
    running: AtomicUsize,
    exited: WaitQueue,
    /// The worker threads, joined once they have all left their loops
    /// (see [`wait_for_workers`](Shared::wait_for_workers)).
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// One worker's own state; lives in its thread's context.
pub(crate) struct Core {
    owner: usize,
    index: usize,
    local: Worker<TaskRef>,
    tick: u32,
    /// Polls left before the global queue is served first (counts down
    /// from `global_queue_interval`; a division per poll cost ~7 ns).
    until_global: u32,
    lifo_polls: u32,
    /// This worker put a task in its LIFO slot that it has not taken back
    /// (a thief may have): only then is the slot's lock worth taking.
    lifo_filled: bool,
    searching: bool,
    /// Tasks that yielded (`PollOutcome::Yielded`: the cooperative budget
    /// ran out, or `yield_now`), held back from the local queue until this
    /// worker has nothing else to run or ends an event interval (see
    /// "Yields" above).
    deferred: Vec<TaskRef>,
}

impl Core {
    /// [`Shared::requeue`] on this core. Returns this worker's index when
    /// the push made work for another worker, which must then be woken.
    /// `held` is this worker's `Remote::deferred`.
    #[inline]
    fn requeue(&mut self, task: TaskRef, yielded: bool, held: &AtomicUsize) -> Option<usize> {
        if yielded {
            self.deferred.push(task);
            held.store(self.deferred.len(), Relaxed);
            return None;
        }
        self.local.push(task);
        made_work_stealable(&self.local).then_some(self.index)
    }

    /// Moves the held-back yields to the back of the local queue.
    fn requeue_deferred(&mut self, held: &AtomicUsize) {
        if self.deferred.is_empty() {
            return;
        }
        for task in self.deferred.drain(..) {
            self.local.push(task);
        }
        held.store(0, Relaxed);
    }
}

impl Shared {
    /// Builds the scheduler and starts `workers` threads.
    pub(crate) fn start(common: Common, workers: usize) -> std::io::Result<Arc<Shared>> {
        let locals: Vec<Worker<TaskRef>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let remotes = locals
            .iter()
            .map(|local| Remote {
                stealer: local.stealer(),
                lifo: Mutex::new(None),
                parker: Parker::for_driver(&common),
                deferred: AtomicUsize::new(0),
            })
            .collect();
        let shared = Arc::new(Shared {
            common,
            inject: Injector::new(),
            remotes,
            idle: Idle::new(workers),
            driver_worker: AtomicUsize::new(NO_WORKER),
            driver_taken: std::sync::atomic::AtomicBool::new(false),
            block_on_parkers: Mutex::new(Vec::new()),
            running: AtomicUsize::new(workers),
            exited: WaitQueue::named("waitrt::workers_exited"),
            threads: Mutex::new(Vec::with_capacity(workers)),
        });
        for (index, local) in locals.into_iter().enumerate() {
            let core = Box::new(Core {
                owner: Arc::as_ptr(&shared) as usize,
                index,
                local,
                tick: 0,
                until_global: shared.common.config.global_queue_interval,
                lifo_polls: 0,
                lifo_filled: false,
                searching: false,
                deferred: Vec::new(),
            });
            let worker_shared = shared.clone();
            let mut builder = thread::Builder::new()
                .name(format!("{}-{index}", shared.common.config.thread_name));
            if let Some(size) = shared.common.config.thread_stack_size {
                builder = builder.stack_size(size);
            }
            match builder.spawn(move || worker_main(worker_shared, core)) {
                Ok(thread) => shared
                    .threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(thread),
                Err(err) => {
                    shared.running.fetch_sub(workers - index, AcqRel);
                    shared.shutdown();
                    // Say what could not start (the OS says only `EAGAIN`,
                    // whose kind, `WouldBlock`, reads as "try again").
                    return Err(std::io::Error::other(WorkerStartError {
                        index,
                        workers,
                        source: err,
                    }));
                }
            }
        }
        Ok(shared)
    }

    fn addr(&self) -> usize {
        self as *const Shared as usize
    }

    pub(crate) fn workers(&self) -> usize {
        self.remotes.len()
    }

    /// Queues a task. From one of our workers it goes to that worker's
    /// LIFO slot (a wake while the local queue is empty) or local queue (a
    /// yield or spawn, or a wake behind queued tasks: see the module docs);
    /// from anywhere else to the global queue.
    pub(crate) fn schedule(&self, task: TaskRef, is_yield: bool) {
        let me = self.addr();
        let mut task = Some(task);
        let pushed_local = context::with_core(|core| match core {
            AnyCore::MultiThread(core) if core.owner == me => {
                Some(self.push_local(core, task.take()?, is_yield))
            }
            _ => None,
        })
        .flatten();
        match (pushed_local, task) {
            (Some((false, _)), _) => {}
            // Not ourselves: a driver that wakes tasks from inside its
            // reactor turn is still listed as parked (and would be woken
            // through the eventfd for nothing).
            (Some((true, me)), _) => self.notify_parked_except(Some(me)),
            (None, Some(task)) => {
                self.inject.push(task);
                super::drain_after_shutdown(&self.common, &self.inject);
                self.notify_parked();
            }
            (None, None) => unreachable!("a task taken by the core was queued"),
        }
    }

    /// Queues `task` on `core`, one of this runtime's workers' (see
    /// [`schedule`](Self::schedule)): whether that made work another
    /// worker can take, and the worker's index.
    #[inline]
    fn push_local(&self, core: &mut Core, task: TaskRef, is_yield: bool) -> (bool, usize) {
        if is_yield || !core.local.is_empty() {
            core.local.push(task);
            return (made_work_stealable(&core.local), core.index);
        }
        let mut slot = self.remotes[core.index]
            .lifo
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = slot.replace(task);
        drop(slot);
        core.lifo_filled = true;
        // A task displaced from the slot is work another worker can take.
        match previous {
            Some(previous) => {
                core.local.push(previous);
                (made_work_stealable(&core.local), core.index)
            }
            None => (false, core.index),
        }
    }

    /// A wake on a thread of this runtime whose core is `core` (the
    /// caller found both in one look at the thread's context, where
    /// [`schedule`](Self::schedule) looks again): if `core` is one of our
    /// workers', into its LIFO slot or local queue, and another worker
    /// told if that made work it can take; otherwise the task comes back.
    /// Nothing here drops a task or looks at the thread's context.
    pub(crate) fn wake_on_own_core(&self, core: &mut Core, task: TaskRef) -> Option<TaskRef> {
        if core.owner != self.addr() {
            return Some(task);
        }
        let (stealable, me) = self.push_local(core, task, false);
        if stealable {
            self.notify_parked_except(Some(me));
        }
        None
    }

    /// Queues again, from its own worker, a task woken during its poll
    /// there: behind this worker's queue, or held back (`Core::deferred`)
    /// when it yielded.
    fn requeue(&self, task: TaskRef, yielded: bool) {
        let pushed = with_worker(|core| {
            let held = &self.remotes[core.index].deferred;
            core.requeue(task, yielded, held)
        });
        if let Some(me) = pushed {
            self.notify_parked_except(Some(me));
        }
    }

    /// Wakes one parked worker if work was queued and nobody searches.
    fn notify_parked(&self) {
        self.notify_parked_except(None);
    }

    /// [`notify_parked`](Self::notify_parked), never waking worker `me`.
    fn notify_parked_except(&self, me: Option<usize>) {
        let driver = self.driver_worker.load(Acquire);
        if let Some(index) = self.idle.worker_to_notify(me, driver) {
            self.remotes[index].parker.unpark();
        }
    }

    /// With a paused clock (where [`Common::busy`] is counted): whether no
    /// thread of the runtime but the caller's (a worker running the
    /// calling task, or the `block_on` thread) runs tasks, and none is
    /// queued. What `time::advance` waits for.
    pub(crate) fn settled_but_caller(&self) -> bool {
        self.common.busy.load(SeqCst) <= 1 && !self.has_visible_work()
    }

    /// Whether any queue holds a task another worker could take. LIFO
    /// slots do not count: a slot's owner is awake and runs it next.
    fn has_visible_work(&self) -> bool {
        !self.inject.is_empty() || self.remotes.iter().any(|r| !r.stealer.is_empty())
    }

    /// A timer earlier than the driver worker's sleep was added, or the
    /// first I/O source (the driver may sleep off the reactor while there
    /// is none: `park.rs`, "No sources"). SeqCst, as the driver's store
    /// of itself before it checks for sources (`park`).
    pub(crate) fn unpark_driver(&self) {
        let index = self.driver_worker.load(SeqCst);
        if index != NO_WORKER {
            self.remotes[index].parker.unpark();
        }
    }

    pub(crate) fn unpark_all(&self) {
        for remote in self.remotes.iter() {
            remote.parker.unpark();
        }
        for parker in self.parkers().iter() {
            parker.unpark();
        }
    }

    fn parkers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ThreadParker>>> {
        self.block_on_parkers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue depths: global, then each worker's local queue.
    pub(crate) fn queue_depths(&self) -> (usize, Vec<usize>) {
        let locals = self
            .remotes
            .iter()
            .map(|r| {
                r.stealer.len()
                    + usize::from(r.lifo.try_lock().map(|s| s.is_some()).unwrap_or(false))
                    + r.deferred.load(Relaxed)
            })
            .collect();
        (self.inject.len(), locals)
    }

    /// Shutdown step: stop the workers (they finish their current poll).
    pub(crate) fn shutdown(&self) {
        self.common
            .shutdown
            .store(true, std::sync::atomic::Ordering::Release);
        for remote in self.remotes.iter() {
            remote.parker.close();
        }
    }

    /// Shutdown's last step: drops every task still queued anywhere (the
    /// global queue, each worker's queue and LIFO slot), which the
    /// owned-task list has already ended. A queued task holds this
    /// scheduler, so one left behind would keep the runtime alive forever
    /// (see [`super::drain_after_shutdown`] for wakes that come later). A
    /// worker still stuck in a poll empties its own queues when it exits.
    pub(crate) fn drain_queues(&self) {
        super::drain(&self.inject);
        for remote in self.remotes.iter() {
            loop {
                match remote.stealer.steal() {
                    Steal::Success(task) => drop(task),
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            }
            // Taken in one statement, dropped in the next: the slot's lock
            // is released before the task's drop runs (which must not find
            // it held, should it ever wake a task onto this slot).
            let task = remote
                .lifo
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            drop(task);
        }
    }

    /// Waits until every worker thread has exited or `deadline` passes.
    /// Returns whether they all exited. A worker that shuts its own
    /// runtime down (a task that drops the `Runtime`) is not waited for:
    /// it exits when that poll returns.
    pub(crate) fn wait_for_workers(&self, deadline: Option<Instant>) -> bool {
        let me = self.addr();
        let on_worker = context::with_core(
            |core| matches!(core, AnyCore::MultiThread(core) if core.owner == me),
        )
        .unwrap_or(false);
        let done = || self.running.load(Acquire) <= usize::from(on_worker);
        let stopped = match deadline {
            None => self.exited.blocking_wait_event(done).is_ok() || done(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.exited.blocking_wait_event_timeout(left, done).is_ok() || done()
            }
        };
        if stopped && !on_worker {
            // Every worker has left its loop; what is left of each thread
            // is its exit (its handle on the runtime, its context): joined,
            // so a runtime dropped is gone when the drop returns (its
            // threads lingered, with the reactor's fds, for a few hundred
            // ms after: a scale probe).
            let threads =
                std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
            for thread in threads {
                let _ = thread.join();
            }
        }
        stopped
    }

    fn pop_inject(&self, local: &Worker<TaskRef>) -> Option<TaskRef> {
        loop {
            match self.inject.steal_batch_and_pop(local) {
                Steal::Success(task) => {
                    // The batch moved here without a push, and while it
                    // moved it was in neither queue: a worker that parked
                    // then saw nothing. Check for one now if the batch left
                    // work to steal (`made_work_stealable` covers pushes).
                    if local.len() >= 2 {
                        self.notify_parked();
                    }
                    return Some(task);
                }
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }
}

fn worker_main(shared: Arc<Shared>, core: Box<Core>) {
    let scheduler = Scheduler::MultiThread(shared.clone());
    let _enter = context::enter(scheduler);
    let _driving = context::enter_driving();
    let previous = context::set_core(AnyCore::MultiThread(core));
    let busy = shared.common.enter_busy();
    run_worker(&shared);
    drop(busy);
    // A fatal panic stopped the workers: end the tasks now (a `block_on`
    // may not be running to do it).
    super::end_tasks_after_fatal(&shared.common);
    // Drop whatever is still queued here: the owned list cancels them.
    let core = context::set_core(previous);
    if let AnyCore::MultiThread(mut core) = core {
        while core.local.pop().is_some() {}
        core.deferred.clear();
        shared.remotes[core.index].deferred.store(0, Relaxed);
        // Out of the slot first, then dropped with its lock released.
        let task = shared.remotes[core.index]
            .lifo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(task);
    }
    shared.running.fetch_sub(1, AcqRel);
    shared.exited.wake_up_all();
}

/// Whether the push just made gave this worker's queue work for another
/// worker: one queued task is the owner's own next job, so only the second
/// is. Only the owner adds to its queue (these pushes; batches from the
/// global queue, which check on their own in `pop_inject`; and the held-back
/// yields, taken back without a check when the worker runs dry, which the
/// end of the interval makes up for by checking whenever two or more are
/// queued) and thieves only take, so the queue reaches two by a push of
/// ours each time it becomes worth stealing from, and that push checks for
/// parked workers (`worker_to_notify`: a full fence, then the sleeper
/// count). A worker that parks later re-checks every queue after
/// announcing itself, and finds this one non-empty. Longer queues skip the
/// check, which costs a fence per push (yield_many, 2 threads).
fn made_work_stealable(local: &Worker<TaskRef>) -> bool {
    local.len() == 2
}

/// A worker thread the OS would not start (the build's error; the OS
/// error is its `source()`).
#[derive(Debug)]
struct WorkerStartError {
    index: usize,
    workers: usize,
    source: std::io::Error,
}

impl std::fmt::Display for WorkerStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (index, workers) = (self.index, self.workers);
        write!(
            f,
            "cannot start worker thread {index} of {workers}: {}",
            self.source
        )
    }
}

impl std::error::Error for WorkerStartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Runs `f` with this worker's core.
#[inline]
fn with_worker<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    context::with_core(|core| match core {
        AnyCore::MultiThread(core) => f(core),
        _ => unreachable!("a worker thread always has its core"),
    })
    .expect("worker core is not borrowed across a poll")
}

fn run_worker(shared: &Shared) {
    let slot = shared.common.obs.slot(with_worker(|core| core.index));
    let interval = shared.common.config.event_interval;
    // Polls since this worker last checked the drivers, counted across
    // its parks (as tokio's tick): a worker that runs dry every few polls
    // and parks on its parker (another worker sleeps in the reactor) still
    // takes in its tasks' I/O once per interval while busy, instead of
    // leaving all of it to the driver, which must wake, queue it and wake
    // this worker again to steal it. Restarted at every park, the count
    // never reached the interval in tcp_echo_rr on 2 workers: 1.6x tokio's
    // futex wakes and context switches, 0.91x tokio's round trips.
    let mut since_events = 0;
    let mut yield_check = crate::park::YieldCheck::new();
    loop {
        if shared.common.is_shutdown() {
            return;
        }
        slot.turn();
        let mut ran = 0;
        // A task woken during its poll, queued again by the next
        // `next_task` (one core borrow for both).
        let mut again = None;
        while since_events < interval {
            let task = match next_task(shared, &mut again) {
                Next::Task(task) => task,
                Next::OnlyYields => {
                    // Nothing else here: the yields run now, on this
                    // worker, which wakes nobody for them until the
                    // interval ends; due timers and ready I/O go first.
                    if yield_check.before_yields(&shared.common) {
                        // `since_events` runs on: the end of the interval
                        // is where the yields join the stealable queue and
                        // an idle worker is woken for them (resetting it
                        // here kept CPU-bound yielders on one worker while
                        // the others slept). A new turn dates the polls.
                        slot.turn();
                    }
                    with_worker(|core| core.requeue_deferred(&shared.remotes[core.index].deferred));
                    continue;
                }
                Next::Empty => match steal(shared) {
                    Some(task) => task,
                    None => break,
                },
            };
            transition_from_searching(shared);
            let mut outcome = None;
            if let Some(task) = run_outcome(task, Some(&slot), &mut outcome) {
                again = Some((task, outcome == Some(PollOutcome::Yielded)));
            }
            ran += 1;
            since_events += 1;
            if shared.common.is_shutdown() {
                shared.common.counters.add_polls(ran as usize);
                return; // `again`, if any, is dropped: the owned list ends it
            }
        }
        if let Some((task, yielded)) = again {
            shared.requeue(task, yielded);
        }
        shared.common.counters.add_polls(ran as usize);
        if since_events < interval && spin_for_result(shared) {
            continue;
        }
        if since_events == interval {
            since_events = 0;
            yield_check.checked(crate::park::poll_drivers(&shared.common));
            // Yields join the queue behind what the drivers woke, where
            // other workers can take them. A queue of two or more has work
            // for another worker: wake one (the yields taken back when the
            // worker ran dry woke nobody).
            let (index, queued) = with_worker(|core| {
                core.requeue_deferred(&shared.remotes[core.index].deferred);
                (core.index, core.local.len())
            });
            if queued >= 2 {
                shared.notify_parked_except(Some(index));
            }
            continue;
        }
        park(shared);
    }
}

/// What [`next_task`] found.
enum Next {
    Task(TaskRef),
    /// Nothing to run here but the yields this worker holds back.
    OnlyYields,
    /// Nothing here at all: time to steal.
    Empty,
}

/// The next task to run, after queueing `again` (a task woken during the
/// last poll, and whether it yielded: see [`Shared::requeue`]).
fn next_task(shared: &Shared, again: &mut Option<(TaskRef, bool)>) -> Next {
    let interval = shared.common.config.global_queue_interval;
    with_worker(|core| {
        let remote = &shared.remotes[core.index];
        if let Some((task, yielded)) = again.take() {
            if let Some(me) = core.requeue(task, yielded, &remote.deferred) {
                shared.notify_parked_except(Some(me));
            }
        }
        core.tick = core.tick.wrapping_add(1);
        core.until_global -= 1;
        if core.until_global == 0 {
            core.until_global = interval;
            if let Some(task) = shared.pop_inject(&core.local) {
                return Next::Task(task);
            }
        }
        let lifo = if std::mem::take(&mut core.lifo_filled) {
            remote
                .lifo
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        if let Some(task) = lifo {
            if core.lifo_polls < MAX_LIFO_POLLS {
                core.lifo_polls += 1;
                return Next::Task(task);
            }
            // Capped: the slot's task waits its turn in the queue.
            core.local.push(task);
        }
        core.lifo_polls = 0;
        match core.local.pop().or_else(|| shared.pop_inject(&core.local)) {
            Some(task) => Next::Task(task),
            None if core.deferred.is_empty() => Next::Empty,
            None => Next::OnlyYields,
        }
    })
}

/// Out of local work: steal half of another worker's queue (or its LIFO
/// slot). At most half of the workers search at once.
fn steal(shared: &Shared) -> Option<TaskRef> {
    with_worker(|core| {
        if !core.searching {
            if !shared.idle.try_start_searching() {
                return None;
            }
            core.searching = true;
        }
        let n = shared.remotes.len();
        let start = (core.tick as usize) % n;
        for offset in 0..n {
            let victim = (start + offset) % n;
            if victim == core.index {
                continue;
            }
            let remote = &shared.remotes[victim];
            loop {
                match remote.stealer.steal_batch_and_pop(&core.local) {
                    Steal::Success(task) => {
                        shared.common.counters.steals.fetch_add(1, Relaxed);
                        return Some(task);
                    }
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            }
            if let Ok(mut slot) = remote.lifo.try_lock() {
                if let Some(task) = slot.take() {
                    shared.common.counters.steals.fetch_add(1, Relaxed);
                    return Some(task);
                }
            }
        }
        shared.pop_inject(&core.local)
    })
}

/// Out of work while a blocking-pool job is in flight: spin for its result
/// (`Builder::blocking_spin`) as a searcher, so that the job's wake of its
/// task, queued from the pool thread, unparks nobody. True when work came.
/// Only one worker in two may search (`Idle::try_start_searching`).
fn spin_for_result(shared: &Shared) -> bool {
    let blocking = &shared.common.blocking;
    if !blocking.is_busy() {
        return false;
    }
    let searching = with_worker(|core| {
        if !core.searching && shared.idle.try_start_searching() {
            core.searching = true;
        }
        core.searching
    });
    searching && blocking.spin_for_result(|| shared.has_visible_work())
}

/// Found work: stop searching; the last searcher passes the baton on if
/// more work is visible.
fn transition_from_searching(shared: &Shared) {
    let was_searching = with_worker(|core| std::mem::take(&mut core.searching));
    if was_searching && shared.idle.stop_searching() && shared.has_visible_work() {
        shared.notify_parked();
    }
}

/// Nothing to run anywhere: sleep. One parked worker at a time is the
/// driver: it sleeps in the reactor with the next timer's deadline as its
/// timeout; the others park on their own parkers (`park.rs`).
fn park(shared: &Shared) {
    let (index, searching) = with_worker(|core| (core.index, std::mem::take(&mut core.searching)));
    shared.idle.park(index, searching);
    // Announced idle; a push that raced with us is visible now.
    if shared.has_visible_work() {
        shared.notify_parked();
    }
    shared.common.counters.parks.fetch_add(1, Relaxed);
    let parker = &shared.remotes[index].parker;
    let common = &shared.common;
    // Idle while parked: with a paused clock, a jump needs every thread so.
    let paused = common.has_paused_clock();
    if paused {
        common
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
    let has_drivers = common.time.is_some() || common.io.is_some();
    if has_drivers && !shared.driver_taken.swap(true, AcqRel) {
        // SeqCst: before its check for I/O sources, against a source's
        // registration and then `unpark_driver` (see "No sources" in
        // `park.rs`).
        shared.driver_worker.store(index, SeqCst);
        if !common.is_shutdown() {
            // Polling a while first takes I/O that is about to come without
            // a sleep and a wake-up (`Builder::io_spin`).
            let spun = common.io.as_ref().is_some_and(|io| {
                crate::park::spin_for_io(io, common.config.io_spin, || shared.has_visible_work())
            });
            if !spun {
                // A paused clock jumps only when no thread runs tasks (a
                // woken `block_on` counts from its wake) and none is queued.
                crate::park::park_driving(common, parker, || {
                    common.busy.load(std::sync::atomic::Ordering::SeqCst) == 0
                        && !shared.has_visible_work()
                });
            } else if let Some(time) = &common.time {
                time.process();
            }
        }
        shared
            .driver_worker
            .store(NO_WORKER, std::sync::atomic::Ordering::Release);
        shared
            .driver_taken
            .store(false, std::sync::atomic::Ordering::Release);
    } else if !common.is_shutdown() {
        parker.park(None);
    }
    if paused {
        common
            .busy
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if shared.idle.unpark(index) {
        with_worker(|core| core.searching = true);
    }
}

/// Runs `future` on the calling thread while the workers run the tasks.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    let _enter = context::enter(Scheduler::MultiThread(shared.clone()));
    let mut future = pin!(future);
    let parker = Arc::new(ThreadParker {
        parker: Parker::new(),
        busy: shared
            .common
            .has_paused_clock()
            .then(|| (AtomicU8::new(IDLE), shared.common.busy.clone())),
    });
    shared.parkers().push(parker.clone());
    let _registered = Unregister(shared, &parker);
    let waker = std::task::Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    // The future's sleeps go to this thread's slot (dumps read it there).
    let sleeps = shared.common.obs.block_ons.enter();
    loop {
        super::check_fatal_panic(&shared.common);
        let busy = shared.common.enter_busy();
        parker.took_wake();
        let (poll, _) =
            waitq::coop::with_budget(BUDGET, || sleeps.poll(|| future.as_mut().poll(&mut cx)));
        drop(busy);
        if let Poll::Ready(out) = poll {
            return out;
        }
        // Waiting for a blocking-pool job's result, most likely: spin for
        // the wake before sleeping.
        shared
            .common
            .blocking
            .spin_for_result(|| parker.parker.is_notified());
        parker.parker.park(None);
    }
}

/// Takes a `block_on` parker off the registry.
struct Unregister<'a>(&'a Shared, &'a Arc<ThreadParker>);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.parkers().retain(|p| !Arc::ptr_eq(p, self.1));
        self.1.finish();
    }
}

/// A `block_on` thread's parker, and its waker.
struct ThreadParker {
    parker: Parker,
    /// With a paused clock: a wake not yet taken by the thread, counted in
    /// the runtime's `busy` from the wake until the thread polls (then its
    /// poll counts), so the clock never jumps while the thread is woken
    /// but not yet running.
    /// (`IDLE`, `WOKEN` or `DONE`: `block_on` returned, and a late wake
    /// through a waker that outlived it counts nothing.)
    busy: Option<(AtomicU8, Arc<AtomicUsize>)>,
}

const IDLE: u8 = 0;
const WOKEN: u8 = 1;
const DONE: u8 = 2;

impl ThreadParker {
    fn unpark(&self) {
        if let Some((state, busy)) = &self.busy {
            if state.compare_exchange(IDLE, WOKEN, SeqCst, SeqCst).is_ok() {
                busy.fetch_add(1, SeqCst);
            }
        }
        self.parker.unpark();
    }

    /// The thread is counted as polling now: its pending wake stops
    /// counting.
    fn took_wake(&self) {
        if let Some((state, busy)) = &self.busy {
            if state.compare_exchange(WOKEN, IDLE, SeqCst, SeqCst).is_ok() {
                busy.fetch_sub(1, SeqCst);
            }
        }
    }

    /// `block_on` returns: a pending wake stops counting, and later ones
    /// never count.
    fn finish(&self) {
        if let Some((state, busy)) = &self.busy {
            if state.swap(DONE, SeqCst) == WOKEN {
                busy.fetch_sub(1, SeqCst);
            }
        }
    }
}

impl std::task::Wake for ThreadParker {
    fn wake(self: Arc<Self>) {
        self.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.unpark();
    }
}
