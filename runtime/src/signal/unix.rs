//! Any Unix signal as a stream: [`signal`]`(`[`SignalKind::hangup()`]`)`
//! gives a [`Signal`] whose [`recv`](Signal::recv) completes at each
//! `SIGHUP` the process receives (reload your configuration there), and
//! the same for `SIGUSR1`, `SIGUSR2`, `SIGQUIT`, `SIGCHLD`, `SIGWINCH` or
//! any other signal a process may handle. As tokio's
//! `signal::unix`.
//!
//! ```no_run
//! use waitrt::signal::unix::{signal, SignalKind};
//!
//! # fn reload() {}
//! # fn main() -> std::io::Result<()> {
//! waitrt::Runtime::new()?.block_on(async {
//!     let mut hangups = signal(SignalKind::hangup())?;
//!     while hangups.recv().await.is_some() {
//!         reload(); // one call for one or more SIGHUPs since the last
//!     }
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # What a call changes for the process
//!
//! The first [`signal`] of a kind installs a handler for that signal, and
//! it stays installed for the rest of the process: the signal's default
//! action is gone. A `SIGHUP`, `SIGUSR1` or `SIGQUIT` no longer ends the
//! process (nor dumps core) once anything has listened for it, even after
//! every [`Signal`] is dropped; it is counted and wakes the listeners,
//! and that is all. Only the signal asked for is affected: listening for
//! `SIGHUP` leaves Ctrl-C's default action alone (as
//! [`ctrl_c`](super::ctrl_c), [`recv`](super::recv) and
//! [`route`](super::route) install only the signal they name).
//!
//! # Delivery
//!
//! The kernel does not queue a standard signal that is already pending,
//! and neither does this: several deliveries between two `recv`s make
//! one. A [`Signal`] sees every delivery after the [`signal`] call that
//! made it (not only after its first `recv`), and every `Signal` of one
//! kind sees each delivery (they do not compete for it).
//!
//! The signals reach tasks through the runtime's one signal thread
//! (signal-hook's self-pipe), which counts each delivery and wakes that
//! signal's wait queue; a `Signal` works with any runtime, or none (for
//! example in [`block_on`](crate::block_on)).
//!
//! `SignalKind` here names a Unix signal; [`crate::sync::SignalKind`] is
//! what a *task* signal does (interrupt or kill a wait), as
//! [`route`](super::route) maps `SIGINT` and `SIGTERM` onto.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Acquire};
use std::task::{Context, Poll};

use futures_core::Stream;
use signal_hook::consts::signal as sig;
use waitq::{PollWaiter, WaitQueue};

use super::listener::{check, listen};

/// A Unix signal, by number: the common ones by name, any other with
/// [`from_raw`](Self::from_raw). As tokio's `signal::unix::SignalKind`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// The signal numbered `signum` (as `<signal.h>`, for example a
    /// real-time signal `SIGRTMIN() + n`).
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> i32 {
        self.0
    }

    /// `SIGALRM`: a real-time timer (`alarm(2)`, `setitimer(2)`) expired.
    pub const fn alarm() -> SignalKind {
        SignalKind(sig::SIGALRM)
    }

    /// `SIGCHLD`: a child process stopped or ended.
    pub const fn child() -> SignalKind {
        SignalKind(sig::SIGCHLD)
    }

    /// `SIGHUP`: the terminal hung up; by convention for daemons, reload
    /// the configuration.
    pub const fn hangup() -> SignalKind {
        SignalKind(sig::SIGHUP)
    }

    /// `SIGINT`: Ctrl-C at a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(sig::SIGINT)
    }

    /// `SIGIO`: I/O is possible on a descriptor set up for it.
    pub const fn io() -> SignalKind {
        SignalKind(sig::SIGIO)
    }

    /// `SIGPIPE`: a write to a pipe or socket no one reads. Rust programs
    /// ignore it by default (writes fail with `BrokenPipe` instead).
    pub const fn pipe() -> SignalKind {
        SignalKind(sig::SIGPIPE)
    }

    /// `SIGQUIT`: Ctrl-\ at a terminal (by default: quit and dump core).
    pub const fn quit() -> SignalKind {
        SignalKind(sig::SIGQUIT)
    }

    /// `SIGTERM`: the polite request to stop.
    pub const fn terminate() -> SignalKind {
        SignalKind(sig::SIGTERM)
    }

    /// `SIGUSR1`: meaning what the program says it means.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(sig::SIGUSR1)
    }

    /// `SIGUSR2`: meaning what the program says it means.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(sig::SIGUSR2)
    }

    /// `SIGWINCH`: the terminal's window changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(sig::SIGWINCH)
    }
}

impl From<i32> for SignalKind {
    fn from(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
}

impl From<SignalKind> for i32 {
    fn from(kind: SignalKind) -> i32 {
        kind.0
    }
}

impl fmt::Debug for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match signal_hook::low_level::signal_name(self.0) {
            Some(name) => write!(f, "SignalKind({name})"),
            None => write!(f, "SignalKind({})", self.0),
        }
    }
}

/// Listens for `kind`: from this call on, each delivery of that signal to
/// the process is seen by the returned [`Signal`].
///
/// The first call for a kind installs its handler for the rest of the
/// process (see the [module docs](self#what-a-call-changes-for-the-process)).
///
/// # Errors
///
/// `InvalidInput` for `SIGKILL` and `SIGSTOP` (which cannot be handled),
/// `SIGILL`, `SIGFPE` and `SIGSEGV` (which mean the process is broken), or
/// a number that is no signal; an error when the signal thread cannot
/// start or the handler cannot be installed (nothing is kept of the
/// attempt; a later call tries again).
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let index = check(kind.0)?;
    let listener = listen(&[kind.0])?;
    let count = &listener.counts[index];
    Ok(Signal {
        kind,
        count,
        seen: count.load(Acquire),
        waiter: PollWaiter::new(&listener.queues[index]),
    })
}

/// The deliveries of one Unix signal, from [`signal`]: await
/// [`recv`](Self::recv) in a loop, or use it as a [`Stream`] of `()`.
#[must_use = "a Signal does nothing unless you `recv` from it"]
pub struct Signal {
    kind: SignalKind,
    /// The signal's delivery count, and the value last reported.
    count: &'static AtomicU64,
    seen: u64,
    waiter: PollWaiter<&'static WaitQueue>,
}

impl Signal {
    /// Waits for a delivery of the signal after the last one this
    /// returned (or after [`signal`], the first time). Several deliveries
    /// in between make one.
    ///
    /// Gives `Some(())` for each; `None` would mean no more can come,
    /// which does not happen here (the signal thread lives as long as the
    /// process), but the `Option` is tokio's shape, so `while let` loops
    /// port unchanged.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no delivery; the next `recv`
    /// returns at once for one that arrived meanwhile.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) for hand-written futures: `Ready(Some(()))`
    /// for a delivery since the last one reported; otherwise `Pending`,
    /// and `cx`'s waker is woken at the next delivery (only the waker of
    /// the latest call).
    #[track_caller]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let (count, seen) = (self.count, self.seen);
        match self
            .waiter
            .poll_wait_event(cx, || count.load(Acquire) != seen)
        {
            Poll::Ready(Ok(())) => {
                self.seen = self.count.load(Acquire);
                Poll::Ready(Some(()))
            }
            // The queues are statics, never closed: no more deliveries
            // would come if one were.
            Poll::Ready(Err(_closed)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The signal this listens for.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }
}

impl Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("kind", &self.kind)
            .field("seen", &self.seen)
            .field("count", &self.count.load(Acquire))
            .finish()
    }
}

// Spawnable, and movable between threads mid-wait.
const _: fn() = || {
    fn assert_send_sync_unpin<T: Send + Sync + Unpin + 'static>() {}
    assert_send_sync_unpin::<Signal>();
};
