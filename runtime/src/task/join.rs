//! [`JoinHandle`] and [`AbortHandle`].

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::error::JoinError;
use super::raw::{JoinRef, TaskRef};
use super::Id;

/// An owned permission to await a task's output; it sleeps on the task's
/// join wait queue (`header.join_queue`).
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] when the task panicked
/// or was cancelled. Dropping it *detaches* the task: it keeps running and
/// its output is dropped. Cancel-safe: a dropped `.await` loses nothing.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// let answer = rt.block_on(async { waitrt::spawn(async { 6 * 7 }).await.unwrap() });
/// assert_eq!(answer, 42);
/// ```
pub struct JoinHandle<T> {
    cell: JoinRef<T>,
    /// The output was taken: the task is complete and owes us nothing, so
    /// dropping the handle has no join interest to give up (one atomic
    /// operation less per joined task).
    taken: bool,
    /// Our waker is stored in the task's join wait (a poll returned
    /// `Pending`): dropping the handle takes it back.
    waiting: bool,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(cell: JoinRef<T>) -> Self {
        JoinHandle {
            cell,
            taken: false,
            waiting: false,
        }
    }

    /// Cancels the task: it is dropped at its next yield (now, if it is not
    /// running), and awaiting this handle gives a cancelled [`JoinError`].
    /// Does nothing once the task completed.
    pub fn abort(&self) {
        abort(self.task())
    }

    /// Whether the task has completed (finished, panicked or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.cell.header().state.load().is_complete()
    }

    /// A handle that can abort or signal the task without owning its output.
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle { task: self.task() }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.cell.header().id
    }

    /// Raises an interrupt on the task: its `_interruptible` waits end with
    /// `Interrupted` (kernel: a signal ends a `TASK_INTERRUPTIBLE` sleep).
    pub fn interrupt(&self) {
        self.cell.header().signals().interrupt();
    }

    /// Raises a fatal signal on the task: its `_killable` and
    /// `_interruptible` waits end with `Killed` (kernel: `SIGKILL`). The
    /// task still decides how to end; use [`abort`](Self::abort) to drop it.
    pub fn kill(&self) {
        self.cell.header().signals().kill();
    }

    fn task(&self) -> TaskRef {
        self.cell.clone()
    }
}

pub(crate) fn abort(task: TaskRef) {
    if task.header().state.transition_to_cancelled() {
        crate::scheduler::schedule_via_own_handle(task, false);
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// `#[track_caller]`: a sleep is listed where the handle is awaited.
    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_at(cx, Location::caller())
    }
}

impl<T> JoinHandle<T> {
    /// The output of a task that has finished, taken without a poll (and
    /// without spending the cooperative budget a poll spends); `None`
    /// while it runs or once taken.
    pub(crate) fn take_finished(&mut self) -> Option<Result<T, JoinError>> {
        let output = self.cell.take_output()?;
        self.taken = true;
        Some(output)
    }

    /// An earlier poll slept on the join queue and this one ends without
    /// polling it again: its waker (or, taken by the task's end, its
    /// record in this task's sleep slot) goes.
    fn stop_waiting(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.cell.header().join_queue().finish_wait();
        }
    }

    /// [`poll`](Future::poll), listing a sleep at `site` (a `JoinSet`
    /// passes its caller's).
    pub(crate) fn poll_at(
        &mut self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
    ) -> Poll<Result<T, JoinError>> {
        let this = self;
        let cell = &this.cell;
        // A finished task's handle is ready at once: spend budget so that a
        // loop joining finished tasks yields like any other resource.
        std::task::ready!(waitq::coop::poll_proceed(cx));
        if let Some(output) = cell.take_output() {
            this.taken = true;
            this.stop_waiting();
            return Poll::Ready(output);
        }
        let header = cell.header();
        if header.state.set_join_waiting().is_complete() {
            return match cell.take_output() {
                Some(output) => {
                    this.taken = true;
                    this.stop_waiting();
                    Poll::Ready(output)
                }
                None => panic!("`JoinHandle` polled after it returned the task's output"),
            };
        }
        // The wait spends its own unit: give back the one spent above.
        waitq::coop::refund();
        let poll = header
            .join_queue()
            .poll_wait_event_at(cx, site, || header.state.load().is_complete());
        this.waiting = poll.is_pending();
        match poll {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => match cell.take_output() {
                Some(output) => {
                    this.taken = true;
                    Poll::Ready(output)
                }
                // Closed by shutdown while it still runs (a blocking job's
                // closure, a stuck worker's poll): abandoned, not cancelled.
                None if !header.state.load().is_complete() => {
                    Poll::Ready(Err(JoinError::abandoned(header.id)))
                }
                None => panic!("`JoinHandle` polled after it returned the task's output"),
            },
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let header = self.cell.header();
        if self.waiting {
            // Our waker must not stay stored (and listed as a sleep).
            header.join_queue().finish_wait();
        }
        let before = header.state.drop_join_interest();
        if before.is_complete() {
            // The task stored its output before it saw us go: drop it here.
            // Its destructor may panic; that panic is the task's, and is
            // handled as it would be had the task dropped its output itself
            // (it does when no handle is left): caught, and reported
            // through the runtime's `UnhandledPanic` policy, never raised
            // in the code that happened to drop the handle.
            let output = self.cell.take_output();
            crate::task::raw::drop_output_quietly(header, output);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Aborts or signals a task without owning its output; cloneable, and
/// dropping it does nothing.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let task = waitrt::spawn(std::future::pending::<()>());
///     task.abort_handle().abort();
///     assert!(task.await.unwrap_err().is_cancelled());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    task: TaskRef,
}

impl AbortHandle {
    /// See [`JoinHandle::abort`].
    pub fn abort(&self) {
        abort(self.task.clone())
    }
    /// See [`JoinHandle::is_finished`].
    pub fn is_finished(&self) -> bool {
        self.task.header().state.load().is_complete()
    }
    /// See [`JoinHandle::interrupt`].
    pub fn interrupt(&self) {
        self.task.header().signals().interrupt();
    }
    /// See [`JoinHandle::kill`].
    pub fn kill(&self) {
        self.task.header().signals().kill();
    }
    /// The task's id.
    pub fn id(&self) -> Id {
        self.task.header().id
    }
    /// A reference that does not keep the task alive (signal routes).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<dyn super::raw::Runnable> {
        Arc::downgrade(&self.task)
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    /// Three words: the task pointer (two, with its vtable) and the two
    /// flags. (It was four, with a boxed wait entry made the first time
    /// the handle slept: now it sleeps on the task's one-waiter wait.)
    #[test]
    fn a_join_handle_is_three_words() {
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<super::JoinHandle<u64>>(), 3 * word);
    }
}
