//! Network benchmark: our reactor and sockets against tokio and smol, each
//! in a current-thread (`ct`) and a 2-worker (`2wk`) flavour, plus a
//! hand-written single-threaded mio loop as the physical reference.
//!
//! - `tcp_echo_rr`: an echo server and 64 client connections in one
//!   runtime; each client does 2,000 round trips of 64 bytes. Cost: ns per
//!   round trip (all clients together).
//! - `tcp_bulk`: one connection writes 1 GiB in 64 KiB writes into a
//!   server that discards it, on sockets set up alike for every runtime
//!   ([`bulk_sockets`]: a pinned congestion control, a fresh loopback
//!   address per run). Cost: µs per MiB. Its rows take [`BULK_PAIRS_FACTOR`]
//!   times as many rounds (see there).
//!
//! Method: [`harness`] (issue 21): every (row, runtime) measurement in a
//! fresh process, the runtimes alternating, `NET_BENCH_PAIRS` rounds
//! (default 5), the median of the pair ratios with their range; ratio =
//! peer cost / ours (above 1.0: ours is faster). Every run checks its byte
//! counts and panics when they are wrong (a `FAIL`, not a figure). The
//! goals (tcp_echo_rr >= 1.0x tokio on both flavours and >= 0.97x the mio
//! loop; tcp_bulk within 5 % of the best) are [`Row::target`]s, judged in
//! the summary.
//!
//! ```text
//! cargo bench --bench net
//! NET_BENCH_SCALE=0.02 NET_BENCH_PAIRS=2 NET_BENCH_FILTER=bulk cargo bench --bench net
//! NET_BENCH_IN_PROCESS=1 cargo bench --bench net        # every run in one process
//! NET_BENCH_SAMPLES=1 cargo bench --bench net           # every run's figure (bimodal rows)
//! NET_BENCH_CHILD=tcp_bulk/2wk NET_BENCH_CONTENDER=tokio strace -f -c target/release/deps/net-…
//! NET_BENCH_WAIT_REGISTRY=0 cargo bench --bench net   # ours with Builder::wait_registry(false)
//! ```
//!
//! `NET_BENCH_SINK_PAUSE_US=60` delays the bulk sink's reads (a
//! diagnostic: [`pause_after_short_read`]).

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};

#[path = "net/bulk_sockets.rs"]
mod bulk_sockets;
#[path = "harness/mod.rs"]
mod harness;

use bulk_sockets::{bulk_congestion_control, bulk_connect, bulk_listener};
use harness::{Contender, Row};

const CLIENTS: usize = 64;
const MESSAGE: usize = 64;
const CHUNK: usize = 64 * 1024;

/// `tcp_bulk` rows take this many times `NET_BENCH_PAIRS` rounds: a bulk
/// run takes about 0.3 s, a quarter of an echo run, so each row takes about
/// as long as an echo row and its median rests on more pairs (the row is
/// bimodal from run to run).
const BULK_PAIRS_FACTOR: usize = 4;

#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    round_trips: usize,
    bulk_bytes: usize,
    /// `NET_BENCH_SINK_PAUSE_US`; see [`pause_after_short_read`].
    sink_pause: Duration,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Workload {
    EchoRr,
    Bulk,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::EchoRr => "tcp_echo_rr",
            Workload::Bulk => "tcp_bulk",
        }
    }

    /// The unit of a row's cost.
    fn unit(self) -> &'static str {
        match self {
            Workload::EchoRr => "ns/round trip",
            Workload::Bulk => "us/MiB",
        }
    }

    /// The cost of a run of these sizes that took `elapsed`.
    fn cost(self, sizes: Sizes, elapsed: Duration) -> f64 {
        match self {
            Workload::EchoRr => elapsed.as_nanos() as f64 / (CLIENTS * sizes.round_trips) as f64,
            Workload::Bulk => {
                elapsed.as_micros() as f64 / (sizes.bulk_bytes as f64 / (1024.0 * 1024.0))
            }
        }
    }
}

impl Sizes {
    fn new(scale: f64) -> Sizes {
        Sizes {
            round_trips: ((2_000.0 * scale) as usize).max(1),
            bulk_bytes: ((1024.0 * 1024.0 * 1024.0 * scale) as usize / CHUNK).max(1) * CHUNK,
            sink_pause: Duration::from_micros(harness::env_or("NET_BENCH", "SINK_PAUSE_US", 0)),
        }
    }
}

// ===== the workloads, over the futures-io traits (ours and smol) =====

async fn echo_conn<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn echo_client<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(
    mut stream: S,
    round_trips: usize,
) {
    let msg = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    for _ in 0..round_trips {
        stream.write_all(&msg).await.expect("write");
        stream.read_exact(&mut back).await.expect("read");
        assert_eq!(back, msg);
    }
}

async fn sink_conn<S: futures::AsyncRead + Unpin>(mut stream: S, pause: Duration) -> usize {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await.expect("sink read") {
            0 => return total,
            n => {
                total += n;
                pause_after_short_read(n, pause);
            }
        }
    }
}

/// A diagnostic, off by default: after a read shorter than its buffer
/// (it took all there was), the `tcp_bulk` sink busy-waits `pause`
/// before reading again, for every runtime alike, so data piles up
/// between reads. It shows how much of `tcp_bulk` on 2 threads is the
/// reader's timing rather than the runtime's I/O path: a reader that
/// comes back late finds several 64 KiB chunks queued, and the kernel
/// then moves sending and receiving work onto the reader's thread.
fn pause_after_short_read(read: usize, pause: Duration) {
    if read < CHUNK && !pause.is_zero() {
        let start = Instant::now();
        while start.elapsed() < pause {
            std::hint::spin_loop();
        }
    }
}

async fn bulk_client<S: futures::AsyncWrite + Unpin>(mut stream: S, bytes: usize) {
    let chunk = vec![1u8; CHUNK];
    for _ in 0..bytes / CHUNK {
        stream.write_all(&chunk).await.expect("bulk write");
    }
    stream.close().await.expect("close");
}

/// One runtime under test: how it builds, blocks, spawns and connects.
macro_rules! futures_io_runtime {
    ($fn_name:ident, $build:expr, $block_on:path, $spawn:path, $listener:ty, $stream:ty) => {
        fn $fn_name(workers: usize, workload: Workload, sizes: Sizes) -> Duration {
            #[allow(clippy::redundant_closure_call)]
            let rt = ($build)(workers);
            $block_on(&rt, async move {
                let listener = match workload {
                    Workload::EchoRr => <$listener>::bind("127.0.0.1:0").await.unwrap(),
                    Workload::Bulk => <$listener>::try_from(bulk_listener()).unwrap(),
                };
                let addr = listener.local_addr().unwrap();
                let start = Instant::now();
                match workload {
                    Workload::EchoRr => {
                        // Dropping the join handles detaches the tasks.
                        drop($spawn(async move {
                            loop {
                                let (stream, _) = listener.accept().await.unwrap();
                                drop($spawn(echo_conn(stream)));
                            }
                        }));
                        let mut clients = Vec::new();
                        for _ in 0..CLIENTS {
                            let stream = <$stream>::connect(addr).await.unwrap();
                            stream.set_nodelay(true).unwrap();
                            clients.push($spawn(echo_client(stream, sizes.round_trips)));
                        }
                        for client in clients {
                            client.await;
                        }
                    }
                    Workload::Bulk => {
                        let sink = $spawn(async move {
                            let (stream, _) = listener.accept().await.unwrap();
                            sink_conn(stream, sizes.sink_pause).await
                        });
                        let stream = <$stream>::try_from(bulk_connect(addr)).unwrap();
                        bulk_client(stream, sizes.bulk_bytes).await;
                        assert_eq!(sink.await, sizes.bulk_bytes / CHUNK * CHUNK);
                    }
                }
                start.elapsed()
            })
        }
    };
}

// ===== ours =====

fn ours_build(workers: usize) -> waitrt::Runtime {
    let mut builder = if workers == 1 {
        waitrt::Builder::new_current_thread()
    } else {
        let mut builder = waitrt::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder
        .enable_all()
        .wait_registry(harness::wait_registry("NET_BENCH"))
        .build()
        .expect("our runtime builds")
}

fn ours_block_on<F: Future>(rt: &waitrt::Runtime, future: F) -> F::Output {
    rt.block_on(future)
}

fn ours_spawn<F>(future: F) -> impl Future<Output = F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = waitrt::spawn(future);
    async move { handle.await.expect("our task") }
}

futures_io_runtime!(
    run_ours,
    ours_build,
    ours_block_on,
    ours_spawn,
    waitrt::net::TcpListener,
    waitrt::net::TcpStream
);

// ===== smol =====

static SMOL: smol::Executor<'static> = smol::Executor::new();

/// smol shaped like the other two: one thread runs everything
/// (current-thread), or `workers` threads run the executor while the
/// calling thread runs only the `block_on` future (async-executor's own
/// multi-threaded example), as tokio's and our `block_on` do.
struct SmolRt {
    stop: Option<smol::channel::Sender<()>>,
    /// Empty for current-thread: the calling thread runs the executor.
    executor_threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for SmolRt {
    fn drop(&mut self) {
        drop(self.stop.take());
        for thread in self.executor_threads.drain(..) {
            thread.join().expect("smol executor thread");
        }
    }
}

fn smol_build(workers: usize) -> SmolRt {
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let threads = if workers == 1 { 0 } else { workers };
    let executor_threads = (0..threads)
        .map(|_| {
            let stopped = stopped.clone();
            std::thread::spawn(move || {
                let _ = smol::block_on(SMOL.run(stopped.recv()));
            })
        })
        .collect();
    SmolRt {
        stop: Some(stop),
        executor_threads,
    }
}

fn smol_block_on<F: Future>(rt: &SmolRt, future: F) -> F::Output {
    if rt.executor_threads.is_empty() {
        smol::block_on(SMOL.run(future))
    } else {
        smol::block_on(future)
    }
}

fn smol_spawn<F>(future: F) -> smol::Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    SMOL.spawn(future)
}

/// smol's spawn with the task detached when the handle is unused.
fn smol_spawn_kept<F>(future: F) -> impl Future<Output = F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = smol_spawn(future);
    let (tx, rx) = smol::channel::bounded(1);
    smol_spawn(async move {
        let _ = tx.send(task.await).await;
    })
    .detach();
    async move { rx.recv().await.expect("smol task") }
}

futures_io_runtime!(
    run_smol,
    smol_build,
    smol_block_on,
    smol_spawn_kept,
    smol::net::TcpListener,
    smol::net::TcpStream
);

// ===== tokio =====

fn run_tokio(workers: usize, workload: Workload, sizes: Sizes) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio builds");
    rt.block_on(async move {
        let listener = match workload {
            Workload::EchoRr => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Workload::Bulk => tokio::net::TcpListener::from_std(bulk_listener()).unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        match workload {
            Workload::EchoRr => {
                tokio::spawn(async move {
                    loop {
                        let (mut stream, _) = listener.accept().await.unwrap();
                        tokio::spawn(async move {
                            let mut buf = [0; 4096];
                            loop {
                                match stream.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => {
                                        if stream.write_all(&buf[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        });
                    }
                });
                let mut clients = Vec::new();
                for _ in 0..CLIENTS {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let round_trips = sizes.round_trips;
                    clients.push(tokio::spawn(async move {
                        let msg = [7u8; MESSAGE];
                        let mut back = [0u8; MESSAGE];
                        for _ in 0..round_trips {
                            stream.write_all(&msg).await.expect("write");
                            stream.read_exact(&mut back).await.expect("read");
                            assert_eq!(back, msg);
                        }
                    }));
                }
                for client in clients {
                    client.await.unwrap();
                }
            }
            Workload::Bulk => {
                let sink = tokio::spawn(async move {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    let mut buf = vec![0; CHUNK];
                    let mut total = 0;
                    loop {
                        match stream.read(&mut buf).await.unwrap() {
                            0 => return total,
                            n => {
                                total += n;
                                pause_after_short_read(n, sizes.sink_pause);
                            }
                        }
                    }
                });
                let mut stream = tokio::net::TcpStream::from_std(bulk_connect(addr)).unwrap();
                let chunk = vec![1u8; CHUNK];
                for _ in 0..sizes.bulk_bytes / CHUNK {
                    stream.write_all(&chunk).await.unwrap();
                }
                stream.shutdown().await.unwrap();
                assert_eq!(sink.await.unwrap(), sizes.bulk_bytes / CHUNK * CHUNK);
            }
        }
        start.elapsed()
    })
}

// ===== the physical reference: a hand-written mio loop =====

#[path = "net/raw_mio.rs"]
mod raw_mio;

// ===== the rows =====

type Runner = fn(usize, Workload, Sizes) -> Duration;

fn contender(name: &'static str, runner: Runner, workers: usize, workload: Workload) -> Contender {
    Contender::new(name, move |scale| {
        let sizes = Sizes::new(scale);
        workload.cost(sizes, runner(workers, workload, sizes))
    })
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for workload in [Workload::EchoRr, Workload::Bulk] {
        for (flavour, workers) in [("ct", 1), ("2wk", 2)] {
            let mut contenders = vec![
                contender("ours", run_ours, workers, workload),
                contender("tokio", run_tokio, workers, workload),
                contender("smol", run_smol, workers, workload),
            ];
            if workers == 1 && workload == Workload::EchoRr {
                contenders.push(Contender::reference("mio", move |scale| {
                    let sizes = Sizes::new(scale);
                    workload.cost(sizes, raw_mio::run(workers, workload, sizes))
                }));
            }
            let row = Row::new(format!("{}/{flavour}", workload.name()), contenders)
                .unit(workload.unit());
            rows.push(match workload {
                Workload::EchoRr if workers == 1 => row.target("tokio", 1.0).target("mio", 0.97),
                Workload::EchoRr => row.target("tokio", 1.0),
                Workload::Bulk => row
                    .target("tokio", 0.95)
                    .target("smol", 0.95)
                    .pairs_factor(BULK_PAIRS_FACTOR),
            });
        }
    }
    rows
}

fn main() -> std::process::ExitCode {
    let sizes = Sizes::new(harness::env_or("NET_BENCH", "SCALE", 1.0));
    let mut title = format!(
        "net benchmark: ours vs tokio vs smol, and a raw mio loop\n\
         tcp_echo_rr {CLIENTS} clients x {} round trips of {MESSAGE} B; tcp_bulk {} MiB in {} KiB \
         writes ({}), {BULK_PAIRS_FACTOR}x the pairs",
        sizes.round_trips,
        sizes.bulk_bytes >> 20,
        CHUNK >> 10,
        bulk_congestion_control(),
    );
    if !sizes.sink_pause.is_zero() {
        title += &format!(
            "\ndiagnostic: the tcp_bulk sink pauses {:?} after each short read",
            sizes.sink_pause
        );
    }
    let bench = harness::Bench {
        prefix: "NET_BENCH",
        // Printed once, by the driver; one leaked string per process.
        title: Box::leak(title.into_boxed_str()),
        unit: "ns/op",
    };
    harness::main(&bench, rows())
}
