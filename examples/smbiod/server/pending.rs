//! Requests that go async (MS-SMB2 3.3.4.2): a blocked LOCK, a
//! CHANGE_NOTIFY waiting for a change.
//!
//! A handler that must wait hands [`Connection::go_async`] a future (the
//! wait, asleep on a wait queue) and a [`Canceller`]. The connection
//! answers at once with an interim `STATUS_PENDING` carrying a fresh
//! AsyncId (and the credits), and queues a [`Deferred`]: the future that
//! finishes the wait and yields the final response frame (async header,
//! no credits). The driver runs each deferred future beside the
//! connection and writes its frame after the interim. SMB2 CANCEL finds
//! the entry by AsyncId (or by MessageId before the client saw the
//! interim) and ends the wait with `STATUS_CANCELLED`; CANCEL itself is
//! never answered. Closing the handle (CLOSE, tree disconnect, logoff,
//! connection loss) ends the wait through the handle's own state (the
//! lock table, the watch), so no waiter is ever left asleep.
//!
//! A connection may have [`MAX_PENDING`] requests pending at once: the
//! interim reply grants credits back, so the credit window does not bound
//! them. One that would go async past the cap fails with
//! `STATUS_INSUFFICIENT_RESOURCES` instead (MS-SMB2 3.3.4.2); one that
//! can be answered at once (a free range, changes already buffered) still
//! is.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use super::locks::FileLocks;
use super::notify::Watch;
use super::Connection;
use crate::wire::header::{FLAG_ASYNC, FLAG_SERVER_TO_REDIR};
use crate::wire::message::{ErrorResponse, Response};
use crate::wire::{frame, status, Header};

/// Requests one connection may have pending at once: Windows Server's
/// default `AsynchronousCredits` (Samba has no such cap; its pending
/// requests are bounded by nothing but memory).
pub const MAX_PENDING: usize = 512;

/// A pending request's completion: resolves to its final response frame
/// (transport header included; empty if nothing is to be sent). The
/// driver must run it to completion (it always completes once the
/// request is cancelled or its handle closed).
pub type Deferred = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// Deferred completions not yet taken by the driver.
#[derive(Default)]
pub struct DeferredQueue(Vec<Deferred>);

impl std::fmt::Debug for DeferredQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeferredQueue({} queued)", self.0.len())
    }
}

/// The wait of a pending request, yielding its status and body.
pub type Work = Pin<Box<dyn Future<Output = (u32, Response)> + Send>>;

/// How to end a pending request early.
#[derive(Debug, Clone)]
pub enum Canceller {
    /// A blocked lock request: its id in the file's lock state.
    Lock(Arc<FileLocks>, u64),
    /// A CHANGE_NOTIFY asleep on a watch: the request's id there.
    Notify(Arc<Watch>, u64),
}

impl Canceller {
    fn cancel(&self) {
        match self {
            Canceller::Lock(file, id) => {
                file.cancel(*id, status::CANCELLED);
            }
            Canceller::Notify(w, id) => w.abort(*id, status::CANCELLED),
        }
    }
}

#[derive(Debug)]
struct Entry {
    message_id: u64,
    session_id: u64,
    canceller: Canceller,
}

/// The connection's pending requests by AsyncId, shared with their
/// deferred futures (each removes itself when done).
#[derive(Debug, Default, Clone)]
pub struct PendingTable(Arc<Mutex<HashMap<u64, Entry>>>);

impl PendingTable {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Connection {
    /// `STATUS_INSUFFICIENT_RESOURCES` if [`MAX_PENDING`] requests are
    /// pending already: call it before a request starts waiting.
    pub(super) fn async_room(&self) -> Result<(), u32> {
        if self.pending.map().len() >= MAX_PENDING {
            return Err(status::INSUFFICIENT_RESOURCES);
        }
        Ok(())
    }

    /// Turns the request `h` into an async one waiting on `work`; returns
    /// the interim header's AsyncId. The caller answers `STATUS_PENDING`.
    pub(super) fn go_async(&mut self, h: &Header, work: Work, canceller: Canceller) -> u64 {
        let async_id = self.next_async;
        self.next_async += 1;
        self.pending.map().insert(
            async_id,
            Entry {
                message_id: h.message_id,
                session_id: h.session_id,
                canceller,
            },
        );
        let table = self.pending.clone();
        let final_header = Header {
            status: 0,
            credits: 0,
            flags: FLAG_SERVER_TO_REDIR | FLAG_ASYNC,
            next_command: 0,
            async_id,
            tree_id: 0,
            ..*h
        };
        self.deferred.0.push(Box::pin(async move {
            let (st, body) = work.await;
            table.map().remove(&async_id);
            let rh = Header {
                status: st,
                ..final_header
            };
            let mut out = Vec::with_capacity(128);
            rh.encode(&mut out);
            if body.encode(&mut out).is_err() {
                out.truncate(0);
                Header {
                    status: status::UNSUCCESSFUL,
                    ..rh
                }
                .encode(&mut out);
                let _ = ErrorResponse::default().encode(&mut out);
            }
            frame::encode(&out).unwrap_or_default()
        }));
        async_id
    }

    /// SMB2 CANCEL (MS-SMB2 3.3.5.16): ends the named pending request with
    /// `STATUS_CANCELLED`, if there is one. Never answered.
    pub(super) fn cancel(&mut self, h: &Header) {
        let map = self.pending.map();
        let found = if h.flags & FLAG_ASYNC != 0 {
            map.get(&h.async_id)
        } else if h.message_id == 0 {
            // MessageId 0 is NEGOTIATE's and never pending: Samba 4.17's
            // client (smbtorture) sends such a CANCEL, without AsyncId,
            // for its newest request gone async. Take the session's
            // newest pending request.
            map.iter()
                .filter(|(_, e)| e.session_id == h.session_id)
                .max_by_key(|(id, _)| **id)
                .map(|(_, e)| e)
        } else {
            map.values()
                .find(|e| e.message_id == h.message_id && e.session_id == h.session_id)
        };
        let canceller = found.map(|e| e.canceller.clone());
        drop(map);
        if let Some(c) = canceller {
            c.cancel();
        }
    }

    /// The completions of requests that went async since the last call;
    /// the driver runs each and writes its frame after the replies
    /// already returned by [`handle`](Connection::handle).
    pub fn take_deferred(&mut self) -> Vec<Deferred> {
        std::mem::take(&mut self.deferred.0)
    }
}
