//! Per-task signals: the runtime's [`waitq::SignalSource`].

use std::fmt;
use std::task::{Context, Poll};

use waitq::{SignalKind, SignalSource, TaskState};

use super::raw::TaskRef;
use crate::context;

/// The signals of one task, for the `_interruptible` and `_killable` waits
/// (kernel: the task's pending-signal set). Raised through
/// [`JoinHandle::interrupt`](super::JoinHandle::interrupt) /
/// [`kill`](super::JoinHandle::kill), or by routing process signals
/// ([`crate::signal`]).
///
/// A raised signal stays pending (every later interruptible wait ends at
/// once) until the task calls [`clear`](Self::clear), as a kernel signal
/// stays pending until it is delivered.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     static QUEUE: waitrt::sync::WaitQueue = waitrt::sync::WaitQueue::new();
///     let task = waitrt::spawn(async {
///         let signals = waitrt::task::signals();
///         QUEUE.wait_event_interruptible(&signals, || false).await
///     });
///     waitrt::task::yield_now().await; // let it start waiting
///     task.interrupt();
///     assert!(task.await.unwrap().is_err());
/// });
/// ```
#[derive(Clone)]
pub struct Signals {
    task: TaskRef,
}

impl Signals {
    /// Which signal is pending, if any.
    pub fn pending(&self) -> Option<SignalKind> {
        self.task.header().signals().pending()
    }

    /// Forgets every pending signal (kernel: the signal was delivered).
    pub fn clear(&self) {
        self.task.header().signals().clear();
    }

    /// Raises an interrupt on this task.
    pub fn interrupt(&self) {
        self.task.header().signals().interrupt();
    }

    /// Raises a fatal signal on this task.
    pub fn kill(&self) {
        self.task.header().signals().kill();
    }
}

impl SignalSource for Signals {
    fn poll_signal(&self, state: TaskState, cx: &mut Context<'_>) -> Poll<SignalKind> {
        self.task.header().signals().poll_signal(state, cx)
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("task", &self.task.header().id)
            .field("pending", &self.pending())
            .finish()
    }
}

/// The current task's signals.
///
/// # Panics
///
/// When not called from inside a task (use [`try_signals`]).
#[track_caller]
pub fn signals() -> Signals {
    try_signals().expect("`waitrt::task::signals()` must be called from inside a spawned task")
}

/// The current task's signals, or `None` outside a task.
pub fn try_signals() -> Option<Signals> {
    context::current_task().map(|task| Signals { task })
}
