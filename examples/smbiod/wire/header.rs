//! The 64-byte SMB2 header (MS-SMB2 2.2.1), sync and async forms.

use super::buf::{array, u16_at, u32_at, u64_at, Put, WireResult};
use super::WireError;

/// Size of the SMB2 header; every body starts here.
pub const HEADER_LEN: usize = 64;
/// `FE 'S' 'M' 'B'`.
pub const PROTOCOL_ID: [u8; 4] = *b"\xFESMB";

/// Flags: set in every response.
pub const FLAG_SERVER_TO_REDIR: u32 = 0x1;
/// Flags: the header carries an AsyncId (interim and async final replies).
pub const FLAG_ASYNC: u32 = 0x2;
/// Flags: part of a related compound chain.
pub const FLAG_RELATED: u32 = 0x4;

/// SMB2 command codes (MS-SMB2 2.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Command {
    /// NEGOTIATE
    Negotiate = 0,
    /// SESSION_SETUP
    SessionSetup = 1,
    /// LOGOFF
    Logoff = 2,
    /// TREE_CONNECT
    TreeConnect = 3,
    /// TREE_DISCONNECT
    TreeDisconnect = 4,
    /// CREATE
    Create = 5,
    /// CLOSE
    Close = 6,
    /// FLUSH
    Flush = 7,
    /// READ
    Read = 8,
    /// WRITE
    Write = 9,
    /// LOCK
    Lock = 10,
    /// IOCTL
    Ioctl = 11,
    /// CANCEL
    Cancel = 12,
    /// ECHO
    Echo = 13,
    /// QUERY_DIRECTORY
    QueryDirectory = 14,
    /// CHANGE_NOTIFY
    ChangeNotify = 15,
    /// QUERY_INFO
    QueryInfo = 16,
    /// SET_INFO
    SetInfo = 17,
    /// OPLOCK_BREAK
    OplockBreak = 18,
}

impl Command {
    /// The command for a code, if it is one of the 19 SMB2 commands.
    pub fn from_u16(code: u16) -> Option<Command> {
        use Command::*;
        const ALL: [Command; 19] = [
            Negotiate,
            SessionSetup,
            Logoff,
            TreeConnect,
            TreeDisconnect,
            Create,
            Close,
            Flush,
            Read,
            Write,
            Lock,
            Ioctl,
            Cancel,
            Echo,
            QueryDirectory,
            ChangeNotify,
            QueryInfo,
            SetInfo,
            OplockBreak,
        ];
        ALL.get(usize::from(code)).copied()
    }
}

/// A decoded SMB2 header. The signature is not kept: nothing here signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Credits this request consumes (0 on 2.0.2).
    pub credit_charge: u16,
    /// NTSTATUS in responses; ChannelSequence/Reserved (0) in requests.
    pub status: u32,
    /// Raw command code (see [`Command`]).
    pub command: u16,
    /// CreditRequest (requests) or CreditResponse (responses).
    pub credits: u16,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Offset of the next message of a compound chain, 0 for the last.
    pub next_command: u32,
    /// The MessageId.
    pub message_id: u64,
    /// AsyncId, meaningful only with [`FLAG_ASYNC`].
    pub async_id: u64,
    /// TreeId (sync form only).
    pub tree_id: u32,
    /// SessionId.
    pub session_id: u64,
}

impl Header {
    /// A request header for `command` with everything else zero.
    #[cfg(test)]
    pub fn request(command: Command) -> Header {
        Header {
            command: command as u16,
            ..Header::default()
        }
    }

    /// True when this is an interim `STATUS_PENDING` reply.
    pub fn is_interim(&self) -> bool {
        self.flags & FLAG_ASYNC != 0 && self.status == super::status::PENDING
    }

    /// Appends the 64 header bytes (zero signature).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_ID);
        out.put_u16(HEADER_LEN as u16);
        out.put_u16(self.credit_charge);
        out.put_u32(self.status);
        out.put_u16(self.command);
        out.put_u16(self.credits);
        out.put_u32(self.flags);
        out.put_u32(self.next_command);
        out.put_u64(self.message_id);
        if self.flags & FLAG_ASYNC != 0 {
            out.put_u64(self.async_id);
        } else {
            out.put_u32(0);
            out.put_u32(self.tree_id);
        }
        out.put_u64(self.session_id);
        out.extend_from_slice(&[0u8; 16]);
    }

    /// Decodes the header at the start of `msg`.
    pub fn decode(msg: &[u8]) -> WireResult<Header> {
        if msg.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                what: "SMB2 header",
                need: HEADER_LEN,
                have: msg.len(),
            });
        }
        if array::<4>(msg, 0, "ProtocolId")? != PROTOCOL_ID {
            return Err(WireError::BadMagic);
        }
        let size = u16_at(msg, 4, "StructureSize")?;
        if usize::from(size) != HEADER_LEN {
            return Err(WireError::BadStructureSize {
                command: u16_at(msg, 12, "Command")?,
                got: size,
            });
        }
        let flags = u32_at(msg, 16, "Flags")?;
        let async_form = flags & FLAG_ASYNC != 0;
        Ok(Header {
            credit_charge: u16_at(msg, 6, "CreditCharge")?,
            status: u32_at(msg, 8, "Status")?,
            command: u16_at(msg, 12, "Command")?,
            credits: u16_at(msg, 14, "Credits")?,
            flags,
            next_command: u32_at(msg, 20, "NextCommand")?,
            message_id: u64_at(msg, 24, "MessageId")?,
            async_id: if async_form {
                u64_at(msg, 32, "AsyncId")?
            } else {
                0
            },
            tree_id: if async_form {
                0
            } else {
                u32_at(msg, 36, "TreeId")?
            },
            session_id: u64_at(msg, 40, "SessionId")?,
        })
    }
}
