//! The errors of [`broadcast`](super): tokio's, plus [`RecvWaitError`]
//! for the kernel forms of `recv`.

use std::fmt;

/// [`Sender::send`](super::Sender::send) found no receiver: the value
/// comes back.
///
/// # Examples
///
/// ```
/// use runtime::sync::broadcast;
/// let (tx, rx) = broadcast::channel(4);
/// drop(rx);
/// assert_eq!(tx.send(7).unwrap_err().0, 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Receiver::recv`](super::Receiver::recv) returned no message.
///
/// # Examples
///
/// ```
/// use runtime::sync::broadcast::{self, error::RecvError};
/// let (tx, mut rx) = broadcast::channel::<u8>(4);
/// drop(tx);
/// let rt = runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(rt.block_on(rx.recv()), Err(RecvError::Closed));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// Every sender is gone and this receiver has seen every message.
    Closed,
    /// The receiver fell behind by more than the capacity: it missed this
    /// many messages, and its next `recv` returns the oldest one the
    /// channel still holds.
    Lagged(u64),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("channel closed"),
            RecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
        }
    }
}

impl std::error::Error for RecvError {}

/// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no message.
///
/// # Examples
///
/// ```
/// use runtime::sync::broadcast::{self, error::TryRecvError};
/// let (tx, mut rx) = broadcast::channel::<u8>(4);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing new yet (senders remain).
    Empty,
    /// Every sender is gone and this receiver has seen every message.
    Closed,
    /// The receiver missed this many messages (see [`RecvError::Lagged`]).
    Lagged(u64),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("channel empty"),
            TryRecvError::Closed => f.write_str("channel closed"),
            TryRecvError::Lagged(n) => write!(f, "channel lagged by {n}"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why a kernel form of `recv` returned no message:
/// [`recv_interruptible`](super::Receiver::recv_interruptible)
/// (`E` = [`Interrupted`](crate::sync::Interrupted)),
/// [`recv_killable`](super::Receiver::recv_killable)
/// ([`Killed`](crate::sync::Killed)) or
/// [`recv_timeout`](super::Receiver::recv_timeout)
/// ([`TimedOut`](crate::sync::TimedOut)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::broadcast::{self, error::RecvWaitError};
///
/// let rt = runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let (_tx, mut rx) = broadcast::channel::<u8>(4);
///     let err = rx.recv_timeout(Duration::from_secs(1)).await.unwrap_err();
///     assert!(matches!(err, RecvWaitError::Wait(_))); // nothing came within a second
/// });
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvWaitError<E> {
    /// As [`RecvError::Closed`].
    Closed,
    /// As [`RecvError::Lagged`].
    Lagged(u64),
    /// The wait itself ended first: a signal, a fatal signal, or the
    /// deadline, with no message received.
    Wait(E),
}

impl<E> From<RecvError> for RecvWaitError<E> {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Closed => RecvWaitError::Closed,
            RecvError::Lagged(n) => RecvWaitError::Lagged(n),
        }
    }
}

impl<E: fmt::Display> fmt::Display for RecvWaitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvWaitError::Closed => f.write_str("channel closed"),
            RecvWaitError::Lagged(n) => write!(f, "channel lagged by {n}"),
            RecvWaitError::Wait(err) => err.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RecvWaitError<E> {}
