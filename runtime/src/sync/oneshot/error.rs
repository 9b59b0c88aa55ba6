//! The errors of [`oneshot`](super).

use std::fmt;

/// The sender was dropped without sending (or the receiver closed first).
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::oneshot::channel::<u8>();
/// drop(tx);
/// assert_eq!(rx.blocking_recv(), Err(waitrt::sync::oneshot::error::RecvError(())));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError(pub ());

/// Why [`try_recv`](super::Receiver::try_recv) got nothing.
///
/// # Examples
///
/// ```
/// use waitrt::sync::oneshot::{self, error::TryRecvError};
/// let (tx, mut rx) = oneshot::channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing sent yet; the sender may still send.
    Empty,
    /// Nothing will come: the sender is gone, the receiver closed, or the
    /// value was already taken.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "channel empty",
            TryRecvError::Closed => "channel closed",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Closed
    }
}
