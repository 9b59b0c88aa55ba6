//! The CI message-passing gate (issue 21): 10 sender tasks x 10,000
//! messages through a bounded `waitrt::sync::mpsc::channel(100)` into the
//! root task, on a current-thread runtime (`ct`) and on 2 workers
//! (`2wk`), against tokio's `mpsc` on tokio's runtime of the same flavour.
//! The senders keep the channel full, so most sends sleep and are woken:
//! the row crosses the channel, the wait queues and the scheduler, and a
//! scheduler change that costs 20 % shows in it.
//!
//! Method: [`harness`]: every (row, runtime) measurement in a fresh
//! process, ours and tokio alternating, `MPSC_GATE_PAIRS` rounds (default
//! 15), the median of the pair ratios with their range. A measurement is
//! the fastest of `MPSC_GATE_REPS` (default 5) runs in its process (see
//! [`reps`]). Then, per row, two comparisons:
//!
//! - **tokio / ours** (the gate number): on a noisy machine both sides of
//!   a pair see the same noise, so this ratio is the one to read;
//! - **ours against the recorded value** in
//!   `benches/baseline/mpsc_gate.txt` (the trend; absolute, so it moves
//!   with the machine), and the recorded tokio / ours ratio.
//!
//! It prints and never fails on timing: CI machines are too noisy for a
//! hard threshold. It fails (exit 1) when a workload's result is wrong
//! (a message lost, duplicated or out of order: the child panics and the
//! harness reports `FAIL`).
//!
//! ```text
//! cargo run --release -p mpsc-gate                      # what .ci/run does
//! MPSC_GATE_RECORD=1 cargo run --release -p mpsc-gate   # refresh the recorded values
//! ```
//!
//! Refresh the recorded values on a quiet machine after a change that
//! moves them on purpose, and commit the file with that change; the file
//! keeps the commit, date and CPU count they came from.

use std::time::Instant;

#[path = "../harness/mod.rs"]
mod harness;

use harness::{Contender, Outcome, Row};

const PREFIX: &str = "MPSC_GATE";
const SENDERS: u64 = 10;
const PER_SENDER: f64 = 10_000.0;
const CAPACITY: usize = 100;
/// Rounds per row when `MPSC_GATE_PAIRS` is unset (a process ~30 ms).
const DEFAULT_PAIRS: &str = "15";
const FLAVOURS: [(&str, usize); 2] = [("ct", 1), ("2wk", 2)];
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../baseline/mpsc_gate.txt");
/// [`BASELINE`] as the messages name it.
const BASELINE_NAME: &str = "benches/baseline/mpsc_gate.txt";

/// The receiver's check: every sender's messages, all of them, in order.
/// A message is `sender << 32 | seq`.
struct Tally {
    next: Vec<u64>,
    per_sender: u64,
}

impl Tally {
    fn new(per_sender: u64) -> Tally {
        Tally {
            next: vec![0; SENDERS as usize],
            per_sender,
        }
    }

    fn take(&mut self, msg: u64) {
        let (sender, seq) = ((msg >> 32) as usize, msg & 0xffff_ffff);
        assert!(sender < self.next.len(), "message from no sender: {msg:#x}");
        assert_eq!(seq, self.next[sender], "sender {sender} out of order");
        self.next[sender] += 1;
    }

    fn finish(&self) -> u64 {
        assert!(
            self.next.iter().all(|&n| n == self.per_sender),
            "messages lost: {:?}",
            self.next
        );
        SENDERS * self.per_sender
    }
}

fn per_sender(scale: f64) -> u64 {
    ((PER_SENDER * scale) as u64).max(1)
}

/// Workload runs per measurement (`MPSC_GATE_REPS`, default 5), on one
/// runtime; the measurement is the fastest. A run takes a few ms, so on a
/// busy CI machine a single run is often cut by preemption: the fastest of
/// a few is the figure that noise does not reach (noise only adds time).
fn reps() -> usize {
    harness::env_or(PREFIX, "REPS", 5usize).max(1)
}

/// Ours: ns per message, timed in the root task.
fn ours(workers: usize, scale: f64) -> f64 {
    let rt = if workers == 1 {
        waitrt::Builder::new_current_thread().enable_all().build()
    } else {
        waitrt::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("our runtime builds");
    let per_sender = per_sender(scale);
    let run = || {
        rt.block_on(async move {
            waitrt::spawn(async move {
                let start = Instant::now();
                let (tx, mut rx) = waitrt::sync::mpsc::channel(CAPACITY);
                let senders: Vec<_> = (0..SENDERS)
                    .map(|sender| {
                        let tx = tx.clone();
                        waitrt::spawn(async move {
                            for seq in 0..per_sender {
                                if tx.send(sender << 32 | seq).await.is_err() {
                                    panic!("receiver gone");
                                }
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let mut tally = Tally::new(per_sender);
                while let Some(msg) = rx.recv().await {
                    tally.take(msg);
                }
                for sender in senders {
                    sender.await.expect("a sender panicked");
                }
                start.elapsed().as_nanos() as f64 / tally.finish() as f64
            })
            .await
            .expect("the root task panicked")
        })
    };
    (0..reps()).map(|_| run()).fold(f64::INFINITY, f64::min)
}

/// tokio's mpsc on tokio's runtime: ns per message, timed in the root task.
fn tokio(workers: usize, scale: f64) -> f64 {
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
    }
    .expect("tokio builds");
    let per_sender = per_sender(scale);
    let run = || {
        rt.block_on(async move {
            tokio::spawn(async move {
                let start = Instant::now();
                let (tx, mut rx) = tokio::sync::mpsc::channel(CAPACITY);
                let senders: Vec<_> = (0..SENDERS)
                    .map(|sender| {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            for seq in 0..per_sender {
                                tx.send(sender << 32 | seq).await.expect("receiver alive");
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let mut tally = Tally::new(per_sender);
                while let Some(msg) = rx.recv().await {
                    tally.take(msg);
                }
                for sender in senders {
                    sender.await.expect("a sender panicked");
                }
                start.elapsed().as_nanos() as f64 / tally.finish() as f64
            })
            .await
            .expect("the root task panicked")
        })
    };
    (0..reps()).map(|_| run()).fold(f64::INFINITY, f64::min)
}

fn rows() -> Vec<Row> {
    FLAVOURS
        .iter()
        .map(|&(flavour, workers)| {
            Row::new(
                format!("mpsc_10x10k/{flavour}"),
                vec![
                    Contender::new("ours", move |scale| ours(workers, scale)),
                    Contender::new("tokio", move |scale| tokio(workers, scale)),
                ],
            )
        })
        .collect()
}

// ===== the recorded values =====

/// One line of the baseline file: `row ours_ns tokio_over_ours rest...`.
struct Recorded {
    row: String,
    ours_ns: f64,
    tokio_ratio: f64,
    /// Where the values came from (commit, date, CPUs).
    provenance: String,
}

fn read_baseline() -> Vec<Recorded> {
    let Ok(text) = std::fs::read_to_string(BASELINE) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Recorded {
                row: f.next()?.to_string(),
                ours_ns: f.next()?.parse().ok()?,
                tokio_ratio: f.next()?.parse().ok()?,
                provenance: f.collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn write_baseline(outcomes: &[Outcome]) {
    let mut commit = command_output("git", &["rev-parse", "--short", "HEAD"]);
    // Uncommitted changes to tracked files: the values are not that commit's.
    let status = command_output("git", &["status", "--porcelain", "--untracked-files=no"]);
    if !status.is_empty() && status != "unknown" {
        commit += "+dirty";
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let date = command_output("date", &["-u", "+%Y-%m-%d"]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut text = String::from(
        "# The CI gate's recorded values (benches/gate/main.rs, run by .ci/run).\n\
         # Refresh on a quiet machine: MPSC_GATE_RECORD=1 cargo run --release -p mpsc-gate\n\
         # row  ours_ns_per_msg  tokio_over_ours  commit  date  cpus  load\n",
    );
    for o in outcomes {
        let (Some(ns), Some(ratio)) = (o.our_cost(), o.ratio("tokio")) else {
            println!("not recorded: {} failed", o.row);
            return;
        };
        text += &format!(
            "{} {ns:.1} {:.3} {commit} {date} {cpus}cpu load={load}\n",
            o.row, ratio.0
        );
    }
    std::fs::write(BASELINE, text).unwrap_or_else(|e| panic!("writing {BASELINE}: {e}"));
    println!("recorded in {BASELINE_NAME}");
}

/// The gate's lines: ratio to tokio, and both figures against the record.
fn gate(outcomes: &[Outcome]) {
    let recorded = read_baseline();
    println!("\n===== CI gate: mpsc {SENDERS} senders x 10k, bounded({CAPACITY}) =====");
    println!("(informational: timing never fails CI; a wrong result does)");
    for o in outcomes {
        let (Some(ns), Some(ratio)) = (o.our_cost(), o.ratio("tokio")) else {
            let why = o
                .costs
                .iter()
                .find_map(|(name, c)| c.as_ref().err().map(|e| format!("{name}: {e}")));
            println!(
                "{:<16} FAIL (a wrong result or a crash, not timing): {}",
                o.row,
                why.unwrap_or_default()
            );
            continue;
        };
        println!(
            "{:<16} ours {ns:.1} ns/msg; tokio/ours {}",
            o.row,
            harness::ratio_cell(ratio)
        );
        match recorded.iter().find(|r| r.row == o.row) {
            Some(r) => {
                let trend = r.ours_ns / ns;
                let change = ratio.0 / r.tokio_ratio - 1.0;
                println!(
                    "{:<16} recorded ({}): ours {:.1} ns/msg -> now {trend:.2}x that speed; \
                     tokio/ours {:.2}x -> now {:+.0} %",
                    "",
                    r.provenance,
                    r.ours_ns,
                    r.tokio_ratio,
                    change * 100.0
                );
                if change < -0.15 {
                    println!(
                        "{:<16} NOTE: tokio/ours is {:.0} % below its recorded value: \
                         a regression, or a noisy machine (see the pair range)",
                        "",
                        -change * 100.0
                    );
                }
            }
            None => println!("{:<16} no recorded value in {BASELINE_NAME}", ""),
        }
    }
    if harness::env_or(PREFIX, "RECORD", 0u8) != 0 {
        write_baseline(outcomes);
    }
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("MPSC_GATE_PAIRS").is_none() {
        // Before any thread starts; the children inherit it.
        std::env::set_var("MPSC_GATE_PAIRS", DEFAULT_PAIRS);
    }
    let bench = harness::Bench {
        prefix: PREFIX,
        title: "mpsc gate (issue 21): waitrt::sync::mpsc on our runtime vs tokio::sync::mpsc \
                on tokio, 10 senders x 10k messages, bounded(100)",
        unit: "ns/msg",
    };
    harness::main_with(&bench, rows(), gate)
}
