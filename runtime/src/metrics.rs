//! [`RuntimeMetrics`]: a snapshot of what the runtime is doing.

use std::sync::atomic::Ordering::Relaxed;

use crate::scheduler::Scheduler;

/// A snapshot of one runtime's counters (since it started) and gauges (now).
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// rt.block_on(async { waitrt::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert_eq!(m.workers(), 2);
/// assert_eq!(m.spawned_tasks(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    workers: usize,
    alive_tasks: usize,
    global_queue_depth: usize,
    local_queue_depths: Vec<usize>,
    spawned: u64,
    polls: u64,
    parks: u64,
    steals: u64,
    forced_yields: u64,
    busy_driver_checks: u64,
    blocking_threads: usize,
    blocking_queue_depth: usize,
    pending_timers: usize,
    io_sources: usize,
}

impl RuntimeMetrics {
    pub(crate) fn new(scheduler: &Scheduler) -> Self {
        let common = scheduler.common();
        let (workers, global_queue_depth, local_queue_depths) = match scheduler {
            Scheduler::CurrentThread(shared) => (1, shared.queue_depth(), vec![]),
            Scheduler::MultiThread(shared) => {
                let (global, locals) = shared.queue_depths();
                (shared.workers(), global, locals)
            }
        };
        let (blocking_threads, blocking_queue_depth) = common.blocking.stats();
        let c = &common.counters;
        RuntimeMetrics {
            workers,
            alive_tasks: common.owned.alive(),
            global_queue_depth,
            local_queue_depths,
            spawned: common.owned.spawned(),
            polls: c.polls.load(Relaxed),
            parks: c.parks.load(Relaxed),
            steals: c.steals.load(Relaxed),
            forced_yields: c.forced_yields.load(Relaxed),
            busy_driver_checks: c.busy_driver_checks.load(Relaxed),
            blocking_threads,
            blocking_queue_depth,
            pending_timers: common.time.as_ref().map_or(0, |t| t.pending()),
            io_sources: common.io.as_ref().map_or(0, |io| io.sources()),
        }
    }

    /// Threads that run tasks (1 for the current-thread scheduler).
    pub fn workers(&self) -> usize {
        self.workers
    }
    /// Tasks spawned and not yet completed (blocking jobs included).
    pub fn alive_tasks(&self) -> usize {
        self.alive_tasks
    }
    /// Tasks in the global queue (current-thread: every queued task).
    pub fn global_queue_depth(&self) -> usize {
        self.global_queue_depth
    }
    /// Tasks in worker `index`'s local queue and LIFO slot, and those that
    /// yielded and wait on it for their next turn.
    pub fn worker_local_queue_depth(&self, index: usize) -> usize {
        self.local_queue_depths.get(index).copied().unwrap_or(0)
    }
    /// Tasks spawned so far (not counting blocking jobs).
    pub fn spawned_tasks(&self) -> u64 {
        self.spawned
    }
    /// Task polls so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }
    /// Times a scheduler thread went to sleep for lack of work.
    pub fn parks(&self) -> u64 {
        self.parks
    }
    /// Successful steals from another worker.
    pub fn steals(&self) -> u64 {
        self.steals
    }
    /// Polls that ended because the task ran out of cooperative budget.
    pub fn budget_forced_yields(&self) -> u64 {
        self.forced_yields
    }
    /// Times a busy scheduler thread checked the timers and the reactor
    /// without sleeping: once per
    /// [`event_interval`](crate::Builder::event_interval) polls. A
    /// multi-thread worker counts its polls across its sleeps, since one
    /// that slept on its own parker (not in the reactor) checked nothing
    /// meanwhile.
    pub fn busy_driver_checks(&self) -> u64 {
        self.busy_driver_checks
    }
    /// Blocking-pool threads alive.
    pub fn blocking_threads(&self) -> usize {
        self.blocking_threads
    }
    /// Blocking jobs waiting for a thread.
    pub fn blocking_queue_depth(&self) -> usize {
        self.blocking_queue_depth
    }
    /// Timers registered and not yet fired.
    pub fn pending_timers(&self) -> usize {
        self.pending_timers
    }
    /// Sockets registered with the reactor (0 without I/O enabled).
    pub fn io_sources(&self) -> usize {
        self.io_sources
    }
}
