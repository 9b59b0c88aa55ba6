//! The client's error type.

use std::fmt;
use std::io;

use crate::server::command_name;
use crate::wire::WireError;

/// Why a client operation failed.
#[derive(Debug)]
pub enum ClientError {
    /// A reply did not parse.
    Wire(WireError),
    /// The transport failed or closed.
    Io(io::Error),
    /// The server answered with an error status.
    Status {
        /// The command code.
        command: u16,
        /// The NTSTATUS.
        status: u32,
    },
    /// Not enough credits to send the request.
    NoCredits {
        /// Credits the request needs.
        need: u32,
        /// Credits held.
        have: u32,
    },
    /// A reply for a MessageId we are not waiting for.
    UnknownMessageId(u64),
    /// A reply whose command differs from the request's.
    CommandMismatch {
        /// What we sent.
        sent: u16,
        /// What came back.
        got: u16,
    },
    /// A request larger than the negotiated maximum.
    TooLarge {
        /// Its size.
        len: usize,
        /// The negotiated maximum.
        max: u32,
    },
    /// The server's NEGOTIATE reply chose a dialect we did not offer.
    UnofferedDialect(u16),
    /// A file too large to read whole
    /// ([`Client::read_file`](crate::client::api::Client::read_file)).
    FileTooLarge {
        /// Its size, as the server reported it.
        size: u64,
        /// The most that is read whole.
        max: u64,
    },
    /// The server's reply is well-formed but not what the protocol allows
    /// at this point (e.g. SESSION_SETUP without a CHALLENGE).
    Protocol(&'static str),
    /// The caller was signalled (its task interrupted or killed) while it
    /// waited for credits or for its reply; a late reply is discarded.
    Interrupted,
    /// No reply within the per-request timeout
    /// ([`ConnectOptions::timeout`](crate::client::api::ConnectOptions::timeout));
    /// a late reply is discarded. If the server sent nothing at all while
    /// the caller waited, the connection is also declared dead and every
    /// other caller gets [`ClientError::Disconnected`].
    TimedOut(std::time::Duration),
    /// The connection is gone (server closed or reset it, or sent a
    /// malformed or oversized frame); the text says why.
    Disconnected(std::sync::Arc<str>),
    /// The daemon is shutting down (Ctrl-C, logoff or the last handle
    /// dropped) and takes no more requests.
    Shutdown,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Wire(e) => write!(f, "malformed reply: {e}"),
            ClientError::Io(e) => write!(f, "transport: {e}"),
            ClientError::Status { command, status } => {
                write!(
                    f,
                    "{} failed with status {status:#010x}",
                    command_name(*command)
                )
            }
            ClientError::NoCredits { need, have } => {
                write!(f, "no credits: need {need}, have {have}")
            }
            ClientError::UnknownMessageId(id) => write!(f, "reply for unknown MessageId {id}"),
            ClientError::CommandMismatch { sent, got } => {
                write!(
                    f,
                    "sent {} but the reply is for {}",
                    command_name(*sent),
                    command_name(*got)
                )
            }
            ClientError::TooLarge { len, max } => {
                write!(f, "request of {len} bytes exceeds the negotiated {max}")
            }
            ClientError::UnofferedDialect(d) => write!(
                f,
                "the server chose dialect {d:#06x}, which was not offered"
            ),
            ClientError::FileTooLarge { size, max } => write!(
                f,
                "the server reports a file of {size} bytes, more than the {max} read whole"
            ),
            ClientError::Protocol(what) => write!(f, "protocol violation: {what}"),
            ClientError::Interrupted => f.write_str("interrupted while waiting for the server"),
            ClientError::TimedOut(t) => write!(f, "no reply from the server within {t:?}"),
            ClientError::Disconnected(why) => write!(f, "connection lost: {why}"),
            ClientError::Shutdown => f.write_str("smbiod is shutting down"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        ClientError::Wire(e)
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}
