//! The parts of a local task: the shared [`Header`] (its waker and what
//! its join handle reads), the set's [`Ready`] queue, and the type-erased
//! future ([`Run`]).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use waitq::WaitQueue;

use crate::task::{Id, JoinError};

/// The shared part of a task: its waker (from any thread), and what its
/// join handle reads.
pub(super) struct Header {
    pub(super) id: Id,
    /// Key in the set's slab.
    pub(super) key: usize,
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
    pub(super) fn new(key: usize, ready: Arc<Ready>) -> Arc<Header> {
        Arc::new(Header {
            id: Id::next(),
            key,
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
        self.join_queue.wake_up_all();
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
}

impl Ready {
    pub(super) fn new() -> Arc<Ready> {
        Arc::new(Ready(Mutex::new(ReadyState {
            queue: VecDeque::new(),
            wakers: Vec::new(),
            closed: false,
        })))
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
    pub(super) fn register(&self, waker: &Waker) {
        const MAX_KEPT_WAKERS: usize = 1024;
        let mut state = lock(&self.0);
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
        drop(state);
        drop((queue, wakers));
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
}

fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
