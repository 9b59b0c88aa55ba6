//! QUERY_DIRECTORY (MS-SMB2 2.2.33, 2.2.34) and the directory entry
//! classes of MS-FSCC 2.4 that clients ask for.

use super::buf::{
    buffer, bytes, fit_u16, fit_u32, to_utf16, u16_at, u32_at, u64_at, u8_at, utf16, Put,
    WireResult,
};
use super::create::{FileAttrs, FileId};
use super::{check_size, Command, WireError, HEADER_LEN};

/// FileDirectoryInformation.
pub const FILE_DIRECTORY_INFORMATION: u8 = 0x01;
/// FileFullDirectoryInformation.
pub const FILE_FULL_DIRECTORY_INFORMATION: u8 = 0x02;
/// FileBothDirectoryInformation.
pub const FILE_BOTH_DIRECTORY_INFORMATION: u8 = 0x03;
/// FileNamesInformation.
pub const FILE_NAMES_INFORMATION: u8 = 0x0C;
/// FileIdBothDirectoryInformation (what smbclient asks for).
pub const FILE_ID_BOTH_DIRECTORY_INFORMATION: u8 = 0x25;
/// FileIdFullDirectoryInformation.
pub const FILE_ID_FULL_DIRECTORY_INFORMATION: u8 = 0x26;
/// Flags: restart the enumeration.
pub const RESTART_SCANS: u8 = 0x01;
/// Flags: return one entry only.
pub const RETURN_SINGLE_ENTRY: u8 = 0x02;
/// Flags: reopen (restart, possibly with a new pattern).
pub const REOPEN: u8 = 0x10;

/// QUERY_DIRECTORY request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryDirectoryRequest {
    /// FileInformationClass.
    pub class: u8,
    /// Flags.
    pub flags: u8,
    /// FileIndex.
    pub file_index: u32,
    /// The directory handle.
    pub file_id: FileId,
    /// Search pattern (`*`).
    pub pattern: String,
    /// OutputBufferLength.
    pub output_length: u32,
}

impl QueryDirectoryRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let pat = to_utf16(&self.pattern);
        let off = out.len() + 32;
        out.put_u16(33);
        out.put_u8(self.class);
        out.put_u8(self.flags);
        out.put_u32(self.file_index);
        self.file_id.encode(out);
        out.put_u16(fit_u16(off, "FileNameOffset")?);
        out.put_u16(fit_u16(pat.len(), "FileNameLength")?);
        out.put_u32(self.output_length);
        if pat.is_empty() {
            out.push(0);
        }
        out.extend(pat);
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<QueryDirectoryRequest> {
        check_size(msg, Command::QueryDirectory, 33)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 24, "FileNameOffset")?);
        let len = usize::from(u16_at(msg, b + 26, "FileNameLength")?);
        Ok(QueryDirectoryRequest {
            class: u8_at(msg, b + 2, "FileInformationClass")?,
            flags: u8_at(msg, b + 3, "Flags")?,
            file_index: u32_at(msg, b + 4, "FileIndex")?,
            file_id: FileId::parse(msg, b + 8)?,
            pattern: utf16(buffer(msg, off, len, b + 32, "FileName")?, "FileName")?,
            output_length: u32_at(msg, b + 28, "OutputBufferLength")?,
        })
    }
}

/// Appends the body of a QUERY_INFO or QUERY_DIRECTORY response
/// (StructureSize 9, offset u16, length u32, buffer).
pub fn encode_output(out: &mut Vec<u8>, data: &[u8]) -> WireResult<()> {
    let off = out.len() + 8;
    out.put_u16(9);
    out.put_u16(fit_u16(off, "OutputBufferOffset")?);
    out.put_u32(fit_u32(data.len(), "OutputBufferLength")?);
    out.extend_from_slice(data);
    if data.is_empty() {
        out.push(0);
    }
    Ok(())
}

/// Parses the body of a QUERY_INFO or QUERY_DIRECTORY response into its
/// output buffer.
pub fn parse_output(msg: &[u8], command: Command) -> WireResult<Vec<u8>> {
    check_size(msg, command, 9)?;
    let b = HEADER_LEN;
    let off = usize::from(u16_at(msg, b + 2, "OutputBufferOffset")?);
    let len = u32_at(msg, b + 4, "OutputBufferLength")? as usize;
    Ok(buffer(msg, off, len, b + 8, "OutputBuffer")?.to_vec())
}

/// One directory entry, whatever the class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirEntry {
    /// File name.
    pub name: String,
    /// Times, sizes, attributes.
    pub attrs: FileAttrs,
    /// FileId (the `Id` classes only).
    pub file_id: u64,
}

/// Offset of FileName in an entry of `class`, or None for an unknown class.
fn name_offset(class: u8) -> Option<usize> {
    match class {
        FILE_DIRECTORY_INFORMATION => Some(64),
        FILE_FULL_DIRECTORY_INFORMATION => Some(68),
        FILE_BOTH_DIRECTORY_INFORMATION => Some(94),
        FILE_ID_BOTH_DIRECTORY_INFORMATION => Some(104),
        FILE_ID_FULL_DIRECTORY_INFORMATION => Some(80),
        FILE_NAMES_INFORMATION => Some(12),
        _ => None,
    }
}

/// True for the classes [`encode_entry`] and [`parse_entries`] know.
pub fn is_known_class(class: u8) -> bool {
    name_offset(class).is_some()
}

/// Encodes one entry of `class` with NextEntryOffset 0; the caller links
/// and 8-aligns entries.
pub fn encode_entry(class: u8, e: &DirEntry) -> WireResult<Vec<u8>> {
    let name_off = name_offset(class).ok_or(WireError::Unsupported("directory info class"))?;
    let name = to_utf16(&e.name);
    let mut out = Vec::with_capacity(name_off + name.len());
    out.put_u32(0); // NextEntryOffset
    out.put_u32(0); // FileIndex
    if class == FILE_NAMES_INFORMATION {
        out.put_u32(fit_u32(name.len(), "FileNameLength")?);
    } else {
        for t in e.attrs.times {
            out.put_u64(t);
        }
        out.put_u64(e.attrs.eof);
        out.put_u64(e.attrs.allocation);
        out.put_u32(e.attrs.attributes);
        out.put_u32(fit_u32(name.len(), "FileNameLength")?);
    }
    out.resize(name_off, 0); // EaSize, short name (none) and reserved are zero
    if matches!(
        class,
        FILE_ID_BOTH_DIRECTORY_INFORMATION | FILE_ID_FULL_DIRECTORY_INFORMATION
    ) {
        out[name_off - 8..name_off].copy_from_slice(&e.file_id.to_le_bytes());
    }
    out.extend(name);
    Ok(out)
}

/// Parses a chain of entries of `class` (bounded by the buffer; a
/// NextEntryOffset that does not move forward is an error).
pub fn parse_entries(class: u8, buf: &[u8]) -> WireResult<Vec<DirEntry>> {
    let name_off = name_offset(class).ok_or(WireError::Unsupported("directory info class"))?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let next = u32_at(buf, pos, "NextEntryOffset")? as usize;
        let e = if class == FILE_NAMES_INFORMATION {
            let len = u32_at(buf, pos + 8, "FileNameLength")? as usize;
            DirEntry {
                name: utf16(bytes(buf, pos + 12, len, "FileName")?, "FileName")?,
                ..DirEntry::default()
            }
        } else {
            let mut times = [0u64; 4];
            for (i, t) in times.iter_mut().enumerate() {
                *t = u64_at(buf, pos + 8 + 8 * i, "FILETIME")?;
            }
            let len = u32_at(buf, pos + 60, "FileNameLength")? as usize;
            let id = matches!(
                class,
                FILE_ID_BOTH_DIRECTORY_INFORMATION | FILE_ID_FULL_DIRECTORY_INFORMATION
            );
            DirEntry {
                name: utf16(bytes(buf, pos + name_off, len, "FileName")?, "FileName")?,
                attrs: FileAttrs {
                    times,
                    eof: u64_at(buf, pos + 40, "EndOfFile")?,
                    allocation: u64_at(buf, pos + 48, "AllocationSize")?,
                    attributes: u32_at(buf, pos + 56, "FileAttributes")?,
                },
                file_id: if id {
                    u64_at(buf, pos + name_off - 8, "FileId")?
                } else {
                    0
                },
            }
        };
        out.push(e);
        if next == 0 {
            break;
        }
        if next < 8 {
            return Err(WireError::BadOffset("NextEntryOffset"));
        }
        pos = pos
            .checked_add(next)
            .ok_or(WireError::BadOffset("NextEntryOffset"))?;
    }
    Ok(out)
}
