//! [`duplex`]: an in-memory, bounded, bidirectional byte stream whose two
//! ends implement the `futures::io` traits, for running network code under
//! [`Check`](super::Check) without real sockets.
//!
//! Each direction is a bounded buffer with two wait queues (readers wait
//! for data or EOF, writers for room), so every sleep and wake goes through
//! `waitq` and the toolkit's decision points: the schedules it explores
//! include every interleaving of the two ends' reads and writes. Dropping
//! or closing an end is EOF for the other end's reads and `BrokenPipe` for
//! its writes, as with a TCP peer that went away.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::sync::{PollWaiter, WaitQueue};

/// One direction of the pipe.
#[derive(Default)]
struct Pipe {
    state: Mutex<PipeState>,
    /// Readers wait here for data or EOF.
    readable: WaitQueue,
    /// Writers wait here for room, or for the reader to go away.
    writable: WaitQueue,
}

#[derive(Default)]
struct PipeState {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The writing end closed: reads drain, then see EOF.
    write_closed: bool,
    /// The reading end is gone: writes fail.
    read_closed: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close_write(&self) {
        self.lock().write_closed = true;
        self.readable.wake_up_all();
    }

    fn close_read(&self) {
        self.lock().read_closed = true;
        self.writable.wake_up_all();
    }
}

/// A pipe direction's reader queue, owned (what a [`PollWaiter`] stores).
struct Readable(Arc<Pipe>);
/// A pipe direction's writer queue, owned.
struct Writable(Arc<Pipe>);

impl std::ops::Deref for Readable {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        &self.0.readable
    }
}

impl std::ops::Deref for Writable {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        &self.0.writable
    }
}

/// One end of a [`duplex`] pipe: reads what the other end writes, and the
/// other way round.
pub struct DuplexStream {
    read: Arc<Pipe>,
    write: Arc<Pipe>,
    read_waiter: PollWaiter<Readable>,
    write_waiter: PollWaiter<Writable>,
}

/// Two connected in-memory ends; each direction buffers at most
/// `capacity` bytes (a writer waits for room beyond that).
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use waitrt::test_util::{duplex, Check};
///
/// Check::new().seeds(32).run(|| async {
///     let (mut client, mut server) = duplex(4);
///     let echo = waitrt::spawn(async move {
///         let mut buf = [0; 16];
///         let n = server.read(&mut buf).await.unwrap();
///         server.write_all(&buf[..n]).await.unwrap();
///     });
///     client.write_all(b"ping").await.unwrap();
///     let mut back = [0; 4];
///     client.read_exact(&mut back).await.unwrap();
///     assert_eq!(&back, b"ping");
///     echo.await.unwrap();
/// });
/// ```
pub fn duplex(capacity: usize) -> (DuplexStream, DuplexStream) {
    assert!(
        capacity > 0,
        "a duplex pipe needs room for at least one byte"
    );
    let pipe = || {
        let pipe = Pipe::default();
        pipe.lock().capacity = capacity;
        Arc::new(pipe)
    };
    let (a_to_b, b_to_a) = (pipe(), pipe());
    let end = |read: &Arc<Pipe>, write: &Arc<Pipe>| DuplexStream {
        read_waiter: PollWaiter::new(Readable(read.clone())),
        write_waiter: PollWaiter::new(Writable(write.clone())),
        read: read.clone(),
        write: write.clone(),
    };
    (end(&b_to_a, &a_to_b), end(&a_to_b, &b_to_a))
}

impl AsyncRead for DuplexStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        let pipe = this.read.clone();
        let ready = || {
            let state = pipe.lock();
            !state.buf.is_empty() || state.write_closed
        };
        if this.read_waiter.poll_wait_event(cx, ready).is_pending() {
            return Poll::Pending;
        }
        let n = {
            let mut state = pipe.lock();
            let n = buf.len().min(state.buf.len());
            for (slot, byte) in buf.iter_mut().zip(state.buf.drain(..n)) {
                *slot = byte;
            }
            n
        };
        if n > 0 {
            pipe.writable.wake_up();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for DuplexStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        let pipe = this.write.clone();
        let ready = || {
            let state = pipe.lock();
            state.buf.len() < state.capacity || state.read_closed || state.write_closed
        };
        if this.write_waiter.poll_wait_event(cx, ready).is_pending() {
            return Poll::Pending;
        }
        let n = {
            let mut state = pipe.lock();
            if state.read_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the other end of the duplex pipe is gone",
                )));
            }
            if state.write_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "this end of the duplex pipe was closed for writing",
                )));
            }
            let n = buf.len().min(state.capacity - state.buf.len());
            state.buf.extend(&buf[..n]);
            n
        };
        pipe.readable.wake_up();
        Poll::Ready(Ok(n))
    }

    /// Nothing is buffered on this side: always ready.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes this end for writing: the other end reads EOF after the
    /// buffered bytes.
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.close_write();
        Poll::Ready(Ok(()))
    }
}

impl Drop for DuplexStream {
    fn drop(&mut self) {
        self.write.close_write();
        self.read.close_read();
    }
}

impl fmt::Debug for DuplexStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unread, capacity) = {
            let state = self.read.lock();
            (state.buf.len(), state.capacity)
        };
        f.debug_struct("DuplexStream")
            .field("unread", &unread)
            .field("capacity", &capacity)
            .finish_non_exhaustive()
    }
}
