//! The errors of [`watch`](super), tokio's. The kernel forms of `changed`
//! ([`changed_interruptible`](super::Receiver::changed_interruptible) and
//! the others) return `changed`'s own result inside the wait's error:
//! `Result<Result<(), RecvError>, Interrupted>`.

use std::fmt;

/// [`Sender::send`](super::Sender::send) found no receiver: the value
/// comes back (and was not stored).
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::watch::channel(0);
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

/// Every sender is gone and nothing new is left to see
/// ([`Receiver::changed`](super::Receiver::changed),
/// [`has_changed`](super::Receiver::has_changed),
/// [`wait_for`](super::Receiver::wait_for)).
///
/// # Examples
///
/// ```
/// let (tx, rx) = waitrt::sync::watch::channel(0);
/// drop(tx);
/// assert!(rx.has_changed().is_err());
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError(pub(super) ());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl std::error::Error for RecvError {}
