//! The embedded server on our runtime: an accept loop on
//! [`waitrt::net::TcpListener`], one task per connection, each frame
//! through [`Connection::handle`]. Replies are batched: they are flushed
//! when no further complete request is already buffered, so a pipelining
//! client gets many replies per write.

use std::io;
use std::net::SocketAddr;

use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use waitrt::net::{AcceptBackoff, TcpListener, TcpStream};
use waitrt::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use waitrt::task::JoinHandle;

use super::{Connection, ShareConfig};
use crate::wire::frame;

/// Flush replies once this many bytes are pending.
const FLUSH_AT: usize = 1 << 20;

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
                Ok((stream, _)) => {
                    let share = share.clone();
                    waitrt::spawn(async move {
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
    let writer = waitrt::spawn(write_replies(wr, rx));
    let read = read_requests(rd, share, tx).await;
    let written = writer
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("writer task: {e}"))));
    read.and(written)
}

/// Reads and handles requests; replies go to `tx`, batched while more
/// requests are already buffered.
async fn read_requests(
    rd: impl futures::io::AsyncRead + Unpin,
    share: ShareConfig,
    tx: UnboundedSender<Vec<u8>>,
) -> io::Result<()> {
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let mut conn = Connection::new(share);
    let mut out = Vec::new();
    loop {
        let mut hdr = [0u8; 4];
        match rd.read_exact(&mut hdr).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = frame::decode_len(hdr, frame::MAX_FRAME_LEN)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut msg = vec![0u8; len];
        rd.read_exact(&mut msg).await?;
        out.extend(conn.handle(&msg));
        let deferred = conn.take_deferred();
        if let Some(why) = conn.close_reason() {
            eprintln!("smbiod server: dropping a connection: {why}");
            break;
        }
        if !deferred.is_empty() || !has_frame(rd.buffer()) || out.len() >= FLUSH_AT {
            // The interim replies go first; the final ones follow.
            if tx.send(std::mem::take(&mut out)).is_err() {
                return Ok(()); // the writer failed; it reports why
            }
        }
        for d in deferred {
            let tx = tx.clone();
            waitrt::spawn(async move {
                let frame = d.await;
                if !frame.is_empty() {
                    let _ = tx.send(frame);
                }
            });
        }
    }
    if !out.is_empty() {
        let _ = tx.send(out);
    }
    Ok(())
}

/// Writes what arrives on `rx`, as many queued frames per write as fit
/// in [`FLUSH_AT`], until every sender is gone.
async fn write_replies(
    mut wr: impl futures::io::AsyncWrite + Unpin,
    mut rx: UnboundedReceiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(mut buf) = rx.recv().await {
        while buf.len() < FLUSH_AT {
            match rx.try_recv() {
                Ok(more) => buf.extend(more),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            wr.write_all(&buf).await?;
        }
    }
    wr.close().await
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
