//! Scenarios written once and run twice: on real threads (the multi-thread
//! runtime, many iterations) and under the test toolkit (many schedules).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use waitrt::sync::WaitQueue;
use waitrt::test_util::{Check, Policy};

fn seeds() -> u64 {
    if cfg!(debug_assertions) {
        300
    } else {
        3_000
    }
}

/// Runs `scenario` on a 2-worker runtime `iters` times, then under the
/// toolkit with random and PCT schedules.
fn both<F, Fut>(name: &str, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let iters = if cfg!(debug_assertions) { 50 } else { 500 };
    for _ in 0..iters {
        let s = scenario.clone();
        rt.block_on(async move {
            waitrt::time::timeout(Duration::from_secs(30), waitrt::spawn(s()))
                .await
                .expect("real-thread run hung")
                .unwrap();
        });
    }
    drop(rt);
    for policy in [Policy::Random, Policy::Pct { depth: 3 }] {
        let stats = Check::new()
            .seeds(seeds())
            .policy(policy)
            .quiet(true)
            .run(scenario.clone());
        println!("{name}: {stats}");
    }
}

/// Takes one item as an exclusive waiter. No hand-written pass-on of
/// leftovers: waitq hands on a wake a success did not need (see
/// `toolkit_lost_wakeup::an_exclusive_success_never_absorbs_another_items_wake`).
async fn consume(queue: &WaitQueue, items: &AtomicUsize) {
    let take = || {
        items
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    };
    queue.wait_event_exclusive(take).await.unwrap();
}

/// Exclusive consumers, producers that add one item and wake one waiter:
/// every item is taken exactly once and nobody is left asleep.
async fn exclusive_hand_over() {
    let queue = Arc::new(WaitQueue::new());
    let items = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (queue, items, taken) = (queue.clone(), items.clone(), taken.clone());
            waitrt::spawn(async move {
                consume(&queue, &items).await;
                taken.fetch_add(1, SeqCst);
            })
        })
        .collect();
    let producers: Vec<_> = (0..3)
        .map(|_| {
            let (queue, items) = (queue.clone(), items.clone());
            waitrt::spawn(async move {
                items.fetch_add(1, SeqCst);
                queue.wake_up();
            })
        })
        .collect();
    for task in producers.into_iter().chain(consumers) {
        task.await.unwrap();
    }
    assert_eq!(taken.load(SeqCst), 3);
    assert_eq!(items.load(SeqCst), 0);
}

#[test]
fn exclusive_wakes_are_handed_over() {
    both("exclusive_hand_over", exclusive_hand_over);
}

/// `wake_up_all` is a broadcast: every waiter registered before it is woken.
async fn broadcast_reaches_everyone() {
    let queue = Arc::new(WaitQueue::new());
    let generation = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (queue, generation) = (queue.clone(), generation.clone());
            waitrt::spawn(async move {
                queue
                    .wait_event(|| generation.load(SeqCst) >= 1)
                    .await
                    .unwrap();
            })
        })
        .collect();
    waitrt::task::yield_now().await;
    generation.store(1, SeqCst);
    queue.wake_up_all();
    for w in waiters {
        w.await.unwrap();
    }
}

#[test]
fn broadcast_wakes_every_waiter() {
    both("broadcast", broadcast_reaches_everyone);
}

/// Cancelling exclusive waiters (timeouts, aborts) never strands an item.
async fn cancellation_hands_off() {
    let queue = Arc::new(WaitQueue::new());
    let items = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (queue, items) = (queue.clone(), items.clone());
        tasks.push(waitrt::spawn(async move {
            if i == 0 {
                // Gives up quickly: a wake it was picked for must pass on.
                let quick = Duration::from_micros(1);
                let _ = waitrt::time::timeout(quick, consume(&queue, &items)).await;
            } else {
                consume(&queue, &items).await;
            }
        }));
    }
    waitrt::task::yield_now().await;
    for _ in 0..2 {
        items.fetch_add(1, SeqCst);
        queue.wake_up();
    }
    let first = tasks.remove(0);
    let _ = first.await;
    // One more item: enough whether or not the quitter took one.
    items.fetch_add(1, SeqCst);
    queue.wake_up();
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn cancelled_exclusive_waiters_hand_off() {
    both("cancellation", cancellation_hands_off);
}

/// Join handles, timers and a task group all sleep on wait queues.
async fn join_and_timers() {
    let start = waitrt::time::now();
    let mut set = waitrt::task::JoinSet::new();
    for ms in [3u64, 1, 2] {
        set.spawn(async move {
            waitrt::time::sleep(Duration::from_millis(ms)).await;
            ms
        });
    }
    let mut total = 0;
    while let Some(res) = set.join_next().await {
        total += res.unwrap();
    }
    assert_eq!(total, 6);
    assert!(waitrt::time::now() - start >= Duration::from_millis(3));
}

#[test]
fn join_handles_and_timers() {
    both("join_and_timers", join_and_timers);
}
