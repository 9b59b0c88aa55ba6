//! File and process benchmark (issue 24): `waitrt::fs::read`/`write` of
//! 4 KiB and 1 MiB files and `waitrt::process::Command::output()` of
//! `true`, against tokio's, each on its own runtime's 2-worker
//! multi-thread scheduler. One measurement per process, ours and tokio
//! alternating, ratio = tokio / ours (above 1.0: ours is faster): the
//! method of [`harness`] (issue 21), whose docs list the environment
//! variables (`FS_PROCESS_BENCH_SCALE`, `_PAIRS`, `_FILTER`,
//! `_IN_PROCESS`, `_TIMEOUT_S`, `_WARMUP`).
//!
//! Rows (counts at `FS_PROCESS_BENCH_SCALE=1`; ns/op is per call, one
//! call at a time from one task, as a request handler makes them):
//!
//! - `fs_read/4KiB`, `fs_read/1MiB`: `fs::read` of one file, 4,000 and
//!   400 times; each result is checked (length and content).
//! - `fs_write/4KiB`, `fs_write/1MiB`: `fs::write` of one file, 4,000
//!   and 400 times, each call writing a different first byte; the file
//!   is read back at the end.
//! - `fs_read_in_task/4KiB`: `fs_read/4KiB` from a spawned task (as a
//!   request handler reads), where the other rows call from `block_on`.
//! - `process_output/true`: `Command::new("true").output()`, 400 times;
//!   each exit status is checked.
//!
//! Both sides run their calls on their blocking pool (tokio's `fs` does
//! too), so a row measures the round trip to the pool plus the system
//! calls, and for processes the spawn and the wait for the exit. The
//! `std` reference makes the same calls blocking on the calling thread,
//! with no runtime: what the system calls alone cost (where it is level
//! with both runtimes, the row is at its physical limit: `fs_write`
//! truncates a file with data, which on ext4 starts its writeback).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench --bench fs_process
//! FS_PROCESS_BENCH_SCALE=0.05 FS_PROCESS_BENCH_PAIRS=2 cargo bench --bench fs_process
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "harness/mod.rs"]
mod harness;

use harness::{Contender, Row};

const KIB_4: usize = 4 * 1024;
const MIB_1: usize = 1024 * 1024;

/// A directory of this process's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("fs_process_bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ours_rt() -> waitrt::Runtime {
    waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("our runtime")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio's runtime")
}

fn count(base: f64, scale: f64) -> usize {
    ((base * scale) as usize).max(1)
}

/// The file `fs_read` reads: `size` bytes, byte `i` is `i % 251`.
fn content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn check_read(got: &[u8], expected: &[u8]) {
    assert!(
        got == expected,
        "read {} bytes, not the file's {}",
        got.len(),
        expected.len()
    );
}

fn check_written(path: &Path, size: usize, last: u8) {
    let back = std::fs::read(path).expect("read the written file back");
    assert_eq!(back.len(), size, "written size");
    assert_eq!(back[0], last, "the last write's first byte");
}

// ===== fs::read =====

fn read_ours(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("read-ours");
    let path = scratch.file("data");
    let expected = content(size);
    std::fs::write(&path, &expected).unwrap();
    ours_rt().block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            check_read(&waitrt::fs::read(&path).await.unwrap(), &expected);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

fn read_tokio(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("read-tokio");
    let path = scratch.file("data");
    let expected = content(size);
    std::fs::write(&path, &expected).unwrap();
    tokio_rt().block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            check_read(&tokio::fs::read(&path).await.unwrap(), &expected);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

/// `fs::read` of 4 KiB from a spawned task (as a request handler reads),
/// where `read_ours` reads from `block_on`: the result wakes a worker
/// instead of the `block_on` thread.
fn read_in_task_ours(n: usize) -> f64 {
    let scratch = Scratch::new("read-task-ours");
    let path = scratch.file("data");
    let expected = content(KIB_4);
    std::fs::write(&path, &expected).unwrap();
    let rt = ours_rt();
    rt.block_on(async {
        waitrt::spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                check_read(&waitrt::fs::read(&path).await.unwrap(), &expected);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .await
        .unwrap()
    })
}

fn read_in_task_tokio(n: usize) -> f64 {
    let scratch = Scratch::new("read-task-tokio");
    let path = scratch.file("data");
    let expected = content(KIB_4);
    std::fs::write(&path, &expected).unwrap();
    let rt = tokio_rt();
    rt.block_on(async {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..n {
                check_read(&tokio::fs::read(&path).await.unwrap(), &expected);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .await
        .unwrap()
    })
}

// ===== fs::write =====

fn write_ours(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("write-ours");
    let path = scratch.file("data");
    let mut data = content(size);
    let per_op = ours_rt().block_on(async {
        let start = Instant::now();
        for i in 0..n {
            data[0] = i as u8;
            // The buffer is lent by reference, as a caller keeps it.
            waitrt::fs::write(&path, &data).await.unwrap();
        }
        start.elapsed().as_nanos() as f64 / n as f64
    });
    check_written(&path, size, (n - 1) as u8);
    per_op
}

fn write_tokio(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("write-tokio");
    let path = scratch.file("data");
    let mut data = content(size);
    let per_op = tokio_rt().block_on(async {
        let start = Instant::now();
        for i in 0..n {
            data[0] = i as u8;
            tokio::fs::write(&path, &data).await.unwrap();
        }
        start.elapsed().as_nanos() as f64 / n as f64
    });
    check_written(&path, size, (n - 1) as u8);
    per_op
}

// ===== the physical reference: the same calls, blocking, on one thread =====

/// `std::fs::read` on the calling thread: no runtime and no trip to a
/// pool thread, what the system calls alone cost.
fn read_std(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("read-std");
    let path = scratch.file("data");
    let expected = content(size);
    std::fs::write(&path, &expected).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        check_read(&std::fs::read(&path).unwrap(), &expected);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `std::fs::write` on the calling thread.
fn write_std(size: usize, n: usize) -> f64 {
    let scratch = Scratch::new("write-std");
    let path = scratch.file("data");
    let mut data = content(size);
    let start = Instant::now();
    for i in 0..n {
        data[0] = i as u8;
        std::fs::write(&path, &data).unwrap();
    }
    let per_op = start.elapsed().as_nanos() as f64 / n as f64;
    check_written(&path, size, (n - 1) as u8);
    per_op
}

/// `std::process::Command::output` of `true` on the calling thread.
fn output_std(n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let out = std::process::Command::new("true")
            .output()
            .expect("spawn `true` (coreutils)");
        assert!(out.status.success(), "`true` failed: {:?}", out.status);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

// ===== Command::output =====

fn output_ours(n: usize) -> f64 {
    ours_rt().block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let out = waitrt::process::Command::new("true")
                .output()
                .await
                .expect("spawn `true` (coreutils)");
            assert!(out.status.success(), "`true` failed: {:?}", out.status);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

fn output_tokio(n: usize) -> f64 {
    tokio_rt().block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let out = tokio::process::Command::new("true")
                .output()
                .await
                .expect("spawn `true` (coreutils)");
            assert!(out.status.success(), "`true` failed: {:?}", out.status);
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (label, size, base) in [("4KiB", KIB_4, 4_000.0), ("1MiB", MIB_1, 400.0)] {
        rows.push(Row::new(
            format!("fs_read/{label}"),
            vec![
                Contender::new("ours", move |scale| read_ours(size, count(base, scale))),
                Contender::new("tokio", move |scale| read_tokio(size, count(base, scale))),
                Contender::reference("std", move |scale| read_std(size, count(base, scale))),
            ],
        ));
        rows.push(Row::new(
            format!("fs_write/{label}"),
            vec![
                Contender::new("ours", move |scale| write_ours(size, count(base, scale))),
                Contender::new("tokio", move |scale| write_tokio(size, count(base, scale))),
                Contender::reference("std", move |scale| write_std(size, count(base, scale))),
            ],
        ));
    }
    rows.push(Row::new(
        "fs_read_in_task/4KiB",
        vec![
            Contender::new("ours", |scale| read_in_task_ours(count(4_000.0, scale))),
            Contender::new("tokio", |scale| read_in_task_tokio(count(4_000.0, scale))),
        ],
    ));
    rows.push(Row::new(
        "process_output/true",
        vec![
            Contender::new("ours", |scale| output_ours(count(400.0, scale))),
            Contender::new("tokio", |scale| output_tokio(count(400.0, scale))),
            Contender::reference("std", |scale| output_std(count(400.0, scale))),
        ],
    ));
    rows
}

fn main() -> std::process::ExitCode {
    let bench = harness::Bench {
        prefix: "FS_PROCESS_BENCH",
        title: "fs and process benchmark (issue 24): waitrt::fs / waitrt::process vs tokio's, 2 workers each",
        unit: "ns/op",
    };
    harness::main(&bench, rows())
}
