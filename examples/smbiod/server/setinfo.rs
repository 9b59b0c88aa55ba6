//! SET_INFO and FLUSH for the embedded server: times and the read-only
//! attribute, rename (the target resolved inside the share like any
//! CREATE name), delete on close (files and empty directories), the size;
//! FLUSH syncs the file to disk.

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::files::{SHARE_DELETE, SHARE_WRITE};
use super::meta::{io_status, ATTR_DIRECTORY, ATTR_READONLY};
use super::notify::filter;
use super::sandbox::resolve;
use super::{Connection, Outcome};
use crate::wire::create::FileId;
use crate::wire::info::INFO_FILE;
use crate::wire::message::Response;
use crate::wire::notify::action;
use crate::wire::setinfo::{
    class, parse_disposition, parse_end_of_file, BasicInfo, FlushRequest, RenameInfo,
    SetInfoRequest,
};
use crate::wire::status;

/// Access that lets a handle change times and attributes:
/// FILE_WRITE_ATTRIBUTES, GENERIC_WRITE, GENERIC_ALL, MAXIMUM_ALLOWED.
const WRITE_ATTRIBUTES: u32 = 0x100 | 0x4000_0000 | 0x1000_0000 | 0x0200_0000;

impl Connection {
    pub(super) fn set_info(&mut self, r: &SetInfoRequest) -> Outcome {
        if r.info_type != INFO_FILE {
            return Err(status::NOT_SUPPORTED);
        }
        let short = |_| status::INFO_LENGTH_MISMATCH;
        match r.class {
            class::BASIC => self.set_basic(r.file_id, BasicInfo::parse(&r.buffer).map_err(short)?),
            class::RENAME => self.rename(r.file_id, &RenameInfo::parse(&r.buffer).map_err(short)?),
            class::DISPOSITION => {
                self.set_delete_pending(r.file_id, parse_disposition(&r.buffer).map_err(short)?)
            }
            class::END_OF_FILE => {
                self.set_end_of_file(r.file_id, parse_end_of_file(&r.buffer).map_err(short)?)
            }
            _ => Err(status::INVALID_INFO_CLASS),
        }?;
        let changed = match r.class {
            class::BASIC => {
                filter::ATTRIBUTES | filter::LAST_WRITE | filter::LAST_ACCESS | filter::CREATION
            }
            class::END_OF_FILE => filter::SIZE | filter::LAST_WRITE,
            _ => 0,
        };
        if changed != 0 {
            let path = self.open_mut(r.file_id)?.path.clone();
            self.notify(&path, action::MODIFIED, changed);
        }
        Ok((status::SUCCESS, Response::SetInfo))
    }

    pub(super) fn flush(&mut self, r: &FlushRequest) -> Outcome {
        let open = self.open_mut(r.file_id)?;
        // MS-SMB2 3.3.5.11: write (or, on a directory, add-file /
        // add-subdirectory: the same bits) access is needed.
        if open.data_access & SHARE_WRITE == 0 {
            return Err(status::ACCESS_DENIED);
        }
        let synced = match &open.file {
            Some(f) => f.sync_all(),
            None => File::open(&open.path).and_then(|d| d.sync_all()),
        };
        synced.map_err(|e| io_status(&e))?;
        Ok((status::SUCCESS, Response::Flush))
    }

    /// FileBasicInformation: last access and last write times (creation
    /// and change times cannot be set on Linux and are left alone), and
    /// the read-only attribute (the owner's write permission).
    fn set_basic(&mut self, fid: FileId, info: BasicInfo) -> Result<(), u32> {
        let open = self.open_mut(fid)?;
        if open.access & WRITE_ATTRIBUTES == 0 {
            return Err(status::ACCESS_DENIED);
        }
        let md = fs::metadata(&open.path).map_err(|e| io_status(&e))?;
        if info.attributes & ATTR_DIRECTORY != 0 && !md.is_dir() {
            return Err(status::INVALID_PARAMETER);
        }
        let mut times = FileTimes::new();
        let mut any = false;
        if let Some(t) = settable(info.times[1]) {
            times = times.set_accessed(t);
            any = true;
        }
        if let Some(t) = settable(info.times[2]) {
            times = times.set_modified(t);
            any = true;
        }
        if any {
            let set = match &open.file {
                Some(f) => f.set_times(times),
                None => File::open(&open.path).and_then(|d| d.set_times(times)),
            };
            set.map_err(|e| io_status(&e))?;
        }
        if info.attributes != 0 {
            let mut perms = md.permissions();
            let mode = perms.mode();
            let mode = if info.attributes & ATTR_READONLY != 0 {
                mode & !0o222
            } else {
                mode | 0o200
            };
            if mode != perms.mode() {
                perms.set_mode(mode);
                fs::set_permissions(&open.path, perms).map_err(|e| io_status(&e))?;
            }
        }
        Ok(())
    }

    /// FileRenameInformation. The target is a share-relative name resolved
    /// as a CREATE's is: `..`, absolute paths, drive letters and symlinks
    /// out are refused, so nothing is ever moved outside the share.
    fn rename(&mut self, fid: FileId, info: &RenameInfo) -> Result<(), u32> {
        let root = self.share.root.clone();
        let open = self.open_mut(fid)?;
        if open.data_access & SHARE_DELETE == 0 {
            return Err(status::ACCESS_DENIED);
        }
        if info.root_directory != 0 {
            return Err(status::INVALID_PARAMETER);
        }
        let from = open.path.clone();
        if from == root {
            return Err(status::ACCESS_DENIED);
        }
        let to = resolve(&root, &info.name)?;
        if to == from {
            return Ok(());
        }
        if to.starts_with(&from) {
            return Err(status::INVALID_PARAMETER); // into itself
        }
        if let Ok(md) = fs::symlink_metadata(&to) {
            if !info.replace {
                return Err(status::OBJECT_NAME_COLLISION);
            }
            if md.is_dir() || self.opens.values().any(|o| o.path == to) {
                return Err(status::ACCESS_DENIED);
            }
        }
        // Opens below a renamed directory would lose their paths: refused,
        // as Samba does.
        if self
            .opens
            .values()
            .any(|o| o.path != from && o.path.starts_with(&from))
        {
            return Err(status::ACCESS_DENIED);
        }
        fs::rename(&from, &to).map_err(|e| io_status(&e))?;
        let kind = if to.is_dir() {
            filter::DIR_NAME
        } else {
            filter::FILE_NAME
        };
        if from.parent() == to.parent() {
            self.notify(&from, action::RENAMED_OLD_NAME, kind);
            self.notify(&to, action::RENAMED_NEW_NAME, kind);
        } else {
            self.notify(&from, action::REMOVED, kind);
            self.notify(&to, action::ADDED, kind);
        }
        for o in self.opens.values_mut().filter(|o| o.path == from) {
            o.path = to.clone();
            o.name = info.name.clone();
            o.listing = None;
        }
        Ok(())
    }

    /// FileDispositionInformation: delete (or not) when the handle closes.
    fn set_delete_pending(&mut self, fid: FileId, delete: bool) -> Result<(), u32> {
        let root = self.share.root.clone();
        let open = self.open_mut(fid)?;
        if delete {
            if open.data_access & SHARE_DELETE == 0 {
                return Err(status::ACCESS_DENIED);
            }
            check_deletable(&root, &open.path, true)?;
        }
        open.delete_on_close = delete;
        Ok(())
    }

    /// FileEndOfFileInformation: truncate or extend.
    fn set_end_of_file(&mut self, fid: FileId, eof: u64) -> Result<(), u32> {
        let open = self.open_mut(fid)?;
        let file = open.file.as_ref().ok_or(status::INVALID_PARAMETER)?;
        if open.data_access & SHARE_WRITE == 0 {
            return Err(status::ACCESS_DENIED);
        }
        file.set_len(eof).map_err(|e| io_status(&e))
    }
}

/// Whether `path` may be deleted: not the share root, not read-only, and
/// (a directory, when `empty_dir`) empty.
pub(super) fn check_deletable(root: &Path, path: &Path, empty_dir: bool) -> Result<(), u32> {
    if path == root {
        return Err(status::CANNOT_DELETE);
    }
    let md = fs::symlink_metadata(path).map_err(|e| io_status(&e))?;
    if md.is_dir() {
        if !empty_dir {
            return Ok(());
        }
        let mut entries = fs::read_dir(path).map_err(|e| io_status(&e))?;
        if entries.next().is_some() {
            return Err(status::DIRECTORY_NOT_EMPTY);
        }
    } else if md.permissions().readonly() {
        return Err(status::CANNOT_DELETE);
    }
    Ok(())
}

/// A FILETIME to set, or None for "leave it" (0, -1 and -2).
fn settable(ft: u64) -> Option<SystemTime> {
    const EPOCH_DIFF_100NS: u64 = 11_644_473_600 * 10_000_000;
    if ft == 0 || ft >= u64::MAX - 1 {
        return None;
    }
    Some(if ft >= EPOCH_DIFF_100NS {
        let d = ft - EPOCH_DIFF_100NS;
        UNIX_EPOCH + Duration::new(d / 10_000_000, (d % 10_000_000) as u32 * 100)
    } else {
        let d = EPOCH_DIFF_100NS - ft;
        UNIX_EPOCH - Duration::new(d / 10_000_000, (d % 10_000_000) as u32 * 100)
    })
}

#[cfg(test)]
mod tests {
    use super::settable;
    use crate::wire::filetime;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn filetimes_convert_back_and_leave_markers_alone() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_700);
        assert_eq!(settable(filetime(t)), Some(t));
        for leave in [0, u64::MAX, u64::MAX - 1] {
            assert_eq!(settable(leave), None);
        }
    }
}
