//! [`read_dir`]: a directory's entries as a stream, [`BATCH`] per
//! blocking-pool job.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use super::{on_path, with_path};
use crate::task::JoinHandle;

/// Entries read per blocking-pool job (as tokio).
const BATCH: usize = 32;

/// Opens a directory for listing ([`std::fs::read_dir`]): its entries
/// come from [`ReadDir::next_entry`] or the [`Stream`] impl, without `.`
/// and `..`, in the order the OS gives.
///
/// # Errors
///
/// As [`std::fs::read_dir`], the message naming `path`.
///
/// # Cancel safety
///
/// Nothing is lost by dropping the future.
///
/// # Examples
///
/// ```
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let mut entries = waitrt::fs::read_dir(env!("CARGO_MANIFEST_DIR")).await?;
///     let mut names = Vec::new();
///     while let Some(entry) = entries.next_entry().await? {
///         names.push(entry.file_name());
///     }
///     assert!(names.iter().any(|name| name == "Cargo.toml"));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path: Arc<Path> = path.as_ref().into();
    let std = on_path(&path, |p| std::fs::read_dir(p)).await?;
    Ok(ReadDir {
        path,
        state: State::Idle(Some(Batch {
            entries: VecDeque::new(),
            std,
            more: true,
        })),
    })
}

/// The entries of a directory: see [`read_dir`]. A
/// [`Stream`]`<Item = io::Result<`[`DirEntry`]`>>`.
#[must_use = "streams do nothing unless polled"]
pub struct ReadDir {
    path: Arc<Path>,
    state: State,
}

struct Batch {
    entries: VecDeque<io::Result<DirEntry>>,
    std: std::fs::ReadDir,
    /// The OS may have more entries.
    more: bool,
}

enum State {
    /// No job runs; `None` only while a job is being started.
    Idle(Option<Batch>),
    /// A job reads the next batch.
    Pending(JoinHandle<Batch>),
    /// The job was lost (the runtime shut down): the listing ended.
    Done,
}

impl ReadDir {
    /// The next entry, `None` after the last.
    ///
    /// # Errors
    ///
    /// When reading the directory fails, the message naming it (the
    /// listing may go on after an error).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a batch being read when the future is dropped is kept
    /// for the next call.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry (what [`next_entry`](Self::next_entry)
    /// and the [`Stream`] impl do).
    ///
    /// # Errors
    ///
    /// As [`next_entry`](Self::next_entry).
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle(batch) => {
                    let mut batch = batch.take().expect("a batch when idle");
                    if let Some(entry) = batch.entries.pop_front() {
                        self.state = State::Idle(Some(batch));
                        return Poll::Ready(entry.map(Some));
                    }
                    if !batch.more {
                        self.state = State::Idle(Some(batch));
                        return Poll::Ready(Ok(None));
                    }
                    let path = self.path.clone();
                    self.state = State::Pending(crate::spawn_blocking(move || {
                        next_batch(&mut batch, &path);
                        batch
                    }));
                }
                State::Done => return Poll::Ready(Ok(None)),
                State::Pending(job) => {
                    let batch = ready!(Pin::new(job).poll(cx));
                    match batch {
                        Ok(batch) => self.state = State::Idle(Some(batch)),
                        Err(err) => {
                            // The pool is gone (shutdown): so is the batch.
                            self.state = State::Done;
                            return Poll::Ready(Err(with_path(err.into(), &self.path)));
                        }
                    }
                }
            }
        }
    }
}

/// Reads up to [`BATCH`] entries into `batch` (on the pool).
fn next_batch(batch: &mut Batch, dir: &Path) {
    for _ in 0..BATCH {
        match batch.std.next() {
            Some(Ok(std)) => {
                // `d_type` from the directory read: no syscall on Linux.
                let file_type = std.file_type().ok();
                batch.entries.push_back(Ok(DirEntry {
                    std: Arc::new(std),
                    file_type,
                }));
            }
            Some(Err(err)) => batch.entries.push_back(Err(with_path(err, dir))),
            None => {
                batch.more = false;
                return;
            }
        }
    }
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// One entry of a [`ReadDir`]: [`std::fs::DirEntry`], with the calls
/// that may touch the disk made async.
#[derive(Clone)]
pub struct DirEntry {
    std: Arc<std::fs::DirEntry>,
    /// Read with the entry when the directory said (`d_type`).
    file_type: Option<std::fs::FileType>,
}

impl DirEntry {
    /// The directory's path joined with the entry's name.
    pub fn path(&self) -> PathBuf {
        self.std.path()
    }

    /// The entry's name, without the directory.
    pub fn file_name(&self) -> OsString {
        self.std.file_name()
    }

    /// The entry's inode number (from the directory read).
    #[cfg(unix)]
    pub fn ino(&self) -> u64 {
        std::os::unix::fs::DirEntryExt::ino(&*self.std)
    }

    /// The entry's metadata, not following a symlink
    /// ([`std::fs::DirEntry::metadata`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::DirEntry::metadata`] (say the entry was removed), the
    /// message naming the entry's path.
    ///
    /// # Cancel safety
    ///
    /// Nothing is lost by dropping the future.
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let std = self.std.clone();
        super::asyncify(move || std.metadata().map_err(|err| with_path(err, &std.path()))).await
    }

    /// The entry's type, not following a symlink: known without a syscall
    /// when the directory read said it (most Linux file systems), else
    /// read on the blocking pool.
    ///
    /// # Errors
    ///
    /// As [`std::fs::DirEntry::file_type`], the message naming the
    /// entry's path.
    ///
    /// # Cancel safety
    ///
    /// Nothing is lost by dropping the future.
    pub async fn file_type(&self) -> io::Result<std::fs::FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        let std = self.std.clone();
        super::asyncify(move || std.file_type().map_err(|err| with_path(err, &std.path()))).await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}
