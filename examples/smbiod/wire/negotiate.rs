//! NEGOTIATE request and response (MS-SMB2 2.2.3, 2.2.4), with the 3.1.1
//! negotiate contexts kept as raw (type, data) pairs.

use super::buf::{array, buffer, bytes, fit_u16, fit_u32, u16_at, u32_at, u64_at, Put, WireResult};
use super::{check_size, Command, WireError, HEADER_LEN};

/// The dialects this implementation speaks, oldest first.
pub const DIALECTS: [u16; 5] = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311];
/// SMB 3.1.1, the only dialect with negotiate contexts.
pub const DIALECT_311: u16 = 0x0311;
/// Negotiate context type: PREAUTH_INTEGRITY_CAPABILITIES.
pub const CTX_PREAUTH: u16 = 1;
/// Preauth hash algorithm: SHA-512.
pub const HASH_SHA512: u16 = 1;
/// SecurityMode: signing enabled (not required).
pub const SIGNING_ENABLED: u16 = 1;
/// Capabilities: multi-credit (large MTU) requests.
pub const CAP_LARGE_MTU: u32 = 0x4;
const MAX_CONTEXTS: usize = 64;

/// One negotiate context: its type and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateContext {
    /// ContextType.
    pub ctype: u16,
    /// Data (DataLength bytes).
    pub data: Vec<u8>,
}

impl NegotiateContext {
    /// A PREAUTH_INTEGRITY_CAPABILITIES context offering SHA-512 with `salt`.
    pub fn preauth_sha512(salt: [u8; 32]) -> NegotiateContext {
        let mut data = Vec::with_capacity(38);
        data.put_u16(1); // HashAlgorithmCount
        data.put_u16(32); // SaltLength
        data.put_u16(HASH_SHA512);
        data.extend_from_slice(&salt);
        NegotiateContext {
            ctype: CTX_PREAUTH,
            data,
        }
    }
}

/// NEGOTIATE request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateRequest {
    /// Offered dialects.
    pub dialects: Vec<u16>,
    /// SecurityMode (1: signing enabled).
    pub security_mode: u16,
    /// Capabilities.
    pub capabilities: u32,
    /// ClientGuid.
    pub client_guid: [u8; 16],
    /// Negotiate contexts (sent only when 3.1.1 is offered).
    pub contexts: Vec<NegotiateContext>,
}

/// NEGOTIATE response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateResponse {
    /// SecurityMode.
    pub security_mode: u16,
    /// The chosen dialect.
    pub dialect: u16,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// Capabilities.
    pub capabilities: u32,
    /// MaxTransactSize.
    pub max_transact: u32,
    /// MaxReadSize.
    pub max_read: u32,
    /// MaxWriteSize.
    pub max_write: u32,
    /// SystemTime (FILETIME).
    pub system_time: u64,
    /// ServerStartTime (FILETIME).
    pub server_start_time: u64,
    /// The GSS (SPNEGO) token advertising the mechanisms.
    pub security_buffer: Vec<u8>,
    /// Negotiate contexts (3.1.1 only).
    pub contexts: Vec<NegotiateContext>,
}

fn encode_contexts(out: &mut Vec<u8>, contexts: &[NegotiateContext]) -> WireResult<()> {
    for (i, c) in contexts.iter().enumerate() {
        if i > 0 {
            out.pad_to(8);
        }
        out.put_u16(c.ctype);
        out.put_u16(fit_u16(c.data.len(), "negotiate context")?);
        out.put_u32(0);
        out.extend_from_slice(&c.data);
    }
    Ok(())
}

fn parse_contexts(msg: &[u8], off: usize, count: usize) -> WireResult<Vec<NegotiateContext>> {
    if count > MAX_CONTEXTS {
        return Err(WireError::Oversized {
            what: "NegotiateContextCount",
            len: count,
            max: MAX_CONTEXTS,
        });
    }
    let mut out = Vec::with_capacity(count);
    let mut pos = off;
    for _ in 0..count {
        let ctype = u16_at(msg, pos, "negotiate context")?;
        let len = usize::from(u16_at(msg, pos + 2, "negotiate context")?);
        let data = bytes(msg, pos + 8, len, "negotiate context data")?.to_vec();
        out.push(NegotiateContext { ctype, data });
        pos = (pos + 8 + len).next_multiple_of(8);
    }
    Ok(out)
}

/// Offset of the context list: after `fixed_end`, 8-aligned.
fn contexts_offset(fixed_end: usize) -> usize {
    fixed_end.next_multiple_of(8)
}

impl NegotiateRequest {
    /// Appends the body (after the header already in `out`).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let dialects_end = out.len() + 36 + 2 * self.dialects.len();
        let ctx_off = contexts_offset(dialects_end);
        out.put_u16(36);
        out.put_u16(fit_u16(self.dialects.len(), "DialectCount")?);
        out.put_u16(self.security_mode);
        out.put_u16(0);
        out.put_u32(self.capabilities);
        out.extend_from_slice(&self.client_guid);
        if self.contexts.is_empty() {
            out.put_u64(0); // ClientStartTime
        } else {
            out.put_u32(fit_u32(ctx_off, "NegotiateContextOffset")?);
            out.put_u16(fit_u16(self.contexts.len(), "NegotiateContextCount")?);
            out.put_u16(0);
        }
        for d in &self.dialects {
            out.put_u16(*d);
        }
        if !self.contexts.is_empty() {
            out.pad_to(8);
            encode_contexts(out, &self.contexts)?;
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<NegotiateRequest> {
        check_size(msg, Command::Negotiate, 36)?;
        let b = HEADER_LEN;
        let count = usize::from(u16_at(msg, b + 2, "DialectCount")?);
        let raw = bytes(msg, b + 36, 2 * count, "Dialects")?;
        let dialects: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let contexts = if dialects.contains(&DIALECT_311) {
            let off = u32_at(msg, b + 28, "NegotiateContextOffset")? as usize;
            let n = usize::from(u16_at(msg, b + 32, "NegotiateContextCount")?);
            if n > 0 && off < b + 36 {
                return Err(WireError::BadOffset("NegotiateContextOffset"));
            }
            parse_contexts(msg, off, n)?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            dialects,
            security_mode: u16_at(msg, b + 4, "SecurityMode")?,
            capabilities: u32_at(msg, b + 8, "Capabilities")?,
            client_guid: array(msg, b + 12, "ClientGuid")?,
            contexts,
        })
    }
}

impl NegotiateResponse {
    /// Appends the body (after the header already in `out`).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let b = out.len();
        let sec_off = b + 64;
        let ctx_off = contexts_offset(sec_off + self.security_buffer.len());
        out.put_u16(65);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect);
        out.put_u16(fit_u16(self.contexts.len(), "NegotiateContextCount")?);
        out.extend_from_slice(&self.server_guid);
        out.put_u32(self.capabilities);
        out.put_u32(self.max_transact);
        out.put_u32(self.max_read);
        out.put_u32(self.max_write);
        out.put_u64(self.system_time);
        out.put_u64(self.server_start_time);
        out.put_u16(fit_u16(sec_off, "SecurityBufferOffset")?);
        out.put_u16(fit_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        out.put_u32(if self.contexts.is_empty() {
            0
        } else {
            fit_u32(ctx_off, "NegotiateContextOffset")?
        });
        out.extend_from_slice(&self.security_buffer);
        if self.security_buffer.is_empty() {
            out.push(0); // the variable part is at least one byte
        }
        if !self.contexts.is_empty() {
            out.pad_to(8);
            encode_contexts(out, &self.contexts)?;
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<NegotiateResponse> {
        check_size(msg, Command::Negotiate, 65)?;
        let b = HEADER_LEN;
        let dialect = u16_at(msg, b + 4, "DialectRevision")?;
        let sec_off = usize::from(u16_at(msg, b + 56, "SecurityBufferOffset")?);
        let sec_len = usize::from(u16_at(msg, b + 58, "SecurityBufferLength")?);
        let contexts = if dialect == DIALECT_311 {
            let n = usize::from(u16_at(msg, b + 6, "NegotiateContextCount")?);
            let off = u32_at(msg, b + 60, "NegotiateContextOffset")? as usize;
            if n > 0 && off < b + 64 {
                return Err(WireError::BadOffset("NegotiateContextOffset"));
            }
            parse_contexts(msg, off, n)?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode: u16_at(msg, b + 2, "SecurityMode")?,
            dialect,
            server_guid: array(msg, b + 8, "ServerGuid")?,
            capabilities: u32_at(msg, b + 24, "Capabilities")?,
            max_transact: u32_at(msg, b + 28, "MaxTransactSize")?,
            max_read: u32_at(msg, b + 32, "MaxReadSize")?,
            max_write: u32_at(msg, b + 36, "MaxWriteSize")?,
            system_time: u64_at(msg, b + 40, "SystemTime")?,
            server_start_time: u64_at(msg, b + 48, "ServerStartTime")?,
            security_buffer: buffer(msg, sec_off, sec_len, b + 64, "SecurityBuffer")?.to_vec(),
            contexts,
        })
    }
}
