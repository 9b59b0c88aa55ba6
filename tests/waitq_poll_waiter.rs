//! `waitq::PollWaiter`: the owned, reusable, poll-driven wait keeps the
//! protocol of `wait_event` (no lost wake-up, close, exclusive hand-off),
//! over any queue owner, and allocates nothing per wait after warm-up.
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use support::{stress_iters, watchdog, CountingWaker, WATCHDOG};
use waitq::{Closed, PollWaiter, WaitQueue};

/// One `poll_wait_event` with `waker`.
fn step<Q: Deref<Target = WaitQueue>>(
    waiter: &mut PollWaiter<Q>,
    waker: &Waker,
    cond: impl FnMut() -> bool,
) -> Poll<Result<(), Closed>> {
    waiter.poll_wait_event(&mut Context::from_waker(waker), cond)
}

#[test]
fn a_wake_between_the_false_test_and_registration_is_caught() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut waiter = PollWaiter::new(&queue);
    let waker = CountingWaker::new();
    let mut tests = 0;
    let cond = || {
        tests += 1;
        if tests == 1 {
            // The waker runs right after our first (false) test, before we
            // are linked: its wake_up finds nobody.
            ready.store(true, Ordering::SeqCst);
            assert_eq!(queue.wake_up(), 0);
            return false;
        }
        ready.load(Ordering::SeqCst)
    };
    // Only the re-check after linking can see it.
    assert_eq!(step(&mut waiter, &waker.waker(), cond), Poll::Ready(Ok(())));
    assert_eq!(tests, 2);
    assert!(!waiter.is_waiting());
    assert_eq!(queue.len(), 0);
}

#[test]
fn a_wake_after_registration_wakes_the_task() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut waiter = PollWaiter::new(&queue);
    let waker = CountingWaker::new();
    let cond = || ready.load(Ordering::SeqCst);
    assert!(step(&mut waiter, &waker.waker(), cond).is_pending());
    assert!(waiter.is_waiting());
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(waker.wakes(), 1);
    assert!(waiter.is_waiting(), "picked but not acted on yet");
    assert_eq!(step(&mut waiter, &waker.waker(), cond), Poll::Ready(Ok(())));
    assert!(!waiter.is_waiting());
}

#[test]
fn reusable_after_ready() {
    let queue = Arc::new(WaitQueue::new());
    let ready = AtomicBool::new(false);
    let mut waiter = PollWaiter::new(queue.clone());
    let waker = CountingWaker::new();
    let cond = || ready.load(Ordering::SeqCst);
    for round in 1..=5 {
        ready.store(false, Ordering::SeqCst);
        assert!(step(&mut waiter, &waker.waker(), cond).is_pending());
        assert_eq!(queue.len(), 1);
        ready.store(true, Ordering::SeqCst);
        assert_eq!(queue.wake_up(), 1);
        assert_eq!(waker.wakes(), round);
        assert_eq!(step(&mut waiter, &waker.waker(), cond), Poll::Ready(Ok(())));
        // Polled again after Ready: a new wait, no panic.
        assert_eq!(step(&mut waiter, &waker.waker(), cond), Poll::Ready(Ok(())));
        assert_eq!(queue.len(), 0);
    }
}

#[test]
fn close_ends_the_wait_but_a_true_condition_wins() {
    let queue = WaitQueue::new();
    let waker = CountingWaker::new();
    let mut waiter = PollWaiter::new(&queue);
    let mut winner = PollWaiter::new(&queue);
    assert!(step(&mut waiter, &waker.waker(), || false).is_pending());
    assert!(step(&mut winner, &waker.waker(), || false).is_pending());
    queue.close();
    assert_eq!(waker.wakes(), 2);
    assert!(step(&mut waiter, &waker.waker(), || false).is_ready_err());
    assert_eq!(
        step(&mut winner, &waker.waker(), || true),
        Poll::Ready(Ok(()))
    );
    // New waits on the closed queue: the same rule, no registration.
    let mut late = PollWaiter::new_exclusive(&queue);
    assert!(step(&mut late, &waker.waker(), || false).is_ready_err());
    assert_eq!(
        step(&mut late, &waker.waker(), || true),
        Poll::Ready(Ok(()))
    );
    assert!(!late.is_waiting());
}

trait ReadyErr {
    fn is_ready_err(&self) -> bool;
}

impl ReadyErr for Poll<Result<(), Closed>> {
    fn is_ready_err(&self) -> bool {
        matches!(self, Poll::Ready(Err(e)) if e.is_closed())
    }
}

#[test]
fn dropping_a_picked_exclusive_waiter_hands_the_wake_on() {
    let queue = WaitQueue::new();
    let (wa, wb) = (CountingWaker::new(), CountingWaker::new());
    let mut a = PollWaiter::new_exclusive(&queue);
    let mut b = PollWaiter::new_exclusive(&queue);
    assert!(step(&mut a, &wa.waker(), || false).is_pending());
    assert!(step(&mut b, &wb.waker(), || false).is_pending());
    assert_eq!(queue.wake_up(), 1);
    assert_eq!((wa.wakes(), wb.wakes()), (1, 0));
    drop(a); // picked, never acted on
    assert_eq!(wb.wakes(), 1, "the wake was not handed on");
    assert_eq!(step(&mut b, &wb.waker(), || true), Poll::Ready(Ok(())));
}

#[test]
fn dropping_an_unpicked_waiter_wakes_nobody() {
    let queue = WaitQueue::new();
    let (wa, wb) = (CountingWaker::new(), CountingWaker::new());
    let mut c = PollWaiter::new_exclusive(&queue);
    let mut d = PollWaiter::new_exclusive(&queue);
    assert!(step(&mut c, &wa.waker(), || false).is_pending());
    assert!(step(&mut d, &wb.waker(), || false).is_pending());
    drop(c);
    assert_eq!(queue.len(), 1);
    assert_eq!(wb.wakes(), 0);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(wb.wakes(), 1);
    assert!(
        step(&mut d, &wb.waker(), || false).is_pending(),
        "re-queued"
    );
    assert_eq!(queue.len(), 1);
}

/// The state a join handle shares with its task, queue embedded.
struct Shared {
    done: AtomicBool,
    queue: WaitQueue,
}

/// A custom owner: reaches the queue inside `Shared`.
#[derive(Clone)]
struct QueueOf(Arc<Shared>);

impl Deref for QueueOf {
    type Target = WaitQueue;
    fn deref(&self) -> &WaitQueue {
        &self.0.queue
    }
}

/// A named future holding a `PollWaiter`, as the runtime's `JoinHandle`.
struct Join {
    waiter: PollWaiter<QueueOf>,
    shared: Arc<Shared>,
}

impl Future for Join {
    type Output = Result<(), Closed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = &this.shared;
        this.waiter
            .poll_wait_event(cx, || shared.done.load(Ordering::SeqCst))
    }
}

fn assert_traits<T: Send + Sync + Unpin + 'static>() {}

#[test]
fn owners_arc_and_custom_in_named_futures() {
    assert_traits::<PollWaiter<Arc<WaitQueue>>>();
    assert_traits::<PollWaiter<QueueOf>>();
    assert_traits::<Join>();
    let shared = Arc::new(Shared {
        done: AtomicBool::new(false),
        queue: WaitQueue::new(),
    });
    let join = Join {
        waiter: PollWaiter::new(QueueOf(shared.clone())),
        shared: shared.clone(),
    };
    assert!(std::ptr::eq(join.waiter.queue(), &shared.queue));
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        shared.done.store(true, Ordering::SeqCst);
        shared.queue.wake_up_all();
    });
    watchdog("join", WATCHDOG, || futures::executor::block_on(join)).unwrap();
    setter.join().unwrap();

    let queue = Arc::new(WaitQueue::new());
    let flag = Arc::new(AtomicBool::new(false));
    let mut waiter = PollWaiter::new_exclusive(queue.clone());
    let f = flag.clone();
    let waiting = std::thread::spawn(move || {
        futures::executor::block_on(poll_fn(|cx| {
            waiter.poll_wait_event(cx, || f.load(Ordering::SeqCst))
        }))
    });
    while queue.is_empty() {
        std::thread::yield_now();
    }
    flag.store(true, Ordering::SeqCst);
    queue.wake_up();
    watchdog("arc waiter", WATCHDOG, move || waiting.join().unwrap()).unwrap();
}

/// Adds one to `counter` if it is below `cap`.
fn reserve(counter: &AtomicUsize, cap: usize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_ok()
}

/// Takes a token if there is one.
fn take(tokens: &AtomicUsize) -> bool {
    tokens
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[test]
fn stress_producers_and_a_reusing_consumer() {
    const PRODUCERS: usize = 4;
    let iters = stress_iters();
    let total = PRODUCERS * iters;
    // A one-slot buffer, so the consumer keeps finding it empty and sleeps
    // on its `PollWaiter`; producers sleep (as threads) on `space`.
    let items = Arc::new(WaitQueue::new());
    let space = Arc::new(WaitQueue::new());
    let slot = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (items, space, slot) = (items.clone(), space.clone(), slot.clone());
            std::thread::spawn(move || {
                for _ in 0..iters {
                    space
                        .blocking_wait_event_exclusive(|| reserve(&slot, 1))
                        .unwrap();
                    items.wake_up(); // the state changed first (reserve)
                }
            })
        })
        .collect();
    let (queue, free, s) = (items.clone(), space.clone(), slot.clone());
    let (taken, sleeps) = watchdog("poll-waiter consumer", WATCHDOG, move || {
        let mut waiter = PollWaiter::new(queue);
        let (mut taken, mut sleeps) = (0, 0);
        while taken < total {
            futures::executor::block_on(poll_fn(|cx| {
                let poll = waiter.poll_wait_event(cx, || s.load(Ordering::SeqCst) > 0);
                sleeps += usize::from(poll.is_pending());
                poll
            }))
            .unwrap();
            assert!(!waiter.is_waiting());
            assert!(take(&s));
            taken += 1;
            free.wake_up();
        }
        (taken, sleeps)
    });
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(taken, total);
    assert!(sleeps > 0, "the consumer never slept: nothing was tested");
    assert_eq!(items.len() + space.len(), 0);
}

#[test]
fn stress_exclusive_consumers_share_every_token() {
    const PRODUCERS: usize = 2;
    const CONSUMERS: usize = 3;
    let iters = stress_iters();
    let total = PRODUCERS * iters;
    let queue = Arc::new(WaitQueue::new());
    let tokens = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (queue, tokens, taken) = (queue.clone(), tokens.clone(), taken.clone());
            std::thread::spawn(move || {
                let mut waiter = PollWaiter::new_exclusive(queue.clone());
                // Each token needs its own wake_up: a lost hand-off hangs.
                while futures::executor::block_on(poll_fn(|cx| {
                    waiter.poll_wait_event(cx, || take(&tokens))
                }))
                .is_ok()
                {
                    if taken.fetch_add(1, Ordering::SeqCst) + 1 == total {
                        queue.close();
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (queue, tokens) = (queue.clone(), tokens.clone());
            std::thread::spawn(move || {
                for _ in 0..iters {
                    tokens.fetch_add(1, Ordering::SeqCst);
                    queue.wake_up();
                }
            })
        })
        .collect();
    watchdog("exclusive poll-waiter consumers", WATCHDOG, move || {
        for t in producers.into_iter().chain(consumers) {
            t.join().unwrap();
        }
    });
    assert_eq!(taken.load(Ordering::SeqCst), total);
}

// ===== no allocation per wait after warm-up =====

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the only
// addition is a thread-local counter, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_wait_after_warm_up() {
    let queue = Arc::new(WaitQueue::new());
    let ready = AtomicBool::new(false);
    let waker = CountingWaker::new().waker();
    let mut shared = PollWaiter::new(queue.clone());
    let mut a = PollWaiter::new_exclusive(queue.clone());
    let mut b = PollWaiter::new_exclusive(queue.clone());
    let cond = || ready.load(Ordering::SeqCst);
    let cycle = |shared: &mut PollWaiter<_>, a: &mut PollWaiter<_>, b: &mut PollWaiter<_>| {
        ready.store(false, Ordering::SeqCst);
        assert!(step(shared, &waker, cond).is_pending());
        assert!(step(a, &waker, cond).is_pending());
        assert!(step(b, &waker, cond).is_pending());
        ready.store(true, Ordering::SeqCst);
        assert_eq!(queue.wake_up(), 2);
        for w in [shared, a, b] {
            assert!(step(w, &waker, cond).is_ready());
        }
    };
    for _ in 0..4 {
        cycle(&mut shared, &mut a, &mut b);
    }
    let before = ALLOCS.with(Cell::get);
    for _ in 0..1_000 {
        cycle(&mut shared, &mut a, &mut b);
    }
    assert_eq!(ALLOCS.with(Cell::get) - before, 0, "a PollWaiter allocated");
}
