//! One spawned task: header, future, output, and how a worker polls it.
//!
//! Most of the runtime's `unsafe` code lives here (the rest is in
//! `net/tcp/inq.rs`; the crate docs list both), each block with its
//! `SAFETY` invariant: the future pinned inline in the task (`poll_once`)
//! and the lock-free stage ([`StageCell`]).
#![allow(unsafe_code)]

use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_task::{waker_ref, ArcWake};
use once_cell::race::OnceBox;

use waitq::{RcuWait, TaskSignals};

use super::error::JoinError;
use super::state::{AfterPoll, State};
use super::Id;
use crate::context;
use crate::scheduler::Scheduler;

/// Units of cooperative budget a task gets per poll (tokio uses 128 too).
pub(crate) const BUDGET: u32 = 128;

/// The type-erased task the schedulers queue.
pub(crate) type TaskRef = Arc<dyn Runnable>;

/// A task as its join handle holds it: its output's type known, its
/// future's erased.
pub(crate) type JoinRef<T> = Arc<dyn JoinCell<T>>;

/// The part of a task every reference kind can see.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) id: Id,
    pub(crate) scheduler: Scheduler,
    /// Key in the runtime's owned-task list; set once before the first
    /// poll (`u32::MAX` until then). Four bytes, beside the four of
    /// `state`: see `rare`.
    pub(crate) owned_key: AtomicU32,
    /// Where it was spawned (`#[track_caller]`), for task dumps.
    pub(crate) site: &'static Location<'static>,
    /// The join queue and the signals, made on first use: most tasks are
    /// never waited for while they run and never signalled, and inline they
    /// made every task 160 bytes larger. One word (`OnceBox`: a pointer
    /// set once, where `OnceLock` adds a word for its state): with `Arc`'s
    /// counts a trivial task is 88 bytes, glibc's 96-byte chunks (the test
    /// at the end of this file; `benches/runtime.rs`, spawn_many).
    rare: OnceBox<Rare>,
}

/// The parts of a [`Header`] most tasks never use.
#[derive(Debug)]
struct Rare {
    /// The join handle sleeps here until the task completes: one waiter
    /// (the handle is not `Clone`), so the kernel's one-waiter `rcuwait`
    /// (56 bytes; a `WaitQueue` is 256, which made a task whose handle
    /// slept cost about 426 bytes against tokio's 138).
    join_queue: RcuWait,
    /// Interrupt and kill, read by `_interruptible` and `_killable` waits.
    signals: TaskSignals,
    /// The name given at spawn (`task::Builder::name`), for task dumps: a
    /// named task makes its `Rare` at spawn.
    name: Option<Arc<str>>,
    /// Polls since the hung-task detector first looked at the task
    /// ([`Header::note_poll`]): its "has it run since?" (khungtaskd's
    /// context-switch count).
    polls: AtomicU32,
}

/// What a scheduler can do with a task without knowing its type.
pub(crate) trait Runnable: Send + Sync {
    fn header(&self) -> &Header;
    /// Polls the future once (the task is the thread's current task
    /// meanwhile). The caller has moved the state to `RUNNING`. The task
    /// comes back when it must be queued again (`Requeue`); `outcome`
    /// says what happened. (An out-parameter, so that the task comes back
    /// in two registers: returned beside the outcome, the pair went
    /// through memory as two 8-byte stores the caller read back as one
    /// 16-byte load, a store-forwarding stall per poll.)
    fn poll_once(self: Arc<Self>, outcome: &mut PollOutcome) -> Option<TaskRef>;
    /// Drops the future and completes the task as cancelled; `true` when
    /// the future's drop panicked (the task then completes with that
    /// panic, and the runtime's policy has been told). The caller holds
    /// `RUNNING` (claimed through the state word).
    fn cancel(&self, error: JoinError) -> bool;
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
    /// Woken during a poll in which it yielded to let others run: it ran
    /// out of cooperative budget or called `yield_now`. Queue it again, as
    /// `Requeue`; the multi-thread scheduler keeps it on its worker (see
    /// its "Yields" section).
    Yielded,
}

/// The join side: a [`Runnable`] whose output a `JoinHandle` can take.
pub(crate) trait JoinCell<T>: Runnable {
    /// Takes the output once the task is complete.
    fn take_output(&self) -> Option<Result<T, JoinError>>;
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// The stage, without a lock: the state word (`state.rs`) decides who
/// may touch it, so each access is one plain memory access instead of a
/// mutex round trip (two atomic operations; a task's life took four or
/// five of them: see `benches/runtime.rs`, spawn_many and yield_many).
///
/// 1. Until `COMPLETE` is published, only the holder of `RUNNING` touches
///    it: the worker polling the task, or whoever claimed it to cancel it.
///    `RUNNING` is taken and released by AcqRel read-modify-writes, so
///    successive holders see each other's writes.
/// 2. Once `COMPLETE` is published, the output belongs to the join handle
///    if `JOIN_INTEREST` was still set when it was published (the handle
///    takes it, or drops it in its own `Drop`), and to the completing
///    worker otherwise (it drops it at once). `JOIN_INTEREST` is cleared
///    and `COMPLETE` set by read-modify-writes of the same word, so exactly
///    one side owns it.
struct StageCell<F: Future>(UnsafeCell<Stage<F>>);

impl<F: Future> StageCell<F> {
    /// Runs `f` on the stage.
    ///
    /// # Safety
    ///
    /// The caller has the stage to itself by rule 1 or 2 above, for the
    /// whole of `f`.
    unsafe fn with<R>(&self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        // SAFETY: the caller's exclusive access (rules 1 and 2) means no
        // other reference to the stage exists while `f` runs.
        f(unsafe { &mut *self.0.get() })
    }
}

// SAFETY: `Task` is shared between workers and join handles through
// `Arc`. Its only field without its own synchronization is `stage`, which
// is touched by one thread at a time as `StageCell`'s rules order it, and
// which holds an `F` and an `F::Output`, both `Send`.
unsafe impl<F> Sync for Task<F>
where
    F: Future + Send,
    F::Output: Send,
{
}

/// A task: header plus its stage, the future inline (one allocation per
/// task, see the `SAFETY` note in `poll_once`).
pub(crate) struct Task<F: Future> {
    header: Header,
    stage: StageCell<F>,
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(crate) fn new(
        future: F,
        scheduler: Scheduler,
        id: Id,
        site: &'static Location<'static>,
        name: Option<Arc<str>>,
    ) -> Arc<Self> {
        let rare = OnceBox::new();
        if name.is_some() {
            let _ = rare.set(Box::new(Rare::new(name)));
        }
        Arc::new(Task {
            header: Header {
                state: State::new(),
                id,
                scheduler,
                owned_key: AtomicU32::new(u32::MAX),
                site,
                rare,
            },
            stage: StageCell(UnsafeCell::new(Stage::Running(future))),
        })
    }

    /// Stores the result, publishes `COMPLETE`, wakes joiners, leaves the
    /// owned list. The future has already been dropped. The caller holds
    /// `RUNNING`.
    ///
    /// The store is inlined into the caller, which writes the result into
    /// the stage where it has it: passed by reference to an out-of-line
    /// `complete`, it was written in pieces by the caller and read back
    /// whole (a store-forwarding stall on every task's end: 44 % of
    /// `complete`'s perf samples in chained_spawn/ct).
    #[inline(always)]
    fn complete(&self, result: Result<F::Output, JoinError>) {
        // SAFETY: the caller holds `RUNNING` (rule 1 of `StageCell`).
        unsafe { self.stage.with(|stage| *stage = Stage::Finished(result)) };
        self.publish_complete();
    }

    /// [`complete`](Self::complete) after the result is stored.
    fn publish_complete(&self) {
        // The future is gone: a waker of this task kept in its own signal
        // set (an interruptible wait that ended without a signal leaves
        // one) would keep the task, and through it the whole runtime,
        // alive for good (an independent fuzz run: 3 fds per runtime).
        // Only a task whose signals were made can have kept one: looking
        // through `signals()` made them (a `Rare`, one allocation and
        // ~240 instructions) for every task at its end, 13 % of
        // spawn_many's instructions (callgrind).
        self.header.forget_signal_wakers();
        let before = self.header.state.transition_to_complete();
        if !before.has_join_interest() {
            // Nobody will take it: drop it now.
            // SAFETY: `COMPLETE` is published and the join handle was gone
            // before it: the output is ours (rule 2 of `StageCell`).
            let stage = unsafe {
                self.stage
                    .with(|stage| std::mem::replace(stage, Stage::Consumed))
            };
            drop_output_quietly(&self.header, stage);
        }
        if before.has_join_waiter() {
            // Only a joiner that announced itself can be asleep there
            // (see `JOIN_WAITING` in `state.rs`).
            // `join_queue()` makes the queue if the joiner has not yet: the
            // queue's lock then orders this wake with its registration.
            // A joiner's waker may panic: it must not unwind through the
            // worker (or the pool thread) completing this task.
            let queue = self.header.join_queue();
            let id = self.header.id;
            self.header.scheduler.common().wake_guarded(
                || format!("the waker of a `JoinHandle` of task {id}"),
                || {
                    queue.wake_up();
                },
            );
        }
        self.header.scheduler.release(&self.header);
    }

    /// Drops the future (a panic in its destructor is caught). The caller
    /// holds `RUNNING`.
    fn drop_future(&self) -> Option<Box<dyn Any + Send>> {
        // SAFETY: the caller holds `RUNNING` (rule 1 of `StageCell`).
        unsafe {
            self.stage.with(|stage| {
                if !matches!(*stage, Stage::Running(..)) {
                    return None;
                }
                // Dropped in place, never moved: it is pinned (see
                // `poll_once`). An assignment still stores `Consumed` if the
                // drop panics.
                catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed)).err()
            })
        }
    }
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Polls the future in `stage` once, as the thread's current task,
    /// inside the task's coop budget; a panic comes back as `Err`.
    ///
    /// The waker is borrowed from the caller's reference (`waker_ref`):
    /// it takes a count only when the future clones it, so a task that
    /// completes without sleeping never touches its count for a waker.
    /// Also says whether the task yielded: the budget ran out during the
    /// poll, or it called `yield_now`.
    fn poll_stage(
        self: &Arc<Self>,
        stage: &mut Stage<F>,
    ) -> std::thread::Result<(Poll<F::Output>, bool)> {
        let Stage::Running(future) = stage else {
            unreachable!("a task is polled only while its future runs");
        };
        let waker = waker_ref(self);
        let mut cx = Context::from_waker(&waker);
        let current = context::enter_task(&self.header);
        // SAFETY: the future is pinned here for the rest of its life. It
        // lives inline in the task's `Arc` allocation, which never moves,
        // inside `Stage::Running`; no code moves a `Running` stage out
        // (`drop_future` drops it in place, by assignment, and every other
        // stage change happens after that). So it is never moved between
        // this first pin and its drop, as `Pin` requires. Inline rather
        // than boxed saves one allocation per task (see
        // `benches/runtime.rs`, spawn_many and chained_spawn).
        let future = unsafe { Pin::new_unchecked(future) };
        let polled = catch_unwind(AssertUnwindSafe(|| {
            let (poll, forced) = waitq::coop::with_budget(BUDGET, || future.poll(&mut cx));
            if forced {
                self.header.scheduler.metrics().forced_yield();
            }
            (poll, forced)
        }));
        let yield_now = current.leave();
        polled.map(|(poll, forced)| (poll, forced || yield_now))
    }
}

fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// Drops a finished task's output (or whatever holds it), catching a
/// panic in its destructor: the panic hook has printed it, and the runtime
/// follows its `UnhandledPanic` policy (as for a panic in the task); a
/// blocking job's is its own, as its panics are (see `Header::on_panic`).
pub(crate) fn drop_output_quietly<T>(header: &Header, output: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(output))).is_err()
        && !header.state.load().is_blocking()
    {
        let id = header.id;
        let what = crate::scheduler::FatalPanic::Output(id);
        if header.scheduler.common().on_fatal(what) {
            header.scheduler.wake_everyone();
        }
    }
}

impl<F> Runnable for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn poll_once(self: Arc<Self>, outcome: &mut PollOutcome) -> Option<TaskRef> {
        let id = self.header.id;
        // SAFETY: the caller holds `RUNNING` (rule 1 of `StageCell`); the
        // future cannot reach this task's stage (`take_output` returns
        // before touching it while the task is not complete).
        let polled = unsafe { self.stage.with(|stage| self.poll_stage(stage)) };
        match polled {
            Ok((Poll::Ready(output), _)) => {
                if let Some(panic) = self.drop_future() {
                    // The output is dropped too; its own destructor may
                    // panic, which must not unwind into the worker.
                    drop_quietly(output);
                    self.complete(Err(JoinError::panicked(id, panic)));
                    self.header.scheduler.on_panic(id);
                    *outcome = PollOutcome::Panicked;
                    return None;
                }
                self.complete(Ok(output));
                *outcome = PollOutcome::Complete;
                None
            }
            Ok((Poll::Pending, yielded)) => match self.header.state.transition_to_idle() {
                AfterPoll::Idle => {
                    *outcome = PollOutcome::Idle;
                    None
                }
                AfterPoll::Requeue if self.header.state.load().is_cancelled() => {
                    // Aborted while running: drop it now.
                    let panicked = self.header.state.transition_to_running().is_some()
                        && self.cancel(self.header.scheduler.cancel_error(id));
                    *outcome = match panicked {
                        true => PollOutcome::Panicked,
                        false => PollOutcome::Complete,
                    };
                    None
                }
                AfterPoll::Requeue => {
                    *outcome = match yielded {
                        true => PollOutcome::Yielded,
                        false => PollOutcome::Requeue,
                    };
                    Some(self)
                }
            },
            Err(panic) => {
                drop(self.drop_future());
                crate::test_util::note_task_panic(&*panic);
                self.complete(Err(JoinError::panicked(id, panic)));
                self.header.on_panic();
                *outcome = PollOutcome::Panicked;
                None
            }
        }
    }

    fn cancel(&self, error: JoinError) -> bool {
        match self.drop_future() {
            // The future's destructor panicked: the joiner gets the panic
            // (as tokio's), and the runtime follows its policy, as for a
            // panic in a poll.
            Some(panic) => {
                let id = self.header.id;
                crate::test_util::note_task_panic(&*panic);
                self.complete(Err(JoinError::panicked(id, panic)));
                self.header.on_panic();
                true
            }
            None => {
                self.complete(Err(error));
                false
            }
        }
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
        // SAFETY: `COMPLETE` is published and only the join handle, which
        // owns the output from then on, calls this (rule 2 of `StageCell`).
        match unsafe {
            self.stage
                .with(|stage| std::mem::replace(stage, Stage::Consumed))
        } {
            Stage::Finished(result) => Some(result),
            _ => None,
        }
    }
}

impl<F> ArcWake for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: Arc<Self>) {
        waitq::hook::barrier(); // a read-modify-write: the test toolkit's store buffers drain
        if self.header.state.transition_to_scheduled() {
            // The waker's own count goes into the queue (every wait queue
            // wakes by value): no clone and no drop on the way.
            crate::scheduler::schedule_woken(self);
        }
    }

    fn wake_by_ref(arc_self: &Arc<Self>) {
        waitq::hook::barrier(); // as in `wake`
        if arc_self.header.state.transition_to_scheduled() {
            arc_self.header.scheduler.schedule(arc_self.clone());
        }
    }
}

impl Rare {
    fn new(name: Option<Arc<str>>) -> Self {
        Rare {
            join_queue: RcuWait::named("join"),
            signals: TaskSignals::new(),
            name,
            polls: AtomicU32::new(0),
        }
    }
}

impl Header {
    /// The runtime's policy for this task, which panicked (its `JoinHandle`
    /// has the panic already); a blocking job's panic is its `JoinHandle`'s
    /// alone, as tokio's.
    fn on_panic(&self) {
        if !self.state.load().is_blocking() {
            self.scheduler.on_panic(self.id);
        }
    }

    /// The queue join handles sleep on, made on first use.
    pub(crate) fn join_queue(&self) -> &RcuWait {
        &self.rare().join_queue
    }

    /// The task's signals (interrupt, kill), made on first use.
    pub(crate) fn signals(&self) -> &TaskSignals {
        &self.rare().signals
    }

    /// Drops the wakers the task's signals keep, if they were ever made
    /// (without making them).
    fn forget_signal_wakers(&self) {
        if let Some(rare) = self.rare.get() {
            rare.signals.forget_wakers();
        }
    }

    fn rare(&self) -> &Rare {
        self.rare.get_or_init(|| Box::new(Rare::new(None)))
    }

    /// Counts a poll of the task, while the hung-task detector runs (the
    /// whole wait registry is on) and once it has looked at the task (its
    /// [`poll_count`](Self::poll_count) made the task's `Rare`). Only the
    /// thread polling the task writes it.
    #[inline]
    pub(crate) fn note_poll(&self) {
        if let Some(rare) = self.rare.get() {
            let polls = &rare.polls;
            polls.store(polls.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// The polls [`note_poll`](Self::note_poll) counted: for the hung-task
    /// detector, which reports a task only if it has not run since it saw
    /// it asleep.
    pub(crate) fn poll_count(&self) -> u32 {
        self.rare().polls.load(Relaxed)
    }

    /// The name given at spawn, if any.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.rare.get().and_then(|rare| rare.name.as_ref())
    }

    pub(crate) fn owned_key(&self) -> usize {
        self.owned_key.load(Relaxed) as usize
    }
}
#[cfg(test)]
mod tests {
    /// A trivial task, with `Arc`'s two counts, stays within 88 bytes:
    /// glibc's 96-byte chunks. Under 120 bytes (the fast bins) spawn_many
    /// measured 167 -> 157-162 ns; a one-word panic payload in
    /// `JoinError` then took it from 128-byte chunks to 112, 16 bytes less
    /// resident memory per task (`RT_BENCH_SCALE=2 RT_BENCH_CHILD=spawn_many/ct`
    /// under `/usr/bin/time -f %M`: 49.0 -> 45.8 MB for 200,000 tasks);
    /// the four-byte state and owned key and the one-word `rare` took it to
    /// 96-byte chunks, 16 bytes less again.
    #[test]
    fn a_trivial_task_fits_a_small_allocation() {
        let arc_counts = 2 * std::mem::size_of::<usize>();
        let task = std::mem::size_of::<super::Task<std::future::Ready<u64>>>();
        assert!(arc_counts + task <= 88, "task is {task} bytes");
    }

    /// What a task whose join handle slept adds: its `Rare` (join wait,
    /// signals, name), within a 128-byte allocation. With a `WaitQueue`
    /// for the join (256 bytes) and the handle's boxed wait entry, such a
    /// task took about 426 bytes in all (tokio's: 138).
    #[test]
    fn the_rare_parts_fit_a_small_allocation() {
        let rare = std::mem::size_of::<super::Rare>();
        assert!(rare <= 120, "Rare is {rare} bytes");
    }
}
