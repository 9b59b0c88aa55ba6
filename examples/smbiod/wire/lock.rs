//! LOCK (MS-SMB2 2.2.26, 2.2.27).

use super::buf::{u16_at, u32_at, u64_at, Put, WireResult};
use super::create::FileId;
use super::{check_size, Command, WireError, HEADER_LEN};

/// Lock element flags (MS-SMB2 2.2.26.1).
pub mod flags {
    /// A shared (read) lock.
    pub const SHARED: u32 = 0x1;
    /// An exclusive (write) lock.
    pub const EXCLUSIVE: u32 = 0x2;
    /// Remove a lock.
    pub const UNLOCK: u32 = 0x4;
    /// Fail at once instead of waiting for a conflicting lock to go.
    pub const FAIL_IMMEDIATELY: u32 = 0x10;
}

/// One SMB2_LOCK_ELEMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    /// First byte of the range.
    pub offset: u64,
    /// Bytes in the range (0 is a valid, empty range).
    pub length: u64,
    /// `flags::*`.
    pub flags: u32,
}

/// LOCK request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber/Index (kept, not checked: no resilient handles).
    pub sequence: u32,
    /// The handle.
    pub file_id: FileId,
    /// The ranges, in order; at least one on the wire.
    pub locks: Vec<LockElement>,
}

/// Most elements one LOCK request may carry here (the frame limit allows
/// far more; Samba caps at 64k by the u16 count).
pub const MAX_LOCK_ELEMENTS: usize = 4096;

impl LockRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        if self.locks.len() > MAX_LOCK_ELEMENTS {
            return Err(WireError::Oversized {
                what: "LockCount",
                len: self.locks.len(),
                max: MAX_LOCK_ELEMENTS,
            });
        }
        out.put_u16(48);
        out.put_u16(self.locks.len() as u16); // ≤ MAX_LOCK_ELEMENTS
        out.put_u32(self.sequence);
        self.file_id.encode(out);
        for l in &self.locks {
            out.put_u64(l.offset);
            out.put_u64(l.length);
            out.put_u32(l.flags);
            out.put_u32(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`. A LockCount of 0 parses (to an empty
    /// list): the server answers it with STATUS_INVALID_PARAMETER.
    pub fn parse(msg: &[u8]) -> WireResult<LockRequest> {
        check_size(msg, Command::Lock, 48)?;
        let b = HEADER_LEN;
        let count = usize::from(u16_at(msg, b + 2, "LockCount")?);
        if count > MAX_LOCK_ELEMENTS {
            return Err(WireError::Oversized {
                what: "LockCount",
                len: count,
                max: MAX_LOCK_ELEMENTS,
            });
        }
        let mut locks = Vec::with_capacity(count);
        for i in 0..count {
            let at = b + 24 + i * 24;
            locks.push(LockElement {
                offset: u64_at(msg, at, "Lock.Offset")?,
                length: u64_at(msg, at + 8, "Lock.Length")?,
                flags: u32_at(msg, at + 16, "Lock.Flags")?,
            });
        }
        Ok(LockRequest {
            sequence: u32_at(msg, b + 4, "LockSequence")?,
            file_id: FileId::parse(msg, b + 8)?,
            locks,
        })
    }
}

/// Appends the LOCK response body (StructureSize 4, Reserved).
pub fn encode_lock_response(out: &mut Vec<u8>) {
    out.put_u16(4);
    out.put_u16(0);
}

/// Checks a LOCK response body.
pub fn parse_lock_response(msg: &[u8]) -> WireResult<()> {
    check_size(msg, Command::Lock, 4)
}
