//! After warm-up a bounded channel allocates nothing per message (sends,
//! receives, a sender sleeping on a full channel and being woken, a
//! receiver sleeping on an empty one), and a oneshot exchange allocates
//! once. A counting global allocator needs a test binary of its own.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use waitrt::sync::{mpsc, oneshot, Mutex, Semaphore};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;

fn poll<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// One round: fill the channel, a sender sleeps on it and is woken by a
/// receive, a receiver sleeps on the empty channel and is woken by a send.
fn round(tx: &mpsc::Sender<u64>, rx: &mut mpsc::Receiver<u64>, cap: usize) {
    for i in 0..cap as u64 {
        tx.try_send(i).unwrap();
    }
    {
        let mut send = pin!(tx.send(99));
        assert!(poll(send.as_mut()).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(poll(send.as_mut()).is_ready());
    }
    while rx.try_recv().is_ok() {}
    {
        let mut recv = rx.recv();
        assert!(poll(pin!(&mut recv)).is_pending());
        tx.try_send(7).unwrap();
        assert_eq!(poll(pin!(&mut recv)), Poll::Ready(Some(7)));
    }
    for i in 0..cap as u64 {
        let permit = tx.try_reserve().unwrap();
        permit.send(i);
        let mut recv = pin!(rx.recv());
        assert_eq!(poll(recv.as_mut()), Poll::Ready(Some(i)));
    }
}

#[test]
fn bounded_channel_allocates_nothing_per_message_after_warm_up() {
    let cap = 64;
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    round(&tx, &mut rx, cap); // warm-up: the wait queues' slabs
    let n = allocations(|| {
        for _ in 0..1_000 {
            round(&tx, &mut rx, cap);
        }
    });
    assert_eq!(n, 0, "allocations in 1,000 warm rounds");
}

#[test]
fn unbounded_channel_allocates_nothing_once_its_buffer_has_grown() {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    for i in 0..256 {
        tx.send(i).unwrap();
    }
    while rx.try_recv().is_ok() {}
    let n = allocations(|| {
        for _ in 0..100 {
            for i in 0..256 {
                tx.send(i).unwrap();
            }
            while rx.try_recv().is_ok() {}
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn oneshot_exchange_allocates_once() {
    let n = allocations(|| {
        let (tx, rx) = oneshot::channel::<u64>();
        tx.send(1).unwrap();
        assert_eq!(poll(pin!(rx)), Poll::Ready(Ok(1)));
    });
    assert_eq!(n, 1);
}

/// One sleep and wake on a semaphore: the acquire queues behind a held
/// permit, the release hands the permit to it.
fn semaphore_round(sem: &Semaphore) {
    let held = sem.try_acquire().unwrap();
    let mut acquire = pin!(sem.acquire());
    assert!(poll(acquire.as_mut()).is_pending());
    drop(held);
    match poll(acquire.as_mut()) {
        Poll::Ready(Ok(permit)) => drop(permit),
        other => panic!("the released permit was not handed over: {other:?}"),
    }
}

#[test]
fn semaphore_sleep_and_wake_allocate_nothing_after_warm_up() {
    let sem = Semaphore::new(1);
    semaphore_round(&sem); // warm-up (one waiter fits the queue's inline node)
    let n = allocations(|| {
        for _ in 0..1_000 {
            semaphore_round(&sem);
        }
    });
    assert_eq!(n, 0, "allocations in 1,000 warm rounds");
    // A fresh semaphore's first sleep allocates nothing either.
    let other = Semaphore::new(1);
    assert_eq!(allocations(|| semaphore_round(&other)), 0);
}

#[test]
fn contended_mutex_allocates_nothing_after_warm_up() {
    let mutex = Mutex::new(0u64);
    let round = || {
        let held = mutex.try_lock().unwrap();
        let mut lock = pin!(mutex.lock());
        assert!(poll(lock.as_mut()).is_pending());
        drop(held);
        match poll(lock.as_mut()) {
            Poll::Ready(mut guard) => *guard += 1,
            Poll::Pending => panic!("the unlock did not hand the lock over"),
        }
    };
    round();
    let n = allocations(|| (0..1_000).for_each(|_| round()));
    assert_eq!(n, 0, "allocations in 1,000 warm rounds");
    assert_eq!(*mutex.try_lock().unwrap(), 1_001);
}

/// The counter these tests rely on sees an allocation and a reallocation
/// (so a zero from it means none happened, not a blind counter).
#[test]
fn the_counter_counts() {
    let mut v: Vec<u8> = Vec::with_capacity(1);
    assert_eq!(
        allocations(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
    assert_eq!(allocations(|| v.reserve_exact(4096)), 1);
    assert_eq!(allocations(|| v.push(1)), 0);
}
