//! [`Recv`]: the future of [`recv`](super::recv) and
//! [`ctrl_c`](super::ctrl_c).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Acquire};
use std::task::{Context, Poll};

use waitq::{PollWaiter, WaitQueue};

use super::listener::listen;
use super::ProcessSignal;

/// Completes at the first delivery of a process signal after the call
/// that made it ([`recv`](super::recv) or [`ctrl_c`](super::ctrl_c)).
///
/// The call starts the listener and notes how many times the signal was
/// delivered so far; the future completes once that number has changed.
/// So a signal that arrives between the call and the first poll is not
/// missed.
///
/// Once it has completed it completes again at once if polled again: for
/// the next signal, call [`recv`](super::recv) again.
///
/// # Cancel safety
///
/// Dropping it loses nothing: deliveries are counted whether or not
/// anyone waits. But a new `Recv` counts from its own call, so a signal
/// that arrives after this one is dropped and before the next call is not
/// seen by the next one. In a `select!` loop, make the `Recv` once, before
/// the loop, and keep it.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Recv {
    state: Result<Waiting, Option<io::Error>>,
}

struct Waiting {
    /// The signal's delivery count, and its value at the call.
    count: &'static AtomicU64,
    seen: u64,
    waiter: PollWaiter<&'static WaitQueue>,
}

// ===== impl Recv =====

impl Recv {
    pub(super) fn new(signal: ProcessSignal) -> Recv {
        // This signal's handler only: `ctrl_c` leaves `SIGTERM` its
        // default action, as tokio's does (it took over both, and a
        // service ported from tokio that awaits only Ctrl-C ignored
        // `docker stop`: an independent probe).
        let state = listen(&[signal.raw()]).map_err(Some).map(|listener| {
            let count = &listener.counts[signal.index()];
            Waiting {
                count,
                seen: count.load(Acquire),
                waiter: PollWaiter::new(&listener.queues[signal.index()]),
            }
        });
        Recv { state }
    }
}

impl Future for Recv {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            Ok(Waiting {
                count,
                seen,
                waiter,
            }) => waiter
                .poll_wait_event(cx, || count.load(Acquire) != *seen)
                .map_err(io::Error::from),
            Err(error) => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                None => panic!("`Recv` polled after it returned its error"),
            },
        }
    }
}

impl fmt::Debug for Recv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Recv");
        match &self.state {
            Ok(waiting) => f
                .field("seen", &waiting.seen)
                .field("count", &waiting.count.load(Acquire)),
            Err(error) => f.field("error", error),
        }
        .finish()
    }
}

// Spawnable, and movable between threads mid-wait.
const _: fn() = || {
    fn assert_send_sync_unpin<T: Send + Sync + Unpin + 'static>() {}
    assert_send_sync_unpin::<Recv>();
};
