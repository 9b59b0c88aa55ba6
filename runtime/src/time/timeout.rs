//! [`Timeout`]: a future with a deadline.

use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use waitq::coop;

use super::Sleep;

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> Self {
        std::io::ErrorKind::TimedOut.into()
    }
}

pin_project! {
    /// Made by [`timeout`](super::timeout) and
    /// [`timeout_at`](super::timeout_at). The inner future is polled first,
    /// so a future that is ready at the deadline still wins.
    ///
    /// # Cooperative budget
    ///
    /// As in tokio: a poll that ends with the inner future's output spends
    /// what the inner future spent; the deadline's [`Sleep`] spends one unit
    /// when it completes (`timeout(Duration::ZERO, ..)` in a loop yields to
    /// other tasks). If the inner future used up the budget, the deadline is
    /// still checked (without one), so a future that always spends the
    /// whole budget still times out.
    ///
    /// # Cancel safety
    ///
    /// Dropping a `Timeout` drops the inner future (whose own cancel safety
    /// applies) and removes the deadline's timer.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    pub(crate) fn new(future: F, sleep: Sleep) -> Self {
        Timeout { future, sleep }
    }

    /// The wrapped future, by reference.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The wrapped future, to change (a `Timeout` not pinned yet).
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// The wrapped future, by value (the deadline is dropped).
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let had_budget = coop::has_budget_remaining();
        if let Poll::Ready(out) = this.future.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let sleep = if had_budget && !coop::has_budget_remaining() {
            // The inner future spent the last unit: check the deadline
            // anyway, or a future that always does so never times out.
            pin!(coop::unconstrained(this.sleep)).poll(cx)
        } else {
            Pin::new(this.sleep).poll(cx)
        };
        match sleep {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
