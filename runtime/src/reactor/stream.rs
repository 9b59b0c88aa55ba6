//! Byte-stream I/O (TCP and Unix streams) over a [`PollEvented`]: the
//! read, write and readiness methods both stream types share.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::task::{Context, Poll};

use super::readiness::Direction;
use super::registration::Moved;
use super::PollEvented;

impl<E> PollEvented<E>
where
    E: mio::event::Source,
    for<'a> &'a E: Read + Write,
{
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        let len = buf.len();
        self.registration()
            .poll_stream_io(cx, Direction::Read, len, || {
                source.read(buf).map(Moved::bytes)
            })
    }

    pub(crate) fn poll_read_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        let len = bufs.iter().map(|b| b.len()).sum();
        self.registration()
            .poll_stream_io(cx, Direction::Read, len, || {
                source.read_vectored(bufs).map(Moved::bytes)
            })
    }

    /// A read through `op`, which may also report whether it emptied the
    /// receive queue (TCP's `TCP_INQ` reads); `len`: the bytes asked for.
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

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        self.registration()
            .poll_stream_io(cx, Direction::Write, buf.len(), || {
                source.write(buf).map(Moved::bytes)
            })
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut source = self.source();
        let len = bufs.iter().map(|b| b.len()).sum();
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
