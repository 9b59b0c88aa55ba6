//! The reader task: owns the socket's read half, turns the byte stream
//! into replies, matches each to its request by MessageId and wakes the
//! caller. Any framing or parse error, EOF or socket error kills the
//! connection with a reason every waiting caller receives.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::io::{AsyncReadExt, BufReader};
use waitq::Clock;
use waitrt::net::tcp::OwnedReadHalf;

use super::request::Slot;
use super::shared::Shared;
use crate::client::{ClientError, Incoming};
use crate::wire::create::CloseRequest;
use crate::wire::message::{Request, Response};
use crate::wire::{frame, status, Command};

/// Header and length overhead allowed on top of the negotiated sizes.
const FRAME_SLACK: usize = 4096;

/// Reads replies until the connection ends, then kills it.
pub async fn run(shared: Arc<Shared>, rd: OwnedReadHalf) {
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let why = loop {
        let mut hdr = [0u8; 4];
        if let Err(e) = rd.read_exact(&mut hdr).await {
            break eof_reason(&shared, &e);
        }
        let max = shared.max_frame.load(Ordering::Acquire);
        let len = match frame::decode_len(hdr, max) {
            Ok(len) => len,
            Err(e) => break format!("bad frame from the server: {e}"),
        };
        let mut msg = vec![0u8; len];
        if let Err(e) = rd.read_exact(&mut msg).await {
            break eof_reason(&shared, &e);
        }
        if let Err(e) = deliver(&shared, &msg) {
            break format!("bad reply from the server: {e}");
        }
    };
    shared.kill(&why);
}

fn eof_reason(shared: &Shared, e: &io::Error) -> String {
    if shared.shutdown.load(Ordering::Acquire) {
        "smbiod shut down".into()
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        "the server closed the connection".into()
    } else {
        format!("receive failed: {e}")
    }
}

/// Takes one reply: credits, matching, wakes.
fn deliver(shared: &Shared, msg: &[u8]) -> Result<(), ClientError> {
    let mut done: Option<(Arc<Slot>, Result<_, ClientError>)> = None;
    let (wake_credits, wake_daemon) = {
        let now = shared.clock.now();
        let mut g = shared.lock();
        g.last_rx = now;
        let before = g.proto.credits();
        let incoming = g.proto.receive(msg)?;
        let granted = g.proto.credits() - before;
        g.acct.granted += u64::from(granted);
        match incoming {
            Incoming::Interim { .. } => g.acct.interim += 1,
            Incoming::Final { header, body } => {
                let sent = g
                    .sent
                    .remove(&header.message_id)
                    .ok_or(ClientError::UnknownMessageId(header.message_id))?;
                g.acct.in_flight -= sent.cost;
                g.acct.replies += 1;
                g.sample(sent.queued_at.elapsed().as_micros());
                if let Response::Negotiate(n) = &body {
                    let biggest = n.max_read.max(n.max_transact).max(65_536) as usize;
                    let max = (biggest + FRAME_SLACK).min(frame::MAX_FRAME_LEN);
                    shared.max_frame.store(max, Ordering::Release);
                }
                if header.command == Command::Logoff as u16 && header.status == status::SUCCESS {
                    shared.logged_off.store(true, Ordering::Release);
                }
                match sent.slot {
                    Some(slot) if !slot.is_abandoned() => done = Some((slot, Ok((header, body)))),
                    Some(_) => {
                        g.acct.discarded += 1;
                        // A late CREATE opened a handle nobody will use: close it.
                        if let (Response::Create(c), status::SUCCESS) = (&body, header.status) {
                            let close = CloseRequest {
                                flags: 0,
                                file_id: c.file_id,
                            };
                            g.deferred
                                .push_back((Request::Close(close), header.tree_id));
                        }
                    }
                    None => {}
                }
            }
        }
        (granted > 0, g.closing || !g.deferred.is_empty())
    };
    if let Some((slot, r)) = done {
        slot.complete(r);
    }
    if wake_credits {
        shared.credit_wait.wake_up_all();
    }
    if wake_daemon {
        shared.set_data_ready();
    }
    Ok(())
}
