//! [`TcpStream`]: a connected TCP socket.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use socket2::SockRef;

use super::inq::InqReads;
use super::split::{self, OwnedReadHalf, OwnedWriteHalf};
use crate::net::addr::{each_addr, ToSocketAddrs};
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::{vectored_len, PollEvented};

/// A TCP connection, read and written through [`futures_io::AsyncRead`] and
/// [`futures_io::AsyncWrite`] (use `futures::AsyncReadExt` and friends).
///
/// `&TcpStream` implements both traits too, so one task can read while
/// another writes; [`into_split`](Self::into_split) gives owned halves.
/// To set options before connecting (or bind first), use a
/// [`TcpSocket`](crate::net::TcpSocket).
///
/// # Examples
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use waitrt::net::{TcpListener, TcpStream};
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"ping").await?;
///     client.close().await?; // shuts down the write side: EOF for the server
///     let mut got = String::new();
///     server.read_to_string(&mut got).await?;
///     assert_eq!(got, "ping");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpStream {
    pub(super) io: PollEvented<mio::net::TcpStream>,
    pub(super) inq: InqReads,
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn.
    ///
    /// # Errors
    ///
    /// The last address's error if none accepts (for example
    /// `ConnectionRefused`), or an error outside a runtime with I/O.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt and closes the socket being
    /// connected; nothing else is lost. Call `connect` again to retry.
    #[track_caller]
    pub fn connect(addr: impl ToSocketAddrs) -> impl Future<Output = io::Result<TcpStream>> {
        // The wait is listed at our caller's site.
        TcpStream::connect_at(addr, Location::caller())
    }

    async fn connect_at(
        addr: impl ToSocketAddrs,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        each_addr(&addr, |addr| TcpStream::connect_addr(addr, site)).await
    }

    /// [`connect`](Self::connect), giving up after `timeout` with
    /// [`io::ErrorKind::TimedOut`]. Needs the runtime's timers.
    ///
    /// # Errors
    ///
    /// As `connect`, plus `TimedOut`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt and closes the socket being
    /// connected; nothing else is lost. Call `connect` again to retry.
    #[track_caller]
    pub fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<TcpStream>> {
        TcpStream::connect_timeout_at(addr, timeout, Location::caller())
    }

    async fn connect_timeout_at(
        addr: impl ToSocketAddrs,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        match crate::time::timeout(timeout, TcpStream::connect_at(addr, site)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            )),
        }
    }

    async fn connect_addr(
        addr: SocketAddr,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        TcpStream::connected(mio::net::TcpStream::connect(addr)?, site).await
    }

    /// Registers `stream`, whose non-blocking `connect(2)` has started,
    /// and waits until it is connected (or failed), the wait listed at
    /// `site`.
    pub(super) async fn connected(
        stream: mio::net::TcpStream,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        let stream = TcpStream::new(stream)?;
        // Writable means connected, or failed: the socket error tells.
        let source = stream.io.source();
        let registration = stream.io.registration();
        registration
            .async_io_at(site, Direction::Write, || {
                if let Some(err) = source.take_error()? {
                    return Err(err);
                }
                match source.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(err) => Err(err),
                }
            })
            .await?;
        Ok(stream)
    }

    pub(super) fn new(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(stream, IoNames::TCP_STREAM)?,
            inq: InqReads::new(),
        })
    }

    /// Wraps a connected std stream (it is switched to non-blocking).
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::new(mio::net::TcpStream::from_std(stream))
    }

    /// Deregisters the stream and returns it as a *blocking* std stream.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.inq.turn_off(self.io.source());
        let stream = std::net::TcpStream::from(OwnedFd::from(self.io.into_inner()));
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    pub(super) fn source(&self) -> &mio::net::TcpStream {
        self.io.source()
    }

    /// This end's address.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::peer_addr`].
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source().peer_addr()
    }

    /// Shuts down the read side, the write side, or both
    /// (`shutdown(2)`). Shutting down writes sends FIN: the peer reads EOF.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::set_nodelay`].
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.source().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::nodelay`].
    pub fn nodelay(&self) -> io::Result<bool> {
        self.source().nodelay()
    }

    /// Sets `SO_KEEPALIVE`: the kernel probes the connection when idle
    /// and fails it (reads and writes get an error) if the peer is gone.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        SockRef::from(self).set_keepalive(keepalive)
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn keepalive(&self) -> io::Result<bool> {
        SockRef::from(self).keepalive()
    }

    /// Sets `SO_LINGER`: see
    /// [`TcpSocket::set_linger`](crate::net::TcpSocket::set_linger).
    /// `Some(Duration::ZERO)` makes
    /// dropping the stream reset the connection; a longer linger makes the
    /// drop block the thread for up to that long.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(self).set_linger(linger)
    }

    /// `SO_LINGER` (whole seconds).
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self).linger()
    }

    /// Sets the IP time-to-live.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpStream::ttl`].
    pub fn ttl(&self) -> io::Result<u32> {
        self.source().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// If reading the option fails.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }

    /// Reads without consuming: the next read returns the same bytes.
    ///
    /// # Errors
    ///
    /// As a read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking consumes nothing.
    #[track_caller]
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.peek(buf))
                .await
        }
    }

    /// [`peek`](Self::peek) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As a read.
    #[track_caller]
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.peek(buf))
    }

    /// Waits until a read would not block (data, EOF or an error). The
    /// readiness may be stale, as tokio's may: a new socket starts out
    /// ready, and data may be gone by the time you read, so read with
    /// [`try_read`](Self::try_read) and wait again on `WouldBlock` (which
    /// clears it).
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

    /// Waits until a write would not block.
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

    /// Reads what is there without waiting: `WouldBlock` if nothing is.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as a read.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// Writes what fits without waiting: `WouldBlock` if nothing does.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as a write.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    /// Splits into halves that can move to different tasks; dropping the
    /// write half shuts down the write side.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::split_owned(self)
    }

    #[track_caller]
    pub(super) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io
            .poll_read_reporting(cx, len, |source| self.inq.read(source, buf))
    }

    /// A read into memory that may be uninitialised (hyper's read buffer,
    /// see `hyper::Io`): the syscall only writes it.
    #[cfg(all(feature = "hyper", any(target_os = "linux", target_os = "android")))]
    #[track_caller]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io
            .poll_read_reporting(cx, len, |source| self.inq.read_uninit(source, buf))
    }

    #[track_caller]
    pub(super) fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = vectored_len(bufs);
        self.io
            .poll_read_reporting(cx, len, |source| self.inq.read_vectored(source, bufs))
    }

    #[track_caller]
    pub(super) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    #[track_caller]
    pub(super) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }
}

/// The `futures::io` impls, for `TcpStream` and `&TcpStream` alike.
macro_rules! impl_async_io {
    ($($ty:ty),*) => {$(
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_priv(cx, buf)
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_vectored_priv(cx, bufs)
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            /// Nothing is buffered: always ready.
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Shuts down the write side (the peer reads EOF).
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(match self.shutdown(Shutdown::Write) {
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
                    result => result,
                })
            }
        }
    )*};
}

impl_async_io!(TcpStream, &TcpStream);

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source().as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source().as_fd()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;
    fn try_from(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(stream)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
