//! `waitrt::sync::watch`: no update missed (real threads and the
//! toolkit), seen-marking, `wait_for`, closing, the kernel forms, the budget.

#[macro_use]
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::task::{Context, Waker};
use std::time::Duration;

use support::{watchdog, WATCHDOG};
use waitrt::sync::watch;

const SEEDS: u64 = if cfg!(debug_assertions) { 300 } else { 3_000 };
const ITERS: usize = if cfg!(debug_assertions) { 200 } else { 2_000 };

/// Runs `scenario` `ITERS` times on a 2-worker runtime, then `SEEDS`
/// seeds under the toolkit with random and PCT schedules.
fn both<F, Fut>(name: &str, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    support::both_modes(name, ITERS, SEEDS, true, scenario);
}

// ===== no update missed =====

const LAST: u32 = 5;

/// A sender updates while receivers loop on `changed` + `borrow_and_update`
/// (and `wait_for`): each observes the final value, with the sender still
/// alive (so only the send's own wake can deliver it).
async fn changed_never_misses_the_last_update() {
    let (tx, rx) = watch::channel(0u32);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = rx.clone();
            waitrt::spawn(async move {
                let mut last = *rx.borrow_and_update();
                while last != LAST {
                    rx.changed().await.unwrap();
                    let now = *rx.borrow_and_update();
                    assert!(now >= last, "went back from {last} to {now}");
                    last = now;
                }
            })
        })
        .collect();
    let mut waiter = rx.clone();
    let waiter = waitrt::spawn(async move { *waiter.wait_for(|v| *v == LAST).await.unwrap() });
    drop(rx);
    let sender = waitrt::spawn(async move {
        for i in 1..=LAST {
            if i % 2 == 0 {
                tx.send_modify(|v| *v = i);
            } else {
                tx.send(i).unwrap();
            }
            waitrt::task::yield_now().await;
        }
        tx
    });
    let tx = sender.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(waiter.await.unwrap(), LAST);
    drop(tx);
}

#[test]
fn changed_never_misses_an_update() {
    both(
        "changed_never_misses_the_last_update",
        changed_never_misses_the_last_update,
    );
}

/// Plain threads hammer the version: a sender thread with no yields, a
/// reader thread with `blocking_changed`; the reader always ends on the
/// final value.
#[test]
fn the_final_value_is_always_observed_on_threads() {
    watchdog("watch final value", WATCHDOG, || {
        for _ in 0..ITERS {
            let (tx, mut rx) = watch::channel(0u32);
            // tokio's loop: look (marking seen), then wait for the next.
            let reader = std::thread::spawn(move || loop {
                let last = *rx.borrow_and_update();
                if rx.blocking_changed().is_err() {
                    return last;
                }
            });
            for i in 1..=1000 {
                tx.send_replace(i);
                if i % 8 == 0 {
                    std::thread::yield_now();
                }
            }
            drop(tx);
            assert_eq!(reader.join().unwrap(), 1000);
        }
    });
}

/// Receivers on many threads sleep on several of the channel's wait
/// queues (each thread has its own): one send wakes every one of them,
/// round after round. Each round waits until every reader is about to
/// wait again, then sends; a reader whose queue the send skipped never
/// reports and the round's wait panics.
#[test]
fn one_send_wakes_receivers_on_every_thread() {
    const THREADS: usize = 12;
    const ROUNDS: u32 = 20;
    watchdog("watch send wakes every thread", WATCHDOG, || {
        let (tx, rx) = watch::channel(0u32);
        let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let readers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (mut rx, ready) = (rx.clone(), ready.clone());
                std::thread::spawn(move || {
                    for round in 1..=ROUNDS {
                        ready.fetch_add(1, SeqCst);
                        rx.blocking_changed().unwrap();
                        assert_eq!(*rx.borrow_and_update(), round);
                    }
                })
            })
            .collect();
        for round in 1..=ROUNDS {
            let want = THREADS * round as usize;
            let mut waited = Duration::ZERO;
            while ready.load(SeqCst) < want {
                assert!(
                    waited < support::WAIT_LIMIT,
                    "round {round}: {} of {THREADS} readers were woken",
                    THREADS + ready.load(SeqCst) - want
                );
                std::thread::sleep(Duration::from_millis(1));
                waited += Duration::from_millis(1);
            }
            // Most readers are asleep by now (not needed for the check).
            std::thread::sleep(Duration::from_millis(2));
            tx.send(round).unwrap();
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

/// The same with reader tasks on a 4-worker runtime: each worker's readers
/// sleep on that worker's queue.
#[test]
fn one_send_wakes_reader_tasks_on_every_worker() {
    const READERS: usize = 16;
    const ROUNDS: u32 = 200;
    watchdog("watch send wakes every worker", WATCHDOG, || {
        let rt = waitrt::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = watch::channel(0u32);
            let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let (mut rx, ready) = (rx.clone(), ready.clone());
                    waitrt::spawn(async move {
                        for round in 1..=ROUNDS {
                            ready.fetch_add(1, SeqCst);
                            rx.changed().await.unwrap();
                            assert_eq!(*rx.borrow_and_update(), round);
                        }
                    })
                })
                .collect();
            for round in 1..=ROUNDS {
                let want = READERS * round as usize;
                support::wait_until("every reader waits again", || ready.load(SeqCst) >= want)
                    .await;
                tx.send(round).unwrap();
            }
            for reader in readers {
                reader.await.unwrap();
            }
        });
    });
}

/// The version moves with the value, under its lock: while a sender is in
/// the middle of a modification, nobody sees a new version yet, and once
/// the new version is visible the value read is the new one.
#[test]
fn the_version_never_runs_ahead_of_the_value() {
    let (tx, mut rx) = watch::channel(0u32);
    let inside = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let sender = {
        let (inside, release) = (inside.clone(), release.clone());
        std::thread::spawn(move || {
            tx.send_modify(|v| {
                *v = 1;
                inside.wait();
                release.wait();
            });
            tx
        })
    };
    inside.wait();
    assert_eq!(
        rx.has_changed(),
        Ok(false),
        "version bumped before the write finished"
    );
    release.wait();
    // Blocks on the lock until the sender is done, then sees both.
    let seen = *rx.borrow_and_update();
    let tx = sender.join().unwrap();
    assert_eq!(seen, 1);
    assert_eq!(rx.has_changed(), Ok(false));
    drop(tx);
}

// ===== seen-marking =====

#[test]
fn borrow_and_update_marks_seen_and_borrow_does_not() {
    let (tx, mut rx) = watch::channel("a");
    assert!(!rx.borrow().has_changed());
    tx.send("b").unwrap();
    assert!(rx.borrow().has_changed());
    assert_eq!(rx.has_changed(), Ok(true));
    assert!(rx.borrow_and_update().has_changed());
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(!rx.borrow_and_update().has_changed());
    // A clone has seen what its original had; a subscriber the current value.
    tx.send("c").unwrap();
    let rx2 = rx.clone();
    assert_eq!(rx2.has_changed(), Ok(true));
    assert_eq!(tx.subscribe().has_changed(), Ok(false));
    // mark_changed / mark_unchanged.
    rx.mark_unchanged();
    assert_eq!(rx.has_changed(), Ok(false));
    rx.mark_changed();
    assert_eq!(rx.has_changed(), Ok(true));
    let rt = support::build(None);
    rt.block_on(async {
        rx.changed().await.unwrap(); // at once
        assert_eq!(rx.has_changed(), Ok(false));
        // send_if_modified(false) is quiet.
        assert!(!tx.send_if_modified(|_| false));
        assert_eq!(rx.has_changed(), Ok(false));
    });
    assert!(rx.same_channel(&rx2) && !rx.same_channel(&watch::channel("x").1));
}

#[test]
fn wait_for_checks_the_current_value_then_waits() {
    let rt = support::build(Some(2));
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(3);
        assert_eq!(*rx.wait_for(|v| *v == 3).await.unwrap(), 3); // already true
        let sender = waitrt::spawn(async move {
            for i in 4..=8 {
                tx.send(i).unwrap();
                waitrt::task::yield_now().await;
            }
        });
        let got = *rx.wait_for(|v| *v >= 6).await.unwrap();
        assert!(got >= 6);
        sender.await.unwrap();
        // Closed: the last value is still checked once.
        assert_eq!(*rx.wait_for(|v| *v == 8).await.unwrap(), 8);
        assert!(rx.wait_for(|v| *v == 9).await.is_err());
    });
}

// ===== closing =====

/// Receivers asleep in `changed` (every async form) are woken with an error
/// when the sender drops; an unseen change is reported first.
async fn sender_drop_wakes_changed() {
    let hour = Duration::from_secs(3600);
    let (tx, rx) = watch::channel(0);
    let (mut a, mut b, mut c) = (rx.clone(), rx.clone(), rx);
    let a = waitrt::spawn(async move { a.changed().await });
    let b = waitrt::spawn(async move { b.changed_interruptible().await });
    let c = waitrt::spawn(async move { (c.changed_timeout(hour).await, c) });
    waitrt::spawn(async move { drop(tx) }).await.unwrap();
    assert!(a.await.unwrap().is_err());
    assert!(matches!(b.await.unwrap(), Ok(Err(_))));
    let (res, c) = c.await.unwrap();
    assert!(matches!(res, Ok(Err(_))));
    assert!(c.is_closed());
}

#[test]
fn sender_drop_wakes_changed_with_an_error() {
    both("sender_drop_wakes_changed", sender_drop_wakes_changed);
    // An unseen change comes first.
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    drop(tx);
    assert!(rx.has_changed().is_err()); // tokio: has_changed reports the close
    let rt = support::build(None);
    rt.block_on(async {
        assert!(rx.changed().await.is_ok());
        assert_eq!(*rx.borrow_and_update(), 1);
        assert!(rx.changed().await.is_err());
    });
}

#[test]
fn send_needs_a_receiver_and_closed_waits_for_none() {
    let rt = support::build(Some(2));
    rt.block_on(async {
        let (tx, rx) = watch::channel(0);
        let rx2 = tx.subscribe();
        assert_eq!(tx.receiver_count(), 2);
        let closed = {
            let tx = tx.clone();
            waitrt::spawn(async move { tx.closed().await })
        };
        drop(rx);
        waitrt::task::yield_now().await;
        assert!(!closed.is_finished());
        drop(rx2);
        closed.await.unwrap();
        assert!(tx.is_closed());
        assert_eq!(tx.send(1), Err(watch::error::SendError(1)));
        assert_eq!(tx.send_replace(2), 0); // stored anyway
        assert_eq!(*tx.borrow(), 2);
    });
}

// ===== cancel safety and kernel forms =====

#[test]
fn a_dropped_changed_loses_nothing() {
    let (tx, mut rx) = watch::channel(0);
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut changed = std::pin::pin!(rx.changed());
        assert!(changed.as_mut().poll(&mut cx).is_pending());
        tx.send(1).unwrap();
    }
    assert_eq!(rx.has_changed(), Ok(true));
}

#[test]
fn interruptible_killable_and_timeout_forms() {
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = watch::channel(0);
        let mut r1 = rx.clone();
        let intr = waitrt::spawn(async move { r1.changed_interruptible().await });
        let mut r2 = rx.clone();
        let kill = waitrt::spawn(async move { (r2.changed_killable().await, r2) });
        waitrt::task::yield_now().await;
        intr.interrupt();
        kill.interrupt(); // not fatal: the killable wait goes on
        assert!(!intr.await.unwrap().unwrap_err().is_fatal());
        waitrt::task::yield_now().await;
        assert!(!kill.is_finished());
        kill.kill();
        let (res, r2) = kill.await.unwrap();
        assert!(res.is_err());
        let mut r3 = rx;
        let start = waitrt::time::now();
        let timed = r3.changed_timeout(Duration::from_secs(5)).await;
        assert!(timed.is_err());
        assert_eq!(waitrt::time::now() - start, Duration::from_secs(5));
        // Nothing was lost by the failed waits; a change wins over a zero timeout.
        tx.send(1).unwrap();
        assert_eq!(r2.has_changed(), Ok(true));
        assert_eq!(r3.changed_timeout(Duration::ZERO).await, Ok(Ok(())));
        // The close comes through as the inner error.
        drop(tx);
        assert!(matches!(
            r3.changed_timeout(Duration::ZERO).await,
            Ok(Err(_))
        ));
    });
}

/// With a signal pending, a change not yet seen (or the close) still wins;
/// only with nothing new does the signal end the wait. And `?` on the
/// wait's error leaves exactly what the plain `changed` returns.
#[test]
fn change_wins_over_pending_signal() {
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(0);
        let task = waitrt::spawn(async move {
            let signals = waitrt::task::signals();
            signals.interrupt();
            tx.send(1).unwrap();
            assert_eq!(rx.changed_interruptible().await, Ok(Ok(())));
            tx.send(2).unwrap();
            let plain: Result<(), watch::error::RecvError> = async {
                let res = rx.changed_interruptible().await?;
                Ok::<_, waitrt::sync::Interrupted>(res)
            }
            .await
            .unwrap();
            assert_eq!(plain, Ok(()));
            // Nothing new: the signal ends the wait (and stays pending).
            assert!(!rx.changed_interruptible().await.unwrap_err().is_fatal());
            signals.kill();
            assert!(rx.changed_killable().await.is_err());
            tx.send(3).unwrap();
            assert_eq!(rx.changed_killable().await, Ok(Ok(())));
            assert_eq!(*rx.borrow(), 3);
            drop(tx);
            assert!(matches!(rx.changed_killable().await, Ok(Err(_))));
            assert!(matches!(rx.changed_interruptible().await, Ok(Err(_))));
        });
        task.await.unwrap();
    });
}

// ===== budget =====

/// A loop over `changed` on a watch that keeps changing yields to the other
/// tasks of a current-thread runtime.
#[test]
fn a_changed_loop_on_a_changing_watch_yields() {
    let rt = support::build(None);
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(0u32);
        let other_ran = Arc::new(AtomicBool::new(false));
        let reader = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move {
                for i in 1..=2000 {
                    tx.send(i).unwrap(); // it keeps changing
                    rx.changed().await.unwrap();
                }
                other_ran.load(SeqCst)
            })
        };
        let other = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move { other_ran.store(true, SeqCst) })
        };
        assert!(reader.await.unwrap(), "the changed loop never yielded");
        other.await.unwrap();
    });
}

/// A loop over `wait_for` whose predicate already holds yields too: each
/// call spends a unit of budget, as tokio's does (it did not: such a loop
/// kept a current-thread runtime to itself, an independent probe).
#[test]
fn a_wait_for_loop_on_a_satisfied_predicate_yields() {
    let rt = support::build(None);
    rt.block_on(async {
        let other_ran = Arc::new(AtomicBool::new(false));
        let reader = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move {
                let (_tx, mut rx) = watch::channel(0u32);
                for _ in 0..2000 {
                    if other_ran.load(SeqCst) {
                        return true;
                    }
                    assert_eq!(*rx.wait_for(|v| *v == 0).await.unwrap(), 0);
                }
                false
            })
        };
        let other = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move { other_ran.store(true, SeqCst) })
        };
        assert!(reader.await.unwrap(), "the wait_for loop never yielded");
        other.await.unwrap();
    });
}

#[test]
fn sender_count_counts_the_clones() {
    let (tx, _rx) = watch::channel(0u8);
    let tx2 = tx.clone();
    assert_eq!((tx.sender_count(), tx2.sender_count()), (2, 2));
    drop(tx2);
    assert_eq!(tx.sender_count(), 1);
}
