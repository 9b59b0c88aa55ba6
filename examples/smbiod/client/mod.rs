//! The client protocol layer, free of I/O: builds request frames (taking
//! MessageIds and credits), matches replies to outstanding requests,
//! skips interim `STATUS_PENDING` replies, tracks the credits granted and
//! the negotiated limits.
//!
//! A driver owns the transport and a [`ClientState`]: it calls
//! [`ClientState::build`] for each request (which fails with `NoCredits`
//! when the window is full — the async daemon sleeps on a wait queue
//! there), writes the frame, and feeds every incoming message to
//! [`ClientState::receive`], which says which MessageId it completes.
//! [`blocking`] is the simplest such driver (std::net, one request at a
//! time, or pipelined by hand in tests).

pub mod api;
pub mod auth;
#[cfg(test)]
pub mod blocking;
pub mod error;
#[cfg(test)]
pub mod tests;

use std::collections::HashMap;

pub use error::ClientError;

use crate::wire::message::{Request, Response};
use crate::wire::negotiate::{NegotiateResponse, CAP_LARGE_MTU};
use crate::wire::{frame, status, Header};

/// Credits asked for with every request.
pub const CREDIT_REQUEST: u16 = 64;
/// Bytes one credit pays for (MS-SMB2 3.1.5.2).
const CREDIT_UNIT: usize = 65_536;

/// A reply, as [`ClientState::receive`] classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An interim `STATUS_PENDING` reply; the final one follows with the
    /// same MessageId. The request stays outstanding.
    Interim {
        /// The request's MessageId.
        message_id: u64,
        /// The AsyncId the server assigned.
        async_id: u64,
    },
    /// The final reply to `header.message_id`.
    Final {
        /// Its header (status, ids, credits).
        header: Header,
        /// Its body.
        body: Response,
    },
}

/// Per-connection client protocol state.
#[derive(Debug)]
pub struct ClientState {
    next_message_id: u64,
    credits: u32,
    outstanding: HashMap<u64, u16>,
    /// The negotiated dialect (0 before NEGOTIATE).
    pub dialect: u16,
    /// Multi-credit requests allowed (2.1+ with CAP_LARGE_MTU).
    pub large_mtu: bool,
    /// Negotiated MaxReadSize.
    pub max_read: u32,
    /// Negotiated MaxWriteSize.
    pub max_write: u32,
    /// Negotiated MaxTransactSize.
    pub max_transact: u32,
    /// SessionId, set by the first SESSION_SETUP reply.
    pub session_id: u64,
    /// Credits asked for with every request (CreditRequest).
    pub credit_request: u16,
    /// The dialects our NEGOTIATE offered: the server must pick one.
    offered: Vec<u16>,
}

impl Default for ClientState {
    fn default() -> Self {
        ClientState::new()
    }
}

impl ClientState {
    /// A fresh connection: one credit (for NEGOTIATE), 64 KiB limits.
    pub fn new() -> ClientState {
        ClientState {
            next_message_id: 0,
            credits: 1,
            outstanding: HashMap::new(),
            dialect: 0,
            large_mtu: false,
            max_read: CREDIT_UNIT as u32,
            max_write: CREDIT_UNIT as u32,
            max_transact: CREDIT_UNIT as u32,
            session_id: 0,
            credit_request: CREDIT_REQUEST,
            offered: Vec::new(),
        }
    }

    /// Credits held now.
    pub fn credits(&self) -> u32 {
        self.credits
    }

    /// Requests sent and not finally answered.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.outstanding.len()
    }

    /// The CreditCharge field for `req`: 0 on 2.0.2, else one per started
    /// 64 KiB of payload (sent or expected), at least 1.
    pub fn credit_charge(&self, req: &Request) -> u16 {
        if self.dialect == 0x0202 {
            return 0;
        }
        if !self.large_mtu {
            return 1;
        }
        let payload = match req {
            Request::Read(r) => r.length as usize,
            Request::Write(w) => w.data.len(),
            Request::QueryDirectory(q) => q.output_length as usize,
            Request::QueryInfo(q) => (q.output_length as usize).max(q.input.len()),
            Request::SetInfo(s) => s.buffer.len(),
            Request::ChangeNotify(n) => n.output_length as usize,
            _ => 0,
        };
        payload
            .saturating_sub(1)
            .div_ceil(CREDIT_UNIT)
            .max(1)
            .min(usize::from(u16::MAX)) as u16
    }

    /// Credits `req` consumes (a charge of 0 still takes one).
    pub fn cost(&self, req: &Request) -> u32 {
        u32::from(self.credit_charge(req).max(1))
    }

    /// Fails with `TooLarge` when `req` moves more than the negotiated
    /// MaxRead/MaxWrite/MaxTransact allow.
    pub fn check_size(&self, req: &Request) -> Result<(), ClientError> {
        let (len, max) = match req {
            Request::Read(r) => (r.length as usize, self.max_read),
            Request::Write(w) => (w.data.len(), self.max_write),
            Request::QueryDirectory(q) => (q.output_length as usize, self.max_transact),
            Request::QueryInfo(q) => (q.output_length as usize, self.max_transact),
            _ => return Ok(()),
        };
        if len > max as usize {
            return Err(ClientError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Builds the frame (transport header included) for `req` on `tree_id`,
    /// taking its MessageId(s) and credits. Fails without side effects when
    /// the credits do not cover it or it exceeds the negotiated sizes.
    pub fn build(&mut self, req: &Request, tree_id: u32) -> Result<(u64, Vec<u8>), ClientError> {
        self.check_size(req)?;
        let cost = self.cost(req);
        if cost > self.credits {
            return Err(ClientError::NoCredits {
                need: cost,
                have: self.credits,
            });
        }
        let message_id = self.next_message_id;
        let h = Header {
            credit_charge: self.credit_charge(req),
            command: req.command(),
            credits: self.credit_request,
            message_id,
            tree_id,
            session_id: self.session_id,
            ..Header::default()
        };
        let mut msg = Vec::with_capacity(128);
        h.encode(&mut msg);
        req.encode(&mut msg)?;
        let frame = frame::encode(&msg)?;
        self.credits -= cost;
        self.next_message_id += u64::from(cost);
        self.outstanding.insert(message_id, req.command());
        if let Request::Negotiate(n) = req {
            self.offered.clone_from(&n.dialects);
        }
        Ok((message_id, frame))
    }

    /// Takes one incoming message (a frame's payload): adds its credits,
    /// matches it to its request, applies NEGOTIATE and SESSION_SETUP
    /// results. Error statuses come back as `Final` with an error body;
    /// use [`check`] to turn them into `ClientError::Status`.
    pub fn receive(&mut self, msg: &[u8]) -> Result<Incoming, ClientError> {
        let (header, body) = Response::parse(msg)?;
        let Some(&sent) = self.outstanding.get(&header.message_id) else {
            return Err(ClientError::UnknownMessageId(header.message_id));
        };
        if sent != header.command {
            return Err(ClientError::CommandMismatch {
                sent,
                got: header.command,
            });
        }
        self.credits = self.credits.saturating_add(u32::from(header.credits));
        if header.is_interim() {
            return Ok(Incoming::Interim {
                message_id: header.message_id,
                async_id: header.async_id,
            });
        }
        self.outstanding.remove(&header.message_id);
        if let Response::Negotiate(n) = &body {
            if header.status == status::SUCCESS && !self.offered.contains(&n.dialect) {
                return Err(ClientError::UnofferedDialect(n.dialect));
            }
        }
        match &body {
            Response::Negotiate(n) => self.apply_negotiate(n),
            Response::SessionSetup(_) if self.session_id == 0 => {
                self.session_id = header.session_id
            }
            _ => {}
        }
        Ok(Incoming::Final { header, body })
    }

    fn apply_negotiate(&mut self, n: &NegotiateResponse) {
        self.dialect = n.dialect;
        self.large_mtu = n.dialect != 0x0202 && n.capabilities & CAP_LARGE_MTU != 0;
        self.max_read = n.max_read;
        self.max_write = n.max_write;
        self.max_transact = n.max_transact;
    }
}

/// Turns an error status into `ClientError::Status`; `ok` lists the
/// non-success statuses the caller expects (e.g. NO_MORE_FILES).
pub fn check(header: &Header, ok: &[u32]) -> Result<(), ClientError> {
    if header.status == status::SUCCESS || ok.contains(&header.status) {
        Ok(())
    } else {
        Err(ClientError::Status {
            command: header.command,
            status: header.status,
        })
    }
}
