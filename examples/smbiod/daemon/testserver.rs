//! A controllable real server for the daemon's tests: a std `TcpListener`
//! whose connections are answered by the embedded server's
//! [`Connection`], except that replies to one chosen command can be held
//! back (to keep callers waiting), released late, rewritten (a hostile
//! server's lies), or replaced by raw bytes (garbage, oversized frames).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::server::{Connection, ShareConfig};
use crate::wire::{frame, Header};

/// Rewrites a reply frame (transport header included).
pub type Patch = fn(&mut [u8]);

#[derive(Default)]
struct State {
    patch: Option<(u16, Patch)>,
    hold: Option<u16>,
    held: Vec<Vec<u8>>,
    held_total: usize,
    commands: Vec<u16>,
    /// (command, status) of each reply made, in order.
    replies: Vec<(u16, u32)>,
    writer: Option<TcpStream>,
}

/// The server; one client connection at a time.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    /// Starts serving a fresh directory named after `tag`.
    pub fn start(tag: &str) -> TestServer {
        let dir = std::env::temp_dir().join(format!("smbiod-ts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let share = ShareConfig::new("share", &dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, share.clone(), &st);
            }
        });
        TestServer { addr, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds back replies to `command` (None: answer everything).
    pub fn hold(&self, command: Option<u16>) {
        self.lock().hold = command;
    }

    /// Rewrites every later reply to `command` with `patch`.
    pub fn patch(&self, command: u16, patch: Patch) {
        self.lock().patch = Some((command, patch));
    }

    /// How many replies were held back so far.
    pub fn held_total(&self) -> usize {
        self.lock().held_total
    }

    /// Sends the held replies now.
    pub fn release(&self) {
        let mut g = self.lock();
        let held = std::mem::take(&mut g.held);
        if let Some(w) = g.writer.as_mut() {
            for f in held {
                let _ = w.write_all(&f);
            }
        }
    }

    /// Sends the held replies now as one compound frame: each reply's
    /// NextCommand points at the next (8-aligned), as a server MAY send
    /// them (MS-SMB2 3.3.4.1.3).
    pub fn release_compound(&self) {
        let mut g = self.lock();
        let held = std::mem::take(&mut g.held);
        let mut chain = Vec::new();
        for (i, f) in held.iter().enumerate() {
            let msg = &f[4..]; // past the transport header
            let start = chain.len();
            chain.extend_from_slice(msg);
            if i + 1 < held.len() {
                while chain.len() % 8 != 0 {
                    chain.push(0);
                }
                let next = (chain.len() - start) as u32;
                chain[start + 20..start + 24].copy_from_slice(&next.to_le_bytes());
            }
        }
        let frame = frame::encode(&chain).unwrap();
        if let Some(w) = g.writer.as_mut() {
            let _ = w.write_all(&frame);
        }
    }

    /// The statuses of the replies made to `command` so far, in order.
    pub fn statuses(&self, command: u16) -> Vec<u32> {
        let g = self.lock();
        g.replies
            .iter()
            .filter(|r| r.0 == command)
            .map(|r| r.1)
            .collect()
    }

    /// Writes raw bytes to the client.
    pub fn send_raw(&self, bytes: &[u8]) {
        if let Some(w) = self.lock().writer.as_mut() {
            let _ = w.write_all(bytes);
        }
    }

    /// The commands received so far, in order.
    pub fn commands(&self) -> Vec<u16> {
        self.lock().commands.clone()
    }

    /// Waits (polling, on the runtime's timer) until `n` replies are held.
    /// Panics after 20 s: a hang guard, not a timing assertion.
    pub async fn wait_held(&self, n: usize) {
        for _ in 0..20_000 {
            if self.held_total() >= n {
                return;
            }
            waitrt::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the client never sent {n} held requests");
    }
}

fn serve(mut stream: TcpStream, share: ShareConfig, state: &Mutex<State>) {
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    lock().writer = stream.try_clone().ok();
    let mut conn = Connection::new(share);
    while let Ok(Some(msg)) = frame::read_blocking(&mut stream, frame::MAX_FRAME_LEN) {
        let command = Header::decode(&msg).map(|h| h.command).unwrap_or(u16::MAX);
        let mut reply = conn.handle(&msg);
        // The daemon never sends LOCK or CHANGE_NOTIFY; a request that
        // went async anyway is ended when `conn` drops.
        drop(conn.take_deferred());
        let mut g = lock();
        g.commands.push(command);
        if let Ok(h) = Header::decode(&reply[4..]) {
            g.replies.push((h.command, h.status));
        }
        if let Some((_, patch)) = g.patch.filter(|(c, _)| *c == command) {
            patch(&mut reply);
        }
        if g.hold == Some(command) {
            g.held.push(reply);
            g.held_total += 1;
        } else if let Some(w) = g.writer.as_mut() {
            let _ = w.write_all(&reply);
        }
    }
}
