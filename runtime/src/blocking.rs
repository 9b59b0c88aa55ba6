//! The blocking pool behind [`spawn_blocking`](crate::spawn_blocking).
//!
//! Jobs go to a FIFO queue; an idle pool thread takes the next one, and a
//! new thread starts when none is idle, up to `max_blocking_threads`
//! (default 512). A thread idle for `thread_keep_alive` (default 10 s)
//! exits. An idle thread parks on its own [`Parker`] and joins the pool's
//! list of idle threads; a job takes one thread off that list and unparks
//! it, so one job wakes one thread. The list and the job queue share one
//! lock, so a thread goes idle only when no job is queued for it, and a
//! job never waits while an idle thread sleeps. (A parker is a swap and,
//! for a sleeping thread, one futex wake: the wait queue it replaced cost
//! about 2,600 instructions per job, callgrind, `benches/fs_process.rs`
//! fs_write/4KiB.) Kernel: a workqueue pool's idle workers
//! (`pool->idle_list`, woken with `wake_up_process()`), which sleep on no
//! wait queue either: there is nothing to wait *for* but a job, and a dump
//! lists what a job waits on while it runs. A job is a task like any other
//! (its `JoinHandle` is the same type); it cannot be cancelled once it
//! runs.
//!
//! # Which idle thread a job wakes
//!
//! The one that went idle last (LIFO, as the workqueue's idle list), so
//! threads the load no longer needs stay asleep until their keep-alive
//! ends; a wake of the one idle longest (FIFO) spreads a trickle of jobs
//! over every thread and keeps them all alive. But not while the one that
//! went idle last did so within [`CACHE_HOT`] (the kernel's
//! `sched_migration_cost`, the time within which the scheduler counts a
//! task as cache-hot on the CPU it left): jobs are coming back to back,
//! and that thread has most likely just shared a CPU with the task that
//! now wakes it, so the scheduler starts it on the other CPU, whose wake
//! from idle a virtual machine makes slow (`perf sched timehist`: 35–45 µs
//! of scheduling delay per wake). Then the job wakes the one idle longest.
//! Back-to-back `fs::read`s of 4 KiB from one task (2 CPUs,
//! `FS_PROCESS_BENCH_CHILD=fs_read/4KiB`, 8 runs each, median µs per
//! call): 63–73 waking the last idle thread always, 33–38 the longest idle
//! one always, 28 with this rule (tokio: 32–34, its condition variable
//! wakes the longest waiter). `fs::write`s of 4 KiB, which come about 175
//! µs apart, went from 175 to 199.
//!
//! # Spinning
//!
//! A thread woken from sleep on an idle CPU of a virtual machine runs tens
//! of µs later, and `fs::read` of a small file is two hand-offs (to a pool
//! thread and back) around a few µs of work. So neither side sleeps at
//! once (`Builder::blocking_spin`, 30 µs by default where there is more
//! than one CPU): a pool thread that finished a job spins on its parker
//! for the next one (still on the idle list, where [`choose_idle`] takes
//! a spinning thread first: its unpark is a swap), and a scheduler thread
//! that runs out of work while a job is in flight spins for the result
//! ([`BlockingPool::spin_for_result`]; a multi-thread worker does so as a
//! searcher, so that the job's wake of its task unparks nobody). Each side
//! backs off when its spins keep missing (`park::SpinGovernor`): a job
//! longer than the spin, or jobs that come seldom, cost no spinning after
//! the first few. Back-to-back `fs::read`s of 4 KiB (see `Builder::blocking_spin`):
//! about 25 µs each without the spins, about 5 µs with them.
//!
//! When the pool has no thread and the OS refuses to start one (a pid
//! limit, `RLIMIT_NPROC`, no address space for a stack), the job's handle
//! resolves at once to a [`JoinError`](crate::task::JoinError) for which
//! `is_spawn_failed()` holds, naming the OS error; nothing waits forever.
//!
//! Shutdown: no new job is accepted (its handle resolves to a shutdown
//! `JoinError`); queued jobs that never started are cancelled the same way,
//! except mandatory ones (a `fs::File`'s writes, which its caller was
//! already told succeeded: tokio's `spawn_mandatory_blocking`), which the
//! pool threads still run before they exit; running jobs (and those
//! mandatory ones) get the shutdown timeout to finish, after which their
//! threads are left to end on their own. A running job's handle resolves
//! at once to a `JoinError` for which `is_abandoned()` holds: the closure
//! cannot be cancelled, and goes on in its thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use waitq::WaitQueue;

use crate::context;
use crate::obs::PollSlot;
use crate::park::{Parker, SpinGovernor};
use crate::task::raw::TaskRef;

/// Pool settings.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    /// How long a pool thread spins for its next job, and a scheduler
    /// thread for a job's result, before sleeping (`Builder::blocking_spin`).
    pub(crate) spin: Duration,
}

struct State {
    jobs: VecDeque<TaskRef>,
    threads: usize,
    shutdown: bool,
    next_thread: usize,
    /// Idle threads' parkers and when each went idle, the one that went
    /// idle last at the back (see [`choose_idle`]). A thread off this list
    /// has a job to look for (or shutdown began); one still on it when it
    /// wakes was not chosen.
    idle: VecDeque<(Arc<Parker>, Instant)>,
}

/// A thread idle for less than this is cache-hot on the CPU it left (the
/// kernel's default `sched_migration_cost`, 0.5 ms).
const CACHE_HOT: Duration = Duration::from_micros(500);

/// Takes the idle thread a job wakes off `idle` (see the module docs):
/// the one that went idle last if it still spins for a job, or if it went
/// idle at least [`CACHE_HOT`] before `now`; else the one idle longest.
fn choose_idle(idle: &mut VecDeque<(Arc<Parker>, Instant)>, now: Instant) -> Option<Arc<Parker>> {
    let (last, since) = idle.back()?;
    if !last.is_parked() {
        // Still spinning for a job: the unpark is a swap, and no wake-up.
        return idle.pop_back().map(|(thread, _)| thread);
    }
    let chosen = match now.saturating_duration_since(*since) >= CACHE_HOT {
        true => idle.pop_back(),
        false => idle.pop_front(),
    };
    chosen.map(|(thread, _)| thread)
}

struct Inner {
    state: Mutex<State>,
    /// Jobs queued or running: a paused clock does not jump while a job
    /// works in real time.
    in_flight: AtomicUsize,
    /// Shutdown waits here for the threads to exit.
    exited: WaitQueue,
    config: PoolConfig,
    /// Whether pool threads' spins for their next job find one.
    job_spins: SpinGovernor,
    /// Whether scheduler threads' spins for a job's result find it.
    result_spins: SpinGovernor,
    /// Each pool thread's poll slot: the job it runs and since when, for
    /// task dumps (a job that blocks for minutes shows for how long). A
    /// thread adds its own when it starts and takes it out as it exits.
    slots: Mutex<Vec<Arc<PollSlot>>>,
}

/// The runtime's blocking pool.
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

/// The pool refused a job: shutdown began.
pub(crate) struct PoolShutdown(pub(crate) TaskRef);

impl BlockingPool {
    pub(crate) fn new(config: PoolConfig) -> Self {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    shutdown: false,
                    next_thread: 0,
                    idle: VecDeque::new(),
                }),
                in_flight: AtomicUsize::new(0),
                exited: WaitQueue::named("waitrt::blocking_pool_exited"),
                config,
                job_spins: SpinGovernor::new(),
                result_spins: SpinGovernor::new(),
                slots: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The pool threads' poll slots (task dumps: a running job's
    /// duration).
    pub(crate) fn poll_slots(&self) -> Vec<Arc<PollSlot>> {
        self.inner.lock_slots().clone()
    }

    /// Queues a job (a task whose poll runs the closure).
    pub(crate) fn spawn(&self, job: TaskRef) -> Result<(), PoolShutdown> {
        let inner = &self.inner;
        let mut state = inner.lock();
        if state.shutdown {
            return Err(PoolShutdown(job));
        }
        state.jobs.push_back(job);
        inner.in_flight.fetch_add(1, AcqRel);
        if let Some(thread) = choose_idle(&mut state.idle, Instant::now()) {
            drop(state);
            // An unpark before the thread parks is not lost.
            thread.unpark();
        } else if state.threads < inner.config.max_threads {
            state.threads += 1;
            let id = state.next_thread;
            state.next_thread += 1;
            drop(state);
            let pool = inner.clone();
            let mut builder =
                thread::Builder::new().name(format!("{}-blocking-{id}", inner.config.thread_name));
            if let Some(size) = inner.config.stack_size {
                builder = builder.stack_size(size);
            }
            if let Err(err) = builder.spawn(move || pool.thread_main()) {
                inner.no_thread(err);
            }
        }
        // Otherwise every thread is busy and the pool is full: the job
        // waits for the first thread to finish its own.
        Ok(())
    }

    /// Whether a job is queued or running.
    pub(crate) fn is_busy(&self) -> bool {
        self.inner.in_flight.load(Acquire) > 0
    }

    /// A scheduler thread out of work, about to sleep: while a job is in
    /// flight, spins (see "Spinning" above) until `arrived` says its result
    /// (or other work) came: true. False at once when no job is in flight
    /// or recent spins kept missing, else after the spin.
    pub(crate) fn spin_for_result(&self, arrived: impl FnMut() -> bool) -> bool {
        self.is_busy()
            && self
                .inner
                .result_spins
                .spin(self.inner.config.spin, arrived)
    }

    /// Threads alive, and jobs waiting (metrics).
    pub(crate) fn stats(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.threads, state.jobs.len())
    }

    /// Refuses new jobs, drops queued ones but the mandatory ones, and
    /// waits until `deadline` for running jobs and those. Returns whether every pool thread exited. A pool
    /// thread that shuts its own runtime down (a job that drops the
    /// `Runtime`) is not waited for: it exits when its job returns.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        let inner = &self.inner;
        let (queued, idle) = {
            let mut state = inner.lock();
            state.shutdown = true;
            // Mandatory jobs stay queued: the threads run them before they
            // exit (a thread takes a queued job before it looks at
            // `shutdown`). The others were cancelled through the owned-task
            // list.
            let (keep, cancelled) = std::mem::take(&mut state.jobs)
                .into_iter()
                .partition(|job: &TaskRef| job.header().state.load().is_mandatory());
            state.jobs = keep;
            (cancelled, std::mem::take(&mut state.idle))
        };
        inner.in_flight.fetch_sub(queued.len(), AcqRel);
        drop::<VecDeque<TaskRef>>(queued);
        for (thread, _) in idle {
            // Off the list: it wakes, runs what mandatory jobs are left,
            // sees shutdown, exits.
            thread.close();
        }
        let me = usize::from(inner.is_current_thread());
        let done = || inner.lock().threads <= me;
        match deadline {
            None => inner.exited.blocking_wait_event(done).is_ok() || done(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                inner.exited.blocking_wait_event_timeout(left, done).is_ok() || done()
            }
        }
    }
}

thread_local! {
    /// The pool this thread serves (its `Inner`'s address), 0 elsewhere.
    static POOL_THREAD: Cell<usize> = const { Cell::new(0) };
}

impl Inner {
    fn lock_slots(&self) -> MutexGuard<'_, Vec<Arc<PollSlot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the calling thread is one of this pool's threads.
    fn is_current_thread(&self) -> bool {
        POOL_THREAD.with(Cell::get) == self as *const Inner as usize
    }

    /// The OS refused to start a thread for a job just queued. If the pool
    /// has no thread at all, nothing will ever run the queued jobs: each
    /// ends now with a [`JoinError`](crate::task::JoinError) naming the OS
    /// error, and stops counting as in flight (so a paused clock does not
    /// wait for it). Otherwise the jobs wait for a running thread, as they
    /// do when the pool is at `max_blocking_threads`.
    fn no_thread(&self, err: std::io::Error) {
        let jobs = {
            let mut state = self.lock();
            state.threads -= 1;
            if state.threads > 0 {
                return;
            }
            std::mem::take(&mut state.jobs)
        };
        self.in_flight.fetch_sub(jobs.len(), AcqRel);
        for job in jobs {
            let err = match err.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(err.kind(), err.to_string()),
            };
            // Queued and never started: nobody else can hold it.
            if job.header().state.claim_for_shutdown() {
                let id = job.header().id;
                job.cancel(crate::task::JoinError::spawn_failed(id, err));
            }
        }
    }

    fn thread_main(self: Arc<Self>) {
        POOL_THREAD.with(|pool| pool.set(Arc::as_ptr(&self) as usize));
        let parker = Arc::new(Parker::new());
        let slot = Arc::new(PollSlot::default());
        self.lock_slots().push(slot.clone());
        loop {
            let mut state = self.lock();
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                let _enter = context::enter(job.header().scheduler.clone());
                let counters = &job.header().scheduler.common().counters;
                counters.add_polls(1);
                slot.job_begins();
                crate::scheduler::run_in(job, &slot);
                self.in_flight.fetch_sub(1, AcqRel);
                continue;
            }
            if !state.shutdown {
                state.idle.push_back((parker.clone(), Instant::now()));
                drop(state);
                if self.sleep(&parker) {
                    continue;
                }
                // Idle for the whole keep-alive, and `sleep` took this
                // thread off the idle list: exit, unless a job arrived
                // since (its spawner found no idle thread, and counted this
                // one as running: checked under the lock spawners take).
                // After shutdown began only mandatory jobs are left queued,
                // and they too must run.
                state = self.lock();
                if !state.jobs.is_empty() {
                    continue;
                }
            }
            state.threads -= 1;
            drop(state);
            self.lock_slots().retain(|s| !Arc::ptr_eq(s, &slot));
            self.exited.wake_up_all();
            return;
        }
    }

    /// Sleeps on the idle list until a job (or shutdown) takes this thread
    /// off it: true. False after `keep_alive` with none, having left the
    /// list. An early wake-up that did not choose the thread (a spurious
    /// one, or an unpark left over from a choice that raced with a
    /// timeout) is rare: the keep-alive starts again from it, which saves
    /// a clock read per job.
    fn sleep(&self, parker: &Arc<Parker>) -> bool {
        self.job_spins
            .spin(self.config.spin, || parker.is_notified());
        loop {
            let timed_out = parker.park_timeout(self.config.keep_alive);
            let mut state = self.lock();
            let Some(at) = state.idle.iter().rposition(|(p, _)| Arc::ptr_eq(p, parker)) else {
                return true; // chosen for a job, or shutdown began
            };
            if timed_out {
                state.idle.remove(at);
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{choose_idle, CACHE_HOT};
    use crate::park::Parker;

    #[test]
    fn a_job_wakes_the_last_idle_thread_unless_it_went_idle_just_now() {
        let now = Instant::now() + Duration::from_secs(1);
        let (a, b) = (Arc::new(Parker::new()), Arc::new(Parker::new()));
        a.pretend_parked();
        b.pretend_parked();
        let list = |b_since: Instant| {
            VecDeque::from([
                (a.clone(), now - Duration::from_millis(900)),
                (b.clone(), b_since),
            ])
        };
        // The last idle thread has been idle a while: it is taken (LIFO),
        // so a trickle of jobs leaves the other to its keep-alive.
        let mut idle = list(now - CACHE_HOT);
        assert!(Arc::ptr_eq(&choose_idle(&mut idle, now).unwrap(), &b));
        assert!(Arc::ptr_eq(&idle[0].0, &a));
        // It went idle just now (jobs back to back): the one idle longest.
        let mut idle = list(now - CACHE_HOT / 10);
        assert!(Arc::ptr_eq(&choose_idle(&mut idle, now).unwrap(), &a));
        assert!(Arc::ptr_eq(&idle[0].0, &b));
        // Nobody idle: no thread to wake.
        assert!(choose_idle(&mut VecDeque::new(), now).is_none());
    }

    #[test]
    fn a_job_takes_a_thread_still_spinning_for_one_first() {
        let now = Instant::now() + Duration::from_secs(1);
        let (a, b) = (Arc::new(Parker::new()), Arc::new(Parker::new()));
        a.pretend_parked();
        // `b` went idle just now and spins (its parker is not parked): it
        // is taken, though the rule for sleepers would take `a`.
        let mut idle = VecDeque::from([
            (a.clone(), now - Duration::from_millis(900)),
            (b.clone(), now - CACHE_HOT / 10),
        ]);
        assert!(Arc::ptr_eq(&choose_idle(&mut idle, now).unwrap(), &b));
        assert!(Arc::ptr_eq(&idle[0].0, &a));
    }
}
