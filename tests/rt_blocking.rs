//! The blocking pool behind `waitrt::spawn_blocking`: results and panics,
//! the `max_blocking_threads` cap (at most N jobs at once, the rest
//! queued and all finishing), idle threads exiting after
//! `thread_keep_alive`, and shutdown (a spawn after it began, and a queued
//! job that never started, both resolve to a shutdown `JoinError`; no
//! hang, no silent drop). Every scenario runs on current-thread and
//! multi-thread(2) under a watchdog.
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{flavours, plain, Counter, Gate};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn spawn_blocking_returns_the_value() {
    support::watchdog("spawn_blocking_returns_the_value", LIMIT, || {
        for (name, rt) in flavours(plain) {
            // From a task, from block_on, and from outside.
            let out = rt.block_on(async {
                let from_task =
                    waitrt::spawn(async { waitrt::spawn_blocking(|| 6 * 7).await.unwrap() });
                let direct = waitrt::spawn_blocking(|| String::from("direct"))
                    .await
                    .unwrap();
                (from_task.await.unwrap(), direct)
            });
            assert_eq!(out, (42, String::from("direct")), "{name}");
            let handle = rt.spawn_blocking(|| std::thread::current().name().map(str::to_owned));
            let thread_name = rt.block_on(handle).unwrap().unwrap_or_default();
            assert!(
                thread_name.contains("blocking"),
                "{name}: ran on {thread_name:?}"
            );

            // A panicking job becomes a panic JoinError; the pool keeps working.
            let err = rt.block_on(rt.spawn_blocking(|| -> u8 { panic!("blocking boom") }));
            let err = err.unwrap_err();
            assert!(err.is_panic(), "{name}: {err:?}");
            assert!(err.to_string().contains("blocking boom"), "{name}: {err}");
            assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)).unwrap(), 1, "{name}");

            // Many at once.
            let handles: Vec<_> = (0..64u64).map(|i| rt.spawn_blocking(move || i)).collect();
            let sum = rt.block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            });
            assert_eq!(sum, 2016, "{name}");
        }
    });
}

/// The spins around a hand-off (`Builder::blocking_spin`) lose no wake:
/// results that come within the spin, at its end and long after it (when
/// the spinner sleeps), awaited from `block_on` and from a task, with jobs
/// back to back (the pool thread's spin for its next job) and spaced out
/// (it sleeps first). Each round is bounded by the watchdog: a wake the
/// spin swallowed would leave its waiter asleep.
#[test]
fn results_around_the_blocking_spin_are_never_lost() {
    fn spin_50us(b: &mut waitrt::Builder) -> &mut waitrt::Builder {
        b.blocking_spin(Duration::from_micros(50))
    }
    fn no_spin(b: &mut waitrt::Builder) -> &mut waitrt::Builder {
        b.blocking_spin(Duration::ZERO)
    }
    support::watchdog("results_around_the_blocking_spin", LIMIT, || {
        let job_lengths_us = [0u64, 10, 45, 50, 55, 200, 2_000];
        type Configure = fn(&mut waitrt::Builder) -> &mut waitrt::Builder;
        for configure in [spin_50us as Configure, no_spin] {
            for (name, rt) in flavours(configure) {
                for &us in &job_lengths_us {
                    let job = move || {
                        let start = Instant::now();
                        while start.elapsed() < Duration::from_micros(us) {
                            std::hint::spin_loop();
                        }
                        us
                    };
                    let rounds = if us >= 2_000 { 10 } else { 200 };
                    // From block_on.
                    let sum = rt.block_on(async move {
                        let mut sum = 0;
                        for _ in 0..rounds {
                            sum += waitrt::spawn_blocking(job).await.unwrap();
                        }
                        sum
                    });
                    assert_eq!(sum, us * rounds, "{name}, {us} µs jobs from block_on");
                    // From a task, with a pause between jobs now and then
                    // (the pool thread's spin ends and it sleeps).
                    let sum = rt.block_on(async move {
                        waitrt::spawn(async move {
                            let mut sum = 0;
                            for round in 0..rounds {
                                sum += waitrt::spawn_blocking(job).await.unwrap();
                                if round % 16 == 0 {
                                    waitrt::time::sleep(Duration::from_micros(200)).await;
                                }
                            }
                            sum
                        })
                        .await
                        .unwrap()
                    });
                    assert_eq!(sum, us * rounds, "{name}, {us} µs jobs from a task");
                }
            }
        }
    });
}

#[test]
fn max_blocking_threads_caps_concurrency() {
    support::watchdog("max_blocking_threads_caps_concurrency", LIMIT, || {
        for (name, rt) in flavours(|b| b.max_blocking_threads(2)) {
            let running = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let started = Counter::new();
            let gate = Gate::new();
            let handles: Vec<_> = (0..6usize)
                .map(|i| {
                    let (running, max, started, gate) =
                        (running.clone(), max.clone(), started.clone(), gate.clone());
                    rt.spawn_blocking(move || {
                        let now = running.fetch_add(1, SeqCst) + 1;
                        max.fetch_max(now, SeqCst);
                        started.inc();
                        gate.blocking_wait();
                        // Stay a little so the next jobs overlap with this one.
                        std::thread::sleep(Duration::from_millis(2));
                        running.fetch_sub(1, SeqCst);
                        i
                    })
                })
                .collect();
            started.blocking_wait_for(2);
            let m = rt.metrics();
            assert_eq!(m.blocking_threads(), 2, "{name}");
            assert_eq!(m.blocking_queue_depth(), 4, "{name}");
            // Whatever time passes, no third job starts while two block.
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(started.get(), 2, "{name}: a third job started past the cap");
            gate.open();
            let outs = rt.block_on(async {
                let mut outs = Vec::new();
                for h in handles {
                    outs.push(h.await.unwrap());
                }
                outs
            });
            assert_eq!(outs, (0..6).collect::<Vec<_>>(), "{name}");
            assert_eq!(started.get(), 6, "{name}");
            assert_eq!(max.load(SeqCst), 2, "{name}: more than 2 jobs ran at once");
            assert!(rt.metrics().blocking_threads() <= 2, "{name}");
        }
    });
}

/// Polls `cond` (sleeping a little between tries) until it holds or
/// `limit` passes; returns whether it held. A bounded wait, not a timing
/// assertion: `limit` is far above the expected time.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A job wakes the thread that went idle last: under a trickle of jobs,
/// one at a time, the threads an earlier burst started are never chosen,
/// and exit after their keep-alive (waking the one that went idle first
/// would pass the jobs round all of them and keep every one alive).
#[test]
fn threads_a_trickle_of_jobs_does_not_need_exit_after_keep_alive() {
    support::watchdog("threads a trickle of jobs does not need", LIMIT, || {
        for (name, rt) in flavours(|b| b.thread_keep_alive(Duration::from_millis(300))) {
            start_blocking_threads(&rt, 4, name);
            // One job at a time, every few milliseconds (far more often
            // than the keep-alive), until the idle threads have gone.
            let trickle = || {
                rt.block_on(rt.spawn_blocking(|| ())).unwrap();
                rt.metrics().blocking_threads() == 1
            };
            assert!(
                eventually(Duration::from_secs(30), trickle),
                "{name}: a trickle of one job at a time kept {} threads alive",
                rt.metrics().blocking_threads()
            );
        }
    });
}

#[test]
fn idle_blocking_threads_exit_after_keep_alive() {
    support::watchdog("idle_blocking_threads_exit_after_keep_alive", LIMIT, || {
        for (name, rt) in flavours(|b| b.thread_keep_alive(Duration::from_millis(50))) {
            start_blocking_threads(&rt, 3, name);
            assert!(
                eventually(Duration::from_secs(30), || rt.metrics().blocking_threads()
                    == 0),
                "{name}: idle blocking threads never exited ({} alive)",
                rt.metrics().blocking_threads()
            );
            // The pool starts a thread again when needed.
            assert_eq!(rt.block_on(rt.spawn_blocking(|| 5)).unwrap(), 5, "{name}");
            assert!(
                eventually(Duration::from_secs(30), || rt.metrics().blocking_threads()
                    == 0),
                "{name}: the restarted thread never exited"
            );
        }
    });
}

#[test]
fn spawn_blocking_after_shutdown_is_a_shutdown_error() {
    support::watchdog(
        "spawn_blocking_after_shutdown_is_a_shutdown_error",
        LIMIT,
        || {
            for (name, rt) in flavours(plain) {
                let handle = rt.handle().clone();
                assert!(rt.shutdown_timeout(Duration::from_secs(10)), "{name}");
                let ran = Arc::new(AtomicBool::new(false));
                let job = handle.spawn_blocking({
                    let ran = ran.clone();
                    move || ran.store(true, SeqCst)
                });
                assert!(
                    job.is_finished(),
                    "{name}: a refused job must resolve at once"
                );
                let err = futures::executor::block_on(job).unwrap_err();
                assert!(err.is_shutdown() && err.is_cancelled(), "{name}: {err:?}");
                // Through an entered handle, on another thread.
                let handle2 = handle.clone();
                let err = std::thread::spawn(move || {
                    let _enter = handle2.enter();
                    futures::executor::block_on(waitrt::spawn_blocking(|| 1)).unwrap_err()
                })
                .join()
                .unwrap();
                assert!(err.is_shutdown(), "{name}: {err:?}");
                assert!(
                    !ran.load(SeqCst),
                    "{name}: a job spawned after shutdown ran"
                );
                assert_eq!(handle.metrics().blocking_threads(), 0, "{name}");
            }
        },
    );
}

#[test]
fn queued_blocking_job_gets_a_shutdown_error() {
    support::watchdog("queued_blocking_job_gets_a_shutdown_error", LIMIT, || {
        for (name, rt) in flavours(|b| b.max_blocking_threads(1)) {
            let started = Counter::new();
            let gate = Gate::new();
            let running = rt.spawn_blocking({
                let (started, gate) = (started.clone(), gate.clone());
                move || {
                    started.inc();
                    gate.blocking_wait();
                    "first"
                }
            });
            let ran = Arc::new(AtomicBool::new(false));
            let queued = rt.spawn_blocking({
                let ran = ran.clone();
                move || ran.store(true, SeqCst)
            });
            started.blocking_wait_for(1);
            assert_eq!(rt.metrics().blocking_queue_depth(), 1, "{name}");
            // The running job blocks past the deadline: shutdown reports it.
            let handle = rt.handle().clone();
            assert!(!rt.shutdown_timeout(Duration::from_millis(50)), "{name}");
            let err = futures::executor::block_on(queued).unwrap_err();
            assert!(err.is_shutdown(), "{name}: {err:?}");
            assert!(
                !ran.load(SeqCst),
                "{name}: the queued job ran after shutdown"
            );
            assert_eq!(handle.metrics().blocking_queue_depth(), 0, "{name}");
            // Let the stuck job end; its thread then exits on its own.
            gate.open();
            // Its handle ends (with its output or a shutdown error), never hangs.
            match futures::executor::block_on(running) {
                Ok(out) => assert_eq!(out, "first", "{name}"),
                Err(err) => assert!(err.is_shutdown(), "{name}: {err:?}"),
            }
            assert!(
                eventually(Duration::from_secs(30), || handle
                    .metrics()
                    .blocking_threads()
                    == 0),
                "{name}: the blocking thread did not exit after its job"
            );
            assert!(!ran.load(SeqCst), "{name}");
        }
    });
}

/// Runs `n` blocking jobs at once, so that the pool has `n` threads, and
/// lets them finish: the threads then sit idle.
fn start_blocking_threads(rt: &waitrt::Runtime, n: usize, name: &str) {
    let started = Counter::new();
    let gate = Gate::new();
    let jobs: Vec<_> = (0..n)
        .map(|_| {
            let (started, gate) = (started.clone(), gate.clone());
            rt.spawn_blocking(move || {
                started.inc();
                gate.blocking_wait();
            })
        })
        .collect();
    started.blocking_wait_for(n);
    assert_eq!(rt.metrics().blocking_threads(), n, "{name}");
    gate.open();
    for job in jobs {
        rt.block_on(job).unwrap();
    }
}
