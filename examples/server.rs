//! A TCP server written as the "write a server" guide
//! (`waitrt::guide::write_a_server`) says: an accept loop that backs off
//! when out of file descriptors, a task per connection, and a graceful
//! shutdown on Ctrl-C or `SIGTERM`: the listener closes, every
//! connection finishes the request it is serving and closes, and
//! connections still busy at the deadline are cut off.
//!
//! ```text
//! cargo run --example server -- [--port 7878] [--drain-secs 10]
//! printf 'PING\nSLEEP 500\n' | nc 127.0.0.1 7878
//! ```
//!
//! The protocol is one request per line, one reply per line:
//!
//! | request | reply |
//! | --- | --- |
//! | `PING` | `PONG` |
//! | `SLEEP <ms>` | `SLEPT <ms>`, after that many milliseconds: a slow request, to watch a shutdown wait for it |
//! | anything else | `ERR ...` |
//! | a line over [`MAX_LINE`] bytes | `ERR line too long`, and the connection closes |
//!
//! The exit code is 0 when every connection finished, 1 when some were
//! cut off at the deadline (or the server failed), 2 for bad arguments.
//! `tests/guide_server.rs` runs this file's pieces under the test toolkit
//! and on real sockets, and the program itself in a child process that
//! it sends `SIGTERM`.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{select, Either};
use futures::io::BufReader;
use futures::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};
use waitrt::net::{is_resource_exhaustion, AcceptBackoff, TcpListener};
use waitrt::signal::{self, ProcessSignal};
use waitrt::sync::{watch, WaitQueue};
use waitrt::task::AbortHandle;

/// The longest request line, in bytes (without its newline).
pub const MAX_LINE: usize = 1024;
/// The longest `SLEEP`: one hour.
pub const MAX_SLEEP_MS: u64 = 3_600_000;

const USAGE: &str = "usage: server [--port PORT] [--drain-secs SECONDS]";

fn main() -> ExitCode {
    ExitCode::from(run(std::env::args().skip(1)))
}

/// The program without `main`'s wrapping: parses `args`, serves until
/// Ctrl-C or `SIGTERM`, and gives the exit code.
pub fn run(args: impl Iterator<Item = String>) -> u8 {
    let config = match Config::parse(args) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return 2;
        }
    };
    let rt = match waitrt::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("server: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(main_task(config)) {
        Ok(report) if report.cut_off == 0 => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("server: {e}");
            1
        }
    }
}

/// What the command line sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// The port on 127.0.0.1; 0 picks a free one (printed at start).
    pub port: u16,
    /// How long a shutdown waits for connections to finish.
    pub drain: Duration,
}

impl Config {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
        let mut config = Config {
            port: 7878,
            drain: Duration::from_secs(10),
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--port" => {
                    let v = value("--port")?;
                    config.port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
                }
                "--drain-secs" => {
                    let v = value("--drain-secs")?;
                    let secs: u64 = v.parse().map_err(|_| format!("bad seconds {v:?}"))?;
                    config.drain = Duration::from_secs(secs);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(config)
    }
}

async fn main_task(config: Config) -> io::Result<Report> {
    // Listen for the signals before anything else: from this call on,
    // Ctrl-C and SIGTERM come here instead of ending the process, and
    // one that arrives before the accept loop polls `stop` is kept.
    let stop = stop_signal();
    let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = async {
        match stop.await {
            Ok(signal) => println!("{signal:?}: stopping"),
            // No handler could be installed: nothing could stop the
            // server gracefully, so stop now rather than run unstoppable.
            Err(e) => eprintln!("signals: {e}; stopping"),
        }
    };
    let report = serve(listener, shutdown, config.drain).await;
    println!(
        "stopped: {} connection(s) served, {} cut off at the deadline",
        report.accepted, report.cut_off
    );
    Ok(report)
}

/// Ctrl-C or `SIGTERM`, whichever comes first. Listening starts at this
/// call (not at the first poll), so call it early.
pub fn stop_signal() -> impl Future<Output = io::Result<ProcessSignal>> {
    let ctrl_c = signal::ctrl_c();
    let terminate = signal::recv(ProcessSignal::Terminate);
    async move {
        match select(ctrl_c, terminate).await {
            Either::Left((got, _)) => got.map(|()| ProcessSignal::CtrlC),
            Either::Right((got, _)) => got.map(|()| ProcessSignal::Terminate),
        }
    }
}

/// What a server's life came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections still open at the drain deadline, and aborted.
    pub cut_off: usize,
}

/// Accepts connections on `listener`, each served by [`handle`] in a task
/// of its own, until `shutdown` completes; then closes the listener and
/// gives the connections `drain` to finish (see [`Connections::stop`]).
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Report {
    let connections = Connections::new();
    let (stopping, stop) = watch::channel(false);
    let mut backoff = AcceptBackoff::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // `accept` is cancel safe: when `shutdown` wins, no connection
        // is lost in the dropped accept (it stays queued, and is refused
        // when the listener closes).
        let accept = pin!(listener.accept_with_backoff(&mut backoff));
        match select(accept, shutdown.as_mut()).await {
            Either::Left((Ok((stream, _peer)), _)) => {
                let stop = stop.clone();
                connections.spawn(async move {
                    if let Err(e) = handle(stream, stop).await {
                        eprintln!("connection: {e}");
                    }
                });
            }
            // Once per episode: later calls pause, doubling up to 1 s,
            // instead of spinning on a listener that stays readable.
            Either::Left((Err(e), _)) if is_resource_exhaustion(&e) => {
                eprintln!("accept: {e}; pausing accepts until descriptors are freed");
            }
            // A connection that failed before we took it (reset, aborted):
            // its own problem, not the listener's.
            Either::Left((Err(e), _)) => eprintln!("accept: {e}"),
            Either::Right(((), _)) => break,
        }
    }
    drop(listener); // new connections are refused from here on
    connections.stop(&stopping, drain).await
}

/// The live connection tasks: how many, a wait queue to wait for none,
/// and their abort handles for the deadline.
#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    live: AtomicUsize,
    accepted: AtomicU64,
    /// Woken when `live` drops to zero.
    idle: WaitQueue,
    /// Handles of tasks that may still run; finished ones are pruned as
    /// the list doubles.
    handles: Mutex<Handles>,
}

#[derive(Default)]
struct Handles {
    list: Vec<AbortHandle>,
    prune_at: usize,
}

/// Held by a connection task: leaving (finishing, or dropped by an abort
/// or a runtime shutdown) counts the connection out.
struct Leave(Arc<Inner>);

impl Drop for Leave {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.wake_up_all();
        }
    }
}

impl Connections {
    /// None yet.
    pub fn new() -> Connections {
        Connections::default()
    }

    /// Runs `connection` as a task of its own, counted until it ends.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        self.inner.live.fetch_add(1, Ordering::AcqRel);
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        let leave = Leave(self.inner.clone());
        let task = waitrt::spawn(async move {
            let _leave = leave;
            connection.await;
        });
        let mut handles = self.handles();
        handles.list.push(task.abort_handle());
        if handles.list.len() > handles.prune_at {
            handles.list.retain(|h| !h.is_finished());
            handles.prune_at = (handles.list.len() * 2).max(64);
        }
    }

    /// Connections that have not ended.
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Tells every connection to stop (through `stopping`: each finishes
    /// the request it is serving, then closes), and waits up to `drain`
    /// for them all to end; those still open then are aborted.
    pub async fn stop(&self, stopping: &watch::Sender<bool>, drain: Duration) -> Report {
        // Err: every receiver is gone, so nothing is left to tell.
        let _ = stopping.send(true);
        let inner = &self.inner;
        let all_done = inner
            .idle
            .wait_event(|| inner.live.load(Ordering::Acquire) == 0);
        let cut_off = match waitrt::time::timeout(drain, all_done).await {
            Ok(_) => 0,
            Err(_elapsed) => {
                let cut_off = self.live();
                for handle in self.handles().list.drain(..) {
                    handle.abort();
                }
                // Aborted tasks drop their connection (closing its socket)
                // when the scheduler next reaches them: wait for that, a
                // little, so the report is true when it is printed.
                let gone = inner
                    .idle
                    .wait_event(|| inner.live.load(Ordering::Acquire) == 0);
                let _ = waitrt::time::timeout(Duration::from_secs(1), gone).await;
                cut_off
            }
        };
        Report {
            accepted: inner.accepted.load(Ordering::Relaxed),
            cut_off,
        }
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, Handles> {
        self.inner
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves one connection: reads a request line, answers it, and again,
/// until the client closes, a line is too long, or `stop` says so.
///
/// A stop ends a connection only *between* requests: a request being
/// served is answered first, and a request that has already arrived when
/// the stop comes is served too (the read is polled before the stop, and
/// once more after it).
pub async fn handle<S>(stream: S, mut stop: watch::Receiver<bool>) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    // Bounded by the client: each pass reads a line or ends.
    loop {
        line.clear();
        let read = {
            // One byte past the limit tells a long line from a full one.
            let mut limited = (&mut stream).take(MAX_LINE as u64 + 1);
            let read = pin!(limited.read_line(&mut line));
            // `Err`: the sender is gone, which means stop as well.
            let stopped = pin!(stop.wait_for(|stopping| *stopping));
            match select(read, stopped).await {
                Either::Left((read, _)) => read?,
                // The request and the stop can both come while the read
                // is being polled, after it looked: look once more, so a
                // request that arrived before the stop is served.
                Either::Right((_, read)) => match read.now_or_never() {
                    Some(read) => read?,
                    None => break,
                },
            }
        };
        if read == 0 || !line.ends_with('\n') {
            if line.len() > MAX_LINE {
                stream.write_all(b"ERR line too long\n").await?;
            }
            break; // the end of the stream, or a line cut short by it
        }
        let mut reply = respond(line.trim_end()).await;
        reply.push('\n');
        // No stop check here: the select above looks at the read first,
        // so a request that came behind this one is served, stop or not
        // (checking here closed the connection on a request that had
        // arrived while the reply was being written).
        stream.write_all(reply.as_bytes()).await?;
    }
    stream.close().await
}

/// The answer to one request line (without its newline).
pub async fn respond(request: &str) -> String {
    match request.split_once(' ') {
        None if request == "PING" => "PONG".to_string(),
        Some(("SLEEP", ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms <= MAX_SLEEP_MS => {
                waitrt::time::sleep(Duration::from_millis(ms)).await;
                format!("SLEPT {ms}")
            }
            _ => format!("ERR bad duration {ms:?}"),
        },
        _ => format!("ERR unknown request {request:?}"),
    }
}
