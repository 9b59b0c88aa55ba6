//! [`UnixListener`]: accepts Unix-domain stream connections.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::{SocketAddr, SocketFile, UnixStream};
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// A listening Unix-domain stream socket. Many tasks may `accept` on one
/// listener (share it by reference or in an `Arc`); each connection goes
/// to one of them.
///
/// Dropping a listener made by [`bind`](Self::bind) removes its socket
/// file if the path still names this socket (see the
/// [module docs](super#socket-files)).
///
/// # Examples
///
/// ```
/// use waitrt::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("rt-doc-listener-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let listener = UnixListener::bind(&path)?;
///     let client = UnixStream::connect(&path).await?;
///     let (server, _) = listener.accept().await?;
///     assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
///     assert_eq!(server.local_addr()?.as_pathname(), Some(path.as_path()));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// assert!(!path.exists(), "the listener removed its socket file");
/// std::fs::remove_dir(&dir).unwrap();
/// ```
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
    /// Dropped after `io`: the file goes once the socket is closed.
    file: Option<SocketFile>,
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it. Synchronous:
    /// there is no name to resolve.
    ///
    /// # Errors
    ///
    /// As `bind(2)` (for example `AddrInUse` if `path` exists), or an
    /// error outside a runtime with I/O (the socket file is then removed
    /// again).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let listener = mio::net::UnixListener::bind_addr(&super::socket_addr(path)?)?;
        // On a registration error `file` is dropped, removing the file.
        let file = SocketFile::new(path);
        UnixListener::new(listener, file)
    }

    fn new(listener: mio::net::UnixListener, file: Option<SocketFile>) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::with_interest(
                listener,
                mio::Interest::READABLE,
                IoNames::UNIX_LISTENER,
            )?,
            file,
        })
    }

    /// Wraps a listening std socket (it is switched to non-blocking). Its
    /// socket file is never removed by this listener.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::new(mio::net::UnixListener::from_std(listener), None)
    }

    /// Deregisters the listener and returns it as a *blocking* std one.
    /// The socket file stays: std never removes it.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let UnixListener { io, file } = self;
        if let Some(file) = file {
            file.keep();
        }
        let listener = std::os::unix::net::UnixListener::from(OwnedFd::from(io.into_inner()));
        listener.set_nonblocking(false)?;
        Ok(listener)
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// As `accept(2)` (for example when out of file descriptors), or if
    /// the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// connection was accepted; it stays queued for the next `accept`.
    #[track_caller]
    pub fn accept<'a>(&'a self) -> impl Future<Output = io::Result<(UnixStream, SocketAddr)>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.io.source();
            let (stream, addr) = self
                .io
                .registration()
                .async_io_at(site, Direction::Read, || source.accept())
                .await?;
            Ok((UnixStream::new(stream)?, addr))
        }
    }

    /// [`accept`](Self::accept) for hand-written futures: only the task
    /// that polled last is woken.
    ///
    /// # Errors
    ///
    /// As `accept`.
    #[track_caller]
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let source = self.io.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.accept())
            .map(|result| {
                let (stream, addr) = result?;
                Ok((UnixStream::new(stream)?, addr))
            })
    }

    /// The connections as a [`Stream`]; it never ends, and yields accept
    /// errors as items.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.source().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// If reading the option fails.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.source().take_error()
    }
}

/// The stream of [`UnixListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|result| Some(result.map(|(stream, _)| stream)))
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.source().as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.source().as_fd()
    }
}

impl TryFrom<std::os::unix::net::UnixListener> for UnixListener {
    type Error = io::Error;
    fn try_from(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        UnixListener::from_std(listener)
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
