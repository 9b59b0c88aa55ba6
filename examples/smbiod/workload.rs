//! The CLI's workload: many concurrent callers on one connection, each
//! writing files, checking their size, reading them back and verifying
//! every byte, then listing the share and deleting what it wrote.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::api::Client;
use crate::client::ClientError;
use crate::daemon::Stats;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent callers (tasks).
    pub callers: usize,
    /// Files each caller writes and verifies.
    pub rounds: usize,
    /// Bytes per file.
    pub size: usize,
    /// Prefix of the file names (unique per run).
    pub tag: String,
}

/// Live counters, read by the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files verified.
    pub verified: AtomicU64,
    /// Files that failed.
    pub failed: AtomicU64,
    /// Payload bytes moved (written + read).
    pub bytes: AtomicU64,
}

/// How the run went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Files verified byte for byte (and found in the listing).
    pub verified: usize,
    /// Files attempted.
    pub total: usize,
    /// The first few errors.
    pub failures: Vec<String>,
    /// Payload bytes written.
    pub written: u64,
    /// Payload bytes read back.
    pub read: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The daemon's counters at the end.
    pub stats: Stats,
}

impl Outcome {
    /// Every file verified, no error.
    pub fn all_verified(&self) -> bool {
        self.verified == self.total && self.failures.is_empty()
    }
}

/// The bytes of caller `c`'s file `r` (distinct per file).
pub fn pattern(c: usize, r: usize, len: usize) -> Vec<u8> {
    let mut x = (c as u64) << 32 | r as u64 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `plan` on `client`, every caller its own task.
pub async fn run(client: &Client, plan: &Plan, progress: Arc<Progress>) -> Outcome {
    let start = Instant::now();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..plan.callers)
        .map(|c| {
            let (client, plan) = (client.clone(), plan.clone());
            let (progress, failures) = (progress.clone(), failures.clone());
            let name = format!("caller {c}");
            waitrt::task::Builder::new().name(&name).spawn(async move {
                let verified = caller(&client, &plan, c, &progress).await;
                if let Err(e) = verified {
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                    let mut f = failures.lock().unwrap_or_else(PoisonError::into_inner);
                    if f.len() < 8 {
                        f.push(format!("caller {c}: {e}"));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        if let Err(e) = t.await {
            let mut f = failures.lock().unwrap_or_else(PoisonError::into_inner);
            f.push(format!("caller task failed: {e}"));
        }
    }
    let verified = progress.verified.load(Ordering::Relaxed) as usize;
    let moved = (verified * plan.size) as u64;
    let failures = failures
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Outcome {
        verified,
        total: plan.callers * plan.rounds,
        failures,
        written: moved,
        read: moved,
        elapsed: start.elapsed(),
        stats: client.daemon().stats(),
    }
}

/// One caller: write, size, read back and verify each file; then list the
/// share, check every file is there with its size, and delete them.
async fn caller(client: &Client, plan: &Plan, c: usize, progress: &Progress) -> Result<(), String> {
    let mut names = Vec::new();
    for r in 0..plan.rounds {
        let name = format!("{}-c{c:02}-r{r}.bin", plan.tag);
        let data = pattern(c, r, plan.size);
        let err = |what: &str, e: ClientError| format!("{what} {name}: {e}");
        client
            .write_file(&name, &data)
            .await
            .map_err(|e| err("write", e))?;
        progress
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let size = client.file_size(&name).await.map_err(|e| err("size", e))?;
        if size != data.len() as u64 {
            return Err(format!("{name}: size {size}, wrote {}", data.len()));
        }
        let back = client.read_file(&name).await.map_err(|e| err("read", e))?;
        progress
            .bytes
            .fetch_add(back.len() as u64, Ordering::Relaxed);
        if back != data {
            return Err(format!("{name}: read-back differs from what was written"));
        }
        names.push(name);
        progress.verified.fetch_add(1, Ordering::Relaxed);
    }
    // Streamed: only our own names are kept, whatever the share holds.
    let mut sizes: Vec<Option<u64>> = vec![None; names.len()];
    client
        .list_each("", |e| {
            if let Some(i) = names.iter().position(|n| *n == e.name) {
                sizes[i] = Some(e.attrs.eof);
            }
        })
        .await
        .map_err(|e| format!("list: {e}"))?;
    for (name, size) in names.iter().zip(&sizes) {
        if *size != Some(plan.size as u64) {
            return Err(format!("{name}: missing from the listing or wrong size"));
        }
    }
    for name in &names {
        client
            .delete(name)
            .await
            .map_err(|e| format!("delete {name}: {e}"))?;
    }
    Ok(())
}
