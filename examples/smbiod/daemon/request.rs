//! One request's life in smbiod: the caller's [`Slot`] (its own wait queue
//! and the reply it sleeps for), the [`Queued`] entry the daemon sends, and
//! the [`Sent`] entry the reader matches a reply to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use waitq::{SignalKind, SignalSource, TaskSignals, TaskState, WaitQueue};
use waitrt::time::RuntimeClock;

use crate::client::ClientError;
use crate::wire::message::{Request, Response};
use crate::wire::Header;

/// A final reply: its header and body.
pub type Reply = (Header, Response);

/// Where a caller sleeps until its reply (or an error) arrives (kernel:
/// `struct smb_request`'s `rq_wait`).
#[derive(Debug)]
pub struct Slot {
    wq: WaitQueue,
    done: AtomicBool,
    abandoned: AtomicBool,
    result: Mutex<Option<Result<Reply, ClientError>>>,
}

impl Slot {
    /// A fresh, empty slot.
    pub fn new() -> Arc<Slot> {
        Arc::new(Slot {
            // Named for dumps (`kill -QUIT`): a caller shows as
            // "[wait_event_interruptible_timeout on rq_wait, ...]".
            wq: WaitQueue::named("rq_wait"),
            done: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            result: Mutex::new(None),
        })
    }

    /// Stores the outcome (the first one wins) and wakes the caller. A
    /// caller that gave up ([`abandon`](Self::abandon)) gets nothing: the
    /// outcome comes back, for the reader to discard (and to close the
    /// handle of a CREATE nobody will use).
    pub fn complete(&self, r: Result<Reply, ClientError>) -> Option<Result<Reply, ClientError>> {
        {
            let mut g = self.result.lock().unwrap_or_else(PoisonError::into_inner);
            if self.abandoned.load(Ordering::Acquire) {
                return Some(r);
            }
            if g.is_some() || self.done.load(Ordering::Acquire) {
                return None;
            }
            *g = Some(r);
            self.done.store(true, Ordering::Release);
        }
        self.wq.wake_up();
        None
    }

    /// Whether the outcome is in.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Takes the outcome (once).
    pub fn take(&self) -> Option<Result<Reply, ClientError>> {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The caller gave up (interrupted, or its future dropped): a late
    /// reply is discarded. An outcome already stored and not taken comes
    /// back (a reply that arrived just before: the caller's own, or the
    /// reader's to discard), in the same lock hold as `complete`'s test,
    /// so a reply is always either taken or handed back, never left in a
    /// slot nobody reads (a CREATE's handle would then stay open).
    pub fn abandon(&self) -> Option<Result<Reply, ClientError>> {
        let mut g = self.result.lock().unwrap_or_else(PoisonError::into_inner);
        self.abandoned.store(true, Ordering::Release);
        g.take()
    }

    /// Sleeps (interruptibly) until the outcome is in, for at most `left`
    /// on `clock`; a timeout reports `limit`, the whole call's timeout.
    pub async fn wait(
        &self,
        signals: &Signals,
        clock: &RuntimeClock,
        left: Duration,
        limit: Duration,
    ) -> Result<(), ClientError> {
        self.wq
            .wait_event_interruptible_timeout(signals, clock, left, || self.is_done())
            .await
            .map(drop)
            .map_err(|e| {
                if e.is_timed_out() {
                    ClientError::TimedOut(limit)
                } else {
                    ClientError::Interrupted
                }
            })
    }
}

/// A request the caller has paid credits for, waiting for the daemon.
#[derive(Debug)]
pub struct Queued {
    /// The request.
    pub req: Request,
    /// Its TreeId.
    pub tree_id: u32,
    /// The credits reserved for it.
    pub cost: u32,
    /// The caller's slot; `None` for the daemon's own cleanup requests.
    pub slot: Option<Arc<Slot>>,
    /// When it was queued (for the latency figures).
    pub queued_at: Instant,
}

/// A request on the wire, by MessageId.
#[derive(Debug)]
pub struct Sent {
    /// The credits it consumed.
    pub cost: u32,
    /// The TreeId it was sent with: an async final reply carries none (its
    /// header holds the AsyncId there), so a late CREATE's cleanup CLOSE
    /// takes this one.
    pub tree_id: u32,
    /// The caller's slot, if any.
    pub slot: Option<Arc<Slot>>,
    /// When it was queued.
    pub queued_at: Instant,
}

/// The signals a caller's waits read: its task's, or none outside a task.
#[derive(Debug, Clone)]
pub enum Signals {
    /// Inside a runtime task: its per-task signals.
    Task(waitrt::task::Signals),
    /// Outside a task (e.g. `block_on`'s future): a source never raised.
    Never(Arc<TaskSignals>),
}

impl Signals {
    /// The current task's signals, or a silent source outside a task.
    pub fn current() -> Signals {
        match waitrt::task::try_signals() {
            Some(s) => Signals::Task(s),
            None => Signals::Never(Arc::new(TaskSignals::new())),
        }
    }

    /// Forgets pending signals.
    pub fn clear(&self) {
        match self {
            Signals::Task(s) => s.clear(),
            Signals::Never(s) => s.clear(),
        }
    }
}

impl SignalSource for Signals {
    fn poll_signal(
        &self,
        state: TaskState,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<SignalKind> {
        match self {
            Signals::Task(s) => s.poll_signal(state, cx),
            Signals::Never(s) => s.poll_signal(state, cx),
        }
    }
}
