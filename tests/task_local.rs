//! Task-local storage (`task_local!`, `LocalKey`, `TaskLocalFuture`) on
//! every scheduler flavour through `rt_test!`: values kept across awaits
//! and timers, not inherited by spawned tasks, many tasks interleaving on
//! one thread each seeing its own value, nested scopes, a task that
//! migrates between workers, drop order (the inner future is dropped
//! inside the scope, then the value), `sync_scope`, panics, and the
//! message outside a scope.
#[macro_use]
mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use waitrt::task::yield_now;

waitrt::task_local! {
    static NUMBER: u32;
    /// A documented key, public within the crate.
    pub(crate) static NAME: String;
    static TRACE: Trace;
}

/// What happened, in order: pushed to by drops and reads.
type Log = Arc<Mutex<Vec<String>>>;

/// A value that logs its own drop.
#[derive(Debug)]
struct Trace {
    name: &'static str,
    log: Log,
}

impl Drop for Trace {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("drop value {}", self.name));
    }
}

/// A future that never completes and, when dropped, logs what `TRACE`
/// holds at that moment.
struct ReadsOnDrop(Log);

impl Future for ReadsOnDrop {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        let seen = TRACE.try_with(|t| t.name).unwrap_or("nothing");
        self.0
            .lock()
            .unwrap()
            .push(format!("drop future, saw {seen}"));
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

rt_test! {
    fn kept_across_awaits_and_timers(rt) {
        rt.block_on(async {
            let got = NUMBER
                .scope(5, async {
                    let mut seen = Vec::new();
                    for _ in 0..10 {
                        yield_now().await;
                        seen.push(NUMBER.get());
                        waitrt::time::sleep(Duration::from_millis(1)).await;
                        seen.push(NUMBER.with(|n| *n));
                    }
                    seen
                })
                .await;
            assert_eq!(got, vec![5; 20]);
            // Gone once the scope has completed.
            assert!(NUMBER.try_with(|_| ()).is_err());
        });
    }
}

rt_test! {
    fn spawned_tasks_do_not_inherit(rt) {
        rt.block_on(async {
            NUMBER
                .scope(1, async {
                    let child = waitrt::spawn(async { NUMBER.try_with(|n| *n) });
                    assert!(child.await.unwrap().is_err(), "a spawned task saw its spawner's value");
                    // A spawned task with its own scope sees its own value,
                    // and the spawner keeps its own.
                    let child = waitrt::spawn(NUMBER.scope(2, async {
                        yield_now().await;
                        NUMBER.get()
                    }));
                    assert_eq!(child.await.unwrap(), 2);
                    assert_eq!(NUMBER.get(), 1);
                    // Blocking-pool jobs do not see it either.
                    let job = waitrt::spawn_blocking(|| NUMBER.try_with(|n| *n));
                    assert!(job.await.unwrap().is_err());
                })
                .await;
        });
    }
}

rt_test! {
    /// 100 tasks with their own values, yielding to each other 50 times
    /// each: every read sees the reader's value, never a neighbour's (the
    /// value is swapped in and out around each poll).
    fn interleaved_tasks_each_see_their_own(rt) {
        rt.block_on(async {
            let wrong = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for i in 0..100u32 {
                let wrong = wrong.clone();
                tasks.push(waitrt::spawn(NUMBER.scope(i, async move {
                    for round in 0..50 {
                        if NUMBER.get() != i {
                            wrong.fetch_add(1, SeqCst);
                        }
                        if round % 7 == 0 {
                            waitrt::time::sleep(Duration::from_micros(50)).await;
                        } else {
                            yield_now().await;
                        }
                    }
                })));
            }
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(wrong.load(SeqCst), 0);
            // Nothing left behind in this thread's slot.
            assert!(NUMBER.try_with(|_| ()).is_err());
        });
    }
}

rt_test! {
    fn nested_scopes_restore_the_outer_value(rt) {
        rt.block_on(async {
            NUMBER
                .scope(1, async {
                    assert_eq!(NUMBER.get(), 1);
                    let inner = NUMBER.scope(2, async {
                        yield_now().await;
                        let innermost = NUMBER.scope(3, async {
                            yield_now().await;
                            NUMBER.get()
                        });
                        let got = innermost.await;
                        (got, NUMBER.get())
                    });
                    assert_eq!(inner.await, (3, 2));
                    assert_eq!(NUMBER.get(), 1);
                    // Another key is independent.
                    NAME.scope("n".into(), async {
                        assert_eq!(NUMBER.get(), 1);
                        assert_eq!(NAME.get(), "n");
                    })
                    .await;
                    // A sync scope inside an async one, and back.
                    assert_eq!(NUMBER.sync_scope(9, || NUMBER.get()), 9);
                    assert_eq!(NUMBER.get(), 1);
                })
                .await;
        });
    }
}

rt_test! {
    /// The inner future is dropped inside the scope (its destructor reads
    /// the value), then the value: on completion, and on cancellation.
    fn drop_order_future_then_value(rt) {
        rt.block_on(async {
            // Completed: the inner future's state (holding a ReadsOnDrop)
            // is dropped inside the scope; the value with the outer future.
            let events = log();
            let trace = Trace { name: "done", log: events.clone() };
            let guard = ReadsOnDrop(events.clone());
            TRACE
                .scope(trace, async move {
                    let _guard = guard;
                    yield_now().await;
                })
                .await;
            assert_eq!(entries(&events), ["drop future, saw done", "drop value done"]);

            // Dropped before it completed (never polled, then polled once).
            for polled in [false, true] {
                let events = log();
                let trace = Trace { name: "cancelled", log: events.clone() };
                let mut scoped = Box::pin(TRACE.scope(trace, ReadsOnDrop(events.clone())));
                if polled {
                    let waker = futures::task::noop_waker();
                    let poll = scoped.as_mut().poll(&mut std::task::Context::from_waker(&waker));
                    assert!(poll.is_pending());
                }
                assert!(entries(&events).is_empty());
                drop(scoped);
                assert_eq!(
                    entries(&events),
                    ["drop future, saw cancelled", "drop value cancelled"],
                    "polled: {polled}"
                );
            }

            // An aborted task: the same order, on the task's own drop.
            let events = log();
            let trace = Trace { name: "aborted", log: events.clone() };
            let task = waitrt::spawn(TRACE.scope(trace, ReadsOnDrop(events.clone())));
            yield_now().await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            assert_eq!(entries(&events), ["drop future, saw aborted", "drop value aborted"]);

            // A spawned task that completes drops its value by the time it
            // can be joined.
            let events = log();
            let trace = Trace { name: "task", log: events.clone() };
            waitrt::spawn(TRACE.scope(trace, async { yield_now().await }))
                .await
                .unwrap();
            assert_eq!(entries(&events), ["drop value task"]);
        });
    }
}

rt_test! {
    /// On completion the inner future is dropped at once, inside the
    /// scope; the value stays in the outer future until it is dropped or
    /// taken; polling again panics with a message naming the type.
    fn take_value_gives_the_value_back(rt) {
        rt.block_on(async {
            let events = log();
            let guard = ReadsOnDrop(events.clone());
            let trace = Trace { name: "kept", log: events.clone() };
            let mut scoped = pin!(TRACE.scope(trace, async move {
                let _guard = guard;
                yield_now().await;
                TRACE.with(|t| t.name)
            }));
            assert_eq!((&mut scoped).await, "kept");
            assert_eq!(entries(&events), ["drop future, saw kept"]);
            let waker = futures::task::noop_waker();
            let again = catch_unwind(AssertUnwindSafe(|| {
                let _ = scoped.as_mut().poll(&mut std::task::Context::from_waker(&waker));
            }));
            let message = panic_message(again.unwrap_err());
            assert!(message.contains("`TaskLocalFuture` polled after it completed"), "{message}");
            let value = scoped.as_mut().take_value().expect("the value is still there");
            assert_eq!(value.name, "kept");
            assert!(scoped.as_mut().take_value().is_none());
            drop(value);
            assert_eq!(entries(&events), ["drop future, saw kept", "drop value kept"]);
        });
    }
}

rt_test! {
    /// A panic inside a scope's poll (caught by the task) leaves no value
    /// behind on the thread: the next task there sees none.
    fn a_panicking_poll_restores_the_slot(rt) {
        rt.block_on(async {
            let task = waitrt::spawn(NUMBER.scope(4, async {
                yield_now().await;
                panic!("boom inside the scope");
            }));
            assert!(task.await.unwrap_err().is_panic());
            let after = waitrt::spawn(async { NUMBER.try_with(|n| *n) });
            assert!(after.await.unwrap().is_err());
            assert!(NUMBER.try_with(|_| ()).is_err());
            NUMBER
                .scope(8, async {
                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        NUMBER.sync_scope(9, || panic!("boom in sync_scope"))
                    }));
                    assert!(caught.is_err());
                    assert_eq!(NUMBER.get(), 8, "the outer value was not restored");
                })
                .await;
        });
    }
}

/// A task on a 2-worker runtime that moves between the workers keeps its
/// value on each, and leaves none behind on the worker it left. Each round
/// the task spawns a hog behind it on its worker and sleeps on a oneshot;
/// the hog blocks that worker (bounded) and, once running, lets a plain
/// thread send. A wake from outside the runtime goes to the global queue,
/// so the other worker, the only free one, continues the task. Every hog
/// checks that the slot on its thread is empty.
#[test]
fn a_migrating_task_keeps_its_value() {
    support::watchdog(
        "a_migrating_task_keeps_its_value",
        support::RT_LIMIT,
        || {
            let rt = support::build(Some(2));
            rt.block_on(async {
                let task = waitrt::spawn(NUMBER.scope(42, async {
                    let leaked = Arc::new(AtomicUsize::new(0));
                    let mut threads: Vec<ThreadId> = vec![std::thread::current().id()];
                    let mut moves = 0;
                    for _ in 0..500 {
                        if moves >= 5 {
                            break;
                        }
                        let here = std::thread::current().id();
                        let moved = Arc::new(AtomicUsize::new(0));
                        let started = Arc::new(AtomicUsize::new(0));
                        let hog = {
                            let (moved, leaked) = (moved.clone(), leaked.clone());
                            let started = started.clone();
                            waitrt::spawn(async move {
                                if NUMBER.try_with(|_| ()).is_ok() {
                                    leaked.fetch_add(1, SeqCst);
                                }
                                started.store(1, SeqCst);
                                // Hold the task's worker until the task has
                                // moved on (or 50 ms): blocking on purpose. A
                                // hog another worker took blocks nothing the
                                // task needs: it ends at once, and the next
                                // round tries again.
                                let start = Instant::now();
                                while std::thread::current().id() == here
                                    && moved.load(SeqCst) == 0
                                    && start.elapsed() < Duration::from_millis(50)
                                {
                                    std::thread::yield_now();
                                }
                            })
                        };
                        let (tx, rx) = waitrt::sync::oneshot::channel();
                        let sender = std::thread::spawn(move || {
                            let start = Instant::now();
                            while started.load(SeqCst) == 0
                                && start.elapsed() < Duration::from_secs(1)
                            {
                                std::thread::yield_now();
                            }
                            let _ = tx.send(());
                        });
                        rx.await.expect("the sender thread sends");
                        assert_eq!(NUMBER.get(), 42, "the value did not travel");
                        let now = std::thread::current().id();
                        if now != here {
                            moves += 1;
                            threads.push(now);
                        }
                        moved.store(1, SeqCst);
                        hog.await.unwrap();
                        sender.join().unwrap();
                        assert_eq!(NUMBER.get(), 42);
                    }
                    (moves, leaked.load(SeqCst), threads)
                }));
                let (moves, leaked, threads) = task.await.unwrap();
                assert!(
                    moves >= 1,
                    "the task never moved between workers: {threads:?}"
                );
                assert_eq!(
                    leaked, 0,
                    "a task on a worker the scoped task had left saw its value"
                );
            });
        },
    );
}

#[test]
fn outside_a_scope_with_panics_naming_the_key() {
    let panic = catch_unwind(|| NUMBER.with(|n| *n)).unwrap_err();
    let message = panic_message(panic);
    assert!(
        message.contains("`NUMBER`") && message.contains("scope"),
        "{message}"
    );
    let panic = catch_unwind(|| NAME.get()).unwrap_err();
    assert!(panic_message(panic).contains("`NAME`"));
    let err = NUMBER.try_with(|n| *n).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task-local `NUMBER` read outside its scope"
    );
    // Inside a runtime but outside a scope: the same.
    let rt = support::build(None);
    rt.block_on(async {
        assert!(NUMBER.try_with(|_| ()).is_err());
        let panic = catch_unwind(|| NUMBER.get()).unwrap_err();
        assert!(panic_message(panic).contains("`NUMBER`"));
    });
}

/// A scope cannot start inside `with`'s closure of the same key: a clear
/// panic, and the value read there is intact afterwards.
#[test]
fn a_scope_inside_with_panics_clearly() {
    NUMBER.sync_scope(1, || {
        let panic = catch_unwind(|| NUMBER.with(|_| NUMBER.sync_scope(2, || ()))).unwrap_err();
        let message = panic_message(panic);
        assert!(message.contains("inside `NUMBER.with`"), "{message}");
        assert_eq!(NUMBER.get(), 1);
    });
    assert!(NUMBER.try_with(|_| ()).is_err());
}

/// `sync_scope` works without any runtime, and drops its value as it
/// returns.
#[test]
fn sync_scope_needs_no_runtime() {
    let events = log();
    let got = TRACE.sync_scope(
        Trace {
            name: "sync",
            log: events.clone(),
        },
        || TRACE.with(|t| t.name),
    );
    assert_eq!(got, "sync");
    assert_eq!(entries(&events), ["drop value sync"]);
    assert!(TRACE.try_with(|_| ()).is_err());
}
