//! Why a wait ended without its condition: small opaque error types.

use std::fmt;
use std::io;

use crate::SignalKind;

/// Why a wait ended early (private: each public error wraps one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Interrupted,
    Killed,
    TimedOut,
    Closed,
}

macro_rules! wait_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            reason: Reason,
        }

        impl $name {
            pub(crate) fn new(reason: Reason) -> Self {
                $name { reason }
            }

            /// Whether the wait ended because the queue was closed
            /// ([`WaitQueue::close`](crate::WaitQueue::close)).
            ///
            /// # Examples
            ///
            /// ```
            /// let queue = waitq::WaitQueue::new();
            /// queue.close();
            #[doc = concat!("let err: waitq::", stringify!($name), " = ")]
            ///     futures::executor::block_on(queue.wait_event(|| false)).unwrap_err().into();
            /// assert!(err.is_closed());
            /// ```
            pub fn is_closed(&self) -> bool {
                self.reason == Reason::Closed
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.reason).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.reason.message())
            }
        }

        impl std::error::Error for $name {}

        impl From<$name> for io::Error {
            fn from(err: $name) -> io::Error {
                io::Error::new(err.reason.io_kind(), err)
            }
        }
    };
}

impl Reason {
    fn message(self) -> &'static str {
        match self {
            Reason::Interrupted => "wait interrupted by a signal",
            Reason::Killed => "wait ended by a fatal signal",
            Reason::TimedOut => "wait timed out",
            Reason::Closed => "wait queue closed",
        }
    }

    fn io_kind(self) -> io::ErrorKind {
        match self {
            Reason::Interrupted | Reason::Killed => io::ErrorKind::Interrupted,
            Reason::TimedOut => io::ErrorKind::TimedOut,
            Reason::Closed => io::ErrorKind::BrokenPipe,
        }
    }
}

wait_error! {
    /// The queue was closed while (or before) waiting.
    ///
    /// Returned by the uninterruptible waits (`wait_event`, `_exclusive`,
    /// `_value`, `_key`, `_lock`, the blocking family). Converts to an
    /// [`io::Error`] of kind [`BrokenPipe`](io::ErrorKind::BrokenPipe).
    Closed
}

wait_error! {
    /// An interruptible wait ended by a signal with its condition false.
    ///
    /// Kernel: `-ERESTARTSYS` from `wait_event_interruptible()`. Also carries
    /// [`is_closed`](Self::is_closed) when the queue was closed instead.
    /// Converts to an [`io::Error`] of kind [`Interrupted`](io::ErrorKind::Interrupted).
    Interrupted
}

wait_error! {
    /// A killable wait ended by a fatal signal with its condition false.
    ///
    /// Kernel: `-ERESTARTSYS` from `wait_event_killable()`. Also carries
    /// [`is_closed`](Self::is_closed) when the queue was closed instead.
    Killed
}

wait_error! {
    /// A timed wait reached its deadline with its condition still false.
    ///
    /// Kernel: `wait_event_timeout()` returning 0. Also carries
    /// [`is_closed`](Self::is_closed) when the queue was closed instead.
    /// Converts to an [`io::Error`] of kind [`TimedOut`](io::ErrorKind::TimedOut).
    TimedOut
}

wait_error! {
    /// Why an interruptible or killable timed wait ended without its condition:
    /// see the predicates. Converts to an [`io::Error`] whose kind follows
    /// the cause (`Interrupted`, `TimedOut` or `BrokenPipe`).
    WaitError
}

/// Constructors, for primitives built on wait queues that decide a wait's
/// outcome themselves (a semaphore that hands permits over in a wake
/// function, a channel that ends its waiters on close): each gives the
/// same error a wait of this crate would return in that case.
///
/// ```
/// use waitq::{Closed, Interrupted, Killed, SignalKind, TimedOut};
/// assert!(Closed::queue_closed().is_closed());
/// assert!(Interrupted::by(SignalKind::Kill).is_fatal());
/// assert!(!Interrupted::by(SignalKind::Interrupt).is_fatal());
/// assert!(!Killed::by_kill().is_closed());
/// assert!(!TimedOut::deadline_passed().is_closed());
/// ```
impl Closed {
    /// The queue was closed.
    pub fn queue_closed() -> Closed {
        Closed::new(Reason::Closed)
    }
}

impl Interrupted {
    /// A signal of `kind` ended the wait (a kill is fatal).
    pub fn by(kind: SignalKind) -> Interrupted {
        Interrupted::new(match kind {
            SignalKind::Kill => Reason::Killed,
            _ => Reason::Interrupted,
        })
    }
}

impl Killed {
    /// A fatal signal ended the wait.
    pub fn by_kill() -> Killed {
        Killed::new(Reason::Killed)
    }
}

impl TimedOut {
    /// The deadline passed with the condition false.
    pub fn deadline_passed() -> TimedOut {
        TimedOut::new(Reason::TimedOut)
    }
}

impl Interrupted {
    /// Whether the signal was fatal (a kill), which also ends interruptible waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = waitq::WaitQueue::new();
    /// let signals = waitq::TaskSignals::new();
    /// signals.kill();
    /// let err = futures::executor::block_on(queue.wait_event_interruptible(&signals, || false))
    ///     .unwrap_err();
    /// assert!(err.is_fatal());
    /// ```
    pub fn is_fatal(&self) -> bool {
        self.reason == Reason::Killed
    }
}

/// # Examples
///
/// ```
/// # use std::time::{Duration, Instant};
/// # struct SysClock;
/// # impl waitq::Clock for SysClock {
/// #     type Sleep = std::future::Pending<()>;
/// #     fn now(&self) -> Instant { Instant::now() }
/// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
/// # }
/// let queue = waitq::WaitQueue::new();
/// let signals = waitq::TaskSignals::new();
/// let wait = queue.wait_event_killable_timeout(&signals, SysClock, Duration::ZERO, || false);
/// let err = futures::executor::block_on(wait).unwrap_err();
/// assert!(err.is_timed_out() && !err.is_interrupted() && !err.is_killed() && !err.is_closed());
/// ```
impl WaitError {
    /// Whether a signal (fatal or not) ended the wait.
    pub fn is_interrupted(&self) -> bool {
        matches!(self.reason, Reason::Interrupted | Reason::Killed)
    }

    /// Whether a fatal signal ended the wait.
    pub fn is_killed(&self) -> bool {
        self.reason == Reason::Killed
    }

    /// Whether the deadline passed with the condition false.
    pub fn is_timed_out(&self) -> bool {
        self.reason == Reason::TimedOut
    }
}

macro_rules! from_closed {
    ($($name:ident),*) => {$(
        impl From<Closed> for $name {
            fn from(closed: Closed) -> Self {
                $name::new(closed.reason)
            }
        }
    )*};
}

from_closed!(Interrupted, Killed, TimedOut, WaitError);
