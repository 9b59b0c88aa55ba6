//! Process signals as task signals: route Ctrl-C (`SIGINT`) or `SIGTERM`
//! to chosen tasks, so their `_interruptible` / `_killable` waits end as a
//! kernel task's do; or await [`ctrl_c`].
//!
//! The first use starts one listener thread (signal-hook's self-pipe
//! iterator); each delivery bumps a per-signal counter, wakes that
//! signal's wait queue, and raises the routed kind on every routed task
//! that is still alive.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Mutex, OnceLock, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use waitq::{SignalKind, WaitQueue};

use crate::task::AbortHandle;
use routes::Routes;

mod routes;

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
    fn index(self) -> usize {
        match self {
            ProcessSignal::CtrlC => 0,
            ProcessSignal::Terminate => 1,
        }
    }

    fn raw(self) -> i32 {
        match self {
            ProcessSignal::CtrlC => SIGINT,
            ProcessSignal::Terminate => SIGTERM,
        }
    }
}

struct Listener {
    counts: [AtomicU64; 2],
    queues: [WaitQueue; 2],
    routes: Mutex<Routes>,
    handle: signal_hook::iterator::Handle,
}

static LISTENER: OnceLock<Result<Listener, String>> = OnceLock::new();

fn listener() -> io::Result<&'static Listener> {
    let listener = LISTENER.get_or_init(|| {
        let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("runtime-signals".into())
            .spawn(move || {
                for raw in signals.forever() {
                    let signal = if raw == SIGINT {
                        ProcessSignal::CtrlC
                    } else {
                        ProcessSignal::Terminate
                    };
                    if let Ok(listener) = listener() {
                        listener.deliver(signal);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Listener {
            counts: [AtomicU64::new(0), AtomicU64::new(0)],
            queues: [WaitQueue::new(), WaitQueue::new()],
            routes: Mutex::new(Routes::new()),
            handle,
        })
    });
    listener
        .as_ref()
        .map_err(|e| io::Error::other(format!("cannot listen for signals: {e}")))
}

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

/// From now on, each `signal` the process receives raises `kind` on
/// `task` (an interrupt or a kill), until the task finishes.
///
/// The route does not keep the task (nor its runtime) alive: it goes
/// when the task is freed.
///
/// # Errors
///
/// When the signal handler cannot be installed.
///
/// # Examples
///
/// ```
/// use runtime::signal::{route, ProcessSignal};
/// use runtime::sync::{SignalKind, WaitQueue};
///
/// let rt = runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     static WORK: WaitQueue = WaitQueue::new();
///     let daemon = runtime::spawn(async {
///         let signals = runtime::task::signals();
///         WORK.wait_event_interruptible(&signals, || false).await
///     });
///     route(ProcessSignal::Terminate, &daemon.abort_handle(), SignalKind::Interrupt).unwrap();
///     # daemon.interrupt(); // the doctest does not signal its own process
///     assert!(daemon.await.unwrap().is_err());
/// });
/// ```
pub fn route(signal: ProcessSignal, task: &AbortHandle, kind: SignalKind) -> io::Result<()> {
    let listener = listener()?;
    listener
        .routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(signal, task, kind);
    Ok(())
}

/// Waits for the next `signal` the process receives (after this call).
///
/// # Errors
///
/// When the signal handler cannot be installed.
pub async fn recv(signal: ProcessSignal) -> io::Result<()> {
    let listener = listener()?;
    let i = signal.index();
    let seen = listener.counts[i].load(Acquire);
    listener.queues[i]
        .wait_event(|| listener.counts[i].load(Acquire) != seen)
        .await
        .map_err(io::Error::from)
}

/// Waits for the next Ctrl-C (`SIGINT`).
///
/// # Errors
///
/// When the signal handler cannot be installed.
pub async fn ctrl_c() -> io::Result<()> {
    recv(ProcessSignal::CtrlC).await
}

/// Sends `signal` to this process (for tests and for "stop yourself").
///
/// # Errors
///
/// When the handler cannot be installed.
pub fn raise(signal: ProcessSignal) -> io::Result<()> {
    listener()?;
    signal_hook::low_level::raise(signal.raw())
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = &self.handle;
        f.write_str("Listener")
    }
}
