//! One spawned task: header, future, output, and how a worker polls it.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};

use waitq::{TaskSignals, WaitQueue};

use super::error::JoinError;
use super::state::{AfterPoll, State};
use super::Id;
use crate::context;
use crate::scheduler::Scheduler;

/// Units of cooperative budget a task gets per poll (tokio uses 128 too).
pub(crate) const BUDGET: u32 = 128;

/// The type-erased task the schedulers queue.
pub(crate) type TaskRef = Arc<dyn Runnable>;

/// The part of a task every reference kind can see.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) id: Id,
    pub(crate) scheduler: Scheduler,
    /// Key in the runtime's owned-task list; set once before the first poll.
    pub(crate) owned_key: AtomicUsize,
    /// Join handles sleep here until the task completes.
    pub(crate) join_queue: WaitQueue,
    /// Interrupt and kill, read by `_interruptible` and `_killable` waits.
    pub(crate) signals: TaskSignals,
}

/// What a scheduler can do with a task without knowing its type.
pub(crate) trait Runnable: Send + Sync {
    fn header(&self) -> &Header;
    /// Polls the future once (the task is the thread's current task
    /// meanwhile). The caller has moved the state to `RUNNING`.
    fn poll_once(&self) -> PollOutcome;
    /// Drops the future and completes the task as cancelled. The caller
    /// holds `RUNNING` (claimed through the state word).
    fn cancel(&self, error: JoinError);
}

/// The result of one [`Runnable::poll_once`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    Complete,
    /// A panic escaped the future (already turned into a `JoinError`).
    Panicked,
    Idle,
    /// Woken during its poll: queue it again, behind the others.
    Requeue,
}

/// The join side: a [`Runnable`] whose output a `JoinHandle` can take.
pub(crate) trait JoinCell<T>: Runnable {
    /// Takes the output once the task is complete.
    fn take_output(&self) -> Option<Result<T, JoinError>>;
}

enum Stage<F: Future> {
    /// The future, and the task's waker once the first poll made it. The
    /// waker holds the task (a cycle) until the future is dropped, which
    /// every ending does through [`Task::drop_future`]; reusing it spares
    /// two reference-count updates per poll.
    Running(F, Option<Waker>),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// A task: header plus its stage, the future inline (one allocation per
/// task, see the `SAFETY` note in `poll_once`).
pub(crate) struct Task<F: Future> {
    header: Header,
    stage: Mutex<Stage<F>>,
    /// This task, for making its waker at the first poll (a weak count:
    /// polling needs no reference-count traffic of its own).
    me: Weak<Task<F>>,
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(crate) fn new(future: F, scheduler: Scheduler, id: Id) -> Arc<Self> {
        Arc::new_cyclic(|me| Task {
            me: me.clone(),
            header: Header {
                state: State::new(),
                id,
                scheduler,
                owned_key: AtomicUsize::new(usize::MAX),
                join_queue: WaitQueue::new(),
                signals: TaskSignals::new(),
            },
            stage: Mutex::new(Stage::Running(future, None)),
        })
    }

    fn stage(&self) -> MutexGuard<'_, Stage<F>> {
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the result, publishes `COMPLETE`, wakes joiners, leaves the
    /// owned list. The future has already been dropped.
    fn complete(&self, result: Result<F::Output, JoinError>) {
        *self.stage() = Stage::Finished(result);
        let before = self.header.state.transition_to_complete();
        if !before.has_join_interest() {
            // Nobody will take it: drop it now, outside the lock.
            let stage = std::mem::replace(&mut *self.stage(), Stage::Consumed);
            drop_quietly(stage);
        }
        if before.has_join_waiter() {
            // Only a joiner that announced itself can be asleep there
            // (see `JOIN_WAITING` in `state.rs`).
            self.header.join_queue.wake_up_all();
        }
        self.header.scheduler.release(&self.header);
    }

    /// Drops the future (a panic in its destructor is caught).
    fn drop_future(&self) -> Option<Box<dyn Any + Send>> {
        let mut stage = self.stage();
        if !matches!(*stage, Stage::Running(..)) {
            return None;
        }
        // Dropped in place, never moved: it is pinned (see `poll_once`).
        // An assignment still stores `Consumed` if the drop panics.
        catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed)).err()
    }
}

fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

impl<F> Runnable for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn poll_once(&self) -> PollOutcome {
        let id = self.header.id;
        let polled = {
            let mut stage = self.stage();
            let Stage::Running(future, waker) = &mut *stage else {
                unreachable!("a task is polled only while its future runs");
            };
            let waker = waker.get_or_insert_with(|| {
                let me = self.me.upgrade().expect("a task being polled is alive");
                Waker::from(me)
            });
            let mut cx = Context::from_waker(waker);
            let _current = context::enter_task(&self.header);
            // SAFETY: the future is pinned here for the rest of its life. It
            // lives inline in the task's `Arc` allocation, which never moves,
            // inside `Stage::Running`; no code moves a `Running` stage out
            // (`drop_future` drops it in place, by assignment, and every
            // other stage change happens after that). So it is never moved
            // between this first pin and its drop, as `Pin` requires.
            // Inline rather than boxed saves one allocation per task (see
            // `benches/runtime.rs`, spawn_many and chained_spawn).
            #[allow(unsafe_code)]
            let future = unsafe { Pin::new_unchecked(future) };
            catch_unwind(AssertUnwindSafe(|| {
                let (poll, forced) = waitq::coop::with_budget(BUDGET, || future.poll(&mut cx));
                if forced {
                    self.header.scheduler.metrics().forced_yield();
                }
                poll
            }))
        };
        match polled {
            Ok(Poll::Ready(output)) => {
                if let Some(panic) = self.drop_future() {
                    self.complete(Err(JoinError::panicked(id, panic)));
                    return PollOutcome::Panicked;
                }
                self.complete(Ok(output));
                PollOutcome::Complete
            }
            Ok(Poll::Pending) => match self.header.state.transition_to_idle() {
                AfterPoll::Idle => PollOutcome::Idle,
                AfterPoll::Requeue if self.header.state.load().is_cancelled() => {
                    // Aborted while running: drop it now.
                    if self.header.state.transition_to_running().is_some() {
                        self.cancel(self.header.scheduler.cancel_error(id));
                    }
                    PollOutcome::Complete
                }
                AfterPoll::Requeue => PollOutcome::Requeue,
            },
            Err(panic) => {
                drop(self.drop_future());
                self.complete(Err(JoinError::panicked(id, panic)));
                PollOutcome::Panicked
            }
        }
    }

    fn cancel(&self, error: JoinError) {
        drop(self.drop_future());
        self.complete(Err(error));
    }
}

impl<F> JoinCell<F::Output> for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn take_output(&self) -> Option<Result<F::Output, JoinError>> {
        if !self.header.state.load().is_complete() {
            return None;
        }
        match std::mem::replace(&mut *self.stage(), Stage::Consumed) {
            Stage::Finished(result) => Some(result),
            _ => None,
        }
    }
}

impl<F> Wake for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: Arc<Self>) {
        // Not `scheduler.clone()`: that count is shared by every task.
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.header.state.transition_to_scheduled() {
            self.header.scheduler.schedule(self.clone());
        }
    }
}

impl Header {
    pub(crate) fn owned_key(&self) -> usize {
        self.owned_key.load(Relaxed)
    }
}
