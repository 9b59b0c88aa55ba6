//! SESSION_SETUP (MS-SMB2 2.2.5, 2.2.6) and the 4-byte bodies shared by
//! LOGOFF, TREE_DISCONNECT and ECHO (2.2.7, 2.2.11, 2.2.28).

use super::buf::{buffer, fit_u16, u16_at, u32_at, u64_at, u8_at, Put, WireResult};
use super::{check_size, Command, HEADER_LEN};

/// SessionFlags: the session is a guest session.
pub const SESSION_FLAG_IS_GUEST: u16 = 0x1;
/// SessionFlags: the session is anonymous.
pub const SESSION_FLAG_IS_NULL: u16 = 0x2;

/// SESSION_SETUP request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest {
    /// Flags (1: binding).
    pub flags: u8,
    /// SecurityMode (1: signing enabled).
    pub security_mode: u8,
    /// Capabilities.
    pub capabilities: u32,
    /// PreviousSessionId.
    pub previous_session_id: u64,
    /// The GSS token (SPNEGO or raw NTLMSSP).
    pub security_buffer: Vec<u8>,
}

/// SESSION_SETUP response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse {
    /// `SESSION_FLAG_*`.
    pub session_flags: u16,
    /// The GSS token.
    pub security_buffer: Vec<u8>,
}

impl SessionSetupRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = out.len() + 24;
        out.put_u16(25);
        out.put_u8(self.flags);
        out.put_u8(self.security_mode);
        out.put_u32(self.capabilities);
        out.put_u32(0); // Channel
        out.put_u16(fit_u16(off, "SecurityBufferOffset")?);
        out.put_u16(fit_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        out.put_u64(self.previous_session_id);
        out.extend_from_slice(&self.security_buffer);
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<SessionSetupRequest> {
        check_size(msg, Command::SessionSetup, 25)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 12, "SecurityBufferOffset")?);
        let len = usize::from(u16_at(msg, b + 14, "SecurityBufferLength")?);
        Ok(SessionSetupRequest {
            flags: u8_at(msg, b + 2, "Flags")?,
            security_mode: u8_at(msg, b + 3, "SecurityMode")?,
            capabilities: u32_at(msg, b + 4, "Capabilities")?,
            previous_session_id: u64_at(msg, b + 16, "PreviousSessionId")?,
            security_buffer: buffer(msg, off, len, b + 24, "SecurityBuffer")?.to_vec(),
        })
    }
}

impl SessionSetupResponse {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = out.len() + 8;
        out.put_u16(9);
        out.put_u16(self.session_flags);
        out.put_u16(fit_u16(off, "SecurityBufferOffset")?);
        out.put_u16(fit_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        out.extend_from_slice(&self.security_buffer);
        if self.security_buffer.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<SessionSetupResponse> {
        check_size(msg, Command::SessionSetup, 9)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 4, "SecurityBufferOffset")?);
        let len = usize::from(u16_at(msg, b + 6, "SecurityBufferLength")?);
        Ok(SessionSetupResponse {
            session_flags: u16_at(msg, b + 2, "SessionFlags")?,
            security_buffer: buffer(msg, off, len, b + 8, "SecurityBuffer")?.to_vec(),
        })
    }
}

/// Appends the 4-byte body (StructureSize 4, Reserved) used by LOGOFF,
/// TREE_DISCONNECT and ECHO in both directions.
pub fn encode_empty(out: &mut Vec<u8>) {
    out.put_u16(4);
    out.put_u16(0);
}

/// Checks a 4-byte body of `command`.
pub fn parse_empty(msg: &[u8], command: Command) -> WireResult<()> {
    check_size(msg, command, 4)
}
