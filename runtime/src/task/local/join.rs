//! [`LocalJoinHandle`]: awaits a local task from any task or thread.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use waitq::{PollWaiter, WaitQueue};

use super::task::{lock, Header, Slot};
use crate::task::{Id, JoinError};

/// Awaits a local task's output: `Ok(output)`, or a [`JoinError`] when the
/// task panicked, was aborted, or its [`LocalSet`](super::LocalSet) was
/// dropped. It sleeps on the task's join wait queue. Dropping it detaches
/// the task. It is `Send` when the output is, so any task may await it.
///
/// # Examples
///
/// ```
/// let local = waitrt::task::LocalSet::new();
/// let task = local.spawn_local(async { panic!("boom") });
/// let err = waitrt::block_on(local.run_until(task)).unwrap_err();
/// assert!(err.is_panic());
/// ```
pub struct LocalJoinHandle<T> {
    header: Arc<Header>,
    slot: Arc<Slot<T>>,
    waiter: Option<PollWaiter<JoinQueue>>,
}

/// Lets the join waiter own a reference to the task's join queue.
struct JoinQueue(Arc<Header>);

impl Deref for JoinQueue {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        &self.0.join_queue
    }
}

impl<T> LocalJoinHandle<T> {
    pub(super) fn new(header: Arc<Header>, slot: Arc<Slot<T>>) -> Self {
        LocalJoinHandle {
            header,
            slot,
            waiter: None,
        }
    }

    /// Cancels the task: it is dropped the next time its set runs (or
    /// when the set is dropped), and awaiting this handle gives a
    /// cancelled [`JoinError`]. Does nothing once the task completed.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let task = local.spawn_local(std::future::pending::<()>());
    /// task.abort();
    /// let err = waitrt::block_on(local.run_until(task)).unwrap_err();
    /// assert!(err.is_cancelled());
    /// ```
    pub fn abort(&self) {
        self.header.cancel();
    }

    /// Whether the task has completed (finished, panicked or was cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let task = local.spawn_local(async {});
    /// assert!(!task.is_finished());
    /// drop(local);
    /// assert!(task.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.header.is_complete()
    }

    /// The task's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = waitrt::task::LocalSet::new();
    /// let (a, b) = (local.spawn_local(async {}), local.spawn_local(async {}));
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> Id {
        self.header.id
    }

    fn take_output(&self) -> Option<Result<T, JoinError>> {
        if !self.header.is_complete() {
            return None;
        }
        lock(&self.slot).take()
    }
}

impl<T> Future for LocalJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(output) = this.take_output() {
            return Poll::Ready(output);
        }
        let header = &this.header;
        let waiter = this
            .waiter
            .get_or_insert_with(|| PollWaiter::new(JoinQueue(header.clone())));
        match waiter.poll_wait_event(cx, || header.is_complete()) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(
                this.take_output()
                    .expect("`LocalJoinHandle` polled after it returned the task's output"),
            ),
        }
    }
}

impl<T> fmt::Debug for LocalJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalJoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
