//! HTTP benchmark: the same hyper server (`GET /plaintext`, 13 bytes) on
//! our runtime (`waitrt::hyper`) and on tokio (hyper-util's `TokioIo`,
//! `TokioTimer`, `TokioExecutor`), driven by `wrk` (HTTP/1.1 keep-alive)
//! and `h2load` (h2c, prior knowledge), printed as ratios.
//!
//! Rows: each of `current` (current-thread) and `mt2` (2 workers) with
//! `wrk -t1 -c64`, `wrk -t1 -c256` and, when installed, `h2load -c64 -m10`.
//! Per row, `HTTP_PAIRS` pairs (default 5) of runs, alternating which
//! runtime goes first, each `HTTP_SECS` seconds (default 10) against a
//! fresh server process (this binary, re-executed as
//! `http serve <ours|tokio> <threads> <port>`). Printed per row:
//!
//! - `req/s`: ours / tokio, median of the pairs, and the range;
//! - `cpu/req`: server CPU per request (utime + stime from
//!   `/proc/PID/stat` over the run, divided by the requests served), ours /
//!   tokio (median, range) and each runtime's median in µs;
//! - latency: wrk's p50 and p99 (h2load gives no percentiles: its mean),
//!   each runtime's median, and on the row's second line each as ours /
//!   tokio, median of the pairs and the range (below 1.0: ours answers
//!   sooner), the figure that judges "p99 no worse than tokio's".
//!
//! `HTTP_FILTER=c64` runs the rows whose name contains the string.
//! `http readbuf` runs the read-path microbenchmark instead: how `Io`
//! fills hyper's uninitialised buffer (a copy through a scratch of the
//! bytes read) against zeroing the buffer before each read (what a
//! `futures::io` reader would need, plus an `unsafe` advance).
//!
//! Client and server share the machine: on few cores the load generator
//! takes one of them, and the `mt2` rows measure contention as much as
//! the runtime. Compare ratios, not absolute numbers.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", which, threads, port, ..] => {
            serve(which, threads.parse().unwrap(), port.parse().unwrap())
        }
        ["readbuf", ..] => readbuf::run(),
        _ => drive(),
    }
}

// ===== the server, on either runtime =====

async fn plaintext(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// HTTP/2 prior knowledge starts with this; HTTP/1 never does.
fn is_h2(head: &[u8]) -> bool {
    head.starts_with(b"PRI ")
}

fn serve(which: &str, threads: usize, port: u16) {
    let listener = StdListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("ready");
    match which {
        "ours" => ours::serve(listener, threads),
        "tokio" => tokio_side::serve(listener, threads),
        _ => panic!("serve ours|tokio"),
    }
}

mod ours {
    use super::*;
    use waitrt::hyper::{Io, RuntimeExecutor, RuntimeTimer};
    use waitrt::net::{TcpListener, TcpStream};

    pub(super) fn serve(listener: StdListener, threads: usize) {
        let rt = match threads {
            1 => waitrt::Builder::new_current_thread(),
            n => {
                let mut builder = waitrt::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
        }
        .enable_all()
        .build()
        .unwrap();
        rt.block_on(async {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                waitrt::spawn(connection(stream));
            }
        });
    }

    async fn connection(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut head = [0; 4];
        let Ok(n) = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut head)).await else {
            return;
        };
        let service = service_fn(plaintext);
        let _ = if is_h2(&head[..n]) {
            http2::Builder::new(RuntimeExecutor::new())
                .timer(RuntimeTimer::new())
                .serve_connection(Io::new(stream), service)
                .await
        } else {
            http1::Builder::new()
                .timer(RuntimeTimer::new())
                .serve_connection(Io::new(stream), service)
                .await
        };
    }
}

mod tokio_side {
    use super::*;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tokio::net::{TcpListener, TcpStream};

    pub(super) fn serve(listener: StdListener, threads: usize) {
        let rt = match threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            n => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
        }
        .enable_all()
        .build()
        .unwrap();
        rt.block_on(async {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(stream));
            }
        });
    }

    async fn connection(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut head = [0; 4];
        let Ok(n) = stream.peek(&mut head).await else {
            return;
        };
        let service = service_fn(plaintext);
        let _ = if is_h2(&head[..n]) {
            http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
        } else {
            http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
        };
    }
}

// ===== the driver =====

#[derive(Debug, Clone, Copy)]
enum Load {
    Wrk { connections: usize },
    H2load { connections: usize, streams: usize },
}

/// One run's results.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    cpu_us_per_req: f64,
    /// p50 and p99 in µs (h2load: the mean, twice).
    p50: f64,
    p99: f64,
}

fn drive() {
    let secs: u64 = env("HTTP_SECS", 10);
    let pairs: usize = env("HTTP_PAIRS", 5);
    let filter = std::env::var("HTTP_FILTER").unwrap_or_default();
    if !installed("wrk") {
        eprintln!("wrk is not installed (apt-get install wrk): nothing to run");
        return;
    }
    let mut loads = vec![
        ("c64", Load::Wrk { connections: 64 }),
        ("c256", Load::Wrk { connections: 256 }),
    ];
    if installed("h2load") {
        loads.push((
            "h2c-c64-m10",
            Load::H2load {
                connections: 64,
                streams: 10,
            },
        ));
    } else {
        eprintln!("h2load is not installed (apt-get install nghttp2-client): no h2c rows");
    }
    println!("hyper /plaintext, {secs} s per run, {pairs} pairs per row (ours/tokio; lower cpu/req is better)");
    println!(
        "{:<22} {:>22} {:>22} {:>14} {:>14} {:>16} {:>16}",
        "row",
        "req/s ours/tokio",
        "cpu/req ours/tokio",
        "cpu/req µs us",
        "cpu/req µs tk",
        "p50/p99 µs us",
        "p50/p99 µs tk"
    );
    for (threads, flavour) in [(1, "current"), (2, "mt2")] {
        for &(load_name, load) in &loads {
            let name = format!("{flavour} {load_name}");
            if !name.contains(&filter) {
                continue;
            }
            let mut ours = Vec::new();
            let mut tokio = Vec::new();
            for pair in 0..pairs {
                let order = if pair % 2 == 0 {
                    ["ours", "tokio"]
                } else {
                    ["tokio", "ours"]
                };
                for which in order {
                    let run = measure(which, threads, load, secs);
                    match which {
                        "ours" => ours.push(run),
                        _ => tokio.push(run),
                    }
                }
            }
            let rps: Vec<f64> = ours
                .iter()
                .zip(&tokio)
                .map(|(o, t)| o.rps / t.rps)
                .collect();
            let cpu: Vec<f64> = ours
                .iter()
                .zip(&tokio)
                .map(|(o, t)| o.cpu_us_per_req / t.cpu_us_per_req)
                .collect();
            let latency = |f: fn(&Run) -> f64| -> Vec<f64> {
                ours.iter().zip(&tokio).map(|(o, t)| f(o) / f(t)).collect()
            };
            let (p50, p99) = (latency(|r| r.p50), latency(|r| r.p99));
            let field = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            println!(
                "{:<22} {:>22} {:>22} {:>14.2} {:>14.2} {:>16} {:>16}",
                name,
                ratio(rps),
                ratio(cpu),
                field(&ours, |r| r.cpu_us_per_req),
                field(&tokio, |r| r.cpu_us_per_req),
                format!(
                    "{:.0}/{:.0}",
                    field(&ours, |r| r.p50),
                    field(&ours, |r| r.p99)
                ),
                format!(
                    "{:.0}/{:.0}",
                    field(&tokio, |r| r.p50),
                    field(&tokio, |r| r.p99)
                ),
            );
            println!(
                "{:<22} ours req/s {:.0}, tokio req/s {:.0} (medians); latency ours/tokio \
                 (lower: ours answers sooner) p50 {}, p99 {}",
                "",
                field(&ours, |r| r.rps),
                field(&tokio, |r| r.rps),
                ratio(p50),
                ratio(p99),
            );
        }
    }
}

/// Starts a server, loads it for `secs`, stops it.
fn measure(which: &str, threads: usize, load: Load, secs: u64) -> Run {
    let port = free_port();
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args(["serve", which, &threads.to_string(), &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let url = format!("http://127.0.0.1:{port}/plaintext");
    let before = cpu_ticks(&server);
    let start = Instant::now();
    let out = match load {
        Load::Wrk { connections } => run_tool(
            "wrk",
            &[
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{secs}s"),
                "--latency",
                &url,
            ],
        ),
        Load::H2load {
            connections,
            streams,
        } => run_tool(
            "h2load",
            &[
                &format!("-c{connections}"),
                &format!("-m{streams}"),
                "-t1",
                &format!("-D{secs}"),
                &url,
            ],
        ),
    };
    let elapsed = start.elapsed();
    let used = cpu_ticks(&server) - before;
    stop(&mut server);
    let (requests, p50, p99) = match load {
        Load::Wrk { .. } => parse_wrk(&out),
        Load::H2load { .. } => parse_h2load(&out),
    };
    let ticks_per_sec = 100.0; // USER_HZ: 100 on Linux
    Run {
        rps: requests / elapsed.as_secs_f64(),
        cpu_us_per_req: used as f64 / ticks_per_sec * 1e6 / requests,
        p50,
        p99,
    }
}

fn run_tool(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{tool} {args:?}: {text}");
    text
}

/// Requests, p50 and p99 (µs) from `wrk --latency`.
fn parse_wrk(out: &str) -> (f64, f64, f64) {
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
    let percentile = |p: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(micros)
            .unwrap_or(f64::NAN)
    };
    (requests, percentile("50%"), percentile("99%"))
}

/// Requests succeeded and the mean request time (µs, as p50 and p99) from
/// h2load.
fn parse_h2load(out: &str) -> (f64, f64, f64) {
    let requests = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(',').find(|f| f.contains("succeeded")))
        .and_then(|f| f.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in h2load's output:\n{out}"));
    let mean = out
        .lines()
        .find(|l| l.starts_with("time for request:"))
        .and_then(|l| l.split_whitespace().nth(5))
        .map(micros)
        .unwrap_or(f64::NAN);
    (requests, mean, mean)
}

/// `1.23ms`, `456.00us`, `2.1s` in µs.
fn micros(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    number
        * match unit {
            "us" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            _ => f64::NAN,
        }
}

/// utime + stime of `child`, in clock ticks.
fn cpu_ticks(child: &Child) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    // Fields after the `(comm)`, which may hold spaces: state is field 3,
    // utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ratio(values: Vec<f64>) -> String {
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    format!("{:.2}x [{lo:.2}-{hi:.2}]", median(values))
}

// ===== the read path =====

mod readbuf {
    //! How `Io` fills hyper's buffer, timed against the alternative.

    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use hyper::body::Bytes;
    use hyper::rt::{Read, ReadBuf};

    /// A `futures::io` reader that always has `len` bytes for you.
    struct Source {
        data: Bytes,
    }

    impl futures::AsyncRead for Source {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            Poll::Ready(Ok(n))
        }
    }

    const READS: usize = 200_000;

    pub(super) fn run() {
        println!("one read into hyper's buffer (a fresh uninitialised cursor each time, as hyper does), ns/read");
        println!(
            "{:>8} {:>8} {:>22} {:>24}",
            "bytes", "buffer", "Io (copy the bytes)", "zero the buffer, advance"
        );
        for (len, capacity) in [
            (100, 8 * 1024),
            (1024, 8 * 1024),
            (16 * 1024, 16 * 1024),
            (64 * 1024, 64 * 1024),
        ] {
            let ours = time(len, capacity, read_ours);
            let zeroing = time(len, capacity, read_zeroing);
            println!(
                "{len:>8} {capacity:>8} {:>22.1} {:>24.1}",
                ours.as_nanos() as f64 / READS as f64,
                zeroing.as_nanos() as f64 / READS as f64
            );
        }
    }

    fn time(
        len: usize,
        capacity: usize,
        read: fn(&mut Source, &mut Vec<u8>, &mut Context<'_>),
    ) -> Duration {
        let mut source = Source {
            data: Bytes::from(vec![b'x'; len]),
        };
        let mut buf = Vec::with_capacity(capacity);
        let mut cx = Context::from_waker(Waker::noop());
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..READS {
                buf.clear();
                read(&mut source, &mut buf, &mut cx);
                std::hint::black_box(&buf);
            }
            best = best.min(start.elapsed());
        }
        best
    }

    /// Through `waitrt::hyper::Io`, as hyper calls it.
    fn read_ours(source: &mut Source, buf: &mut Vec<u8>, cx: &mut Context<'_>) {
        let mut io = waitrt::hyper::Io::with_write_vectored(source, false);
        let mut read_buf = ReadBuf::uninit(buf.spare_capacity_mut());
        let _ = Pin::new(&mut io).poll_read(cx, read_buf.unfilled());
        let n = read_buf.filled().len();
        std::hint::black_box(n);
    }

    /// Zero what hyper offers, read into it, mark the bytes filled.
    fn read_zeroing(source: &mut Source, buf: &mut Vec<u8>, cx: &mut Context<'_>) {
        let mut read_buf = ReadBuf::uninit(buf.spare_capacity_mut());
        let mut cursor = read_buf.unfilled();
        let dst = cursor.initialize_unfilled();
        if let Poll::Ready(Ok(n)) = futures::AsyncRead::poll_read(Pin::new(&mut *source), cx, dst) {
            // SAFETY: `initialize_unfilled` initialised the whole cursor,
            // and the reader wrote `n` of those bytes.
            unsafe { cursor.advance(n) };
        }
        std::hint::black_box(read_buf.filled().len());
    }
}
