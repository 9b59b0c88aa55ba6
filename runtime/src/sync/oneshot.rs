//! A channel for one value: [`channel`] gives a [`Sender`] that sends it
//! once and a [`Receiver`] that is a future of it.
//!
//! ```
//! use waitrt::sync::oneshot;
//!
//! let rt = waitrt::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     let (tx, rx) = oneshot::channel();
//!     waitrt::spawn(async move {
//!         tx.send(6 * 7).unwrap();
//!     });
//!     assert_eq!(rx.await, Ok(42));
//! });
//! ```
//!
//! Kernel: `struct completion`. [`Sender::send`] is `complete()` (with a
//! value), awaiting the [`Receiver`] is `wait_for_completion()`, and its
//! [`recv_interruptible`](Receiver::recv_interruptible),
//! [`recv_killable`](Receiver::recv_killable) and
//! [`recv_timeout`](Receiver::recv_timeout) are
//! `wait_for_completion_interruptible`, `_killable` and `_timeout`. The
//! API is otherwise tokio's (`tokio::sync::oneshot`).
//!
//! # Contract
//!
//! - The receiver gets the value, or [`RecvError`] if the sender was
//!   dropped without sending.
//! - [`Sender::send`] gives the value back if the receiver is gone
//!   (dropped or [`close`](Receiver::close)d); [`Sender::closed`]
//!   completes then.
//! - **Cancel safety.** The receiver is its own future: polling it and
//!   dropping the poll loses nothing, and the kernel-family methods borrow
//!   it, so a dropped wait leaves the value to the next one.
//! - **Budget.** A receive that completes at once spends a unit of the
//!   task's cooperative budget.
//!
//! # Internals
//!
//! One allocation: an `Arc` of the state (the value and two flags) under
//! the lock of an [`RcuWait`], the wait the receiver's own poll sleeps on
//! (the one waiter it can have). It works as the kernel's `struct
//! completion`: a send stores the value and takes the receiver's waker in
//! one lock hold, and the receiver's poll tests for the value and stores
//! its waker in one hold, so no wake can fall between them and no fence
//! is needed. The flags are mirrored in an atomic, set in the same hold,
//! so a receive that finds nothing reads them without the lock.
//!
//! Every other wait (the kernel-family and blocking receives, and a
//! sender in `closed()`) sleeps on a wait queue, made (boxed) by the
//! first of them, which first marks it used under the lock. A state
//! change looks at the queue only once it is used: it reads the mark in
//! its hold, then a `SeqCst` fence, then [`WaitQueue::waitqueue_active`];
//! such a waiter links its entry, then a `SeqCst` fence, then reads the
//! flags. Of the two fences one comes first, so either the waker sees the
//! waiter or the waiter sees the flag (the kernel's `wq_has_sleeper`
//! pairing); a waiter that marked the queue after the waker's hold sees
//! the flag that hold set.

pub mod error;

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use waitq::{coop, Interrupted, Killed, PollWaiter, RcuWait, RcuWaitGuard, TimedOut, WaitQueue};

pub use error::{RecvError, TryRecvError};

use crate::sync::signals;

/// Creates a one-value channel.
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.blocking_recv(), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: RcuWait::with_state(
            Some("oneshot_recv"),
            State {
                value: None,
                tx_done: false,
                rx_closed: false,
                queue_used: false,
            },
        ),
        flags: AtomicU8::new(0),
        queue: OnceLock::new(),
    });
    (
        Sender {
            inner: Some(inner.clone()),
            closed_waiter: None,
        },
        Receiver {
            inner,
            slept: false,
            done: false,
        },
    )
}

/// Sends the one value; see [`channel`].
pub struct Sender<T> {
    /// `None` once sent.
    inner: Option<Arc<Inner<T>>>,
    /// Made on the first `poll_closed` that has to sleep.
    closed_waiter: Option<PollWaiter<QueueOf<T>>>,
}

/// The future of the one value; see [`channel`].
///
/// Resolves to the value, or [`RecvError`] if the sender was dropped
/// without sending.
#[must_use = "futures do nothing unless polled"]
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// A poll of the receiver itself stored its waker in `state` and no
    /// later poll ended that wait.
    slept: bool,
    /// The value (or the error) was handed out.
    done: bool,
}

struct Inner<T> {
    /// The state, under the lock of the wait the receiver's own poll
    /// sleeps on (its one waiter).
    state: RcuWait<State<T>>,
    /// `State`'s two flags (`TX_DONE`, `RX_CLOSED`), set in the same lock
    /// hold as the state, for the reads that need no lock.
    flags: AtomicU8,
    /// Every other wait: the receiver's kernel-family and blocking waits,
    /// and the sender in `closed()`. Made by the first of them, boxed so
    /// that a channel that never needs it stays small (no 232-byte copy).
    queue: OnceLock<Box<WaitQueue>>,
}

struct State<T> {
    value: Option<T>,
    /// The sender sent or was dropped.
    tx_done: bool,
    /// The receiver closed or was dropped.
    rx_closed: bool,
    /// A wait on `queue` began: a state change must look there too.
    queue_used: bool,
}

impl<T> State<T> {
    /// What the receiver gets now: the value, the error, or `None` while
    /// the sender may still send.
    fn take(&mut self) -> Option<Result<T, RecvError>> {
        match self.value.take() {
            Some(value) => Some(Ok(value)),
            None if self.tx_done || self.rx_closed => Some(Err(RecvError(()))),
            None => None,
        }
    }
}

/// The sender sent or was dropped (`State::tx_done`).
const TX_DONE: u8 = 1;
/// The receiver closed or was dropped (`State::rx_closed`).
const RX_CLOSED: u8 = 2;

/// `PollWaiter`'s handle on the queue.
struct QueueOf<T>(Arc<Inner<T>>);

impl<T> Deref for QueueOf<T> {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        self.0.queue.get_or_init(Box::default)
    }
}

// ===== impl Inner =====

impl<T> Inner<T> {
    fn lock(&self) -> RcuWaitGuard<'_, State<T>> {
        self.state.lock()
    }

    /// Mirrors a flag just set in `state` (call under the lock). Every
    /// writer holds the lock, so a load and a store do what a `fetch_or`
    /// would, without a second locked instruction on the send path.
    fn set(&self, flag: u8) {
        let flags = self.flags.load(Ordering::Relaxed);
        self.flags.store(flags | flag, Ordering::Relaxed);
    }

    /// The queue for every wait but the receiver's own poll, marked used
    /// (under the lock) before the caller links an entry on it.
    fn queue(&self) -> &WaitQueue {
        self.lock().queue_used = true;
        self.queue.get_or_init(Box::default)
    }

    /// Ends a lock hold that changed the state: wakes the receiver's poll
    /// (its waker taken in the hold, woken after it), then, if a wait on
    /// the queue ever began, the queue's sleepers (after a fence that
    /// pairs with the one in `seen`, see "Internals").
    #[inline]
    fn wake(&self, state: RcuWaitGuard<'_, State<T>>) {
        let queue_used = state.queue_used;
        state.wake_up();
        self.wake_queue(queue_used);
    }

    /// The second half of [`wake`](Self::wake), after the lock: wakes the
    /// queue's sleepers if a wait on it ever began.
    #[inline]
    fn wake_queue(&self, queue_used: bool) {
        if queue_used {
            fence(Ordering::SeqCst);
            if let Some(queue) = self.queue.get() {
                if queue.waitqueue_active_after_barrier() {
                    queue.wake_up();
                }
            }
        }
    }

    /// A waiter's condition: any of `flags` set. The fence orders the
    /// waiter's link before the read (see "Internals").
    fn seen(&self, flags: u8) -> bool {
        fence(Ordering::SeqCst);
        self.flags.load(Ordering::Relaxed) & flags != 0
    }

    /// The receiver's condition: something to hand out (a sent value
    /// sets `TX_DONE`).
    fn rx_ready(&self) -> bool {
        self.seen(TX_DONE | RX_CLOSED)
    }

    fn is_rx_closed(&self) -> bool {
        self.flags.load(Ordering::Acquire) & RX_CLOSED != 0
    }

    /// The value, the error, or `None` while the sender may still send.
    /// Takes the lock only once a flag says something happened.
    fn try_take(&self) -> Option<Result<T, RecvError>> {
        if self.flags.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.lock().take()
    }

    fn close_rx(&self) {
        let mut state = self.lock();
        if state.rx_closed {
            return;
        }
        state.rx_closed = true;
        self.set(RX_CLOSED);
        self.wake(state);
    }
}

// ===== impl Sender =====

impl<T> Sender<T> {
    /// Sends the value (kernel: `complete()`), waking the receiver.
    ///
    /// # Errors
    ///
    /// The value, if the receiver is gone (dropped or closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("sender used after send");
        let mut state = inner.lock();
        if state.rx_closed {
            return Err(value);
        }
        state.value = Some(value);
        state.tx_done = true;
        inner.set(TX_DONE);
        inner.wake(state);
        Ok(())
    }

    /// Completes once the receiver is gone (dropped or closed): for a
    /// producer to stop computing a value nobody wants.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (mut tx, rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     waitrt::spawn(async move { drop(rx) });
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    pub async fn closed(&mut self) {
        let inner = self.inner.as_ref().expect("sender used after send");
        let _ = inner.queue().wait_event(|| inner.seen(RX_CLOSED)).await;
    }

    /// [`closed`](Self::closed) as a poll function, for hand-written
    /// futures (as tokio's): `Ready` once the receiver is gone. The
    /// registration lives in the sender, so only the waker of the last
    /// call is woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// waitrt::block_on(async {
    ///     let (mut tx, rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     let task = waitrt::spawn(async move {
    ///         poll_fn(|cx| tx.poll_closed(cx)).await;
    ///         tx.is_closed()
    ///     });
    ///     drop(rx);
    ///     assert!(task.await.unwrap());
    /// });
    /// ```
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner.as_ref().expect("sender used after send");
        let waiter = self.closed_waiter.get_or_insert_with(|| {
            inner.queue(); // marks the queue used before a wait links
            PollWaiter::new(QueueOf(inner.clone()))
        });
        // The queue is never closed: `Ready` means the receiver is gone.
        waiter
            .poll_wait_event(cx, || inner.seen(RX_CLOSED))
            .map(|_| ())
    }

    /// Whether the receiver is gone (dropped or closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|inner| inner.is_rx_closed())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut state = inner.lock();
            state.tx_done = true;
            inner.set(TX_DONE);
            inner.wake(state);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("sent", &self.inner.is_none())
            .finish()
    }
}

// ===== impl Receiver =====

impl<T> Receiver<T> {
    /// Takes the value if it was sent.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not yet, [`TryRecvError::Closed`] if it
    /// never will be (or was already taken).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel();
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(3));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.done {
            return Err(TryRecvError::Closed);
        }
        match self.inner.try_take() {
            Some(res) => {
                self.finish();
                res.map_err(TryRecvError::from)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel: a later [`Sender::send`] fails with its value,
    /// [`Sender::closed`] completes. A value sent before still arrives.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(1), Err(1));
    /// assert!(rx.try_recv().is_err());
    /// ```
    pub fn close(&mut self) {
        self.inner.close_rx();
    }

    /// Whether the value (or the error) was already handed out.
    pub fn is_terminated(&self) -> bool {
        self.done
    }

    /// Waits from a plain thread (kernel: `wait_for_completion` in a
    /// kernel thread).
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the sender was dropped without sending.
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::oneshot::channel();
    /// std::thread::spawn(move || tx.send(5).unwrap());
    /// assert_eq!(rx.blocking_recv(), Ok(5));
    /// ```
    #[track_caller]
    pub fn blocking_recv(mut self) -> Result<T, RecvError> {
        if crate::context::is_driving() {
            panic!(
                "`blocking_recv` called from inside a runtime: it would block the thread \
                 that drives tasks (await the receiver instead)"
            );
        }
        let inner = &*self.inner;
        let _ = inner.queue().blocking_wait_event(|| inner.rx_ready());
        let res = self.inner.try_take().unwrap_or(Err(RecvError(())));
        self.finish();
        res
    }

    /// Waits for the value, ending early if the task is interrupted or
    /// killed (kernel: `wait_for_completion_interruptible`). The outer
    /// result is the wait's, the inner one the channel's.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if a signal came first (a value sent together with
    /// it wins); the receiver can be awaited again.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: the value stays for the next wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::oneshot::channel();
    ///     tx.send(1).unwrap();
    ///     assert_eq!(rx.recv_interruptible().await, Ok(Ok(1)));
    /// });
    /// ```
    pub async fn recv_interruptible(&mut self) -> Result<Result<T, RecvError>, Interrupted> {
        let inner = &*self.inner;
        let res = inner
            .queue()
            .wait_event_interruptible(signals::current(), || inner.rx_ready())
            .await;
        self.after_wait(res)
    }

    /// Waits for the value, ending early only if the task is killed
    /// (kernel: `wait_for_completion_killable`).
    ///
    /// # Errors
    ///
    /// [`Killed`] if a fatal signal came first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     drop(tx);
    ///     assert!(rx.recv_killable().await.unwrap().is_err());
    /// });
    /// ```
    pub async fn recv_killable(&mut self) -> Result<Result<T, RecvError>, Killed> {
        let inner = &*self.inner;
        let res = inner
            .queue()
            .wait_event_killable(signals::current(), || inner.rx_ready())
            .await;
        self.after_wait(res)
    }

    /// Waits for the value at most `timeout` on the runtime's clock
    /// (kernel: `wait_for_completion_timeout`).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if nothing came in time; the receiver can be awaited
    /// again.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (_tx, mut rx) = waitrt::sync::oneshot::channel::<u8>();
    ///     assert!(rx.recv_timeout(Duration::from_millis(1)).await.is_err());
    /// });
    /// ```
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<T, RecvError>, TimedOut> {
        let inner = &*self.inner;
        let res = inner
            .queue()
            .wait_event_timeout(crate::time::clock(), timeout, || inner.rx_ready())
            .await
            .map(drop);
        self.after_wait(res)
    }

    fn after_wait<E>(&mut self, res: Result<(), E>) -> Result<Result<T, RecvError>, E> {
        if self.done {
            return Ok(Err(RecvError(())));
        }
        match self.inner.try_take() {
            // A true condition wins over a signal or a deadline.
            Some(got) => {
                self.finish();
                Ok(got)
            }
            None => match res {
                Err(err) => Err(err),
                // The queue is never closed: `Ok` means something is there.
                Ok(()) => Ok(Err(RecvError(()))),
            },
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.finish_wait();
    }

    /// Takes the receiver's waker back out of `state`, if a poll left it.
    fn finish_wait(&mut self) {
        if std::mem::take(&mut self.slept) {
            self.inner.state.finish_wait();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Err(RecvError(())));
        }
        ready!(coop::poll_proceed(cx));
        // Lock-free first: the flags say whether anything is there.
        if let Some(res) = this.inner.try_take() {
            this.finish();
            return Poll::Ready(res);
        }
        // The wait spends its own unit.
        coop::refund();
        let poll = this.inner.state.poll_wait_event_locked(cx, State::take);
        this.slept = poll.is_pending();
        // The wait is never closed.
        let res = ready!(poll).unwrap_or(Err(RecvError(())));
        this.finish();
        Poll::Ready(res)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.finish_wait();
        if !self.done {
            self.inner.close_rx();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("done", &self.done)
            .finish()
    }
}
