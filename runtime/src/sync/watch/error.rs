//! The errors of [`watch`](super): tokio's, plus [`RecvWaitError`] for the
//! kernel forms of `changed`.

use std::fmt;

/// [`Sender::send`](super::Sender::send) found no receiver: the value
/// comes back (and was not stored).
///
/// # Examples
///
/// ```
/// let (tx, rx) = runtime::sync::watch::channel(0);
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
/// let (tx, rx) = runtime::sync::watch::channel(0);
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

/// Why a kernel form of `changed` returned without a change:
/// [`changed_interruptible`](super::Receiver::changed_interruptible)
/// (`E` = [`Interrupted`](crate::sync::Interrupted)),
/// [`changed_killable`](super::Receiver::changed_killable)
/// ([`Killed`](crate::sync::Killed)) or
/// [`changed_timeout`](super::Receiver::changed_timeout)
/// ([`TimedOut`](crate::sync::TimedOut)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use runtime::sync::watch::{self, error::RecvWaitError};
///
/// let rt = runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let (_tx, mut rx) = watch::channel(0);
///     let err = rx.changed_timeout(Duration::from_secs(1)).await.unwrap_err();
///     assert!(matches!(err, RecvWaitError::Wait(_))); // no change within a second
/// });
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvWaitError<E> {
    /// As [`RecvError`]: every sender is gone, nothing new to see.
    Closed,
    /// The wait itself ended first: a signal, a fatal signal, or the
    /// deadline, with no change seen.
    Wait(E),
}

impl<E> From<RecvError> for RecvWaitError<E> {
    fn from(_: RecvError) -> Self {
        RecvWaitError::Closed
    }
}

impl<E: fmt::Display> fmt::Display for RecvWaitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvWaitError::Closed => f.write_str("channel closed"),
            RecvWaitError::Wait(err) => err.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RecvWaitError<E> {}
