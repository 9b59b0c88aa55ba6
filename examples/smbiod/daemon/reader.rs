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
use crate::wire::message::{split_compound, Response};
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
        // A frame may hold several replies, chained by NextCommand: a
        // server MAY compound responses, and a client MUST separate them
        // (MS-SMB2 3.2.5.1, 3.3.4.1.3; Linux cifs does). Each is a reply
        // of its own, with its own credits and caller.
        let delivered = split_compound(&msg)
            .map_err(ClientError::from)
            .and_then(|parts| {
                parts
                    .into_iter()
                    .try_for_each(|part| deliver(&shared, part))
            });
        if let Err(e) = delivered {
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
    let mut done: Option<(Arc<Slot>, Result<_, ClientError>, u32)> = None;
    let (wake_credits, wake_daemon) = {
        let now = shared.clock.now();
        let mut g = shared.lock();
        g.last_rx = now;
        let before = g.proto.credits();
        let incoming = g.proto.receive(msg)?;
        let granted = g.proto.credits() - before;
        g.acct.granted += u64::from(granted);
        // A caller waiting for credits fails at once when none can come
        // (`never_enough`: nothing left in flight): a last reply that
        // grants none (an async operation's final reply must grant 0,
        // MS-SMB2 3.3.4.3) wakes them to see it, not only a grant.
        let mut ended_flight = false;
        match incoming {
            Incoming::Interim { .. } => g.acct.interim += 1,
            Incoming::Final { header, body } => {
                let sent = g
                    .sent
                    .remove(&header.message_id)
                    .ok_or(ClientError::UnknownMessageId(header.message_id))?;
                g.acct.in_flight -= sent.cost;
                ended_flight = g.acct.in_flight == 0;
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
                // The caller's, unless it gave up: then `complete` hands
                // it back to be discarded (a late CREATE's handle closed,
                // with the TreeId it was sent with: an async reply's header
                // carries an AsyncId, no TreeId).
                if let Some(slot) = sent.slot {
                    done = Some((slot, Ok((header, body)), sent.tree_id));
                }
            }
        }
        (
            granted > 0 || ended_flight,
            g.closing || !g.deferred.is_empty(),
        )
    };
    if let Some((slot, r, tree_id)) = done {
        if let Some(unclaimed) = slot.complete(r) {
            shared.discard(unclaimed, tree_id);
        }
    }
    if wake_credits {
        shared.credit_wait.wake_up_all();
    }
    if wake_daemon {
        shared.set_data_ready();
    }
    Ok(())
}
