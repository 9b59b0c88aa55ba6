//! A dropped runtime gives back its file descriptors and its memory,
//! whatever it was doing when dropped: a task still queued on the global
//! queue (spawned from outside, or woken from a plain thread just before
//! the drop), a task asleep on a timer or a wait queue, a worker's queue
//! full of yielding tasks, a shutdown that did not wait for its workers.
//! A queued task holds its runtime and the runtime holds its queues, so a
//! task left queued used to keep the runtime (3 fds, ~34 KB) forever: 200
//! runtimes took a process from 6 to 495 open fds.
//!
//! One test in its own binary: it counts the process's open fds and its
//! resident memory, which tests running beside it would disturb.
mod support;

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitrt::sync::WaitQueue;
use waitrt::{Builder, Runtime};

const ROUNDS: usize = 1_000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Resident set size in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs `round` `ROUNDS` times after a warm-up and checks that the fds and
/// the memory came back: no more than a handful of fds over the start
/// (one leaked runtime is 3), and memory within 8 MiB (the leak was
/// ~34 MB per 1,000 runtimes).
fn check(name: &str, round: impl Fn()) {
    for _ in 0..50 {
        round();
    }
    let (fds, rss) = (open_fds(), rss_kib());
    for _ in 0..ROUNDS {
        round();
    }
    // Threads of the last runtimes may still be exiting (a shutdown that
    // did not wait for them): wait for them, up to support::WAIT_LIMIT of
    // real time (a loaded machine may not run them for a while; 100 sleeps
    // of 20 ms were a timing goal), and let the asserts below say what
    // was kept.
    let start = Instant::now();
    while open_fds() > fds + 4 && start.elapsed() < support::WAIT_LIMIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (fds_after, rss_after) = (open_fds(), rss_kib());
    eprintln!("{name}: fds {fds} -> {fds_after}, RSS {rss} -> {rss_after} KiB");
    assert!(
        fds_after <= fds + 4,
        "{name}: {ROUNDS} dropped runtimes kept {} fds",
        fds_after - fds
    );
    assert!(
        rss_after <= rss + 8 * 1024,
        "{name}: {ROUNDS} dropped runtimes kept {} KiB",
        rss_after - rss
    );
}

/// A task (on a worker of the multi-thread `rt`) that waits on `queue`
/// until `ready`; returns once it sleeps there.
fn sleeper(rt: &Runtime, queue: &Arc<WaitQueue>, ready: &Arc<AtomicBool>) {
    let (q, r) = (queue.clone(), ready.clone());
    drop(rt.spawn(async move {
        let _ = q.wait_event(|| r.load(SeqCst)).await;
        pending::<()>().await;
    }));
    // Bounded by the watchdog's budget, not by a count of yields: a busy
    // machine may take a while to run the worker.
    for _ in 0..30_000 {
        if !queue.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the sleeper never slept on its queue");
}

#[test]
fn dropped_runtimes_give_back_fds_and_memory() {
    support::watchdog(
        "dropped_runtimes_give_back_fds_and_memory",
        Duration::from_secs(240),
        || {
            // A drop that waited for its workers returns with their threads
            // gone (joined) and the runtime's fds closed: they lingered a
            // few hundred ms (a scale probe saw 3 fds and a thread).
            let (fds, live_threads) = (open_fds(), threads());
            for _ in 0..20 {
                let rt = multi_thread();
                rt.block_on(async { waitrt::spawn(async {}).await.unwrap() });
                drop(rt);
                assert_eq!(
                    threads(),
                    live_threads,
                    "a dropped runtime's worker threads live on"
                );
                assert!(open_fds() <= fds, "a dropped runtime's fds are still open");
            }
            // A task spawned from outside sits on the global queue.
            check("multi-thread, spawned from outside", || {
                let rt = multi_thread();
                drop(rt.spawn(pending::<()>()));
                drop(rt);
            });
            check("current-thread, spawned from outside", || {
                let rt = current_thread();
                drop(rt.spawn(pending::<()>()));
                drop(rt);
            });
            // Woken from this (plain) thread just before the drop.
            check("multi-thread, woken from outside", || {
                let rt = multi_thread();
                let (queue, ready) = (Arc::new(WaitQueue::new()), Arc::new(AtomicBool::new(false)));
                sleeper(&rt, &queue, &ready);
                ready.store(true, SeqCst);
                queue.wake_up_all();
                drop(rt);
            });
            // Woken by a waker that outlived the runtime.
            check("multi-thread, woken after the drop", || {
                let rt = multi_thread();
                let (queue, ready) = (Arc::new(WaitQueue::new()), Arc::new(AtomicBool::new(false)));
                sleeper(&rt, &queue, &ready);
                rt.shutdown_background();
                ready.store(true, SeqCst);
                queue.wake_up_all();
            });
            // Asleep on a timer.
            check("multi-thread, asleep on timers", || {
                let rt = multi_thread();
                rt.block_on(async {
                    for _ in 0..8 {
                        drop(waitrt::spawn(waitrt::time::sleep(Duration::from_secs(
                            3600,
                        ))));
                    }
                    waitrt::task::yield_now().await;
                });
                drop(rt);
            });
            // Workers with queues of yielding tasks, dropped without
            // waiting for them.
            check("multi-thread, busy workers, not waited for", || {
                let rt = multi_thread();
                rt.block_on(async {
                    for _ in 0..8 {
                        drop(waitrt::spawn(async {
                            loop {
                                waitrt::task::yield_now().await;
                            }
                        }));
                    }
                    waitrt::task::yield_now().await;
                });
                rt.shutdown_background();
            });
        },
    );
}
