//! The blocking pool behind [`spawn_blocking`](crate::spawn_blocking).
//!
//! Jobs go to a FIFO queue; an idle pool thread takes the next one, and a
//! new thread starts when none is idle, up to `max_blocking_threads`
//! (default 512). A thread idle for `thread_keep_alive` (default 10 s)
//! exits. Idle threads sleep on the pool's wait queue as exclusive waiters,
//! so one job wakes one thread. A job is a task like any other (its
//! `JoinHandle` is the same type); it cannot be cancelled once it runs.
//!
//! When the pool has no thread and the OS refuses to start one (a pid
//! limit, `RLIMIT_NPROC`, no address space for a stack), the job's handle
//! resolves at once to a [`JoinError`](crate::task::JoinError) for which
//! `is_spawn_failed()` holds, naming the OS error; nothing waits forever.
//!
//! Shutdown: no new job is accepted (its handle resolves to a shutdown
//! `JoinError`); queued jobs that never started are cancelled the same way;
//! running jobs get the shutdown timeout to finish, after which their
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
use crate::task::raw::TaskRef;

/// Pool settings.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
}

struct State {
    jobs: VecDeque<TaskRef>,
    threads: usize,
    shutdown: bool,
    next_thread: usize,
}

struct Inner {
    state: Mutex<State>,
    idle: AtomicUsize,
    /// Jobs queued or running: a paused clock does not jump while a job
    /// works in real time.
    in_flight: AtomicUsize,
    /// Idle threads wait here for a job.
    work: WaitQueue,
    /// Shutdown waits here for the threads to exit.
    exited: WaitQueue,
    config: PoolConfig,
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
                }),
                idle: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                work: WaitQueue::named("waitrt::blocking_pool"),
                exited: WaitQueue::named("waitrt::blocking_pool_exited"),
                config,
            }),
        }
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
        let start_thread =
            inner.idle.load(Acquire) < state.jobs.len() && state.threads < inner.config.max_threads;
        if start_thread {
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
        } else {
            drop(state);
            inner.work.wake_up();
        }
        Ok(())
    }

    /// Whether a job is queued or running.
    pub(crate) fn is_busy(&self) -> bool {
        self.inner.in_flight.load(Acquire) > 0
    }

    /// Threads alive, and jobs waiting (metrics).
    pub(crate) fn stats(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.threads, state.jobs.len())
    }

    /// Refuses new jobs, drops queued ones, and waits until `deadline` for
    /// running jobs. Returns whether every pool thread exited. A pool
    /// thread that shuts its own runtime down (a job that drops the
    /// `Runtime`) is not waited for: it exits when its job returns.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        let inner = &self.inner;
        let queued = {
            let mut state = inner.lock();
            state.shutdown = true;
            std::mem::take(&mut state.jobs)
        };
        inner.in_flight.fetch_sub(queued.len(), AcqRel);
        drop(queued); // already cancelled through the owned-task list
        inner.work.close();
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
        loop {
            let mut state = self.lock();
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                let _enter = context::enter(job.header().scheduler.clone());
                let counters = &job.header().scheduler.common().counters;
                counters.add_polls(1);
                crate::scheduler::run(job);
                self.in_flight.fetch_sub(1, AcqRel);
                continue;
            }
            if !state.shutdown {
                drop(state);
                if self.sleep() {
                    continue;
                }
                // Idle for the whole keep-alive: exit, unless a job arrived
                // as we decided (checked under the lock spawners take).
                state = self.lock();
                if !state.jobs.is_empty() && !state.shutdown {
                    continue;
                }
            }
            state.threads -= 1;
            drop(state);
            self.exited.wake_up_all();
            return;
        }
    }

    /// Waits for a job; false after `keep_alive` with none.
    fn sleep(&self) -> bool {
        self.idle.fetch_add(1, AcqRel);
        let woken = self
            .work
            .blocking_wait_event_exclusive_timeout(self.config.keep_alive, || {
                let state = self.lock();
                !state.jobs.is_empty() || state.shutdown
            });
        self.idle.fetch_sub(1, AcqRel);
        woken.is_ok()
    }
}
