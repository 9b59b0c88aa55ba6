//! CREATE and CLOSE (MS-SMB2 2.2.13–2.2.16).

use super::buf::{
    buffer, fit_u16, to_utf16, u16_at, u32_at, u64_at, u8_at, utf16, Put, WireResult,
};
use super::{check_size, Command, HEADER_LEN};

/// CreateDisposition: FILE_OPEN.
pub const FILE_OPEN: u32 = 1;
/// CreateDisposition: FILE_CREATE.
pub const FILE_CREATE: u32 = 2;
/// CreateDisposition: FILE_OPEN_IF.
pub const FILE_OPEN_IF: u32 = 3;
/// CreateDisposition: FILE_OVERWRITE.
pub const FILE_OVERWRITE: u32 = 4;
/// CreateDisposition: FILE_OVERWRITE_IF.
pub const FILE_OVERWRITE_IF: u32 = 5;
/// CreateOptions: FILE_DIRECTORY_FILE.
pub const FILE_DIRECTORY_FILE: u32 = 0x1;
/// CreateOptions: FILE_NON_DIRECTORY_FILE.
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
/// CreateOptions: FILE_DELETE_ON_CLOSE.
pub const FILE_DELETE_ON_CLOSE: u32 = 0x1000;
/// CLOSE Flags: return the attributes.
pub const CLOSE_POSTQUERY_ATTRIB: u16 = 0x1;

/// A FileId: persistent and volatile halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    /// Persistent part.
    pub persistent: u64,
    /// Volatile part.
    pub volatile: u64,
}

impl FileId {
    /// The all-ones id that means "the previous CREATE" in a related compound.
    pub const RELATED: FileId = FileId {
        persistent: u64::MAX,
        volatile: u64::MAX,
    };

    /// Appends the 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.persistent);
        out.put_u64(self.volatile);
    }

    /// Reads 16 bytes at `off`.
    pub fn parse(msg: &[u8], off: usize) -> WireResult<FileId> {
        Ok(FileId {
            persistent: u64_at(msg, off, "FileId")?,
            volatile: u64_at(msg, off + 8, "FileId")?,
        })
    }
}

/// Times, sizes and attributes of a file as CREATE and CLOSE report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileAttrs {
    /// Creation, LastAccess, LastWrite, Change (FILETIMEs).
    pub times: [u64; 4],
    /// AllocationSize.
    pub allocation: u64,
    /// EndOfFile.
    pub eof: u64,
    /// FileAttributes.
    pub attributes: u32,
}

impl FileAttrs {
    fn encode(&self, out: &mut Vec<u8>) {
        for t in self.times {
            out.put_u64(t);
        }
        out.put_u64(self.allocation);
        out.put_u64(self.eof);
        out.put_u32(self.attributes);
    }

    fn parse(msg: &[u8], off: usize) -> WireResult<FileAttrs> {
        let mut times = [0u64; 4];
        for (i, t) in times.iter_mut().enumerate() {
            *t = u64_at(msg, off + 8 * i, "FILETIME")?;
        }
        Ok(FileAttrs {
            times,
            allocation: u64_at(msg, off + 32, "AllocationSize")?,
            eof: u64_at(msg, off + 40, "EndOfFile")?,
            attributes: u32_at(msg, off + 48, "FileAttributes")?,
        })
    }
}

/// CREATE request body (create contexts are parsed as raw bytes and ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest {
    /// RequestedOplockLevel (0: none).
    pub oplock: u8,
    /// ImpersonationLevel (2: impersonation).
    pub impersonation: u32,
    /// DesiredAccess.
    pub desired_access: u32,
    /// FileAttributes.
    pub file_attributes: u32,
    /// ShareAccess.
    pub share_access: u32,
    /// CreateDisposition.
    pub disposition: u32,
    /// CreateOptions.
    pub options: u32,
    /// Path relative to the share, `\`-separated; empty for the root.
    pub name: String,
}

/// CREATE response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateResponse {
    /// OplockLevel.
    pub oplock: u8,
    /// CreateAction (0 superseded, 1 opened, 2 created, 3 overwritten).
    pub create_action: u32,
    /// Times, sizes, attributes.
    pub attrs: FileAttrs,
    /// The new handle.
    pub file_id: FileId,
}

impl CreateRequest {
    /// Appends the body. The name buffer is at least one byte, even for
    /// the share root (Samba refuses an empty buffer).
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let name = to_utf16(&self.name);
        let off = out.len() + 56;
        out.put_u16(57);
        out.put_u8(0); // SecurityFlags
        out.put_u8(self.oplock);
        out.put_u32(self.impersonation);
        out.put_u64(0); // SmbCreateFlags
        out.put_u64(0); // Reserved
        out.put_u32(self.desired_access);
        out.put_u32(self.file_attributes);
        out.put_u32(self.share_access);
        out.put_u32(self.disposition);
        out.put_u32(self.options);
        out.put_u16(fit_u16(off, "NameOffset")?);
        out.put_u16(fit_u16(name.len(), "NameLength")?);
        out.put_u32(0); // CreateContextsOffset
        out.put_u32(0); // CreateContextsLength
        if name.is_empty() {
            out.push(0);
        }
        out.extend(name);
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<CreateRequest> {
        check_size(msg, Command::Create, 57)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 44, "NameOffset")?);
        let len = usize::from(u16_at(msg, b + 46, "NameLength")?);
        let ctx_off = u32_at(msg, b + 48, "CreateContextsOffset")? as usize;
        let ctx_len = u32_at(msg, b + 52, "CreateContextsLength")? as usize;
        buffer(msg, ctx_off, ctx_len, b + 56, "CreateContexts")?; // checked, ignored
        Ok(CreateRequest {
            oplock: u8_at(msg, b + 3, "RequestedOplockLevel")?,
            impersonation: u32_at(msg, b + 4, "ImpersonationLevel")?,
            desired_access: u32_at(msg, b + 24, "DesiredAccess")?,
            file_attributes: u32_at(msg, b + 28, "FileAttributes")?,
            share_access: u32_at(msg, b + 32, "ShareAccess")?,
            disposition: u32_at(msg, b + 36, "CreateDisposition")?,
            options: u32_at(msg, b + 40, "CreateOptions")?,
            name: utf16(buffer(msg, off, len, b + 56, "Name")?, "Name")?,
        })
    }
}

impl CreateResponse {
    /// Appends the body (no create contexts).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(89);
        out.put_u8(self.oplock);
        out.put_u8(0); // Flags
        out.put_u32(self.create_action);
        self.attrs.encode(out);
        out.put_u32(0); // Reserved2
        self.file_id.encode(out);
        out.put_u32(0); // CreateContextsOffset
        out.put_u32(0); // CreateContextsLength
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<CreateResponse> {
        check_size(msg, Command::Create, 89)?;
        let b = HEADER_LEN;
        Ok(CreateResponse {
            oplock: u8_at(msg, b + 2, "OplockLevel")?,
            create_action: u32_at(msg, b + 4, "CreateAction")?,
            attrs: FileAttrs::parse(msg, b + 8)?,
            file_id: FileId::parse(msg, b + 64)?,
        })
    }
}

/// CLOSE request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    /// Flags ([`CLOSE_POSTQUERY_ATTRIB`]).
    pub flags: u16,
    /// The handle.
    pub file_id: FileId,
}

/// CLOSE response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    /// Flags (echoes POSTQUERY_ATTRIB when `attrs` is filled).
    pub flags: u16,
    /// Attributes (zero unless requested).
    pub attrs: FileAttrs,
}

impl CloseRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(24);
        out.put_u16(self.flags);
        out.put_u32(0);
        self.file_id.encode(out);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<CloseRequest> {
        check_size(msg, Command::Close, 24)?;
        Ok(CloseRequest {
            flags: u16_at(msg, HEADER_LEN + 2, "Flags")?,
            file_id: FileId::parse(msg, HEADER_LEN + 8)?,
        })
    }
}

impl CloseResponse {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(60);
        out.put_u16(self.flags);
        out.put_u32(0);
        self.attrs.encode(out);
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<CloseResponse> {
        check_size(msg, Command::Close, 60)?;
        Ok(CloseResponse {
            flags: u16_at(msg, HEADER_LEN + 2, "Flags")?,
            attrs: FileAttrs::parse(msg, HEADER_LEN + 8)?,
        })
    }
}
