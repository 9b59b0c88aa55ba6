//! [`PollWaiter`]: an owned, reusable wait, driven from a named future's
//! `poll` (kernel: a `wait_queue_entry` embedded in the caller's own
//! struct, driven by the `___wait_event()` loop).

use std::fmt;
use std::ops::Deref;
use std::task::{Context, Poll};

use crate::entry::TaskState;
use crate::error::Closed;
use crate::registry::WaitApi;
use crate::wait::{as_option, no_end, Waiter};
use crate::WaitQueue;

/// A reusable waiter that owns (a way to reach) its queue, for hand-written
/// futures that cannot hold a borrowing [`WaitEvent`](crate::WaitEvent).
///
/// `Q` is anything that derefs to the queue: `Arc<WaitQueue>`,
/// `&WaitQueue`, or an owner of a struct that embeds the queue: a newtype
/// around `Arc<Shared>` whose `Deref<Target = WaitQueue>` returns
/// `&self.0.queue` (`Arc<Shared>` itself derefs to `Shared`, not to the
/// queue). Each
/// [`poll_wait_event`](Self::poll_wait_event) is one step of
/// [`WaitQueue::wait_event`], with the same protocol (register, then
/// re-check; exclusive hand-off; a true condition beats close; the
/// [`coop`](crate::coop) budget). After a `Ready` the waiter is ready for a
/// new wait.
///
/// Dropping it unlinks its entry; an exclusive waiter that a wake picked
/// and that never acted on it hands the wake to the next exclusive waiter.
/// It is `Unpin`, and `Send`/`Sync` when `Q` is.
///
/// # Examples
///
/// A named future owning its queue, as a join handle does:
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::task::{Context, Poll};
/// use waitq::{Closed, PollWaiter, WaitQueue};
///
/// struct Shared {
///     done: AtomicBool,
///     queue: WaitQueue,
/// }
///
/// /// The queue, reached through the shared state it lives in.
/// struct QueueOf(Arc<Shared>);
///
/// impl std::ops::Deref for QueueOf {
///     type Target = WaitQueue;
///     fn deref(&self) -> &WaitQueue {
///         &self.0.queue
///     }
/// }
///
/// struct Join {
///     shared: Arc<Shared>,
///     waiter: PollWaiter<QueueOf>,
/// }
///
/// impl Future for Join {
///     type Output = Result<(), Closed>;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
///         let this = self.get_mut();
///         let shared = &this.shared;
///         this.waiter.poll_wait_event(cx, || shared.done.load(Ordering::SeqCst))
///     }
/// }
///
/// let shared = Arc::new(Shared { done: AtomicBool::new(false), queue: WaitQueue::new() });
/// let join = Join { shared: shared.clone(), waiter: PollWaiter::new(QueueOf(shared.clone())) };
/// let worker = std::thread::spawn(move || {
///     shared.done.store(true, Ordering::SeqCst);
///     shared.queue.wake_up_all();
/// });
/// futures::executor::block_on(join).unwrap();
/// worker.join().unwrap();
/// ```
pub struct PollWaiter<Q: Deref<Target = WaitQueue>> {
    waiter: Waiter<Q>,
}

// ===== impl PollWaiter =====

impl<Q: Deref<Target = WaitQueue>> PollWaiter<Q> {
    /// A non-exclusive waiter on `queue`: every wake wakes it (kernel: the
    /// entry of `wait_event()`). Nothing is linked until the first poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let waiter = waitq::PollWaiter::new(Arc::new(waitq::WaitQueue::new()));
    /// assert!(!waiter.is_waiting());
    /// ```
    #[track_caller]
    pub fn new(queue: Q) -> Self {
        PollWaiter {
            waiter: Waiter::new(queue, false, TaskState::Uninterruptible, 0)
                .with_api(WaitApi::Poll),
        }
    }

    /// An exclusive waiter on `queue`: a `wake_up` wakes only the oldest
    /// exclusive waiter (kernel: `WQ_FLAG_EXCLUSIVE`, `wait_event_exclusive()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// let queue = waitq::WaitQueue::new();
    /// let mut a = waitq::PollWaiter::new_exclusive(&queue);
    /// let mut b = waitq::PollWaiter::new_exclusive(&queue);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(a.poll_wait_event(&mut cx, || false).is_pending());
    /// assert!(b.poll_wait_event(&mut cx, || false).is_pending());
    /// assert_eq!(queue.wake_up(), 1); // only `a`
    /// ```
    #[track_caller]
    pub fn new_exclusive(queue: Q) -> Self {
        PollWaiter {
            waiter: Waiter::new(queue, true, TaskState::Uninterruptible, 0).with_api(WaitApi::Poll),
        }
    }

    /// Lists this waiter's sleeps at `site` instead of where it was made
    /// (see [`WaitEvent::at`](crate::WaitEvent::at)): for a waiter made
    /// lazily inside a future's poll, the site of the code that awaits it.
    #[must_use]
    pub fn at(mut self, site: &'static std::panic::Location<'static>) -> Self {
        self.waiter.at(site);
        self
    }

    /// The queue this waiter sleeps on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let queue = Arc::new(waitq::WaitQueue::new());
    /// let waiter = waitq::PollWaiter::new(queue.clone());
    /// assert!(std::ptr::eq(waiter.queue(), &*queue));
    /// ```
    pub fn queue(&self) -> &WaitQueue {
        self.waiter.queue()
    }

    /// One step of [`WaitQueue::wait_event`]: `Ready(Ok(()))` once `cond`
    /// is true, `Pending` with `cx`'s waker registered otherwise.
    ///
    /// The protocol is the wait futures': `cond` is tested, the entry
    /// linked, and `cond` tested again, so a wake between the caller's own
    /// test and the registration is not lost. It first spends one unit of
    /// the [`coop`](crate::coop) budget. After `Ready` the waiter is reset
    /// and the next call starts a new wait (it does not panic).
    ///
    /// # Errors
    ///
    /// `Ready(Err(Closed))` if the queue is (or gets) closed while `cond`
    /// is false; a true `cond` beats close.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let queue = waitq::WaitQueue::new();
    /// let ready = AtomicBool::new(false);
    /// let mut waiter = waitq::PollWaiter::new(&queue);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let cond = || ready.load(Ordering::SeqCst);
    /// assert!(waiter.poll_wait_event(&mut cx, cond).is_pending());
    /// ready.store(true, Ordering::SeqCst);
    /// queue.wake_up();
    /// assert_eq!(waiter.poll_wait_event(&mut cx, cond), Poll::Ready(Ok(())));
    /// assert_eq!(waiter.poll_wait_event(&mut cx, cond), Poll::Ready(Ok(()))); // reused
    /// ```
    pub fn poll_wait_event(
        &mut self,
        cx: &mut Context<'_>,
        mut cond: impl FnMut() -> bool,
    ) -> Poll<Result<(), Closed>> {
        let poll = self.waiter.poll(cx, &mut as_option(&mut cond), &mut no_end);
        if poll.is_ready() {
            self.waiter.reset();
        }
        poll.map_err(Closed::new)
    }

    /// Whether a wait is in progress: an entry is linked, or a wake picked
    /// it and the waiter has not acted on that yet (its next poll will).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// let queue = waitq::WaitQueue::new();
    /// let mut waiter = waitq::PollWaiter::new(&queue);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(waiter.poll_wait_event(&mut cx, || false).is_pending());
    /// assert!(waiter.is_waiting());
    /// assert!(waiter.poll_wait_event(&mut cx, || true).is_ready());
    /// assert!(!waiter.is_waiting());
    /// ```
    pub fn is_waiting(&self) -> bool {
        self.waiter.is_waiting()
    }
}

impl<Q: Deref<Target = WaitQueue>> fmt::Debug for PollWaiter<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollWaiter")
            .field("waiter", &self.waiter)
            .finish()
    }
}

// Nothing is pinned: the waiter moves freely, whatever `Q` is.
impl<Q: Deref<Target = WaitQueue>> Unpin for PollWaiter<Q> {}
