//! Stress for the runtime's spawn and wake paths, on current-thread and
//! multi-thread(2): (a) 10 × `stress_iters()` tasks (100 000 by default)
//! spawned from a task and from four plain threads, each sleeping on one
//! shared wait queue for its own flag, which another thread sets in
//! batches followed by `wake_up_all`/`wake_up` — every task must complete;
//! (b) 10 × `stress_iters()` ping-pong round trips between two tasks over
//! two wait queues (multi-thread(2)); (c) `stress_iters()` spawn / abort /
//! complete races, where each future must be dropped exactly once and the
//! join result must match what happened; (d) `stress_iters()` join handles
//! dropped on a plain thread while their tasks complete, each output dropped
//! exactly once. A lost wake-up trips the watchdog
//! instead of hanging the suite.
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use support::stress_iters;
use waitrt::sync::WaitQueue;
use waitrt::task::{yield_now, AbortHandle};
use waitrt::{Builder, Handle, Runtime};

const LIMIT: Duration = Duration::from_secs(90);

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread(n: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()
        .unwrap()
}

// ===== (a) many tasks, one shared queue =====

struct Shared {
    n: usize,
    flags: Vec<AtomicBool>,
    /// Every task sleeps here until its flag is set.
    queue: WaitQueue,
    /// Tasks polled at least once; `all_polled` is woken when it reaches `n`.
    polled: AtomicUsize,
    all_polled: WaitQueue,
    done: AtomicUsize,
    all_done: WaitQueue,
}

impl Shared {
    fn new(n: usize) -> Arc<Shared> {
        Arc::new(Shared {
            n,
            flags: (0..n).map(|_| AtomicBool::new(false)).collect(),
            queue: WaitQueue::new(),
            polled: AtomicUsize::new(0),
            all_polled: WaitQueue::new(),
            done: AtomicUsize::new(0),
            all_done: WaitQueue::new(),
        })
    }
}

fn spawn_waiter(handle: &Handle, shared: &Arc<Shared>, i: usize) {
    let shared = shared.clone();
    // Detached: completion is counted, not joined.
    drop(handle.spawn(async move {
        if shared.polled.fetch_add(1, SeqCst) + 1 == shared.n {
            shared.all_polled.wake_up_all();
        }
        shared
            .queue
            .wait_event(|| shared.flags[i].load(SeqCst))
            .await
            .unwrap();
        if shared.done.fetch_add(1, SeqCst) + 1 == shared.n {
            shared.all_done.wake_up_all();
        }
    }));
}

/// Sets the flags in a scrambled order, `batches` at a time, each batch
/// followed by one wake. The first half races with the spawners; the
/// second half starts once every task has been polled, so those tasks
/// really sleep and only the batch wakes can end them.
fn setter(shared: Arc<Shared>, batches: usize) {
    let n = shared.n;
    // A stride coprime with n visits every index once (a permutation).
    let stride = [7919, 7927, 7933, 1]
        .into_iter()
        .find(|&s| gcd(s, n) == 1)
        .unwrap();
    let per_batch = n.div_ceil(batches);
    for batch in 0..batches {
        if batch == batches / 2 {
            shared
                .all_polled
                .blocking_wait_event(|| shared.polled.load(SeqCst) == n)
                .unwrap();
        }
        let range = batch * per_batch..((batch + 1) * per_batch).min(n);
        for k in range {
            shared.flags[(k * stride) % n].store(true, SeqCst);
        }
        if batch % 2 == 0 {
            shared.queue.wake_up_all();
        } else {
            shared.queue.wake_up();
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn many_tasks_one_queue(rt: Runtime) {
    let n = 10 * stress_iters();
    let shared = Shared::new(n);
    let share = n / 5;
    let handle = rt.handle().clone();
    let spawners: Vec<_> = (1..5)
        .map(|t| {
            let (handle, shared) = (handle.clone(), shared.clone());
            std::thread::spawn(move || {
                let end = if t == 4 { n } else { (t + 1) * share };
                for i in t * share..end {
                    spawn_waiter(&handle, &shared, i);
                }
            })
        })
        .collect();
    let setter = std::thread::spawn({
        let shared = shared.clone();
        move || setter(shared, 10)
    });
    rt.block_on({
        let shared = shared.clone();
        async move {
            let inner = waitrt::spawn({
                let shared = shared.clone();
                async move {
                    let handle = Handle::current();
                    for i in 0..share {
                        spawn_waiter(&handle, &shared, i);
                        if i % 1024 == 0 {
                            yield_now().await;
                        }
                    }
                }
            });
            inner.await.unwrap();
            shared
                .all_done
                .wait_event(|| shared.done.load(SeqCst) == shared.n)
                .await
                .unwrap();
            while Handle::current().metrics().alive_tasks() != 0 {
                yield_now().await;
            }
        }
    });
    for spawner in spawners {
        spawner.join().unwrap();
    }
    setter.join().unwrap();
    assert_eq!(shared.done.load(SeqCst), n, "tasks lost");
    assert!(shared.flags.iter().all(|f| f.load(SeqCst)));
    assert!(shared.queue.is_empty(), "finished waiters still linked");
    let m = rt.metrics();
    // The inner spawner plus the n waiters.
    assert_eq!(m.spawned_tasks(), n as u64 + 1);
    assert_eq!(m.alive_tasks(), 0);
}

#[test]
fn many_tasks_one_queue_current_thread() {
    support::watchdog("many_tasks_one_queue_current_thread", LIMIT, || {
        many_tasks_one_queue(current_thread())
    });
}

#[test]
fn many_tasks_one_queue_multi_thread_2() {
    support::watchdog("many_tasks_one_queue_multi_thread_2", LIMIT, || {
        many_tasks_one_queue(multi_thread(2))
    });
}

// ===== (b) ping-pong =====

#[test]
fn ping_pong_multi_thread_2() {
    support::watchdog("ping_pong_multi_thread_2", LIMIT, || {
        let rounds = 10 * stress_iters();
        let rt = multi_thread(2);
        let turn = Arc::new(AtomicUsize::new(0));
        let ping_q = Arc::new(WaitQueue::new());
        let pong_q = Arc::new(WaitQueue::new());
        let (ping, pong) = rt.block_on(async {
            let ping = waitrt::spawn({
                let (turn, mine, theirs) = (turn.clone(), ping_q.clone(), pong_q.clone());
                async move {
                    for i in 0..rounds {
                        mine.wait_event(|| turn.load(SeqCst) == 2 * i)
                            .await
                            .unwrap();
                        turn.store(2 * i + 1, SeqCst);
                        theirs.wake_up();
                    }
                    rounds
                }
            });
            let pong = waitrt::spawn({
                let (turn, mine, theirs) = (turn.clone(), pong_q.clone(), ping_q.clone());
                async move {
                    for i in 0..rounds {
                        mine.wait_event(|| turn.load(SeqCst) == 2 * i + 1)
                            .await
                            .unwrap();
                        turn.store(2 * i + 2, SeqCst);
                        theirs.wake_up();
                    }
                    rounds
                }
            });
            (ping.await.unwrap(), pong.await.unwrap())
        });
        assert_eq!((ping, pong), (rounds, rounds));
        assert_eq!(turn.load(SeqCst), 2 * rounds);
        assert!(ping_q.is_empty() && pong_q.is_empty());
    });
}

// ===== (c) spawn / abort / complete races =====

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn spawn_abort_complete(rt: Runtime) {
    let iters = stress_iters();
    let dropped = Arc::new(AtomicUsize::new(0));
    let ran_to_end = Arc::new(AtomicUsize::new(0));
    // A plain thread that aborts whatever it is sent: cross-thread aborts.
    let (tx, rx) = mpsc::channel::<AbortHandle>();
    let aborter = std::thread::spawn(move || {
        for handle in rx {
            handle.abort();
        }
    });
    let (oks, cancelled) = rt.block_on({
        let (dropped, ran_to_end) = (dropped.clone(), ran_to_end.clone());
        async move {
            let (mut oks, mut cancelled) = (0usize, 0usize);
            for i in 0..iters {
                let task = waitrt::spawn({
                    let (guard, ran_to_end) = (DropCount(dropped.clone()), ran_to_end.clone());
                    async move {
                        let _guard = guard;
                        for _ in 0..i % 3 {
                            yield_now().await;
                        }
                        ran_to_end.fetch_add(1, SeqCst);
                        i
                    }
                });
                let abort = task.abort_handle();
                match i % 4 {
                    // Aborted by another task, after a few yields.
                    0 | 1 => {
                        let yields = i % 2;
                        drop(waitrt::spawn(async move {
                            for _ in 0..yields {
                                yield_now().await;
                            }
                            abort.abort();
                        }));
                    }
                    // Aborted from a plain thread.
                    2 => tx.send(abort).unwrap(),
                    // Aborted right here, at once.
                    _ => abort.abort(),
                }
                let before = ran_to_end.load(SeqCst);
                match task.await {
                    Ok(out) => {
                        assert_eq!(out, i);
                        oks += 1;
                    }
                    Err(err) => {
                        assert!(err.is_cancelled() && !err.is_shutdown(), "{err:?}");
                        cancelled += 1;
                    }
                }
                // Either way the future is gone exactly once by now.
                assert_eq!(dropped.load(SeqCst), i + 1, "iteration {i}");
                assert!(ran_to_end.load(SeqCst) <= before + 1);
            }
            // Let the detached aborter tasks finish too.
            while Handle::current().metrics().alive_tasks() != 0 {
                yield_now().await;
            }
            (oks, cancelled)
        }
    });

    aborter.join().unwrap();
    assert_eq!(oks + cancelled, iters);
    assert_eq!(
        ran_to_end.load(SeqCst),
        oks,
        "a cancelled task ran to its end"
    );
    assert_eq!(dropped.load(SeqCst), iters);
    assert_eq!(rt.metrics().alive_tasks(), 0);
}

#[test]
fn spawn_abort_complete_current_thread() {
    support::watchdog("spawn_abort_complete_current_thread", LIMIT, || {
        spawn_abort_complete(current_thread())
    });
}

#[test]
fn spawn_abort_complete_multi_thread_2() {
    support::watchdog("spawn_abort_complete_multi_thread_2", LIMIT, || {
        spawn_abort_complete(multi_thread(2))
    });
}

// ===== (d) the output hand-over: join handle dropped while the task completes =====

/// Each task's output is a `DropCount`; its join handle is dropped on a
/// plain thread, racing the task's completion on a worker (or awaited, one
/// time in four). Whichever side owns the output when the other lets go
/// must drop it: exactly once per task, never twice, and at once (an
/// abort handle keeps every task allocation alive to the end, so an output
/// left behind in its task would show up as missing from the count).
fn output_handover(rt: Runtime) {
    let iters = stress_iters();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<waitrt::task::JoinHandle<DropCount>>();
    let dropper = std::thread::spawn(move || {
        for handle in rx {
            drop(handle);
        }
    });
    let keep_alive = rt.block_on({
        let dropped = dropped.clone();
        async move {
            let mut keep_alive = Vec::with_capacity(iters);
            for i in 0..iters {
                let output = DropCount(dropped.clone());
                let task = waitrt::spawn(async move {
                    if i % 2 == 0 {
                        yield_now().await;
                    }
                    output
                });
                keep_alive.push(task.abort_handle());
                match i % 4 {
                    3 => drop(task.await.expect("task completes")),
                    _ => tx.send(task).unwrap(),
                }
                if i % 64 == 0 {
                    yield_now().await;
                }
            }
            drop(tx);
            while Handle::current().metrics().alive_tasks() != 0 {
                yield_now().await;
            }
            keep_alive
        }
    });
    dropper.join().unwrap();
    assert_eq!(
        dropped.load(SeqCst),
        iters,
        "an output was left in its task or dropped twice"
    );
    drop(keep_alive);
}

#[test]
fn output_handover_current_thread() {
    support::watchdog("output_handover_current_thread", LIMIT, || {
        output_handover(current_thread())
    });
}

#[test]
fn output_handover_multi_thread_2() {
    support::watchdog("output_handover_multi_thread_2", LIMIT, || {
        output_handover(multi_thread(2))
    });
}

// ===== (e) a JoinSet joined while its members finish on other threads =====

/// `stress_iters()` rounds of a `JoinSet` of one to three members that
/// each yield a few times, joined with `join_next` (the joiner sleeps on
/// the set's own wait, woken by the members' wakers as they finish; with
/// one member its wake is the only one), with a `try_join_next` and a
/// `join_next` dropped by a `timeout` mixed in: every member is joined
/// once, and a lost wake-up trips the watchdog.
fn join_set_joins_every_member(rt: Runtime) {
    let rounds = stress_iters();
    rt.block_on(async move {
        let mut tries = 0usize;
        for round in 0..rounds {
            let members = round % 3 + 1;
            let mut set = waitrt::task::JoinSet::new();
            for i in 0..members {
                set.spawn(async move {
                    for _ in 0..(i + round) % 4 {
                        yield_now().await;
                    }
                    i
                });
            }
            let mut seen = [false; 3];
            let mut joined = 0;
            while joined < members {
                let next = match tries % 5 {
                    0 => set.try_join_next(),
                    1 => waitrt::time::timeout(Duration::from_micros(50), set.join_next())
                        .await
                        .ok()
                        .flatten(),
                    _ => set.join_next().await,
                };
                tries += 1;
                if let Some(done) = next {
                    let i = done.unwrap();
                    assert!(!seen[i], "member {i} joined twice");
                    seen[i] = true;
                    joined += 1;
                }
            }
            assert!(set.join_next().await.is_none());
        }
    });
}

#[test]
fn join_set_joins_every_member_current_thread() {
    support::watchdog("join_set_joins_every_member_current_thread", LIMIT, || {
        join_set_joins_every_member(current_thread())
    });
}

#[test]
fn join_set_joins_every_member_multi_thread_2() {
    support::watchdog("join_set_joins_every_member_multi_thread_2", LIMIT, || {
        join_set_joins_every_member(multi_thread(2))
    });
}
