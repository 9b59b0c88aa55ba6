//! READ and WRITE (MS-SMB2 2.2.19–2.2.22).

use super::buf::{buffer, fit_u16, fit_u32, u16_at, u32_at, u64_at, u8_at, Put, WireResult};
use super::create::FileId;
use super::{check_size, Command, HEADER_LEN};

/// READ request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequest {
    /// Bytes wanted.
    pub length: u32,
    /// File offset.
    pub offset: u64,
    /// The handle.
    pub file_id: FileId,
    /// MinimumCount.
    pub minimum_count: u32,
}

/// READ response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResponse {
    /// DataRemaining.
    pub remaining: u32,
    /// The data.
    pub data: Vec<u8>,
}

/// WRITE request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteRequest {
    /// File offset.
    pub offset: u64,
    /// The handle.
    pub file_id: FileId,
    /// Flags.
    pub flags: u32,
    /// The data.
    pub data: Vec<u8>,
}

/// WRITE response body: the byte count written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    /// Count.
    pub count: u32,
}

impl ReadRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(49);
        out.put_u8(0x50); // Padding: where we want the data (header + 16)
        out.put_u8(0); // Flags
        out.put_u32(self.length);
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.minimum_count);
        out.put_u32(0); // Channel
        out.put_u32(0); // RemainingBytes
        out.put_u16(0); // ReadChannelInfoOffset
        out.put_u16(0); // ReadChannelInfoLength
        out.push(0);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<ReadRequest> {
        check_size(msg, Command::Read, 49)?;
        let b = HEADER_LEN;
        Ok(ReadRequest {
            length: u32_at(msg, b + 4, "Length")?,
            offset: u64_at(msg, b + 8, "Offset")?,
            file_id: FileId::parse(msg, b + 16)?,
            minimum_count: u32_at(msg, b + 32, "MinimumCount")?,
        })
    }
}

impl ReadResponse {
    /// Appends the body; the data starts at header + 80 (0x50).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = out.len() + 16;
        out.put_u16(17);
        out.put_u8(u8::try_from(off).map_err(|_| super::WireError::BadOffset("DataOffset"))?);
        out.put_u8(0);
        out.put_u32(fit_u32(self.data.len(), "DataLength")?);
        out.put_u32(self.remaining);
        out.put_u32(0);
        out.extend_from_slice(&self.data);
        if self.data.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<ReadResponse> {
        check_size(msg, Command::Read, 17)?;
        let b = HEADER_LEN;
        let off = usize::from(u8_at(msg, b + 2, "DataOffset")?);
        let len = u32_at(msg, b + 4, "DataLength")? as usize;
        Ok(ReadResponse {
            remaining: u32_at(msg, b + 8, "DataRemaining")?,
            data: buffer(msg, off, len, b + 16, "Data")?.to_vec(),
        })
    }
}

impl WriteRequest {
    /// Appends the body; the data starts at header + 112 (0x70).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = out.len() + 48;
        out.put_u16(49);
        out.put_u16(fit_u16(off, "DataOffset")?);
        out.put_u32(fit_u32(self.data.len(), "Length")?);
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(0); // Channel
        out.put_u32(0); // RemainingBytes
        out.put_u16(0); // WriteChannelInfoOffset
        out.put_u16(0); // WriteChannelInfoLength
        out.put_u32(self.flags);
        out.extend_from_slice(&self.data);
        if self.data.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<WriteRequest> {
        check_size(msg, Command::Write, 49)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 2, "DataOffset")?);
        let len = u32_at(msg, b + 4, "Length")? as usize;
        Ok(WriteRequest {
            offset: u64_at(msg, b + 8, "Offset")?,
            file_id: FileId::parse(msg, b + 16)?,
            flags: u32_at(msg, b + 44, "Flags")?,
            data: buffer(msg, off, len, b + 48, "Data")?.to_vec(),
        })
    }
}

impl WriteResponse {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(17);
        out.put_u16(0);
        out.put_u32(self.count);
        out.put_u32(0); // Remaining
        out.put_u16(0); // WriteChannelInfoOffset
        out.put_u16(0); // WriteChannelInfoLength
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<WriteResponse> {
        check_size(msg, Command::Write, 17)?;
        Ok(WriteResponse {
            count: u32_at(msg, HEADER_LEN + 4, "Count")?,
        })
    }
}
