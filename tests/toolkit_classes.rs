//! The bug classes the toolkit once missed (issue 23), each as a buggy and a
//! fixed program: every buggy one is found within 1,000 seeds of the
//! default policy with a replay of at most 10 decisions; every fixed one
//! passes 2,000 seeds under Random and under PCT (fewer in debug builds).
//!
//! 1. A waker that wakes and only then changes the state (the point after
//!    a wake that woke someone).
//! 2. Two async locks taken in opposite orders (the point at every
//!    acquisition, and the deadlock report).
//! 3. Two plain reads racing two writes (toolkit-aware atomics and
//!    `switch_point`).
//! 4. Weak memory: a store left in its task's store buffer while another
//!    task reads the old value (`Check::weak_memory`, on by default; x86's
//!    TSO). `tests/stress_weak_memory.rs` runs the same shapes on real
//!    threads.
//! 5. A waker that spins on `yield_now` before it wakes (PCT no longer
//!    starves a task that yields).

use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release, SeqCst},
};
use std::sync::Arc;

use waitrt::sync::atomic;
use waitrt::sync::hook::PointKind;
use waitrt::sync::{Mutex, RwLock, TaskState, WaitEntry, WaitQueue};
use waitrt::test_util::{name_queue, Check, Failure, FailureKind, Policy};

/// Seeds for a passing check: fewer in debug builds.
fn many() -> u64 {
    if cfg!(debug_assertions) {
        300
    } else {
        2_000
    }
}

/// The budget a buggy program must be found within.
const FIND_WITHIN: u64 = 1_000;

/// Runs `body` under the default policy until it fails (at most
/// `FIND_WITHIN` seeds) and checks the failure's kind and replay length.
fn find<Fut: std::future::Future<Output = ()> + 'static>(
    what: &str,
    kind: FailureKind,
    body: impl Fn() -> Fut,
) -> Failure {
    find_with(Check::new(), what, kind, body)
}

fn find_with<Fut: std::future::Future<Output = ()> + 'static>(
    check: Check,
    what: &str,
    kind: FailureKind,
    body: impl Fn() -> Fut,
) -> Failure {
    let failure = check
        .seeds(FIND_WITHIN)
        .quiet(true)
        .try_run(body)
        .expect_err(what);
    println!("{what}:\n{failure}\n");
    assert_eq!(failure.kind(), kind, "{what}: {failure}");
    assert!(
        failure.schedule().len() <= 10,
        "{what}: replay too long: {}",
        failure.schedule()
    );
    assert!(failure.report().contains("replay: RUNTIME_TEST_REPLAY="));
    assert!(failure.report().contains("coverage: "), "{failure}");
    failure
}

/// Passes `many()` seeds under Random and under PCT (depth 2 and 3).
fn passes<Fut: std::future::Future<Output = ()> + 'static>(body: impl Fn() -> Fut) {
    for policy in [
        Policy::Random,
        Policy::Pct { depth: 2 },
        Policy::Pct { depth: 3 },
    ] {
        let stats = Check::new()
            .seeds(many())
            .policy(policy)
            .coverage(true)
            .run(&body);
        assert_eq!(stats.runs(), many());
    }
}

// ===== class 1: wake, then set =====

async fn wake_then_set(correct: bool) {
    let queue = Arc::new(WaitQueue::new());
    name_queue(&queue, "ready_wq");
    let ready = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move { queue.wait_event(|| ready.load(SeqCst)).await.unwrap() })
    };
    let waker = waitrt::spawn(async move {
        if correct {
            ready.store(true, SeqCst);
            queue.wake_up();
        } else {
            queue.wake_up(); // WRONG: the woken waiter may re-check before the store
            ready.store(true, SeqCst);
        }
    });
    waker.await.unwrap();
    waiter.await.unwrap();
}

#[test]
fn class1_waker_that_wakes_before_it_sets_is_found() {
    let failure = find("wake then set", FailureKind::LostWakeup, || {
        wake_then_set(false)
    });
    assert!(failure.report().contains("ready_wq"), "{failure}");
    // The wait is named as the production dump names it (one formatter).
    assert!(
        failure
            .report()
            .contains("sleeps [wait_event on `ready_wq` ("),
        "{failure}"
    );
}

#[test]
fn class1_waker_that_sets_before_it_wakes_passes() {
    passes(|| wake_then_set(true));
}

#[test]
fn class1_the_point_after_a_wake_is_covered() {
    let stats = Check::new()
        .seeds(200)
        .quiet(true)
        .run(|| wake_then_set(true));
    let (hits, sites, led) = stats.points(PointKind::AfterWake);
    // Where the waiter slept before the wake (not where the waker ran first).
    assert!(hits >= 20, "{}", stats.coverage_line());
    assert_eq!(sites, 1);
    assert_eq!(led, 1, "{}", stats.coverage_line());
}

// ===== class 2: lock order =====

async fn two_locks(correct: bool) {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let first = {
        let (a, b) = (a.clone(), b.clone());
        waitrt::spawn(async move {
            let mut ga = a.lock().await;
            let mut gb = b.lock().await;
            *ga += 1;
            *gb += 1;
        })
    };
    let second = waitrt::spawn(async move {
        if correct {
            let mut ga = a.lock().await;
            let mut gb = b.lock().await;
            *ga += 1;
            *gb += 1;
        } else {
            let mut gb = b.lock().await; // WRONG: the opposite order
            let mut ga = a.lock().await;
            *ga += 1;
            *gb += 1;
        }
    });
    first.await.unwrap();
    second.await.unwrap();
}

#[test]
fn class2_locks_in_opposite_orders_deadlock_and_the_report_names_the_cycle() {
    let failure = find("opposite lock order", FailureKind::Deadlock, || {
        two_locks(false)
    });
    let report = failure.report();
    assert!(
        report.contains("deadlock: 2 tasks wait in a cycle"),
        "{report}"
    );
    assert_eq!(report.matches("holds `sync::Mutex`").count(), 2, "{report}");
    assert_eq!(
        report.matches("waits for `sync::Mutex`").count(),
        2,
        "{report}"
    );
    assert!(report.contains("held by task 1") && report.contains("held by task 2"));
    assert!(
        report.contains("two_locks"),
        "the tasks are named: {report}"
    );
    // Each wait at the user's `.lock()`, not inside the runtime (it said
    // `runtime/src/sync/semaphore/acquire.rs:94`: an independent probe).
    assert!(!report.contains("acquire.rs"), "{report}");
    assert_eq!(
        report.matches("waits for `sync::Mutex` (queue@").count(),
        2,
        "{report}"
    );
    assert!(
        report.contains("waits at tests/toolkit_classes.rs:"),
        "{report}"
    );
}

#[test]
fn class2_locks_in_the_same_order_pass() {
    passes(|| two_locks(true));
}

#[test]
fn class2_a_writer_and_a_mutex_in_opposite_orders_deadlock() {
    let failure = find("rwlock writer vs mutex", FailureKind::Deadlock, || async {
        let lock = Arc::new(RwLock::new(0u32));
        let mutex = Arc::new(Mutex::new(0u32));
        let first = {
            let (lock, mutex) = (lock.clone(), mutex.clone());
            waitrt::spawn(async move {
                let _w = lock.write().await;
                let _m = mutex.lock().await;
            })
        };
        let second = waitrt::spawn(async move {
            let _m = mutex.lock().await;
            let _w = lock.write().await;
        });
        first.await.unwrap();
        second.await.unwrap();
    });
    assert!(failure.report().contains("sync::RwLock"), "{failure}");
}

/// The test body itself holds one of the two locks: the cycle goes
/// through it, and the report names it (a lock taken outside any task
/// once had no holder, and this showed as a plain hang).
#[test]
fn class2_a_cycle_through_the_test_body_is_a_deadlock_naming_it() {
    let failure = find(
        "body and task in opposite orders",
        FailureKind::Deadlock,
        || async {
            let a = Arc::new(Mutex::new(0u32));
            let b = Arc::new(Mutex::new(0u32));
            let task = {
                let (a, b) = (a.clone(), b.clone());
                waitrt::spawn(async move {
                    let _b = b.lock().await;
                    let _a = a.lock().await;
                })
            };
            {
                let _a = a.lock().await;
                let _b = b.lock().await;
            }
            task.await.unwrap();
        },
    );
    let report = failure.report();
    assert!(
        report.contains("deadlock: 2 tasks wait in a cycle"),
        "{report}"
    );
    assert!(
        report.contains("the test body\n    holds `sync::Mutex`"),
        "{report}"
    );
    assert!(report.contains("held by the test body"), "{report}");
}

/// Two tasks, two `RwLock`s: each read-locks one (or, with `b_writes`,
/// the second write-locks its first) and then waits to write-lock the
/// other. Each waits for a lock the other holds; only a writer was
/// recorded as a holder, so a cycle through a read lock showed as a
/// plain hang.
async fn read_write_cycle(b_writes: bool) {
    let l1 = Arc::new(RwLock::new(0u32));
    let l2 = Arc::new(RwLock::new(0u32));
    let a = {
        let (l1, l2) = (l1.clone(), l2.clone());
        waitrt::spawn(async move {
            let _r = l1.read().await;
            *l2.write().await += 1;
        })
    };
    let b = waitrt::spawn(async move {
        if b_writes {
            let _w = l2.write().await;
            *l1.write().await += 1;
        } else {
            let _r = l2.read().await;
            *l1.write().await += 1;
        }
    });
    a.await.unwrap();
    b.await.unwrap();
}

/// The queue ids (`queue@0x..`) of the lines of `report` that start with
/// `prefix` (after indentation), in order.
fn queues_after<'r>(report: &'r str, prefix: &str) -> Vec<&'r str> {
    report
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(prefix))
        .filter_map(|rest| rest.split("(queue@").nth(1))
        .filter_map(|rest| rest.split(')').next())
        .collect()
}

#[test]
fn class2_a_cycle_through_read_locks_is_a_deadlock_naming_the_readers() {
    for b_writes in [false, true] {
        let what = format!("read/write cycle (second task writes: {b_writes})");
        let failure = find(&what, FailureKind::Deadlock, || read_write_cycle(b_writes));
        let report = failure.report();
        assert!(
            report.contains("deadlock: 2 tasks wait in a cycle"),
            "{report}"
        );
        // Both tasks, each named as the holder the other waits for.
        assert!(
            report.contains("held by task 1") && report.contains("held by task 2"),
            "{report}"
        );
        let cycle = report.split("live tasks:").next().unwrap();
        assert_eq!(
            cycle.matches("read_write_cycle").count(),
            2,
            "the tasks are named: {report}"
        );
        // Both locks: each task waits for one, and holds the other.
        let waits = queues_after(report, "waits for `sync::RwLock`");
        let holds = queues_after(report, "holds `sync::RwLock`");
        assert_eq!(waits.len(), 2, "{report}");
        assert_ne!(waits[0], waits[1], "{report}");
        assert_eq!(holds, [waits[1], waits[0]], "{report}");
        let reads = if b_writes { 1 } else { 2 };
        assert_eq!(
            report.matches(") for reading").count(),
            reads,
            "held for reading: {report}"
        );
        assert_eq!(
            report.matches("(reading)").count(),
            reads,
            "held by a reader: {report}"
        );
    }
}

/// `RwLockWriteGuard::downgrade` turns the writer into a reader: it still
/// holds the lock, now for reading (the writer's record was cleared and
/// nothing took its place: a cycle through a downgraded lock was a hang).
#[test]
fn class2_a_downgraded_writer_still_holds_the_lock_as_a_reader() {
    let failure = find("downgrade cycle", FailureKind::Deadlock, || async {
        let l1 = Arc::new(RwLock::new(0u32));
        let l2 = Arc::new(Mutex::new(0u32));
        let a = {
            let (l1, l2) = (l1.clone(), l2.clone());
            waitrt::spawn(async move {
                let _r = l1.write().await.downgrade();
                *l2.lock().await += 1;
            })
        };
        let b = waitrt::spawn(async move {
            let _m = l2.lock().await;
            *l1.write().await += 1;
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let report = failure.report();
    assert!(
        report.contains("deadlock: 2 tasks wait in a cycle"),
        "{report}"
    );
    assert_eq!(
        report.matches("holds `sync::RwLock` (queue@").count(),
        1,
        "{report}"
    );
    assert!(report.contains(") for reading"), "{report}");
    assert_eq!(report.matches("(reading)").count(), 1, "{report}");
}

/// Six readers hold a lock and sleep on a gate nobody opens; a writer
/// waits for the lock. A hang, not a deadlock (no cycle), but the dump
/// names the readers as the holders the writer waits for: the first
/// four, and a count of the rest.
#[test]
fn class2_a_writer_behind_many_readers_names_them_in_the_hang_report() {
    const READERS: usize = 6;
    let failure = Check::new()
        .seeds(20)
        .quiet(true)
        .try_run(|| async {
            let lock = Arc::new(RwLock::new(0u32));
            let gate = Arc::new(WaitQueue::new());
            name_queue(&gate, "gate");
            let reading = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for _ in 0..READERS {
                let (lock, gate, reading) = (lock.clone(), gate.clone(), reading.clone());
                waitrt::spawn(async move {
                    let _r = lock.read().await;
                    reading.fetch_add(1, SeqCst);
                    gate.wake_up_all();
                    gate.wait_event(|| false).await.unwrap();
                });
            }
            let ready = gate.wait_event(|| reading.load(SeqCst) == READERS);
            ready.await.unwrap();
            *lock.write().await += 1;
        })
        .expect_err("the readers never leave");
    let report = failure.report();
    assert_eq!(failure.kind(), FailureKind::Hang, "{report}");
    assert!(report.contains("held for reading by 6 tasks:"), "{report}");
    let listed = report
        .lines()
        .skip_while(|l| !l.contains("held for reading by 6 tasks:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("task "))
        .count();
    assert_eq!(listed, 4, "the first four: {report}");
    assert!(report.contains("and 2 more readers"), "{report}");
}

/// Six readers hold a lock; the last of them waits for a mutex the test
/// body holds while the body waits to write the lock. The cycle goes
/// through one reader of six: the search follows every reader (it
/// followed one holder per lock), and the report names that reader and
/// counts the others.
#[test]
fn class2_a_cycle_through_one_of_many_readers_is_a_deadlock() {
    const READERS: usize = 6;
    let failure = Check::new()
        .seeds(20)
        .quiet(true)
        .try_run(|| async {
            let lock = Arc::new(RwLock::new(0u32));
            let mutex = Arc::new(Mutex::new(0u32));
            let gate = Arc::new(WaitQueue::new());
            let reading = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let _m = mutex.lock().await;
            for i in 0..READERS {
                let (lock, mutex) = (lock.clone(), mutex.clone());
                let (gate, reading) = (gate.clone(), reading.clone());
                waitrt::spawn(async move {
                    let _r = lock.read().await;
                    reading.fetch_add(1, SeqCst);
                    gate.wake_up_all();
                    if i == READERS - 1 {
                        *mutex.lock().await += 1;
                    } else {
                        gate.wait_event(|| false).await.unwrap();
                    }
                });
            }
            let ready = gate.wait_event(|| reading.load(SeqCst) == READERS);
            ready.await.unwrap();
            *lock.write().await += 1;
        })
        .expect_err("a deadlock in every schedule");
    let report = failure.report();
    assert_eq!(failure.kind(), FailureKind::Deadlock, "{report}");
    assert!(
        report.contains("deadlock: 2 tasks wait in a cycle"),
        "{report}"
    );
    assert!(
        report.contains(
            "held by task 6 (reading; 5 other reader(s): task 1, task 2, task 3, task 4 \
             and 1 more)"
        ),
        "{report}"
    );
    assert!(
        report.contains("task 6 (id ") && report.contains("held by the test body"),
        "{report}"
    );
}

// ===== class 3: two reads racing two writes =====

/// A receiver that asks "an item?" and "closed?" with two reads; a sender
/// that pushes one item and closes (two writes).
async fn empty_then_closed(correct: bool) {
    let queue = Arc::new(WaitQueue::new());
    let items = Arc::new(atomic::AtomicUsize::new(0));
    let closed = Arc::new(atomic::AtomicBool::new(false));
    let sender = {
        let (queue, items, closed) = (queue.clone(), items.clone(), closed.clone());
        waitrt::spawn(async move {
            items.fetch_add(1, SeqCst);
            closed.store(true, SeqCst);
            queue.wake_up_all();
        })
    };
    let mut got = 0;
    for _ in 0..4 {
        if correct {
            // Closed first: once closed is seen, every item is visible.
            let was_closed = closed.load(SeqCst);
            if items.load(SeqCst) > 0 {
                got += 1;
                break;
            }
            if was_closed {
                break;
            }
        } else {
            if items.load(SeqCst) > 0 {
                got += 1;
                break;
            }
            // WRONG: the item and the close can both land between the reads.
            if closed.load(SeqCst) {
                break;
            }
        }
        let ready = || items.as_std().load(SeqCst) > 0 || closed.as_std().load(SeqCst);
        queue.wait_event(ready).await.unwrap();
    }
    sender.await.unwrap();
    assert_eq!(got, 1, "the receiver saw `closed` and left the item behind");
}

#[test]
fn class3_two_reads_racing_two_writes_are_found() {
    let failure = find("empty then closed", FailureKind::Panic, || {
        empty_then_closed(false)
    });
    assert!(
        failure.report().contains("left the item behind"),
        "{failure}"
    );
}

#[test]
fn class3_reading_closed_first_passes() {
    passes(|| empty_then_closed(true));
}

#[test]
fn class3_switch_point_alone_finds_the_race_on_std_atomics() {
    find("switch_point", FailureKind::Panic, || async {
        let items = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let sender = {
            let (items, closed) = (items.clone(), closed.clone());
            waitrt::spawn(async move {
                items.fetch_add(1, SeqCst);
                closed.store(true, SeqCst);
            })
        };
        let empty = items.load(SeqCst) == 0;
        waitrt::test_util::switch_point();
        if empty && closed.load(SeqCst) {
            assert_eq!(items.load(SeqCst), 0, "left the item behind");
        }
        sender.await.unwrap();
    });
}

#[test]
fn class3_without_the_points_the_race_is_not_found() {
    // The same program on std atomics and no switch_point: nothing to find
    // (the reason this class was missed). A control for the tests above.
    Check::new().seeds(many()).quiet(true).run(|| async {
        let items = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let sender = {
            let (items, closed) = (items.clone(), closed.clone());
            waitrt::spawn(async move {
                items.fetch_add(1, SeqCst);
                closed.store(true, SeqCst);
            })
        };
        let empty = items.load(SeqCst) == 0;
        if empty && closed.load(SeqCst) {
            assert_eq!(items.load(SeqCst), 0, "left the item behind");
        }
        sender.await.unwrap();
    });
}

// ===== class 4: weak memory =====

/// How the waker of `store_then_peek` orders its store before its peek.
#[derive(Clone, Copy)]
enum Peek {
    /// WRONG: `store(Release)`, then the Relaxed `waitqueue_active()`.
    Unfenced,
    /// `store(Release)`, `fence(SeqCst)`, then `waitqueue_active()`.
    Fenced,
    /// `store(Release)`, then `wq_has_sleeper()` (it takes the queue lock).
    HasSleeper,
}

/// A waiter on `ready`, and a waker that publishes `ready` and wakes only
/// if it sees someone waiting (the kernel's `waitqueue_active()` idiom).
async fn store_then_peek(peek: Peek) {
    let queue = Arc::new(WaitQueue::new());
    name_queue(&queue, "ready_wq");
    let ready = Arc::new(atomic::AtomicBool::new(false));
    let waiter = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move { queue.wait_event(|| ready.load(Acquire)).await.unwrap() })
    };
    let waker = waitrt::spawn(async move {
        ready.store(true, Release);
        let someone = match peek {
            Peek::Unfenced => queue.waitqueue_active(),
            Peek::Fenced => {
                atomic::fence(SeqCst);
                queue.waitqueue_active()
            }
            Peek::HasSleeper => queue.wq_has_sleeper(),
        };
        if someone {
            queue.wake_up();
        }
    });
    waker.await.unwrap();
    waiter.await.unwrap();
}

#[test]
fn class4_a_store_then_an_unfenced_peek_is_found() {
    let failure = find("store, unfenced peek", FailureKind::LostWakeup, || {
        store_then_peek(Peek::Unfenced)
    });
    assert!(failure.report().contains("ready_wq"), "{failure}");
}

#[test]
fn class4_a_fence_before_the_peek_passes() {
    passes(|| store_then_peek(Peek::Fenced));
}

#[test]
fn class4_wq_has_sleeper_passes() {
    passes(|| store_then_peek(Peek::HasSleeper));
}

/// The same check with weak memory off: sequentially consistent, so the
/// unfenced peek is never caught (a control for the model).
#[test]
fn class4_without_weak_memory_the_unfenced_peek_is_not_found() {
    let stats = Check::new()
        .weak_memory(false)
        .seeds(FIND_WITHIN)
        .quiet(true)
        .run(|| store_then_peek(Peek::Unfenced));
    assert_eq!(stats.runs(), FIND_WITHIN);
}

/// The model drains a task's buffer wherever the runtime publishes (a
/// spawn, a channel send, a lock, a task's end): a Relaxed store made
/// before one is seen after it, whatever the schedule.
async fn publications(n: usize) {
    let x = Arc::new(atomic::AtomicUsize::new(0));
    let probe = Arc::new(atomic::AtomicUsize::new(0));
    // A spawn publishes the spawner's stores to the new task.
    x.store(1, std::sync::atomic::Ordering::Relaxed);
    let seen = {
        let x = x.clone();
        waitrt::spawn(async move { x.load(std::sync::atomic::Ordering::Relaxed) })
    };
    probe.load(SeqCst); // a decision point: the new task may run here
    assert_eq!(seen.await.unwrap(), 1, "spawn");
    // A oneshot send; an mpsc send; a Mutex hand-off; a task's end.
    let (tx, rx) = waitrt::sync::oneshot::channel();
    let (mtx, mut mrx) = waitrt::sync::mpsc::unbounded_channel();
    let lock = Arc::new(Mutex::new(()));
    let writer = {
        let (x, probe, lock) = (x.clone(), probe.clone(), lock.clone());
        waitrt::spawn(async move {
            x.store(2, std::sync::atomic::Ordering::Relaxed);
            tx.send(()).unwrap();
            probe.load(SeqCst);
            x.store(3, std::sync::atomic::Ordering::Relaxed);
            mtx.send(()).unwrap();
            probe.load(SeqCst);
            {
                let _g = lock.lock().await;
                x.store(4, std::sync::atomic::Ordering::Relaxed);
            }
            probe.load(SeqCst);
            x.store(5, std::sync::atomic::Ordering::Relaxed);
        })
    };
    rx.await.unwrap();
    assert!(x.load(std::sync::atomic::Ordering::Relaxed) >= 2, "oneshot");
    mrx.recv().await.unwrap();
    assert!(x.load(std::sync::atomic::Ordering::Relaxed) >= 3, "mpsc");
    for _ in 0..n {
        let _g = lock.lock().await;
        let _ = x.load(std::sync::atomic::Ordering::Relaxed);
    }
    writer.await.unwrap();
    assert_eq!(x.load(std::sync::atomic::Ordering::Relaxed), 5, "join");
}

/// Release/acquire through a read-modify-write: the reader's swap reads
/// the writer's Release store, so it sees the Relaxed store before it. A
/// model that made only that one store visible reported this correct
/// program as failing (a review found it; replay `2:1,5:1`).
async fn release_then_swap() {
    let data = Arc::new(atomic::AtomicUsize::new(0));
    let flag = Arc::new(atomic::AtomicBool::new(false));
    let probe = Arc::new(atomic::AtomicUsize::new(0));
    let writer = {
        let (data, flag, probe) = (data.clone(), flag.clone(), probe.clone());
        waitrt::spawn(async move {
            data.store(42, std::sync::atomic::Ordering::Relaxed);
            flag.store(true, Release);
            probe.load(SeqCst); // a decision point with both stores buffered
        })
    };
    let reader = waitrt::spawn(async move {
        if flag.swap(false, std::sync::atomic::Ordering::AcqRel) {
            assert_eq!(data.load(std::sync::atomic::Ordering::Relaxed), 42);
        }
    });
    writer.await.unwrap();
    reader.await.unwrap();
}

#[test]
fn class4_a_swap_that_reads_a_release_store_sees_what_came_before() {
    passes(release_then_swap);
}

#[test]
fn class4_what_the_runtime_publishes_is_seen() {
    passes(|| publications(2));
}

// ===== class 5: a waker that yields before it wakes =====

/// WRONG: checks the condition, *then* registers, and sleeps without
/// re-checking.
async fn check_then_park(queue: &WaitQueue, cond: impl Fn() -> bool) {
    let mut entry = WaitEntry::new(queue);
    loop {
        if cond() {
            break;
        }
        queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
        entry.wait().await.unwrap();
    }
    queue.finish_wait(&mut entry);
}

/// Right: registers, then checks.
async fn park_then_check(queue: &WaitQueue, cond: impl Fn() -> bool) {
    let mut entry = WaitEntry::new(queue);
    loop {
        queue.prepare_to_wait(&mut entry, TaskState::Uninterruptible);
        if cond() {
            break;
        }
        entry.wait().await.unwrap();
    }
    queue.finish_wait(&mut entry);
}

async fn spinning_waker(correct: bool) {
    let queue = Arc::new(WaitQueue::new());
    let ready = Arc::new(AtomicBool::new(false));
    let waker = {
        let (queue, ready) = (queue.clone(), ready.clone());
        waitrt::spawn(async move {
            for _ in 0..3 {
                waitrt::task::yield_now().await;
            }
            ready.store(true, SeqCst);
            queue.wake_up();
        })
    };
    let waiter = waitrt::spawn(async move {
        let cond = || ready.load(SeqCst);
        if correct {
            park_then_check(&queue, cond).await;
        } else {
            check_then_park(&queue, cond).await;
        }
    });
    waker.await.unwrap();
    waiter.await.unwrap();
}

#[test]
fn class5_spinning_waker_check_then_park_is_found_by_random() {
    find("spinning waker (Random)", FailureKind::LostWakeup, || {
        spinning_waker(false)
    });
}

#[test]
fn class5_spinning_waker_check_then_park_is_found_by_pct() {
    for depth in [2, 3] {
        find_with(
            Check::new().policy(Policy::Pct { depth }),
            &format!("spinning waker (PCT depth {depth})"),
            FailureKind::LostWakeup,
            || spinning_waker(false),
        );
    }
}

#[test]
fn class5_spinning_waker_park_then_check_passes() {
    passes(|| spinning_waker(true));
}

#[test]
fn pct_still_ends_a_spin_loop() {
    // The test body spins on `yield_now` until three tasks that never yield
    // have run; a change point may lower one of them below everything else.
    // PCT must let them run (a yield drops the spinner below every task
    // half the time), not livelock.
    Check::new()
        .seeds(many())
        .policy(Policy::Pct { depth: 3 })
        .max_polls(10_000)
        .quiet(true)
        .run(|| async {
            let ran = Arc::new(atomic::AtomicUsize::new(0));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let ran = ran.clone();
                    waitrt::spawn(async move {
                        ran.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            for _ in 0..5_000 {
                if ran.as_std().load(SeqCst) == 3 {
                    break;
                }
                waitrt::task::yield_now().await;
            }
            assert_eq!(
                ran.as_std().load(SeqCst),
                3,
                "the spinner starved the tasks"
            );
            for task in tasks {
                task.await.unwrap();
            }
        });
}

// ===== coverage =====

#[test]
fn coverage_line_lists_points_per_kind() {
    let stats = Check::new()
        .seeds(100)
        .quiet(true)
        .run(|| empty_then_closed(true));
    let line = stats.coverage_line();
    println!("{line}");
    assert!(line.contains("switch "), "{line}");
    assert!(line.contains("led elsewhere"), "{line}");
    let (hits, sites, led) = stats.points(PointKind::Switch);
    assert!(hits > 0 && sites >= 3 && led >= 1, "{line}");
    let (acq, _, _) = stats.points(PointKind::Acquire);
    assert_eq!(acq, 0, "no lock in this program: {line}");
}

// Breaks if a bounded channel's send or reserve offers the toolkit no
// decision point when a slot is free (its uncontended acquisition, as a
// lock's: a lock-order-style cycle through channel slots could not show).
#[test]
fn class2_bounded_channel_slots_are_acquisition_points() {
    let stats = Check::new().seeds(20).quiet(true).run(|| async {
        let (tx, mut rx) = waitrt::sync::mpsc::channel(4);
        tx.send(1u8).await.unwrap();
        tx.reserve().await.unwrap().send(2);
        assert_eq!((rx.recv().await, rx.recv().await), (Some(1), Some(2)));
    });
    let (hits, sites, _) = stats.points(PointKind::Acquire);
    assert_eq!(
        hits,
        40,
        "one send and one reserve per run: {}",
        stats.coverage_line()
    );
    assert_eq!(sites, 2, "{}", stats.coverage_line());
}

/// What the toolkit cannot see says so: a real socket inside a check is
/// refused with a pointer to the in-memory streams (it said "build the
/// runtime with `enable_io()`", which a `Check` user cannot do), and a
/// sleep only a plain thread could end is a hang whose report says plain
/// threads are not seen (it said "no outside work is in flight").
#[test]
fn what_the_toolkit_cannot_see_is_named_in_its_messages() {
    passes(|| async {
        let err = waitrt::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("test_util::duplex"), "{err}");
    });
    let failure = find(
        "a wake only a plain thread sends",
        FailureKind::Hang,
        || async {
            static QUEUE: WaitQueue = WaitQueue::new();
            QUEUE.wait_event(|| false).await.unwrap();
        },
    );
    let report = failure.report();
    assert!(report.contains("does not see plain threads"), "{report}");
}
