//! The test toolkit's failure modes, limits, clock, replay and determinism.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use runtime::sync::WaitQueue;
use runtime::test_util::{advance, until_idle, Check, FailureKind, Policy};
use runtime::time::{now, sleep};

#[test]
fn task_panic_fails_at_once_naming_task_seed_and_time() {
    let failure = Check::new()
        .seeds(4)
        .try_run(|| async {
            let task = runtime::spawn(async {
                sleep(Duration::from_millis(7)).await;
                panic!("boom");
            });
            let _ = task.await;
            unreachable!("the run stops at the panic");
        })
        .unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Panic);
    let report = failure.report();
    assert!(report.contains("task 1"), "{report}");
    assert!(report.contains("seed: 0"), "{report}");
    assert!(report.contains("virtual time 7ms"), "{report}");
}

#[test]
fn hang_lists_every_task_and_what_it_sleeps_on() {
    let failure = Check::new()
        .try_run(|| async {
            let queue = Arc::new(WaitQueue::new());
            runtime::test_util::name_queue(&queue, "never_woken");
            let q = queue.clone();
            let sleeper = runtime::spawn(async move { q.wait_event(|| false).await });
            sleeper.await.unwrap().unwrap();
        })
        .unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Hang);
    let report = failure.report();
    assert!(report.contains("never_woken"), "{report}");
    assert!(report.contains("join queue of task 1"), "{report}");
    assert!(report.contains(file!()), "wait site: {report}");
}

#[test]
fn livelock_and_time_limit_are_reported_with_the_seed() {
    let spin = Check::new()
        .seeds(3)
        .max_polls(1_000)
        .try_run(|| async {
            loop {
                runtime::task::yield_now().await;
            }
        })
        .unwrap_err();
    assert_eq!(spin.kind(), FailureKind::Livelock);
    assert!(spin.report().contains("seed: 0"), "{spin}");
    let late = Check::new()
        .max_time(Duration::from_secs(60))
        .try_run(|| async { sleep(Duration::from_secs(61)).await })
        .unwrap_err();
    assert_eq!(late.kind(), FailureKind::TimeLimit);
    assert!(late.report().contains("seed: 0"), "{late}");
}

#[test]
fn clock_auto_advances_only_when_idle_with_nanosecond_now() {
    Check::new().seeds(16).run(|| async {
        let start = now();
        sleep(Duration::from_secs(600)).await; // instant in real time
        assert_eq!(now() - start, Duration::from_secs(600));
        let busy = Arc::new(AtomicBool::new(true));
        let b = busy.clone();
        let spinner = runtime::spawn(async move {
            for _ in 0..100 {
                runtime::task::yield_now().await;
            }
            b.store(false, SeqCst);
        });
        let t0 = now();
        sleep(Duration::from_nanos(1)).await;
        // The clock does not move while a task can run.
        assert!(!busy.load(SeqCst), "time moved while a task was runnable");
        assert!(now() - t0 >= Duration::from_nanos(1));
        spinner.await.unwrap();
    });
}

#[test]
fn advance_fires_timers_in_deadline_order_at_their_own_deadlines() {
    Check::new().seeds(32).run(|| async {
        let start = now();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for ms in [30u64, 10, 20, 10] {
            let order = order.clone();
            tasks.push(runtime::spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                order.lock().unwrap().push((ms, now() - start));
            }));
        }
        advance(Duration::from_millis(25)).await;
        {
            let seen = order.lock().unwrap();
            let when: Vec<u64> = seen.iter().map(|(ms, _)| *ms).collect();
            assert_eq!(
                when.len(),
                3,
                "timers up to 25 ms ran before advance returned"
            );
            assert!(when.windows(2).all(|w| w[0] <= w[1]), "{when:?}");
            assert!(seen
                .iter()
                .all(|(ms, at)| *at == Duration::from_millis(*ms)));
        }
        assert_eq!(now() - start, Duration::from_millis(25));
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn same_deadline_timers_run_in_different_orders() {
    let orders = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen = orders.clone();
    Check::new().seeds(64).quiet(true).run(move || {
        let seen = seen.clone();
        async move {
            let order = Arc::new(std::sync::Mutex::new(Vec::new()));
            let tasks: Vec<_> = (0..3)
                .map(|i| {
                    let order = order.clone();
                    runtime::spawn(async move {
                        sleep(Duration::from_millis(5)).await;
                        order.lock().unwrap().push(i);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let order = order.lock().unwrap().clone();
            seen.lock().unwrap().insert(order);
        }
    });
    assert!(
        orders.lock().unwrap().len() > 1,
        "same-deadline timers always fired in one order"
    );
}

#[test]
fn replay_and_seed_pinning_reproduce_the_failure() {
    // A bug that needs a particular order: the last of three tasks to run panics.
    let body = || async {
        let count = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let count = count.clone();
                runtime::spawn(async move {
                    if count.fetch_add(1, SeqCst) == 2 && i == 0 {
                        panic!("task 0 ran last");
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    };
    let failure = Check::new().seeds(64).try_run(body).unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Panic);
    assert!(!failure.schedule().is_empty());
    // The schedule alone reproduces it (what RUNTIME_TEST_REPLAY does).
    let schedule = failure.schedule().to_string();
    let replayed: runtime::test_util::Schedule = schedule.parse().unwrap();
    assert_eq!(&replayed, failure.schedule());
    assert!(failure
        .report()
        .contains(&format!("RUNTIME_TEST_REPLAY='{schedule}'")));
    // FIFO never runs task 0 last.
    Check::new().policy(Policy::Fifo).run(body);
}

#[test]
fn determinism_self_check_passes_and_catches_divergence() {
    Check::new().seeds(4).check_determinism(true).run(|| async {
        let q = Arc::new(WaitQueue::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (q2, f2) = (q.clone(), flag.clone());
        let t = runtime::spawn(async move { q2.wait_event(|| f2.load(SeqCst)).await });
        sleep(Duration::from_millis(1)).await;
        flag.store(true, SeqCst);
        q.wake_up();
        t.await.unwrap().unwrap();
    });
    // State kept between runs makes the second run differ.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let failure = Check::new()
        .check_determinism(true)
        .try_run(|| async {
            let extra = RUNS.fetch_add(1, SeqCst) % 2;
            for _ in 0..=extra {
                runtime::spawn(async {}).await.unwrap();
            }
        })
        .unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Nondeterminism, "{failure}");
    assert!(failure.report().contains("diverged at event"));
}

#[test]
fn dfs_counts_distinct_schedules_and_exhausts() {
    let stats = Check::new()
        .seeds(10_000)
        .policy(Policy::Dfs {
            preemption_bound: 2,
        })
        .run(|| async {
            let a = runtime::spawn(async { runtime::task::yield_now().await });
            let b = runtime::spawn(async {});
            a.await.unwrap();
            b.await.unwrap();
        });
    assert!(stats.exhausted(), "{stats}");
    assert_eq!(stats.runs(), stats.distinct_schedules(), "{stats}");
    assert!(stats.runs() > 3, "{stats}");
}

#[test]
fn until_idle_runs_everything_runnable_first() {
    Check::new().seeds(32).run(|| async {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let done = done.clone();
            runtime::spawn(async move {
                runtime::task::yield_now().await;
                done.fetch_add(1, SeqCst);
            });
        }
        until_idle().await;
        assert_eq!(done.load(SeqCst), 4);
    });
}

#[test]
fn blocking_jobs_hold_the_clock() {
    Check::new().seeds(4).run(|| async {
        let start = now();
        let job = runtime::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(20));
            7
        });
        let timer = runtime::spawn(async { sleep(Duration::from_secs(1)).await });
        assert_eq!(job.await.unwrap(), 7);
        // The clock did not jump to the 1 s timer while the job ran.
        assert_eq!(now() - start, Duration::ZERO);
        timer.await.unwrap();
    });
}

#[test]
fn signals_can_be_injected_into_interruptible_waits() {
    let interrupted = Arc::new(AtomicBool::new(false));
    let seen = interrupted.clone();
    Check::new()
        .seeds(256)
        .inject_signals(true)
        .spurious_wakeups(false)
        .quiet(true)
        .run(move || {
            let seen = seen.clone();
            async move {
                let q = Arc::new(WaitQueue::new());
                let flag = Arc::new(AtomicBool::new(false));
                let (q2, f2) = (q.clone(), flag.clone());
                let t = runtime::spawn(async move {
                    let signals = runtime::task::signals();
                    q2.wait_event_interruptible(&signals, || f2.load(SeqCst))
                        .await
                });
                runtime::task::yield_now().await;
                flag.store(true, SeqCst);
                q.wake_up();
                if t.await.unwrap().is_err() {
                    seen.store(true, SeqCst);
                }
            }
        });
    assert!(interrupted.load(SeqCst), "no seed delivered a signal");
}
