//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] (with owned
//! halves) and [`UnixDatagram`]. Addresses are
//! [`std::os::unix::net::SocketAddr`], re-exported as [`SocketAddr`].
//!
//! # Socket files
//!
//! Binding to a path creates a socket file there. A [`UnixListener`] or
//! [`UnixDatagram`] made by `bind` removes that file when dropped, but
//! only if the path still names the socket it created (same device and
//! inode as at bind time): a path that was removed and re-bound by
//! someone else is left alone. Sockets made with `from_std` never remove
//! anything, and `into_std` hands the file over to the std socket (which
//! never removes it either).
//!
//! # Abstract names (Linux)
//!
//! A path whose first byte is NUL (`"\0name"`) names a socket in the
//! abstract namespace instead, as with tokio: no file is created (so none
//! is removed), and the name goes when the last socket bound to it
//! closes. [`UnixListener::bind`], [`UnixStream::connect`] and
//! [`UnixDatagram::bind`] take such names.

mod datagram;
mod listener;
mod split;
mod stream;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use std::os::unix::net::SocketAddr;
pub use stream::UnixStream;

/// The address `path` names: a leading NUL byte names a socket in Linux's
/// abstract namespace (tokio's rule), anything else a socket file.
pub(crate) fn socket_addr(path: &Path) -> std::io::Result<SocketAddr> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::ffi::OsStrExt;
        if let Some((0, name)) = path.as_os_str().as_bytes().split_first() {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(name);
        }
    }
    SocketAddr::from_pathname(path)
}

/// The socket file a `bind` created; dropping it removes the file if the
/// path still names that socket.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// `(st_dev, st_ino)` right after `bind`.
    id: (u64, u64),
}

impl SocketFile {
    /// Records the socket file just bound at `path`. If it cannot be
    /// inspected, nothing will be removed.
    pub(crate) fn new(path: &Path) -> Option<SocketFile> {
        let id = file_id(path)?;
        Some(SocketFile {
            path: path.to_path_buf(),
            id,
        })
    }

    /// Disarms the removal: the file outlives this value.
    pub(crate) fn keep(mut self) {
        drop(std::mem::take(&mut self.path));
        // Nothing is left to free: an empty `PathBuf` owns no memory.
        std::mem::forget(self);
    }
}

/// The device and inode of the socket file at `path` (not following
/// symlinks); `None` if it is missing or not a socket.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    let meta = fs::symlink_metadata(path).ok()?;
    meta.file_type()
        .is_socket()
        .then(|| (meta.dev(), meta.ino()))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // A narrow race remains: the file could be replaced between this
        // check and the unlink. Nothing portable closes it.
        if file_id(&self.path) == Some(self.id) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
