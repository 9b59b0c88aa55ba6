//! CHANGE_NOTIFY (MS-SMB2 2.2.35, 2.2.36) and FILE_NOTIFY_INFORMATION
//! (MS-FSCC 2.7.1), the list a CHANGE_NOTIFY completes with.

use super::buf::{fit_u32, to_utf16, u16_at, u32_at, Put, WireResult};
use super::create::FileId;
use super::{check_size, Command, HEADER_LEN};

/// CHANGE_NOTIFY flag: watch the whole subtree.
pub const WATCH_TREE: u16 = 0x1;

/// CHANGE_NOTIFY request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    /// `WATCH_TREE` or 0.
    pub flags: u16,
    /// The most bytes of FILE_NOTIFY_INFORMATION the client takes.
    pub output_length: u32,
    /// The directory handle.
    pub file_id: FileId,
    /// FILE_NOTIFY_CHANGE_* bits.
    pub filter: u32,
}

impl ChangeNotifyRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(32);
        out.put_u16(self.flags);
        out.put_u32(self.output_length);
        self.file_id.encode(out);
        out.put_u32(self.filter);
        out.put_u32(0);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<ChangeNotifyRequest> {
        check_size(msg, Command::ChangeNotify, 32)?;
        let b = HEADER_LEN;
        Ok(ChangeNotifyRequest {
            flags: u16_at(msg, b + 2, "Flags")?,
            output_length: u32_at(msg, b + 4, "OutputBufferLength")?,
            file_id: FileId::parse(msg, b + 8)?,
            filter: u32_at(msg, b + 24, "CompletionFilter")?,
        })
    }
}

/// FILE_ACTION_* values of FILE_NOTIFY_INFORMATION.
pub mod action {
    /// A name was added.
    pub const ADDED: u32 = 1;
    /// A name was removed.
    pub const REMOVED: u32 = 2;
    /// A file's data or attributes changed.
    pub const MODIFIED: u32 = 3;
    /// A rename's old name.
    pub const RENAMED_OLD_NAME: u32 = 4;
    /// A rename's new name.
    pub const RENAMED_NEW_NAME: u32 = 5;
}

/// FILE_NOTIFY_INFORMATION entries for `changes` (action, name relative
/// to the watched directory), each 4-aligned and linked by
/// NextEntryOffset.
pub fn encode_notify_info(changes: &[(u32, String)]) -> WireResult<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (act, name)) in changes.iter().enumerate() {
        let start = out.len();
        let name = to_utf16(name);
        out.put_u32(0);
        out.put_u32(*act);
        out.put_u32(fit_u32(name.len(), "FileNameLength")?);
        out.extend_from_slice(&name);
        if i + 1 < changes.len() {
            out.pad_to(4);
            let next = fit_u32(out.len() - start, "NextEntryOffset")?;
            out[start..start + 4].copy_from_slice(&next.to_le_bytes());
        }
    }
    Ok(out)
}

/// Parses a FILE_NOTIFY_INFORMATION list (for tests).
#[cfg(test)]
pub fn parse_notify_info(mut buf: &[u8]) -> WireResult<Vec<(u32, String)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let next = u32_at(buf, 0, "NextEntryOffset")? as usize;
        let act = u32_at(buf, 4, "Action")?;
        let len = u32_at(buf, 8, "FileNameLength")? as usize;
        let raw = super::buf::bytes(buf, 12, len, "FileName")?;
        out.push((act, super::buf::utf16(raw, "FileName")?));
        if next == 0 {
            break;
        }
        buf = buf
            .get(next..)
            .ok_or(super::WireError::BadOffset("NextEntryOffset"))?;
    }
    Ok(out)
}
