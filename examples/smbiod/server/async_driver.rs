//! The embedded server on our runtime: an accept loop on
//! [`waitrt::net::TcpListener`], one task per connection, each frame
//! through [`Connection::handle`]. Replies are batched: they are flushed
//! when no further complete request is already buffered, so a pipelining
//! client gets many replies per write.
//!
//! A client that has not sent its NEGOTIATE, or the rest of a frame it
//! began, within [`ShareConfig::frame_deadline`] is dropped; a frame's
//! buffer grows as its data arrives, never to the announced length up
//! front. So is one that reads none of its replies for as long: the
//! writer gives up once a write makes no progress for the deadline, and
//! the reader stops with it.
//!
//! A peer IP address may have [`ShareConfig::max_conns_per_peer`]
//! connections open; the accept loop closes any more at once (see
//! [`peers`](super::peers)).
//!
//! Backpressure: while more than [`MAX_QUEUED_REPLIES`] bytes of replies
//! wait for the writer, the reader reads no further request (it sleeps on
//! the connection's `replies_drained` wait queue, woken by the writer), so
//! a client that sends requests but never reads its replies is stopped by
//! TCP flow control instead of growing the server's memory.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use waitq::WaitQueue;
use waitrt::net::{AcceptBackoff, TcpListener, TcpStream};
use waitrt::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use waitrt::task::JoinHandle;

use super::{Connection, ShareConfig};
use crate::wire::frame;

/// A frame's buffer starts this large and grows as its data arrives.
const READ_AHEAD: usize = 256 * 1024;
/// Flush replies once this many bytes are pending.
pub(super) const FLUSH_AT: usize = 1 << 20;
/// Reply bytes queued for the writer above which the reader stops reading
/// requests until the writer has sent enough of them.
pub(super) const MAX_QUEUED_REPLIES: usize = 4 << 20;

/// The replies of one connection queued for its writer, counted in bytes.
#[derive(Debug)]
struct Backlog {
    /// Bytes handed to the writer and not yet written.
    bytes: AtomicUsize,
    /// The writer has ended (failed or finished): nothing drains any more.
    writer_gone: AtomicBool,
    /// The reader sleeps here while the backlog is too large.
    drained: WaitQueue,
    /// The reader's frame read races a sleep here, woken once the writer
    /// ends (not by every write, as `drained` is).
    ended: WaitQueue,
}

impl Backlog {
    /// Counts `frame` in and hands it to the writer; false if the writer
    /// is gone.
    fn send(&self, share: &ShareConfig, tx: &UnboundedSender<Vec<u8>>, frame: Vec<u8>) -> bool {
        let len = frame.len();
        let now = self.bytes.fetch_add(len, Ordering::AcqRel) + len;
        share
            .state
            .peak_queued_replies
            .fetch_max(now, Ordering::Relaxed);
        if tx.send(frame).is_err() {
            self.written(len);
            return false;
        }
        true
    }

    /// The writer sent `len` bytes (or dropped them).
    fn written(&self, len: usize) {
        let before = self.bytes.fetch_sub(len, Ordering::AcqRel);
        if before - len <= MAX_QUEUED_REPLIES {
            self.drained.wake_up_all();
        }
    }

    /// Whether the reader may read another request.
    fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Acquire) <= MAX_QUEUED_REPLIES || self.writer_ended()
    }

    /// Whether the writer has ended.
    fn writer_ended(&self) -> bool {
        self.writer_gone.load(Ordering::Acquire)
    }

    /// Resolves once the writer has ended.
    async fn writer_end(&self) {
        let _ = self.ended.wait_event(|| self.writer_ended()).await;
    }
}

/// Binds `addr` (port 0: ephemeral) and serves `share` from an accept
/// task on the current runtime; returns the bound address and the task.
pub async fn spawn(addr: &str, share: ShareConfig) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = waitrt::spawn(async move {
        // Out of descriptors (a client holding thousands of handles), the
        // loop pauses instead of spinning, and logs once per episode.
        let mut backoff = AcceptBackoff::new();
        loop {
            match listener.accept_with_backoff(&mut backoff).await {
                Ok((stream, peer)) => {
                    let peers = &share.state.peers;
                    let Some(slot) = peers.admit(peer.ip(), share.max_conns_per_peer) else {
                        drop(stream); // too many from this peer: closed at once
                        continue;
                    };
                    let share = share.clone();
                    waitrt::spawn(async move {
                        let _slot = slot; // held while the connection lasts
                        if let Err(e) = serve_connection(stream, share).await {
                            if e.kind() != io::ErrorKind::ConnectionReset {
                                eprintln!("smbiod server: connection ended: {e}");
                            }
                        }
                    });
                }
                Err(e) if backoff.in_episode() => {
                    eprintln!("smbiod server: accept failed: {e}; pausing accepts")
                }
                Err(e) => eprintln!("smbiod server: accept failed: {e}"),
            }
        }
    });
    Ok((local, task))
}

/// Serves one connection until the peer closes it or sends garbage.
///
/// Two tasks: this one reads requests and handles them; a writer task
/// sends what the reader hands it, and the final replies of requests gone
/// async (each completed by its own task, asleep on a wait queue until
/// then), in the order they were queued. When the reader stops, the
/// connection's state is dropped: its handles close, which ends every
/// pending request, so the writer always finishes.
pub async fn serve_connection(stream: TcpStream, share: ShareConfig) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let backlog = Arc::new(Backlog {
        bytes: AtomicUsize::new(0),
        writer_gone: AtomicBool::new(false),
        drained: WaitQueue::named("replies_drained"),
        ended: WaitQueue::named("writer_ended"),
    });
    let writer = waitrt::spawn(write_replies(wr, rx, backlog.clone(), share.clone()));
    let read = read_requests(rd, share, tx, backlog).await;
    let written = writer
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("writer task: {e}"))));
    read.and(written)
}

/// Reads and handles requests; replies go to `tx`, batched while more
/// requests are already buffered. Reads nothing while the writer is more
/// than [`MAX_QUEUED_REPLIES`] behind, and stops once the writer has
/// ended (it reports why).
async fn read_requests(
    rd: impl AsyncRead + Unpin,
    share: ShareConfig,
    tx: UnboundedSender<Vec<u8>>,
    backlog: Arc<Backlog>,
) -> io::Result<()> {
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let mut conn = Connection::new(share.clone());
    let mut out = Vec::new();
    loop {
        if !backlog.has_room() {
            share
                .state
                .reply_backpressure
                .fetch_add(1, Ordering::Relaxed);
            let _ = backlog.drained.wait_event(|| backlog.has_room()).await;
        }
        let read = read_frame(&mut rd, conn.negotiated(), share.frame_deadline);
        let msg = match select(pin!(read), pin!(backlog.writer_end())).await {
            Either::Left((Ok(Some(msg)), _)) => msg,
            Either::Left((Ok(None), _)) | Either::Right(_) => break,
            Either::Left((Err(e), _)) => return Err(e),
        };
        out.extend(conn.handle(&msg));
        let deferred = conn.take_deferred();
        if let Some(why) = conn.close_reason() {
            eprintln!("smbiod server: dropping a connection: {why}");
            break;
        }
        if !deferred.is_empty() || !has_frame(rd.buffer()) || out.len() >= FLUSH_AT {
            // The interim replies go first; the final ones follow.
            if !backlog.send(&share, &tx, std::mem::take(&mut out)) {
                return Ok(()); // the writer failed; it reports why
            }
        }
        for d in deferred {
            let (tx, backlog, share) = (tx.clone(), backlog.clone(), share.clone());
            waitrt::spawn(async move {
                let frame = d.await;
                if !frame.is_empty() {
                    backlog.send(&share, &tx, frame);
                }
            });
        }
    }
    if !out.is_empty() {
        backlog.send(&share, &tx, out);
    }
    Ok(())
}

/// Reads one frame's payload; `None` at EOF between frames. An idle
/// connection waits as long as it likes once negotiated; before that,
/// and for the rest of a frame begun, it has `deadline`. The buffer grows
/// with the data received, whatever length the header announced.
async fn read_frame(
    rd: &mut (impl AsyncRead + Unpin),
    negotiated: bool,
    deadline: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let mut hdr = [0u8; 4];
    let header = if negotiated {
        rd.read_exact(&mut hdr).await
    } else {
        within(deadline, "NEGOTIATE", rd.read_exact(&mut hdr)).await
    };
    match header {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = frame::decode_len(hdr, frame::MAX_FRAME_LEN)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut msg = Vec::with_capacity(len.min(READ_AHEAD));
    let mut body = rd.take(len as u64);
    within(deadline, "the rest of a frame", body.read_to_end(&mut msg)).await?;
    if msg.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(msg))
}

/// Writes what arrives on `rx`, as many queued frames per write as fit
/// in [`FLUSH_AT`], until every sender is gone; counts what it wrote out
/// of `backlog`. Gives up, with a `TimedOut` error saying why, once a
/// write makes no progress for the share's `frame_deadline` (the client
/// reads none of its replies); the reader then stops too.
async fn write_replies(
    wr: impl futures::io::AsyncWrite + Unpin,
    rx: UnboundedReceiver<Vec<u8>>,
    backlog: Arc<Backlog>,
    share: ShareConfig,
) -> io::Result<()> {
    let r = write_all_replies(wr, rx, &backlog, share.frame_deadline).await;
    if r.as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
    {
        share.state.stalled_writers.fetch_add(1, Ordering::Relaxed);
    }
    backlog.writer_gone.store(true, Ordering::Release);
    backlog.drained.wake_up_all();
    backlog.ended.wake_up_all();
    r
}

async fn write_all_replies(
    mut wr: impl futures::io::AsyncWrite + Unpin,
    mut rx: UnboundedReceiver<Vec<u8>>,
    backlog: &Backlog,
    deadline: Duration,
) -> io::Result<()> {
    while let Some(mut buf) = rx.recv().await {
        while buf.len() < FLUSH_AT {
            match rx.try_recv() {
                Ok(more) => buf.extend(more),
                Err(_) => break,
            }
        }
        let mut sent = 0;
        while sent < buf.len() {
            // Each write that moves a byte restarts the deadline.
            let wrote = match waitrt::time::timeout(deadline, wr.write(&buf[sent..])).await {
                Ok(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "dropped: its client read no reply for {deadline:?} \
                         ({} bytes of replies queued)",
                        backlog.bytes.load(Ordering::Relaxed)
                    ),
                )),
            };
            match wrote {
                Ok(n) => {
                    sent += n;
                    backlog.written(n);
                }
                Err(e) => {
                    backlog.written(buf.len() - sent);
                    return Err(e);
                }
            }
        }
    }
    wr.close().await
}

/// `io`, or a `TimedOut` error naming `what` if it takes over `limit`.
async fn within<T>(
    limit: std::time::Duration,
    what: &str,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    waitrt::time::timeout(limit, io).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} did not arrive within {limit:?}"),
        ))
    })
}

/// Whether `buf` holds a complete frame.
fn has_frame(buf: &[u8]) -> bool {
    match buf.first_chunk::<4>() {
        Some(h) => {
            let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            buf.len() >= 4 + len
        }
        None => false,
    }
}
