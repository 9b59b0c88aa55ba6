//! smbiod against the `smb2` crate (on tokio), both against the same
//! Samba on 127.0.0.1:4445: 64 concurrent callers doing 4 KiB reads over
//! one connection, and a 64 MiB sequential write then read. Prints each
//! side's best of a few runs and the ratio ours/peer as a speed ratio
//! (> 1.0 = smbiod faster).
//!
//! ```text
//! cargo bench --bench smbiod
//! ```
//!
//! Runs when Samba is reachable on 127.0.0.1:4445 (it starts the project's
//! one via `.ci/smb/start-smbd.sh` when root and `smbd` is installed);
//! otherwise says so and exits 0.
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

const SAMBA: &str = "127.0.0.1:4445";
const CALLERS: usize = 64;
const READS_PER_CALLER: usize = 100;
const BLOCK: usize = 4096;
const BIG: usize = 64 << 20;
const RUNS: usize = 3;

fn samba_up() -> bool {
    if StdStream::connect(SAMBA).is_ok() {
        return true;
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/smb/start-smbd.sh");
        let _ = Command::new("bash").arg(script).status();
    }
    StdStream::connect(SAMBA).is_ok()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 12) as u8)
        .collect()
}

/// The best of `RUNS` timings of `f`.
fn best<F: FnMut() -> Duration>(mut f: F) -> Duration {
    (0..RUNS).map(|_| f()).min().unwrap_or_default()
}

/// One workload's timings, ours and the peer's.
struct Row {
    name: &'static str,
    ours: Duration,
    peer: Result<Duration, String>,
    unit: f64,
    unit_name: &'static str,
}

fn print(rows: &[Row]) {
    println!(
        "{:<34} {:>16} {:>16} {:>8}",
        "workload", "smbiod", "smb2 (tokio)", "ratio"
    );
    for r in rows {
        let rate = |d: Duration| format!("{:.1} {}", r.unit / d.as_secs_f64(), r.unit_name);
        let (peer, ratio) = match &r.peer {
            Ok(p) => (
                rate(*p),
                format!("{:.2}x", p.as_secs_f64() / r.ours.as_secs_f64()),
            ),
            Err(why) => ("n/a".to_string(), format!("n/a ({why})")),
        };
        println!(
            "{:<34} {:>16} {:>16} {:>8}",
            r.name,
            rate(r.ours),
            peer,
            ratio
        );
    }
    println!("ratio = smbiod speed / smb2 speed (> 1.0 = smbiod faster); best of {RUNS} runs each");
}

// ---- ours ---------------------------------------------------------------

fn ours_rt() -> runtime::Runtime {
    runtime::Builder::new_multi_thread()
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

fn ours_reads(rt: &runtime::Runtime) -> Duration {
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
                runtime::spawn(async move {
                    let off = k * BLOCK;
                    for _ in 0..READS_PER_CALLER {
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

fn ours_big(rt: &runtime::Runtime, big: &[u8]) -> Duration {
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

fn peer<F: Future<Output = Result<Duration, smb2::Error>>>(
    rt: &tokio::runtime::Runtime,
    f: F,
) -> Result<Duration, String> {
    rt.block_on(f).map_err(|e| e.to_string())
}

async fn peer_reads() -> Result<Duration, smb2::Error> {
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
                for _ in 0..READS_PER_CALLER {
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

fn main() {
    if !samba_up() {
        println!("smbiod bench: no Samba on {SAMBA} (needs root and smbd; see .ci/smb/start-smbd.sh) -- skipped");
        return;
    }
    println!("smbiod bench against Samba on {SAMBA}: {CALLERS} callers x {READS_PER_CALLER} reads of {BLOCK} B; {} MiB write then read", BIG >> 20);
    let (ours, tokio_rt) = (ours_rt(), peer_rt());
    let big = data(BIG, 3);
    let reads = (CALLERS * READS_PER_CALLER) as f64;
    let mib = 2.0 * BIG as f64 / 1048576.0;
    let peer_reads = (0..RUNS)
        .map(|_| peer(&tokio_rt, peer_reads()))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.into_iter().min().unwrap_or_default());
    let peer_big = (0..RUNS)
        .map(|_| peer(&tokio_rt, peer_big(&big)))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.into_iter().min().unwrap_or_default());
    let rows = [
        Row {
            name: "64 callers x 4 KiB reads",
            ours: best(|| ours_reads(&ours)),
            peer: peer_reads,
            unit: reads,
            unit_name: "reads/s",
        },
        Row {
            name: "64 MiB write + read (sequential)",
            ours: best(|| ours_big(&ours, &big)),
            peer: peer_big,
            unit: mib,
            unit_name: "MiB/s",
        },
    ];
    print(&rows);
}
