//! The async high-level client over the smbiod daemon: connect (NEGOTIATE,
//! SESSION_SETUP anonymous or guest, TREE_CONNECT), list, write, read,
//! size, logoff. A [`Client`] is cheap to clone: every clone shares the one
//! connection and its daemon, so many tasks can use it at once. Large reads
//! and writes are split to the negotiated sizes and pipelined through the
//! credit window.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use futures::stream::{FuturesOrdered, StreamExt};
use waitrt::net::TcpStream;

use super::{auth, check, ClientError, CREDIT_REQUEST};
use crate::daemon::Daemon;
use crate::wire::create::{
    CloseRequest, CreateRequest, FileId, FILE_DELETE_ON_CLOSE, FILE_DIRECTORY_FILE,
    FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OVERWRITE_IF,
};
use crate::wire::dir::{
    parse_entries, DirEntry, QueryDirectoryRequest, FILE_ID_BOTH_DIRECTORY_INFORMATION,
    RESTART_SCANS,
};
use crate::wire::info::{file, parse_standard_eof, QueryInfoRequest, INFO_FILE};
use crate::wire::message::{Request, Response};
use crate::wire::negotiate::DIALECTS;
use crate::wire::rw::{ReadRequest, WriteRequest};
use crate::wire::session::SessionSetupResponse;
use crate::wire::tree::TreeConnectRequest;
use crate::wire::{status, Header};

/// Largest READ/WRITE chunk on large-MTU dialects (16 credits).
const LARGE_CHUNK: u32 = 1 << 20;
/// Largest chunk otherwise (one credit).
const SMALL_CHUNK: u32 = 65_536;
/// Directory listing buffer per QUERY_DIRECTORY.
const LIST_CHUNK: u32 = 65_536;
/// READs one [`Client::read_file`] keeps in flight at most.
pub const READS_IN_FLIGHT: usize = 16;
/// The largest file [`Client::read_file`] reads whole (it holds the file
/// in memory); a larger EndOfFile is refused before anything is read.
pub const MAX_READ_FILE: u64 = 16 << 30;

/// [`ConnectOptions::timeout`]'s default (the kernel's cifs waits 60 s
/// for a reply and probes every 60 s; an interactive tool wants less).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Dialects offered (the server picks).
    pub dialects: Vec<u16>,
    /// User name: "" for anonymous; a name the server does not know is a
    /// guest on Samba (`map to guest = Bad User`).
    pub user: String,
    /// The share to connect.
    pub share: String,
    /// Credits asked for per request.
    pub credit_request: u16,
    /// How long a request may wait for its reply (credits included)
    /// before its caller gets [`ClientError::TimedOut`]; a connection
    /// silent for half of it gets a keepalive ECHO, and one that answers
    /// nothing for all of it is declared dead. Default 30 s.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Anonymous, every dialect, `share`.
    pub fn new(share: &str) -> ConnectOptions {
        ConnectOptions {
            dialects: DIALECTS.to_vec(),
            user: String::new(),
            share: share.to_string(),
            credit_request: CREDIT_REQUEST,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A connected, logged-on client with one tree; clones share it.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    daemon: Daemon,
    tree_id: u32,
    session_flags: u16,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the daemon logs off and stops.
        self.daemon.request_shutdown();
    }
}

impl Client {
    /// Connects to `addr` (HOST:PORT), negotiates, logs on and connects
    /// `\\HOST\share`. Must run inside a runtime with I/O and timers.
    pub async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Client, ClientError> {
        let stream = waitrt::time::timeout(opts.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::TimedOut(opts.timeout))??;
        let daemon = Daemon::start(stream, opts.credit_request, opts.timeout);
        match Client::setup(&daemon, addr, opts).await {
            Ok(inner) => Ok(Client {
                inner: Arc::new(inner),
            }),
            Err(e) => {
                daemon.shutdown().await;
                Err(e)
            }
        }
    }

    async fn setup(
        daemon: &Daemon,
        addr: &str,
        opts: &ConnectOptions,
    ) -> Result<Inner, ClientError> {
        let guid = *b"smbiod-daemon\0\0\0";
        let call = |req, ok: &'static [u32]| async move {
            let (h, body) = daemon.call(req, 0).await?;
            check(&h, ok)?;
            Ok::<_, ClientError>((h, body))
        };
        call(auth::negotiate(&opts.dialects, guid, [0x5a; 32]), &[]).await?;
        let more = &[status::MORE_PROCESSING_REQUIRED];
        let (_, first) = call(auth::session_setup_1(), more).await?;
        let Response::SessionSetup(SessionSetupResponse {
            security_buffer, ..
        }) = first
        else {
            return Err(ClientError::Protocol("SESSION_SETUP reply without a body"));
        };
        let (_, done) = call(auth::session_setup_2(&security_buffer, &opts.user)?, &[]).await?;
        let session_flags = match done {
            Response::SessionSetup(s) => s.session_flags,
            _ => 0,
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let path = format!("\\\\{host}\\{}", opts.share);
        let tree = Request::TreeConnect(TreeConnectRequest { flags: 0, path });
        let (h, _) = call(tree, &[]).await?;
        Ok(Inner {
            daemon: daemon.clone(),
            tree_id: h.tree_id,
            session_flags,
        })
    }

    /// The daemon (for its counters, Ctrl-C routing and shutdown).
    pub fn daemon(&self) -> &Daemon {
        &self.inner.daemon
    }

    /// SessionFlags of the logon (1 = guest).
    pub fn session_flags(&self) -> u16 {
        self.inner.session_flags
    }

    /// Sends `req` on our tree; statuses other than SUCCESS and `ok`
    /// become [`ClientError::Status`].
    pub async fn call(&self, req: Request, ok: &[u32]) -> Result<(Header, Response), ClientError> {
        let (h, body) = self.inner.daemon.call(req, self.inner.tree_id).await?;
        check(&h, ok)?;
        Ok((h, body))
    }

    /// Opens `name` for reading (`write`: create or overwrite for writing).
    pub async fn open(&self, name: &str, write: bool) -> Result<FileId, ClientError> {
        let (access, disposition) = if write {
            (0x0012_019F, FILE_OVERWRITE_IF)
        } else {
            (0x0012_0089, FILE_OPEN)
        };
        self.create(name, access, disposition, FILE_NON_DIRECTORY_FILE)
            .await
    }

    async fn create(
        &self,
        name: &str,
        access: u32,
        disposition: u32,
        options: u32,
    ) -> Result<FileId, ClientError> {
        let dir = options & FILE_DIRECTORY_FILE != 0;
        let req = CreateRequest {
            impersonation: 2,
            desired_access: access,
            file_attributes: if dir { 0x10 } else { 0x80 },
            share_access: 7,
            disposition,
            options,
            name: name.to_string(),
            ..CreateRequest::default()
        };
        match self.call(Request::Create(req), &[]).await?.1 {
            Response::Create(c) => Ok(c.file_id),
            _ => Err(ClientError::Protocol("CREATE reply without a body")),
        }
    }

    /// Closes a handle.
    pub async fn close(&self, file_id: FileId) -> Result<(), ClientError> {
        let req = Request::Close(CloseRequest { flags: 0, file_id });
        self.call(req, &[]).await.map(drop)
    }

    /// Deletes `name` (opened with DELETE_ON_CLOSE, then closed).
    pub async fn delete(&self, name: &str) -> Result<(), ClientError> {
        let options = FILE_NON_DIRECTORY_FILE | FILE_DELETE_ON_CLOSE;
        let fid = self.create(name, 0x0011_0080, FILE_OPEN, options).await?;
        self.close(fid).await
    }

    /// Lists directory `dir` ("" = the share root) until NO_MORE_FILES,
    /// collecting every entry: memory grows with the directory, so for a
    /// large one prefer [`list_each`](Self::list_each).
    ///
    /// # Cancel safety
    ///
    /// As [`list_each`](Self::list_each).
    #[cfg_attr(not(test), allow(dead_code))] // the program itself streams
    pub async fn list(&self, dir: &str) -> Result<Vec<DirEntry>, ClientError> {
        let mut out = Vec::new();
        self.list_each(dir, |e| out.push(e)).await?;
        Ok(out)
    }

    /// Lists directory `dir` ("" = the share root), handing each entry to
    /// `each` as its QUERY_DIRECTORY reply comes in; returns how many there
    /// were. Only one reply (at most 64 KiB, or MaxTransact) and its
    /// entries are held at a time, whatever the directory's size, so any
    /// number of callers can list a huge directory at once (issue 25: 512
    /// callers collecting a 16k-entry directory held 1.19 GB).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the listing; the directory handle is
    /// left open on the server until the session ends (the request in
    /// flight, if any, is abandoned as by [`Daemon::call`]).
    pub async fn list_each(
        &self,
        dir: &str,
        mut each: impl FnMut(DirEntry),
    ) -> Result<usize, ClientError> {
        let fid = self
            .create(dir, 0x0010_0081, FILE_OPEN, FILE_DIRECTORY_FILE)
            .await?;
        let listed = self.list_open(fid, &mut each).await;
        let closed = self.close(fid).await;
        let n = listed?;
        closed?;
        Ok(n)
    }

    async fn list_open(
        &self,
        fid: FileId,
        each: &mut impl FnMut(DirEntry),
    ) -> Result<usize, ClientError> {
        let mut n = 0;
        let mut flags = RESTART_SCANS;
        loop {
            let req = QueryDirectoryRequest {
                class: FILE_ID_BOTH_DIRECTORY_INFORMATION,
                flags,
                file_id: fid,
                pattern: "*".into(),
                output_length: LIST_CHUNK.min(self.limits().2),
                ..QueryDirectoryRequest::default()
            };
            let ok = &[status::NO_MORE_FILES];
            match self.call(Request::QueryDirectory(req), ok).await? {
                (h, Response::QueryDirectory(buf)) if h.status == status::SUCCESS => {
                    let entries = parse_entries(FILE_ID_BOTH_DIRECTORY_INFORMATION, &buf)?;
                    drop(buf);
                    n += entries.len();
                    entries.into_iter().for_each(&mut *each);
                }
                _ => return Ok(n),
            }
            flags = 0;
        }
    }

    /// Size of an open file (QUERY_INFO FileStandardInformation).
    pub async fn size_of(&self, file_id: FileId) -> Result<u64, ClientError> {
        let req = QueryInfoRequest {
            info_type: INFO_FILE,
            class: file::STANDARD,
            output_length: 24,
            file_id,
            ..QueryInfoRequest::default()
        };
        match self.call(Request::QueryInfo(req), &[]).await?.1 {
            Response::QueryInfo(buf) => Ok(parse_standard_eof(&buf)?),
            _ => Err(ClientError::Protocol("QUERY_INFO reply without a body")),
        }
    }

    /// Size of `name`.
    pub async fn file_size(&self, name: &str) -> Result<u64, ClientError> {
        let fid = self.open(name, false).await?;
        let size = self.size_of(fid).await;
        let closed = self.close(fid).await;
        let size = size?;
        closed?;
        Ok(size)
    }

    /// (MaxRead, MaxWrite, MaxTransact, large MTU).
    fn limits(&self) -> (u32, u32, u32, bool) {
        self.inner.daemon.limits()
    }

    /// The READ/WRITE chunk: the negotiated maximum, capped per dialect
    /// and to a quarter of the credit window (so a small window still
    /// lets several chunks overlap and never needs more than it has).
    fn chunk(&self, max: u32) -> usize {
        let window = self.inner.daemon.window().max(1);
        let cap = if self.limits().3 {
            LARGE_CHUNK.min(SMALL_CHUNK * (window / 4).max(1))
        } else {
            SMALL_CHUNK
        };
        max.min(cap).max(1) as usize
    }

    /// One READ of up to `len` bytes at `offset` (short at end of file).
    pub async fn read_at(
        &self,
        fid: FileId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ClientError> {
        let req = ReadRequest {
            length: len,
            offset,
            file_id: fid,
            minimum_count: 0,
        };
        match self
            .call(Request::Read(req), &[status::END_OF_FILE])
            .await?
        {
            (h, Response::Read(r)) if h.status == status::SUCCESS => Ok(r.data),
            _ => Ok(Vec::new()),
        }
    }

    /// Creates or overwrites `name` with `data`: every chunk in flight at
    /// once, as far as the credits allow.
    pub async fn write_file(&self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let fid = self.open(name, true).await?;
        let chunk = self.chunk(self.limits().1);
        let writes = data.chunks(chunk).enumerate().map(|(i, part)| async move {
            let req = WriteRequest {
                offset: (i * chunk) as u64,
                file_id: fid,
                flags: 0,
                data: part.to_vec(),
            };
            match self.call(Request::Write(req), &[]).await?.1 {
                Response::Write(w) if w.count as usize == part.len() => Ok(()),
                _ => Err(ClientError::Protocol("short WRITE")),
            }
        });
        let written = try_join_all(writes).await;
        let closed = self.close(fid).await;
        written?;
        closed
    }

    /// Reads the whole of `name`: its size, then its chunks, at most
    /// [`READS_IN_FLIGHT`] at a time, the buffer growing as they arrive.
    /// A size above [`MAX_READ_FILE`] is refused with
    /// [`ClientError::FileTooLarge`]; a chunk shorter than the size said
    /// fails the read.
    pub async fn read_file(&self, name: &str) -> Result<Vec<u8>, ClientError> {
        let fid = self.open(name, false).await?;
        let read = self.read_open(fid).await;
        let closed = self.close(fid).await;
        let data = read?;
        closed?;
        Ok(data)
    }

    async fn read_open(&self, fid: FileId) -> Result<Vec<u8>, ClientError> {
        // The size comes from the server: trust it for nothing but a
        // bound. Memory follows the data actually received.
        let size = self.size_of(fid).await?;
        if size > MAX_READ_FILE {
            return Err(ClientError::FileTooLarge {
                size,
                max: MAX_READ_FILE,
            });
        }
        let chunk = self.chunk(self.limits().0) as u64;
        let want = |i: u64| chunk.min(size - i * chunk);
        let chunks = size.div_ceil(chunk);
        let (mut sent, mut out) = (0, Vec::new());
        let mut reads = FuturesOrdered::new();
        loop {
            while sent < chunks && reads.len() < READS_IN_FLIGHT {
                reads.push_back(self.read_at(fid, sent * chunk, want(sent) as u32));
                sent += 1;
            }
            let Some(part) = reads.next().await else {
                return Ok(out);
            };
            let part = part?;
            let i = out.len() as u64 / chunk;
            if part.len() as u64 != want(i) {
                return Err(ClientError::Protocol("short READ"));
            }
            out.try_reserve(part.len())
                .map_err(|_| ClientError::Io(std::io::ErrorKind::OutOfMemory.into()))?;
            out.extend_from_slice(&part);
        }
    }

    /// TREE_DISCONNECT, LOGOFF, then stops the daemon.
    pub async fn logoff(&self) -> Result<(), ClientError> {
        let r = async {
            self.call(Request::TreeDisconnect, &[]).await?;
            self.call(Request::Logoff, &[]).await?;
            Ok(())
        }
        .await;
        self.inner.daemon.shutdown().await;
        r
    }
}

/// The dotted name of a dialect (0x0311 → "3.1.1").
pub fn dialect_name(d: u16) -> String {
    format!("{}.{}.{}", d >> 8, (d >> 4) & 0xF, d & 0xF)
}
