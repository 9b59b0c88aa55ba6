//! Child processes: tokio's `process` API, where a child's exit and its
//! pipes are reactor events like a socket's.
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use waitrt::process::Command;
//! use std::process::Stdio;
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     // Run to completion, capturing the output.
//!     let out = Command::new("sh").args(["-c", "echo hi; exit 3"]).output().await?;
//!     assert_eq!(out.stdout, b"hi\n");
//!     assert_eq!(out.status.code(), Some(3));
//!
//!     // Talk to it through pipes.
//!     let mut child = Command::new("cat")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let mut stdin = child.stdin.take().unwrap();
//!     stdin.write_all(b"echo").await?;
//!     stdin.close().await?; // EOF for cat
//!     let mut echoed = String::new();
//!     child.stdout.take().unwrap().read_to_string(&mut echoed).await?;
//!     assert_eq!(echoed, "echo");
//!     assert!(child.wait().await?.success());
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```
//!
//! # Contract
//!
//! - **A runtime with I/O.** [`Command::spawn`] registers the child with
//!   the current runtime's reactor: outside a runtime built with
//!   `enable_io()` it fails, before any process is started.
//! - **No zombies.** A child is reaped when it exits, awaited or not: a
//!   [`Child`] dropped before its process exited is reaped in the
//!   background once it does (it joins the reaper's list, see below), so
//!   a child never lingers as a zombie.
//! - **Dropping does not kill** (as std and tokio): the process runs on,
//!   unless [`Command::kill_on_drop`] was set, when dropping its
//!   [`Child`] sends `SIGKILL` (if it has not exited).
//! - **After shutdown.** [`Child::wait`] on a child whose runtime shut
//!   down ends with an error (not a hang) unless the child had already
//!   been reaped; [`Child::try_wait`] and [`Child::start_kill`] still
//!   work, and the process is still reaped when it exits.
//! - **Cancel safety.** [`Child::wait`] is cancel safe; see each method.
//!
//! # What maps to what in tokio
//!
//! | ours | tokio |
//! | --- | --- |
//! | [`Command`] (`spawn`, `output`, `status`, `kill_on_drop`, the std builder methods) | `Command` |
//! | [`Child`] (`id`, `wait`, `try_wait`, `kill`, `start_kill`, `wait_with_output`, `stdin`/`stdout`/`stderr` fields) | `Child` |
//! | [`ChildStdin`] ([`futures_io::AsyncWrite`]), [`ChildStdout`] and [`ChildStderr`] ([`futures_io::AsyncRead`]) | the same names, `tokio::io` traits |
//! | a pidfd per child in the reactor (Linux ≥ 5.3); else, and for a dropped running child, the reaper thread woken by `SIGCHLD` | a pidfd in the reactor (Linux ≥ 5.3), else the signal driver's `SIGCHLD` and an orphan queue |
//!
//! # Internals
//!
//! A child's exit is a reactor source. By default it is the child's
//! *pidfd* (`pidfd_open(2)`, Linux ≥ 5.3, through rustix's safe
//! binding), which the kernel makes readable when the process exits:
//! [`Child::wait`] sleeps on that source's wait queue like a socket read,
//! then reaps with `waitpid(WNOHANG)`. No thread and no signal handler
//! take part (see `process/pidfd.rs`).
//!
//! Where `pidfd_open` fails (`ENOSYS` before 5.3, `EPERM` under seccomp;
//! remembered for the process), or with
//! [`Builder::process_pidfd(false)`](crate::Builder::process_pidfd),
//! exits reach the runtime as in the kernel, where `SIGCHLD` and the
//! parent's wait queue carry them: one process-wide thread reaps on
//! `SIGCHLD` (see `process/reaper.rs` for the protocol that loses no
//! exit) and closes the reaped child's *exit pipe*, whose read end is
//! registered with the reactor, and [`Child::wait`] sleeps on that.
//! The same thread reaps pidfd children dropped before they exited (the
//! orphan list, as tokio's orphan queue): it starts with the first child
//! that needs it, so a program whose children all use pidfds and are
//! waited for has none.
//!
//! Installing the `SIGCHLD` handler is process-wide and permanent (the
//! default action of `SIGCHLD` is to ignore it, so nothing else changes).
//! Pipes are std's, made non-blocking and registered through
//! `mio::unix::pipe`.

mod pidfd;
mod pipe;
mod reaper;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::panic::Location;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Output, Stdio};
use std::task::Poll;
use std::time::Duration;

pub use pipe::{ChildStderr, ChildStdin, ChildStdout};

use crate::reactor::no_reactor_error;

// ===== impl Command =====

/// A process to start: [`std::process::Command`]'s builder (the same
/// methods), started onto the reactor.
///
/// # Examples
///
/// ```
/// use waitrt::process::Command;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let status = Command::new("true").status().await?;
///     assert!(status.success());
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// Which streams the caller chose (`output` pipes the others).
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command running `program` (looked up in `PATH` unless a path).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts from an empty environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin ([`Stdio::piped`] makes [`Child::stdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout ([`Stdio::piped`] makes [`Child::stdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr ([`Stdio::piped`] makes [`Child::stderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether dropping the [`Child`] (or the `output` / `status` future)
    /// sends `SIGKILL` to a process that has not exited. Off by default.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// The std builder inside (for what it has and this one does not:
    /// `uid`, `process_group`, …).
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The std builder inside, to change. Stdio set through it counts as
    /// not set for [`output`](Self::output)'s defaults, and does not
    /// outlive an `output`: that call pipes the streams not set through
    /// this `Command`'s own [`stdin`](Self::stdin) /
    /// [`stdout`](Self::stdout) / [`stderr`](Self::stderr), then puts
    /// them back to inherit (std's builder cannot be read back), so a
    /// later [`spawn`](Self::spawn) inherits them. Set stdio through this
    /// `Command` to keep it.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the process. Stdio not set is inherited.
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O (nothing is started); when the program
    /// cannot be started (as [`std::process::Command::spawn`]: `NotFound`
    /// for a missing program or working directory, the message naming the
    /// program, and the directory if one was set; the OS error is the
    /// `source()`, as with [`fs`](crate::fs)'s paths); when the reaper
    /// cannot start (no thread, no file descriptor). Out of file
    /// descriptors it fails before the program starts (the bare OS error,
    /// `EMFILE`): the descriptor that will watch the child's exit is held
    /// for it from before the spawn. If watching the exit still fails
    /// after it started, it is killed and reaped, and the error says that
    /// it started; if registering its pipes fails, it is killed (and
    /// reaped when it exits).
    pub fn spawn(&mut self) -> io::Result<Child> {
        // Outside a runtime with I/O this fails before any process exists.
        let use_pidfd = crate::context::with_scheduler(|scheduler| {
            let common = scheduler.common();
            common.io.is_some().then_some(common.config.process_pidfd)
        })
        .flatten()
        .ok_or_else(no_reactor_error)?;
        // Orphans an earlier failure left without a reaper get one now.
        reaper::start_if_pending();
        let (prepared, reserved) = match use_pidfd && pidfd::supported() {
            true => (None, pidfd::reserve()?),
            false => (Some(reaper::Exit::prepare()?), None),
        };
        let mut std = self
            .std
            .spawn()
            .map_err(|err| spawn_error(&self.std, err))?;
        drop(reserved); // for the child's pidfd, next
        let pid = std.id();
        let (stdin, stdout, stderr) = (std.stdin.take(), std.stdout.take(), std.stderr.take());
        let exit = match prepared {
            Some(prepared) => Exit::Reaper(reaper::Exit::watch(std, prepared)?),
            None => watch_pidfd(std, &self.std)?,
        };
        let mut child = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            inner: ChildInner {
                exit,
                pid,
                kill_on_drop: self.kill_on_drop,
                observed: false,
            },
        };
        let pipes = (|| {
            child.stdin = stdin.map(ChildStdin::new).transpose()?;
            child.stdout = stdout.map(ChildStdout::new).transpose()?;
            child.stderr = stderr.map(ChildStderr::new).transpose()?;
            io::Result::Ok(())
        })();
        if let Err(err) = pipes {
            let _ = child.start_kill();
            return Err(err);
        }
        Ok(child)
    }

    /// Starts the process and waits for it, capturing stdout and stderr
    /// (unless set otherwise); stdin is `/dev/null` unless set.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn), or when reading the pipes or waiting
    /// fails (say the runtime shut down).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the child: it runs on unless
    /// [`kill_on_drop`](Self::kill_on_drop) was set, and is reaped when it
    /// exits; its output is lost.
    #[track_caller]
    pub fn output(&mut self) -> impl Future<Output = io::Result<Output>> + '_ {
        // The wait is listed at our caller's site.
        self.output_at(Location::caller())
    }

    async fn output_at(&mut self, site: &'static Location<'static>) -> io::Result<Output> {
        if !self.stdin_set {
            self.std.stdin(Stdio::null());
        }
        if !self.stdout_set {
            self.std.stdout(Stdio::piped());
        }
        if !self.stderr_set {
            self.std.stderr(Stdio::piped());
        }
        let child = self.spawn();
        self.restore_defaults();
        child?.wait_with_output_at(site).await
    }

    /// Starts the process (stdio inherited unless set) and waits for it to
    /// exit. Pipes set up for it are closed at once.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn) and [`Child::wait`].
    ///
    /// # Cancel safety
    ///
    /// As [`output`](Self::output).
    #[track_caller]
    pub fn status(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let mut child = self.spawn()?;
            drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
            child.wait_at(site).await
        }
    }

    /// Puts back the stdio `output` chose, so a later `spawn` inherits.
    fn restore_defaults(&mut self) {
        if !self.stdin_set {
            self.std.stdin(Stdio::inherit());
        }
        if !self.stdout_set {
            self.std.stdout(Stdio::inherit());
        }
        if !self.stderr_set {
            self.std.stderr(Stdio::inherit());
        }
    }
}

/// A spawn's error with the program (and working directory, if set) it
/// was about: std's says only "No such file or directory", which does
/// not tell a missing program from a missing directory. Descriptor and
/// memory exhaustion come back bare (not about the program; their
/// `raw_os_error()` is what callers match on).
fn spawn_error(cmd: &std::process::Command, err: io::Error) -> io::Error {
    if matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN)
    ) {
        return err;
    }
    let program = cmd.get_program().to_string_lossy();
    let message = match cmd.get_current_dir() {
        Some(dir) => format!("spawning `{program}` in {}: {err}", dir.display()),
        None => format!("spawning `{program}`: {err}"),
    };
    io::Error::new(
        err.kind(),
        SpawnError {
            message,
            source: err,
        },
    )
}

/// See [`spawn_error`].
#[derive(Debug)]
struct SpawnError {
    message: String,
    source: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Watches `std`'s exit (a child of `cmd`) through a pidfd; through the
/// reaper if this kernel has no pidfd for it.
fn watch_pidfd(std: std::process::Child, cmd: &std::process::Command) -> io::Result<Exit> {
    let fd = match pidfd::open(&std) {
        Ok(fd) => fd,
        // Out of descriptors (another thread took the one reserved): the
        // reaper's exit pipe would need two more.
        Err(err) if pidfd::exhausted(&err) => return Err(abandon(std, cmd, err)),
        Err(_) => {
            return match reaper::Exit::prepare() {
                Ok(prepared) => reaper::Exit::watch(std, prepared).map(Exit::Reaper),
                Err(err) => Err(abandon(std, cmd, err)),
            }
        }
    };
    pidfd::Exit::new(std, fd)
        .map(Exit::Pidfd)
        .map_err(|(std, err)| abandon(std, cmd, err))
}

/// How long [`abandon`] waits for a killed child to exit before it leaves
/// it to the reaper.
const ABANDON_REAP: Duration = Duration::from_millis(100);

/// Kills `child` (of `cmd`), whose exit cannot be watched, and reaps it:
/// here, since `SIGKILL` ends it within moments (unless it is stuck in the
/// kernel: then after [`ABANDON_REAP`] it is left to the reaper, which may
/// not be able to start either when descriptors ran out). Gives back
/// `err`, saying that the program started and was killed: it may have
/// done part of its work.
fn abandon(
    mut child: std::process::Child,
    cmd: &std::process::Command,
    err: io::Error,
) -> io::Error {
    let _ = child.kill();
    let start = std::time::Instant::now();
    let reaped = loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break true,
            Ok(None) if start.elapsed() < ABANDON_REAP => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(None) => break false,
        }
    };
    if !reaped {
        reaper::orphan(child);
    }
    let program = cmd.get_program().to_string_lossy();
    io::Error::new(
        err.kind(),
        SpawnError {
            message: format!(
                "`{program}` started, but its exit cannot be watched, so it was killed \
                 (it may have done part of its work): {err}"
            ),
            source: err,
        },
    )
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("std", &self.std)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}

// ===== impl Child =====

/// A started process: see [`Command::spawn`].
///
/// Dropping it does not kill the process (unless
/// [`kill_on_drop`](Command::kill_on_drop)) and does not leave a zombie:
/// the process is reaped in the background when it exits.
pub struct Child {
    /// Its stdin, if [`Stdio::piped`].
    pub stdin: Option<ChildStdin>,
    /// Its stdout, if [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// Its stderr, if [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
    inner: ChildInner,
}

struct ChildInner {
    exit: Exit,
    pid: u32,
    kill_on_drop: bool,
    /// `wait` or `try_wait` returned the status.
    observed: bool,
}

/// How the child's exit reaches its runtime.
#[derive(Debug)]
enum Exit {
    /// A pidfd in the reactor (the default).
    Pidfd(pidfd::Exit),
    /// The `SIGCHLD` reaper and an exit pipe in the reactor.
    Reaper(reaper::Exit),
}

impl Exit {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Exit::Pidfd(exit) => exit.try_wait(),
            Exit::Reaper(exit) => exit.try_wait(),
        }
    }

    async fn wait(&mut self, site: &'static Location<'static>) -> io::Result<ExitStatus> {
        match self {
            Exit::Pidfd(exit) => exit.wait(site).await,
            Exit::Reaper(exit) => exit.wait(site).await,
        }
    }

    fn status(&self) -> Option<ExitStatus> {
        match self {
            Exit::Pidfd(exit) => exit.status(),
            Exit::Reaper(exit) => exit.status(),
        }
    }

    fn kill(&mut self) -> io::Result<()> {
        match self {
            Exit::Pidfd(exit) => exit.kill(),
            Exit::Reaper(exit) => exit.kill(),
        }
    }
}

impl Child {
    /// The process id, until [`wait`](Self::wait) or
    /// [`try_wait`](Self::try_wait) returned its exit status (then `None`,
    /// as tokio).
    ///
    /// On the reaper path (no pidfd) a child is reaped as soon as it
    /// exits, so once the process has exited the id may already name
    /// another process: signal the child through
    /// [`start_kill`](Self::start_kill), which knows.
    pub fn id(&self) -> Option<u32> {
        (!self.inner.observed).then_some(self.inner.pid)
    }

    /// The exit status if the process has exited (reaping it), without
    /// waiting.
    ///
    /// # Errors
    ///
    /// As [`std::process::Child::try_wait`] (`ECHILD` if something else
    /// in the process reaped it).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.inner.exit.try_wait()?;
        self.inner.observed |= status.is_some();
        Ok(status)
    }

    /// Waits for the process to exit; its status (kept: every later call
    /// returns it too). Closes [`stdin`](Self::stdin) first, if it is
    /// still here (as tokio's and std's `wait` do): a child reading until
    /// EOF would otherwise wait for us while we wait for it. Take `stdin`
    /// out of the `Child` beforehand to keep writing to it meanwhile.
    ///
    /// # Errors
    ///
    /// When the child's runtime shut down before it exited (an error, not
    /// a hang); as [`try_wait`](Self::try_wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is lost, a later call waits again (stdin stays
    /// closed once the first poll closed it).
    #[track_caller]
    pub fn wait(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + '_ {
        // The wait is listed at our caller's site.
        self.wait_at(Location::caller())
    }

    async fn wait_at(&mut self, site: &'static Location<'static>) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.inner.exit.wait(site).await?;
        self.inner.observed = true;
        Ok(status)
    }

    /// Sends `SIGKILL` without waiting; nothing if the process has already
    /// been reaped.
    ///
    /// # Errors
    ///
    /// As [`std::process::Child::kill`].
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.inner.exit.kill()
    }

    /// Sends `SIGKILL` and waits for the process to exit.
    ///
    /// # Errors
    ///
    /// As [`start_kill`](Self::start_kill) and [`wait`](Self::wait).
    ///
    /// # Cancel safety
    ///
    /// The signal is sent on the first poll; dropping the future after
    /// that loses nothing (the process is reaped in the background).
    #[track_caller]
    pub fn kill(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            self.start_kill()?;
            self.wait_at(site).await.map(drop)
        }
    }

    /// Closes stdin, then reads stdout and stderr to the end while
    /// waiting for the process to exit.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait), or a read error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the child (see [`Child`]) and loses the
    /// output read so far.
    #[track_caller]
    pub fn wait_with_output(self) -> impl Future<Output = io::Result<Output>> {
        // The wait is listed at our caller's site.
        self.wait_with_output_at(Location::caller())
    }

    async fn wait_with_output_at(mut self, site: &'static Location<'static>) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let mut out = pin!(read_to_end(stdout, site));
        let mut err = pin!(read_to_end(stderr, site));
        let mut status = pin!(self.wait_at(site));
        let (mut got_out, mut got_err, mut got_status) = (None, None, None);
        poll_fn(|cx| {
            if got_out.is_none() {
                if let Poll::Ready(done) = out.as_mut().poll(cx) {
                    got_out = Some(done);
                }
            }
            if got_err.is_none() {
                if let Poll::Ready(done) = err.as_mut().poll(cx) {
                    got_err = Some(done);
                }
            }
            if got_status.is_none() {
                if let Poll::Ready(done) = status.as_mut().poll(cx) {
                    got_status = Some(done);
                }
            }
            match (&got_out, &got_err, &got_status) {
                (Some(_), Some(_), Some(_)) => Poll::Ready(()),
                _ => Poll::Pending,
            }
        })
        .await;
        Ok(Output {
            status: got_status.expect("polled to completion")?,
            stdout: got_out.expect("polled to completion")?,
            stderr: got_err.expect("polled to completion")?,
        })
    }
}

/// Reads `io` to EOF (nothing for `None`), straight into the result.
///
/// The room to read into starts small and doubles each time a read fills
/// it (up to [`READ_ROOM_MAX`] more at a time): a child that prints
/// nothing costs no large zeroed buffer (a fixed 64 KiB chunk per stream
/// was two 64 KiB `memset`s per `output()` of `true`), and a large output
/// still reads a pipe's worth per call.
async fn read_to_end<R: pipe::ReadAt>(
    io: Option<R>,
    site: &'static Location<'static>,
) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let Some(io) = io else {
        return Ok(all);
    };
    let mut len = 0;
    loop {
        if len == all.len() {
            let room = len.clamp(READ_ROOM_MIN, READ_ROOM_MAX);
            all.resize(len + room, 0);
        }
        match poll_fn(|cx| io.poll_read_at(cx, &mut all[len..], site)).await {
            Ok(0) => {
                all.truncate(len);
                return Ok(all);
            }
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// The first room [`read_to_end`] reads into.
const READ_ROOM_MIN: usize = 1024;

/// The most room [`read_to_end`] adds at once: a pipe's default capacity.
const READ_ROOM_MAX: usize = 64 * 1024;

impl Drop for Child {
    /// Kills the process if [`kill_on_drop`](Command::kill_on_drop) was
    /// set. A process that has not exited joins the reaper's list, which
    /// reaps it when it does.
    fn drop(&mut self) {
        if self.inner.kill_on_drop {
            let _ = self.inner.exit.kill();
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.pid)
            .field("status", &self.inner.exit.status())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
