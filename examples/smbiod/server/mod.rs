//! The embedded SMB2 server: one directory served as one guest share.
//!
//! [`Connection`] is a per-connection state machine, pure with respect to
//! the network (it does real file-system I/O): feed it each incoming SMB2
//! message with [`Connection::handle`], write back the frames it returns.
//! Any transport can drive it; [`blocking`] is a thread-per-connection
//! std::net driver used by the tests and `main`.
//!
//! Scope (enough for smbclient's `ls`, `get`, `put`, `rm`, `rename`,
//! `mkdir`, `rmdir`, `allinfo`, `setmode`): NEGOTIATE (no DFS, no
//! signing), guest/anonymous SESSION_SETUP, TREE_CONNECT to the one
//! share, CREATE, CLOSE, READ, WRITE, FLUSH, QUERY_DIRECTORY, QUERY_INFO,
//! SET_INFO (basic info, rename, disposition, end of file), ECHO, LOGOFF,
//! TREE_DISCONNECT, related and unrelated compound chains, and LOCK
//! (byte-range locks shared by every connection; a blocking lock request
//! goes async, see [`pending`]), CHANGE_NOTIFY (watchers asleep on the
//! directory's wait queue, see [`notify`]). CANCEL is never answered; it ends the
//! pending request it names. Anything else gets `STATUS_NOT_SUPPORTED`.
//!
//! A compound's reply must fit one frame (16 MiB): a request whose reply
//! could overflow it is not run and gets `STATUS_INSUFFICIENT_RESOURCES`,
//! as do the requests after it.
//!
//! The credit window is enforced as on Samba: a request whose MessageIds
//! lie outside the window granted (or were used already), or whose
//! CreditCharge exceeds the credits held, drops the connection
//! (MS-SMB2 3.3.5.2.3), so a client can only have as many requests
//! outstanding as it was granted. A request that moves more than its
//! CreditCharge covers (a credit per started 64 KiB, MS-SMB2 3.3.5.2.5)
//! gets `STATUS_INVALID_PARAMETER`, as on Samba.

pub mod async_driver;
#[cfg(test)]
pub mod blocking;
mod files;
mod listing;
mod lock;
#[cfg(test)]
mod lock_tests;
pub mod locks;
mod meta;
pub mod notify;
#[cfg(test)]
mod notify_tests;
pub mod peers;
pub mod pending;
mod query;
mod sandbox;
mod session;
mod setinfo;
#[cfg(test)]
mod setinfo_tests;
mod shares;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod volume_tests;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::wire::create::FileId;
use crate::wire::header::{FLAG_ASYNC, FLAG_RELATED, FLAG_SERVER_TO_REDIR};
use crate::wire::message::{split_compound, ErrorResponse, Request, Response};
use crate::wire::{frame, status, Command, Header, WireError};
use listing::Listing;
use locks::{FileLocks, LockTable};
use pending::{DeferredQueue, PendingTable};

/// Credits granted per reply at most: the whole window, as Samba and
/// Windows do (smbtorture's smb2.credits asks 65,535 in one request and
/// needs at least 8,192 back); what a client holds stays within
/// [`MAX_CREDIT_WINDOW`] whatever it asks.
const MAX_GRANT: u16 = 8192;
/// Credits a client may hold at once (Samba's `smb2 max credits` default).
pub const MAX_CREDIT_WINDOW: u32 = 8192;

/// What the server serves.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// The share name (`\\host\NAME`), compared case-insensitively.
    pub name: String,
    /// The canonical directory served.
    pub root: PathBuf,
    /// Handles one session may hold open (Samba's `max open files`);
    /// CREATE beyond it gets `STATUS_TOO_MANY_OPENED_FILES`.
    pub max_open: usize,
    /// How long a connection may take to send its NEGOTIATE, and the rest
    /// of any frame once its first bytes came, and how long a write of its
    /// replies may make no progress (its client reading none); past it,
    /// the connection is dropped. An idle negotiated connection is kept.
    pub frame_deadline: std::time::Duration,
    /// Connections one peer IP address may have open at once; the accept
    /// loop closes any more at once (see [`peers`]).
    pub max_conns_per_peer: usize,
    /// What every connection to this share sees alike (byte-range locks);
    /// clones of a config share it.
    pub state: Arc<ServerState>,
}

/// The default [`ShareConfig::frame_deadline`].
pub const DEFAULT_FRAME_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The default [`ShareConfig::max_conns_per_peer`]: a quarter of Linux's
/// usual soft `RLIMIT_NOFILE` of 1,024, as for [`DEFAULT_MAX_OPEN`], so
/// one host cannot take the descriptors every other client needs. Our
/// own client, like smbclient, uses one connection.
pub const DEFAULT_MAX_CONNS_PER_PEER: usize = 256;

/// Server-wide state shared by the connections of one share.
#[derive(Debug, Default)]
pub struct ServerState {
    /// Byte-range locks by file.
    pub locks: LockTable,
    /// Directory watches (CHANGE_NOTIFY).
    pub notify: notify::NotifyTable,
    /// Share modes of every open, by file (checked across connections).
    pub shares: shares::ShareTable,
    /// Server-wide ids: of opens (lock owners) and blocked lock requests.
    next_uid: AtomicU64,
    /// Times a connection's reader stopped reading requests because its
    /// client was not reading the replies (see [`async_driver`]).
    pub reply_backpressure: AtomicU64,
    /// The most reply bytes ever queued for one connection's writer.
    pub peak_queued_replies: std::sync::atomic::AtomicUsize,
    /// Connections dropped because their client read no reply for
    /// [`ShareConfig::frame_deadline`].
    pub stalled_writers: AtomicU64,
    /// Open connections by peer address.
    pub peers: Arc<peers::PeerTable>,
}

impl ServerState {
    /// A fresh server-wide id.
    pub fn uid(&self) -> u64 {
        self.next_uid.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The default [`ShareConfig::max_open`]. Samba's 16,384 is per smbd
/// process, and Samba runs one process per client; here one process
/// serves every client, under Linux's usual soft `RLIMIT_NOFILE` of 1,024.
/// A quarter of that lets one session do real work (the workload holds at
/// most one handle per caller) while three greedy sessions still leave
/// descriptors for new connections and the runtime itself.
pub const DEFAULT_MAX_OPEN: usize = 256;

impl ShareConfig {
    /// Serves `dir` (canonicalized) as `name`.
    pub fn new(name: &str, dir: &std::path::Path) -> io::Result<ShareConfig> {
        Ok(ShareConfig {
            name: name.to_string(),
            root: dir.canonicalize()?,
            max_open: DEFAULT_MAX_OPEN,
            frame_deadline: DEFAULT_FRAME_DEADLINE,
            max_conns_per_peer: DEFAULT_MAX_CONNS_PER_PEER,
            state: Arc::default(),
        })
    }
}

/// Sessions one connection may set up at once.
const MAX_SESSIONS: usize = 64;

/// An open handle.
#[derive(Debug)]
struct Open {
    /// The session that opened it.
    session: u64,
    /// The tree connect it was opened through, and only works through.
    tree: u32,
    /// What it may do to the data: FILE_SHARE_* bits (read, write,
    /// delete), from the desired access.
    data_access: u32,
    /// Where it is on disk.
    path: PathBuf,
    /// Share-relative name, as the client sent it.
    name: String,
    /// The file (None for directories).
    file: Option<File>,
    /// Opened with write access.
    writable: bool,
    /// Granted access mask (reported by FileAllInformation).
    access: u32,
    /// Directory enumeration in progress.
    listing: Option<Listing>,
    /// Remove on CLOSE.
    delete_on_close: bool,
    /// Server-wide id: the owner of its byte-range locks.
    uid: u64,
    /// The file's lock state (None for directories).
    locks: Option<Arc<FileLocks>>,
    /// The directory's change buffer, from its first CHANGE_NOTIFY on.
    watch: Option<Arc<notify::Watch>>,
    /// Its share-mode record, server-wide (dropped with the open).
    _share: Option<shares::ShareEntry>,
}
// Drop for Open (in notify.rs): however the handle goes (CLOSE, tree
// disconnect, logoff, the connection lost), its locks go with it and its
// blocked lock requests end, whoever waited for its ranges is granted
// and woken, and its pending CHANGE_NOTIFYs end NOTIFY_CLEANUP.

/// One session of a connection (there may be several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    /// Authenticated once: its trees and handles work. Stays true during
    /// a re-authentication, which keeps the session, trees and handles.
    logged_on: bool,
    /// CHALLENGE sent, waiting for AUTHENTICATE; raw NTLMSSP if true.
    challenged: Option<bool>,
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    share: ShareConfig,
    dialect: Option<u16>,
    /// Sessions by SessionId.
    sessions: HashMap<u64, Session>,
    next_session: u64,
    /// Tree connects: TreeId → the SessionId that made it.
    trees: HashMap<u32, u64>,
    next_tree: u32,
    opens: HashMap<u64, Open>,
    next_file: u64,
    server_guid: [u8; 16],
    /// Why the connection must be dropped, once it must.
    closed: Option<String>,
    /// Credits the client holds: granted and not yet spent (starts at the
    /// one every connection begins with).
    credits_held: u32,
    /// The MessageId window (MS-SMB2 3.3.1.1, Samba's seqnum low/range):
    /// `seq_low` is the lowest id not yet used; entry `i` of `seq_used`
    /// says whether `seq_low + i` was used (out of order). Every id in the
    /// window was granted; its unused ids are the `credits_held`.
    seq_low: u64,
    seq_used: VecDeque<bool>,
    /// The session and tree of the request being handled.
    current: (u64, u32),
    /// Requests gone async, by AsyncId.
    pending: PendingTable,
    next_async: u64,
    /// Completions of async requests, for the driver to run.
    deferred: DeferredQueue,
    /// Set by a handler that went async: the interim reply's AsyncId.
    went_async: Option<u64>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.drop_opens(|_| true);
    }
}

/// The result of one command: a status and a body (the error body unless
/// the status allows the command's own).
type Outcome = Result<(u32, Response), u32>;

impl Connection {
    /// A fresh connection serving `share`.
    pub fn new(share: ShareConfig) -> Connection {
        Connection {
            share,
            dialect: None,
            sessions: HashMap::new(),
            next_session: 0x0000_1000_0000_0001,
            trees: HashMap::new(),
            next_tree: 1,
            opens: HashMap::new(),
            next_file: 1,
            server_guid: *b"smbiod-server\0\0\0",
            closed: None,
            credits_held: 1,
            seq_low: 0,
            seq_used: VecDeque::from([false]),
            current: (0, 0),
            pending: PendingTable::default(),
            next_async: 1,
            deferred: DeferredQueue::default(),
            went_async: None,
        }
    }

    /// Closes the opens `which` selects, oldest first (so a lock freed by
    /// an older handle goes to a younger one's blocked request, as Samba
    /// does on a tree disconnect).
    fn drop_opens(&mut self, which: impl Fn(&Open) -> bool) {
        let mut ids: Vec<u64> = self
            .opens
            .iter()
            .filter(|(_, o)| which(o))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            drop(self.opens.remove(&id));
        }
    }

    /// Takes the MessageIds of request `h` out of the window (MS-SMB2
    /// 3.3.5.2.3, Samba's `smb2_validate_message_id`): its CreditCharge
    /// (1 without multi-credit) must not exceed the credits held, and each
    /// of its ids must lie in the window, unused. The caller drops the
    /// connection otherwise, as Samba does (it terminates the connection
    /// on an invalid MessageId or charge; Windows does the same).
    fn take_message_ids(&mut self, h: &Header) -> Result<u32, String> {
        let multi_credit = self.dialect.is_some_and(|d| d != 0x0202);
        let charge = if multi_credit {
            u32::from(h.credit_charge.max(1))
        } else {
            1
        };
        if charge > self.credits_held {
            return Err(format!(
                "CreditCharge {charge} exceeds the {} credits granted (MessageId {})",
                self.credits_held, h.message_id
            ));
        }
        let slots = (0..u64::from(charge))
            .map(|i| {
                let id = h.message_id.checked_add(i)?;
                let at = usize::try_from(id.checked_sub(self.seq_low)?).ok()?;
                (!*self.seq_used.get(at)?).then_some(at)
            })
            .collect::<Option<Vec<usize>>>();
        let Some(slots) = slots else {
            return Err(format!(
                "MessageId {} (charge {charge}) is outside the window [{}, {}) or reused",
                h.message_id,
                self.seq_low,
                self.seq_low + self.seq_used.len() as u64
            ));
        };
        for at in slots {
            self.seq_used[at] = true;
        }
        while self.seq_used.front() == Some(&true) {
            self.seq_used.pop_front();
            self.seq_low += 1;
        }
        self.credits_held -= charge;
        Ok(charge)
    }

    /// Grants what the request asks for (at least its charge), keeping
    /// the window, used ids not yet passed included, within
    /// [`MAX_CREDIT_WINDOW`]; a client left with nothing always gets one
    /// credit, so it can never stall.
    fn grant_credits(&mut self, charge: u32, requested: u16) -> u16 {
        let room = MAX_CREDIT_WINDOW.saturating_sub(self.seq_used.len() as u32);
        let wanted = u32::from(requested)
            .max(charge)
            .clamp(1, u32::from(MAX_GRANT));
        let mut grant = wanted.min(room);
        if grant == 0 && self.credits_held == 0 {
            grant = 1;
        }
        self.credits_held += grant;
        self.seq_used
            .extend(std::iter::repeat_n(false, grant as usize));
        u16::try_from(grant).unwrap_or(MAX_GRANT)
    }

    /// The lowest MessageId the client has not used yet.
    #[cfg(test)]
    pub fn next_message_id(&self) -> u64 {
        self.seq_low
    }

    /// Credits the client holds now (granted, not yet spent).
    #[cfg(test)]
    pub fn credits_held(&self) -> u32 {
        self.credits_held
    }

    /// True once the connection must be dropped (a frame that is not
    /// SMB2, a MessageId or CreditCharge outside the credit window, a
    /// second NEGOTIATE).
    pub fn wants_close(&self) -> bool {
        self.closed.is_some()
    }

    /// Whether NEGOTIATE has succeeded.
    pub fn negotiated(&self) -> bool {
        self.dialect.is_some()
    }

    /// Why the connection must be dropped, for the driver's log.
    pub fn close_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Marks the connection for closing (the first reason sticks).
    fn drop_connection(&mut self, why: String) {
        self.closed.get_or_insert(why);
    }

    /// Handles one SMB2 message (a frame's payload, possibly a compound
    /// chain) and returns the response frames, transport headers included.
    /// A message whose header does not parse (SMB1, garbage) yields nothing
    /// and marks the connection for closing.
    pub fn handle(&mut self, msg: &[u8]) -> Vec<u8> {
        let parts = match split_compound(msg) {
            Ok(p) => p,
            Err(e) => {
                self.drop_connection(format!("not an SMB2 message: {e}"));
                return Vec::new();
            }
        };
        let mut last_file: Option<FileId> = None;
        let mut related_ids = (0u64, 0u32);
        // The reply must fit one frame: each part may add at most what its
        // reply can take (see `reply_bound`); what is left is kept for an
        // error reply to every part.
        let mut budget = frame::MAX_FRAME_LEN.saturating_sub(parts.len() * ERROR_REPLY_LEN);
        // CANCEL yields nothing: only the answered messages are chained.
        let mut outs: Vec<Vec<u8>> = Vec::with_capacity(parts.len());
        for part in &parts {
            let out = self.one(part, &mut last_file, &mut related_ids, &mut budget);
            if self.wants_close() {
                // Nothing more is answered on a connection being dropped.
                return Vec::new();
            }
            if !out.is_empty() {
                outs.push(out);
            }
        }
        let mut reply = Vec::new();
        for (i, out) in outs.iter().enumerate() {
            let start = reply.len();
            reply.extend_from_slice(out);
            if i + 1 < outs.len() {
                while reply.len() % 8 != 0 {
                    reply.push(0);
                }
                let next = (reply.len() - start) as u32;
                reply[start + 20..start + 24].copy_from_slice(&next.to_le_bytes());
            }
        }
        if reply.is_empty() {
            return Vec::new();
        }
        match frame::encode(&reply) {
            Ok(f) => f,
            Err(e) => {
                // Cannot happen with the budget above; never drop a reply
                // silently, drop the connection with the reason instead.
                self.drop_connection(format!("compound reply too large: {e}"));
                Vec::new()
            }
        }
    }

    /// Handles one message of a chain; returns the response message. A
    /// request whose reply could exceed `budget` (bytes left in the
    /// compound reply's frame) is not run: it gets
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    fn one(
        &mut self,
        msg: &[u8],
        last_file: &mut Option<FileId>,
        ids: &mut (u64, u32),
        budget: &mut usize,
    ) -> Vec<u8> {
        let mut h = match Header::decode(msg) {
            Ok(h) => h,
            Err(_) => return Vec::new(), // split_compound decoded it already
        };
        if h.command == Command::Cancel as u16 {
            // MS-SMB2 3.3.5.16: no response, and no credit charged or
            // granted; the pending request it names ends (CANCELLED).
            self.cancel(&h);
            return Vec::new();
        }
        let charge = match self.take_message_ids(&h) {
            Ok(c) => c,
            Err(why) => {
                self.drop_connection(why);
                return Vec::new();
            }
        };
        if h.flags & FLAG_RELATED != 0 {
            if h.session_id == u64::MAX {
                h.session_id = ids.0;
            }
            if h.tree_id == u32::MAX {
                h.tree_id = ids.1;
            }
        }
        let outcome = match Request::parse(msg) {
            Ok((_, _)) if *budget == 0 => Err(status::INSUFFICIENT_RESOURCES),
            Ok((_, req)) if reply_bound(&req, self.max_io()) > *budget => {
                *budget = 0; // the parts that follow are refused too
                Err(status::INSUFFICIENT_RESOURCES)
            }
            Ok((_, mut req)) => {
                let short_charge = charge_needed(&req, msg) > charge;
                substitute_related(&mut req, h.flags & FLAG_RELATED != 0, *last_file);
                self.dispatch(&mut h, req, short_charge)
            }
            Err(WireError::Unsupported(_)) => Err(status::NOT_SUPPORTED),
            Err(_) => Err(status::INVALID_PARAMETER),
        };
        if let Ok((_, Response::Create(c))) = &outcome {
            *last_file = Some(c.file_id);
        }
        *ids = (h.session_id, h.tree_id);
        let (status, body) = match outcome {
            Ok(ok) => ok,
            Err(st) => (st, Response::Error(ErrorResponse::default())),
        };
        let grant = self.grant_credits(charge, h.credits);
        let mut rh = Header {
            status,
            credits: grant,
            flags: FLAG_SERVER_TO_REDIR | (h.flags & FLAG_RELATED),
            next_command: 0,
            ..h
        };
        if let Some(async_id) = self.went_async.take() {
            // The interim reply (MS-SMB2 3.3.4.2): async form, credits
            // granted here; the final reply follows from the deferred.
            rh.flags |= FLAG_ASYNC;
            rh.async_id = async_id;
        }
        let mut out = Vec::with_capacity(128);
        rh.encode(&mut out);
        if body.encode(&mut out).is_err() {
            // only an oversized field can fail; answer with a plain error
            out.clear();
            Header {
                status: status::UNSUCCESSFUL,
                ..rh
            }
            .encode(&mut out);
            let _ = ErrorResponse::default().encode(&mut out);
        }
        *budget = budget.saturating_sub(out.len().next_multiple_of(8));
        out
    }

    /// Runs one parsed request. May update the header's session and tree
    /// ids (SESSION_SETUP and TREE_CONNECT assign them). `short_charge`:
    /// its CreditCharge does not cover its payload (see
    /// [`charge_needed`]); it gets `STATUS_INVALID_PARAMETER` where Samba
    /// checks, after the session and tree.
    fn dispatch(&mut self, h: &mut Header, req: Request, short_charge: bool) -> Outcome {
        match req {
            Request::Negotiate(r) => return self.negotiate(&r),
            Request::Echo => return Ok((status::SUCCESS, Response::Echo)),
            Request::SessionSetup(r) => return self.session_setup(h, &r),
            // An IOCTL (not implemented) is checked for its charge alone.
            Request::Other(_) if short_charge => return Err(status::INVALID_PARAMETER),
            Request::Other(_) => return Err(status::NOT_SUPPORTED),
            _ => {}
        }
        self.check_session(h.session_id)?;
        match req {
            Request::Logoff => {
                let sid = h.session_id;
                self.sessions.remove(&sid);
                self.trees.retain(|_, s| *s != sid);
                self.drop_opens(|o| o.session == sid);
                return Ok((status::SUCCESS, Response::Logoff));
            }
            Request::TreeConnect(r) => return self.tree_connect(h, &r),
            _ => {}
        }
        if self.trees.get(&h.tree_id) != Some(&h.session_id) {
            return Err(status::NETWORK_NAME_DELETED);
        }
        self.current = (h.session_id, h.tree_id);
        if short_charge {
            return Err(status::INVALID_PARAMETER);
        }
        match req {
            Request::TreeDisconnect => {
                let tid = h.tree_id;
                self.trees.remove(&tid);
                self.drop_opens(|o| o.tree == tid);
                Ok((status::SUCCESS, Response::TreeDisconnect))
            }
            Request::Create(r) => self.create(&r),
            Request::Close(r) => self.close(&r),
            Request::Read(r) => self.read(&r),
            Request::Write(r) => self.write(&r),
            Request::QueryDirectory(r) => self.query_directory(&r),
            Request::QueryInfo(r) => self.query_info(&r),
            Request::SetInfo(r) => self.set_info(&r),
            Request::Flush(r) => self.flush(&r),
            Request::Lock(r) => self.lock(h, &r),
            Request::ChangeNotify(r) => self.change_notify(h, &r),
            _ => Err(status::NOT_SUPPORTED),
        }
    }

    fn check_session(&self, id: u64) -> Result<(), u32> {
        match self.sessions.get(&id) {
            Some(s) if s.logged_on => Ok(()),
            _ => Err(status::USER_SESSION_DELETED),
        }
    }

    /// The most a READ/WRITE/QUERY may move at once.
    fn max_io(&self) -> u32 {
        session::max_io(self.dialect.unwrap_or(0x0202))
    }
}

/// An error reply (header and ErrorResponse), padded for a chain.
const ERROR_REPLY_LEN: usize = 80;

/// The most bytes the reply to `req` can take in a compound reply
/// (padding included), with `max_io` the negotiated MaxRead/MaxTransact.
fn reply_bound(req: &Request, max_io: u32) -> usize {
    let payload = match req {
        Request::Read(r) => r.length.min(max_io),
        Request::QueryDirectory(q) => q.output_length.min(max_io),
        Request::QueryInfo(q) => q.output_length,
        Request::ChangeNotify(n) => n.output_length,
        // small fixed bodies, names, security blobs
        _ => 4096,
    };
    payload as usize + 128
}

/// Bytes per credit (MS-SMB2 3.1.5.2).
const CREDIT_UNIT: u64 = 65_536;

/// The credits request `msg` (parsed as `req`) must be charged (MS-SMB2
/// 3.3.5.2.5): one per started 64 KiB of what it moves either way. The
/// sizes are Samba's (`smbd_smb2_request_verify_creditcharge` in each
/// command): READ its Length, WRITE its data, QUERY_DIRECTORY and
/// CHANGE_NOTIFY their OutputBufferLength, QUERY_INFO the larger of its
/// input and OutputBufferLength, SET_INFO its buffer, and IOCTL the
/// larger of its input and output counts and of its two maximum
/// responses. Other requests need none.
fn charge_needed(req: &Request, msg: &[u8]) -> u32 {
    let bytes = match req {
        Request::Read(r) => u64::from(r.length),
        Request::Write(w) => w.data.len() as u64,
        Request::QueryDirectory(q) => u64::from(q.output_length),
        Request::ChangeNotify(n) => u64::from(n.output_length),
        Request::QueryInfo(q) => u64::from(q.output_length).max(q.input.len() as u64),
        Request::SetInfo(s) => s.buffer.len() as u64,
        Request::Other(c) if *c == Command::Ioctl as u16 => ioctl_payload(msg),
        _ => 0,
    };
    u32::try_from(bytes.div_ceil(CREDIT_UNIT)).unwrap_or(u32::MAX)
}

/// What an IOCTL request (MS-SMB2 2.2.31) moves: the larger of
/// InputCount + OutputCount and MaxInputResponse + MaxOutputResponse
/// (0 if its body is too short to say).
fn ioctl_payload(msg: &[u8]) -> u64 {
    let at = |off: usize| -> u64 {
        msg.get(64 + off..64 + off + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    };
    (at(28) + at(40)).max(at(32) + at(44))
}

/// In a related chain, a FileId of all ones means "the last CREATE's".
fn substitute_related(req: &mut Request, related: bool, last: Option<FileId>) {
    let Some(last) = last.filter(|_| related) else {
        return;
    };
    let fid = match req {
        Request::Close(r) => &mut r.file_id,
        Request::Read(r) => &mut r.file_id,
        Request::Write(r) => &mut r.file_id,
        Request::QueryDirectory(r) => &mut r.file_id,
        Request::QueryInfo(r) => &mut r.file_id,
        Request::SetInfo(r) => &mut r.file_id,
        Request::Flush(r) => &mut r.file_id,
        Request::Lock(r) => &mut r.file_id,
        Request::ChangeNotify(r) => &mut r.file_id,
        _ => return,
    };
    if *fid == FileId::RELATED {
        *fid = last;
    }
}

/// The command name, for logs.
pub fn command_name(code: u16) -> String {
    match Command::from_u16(code) {
        Some(c) => format!("{c:?}"),
        None => format!("{code:#x}"),
    }
}
