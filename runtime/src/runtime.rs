//! [`Runtime`] and [`Handle`], and the shutdown protocol.
//!
//! # Shutdown
//!
//! Dropping a runtime, [`Runtime::shutdown_timeout`] and
//! [`Runtime::shutdown_background`] all run these steps, each bounded by
//! the one deadline (`drop_timeout`, default 10 s, for a drop):
//!
//! 1. **Refuse new work.** The shutdown flag is set: `spawn` and
//!    `spawn_blocking` now return handles that resolve to a shutdown
//!    [`JoinError`](crate::task::JoinError) (`try_spawn` returns
//!    [`SpawnError`]).
//! 2. **Stop the workers.** Every worker finishes the poll it is in, drops
//!    its queues and exits; the caller waits for them until the deadline.
//!    A worker stuck in a poll that never yields is left behind.
//! 3. **End every task.** The owned-task list is closed and drained: every
//!    task nobody is polling has its future dropped now, and its
//!    `JoinHandle` gets a shutdown error (or the panic, if dropping the
//!    future panicked). A task running now is left to finish: a blocking
//!    job's joiner gets its output if the job ends before the deadline
//!    (step 5); a task polled by a stuck worker is dropped when that poll
//!    returns (its joiner gets an error, unless the poll completed it).
//! 4. **Stop the timers and the reactor.** Every pending timer's wait
//!    queue is closed, and so is every registered socket's: a task waiting
//!    for I/O ends with an error, and later socket operations fail with
//!    "the runtime's I/O driver has shut down" instead of hanging.
//! 5. **Stop the blocking pool.** Queued jobs that never started were
//!    cancelled in step 3, except the writes a `fs::File` had accepted
//!    (tokio's mandatory jobs), which the pool threads still run; those
//!    and the running jobs get until the deadline, then their
//!    threads are left to finish on their own. Whoever joins a task still
//!    running then (a job, a stuck worker's poll) ends at once with an
//!    error for which `is_abandoned()` holds (it was not cancelled: it
//!    runs on); a task that ended in time gave its joiner its output.
//! 6. **Close the parkers and empty the run queues**, so nothing in the
//!    runtime can sleep again, and no queued task (each holds the runtime)
//!    keeps the runtime's memory, threads' parkers and the reactor's fds
//!    alive. A task woken later (from another thread, or by a waker that
//!    outlived the runtime) is dropped instead of queued.
//!
//! Under [`UnhandledPanic::ShutdownRuntime`](crate::UnhandledPanic), a
//! panicking task starts a shutdown at once: steps 1 and 3 run on the
//! thread that acts on it (the `block_on` that then panics, or a worker
//! as it stops), so every join handle ends without waiting for the
//! `Runtime` to be dropped; the drop does the rest.
//!
//! Nothing waits past the deadline, so shutdown never hangs forever. A
//! runtime dropped by one of its own threads (inside a task on a worker,
//! or a `spawn_blocking` job) shuts down the same way without waiting for
//! that thread, which exits once the task's poll or the job returns. A
//! runtime dropped on a thread that drives tasks (in a task, its own
//! runtime's or another's) waits for nothing, as `shutdown_background`:
//! waiting would stall the tasks of that thread (tokio panics there).

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::context;
use crate::scheduler::{self, current_thread, multi_thread, Scheduler};
use crate::task::error::JoinError;
use crate::task::raw::{Runnable, Task};
use crate::task::{BlockingTask, Id, JoinHandle};

/// An async runtime: a scheduler, timers and a blocking pool.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Runtime::new().unwrap();
/// let out = rt.block_on(async { waitrt::spawn(async { "hi" }).await.unwrap() });
/// assert_eq!(out, "hi");
/// ```
pub struct Runtime {
    handle: Handle,
    drop_timeout: Duration,
    shut_down: bool,
}

/// A cloneable reference to a runtime, for spawning from anywhere.
#[derive(Clone)]
pub struct Handle {
    pub(crate) scheduler: Scheduler,
}

/// `try_spawn` failed: the runtime is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnError(());

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot spawn: the runtime is shutting down")
    }
}

impl std::error::Error for SpawnError {}

impl Runtime {
    /// A multi-thread runtime with every driver enabled.
    ///
    /// # Errors
    ///
    /// When a worker thread cannot be started.
    pub fn new() -> std::io::Result<Runtime> {
        crate::Builder::new_multi_thread().enable_all().build()
    }

    pub(crate) fn from_parts(scheduler: Scheduler, drop_timeout: Duration) -> Runtime {
        Runtime {
            handle: Handle { scheduler },
            drop_timeout,
            shut_down: false,
        }
    }

    /// Runs `future` to completion on this thread; on the current-thread
    /// runtime the spawned tasks run here meanwhile.
    ///
    /// # Panics
    ///
    /// When called from inside a runtime (a thread that is driving tasks
    /// must not block), and when a task panicked under
    /// [`UnhandledPanic::ShutdownRuntime`](crate::UnhandledPanic::ShutdownRuntime).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert_not_in_runtime();
        let _driving = context::enter_driving();
        match &self.handle.scheduler {
            Scheduler::CurrentThread(shared) => current_thread::block_on(shared, future),
            Scheduler::MultiThread(shared) => multi_thread::block_on(shared, future),
        }
    }

    /// A handle to this runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// See [`Handle::spawn`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// See [`Handle::spawn_blocking`].
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// Makes this runtime current on this thread until the guard drops
    /// (tokio's `Runtime::enter`): see [`Handle::enter`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().enable_all().build().unwrap();
    /// let (std_end, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    /// std_end.set_nonblocking(true).unwrap();
    /// let guard = rt.enter();
    /// // Sockets register with the current runtime's reactor.
    /// let stream = waitrt::net::UnixStream::from_std(std_end).unwrap();
    /// drop(guard);
    /// rt.block_on(async move { stream.writable().await.unwrap() });
    /// ```
    pub fn enter(&self) -> EnterGuard {
        self.handle.enter()
    }

    /// See [`Handle::dump`].
    pub fn dump(&self) -> crate::obs::Dump {
        self.handle.dump()
    }

    /// Counters and gauges of this runtime.
    pub fn metrics(&self) -> crate::RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down, waiting at most `timeout` for workers and blocking jobs
    /// (see the module docs). Returns whether everything stopped in time.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.shutdown(timeout)
    }

    /// Shuts down without waiting for threads.
    pub fn shutdown_background(self) {
        self.shutdown_timeout(Duration::ZERO);
    }

    fn shutdown(&mut self, timeout: Duration) -> bool {
        if std::mem::replace(&mut self.shut_down, true) {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        let scheduler = self.handle.scheduler.clone();
        let common = scheduler.common();
        // 1. Refuse new work.
        common
            .shutdown
            .store(true, std::sync::atomic::Ordering::Release);
        // 2. Stop the workers.
        let mut stopped = true;
        if let Scheduler::MultiThread(shared) = &scheduler {
            shared.shutdown();
            stopped &= shared.wait_for_workers(deadline);
        }
        // 3. End every task (drops may spawn or sleep: give them a context).
        {
            let _enter = context::enter(scheduler.clone());
            scheduler::cancel_all_tasks(common);
        }
        // 4. Stop the timers and the reactor.
        if let Some(time) = &common.time {
            time.shutdown();
        }
        if let Some(io) = &common.io {
            io.shutdown();
        }
        // 5. Stop the blocking pool; then whoever joins a task still
        // running (a job past the deadline, a stuck worker's poll) ends.
        stopped &= common.blocking.shutdown(deadline);
        scheduler::abandon_unfinished(common);
        // 6. Close the parkers (and drop what is still queued).
        match &scheduler {
            Scheduler::CurrentThread(shared) => shared.shutdown(),
            Scheduler::MultiThread(shared) => {
                shared.drain_queues();
                shared.unpark_all();
            }
        }
        stopped
    }
}

impl Drop for Runtime {
    /// Shuts down, waiting up to `drop_timeout` for the threads, except on
    /// a thread that drives tasks (a task of another runtime, a `block_on`
    /// future): waiting there would stall those tasks (a current-thread
    /// runtime's all of them), so the drop waits for nothing, as
    /// [`shutdown_background`](Runtime::shutdown_background). Tokio panics
    /// there instead.
    fn drop(&mut self) {
        let timeout = match context::is_driving() {
            true => Duration::ZERO,
            false => self.drop_timeout,
        };
        self.shutdown(timeout);
    }
}

#[track_caller]
fn assert_not_in_runtime() {
    if context::is_driving() {
        panic!(
            "cannot block on a runtime from inside a runtime: this thread is already \
             driving tasks, and blocking it would stall them (use `.await`, or \
             `spawn_blocking` for blocking work)"
        );
    }
}

impl Handle {
    /// The runtime this thread is in.
    ///
    /// # Panics
    ///
    /// Outside a runtime (use [`try_current`](Self::try_current)).
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "there is no runtime here: call this from inside `block_on`, a spawned task, \
             or after `Handle::enter`",
        )
    }

    /// The runtime this thread is in, if any.
    pub fn try_current() -> Option<Handle> {
        context::scheduler().map(|scheduler| Handle { scheduler })
    }

    /// Makes this runtime current on this thread until the guard drops, so
    /// `spawn` and the timers work from outside its tasks.
    ///
    /// # Panics
    ///
    /// Guards must be dropped in the reverse order they were made (the
    /// innermost first): dropping an outer guard while an inner one is
    /// alive panics, instead of silently leaving the wrong runtime current.
    /// The guard is not `Send`: it belongs to the thread it was made on.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().enable_all().build().unwrap();
    /// let guard = rt.handle().enter();
    /// let task = waitrt::spawn(async { 7 }); // no `block_on` needed to spawn
    /// drop(guard);
    /// assert_eq!(rt.block_on(task).unwrap(), 7);
    /// ```
    pub fn enter(&self) -> EnterGuard {
        EnterGuard(context::enter(self.scheduler.clone()))
    }

    /// Spawns `future` as a new task. After shutdown began, the returned
    /// handle resolves at once to a shutdown [`JoinError`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// let handle = rt.handle().clone();
    /// let task = std::thread::spawn(move || handle.spawn(async { 1 + 1 })).join().unwrap();
    /// assert_eq!(rt.block_on(task).unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let site = std::panic::Location::caller();
        match self.scheduler.spawn_cell(future, site, None) {
            // Built where it is returned (see `Scheduler::spawn_cell`).
            Ok(cell) | Err(cell) => JoinHandle::new(cell),
        }
    }

    /// Spawns `future`, or fails when the runtime is shutting down.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] once shutdown began (the future is dropped).
    #[track_caller]
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let site = std::panic::Location::caller();
        match self.scheduler.spawn_cell(future, site, None) {
            Ok(cell) => Ok(JoinHandle::new(cell)),
            Err(_) => Err(SpawnError(())),
        }
    }

    /// Runs `f` on the blocking pool: a FIFO of jobs served by at most
    /// `max_blocking_threads` threads (default 512), started on demand;
    /// a thread idle for `thread_keep_alive` (default 10 s) exits. After
    /// shutdown began, the handle resolves at once to a shutdown
    /// [`JoinError`]; a job is never silently dropped.
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_named(f, std::panic::Location::caller(), None)
    }

    /// [`spawn_blocking`](Self::spawn_blocking) with its site and name
    /// given (`task::Builder`).
    pub(crate) fn spawn_blocking_named<F, R>(
        &self,
        f: F,
        site: &'static std::panic::Location<'static>,
        name: Option<std::sync::Arc<str>>,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_job(f, site, name, false)
    }

    /// [`spawn_blocking`](Self::spawn_blocking) for a job that must run
    /// even if the runtime shuts down before a pool thread takes it (a
    /// `fs::File`'s write, whose caller has already been told `Ok`): shutdown
    /// leaves it queued, and the pool runs it before its threads exit
    /// (within the shutdown timeout, as a running job). Refused only when
    /// shutdown began before the spawn. Tokio: `spawn_mandatory_blocking`.
    #[track_caller]
    pub(crate) fn spawn_mandatory_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_job(f, std::panic::Location::caller(), None, true)
    }

    fn spawn_blocking_job<F, R>(
        &self,
        f: F,
        site: &'static std::panic::Location<'static>,
        name: Option<std::sync::Arc<str>>,
        mandatory: bool,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let id = Id::next();
        let task = Task::new(
            BlockingTask(Some(f)),
            self.scheduler.clone(),
            id,
            site,
            name,
        );
        task.header().state.set_blocking();
        if mandatory {
            task.header().state.set_mandatory();
        }
        let join = JoinHandle::new(task.clone());
        let common = self.scheduler.common();
        let refused = match common.owned.insert(task.clone()) {
            Ok(key) => {
                task.header()
                    .owned_key
                    .store(key, std::sync::atomic::Ordering::Relaxed);
                common.blocking.spawn(task).err().map(|refused| refused.0)
            }
            Err(task) => Some(task),
        };
        if let Some(task) = refused {
            if task.header().state.claim_for_shutdown() {
                task.cancel(JoinError::shutdown(id));
            }
        }
        join
    }

    /// A snapshot of every task of this runtime: what each one runs or
    /// sleeps on, where, and since when (see [`Dump`](crate::obs::Dump)).
    /// Polls nothing and waits for no worker: it returns while a worker is
    /// stuck in a poll, and reports that worker as busy.
    ///
    /// # Examples
    ///
    /// ```
    /// static SMBIOD_WAIT: waitrt::sync::WaitQueue = waitrt::sync::WaitQueue::named("smbiod_wait");
    /// // The wait registry (on by default) lists what each task sleeps on.
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// let daemon = waitrt::task::Builder::new()
    ///     .name("smbiod")
    ///     .spawn_on(async { SMBIOD_WAIT.wait_event(|| false).await }, rt.handle());
    /// rt.block_on(waitrt::task::yield_now()); // the daemon runs, and sleeps
    /// let dump = rt.handle().dump();
    /// println!("{dump}");
    /// let task = dump.task(daemon.id()).unwrap();
    /// assert_eq!(task.waits[0].queue_name, Some("smbiod_wait"));
    /// ```
    pub fn dump(&self) -> crate::obs::Dump {
        crate::obs::dump::take(&self.scheduler)
    }

    /// Counters and gauges of this runtime.
    pub fn metrics(&self) -> crate::RuntimeMetrics {
        crate::RuntimeMetrics::new(&self.scheduler)
    }
}

/// Made by [`Handle::enter`].
pub struct EnterGuard(#[allow(dead_code)] context::EnterGuard);

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnterGuard")
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("scheduler", &self.handle.scheduler)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("scheduler", &self.scheduler)
            .finish()
    }
}

/// Builds a current-thread runtime with every driver enabled, runs
/// `future` on it, and shuts it down.
///
/// # Panics
///
/// Inside a runtime, or if the runtime cannot be built.
///
/// # Examples
///
/// ```
/// assert_eq!(waitrt::block_on(async { 40 + 2 }), 42);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    crate::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("failed to build a current-thread runtime")
        .block_on(future)
}
