//! The live progress line and the final summary.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::workload::{Outcome, Progress};

/// Prints progress until `done` is set: a `\r`-updated line on a TTY,
/// a plain line per second otherwise.
pub async fn ticker(progress: Arc<Progress>, total: usize, done: Arc<AtomicBool>) {
    let tty = std::io::stdout().is_terminal();
    let every = if tty { 100 } else { 1000 };
    let start = Instant::now();
    let mut last_print = Instant::now();
    while !done.load(Ordering::Acquire) {
        waitrt::time::sleep(Duration::from_millis(20)).await;
        if last_print.elapsed() < Duration::from_millis(every) || done.load(Ordering::Acquire) {
            continue;
        }
        last_print = Instant::now();
        let line = progress_line(&progress, total, start.elapsed());
        let mut out = std::io::stdout().lock();
        let _ = if tty {
            write!(out, "\r{line}  ")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }
    if tty {
        let _ = write!(std::io::stdout(), "\r{:78}\r", "");
    }
}

fn progress_line(p: &Progress, total: usize, t: Duration) -> String {
    let v = p.verified.load(Ordering::Relaxed);
    let f = p.failed.load(Ordering::Relaxed);
    let mib = p.bytes.load(Ordering::Relaxed) as f64 / 1048576.0;
    let pct = 100.0 * v as f64 / total.max(1) as f64;
    format!(
        "[{pct:5.1}%] {v}/{total} files verified, {f} failed, {mib:.1} MiB moved, {:.1} s",
        t.as_secs_f64()
    )
}

/// The readable summary of a run.
pub fn summary(o: &Outcome) -> String {
    let s = &o.stats;
    let a = &s.acct;
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let mib = |b: u64| b as f64 / 1048576.0;
    let ms = |us: u32| f64::from(us) / 1000.0;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<11} {v}\n"));
    line(
        "requests",
        format!(
            "{} SMB2 requests, {} replies ({} interim STATUS_PENDING, {} late replies discarded)",
            a.requests, a.replies, a.interim, a.discarded
        ),
    );
    line(
        "bytes",
        format!(
            "{:.1} MiB written, {:.1} MiB read back",
            mib(o.written),
            mib(o.read)
        ),
    );
    line(
        "throughput",
        format!(
            "{:.1} MiB/s, {:.0} requests/s over {:.2} s",
            mib(o.written + o.read) / secs,
            a.requests as f64 / secs,
            secs
        ),
    );
    line(
        "latency",
        format!(
            "p50 {:.3} ms, p99 {:.3} ms per request (queued -> reply)",
            ms(s.percentile_us(50.0)),
            ms(s.percentile_us(99.0))
        ),
    );
    line(
        "daemon",
        format!(
            "slept {} times, woken {} times, {} send batches, {} keepalive ECHOs",
            s.sleeps, s.wakes, a.batches, a.echoes
        ),
    );
    line(
        "credits",
        format!(
            "peak {} in flight, {} granted / {} charged in all, {} held at the end, {} overdrawn, callers waited {} times",
            a.peak_in_flight, a.granted, a.charged, s.credits, a.overdrawn, a.credit_waits
        ),
    );
    for f in &o.failures {
        line("FAILED", f.clone());
    }
    let verdict = if o.all_verified() {
        format!("all {} verified", o.total)
    } else {
        format!("{} of {} verified: FAILED", o.verified, o.total)
    };
    line("result", verdict);
    out
}
