//! Process signals. Two ways in:
//!
//! - **As streams**: [`unix::signal`]`(`[`unix::SignalKind::hangup()`]`)`
//!   and friends give a [`unix::Signal`] whose `recv().await` completes
//!   at each delivery of any Unix signal (`SIGHUP` to reload, `SIGUSR1`,
//!   `SIGQUIT`, `SIGCHLD`, ...), as tokio's `signal::unix`. [`ctrl_c`] and
//!   [`recv`] wait for the next Ctrl-C (`SIGINT`) or `SIGTERM`.
//! - **As task signals**: [`route`] Ctrl-C or `SIGTERM` to chosen tasks,
//!   so their `_interruptible` / `_killable` waits end as a kernel task's
//!   do; [`unroute`] takes a route back.
//!
//! The first use starts one listener thread (signal-hook's self-pipe
//! iterator); each delivery bumps a per-signal counter, wakes that
//! signal's wait queue, and raises the routed kind on every routed task
//! that is still alive.
//!
//! # Ctrl-C no longer ends the process
//!
//! The first use of [`route`], [`recv`], [`ctrl_c`] or [`raise`] for a
//! signal installs that signal's handler, and replaces its default action
//! for the rest of the process: after [`ctrl_c`], Ctrl-C no longer kills
//! the process; after [`recv`]`(`[`ProcessSignal::Terminate`]`)`, `SIGTERM`
//! no longer does. The other one keeps its default action until it is
//! used too (as tokio's: its `ctrl_c` touches `SIGINT` only). A handled
//! signal is delivered to the runtime instead (counted, waking [`recv`]
//! and [`ctrl_c`], raised on the routed tasks), and that is all, even when
//! nothing waits for it and every runtime has been dropped: the handlers
//! are never removed.
//!
//! So a program that uses this module ends itself: it awaits [`ctrl_c`]
//! (and [`recv`]`(`[`ProcessSignal::Terminate`]`)` if it is a service),
//! stops its work, and returns from `main` (or calls
//! [`std::process::exit`]). A program that routes a signal to tasks
//! without awaiting it ignores that signal once those tasks have
//! finished. [`unix::signal`] does the same for the one signal it is
//! asked for (see [its docs](unix#what-a-call-changes-for-the-process)).
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     let rt = waitrt::Builder::new_multi_thread().enable_all().build()?;
//!     rt.block_on(async {
//!         // From this call on, Ctrl-C comes here instead of ending the process.
//!         let ctrl_c = waitrt::signal::ctrl_c();
//!         let work = waitrt::spawn(std::future::pending::<()>());
//!         ctrl_c.await?;
//!         work.abort(); // stop the work, then return: the process exits
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # Errors
//!
//! Starting the listener needs a thread and two file descriptors (the
//! self-pipe). When it cannot start (say the process has run out of file
//! descriptors), the call that tried fails, no handler is installed
//! (the signal keeps its default action), and the next call tries again.

use std::io;
use std::sync::PoisonError;

use signal_hook::consts::{SIGINT, SIGTERM};
use waitq::SignalKind;

use crate::task::AbortHandle;
use listener::listen;

mod listener;
mod recv;
mod routes;
pub mod unix;

pub use recv::Recv;

/// A process signal that can be routed to tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessSignal {
    /// `SIGINT`: Ctrl-C at a terminal.
    CtrlC,
    /// `SIGTERM`: the polite request to stop.
    Terminate,
}

impl ProcessSignal {
    /// Its slot in the listener's counts and queues: its number.
    fn index(self) -> usize {
        self.raw() as usize
    }

    fn raw(self) -> i32 {
        match self {
            ProcessSignal::CtrlC => SIGINT,
            ProcessSignal::Terminate => SIGTERM,
        }
    }

    fn from_raw(raw: i32) -> Option<ProcessSignal> {
        match raw {
            SIGINT => Some(ProcessSignal::CtrlC),
            SIGTERM => Some(ProcessSignal::Terminate),
            _ => None,
        }
    }
}

/// Whether the program listens for `raw` through this module (a route, a
/// stream, `recv`): its handler is installed, and the signal is delivered.
pub(crate) fn handles(raw: i32) -> bool {
    listener::is_installed(raw)
}

/// From now on, each `signal` the process receives raises `kind` on
/// `task` (an interrupt or a kill), until the task finishes.
///
/// The route does not keep the task (nor its runtime) alive: it goes
/// when the task is freed.
///
/// # Errors
///
/// When the signal handlers cannot be installed (see the [module
/// docs](crate::signal#errors)); a later call tries again.
///
/// # Examples
///
/// ```
/// use waitrt::signal::{route, ProcessSignal};
/// use waitrt::sync::{SignalKind, WaitQueue};
///
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     static WORK: WaitQueue = WaitQueue::new();
///     let daemon = waitrt::spawn(async {
///         let signals = waitrt::task::signals();
///         WORK.wait_event_interruptible(&signals, || false).await
///     });
///     route(ProcessSignal::Terminate, &daemon.abort_handle(), SignalKind::Interrupt).unwrap();
///     # daemon.interrupt(); // the doctest does not signal its own process
///     assert!(daemon.await.unwrap().is_err());
/// });
/// ```
pub fn route(signal: ProcessSignal, task: &AbortHandle, kind: SignalKind) -> io::Result<()> {
    let listener = listen(&[signal.raw()])?;
    listener
        .routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(signal, task, kind);
    Ok(())
}

/// Removes the routes of `signal` to `task` made by [`route`]: from now
/// on that signal no longer raises anything on it. Gives how many routes
/// were removed (0 if there were none; a task routed twice, say once as
/// an interrupt and once as a kill, loses both).
///
/// The handlers stay installed (see the [module docs](crate::signal)):
/// the signal is still counted, and [`recv`] still sees it.
///
/// # Examples
///
/// ```
/// use waitrt::signal::{route, unroute, ProcessSignal};
/// use waitrt::sync::SignalKind;
///
/// let rt = waitrt::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let task = waitrt::spawn(std::future::pending::<()>());
///     route(ProcessSignal::Terminate, &task.abort_handle(), SignalKind::Interrupt).unwrap();
///     assert_eq!(unroute(ProcessSignal::Terminate, &task.abort_handle()), 1);
///     assert_eq!(unroute(ProcessSignal::Terminate, &task.abort_handle()), 0);
///     task.abort();
/// });
/// ```
pub fn unroute(signal: ProcessSignal, task: &AbortHandle) -> usize {
    listener::routes()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(signal, task)
}

/// Waits for the next `signal` the process receives after this call.
///
/// The call itself starts listening (not the first poll): a signal that
/// arrives before the returned future is first polled completes it.
///
/// # Errors
///
/// The future gives an error when the signal handlers cannot be installed
/// (see the [module docs](crate::signal#errors)); a later call tries
/// again.
///
/// # Cancel safety
///
/// Dropping the future loses nothing, but a new call counts from itself:
/// see [`Recv`].
pub fn recv(signal: ProcessSignal) -> Recv {
    Recv::new(signal)
}

/// Waits for the next Ctrl-C (`SIGINT`) after this call:
/// [`recv`]`(`[`ProcessSignal::CtrlC`]`)`.
///
/// # Errors
///
/// The future gives an error when the signal handlers cannot be installed
/// (see the [module docs](crate::signal#errors)); a later call tries
/// again.
///
/// # Cancel safety
///
/// Dropping the future loses nothing, but a new call counts from itself:
/// see [`Recv`].
pub fn ctrl_c() -> Recv {
    recv(ProcessSignal::CtrlC)
}

/// Sends `signal` to this process (for tests and for "stop yourself").
///
/// # Errors
///
/// When the signal handlers cannot be installed (see the [module
/// docs](crate::signal#errors)); a later call tries again. Then nothing is raised.
pub fn raise(signal: ProcessSignal) -> io::Result<()> {
    listen(&[signal.raw()])?;
    signal_hook::low_level::raise(signal.raw())
}
