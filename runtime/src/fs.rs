//! Files and directories without blocking a worker: tokio's `fs` surface,
//! every call a job on the runtime's blocking pool (the kernel has no
//! readiness for regular files, so there is nothing to wait on in the
//! reactor; the job's [`JoinHandle`](crate::task::JoinHandle) is the
//! wait queue the caller sleeps on).
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
//! use waitrt::fs;
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let dir = std::env::temp_dir().join(format!("fs-doc-{}", std::process::id()));
//!     fs::create_dir_all(&dir).await?;
//!
//!     // Whole files at once.
//!     fs::write(dir.join("a.txt"), "hello").await?;
//!     assert_eq!(fs::read_to_string(dir.join("a.txt")).await?, "hello");
//!
//!     // A `File`, written through `futures::io::AsyncWrite`.
//!     let mut file = fs::File::create(dir.join("b.txt")).await?;
//!     for i in 0..100 {
//!         file.write_all(format!("{i}\n").as_bytes()).await?;
//!     }
//!     file.flush().await?; // waits for the buffered writes
//!     let mut text = String::new();
//!     fs::File::open(dir.join("b.txt")).await?.read_to_string(&mut text).await?;
//!     assert_eq!(text.lines().count(), 100);
//!
//!     // A directory, as a stream of entries.
//!     let names: Vec<_> = fs::read_dir(&dir)
//!         .await?
//!         .map(|entry| entry.unwrap().file_name())
//!         .collect()
//!         .await;
//!     assert_eq!(names.len(), 2);
//!
//!     // Errors name the path.
//!     let err = fs::read(dir.join("missing")).await.unwrap_err();
//!     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
//!     assert!(err.to_string().contains("missing"));
//!
//!     fs::remove_dir_all(&dir).await
//! })
//! .unwrap();
//! ```
//!
//! # Contract
//!
//! - **Errors name the path.** Every error keeps the [`io::ErrorKind`] of
//!   the OS error and its message starts with the path (both paths for
//!   [`rename`], [`copy`], [`hard_link`] and [`symlink`]): `/tmp/x: No
//!   such file or directory (os error 2)`. The OS error itself is the
//!   error's [`source`](std::error::Error::source) (and is reached through
//!   [`io::Error::get_ref`]). tokio returns the bare OS error. The
//!   exceptions are the errors that say nothing about the path, running
//!   out of file descriptors or memory (`EMFILE`, `ENFILE`, `ENOMEM`):
//!   they come back bare, so `raw_os_error()` names them, as code that
//!   backs off on `EMFILE` expects.
//! - **Cancel safety.** A call that is dropped mid-way does not stop its
//!   job: the operation (a `write`, a `remove_dir_all`) still runs to the
//!   end on the pool; only its result is lost.
//! - **A runtime.** Every call needs the current runtime's blocking pool:
//!   outside a runtime it panics, as [`spawn_blocking`](crate::spawn_blocking)
//!   does. After shutdown began it fails with the pool's
//!   [`JoinError`](crate::task::JoinError) as an [`io::Error`], its
//!   message starting with the path as any other. Writes a [`File`]
//!   already accepted are the exception: shutdown does not cancel them
//!   (the pool writes them before its threads exit, within the shutdown
//!   timeout), as tokio's `File` does.
//!
//! # What maps to what in tokio
//!
//! | ours | tokio |
//! | --- | --- |
//! | the free functions ([`read`], [`write()`], [`metadata`], …) | the same names in `tokio::fs` |
//! | [`read_dir`] → [`ReadDir`]: a [`Stream`](futures_core::Stream) plus [`next_entry`](ReadDir::next_entry) | `read_dir` → `ReadDir` (`next_entry`; a stream through `tokio-stream`) |
//! | [`File`]: `futures::io::{AsyncRead, AsyncWrite, AsyncSeek}` | `File`: `tokio::io::{AsyncRead, AsyncWrite, AsyncSeek}` |
//! | [`File::sync_all`], [`sync_data`](File::sync_all), [`set_len`](File::set_len) take `&mut self` | take `&self` (behind an async mutex) |
//! | [`OpenOptions`] | `OpenOptions` |
//!
//! # Internals
//!
//! Each function is one blocking-pool job that runs the `std::fs` call.
//! [`ReadDir`] reads 32 entries per job. [`File`] follows tokio's design
//! (one operation in flight, a buffer of up to 2 MiB per operation) with
//! one change: writes accepted while a write is in flight go to a second
//! buffer that the running job takes before it ends (write-behind), so a
//! run of small writes is a few pool jobs, not one each: see [`File`].

mod file;
mod open_options;
mod read_dir;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use file::File;
pub use open_options::OpenOptions;
pub use read_dir::{read_dir, DirEntry, ReadDir};

// ===== errors with paths =====

/// An OS error with the path(s) it happened on: the `source` of the
/// [`io::Error`] every function here returns.
#[derive(Debug)]
struct PathError {
    paths: Paths,
    source: io::Error,
}

#[derive(Debug)]
enum Paths {
    One(PathBuf),
    Two(PathBuf, PathBuf),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.paths {
            Paths::One(path) => write!(f, "{}: {}", path.display(), self.source),
            Paths::Two(from, to) => {
                write!(f, "{} -> {}: {}", from.display(), to.display(), self.source)
            }
        }
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `err` with `path` in front of its message, its kind kept.
pub(crate) fn with_path(err: io::Error, path: &Path) -> io::Error {
    with_paths(err, Paths::One(path.to_owned()))
}

fn with_paths(err: io::Error, paths: Paths) -> io::Error {
    // Not about the path, and `raw_os_error()` must name them (an
    // `io::Error::new` has none).
    if matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    ) {
        return err;
    }
    io::Error::new(err.kind(), PathError { paths, source: err })
}

// ===== running on the pool =====

/// Runs `f` on the blocking pool and waits for it.
async fn asyncify<R: Send + 'static>(
    f: impl FnOnce() -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    crate::spawn_blocking(f).await?
}

/// Runs `f(path)` on the blocking pool; its error names `path`, as does
/// the error of a job that never ran (the runtime shut down).
async fn on_path<R: Send + 'static>(
    path: &Path,
    f: impl FnOnce(&Path) -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    let owned = path.to_owned();
    match crate::spawn_blocking(move || f(&owned).map_err(|err| with_path(err, &owned))).await {
        Ok(result) => result,
        Err(never_ran) => Err(with_path(never_ran.into(), path)),
    }
}

/// Runs `f(from, to)` on the blocking pool; its error names both.
async fn on_paths<R: Send + 'static>(
    from: &Path,
    to: &Path,
    f: impl FnOnce(&Path, &Path) -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    let (owned_from, owned_to) = (from.to_owned(), to.to_owned());
    let job = move || {
        f(&owned_from, &owned_to).map_err(|err| with_paths(err, Paths::Two(owned_from, owned_to)))
    };
    match crate::spawn_blocking(job).await {
        Ok(result) => result,
        Err(never_ran) => Err(with_paths(
            never_ran.into(),
            Paths::Two(from.to_owned(), to.to_owned()),
        )),
    }
}

// ===== the functions =====

/// Reads a whole file ([`std::fs::read`]).
///
/// # Errors
///
/// As [`std::fs::read`], the message naming `path`.
///
/// # Cancel safety
///
/// Dropping the future loses the contents read.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    on_path(path.as_ref(), |p| std::fs::read(p)).await
}

/// Reads a whole file as UTF-8 ([`std::fs::read_to_string`]).
///
/// # Errors
///
/// As [`std::fs::read_to_string`] (`InvalidData` if it is not UTF-8),
/// the message naming `path`.
///
/// # Cancel safety
///
/// Dropping the future loses the contents read.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    on_path(path.as_ref(), |p| std::fs::read_to_string(p)).await
}

/// Writes `contents` as the whole file, creating it or truncating it
/// ([`std::fs::write`]).
///
/// # Errors
///
/// As [`std::fs::write`], the message naming `path`.
///
/// # Cancel safety
///
/// The write goes on to its end if the future is dropped.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let contents = contents.as_ref().to_owned();
    on_path(path.as_ref(), move |p| std::fs::write(p, contents)).await
}

/// A file's metadata, following symlinks ([`std::fs::metadata`]).
///
/// # Errors
///
/// As [`std::fs::metadata`], the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    on_path(path.as_ref(), |p| std::fs::metadata(p)).await
}

/// A file's metadata, not following a symlink
/// ([`std::fs::symlink_metadata`]).
///
/// # Errors
///
/// As [`std::fs::symlink_metadata`], the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    on_path(path.as_ref(), |p| std::fs::symlink_metadata(p)).await
}

/// Creates a directory ([`std::fs::create_dir`]).
///
/// # Errors
///
/// As [`std::fs::create_dir`] (`AlreadyExists`, `NotFound` for a missing
/// parent), the message naming `path`.
///
/// # Cancel safety
///
/// The directory is still created if the future is dropped.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_path(path.as_ref(), |p| std::fs::create_dir(p)).await
}

/// Creates a directory and its missing parents
/// ([`std::fs::create_dir_all`]).
///
/// # Errors
///
/// As [`std::fs::create_dir_all`], the message naming `path`.
///
/// # Cancel safety
///
/// The directories are still created if the future is dropped.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_path(path.as_ref(), |p| std::fs::create_dir_all(p)).await
}

/// Removes a file or symlink ([`std::fs::remove_file`]).
///
/// # Errors
///
/// As [`std::fs::remove_file`], the message naming `path`.
///
/// # Cancel safety
///
/// The file is still removed if the future is dropped.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    on_path(path.as_ref(), |p| std::fs::remove_file(p)).await
}

/// Removes an empty directory ([`std::fs::remove_dir`]).
///
/// # Errors
///
/// As [`std::fs::remove_dir`], the message naming `path`.
///
/// # Cancel safety
///
/// The directory is still removed if the future is dropped.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_path(path.as_ref(), |p| std::fs::remove_dir(p)).await
}

/// Removes a directory and everything in it ([`std::fs::remove_dir_all`]).
///
/// # Errors
///
/// As [`std::fs::remove_dir_all`], the message naming `path`.
///
/// # Cancel safety
///
/// The removal goes on to its end if the future is dropped.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_path(path.as_ref(), |p| std::fs::remove_dir_all(p)).await
}

/// Renames `from` to `to`, replacing `to` ([`std::fs::rename`]).
///
/// # Errors
///
/// As [`std::fs::rename`], the message naming both paths.
///
/// # Cancel safety
///
/// The rename still happens if the future is dropped.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    on_paths(from.as_ref(), to.as_ref(), |f, t| std::fs::rename(f, t)).await
}

/// Copies the contents and permissions of `from` to `to`, returning the
/// bytes copied ([`std::fs::copy`]).
///
/// # Errors
///
/// As [`std::fs::copy`], the message naming both paths; and
/// [`InvalidInput`](io::ErrorKind::InvalidInput) if `to` is `from` itself
/// (the same path, a symlink to it or another hard link), which
/// [`std::fs::copy`] (and tokio's) would truncate to nothing before
/// reading it: the file is left as it was (GNU `cp`: "are the same file").
///
/// # Cancel safety
///
/// The copy goes on to its end if the future is dropped.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    on_paths(from.as_ref(), to.as_ref(), copy_file).await
}

/// [`std::fs::copy`], refusing to copy a file onto itself.
fn copy_file(from: &Path, to: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(a), Ok(b)) = (std::fs::metadata(from), std::fs::metadata(to)) {
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source and destination are the same file",
            ));
        }
    }
    std::fs::copy(from, to)
}

/// The absolute path with every symlink resolved
/// ([`std::fs::canonicalize`]).
///
/// # Errors
///
/// As [`std::fs::canonicalize`], the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_path(path.as_ref(), |p| std::fs::canonicalize(p)).await
}

/// Where a symlink points ([`std::fs::read_link`]).
///
/// # Errors
///
/// As [`std::fs::read_link`], the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_path(path.as_ref(), |p| std::fs::read_link(p)).await
}

/// Makes `link` a new name for the file `original`
/// ([`std::fs::hard_link`]).
///
/// # Errors
///
/// As [`std::fs::hard_link`], the message naming both paths.
///
/// # Cancel safety
///
/// The link is still made if the future is dropped.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    on_paths(original.as_ref(), link.as_ref(), |o, l| {
        std::fs::hard_link(o, l)
    })
    .await
}

/// Makes `link` a symlink to `original`
/// ([`std::os::unix::fs::symlink`]).
///
/// # Errors
///
/// As [`std::os::unix::fs::symlink`], the message naming both paths.
///
/// # Cancel safety
///
/// The link is still made if the future is dropped.
#[cfg(unix)]
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    on_paths(original.as_ref(), link.as_ref(), |o, l| {
        std::os::unix::fs::symlink(o, l)
    })
    .await
}

/// Changes a file's permissions ([`std::fs::set_permissions`]).
///
/// # Errors
///
/// As [`std::fs::set_permissions`], the message naming `path`.
///
/// # Cancel safety
///
/// The change still happens if the future is dropped.
pub async fn set_permissions(path: impl AsRef<Path>, perm: std::fs::Permissions) -> io::Result<()> {
    on_path(path.as_ref(), move |p| std::fs::set_permissions(p, perm)).await
}

/// Whether something is at `path` (following symlinks): `Ok(false)` for
/// a broken link or nothing there, an error when it cannot tell
/// ([`std::fs::exists`]).
///
/// # Errors
///
/// As [`std::fs::exists`] (say a parent directory is not searchable),
/// the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    on_path(path.as_ref(), |p| std::fs::exists(p)).await
}
