//! [`UnixStream`]: a connected Unix-domain stream socket.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::split::{self, OwnedReadHalf, OwnedWriteHalf};
use super::SocketAddr;
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// A Unix-domain stream connection, read and written through
/// [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`] (use
/// `futures::AsyncReadExt` and friends).
///
/// `&UnixStream` implements both traits too, so one task can read while
/// another writes; [`into_split`](Self::into_split) gives owned halves.
///
/// # Examples
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use waitrt::net::UnixStream;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.write_all(b"ping").await?;
///     a.close().await?; // shuts down the write side: EOF for `b`
///     let mut got = String::new();
///     b.read_to_string(&mut got).await?;
///     assert_eq!(got, "ping");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct UnixStream {
    io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// As `connect(2)`: `NotFound` if nothing is at `path`,
    /// `ConnectionRefused` if no one listens there, `WouldBlock` if the
    /// listener's backlog is full; or an error outside a runtime with I/O.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt and closes the socket being
    /// connected; nothing else is lost. Call `connect` again to retry.
    #[track_caller]
    pub fn connect(path: impl AsRef<Path>) -> impl Future<Output = io::Result<UnixStream>> {
        // The wait is listed at our caller's site.
        UnixStream::connect_at(path, Location::caller())
    }

    async fn connect_at(
        path: impl AsRef<Path>,
        site: &'static Location<'static>,
    ) -> io::Result<UnixStream> {
        let address = super::socket_addr(path.as_ref())?;
        let stream = UnixStream::new(mio::net::UnixStream::connect_addr(&address)?)?;
        // Writable means connected, or failed: the socket error tells.
        let source = stream.io.source();
        stream
            .io
            .registration()
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

    /// Two connected, unnamed sockets (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// As `socketpair(2)`, or outside a runtime with I/O.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::new(a)?, UnixStream::new(b)?))
    }

    pub(super) fn new(stream: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: PollEvented::new(stream, IoNames::UNIX_STREAM)?,
        })
    }

    /// Wraps a connected std stream (it is switched to non-blocking).
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::new(mio::net::UnixStream::from_std(stream))
    }

    /// Deregisters the stream and returns it as a *blocking* std stream.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let stream = std::os::unix::net::UnixStream::from(OwnedFd::from(self.io.into_inner()));
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    fn source(&self) -> &mio::net::UnixStream {
        self.io.source()
    }

    /// This end's address (unnamed unless it was bound).
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixStream::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixStream::peer_addr`].
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source().peer_addr()
    }

    /// Shuts down the read side, the write side, or both
    /// (`shutdown(2)`). Shutting down writes makes the peer read EOF.
    ///
    /// # Errors
    ///
    /// As [`std::os::unix::net::UnixStream::shutdown`].
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
        self.io.poll_read(cx, buf)
    }

    #[track_caller]
    pub(super) fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read_vectored(cx, bufs)
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

    /// Shuts down the write side; a peer that is already gone is fine.
    pub(super) fn close_write(&self) -> io::Result<()> {
        match self.shutdown(Shutdown::Write) {
            Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
            result => result,
        }
    }
}

/// The `futures::io` impls, for `UnixStream` and `&UnixStream` alike.
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
                Poll::Ready(self.close_write())
            }
        }
    )*};
}

impl_async_io!(UnixStream, &UnixStream);

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.source().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source().as_fd()
    }
}

impl TryFrom<std::os::unix::net::UnixStream> for UnixStream {
    type Error = io::Error;
    fn try_from(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_std(stream)
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
