//! TREE_CONNECT (MS-SMB2 2.2.9, 2.2.10). TREE_DISCONNECT uses the empty body
//! in [`super::session`].

use super::buf::{buffer, fit_u16, to_utf16, u16_at, u32_at, u8_at, utf16, Put, WireResult};
use super::{check_size, Command, HEADER_LEN};

/// ShareType: disk.
pub const SHARE_TYPE_DISK: u8 = 1;

/// TREE_CONNECT request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConnectRequest {
    /// Flags (0).
    pub flags: u16,
    /// `\\server\share`.
    pub path: String,
}

/// TREE_CONNECT response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConnectResponse {
    /// `SHARE_TYPE_*`.
    pub share_type: u8,
    /// ShareFlags.
    pub share_flags: u32,
    /// Capabilities.
    pub capabilities: u32,
    /// MaximalAccess.
    pub maximal_access: u32,
}

impl TreeConnectRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let path = to_utf16(&self.path);
        let off = out.len() + 8;
        out.put_u16(9);
        out.put_u16(self.flags);
        out.put_u16(fit_u16(off, "PathOffset")?);
        out.put_u16(fit_u16(path.len(), "PathLength")?);
        out.extend(path);
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<TreeConnectRequest> {
        check_size(msg, Command::TreeConnect, 9)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 4, "PathOffset")?);
        let len = usize::from(u16_at(msg, b + 6, "PathLength")?);
        Ok(TreeConnectRequest {
            flags: u16_at(msg, b + 2, "Flags")?,
            path: utf16(buffer(msg, off, len, b + 8, "Path")?, "Path")?,
        })
    }
}

impl TreeConnectResponse {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(16);
        out.put_u8(self.share_type);
        out.put_u8(0);
        out.put_u32(self.share_flags);
        out.put_u32(self.capabilities);
        out.put_u32(self.maximal_access);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<TreeConnectResponse> {
        check_size(msg, Command::TreeConnect, 16)?;
        let b = HEADER_LEN;
        Ok(TreeConnectResponse {
            share_type: u8_at(msg, b + 2, "ShareType")?,
            share_flags: u32_at(msg, b + 4, "ShareFlags")?,
            capabilities: u32_at(msg, b + 8, "Capabilities")?,
            maximal_access: u32_at(msg, b + 12, "MaximalAccess")?,
        })
    }
}
