//! The daemon task (kernel: `smbiod()` and `smbiod_doio()`): sleeps until
//! `DATA_READY`, shutdown or the next keepalive event, sends what is
//! queued in MessageId order, and
//! on a signal (Ctrl-C) or a shutdown request fails its callers, logs the
//! session off and stops.
//!
//! A send is bounded too: a server that stops reading (its receive window
//! full, so the write cannot finish) while it keeps the connection busy
//! otherwise (interim `STATUS_PENDING` replies refresh the keepalive) is
//! declared dead once one write has not finished within the timeout, and
//! a signal ends a stuck write at once.

use std::io;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use futures::io::AsyncWriteExt;
use waitrt::net::tcp::OwnedWriteHalf;

use super::keepalive::{self, Tick};
use super::request::{Queued, Sent, Signals, Slot};
use super::shared::Shared;
use crate::client::ClientError;
use crate::wire::message::Request;

/// Frames written per batch at most (more follow at once).
const BATCH_BYTES: usize = 4 << 20;
/// How long a shutdown waits for a credit, for the LOGOFF to be sent and
/// for its reply.
pub const LOGOFF_WAIT: Duration = Duration::from_secs(2);

/// The daemon's main loop.
pub async fn run(shared: Arc<Shared>, mut wr: OwnedWriteHalf) {
    let sh = &*shared;
    let signals = Signals::current();
    loop {
        let cond = || {
            sh.data_ready.load(Ordering::Acquire)
                || sh.shutdown.load(Ordering::Acquire)
                || sh.dead.load(Ordering::Acquire)
        };
        if !cond() {
            sh.sleeps.fetch_add(1, Ordering::Relaxed);
        }
        let wait = sh.smbiod_wait.wait_event_interruptible_timeout(
            &signals,
            &sh.clock,
            keepalive::next_in(sh),
            cond,
        );
        match wait.await {
            Ok(_) => {}
            Err(e) if e.is_closed() => break,
            Err(e) if e.is_timed_out() => match keepalive::tick(sh) {
                Tick::Idle => continue,
                Tick::Echo => {}
                Tick::Dead(why) => {
                    sh.kill(&why);
                    break;
                }
            },
            Err(_) => {
                // Ctrl-C (or an interrupt): deliver it, then shut down.
                signals.clear();
                sh.request_shutdown();
            }
        }
        if sh.dead.load(Ordering::Acquire) {
            break;
        }
        if sh.shutdown.load(Ordering::Acquire) {
            logoff(sh, &mut wr, &signals).await;
            break;
        }
        sh.data_ready.store(false, Ordering::Release);
        if let Err(e) = send_queued(sh, &mut wr, &signals).await {
            sh.kill(&format!("send failed: {e}"));
            break;
        }
    }
    let _ = wr.close().await;
    drop(wr);
    sh.kill("smbiod shut down");
    sh.stopped.store(true, Ordering::Release);
    sh.stopped_wait.wake_up_all();
}

/// Sends everything queued, batch by batch.
async fn send_queued(sh: &Shared, wr: &mut OwnedWriteHalf, signals: &Signals) -> io::Result<()> {
    loop {
        let batch = build_batch(sh);
        if batch.is_empty() {
            return Ok(());
        }
        write(sh, wr, &batch, signals, sh.timeout).await?;
    }
}

/// Writes `buf`, giving up when the connection dies meanwhile, when the
/// daemon is signalled, or when the write has not finished within
/// `limit`: a peer that stopped reading must not keep the daemon stuck.
/// The connection is declared dead on a stalled or interrupted write (a
/// frame may be half sent).
async fn write(
    sh: &Shared,
    wr: &mut OwnedWriteHalf,
    buf: &[u8],
    signals: &Signals,
    limit: Duration,
) -> io::Result<()> {
    let stop = sh
        .smbiod_wait
        .wait_event_interruptible_timeout(signals, &sh.clock, limit, || {
            sh.dead.load(Ordering::Acquire)
        });
    let why = match select(pin!(wr.write_all(buf)), pin!(stop)).await {
        Either::Left((r, _)) => return r,
        Either::Right((Ok(_), _)) => return Err(io::ErrorKind::ConnectionAborted.into()),
        Either::Right((Err(e), _)) if e.is_closed() => {
            return Err(io::ErrorKind::ConnectionAborted.into())
        }
        Either::Right((Err(e), _)) if e.is_timed_out() => {
            format!("the server stopped reading: a send did not finish within {limit:?}")
        }
        Either::Right((Err(_), _)) => {
            // Ctrl-C: the half-sent frame cannot be finished later.
            signals.clear();
            sh.request_shutdown();
            "smbiod shut down while a send was stuck".to_string()
        }
    };
    sh.kill(&why);
    Err(io::Error::new(io::ErrorKind::TimedOut, why))
}

/// Gives queued requests their MessageIds and frames, in order, up to
/// [`BATCH_BYTES`]. Never exceeds the credits granted: each request's
/// credits were reserved when it was queued.
fn build_batch(sh: &Shared) -> Vec<u8> {
    let mut out = Vec::new();
    let mut failed: Vec<(Arc<Slot>, ClientError)> = Vec::new();
    let mut g = sh.lock();
    while let Some((req, _)) = g.deferred.front() {
        let cost = g.proto.cost(req);
        if g.available() < cost {
            break;
        }
        let Some((req, tree_id)) = g.deferred.pop_front() else {
            break;
        };
        g.reserved += cost;
        g.queue.push_back(Queued {
            req,
            tree_id,
            cost,
            slot: None,
            queued_at: Instant::now(),
        });
    }
    while out.len() < BATCH_BYTES {
        let Some(q) = g.queue.pop_front() else { break };
        g.reserved -= q.cost;
        let cost = g.proto.cost(&q.req);
        match g.proto.build(&q.req, q.tree_id) {
            Ok((id, frame)) => {
                let a = &mut g.acct;
                a.charged += u64::from(cost);
                if a.charged > a.granted {
                    a.overdrawn += 1;
                }
                a.in_flight += cost;
                a.peak_in_flight = a.peak_in_flight.max(a.in_flight);
                a.requests += 1;
                g.sent.insert(
                    id,
                    Sent {
                        cost,
                        tree_id: q.tree_id,
                        slot: q.slot,
                        queued_at: q.queued_at,
                    },
                );
                out.extend_from_slice(&frame);
            }
            Err(e) => {
                if let Some(slot) = q.slot {
                    failed.push((slot, e));
                }
            }
        }
    }
    if !out.is_empty() {
        g.acct.batches += 1;
    }
    drop(g);
    for (slot, e) in failed {
        slot.complete(Err(e));
    }
    out
}

/// Shutdown: fail every caller with `Shutdown`, send LOGOFF if a session
/// is up, and wait (bounded) for its reply.
async fn logoff(sh: &Shared, wr: &mut OwnedWriteHalf, signals: &Signals) {
    let (slots, session) = {
        let mut g = sh.lock();
        g.closing = true;
        g.reserved = 0;
        g.deferred.clear();
        let mut slots: Vec<Arc<Slot>> = std::mem::take(&mut g.queue)
            .into_iter()
            .filter_map(|q| q.slot)
            .collect();
        slots.extend(g.sent.values_mut().filter_map(|s| s.slot.take()));
        (slots, g.proto.session_id)
    };
    for s in slots {
        s.complete(Err(ClientError::Shutdown));
    }
    sh.credit_wait.close();
    if session == 0 || sh.logged_off.load(Ordering::Acquire) {
        return;
    }
    let has_credit = sh.smbiod_wait.wait_event_interruptible(signals, || {
        sh.dead.load(Ordering::Acquire) || sh.lock().proto.credits() > 0
    });
    if !matches!(
        waitrt::time::timeout(LOGOFF_WAIT, has_credit).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let built = {
        let mut g = sh.lock();
        let built = g.proto.build(&Request::Logoff, 0);
        if let Ok((id, _)) = &built {
            g.acct.requests += 1;
            g.acct.charged += 1;
            g.acct.in_flight += 1;
            let queued_at = Instant::now();
            g.sent.insert(
                *id,
                Sent {
                    cost: 1,
                    tree_id: 0,
                    slot: None,
                    queued_at,
                },
            );
        }
        built
    };
    let Ok((_, frame)) = built else { return };
    if write(sh, wr, &frame, signals, LOGOFF_WAIT).await.is_err() {
        return;
    }
    let done = sh.smbiod_wait.wait_event_interruptible(signals, || {
        sh.logged_off.load(Ordering::Acquire) || sh.dead.load(Ordering::Acquire)
    });
    let _ = waitrt::time::timeout(LOGOFF_WAIT, done).await;
}
