//! [`AsyncFd`]: any file descriptor (anything [`AsRawFd`]) registered with
//! the runtime's reactor, as tokio's `io::unix::AsyncFd` (also at
//! [`waitrt::io::unix`](crate::io::unix)).

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::Location;
use std::task::{Context, Poll};

use mio::unix::SourceFd;
use mio::{Registry, Token};

use crate::io::Interest;
use crate::reactor::readiness::{Direction, IoNames, ReadyEvent};
use crate::reactor::PollEvented;

/// A file descriptor the runtime's reactor watches: wait until it is
/// readable or writable, then do the I/O yourself, without blocking.
///
/// Use it for what the runtime has no type for: a pipe, a character
/// device, an inotify or timer fd, a socket type from another crate. The
/// descriptor must be in non-blocking mode (set it before wrapping), and
/// it must stay open and the same while wrapped.
///
/// Readiness is kept per direction, with a wait queue each, as for the
/// runtime's sockets: [`readable`](Self::readable) waits (an exclusive
/// waiter: one readiness edge wakes one task, which passes the wake on as
/// it gets its guard, so while the readiness lasts every waiter gets one
/// in turn, as with tokio) and gives a guard. Do the
/// I/O through the guard's [`try_io`](AsyncFdReadyGuard::try_io): a
/// `WouldBlock` clears the readiness (the next wait sleeps until the
/// kernel reports an edge), anything else keeps it. Or let
/// [`read_with`](Self::read_with) / [`write_with`](Self::write_with) run
/// that loop for you.
///
/// A fresh `AsyncFd` counts as readable and writable until a `WouldBlock`
/// or the reactor's first event for it says otherwise, as the runtime's
/// sockets do (trying the syscall first saves a reactor turn per new
/// descriptor): its first `readable()` may be ready at once, where
/// tokio's waits for the kernel's first event. A loop through `try_io`
/// handles both alike.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use waitrt::net::AsyncFd;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let (mut ours, theirs) = UnixStream::pair()?;
///     theirs.set_nonblocking(true)?;
///     let fd = AsyncFd::new(theirs)?;
///     ours.write_all(b"hi")?;
///     let mut buf = [0; 2];
///     let n = fd.read_with(|s| (&*s).read(&mut buf)).await?;
///     assert_eq!(&buf[..n], b"hi");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct AsyncFd<T: AsRawFd> {
    io: PollEvented<FdSource<T>>,
    /// The directions registered: a wait in another fails at once.
    interest: Interest,
}

/// The wrapped value as a mio source: its descriptor, registered as is
/// (also a child's pidfd: `process/pidfd.rs`).
#[derive(Debug)]
pub(crate) struct FdSource<T>(pub(crate) T);

impl<T: AsRawFd> mio::event::Source for FdSource<T> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: mio::Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: mio::Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

impl<T: AsRawFd> AsyncFd<T> {
    /// Registers `inner`'s descriptor with the current runtime's reactor,
    /// for both directions.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or as `epoll_ctl(2)` (for
    /// example `EPERM` for a regular file, which is always ready and
    /// cannot be watched).
    pub fn new(inner: T) -> io::Result<AsyncFd<T>> {
        AsyncFd::with_interest(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `inner`'s descriptor for `interest` only: the reactor
    /// reports only those directions (a read-only descriptor, say an
    /// inotify fd, is never woken for "writable"). Waiting in a direction
    /// not registered ([`writable`](Self::writable) on
    /// [`Interest::READABLE`]) fails at once with `InvalidInput` instead
    /// of sleeping forever.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use waitrt::io::{unix::AsyncFd, Interest};
    ///
    /// waitrt::Runtime::new().unwrap().block_on(async {
    ///     let (ours, _theirs) = UnixStream::pair()?;
    ///     ours.set_nonblocking(true)?;
    ///     let fd = AsyncFd::with_interest(ours, Interest::READABLE)?;
    ///     let err = fd.writable().await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn with_interest(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
        Ok(AsyncFd {
            io: PollEvented::with_interest(FdSource(inner), interest.to_mio(), IoNames::ASYNC_FD)?,
            interest,
        })
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.io.source().0
    }

    /// The wrapped value, mutably. It stays registered: replacing it with
    /// a value of another descriptor breaks the contract above (the
    /// reactor watches the old one).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io.source_mut().0
    }

    /// `InvalidInput` unless registered for `direction`.
    fn check(&self, direction: Direction) -> io::Result<()> {
        let (registered, name) = match direction {
            Direction::Read => (self.interest.is_readable(), "readable"),
            Direction::Write => (self.interest.is_writable(), "writable"),
        };
        if registered {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "this AsyncFd is registered for {:?} only: it is never {name} \
                 (register it with AsyncFd::with_interest for both)",
                self.interest
            ),
        ))
    }

    /// Deregisters the descriptor and gives the value back.
    pub fn into_inner(self) -> T {
        self.io.into_inner().0
    }

    /// Waits until the descriptor is readable (or the reactor saw an
    /// error or hang-up on it); gives a guard to do the read through.
    ///
    /// # Errors
    ///
    /// If the runtime shut down; `InvalidInput` if not registered for
    /// [`Interest::READABLE`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. A wake-up it had received passes on to
    /// the next waiter; so does the one it completes with, so a guard held
    /// across an await holds up no other waiter.
    #[track_caller]
    pub fn readable<'a>(
        &'a self,
    ) -> impl Future<Output = io::Result<AsyncFdReadyGuard<'a, T>>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.ready_at(site, Direction::Read).await }
    }

    /// Waits until the descriptor is writable; gives a guard to do the
    /// write through.
    ///
    /// # Errors
    ///
    /// If the runtime shut down; `InvalidInput` if not registered for
    /// [`Interest::WRITABLE`].
    ///
    /// # Cancel safety
    ///
    /// As [`readable`](Self::readable).
    #[track_caller]
    pub fn writable<'a>(
        &'a self,
    ) -> impl Future<Output = io::Result<AsyncFdReadyGuard<'a, T>>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.ready_at(site, Direction::Write).await }
    }

    async fn ready_at(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
    ) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        self.check(direction)?;
        let seen = self.io.registration().ready_at(site, direction).await?;
        // As the sockets' `readable()`: the wait moved no data, and the
        // guard may be held across an await (a lock taken before
        // `try_io`), so the wake goes on to the next waiter now, not when
        // the guard drops; a `clear_ready` after `WouldBlock` still clears
        // (an independent review: a reader holding its guard while it
        // awaited a lock its peer held, the peer asleep in `readable()`,
        // deadlocked; tokio wakes every readiness waiter).
        self.io.registration().pass_on(direction);
        Ok(AsyncFdReadyGuard::new(self, seen, direction))
    }

    /// [`readable`](Self::readable) for hand-written futures: only the
    /// waker of the latest call is woken.
    ///
    /// # Errors
    ///
    /// As [`readable`](Self::readable).
    #[track_caller]
    pub fn poll_read_ready(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.poll_ready(cx, Direction::Read)
    }

    /// [`writable`](Self::writable) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As [`writable`](Self::writable).
    #[track_caller]
    pub fn poll_write_ready(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.poll_ready(cx, Direction::Write)
    }

    #[track_caller]
    fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.check(direction)?;
        self.io
            .registration()
            .poll_ready(cx, direction)
            .map_ok(|seen| AsyncFdReadyGuard::new(self, seen, direction))
    }

    /// Runs `f` (a non-blocking read) whenever the descriptor is readable,
    /// until it gives anything but `WouldBlock`.
    ///
    /// # Errors
    ///
    /// `f`'s error, or as [`readable`](Self::readable).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe if `f` is: the future is dropped only between calls of
    /// `f`, after a `WouldBlock`.
    #[track_caller]
    pub fn read_with<'a, R: 'a>(
        &'a self,
        f: impl FnMut(&T) -> io::Result<R> + 'a,
    ) -> impl Future<Output = io::Result<R>> + 'a {
        // The wait is listed at our caller's site.
        self.io_with(Location::caller(), Direction::Read, f)
    }
    /// Runs `f` (a non-blocking write) whenever the descriptor is
    /// writable, until it gives anything but `WouldBlock`.
    ///
    /// # Errors
    ///
    /// `f`'s error, or as [`writable`](Self::writable).
    ///
    /// # Cancel safety
    ///
    /// As [`read_with`](Self::read_with).
    #[track_caller]
    pub fn write_with<'a, R: 'a>(
        &'a self,
        f: impl FnMut(&T) -> io::Result<R> + 'a,
    ) -> impl Future<Output = io::Result<R>> + 'a {
        // The wait is listed at our caller's site.
        self.io_with(Location::caller(), Direction::Write, f)
    }
    async fn io_with<R>(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.check(direction)?;
        let inner = self.get_ref();
        self.io
            .registration()
            .async_io_at(site, direction, || f(inner))
            .await
    }
}

impl<T: AsRawFd> AsRawFd for AsyncFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

impl<T: AsRawFd + fmt::Debug> fmt::Debug for AsyncFd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFd")
            .field("inner", self.get_ref())
            .finish()
    }
}

/// A readiness [`AsyncFd::readable`] or [`AsyncFd::writable`] saw. Do the
/// I/O through [`try_io`](Self::try_io), or clear the readiness with
/// [`clear_ready`](Self::clear_ready) after a `WouldBlock` of your own;
/// dropped without a clear, the readiness stays and the next waiter is
/// woken to use it.
#[must_use = "the readiness is used through the guard"]
pub struct AsyncFdReadyGuard<'a, T: AsRawFd> {
    fd: &'a AsyncFd<T>,
    seen: ReadyEvent,
    direction: Direction,
    /// Cleared (or passed on) already: nothing to do on drop.
    done: bool,
}

/// The error of [`AsyncFdReadyGuard::try_io`] when the I/O would have
/// blocked: the readiness was cleared; wait again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryIoError(());

impl fmt::Display for TryIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the I/O would have blocked; the readiness was cleared")
    }
}

impl std::error::Error for TryIoError {}

impl<'a, T: AsRawFd> AsyncFdReadyGuard<'a, T> {
    fn new(fd: &'a AsyncFd<T>, seen: ReadyEvent, direction: Direction) -> Self {
        AsyncFdReadyGuard {
            fd,
            seen,
            direction,
            done: false,
        }
    }

    /// The [`AsyncFd`] this readiness is of.
    pub fn get_ref(&self) -> &'a AsyncFd<T> {
        self.fd
    }

    /// Says the descriptor is no longer ready (you saw `WouldBlock`): the
    /// next wait sleeps until the kernel reports a new edge. An edge that
    /// came after this guard's readiness is kept.
    pub fn clear_ready(&mut self) {
        self.fd
            .io
            .registration()
            .clear_readiness(self.seen, self.direction);
        self.done = true;
    }

    /// Keeps the readiness (what dropping the guard does).
    pub fn retain_ready(&mut self) {
        self.fd.io.registration().pass_on(self.direction);
        self.done = true;
    }

    /// Runs `f` (one non-blocking I/O call): on `WouldBlock`, clears the
    /// readiness and gives `Err(TryIoError)` (wait again); otherwise gives
    /// `f`'s result, and the readiness stays.
    ///
    /// # Errors
    ///
    /// [`TryIoError`] when `f` would have blocked.
    pub fn try_io<R>(
        &mut self,
        f: impl FnOnce(&'a AsyncFd<T>) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            result => Ok(result),
        }
    }
}

impl<T: AsRawFd> Drop for AsyncFdReadyGuard<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            self.retain_ready();
        }
    }
}

impl<T: AsRawFd> fmt::Debug for AsyncFdReadyGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFdReadyGuard")
            .field("fd", &self.fd.as_raw_fd())
            .field("direction", &self.direction)
            .finish()
    }
}
