//! Behaviour every `waitrt` scheduler flavour must share. Each test body is
//! expanded by [`rt_test!`] into three tests — current-thread,
//! multi-thread(1) and multi-thread(2), all with `enable_all()` — and runs
//! under a watchdog so a lost wake-up fails instead of hanging.
//!
//! Covered: spawn/await, detach on `JoinHandle` drop, abort (pending,
//! running, completed), `is_finished`, `AbortHandle`, panics, `JoinSet`,
//! `yield_now`, fairness against `yield_now` and always-ready waitq
//! spinners (cooperative budget), per-task signals, spawning from tasks
//! and foreign threads, nested `block_on`, and the `waitrt::block_on`
//! free function.
#[macro_use]
mod support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures::{poll, FutureExt};
use support::{ms, panic_message, serial, Counter, Gate};
use waitrt::sync::{SignalKind, WaitQueue};
use waitrt::task::{yield_now, JoinSet};
use waitrt::time::sleep;
use waitrt::{Builder, Handle, Runtime};

// ===== helpers =====

/// Increments its counter when dropped (a task's future was dropped).
struct DropGuard(Arc<Counter>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.inc();
    }
}

// ===== spawn and join =====

rt_test! {
    fn spawn_and_await_output(rt) {
        let out = rt.block_on(async {
            let handles: Vec<_> = (0..100u64)
                .map(|i| waitrt::spawn(async move { i * 2 }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        });
        assert_eq!(out, 9900);
        // Runtime::spawn from outside, awaited by block_on.
        let handle = rt.spawn(async { String::from("hi") });
        assert_eq!(rt.block_on(handle).unwrap(), "hi");
        assert_eq!(rt.metrics().spawned_tasks(), 101);
    }
}

rt_test! {
    fn join_handle_drop_detaches(rt) {
        let gate = Gate::new();
        let done = Gate::new();
        rt.block_on({
            let (gate, done) = (gate.clone(), done.clone());
            async move {
                let handle = waitrt::spawn({
                    let (gate, done) = (gate.clone(), done.clone());
                    async move {
                        gate.wait().await;
                        yield_now().await;
                        done.open();
                    }
                });
                drop(handle); // detach: the task keeps running
                yield_now().await;
                assert!(!done.is_open());
                gate.open();
                done.wait().await;
            }
        });
        assert!(done.is_open());
    }
}

rt_test! {
    fn abort_pending_task_drops_its_future(rt) {
        rt.block_on(async {
            let dropped = Counter::new();
            let started = Gate::new();
            let handle = waitrt::spawn({
                let (dropped, started) = (dropped.clone(), started.clone());
                async move {
                    let _guard = DropGuard(dropped);
                    started.open();
                    std::future::pending::<()>().await;
                }
            });
            started.wait().await;
            assert!(!handle.is_finished());
            assert_eq!(dropped.get(), 0);
            handle.abort();
            let err = handle.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(!err.is_shutdown(), "{err:?}");
            assert!(!err.is_panic(), "{err:?}");
            assert_eq!(dropped.get(), 1, "the aborted task's future must be dropped");

            // Aborted right after spawn: on current-thread before its first
            // poll; on a worker it may already have run. Either way the
            // outcome matches what happened, and the future is dropped once.
            let ran = Arc::new(AtomicBool::new(false));
            let handle = waitrt::spawn({
                let (ran, guard) = (ran.clone(), DropGuard(dropped.clone()));
                async move {
                    let _guard = guard;
                    ran.store(true, SeqCst);
                }
            });
            handle.abort();
            match handle.await {
                Ok(()) => assert!(ran.load(SeqCst)),
                Err(err) => {
                    assert!(err.is_cancelled(), "{err:?}");
                    assert!(!ran.load(SeqCst), "aborted before its first poll, it must not run");
                }
            }
            assert_eq!(dropped.get(), 2);
        });
    }
}

rt_test! {
    fn abort_while_running_takes_effect_at_next_yield(rt) {
        rt.block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel::<waitrt::task::AbortHandle>();
            let after_yield = Arc::new(AtomicBool::new(false));
            let handle = waitrt::spawn({
                let after_yield = after_yield.clone();
                async move {
                    let me = rx.await.unwrap();
                    me.abort(); // abort ourselves while running
                    yield_now().await;
                    after_yield.store(true, SeqCst);
                }
            });
            tx.send(handle.abort_handle()).unwrap();
            let err = handle.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(!after_yield.load(SeqCst), "the task ran past the yield after its abort");
        });
    }
}

rt_test! {
    fn abort_after_completion_is_a_no_op(rt) {
        rt.block_on(async {
            let handle = waitrt::spawn(async { 7u32 });
            while !handle.is_finished() {
                yield_now().await;
            }
            handle.abort();
            handle.abort_handle().abort();
            assert_eq!(handle.await.unwrap(), 7);
        });
    }
}

rt_test! {
    fn is_finished_tracks_completion(rt) {
        rt.block_on(async {
            let gate = Gate::new();
            let handle = waitrt::spawn({
                let gate = gate.clone();
                async move { gate.wait().await }
            });
            for _ in 0..10 {
                yield_now().await;
            }
            assert!(!handle.is_finished());
            let abort = handle.abort_handle();
            assert!(!abort.is_finished());
            gate.open();
            while !handle.is_finished() {
                yield_now().await;
            }
            assert!(abort.is_finished());
            handle.await.unwrap();
        });
    }
}

rt_test! {
    fn abort_handle_cancels_from_another_task(rt) {
        rt.block_on(async {
            let dropped = Counter::new();
            let handle = waitrt::spawn({
                let guard = DropGuard(dropped.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<u32>().await
                }
            });
            let abort = handle.abort_handle();
            assert_eq!(abort.id(), handle.id());
            let clone = abort.clone();
            drop(abort); // dropping an AbortHandle does nothing
            yield_now().await;
            assert!(!handle.is_finished());
            waitrt::spawn(async move { clone.abort() }).await.unwrap();
            let err = handle.await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert_eq!(dropped.get(), 1);
        });
    }
}

rt_test! {
    fn panic_becomes_join_error_and_runtime_keeps_working(rt) {
        rt.block_on(async {
            let err = waitrt::spawn(async { panic!("boom {}", 7) }).await.unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            assert!(!err.is_cancelled(), "{err:?}");
            assert!(err.to_string().contains("boom 7"), "{err}");
            assert_eq!(panic_message(&*err.into_panic()), "boom 7");

            let err = waitrt::spawn(async {
                yield_now().await;
                std::panic::panic_any(42u32)
            })
            .await
            .unwrap_err();
            assert_eq!(*err.into_panic().downcast::<u32>().unwrap(), 42);

            // Still works afterwards.
            assert_eq!(waitrt::spawn(async { 1 }).await.unwrap(), 1);
        });
        assert_eq!(rt.block_on(async { waitrt::spawn(async { 2 }).await.unwrap() }), 2);
    }
}

rt_test! {
    fn join_set_order_and_total(rt) {
        rt.block_on(async {
            let gates: Vec<_> = (0..5).map(|_| Gate::new()).collect();
            let mut set = JoinSet::new();
            for (i, gate) in gates.iter().enumerate() {
                let gate = gate.clone();
                set.spawn(async move {
                    gate.wait().await;
                    i
                });
            }
            assert_eq!(set.len(), 5);
            for (left, i) in [3usize, 1, 4, 0, 2].into_iter().enumerate() {
                gates[i].open();
                assert_eq!(set.join_next().await.unwrap().unwrap(), i);
                assert_eq!(set.len(), 4 - left);
            }
            assert!(set.is_empty());
            assert!(set.join_next().await.is_none());

            let mut set = JoinSet::new();
            for i in 0..100u64 {
                set.spawn(async move {
                    if i % 3 == 0 {
                        yield_now().await;
                    }
                    i
                });
            }
            let (mut total, mut count) = (0, 0);
            while let Some(out) = set.join_next().await {
                total += out.unwrap();
                count += 1;
            }
            assert_eq!((count, total), (100, 4950));
        });
    }
}

rt_test! {
    fn join_set_drop_aborts_its_tasks(rt) {
        rt.block_on(async {
            let dropped = Counter::new();
            let started = Counter::new();
            let finished = Arc::new(AtomicUsize::new(0));
            let mut set = JoinSet::new();
            let mut aborts = Vec::new();
            for _ in 0..10 {
                let (guard, started, finished) =
                    (DropGuard(dropped.clone()), started.clone(), finished.clone());
                aborts.push(set.spawn(async move {
                    let _guard = guard;
                    started.inc();
                    std::future::pending::<()>().await;
                    finished.fetch_add(1, SeqCst);
                }));
            }
            started.wait_for(10).await;
            assert_eq!(dropped.get(), 0);
            drop(set);
            dropped.wait_for(10).await;
            for abort in &aborts {
                while !abort.is_finished() {
                    yield_now().await;
                }
            }
            assert_eq!(dropped.get(), 10);
            assert_eq!(finished.load(SeqCst), 0);
        });
    }
}

// ===== yielding and fairness =====

rt_test! {
    fn yield_now_lets_others_run(rt) {
        rt.block_on(async {
            let flag = Arc::new(AtomicBool::new(false));
            let spins = Arc::new(AtomicUsize::new(0));
            let spinner = waitrt::spawn({
                let (flag, spins) = (flag.clone(), spins.clone());
                async move {
                    while !flag.load(SeqCst) {
                        spins.fetch_add(1, SeqCst);
                        yield_now().await;
                    }
                }
            });
            let setter = waitrt::spawn({
                let flag = flag.clone();
                async move { flag.store(true, SeqCst) }
            });
            setter.await.unwrap();
            spinner.await.unwrap();
            assert!(flag.load(SeqCst));
        });
        // The block_on future yielding lets a spawned task run (current-
        // thread: at once; multi-thread: a worker picks it up meanwhile).
        rt.block_on(async {
            let other = waitrt::spawn(async { 1 });
            while !other.is_finished() {
                yield_now().await;
            }
            assert_eq!(other.await.unwrap(), 1);
        });
    }
}

/// How a fairness spinner burns its time.
#[derive(Clone, Copy)]
enum Spin {
    YieldNow,
    /// `wait_event(|| true)` in a loop: always ready, so only the
    /// cooperative budget makes it yield.
    ReadyWait,
}

/// A spinner runs until a victim that needs timers, a remote wake and
/// several polls has finished; the victim must finish while the spinner
/// still spins.
fn fairness(rt: &Runtime, spin: Spin) {
    let stop = Arc::new(AtomicBool::new(false));
    let spins = Arc::new(AtomicUsize::new(0));
    let spinner_done = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let spinner = waitrt::spawn({
            let (stop, spins, spinner_done) = (stop.clone(), spins.clone(), spinner_done.clone());
            async move {
                let queue = WaitQueue::new();
                while !stop.load(SeqCst) {
                    match spin {
                        Spin::YieldNow => yield_now().await,
                        Spin::ReadyWait => queue.wait_event(|| true).await.unwrap(),
                    }
                    spins.fetch_add(1, SeqCst);
                }
                spinner_done.store(true, SeqCst);
            }
        });
        let victim = waitrt::spawn({
            let (stop, spins, spinner_done) = (stop.clone(), spins.clone(), spinner_done.clone());
            async move {
                // Make sure the spinner runs (and, for ReadyWait, has gone
                // past one poll's budget at least once).
                while spins.load(SeqCst) < 300 {
                    yield_now().await;
                }
                sleep(ms(1)).await; // needs the timers processed
                let remote = Gate::new();
                let thread = std::thread::spawn({
                    let remote = remote.clone();
                    move || remote.open()
                });
                remote.wait().await; // needs a remote wake served
                thread.join().unwrap();
                for _ in 0..10 {
                    yield_now().await;
                }
                let still_spinning = !spinner_done.load(SeqCst);
                stop.store(true, SeqCst);
                still_spinning
            }
        });
        assert!(
            victim.await.unwrap(),
            "the victim finished only after the spinner stopped"
        );
        spinner.await.unwrap();
    });
    assert!(spins.load(SeqCst) >= 300);
}

rt_test! {
    fn yield_now_spinner_cannot_starve_others(rt) {
        let _serial = serial();
        fairness(&rt, Spin::YieldNow);
    }
}

rt_test! {
    fn ready_waitq_spinner_cannot_starve_others(rt) {
        let _serial = serial();
        fairness(&rt, Spin::ReadyWait);
        let forced = rt.metrics().budget_forced_yields();
        assert!(forced > 0, "the always-ready waitq spinner was never forced to yield");
    }
}

// ===== signals =====

/// Spawns a task that registers `wait` (polls it once: it must be pending),
/// opens `sleeping`, then awaits it.
fn spawn_sleeper<T, W>(
    queue: &Arc<WaitQueue>,
    sleeping: &Arc<Gate>,
    wait: W,
) -> waitrt::task::JoinHandle<(T, Option<SignalKind>)>
where
    T: Send + 'static,
    W: for<'q> FnOnce(
            &'q WaitQueue,
            waitrt::task::Signals,
        ) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'q>>
        + Send
        + 'static,
{
    let (queue, sleeping) = (queue.clone(), sleeping.clone());
    waitrt::spawn(async move {
        let signals = waitrt::task::signals();
        let mut fut = wait(&queue, signals.clone());
        assert!(poll!(fut.as_mut()).is_pending(), "the wait must sleep");
        sleeping.open();
        let out = fut.await;
        (out, signals.pending())
    })
}

rt_test! {
    fn interruptible_wait_ends_on_interrupt(rt) {
        rt.block_on(async {
            let queue = Arc::new(WaitQueue::new());
            let sleeping = Gate::new();
            let handle = spawn_sleeper(&queue, &sleeping, |q, s| {
                Box::pin(async move { q.wait_event_interruptible(&s, || false).await })
            });
            sleeping.wait().await;
            handle.interrupt();
            let (res, pending) = handle.await.unwrap();
            let err = res.unwrap_err();
            assert!(!err.is_fatal() && !err.is_closed(), "{err:?}");
            assert_eq!(pending, Some(SignalKind::Interrupt), "the signal stays pending");
        });
    }
}

rt_test! {
    fn killable_wait_ignores_interrupt_and_ends_on_kill(rt) {
        rt.block_on(async {
            let queue = Arc::new(WaitQueue::new());
            let sleeping = Gate::new();
            let handle = spawn_sleeper(&queue, &sleeping, |q, s| {
                Box::pin(async move { q.wait_event_killable(&s, || false).await })
            });
            sleeping.wait().await;
            handle.interrupt();
            queue.wake_up_all(); // even a wake does not end it
            sleep(ms(20)).await;
            assert!(!handle.is_finished(), "a killable wait ended on an interrupt");
            handle.kill();
            let (res, pending) = handle.await.unwrap();
            let err = res.unwrap_err();
            assert!(!err.is_closed(), "{err:?}");
            assert_eq!(pending, Some(SignalKind::Kill));
        });
    }
}

rt_test! {
    fn uninterruptible_wait_ignores_signals(rt) {
        rt.block_on(async {
            let queue = Arc::new(WaitQueue::new());
            let sleeping = Gate::new();
            let flag = Arc::new(AtomicBool::new(false));
            let handle = spawn_sleeper(&queue, &sleeping, {
                let flag = flag.clone();
                move |q, _s| Box::pin(async move { q.wait_event(|| flag.load(SeqCst)).await })
            });
            sleeping.wait().await;
            handle.interrupt();
            handle.kill();
            queue.wake_up_all();
            sleep(ms(20)).await;
            assert!(!handle.is_finished(), "an uninterruptible wait ended on a signal");
            flag.store(true, SeqCst);
            queue.wake_up_all();
            let (res, pending) = handle.await.unwrap();
            res.unwrap();
            assert_eq!(pending, Some(SignalKind::Kill));
        });
    }
}

rt_test! {
    fn true_condition_wins_over_signal(rt) {
        rt.block_on(async {
            // In the task: signal pending and condition true at the first poll.
            let out = waitrt::spawn(async {
                let signals = waitrt::task::signals();
                signals.interrupt();
                let queue = WaitQueue::new();
                let a = queue.wait_event_interruptible(&signals, || true).await;
                signals.kill();
                let b = queue.wait_event_killable(&signals, || true).await;
                let c = queue.wait_event_interruptible(&signals, || false).await;
                (a.is_ok(), b.is_ok(), c.map_err(|e| e.is_fatal()))
            })
            .await
            .unwrap();
            assert_eq!(out, (true, true, Err(true)));

            // Across tasks: the condition is made true before the signal.
            let queue = Arc::new(WaitQueue::new());
            let sleeping = Gate::new();
            let flag = Arc::new(AtomicBool::new(false));
            let handle = spawn_sleeper(&queue, &sleeping, {
                let flag = flag.clone();
                move |q, s| {
                    Box::pin(async move { q.wait_event_interruptible(&s, || flag.load(SeqCst)).await })
                }
            });
            sleeping.wait().await;
            flag.store(true, SeqCst);
            handle.interrupt();
            queue.wake_up_all();
            let (res, pending) = handle.await.unwrap();
            assert!(res.is_ok(), "a signal beat a true condition: {res:?}");
            assert_eq!(pending, Some(SignalKind::Interrupt));
        });
    }
}

rt_test! {
    fn clearing_signals_makes_the_next_wait_sleep(rt) {
        rt.block_on(async {
            let queue = Arc::new(WaitQueue::new());
            let flag = Arc::new(AtomicBool::new(false));
            let sleeping = Gate::new();
            let handle = waitrt::spawn({
                let (queue, flag, sleeping) = (queue.clone(), flag.clone(), sleeping.clone());
                async move {
                    let signals = waitrt::task::signals();
                    signals.interrupt();
                    let first = queue.wait_event_interruptible(&signals, || false).await;
                    assert!(first.is_err(), "a pending interrupt must end the wait");
                    let second = queue.wait_event_interruptible(&signals, || false).await;
                    assert!(second.is_err(), "the interrupt stays pending until cleared");
                    signals.clear();
                    assert_eq!(signals.pending(), None);
                    let mut wait = pin!(queue.wait_event_interruptible(&signals, || flag.load(SeqCst)));
                    assert!(poll!(wait.as_mut()).is_pending(), "after clear() the wait must sleep");
                    sleeping.open();
                    wait.await
                }
            });
            sleeping.wait().await;
            flag.store(true, SeqCst);
            queue.wake_up_all();
            handle.await.unwrap().unwrap();
        });
    }
}

// ===== spawning from anywhere =====

rt_test! {
    fn spawn_from_task_and_foreign_thread(rt) {
        // Nested spawn from inside a task.
        let out = rt.block_on(async {
            waitrt::spawn(async {
                let inner = waitrt::spawn(async { waitrt::spawn(async { 3 }).await.unwrap() + 1 });
                inner.await.unwrap() + 1
            })
            .await
            .unwrap()
        });
        assert_eq!(out, 5);

        // From plain threads, through a Handle.
        let handle = rt.handle().clone();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    let direct: Vec<_> = (0..25u64).map(|i| handle.spawn(async move { t * 100 + i })).collect();
                    let _enter = handle.enter();
                    let entered = waitrt::spawn(async move { Handle::current().spawn(async { 1000u64 }).await.unwrap() });
                    (direct, entered)
                })
            })
            .collect();
        let mut joins = Vec::new();
        for thread in threads {
            let (direct, entered) = thread.join().unwrap();
            joins.extend(direct);
            joins.push(entered);
        }
        let total = rt.block_on(async {
            let mut total = 0;
            for join in joins {
                total += join.await.unwrap();
            }
            total
        });
        let expected: u64 = (0..4u64).map(|t| (0..25u64).map(|i| t * 100 + i).sum::<u64>() + 1000).sum();
        assert_eq!(total, expected);
        assert!(Handle::try_current().is_none());
    }
}

rt_test! {
    fn nested_block_on_panics_with_a_clear_message(rt) {
        rt.block_on(async {
            let err = waitrt::spawn(async { waitrt::block_on(async { 1 }) })
                .await
                .unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            let msg = panic_message(&*err.into_panic());
            assert!(msg.contains("inside a runtime"), "unclear message: {msg}");

            // Caught inside the task, which then carries on.
            let caught = waitrt::spawn(async {
                let res = std::panic::catch_unwind(|| waitrt::block_on(async { 1 }));
                let msg = panic_message(&*res.unwrap_err());
                yield_now().await;
                msg
            })
            .await
            .unwrap();
            assert!(caught.contains("inside a runtime"), "unclear message: {caught}");

            // From the block_on future itself.
            let res = std::panic::catch_unwind(|| waitrt::block_on(async { 1 }));
            let msg = panic_message(&*res.unwrap_err());
            assert!(msg.contains("inside a runtime"), "unclear message: {msg}");
        });
        // And the runtime still works.
        assert_eq!(rt.block_on(async { waitrt::spawn(async { 9 }).await.unwrap() }), 9);
    }
}

// ===== outside the macro =====

#[test]
fn block_on_free_function() {
    support::watchdog("block_on_free_function", support::RT_LIMIT, || {
        assert_eq!(waitrt::block_on(async { 40 + 2 }), 42);
        let out = waitrt::block_on(async {
            let task = waitrt::spawn(async {
                sleep(ms(1)).await;
                waitrt::spawn_blocking(|| 5).await.unwrap()
            });
            task.await.unwrap() + 1
        });
        assert_eq!(out, 6);
        // Each call gets (and drops) its own runtime.
        assert!(Handle::try_current().is_none());
        assert_eq!(
            waitrt::block_on(async { Handle::current().metrics().spawned_tasks() }),
            0
        );
    });
}

// ===== current-thread block_on from two threads =====

/// Thread A drives a current-thread runtime (holds its core) while thread B
/// calls `block_on` on the same runtime. B's future must complete when it
/// is woken, however the two threads share the runtime's parker.
#[test]
fn current_thread_block_on_from_two_threads() {
    support::watchdog(
        "current_thread_block_on_from_two_threads",
        Duration::from_secs(30),
        || {
            for _ in 0..20 {
                let rt = Arc::new(Builder::new_current_thread().enable_all().build().unwrap());
                let (gate_a, gate_b) = (Gate::new(), Gate::new());
                let in_a = Gate::new();
                let a = std::thread::spawn({
                    let (rt, gate_a, in_a) = (rt.clone(), gate_a.clone(), in_a.clone());
                    move || {
                        rt.block_on(async move {
                            in_a.open();
                            gate_a.wait().await;
                        })
                    }
                });
                in_a.queue.blocking_wait_event(|| in_a.is_open()).unwrap();
                let b = std::thread::spawn({
                    let (rt, gate_b) = (rt.clone(), gate_b.clone());
                    move || rt.block_on(async move { gate_b.wait().await })
                });
                std::thread::sleep(Duration::from_millis(1));
                gate_b.open();
                b.join().unwrap();
                gate_a.open();
                a.join().unwrap();
            }
        },
    );
}

/// As above, but A's `block_on` returns while B still waits on a task: B
/// must then run the tasks itself (nobody else drives them).
#[test]
fn current_thread_second_block_on_takes_over_the_tasks() {
    support::watchdog(
        "current_thread_second_block_on_takes_over_the_tasks",
        Duration::from_secs(30),
        || {
            let rt = Arc::new(Builder::new_current_thread().enable_all().build().unwrap());
            let (gate_a, gate_b) = (Gate::new(), Gate::new());
            let in_a = Gate::new();
            let a = std::thread::spawn({
                let (rt, gate_a, in_a) = (rt.clone(), gate_a.clone(), in_a.clone());
                move || {
                    rt.block_on(async move {
                        in_a.open();
                        gate_a.wait().await;
                    })
                }
            });
            in_a.queue.blocking_wait_event(|| in_a.is_open()).unwrap();
            let b = std::thread::spawn({
                let (rt, gate_b) = (rt.clone(), gate_b.clone());
                move || {
                    rt.block_on(async move {
                        gate_b.wait().await;
                        waitrt::spawn(async { 11 }).await.unwrap()
                    })
                }
            });
            gate_a.open();
            a.join().unwrap(); // A gives the core back
            gate_b.open(); // B now needs a task run
            assert_eq!(b.join().unwrap(), 11);
        },
    );
}

rt_test! {
    fn join_set_joins_ten_thousand_members_each_once(rt) {
        rt.block_on(async {
            let mut set = JoinSet::new();
            for i in 0..10_000u64 {
                set.spawn(async move {
                    for _ in 0..(i % 3) {
                        yield_now().await;
                    }
                    i
                });
            }
            let mut seen = vec![false; 10_000];
            while let Some(out) = set.join_next().await {
                let i = out.unwrap() as usize;
                assert!(!std::mem::replace(&mut seen[i], true), "member {i} joined twice");
            }
            assert!(seen.iter().all(|&s| s), "a member was never joined");
            assert!(set.is_empty());
        });
    }
}

rt_test! {
    fn join_set_slots_reused_after_detach_do_not_mix_results(rt) {
        rt.block_on(async {
            let gate = Gate::new();
            let mut set = JoinSet::new();
            for _ in 0..8 {
                let gate = gate.clone();
                set.spawn(async move {
                    gate.wait().await;
                    "detached"
                });
            }
            set.detach_all();
            for _ in 0..8 {
                set.spawn(async { "kept" });
            }
            gate.open(); // the detached members finish and wake stale keys
            let mut kept = 0;
            while let Some(out) = set.join_next().await {
                assert_eq!(out.unwrap(), "kept");
                kept += 1;
            }
            assert_eq!(kept, 8);
        });
    }
}

/// Panics when dropped, and counts its drops.
#[derive(Debug)]
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("this destructor panics on purpose");
    }
}

/// Ready at once with its output; its own field panics when the future
/// is dropped afterwards.
struct ReadyThenPanics {
    _guard: PanicsOnDrop,
    output: Option<PanicsOnDrop>,
}

impl std::future::Future for ReadyThenPanics {
    type Output = PanicsOnDrop;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<PanicsOnDrop> {
        std::task::Poll::Ready(self.output.take().expect("polled once"))
    }
}

rt_test! {
    fn a_future_whose_drop_panics_is_dropped_once_and_reported(rt) {
        rt.block_on(async {
            // Completes, then its destructor panics: the output is lost and
            // the handle reports the panic.
            let drops = Arc::new(AtomicUsize::new(0));
            let guard = PanicsOnDrop(drops.clone());
            let done = waitrt::spawn(async move {
                let _guard = guard;
                7
            });
            let err = done.await.expect_err("a panicking destructor is a panic");
            assert!(err.is_panic(), "{err}");
            // Returns its output, and then dropping the future panics (a
            // field, not a local: dropped after the poll), and so does
            // dropping the output, which nobody will get now. Both are
            // dropped once and neither panic escapes into the worker.
            let both = waitrt::spawn(ReadyThenPanics {
                _guard: PanicsOnDrop(drops.clone()),
                output: Some(PanicsOnDrop(drops.clone())),
            });
            let err = both.await.expect_err("a panicking destructor is a panic");
            assert!(err.is_panic(), "{err}");
            assert_eq!(drops.load(SeqCst), 3, "future and output dropped once each");
            // Aborted while pending: dropped once, and the handle reports
            // the destructor's panic (as tokio's; it said "cancelled", the
            // payload lost, before rt_faults' test of it).
            let pending = PanicsOnDrop(drops.clone());
            let stuck = waitrt::spawn(async move {
                let _pending = pending;
                std::future::pending::<()>().await
            });
            yield_now().await;
            stuck.abort();
            assert!(stuck.await.expect_err("aborted").is_panic());
            // The runtime carries on, and nothing was dropped twice.
            assert_eq!(waitrt::spawn(async { 1 }).await.unwrap(), 1);
            assert_eq!(drops.load(SeqCst), 4);
        });
    }
}

rt_test! {
    fn join_set_spawn_on_try_join_next_and_join_all(rt) {
        // spawn_on and spawn_blocking_on from outside the runtime.
        let mut set = JoinSet::new();
        set.spawn_on(async { 1 }, rt.handle());
        set.spawn_blocking_on(|| 2, rt.handle());
        let mut got = rt.block_on(set.join_all());
        got.sort_unstable();
        assert_eq!(got, [1, 2]);

        rt.block_on(async {
            // try_join_next never waits: None while nothing finished.
            let mut set = JoinSet::new();
            assert!(set.try_join_next().is_none());
            let gate = Gate::new();
            let g = gate.clone();
            set.spawn(async move {
                g.wait().await;
                7
            });
            assert!(set.try_join_next().is_none());
            gate.open();
            // Sleeps, not a count of yields: a worker of a loaded machine
            // may not run the task within any number of them (seen in CI
            // on 2 workers; a 60 s watchdog).
            let mut done = None;
            for _ in 0..60_000 {
                if let Some(out) = set.try_join_next() {
                    done = Some(out.unwrap());
                    break;
                }
                sleep(ms(1)).await;
            }
            assert_eq!(done, Some(7));
            assert!(set.try_join_next().is_none() && set.is_empty());

            // join_all passes a member's panic on, payload and all.
            let mut set = JoinSet::new();
            set.spawn(async { panic!("member boom") });
            set.spawn(async { 1 });
            let res = AssertUnwindSafe(set.join_all()).catch_unwind().await;
            let payload = res.unwrap_err();
            assert_eq!(*payload.downcast::<&str>().unwrap(), "member boom");
        });
    }
}

rt_test! {
    fn try_join_next_sees_a_finished_task_with_the_budget_spent(rt) {
        rt.block_on(async {
            let mut set = JoinSet::new();
            let done = set.spawn(async { 5 });
            // Sleeps, not a count of yields: a worker of a loaded machine
            // may not run it within any number of them (a 60 s watchdog).
            for _ in 0..60_000 {
                if done.is_finished() {
                    break;
                }
                sleep(ms(1)).await;
            }
            assert!(done.is_finished());
            let got = std::future::poll_fn(|cx| {
                // Spend the whole budget of this poll, then ask: the set
                // polled its members within the budget and said "none
                // finished" with one done (a review).
                while waitrt::sync::coop::poll_proceed(cx).is_ready() {}
                std::task::Poll::Ready(set.try_join_next())
            })
            .await;
            assert_eq!(got.map(Result::unwrap), Some(5));
        });
    }
}
