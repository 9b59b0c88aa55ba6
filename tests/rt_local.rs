//! `waitrt::task::LocalSet` and `spawn_local`: `!Send` tasks on the thread
//! that drives the set. Each body runs on current-thread, multi-thread(1)
//! and multi-thread(2) ([`rt_test!`]) under a watchdog, so a lost wake-up
//! or a starved task fails instead of hanging.
//!
//! Covered: `Rc`/`RefCell` state shared by 100 tasks; wakes from a
//! `std::thread` and from a `waitrt::spawn`ed task; output, abort (local
//! and from another task), panics; `spawn_local` outside a set; dropping
//! the set cancels its tasks; fairness against a `yield_now` spinner and an
//! always-ready wait queue spinner; nested `spawn_local`; a set inside a
//! local task; tasks spawned before the set runs; the set awaited as a
//! future (every task run to its end).
#[macro_use]
mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use support::{panic_message, Gate};
use waitrt::sync::WaitQueue;
use waitrt::task::{spawn_local, yield_now, LocalJoinHandle, LocalSet};

// ===== helpers =====

/// Counts its drops (a task's future was dropped).
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

const OUTSIDE: &str = "`spawn_local` called from outside of a `task::LocalSet`";

/// Compile-time: a join handle can be sent when its output can.
#[allow(dead_code)]
fn handle_is_send_when_output_is() {
    fn is_send<T: Send>() {}
    is_send::<LocalJoinHandle<u32>>();
}

// ===== shared !Send state =====

rt_test! {
    fn rc_refcell_state_shared_by_100_tasks(rt) {
        let local = LocalSet::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let out = local.block_on(&rt, {
            let log = log.clone();
            async move {
                let handles: Vec<_> = (0..100usize)
                    .map(|i| {
                        let log = log.clone();
                        spawn_local(async move {
                            yield_now().await;
                            log.borrow_mut().push(i);
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                sum
            }
        });
        assert_eq!(out, (0..100).sum::<usize>());
        let mut seen = log.borrow().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert!(local.is_empty());
        assert_eq!(Rc::strong_count(&log), 1, "every task dropped its Rc");
    }
}

rt_test! {
    fn awaiting_the_set_runs_every_task_to_the_end(rt) {
        // An empty set is done at once.
        rt.block_on(LocalSet::new());
        let mut local = LocalSet::new();
        let done = Rc::new(Cell::new(0));
        let gate = Gate::new();
        for i in 0..20 {
            let (done, gate) = (done.clone(), gate.clone());
            local.spawn_local(async move {
                for _ in 0..i {
                    yield_now().await;
                }
                if i % 5 == 0 {
                    // Woken from another thread.
                    gate.wait().await;
                }
                if i == 19 {
                    // Spawned while the set runs: waited for too.
                    let done = done.clone();
                    spawn_local(async move {
                        yield_now().await;
                        done.set(done.get() + 100);
                    });
                }
                done.set(done.get() + 1);
            });
        }
        // Aborted before it finishes: the set ends without it.
        let never = local.spawn_local(std::future::pending::<()>());
        never.abort();
        let opener = std::thread::spawn({
            let gate = gate.clone();
            move || {
                // Open once the four gated tasks sleep on the queue.
                for _ in 0..1_000_000 {
                    if gate.queue.len() == 4 {
                        break;
                    }
                    std::thread::yield_now();
                }
                gate.open();
            }
        });
        rt.block_on(&mut local);
        opener.join().unwrap();
        assert_eq!(done.get(), 120);
        assert!(local.is_empty());
        // By value, the set is dropped once empty.
        let again = LocalSet::new();
        let done2 = done.clone();
        again.spawn_local(async move { done2.set(done2.get() + 1) });
        rt.block_on(again);
        assert_eq!(done.get(), 121);
        assert_eq!(Rc::strong_count(&done), 1, "every task dropped its Rc");
    }
}

// ===== wakes from other threads =====

rt_test! {
    fn woken_from_std_thread(rt) {
        let local = LocalSet::new();
        let gate = Gate::new();
        let thread = std::thread::spawn({
            let gate = gate.clone();
            move || {
                // Wake only once the local task sleeps on the queue.
                while gate.queue.is_empty() {
                    std::thread::yield_now();
                }
                gate.open();
            }
        });
        let hits = Rc::new(Cell::new(0));
        local.block_on(&rt, {
            let (gate, hits) = (gate.clone(), hits.clone());
            async move {
                spawn_local(async move {
                    gate.wait().await;
                    hits.set(hits.get() + 1);
                })
                .await
                .unwrap();
            }
        });
        thread.join().unwrap();
        assert_eq!(hits.get(), 1);
    }
}

rt_test! {
    fn woken_from_spawned_send_task(rt) {
        let local = LocalSet::new();
        let gate = Gate::new();
        let woken = local.block_on(&rt, {
            let gate = gate.clone();
            async move {
                let waker = waitrt::spawn({
                    let gate = gate.clone();
                    async move {
                        while gate.queue.is_empty() {
                            yield_now().await;
                        }
                        gate.open();
                    }
                });
                let state = Rc::new(RefCell::new(String::new()));
                let task = spawn_local({
                    let state = state.clone();
                    async move {
                        gate.wait().await;
                        state.borrow_mut().push_str("woken");
                    }
                });
                task.await.unwrap();
                waker.await.unwrap();
                let woken = state.borrow().clone();
                woken
            }
        });
        assert_eq!(woken, "woken");
    }
}

// ===== join handles =====

rt_test! {
    fn join_output_abort_and_panic(rt) {
        let local = LocalSet::new();
        local.block_on(&rt, async {
            // Output (a `!Send` one).
            let rc = spawn_local(async { Rc::new(41) }).await.unwrap();
            assert_eq!(*rc + 1, 42);

            // Abort of a pending task.
            let pending = spawn_local(std::future::pending::<()>());
            yield_now().await;
            assert!(!pending.is_finished());
            pending.abort();
            let id = pending.id();
            let err = pending.await.unwrap_err();
            assert!(err.is_cancelled() && !err.is_panic());
            assert_eq!(err.id(), id);

            // Abort after completion changes nothing.
            let done = spawn_local(async { 5 });
            while !done.is_finished() {
                yield_now().await;
            }
            done.abort();
            assert_eq!(done.await.unwrap(), 5);

            // A task that aborts itself is dropped after its poll.
            let me: Rc<RefCell<Option<LocalJoinHandle<()>>>> = Rc::default();
            let selfish = spawn_local({
                let me = me.clone();
                async move {
                    yield_now().await;
                    if let Some(handle) = me.borrow().as_ref() {
                        handle.abort();
                    }
                    std::future::pending::<()>().await;
                }
            });
            *me.borrow_mut() = Some(selfish);
            while !me.borrow().as_ref().unwrap().is_finished() {
                yield_now().await;
            }
            let selfish = me.borrow_mut().take().unwrap();
            assert!(selfish.await.unwrap_err().is_cancelled());

            // Panic.
            let err = spawn_local(async { panic!("local boom {}", 7) })
                .await
                .unwrap_err();
            assert!(err.is_panic());
            assert_eq!(panic_message(&*err.into_panic()), "local boom 7");

            // The set still runs after a panic.
            assert_eq!(spawn_local(async { 1 }).await.unwrap(), 1);
        });
        assert!(local.is_empty());
    }
}

rt_test! {
    fn handle_aborted_and_awaited_from_send_task(rt) {
        let local = LocalSet::new();
        let gate = Gate::new();
        local.block_on(&rt, async {
            let pending = spawn_local({
                let gate = gate.clone();
                async move { gate.wait().await }
            });
            let finished = spawn_local(async { 9u32 });
            // Both handles go to a Send task (another worker, maybe).
            let joiner = waitrt::spawn(async move {
                pending.abort();
                let cancelled = pending.await.unwrap_err().is_cancelled();
                (cancelled, finished.await.unwrap())
            });
            assert_eq!(joiner.await.unwrap(), (true, 9));
        });
        assert!(local.is_empty());
    }
}

// ===== spawn_local outside a set =====

rt_test! {
    fn spawn_local_outside_a_set_panics(rt) {
        let outside = || {
            std::panic::catch_unwind(|| drop(spawn_local(async {})))
                .map_err(|payload| panic_message(&*payload))
        };
        // No set at all.
        assert!(outside().unwrap_err().contains(OUTSIDE));
        rt.block_on(async {
            // In block_on, and in a spawned task, without a set.
            assert!(outside().unwrap_err().contains(OUTSIDE));
            let err = waitrt::spawn(async { drop(spawn_local(async {})) })
                .await
                .unwrap_err();
            assert!(panic_message(&*err.into_panic()).contains(OUTSIDE));
        });
        // Inside, it works; after run_until returns, it panics again.
        let local = LocalSet::new();
        assert_eq!(local.block_on(&rt, async { spawn_local(async { 3 }).await.unwrap() }), 3);
        assert!(outside().unwrap_err().contains(OUTSIDE));
    }
}

// ===== dropping the set =====

rt_test! {
    fn dropping_the_set_cancels_pending_tasks(rt) {
        let local = LocalSet::new();
        let drops = Rc::new(Cell::new(0));
        let gate = Gate::new();
        let started = Rc::new(Cell::new(0));
        let mut handles = Vec::new();
        for _ in 0..10 {
            let (guard, gate, started) = (DropCount(drops.clone()), gate.clone(), started.clone());
            handles.push(local.spawn_local(async move {
                let _guard = guard;
                started.set(started.get() + 1);
                gate.wait().await;
            }));
        }
        local.block_on(&rt, async {
            while started.get() < 10 {
                yield_now().await;
            }
        });
        // One never polled: the set does not run again.
        let guard = DropCount(drops.clone());
        let never = local.spawn_local(async move { drop(guard) });
        // One awaited by a Send task, which must be woken by the drop.
        let remote = rt.spawn(handles.pop().unwrap());
        assert_eq!(local.len(), 11);
        assert_eq!(drops.get(), 0);

        drop(local);
        assert_eq!(drops.get(), 11, "every future was dropped");
        assert!(never.is_finished());
        assert!(rt.block_on(never).unwrap_err().is_cancelled());
        for handle in handles {
            assert!(handle.is_finished());
            assert!(rt.block_on(handle).unwrap_err().is_cancelled());
        }
        assert!(rt.block_on(remote).unwrap().unwrap_err().is_cancelled());
        assert!(!gate.is_open());
    }
}

// ===== fairness =====

rt_test! {
    fn spinning_local_tasks_starve_nobody(rt) {
        let local = LocalSet::new();
        let stop = Rc::new(Cell::new(false));
        let spins = Rc::new(Cell::new(0usize));
        let always = Arc::new(WaitQueue::new());
        // A task that yields forever, and one whose waits are always ready
        // (only the cooperative budget makes it yield).
        let yielder = local.spawn_local({
            let (stop, spins) = (stop.clone(), spins.clone());
            async move {
                while !stop.get() {
                    spins.set(spins.get() + 1);
                    yield_now().await;
                }
            }
        });
        let busy = local.spawn_local({
            let (stop, always) = (stop.clone(), always.clone());
            async move {
                while !stop.get() {
                    always.wait_event(|| true).await.unwrap();
                }
            }
        });
        let steps = local.block_on(&rt, {
            let stop = stop.clone();
            async move {
                // Another local task, a runtime task spawned from a local
                // task, and this future itself all make progress.
                let other = spawn_local(async {
                    let sent = waitrt::spawn(async {
                        for _ in 0..10 {
                            yield_now().await;
                        }
                        10
                    });
                    let mut n = 0;
                    for _ in 0..100 {
                        yield_now().await;
                        n += 1;
                    }
                    n + sent.await.unwrap()
                });
                let mut steps = 0;
                for _ in 0..100 {
                    yield_now().await;
                    steps += 1;
                }
                let n = other.await.unwrap();
                stop.set(true);
                yielder.await.unwrap();
                busy.await.unwrap();
                steps + n
            }
        });
        assert_eq!(steps, 210);
        assert!(spins.get() > 0);
    }
}

// ===== nesting =====

fn fan_out(depth: u32, count: Rc<Cell<u32>>) -> Pin<Box<dyn Future<Output = u32>>> {
    Box::pin(async move {
        count.set(count.get() + 1);
        if depth == 0 {
            return 1;
        }
        let left = spawn_local(fan_out(depth - 1, count.clone()));
        let right = spawn_local(fan_out(depth - 1, count));
        1 + left.await.unwrap() + right.await.unwrap()
    })
}

rt_test! {
    fn nested_spawn_local_from_local_tasks(rt) {
        let local = LocalSet::new();
        let count = Rc::new(Cell::new(0));
        let total = local.block_on(&rt, {
            let count = count.clone();
            async move { spawn_local(fan_out(5, count)).await.unwrap() }
        });
        assert_eq!(total, 63);
        assert_eq!(count.get(), 63);
        assert!(local.is_empty());
    }
}

rt_test! {
    fn set_inside_a_local_task(rt) {
        let outer = LocalSet::new();
        let out = outer.block_on(&rt, async {
            spawn_local(async {
                let inner = LocalSet::new();
                let three = inner
                    .run_until(async {
                        // Goes to the inner set, which keeps it (detached).
                        drop(spawn_local(std::future::pending::<()>()));
                        spawn_local(async { 2 }).await.unwrap() + 1
                    })
                    .await;
                assert_eq!(inner.len(), 1);
                // Back in the outer set once the inner run_until is done.
                let four = spawn_local(async { 4 }).await.unwrap();
                assert_eq!(inner.len(), 1);
                drop(inner);
                three + four
            })
            .await
            .unwrap()
        });
        assert_eq!(out, 7);
        assert!(outer.is_empty());
    }
}

rt_test! {
    fn tasks_spawned_before_the_set_runs(rt) {
        let local = LocalSet::new();
        let ran = Rc::new(Cell::new(0));
        let gate = Gate::new();
        let early = local.spawn_local({
            let ran = ran.clone();
            async move { ran.set(ran.get() + 1) }
        });
        let later = local.spawn_local({
            let (ran, gate) = (ran.clone(), gate.clone());
            async move {
                gate.wait().await;
                ran.set(ran.get() + 10);
            }
        });
        assert_eq!(ran.get(), 0);
        local.block_on(&rt, early).unwrap();
        assert_eq!(ran.get(), 1);
        // Woken while no run_until runs: it runs in the next one.
        gate.open();
        assert!(!later.is_finished());
        local.block_on(&rt, later).unwrap();
        assert_eq!(ran.get(), 11);
    }
}

// ===== other executors =====

#[test]
fn run_until_on_a_foreign_executor() {
    support::watchdog("foreign executor", support::RT_LIMIT, foreign_executor);
}

fn foreign_executor() {
    let local = LocalSet::new();
    let count = Rc::new(Cell::new(0));
    let out = futures::executor::block_on(local.run_until({
        let count = count.clone();
        async move { spawn_local(fan_out(3, count)).await.unwrap() }
    }));
    assert_eq!(out, 15);
    assert_eq!(count.get(), 15);

    // No outer budget here: only the per-task budget stops a task whose
    // waits are always ready from holding the thread forever.
    let stop = Rc::new(Cell::new(false));
    let always = WaitQueue::new();
    let busy = local.spawn_local({
        let stop = stop.clone();
        async move {
            let mut waits = 0u64;
            while !stop.get() {
                always.wait_event(|| true).await.unwrap();
                waits += 1;
            }
            waits
        }
    });
    let waits = futures::executor::block_on(local.run_until(async {
        yield_now().await;
        stop.set(true);
        busy.await.unwrap()
    }));
    assert!(waits > 0);
}

#[test]
fn many_wakes_from_many_threads() {
    support::watchdog("many wakes", support::RT_LIMIT, many_wakes);
}

fn many_wakes() {
    let rt = support::build(Some(2));
    let local = LocalSet::new();
    let hits = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(WaitQueue::new());
    let total = local.block_on(&rt, async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (hits, queue) = (hits.clone(), queue.clone());
                spawn_local(async move {
                    let mut seen = 0;
                    while seen < 1000 {
                        let before = seen;
                        queue
                            .wait_event(|| hits.load(SeqCst) > before)
                            .await
                            .unwrap();
                        seen = hits.load(SeqCst);
                    }
                    seen
                })
            })
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (hits, queue) = (hits.clone(), queue.clone());
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        hits.fetch_add(1, SeqCst);
                        queue.wake_up_all();
                    }
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        for thread in threads {
            thread.join().unwrap();
        }
        total
    });
    assert_eq!(total, 8 * 1000);
}

#[test]
fn same_set_reentered_from_its_own_task() {
    support::watchdog("re-entered set", support::RT_LIMIT, || {
        let local = Rc::new(LocalSet::new());
        let out = futures::executor::block_on(local.run_until({
            let again = local.clone();
            async move {
                spawn_local(async move {
                    // The inner run_until polls this set's tasks while this
                    // task is itself being polled, and wakes this task.
                    again
                        .run_until(async {
                            yield_now().await;
                            spawn_local(async { 5 }).await.unwrap()
                        })
                        .await
                })
                .await
                .unwrap()
            }
        }));
        assert_eq!(out, 5);
        assert!(local.is_empty());
    });
}

use support::PanickingWaker;

rt_test! {
    /// A join handle polled with a panicking waker: when its task
    /// completes, the panic does not unwind through the set's `run_until`
    /// (the task driving the set), and the other tasks of that tick run
    /// and complete (an independent review: the join wake was unguarded).
    fn a_joiners_panicking_waker_does_not_unwind_through_the_set(rt) {
        let local = LocalSet::new();
        let out = local.block_on(&rt, async {
            let gate = Rc::new(Cell::new(false));
            let doomed = spawn_local({
                let gate = gate.clone();
                async move {
                    while !gate.get() {
                        yield_now().await;
                    }
                    1u32
                }
            });
            let others: Vec<_> = (0..10u32)
                .map(|i| {
                    let gate = gate.clone();
                    spawn_local(async move {
                        while !gate.get() {
                            yield_now().await;
                        }
                        i
                    })
                })
                .collect();
            let waker = std::task::Waker::from(Arc::new(PanickingWaker));
            let mut doomed = Box::pin(doomed);
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(doomed.as_mut().poll(&mut cx).is_pending());
            gate.set(true);
            let mut sum = 0;
            for other in others {
                sum += other.await.unwrap();
            }
            sum + doomed.await.unwrap()
        });
        assert_eq!(out, (0..10).sum::<u32>() + 1);
    }
}

/// A local task's destructor that spawns a local task, run as the set is
/// dropped: the spawn is taken (the new task is dropped with the rest,
/// never run, as tokio's) and the destructor runs to its end. It panicked
/// ("`spawn_local` called from outside of a `task::LocalSet`"): the set
/// dropped its tasks without being current, and the rest of each such
/// destructor never ran (an independent probe of the scheduler).
#[test]
fn a_destructor_that_spawns_local_runs_to_its_end_as_the_set_drops() {
    use std::cell::Cell;
    use std::rc::Rc;
    struct SpawnsOnDrop {
        cleaned: Rc<Cell<u32>>,
        ran: Rc<Cell<u32>>,
    }
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            let ran = self.ran.clone();
            let handle = waitrt::task::spawn_local(async move { ran.set(ran.get() + 1) });
            drop(handle);
            self.cleaned.set(self.cleaned.get() + 1);
        }
    }
    let rt = support::build(None);
    let cleaned = Rc::new(Cell::new(0));
    let ran = Rc::new(Cell::new(0));
    let local = waitrt::task::LocalSet::new();
    rt.block_on(local.run_until(async {
        for _ in 0..5 {
            let guard = SpawnsOnDrop {
                cleaned: cleaned.clone(),
                ran: ran.clone(),
            };
            waitrt::task::spawn_local(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
        }
        waitrt::task::yield_now().await; // each has run once
    }));
    drop(local);
    assert_eq!(cleaned.get(), 5, "a destructor stopped at its spawn_local");
    assert_eq!(ran.get(), 0, "a task spawned while the set dropped ran");
}

/// A destructor that spawns a task like itself every time it runs (a
/// supervisor restarting on drop): dropping the set still ends, the last
/// round's futures leaked, not dropped (it looped for good once the set
/// was current during its drop: an independent review; tokio overflows
/// its stack there, and so did refusing the spawn).
#[test]
fn a_set_whose_tasks_respawn_on_drop_still_drops() {
    use std::cell::Cell;
    use std::rc::Rc;
    struct Respawns(Rc<Cell<u32>>);
    impl Drop for Respawns {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
            let again = Respawns(self.0.clone());
            drop(waitrt::task::spawn_local(async move {
                let _again = again;
                std::future::pending::<()>().await;
            }));
        }
    }
    support::watchdog(
        "a_set_whose_tasks_respawn_on_drop",
        support::RT_LIMIT,
        || {
            let rt = support::build(None);
            let drops = Rc::new(Cell::new(0));
            let local = waitrt::task::LocalSet::new();
            rt.block_on(local.run_until(async {
                let first = Respawns(drops.clone());
                waitrt::task::spawn_local(async move {
                    let _first = first;
                    std::future::pending::<()>().await;
                });
                waitrt::task::yield_now().await;
            }));
            drop(local);
            assert!(drops.get() >= 1, "the first task's destructor never ran");
        },
    );
}

/// A finite chain of cleanups (each task's destructor spawns the next
/// stage, twenty deep) is dropped whole with the set, as tokio drops it:
/// only an endless one is cut (an independent review: with the cut at
/// eight rounds, stages past the eighth were leaked).
#[test]
fn a_finite_chain_of_spawning_destructors_is_dropped_whole() {
    use std::cell::Cell;
    use std::rc::Rc;
    struct Stage(u32, Rc<Cell<u32>>);
    impl Drop for Stage {
        fn drop(&mut self) {
            self.1.set(self.1.get() + 1);
            if self.0 > 0 {
                let next = Stage(self.0 - 1, self.1.clone());
                drop(waitrt::task::spawn_local(async move {
                    let _next = next;
                    std::future::pending::<()>().await;
                }));
            }
        }
    }
    let rt = support::build(None);
    let drops = Rc::new(Cell::new(0));
    let local = waitrt::task::LocalSet::new();
    rt.block_on(local.run_until(async {
        for _ in 0..10 {
            let stage = Stage(19, drops.clone());
            waitrt::task::spawn_local(async move {
                let _stage = stage;
                std::future::pending::<()>().await;
            });
        }
        waitrt::task::yield_now().await;
    }));
    drop(local);
    assert_eq!(drops.get(), 10 * 20, "stages leaked");
}
