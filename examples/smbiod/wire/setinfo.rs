//! SET_INFO (MS-SMB2 2.2.39, 2.2.40), FLUSH (2.2.17, 2.2.18) and the
//! file information classes a client sets (MS-FSCC 2.4): basic info,
//! rename, disposition, end of file.

use super::buf::{
    buffer, fit_u16, fit_u32, to_utf16, u16_at, u32_at, u64_at, u8_at, utf16, Put, WireResult,
};
use super::create::FileId;
use super::{check_size, Command, WireError, HEADER_LEN};

/// File classes a SET_INFO may carry (InfoType 1).
pub mod class {
    /// FileBasicInformation: times and attributes.
    pub const BASIC: u8 = 4;
    /// FileRenameInformation.
    pub const RENAME: u8 = 10;
    /// FileDispositionInformation: delete on close.
    pub const DISPOSITION: u8 = 13;
    /// FileEndOfFileInformation: the size.
    pub const END_OF_FILE: u8 = 20;
}

/// SET_INFO request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetInfoRequest {
    /// InfoType.
    pub info_type: u8,
    /// FileInfoClass.
    pub class: u8,
    /// AdditionalInformation.
    pub additional: u32,
    /// The handle.
    pub file_id: FileId,
    /// The information to set.
    pub buffer: Vec<u8>,
}

impl SetInfoRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = out.len() + 32;
        out.put_u16(33);
        out.put_u8(self.info_type);
        out.put_u8(self.class);
        out.put_u32(fit_u32(self.buffer.len(), "BufferLength")?);
        out.put_u16(fit_u16(off, "BufferOffset")?);
        out.put_u16(0);
        out.put_u32(self.additional);
        self.file_id.encode(out);
        out.extend_from_slice(&self.buffer);
        if self.buffer.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<SetInfoRequest> {
        check_size(msg, Command::SetInfo, 33)?;
        let b = HEADER_LEN;
        let len = u32_at(msg, b + 4, "BufferLength")? as usize;
        let off = usize::from(u16_at(msg, b + 8, "BufferOffset")?);
        Ok(SetInfoRequest {
            info_type: u8_at(msg, b + 2, "InfoType")?,
            class: u8_at(msg, b + 3, "FileInfoClass")?,
            additional: u32_at(msg, b + 12, "AdditionalInformation")?,
            file_id: FileId::parse(msg, b + 16)?,
            buffer: buffer(msg, off, len, b + 32, "Buffer")?.to_vec(),
        })
    }
}

/// Appends the SET_INFO response body (StructureSize 2).
pub fn encode_set_info_response(out: &mut Vec<u8>) {
    out.put_u16(2);
}

/// Checks a SET_INFO response body.
pub fn parse_set_info_response(msg: &[u8]) -> WireResult<()> {
    check_size(msg, Command::SetInfo, 2)
}

/// FLUSH request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlushRequest {
    /// The handle.
    pub file_id: FileId,
}

impl FlushRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(24);
        out.put_u16(0);
        out.put_u32(0);
        self.file_id.encode(out);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<FlushRequest> {
        check_size(msg, Command::Flush, 24)?;
        Ok(FlushRequest {
            file_id: FileId::parse(msg, HEADER_LEN + 8)?,
        })
    }
}

/// FileBasicInformation as set: each time is a FILETIME, 0 or -1 meaning
/// "leave it"; attributes 0 meaning "leave them".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicInfo {
    /// CreationTime, LastAccessTime, LastWriteTime, ChangeTime.
    pub times: [u64; 4],
    /// FileAttributes.
    pub attributes: u32,
}

impl BasicInfo {
    /// The 40-byte buffer.
    #[cfg_attr(not(test), allow(dead_code))] // the client side, for the tests
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        for t in self.times {
            out.put_u64(t);
        }
        out.put_u32(self.attributes);
        out.put_u32(0);
        out
    }

    /// Parses the buffer.
    pub fn parse(buf: &[u8]) -> WireResult<BasicInfo> {
        let mut times = [0u64; 4];
        for (i, t) in times.iter_mut().enumerate() {
            *t = u64_at(buf, 8 * i, "FILETIME")?;
        }
        Ok(BasicInfo {
            times,
            attributes: u32_at(buf, 32, "FileAttributes")?,
        })
    }
}

/// FileRenameInformation, the SMB2 form (MS-FSCC 2.4.42.2): the new name
/// is relative to the share root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenameInfo {
    /// ReplaceIfExists.
    pub replace: bool,
    /// RootDirectory: must be 0 over SMB2.
    pub root_directory: u64,
    /// The new name.
    pub name: String,
}

impl RenameInfo {
    /// The buffer.
    #[cfg_attr(not(test), allow(dead_code))] // the client side, for the tests
    pub fn encode(&self) -> WireResult<Vec<u8>> {
        let name = to_utf16(&self.name);
        let mut out = Vec::with_capacity(20 + name.len());
        out.put_u8(u8::from(self.replace));
        out.extend_from_slice(&[0; 7]);
        out.put_u64(self.root_directory);
        out.put_u32(fit_u32(name.len(), "FileNameLength")?);
        out.extend_from_slice(&name);
        Ok(out)
    }

    /// Parses the buffer.
    pub fn parse(buf: &[u8]) -> WireResult<RenameInfo> {
        let len = u32_at(buf, 16, "FileNameLength")? as usize;
        let raw = buffer(buf, 20, len, 20, "FileName")?;
        Ok(RenameInfo {
            replace: u8_at(buf, 0, "ReplaceIfExists")? != 0,
            root_directory: u64_at(buf, 8, "RootDirectory")?,
            name: utf16(raw, "FileName")?,
        })
    }
}

/// FileDispositionInformation: DeletePending.
pub fn parse_disposition(buf: &[u8]) -> WireResult<bool> {
    Ok(u8_at(buf, 0, "DeletePending")? != 0)
}

/// FileEndOfFileInformation: EndOfFile.
pub fn parse_end_of_file(buf: &[u8]) -> WireResult<u64> {
    let eof = u64_at(buf, 0, "EndOfFile")?;
    if eof > i64::MAX as u64 {
        return Err(WireError::BadOffset("EndOfFile"));
    }
    Ok(eof)
}
