//! A blocking std::net driver for [`ClientState`]: one request at a time,
//! plus the high-level operations the tests and `main` use (list, write,
//! read back). The async daemon replaces it once `waitrt::net` lands.

use std::io::Write;
use std::net::TcpStream;

use super::{auth, check, ClientError, ClientState, Incoming};
use crate::wire::create::{
    CloseRequest, CreateRequest, FileId, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_OPEN,
};
use crate::wire::dir::{
    parse_entries, DirEntry, QueryDirectoryRequest, FILE_ID_BOTH_DIRECTORY_INFORMATION,
    RESTART_SCANS,
};
use crate::wire::info::{file, parse_standard_eof, QueryInfoRequest, INFO_FILE};
use crate::wire::message::{Request, Response};
use crate::wire::rw::{ReadRequest, WriteRequest};
use crate::wire::session::SessionSetupResponse;
use crate::wire::tree::TreeConnectRequest;
use crate::wire::{frame, status, Header};

/// Largest chunk per READ/WRITE (one credit's worth).
const CHUNK: u32 = 65_536;

/// A connected, logged-on client with one tree.
#[derive(Debug)]
pub struct SyncClient {
    stream: TcpStream,
    /// The protocol state (exposed for tests that pipeline by hand).
    pub state: ClientState,
    /// The connected tree.
    pub tree_id: u32,
    /// SessionFlags of the logon (1 guest, 2 anonymous; Samba 4.17 sends 0
    /// for anonymous).
    pub session_flags: u16,
}

impl SyncClient {
    /// Connects to `addr`, negotiates `dialects`, logs on as `user` (""
    /// for anonymous) and connects `\\host\share`.
    pub fn connect(
        addr: &str,
        dialects: &[u16],
        user: &str,
        share: &str,
    ) -> Result<SyncClient, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut c = SyncClient {
            stream,
            state: ClientState::new(),
            tree_id: 0,
            session_flags: 0,
        };
        let guid = *b"smbiod-client\0\0\0";
        c.call(auth::negotiate(dialects, guid, [0x5a; 32]), &[])?;
        let (_, first) = c.call(auth::session_setup_1(), &[status::MORE_PROCESSING_REQUIRED])?;
        let Response::SessionSetup(SessionSetupResponse {
            security_buffer, ..
        }) = first
        else {
            return Err(ClientError::Protocol("SESSION_SETUP reply without a body"));
        };
        let (_, done) = c.call(auth::session_setup_2(&security_buffer, user)?, &[])?;
        if let Response::SessionSetup(s) = done {
            c.session_flags = s.session_flags;
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let path = format!("\\\\{host}\\{share}");
        let (h, _) = c.call(
            Request::TreeConnect(TreeConnectRequest { flags: 0, path }),
            &[],
        )?;
        c.tree_id = h.tree_id;
        Ok(c)
    }

    /// Sends the frame of a request built on `state`.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(frame)?;
        Ok(())
    }

    /// Bounds every later read of a reply (a test's watchdog).
    #[cfg(test)]
    pub fn set_timeout(&self, d: std::time::Duration) -> Result<(), ClientError> {
        self.stream.set_read_timeout(Some(d))?;
        Ok(())
    }

    /// Reads one reply, interim or final.
    #[cfg(test)]
    pub fn recv_one(&mut self) -> Result<Incoming, ClientError> {
        let msg = frame::read_blocking(&mut self.stream, frame::MAX_FRAME_LEN)?
            .ok_or(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        self.state.receive(&msg)
    }

    /// Reads one frame's payload raw (a compound reply, unmatched).
    #[cfg(test)]
    pub fn recv_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        frame::read_blocking(&mut self.stream, frame::MAX_FRAME_LEN)?
            .ok_or(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()))
    }

    /// Reads replies until a final one arrives (skipping interim ones).
    pub fn recv_final(&mut self) -> Result<(Header, Response), ClientError> {
        loop {
            let msg = frame::read_blocking(&mut self.stream, frame::MAX_FRAME_LEN)?
                .ok_or(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
            match self.state.receive(&msg)? {
                Incoming::Interim { .. } => continue,
                Incoming::Final { header, body } => return Ok((header, body)),
            }
        }
    }

    /// Sends `req` and waits for its final reply; statuses other than
    /// SUCCESS and `ok` become `ClientError::Status`.
    pub fn call(&mut self, req: Request, ok: &[u32]) -> Result<(Header, Response), ClientError> {
        let (id, frame) = self.state.build(&req, self.tree_id)?;
        self.send(&frame)?;
        let (h, body) = self.recv_final()?;
        if h.message_id != id {
            return Err(ClientError::UnknownMessageId(h.message_id));
        }
        check(&h, ok)?;
        Ok((h, body))
    }

    /// Opens `name` with `disposition`/`options`/`access`.
    pub fn create(
        &mut self,
        name: &str,
        access: u32,
        disposition: u32,
        options: u32,
    ) -> Result<FileId, ClientError> {
        let req = CreateRequest {
            impersonation: 2,
            desired_access: access,
            file_attributes: if options & FILE_DIRECTORY_FILE != 0 {
                0x10
            } else {
                0x80
            },
            share_access: 7,
            disposition,
            options,
            name: name.to_string(),
            ..CreateRequest::default()
        };
        match self.call(Request::Create(req), &[])?.1 {
            Response::Create(c) => Ok(c.file_id),
            _ => Err(ClientError::Protocol("CREATE reply without a body")),
        }
    }

    /// Closes a handle.
    pub fn close(&mut self, file_id: FileId) -> Result<(), ClientError> {
        self.call(Request::Close(CloseRequest { flags: 0, file_id }), &[])?;
        Ok(())
    }

    /// Lists directory `dir` ("" for the share root) with
    /// FileIdBothDirectoryInformation, looping until NO_MORE_FILES.
    pub fn list(&mut self, dir: &str) -> Result<Vec<DirEntry>, ClientError> {
        let fid = self.create(dir, 0x0010_0081, FILE_OPEN, FILE_DIRECTORY_FILE)?;
        let mut out = Vec::new();
        let mut flags = RESTART_SCANS;
        loop {
            let req = QueryDirectoryRequest {
                class: FILE_ID_BOTH_DIRECTORY_INFORMATION,
                flags,
                file_id: fid,
                pattern: "*".into(),
                output_length: CHUNK.min(self.state.max_transact),
                ..QueryDirectoryRequest::default()
            };
            let (h, body) = self.call(Request::QueryDirectory(req), &[status::NO_MORE_FILES])?;
            match body {
                Response::QueryDirectory(buf) if h.status == status::SUCCESS => {
                    out.extend(parse_entries(FILE_ID_BOTH_DIRECTORY_INFORMATION, &buf)?);
                }
                _ => break,
            }
            flags = 0;
        }
        self.close(fid)?;
        Ok(out)
    }

    /// Size of an open file (FileStandardInformation.EndOfFile).
    pub fn size(&mut self, file_id: FileId) -> Result<u64, ClientError> {
        let req = QueryInfoRequest {
            info_type: INFO_FILE,
            class: file::STANDARD,
            output_length: 24,
            file_id,
            ..QueryInfoRequest::default()
        };
        match self.call(Request::QueryInfo(req), &[])?.1 {
            Response::QueryInfo(buf) => Ok(parse_standard_eof(&buf)?),
            _ => Err(ClientError::Protocol("QUERY_INFO reply without a body")),
        }
    }

    /// Creates or overwrites `name` with `data`, in chunks.
    pub fn write_file(&mut self, name: &str, data: &[u8]) -> Result<(), ClientError> {
        let fid = self.create(
            name,
            0x0012_019F,
            crate::wire::create::FILE_OVERWRITE_IF,
            FILE_NON_DIRECTORY_FILE,
        )?;
        let chunk = CHUNK.min(self.state.max_write) as usize;
        for (i, part) in data.chunks(chunk).enumerate() {
            let req = WriteRequest {
                offset: (i * chunk) as u64,
                file_id: fid,
                flags: 0,
                data: part.to_vec(),
            };
            match self.call(Request::Write(req), &[])?.1 {
                Response::Write(w) if w.count as usize == part.len() => {}
                _ => return Err(ClientError::Protocol("short WRITE")),
            }
        }
        self.close(fid)
    }

    /// Reads the whole of `name`: its size from QUERY_INFO, then READs until
    /// END_OF_FILE.
    pub fn read_file(&mut self, name: &str) -> Result<Vec<u8>, ClientError> {
        let fid = self.create(name, 0x0012_0089, FILE_OPEN, FILE_NON_DIRECTORY_FILE)?;
        let size = self.size(fid)?;
        let mut out = Vec::with_capacity(size as usize);
        loop {
            let req = ReadRequest {
                length: CHUNK.min(self.state.max_read),
                offset: out.len() as u64,
                file_id: fid,
                minimum_count: 0,
            };
            match self.call(Request::Read(req), &[status::END_OF_FILE])? {
                (h, Response::Read(r)) if h.status == status::SUCCESS && !r.data.is_empty() => {
                    out.extend(r.data)
                }
                _ => break,
            }
        }
        self.close(fid)?;
        if out.len() as u64 != size {
            return Err(ClientError::Protocol(
                "READ returned a different size than QUERY_INFO",
            ));
        }
        Ok(out)
    }

    /// TREE_DISCONNECT then LOGOFF.
    pub fn logoff(mut self) -> Result<(), ClientError> {
        self.call(Request::TreeDisconnect, &[])?;
        self.call(Request::Logoff, &[])?;
        Ok(())
    }
}
