//! The parts of a local task: the shared [`Header`] (its waker and what
//! its join handle reads), the set's [`Ready`] queue, and the type-erased
//! future ([`Run`]).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::atomic::{
    Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;
use waitq::WaitQueue;

use crate::task::{Id, JoinError};

/// Names a joiner whose waker panicked as its local task completed.
const JOINER: fn() -> String = || "the waker of a local task's join handle".into();

/// The shared part of a task: its waker (from any thread), what its
/// join handle reads, and what a dump or the hung-task detector reads
/// (from any thread, through its set's `Ready::live`).
pub(super) struct Header {
    pub(super) id: Id,
    /// Key in the set's slab.
    pub(super) key: usize,
    /// Where it was spawned.
    pub(super) site: &'static Location<'static>,
    /// Its key in `ReadyState::live`.
    live_key: AtomicUsize,
    /// Polls begun (wrapping; written only on the set's thread).
    polls: AtomicU32,
    /// Being polled now.
    polling: AtomicBool,
    ready: Arc<Ready>,
    /// In the ready queue (or being pushed there).
    scheduled: AtomicBool,
    cancelled: AtomicBool,
    complete: AtomicBool,
    /// Join handles sleep here until the task completes.
    pub(super) join_queue: WaitQueue,
}

impl Header {
    /// A new task, already counted as scheduled: the caller queues it.
    pub(super) fn new(
        key: usize,
        ready: Arc<Ready>,
        site: &'static Location<'static>,
    ) -> Arc<Header> {
        Arc::new(Header {
            id: Id::next(),
            key,
            site,
            live_key: AtomicUsize::new(usize::MAX),
            polls: AtomicU32::new(0),
            polling: AtomicBool::new(false),
            ready,
            scheduled: AtomicBool::new(true),
            cancelled: AtomicBool::new(false),
            complete: AtomicBool::new(false),
            join_queue: WaitQueue::new(),
        })
    }

    pub(super) fn is_complete(&self) -> bool {
        self.complete.load(Acquire)
    }

    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Acquire)
    }

    /// Its key among its set's live tasks, to unlist it once it has
    /// finished (see [`Ready::unlist`]).
    pub(super) fn live_key(&self) -> usize {
        self.live_key.load(Relaxed)
    }

    /// A poll of it begins (`true`) or ends (`false`).
    pub(super) fn set_polling(&self, polling: bool) {
        if polling {
            // Only the set's thread polls: no read-modify-write needed.
            self.polls
                .store(self.polls.load(Relaxed).wrapping_add(1), Relaxed);
        }
        self.polling.store(polling, Relaxed);
    }

    /// What a dump or the hung-task detector reads of it now.
    pub(super) fn view(self: &Arc<Self>, driver: Id) -> super::LocalTask {
        super::LocalTask {
            id: self.id,
            spawned_at: self.site,
            driver,
            polls: self.polls.load(Relaxed),
            polling: self.polling.load(Relaxed),
            scheduled: self.scheduled.load(Acquire),
            waker_data: Arc::as_ptr(self) as *const () as usize,
        }
    }

    /// Taken off the ready queue: a wake from now on queues it again.
    pub(super) fn unschedule(&self) {
        self.scheduled.store(false, Release);
    }

    /// `abort()`: marks it cancelled and queues it, so the set drops it.
    pub(super) fn cancel(self: &Arc<Self>) {
        if !self.is_complete() && !self.cancelled.swap(true, AcqRel) {
            self.wake_by_ref();
        }
    }

    /// The result is in the slot: publish it and wake the joiners.
    pub(super) fn complete(&self) {
        self.complete.store(true, Release);
        // A joiner's panicking waker must not unwind through the set's
        // `run_until` (its driving task) or skip the rest of its tick.
        crate::scheduler::wake_aside(JOINER, || {
            self.join_queue.wake_up_all();
        });
    }
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.is_complete() && !self.scheduled.swap(true, AcqRel) {
            self.ready.push(self.clone());
        }
    }
}

/// A set's ready queue, fed from any thread.
pub(super) struct Ready(Mutex<ReadyState>);

struct ReadyState {
    queue: VecDeque<Arc<Header>>,
    /// The `run_until` futures waiting for work (each re-registers per poll).
    wakers: Vec<Waker>,
    /// The set was dropped: wakes are ignored.
    closed: bool,
    /// Every unfinished task (and those finished since the last
    /// `unlist`, which readers skip), for dumps and the detectors.
    live: Slab<Arc<Header>>,
    /// Who polled the set's `run_until` last: the runtime (its
    /// `Common::id`) and the task (see `context::local_set_driver`).
    driver: Option<(u64, Id)>,
}

impl Ready {
    pub(super) fn new() -> Arc<Ready> {
        Arc::new(Ready(Mutex::new(ReadyState {
            queue: VecDeque::new(),
            wakers: Vec::new(),
            closed: false,
            live: Slab::new(),
            driver: None,
        })))
    }

    /// Lists a new task as live and queues it, in one lock hold.
    pub(super) fn push_new(&self, header: Arc<Header>) {
        let mut state = lock(&self.0);
        if state.closed {
            return;
        }
        let key = state.live.insert(header.clone());
        header.live_key.store(key, Relaxed);
        state.queue.push_back(header);
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Unlists the tasks that finished (`ended`: their keys), at the end
    /// of a `run_until` poll that finished some: one lock hold per poll,
    /// not per task (a dump skips a finished task meanwhile), and a set
    /// that ran a burst and idles keeps none of it (an independent review,
    /// when only spawns unlisted: 1,000,000 finished tasks kept 345 MB
    /// until the next spawn).
    pub(super) fn unlist(&self, ended: &mut Vec<usize>) {
        let mut state = lock(&self.0);
        for key in ended.drain(..) {
            state.live.try_remove(key);
        }
    }

    /// Tasks listed live, finished ones not yet unlisted included.
    #[cfg(test)]
    pub(super) fn live_len(&self) -> usize {
        lock(&self.0).live.len()
    }

    /// The set's unfinished tasks if a task of the runtime `runtime`
    /// (or its `block_on`) drove the set last.
    pub(super) fn live_on(&self, runtime: u64) -> Vec<super::LocalTask> {
        let state = lock(&self.0);
        match state.driver {
            Some((on, driver)) if on == runtime => state
                .live
                .iter()
                .filter(|(_, h)| !h.is_complete())
                .map(|(_, h)| h.view(driver))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Queues `header` and wakes the `run_until` futures.
    pub(super) fn push(&self, header: Arc<Header>) {
        let mut state = lock(&self.0);
        if state.closed {
            drop(state);
            return;
        }
        state.queue.push_back(header);
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(super) fn pop(&self) -> Option<Arc<Header>> {
        lock(&self.0).queue.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        lock(&self.0).queue.is_empty()
    }

    /// A `run_until` future wants to hear of the next push. Wakers are kept
    /// once each (`will_wake`); if an executor's wakers never compare equal
    /// they are woken and dropped at 1,024 (a spurious wake) rather than
    /// piling up until the next push.
    /// `driver` is who polls it (`context::local_set_driver`).
    pub(super) fn register(&self, waker: &Waker, driver: Option<(u64, Id)>) {
        const MAX_KEPT_WAKERS: usize = 1024;
        let mut state = lock(&self.0);
        // Off every runtime (`None`): in no runtime's dump.
        state.driver = driver;
        if state.wakers.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        let overflow = match state.wakers.len() >= MAX_KEPT_WAKERS {
            true => std::mem::take(&mut state.wakers),
            false => Vec::new(),
        };
        state.wakers.push(waker.clone());
        drop(state);
        overflow.into_iter().for_each(Waker::wake);
    }

    /// The set is gone: refuse wakes, and break the header <-> queue cycle.
    pub(super) fn close(&self) {
        let mut state = lock(&self.0);
        state.closed = true;
        let queue = std::mem::take(&mut state.queue);
        let wakers = std::mem::take(&mut state.wakers);
        let live = std::mem::take(&mut state.live);
        drop(state);
        drop((queue, wakers, live));
    }
}

/// A task's output, handed to its join handle.
pub(super) type Slot<T> = Mutex<Option<Result<T, JoinError>>>;

/// A task's future and output slot, with their types erased.
pub(super) trait Run {
    /// Polls once; on `Ready` the output is kept for [`finish`](Run::finish).
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Drops the future, then stores the output, or `error` (or the panic
    /// of the future's destructor) in the slot.
    fn finish(self: Box<Self>, id: Id, error: Option<JoinError>);
    /// Stores `error` in the slot and leaks the future without dropping
    /// it: for a set's drop that its tasks' destructors keep refilling
    /// (see `LocalSet`'s `Drop`).
    fn forsake(self: Box<Self>, error: JoinError);
}

/// Boxes `future` as a [`Run`], and the slot its output goes to.
pub(super) fn erase<F>(future: F) -> (Box<dyn Run>, Arc<Slot<F::Output>>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let slot = Arc::new(Mutex::new(None));
    let run = Box::new(Typed {
        future: Some(Box::pin(future)),
        output: None,
        slot: slot.clone(),
    });
    (run, slot)
}

struct Typed<F: Future> {
    future: Option<Pin<Box<F>>>,
    output: Option<F::Output>,
    slot: Arc<Slot<F::Output>>,
}

impl<F: Future> Run for Typed<F> {
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let future = self
            .future
            .as_mut()
            .expect("a finished local task was polled");
        future.as_mut().poll(cx).map(|out| self.output = Some(out))
    }

    fn finish(mut self: Box<Self>, id: Id, error: Option<JoinError>) {
        let future = self.future.take();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(future)));
        let result = match (error, dropped, self.output.take()) {
            (Some(error), _, output) => {
                drop_quietly(output);
                Err(error)
            }
            (None, Err(panic), output) => {
                drop_quietly(output);
                Err(JoinError::panicked(id, panic))
            }
            (None, Ok(()), Some(output)) => Ok(output),
            (None, Ok(()), None) => Err(JoinError::cancelled(id)),
        };
        *lock(&self.slot) = Some(result);
    }

    fn forsake(mut self: Box<Self>, error: JoinError) {
        std::mem::forget(self.future.take());
        drop_quietly(self.output.take());
        *lock(&self.slot) = Some(Err(error));
    }
}

fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
