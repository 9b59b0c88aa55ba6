//! The project's benchmark method (issue 21): one measurement per process,
//! as a user's program is, with ours and each peer alternating, and
//! hyperfine-style ratios.
//!
//! # Model
//!
//! A bench binary (`harness = false`) describes its [`Row`]s: a unique
//! name and a list of [`Contender`]s, ours first. A contender is a closure
//! `scale -> cost` that runs the workload once and returns its cost, lower
//! is better (ns per operation in `sync.rs`; a throughput bench returns
//! its inverse, e.g. ns per byte). It checks its own result (counts,
//! final values) and panics when it is wrong, so a broken primitive posts
//! a `FAIL`, never a time. [`main`] does the rest.
//!
//! # Protocol
//!
//! - **Driver** (the default). For each row matching the filter it runs
//!   `PAIRS` rounds; a round measures ours once and every peer once, each
//!   in a fresh child process: `std::env::current_exe()` re-executed with
//!   `{PREFIX}_CHILD=<row>` and `{PREFIX}_CONTENDER=<name>`. The order
//!   flips every round (ours first, then the peers; then the peers in
//!   reverse, ours last), so a drift in machine load falls on both sides
//!   of a pair. Peer `p` in round `i` pairs with ours in round `i`: the
//!   pair ratio is `peer cost / our cost` (above 1.0: ours is faster).
//!   Per peer the row prints the median pair ratio and its range
//!   (min–max); per contender the median cost.
//! - **Child.** Runs `{PREFIX}_WARMUP` unmeasured runs (default 0: a
//!   user's program starts cold), then one measured run, and prints one
//!   line, `RESULT cost=<f64>`, on stdout. A child that panics, exits
//!   non-zero, prints no `RESULT` line, or outlives `{PREFIX}_TIMEOUT_S`
//!   (default 120 s; the driver kills it) is a `FAIL` with its reason;
//!   that contender is not run again in the row, and the binary exits
//!   non-zero at the end.
//! - **In process** (`{PREFIX}_IN_PROCESS=1`): the same rounds and ratios,
//!   each measurement a call in the driver's process (a panic is caught
//!   and is a `FAIL`; there is no watchdog).
//!
//! The summary at the end lists every row's ratio against each peer and
//! against the fastest peer (the one with the lowest median ratio), and
//! counts the rows where ours is at least 1.0x and 1.2x that peer.
//!
//! # Environment
//!
//! `{PREFIX}_SCALE` (default 1.0) multiplies the workload sizes;
//! `{PREFIX}_PAIRS` (default 5) rounds per row (a row may ask for a
//! multiple of it: [`Row::pairs_factor`]); `{PREFIX}_FILTER` runs only
//! rows whose name contains the string; `{PREFIX}_IN_PROCESS=1`;
//! `{PREFIX}_TIMEOUT_S` (also the in-process watchdog: a measurement that
//! outlives it ends the process with an error); `{PREFIX}_WARMUP`;
//! `{PREFIX}_SAMPLES=1` prints every measurement of a row, in order (a
//! bimodal row shows there). For `perf` or `strace`, run one child by
//! hand: `{PREFIX}_CHILD=mpsc_spsc/ct {PREFIX}_CONTENDER=ours perf record
//! target/release/deps/sync-…`.
//!
//! # Per-row extras
//!
//! [`Contender::reference`] marks a runtime-free reference (measured and
//! paired like a peer, left out of "fastest peer");
//! [`Row::unit`] overrides the bench's unit for a row (a network bench
//! mixes ns per round trip and µs per MiB); [`Row::target`] states a
//! goal against one peer (`ours >= min x` that peer's cost), judged in the
//! summary; [`main_with`] hands every row's [`Outcome`] to a closure after
//! the summary (a bench's own cross-row lines, or a CI gate's comparison
//! with recorded values).
//!
//! # Adopting it
//!
//! ```ignore
//! #[path = "harness/mod.rs"]
//! mod harness;
//!
//! fn main() -> std::process::ExitCode {
//!     let rows = vec![harness::Row::new("ping_pong/ct", vec![
//!         harness::Contender::new("ours", |scale| ping_pong_ours(scale)),
//!         harness::Contender::new("tokio", |scale| ping_pong_tokio(scale)),
//!     ])];
//!     harness::main(&harness::Bench { prefix: "WAKE_BENCH", title: "wake", unit: "ns/op" }, rows)
//! }
//! ```

// Each bench binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a bench binary is called and how its costs read.
pub struct Bench {
    /// Prefix of every environment variable (`SYNC_BENCH`).
    pub prefix: &'static str,
    /// One line printed first.
    pub title: &'static str,
    /// The unit of a contender's cost (`ns/op`).
    pub unit: &'static str,
}

/// One implementation of a row's workload.
pub struct Contender {
    /// Unique within its row.
    pub name: &'static str,
    /// Runs the workload once at the given scale, checks its result
    /// (panics if wrong) and returns its cost (lower is better).
    pub run: Box<dyn Fn(f64) -> f64>,
    /// A runtime-free reference (a raw mio loop, plain threads): measured
    /// and paired like a peer, but not a peer to beat, so the summary's
    /// fastest peer leaves it out.
    pub reference: bool,
}

impl Contender {
    pub fn new(name: &'static str, run: impl Fn(f64) -> f64 + 'static) -> Contender {
        Contender {
            name,
            run: Box::new(run),
            reference: false,
        }
    }

    /// A runtime-free reference: how close a runtime can get, not a peer.
    pub fn reference(name: &'static str, run: impl Fn(f64) -> f64 + 'static) -> Contender {
        Contender {
            reference: true,
            ..Contender::new(name, run)
        }
    }
}

/// A workload and its contenders; the first contender is ours.
pub struct Row {
    /// Unique within the binary; what the filter matches.
    pub name: String,
    pub contenders: Vec<Contender>,
    /// The unit of this row's costs, when not the bench's.
    pub unit: Option<&'static str>,
    /// Goals: `(peer, min)`, ours at least `min` times as fast as `peer`.
    pub targets: Vec<(&'static str, f64)>,
    /// This row runs `pairs_factor` times `{PREFIX}_PAIRS` rounds.
    pub pairs_factor: usize,
}

impl Row {
    pub fn new(name: impl Into<String>, contenders: Vec<Contender>) -> Row {
        Row {
            name: name.into(),
            contenders,
            unit: None,
            targets: Vec::new(),
            pairs_factor: 1,
        }
    }

    /// This row's costs are in `unit` (the bench's unit otherwise).
    pub fn unit(mut self, unit: &'static str) -> Row {
        self.unit = Some(unit);
        self
    }

    /// A goal: the median pair ratio against `peer` is at least `min`.
    /// The summary prints `ok` or `MISS` (a miss is not a failure).
    pub fn target(mut self, peer: &'static str, min: f64) -> Row {
        assert!(
            self.contenders.iter().skip(1).any(|c| c.name == peer),
            "row {}: target against unknown peer {peer:?}",
            self.name
        );
        self.targets.push((peer, min));
        self
    }

    /// Runs `factor` times `{PREFIX}_PAIRS` rounds (a short, noisy row).
    pub fn pairs_factor(mut self, factor: usize) -> Row {
        self.pairs_factor = factor.max(1);
        self
    }
}

/// The settings read from the environment.
struct Settings {
    scale: f64,
    pairs: usize,
    filter: String,
    in_process: bool,
    timeout: Duration,
    warmup: usize,
    samples: bool,
}

impl Settings {
    fn read(prefix: &str) -> Settings {
        Settings {
            scale: env_or(prefix, "SCALE", 1.0),
            pairs: env_or(prefix, "PAIRS", 5usize).max(1),
            filter: std::env::var(format!("{prefix}_FILTER")).unwrap_or_default(),
            in_process: env_or(prefix, "IN_PROCESS", 0u8) != 0,
            timeout: Duration::from_secs_f64(env_or(prefix, "TIMEOUT_S", 120.0)),
            warmup: env_or(prefix, "WARMUP", 0usize),
            samples: env_or(prefix, "SAMPLES", 0u8) != 0,
        }
    }
}

/// Reads `{prefix}_{name}`, or `default` when unset; panics on garbage.
pub fn env_or<T: std::str::FromStr>(prefix: &str, name: &str, default: T) -> T {
    let var = format!("{prefix}_{name}");
    std::env::var(&var).ok().map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, got {s:?}"))
    })
}

/// Whether ours runs with the wait registry's task slots on
/// ([`waitrt::Builder::wait_registry`]): on, as the runtime's default,
/// unless `{PREFIX}_WAIT_REGISTRY=0`, which measures what the registry
/// costs a row (issue 22: at most 2 % on the hot paths).
pub fn wait_registry(prefix: &str) -> bool {
    env_or(prefix, "WAIT_REGISTRY", 1u8) != 0
}

/// Runs the binary: a child when `{PREFIX}_CHILD` is set, the driver
/// otherwise. Returns failure if any measurement failed.
pub fn main(bench: &Bench, rows: Vec<Row>) -> ExitCode {
    main_with(bench, rows, |_| {})
}

/// [`main`], and in the driver `after` gets every row's outcome once the
/// summary is printed.
pub fn main_with(bench: &Bench, rows: Vec<Row>, after: impl FnOnce(&[Outcome])) -> ExitCode {
    let settings = Settings::read(bench.prefix);
    if let Ok(row) = std::env::var(format!("{}_CHILD", bench.prefix)) {
        return child(bench, &settings, &rows, &row);
    }
    drive(bench, &settings, &rows, after)
}

/// Whether this process is a child measuring one contender (a bench's
/// `main` prints its own header only in the driver).
pub fn is_child(prefix: &str) -> bool {
    std::env::var_os(format!("{prefix}_CHILD")).is_some()
}

// ===== child =====

fn child(bench: &Bench, settings: &Settings, rows: &[Row], row: &str) -> ExitCode {
    let name = std::env::var(format!("{}_CONTENDER", bench.prefix))
        .unwrap_or_else(|_| panic!("{}_CONTENDER is not set", bench.prefix));
    let row = rows
        .iter()
        .find(|r| r.name == row)
        .unwrap_or_else(|| panic!("no row named {row:?}"));
    let contender = row
        .contenders
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("row {} has no contender {name:?}", row.name));
    for _ in 0..settings.warmup {
        (contender.run)(settings.scale);
    }
    let cost = (contender.run)(settings.scale);
    println!("RESULT cost={cost}");
    ExitCode::SUCCESS
}

/// Runs one contender of `row` in a child process under the watchdog.
fn spawn_child(bench: &Bench, settings: &Settings, row: &str, name: &str) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(format!("{}_CHILD", bench.prefix), row)
        .env(format!("{}_CONTENDER", bench.prefix), name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    // Drained on threads so a chatty child cannot fill a pipe and stall.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + settings.timeout;
    let status = loop {
        match child.try_wait().map_err(|e| format!("wait: {e}"))? {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!("timed out after {:?} (killed)", settings.timeout));
    };
    if !status.success() {
        return Err(format!("{status}: {}", panic_message(&err)));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT cost="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no RESULT line in {out:?}"))
}

/// The panic message in a child's stderr ("thread … panicked at
/// file:line:col:" and the line after it), or its last non-empty line.
fn panic_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => lines[at..(at + 4).min(lines.len())].join(" "),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(String::new, |l| l.trim().to_string()),
    }
}

/// Measurements started and finished in this process, for the watchdog.
static STARTED: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicU64 = AtomicU64::new(0);

/// In process, a lost wake-up would hang the driver: a thread that ends
/// the process when one measurement outlives `timeout`.
fn start_watchdog(timeout: Duration) {
    std::thread::spawn(move || loop {
        let before = (
            STARTED.load(Ordering::SeqCst),
            FINISHED.load(Ordering::SeqCst),
        );
        std::thread::sleep(timeout);
        let after = FINISHED.load(Ordering::SeqCst);
        if before.0 > before.1 && after == before.1 {
            eprintln!("FAIL: a measurement ran past {timeout:?} (a lost wake-up?); exiting");
            std::process::exit(2);
        }
    });
}

/// Runs one contender in this process, catching a panic.
fn run_here(settings: &Settings, contender: &Contender) -> Result<f64, String> {
    STARTED.fetch_add(1, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(|| {
        for _ in 0..settings.warmup {
            (contender.run)(settings.scale);
        }
        (contender.run)(settings.scale)
    }));
    FINISHED.fetch_add(1, Ordering::SeqCst);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into())
    })
}

// ===== driver =====

/// Median, min and max of a row's pair ratios against one peer.
pub type Ratios = (f64, f64, f64);

/// One row's outcome: the summary's input, and what [`main_with`] hands on.
pub struct Outcome {
    pub row: String,
    /// Every contender's median cost (ours first), or its failure.
    pub costs: Vec<(&'static str, Result<f64, String>)>,
    /// Each peer's ratios (peer / ours: median, min, max), or a failure.
    pub peers: Vec<(&'static str, Result<Ratios, String>)>,
    /// Our failure, if any.
    pub ours: Option<String>,
    /// The row's goals, as [`Row::target`] stated them.
    pub targets: Vec<(&'static str, f64)>,
    /// The contenders that are references ([`Contender::reference`]).
    pub references: Vec<&'static str>,
}

impl Outcome {
    /// The ratios against `peer`, if both sides measured.
    pub fn ratio(&self, peer: &str) -> Option<Ratios> {
        self.peers
            .iter()
            .find(|(name, _)| *name == peer)
            .and_then(|(_, r)| r.as_ref().ok().copied())
    }

    /// Our median cost, if we measured.
    pub fn our_cost(&self) -> Option<f64> {
        self.costs
            .first()
            .and_then(|(_, c)| c.as_ref().ok().copied())
    }
}

fn drive(
    bench: &Bench,
    settings: &Settings,
    rows: &[Row],
    after: impl FnOnce(&[Outcome]),
) -> ExitCode {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{}", bench.title);
    println!(
        "{cpus} CPUs, load average {}; {} pairs per row, scale {}, {}; \
         ratio = peer / ours (>1.0: ours is faster), median (min-max) of the pair ratios",
        load_average(),
        settings.pairs,
        settings.scale,
        if settings.in_process {
            "in process"
        } else {
            "one process per measurement"
        },
    );
    if settings.in_process {
        start_watchdog(settings.timeout);
    }
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for row in rows.iter().filter(|r| r.name.contains(&settings.filter)) {
        outcomes.push(run_row(bench, settings, row));
    }
    summary(&outcomes);
    after(&outcomes);
    println!(
        "\n{} rows in {:.1} s; load average at the end {}",
        outcomes.len(),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    let failed = outcomes
        .iter()
        .any(|o| o.ours.is_some() || o.peers.iter().any(|(_, r)| r.is_err()));
    if failed {
        println!("some measurements FAILED (see above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run_row(bench: &Bench, settings: &Settings, row: &Row) -> Outcome {
    println!("\n== {}", row.name);
    std::io::stdout().flush().expect("stdout");
    let n = row.contenders.len();
    let unit = row.unit.unwrap_or(bench.unit);
    // costs[contender][round]; a failure stops that contender's rounds.
    let mut costs: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut failures: Vec<Option<String>> = vec![None; n];
    for round in 0..settings.pairs * row.pairs_factor {
        let mut order: Vec<usize> = (0..n).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for c in order {
            if failures[c].is_some() {
                continue;
            }
            let contender = &row.contenders[c];
            let result = if settings.in_process {
                run_here(settings, contender)
            } else {
                spawn_child(bench, settings, &row.name, contender.name)
            };
            match result {
                Ok(cost) => costs[c].push(cost),
                Err(why) => failures[c] = Some(why),
            }
        }
    }
    for (c, contender) in row.contenders.iter().enumerate() {
        let cost = match &failures[c] {
            Some(why) => format!("FAIL: {why}"),
            None => format!("{:>10.1} {unit}", median(&costs[c])),
        };
        let ratio = match (c, &failures[0], &failures[c]) {
            (0, _, _) | (_, Some(_), _) | (_, _, Some(_)) => String::new(),
            _ => ratio_cell(pair_ratios(&costs[0], &costs[c])),
        };
        println!("  {:<16} {cost:<24} {ratio}", contender.name);
        if settings.samples {
            let all: Vec<String> = costs[c].iter().map(|v| format!("{v:.1}")).collect();
            println!("  {:<16} every run: {}", "", all.join(" "));
        }
        std::io::stdout().flush().expect("stdout");
    }
    Outcome {
        row: row.name.clone(),
        costs: row
            .contenders
            .iter()
            .enumerate()
            .map(|(c, contender)| {
                let cost = match &failures[c] {
                    Some(why) => Err(why.clone()),
                    None => Ok(median(&costs[c])),
                };
                (contender.name, cost)
            })
            .collect(),
        targets: row.targets.clone(),
        references: row
            .contenders
            .iter()
            .filter(|c| c.reference)
            .map(|c| c.name)
            .collect(),
        ours: failures[0].clone(),
        peers: (1..n)
            .map(|c| {
                let result = match (&failures[0], &failures[c]) {
                    (_, Some(why)) => Err(why.clone()),
                    (Some(_), None) => Err("ours failed".into()),
                    (None, None) => Ok(pair_ratios(&costs[0], &costs[c])),
                };
                (row.contenders[c].name, result)
            })
            .collect(),
    }
}

/// Median, min and max of `peer[i] / ours[i]`.
fn pair_ratios(ours: &[f64], peer: &[f64]) -> Ratios {
    let ratios: Vec<f64> = ours.iter().zip(peer).map(|(o, p)| p / o).collect();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(&ratios), min, max)
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn ratio_cell((median, min, max): Ratios) -> String {
    format!("{median:.2}x ({min:.2}-{max:.2})")
}

fn summary(outcomes: &[Outcome]) {
    println!("\n===== summary: ratio = peer / ours, median (min-max) =====");
    println!(
        "{:<28} {:<36} {:>5} {:>5}  every peer",
        "row", "vs fastest peer", ">=1.0", ">=1.2"
    );
    let (mut at_1, mut at_1_2, mut counted) = (0, 0, 0);
    for o in outcomes {
        let every: Vec<String> = o
            .peers
            .iter()
            .map(|(name, r)| {
                let name = if o.references.contains(name) {
                    format!("{name} (reference)")
                } else {
                    name.to_string()
                };
                match r {
                    Ok(r) => format!("{name} {}", ratio_cell(*r)),
                    Err(_) => format!("{name} FAIL"),
                }
            })
            .collect();
        let fastest = o
            .peers
            .iter()
            .filter(|(name, _)| !o.references.contains(name))
            .filter_map(|(name, r)| r.as_ref().ok().map(|r| (*name, *r)))
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
        let (vs, ok_1, ok_1_2) = match (&o.ours, fastest) {
            (Some(_), _) => ("ours FAIL".to_string(), "-", "-"),
            (None, None) => ("no peer".to_string(), "-", "-"),
            (None, Some((name, r))) => {
                counted += 1;
                let yes_no = |b: bool| if b { "yes" } else { "MISS" };
                at_1 += usize::from(r.0 >= 1.0);
                at_1_2 += usize::from(r.0 >= 1.2);
                (
                    format!("{} {name}", ratio_cell(r)),
                    yes_no(r.0 >= 1.0),
                    if r.0 >= 1.2 { "yes" } else { "no" },
                )
            }
        };
        println!(
            "{:<28} {vs:<36} {ok_1:>5} {ok_1_2:>5}  {}",
            o.row,
            every.join(", ")
        );
    }
    println!(
        "\nours >= 1.0x the fastest peer on {at_1}/{counted} rows (target: all), \
         >= 1.2x on {at_1_2}/{counted} (target: at least half)"
    );
    let goals: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.targets.iter().map(move |&(peer, min)| {
                let verdict = match o.ratio(peer) {
                    Some(r) if r.0 >= min => format!("ok   {}", ratio_cell(r)),
                    Some(r) => format!("MISS {}", ratio_cell(r)),
                    None => "FAIL".to_string(),
                };
                format!("{:<28} vs {peer:<8} >= {min:.2}x  {verdict}", o.row)
            })
        })
        .collect();
    if !goals.is_empty() {
        let missed = goals.iter().filter(|g| !g.contains(" ok ")).count();
        println!("\ntargets ({missed} of {} missed):", goals.len());
        for goal in goals {
            println!("  {goal}");
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
