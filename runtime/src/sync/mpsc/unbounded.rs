//! The unbounded channel: [`UnboundedSender`], [`UnboundedReceiver`].

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use super::chan::Chan;
use super::error::{SendError, TryRecvError, TrySendError};
use super::rx::{Recv, Rx};

/// Creates an unbounded channel: sends never wait (the buffer grows as
/// needed, and keeps its size for later messages).
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let (tx, mut rx) = waitrt::sync::mpsc::unbounded_channel();
///     tx.send(1).unwrap(); // not async
///     drop(tx);
///     assert_eq!(rx.recv().await, Some(1));
///     assert_eq!(rx.recv().await, None);
/// });
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let chan = Chan::new(usize::MAX);
    (
        UnboundedSender { chan: chan.clone() },
        UnboundedReceiver { rx: Rx::new(chan) },
    )
}

/// Sends values to an [`UnboundedReceiver`]; cloning adds a sender.
pub struct UnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

/// A sender that does not keep the channel open; see
/// [`UnboundedSender::downgrade`].
pub struct WeakUnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

/// Receives the values of an unbounded channel; also a
/// [`Stream`](futures_core::Stream) of them.
pub struct UnboundedReceiver<T> {
    rx: Rx<T>,
}

// ===== impl UnboundedSender =====

impl<T> UnboundedSender<T> {
    /// Sends `value` without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone (dropped or
    /// closed).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::unbounded_channel();
    /// tx.send("a").unwrap();
    /// assert_eq!(rx.try_recv(), Ok("a"));
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.try_send(value).map_err(|err| match err {
            TrySendError::Full(v) | TrySendError::Closed(v) => SendError(v),
        })
    }

    /// Completes once the receiver is gone (dropped or closed).
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
    ///     let (tx, rx) = waitrt::sync::mpsc::unbounded_channel::<u8>();
    ///     drop(rx);
    ///     tx.closed().await;
    /// });
    /// ```
    #[track_caller]
    pub fn closed(&self) -> impl Future<Output = ()> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            self.chan.closed(site).await;
        }
    }

    /// Whether the receiver is gone (dropped or closed).
    pub fn is_closed(&self) -> bool {
        self.chan.is_rx_closed()
    }

    /// Whether both senders send to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        Chan::same(&self.chan, &other.chan)
    }

    /// A [`WeakUnboundedSender`], which does not keep the channel open.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::unbounded_channel::<u8>();
    /// let weak = tx.downgrade();
    /// drop(tx);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakUnboundedSender<T> {
        WeakUnboundedSender {
            chan: self.chan.add_weak(),
        }
    }

    /// Live senders of this channel (weak ones not counted).
    pub fn strong_count(&self) -> usize {
        self.chan.strong_count()
    }

    /// Live weak senders of this channel. As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = waitrt::sync::mpsc::unbounded_channel::<u8>();
    /// let weak = tx.downgrade();
    /// let other = weak.clone();
    /// assert_eq!((tx.weak_count(), weak.strong_count()), (2, 1));
    /// drop((weak, other));
    /// assert_eq!(tx.weak_count(), 0);
    /// ```
    pub fn weak_count(&self) -> usize {
        self.chan.weak_count()
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        UnboundedSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender")
            .field("chan", &self.chan)
            .finish()
    }
}

// ===== impl WeakUnboundedSender =====

impl<T> WeakUnboundedSender<T> {
    /// A sender again, unless every sender is gone.
    pub fn upgrade(&self) -> Option<UnboundedSender<T>> {
        self.chan.upgrade_sender().then(|| UnboundedSender {
            chan: self.chan.clone(),
        })
    }

    /// Live senders of the channel (weak ones not counted).
    pub fn strong_count(&self) -> usize {
        self.chan.strong_count()
    }

    /// Live weak senders of the channel, this one included.
    pub fn weak_count(&self) -> usize {
        self.chan.weak_count()
    }
}

impl<T> Clone for WeakUnboundedSender<T> {
    fn clone(&self) -> Self {
        WeakUnboundedSender {
            chan: self.chan.add_weak(),
        }
    }
}

impl<T> Drop for WeakUnboundedSender<T> {
    fn drop(&mut self) {
        self.chan.drop_weak();
    }
}

impl<T> fmt::Debug for WeakUnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakUnboundedSender")
            .finish_non_exhaustive()
    }
}

// ===== impl UnboundedReceiver =====

/// Each method is [`Receiver`](super::Receiver)'s of the same name (the
/// docs there say what it does, what a dropped future loses and what it
/// panics on).
impl<T> UnboundedReceiver<T> {
    /// See [`Receiver::recv`](super::Receiver::recv).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    #[track_caller]
    pub fn recv(&mut self) -> Recv<'_, T> {
        self.rx.recv()
    }

    /// See [`Receiver::recv_many`](super::Receiver::recv_many).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    #[track_caller]
    pub fn recv_many<'a>(
        &'a mut self,
        buffer: &'a mut Vec<T>,
        limit: usize,
    ) -> impl Future<Output = usize> + 'a {
        self.rx.recv_many(buffer, limit, Location::caller())
    }

    /// See [`Receiver::recv_interruptible`](super::Receiver::recv_interruptible).
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if a signal came while the channel was empty.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    #[track_caller]
    pub fn recv_interruptible(
        &mut self,
    ) -> impl Future<Output = Result<Option<T>, Interrupted>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_interruptible(site).await }
    }

    /// See [`Receiver::recv_killable`](super::Receiver::recv_killable).
    ///
    /// # Errors
    ///
    /// [`Killed`] if a fatal signal came while the channel was empty.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    #[track_caller]
    pub fn recv_killable(&mut self) -> impl Future<Output = Result<Option<T>, Killed>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_killable(site).await }
    }

    /// See [`Receiver::recv_timeout`](super::Receiver::recv_timeout).
    ///
    /// # Errors
    ///
    /// [`TimedOut`] if nothing arrived in time.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on one built without timers.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no message.
    #[track_caller]
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<T>, TimedOut>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.rx.recv_timeout(timeout, site).await }
    }

    /// See [`Receiver::blocking_recv`](super::Receiver::blocking_recv).
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks.
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Option<T> {
        self.rx.blocking_recv()
    }

    /// See [`Receiver::blocking_recv_many`](super::Receiver::blocking_recv_many).
    ///
    /// # Panics
    ///
    /// On a thread that drives a runtime's tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = waitrt::sync::mpsc::unbounded_channel();
    /// for i in 0..3 {
    ///     tx.send(i).unwrap();
    /// }
    /// let mut got = Vec::new();
    /// assert_eq!(rx.blocking_recv_many(&mut got, 8), 3);
    /// drop(tx);
    /// assert_eq!(rx.blocking_recv_many(&mut got, 8), 0); // ended
    /// assert_eq!(got, [0, 1, 2]);
    /// ```
    #[track_caller]
    pub fn blocking_recv_many(&mut self, buffer: &mut Vec<T>, limit: usize) -> usize {
        self.rx.blocking_recv_many(buffer, limit)
    }

    /// See [`Receiver::try_recv`](super::Receiver::try_recv).
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Disconnected`].
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// See [`Receiver::close`](super::Receiver::close).
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// See [`Receiver::is_closed`](super::Receiver::is_closed).
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }

    /// Buffered messages.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live senders of this channel (weak ones not counted). As tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = waitrt::sync::mpsc::unbounded_channel::<u8>();
    /// let weak = tx.downgrade();
    /// drop(tx);
    /// assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (0, 1));
    /// drop(weak);
    /// assert_eq!(rx.sender_weak_count(), 0);
    /// ```
    pub fn sender_strong_count(&self) -> usize {
        self.rx.sender_strong_count()
    }

    /// Live weak senders of this channel. As tokio's.
    ///
    /// # Examples
    ///
    /// See [`sender_strong_count`](Self::sender_strong_count).
    pub fn sender_weak_count(&self) -> usize {
        self.rx.sender_weak_count()
    }

    /// See [`Receiver::poll_recv`](super::Receiver::poll_recv).
    #[track_caller]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }

    /// See [`Receiver::poll_recv_many`](super::Receiver::poll_recv_many).
    #[track_caller]
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &mut Vec<T>,
        limit: usize,
    ) -> Poll<usize> {
        self.rx
            .poll_recv_many(cx, buffer, limit, Location::caller())
    }
}

impl<T> futures_core::Stream for UnboundedReceiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("chan", &self.rx)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    /// After a burst, the rings give their room back once the backlog has
    /// stayed small for a while (they kept two rings of the burst's size
    /// for good), and a steady load allocates nothing after warm-up.
    #[test]
    fn the_rings_give_back_a_bursts_room() {
        let (tx, mut rx) = super::unbounded_channel::<u64>();
        for i in 0..1_000_000 {
            tx.send(i).unwrap();
        }
        for i in 0..1_000_000 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        let after_burst = rx.rx.room();
        assert!(after_burst >= 1_000_000, "{after_burst}");
        // Small exchanges: the peak decays by 1/16 per take (a few hundred
        // takes from a million to a handful).
        for i in 0..2_000u64 {
            tx.send(i).unwrap();
            tx.send(i).unwrap();
            assert_eq!(rx.try_recv(), Ok(i));
            assert_eq!(rx.try_recv(), Ok(i));
        }
        let settled = rx.rx.room();
        assert!(
            settled < 10_000,
            "the rings keep {settled} slots after the burst ({after_burst} at its end)"
        );
        // A steady backlog of 500: the room settles and stays.
        let mut rooms = Vec::new();
        for round in 0..200u64 {
            for i in 0..500 {
                tx.send(round * 500 + i).unwrap();
            }
            for i in 0..500 {
                assert_eq!(rx.try_recv(), Ok(round * 500 + i));
            }
            rooms.push(rx.rx.room());
        }
        let late = &rooms[100..];
        assert!(
            late.iter().all(|&room| room == late[0]),
            "the room changes under a steady load (reallocations): {late:?}"
        );
    }
}
