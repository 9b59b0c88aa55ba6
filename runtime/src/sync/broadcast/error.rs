//! The errors of [`broadcast`](super), tokio's. The kernel forms of `recv`
//! ([`recv_interruptible`](super::Receiver::recv_interruptible) and the
//! others) return `recv`'s own result inside the wait's error:
//! `Result<Result<T, RecvError>, Interrupted>`.

use std::fmt;

/// [`Sender::send`](super::Sender::send) found no receiver: the value
/// comes back.
///
/// # Examples
///
/// ```
/// use waitrt::sync::broadcast;
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
/// use waitrt::sync::broadcast::{self, error::RecvError};
/// let (tx, mut rx) = broadcast::channel::<u8>(4);
/// drop(tx);
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
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
/// use waitrt::sync::broadcast::{self, error::TryRecvError};
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
