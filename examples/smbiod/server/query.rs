//! QUERY_DIRECTORY and QUERY_INFO for the embedded server.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::listing::Listing;
use super::meta::{attrs, io_status};
use super::{Connection, Outcome};
use crate::wire::buf::Put;
use crate::wire::dir::{
    encode_entry, is_known_class, QueryDirectoryRequest, REOPEN, RESTART_SCANS, RETURN_SINGLE_ENTRY,
};
use crate::wire::info::{
    self, file, fs as fsc, QueryInfoRequest, VolumeSize, INFO_FILE, INFO_FILESYSTEM,
};
use crate::wire::message::Response;
use crate::wire::status;

/// The size and free space of the file system holding `dir` (statvfs),
/// as Samba reports them: allocation units of the fragment size, in
/// 512-byte sectors where it is a multiple of 512.
pub(super) fn volume_size(dir: &Path) -> io::Result<VolumeSize> {
    let st = rustix::fs::statvfs(dir)?;
    let unit = st.f_frsize.max(1);
    let (sectors_per_unit, bytes_per_sector) = match u32::try_from(unit) {
        Ok(u) if u % 512 == 0 => (u / 512, 512),
        Ok(u) => (1, u),
        Err(_) => return Err(io::ErrorKind::InvalidData.into()),
    };
    Ok(VolumeSize {
        total_units: st.f_blocks,
        caller_available_units: st.f_bavail,
        actual_available_units: st.f_bfree,
        sectors_per_unit,
        bytes_per_sector,
    })
}

impl Connection {
    pub(super) fn query_directory(&mut self, r: &QueryDirectoryRequest) -> Outcome {
        if !is_known_class(r.class) {
            return Err(status::INVALID_INFO_CLASS);
        }
        let root = self.share.root.clone();
        let max = self.max_io();
        let open = self.open_mut(r.file_id)?;
        if open.file.is_some() {
            return Err(status::INVALID_PARAMETER);
        }
        let restart = r.flags & (RESTART_SCANS | REOPEN) != 0;
        let first = open.listing.is_none() || restart;
        if first {
            let parent = if open.path == root {
                root.clone()
            } else {
                open.path.parent().unwrap_or(&root).to_path_buf()
            };
            let pattern = if r.pattern.is_empty() {
                "*"
            } else {
                &r.pattern
            };
            let listing =
                Listing::start(&root, &open.path, &parent, pattern).map_err(|e| io_status(&e))?;
            open.listing = Some(listing);
        }
        let Some(listing) = open.listing.as_mut() else {
            return Err(status::UNSUCCESSFUL);
        };
        let limit = r.output_length.min(max) as usize;
        let mut buf: Vec<u8> = Vec::new();
        let mut prev: Option<usize> = None;
        while let Some(e) = listing.peek().map_err(|e| io_status(&e))? {
            let enc = encode_entry(r.class, e).map_err(|_| status::INVALID_INFO_CLASS)?;
            let start = buf.len().next_multiple_of(8);
            if start + enc.len() > limit {
                break;
            }
            buf.pad_to(8);
            if let Some(p) = prev {
                let delta = (start - p) as u32;
                buf[p..p + 4].copy_from_slice(&delta.to_le_bytes());
            }
            buf.extend(enc);
            prev = Some(start);
            listing.advance();
            if r.flags & RETURN_SINGLE_ENTRY != 0 {
                break;
            }
        }
        if buf.is_empty() && listing.peek().map_err(|e| io_status(&e))?.is_none() {
            return Err(if first && listing.returned() == 0 {
                status::NO_SUCH_FILE
            } else {
                status::NO_MORE_FILES
            });
        }
        if buf.is_empty() {
            return Err(status::INFO_LENGTH_MISMATCH);
        }
        Ok((status::SUCCESS, Response::QueryDirectory(buf)))
    }

    pub(super) fn query_info(&mut self, r: &QueryInfoRequest) -> Outcome {
        let share_name = self.share.name.clone();
        let open = self.open_mut(r.file_id)?;
        let md = fs::metadata(&open.path).map_err(|e| io_status(&e))?;
        let a = attrs(&md);
        let (data, variable) = match (r.info_type, r.class) {
            (INFO_FILE, file::BASIC) => (info::basic(&a), false),
            (INFO_FILE, file::STANDARD) => {
                (info::standard(&a, md.nlink() as u32, md.is_dir()), false)
            }
            (INFO_FILE, file::INTERNAL) => (md.ino().to_le_bytes().to_vec(), false),
            (INFO_FILE, file::EA) => (vec![0; 4], false),
            (INFO_FILE, file::ACCESS) => (open.access.to_le_bytes().to_vec(), false),
            (INFO_FILE, file::POSITION) => (vec![0; 8], false),
            (INFO_FILE, file::MODE) | (INFO_FILE, file::ALIGNMENT) => (vec![0; 4], false),
            (INFO_FILE, file::ALL) => {
                let name = format!("\\{}", open.name);
                (
                    info::all(&a, md.is_dir(), md.ino(), open.access, &name),
                    true,
                )
            }
            (INFO_FILE, file::NETWORK_OPEN) => (info::network_open(&a), false),
            // No 8.3 names here (as Samba with `mangled names = no`);
            // smbclient's allinfo goes on without one.
            (INFO_FILE, file::ALTERNATE_NAME) => return Err(status::NOT_SUPPORTED),
            // Directories have no data stream.
            (INFO_FILE, file::STREAM) if md.is_dir() => (Vec::new(), true),
            (INFO_FILE, file::STREAM) => (info::data_stream(&a), true),
            (INFO_FILE, file::ATTRIBUTE_TAG) => {
                let mut v = Vec::new();
                v.put_u32(a.attributes);
                v.put_u32(0);
                (v, false)
            }
            (INFO_FILE, _) => return Err(status::INVALID_INFO_CLASS),
            (INFO_FILESYSTEM, fsc::VOLUME) => (info::fs_volume(0, 0x5342_494F, &share_name), true),
            (INFO_FILESYSTEM, fsc::SIZE | fsc::FULL_SIZE) => {
                let v = volume_size(&open.path).map_err(|e| io_status(&e))?;
                (info::fs_size(&v, r.class == fsc::FULL_SIZE), false)
            }
            (INFO_FILESYSTEM, fsc::DEVICE) => (info::fs_device(), false),
            (INFO_FILESYSTEM, fsc::ATTRIBUTE) => (info::fs_attribute("NTFS"), true),
            (INFO_FILESYSTEM, _) => return Err(status::INVALID_INFO_CLASS),
            _ => return Err(status::NOT_SUPPORTED),
        };
        let limit = r.output_length as usize;
        if data.len() <= limit {
            Ok((status::SUCCESS, Response::QueryInfo(data)))
        } else if variable && limit > 0 {
            Ok((
                status::BUFFER_OVERFLOW,
                Response::QueryInfo(data[..limit].to_vec()),
            ))
        } else {
            Err(status::INFO_LENGTH_MISMATCH)
        }
    }
}
