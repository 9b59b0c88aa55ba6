//! [`UnixDatagram`]: a Unix-domain datagram socket.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::path::Path;
use std::task::{Context, Poll};

use super::{SocketAddr, SocketFile};
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// A Unix-domain datagram socket. Every operation takes `&self`: share
/// one socket between tasks in an `Arc`; each datagram goes to exactly
/// one receiving task. On Linux, Unix datagrams arrive in order and are
/// not dropped: a send to a full receiver waits. One longer than the
/// receive buffer is truncated.
///
/// A caveat from the kernel: an *unconnected* sender waiting on a full
/// receiver is woken only as its own queued datagrams are consumed (Linux
/// tracks a full peer only for connected sockets), so when many senders
/// share one busy receiver, have each [`connect`](Self::connect) first.
///
/// Dropping a socket made by [`bind`](Self::bind) removes its socket file
/// if the path still names this socket (see the
/// [module docs](super#socket-files)).
///
/// # Examples
///
/// ```
/// use waitrt::net::UnixDatagram;
///
/// let dir = std::env::temp_dir().join(format!("rt-doc-dgram-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let server = UnixDatagram::bind(&path)?;
///     let client = UnixDatagram::unbound()?;
///     client.send_to(b"ping", &path).await?;
///     let mut buf = [0; 16];
///     let (n, from) = server.recv_from(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     assert!(from.is_unnamed(), "the client never bound a path");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// std::fs::remove_dir(&dir).unwrap(); // the socket file is gone already
/// ```
pub struct UnixDatagram {
    io: PollEvented<mio::net::UnixDatagram>,
    /// Dropped after `io`: the file goes once the socket is closed.
    file: Option<SocketFile>,
}

impl UnixDatagram {
    /// Creates a socket bound to a new socket file at `path`.
    ///
    /// # Errors
    ///
    /// As `bind(2)` (for example `AddrInUse` if `path` exists), or an
    /// error outside a runtime with I/O (the socket file is then removed
    /// again).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let socket = mio::net::UnixDatagram::bind_addr(&super::socket_addr(path)?)?;
        // On a registration error `file` is dropped, removing the file.
        let file = SocketFile::new(path);
        UnixDatagram::new(socket, file)
    }

    /// A socket bound to no address: it can send, and receive replies only
    /// once [`connect`](Self::connect)ed or paired.
    ///
    /// # Errors
    ///
    /// As `socket(2)`, or outside a runtime with I/O.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::new(mio::net::UnixDatagram::unbound()?, None)
    }

    /// Two connected, unnamed sockets (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// As `socketpair(2)`, or outside a runtime with I/O.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::new(a, None)?, UnixDatagram::new(b, None)?))
    }

    fn new(socket: mio::net::UnixDatagram, file: Option<SocketFile>) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: PollEvented::new(socket, IoNames::UNIX_DATAGRAM)?,
            file,
        })
    }

    /// Wraps a std socket (it is switched to non-blocking). Its socket
    /// file, if any, is never removed by this value.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::new(mio::net::UnixDatagram::from_std(socket), None)
    }

    /// Deregisters the socket and returns it as a *blocking* std socket.
    /// The socket file stays: std never removes it.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        let UnixDatagram { io, file } = self;
        if let Some(file) = file {
            file.keep();
        }
        let socket = std::os::unix::net::UnixDatagram::from(OwnedFd::from(io.into_inner()));
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    fn source(&self) -> &mio::net::UnixDatagram {
        self.io.source()
    }

    /// Sets the default peer to the socket at `path`: [`send`](Self::send)
    /// goes there, and only its datagrams are received. Synchronous.
    ///
    /// # Errors
    ///
    /// As `connect(2)` (for example `NotFound`).
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.source().connect(path)
    }

    /// Sends `buf` as one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` without a peer, or as `send(2)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram is sent whole or not at all, and if the
    /// future is dropped before it completes, nothing was sent.
    #[track_caller]
    pub fn send<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Write, || source.send(buf))
                .await
        }
    }

    /// Receives one datagram into `buf`; a longer one is truncated.
    ///
    /// # Errors
    ///
    /// As `recv(2)`, or if the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// datagram was taken from the socket (none is lost).
    #[track_caller]
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.recv(buf))
                .await
        }
    }

    /// Sends `buf` as one datagram to the socket at `path`.
    ///
    /// # Errors
    ///
    /// As `sendto(2)` (for example `NotFound` or `ConnectionRefused`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram is sent whole or not at all, and if the
    /// future is dropped before it completes, nothing was sent.
    #[track_caller]
    pub fn send_to<'a, P: AsRef<Path> + 'a>(
        &'a self,
        buf: &'a [u8],
        path: P,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let (source, path) = (self.source(), path.as_ref());
            self.io
                .registration()
                .async_io_at(site, Direction::Write, || source.send_to(buf, path))
                .await
        }
    }

    /// Receives one datagram and its sender's address (unnamed for an
    /// unbound sender); a longer datagram is truncated.
    ///
    /// # Errors
    ///
    /// As `recvfrom(2)`, or if the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// datagram was taken from the socket (none is lost).
    #[track_caller]
    pub fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.recv_from(buf))
                .await
        }
    }

    /// [`send`](Self::send) for hand-written futures: only the task that
    /// polled last is woken.
    ///
    /// # Errors
    ///
    /// As `send`.
    #[track_caller]
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Write, || source.send(buf))
    }

    /// [`recv`](Self::recv) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As `recv`.
    #[track_caller]
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.recv(buf))
    }

    /// [`send_to`](Self::send_to) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As `send_to`.
    #[track_caller]
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        path: impl AsRef<Path>,
    ) -> Poll<io::Result<usize>> {
        let (source, path) = (self.source(), path.as_ref());
        self.io
            .registration()
            .poll_io(cx, Direction::Write, || source.send_to(buf, path))
    }

    /// [`recv_from`](Self::recv_from) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    #[track_caller]
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.recv_from(buf))
    }

    /// [`recv_from`](Self::recv_from) without waiting: `WouldBlock` if
    /// nothing is queued.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `recv_from`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Read, || source.recv_from(buf))
    }

    /// [`recv`](Self::recv) without waiting: `WouldBlock` if nothing is
    /// queued. For a connected socket.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `recv`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Read, || source.recv(buf))
    }

    /// [`send`](Self::send) without waiting: `WouldBlock` if the receiver
    /// is full. For a connected socket.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `send`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Write, || source.send(buf))
    }

    /// [`send_to`](Self::send_to) without waiting: `WouldBlock` if the
    /// receiver is full.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `send_to`.
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let (source, path) = (self.source(), path.as_ref());
        self.io
            .registration()
            .try_io(Direction::Write, || source.send_to(buf, path))
    }

    /// Waits until a receive would not block. The readiness may be stale,
    /// as tokio's may: a new socket starts out ready, and a datagram may
    /// be gone by the time you receive, so receive with [`try_recv_from`](Self::try_recv_from) and wait
    /// again on `WouldBlock` (which clears it).
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. Dropping it consumes no readiness, and a
    /// wake-up it had received passes on to the next waiter; so does one
    /// it completes with (it moves no data).
    #[track_caller]
    pub fn readable<'a>(&'a self) -> impl Future<Output = io::Result<()>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.io.ready_at(site, Direction::Read).await }
    }

    /// Waits until a send would not block.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. Dropping it consumes no readiness, and a
    /// wake-up it had received passes on to the next waiter; so does one
    /// it completes with (it moves no data).
    #[track_caller]
    pub fn writable<'a>(&'a self) -> impl Future<Output = io::Result<()>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.io.ready_at(site, Direction::Write).await }
    }

    /// The bound address (unnamed if not bound).
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixDatagram::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` without a peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source().peer_addr()
    }

    /// Shuts down the read side, the write side, or both (`shutdown(2)`).
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixDatagram::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source().shutdown(how)
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// If reading the option fails.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.source().as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source().as_fd()
    }
}

impl TryFrom<std::os::unix::net::UnixDatagram> for UnixDatagram {
    type Error = io::Error;
    fn try_from(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(socket)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
