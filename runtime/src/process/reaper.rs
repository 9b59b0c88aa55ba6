//! The reaper: every child this module spawned and has not reaped, and
//! one thread that reaps them on `SIGCHLD`.
//!
//! The kernel wakes `wait4` through the parent's wait queue when a child
//! exits; here `SIGCHLD` stands for that wake. The thread (signal-hook's
//! self-pipe iterator, as the signal listener's) calls `try_wait` on
//! every listed child at each delivery; a child found exited gets its
//! status recorded, leaves the list, and has its *exit pipe* closed: the
//! write end is dropped, so the read end, registered with the child's
//! runtime reactor, becomes readable, and the task in
//! [`Child::wait`](super::Child::wait) wakes from that source's wait
//! queue. Being a reactor source, the wait also ends (with an error)
//! when that runtime shuts down.
//!
//! # No lost exit
//!
//! A child is listed before its first `try_wait` (in `spawn`): an exit
//! before the listing is seen by that `try_wait`, one after it raises
//! `SIGCHLD`, whose scan sees the listed child (signal-hook clears its
//! pending flag before the iterator yields, so a delivery during a scan
//! yields again). The handler is installed before the first child is
//! spawned.
//!
//! # No zombie
//!
//! A [`Child`](super::Child) dropped before its process exited stays
//! listed (the list owns the entry): the next scan after the exit reaps
//! it, as tokio's orphan queue does.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;
use slab::Slab;

/// One spawned child, until reaped.
#[derive(Debug)]
pub(super) struct Entry {
    state: Mutex<EntryState>,
}

#[derive(Debug)]
struct EntryState {
    /// The process (its stdio taken out).
    child: std::process::Child,
    /// Set once, when reaped.
    status: Option<ExitStatus>,
    /// The exit pipe's write end: dropped when the child is reaped (or
    /// cannot be: someone else reaped it), waking its `wait`.
    notify: Option<mio::unix::pipe::Sender>,
}

/// Every listed child; an entry's key is kept by its `Child`.
static CHILDREN: Mutex<Slab<Arc<Entry>>> = Mutex::new(Slab::new());

/// The thread is running and the handler is installed.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Held while starting, so that one caller starts the thread.
static STARTING: Mutex<()> = Mutex::new(());

fn children() -> MutexGuard<'static, Slab<Arc<Entry>>> {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the reaper thread unless it runs; it installs the `SIGCHLD`
/// handler before this returns.
///
/// # Errors
///
/// When the thread cannot start or the handler cannot be installed; the
/// next call tries again.
pub(super) fn ensure_started() -> io::Result<()> {
    if STARTED.load(Acquire) {
        return Ok(());
    }
    let _one = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if STARTED.load(Acquire) {
        return Ok(());
    }
    let (installed, result) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("runtime-reaper".into())
        .spawn(move || {
            let mut signals = match Signals::new([SIGCHLD]) {
                Ok(signals) => signals,
                Err(err) => {
                    let _ = installed.send(Err(err));
                    return;
                }
            };
            let _ = installed.send(Ok(()));
            for _ in signals.forever() {
                // A waker that panics must not end the thread.
                let _ = catch_unwind(AssertUnwindSafe(scan));
            }
        })
        .map_err(|err| failed("cannot start the reaper thread", err))?;
    match result.recv() {
        Ok(Ok(())) => {
            STARTED.store(true, Release);
            Ok(())
        }
        Ok(Err(err)) => Err(failed("cannot install the SIGCHLD handler", err)),
        Err(mpsc::RecvError) => Err(io::Error::other(
            "cannot reap children: the reaper thread ended before it listened",
        )),
    }
}

fn failed(what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("cannot reap children: {what}: {err}"))
}

/// One `SIGCHLD`: reaps every listed child that exited, unlisting it.
fn scan() {
    children().retain(|_, entry| !entry.reap());
}

/// Lists `child`; returns its entry and key. The caller then calls
/// [`Entry::try_wait`] once (see "No lost exit").
pub(super) fn list(
    child: std::process::Child,
    notify: mio::unix::pipe::Sender,
) -> (Arc<Entry>, usize) {
    let entry = Arc::new(Entry {
        state: Mutex::new(EntryState {
            child,
            status: None,
            notify: Some(notify),
        }),
    });
    let key = children().insert(entry.clone());
    (entry, key)
}

/// Unlists `entry` (reaped by its `Child`), if `key` is still its.
fn unlist(key: usize, entry: &Arc<Entry>) {
    let mut children = children();
    if children
        .get(key)
        .is_some_and(|listed| Arc::ptr_eq(listed, entry))
    {
        children.remove(key);
    }
}

// ===== impl Entry =====

impl Entry {
    fn lock(&self) -> MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reaper's `try_wait`: whether the child is done with (reaped now
    /// or before, or cannot be: its `wait` then reports the error).
    fn reap(&self) -> bool {
        let mut state = self.lock();
        if state.status.is_some() {
            return true;
        }
        match state.child.try_wait() {
            Ok(None) => false,
            Ok(Some(status)) => {
                state.status = Some(status);
                state.notify = None;
                true
            }
            Err(_) => {
                state.notify = None;
                true
            }
        }
    }

    /// The child's status if it exited (reaping it), for its `Child`.
    pub(super) fn try_wait(self: &Arc<Self>, key: usize) -> io::Result<Option<ExitStatus>> {
        let mut state = self.lock();
        if let Some(status) = state.status {
            return Ok(Some(status));
        }
        let status = state.child.try_wait()?;
        if let Some(status) = status {
            state.status = Some(status);
            state.notify = None;
            drop(state);
            unlist(key, self);
        }
        Ok(status)
    }

    /// The status, if reaped.
    pub(super) fn status(&self) -> Option<ExitStatus> {
        self.lock().status
    }

    /// `SIGKILL`, unless reaped (then nothing: the pid may be reused).
    pub(super) fn kill(&self) -> io::Result<()> {
        let mut state = self.lock();
        if state.status.is_some() {
            return Ok(());
        }
        state.child.kill()
    }
}
