//! The reference for the one-thread wake rows (issue 21: "where a target
//! proves to be past the physical limit, show it"): `bare`, the smallest
//! executor that runs the workloads, around the same [`WaitQueue`] ours
//! uses. One thread; the tasks' futures live in a thread-local slab and a
//! task's waker is its key and a "queued" flag, so a wake is a push of the
//! key on a thread-local FIFO and a poll is a slab lookup: no task state
//! machine, no reference counts moved per poll, no cooperative budget, no
//! panic catching, no wait registry, no test-toolkit hooks, no timers or
//! reactor. What ours (and tokio) pay on top of it is the runtime; what
//! `bare` itself costs is the wait queue and the least a poll can cost.
//!
//! It runs the current-thread rows only (a wake from another thread
//! panics), and it is measured like a peer but reported as a reference:
//! it is a floor, not a runtime a user could pick.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::{Rt, WaitQueue};

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The tasks' futures, by key (a task being polled is taken out), and
/// the keys of finished tasks, for reuse.
#[derive(Default)]
struct Tasks {
    futures: Vec<Option<BoxFuture>>,
    free: Vec<usize>,
}

thread_local! {
    static TASKS: RefCell<Tasks> = RefCell::new(Tasks::default());
    /// Keys of the tasks ready to run, oldest first.
    static READY: RefCell<VecDeque<Arc<TaskWaker>>> = const { RefCell::new(VecDeque::new()) };
}

/// A task's waker: its key, and whether it is already queued.
struct TaskWaker {
    key: usize,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, SeqCst) {
            READY.with(|ready| ready.borrow_mut().push_back(self.clone()));
        }
    }
}

/// Queues a new task; its waker is made when it is first polled.
fn spawn_boxed(future: BoxFuture) {
    let key = TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        match tasks.free.pop() {
            Some(key) => {
                tasks.futures[key] = Some(future);
                key
            }
            None => {
                tasks.futures.push(Some(future));
                tasks.futures.len() - 1
            }
        }
    });
    let waker = Arc::new(TaskWaker {
        key,
        queued: AtomicBool::new(true),
    });
    READY.with(|ready| ready.borrow_mut().push_back(waker));
}

/// Runs ready tasks until none is left.
fn run_until_idle() {
    while let Some(task) = READY.with(|ready| ready.borrow_mut().pop_front()) {
        task.queued.store(false, SeqCst);
        let Some(mut future) = TASKS.with(|tasks| tasks.borrow_mut().futures[task.key].take())
        else {
            continue;
        };
        let waker = Waker::from(task.clone());
        let done = future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        TASKS.with(|tasks| {
            let mut tasks = tasks.borrow_mut();
            match done {
                true => tasks.free.push(task.key),
                false => tasks.futures[task.key] = Some(future),
            }
        });
    }
}

/// A one-shot hand-over of a value (a task's output to its join future,
/// or `completion`'s): the sender's half and the receiving future.
fn one_shot<T: Send + 'static>() -> (impl FnOnce(T), impl Future<Output = T>) {
    struct Slot<T> {
        value: Option<T>,
        waker: Option<Waker>,
    }
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let sender = {
        let slot = slot.clone();
        move |value: T| {
            let waker = {
                let mut slot = slot.lock().unwrap();
                slot.value = Some(value);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    };
    let receiver = std::future::poll_fn(move |cx| {
        let mut slot = slot.lock().unwrap();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    });
    (sender, receiver)
}

/// The executor (one thread).
pub(super) struct Bare;

impl Rt for Bare {
    const NAME: &'static str = "bare";
    type Queue = WaitQueue;

    fn build(workers: usize) -> Self {
        assert_eq!(workers, 1, "the bare executor runs on one thread");
        Bare
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let out = Arc::new(Mutex::new(None));
        let slot = out.clone();
        spawn_boxed(Box::pin(async move {
            let value = future.await;
            *slot.lock().unwrap() = Some(value);
        }));
        run_until_idle();
        let value = out.lock().unwrap().take();
        value.expect("the root future completed (no task waits on another thread)")
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (send, output) = one_shot();
        spawn_boxed(Box::pin(async move { send(future.await) }));
        output
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        spawn_boxed(Box::pin(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    fn completion() -> (
        impl FnOnce(u64) + Send + 'static,
        impl Future<Output = u64> + Send + 'static,
    ) {
        one_shot()
    }
}
