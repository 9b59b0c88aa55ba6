//! Time without a runtime: the [`Clock`] trait the `_timeout` waits use.

use std::future::Future;
use std::time::Instant;

/// The time source and timer of a `_timeout` wait.
///
/// The runtime implements it over its timer wheel (and its test toolkit
/// over a virtual clock). On tokio, implement it with
/// `tokio::time::Instant::now().into_std()` and `tokio::time::sleep_until`
/// (which also honours tokio's paused test clock); on smol, with
/// `Instant::now()` and `async_io::Timer::at`.
///
/// # Examples
///
/// A clock for any executor, backed by a thread per sleep (fine for an
/// example, wasteful in production):
///
/// ```
/// use std::time::{Duration, Instant};
/// use waitq::{Clock, WaitQueue};
///
/// struct ThreadClock;
/// impl Clock for ThreadClock {
///     type Sleep = futures::channel::oneshot::Receiver<()>;
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
///         let (tx, rx) = futures::channel::oneshot::channel();
///         std::thread::spawn(move || {
///             std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
///             let _ = tx.send(());
///         });
///         rx
///     }
/// }
///
/// let queue = WaitQueue::new();
/// let res = futures::executor::block_on(
///     queue.wait_event_timeout(ThreadClock, Duration::from_millis(5), || false),
/// );
/// assert!(res.is_err()); // timed out
/// ```
pub trait Clock {
    /// The future [`sleep_until`](Self::sleep_until) returns. The `_timeout`
    /// futures are `Unpin` exactly when this is.
    type Sleep: Future;

    /// The current time on this clock.
    fn now(&self) -> Instant;

    /// A future that completes once [`now`](Self::now) has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
}

impl<C: Clock + ?Sized> Clock for &C {
    type Sleep = C::Sleep;

    fn now(&self) -> Instant {
        (**self).now()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}
