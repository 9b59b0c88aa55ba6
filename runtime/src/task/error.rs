//! [`JoinError`]: why a task has no output.

use std::any::Any;
use std::fmt;

use super::Id;

enum Repr {
    Cancelled {
        shutdown: bool,
    },
    /// Boxed again, so that the payload is one word (a `dyn` box is two):
    /// a task's output slot holds a `Result<T, JoinError>`, and one word
    /// less keeps a trivial task in a smaller allocation (see
    /// `task/raw.rs`). Panics are rare; the second box is made only then.
    Panicked(Box<Box<dyn Any + Send + 'static>>),
    /// A blocking job that never ran: no pool thread could be started.
    SpawnFailed(std::io::Error),
    /// The runtime shut down while the task was still running (a blocking
    /// job's closure, or a poll that never returned): its thread goes on.
    Abandoned,
}

/// A task ended without producing its output: it was cancelled (aborted,
/// or dropped by a runtime shutdown), it panicked, or (a
/// [`spawn_blocking`](crate::spawn_blocking) job) it never ran because the
/// OS refused to start a thread for it.
///
/// # Examples
///
/// ```
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// let err = rt.block_on(async {
///     waitrt::spawn(async { panic!("boom") }).await.unwrap_err()
/// });
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct JoinError {
    id: Id,
    repr: Repr,
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled { shutdown: false },
        }
    }

    pub(crate) fn shutdown(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled { shutdown: true },
        }
    }

    pub(crate) fn abandoned(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Abandoned,
        }
    }

    pub(crate) fn spawn_failed(id: Id, err: std::io::Error) -> JoinError {
        JoinError {
            id,
            repr: Repr::SpawnFailed(err),
        }
    }

    pub(crate) fn panicked(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panicked(Box::new(payload)),
        }
    }

    /// The task was cancelled: aborted, or dropped because its runtime shut
    /// down (see [`is_shutdown`](Self::is_shutdown)).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled { .. })
    }

    /// The runtime shut down: the task was cancelled by it, spawned after
    /// it began, or [abandoned](Self::is_abandoned) by it.
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self.repr,
            Repr::Cancelled { shutdown: true } | Repr::Abandoned
        )
    }

    /// The runtime shut down while the task was still running, and stopped
    /// waiting for it: a [`spawn_blocking`](crate::spawn_blocking) job
    /// whose closure was still running when `shutdown_timeout` ran out, or
    /// a task whose poll never returned. It was not cancelled: the closure
    /// (or the poll) goes on in its thread, and its output is dropped when
    /// it ends.
    pub fn is_abandoned(&self) -> bool {
        matches!(self.repr, Repr::Abandoned)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// A [`spawn_blocking`](crate::spawn_blocking) job never ran: the
    /// blocking pool had no thread and the OS refused to start one (a
    /// container's pid limit, `RLIMIT_NPROC`, address space). The OS error
    /// is [`spawn_error`](Self::spawn_error) (and the error's `source`).
    pub fn is_spawn_failed(&self) -> bool {
        matches!(self.repr, Repr::SpawnFailed(_))
    }

    /// The OS error that kept a blocking job from running (see
    /// [`is_spawn_failed`](Self::is_spawn_failed)).
    pub fn spawn_error(&self) -> Option<&std::io::Error> {
        match &self.repr {
            Repr::SpawnFailed(err) => Some(err),
            _ => None,
        }
    }

    /// The id of the task.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic payload. Panics if the task did not panic (it was
    /// cancelled, abandoned at shutdown, or never started); see
    /// [`try_into_panic`](Self::try_into_panic).
    ///
    /// Unlike tokio's, a `JoinError` can be neither
    /// [`is_cancelled`](Self::is_cancelled) nor [`is_panic`](Self::is_panic)
    /// ([`is_abandoned`](Self::is_abandoned), [`is_spawn_failed`](Self::is_spawn_failed)):
    /// test `is_panic()` before calling this, not `!is_cancelled()`.
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(err) => panic!(
                "`JoinError::into_panic` called on a task that did not panic ({err}): \
                 check `is_panic()` first"
            ),
        }
    }

    /// The panic payload, or the error back if the task was cancelled.
    ///
    /// # Errors
    ///
    /// `self` when the task was cancelled rather than panicked.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panicked(payload) => Ok(*payload),
            _ => Err(self),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled { shutdown: false } => write!(f, "task {} was cancelled", self.id),
            Repr::Cancelled { shutdown: true } => {
                write!(f, "task {} was cancelled: the runtime shut down", self.id)
            }
            Repr::Panicked(payload) => match panic_message(payload.as_ref().as_ref()) {
                Some(msg) => write!(f, "task {} panicked with message {msg:?}", self.id),
                None => write!(f, "task {} panicked", self.id),
            },
            Repr::Abandoned => write!(
                f,
                "task {} was abandoned: the runtime shut down while it was still \
                 running, and it goes on in its thread",
                self.id
            ),
            Repr::SpawnFailed(err) => write!(
                f,
                "blocking job {} never ran: the OS refused to start a blocking-pool \
                 thread: {err}",
                self.id
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled { shutdown } => f
                .debug_struct("JoinError::Cancelled")
                .field("id", &self.id)
                .field("shutdown", shutdown)
                .finish(),
            Repr::Panicked(payload) => f
                .debug_struct("JoinError::Panicked")
                .field("id", &self.id)
                .field("message", &panic_message(payload.as_ref().as_ref()))
                .finish(),
            Repr::Abandoned => f
                .debug_struct("JoinError::Abandoned")
                .field("id", &self.id)
                .finish(),
            Repr::SpawnFailed(err) => f
                .debug_struct("JoinError::SpawnFailed")
                .field("id", &self.id)
                .field("error", err)
                .finish(),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::SpawnFailed(err) => Some(err),
            _ => None,
        }
    }
}

/// The kind says whether trying again can help, as callers read it:
/// never `WouldBlock` or `Interrupted` for what will not change (a
/// runtime that shut down, a pool that could not start a thread: the OS
/// says `EAGAIN`), which a loop written the `std` way retries at once,
/// forever (`fs::read` returned `WouldBlock` when no pool thread could
/// start, and `Interrupted` once the runtime had shut down).
impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> Self {
        use std::io::ErrorKind;
        let kind = match &err.repr {
            Repr::Cancelled { shutdown: false } => ErrorKind::Interrupted,
            Repr::SpawnFailed(os) => match os.kind() {
                ErrorKind::WouldBlock | ErrorKind::Interrupted => ErrorKind::Other,
                kind => kind,
            },
            Repr::Cancelled { shutdown: true } | Repr::Panicked(_) | Repr::Abandoned => {
                ErrorKind::Other
            }
        };
        std::io::Error::new(kind, err.to_string())
    }
}
