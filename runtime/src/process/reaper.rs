//! The fallback exit path, and the orphan list: every child that this
//! module must reap and has no pidfd for, and one thread that reaps them
//! on `SIGCHLD`.
//!
//! Two kinds of child are listed: children spawned on the reaper path
//! (`pidfd_open` unavailable, or [`Builder::process_pidfd(false)`]), and
//! *orphans*: pidfd-path children whose [`Child`](super::Child) was
//! dropped before their process exited ([`orphan`]). The thread starts
//! with the first of either; a process that only ever uses pidfds and
//! waits for its children has no reaper thread and no `SIGCHLD` handler.
//!
//! The kernel wakes `wait4` through the parent's wait queue when a child
//! exits; here `SIGCHLD` stands for that wake. The thread (signal-hook's
//! self-pipe iterator, as the signal listener's) calls `try_wait` on
//! every listed child at each delivery; a child found exited gets its
//! status recorded, leaves the list, and has its *exit pipe* (reaper-path
//! children only) closed: the write end is dropped, so the read end,
//! registered with the child's runtime reactor, becomes readable, and the
//! task in [`Child::wait`](super::Child::wait) wakes from that source's
//! wait queue. Being a reactor source, the wait also ends (with an error)
//! when that runtime shuts down.
//!
//! # No lost exit
//!
//! A child is listed before its first `try_wait` (in `spawn`, or in
//! [`orphan`]): an exit before the listing is seen by that `try_wait`, one
//! after it raises `SIGCHLD`, whose scan sees the listed child
//! (signal-hook clears its pending flag before the iterator yields, so a
//! delivery during a scan yields again). The handler is installed before
//! the listing; if it cannot be (no thread, no descriptor), the child
//! stays listed and the first start that succeeds scans once.
//!
//! # No zombie
//!
//! A reaper-path [`Child`](super::Child) dropped before its process
//! exited stays listed (the list owns the entry); an orphan is listed
//! when dropped: the next scan after the exit reaps either, as tokio's
//! orphan queue does.
//!
//! [`Builder::process_pidfd(false)`]: crate::Builder::process_pidfd

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use mio::Interest;
use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;
use slab::Slab;

use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

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
    /// cannot be: someone else reaped it), waking its `wait`. `None` for
    /// an orphan.
    notify: Option<mio::unix::pipe::Sender>,
}

/// Every listed child; an entry's key is kept by its `Child`.
static CHILDREN: Mutex<Slab<Arc<Entry>>> = Mutex::new(Slab::new());

/// The thread is running and the handler is installed.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Held while starting, so that one caller starts the thread.
static STARTING: Mutex<()> = Mutex::new(());

/// An orphan was listed while the thread could not start: the next spawn
/// tries again ([`start_if_pending`]). Without this, a program that
/// otherwise only uses pidfds never started the reaper again, and the
/// orphan stayed a zombie until the program exited.
static PENDING: AtomicBool = AtomicBool::new(false);

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
    #[cfg(test)]
    if FAIL_NEXT_START.swap(false, std::sync::atomic::Ordering::Relaxed) {
        return Err(io::Error::other(
            "cannot reap children: injected: no reaper thread",
        ));
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
            // Children listed while no handler was installed (a start
            // that failed): their `SIGCHLD` may have come and gone.
            scan();
            Ok(())
        }
        Ok(Err(err)) => Err(failed("cannot install the SIGCHLD handler", err)),
        Err(mpsc::RecvError) => Err(io::Error::other(
            "cannot reap children: the reaper thread ended before it listened",
        )),
    }
}

/// Makes the next start fail, as without a thread or a descriptor.
#[cfg(test)]
pub(super) static FAIL_NEXT_START: AtomicBool = AtomicBool::new(false);

/// Whether the thread runs (tests of when it starts).
#[cfg(test)]
pub(super) fn started() -> bool {
    STARTED.load(Acquire)
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
fn list(
    child: std::process::Child,
    notify: Option<mio::unix::pipe::Sender>,
) -> (Arc<Entry>, usize) {
    let entry = Arc::new(Entry {
        state: Mutex::new(EntryState {
            child,
            status: None,
            notify,
        }),
    });
    let key = children().insert(entry.clone());
    (entry, key)
}

/// Reaps `child` (not reaped, no longer watched by anyone) once it exits:
/// lists it and starts the reaper thread if it does not run. If the
/// thread cannot start, the child stays listed for the first start that
/// succeeds (see "No lost exit").
pub(super) fn orphan(child: std::process::Child) {
    let (entry, key) = list(child, None);
    if ensure_started().is_err() {
        PENDING.store(true, Release);
    }
    let _ = entry.try_wait(key);
}

/// Starts the reaper if an orphan is listed with none running (its start
/// failed then; see [`PENDING`]); its first scan reaps what exited since.
pub(super) fn start_if_pending() {
    if PENDING.load(Acquire) && ensure_started().is_ok() {
        PENDING.store(false, Release);
    }
}

/// A reaper-path child's exit: its listed entry and the exit pipe's read
/// end in the reactor.
#[derive(Debug)]
pub(super) struct Exit {
    entry: Arc<Entry>,
    /// Its key in the list.
    key: usize,
    /// The exit pipe's read end: readable (EOF) once reaped.
    exited: PollEvented<mio::unix::pipe::Receiver>,
}

/// What [`Exit::watch`] needs, made before it: the reaper running and an
/// exit pipe in the current runtime's reactor.
#[derive(Debug)]
pub(super) struct Prepared {
    notify: mio::unix::pipe::Sender,
    exited: PollEvented<mio::unix::pipe::Receiver>,
}

impl Exit {
    /// Starts the reaper if needed and makes the exit pipe.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O; when the reaper cannot start (no
    /// thread, no descriptor) or the pipe cannot be made.
    pub(super) fn prepare() -> io::Result<Prepared> {
        ensure_started()?;
        let (notify, exited) = mio::unix::pipe::new()?;
        let exited = PollEvented::with_interest(exited, Interest::READABLE, IoNames::CHILD_EXIT)?;
        Ok(Prepared { notify, exited })
    }

    /// Lists `child` and checks it once (see "No lost exit").
    ///
    /// # Errors
    ///
    /// As `waitpid(2)` (the child stays listed: the reaper reaps it).
    pub(super) fn watch(child: std::process::Child, prepared: Prepared) -> io::Result<Exit> {
        let (entry, key) = list(child, Some(prepared.notify));
        entry.try_wait(key)?;
        Ok(Exit {
            entry,
            key,
            exited: prepared.exited,
        })
    }

    /// The status if the process exited (reaping it), without waiting.
    pub(super) fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        self.entry.try_wait(self.key)
    }

    /// Waits on the exit pipe's wait queue until the child is reaped.
    pub(super) async fn wait(
        &self,
        site: &'static std::panic::Location<'static>,
    ) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        self.exited
            .registration()
            .async_io_at(site, Direction::Read, || match self.try_wait()? {
                Some(status) => Ok(status),
                None => Err(io::ErrorKind::WouldBlock.into()),
            })
            .await
    }

    /// The status, if reaped.
    pub(super) fn status(&self) -> Option<ExitStatus> {
        self.entry.status()
    }

    /// `SIGKILL`, unless reaped (then nothing: the pid may be reused).
    pub(super) fn kill(&self) -> io::Result<()> {
        self.entry.kill()
    }
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
    fn try_wait(self: &Arc<Self>, key: usize) -> io::Result<Option<ExitStatus>> {
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
    fn status(&self) -> Option<ExitStatus> {
        self.lock().status
    }

    /// `SIGKILL`, unless reaped (then nothing: the pid may be reused).
    fn kill(&self) -> io::Result<()> {
        let mut state = self.lock();
        if state.status.is_some() {
            return Ok(());
        }
        state.child.kill()
    }
}
