//! The errors of [`mpsc`](super): each failed send gives its value back.

use std::fmt;

/// The receiver is gone (dropped or [`close`](super::Receiver::close)d):
/// the value comes back.
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::mpsc::unbounded_channel();
/// drop(rx);
/// assert_eq!(tx.send(7).unwrap_err().0, 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`try_send`](super::Sender::try_send) failed, with the value.
///
/// # Examples
///
/// ```
/// use waitrt::sync::mpsc::{self, error::TrySendError};
/// let (tx, _rx) = mpsc::channel(1);
/// tx.try_send(1).unwrap();
/// assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// Every slot is taken (buffered messages and reserved permits).
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why a `_timeout` send failed, with the value.
///
/// # Examples
///
/// ```
/// use waitrt::sync::mpsc::{self, error::SendTimeoutError};
/// use std::time::Duration;
/// let rt = waitrt::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     let (tx, _rx) = mpsc::channel(1);
///     tx.send(1).await.unwrap();
///     let err = tx.send_timeout(2, Duration::from_millis(1)).await.unwrap_err();
///     assert!(matches!(err, SendTimeoutError::Timeout(2)));
/// });
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The time ran out with the channel still full.
    Timeout(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why an `_interruptible` or `_killable` send failed, with the value.
///
/// # Examples
///
/// ```
/// use waitrt::sync::mpsc::{self, error::SendInterruptError};
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let (tx, rx) = mpsc::channel(1);
///     drop(rx);
///     let err = tx.send_interruptible(5).await.unwrap_err();
///     assert!(matches!(err, SendInterruptError::Closed(5)));
///     assert_eq!(err.into_inner(), 5);
/// });
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendInterruptError<T> {
    /// The task was interrupted (a non-fatal signal) while the channel was full.
    Interrupted(T),
    /// The task was killed (a fatal signal) while the channel was full.
    Killed(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`try_recv`](super::Receiver::try_recv) found nothing.
///
/// # Examples
///
/// ```
/// use waitrt::sync::mpsc::{self, error::TryRecvError};
/// let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing buffered now; a sender may still send.
    Empty,
    /// Nothing buffered and nothing ever will be: every sender is gone (or
    /// the receiver closed and no permit is outstanding).
    Disconnected,
}

// ===== impl SendError =====

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

// ===== impl TrySendError =====

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "no available capacity",
            TrySendError::Closed(_) => "channel closed",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        TrySendError::Closed(err.0)
    }
}

// ===== impl SendTimeoutError =====

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "Timeout(..)",
            SendTimeoutError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "timed out waiting on send operation",
            SendTimeoutError::Closed(_) => "channel closed",
        })
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

// ===== impl SendInterruptError =====

impl<T> SendInterruptError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendInterruptError::Interrupted(v)
            | SendInterruptError::Killed(v)
            | SendInterruptError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendInterruptError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendInterruptError::Interrupted(_) => "Interrupted(..)",
            SendInterruptError::Killed(_) => "Killed(..)",
            SendInterruptError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for SendInterruptError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendInterruptError::Interrupted(_) => "send interrupted by a signal",
            SendInterruptError::Killed(_) => "send ended by a fatal signal",
            SendInterruptError::Closed(_) => "channel closed",
        })
    }
}

impl<T> std::error::Error for SendInterruptError<T> {}

// ===== impl TryRecvError =====

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl std::error::Error for TryRecvError {}
