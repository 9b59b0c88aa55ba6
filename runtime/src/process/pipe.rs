//! A child's standard streams: std's pipe ends made non-blocking and
//! registered with the reactor (`mio::unix::pipe`), one direction each.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use mio::unix::pipe::{Receiver, Sender};
use mio::Interest;

use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::registration::Moved;
use crate::reactor::PollEvented;

/// The write end of a child's stdin: [`AsyncWrite`] (use
/// `futures::AsyncWriteExt`). `close` ([`AsyncWrite::poll_close`])
/// (or dropping it) closes the pipe: the child reads EOF.
pub struct ChildStdin {
    /// `None` once closed.
    io: Option<PollEvented<Sender>>,
}

/// The read end of a child's stdout: [`AsyncRead`] (use
/// `futures::AsyncReadExt`).
pub struct ChildStdout {
    io: PollEvented<Receiver>,
}

/// The read end of a child's stderr: [`AsyncRead`] (use
/// `futures::AsyncReadExt`).
pub struct ChildStderr {
    io: PollEvented<Receiver>,
}

impl ChildStdin {
    pub(super) fn new(std: std::process::ChildStdin) -> io::Result<ChildStdin> {
        let sender = Sender::from(std);
        sender.set_nonblocking(true)?;
        Ok(ChildStdin {
            io: Some(PollEvented::with_interest(
                sender,
                Interest::WRITABLE,
                IoNames::CHILD_PIPE,
            )?),
        })
    }

    fn io(&self) -> io::Result<&PollEvented<Sender>> {
        self.io
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin is closed"))
    }
}

impl AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = self.io()?;
        let mut source = io.source();
        io.registration()
            .poll_stream_io(cx, Direction::Write, buf.len(), || {
                source.write(buf).map(Moved::bytes)
            })
    }

    /// Nothing is buffered: always ready.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the pipe (the child reads EOF); later writes fail with
    /// `BrokenPipe`.
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io = None;
        Poll::Ready(Ok(()))
    }
}

/// A child's output pipe read with its wait listed at a given site (for
/// `Child::wait_with_output`, whose caller's line it is).
pub(super) trait ReadAt {
    fn poll_read_at(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        site: &'static Location<'static>,
    ) -> Poll<io::Result<usize>>;
}

/// The reader impls, the same for stdout and stderr.
macro_rules! impl_reader {
    ($ty:ident, $std:ty) => {
        impl $ty {
            pub(super) fn new(std: $std) -> io::Result<$ty> {
                let receiver = Receiver::from(std);
                receiver.set_nonblocking(true)?;
                // Empty until the child writes: the first read waits for
                // the reactor's edge instead of trying (`EAGAIN`) first.
                Ok($ty {
                    io: PollEvented::with_interest_unready(
                        receiver,
                        Interest::READABLE,
                        IoNames::CHILD_PIPE,
                    )?,
                })
            }
        }

        impl ReadAt for $ty {
            fn poll_read_at(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [u8],
                site: &'static Location<'static>,
            ) -> Poll<io::Result<usize>> {
                let io = &self.io;
                let mut source = io.source();
                io.registration()
                    .poll_stream_io_at(cx, site, Direction::Read, buf.len(), || {
                        source.read(buf).map(Moved::bytes)
                    })
            }
        }

        impl AsyncRead for $ty {
            /// Listed here: a trait method's caller is a combinator.
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_at(cx, buf, Location::caller())
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.io.source().as_raw_fd()
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.io.source().as_fd()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.as_raw_fd())
                    .finish()
            }
        }
    };
}

impl_reader!(ChildStdout, std::process::ChildStdout);
impl_reader!(ChildStderr, std::process::ChildStderr);

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("fd", &self.io.as_ref().map(|io| io.source().as_raw_fd()))
            .finish()
    }
}
