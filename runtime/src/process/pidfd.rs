//! The default exit path: a *pidfd* (`pidfd_open(2)`, Linux ≥ 5.3) per
//! child, registered with the child's runtime reactor.
//!
//! A pidfd becomes readable when its process exits (the kernel wakes the
//! pidfd's wait queue from the exit notification, where it also raises
//! `SIGCHLD`), so the exit is a reactor event like a socket's: its source's
//! read wait queue is what [`Child::wait`](super::Child::wait) sleeps on,
//! and the wait reaps with `waitpid(WNOHANG)` (std's `try_wait`) when it
//! wakes. No thread and no signal handler take part. Being a reactor
//! source, the wait ends with an error when that runtime shuts down.
//!
//! The child stays unreaped until its [`Child`](super::Child) reaps it,
//! so its pid cannot be reused meanwhile: `kill` needs no pidfd.
//!
//! # No zombie
//!
//! A [`Child`](super::Child) dropped before its process exited hands the
//! process to the reaper's list ([`reaper::orphan`]), which starts the
//! `SIGCHLD` reaper thread on first use: tokio's orphan queue.
//!
//! # When there is no pidfd
//!
//! `pidfd_open` fails with `ENOSYS` before Linux 5.3 and `EPERM` or
//! `EACCES` under a seccomp policy that denies it: [`open`] remembers
//! those and the process module takes the reaper path for every later
//! child (other errors, say `EMFILE`, fall back for that child only).

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use mio::Interest;

use super::reaper;
use crate::net::async_fd::FdSource;
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// `pidfd_open` failed in a way that will not change (no such syscall, or
/// denied): every later spawn takes the reaper path at once.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Whether to try [`open`] at all (false once it failed for good).
pub(super) fn supported() -> bool {
    !UNSUPPORTED.load(Relaxed)
}

/// A descriptor to hold while a child is spawned (a pidfd of this
/// process: the cheapest one to make), dropped just before the child's
/// own [`open`]: the child's pidfd is the one descriptor it needs once
/// it runs, and a spawn that needs none itself (inherited stdio) started
/// a program whose exit could then not be watched, with no descriptor
/// left (it was killed). `Err` only when descriptors or memory ran out:
/// the spawn fails before any program starts. `Ok(None)` where a pidfd
/// cannot be made for other reasons (the caller spawns without it).
pub(super) fn reserve() -> io::Result<Option<OwnedFd>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::process::{getpid, pidfd_open, PidfdFlags};
        match pidfd_open(getpid(), PidfdFlags::NONBLOCK) {
            Ok(fd) => Ok(Some(fd)),
            Err(err) if exhausted(&io::Error::from(err)) => Err(err.into()),
            Err(_) => Ok(None),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Ok(None)
}

/// Whether `err` says descriptors or memory ran out.
pub(super) fn exhausted(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    )
}

/// Makes the next [`open`] fail with `ENOSYS`, as before Linux 5.3 (tests
/// of the fallback after a failed `pidfd_open`).
#[cfg(test)]
pub(super) static FAIL_NEXT_OPEN: AtomicBool = AtomicBool::new(false);

/// Makes the next [`open`] fail with `EMFILE`, as when another thread
/// took the descriptor [`reserve`] held for it.
#[cfg(test)]
pub(super) static EMFILE_NEXT_OPEN: AtomicBool = AtomicBool::new(false);

/// `pidfd_open(pid, PIDFD_NONBLOCK)` for `child`, which this process has
/// not reaped (so the pid is still the child's).
///
/// # Errors
///
/// As `pidfd_open(2)`; `ENOSYS`, `EPERM` and `EACCES` also make
/// [`supported`] false from then on.
pub(super) fn open(child: &std::process::Child) -> io::Result<OwnedFd> {
    #[cfg(test)]
    let result = match (
        FAIL_NEXT_OPEN.swap(false, Relaxed),
        EMFILE_NEXT_OPEN.swap(false, Relaxed),
    ) {
        (true, _) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "injected: pidfd_open: ENOSYS",
        )),
        (_, true) => Err(io::Error::from_raw_os_error(libc::EMFILE)),
        _ => open_os(child),
    };
    #[cfg(not(test))]
    let result = open_os(child);
    // std maps ENOSYS to `Unsupported`, EPERM and EACCES to
    // `PermissionDenied`.
    result.inspect_err(|err| {
        use io::ErrorKind::{PermissionDenied, Unsupported};
        if matches!(err.kind(), Unsupported | PermissionDenied) {
            UNSUPPORTED.store(true, Relaxed);
        }
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_os(child: &std::process::Child) -> io::Result<OwnedFd> {
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    Ok(pidfd_open(Pid::from_child(child), PidfdFlags::NONBLOCK)?)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_os(_: &std::process::Child) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// A pidfd as a mio source (readable once the process exited).
type PidFd = FdSource<OwnedFd>;

/// A child's exit, watched through its pidfd.
#[derive(Debug)]
pub(super) struct Exit {
    /// The process (stdio taken out); `None` only once dropped (handed to
    /// the reaper).
    child: Option<std::process::Child>,
    /// Set once, when reaped.
    status: Option<ExitStatus>,
    /// The pidfd in the reactor: readable once the process exited.
    fd: PollEvented<PidFd>,
}

impl Exit {
    /// Registers `pidfd` (of `child`) with the current runtime's reactor.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O, or as `epoll_ctl(2)`; `child` is given
    /// back with the error.
    pub(super) fn new(
        child: std::process::Child,
        pidfd: OwnedFd,
    ) -> Result<Exit, (std::process::Child, io::Error)> {
        // Not ready until the exit: `wait` sleeps before its first
        // `waitpid` (one per child, as tokio), and an exit before this
        // registration is reported by `epoll_ctl(ADD)` itself.
        match PollEvented::with_interest_unready(
            FdSource(pidfd),
            Interest::READABLE,
            IoNames::CHILD_EXIT,
        ) {
            Ok(fd) => Ok(Exit {
                child: Some(child),
                status: None,
                fd,
            }),
            Err(err) => Err((child, err)),
        }
    }

    fn child(&mut self) -> &mut std::process::Child {
        self.child.as_mut().expect("the child is ours until drop")
    }

    /// The status if the process exited (reaping it), without waiting.
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child().try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits for the exit on the pidfd's wait queue, then reaps (one
    /// `waitpid` after the wake).
    pub(super) async fn wait(
        &mut self,
        site: &'static std::panic::Location<'static>,
    ) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let Exit { child, status, fd } = self;
        let child = child.as_mut().expect("the child is ours until drop");
        let waited = fd
            .registration()
            .async_io_at(site, Direction::Read, || match child.try_wait()? {
                Some(status) => Ok(status),
                // Readable before the exit is reapable does not happen
                // (the kernel marks the zombie first); were it to, this
                // waits for the next edge rather than spinning.
                None => Err(io::ErrorKind::WouldBlock.into()),
            })
            .await;
        let reaped = match waited {
            Ok(status) => status,
            // The reactor is gone (the runtime shut down): a child that
            // has exited is still reapable, as on the reaper path; only
            // one still running is the error.
            Err(err) => match child.try_wait() {
                Ok(Some(status)) => status,
                _ => return Err(err),
            },
        };
        *status = Some(reaped);
        Ok(reaped)
    }

    /// The status, if reaped.
    pub(super) fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// `SIGKILL`, unless reaped (then nothing). Unreaped, the pid is still
    /// this child's, exited or not.
    pub(super) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.child().kill()
    }
}

impl Drop for Exit {
    /// Reaps the process if it exited; otherwise hands it to the reaper,
    /// which reaps it when it does.
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        match child.try_wait() {
            // Exited and reaped now, or reaped by someone else (ECHILD):
            // nothing to wait for.
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => reaper::orphan(child),
        }
    }
}
