//! QUERY_INFO (MS-SMB2 2.2.37, 2.2.38) and the file / file-system
//! information classes of MS-FSCC 2.4 and 2.5 that smbclient asks for.

use super::buf::{
    buffer, fit_u16, fit_u32, to_utf16, u16_at, u32_at, u64_at, u8_at, Put, WireResult,
};
use super::create::{FileAttrs, FileId};
use super::{check_size, Command, HEADER_LEN};

/// InfoType: file information.
pub const INFO_FILE: u8 = 1;
/// InfoType: file-system information.
pub const INFO_FILESYSTEM: u8 = 2;

/// File classes.
pub mod file {
    /// FileBasicInformation.
    pub const BASIC: u8 = 4;
    /// FileStandardInformation.
    pub const STANDARD: u8 = 5;
    /// FileInternalInformation.
    pub const INTERNAL: u8 = 6;
    /// FileEaInformation.
    pub const EA: u8 = 7;
    /// FileAccessInformation.
    pub const ACCESS: u8 = 8;
    /// FilePositionInformation.
    pub const POSITION: u8 = 14;
    /// FileModeInformation.
    pub const MODE: u8 = 16;
    /// FileAlignmentInformation.
    pub const ALIGNMENT: u8 = 17;
    /// FileAllInformation.
    pub const ALL: u8 = 18;
    /// FileAlternateNameInformation (the 8.3 name).
    pub const ALTERNATE_NAME: u8 = 21;
    /// FileStreamInformation.
    pub const STREAM: u8 = 22;
    /// FileNetworkOpenInformation.
    pub const NETWORK_OPEN: u8 = 34;
    /// FileAttributeTagInformation.
    pub const ATTRIBUTE_TAG: u8 = 35;
}

/// File-system classes.
pub mod fs {
    /// FileFsVolumeInformation.
    pub const VOLUME: u8 = 1;
    /// FileFsSizeInformation.
    pub const SIZE: u8 = 3;
    /// FileFsDeviceInformation.
    pub const DEVICE: u8 = 4;
    /// FileFsAttributeInformation.
    pub const ATTRIBUTE: u8 = 5;
    /// FileFsFullSizeInformation.
    pub const FULL_SIZE: u8 = 7;
}

/// QUERY_INFO request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoRequest {
    /// InfoType.
    pub info_type: u8,
    /// FileInfoClass.
    pub class: u8,
    /// OutputBufferLength.
    pub output_length: u32,
    /// AdditionalInformation.
    pub additional: u32,
    /// Flags.
    pub flags: u32,
    /// The handle.
    pub file_id: FileId,
    /// Input buffer (quota/EA queries; normally empty).
    pub input: Vec<u8>,
}

impl QueryInfoRequest {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) -> WireResult<()> {
        let off = if self.input.is_empty() {
            0
        } else {
            out.len() + 40
        };
        out.put_u16(41);
        out.put_u8(self.info_type);
        out.put_u8(self.class);
        out.put_u32(self.output_length);
        out.put_u16(fit_u16(off, "InputBufferOffset")?);
        out.put_u16(0);
        out.put_u32(fit_u32(self.input.len(), "InputBufferLength")?);
        out.put_u32(self.additional);
        out.put_u32(self.flags);
        self.file_id.encode(out);
        out.extend_from_slice(&self.input);
        if self.input.is_empty() {
            out.push(0);
        }
        Ok(())
    }

    /// Parses the body of `msg`.
    pub fn parse(msg: &[u8]) -> WireResult<QueryInfoRequest> {
        check_size(msg, Command::QueryInfo, 41)?;
        let b = HEADER_LEN;
        let off = usize::from(u16_at(msg, b + 8, "InputBufferOffset")?);
        let len = u32_at(msg, b + 12, "InputBufferLength")? as usize;
        Ok(QueryInfoRequest {
            info_type: u8_at(msg, b + 2, "InfoType")?,
            class: u8_at(msg, b + 3, "FileInfoClass")?,
            output_length: u32_at(msg, b + 4, "OutputBufferLength")?,
            additional: u32_at(msg, b + 16, "AdditionalInformation")?,
            flags: u32_at(msg, b + 20, "Flags")?,
            file_id: FileId::parse(msg, b + 24)?,
            input: buffer(msg, off, len, b + 40, "InputBuffer")?.to_vec(),
        })
    }
}

/// FileBasicInformation (40 bytes).
pub fn basic(a: &FileAttrs) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    for t in a.times {
        out.put_u64(t);
    }
    out.put_u32(a.attributes);
    out.put_u32(0);
    out
}

/// FileStreamInformation of a plain file: its one unnamed data stream,
/// `::$DATA`.
pub fn data_stream(a: &FileAttrs) -> Vec<u8> {
    let name = to_utf16("::$DATA");
    let mut out = Vec::with_capacity(24 + name.len());
    out.put_u32(0); // NextEntryOffset
    out.put_u32(name.len() as u32);
    out.put_u64(a.eof);
    out.put_u64(a.allocation);
    out.extend_from_slice(&name);
    out
}

/// FileStandardInformation (24 bytes).
pub fn standard(a: &FileAttrs, links: u32, is_dir: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.put_u64(a.allocation);
    out.put_u64(a.eof);
    out.put_u32(links);
    out.put_u8(0); // DeletePending
    out.put_u8(u8::from(is_dir));
    out.put_u16(0);
    out
}

/// EndOfFile of a FileStandardInformation buffer (what a client needs).
pub fn parse_standard_eof(buf: &[u8]) -> WireResult<u64> {
    u64_at(buf, 8, "FileStandardInformation.EndOfFile")
}

/// FileNetworkOpenInformation (56 bytes).
pub fn network_open(a: &FileAttrs) -> Vec<u8> {
    let mut out = Vec::with_capacity(56);
    for t in a.times {
        out.put_u64(t);
    }
    out.put_u64(a.allocation);
    out.put_u64(a.eof);
    out.put_u32(a.attributes);
    out.put_u32(0);
    out
}

/// FileAllInformation: Basic, Standard, Internal, Ea, Access, Position,
/// Mode, Alignment, then FileNameInformation (length + UTF-16 name).
pub fn all(a: &FileAttrs, is_dir: bool, index: u64, access: u32, name: &str) -> Vec<u8> {
    let mut out = basic(a);
    out.extend(standard(a, 1, is_dir));
    out.put_u64(index); // Internal
    out.put_u32(0); // Ea
    out.put_u32(access); // Access
    out.put_u64(0); // Position
    out.put_u32(0); // Mode
    out.put_u32(0); // Alignment
    let n = to_utf16(name);
    out.put_u32(n.len() as u32);
    out.extend(n);
    out
}

/// FileFsVolumeInformation with `label`.
pub fn fs_volume(created: u64, serial: u32, label: &str) -> Vec<u8> {
    let l = to_utf16(label);
    let mut out = Vec::with_capacity(18 + l.len());
    out.put_u64(created);
    out.put_u32(serial);
    out.put_u32(l.len() as u32);
    out.put_u8(0); // SupportsObjects
    out.put_u8(0);
    out.extend(l);
    out
}

/// A volume's size as SMB reports it: allocation units of
/// `sectors_per_unit` × `bytes_per_sector` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSize {
    /// TotalAllocationUnits.
    pub total_units: u64,
    /// CallerAvailableAllocationUnits (what an unprivileged user may use).
    pub caller_available_units: u64,
    /// ActualAvailableAllocationUnits (free, reserved blocks included).
    pub actual_available_units: u64,
    /// SectorsPerAllocationUnit.
    pub sectors_per_unit: u32,
    /// BytesPerSector.
    pub bytes_per_sector: u32,
}

/// FileFsSizeInformation (24 bytes) or, with `full`, FileFsFullSizeInformation (32).
pub fn fs_size(v: &VolumeSize, full: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.put_u64(v.total_units);
    out.put_u64(v.caller_available_units);
    if full {
        out.put_u64(v.actual_available_units);
    }
    out.put_u32(v.sectors_per_unit);
    out.put_u32(v.bytes_per_sector);
    out
}

/// FileFsDeviceInformation: a disk, no characteristics.
pub fn fs_device() -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.put_u32(7); // FILE_DEVICE_DISK
    out.put_u32(0);
    out
}

/// FileFsAttributeInformation: case-sensitive, case-preserving, 255-char names.
pub fn fs_attribute(fs_name: &str) -> Vec<u8> {
    let n = to_utf16(fs_name);
    let mut out = Vec::with_capacity(12 + n.len());
    out.put_u32(0x3); // CASE_SENSITIVE_SEARCH | CASE_PRESERVED_NAMES
    out.put_u32(255);
    out.put_u32(n.len() as u32);
    out.extend(n);
    out
}
