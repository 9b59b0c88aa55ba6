//! `waitq::HandoffQueue`: a FIFO whose wakers hand what the oldest waiter
//! waits for straight to it. The test and the link are one lock hold, so
//! are the change and the hand-off; waiters are served in link order;
//! unlinked means served; a waiter that gives up gets its payload back;
//! close fails every waiter; wakers run after the unlock; the sleep is
//! listed in the wait registry until its owner sees the hand-off.
mod support;

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use support::{stress_iters, watchdog, CountingWaker, WATCHDOG};
use waitq::{Closed, HandoffEntry, HandoffQueue, TaskState};

/// A counter of free units; a waiter asks for one.
type Units = HandoffQueue<u64, u64>;

fn take_one(free: &mut u64) -> Result<(), u64> {
    match *free {
        0 => Err(1),
        _ => {
            *free -= 1;
            Ok(())
        }
    }
}

fn step(q: &Units, waker: &Waker, entry: &mut HandoffEntry) -> Poll<Result<Option<()>, Closed>> {
    q.poll_wait(
        &mut Context::from_waker(waker),
        entry,
        TaskState::Uninterruptible,
        take_one,
    )
}

/// A release: a unit goes to the oldest waiter if there is one.
fn release(q: &Units) {
    let mut guard = q.lock();
    if guard.hand_off_front().is_none() {
        *guard += 1;
    }
}

/// `N` waiters, each linked (nothing free) with a waker of its own.
fn queue_waiters<const N: usize>(q: &Units) -> (Vec<Arc<CountingWaker>>, [HandoffEntry; N]) {
    let wakers: Vec<_> = (0..N).map(|_| CountingWaker::new()).collect();
    let mut entries = [HandoffEntry::new(); N];
    for (w, e) in wakers.iter().zip(entries.iter_mut()) {
        assert!(step(q, &w.waker(), e).is_pending());
        assert!(e.is_queued());
    }
    (wakers, entries)
}

#[test]
fn a_free_unit_is_taken_at_once_without_linking() {
    let q = Units::with_state(None, 1);
    let waker = CountingWaker::new();
    let mut entry = HandoffEntry::new();
    assert_eq!(
        step(&q, &waker.waker(), &mut entry),
        Poll::Ready(Ok(Some(())))
    );
    assert!(!entry.is_queued());
    assert!(q.is_empty());
    assert_eq!(*q.lock(), 0);
}

#[test]
fn waiters_are_served_in_link_order() {
    let q = Units::with_state(None, 0);
    let (wakers, mut entries) = queue_waiters::<4>(&q);
    assert_eq!(q.len(), 4);
    for served in 0..4 {
        release(&q);
        for (i, (w, e)) in wakers.iter().zip(entries.iter_mut()).enumerate() {
            if i < served {
                continue;
            }
            let poll = step(&q, &w.waker(), e);
            if i == served {
                assert_eq!(poll, Poll::Ready(Ok(None)), "waiter {i} not served");
                assert_eq!(w.wakes(), 1, "the hand-off woke waiter {i}");
                assert!(!e.is_queued());
            } else {
                assert!(poll.is_pending(), "waiter {i} served out of order");
                assert_eq!(w.wakes(), 0);
            }
        }
    }
    assert!(q.is_empty());
    assert_eq!(*q.lock(), 0, "every unit went to a waiter");
}

/// A served waiter learns it without the queue's lock (the newest
/// hand-off's sequence number is a watermark: hand-offs go in link order),
/// so that watermark must never cover a waiter still linked: not one
/// linked behind a waiter that gave up, nor one linked after the last
/// hand-off.
#[test]
fn a_waiter_behind_the_served_ones_is_not_served_early() {
    let q = Units::with_state(None, 0);
    let (wakers, mut entries) = queue_waiters::<4>(&q);
    // The second gives up: the third is next after the first.
    assert_eq!(q.lock().unlink(&mut entries[1]), Some(1));
    release(&q);
    for i in [2, 3] {
        assert!(
            step(&q, &wakers[i].waker(), &mut entries[i]).is_pending(),
            "waiter {i} served early"
        );
    }
    assert_eq!(
        step(&q, &wakers[0].waker(), &mut entries[0]),
        Poll::Ready(Ok(None))
    );
    release(&q);
    assert!(
        step(&q, &wakers[3].waker(), &mut entries[3]).is_pending(),
        "waiter 3 served early"
    );
    assert_eq!(
        step(&q, &wakers[2].waker(), &mut entries[2]),
        Poll::Ready(Ok(None))
    );
    // A waiter linked after every hand-off so far waits for its own.
    let late = CountingWaker::new();
    let mut entry = HandoffEntry::new();
    assert!(step(&q, &late.waker(), &mut entry).is_pending());
    release(&q);
    assert_eq!(
        step(&q, &wakers[3].waker(), &mut entries[3]),
        Poll::Ready(Ok(None))
    );
    assert!(
        step(&q, &late.waker(), &mut entry).is_pending(),
        "the late waiter served early"
    );
    release(&q);
    assert_eq!(step(&q, &late.waker(), &mut entry), Poll::Ready(Ok(None)));
    assert!(q.is_empty());
}

#[test]
fn a_release_between_two_polls_is_not_lost_by_a_later_poll() {
    // The test and the link share one hold: a unit freed just before the
    // first poll is taken by it, and one freed after is handed to it.
    let q = Units::with_state(None, 0);
    let waker = CountingWaker::new();
    let mut entry = HandoffEntry::new();
    release(&q);
    assert_eq!(
        step(&q, &waker.waker(), &mut entry),
        Poll::Ready(Ok(Some(())))
    );
    assert!(step(&q, &waker.waker(), &mut entry).is_pending());
    release(&q);
    assert_eq!(waker.wakes(), 1);
    assert_eq!(step(&q, &waker.waker(), &mut entry), Poll::Ready(Ok(None)));
}

#[test]
fn the_waker_of_the_last_poll_is_the_one_woken() {
    let q = Units::with_state(None, 0);
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    let mut entry = HandoffEntry::new();
    assert!(step(&q, &old.waker(), &mut entry).is_pending());
    assert!(step(&q, &new.waker(), &mut entry).is_pending());
    release(&q);
    assert_eq!((old.wakes(), new.wakes()), (0, 1));
}

#[test]
fn a_waiter_that_gives_up_gets_its_payload_back_or_learns_it_was_served() {
    let q = Units::with_state(None, 0);
    let waker = CountingWaker::new();
    let (mut a, mut b) = (HandoffEntry::new(), HandoffEntry::new());
    assert!(step(&q, &waker.waker(), &mut a).is_pending());
    assert!(step(&q, &waker.waker(), &mut b).is_pending());
    // Still linked: its payload comes back, and it is out of the list.
    assert_eq!(q.lock().unlink(&mut a), Some(1));
    assert!(!a.is_queued());
    assert_eq!(q.len(), 1);
    // Handed off before it gave up: `None`, the unit is its own.
    release(&q);
    assert_eq!(q.lock().unlink(&mut b), None);
    assert!(!b.is_queued());
    // Unlinking an empty entry does nothing.
    assert_eq!(q.lock().unlink(&mut b), None);
}

#[test]
fn a_stale_entry_never_touches_the_next_waiter_in_its_slot() {
    let q = Units::with_state(None, 0);
    let waker = CountingWaker::new();
    let mut a = HandoffEntry::new();
    assert!(step(&q, &waker.waker(), &mut a).is_pending());
    let stale = a;
    release(&q); // `a` served and unlinked; its slot is free
    let mut b = HandoffEntry::new();
    assert!(step(&q, &waker.waker(), &mut b).is_pending());
    let mut stale = stale;
    assert_eq!(q.lock().unlink(&mut stale), None, "took b's node");
    assert_eq!(q.len(), 1);
    assert_eq!(q.lock().unlink(&mut b), Some(1));
}

/// Links, give-ups in the middle (many, behind one long-lived oldest
/// waiter, so the list compacts), re-polls with a new waker and hand-offs
/// in a seeded random order, against a plain FIFO: every hand-off serves
/// the oldest waiter still linked and wakes the waker of its last poll,
/// and every give-up gets its payload back.
#[test]
fn random_links_give_ups_and_hand_offs_keep_link_order() {
    // Hand-offs seldom (a long queue, many give-ups behind its oldest),
    // then often (the queue empties again and again).
    for odds in [8, 1] {
        link_give_up_and_hand_off_at_random(odds);
    }
}

fn link_give_up_and_hand_off_at_random(odds: usize) {
    const ENTRIES: usize = 64;
    let q = Units::with_state(None, 0);
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut entries = [HandoffEntry::new(); ENTRIES];
    let mut wakers: Vec<Arc<CountingWaker>> = (0..ENTRIES).map(|_| CountingWaker::new()).collect();
    let mut model = std::collections::VecDeque::new();
    let mut served = 0;
    for round in 0..20_000 {
        match next(10) {
            // Link an idle entry.
            0..=3 => {
                let Some(i) = (0..ENTRIES).find(|&i| !entries[i].is_queued()) else {
                    continue;
                };
                wakers[i] = CountingWaker::new();
                assert!(step(&q, &wakers[i].waker(), &mut entries[i]).is_pending());
                model.push_back(i);
            }
            // Give up: anywhere but the oldest while hand-offs are seldom
            // (so that the give-ups behind it pile up), anywhere when not.
            4..=6 if !model.is_empty() => {
                let at = match model.len() {
                    1 if odds > 1 => continue,
                    1 => 0,
                    _ if odds == 1 && next(4) == 0 => 0,
                    n => 1 + next(n - 1),
                };
                let i = model.remove(at).expect("in the model");
                assert_eq!(q.lock().unlink(&mut entries[i]), Some(1), "round {round}");
                assert!(!entries[i].is_queued());
            }
            // Poll again with a new waker.
            7 if !model.is_empty() => {
                let i = model[next(model.len())];
                wakers[i] = CountingWaker::new();
                assert!(step(&q, &wakers[i].waker(), &mut entries[i]).is_pending());
            }
            // Hand off, one time in `odds`.
            8 if !model.is_empty() && next(odds) == 0 => {
                let i = model.pop_front().expect("not empty");
                assert_eq!(q.lock().hand_off_front(), Some(1), "round {round}");
                assert_eq!(wakers[i].wakes(), 1, "round {round}: the last poll's waker");
                assert_eq!(
                    step(&q, &wakers[i].waker(), &mut entries[i]),
                    Poll::Ready(Ok(None))
                );
                served += 1;
            }
            _ => {}
        }
        assert_eq!(q.len(), model.len(), "round {round}");
    }
    // Drain in order.
    while let Some(i) = model.pop_front() {
        release(&q);
        assert_eq!(wakers[i].wakes(), 1);
        assert_eq!(
            step(&q, &wakers[i].waker(), &mut entries[i]),
            Poll::Ready(Ok(None))
        );
        served += 1;
    }
    assert!(q.is_empty());
    assert_eq!(*q.lock(), 0);
    assert!(served > 100, "only {served} hand-offs");
}

#[test]
fn close_fails_every_waiter_and_every_later_one() {
    let q = Units::with_state(None, 0);
    let (wakers, mut entries) = queue_waiters::<3>(&q);
    assert_eq!(q.close(), 3);
    for (w, e) in wakers.iter().zip(entries.iter_mut()) {
        assert_eq!(w.wakes(), 1);
        assert!(matches!(step(&q, &w.waker(), e), Poll::Ready(Err(_))));
        // Still linked: the waiter unlinks itself, with its payload.
        assert_eq!(q.lock().unlink(e), Some(1));
    }
    let mut late = HandoffEntry::new();
    assert!(matches!(
        step(&q, &wakers[0].waker(), &mut late),
        Poll::Ready(Err(_))
    ));
    assert!(!late.is_queued(), "linked on a closed queue");
    // A free unit still wins over the close.
    *q.lock() = 1;
    assert_eq!(
        step(&q, &wakers[0].waker(), &mut late),
        Poll::Ready(Ok(Some(())))
    );
}

#[test]
fn the_wait_spends_the_coop_budget() {
    let q = Units::with_state(None, 5);
    let waker = CountingWaker::new();
    waitq::coop::with_budget(1, || {
        let mut entry = HandoffEntry::new();
        assert!(step(&q, &waker.waker(), &mut entry).is_ready());
        assert!(step(&q, &waker.waker(), &mut entry).is_pending());
        assert!(!entry.is_queued(), "an exhausted poll links nothing");
    });
    assert_eq!(waker.wakes(), 1);
    assert_eq!(*q.lock(), 4);
}

/// The wakers of a hand-off run after the unlock: a waker that takes the
/// same lock (as an executor's might, re-polling at once) does not
/// deadlock.
#[test]
fn a_hand_off_runs_the_waker_after_the_unlock() {
    struct Relock(Arc<Units>, AtomicUsize);
    impl std::task::Wake for Relock {
        fn wake(self: Arc<Self>) {
            let _ = *self.0.lock();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let woken = watchdog("a waker that relocks", WATCHDOG, || {
        let q = Arc::new(Units::with_state(None, 0));
        let relock = Arc::new(Relock(q.clone(), AtomicUsize::new(0)));
        let waker = Waker::from(relock.clone());
        let mut entry = HandoffEntry::new();
        assert!(step(&q, &waker, &mut entry).is_pending());
        release(&q);
        q.close();
        relock.1.load(Ordering::SeqCst)
    });
    assert_eq!(woken, 1);
}

#[test]
fn the_registry_lists_the_sleep_until_its_owner_sees_the_hand_off() {
    use waitq::registry;
    registry::enable();
    registry::set_task_source(|| {
        Some(registry::TaskStamp {
            task: Some(11),
            now: std::time::Instant::now(),
        })
    });
    static Q: Units = Units::with_state(Some("handoff_units"), 0);
    let me = waitq::hook::QueueId::of_handoff(&Q);
    let listed = || {
        registry::snapshot()
            .into_iter()
            .filter(|w| w.queue == me)
            .collect::<Vec<_>>()
    };
    let waker = CountingWaker::new();
    let mut entry = HandoffEntry::new();
    assert!(step(&Q, &waker.waker(), &mut entry).is_pending());
    let w = listed();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].queue_name, Some("handoff_units"));
    assert_eq!(w[0].kind.to_string(), "handoff_wait_exclusive");
    assert!(w[0].picked.is_none());
    release(&Q);
    // Handed off, not yet seen by its owner: listed, and picked.
    let w = listed();
    assert_eq!(w.len(), 1, "unlisted before its owner saw the hand-off");
    assert!(w[0].picked.is_some());
    assert_eq!(step(&Q, &waker.waker(), &mut entry), Poll::Ready(Ok(None)));
    assert!(listed().is_empty());
    // A waiter that gives up is unlisted by its unlink.
    assert!(step(&Q, &waker.waker(), &mut entry).is_pending());
    assert_eq!(listed().len(), 1);
    assert_eq!(Q.lock().unlink(&mut entry), Some(1));
    assert!(listed().is_empty());
}

/// A semaphore of `PERMITS` units over real threads: each thread takes a
/// unit (sleeping for a hand-off when none is free), holds it, gives it
/// back. The holders never exceed the units and every round finishes; a
/// lost hand-off hangs a thread and fires the watchdog. The threads start
/// together and yield while they hold a unit, so that on a loaded
/// machine too they overlap and some of them sleep (a run where each
/// thread ran alone would test nothing, and says so).
#[test]
fn stress_threads_share_units_through_hand_offs() {
    const PERMITS: u64 = 2;
    const THREADS: usize = 4;
    let rounds = stress_iters();
    let q = Arc::new(Units::with_state(None, PERMITS));
    let holders = Arc::new(AtomicU64::new(0));
    let sleeps = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (q, holders, sleeps) = (q.clone(), holders.clone(), sleeps.clone());
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    let mut entry = HandoffEntry::new();
                    futures::executor::block_on(poll_fn(|cx| {
                        let poll =
                            q.poll_wait(cx, &mut entry, TaskState::Uninterruptible, take_one);
                        sleeps.fetch_add(usize::from(poll.is_pending()), Ordering::Relaxed);
                        poll
                    }))
                    .unwrap();
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= PERMITS, "{now} holders of {PERMITS} units");
                    std::thread::yield_now();
                    holders.fetch_sub(1, Ordering::SeqCst);
                    release(&q);
                }
            })
        })
        .collect();
    watchdog("hand-off stress", WATCHDOG, move || {
        for t in threads {
            t.join().unwrap();
        }
    });
    assert_eq!(*q.lock(), PERMITS, "units lost or made");
    assert!(q.is_empty());
    assert!(
        sleeps.load(Ordering::Relaxed) > 0,
        "nobody ever slept: nothing was tested"
    );
}

/// A waker whose `wake` panics (a buggy hand-written executor).
struct PanicWaker;

impl std::task::Wake for PanicWaker {
    fn wake(self: Arc<Self>) {
        panic!("waker panic");
    }
}

/// Two hand-offs in one lock hold, the first to a waiter whose waker
/// panics: the second waiter is still woken (it was handed its unit, and
/// would hold it asleep for good), and the panic reaches the waker's
/// caller once both are woken. Same for `close`.
#[test]
fn a_panicking_waker_does_not_stop_the_other_wakes() {
    let q = Units::with_state(None, 0);
    let panicky = Waker::from(Arc::new(PanicWaker));
    let other = CountingWaker::new();
    let mut entries = [HandoffEntry::new(); 2];
    assert!(step(&q, &panicky, &mut entries[0]).is_pending());
    assert!(step(&q, &other.waker(), &mut entries[1]).is_pending());
    let handed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = q.lock();
        assert!(guard.hand_off_front().is_some());
        assert!(guard.hand_off_front().is_some());
    }));
    assert!(handed.is_err(), "the waker's panic reaches the caller");
    assert_eq!(other.wakes(), 1, "the second waiter was woken");
    assert_eq!(
        step(&q, &other.waker(), &mut entries[1]),
        Poll::Ready(Ok(None))
    );

    let q = Units::with_state(None, 0);
    let mut entries = [HandoffEntry::new(); 2];
    let other = CountingWaker::new();
    assert!(step(&q, &panicky, &mut entries[0]).is_pending());
    assert!(step(&q, &other.waker(), &mut entries[1]).is_pending());
    let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.close()));
    assert!(closed.is_err(), "the waker's panic reaches the caller");
    assert_eq!(other.wakes(), 1, "the second waiter was told of the close");
    assert!(matches!(
        step(&q, &other.waker(), &mut entries[1]),
        Poll::Ready(Err(_))
    ));
    for entry in &mut entries {
        q.lock().unlink(entry);
    }
}

/// A hand-off made by a destructor that a panic runs (a guard dropped
/// while unwinding) to one waiter whose waker panics: the process goes
/// on (a second panic while unwinding would abort it), and the first
/// panic is the one that comes out (an independent review found the
/// one-waiter path aborting).
#[test]
fn a_hand_off_while_unwinding_survives_a_panicking_waker() {
    struct ReleaseOnDrop<'a>(&'a Units);
    impl Drop for ReleaseOnDrop<'_> {
        fn drop(&mut self) {
            release(self.0);
        }
    }
    let q = Units::with_state(None, 0);
    let panicky = Waker::from(Arc::new(PanicWaker));
    let mut entry = HandoffEntry::new();
    assert!(step(&q, &panicky, &mut entry).is_pending());
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _release = ReleaseOnDrop(&q);
        panic!("first");
    }));
    let payload = res.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
    let served = step(&q, &CountingWaker::new().waker(), &mut entry);
    assert_eq!(
        served,
        Poll::Ready(Ok(None)),
        "the waiter was handed the unit"
    );
}
