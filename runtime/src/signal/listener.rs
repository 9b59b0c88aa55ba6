//! The listener: one thread that reads signal-hook's self-pipe and
//! delivers each signal (count, wake, raise on the routed tasks). It
//! starts with the signals its first user needs and adds others as later
//! users ask for them (signal-hook's `Handle::add_signal`): `SIGINT` or
//! `SIGTERM` for a route, [`recv`](super::recv) and
//! [`raise`](super::raise) of that signal, any signal for
//! [`unix::signal`](super::unix::signal).
//!
//! Starting it can fail (no file descriptor for the self-pipe, no thread).
//! A failure is not kept: the next call tries again. And the handlers are
//! never left installed with nobody reading them, because the thread
//! installs them itself, after it has started: if it cannot start, nothing
//! was installed and the signals asked for keep their default actions.
//! signal-hook could not give those back once installed (unregistering
//! its action leaves its handler in place, ignoring the signal).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Release;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{mpsc, Mutex, PoisonError};

use signal_hook::consts::FORBIDDEN;
#[cfg(test)]
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use waitq::WaitQueue;

use super::routes::{self, Routes};
use super::ProcessSignal;

/// Slots per signal number: 1 to 64 (Linux's `SIGRTMAX`); slot 0 unused.
pub(super) const SLOTS: usize = 65;

/// What the listener thread updates, and what the API reads.
#[derive(Debug)]
pub(super) struct Listener {
    /// Deliveries per signal number, since its handler was installed.
    pub(super) counts: [AtomicU64; SLOTS],
    /// Woken (all) on each delivery of that signal.
    pub(super) queues: [WaitQueue; SLOTS],
    pub(super) routes: Mutex<Routes>,
}

static LISTENER: Listener = Listener {
    counts: [const { AtomicU64::new(0) }; SLOTS],
    queues: [const { WaitQueue::named("signal") }; SLOTS],
    routes: Mutex::new(Routes::new()),
};

/// The thread is running (its handle is in [`HANDLE`]).
static STARTED: AtomicBool = AtomicBool::new(false);

/// Per signal number: its handler is installed and the thread reads it.
static INSTALLED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// Adds signals to the running thread's set.
static HANDLE: Mutex<Option<Handle>> = Mutex::new(None);

/// Held while starting or adding signals, so that one caller does it.
static STARTING: Mutex<()> = Mutex::new(());

/// The listener thread's body, as [`start`] hands it to its spawner.
pub(super) type Body = Box<dyn FnOnce() + Send>;

/// The listener, started if it was not, with the `SIGINT` and `SIGTERM`
/// handlers installed (the listener's tests; [`route`](super::route),
/// [`recv`](super::recv) and [`raise`](super::raise) install only the
/// signal they name, through [`listen`]).
///
/// # Errors
///
/// When the thread cannot start or the handlers cannot be installed;
/// nothing is kept of the attempt, and the next call tries again.
#[cfg(test)]
pub(super) fn listener() -> io::Result<&'static Listener> {
    listen(&[SIGINT, SIGTERM])
}

/// The listener, started if it was not, with the handlers of `signals`
/// installed.
///
/// # Errors
///
/// As [`listener`], and `InvalidInput` for a signal number out of range
/// or one that cannot be handled (`SIGKILL`, `SIGSTOP`, and the faults
/// `SIGILL`, `SIGFPE`, `SIGSEGV`, which signal-hook refuses).
pub(super) fn listen(signals: &[i32]) -> io::Result<&'static Listener> {
    if !signals.iter().all(|&raw| is_installed(raw)) {
        start_with(spawn_thread, signals)?;
    }
    Ok(&LISTENER)
}

pub(super) fn is_installed(raw: i32) -> bool {
    usize::try_from(raw)
        .ok()
        .and_then(|i| INSTALLED.get(i))
        .is_some_and(|installed| installed.load(Acquire))
}

/// Whether `raw` is a signal number the listener can install.
pub(super) fn check(raw: i32) -> io::Result<usize> {
    let index = usize::try_from(raw)
        .ok()
        .filter(|&i| (1..SLOTS).contains(&i))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot listen for signal {raw}: not a signal number (1 to 64)"),
            )
        })?;
    if FORBIDDEN.contains(&raw) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot listen for signal {raw}: SIGKILL and SIGSTOP cannot be handled, and \
                 SIGILL, SIGFPE and SIGSEGV mean the process is broken"
            ),
        ));
    }
    Ok(index)
}

fn spawn_thread(body: Body) -> io::Result<()> {
    std::thread::Builder::new()
        .name("runtime-signals".into())
        .spawn(body)
        .map(drop)
}

/// [`start_with`] for `SIGINT` and `SIGTERM` (the listener's tests).
#[cfg(test)]
pub(super) fn start(spawn: impl FnOnce(Body) -> io::Result<()>) -> io::Result<()> {
    start_with(spawn, &[SIGINT, SIGTERM])
}

/// Starts the listener thread through `spawn` (a seam: tests pass one
/// that fails), unless it runs already, with `signals` installed. The
/// thread installs the first set itself and says whether it could before
/// this returns; later signals are added to the running thread's set.
pub(super) fn start_with(
    spawn: impl FnOnce(Body) -> io::Result<()>,
    signals: &[i32],
) -> io::Result<()> {
    for &raw in signals {
        check(raw)?;
    }
    let _one = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if STARTED.load(Acquire) {
        return add(signals);
    }
    let (installed, result) = mpsc::sync_channel(1);
    let initial = signals.to_vec();
    spawn(Box::new(move || {
        let mut signals = match Signals::new(initial) {
            Ok(signals) => signals,
            Err(e) => {
                let _ = installed.send(Err(e));
                return;
            }
        };
        let _ = installed.send(Ok(signals.handle()));
        for raw in signals.forever() {
            // A waker that panics must not end the thread: the handlers
            // would stay installed with nobody reading them.
            let _ = catch_unwind(AssertUnwindSafe(|| LISTENER.deliver(raw)));
        }
    }))
    .map_err(|e| failed("cannot start the signal thread", e))?;
    match result.recv() {
        Ok(Ok(handle)) => {
            *HANDLE.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
            mark_installed(signals);
            STARTED.store(true, Release);
            Ok(())
        }
        Ok(Err(e)) => Err(failed("cannot install the signal handlers", e)),
        Err(mpsc::RecvError) => Err(io::Error::other(
            "cannot listen for signals: the signal thread ended before it listened",
        )),
    }
}

/// Adds `signals` to the running thread's set (under `STARTING`).
fn add(signals: &[i32]) -> io::Result<()> {
    let handle = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    let handle = handle
        .as_ref()
        .expect("a started listener keeps its handle");
    for &raw in signals {
        if !is_installed(raw) {
            handle
                .add_signal(raw)
                .map_err(|e| failed(&format!("cannot install the handler of signal {raw}"), e))?;
            mark_installed(&[raw]);
        }
    }
    Ok(())
}

fn mark_installed(signals: &[i32]) {
    for &raw in signals {
        if let Ok(i) = check(raw) {
            INSTALLED[i].store(true, Release);
        }
    }
}

fn failed(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen for signals: {what}: {e}"))
}

// ===== impl Listener =====

impl Listener {
    fn deliver(&self, raw: i32) {
        let Ok(i) = check(raw) else { return };
        self.counts[i].fetch_add(1, AcqRel);
        // A stream's waker that panics (the hook has printed it) must not
        // cost this delivery its routes: the queue wakes all its other
        // waiters first, and the routes are raised after it regardless.
        // This thread belongs to no runtime, so no panic policy applies.
        let _ = catch_unwind(AssertUnwindSafe(|| self.queues[i].wake_up_all()));
        let Some(signal) = ProcessSignal::from_raw(raw) else {
            return;
        };
        let targets = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .targets(signal);
        routes::raise_on(targets);
    }
}

/// The route list, without starting the listener (for unrouting: with no
/// listener there is no route).
pub(super) fn routes() -> &'static Mutex<Routes> {
    &LISTENER.routes
}

#[cfg(test)]
mod tests;
