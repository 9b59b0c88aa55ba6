//! `waitrt::sync::broadcast`: lag accounting, closing, wake-ups (real
//! threads and the toolkit), cancel safety, the kernel forms, the budget.

#[macro_use]
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::{watchdog, WATCHDOG};
use waitrt::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

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

/// Checks one receiver's view: every `Ok` is the next message expected,
/// every `Lagged(n)` skips exactly `n`. Returns the next expected message.
fn account(expected: &mut u64, got: Result<u64, RecvError>) -> bool {
    match got {
        Ok(v) => {
            assert_eq!(v, *expected, "out of order");
            *expected += 1;
            true
        }
        Err(RecvError::Lagged(n)) => {
            assert!(n > 0, "Lagged(0)");
            *expected += n;
            true
        }
        Err(RecvError::Closed) => false,
    }
}

// ===== lag accounting =====

#[test]
fn lagged_reports_exactly_what_was_missed_then_the_oldest_message() {
    let (tx, mut rx) = broadcast::channel(3); // rounded up to 4
    for i in 0..10u64 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.len(), 10);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(6)));
    for i in 6..10 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Exactly one past the capacity: one missed.
    for i in 10..15 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(1)));
    assert_eq!(rx.try_recv(), Ok(11));
}

#[test]
fn receivers_at_different_lags_each_get_their_own_count() {
    let rt = support::build(None);
    rt.block_on(async {
        let (tx, mut a) = broadcast::channel(4);
        let mut b = tx.subscribe();
        let mut c = tx.subscribe();
        for i in 0..3u64 {
            tx.send(i).unwrap();
        }
        assert_eq!(a.recv().await, Ok(0));
        assert_eq!(a.recv().await, Ok(1));
        assert_eq!(b.recv().await, Ok(0));
        for i in 3..8 {
            tx.send(i).unwrap();
        }
        // Held: 4..8. a is at 2 (missed 2, 3), b at 1 (missed 1..4), c at 0.
        assert_eq!(a.recv().await, Err(RecvError::Lagged(2)));
        assert_eq!(b.recv().await, Err(RecvError::Lagged(3)));
        assert_eq!(c.recv().await, Err(RecvError::Lagged(4)));
        for rx in [&mut a, &mut b, &mut c] {
            for i in 4..8 {
                assert_eq!(rx.recv().await, Ok(i));
            }
        }
        // A late subscriber counts from where it joined.
        let mut d = tx.subscribe();
        for i in 8..14 {
            tx.send(i).unwrap();
        }
        assert_eq!(d.recv().await, Err(RecvError::Lagged(2)));
        assert_eq!(d.recv().await, Ok(10));
    });
}

/// One sender thread, receivers on threads and on tasks: each sees the sent
/// sequence in order, gaps exactly as reported: received + lagged == sent.
#[test]
fn concurrent_receivers_see_a_prefix_consistent_sequence() {
    const SENT: u64 = 20_000;
    watchdog("broadcast accounting", WATCHDOG, || {
        for round in 0..4 {
            let (tx, rx) = broadcast::channel::<u64>(8);
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let mut rx = rx.resubscribe();
                    std::thread::spawn(move || {
                        let (mut next, mut got) = (0, 0);
                        loop {
                            let r = rx.blocking_recv();
                            got += u64::from(r.is_ok());
                            if !account(&mut next, r) {
                                return (next, got);
                            }
                        }
                    })
                })
                .collect();
            let rt = support::build(Some(2));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let mut rx = rx.resubscribe();
                    rt.spawn(async move {
                        let mut next = 0;
                        while account(&mut next, rx.recv().await) {}
                        next
                    })
                })
                .collect();
            drop(rx);
            for i in 0..SENT {
                tx.send(i).unwrap();
                if round % 2 == 1 && i % 64 == 0 {
                    std::thread::yield_now(); // let them catch up sometimes
                }
            }
            drop(tx);
            for t in threads {
                let (next, _) = t.join().unwrap();
                assert_eq!(next, SENT, "received + lagged != sent");
            }
            for t in tasks {
                assert_eq!(rt.block_on(t).unwrap(), SENT, "received + lagged != sent");
            }
        }
    });
}

// ===== closing =====

#[test]
fn receivers_drain_before_closed() {
    let (tx, mut rx) = broadcast::channel(4);
    let mut rx2 = tx.subscribe();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    let rt = support::build(None);
    rt.block_on(async {
        assert_eq!(rx2.recv().await, Ok(1));
        assert_eq!(rx2.recv().await, Ok(2));
        assert_eq!(rx2.recv().await, Err(RecvError::Closed));
        assert_eq!(rx2.recv().await, Err(RecvError::Closed));
    });
    // A clone keeps it open.
    let (tx, mut rx) = broadcast::channel::<u8>(4);
    let tx2 = tx.clone();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn send_fails_without_receivers_and_closed_waits_for_them() {
    let rt = support::build(Some(2));
    rt.block_on(async {
        let (tx, rx) = broadcast::channel(4);
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
        assert_eq!(tx.send(3), Err(broadcast::error::SendError(3)));
    });
}

#[test]
fn messages_are_dropped_once_every_receiver_has_them() {
    let (tx, mut a) = broadcast::channel(4);
    let mut b = tx.subscribe();
    let msg = Arc::new(());
    tx.send(msg.clone()).unwrap();
    assert_eq!(tx.len(), 1);
    drop(a.try_recv().unwrap());
    assert_eq!(Arc::strong_count(&msg), 2); // still held for b
    drop(b.try_recv().unwrap());
    assert_eq!(Arc::strong_count(&msg), 1); // the last reader moved it out
    assert!(tx.is_empty());
    // A receiver dropped with messages unread gives up its claim.
    tx.send(msg.clone()).unwrap();
    drop(a.try_recv().unwrap());
    drop(b);
    assert_eq!(Arc::strong_count(&msg), 1);
    assert_eq!(tx.len(), 0);
}

// ===== wake-ups =====

/// Receivers asleep in every async form; a sender sends one message
/// (keeping the channel open until they have it), then drops: each receiver
/// gets the message, then `Closed`.
async fn recv_wakes_on_send_and_close() {
    let hour = Duration::from_secs(3600);
    let (tx, rx) = broadcast::channel::<u32>(2);
    let (mut plain, mut intr, mut timed) = (rx.resubscribe(), rx.resubscribe(), rx);
    let a = waitrt::spawn(async move { (plain.recv().await, plain) });
    let b = waitrt::spawn(async move { (intr.recv_interruptible().await, intr) });
    let c = waitrt::spawn(async move { (timed.recv_timeout(hour).await, timed) });
    let sender = waitrt::spawn(async move {
        waitrt::task::yield_now().await;
        assert_eq!(tx.send(7), Ok(3));
        tx
    });
    let tx = sender.await.unwrap();
    let (got, mut plain) = a.await.unwrap();
    assert_eq!(got, Ok(7));
    let (got, mut intr) = b.await.unwrap();
    assert_eq!(got, Ok(Ok(7)));
    let (got, mut timed) = c.await.unwrap();
    assert_eq!(got, Ok(Ok(7)));
    // Now the close.
    let a = waitrt::spawn(async move { plain.recv().await });
    let b = waitrt::spawn(async move { intr.recv_interruptible().await });
    let c = waitrt::spawn(async move { timed.recv_timeout(hour).await });
    waitrt::spawn(async move { drop(tx) }).await.unwrap();
    assert_eq!(a.await.unwrap(), Err(RecvError::Closed));
    assert_eq!(b.await.unwrap(), Ok(Err(RecvError::Closed)));
    assert_eq!(c.await.unwrap(), Ok(Err(RecvError::Closed)));
}

#[test]
fn recv_wake_is_not_lost_on_send_or_close() {
    both("recv_wakes_on_send_and_close", recv_wakes_on_send_and_close);
}

/// Two senders race their sends with a receiver that needs both.
async fn two_senders_one_receiver() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let tx2 = tx.clone();
    let s1 = waitrt::spawn(async move { tx.send(1).unwrap() });
    let s2 = waitrt::spawn(async move { tx2.send(2).unwrap() });
    let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
    s1.await.unwrap();
    s2.await.unwrap();
}

#[test]
fn recv_sees_every_concurrent_sender() {
    both("two_senders_one_receiver", two_senders_one_receiver);
}

#[test]
fn blocking_recv_wakes_on_send_and_close_on_threads() {
    watchdog("blocking_recv", WATCHDOG, || {
        for _ in 0..ITERS * 5 {
            let (tx, mut rx) = broadcast::channel(2);
            let reader = std::thread::spawn(move || (rx.blocking_recv(), rx));
            tx.send(1).unwrap();
            let (got, mut rx) = reader.join().unwrap(); // tx still alive
            assert_eq!(got, Ok(1));
            let reader = std::thread::spawn(move || rx.blocking_recv());
            drop(tx);
            assert_eq!(reader.join().unwrap(), Err(RecvError::Closed));
        }
    });
}

// ===== cancel safety =====

#[test]
fn a_dropped_recv_loses_nothing() {
    let (tx, mut rx) = broadcast::channel(4);
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut recv = std::pin::pin!(rx.recv());
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        tx.send(1).unwrap();
        // Dropped after the send woke it, before it was polled again.
    }
    assert_eq!(rx.try_recv(), Ok(1));
    // Through a timeout on a runtime.
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let hour = Duration::from_secs(3600);
        assert!(waitrt::time::timeout(hour, rx.recv()).await.is_err());
        tx.send(2).unwrap();
        assert_eq!(rx.recv().await, Ok(2));
    });
}

// ===== kernel forms =====

#[test]
fn interruptible_killable_and_timeout_forms() {
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = broadcast::channel::<u8>(4);
        let mut r1 = rx.resubscribe();
        let intr = waitrt::spawn(async move { r1.recv_interruptible().await });
        let mut r2 = rx.resubscribe();
        let kill = waitrt::spawn(async move {
            let res = r2.recv_killable().await;
            (res, r2)
        });
        waitrt::task::yield_now().await;
        intr.interrupt();
        kill.interrupt(); // not fatal: the killable wait goes on
        let err = intr.await.unwrap().unwrap_err();
        assert!(!err.is_fatal());
        waitrt::task::yield_now().await;
        assert!(!kill.is_finished());
        kill.kill();
        let (res, mut r2) = kill.await.unwrap();
        assert!(res.is_err());
        let mut r3 = rx;
        let start = waitrt::time::now();
        let timed = r3.recv_timeout(Duration::from_secs(5)).await;
        assert!(timed.is_err());
        assert_eq!(waitrt::time::now() - start, Duration::from_secs(5));
        // Nothing was lost by the interrupted or timed-out waits.
        tx.send(5).unwrap();
        assert_eq!(r2.try_recv(), Ok(5));
        // A message there wins over a zero timeout.
        assert_eq!(r3.recv_timeout(Duration::ZERO).await, Ok(Ok(5)));
        // Lagged and Closed come through as the inner error.
        for i in 0..6 {
            tx.send(i).unwrap();
        }
        assert_eq!(
            r3.recv_timeout(Duration::ZERO).await,
            Ok(Err(RecvError::Lagged(2)))
        );
        assert_eq!(r3.recv_timeout(Duration::ZERO).await, Ok(Ok(2)));
        let mut r4 = r3.resubscribe();
        drop(tx);
        assert_eq!(
            r4.recv_timeout(Duration::ZERO).await,
            Ok(Err(RecvError::Closed))
        );
    });
}

/// With a signal pending, a message that is there (or a lag, or the close)
/// still wins; only an empty channel lets the signal end the wait. And `?`
/// on the wait's error leaves exactly what the plain `recv` returns.
#[test]
fn message_wins_over_pending_signal() {
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = broadcast::channel::<u8>(2);
        let task = waitrt::spawn(async move {
            let signals = waitrt::task::signals();
            signals.interrupt();
            tx.send(1).unwrap();
            assert_eq!(rx.recv_interruptible().await, Ok(Ok(1)));
            for i in 2..6 {
                tx.send(i).unwrap(); // 2 and 3 are overwritten
            }
            assert_eq!(rx.recv_interruptible().await, Ok(Err(RecvError::Lagged(2))));
            assert_eq!(rx.recv_interruptible().await, Ok(Ok(4)));
            let plain: Result<u8, RecvError> = async {
                let res = rx.recv_interruptible().await?;
                Ok::<_, waitrt::sync::Interrupted>(res)
            }
            .await
            .unwrap();
            assert_eq!(plain, Ok(5));
            // Empty: the signal ends the wait (and stays pending).
            assert!(!rx.recv_interruptible().await.unwrap_err().is_fatal());
            signals.kill();
            assert!(rx.recv_killable().await.is_err());
            tx.send(6).unwrap();
            assert_eq!(rx.recv_killable().await, Ok(Ok(6)));
            drop(tx);
            assert_eq!(rx.recv_killable().await, Ok(Err(RecvError::Closed)));
            assert_eq!(rx.recv_interruptible().await, Ok(Err(RecvError::Closed)));
        });
        task.await.unwrap();
    });
}

// ===== budget =====

/// A loop over `recv` on a channel that is never empty yields to the other
/// tasks of a current-thread runtime.
#[test]
fn a_recv_loop_on_a_full_channel_yields() {
    let rt = support::build(None);
    rt.block_on(async {
        let (tx, mut rx) = broadcast::channel(2048);
        for i in 0..2000u32 {
            tx.send(i).unwrap();
        }
        let other_ran = Arc::new(AtomicBool::new(false));
        // The reader is queued first, so it runs first.
        let reader = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move {
                for i in 0..2000u32 {
                    assert_eq!(rx.recv().await, Ok(i));
                }
                other_ran.load(SeqCst)
            })
        };
        let other = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move { other_ran.store(true, SeqCst) })
        };
        assert!(reader.await.unwrap(), "the recv loop never yielded");
        other.await.unwrap();
    });
}

#[test]
fn recv_polls_spend_budget() {
    let (tx, mut rx) = broadcast::channel(8);
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    let mut cx = Context::from_waker(Waker::noop());
    let (polls, forced) = waitrt::sync::coop::with_budget(2, || {
        let mut ready = 0;
        while let Poll::Ready(v) = std::pin::pin!(rx.recv()).poll(&mut cx) {
            assert_eq!(v, Ok(ready));
            ready += 1;
        }
        ready
    });
    assert_eq!((polls, forced), (2, true));
    assert_eq!(rx.try_recv(), Ok(2)); // the yielded recv took nothing
}

// Breaks if a `WeakSender` kept the channel open (the receiver would wait
// forever: the watchdog), if `upgrade` revived a closed channel, or if an
// upgrade racing the last sender's drop both failed to send and left the
// channel open.
#[test]
fn weak_senders_do_not_keep_the_channel_open() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let weak = tx.downgrade();
    assert_eq!((tx.strong_count(), tx.weak_count()), (1, 1));
    weak.upgrade().unwrap().send(7).unwrap();
    drop(tx);
    assert!(weak.upgrade().is_none(), "closed for good");
    assert_eq!(rx.try_recv(), Ok(7));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    drop(weak);

    // The race: an upgrade against the last drop, on two threads.
    for round in 0..2_000u32 {
        let (tx, mut rx) = broadcast::channel::<u32>(4);
        let weak = tx.downgrade();
        let upgrader = std::thread::spawn(move || match weak.upgrade() {
            Some(tx) => tx.send(round).is_ok(),
            None => false,
        });
        drop(tx);
        let sent = upgrader.join().unwrap();
        watchdog("weak-upgrade race", WATCHDOG, move || {
            waitrt::block_on(async move {
                if sent {
                    assert_eq!(rx.recv().await, Ok(round));
                }
                assert_eq!(rx.recv().await, Err(RecvError::Closed));
            })
        });
    }
}

// Breaks if `Sender::new` made a receiver (a send would succeed) or its
// first subscriber missed a message sent after subscribing.
#[test]
fn sender_new_starts_without_receivers() {
    let tx = broadcast::Sender::<u8>::new(2);
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(tx.send(1), Err(broadcast::error::SendError(1)));
    let mut rx = tx.subscribe();
    assert_eq!(tx.send(2), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn receivers_count_the_senders() {
    let (tx, rx) = waitrt::sync::broadcast::channel::<u8>(2);
    let weak = tx.downgrade();
    let tx2 = tx.clone();
    assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (2, 1));
    drop((tx, tx2));
    assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (0, 1));
    drop(weak);
    assert_eq!(rx.sender_weak_count(), 0);
}
