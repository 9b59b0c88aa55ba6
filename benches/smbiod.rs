//! smbiod against the `smb2` crate (on tokio), both against the same
//! Samba on 127.0.0.1:4445, each on a 2-worker runtime:
//!
//! - `reads_64x4KiB`: 64 concurrent callers doing 1,000 reads of 4 KiB
//!   each over one connection. Cost: ns per read. (100 reads each, about
//!   0.15 s a run, left both clients' figures scattered over a factor of
//!   two from run to run, Samba's timing as much as the clients': the
//!   ratio of 5 pairs came out anywhere from 0.8x to 1.9x.)
//! - `write_read_64MiB`: a 64 MiB sequential write, then reading it back.
//!   Cost: µs per MiB moved (both directions).
//!
//! Sizes scale with `SMBIOD_BENCH_SCALE` (reads per caller, the file
//! size). Every run checks what it read back and panics when it differs,
//! so a wrong result posts `FAIL`, not a time; so does a peer error.
//!
//! Method: [`harness`] (issue 21): every (row, client) measurement in a
//! fresh process, smbiod and smb2 alternating, `SMBIOD_BENCH_PAIRS`
//! rounds (default 5), the median of the pair ratios with their range;
//! ratio = smb2's cost / smbiod's (above 1.0: smbiod is faster).
//! `SMBIOD_BENCH_IN_PROCESS=1` keeps one process.
//!
//! ```text
//! cargo bench --bench smbiod
//! SMBIOD_BENCH_SCALE=0.1 SMBIOD_BENCH_PAIRS=2 cargo bench --bench smbiod
//! ```
//!
//! Runs when Samba is reachable on 127.0.0.1:4445 (it starts the project's
//! one via `.ci/smb/start-smbd.sh` when root and `smbd` is installed, and
//! stops that one again at the end; a Samba that was up before is left
//! running); otherwise it says so on stderr and exits 0 (under `CI=true`,
//! 1).
#![forbid(unsafe_code)]
// The example's modules are compiled in by path: the bench uses a part of
// them, and cargo builds benches with cfg(test) but without their #[test]
// functions, so the test modules' imports look unused here.
#![allow(dead_code, unused_imports)]

#[path = "../examples/smbiod/client/mod.rs"]
mod client;
#[path = "../examples/smbiod/daemon/mod.rs"]
mod daemon;
#[path = "../examples/smbiod/report.rs"]
mod report;
#[path = "../examples/smbiod/server/mod.rs"]
mod server;
#[path = "../examples/smbiod/wire/mod.rs"]
mod wire;
#[path = "../examples/smbiod/workload.rs"]
mod workload;

use std::future::Future;
use std::net::TcpStream as StdStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::api::{Client, ConnectOptions};

#[path = "harness/mod.rs"]
mod harness;

use harness::{Contender, Row};

const SAMBA: &str = "127.0.0.1:4445";
const CALLERS: usize = 64;
const READS_PER_CALLER: f64 = 1_000.0;
const BLOCK: usize = 4096;
const BIG_MIB: f64 = 64.0;

/// Sizes of one run, after `SMBIOD_BENCH_SCALE`.
#[derive(Clone, Copy)]
struct Sizes {
    reads_per_caller: usize,
    big: usize,
}

impl Sizes {
    fn new(scale: f64) -> Sizes {
        Sizes {
            reads_per_caller: ((READS_PER_CALLER * scale) as usize).max(1),
            big: ((BIG_MIB * scale) as usize).max(1) << 20,
        }
    }

    fn reads(self) -> f64 {
        (CALLERS * self.reads_per_caller) as f64
    }

    /// MiB moved by `write_read`: written, then read back.
    fn mib(self) -> f64 {
        2.0 * self.big as f64 / 1048576.0
    }
}

/// Where Samba stands for this run.
#[derive(PartialEq)]
enum Samba {
    /// Reachable, and not ours to stop (it was up before the bench).
    Found,
    /// Started by the bench: stopped again when the bench ends.
    Started,
    Missing,
}

fn samba_up() -> Samba {
    if StdStream::connect(SAMBA).is_ok() {
        return Samba::Found;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let smbd = Command::new("sh")
        .args(["-c", "command -v smbd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if root && smbd {
        let _ = Command::new("bash").arg(smbd_script()).status();
        if StdStream::connect(SAMBA).is_ok() {
            return Samba::Started;
        }
    }
    Samba::Missing
}

fn smbd_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/smb/start-smbd.sh")
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 12) as u8)
        .collect()
}

// ---- ours ---------------------------------------------------------------

fn ours_rt() -> waitrt::Runtime {
    waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn ours_connect() -> Client {
    Client::connect(SAMBA, &ConnectOptions::new("share"))
        .await
        .expect("smbiod connect")
}

fn ours_reads(rt: &waitrt::Runtime, sizes: Sizes) -> Duration {
    rt.block_on(async {
        let c = ours_connect().await;
        let file = data(CALLERS * BLOCK, 1);
        c.write_file("bench-smbiod-reads.bin", &file).await.unwrap();
        let fid = c.open("bench-smbiod-reads.bin", false).await.unwrap();
        let file = Arc::new(file);
        let t = Instant::now();
        let tasks: Vec<_> = (0..CALLERS)
            .map(|k| {
                let (c, file) = (c.clone(), file.clone());
                waitrt::spawn(async move {
                    let off = k * BLOCK;
                    for _ in 0..sizes.reads_per_caller {
                        let got = c.read_at(fid, off as u64, BLOCK as u32).await.unwrap();
                        assert_eq!(got, file[off..off + BLOCK]);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let took = t.elapsed();
        c.close(fid).await.unwrap();
        c.logoff().await.unwrap();
        took
    })
}

fn ours_big(rt: &waitrt::Runtime, big: &[u8]) -> Duration {
    rt.block_on(async {
        let c = ours_connect().await;
        let t = Instant::now();
        c.write_file("bench-smbiod-big.bin", big).await.unwrap();
        let back = c.read_file("bench-smbiod-big.bin").await.unwrap();
        let took = t.elapsed();
        assert!(back == big, "smbiod read-back differs");
        c.delete("bench-smbiod-big.bin").await.unwrap();
        c.logoff().await.unwrap();
        took
    })
}

// ---- the smb2 crate on tokio --------------------------------------------

fn peer_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

/// Runs `f` on a fresh tokio runtime; an smb2 error is a failure.
fn peer<F: Future<Output = Result<Duration, smb2::Error>>>(f: F) -> Duration {
    peer_rt()
        .block_on(f)
        .unwrap_or_else(|e| panic!("smb2 failed: {e}"))
}

async fn peer_reads(reads_per_caller: usize) -> Result<Duration, smb2::Error> {
    let mut c = smb2::connect(SAMBA, "", "").await?;
    let tree = c.connect_share("share").await?;
    let file = data(CALLERS * BLOCK, 2);
    c.write_file_pipelined(&tree, "bench-smb2-reads.bin", &file)
        .await?;
    let reader = Arc::new(c.open_file_reader(&tree, "bench-smb2-reads.bin").await?);
    let file = Arc::new(file);
    let t = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|k| {
            let (reader, file) = (reader.clone(), file.clone());
            tokio::spawn(async move {
                let off = k * BLOCK;
                for _ in 0..reads_per_caller {
                    let got = reader.read_at(off as u64, BLOCK as u64).await?;
                    assert_eq!(got, file[off..off + BLOCK]);
                }
                Ok::<_, smb2::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("smb2 task")?;
    }
    Ok(t.elapsed())
}

async fn peer_big(big: &[u8]) -> Result<Duration, smb2::Error> {
    let mut c = smb2::connect(SAMBA, "", "").await?;
    let mut tree = c.connect_share("share").await?;
    let t = Instant::now();
    c.write_file_pipelined(&tree, "bench-smb2-big.bin", big)
        .await?;
    let back = c
        .read_file_pipelined(&mut tree, "bench-smb2-big.bin")
        .await?;
    let took = t.elapsed();
    assert!(back == big, "smb2 read-back differs");
    let _ = c.delete_file(&tree, "bench-smb2-big.bin").await;
    Ok(took)
}

// ---- the rows -----------------------------------------------------------

fn rows() -> Vec<Row> {
    vec![
        Row::new(
            "reads_64x4KiB",
            vec![
                Contender::new("smbiod", |scale| {
                    let sizes = Sizes::new(scale);
                    ours_reads(&ours_rt(), sizes).as_nanos() as f64 / sizes.reads()
                }),
                Contender::new("smb2", |scale| {
                    let sizes = Sizes::new(scale);
                    peer(peer_reads(sizes.reads_per_caller)).as_nanos() as f64 / sizes.reads()
                }),
            ],
        )
        .unit("ns/read"),
        Row::new(
            "write_read_64MiB",
            vec![
                Contender::new("smbiod", |scale| {
                    let sizes = Sizes::new(scale);
                    let big = data(sizes.big, 3);
                    ours_big(&ours_rt(), &big).as_micros() as f64 / sizes.mib()
                }),
                Contender::new("smb2", |scale| {
                    let sizes = Sizes::new(scale);
                    let big = data(sizes.big, 3);
                    peer(peer_big(&big)).as_micros() as f64 / sizes.mib()
                }),
            ],
        )
        .unit("us/MiB"),
    ]
}

fn main() -> std::process::ExitCode {
    const PREFIX: &str = "SMBIOD_BENCH";
    let samba = match harness::is_child(PREFIX) {
        true => Samba::Found,
        false => samba_up(),
    };
    if samba == Samba::Missing {
        let why = format!(
            "SKIP: smbiod bench: no Samba on {SAMBA} (needs root and smbd; see \
             .ci/smb/start-smbd.sh)\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), why.as_bytes());
        return if std::env::var("CI").is_ok_and(|v| v == "true") {
            std::process::ExitCode::FAILURE
        } else {
            std::process::ExitCode::SUCCESS
        };
    }
    let sizes = Sizes::new(harness::env_or(PREFIX, "SCALE", 1.0));
    let title = format!(
        "smbiod bench against Samba on {SAMBA}: smbiod (ours) vs the smb2 crate on tokio\n\
         {CALLERS} callers x {} reads of {BLOCK} B; {} MiB write then read",
        sizes.reads_per_caller,
        sizes.big >> 20
    );
    let bench = harness::Bench {
        prefix: PREFIX,
        // Printed once, by the driver; one leaked string per process.
        title: Box::leak(title.into_boxed_str()),
        unit: "ns/op",
    };
    let code = harness::main(&bench, rows());
    if samba == Samba::Started {
        // Leave the machine as we found it.
        let _ = Command::new("bash").arg(smbd_script()).arg("stop").status();
    }
    code
}
