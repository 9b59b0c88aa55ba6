//! A blocking std::net driver for [`Connection`]: one thread per client.
//! The async driver on our runtime replaces it once `waitrt::net` lands.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use super::{Connection, ShareConfig};
use crate::wire::frame;

/// Serves one connection until the peer closes it or sends garbage.
/// A request gone async completes on a thread of its own (the wait
/// queue's futures run on any executor), writing its final reply under
/// the same lock as the replies.
pub fn serve_connection(mut stream: TcpStream, share: ShareConfig) -> io::Result<()> {
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let write = |w: &Mutex<TcpStream>, bytes: &[u8]| {
        w.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes)
    };
    let mut conn = Connection::new(share);
    while let Some(msg) = frame::read_blocking(&mut stream, frame::MAX_FRAME_LEN)? {
        let out = conn.handle(&msg);
        write(&writer, &out)?;
        for d in conn.take_deferred() {
            let w = writer.clone();
            thread::spawn(move || {
                let frame = futures::executor::block_on(d);
                let _ = write(&w, &frame);
            });
        }
        if conn.wants_close() {
            break;
        }
    }
    Ok(())
}

/// Binds `addr` (port 0: ephemeral) and serves `share` on a background
/// accept thread; returns the bound address.
pub fn spawn(addr: &str, share: ShareConfig) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    thread::Builder::new()
        .name("smb-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let share = share.clone();
                let _ = thread::Builder::new()
                    .name("smb-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve_connection(stream, share) {
                            if e.kind() != io::ErrorKind::ConnectionReset {
                                eprintln!("smbiod server: connection ended: {e}");
                            }
                        }
                    });
            }
        })?;
    Ok(local)
}
