//! File metadata as SMB sees it, directory listings, and io::Error to
//! NTSTATUS.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, UNIX_EPOCH};

use crate::wire::create::FileAttrs;
use crate::wire::{filetime, status};

/// FileAttributes: read-only.
pub const ATTR_READONLY: u32 = 0x1;
/// FileAttributes: directory.
pub const ATTR_DIRECTORY: u32 = 0x10;
/// FileAttributes: archive (what Samba reports for plain files).
pub const ATTR_ARCHIVE: u32 = 0x20;

/// The NTSTATUS for an I/O error.
pub fn io_status(e: &io::Error) -> u32 {
    match e.kind() {
        io::ErrorKind::NotFound => status::OBJECT_NAME_NOT_FOUND,
        io::ErrorKind::PermissionDenied => status::ACCESS_DENIED,
        io::ErrorKind::AlreadyExists => status::OBJECT_NAME_COLLISION,
        io::ErrorKind::NotADirectory => status::NOT_A_DIRECTORY,
        io::ErrorKind::IsADirectory => status::FILE_IS_A_DIRECTORY,
        io::ErrorKind::DirectoryNotEmpty => status::DIRECTORY_NOT_EMPTY,
        // EFBIG as Samba maps it
        io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge => status::DISK_FULL,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => status::OBJECT_NAME_INVALID,
        _ => status::UNSUCCESSFUL,
    }
}

/// The NTSTATUS for an I/O error of a READ or WRITE (pread/pwrite):
/// EINVAL there means a bad offset, not a bad name.
pub fn data_io_status(e: &io::Error) -> u32 {
    match e.kind() {
        io::ErrorKind::InvalidInput => status::INVALID_PARAMETER,
        _ => io_status(e),
    }
}

fn unix_filetime(secs: i64, nanos: i64) -> u64 {
    let t = if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    filetime(t)
}

/// Times, sizes and attributes of `md`.
pub fn attrs(md: &Metadata) -> FileAttrs {
    let modified = unix_filetime(md.mtime(), md.mtime_nsec());
    let created = md.created().map(filetime).unwrap_or(modified);
    let mut attributes = if md.is_dir() {
        ATTR_DIRECTORY
    } else {
        ATTR_ARCHIVE
    };
    if md.permissions().readonly() {
        attributes |= ATTR_READONLY;
    }
    FileAttrs {
        times: [
            created,
            unix_filetime(md.atime(), md.atime_nsec()),
            modified,
            unix_filetime(md.ctime(), md.ctime_nsec()),
        ],
        allocation: if md.is_dir() { 0 } else { md.blocks() * 512 },
        eof: if md.is_dir() { 0 } else { md.len() },
        attributes,
    }
}

/// `*`/`?` wildcard match, ASCII case-insensitive (DOS wildcards `<>"` are
/// not supported and match literally).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    // iterative matcher with one backtrack point for the last `*`
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "."));
        assert!(wildcard("*", "hello.txt"));
        assert!(wildcard("*.TXT", "hello.txt"));
        assert!(wildcard("h?llo.*", "hello.txt"));
        assert!(wildcard("hello.txt", "HELLO.TXT"));
        assert!(wildcard("*l*o*", "hello"));
        assert!(!wildcard("*.txt", "hello.txt.bak"));
        assert!(!wildcard("a?", "a"));
        assert!(!wildcard("", "a"));
    }
}
