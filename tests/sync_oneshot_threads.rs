//! `waitrt::sync::oneshot`'s fast path on real threads: the receiver's
//! waker cell and the state word (see the module's "Internals"). This
//! binary installs no test hook and builds its runtime with the wait
//! registry off (`wait_registry(false)`), so every receive here takes the
//! bare fast path (the toolkit's runs in
//! `tests/sync_oneshot.rs` take the observed path, on the queue).
#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};

use support::{poll_with, CountingWaker};
use waitrt::sync::oneshot::{self, RecvError};

const ROUNDS: usize = if cfg!(debug_assertions) {
    20_000
} else {
    200_000
};

/// A thread that sends (or drops) each sender it is handed, after a
/// spin of 0 to 63 iterations so that the send lands anywhere in the
/// receiver's poll. It polls for the next sender without sleeping, so a
/// hand-over takes about as long as the receiver's poll (ends when the
/// other side hangs up).
fn sender_thread(
    senders: mpsc::Receiver<(oneshot::Sender<String>, usize)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || loop {
        let (tx, round) = match senders.try_recv() {
            Ok(next) => next,
            Err(mpsc::TryRecvError::Empty) => {
                std::hint::spin_loop();
                continue;
            }
            Err(mpsc::TryRecvError::Disconnected) => return,
        };
        {
            for _ in 0..round % 64 {
                std::hint::spin_loop();
            }
            if round % 7 == 0 {
                drop(tx);
            } else {
                tx.send(format!("value {round}")).unwrap();
            }
        }
    })
}

/// A send (or a sender's drop) on another thread races the receiver's
/// first poll, which stores its waker and re-checks: every receive ends
/// with the right value, none sleeps through its send (the watchdog).
#[test]
fn no_wake_is_lost_between_the_check_and_the_store() {
    support::watchdog("oneshot fast path", support::WATCHDOG, || {
        let rt = waitrt::Builder::new_current_thread()
            .wait_registry(false)
            .build()
            .unwrap();
        // The registry is on by default; this binary's only runtime opts
        // out, so the receives below take the bare fast path.
        assert!(
            !waitq::registry::is_recording(),
            "wait_registry(false) left the registry on"
        );
        let (to_sender, senders) = mpsc::channel();
        let thread = sender_thread(senders);
        rt.block_on(async move {
            for round in 0..ROUNDS {
                let (tx, rx) = oneshot::channel();
                to_sender.send((tx, round)).unwrap();
                for _ in 0..(round / 64) % 32 {
                    std::hint::spin_loop();
                }
                let want = match round % 7 {
                    0 => Err(RecvError(())),
                    _ => Ok(format!("value {round}")),
                };
                assert_eq!(rx.await, want, "round {round}");
            }
            drop(to_sender);
        });
        thread.join().unwrap();
    });
}

/// A receiver polled again with another waker before the send replaces
/// the stored waker (clearing the word's waker bit first): the send wakes
/// the last waker polled, never only an earlier one.
#[test]
fn a_new_waker_replaces_the_stored_one_under_a_racing_send() {
    support::watchdog("oneshot waker swap", support::WATCHDOG, || {
        let (to_sender, senders) = mpsc::channel();
        let thread = sender_thread(senders);
        for round in 1..ROUNDS / 4 {
            if round % 7 == 0 {
                continue; // the sender thread would drop this one
            }
            let (tx, mut rx) = oneshot::channel();
            to_sender.send((tx, round)).unwrap();
            let (first, last) = (CountingWaker::new(), CountingWaker::new());
            let mut got = poll_with(&mut rx, &first.waker());
            if got.is_pending() {
                got = poll_with(&mut rx, &last.waker());
            }
            if got.is_pending() {
                let start = Instant::now();
                while last.wakes() == 0 {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "round {round}: the send woke {} of the first waker, none of the last",
                        first.wakes()
                    );
                    std::thread::yield_now();
                }
                got = poll_with(&mut rx, &last.waker());
            }
            assert_eq!(
                got,
                Poll::Ready(Ok(format!("value {round}"))),
                "round {round}"
            );
        }
        drop(to_sender);
        thread.join().unwrap();
    });
}

/// A receiver dropped after it stored its waker gives the waker back at
/// once, while the sender lives on (a task's waker keeps its task's
/// memory alive), and the sender sees it closed.
#[test]
fn a_dropped_receiver_releases_its_waker() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    let waker = CountingWaker::new();
    assert!(poll_with(&mut rx, &waker.waker()).is_pending());
    assert_eq!(Arc::strong_count(&waker), 2, "the stored clone");
    drop(rx);
    assert_eq!(Arc::strong_count(&waker), 1, "given back at the drop");
    assert!(tx.is_closed());
    assert_eq!(tx.send(4), Err(4));
    assert_eq!(waker.wakes(), 0);
}

/// A value sent and never received is dropped with the last handle, on
/// whichever thread that is, exactly once.
#[test]
fn an_unreceived_value_is_dropped_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }
    let rounds = ROUNDS / 20;
    support::watchdog("oneshot drops", support::WATCHDOG, move || {
        for round in 0..rounds {
            let (tx, rx) = oneshot::channel::<Counted>();
            let go = Arc::new(AtomicBool::new(false));
            let sender = {
                let go = go.clone();
                std::thread::spawn(move || {
                    while !go.load(SeqCst) {
                        std::hint::spin_loop();
                    }
                    let _ = tx.send(Counted);
                })
            };
            go.store(true, SeqCst);
            if round % 2 == 0 {
                std::hint::spin_loop();
            }
            drop(rx);
            sender.join().unwrap();
            assert_eq!(DROPS.load(SeqCst), round + 1, "round {round}");
        }
    });
}

/// Both ends cross threads and are shared as tokio's are: `Send` and
/// `Sync` when the value is `Send`.
#[test]
fn both_ends_are_send_and_sync() {
    fn send_sync<X: Send + Sync>() {}
    send_sync::<oneshot::Sender<String>>();
    send_sync::<oneshot::Receiver<String>>();
    send_sync::<oneshot::Sender<std::cell::Cell<u8>>>();
}
