//! [`File`]: a [`std::fs::File`] read, written and seeked through the
//! blocking pool, one operation in flight at a time.
//!
//! # The state machine (tokio's, plus write-behind)
//!
//! A `File` is `Idle` (holding its buffer: empty, or data read ahead) or
//! `Busy` (a pool job holds the buffer and runs one operation: a read of
//! up to [`MAX_BUF`] bytes into it, a write of it, or a seek). Every
//! `poll_*` first finishes the job in flight (the job hands the buffer
//! back), then starts its own:
//!
//! - **read**: data read ahead is served from the buffer; else a job reads
//!   up to `min(len, MAX_BUF)` bytes.
//! - **write**: the bytes (up to `MAX_BUF`) are copied into the buffer, a
//!   job writes them, and the write returns `Ready` at once. While that
//!   write job runs, further writes are appended to the *behind* buffer
//!   (up to `MAX_BUF` more) and also return at once; the job takes the
//!   behind buffer before it ends and writes it too, and ends only once
//!   it finds that buffer empty (deciding that, and closing the buffer to
//!   new writes, under its lock). So a run of small writes costs a few
//!   jobs, not one each, and every accepted byte is either in the job's
//!   hands or in a buffer the job will take: a `File` dropped after a
//!   write still gets its data written, by the job, after the drop.
//! - **seek**: a job seeks.
//!
//! Before a write or seek, data read ahead is dropped and the OS cursor
//! moved back over it, so the file position is the one the caller sees.
//!
//! A failed write job drops the bytes it had not written (the behind
//! buffer too) and its error is returned by the next operation (read,
//! write, seek, flush, `sync_*`, `set_len`), once. `flush` waits for the
//! job in flight.

use std::fmt;
use std::fs::File as StdFile;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};

use super::{asyncify, with_path, OpenOptions};
use crate::task::JoinHandle;

/// The most bytes one operation moves (tokio's default).
pub(crate) const MAX_BUF: usize = 2 * 1024 * 1024;

/// An open file, for `futures::io` ([`AsyncRead`], [`AsyncWrite`],
/// [`AsyncSeek`]: use `futures::AsyncReadExt` and friends).
///
/// Reads and writes go through a buffer on the blocking pool (see the
/// [module docs](crate::fs) and the notes below): a write returns before
/// its bytes reach the OS. **Call `flush` (or `close`) to wait for them**
/// and learn whether they were written; [`sync_all`](Self::sync_all)
/// flushes too, then asks the disk. A `File` dropped with writes pending
/// still writes them (in the pool, after the drop, even when the runtime
/// shuts down right after: shutdown leaves accepted writes to the pool,
/// within its timeout), but nobody learns of an error. A write that no
/// pool thread can take (the OS refused to start one) fails at the write.
///
/// # Examples
///
/// ```
/// use futures::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use waitrt::fs::File;
/// use std::io::SeekFrom;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("file-doc-{}", std::process::id()));
///     let mut file = File::options().read(true).write(true).create(true).truncate(true).open(&path).await?;
///     file.write_all(b"hello, world").await?;
///     file.seek(SeekFrom::Start(7)).await?;
///     let mut word = String::new();
///     file.read_to_string(&mut word).await?;
///     assert_eq!(word, "world");
///     waitrt::fs::remove_file(&path).await
/// })
/// .unwrap();
/// ```
pub struct File {
    std: Arc<StdFile>,
    state: State,
    /// Writes accepted while a write job runs: that job writes them.
    behind: Arc<Mutex<Behind>>,
    /// A failed write job's error, for the next operation.
    last_write_err: Option<io::Error>,
    /// The path it was opened at, for error messages.
    path: Option<Arc<Path>>,
}

enum State {
    /// No job in flight; `None` only while one is being started.
    Idle(Option<Buf>),
    /// A job runs.
    Busy(JoinHandle<(Operation, Buf)>, Job),
}

/// What the job in flight does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    Read,
    /// Writes, and takes the behind buffer.
    Write,
    /// Seeks to this position: the next `poll_seek` for the same position
    /// takes its outcome, one for another position waits for it and then
    /// seeks again (the caller of this one gave up: see `poll_seek_priv`).
    Seek(SeekFrom),
}

/// What a job did.
enum Operation {
    Read(io::Result<usize>),
    Write(io::Result<()>),
    Seek(io::Result<u64>),
    /// The job never finished (the runtime shut down): its buffer is gone.
    Lost(io::Error),
}

/// The write-behind buffer: bytes the running write job takes before it
/// ends. `open`: a write job runs and will still look here.
#[derive(Default)]
struct Behind {
    data: Vec<u8>,
    open: bool,
}

// ===== impl File =====

impl File {
    /// Opens a file for reading ([`std::fs::File::open`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::open`], the message naming `path`.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the file opened (if it was) is closed.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates a file for writing, truncating it if it exists
    /// ([`std::fs::File::create`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::create`], the message naming `path`.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the file may still be created.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a file for reading and writing, failing if it exists
    /// ([`std::fs::File::create_new`]).
    ///
    /// # Errors
    ///
    /// `AlreadyExists`, or as [`std::fs::File::create_new`], the message
    /// naming `path`.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the file may still be created.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Options to open a file with ([`OpenOptions::new`]).
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file.
    pub fn from_std(std: StdFile) -> File {
        File {
            std: Arc::new(std),
            state: State::Idle(Some(Buf::default())),
            behind: Arc::default(),
            last_write_err: None,
            path: None,
        }
    }

    pub(super) fn with_path(mut self, path: &Path) -> File {
        self.path = Some(path.into());
        self
    }

    /// Waits for the operation in flight, moves the OS cursor back over
    /// data read ahead, and returns the std file.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the file (after the operation in
    /// flight).
    pub async fn into_std(mut self) -> StdFile {
        let _ = poll_fn(|cx| self.poll_complete(cx)).await;
        let _ = self.discard_read_ahead().await;
        match Arc::try_unwrap(self.std) {
            Ok(std) => std,
            // A `metadata` or `try_clone` job whose future was dropped may
            // still hold the file: hand out a duplicate descriptor.
            Err(shared) => shared
                .try_clone()
                .expect("cannot duplicate the file descriptor for `into_std`"),
        }
    }

    /// The std file, if no operation is in flight and nothing was read
    /// ahead (else the `File` back).
    ///
    /// # Errors
    ///
    /// The `File` itself, unchanged, when it is busy.
    pub fn try_into_std(self) -> Result<StdFile, File> {
        match &self.state {
            State::Idle(Some(buf)) if buf.is_empty() => {}
            _ => return Err(self),
        }
        let File {
            std,
            state,
            behind,
            last_write_err,
            path,
        } = self;
        Arc::try_unwrap(std).map_err(|std| File {
            std,
            state,
            behind,
            last_write_err,
            path,
        })
    }

    /// Flushes, then `fsync(2)`: data and metadata on the disk.
    ///
    /// # Errors
    ///
    /// A pending write error, or as [`std::fs::File::sync_all`].
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the writes and the sync still happen;
    /// their errors are lost.
    pub async fn sync_all(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_priv(cx)).await?;
        let std = self.std.clone();
        self.job(move || std.sync_all()).await
    }

    /// Flushes, then `fdatasync(2)`: data on the disk, metadata only as
    /// reading it back needs.
    ///
    /// # Errors
    ///
    /// A pending write error, or as [`std::fs::File::sync_data`].
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the writes and the sync still happen;
    /// their errors are lost.
    pub async fn sync_data(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_priv(cx)).await?;
        let std = self.std.clone();
        self.job(move || std.sync_data()).await
    }

    /// Flushes, then truncates or extends the file to `size` bytes (the
    /// cursor does not move; past the end, reads give EOF and writes
    /// extend the file again).
    ///
    /// # Errors
    ///
    /// A pending write error, or as [`std::fs::File::set_len`].
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped, the writes and the change still happen.
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_priv(cx)).await?;
        self.discard_read_ahead().await?;
        let std = self.std.clone();
        self.job(move || std.set_len(size)).await
    }

    /// The file's metadata. A write still in flight may not be counted
    /// yet in its length: flush first.
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::metadata`].
    ///
    /// # Cancel safety
    ///
    /// Nothing is lost by dropping the future.
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let std = self.std.clone();
        self.job(move || std.metadata()).await
    }

    /// A second `File` on the same open file (`dup(2)`: one cursor for
    /// both). Writes of this one still in flight are not waited for.
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::try_clone`].
    ///
    /// # Cancel safety
    ///
    /// Nothing is lost by dropping the future.
    pub async fn try_clone(&self) -> io::Result<File> {
        let std = self.std.clone();
        let clone = File::from_std(self.job(move || std.try_clone()).await?);
        Ok(File {
            path: self.path.clone(),
            ..clone
        })
    }

    /// Changes the file's permissions.
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::set_permissions`].
    ///
    /// # Cancel safety
    ///
    /// The change still happens if the future is dropped.
    pub async fn set_permissions(&self, perm: std::fs::Permissions) -> io::Result<()> {
        let std = self.std.clone();
        self.job(move || std.set_permissions(perm)).await
    }

    /// Runs `f` on the pool, its error naming the file's path.
    async fn job<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<R> + Send + 'static,
    ) -> io::Result<R> {
        asyncify(f).await.map_err(|err| self.error(err))
    }

    fn error(&self, err: io::Error) -> io::Error {
        match &self.path {
            Some(path) => with_path(err, path),
            None => err,
        }
    }

    /// Drops data read ahead, moving the OS cursor back over it (the file
    /// must be idle).
    async fn discard_read_ahead(&mut self) -> io::Result<()> {
        let State::Idle(Some(buf)) = &mut self.state else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        let back = buf.discard_read();
        let std = self.std.clone();
        self.job(move || (&*std).seek(SeekFrom::Current(back)).map(drop))
            .await
    }

    fn lock_behind(&self) -> MutexGuard<'_, Behind> {
        lock(&self.behind)
    }

    /// Finishes the job in flight (the file is `Busy`), making the file
    /// `Idle` again.
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<Operation> {
        let State::Busy(job, _) = &mut self.state else {
            unreachable!("poll_job on an idle file");
        };
        let done = ready!(Pin::new(job).poll(cx));
        Poll::Ready(self.job_done(done))
    }

    /// The job in flight, if it has finished (no poll: no budget spent).
    fn finished_job(&mut self) -> Option<Operation> {
        let State::Busy(job, _) = &mut self.state else {
            return None;
        };
        let done = job.take_finished()?;
        Some(self.job_done(done))
    }

    /// A busy file's job came to `done`: the file is idle again.
    fn job_done(&mut self, done: Result<(Operation, Buf), crate::task::JoinError>) -> Operation {
        let (operation, buf) = match done {
            Ok(done) => done,
            Err(lost) => {
                *self.lock_behind() = Behind::default();
                (Operation::Lost(lost.into()), Buf::default())
            }
        };
        self.state = State::Idle(Some(buf));
        operation
    }

    /// Finishes the job in flight, keeping a write error for later and
    /// returning a lost job's; for those that have no use of the outcome.
    fn poll_complete(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let State::Busy(..) = self.state {
            match ready!(self.poll_job(cx)) {
                Operation::Write(Err(err)) => self.last_write_err = Some(err),
                Operation::Lost(err) => return Poll::Ready(Err(self.error(err))),
                Operation::Read(_) | Operation::Write(Ok(())) | Operation::Seek(_) => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The buffer of an idle file, taken out to start a job.
    fn take_buf(&mut self) -> Buf {
        match &mut self.state {
            State::Idle(buf) => buf.take().expect("an idle file holds its buffer"),
            State::Busy(..) => unreachable!("take_buf on a busy file"),
        }
    }

    fn start(&mut self, kind: Job, job: impl FnOnce() -> (Operation, Buf) + Send + 'static) {
        let handle = match kind {
            // Accepted writes must reach the file even if the runtime
            // shuts down before a pool thread takes the job (the caller
            // was told `Ok`, and may drop the `File` at once).
            Job::Write => crate::Handle::current().spawn_mandatory_blocking(job),
            Job::Read | Job::Seek(_) => crate::spawn_blocking(job),
        };
        self.state = State::Busy(handle, kind);
    }

    fn poll_read_priv(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match &mut self.state {
                State::Idle(Some(buf)) if !buf.is_empty() => {
                    return Poll::Ready(Ok(buf.copy_to(dst)));
                }
                State::Idle(_) => {
                    if let Some(err) = self.last_write_err.take() {
                        return Poll::Ready(Err(self.error(err)));
                    }
                    let mut buf = self.take_buf();
                    let len = dst.len().min(MAX_BUF);
                    let std = self.std.clone();
                    self.start(Job::Read, move || {
                        let result = buf.read_from(&std, len);
                        (Operation::Read(result), buf)
                    });
                }
                State::Busy(..) => match ready!(self.poll_job(cx)) {
                    Operation::Read(Ok(_)) => {
                        // This read's data (or EOF: nothing).
                        let State::Idle(Some(buf)) = &mut self.state else {
                            unreachable!("idle after a job");
                        };
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    Operation::Read(Err(err)) | Operation::Lost(err) => {
                        return Poll::Ready(Err(self.error(err)))
                    }
                    Operation::Write(Err(err)) => self.last_write_err = Some(err),
                    Operation::Write(Ok(())) | Operation::Seek(_) => {}
                },
            }
        }
    }

    fn poll_write_priv(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match &mut self.state {
                State::Idle(_) => {
                    if let Some(err) = self.last_write_err.take() {
                        return Poll::Ready(Err(self.error(err)));
                    }
                    let mut buf = self.take_buf();
                    let seek = (!buf.is_empty()).then(|| SeekFrom::Current(buf.discard_read()));
                    let n = buf.copy_from(src);
                    self.lock_behind().open = true;
                    let (std, behind) = (self.std.clone(), self.behind.clone());
                    self.start(Job::Write, move || write_job(&std, &behind, buf, seek));
                    // A job that ended already never started: no pool
                    // thread could (the OS refused one). Say so here; told
                    // `Ok`, a caller that drops the file learned nothing,
                    // and the bytes were gone. (Taken, not polled: a poll
                    // with the task's budget spent said `Pending`, and the
                    // write said `Ok`; an independent review.)
                    match self.finished_job() {
                        Some(Operation::Lost(err)) => return Poll::Ready(Err(self.error(err))),
                        Some(Operation::Write(Err(err))) => self.last_write_err = Some(err),
                        _ => {}
                    }
                    return Poll::Ready(Ok(n));
                }
                State::Busy(_, kind) => {
                    if *kind == Job::Write {
                        let mut behind = self.lock_behind();
                        if behind.open && behind.data.len() < MAX_BUF {
                            let n = src.len().min(MAX_BUF - behind.data.len());
                            behind.data.extend_from_slice(&src[..n]);
                            return Poll::Ready(Ok(n));
                        }
                    }
                    ready!(self.poll_complete(cx))?;
                }
            }
        }
    }

    fn poll_flush_priv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_complete(cx))?;
        match self.last_write_err.take() {
            Some(err) => Poll::Ready(Err(self.error(err))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_seek_priv(
        &mut self,
        cx: &mut Context<'_>,
        requested: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        loop {
            match &mut self.state {
                State::Idle(_) => {
                    if let Some(err) = self.last_write_err.take() {
                        return Poll::Ready(Err(self.error(err)));
                    }
                    let mut buf = self.take_buf();
                    let pos = match requested {
                        SeekFrom::Current(n) => {
                            SeekFrom::Current(n.saturating_add(buf.discard_read()))
                        }
                        other => {
                            buf.discard_read();
                            other
                        }
                    };
                    let std = self.std.clone();
                    self.start(Job::Seek(requested), move || {
                        (Operation::Seek((&*std).seek(pos)), buf)
                    });
                }
                State::Busy(_, kind) => {
                    let ours = *kind == Job::Seek(requested);
                    match ready!(self.poll_job(cx)) {
                        // This seek's outcome: the job seeked where this
                        // call asks (it started it, or a call for the same
                        // position whose caller gave up did).
                        Operation::Seek(result) if ours => {
                            return Poll::Ready(result.map_err(|err| self.error(err)))
                        }
                        // A seek elsewhere whose caller gave up: it moved
                        // the cursor (as tokio's does), and this one seeks
                        // from there. Its error, as tokio's, is this one's.
                        Operation::Seek(Err(err)) => return Poll::Ready(Err(self.error(err))),
                        Operation::Seek(Ok(_)) => {}
                        Operation::Lost(err) => return Poll::Ready(Err(self.error(err))),
                        Operation::Write(Err(err)) => self.last_write_err = Some(err),
                        Operation::Write(Ok(())) | Operation::Read(_) => {}
                    }
                }
            }
        }
    }
}

/// A write job: `buf` (after `seek`, moving the cursor back over data
/// read ahead), then whatever the behind buffer holds, until it is empty.
fn write_job(
    std: &StdFile,
    behind: &Mutex<Behind>,
    mut buf: Buf,
    seek: Option<SeekFrom>,
) -> (Operation, Buf) {
    let result = (|| {
        if let Some(seek) = seek {
            (&*std).seek(seek)?;
        }
        loop {
            buf.write_to(std)?;
            let mut behind = lock(behind);
            if behind.data.is_empty() {
                // Under the lock: a write that finds `open` appends
                // before this point, and is taken by the loop.
                behind.open = false;
                return Ok(());
            }
            std::mem::swap(&mut buf.data, &mut behind.data);
        }
    })();
    if result.is_err() {
        *lock(behind) = Behind::default();
        buf.clear();
    }
    (Operation::Write(result), buf)
}

fn lock(behind: &Mutex<Behind>) -> MutexGuard<'_, Behind> {
    behind.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for File {
    /// Copies up to 2 MiB of `buf` and returns: the bytes are written by
    /// a pool job (see [`File`]).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_priv(cx, buf)
    }

    /// Waits until every byte written before reached the OS (or failed).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_priv(cx)
    }

    /// As `poll_flush` (the file is closed when dropped).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_priv(cx)
    }
}

impl AsyncSeek for File {
    /// Seeks on the pool. As with tokio, a seek whose caller gave up
    /// (dropped the future) after it started still completes: the next
    /// seek starts from where it went (or returns its error). A seek to
    /// the same `pos` as the one in flight takes that one's outcome (it is
    /// how a seek future polled again learns its own), so after a dropped
    /// `SeekFrom::Current(n)` the same `Current(n)` does not move again.
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        self.get_mut().poll_seek_priv(cx, pos)
    }
}

impl From<StdFile> for File {
    fn from(std: StdFile) -> File {
        File::from_std(std)
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.std)
            .field("busy", &matches!(self.state, State::Busy(..)))
            .finish_non_exhaustive()
    }
}

// ===== impl Buf =====

/// One operation's bytes: data read ahead (`data[pos..]`) or to write.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
}

impl Buf {
    fn len(&self) -> usize {
        self.data.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }

    /// Serves read-ahead data into `dst`.
    fn copy_to(&mut self, dst: &mut [u8]) -> usize {
        let n = self.len().min(dst.len());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if self.is_empty() {
            self.clear();
        }
        n
    }

    /// Takes up to [`MAX_BUF`] bytes of `src` to write (the buffer is empty).
    fn copy_from(&mut self, src: &[u8]) -> usize {
        debug_assert!(self.is_empty());
        let n = src.len().min(MAX_BUF);
        self.data.extend_from_slice(&src[..n]);
        n
    }

    /// Drops data read ahead; returns the (non-positive) offset that moves
    /// the OS cursor back over it.
    fn discard_read(&mut self) -> i64 {
        let back = -(self.len() as i64);
        self.clear();
        back
    }

    /// Reads up to `len` bytes (on the pool).
    fn read_from(&mut self, std: &StdFile, len: usize) -> io::Result<usize> {
        self.clear();
        self.data.resize(len, 0);
        let result = loop {
            match (&*std).read(&mut self.data) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                result => break result,
            }
        };
        self.data.truncate(*result.as_ref().unwrap_or(&0));
        result
    }

    /// Writes it all (on the pool); empty afterwards.
    fn write_to(&mut self, std: &StdFile) -> io::Result<()> {
        let result = (&*std).write_all(&self.data[self.pos..]);
        self.clear();
        result
    }
}
