//! The listener: one thread that reads signal-hook's self-pipe and
//! delivers each signal (count, wake, raise on the routed tasks).
//!
//! Starting it can fail (no file descriptor for the self-pipe, no thread).
//! A failure is not kept: the next call tries again. And the handlers are
//! never left installed with nobody reading them, because the thread
//! installs them itself, after it has started: if it cannot start, nothing
//! was installed and `SIGINT` / `SIGTERM` keep their default actions.
//! signal-hook could not give those back once installed (unregistering
//! its action leaves its handler in place, ignoring the signal).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Release;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{mpsc, Mutex, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use waitq::WaitQueue;

use super::routes::{self, Routes};
use super::ProcessSignal;

/// What the listener thread updates, and what the API reads.
#[derive(Debug)]
pub(super) struct Listener {
    /// Deliveries per signal, since the listener started.
    pub(super) counts: [AtomicU64; 2],
    /// Woken (all) on each delivery of that signal.
    pub(super) queues: [WaitQueue; 2],
    pub(super) routes: Mutex<Routes>,
}

static LISTENER: Listener = Listener {
    counts: [AtomicU64::new(0), AtomicU64::new(0)],
    queues: [WaitQueue::new(), WaitQueue::new()],
    routes: Mutex::new(Routes::new()),
};

/// The thread is running and the handlers are installed.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Held while starting, so that one caller starts the thread.
static STARTING: Mutex<()> = Mutex::new(());

/// The listener thread's body, as [`start`] hands it to its spawner.
pub(super) type Body = Box<dyn FnOnce() + Send>;

/// The listener, started if it was not.
///
/// # Errors
///
/// When the thread cannot start or the handlers cannot be installed;
/// nothing is kept of the attempt, and the next call tries again.
pub(super) fn listener() -> io::Result<&'static Listener> {
    if !STARTED.load(Acquire) {
        start(spawn_thread)?;
    }
    Ok(&LISTENER)
}

fn spawn_thread(body: Body) -> io::Result<()> {
    std::thread::Builder::new()
        .name("runtime-signals".into())
        .spawn(body)
        .map(drop)
}

/// Starts the listener thread through `spawn` (a seam: tests pass one
/// that fails), unless it runs already. The thread installs the handlers
/// and says whether it could before this returns.
pub(super) fn start(spawn: impl FnOnce(Body) -> io::Result<()>) -> io::Result<()> {
    let _one = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if STARTED.load(Acquire) {
        return Ok(());
    }
    let (installed, result) = mpsc::sync_channel(1);
    spawn(Box::new(move || {
        let mut signals = match Signals::new([SIGINT, SIGTERM]) {
            Ok(signals) => signals,
            Err(e) => {
                let _ = installed.send(Err(e));
                return;
            }
        };
        let _ = installed.send(Ok(()));
        for raw in signals.forever() {
            let signal = match raw {
                SIGINT => ProcessSignal::CtrlC,
                _ => ProcessSignal::Terminate,
            };
            // A waker that panics must not end the thread: the handlers
            // would stay installed with nobody reading them.
            let _ = catch_unwind(AssertUnwindSafe(|| LISTENER.deliver(signal)));
        }
    }))
    .map_err(|e| failed("cannot start the signal thread", e))?;
    match result.recv() {
        Ok(Ok(())) => {
            STARTED.store(true, Release);
            Ok(())
        }
        Ok(Err(e)) => Err(failed("cannot install the signal handlers", e)),
        Err(mpsc::RecvError) => Err(io::Error::other(
            "cannot listen for signals: the signal thread ended before it listened",
        )),
    }
}

fn failed(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen for signals: {what}: {e}"))
}

// ===== impl Listener =====

impl Listener {
    fn deliver(&self, signal: ProcessSignal) {
        let i = signal.index();
        self.counts[i].fetch_add(1, AcqRel);
        self.queues[i].wake_up_all();
        let targets = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .targets(signal);
        routes::raise_on(targets);
    }
}

#[cfg(test)]
mod tests;
