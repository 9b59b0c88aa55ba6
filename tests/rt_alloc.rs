//! Allocations per operation, counted by a counting global allocator on
//! a current-thread runtime, where all of it happens on the calling
//! thread: a spawned task is one allocation (spawning, running and
//! completing a trivial task, and taking its output, allocate nothing
//! else: its join queue and signals are made only when something waits
//! on it or signals it); a join that slept leaves the joiner's sleep slot
//! free; a `block_on` future's sleep allocates nothing either; a UDP
//! `send_to` a literal address allocates nothing.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

const TASKS: usize = 1_000;

#[test]
fn a_trivial_task_is_one_allocation_from_spawn_to_output() {
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        // Warm-up: the owned-task list, the run queue and the wait
        // registry's slots grow to hold TASKS tasks.
        for _ in 0..2 {
            let handles: Vec<_> = (0..TASKS)
                .map(|i| waitrt::spawn(async move { i }))
                .collect();
            run_all(&handles).await;
            for handle in handles {
                assert!(handle.is_finished());
                handle.await.unwrap();
            }
        }
        let mut handles = Vec::with_capacity(TASKS);
        let before = allocs();
        for i in 0..TASKS {
            handles.push(waitrt::spawn(async move { i }));
        }
        run_all(&handles).await;
        let mut sum = 0;
        for handle in handles.drain(..) {
            assert!(handle.is_finished());
            sum += handle.await.unwrap();
        }
        let made = allocs() - before;
        assert_eq!(sum, TASKS * (TASKS - 1) / 2);
        assert_eq!(made, TASKS, "allocations for {TASKS} trivial tasks");
    });
}

/// A join that slept leaves no record behind: the task's end takes the
/// joiner's waker (and only the joiner can clear its sleep slot), and the
/// joiner, finding the output there, returns without polling the join
/// wait again. The record it left kept the task's slot taken, so each
/// later oneshot receive in that task took the observed path: a queue and
/// a waiter boxed per receive, 4 allocations per round where 2 are
/// needed (an independent probe).
#[test]
fn a_join_that_slept_leaves_the_slot_free() {
    const ROUNDS: usize = 100;
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        waitrt::spawn(async {
            let round = || async {
                let (tx, rx) = waitrt::sync::oneshot::channel();
                drop(waitrt::spawn(async move { tx.send(7).unwrap() }));
                assert_eq!(rx.await.unwrap(), 7);
            };
            // Warm-up, then a join that sleeps: the task runs after this
            // one parks on its handle.
            for _ in 0..ROUNDS {
                round().await;
            }
            let joined = waitrt::spawn(async { waitrt::task::yield_now().await });
            joined.await.unwrap();
            let before = allocs();
            for _ in 0..ROUNDS {
                round().await;
            }
            let made = allocs() - before;
            assert_eq!(
                made,
                2 * ROUNDS,
                "allocations for {ROUNDS} oneshot rounds after a join"
            );
        })
        .await
        .unwrap();
    });
}

/// A `block_on` future's sleeps go to a slot of its thread's, as a
/// task's go to the task's: a oneshot receive that sleeps in it allocates
/// nothing. Without a slot it sleeps on the channel's queue and boxes its
/// waiter (4 allocations per round where 2 are needed: the channel and
/// the sending task).
#[test]
fn a_block_on_future_sleeps_without_allocating() {
    const ROUNDS: usize = 100;
    // A task spawned from outside the workers goes to the remote queue,
    // which allocates a block per 63 tasks.
    let remote_queue = ROUNDS.div_ceil(63);
    for (rt, extra) in [
        (waitrt::Builder::new_current_thread().build().unwrap(), 0),
        (
            waitrt::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap(),
            remote_queue,
        ),
    ] {
        rt.block_on(async {
            let round = || async {
                let (tx, rx) = waitrt::sync::oneshot::channel();
                drop(waitrt::spawn(async move {
                    waitrt::task::yield_now().await;
                    tx.send(7).unwrap()
                }));
                assert_eq!(rx.await.unwrap(), 7);
            };
            for _ in 0..ROUNDS {
                round().await;
            }
            let before = allocs();
            for _ in 0..ROUNDS {
                round().await;
            }
            let made = allocs() - before;
            assert!(
                (2 * ROUNDS..=2 * ROUNDS + extra).contains(&made),
                "{made} allocations for {ROUNDS} oneshot rounds"
            );
        });
    }
}

/// The first sleep of a `block_on` future allocates nothing either: the
/// runtime makes room for the list of sleeping `block_on` calls when it
/// is built. Made at the first sleep, that push landed in whichever
/// round slept first: `a_block_on_future_sleeps_without_allocating`
/// counted 203 where 202 were due whenever its warm-up never slept (a
/// clean-clone CI run; a flake hunt caught the push's backtrace).
#[test]
fn a_block_on_futures_first_sleep_allocates_nothing() {
    for rt in [
        waitrt::Builder::new_current_thread().build().unwrap(),
        waitrt::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap(),
    ] {
        let (tx, rx) = waitrt::sync::oneshot::channel();
        // Sends once the `block_on` future has slept (50 ms is ample; if
        // it has not, the receive is ready at once and nothing is listed).
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx.send(7).unwrap();
        });
        let made = rt.block_on(async {
            let before = allocs();
            assert_eq!(rx.await.unwrap(), 7);
            allocs() - before
        });
        sender.join().unwrap();
        assert_eq!(made, 0, "allocations by a block_on future's first sleep");
    }
}

/// Yields until every task in `handles` has completed (bounded: a
/// current-thread runtime runs them all within a few yields).
async fn run_all<T>(handles: &[waitrt::task::JoinHandle<T>]) {
    for _ in 0..1_000 {
        if handles.iter().all(|h| h.is_finished()) {
            return;
        }
        waitrt::task::yield_now().await;
    }
    panic!("the tasks did not run");
}

/// `send_to` resolves its target on every call: a literal address (a
/// `SocketAddr`, an `(ip, port)` pair, `"127.0.0.1:port"`) is used as it
/// is, with no allocation (it was a `Vec` of one per call).
#[test]
fn udp_send_to_a_literal_address_allocates_nothing() {
    const ROUNDS: usize = 100;
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = waitrt::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = waitrt::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let text = to.to_string();
        let mut buf = [0u8; 64];
        let mut round = async |i: usize| {
            match i % 3 {
                0 => a.send_to(b"ping", to).await.unwrap(),
                1 => a.send_to(b"ping", (to.ip(), to.port())).await.unwrap(),
                _ => a.send_to(b"ping", text.as_str()).await.unwrap(),
            };
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(n, 4);
        };
        for i in 0..ROUNDS {
            round(i).await;
        }
        let before = allocs();
        for i in 0..ROUNDS {
            round(i).await;
        }
        assert_eq!(
            allocs() - before,
            0,
            "allocations for {ROUNDS} UDP round trips"
        );
    });
}
