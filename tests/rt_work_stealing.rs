//! Work stealing on multi-thread(2): tasks queued behind a worker that is
//! busy (here: blocked in a poll) reach the other worker even when that
//! one is parked. A worker checks for parked workers only when a push
//! makes its queue worth stealing from (`made_work_stealable` in
//! `scheduler/multi_thread.rs`); without that check the parked worker
//! sleeps on and the busy worker's deadline below trips.
//!
//! A task that yields is held back on its worker until the worker runs
//! dry, but never longer than one event interval: the last test keeps a
//! worker busy forever with two tasks that wake each other, and a task
//! that yields must still finish.
//!
//! A task woken behind queued tasks runs after them, not in the next-task
//! slot.
mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitrt::Builder;

/// How long the busy worker waits for the queued tasks to run elsewhere.
const DEADLINE: Duration = Duration::from_secs(10);

/// Blocks this thread until `counter` reaches `target`; false on timeout.
fn spin_until(counter: &AtomicUsize, target: usize) -> bool {
    let start = Instant::now();
    while counter.load(SeqCst) < target {
        if start.elapsed() > DEADLINE {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn tasks_queued_behind_a_blocked_worker_are_stolen_by_a_parked_one() {
    for round in 0..10 {
        let stolen = support::watchdog(
            "tasks_queued_behind_a_blocked_worker_are_stolen_by_a_parked_one",
            Duration::from_secs(60),
            move || {
                let rt = Builder::new_multi_thread()
                    .worker_threads(2)
                    .build()
                    .unwrap();
                let ran = Arc::new(AtomicUsize::new(0));
                let root_ran = ran.clone();
                rt.block_on(async move {
                    waitrt::spawn(async move {
                        // The other worker has nothing to do: let it park.
                        std::thread::sleep(Duration::from_millis(20));
                        // The last spawn stays in this worker's next-task
                        // slot; the two before it go to its queue.
                        for _ in 0..3 {
                            let ran = root_ran.clone();
                            drop(waitrt::spawn(async move {
                                ran.fetch_add(1, SeqCst);
                            }));
                        }
                        // This worker cannot run them while blocked here.
                        spin_until(&root_ran, 2)
                    })
                    .await
                    .unwrap()
                })
            },
        );
        assert!(
            stolen,
            "round {round}: the parked worker never ran the tasks queued behind the blocked one"
        );
    }
}

/// Two tasks that take turns waking each other (each wake puts the other
/// in the next-task slot) never let their worker run dry; a task beside
/// them that yields, by `yield_now` or by running out of cooperative
/// budget, still runs again within an event interval. Without the
/// interval's requeue of held-back yields it would wait for the pair
/// forever, and the watchdog would fire.
#[test]
fn a_yielding_task_runs_on_while_its_worker_never_runs_dry() {
    use std::sync::atomic::AtomicBool;
    use waitrt::sync::mpsc;

    support::watchdog(
        "a_yielding_task_runs_on_while_its_worker_never_runs_dry",
        Duration::from_secs(60),
        || {
            let rt = Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap();
            rt.block_on(async {
                waitrt::spawn(async {
                    let stop = Arc::new(AtomicBool::new(false));
                    let (ping_tx, mut ping_rx) = mpsc::channel::<()>(1);
                    let (pong_tx, mut pong_rx) = mpsc::channel::<()>(1);
                    let pinger = waitrt::spawn({
                        let stop = stop.clone();
                        async move {
                            let mut rounds = 0u64;
                            while !stop.load(SeqCst) {
                                ping_tx.send(()).await.unwrap();
                                pong_rx.recv().await.unwrap();
                                rounds += 1;
                            }
                            rounds
                        }
                    });
                    let ponger = waitrt::spawn(async move {
                        while ping_rx.recv().await.is_some() {
                            if pong_tx.send(()).await.is_err() {
                                break;
                            }
                        }
                    });
                    for _ in 0..50 {
                        waitrt::task::yield_now().await;
                    }
                    // 20 budgets' worth of units: the budget makes it yield.
                    for _ in 0..20 * 128 {
                        waitq::coop::consume_budget().await;
                    }
                    stop.store(true, SeqCst);
                    assert!(pinger.await.unwrap() > 0, "the pair never ran");
                    ponger.await.unwrap();
                })
                .await
                .unwrap();
            });
        },
    );
}

/// A task woken while its waker's worker has tasks queued runs behind
/// them (the next-task slot is for a worker with nothing else to run):
/// one task woken by many (an HTTP/2 connection by each of its streams'
/// tasks) then handles all their work in one poll. Here a sleeper woken
/// after two spawns runs after both; with the slot it ran first.
#[test]
fn a_task_woken_behind_queued_tasks_runs_after_them() {
    use std::sync::Mutex;
    use waitrt::sync::WaitQueue;

    for round in 0..20 {
        let order = support::watchdog(
            "a_task_woken_behind_queued_tasks_runs_after_them",
            Duration::from_secs(60),
            move || {
                let rt = Builder::new_multi_thread()
                    .worker_threads(1)
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let order = Arc::new(Mutex::new(Vec::new()));
                    let queue = Arc::new(WaitQueue::new());
                    let go = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let sleeper = waitrt::spawn({
                        let (order, queue, go) = (order.clone(), queue.clone(), go.clone());
                        async move {
                            queue.wait_event(|| go.load(SeqCst)).await.unwrap();
                            order.lock().unwrap().push("woken");
                        }
                    });
                    // Wait until it sleeps.
                    while queue.is_empty() {
                        waitrt::task::yield_now().await;
                    }
                    let order2 = order.clone();
                    waitrt::spawn(async move {
                        let spawned: Vec<_> = ["a", "b"]
                            .into_iter()
                            .map(|name| {
                                let order = order2.clone();
                                waitrt::spawn(async move { order.lock().unwrap().push(name) })
                            })
                            .collect();
                        go.store(true, SeqCst);
                        queue.wake_up_all();
                        for handle in spawned {
                            handle.await.unwrap();
                        }
                    })
                    .await
                    .unwrap();
                    sleeper.await.unwrap();
                    let order = order.lock().unwrap().clone();
                    order
                })
            },
        );
        assert_eq!(order, ["a", "b", "woken"], "round {round}");
    }
}
