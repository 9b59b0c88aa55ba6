//! Tasks: [`spawn`], [`spawn_blocking`], [`JoinHandle`], [`JoinSet`],
//! [`yield_now`], and the per-task signals the `_interruptible` and
//! `_killable` waits read ([`signals`]). [`LocalSet`] and [`spawn_local`]
//! run `!Send` futures on the thread that drives the set.
//! [`task_local!`](crate::task_local) declares task-local storage
//! ([`LocalKey`]).
//!
//! # Reference kinds and who touches what
//!
//! A task is one `Arc` allocation: the header (state word,
//! id, scheduler, join wait queue made on first use, signals) plus its
//! stage (the future, inline, then the output). Run queues, wakers, the runtime's owned-task
//! list, `JoinHandle` and `AbortHandle` each hold one strong reference.
//! Only the thread that moved the state word to `RUNNING` touches the
//! future; the output passes to the `JoinHandle` through `COMPLETE` (see
//! `state.rs`). A `JoinHandle` sleeps on the task's join wait queue, which
//! the task wakes (`wake_up_all`) when it completes.

mod builder;
pub(crate) mod error;
pub(crate) mod join;
pub(crate) mod local;
pub(crate) mod raw;
mod set;
mod signal;
pub(crate) mod state;
mod task_local;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

pub use builder::Builder;
pub use error::JoinError;
pub use join::{AbortHandle, JoinHandle};
pub use local::{spawn_local, LocalJoinHandle, LocalSet, RunUntil};
pub use set::JoinSet;
pub use signal::{signals, try_signals, Signals};
pub use task_local::{AccessError, LocalKey, TaskLocalFuture};

use crate::context;

/// A task's id: unique among the tasks of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub(crate) u64);

impl Id {
    /// Not a task: the future a current-thread runtime's `block_on` runs,
    /// as the observability reports name it (a dump's `worker 0: busy
    /// polling the block_on future`, a [`StuckWorker`](crate::obs::StuckWorker)
    /// report's `task`).
    pub const BLOCK_ON_FUTURE: Id = Id(u64::MAX);

    /// A fresh id. Each thread takes ids from the global counter in
    /// blocks, so a spawn does not write a counter every spawning thread
    /// shares: ids are unique, and increasing per thread, not globally.
    pub(crate) fn next() -> Id {
        const BLOCK: u64 = 256;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            /// The next id of this thread's block, and the block's end.
            static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        let from_block = RANGE.try_with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT.fetch_add(BLOCK, Relaxed);
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            Id(next)
        });
        // A spawn from a thread-local destructor takes one id directly.
        from_block.unwrap_or_else(|_| Id(NEXT.fetch_add(1, Relaxed)))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of the task being polled, if any.
pub fn try_id() -> Option<Id> {
    context::current_task_id()
}

/// Spawns `future` on the current runtime; see [`Handle::spawn`](crate::Handle::spawn).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// let sum = rt.block_on(async {
///     let tasks: Vec<_> = (0..10u32).map(|i| waitrt::spawn(async move { i })).collect();
///     let mut sum = 0;
///     for task in tasks {
///         sum += task.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 45);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The task keeps a clone of the scheduler: take it from the context
    // and hand it over with the future (see `Scheduler::spawn_owned`).
    let site = std::panic::Location::caller();
    match crate::context::scheduler() {
        // Built here, where it is returned (see `Scheduler::spawn_cell`).
        Some(scheduler) => match scheduler.spawn_owned(future, site, None) {
            Ok(cell) | Err(cell) => JoinHandle::new(cell),
        },
        None => panic!(
            "there is no runtime here: call `spawn` from inside `block_on`, a spawned \
             task, or after `Handle::enter`"
        ),
    }
}

/// Runs `f` on the runtime's blocking pool; see
/// [`Handle::spawn_blocking`](crate::Handle::spawn_blocking).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// let n = rt.block_on(async { waitrt::spawn_blocking(|| 6 * 7).await.unwrap() });
/// assert_eq!(n, 42);
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    crate::Handle::current().spawn_blocking(f)
}

/// Yields once: the task goes behind the other ready tasks.
///
/// The task is held back on its worker (either flavour) and runs again
/// once that worker has run its other ready tasks, or at the end of the
/// worker's event interval ([`Builder::event_interval`](crate::Builder::event_interval)),
/// whichever comes first; a yield does not wake an idle worker to take it.
/// A task that runs out of cooperative budget yields the same way.
///
/// On both flavours, before the yielded tasks run again the worker fires
/// due timers and collects ready I/O if it has not done so for 100 µs,
/// so a task that yields in a loop of long polls delays a timer or a
/// socket by about one pass over the ready tasks (one poll, if it runs
/// alone). (Tokio checks before every such run,
/// a system call each time; the 100 µs gap keeps a loop of short yields
/// at a clock read per yield.)
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let other = waitrt::spawn(async { 1 });
///     waitrt::task::yield_now().await;
///     assert!(other.is_finished());
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future [`yield_now`] returns.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        crate::context::note_yield_now();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The blocking pool's job: a future that runs its closure on first poll.
pub(crate) struct BlockingTask<F>(pub(crate) Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let f = self.0.take().expect("a blocking task runs once");
        Poll::Ready(f())
    }
}
