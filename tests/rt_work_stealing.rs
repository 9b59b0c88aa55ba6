//! Work stealing on multi-thread(2): tasks queued behind a worker that is
//! busy (here: blocked in a poll) reach the other worker even when that
//! one is parked. A worker checks for parked workers only when a push
//! makes its queue worth stealing from (`made_work_stealable` in
//! `scheduler/multi_thread.rs`); without that check the parked worker
//! sleeps on and the busy worker's deadline below trips.
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
