//! The embedded server on our runtime: an accept loop on
//! [`waitrt::net::TcpListener`], one task per connection, each frame
//! through [`Connection::handle`]. Replies are batched: they are flushed
//! when no further complete request is already buffered, so a pipelining
//! client gets many replies per write.

use std::io;
use std::net::SocketAddr;

use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use waitrt::net::{AcceptBackoff, TcpListener, TcpStream};
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
pub async fn serve_connection(stream: TcpStream, share: ShareConfig) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
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
        if conn.wants_close() {
            break;
        }
        if !has_frame(rd.buffer()) || out.len() >= FLUSH_AT {
            wr.write_all(&out).await?;
            out.clear();
        }
    }
    wr.write_all(&out).await?;
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
