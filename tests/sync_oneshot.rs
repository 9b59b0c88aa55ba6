//! `waitrt::sync::oneshot`: delivery, the sender's and receiver's ends,
//! `closed()`, the kernel-family waits, and the wake races (real threads
//! and the toolkit).
#[macro_use]
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tokio_test::{assert_pending, assert_ready, task};
use waitrt::sync::oneshot::{self, error::TryRecvError, RecvError};
use waitrt::task::yield_now;

const SEEDS: u64 = if cfg!(debug_assertions) { 200 } else { 2_000 };
const ITERS: usize = if cfg!(debug_assertions) { 200 } else { 2_000 };

/// Runs `scenario` `ITERS` times on a 2-worker runtime, then `SEEDS`
/// seeds under the toolkit with random and PCT schedules.
fn both<F, Fut>(name: &str, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    support::both_modes(name, ITERS, SEEDS, false, scenario);
}

// ===== races =====

/// The receiver may sleep before the send or not: it always gets the value.
async fn send_reaches_the_receiver() {
    let (tx, rx) = oneshot::channel();
    let receiver = waitrt::spawn(rx);
    waitrt::spawn(async move { tx.send(7).unwrap() });
    assert_eq!(receiver.await.unwrap(), Ok(7));
}

/// The sender goes without sending: the receiver, asleep or not, ends.
async fn sender_drop_ends_the_receiver() {
    let (tx, rx) = oneshot::channel::<u8>();
    let receiver = waitrt::spawn(rx);
    waitrt::spawn(async move { drop(tx) });
    assert_eq!(receiver.await.unwrap(), Err(RecvError(())));
}

/// The receiver goes: `closed()` ends, asleep or not, and a send fails.
async fn receiver_drop_ends_closed() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let sender = waitrt::spawn(async move {
        tx.closed().await;
        tx.send(1)
    });
    waitrt::spawn(async move { drop(rx) });
    assert_eq!(sender.await.unwrap(), Err(1));
}

#[test]
fn send_wakes_the_receiver() {
    both("send", send_reaches_the_receiver);
}

#[test]
fn sender_drop_wakes_the_receiver() {
    both("sender_drop", sender_drop_ends_the_receiver);
}

/// A kernel-family receive (and a blocking one on a thread) that sleeps
/// on the channel's queue is woken by a send that comes after it: the
/// send looks at the queue once such a wait began.
async fn kernel_family_receive_is_woken_by_a_later_send() {
    let (tx, mut rx) = oneshot::channel();
    let receiver = waitrt::spawn(async move { rx.recv_killable().await });
    waitrt::spawn(async move { tx.send(3).unwrap() });
    assert_eq!(receiver.await.unwrap(), Ok(Ok(3)));
}

#[test]
fn kernel_family_receive_wakes_on_a_later_send() {
    both(
        "kernel-family",
        kernel_family_receive_is_woken_by_a_later_send,
    );
    // And from a plain thread, asleep before the send.
    support::watchdog("blocking receives", support::WATCHDOG, || {
        for _ in 0..ITERS {
            let (tx, rx) = oneshot::channel();
            let receiver = std::thread::spawn(move || rx.blocking_recv());
            std::thread::yield_now();
            tx.send(5).unwrap();
            assert_eq!(receiver.join().unwrap(), Ok(5));
        }
    });
}

#[test]
fn receiver_drop_wakes_closed() {
    both("receiver_drop", receiver_drop_ends_closed);
}

// ===== hand-polled =====

#[test]
fn send_before_and_after_the_receiver_waits() {
    let (tx, rx) = oneshot::channel();
    tx.send(1).unwrap();
    assert_eq!(assert_ready!(task::spawn(rx).poll()), Ok(1));

    let (tx, rx) = oneshot::channel();
    let mut rx = task::spawn(rx);
    assert_pending!(rx.poll());
    tx.send(2).unwrap();
    assert!(rx.is_woken());
    assert_eq!(assert_ready!(rx.poll()), Ok(2));
}

#[test]
fn receiver_dropped_send_gives_the_value_back() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send("v"), Err("v"));
}

#[test]
fn sent_value_is_dropped_with_the_receiver() {
    let value = Arc::new(());
    let (tx, rx) = oneshot::channel();
    tx.send(value.clone()).unwrap();
    drop(rx);
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn sender_dropped_is_recv_error() {
    let (tx, rx) = oneshot::channel::<u8>();
    let mut rx = task::spawn(rx);
    assert_pending!(rx.poll());
    drop(tx);
    assert!(rx.is_woken());
    assert_eq!(assert_ready!(rx.poll()), Err(RecvError(())));
}

#[test]
fn closed_wakes_on_receiver_drop_and_close() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let mut closed = task::spawn(tx.closed());
    assert_pending!(closed.poll());
    drop(rx);
    assert!(closed.is_woken());
    assert_ready!(closed.poll());

    let (mut tx, mut rx) = oneshot::channel::<u8>();
    let mut closed = task::spawn(tx.closed());
    assert_pending!(closed.poll());
    rx.close();
    assert!(closed.is_woken());
    assert_ready!(closed.poll());
    drop(closed);
    assert_eq!(tx.send(1), Err(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_keeps_a_value_sent_before() {
    let (tx, mut rx) = oneshot::channel();
    tx.send(4).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn try_recv_and_blocking_recv() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let thread = std::thread::spawn(move || rx.blocking_recv());
    std::thread::yield_now();
    tx.send(9).unwrap();
    assert_eq!(thread.join().unwrap(), Ok(9));
}

rt_test! {
    fn between_a_thread_and_a_task(rt) {
        let (tx, rx) = oneshot::channel();
        let (back_tx, back_rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let v = rx.blocking_recv().unwrap();
            back_tx.send(v + 1).unwrap();
        });
        rt.block_on(async move {
            tx.send(1).unwrap();
            assert_eq!(back_rx.await, Ok(2));
        });
        thread.join().unwrap();
    }
}

// ===== the kernel family =====

#[test]
fn timeout_on_the_paused_clock() {
    let rt = waitrt::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = oneshot::channel();
        let hour = Duration::from_secs(3600);
        assert!(rx.recv_timeout(hour).await.is_err());
        // The receiver is still usable.
        waitrt::spawn(async move {
            waitrt::time::sleep(Duration::from_secs(1)).await;
            tx.send(5).unwrap();
        });
        assert_eq!(rx.recv_timeout(hour).await, Ok(Ok(5)));
    });
}

#[test]
fn interruptible_and_killable() {
    let rt = support::build(None);
    rt.block_on(async {
        let (tx, mut rx) = oneshot::channel::<u8>();
        let waiter = waitrt::spawn(async move {
            assert!(rx.recv_interruptible().await.is_err());
            rx.recv_killable().await
        });
        yield_now().await;
        waiter.interrupt();
        yield_now().await;
        yield_now().await;
        // Now in the killable wait: an interrupt does not end it.
        waiter.interrupt();
        yield_now().await;
        assert!(!waiter.is_finished());
        tx.send(3).unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(Ok(3)));

        let (_tx, mut rx) = oneshot::channel::<u8>();
        let waiter = waitrt::spawn(async move { rx.recv_killable().await });
        yield_now().await;
        waiter.kill();
        assert!(waiter.await.unwrap().is_err());
    });
}

// ===== budget =====

#[test]
fn ready_receives_spend_budget() {
    let rt = support::build(None);
    rt.block_on(async {
        let ran = Arc::new(AtomicBool::new(false));
        let other = {
            let ran = ran.clone();
            waitrt::spawn(async move { ran.store(true, SeqCst) })
        };
        let mut saw = false;
        for _ in 0..10_000 {
            let (tx, rx) = oneshot::channel();
            tx.send(()).unwrap();
            rx.await.unwrap();
            saw |= ran.load(SeqCst);
        }
        assert!(saw, "a loop of ready receives never yielded");
        other.await.unwrap();
    });
}

// Breaks if `poll_closed` lost its registration between polls (the waker
// of the pending poll would never be woken) or woke the wrong waker.
#[test]
fn poll_closed_wakes_the_last_pollers_waker() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let first = support::CountingWaker::new();
    let second = support::CountingWaker::new();
    let mut poll = |waker: &std::task::Waker| {
        let mut cx = std::task::Context::from_waker(waker);
        tx.poll_closed(&mut cx)
    };
    assert!(poll(&first.waker()).is_pending());
    assert!(poll(&second.waker()).is_pending());
    drop(rx);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert!(poll(&second.waker()).is_ready());
    assert!(tx.is_closed());
    // A receiver closed before the first poll: ready at once.
    let (mut tx, mut rx) = oneshot::channel::<u8>();
    rx.close();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(tx.poll_closed(&mut cx).is_ready());
}

/// `is_empty`, as tokio's: true before a send, after the sender is dropped
/// without one, and once the value was received.
#[test]
fn is_empty_says_whether_a_value_waits() {
    let (tx, mut rx) = waitrt::sync::oneshot::channel();
    assert!(rx.is_empty());
    tx.send(1).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(rx.is_empty());
    let (tx, rx) = waitrt::sync::oneshot::channel::<u8>();
    drop(tx);
    assert!(rx.is_empty());
}
