//! Byte-stream I/O (TCP and Unix streams) over a [`PollEvented`]: the
//! read, write and readiness methods both stream types share.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::task::{Context, Poll};

use super::readiness::Direction;
use super::registration::Moved;
use super::PollEvented;

/// The most buffers one vectored syscall takes (Linux's `UIO_MAXIOV`);
/// std's `read_vectored` / `write_vectored` pass no more than this.
pub(crate) const MAX_IOVECS: usize = 1024;

/// The bytes one vectored syscall over `bufs` can move: the buffers past
/// [`MAX_IOVECS`] are not passed, so a transfer that fills the ones that
/// are is not short (and must not clear the readiness).
pub(crate) fn vectored_len<B: std::ops::Deref<Target = [u8]>>(bufs: &[B]) -> usize {
    bufs.iter().take(MAX_IOVECS).map(|buf| buf.len()).sum()
}

impl<E> PollEvented<E>
where
    E: mio::event::Source,
    for<'a> &'a E: Read + Write,
{
    #[track_caller]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_reporting(cx, buf.len(), |mut source| {
            source.read(buf).map(Moved::bytes)
        })
    }

    #[track_caller]
    pub(crate) fn poll_read_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_reporting(cx, vectored_len(bufs), |mut source| {
            source.read_vectored(bufs).map(Moved::bytes)
        })
    }

    /// A read through `op`, which may also report whether it emptied the
    /// receive queue (TCP's `TCP_INQ` reads); `len`: the bytes asked for.
    #[track_caller]
    pub(crate) fn poll_read_reporting(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        mut op: impl FnMut(&E) -> io::Result<Moved>,
    ) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.registration()
            .poll_stream_io(cx, Direction::Read, len, || op(source))
    }

    #[track_caller]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        self.registration()
            .poll_stream_io(cx, Direction::Write, buf.len(), || {
                source.write(buf).map(Moved::bytes)
            })
    }

    #[track_caller]
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        let len = vectored_len(bufs);
        self.registration()
            .poll_stream_io(cx, Direction::Write, len, || {
                source.write_vectored(bufs).map(Moved::bytes)
            })
    }

    /// Reads what is there without waiting: `WouldBlock` if nothing is.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut source = self.source();
        self.registration()
            .try_io(Direction::Read, || source.read(buf))
    }

    /// Writes what fits without waiting: `WouldBlock` if nothing does.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut source = self.source();
        self.registration()
            .try_io(Direction::Write, || source.write(buf))
    }
}
