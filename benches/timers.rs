//! Timer benchmark: our `waitrt::time::Sleep` against tokio's, each on a
//! current-thread runtime with timers enabled, printed as ratios.
//!
//! Rows (`N` timers, `TIMERS_N`, default 1,000,000; deadlines 1 s ahead,
//! one microsecond apart):
//!
//! - `register`: make `N` sleeps (each boxed, as hyper's `Timer` hands them
//!   out) and poll each once, which registers it. Ratio = tokio / ours.
//! - `cancel`: register `N`, then drop them all (timed). Ratio = tokio / ours.
//! - `reset`: register `N`, then `reset` each to a new deadline 1 s later
//!   (timed). Ratio = tokio / ours.
//! - `bytes`: live heap bytes per registered timer, the boxed `Sleep`
//!   included, counted by this binary's global allocator (a counter of live
//!   bytes around the system allocator). Shown: ours − tokio.
//! - `rss`: resident set growth (from `/proc/self/statm`) once all `N`
//!   timers are registered and then cancelled, against the baseline taken
//!   before the first one; the live heap bytes left; and the growth after
//!   glibc's `malloc_trim(0)`, which hands the allocator's free pages back
//!   (glibc keeps freed small chunks below the heap's top in its bins: the
//!   growth before the trim is the allocator's cache, the one after is
//!   what is still in use). Shown per runtime.
//!
//! - `sleep_io`: timers beside I/O, as a server whose handlers sleep:
//!   `SLEEP_IO_PAIRS` (default 100) pairs of tasks on one current-thread
//!   runtime, joined by a Unix socket pair; the client writes a byte, the
//!   server reads it, sleeps 1 ms and writes it back, 100 rounds per
//!   pair (timed). Measures both a timer's precision (tokio's wheel counts
//!   whole milliseconds) and how the driver sleeps the last fraction of a
//!   millisecond before a timer: slept away from the poller, the I/O that
//!   arrives meanwhile waits for the timer. Ratio = tokio / ours.
//!
//! - `pingpong_timer`: two tasks on one current-thread runtime exchange
//!   a byte over a Unix socket pair, `PINGPONG_ROUNDS` (default 100,000)
//!   round trips (timed), while a third task loops `sleep(300 µs)`: a
//!   busy thread whose next timer is always under a millisecond away,
//!   which parks once per round trip to collect the other side's I/O.
//!   Ratio = tokio / ours.
//!
//! Method: the parent re-executes itself (`TIMERS_ROW=<row>:<runtime>`) so
//! every (row, runtime) measurement runs in a fresh process, alternating
//! which runtime goes first, `TIMERS_PAIRS` pairs (default 5); it prints
//! the median of the pair ratios with their range. `TIMERS_FILTER=reset`
//! runs the rows whose name contains the string.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::poll;

struct Counting;

/// Heap bytes allocated and not yet freed, by anyone in this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is an atomic counter, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROWS: [&str; 7] = [
    "register",
    "cancel",
    "reset",
    "bytes",
    "rss",
    "sleep_io",
    "pingpong_timer",
];

fn pingpong_rounds() -> usize {
    std::env::var("PINGPONG_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

/// The `pingpong_timer` row on either runtime (see the module docs).
macro_rules! pingpong_timer {
    ($pair:expr, $spawn:path, $sleep:path) => {{
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            $spawn(async move {
                while !stop.load(Relaxed) {
                    $sleep(Duration::from_micros(300)).await;
                }
            })
        };
        let (mut a, mut b) = $pair().unwrap();
        let rounds = pingpong_rounds();
        let echo = $spawn(async move {
            let mut byte = [0u8; 1];
            for _ in 0..rounds {
                b.read_exact(&mut byte).await.unwrap();
                b.write_all(&byte).await.unwrap();
            }
        });
        let t = Instant::now();
        let mut byte = [1u8; 1];
        for _ in 0..rounds {
            a.write_all(&byte).await.unwrap();
            a.read_exact(&mut byte).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        echo.await.unwrap();
        stop.store(true, Relaxed);
        ticker.await.unwrap();
        Sample {
            secs,
            ..Sample::default()
        }
    }};
}

/// Rounds per pair in `sleep_io`, and the sleep of each.
const SLEEP_IO_ROUNDS: usize = 100;
const SLEEP_IO_SLEEP: Duration = Duration::from_millis(1);

fn sleep_io_pairs() -> usize {
    std::env::var("SLEEP_IO_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// The `sleep_io` row on either runtime: `$pair` makes a connected pair,
/// `$spawn` a task, `$sleep` a sleep.
macro_rules! sleep_io {
    ($pair:expr, $spawn:path, $sleep:path) => {{
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..sleep_io_pairs() {
            let (mut client, mut server) = $pair().unwrap();
            tasks.push($spawn(async move {
                let mut byte = [0u8; 1];
                for _ in 0..SLEEP_IO_ROUNDS {
                    server.read_exact(&mut byte).await.unwrap();
                    $sleep(SLEEP_IO_SLEEP).await;
                    server.write_all(&byte).await.unwrap();
                }
            }));
            tasks.push($spawn(async move {
                let mut byte = [7u8; 1];
                for _ in 0..SLEEP_IO_ROUNDS {
                    client.write_all(&byte).await.unwrap();
                    client.read_exact(&mut byte).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Sample {
            secs: t.elapsed().as_secs_f64(),
            ..Sample::default()
        }
    }};
}

fn n() -> u64 {
    std::env::var("TIMERS_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// What one child measures: `(seconds, live bytes per timer, rss growth
/// after cancel, live bytes left after cancel, rss growth after a trim)`.
#[derive(Debug, Default)]
struct Sample {
    secs: f64,
    bytes_per_timer: f64,
    rss_after_cancel: i64,
    live_after_cancel: i64,
    rss_after_trim: i64,
}

/// The same workload on either runtime; `$sleep` makes one boxed sleep.
macro_rules! workload {
    ($row:expr, $now:expr, $sleep:expr) => {{
        let n = n();
        let row: &str = $row;
        let base_rss = rss_bytes();
        let base_live = LIVE.load(Relaxed);
        let start = $now + Duration::from_secs(1);
        let mut sample = Sample::default();
        let t = Instant::now();
        let mut sleeps = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut s = $sleep(start + Duration::from_micros(i));
            assert!(poll!(s.as_mut()).is_pending());
            sleeps.push(s);
        }
        if row == "register" {
            sample.secs = t.elapsed().as_secs_f64();
        }
        let vec_bytes = (n as usize * std::mem::size_of_val(&sleeps[0])) as isize;
        sample.bytes_per_timer = (LIVE.load(Relaxed) - base_live - vec_bytes) as f64 / n as f64;
        if row == "reset" {
            let later = start + Duration::from_secs(1);
            let t = Instant::now();
            for (i, s) in sleeps.iter_mut().enumerate() {
                s.as_mut().reset(later + Duration::from_micros(i as u64));
            }
            sample.secs = t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        drop(sleeps);
        if row == "cancel" {
            sample.secs = t.elapsed().as_secs_f64();
        }
        sample.rss_after_cancel = rss_bytes() - base_rss;
        sample.live_after_cancel = (LIVE.load(Relaxed) - base_live) as i64;
        trim();
        sample.rss_after_trim = rss_bytes() - base_rss;
        sample
    }};
}

/// Returns the allocator's free pages to the kernel (glibc only).
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` takes no pointer and only releases free
    // memory the allocator owns; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs `f` on a current-thread runtime with everything enabled: ours.
fn on_ours(f: impl std::future::Future<Output = Sample>) -> Sample {
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f)
}

/// [`on_ours`] on tokio's.
fn on_tokio(f: impl std::future::Future<Output = Sample>) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f)
}

fn child(row: &str, rt: &str) -> Sample {
    match (row, rt) {
        ("pingpong_timer", "ours") => on_ours(async {
            use futures::{AsyncReadExt, AsyncWriteExt};
            pingpong_timer!(
                waitrt::net::UnixStream::pair,
                waitrt::spawn,
                waitrt::time::sleep
            )
        }),
        ("pingpong_timer", _) => on_tokio(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            pingpong_timer!(
                tokio::net::UnixStream::pair,
                tokio::spawn,
                tokio::time::sleep
            )
        }),
        ("sleep_io", "ours") => on_ours(async {
            use futures::{AsyncReadExt, AsyncWriteExt};
            sleep_io!(
                waitrt::net::UnixStream::pair,
                waitrt::spawn,
                waitrt::time::sleep
            )
        }),
        ("sleep_io", _) => on_tokio(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            sleep_io!(
                tokio::net::UnixStream::pair,
                tokio::spawn,
                tokio::time::sleep
            )
        }),
        _ => timer_rows(row, rt),
    }
}

/// The rows of a million timers (register, cancel, reset, bytes, rss),
/// with only timers enabled.
fn timer_rows(row: &str, rt: &str) -> Sample {
    match rt {
        "ours" => {
            let rt = waitrt::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async {
                workload!(row, waitrt::time::now(), |at: Instant| Box::pin(
                    waitrt::time::sleep_until(at)
                ))
            })
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async {
                workload!(
                    row,
                    tokio::time::Instant::now(),
                    |at: tokio::time::Instant| Box::pin(tokio::time::sleep_until(at))
                )
            })
        }
    }
}

fn run_child(row: &str, rt: &str) -> Sample {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("TIMERS_ROW", format!("{row}:{rt}"))
        .output()
        .expect("re-exec the bench");
    assert!(
        out.status.success(),
        "{row}:{rt} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("SAMPLE "))
        .expect("a SAMPLE line");
    let f: Vec<f64> = line[7..].split(' ').map(|s| s.parse().unwrap()).collect();
    Sample {
        secs: f[0],
        bytes_per_timer: f[1],
        rss_after_cancel: f[2] as i64,
        live_after_cancel: f[3] as i64,
        rss_after_trim: f[4] as i64,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Ok(spec) = std::env::var("TIMERS_ROW") {
        let (row, rt) = spec.split_once(':').expect("row:runtime");
        let s = child(row, rt);
        println!(
            "SAMPLE {} {} {} {} {}",
            s.secs, s.bytes_per_timer, s.rss_after_cancel, s.live_after_cancel, s.rss_after_trim
        );
        return;
    }
    let pairs: usize = std::env::var("TIMERS_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let filter = std::env::var("TIMERS_FILTER").unwrap_or_default();
    println!(
        "timers: {} timers, {pairs} pairs, one process per (row, runtime); \
         sizes: ours Sleep {} B, tokio Sleep {} B",
        n(),
        std::mem::size_of::<waitrt::time::Sleep>(),
        std::mem::size_of::<tokio::time::Sleep>()
    );
    for row in ROWS.iter().filter(|r| r.contains(filter.as_str())) {
        let mut ours = Vec::new();
        let mut tokio = Vec::new();
        for pair in 0..pairs {
            if pair % 2 == 0 {
                ours.push(run_child(row, "ours"));
                tokio.push(run_child(row, "tokio"));
            } else {
                tokio.push(run_child(row, "tokio"));
                ours.push(run_child(row, "ours"));
            }
        }
        match *row {
            "bytes" => {
                let mut o: Vec<f64> = ours.iter().map(|s| s.bytes_per_timer).collect();
                let mut t: Vec<f64> = tokio.iter().map(|s| s.bytes_per_timer).collect();
                let (o, t) = (median(&mut o), median(&mut t));
                println!(
                    "{row:<9} ours {o:.1} B/timer, tokio {t:.1} B/timer: ours - tokio = {:+.1} B",
                    o - t
                );
            }
            "rss" => {
                for (name, v) in [("ours", &ours), ("tokio", &tokio)] {
                    let mut rss: Vec<f64> = v
                        .iter()
                        .map(|s| s.rss_after_cancel as f64 / 1024.0)
                        .collect();
                    let mut live: Vec<f64> = v.iter().map(|s| s.live_after_cancel as f64).collect();
                    let mut trimmed: Vec<f64> =
                        v.iter().map(|s| s.rss_after_trim as f64 / 1024.0).collect();
                    let (lo, hi) = (
                        rss.iter().copied().fold(f64::MAX, f64::min),
                        rss.iter().copied().fold(f64::MIN, f64::max),
                    );
                    println!(
                        "{row:<9} {name:<5} after cancel: RSS {:+.0} KiB over baseline ({lo:+.0}..{hi:+.0}), live heap {:+.0} B; after malloc_trim: RSS {:+.0} KiB",
                        median(&mut rss),
                        median(&mut live),
                        median(&mut trimmed)
                    );
                }
            }
            _ => {
                let mut ratios: Vec<f64> = ours
                    .iter()
                    .zip(&tokio)
                    .map(|(o, t)| t.secs / o.secs)
                    .collect();
                let med = median(&mut ratios);
                println!(
                    "{row:<9} {med:.2}x tokio (range {:.2}-{:.2})",
                    ratios[0],
                    ratios[ratios.len() - 1]
                );
            }
        }
    }
}
