//! [`Receiver`]: reading, waiting in every form, subscribing, dropping.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll};
use std::time::Duration;

use waitq::{coop, Interrupted, Killed, TimedOut, WaitEventValue, WaitQueue};

use super::error::{RecvError, TryRecvError};
use super::{lock, Receiver};
use crate::sync::signals;

/// [`Receiver::recv`]'s future: its first poll tests the channel itself,
/// without a wait future's machinery (most receives find a message; going
/// through the wait's poll cost about 115 instructions more per receive in
/// `benches/sync.rs`' `broadcast_1to16`), and only then becomes the wait.
/// Hand-written rather than an `async` block, which kept the receiver, the
/// site and the wait side by side: 120 bytes for a `u64` channel, this is
/// 64, tokio's size (`tests/sync_sizes.rs`), for about 2 % more
/// instructions on that row (callgrind, current-thread). Like any future,
/// it is not to be polled after it completed (it may then receive the next
/// message, or panic).
enum Recv<'a, F> {
    /// Not polled yet (or only turned back by the budget).
    First {
        /// The wait's condition: the next message, a lag or the end.
        cond: F,
        queue: &'a WaitQueue,
        site: &'static Location<'static>,
    },
    /// Nothing was there: waiting.
    Waiting(WaitEventValue<'a, F>),
    Done,
}

impl<T, F: FnMut() -> Option<Result<T, RecvError>>> Future for Recv<'_, F> {
    type Output = Result<T, RecvError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Recv::First { cond, .. } = this {
            if coop::poll_proceed(cx).is_pending() {
                return Poll::Pending;
            }
            // The same first test the wait makes (no entry linked, so no
            // decision point either), and the same budget unit.
            if let Some(res) = cond() {
                return Poll::Ready(res);
            }
            // No progress: the wait spends its own unit.
            coop::refund();
        }
        this.poll_wait(cx)
    }
}

impl<T, F: FnMut() -> Option<Result<T, RecvError>>> Recv<'_, F> {
    /// The wait, made on the first poll that found nothing (kept out of
    /// line: the first test above is what most receives run).
    #[inline(never)]
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if let Recv::First { .. } = self {
            let Recv::First { cond, queue, site } = std::mem::replace(self, Recv::Done) else {
                unreachable!()
            };
            *self = Recv::Waiting(queue.wait_event_value(cond).at(site));
        }
        match self {
            // The channel never closes its queue: the wait ends on its
            // condition.
            Recv::Waiting(wait) => Pin::new(wait)
                .poll(cx)
                .map(|res| res.unwrap_or(Err(RecvError::Closed))),
            _ => panic!("`recv` polled after it completed"),
        }
    }
}

// The condition is never pinned (as in `WaitEventValue`): it moves freely.
impl<F> Unpin for Recv<'_, F> {}

// ===== impl Receiver =====

impl<T: Clone> Receiver<T> {
    /// Receives the next message, sleeping until one is sent.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged(n)`](RecvError::Lagged) when this receiver
    /// missed `n` messages (the next call returns the oldest message still
    /// held); [`RecvError::Closed`] when every sender is gone and every
    /// message has been received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is taken only by the poll that returns it,
    /// so a dropped `recv` (in a `select!`, a timeout) loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::broadcast::{self, error::RecvError};
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = broadcast::channel(2);
    ///     for i in 0..5 {
    ///         tx.send(i).unwrap();
    ///     }
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, Err(RecvError::Lagged(3))); // 0, 1, 2 are gone
    ///     assert_eq!(rx.recv().await, Ok(3));
    ///     assert_eq!(rx.recv().await, Ok(4));
    ///     assert_eq!(rx.recv().await, Err(RecvError::Closed));
    /// });
    /// ```
    #[track_caller]
    pub fn recv(&mut self) -> impl Future<Output = Result<T, RecvError>> + '_ {
        let Receiver { shared, next } = self;
        let shared = &**shared;
        Recv::First {
            cond: move || shared.poll_recv(next),
            queue: &shared.queue,
            // The wait is listed at our caller's site.
            site: Location::caller(),
        }
    }

    /// [`recv`](Self::recv) that the task's signals also end (kernel:
    /// `wait_event_interruptible()`); the signals are the calling task's,
    /// taken at the call. The outer result is the wait's, the inner one is
    /// what [`recv`](Self::recv) returns, so `recv_interruptible().await?`
    /// gives `recv`'s result.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] on an interrupt or a kill with no message there (a
    /// message there wins over a pending signal). Otherwise `Ok` of
    /// [`recv`](Self::recv)'s result: [`RecvError::Lagged`] and
    /// [`RecvError::Closed`] come as the inner `Err`.
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::broadcast::{self, error::RecvError};
    /// use waitrt::sync::Interrupted;
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = broadcast::channel::<u8>(4);
    ///     let task = waitrt::spawn(async move {
    ///         let res = rx.recv_interruptible().await;
    ///         (res, rx)
    ///     });
    ///     waitrt::task::yield_now().await;
    ///     task.interrupt();
    ///     let (res, mut rx) = task.await.unwrap();
    ///     assert!(matches!(res, Err(Interrupted { .. })));
    ///     drop(tx);
    ///     assert_eq!(rx.recv_interruptible().await, Ok(Err(RecvError::Closed)));
    /// });
    /// ```
    #[track_caller]
    pub fn recv_interruptible(
        &mut self,
    ) -> impl Future<Output = Result<Result<T, RecvError>, Interrupted>> + Send + '_
    where
        T: Send,
    {
        let signals = signals::current();
        let site = Location::caller();
        async move {
            let Receiver { shared, next } = self;
            let shared = &**shared;
            let mut out = None;
            let waited = shared
                .queue
                .wait_event_interruptible(signals, || {
                    out = shared.poll_recv(next);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`recv`](Self::recv) that only a fatal signal also ends (kernel:
    /// `wait_event_killable()`); the signals are the calling task's, taken
    /// at the call. The outer result is the wait's, the inner one is what
    /// [`recv`](Self::recv) returns.
    ///
    /// # Errors
    ///
    /// [`Killed`] on a kill with no message there (a message there wins
    /// over a pending kill). Otherwise `Ok` of [`recv`](Self::recv)'s
    /// result: [`RecvError::Lagged`] and [`RecvError::Closed`] come as the
    /// inner `Err`.
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::broadcast;
    /// use waitrt::sync::Killed;
    ///
    /// let rt = waitrt::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = broadcast::channel::<u8>(4);
    ///     let task = waitrt::spawn(async move { rx.recv_killable().await });
    ///     waitrt::task::yield_now().await;
    ///     task.kill();
    ///     assert!(matches!(task.await.unwrap(), Err(Killed { .. })));
    ///     drop(tx);
    /// });
    /// ```
    #[track_caller]
    pub fn recv_killable(
        &mut self,
    ) -> impl Future<Output = Result<Result<T, RecvError>, Killed>> + Send + '_
    where
        T: Send,
    {
        let signals = signals::current();
        let site = Location::caller();
        async move {
            let Receiver { shared, next } = self;
            let shared = &**shared;
            let mut out = None;
            let waited = shared
                .queue
                .wait_event_killable(signals, || {
                    out = shared.poll_recv(next);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`recv`](Self::recv) for at most `timeout` on the runtime's clock
    /// (kernel: `wait_event_timeout()`). The outer result is the wait's,
    /// the inner one is what [`recv`](Self::recv) returns.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when `timeout` passed with no message (a message there
    /// at the deadline wins). Otherwise `Ok` of [`recv`](Self::recv)'s
    /// result: [`RecvError::Lagged`] and [`RecvError::Closed`] come as the
    /// inner `Err`.
    ///
    /// # Panics
    ///
    /// Outside a runtime with timers enabled.
    ///
    /// # Cancel safety
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
    /// rt.block_on(async {
    ///     let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
    ///     tx.send(1).unwrap();
    ///     assert_eq!(rx.recv_timeout(Duration::from_secs(1)).await, Ok(Ok(1)));
    ///     assert!(rx.recv_timeout(Duration::from_millis(1)).await.is_err()); // nothing more came
    /// });
    /// ```
    #[track_caller]
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Result<T, RecvError>, TimedOut>> + Send + '_
    where
        T: Send,
    {
        let clock = crate::time::clock();
        let site = Location::caller();
        async move {
            let Receiver { shared, next } = self;
            let shared = &**shared;
            let mut out = None;
            let waited = shared
                .queue
                .wait_event_timeout(clock, timeout, || {
                    out = shared.poll_recv(next);
                    out.is_some()
                })
                .at(site)
                .await;
            finish(out, waited)
        }
    }

    /// [`recv`](Self::recv) from a plain thread: blocks it until a message
    /// comes (kernel: `wait_event()` in a kernel thread).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks (it would stall them).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
    /// let reader = std::thread::spawn(move || rx.blocking_recv());
    /// tx.send(5).unwrap();
    /// assert_eq!(reader.join().unwrap(), Ok(5));
    /// ```
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Result<T, RecvError> {
        assert!(
            !crate::context::is_driving(),
            "`blocking_recv` called on a thread that drives tasks: use `recv().await`"
        );
        let Receiver { shared, next } = self;
        let shared = &**shared;
        let mut out = None;
        let _ = shared.queue.blocking_wait_event(|| {
            out = shared.poll_recv(next);
            out.is_some()
        });
        out.unwrap_or(Err(RecvError::Closed))
    }

    /// Receives the next message if there is one, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing new was sent, otherwise as
    /// [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use waitrt::sync::broadcast::{self, error::TryRecvError};
    /// let (tx, mut rx) = broadcast::channel(4);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.shared.try_recv(&mut self.next)
    }
}

impl<T> Receiver<T> {
    /// A new receiver on the same channel, starting at the tail: it sees
    /// what is sent from now on, not what this one has still to read.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::broadcast::channel(4);
    /// tx.send(1).unwrap();
    /// let mut rx2 = rx.resubscribe();
    /// assert!(rx2.try_recv().is_err());
    /// ```
    pub fn resubscribe(&self) -> Self {
        self.shared.clone().new_receiver()
    }

    /// How many messages this receiver has still to read (the count since
    /// its position, lagged ones included).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::broadcast::channel(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// rx.try_recv().unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.written.load(SeqCst).saturating_sub(self.next) as usize
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every sender is gone (messages may remain to be read).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// assert!(!rx.is_closed());
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(SeqCst)
    }

    /// Whether `other` reads the same channel.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// assert!(rx.same_channel(&rx.resubscribe()));
    /// ```
    pub fn same_channel(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// How many [`Sender`](super::Sender)s of this channel exist. As
    /// tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::broadcast::channel::<u8>(4);
    /// let _weak = tx.downgrade();
    /// let _tx2 = tx.clone();
    /// assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (2, 1));
    /// ```
    pub fn sender_strong_count(&self) -> usize {
        self.shared.senders.load(SeqCst)
    }

    /// How many [`WeakSender`](super::WeakSender)s of this channel exist.
    /// As tokio's.
    ///
    /// # Examples
    ///
    /// See [`sender_strong_count`](Self::sender_strong_count).
    pub fn sender_weak_count(&self) -> usize {
        self.shared.weak_senders.load(SeqCst)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let shared = &*self.shared;
        let mut tail = lock(&shared.tail);
        tail.rx_cnt -= 1;
        let end = tail.pos;
        let last = tail.rx_cnt == 0;
        drop(tail);
        // Every message below `end` still held counted us; later ones will
        // not. A slot overwritten meanwhile counts only the receivers left.
        let start = self
            .next
            .max(end.saturating_sub(shared.buffer.len() as u64));
        for pos in start..end {
            let mut slot = lock(&shared.buffer[shared.index(pos)]);
            if slot.pos != pos {
                continue;
            }
            slot.rem -= 1;
            let unread = if slot.rem == 0 { slot.val.take() } else { None };
            drop(slot);
            drop(unread); // no lock held
        }
        if last {
            shared.rx_gone.wake_up_all();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("broadcast::Receiver")
    }
}

/// What a kernel-form wait leaves: `Ok` of the condition's last result, or
/// why the wait ended without one (a true condition always wins, so `out`
/// is `None` exactly when the wait failed).
fn finish<T, L, E>(
    out: Option<Result<T, RecvError>>,
    waited: Result<L, E>,
) -> Result<Result<T, RecvError>, E> {
    match (out, waited) {
        (Some(res), _) => Ok(res),
        (None, Err(err)) => Err(err),
        (None, Ok(_)) => unreachable!("a wait succeeded with its condition false"),
    }
}
