//! Whole messages: header + body, for both directions, and compound
//! chains. This is the entry point the client and the server use, and what
//! the fuzz tests hammer.

use super::buf::{bytes, fit_u32, u16_at, u32_at, u8_at, Put, WireResult};
use super::create::{CloseRequest, CloseResponse, CreateRequest, CreateResponse};
use super::dir::{encode_output, parse_output, QueryDirectoryRequest};
use super::header::{Command, Header, FLAG_SERVER_TO_REDIR, HEADER_LEN};
use super::info::QueryInfoRequest;
use super::lock::{encode_lock_response, parse_lock_response, LockRequest};
use super::negotiate::{NegotiateRequest, NegotiateResponse};
use super::notify::ChangeNotifyRequest;
use super::rw::{ReadRequest, ReadResponse, WriteRequest, WriteResponse};
use super::session::{encode_empty, parse_empty, SessionSetupRequest, SessionSetupResponse};
use super::setinfo::{
    encode_set_info_response, parse_set_info_response, FlushRequest, SetInfoRequest,
};
use super::tree::{TreeConnectRequest, TreeConnectResponse};
use super::{status, WireError};

/// Most messages in one compound chain this implementation accepts.
pub const MAX_COMPOUND: usize = 32;

/// A request body, by command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// NEGOTIATE
    Negotiate(NegotiateRequest),
    /// SESSION_SETUP
    SessionSetup(SessionSetupRequest),
    /// LOGOFF
    Logoff,
    /// TREE_CONNECT
    TreeConnect(TreeConnectRequest),
    /// TREE_DISCONNECT
    TreeDisconnect,
    /// CREATE
    Create(CreateRequest),
    /// CLOSE
    Close(CloseRequest),
    /// READ
    Read(ReadRequest),
    /// WRITE
    Write(WriteRequest),
    /// QUERY_DIRECTORY
    QueryDirectory(QueryDirectoryRequest),
    /// QUERY_INFO
    QueryInfo(QueryInfoRequest),
    /// SET_INFO
    SetInfo(SetInfoRequest),
    /// FLUSH
    Flush(FlushRequest),
    /// LOCK
    Lock(LockRequest),
    /// CHANGE_NOTIFY
    ChangeNotify(ChangeNotifyRequest),
    /// ECHO
    Echo,
    /// Any other command (the body is not parsed).
    Other(u16),
}

/// A response body, by command; any command may get [`Response::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// NEGOTIATE
    Negotiate(NegotiateResponse),
    /// SESSION_SETUP
    SessionSetup(SessionSetupResponse),
    /// LOGOFF
    Logoff,
    /// TREE_CONNECT
    TreeConnect(TreeConnectResponse),
    /// TREE_DISCONNECT
    TreeDisconnect,
    /// CREATE
    Create(CreateResponse),
    /// CLOSE
    Close(CloseResponse),
    /// READ
    Read(ReadResponse),
    /// WRITE
    Write(WriteResponse),
    /// QUERY_DIRECTORY: the raw entry buffer (see [`super::dir::parse_entries`]).
    QueryDirectory(Vec<u8>),
    /// QUERY_INFO: the raw info buffer.
    QueryInfo(Vec<u8>),
    /// SET_INFO
    SetInfo,
    /// FLUSH
    Flush,
    /// LOCK
    Lock,
    /// CHANGE_NOTIFY: the raw FILE_NOTIFY_INFORMATION list.
    ChangeNotify(Vec<u8>),
    /// ECHO
    Echo,
    /// The error body (also the body of interim and warning replies).
    Error(ErrorResponse),
}

/// The SMB2 ERROR response body (MS-SMB2 2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse {
    /// ErrorContextCount.
    pub context_count: u8,
    /// ErrorData.
    pub data: Vec<u8>,
}

impl ErrorResponse {
    /// Appends the body (at least one ErrorData byte).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        out.put_u16(9);
        out.put_u8(self.context_count);
        out.put_u8(0);
        out.put_u32(fit_u32(self.data.len(), "ByteCount")?);
        out.extend_from_slice(&self.data);
        if self.data.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<ErrorResponse> {
        let size = u16_at(msg, HEADER_LEN, "StructureSize")?;
        if size != 9 {
            return Err(WireError::BadStructureSize {
                command: u16_at(msg, 12, "Command")?,
                got: size,
            });
        }
        let count = u32_at(msg, HEADER_LEN + 4, "ByteCount")? as usize;
        Ok(ErrorResponse {
            context_count: u8_at(msg, HEADER_LEN + 2, "ErrorContextCount")?,
            data: bytes(msg, HEADER_LEN + 8, count, "ErrorData")?.to_vec(),
        })
    }
}

impl Request {
    /// The command code.
    pub fn command(&self) -> u16 {
        use Request::*;
        let c = match self {
            Negotiate(_) => Command::Negotiate,
            SessionSetup(_) => Command::SessionSetup,
            Logoff => Command::Logoff,
            TreeConnect(_) => Command::TreeConnect,
            TreeDisconnect => Command::TreeDisconnect,
            Create(_) => Command::Create,
            Close(_) => Command::Close,
            Read(_) => Command::Read,
            Write(_) => Command::Write,
            QueryDirectory(_) => Command::QueryDirectory,
            QueryInfo(_) => Command::QueryInfo,
            SetInfo(_) => Command::SetInfo,
            Flush(_) => Command::Flush,
            Lock(_) => Command::Lock,
            ChangeNotify(_) => Command::ChangeNotify,
            Echo => Command::Echo,
            Other(code) => return *code,
        };
        c as u16
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        match self {
            Request::Negotiate(r) => r.encode(out)?,
            Request::SessionSetup(r) => r.encode(out)?,
            Request::Logoff | Request::TreeDisconnect | Request::Echo => encode_empty(out),
            Request::TreeConnect(r) => r.encode(out)?,
            Request::Create(r) => r.encode(out)?,
            Request::Close(r) => r.encode(out),
            Request::Read(r) => r.encode(out),
            Request::Write(r) => r.encode(out)?,
            Request::QueryDirectory(r) => r.encode(out)?,
            Request::QueryInfo(r) => r.encode(out)?,
            Request::SetInfo(r) => r.encode(out)?,
            Request::Flush(r) => r.encode(out),
            Request::Lock(r) => r.encode(out)?,
            Request::ChangeNotify(r) => r.encode(out),
            Request::Other(_) => return Err(WireError::Unsupported("encoding an unknown command")),
        }
        Ok(())
    }

    /// Parses one request message (header + body).
    pub fn parse(msg: &[u8]) -> WireResult<(Header, Request)> {
        let h = Header::decode(msg)?;
        let body = match Command::from_u16(h.command) {
            Some(Command::Negotiate) => Request::Negotiate(NegotiateRequest::parse(msg)?),
            Some(Command::SessionSetup) => Request::SessionSetup(SessionSetupRequest::parse(msg)?),
            Some(Command::Logoff) => parse_empty(msg, Command::Logoff).map(|_| Request::Logoff)?,
            Some(Command::TreeConnect) => Request::TreeConnect(TreeConnectRequest::parse(msg)?),
            Some(Command::TreeDisconnect) => {
                parse_empty(msg, Command::TreeDisconnect).map(|_| Request::TreeDisconnect)?
            }
            Some(Command::Create) => Request::Create(CreateRequest::parse(msg)?),
            Some(Command::Close) => Request::Close(CloseRequest::parse(msg)?),
            Some(Command::Read) => Request::Read(ReadRequest::parse(msg)?),
            Some(Command::Write) => Request::Write(WriteRequest::parse(msg)?),
            Some(Command::QueryDirectory) => {
                Request::QueryDirectory(QueryDirectoryRequest::parse(msg)?)
            }
            Some(Command::QueryInfo) => Request::QueryInfo(QueryInfoRequest::parse(msg)?),
            Some(Command::SetInfo) => Request::SetInfo(SetInfoRequest::parse(msg)?),
            Some(Command::Flush) => Request::Flush(FlushRequest::parse(msg)?),
            Some(Command::Lock) => Request::Lock(LockRequest::parse(msg)?),
            Some(Command::ChangeNotify) => Request::ChangeNotify(ChangeNotifyRequest::parse(msg)?),
            Some(Command::Echo) => parse_empty(msg, Command::Echo).map(|_| Request::Echo)?,
            _ => Request::Other(h.command),
        };
        Ok((h, body))
    }
}

/// True when a reply with `status` to `command` carries the command's own
/// body rather than an error body.
pub fn has_normal_body(command: u16, status: u32) -> bool {
    match status {
        status::SUCCESS => true,
        status::MORE_PROCESSING_REQUIRED => command == Command::SessionSetup as u16,
        status::BUFFER_OVERFLOW => {
            command == Command::QueryInfo as u16 || command == Command::Read as u16
        }
        _ => false,
    }
}

impl Response {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        match self {
            Response::Negotiate(r) => r.encode(out)?,
            Response::SessionSetup(r) => r.encode(out)?,
            Response::Logoff | Response::TreeDisconnect | Response::Echo | Response::Flush => {
                encode_empty(out)
            }
            Response::SetInfo => encode_set_info_response(out),
            Response::Lock => encode_lock_response(out),
            Response::TreeConnect(r) => r.encode(out),
            Response::Create(r) => r.encode(out),
            Response::Close(r) => r.encode(out),
            Response::Read(r) => r.encode(out)?,
            Response::Write(r) => r.encode(out),
            Response::QueryDirectory(b) | Response::QueryInfo(b) | Response::ChangeNotify(b) => {
                encode_output(out, b)?
            }
            Response::Error(e) => e.encode(out)?,
        }
        Ok(())
    }

    /// Parses one response message (header + body). The body kind follows
    /// the header's command and status (see [`has_normal_body`]).
    pub fn parse(msg: &[u8]) -> WireResult<(Header, Response)> {
        let h = Header::decode(msg)?;
        if h.flags & FLAG_SERVER_TO_REDIR == 0 {
            return Err(WireError::Unsupported(
                "a request where a response was expected",
            ));
        }
        if !has_normal_body(h.command, h.status) {
            return Ok((h, Response::Error(ErrorResponse::parse(msg)?)));
        }
        let body = match Command::from_u16(h.command) {
            Some(Command::Negotiate) => Response::Negotiate(NegotiateResponse::parse(msg)?),
            Some(Command::SessionSetup) => {
                Response::SessionSetup(SessionSetupResponse::parse(msg)?)
            }
            Some(Command::Logoff) => parse_empty(msg, Command::Logoff).map(|_| Response::Logoff)?,
            Some(Command::TreeConnect) => Response::TreeConnect(TreeConnectResponse::parse(msg)?),
            Some(Command::TreeDisconnect) => {
                parse_empty(msg, Command::TreeDisconnect).map(|_| Response::TreeDisconnect)?
            }
            Some(Command::Create) => Response::Create(CreateResponse::parse(msg)?),
            Some(Command::Close) => Response::Close(CloseResponse::parse(msg)?),
            Some(Command::Read) => Response::Read(ReadResponse::parse(msg)?),
            Some(Command::Write) => Response::Write(WriteResponse::parse(msg)?),
            Some(Command::QueryDirectory) => {
                Response::QueryDirectory(parse_output(msg, Command::QueryDirectory)?)
            }
            Some(Command::QueryInfo) => Response::QueryInfo(parse_output(msg, Command::QueryInfo)?),
            Some(Command::SetInfo) => parse_set_info_response(msg).map(|_| Response::SetInfo)?,
            Some(Command::Flush) => parse_empty(msg, Command::Flush).map(|_| Response::Flush)?,
            Some(Command::Lock) => parse_lock_response(msg).map(|_| Response::Lock)?,
            Some(Command::ChangeNotify) => {
                Response::ChangeNotify(parse_output(msg, Command::ChangeNotify)?)
            }
            Some(Command::Echo) => parse_empty(msg, Command::Echo).map(|_| Response::Echo)?,
            _ => return Err(WireError::Unsupported("response to an unknown command")),
        };
        Ok((h, body))
    }
}

/// Header + body as one message (no transport header).
#[cfg(test)]
pub fn encode_message(
    h: &Header,
    body: impl FnOnce(&mut Vec<u8>) -> WireResult<()>,
) -> WireResult<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    h.encode(&mut out);
    body(&mut out)?;
    Ok(out)
}

/// Splits a frame into the messages of its compound chain (one for a plain
/// message). Each NextCommand must be 8-aligned, move forward and stay
/// inside the frame.
pub fn split_compound(frame: &[u8]) -> WireResult<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = frame;
    loop {
        let next = Header::decode(rest)?.next_command as usize;
        if next == 0 {
            out.push(rest);
            return Ok(out);
        }
        if next & 7 != 0 || next < HEADER_LEN || next >= rest.len() {
            return Err(WireError::BadOffset("NextCommand"));
        }
        out.push(&rest[..next]);
        rest = &rest[next..];
        if out.len() >= MAX_COMPOUND {
            return Err(WireError::Oversized {
                what: "compound chain",
                len: out.len() + 1,
                max: MAX_COMPOUND,
            });
        }
    }
}
