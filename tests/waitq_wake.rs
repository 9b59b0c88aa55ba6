//! Wake semantics of `waitq` (anchors §9 rules 1–4 and 10–14): register before check, fast path, no stored permit, spurious wakes, unlink on drop, no ABA, waker update, re-entrant wakers, atomic broadcast.
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use support::{poll_with, CountingWaker};
use tokio_test::{assert_pending, assert_ready, task};
use waitq::{WaitEvent, WaitQueue};

/// Limit for the re-entrancy tests: a deadlock fails the test instead of hanging it.
const HANG: Duration = Duration::from_secs(10);

/// A waiter that is only ever woken, never satisfied.
type Never = WaitEvent<'static, fn() -> bool>;

fn never() -> bool {
    false
}

fn never_fn() -> fn() -> bool {
    never
}

// ===== a waker with observable clones (hand-written vtable) =====

/// Counts clones, wakes and drops; with `reenter` set, every clone calls
/// `wake_up_all` on that queue (tokio's re-entrant-clone test).
struct Probe {
    reenter: Option<&'static WaitQueue>,
    clones: AtomicUsize,
    wakes: AtomicUsize,
    nested_woken: AtomicUsize,
}

impl Probe {
    fn new(reenter: Option<&'static WaitQueue>) -> Arc<Self> {
        Arc::new(Probe {
            reenter,
            clones: AtomicUsize::new(0),
            wakes: AtomicUsize::new(0),
            nested_woken: AtomicUsize::new(0),
        })
    }

    fn waker(self: &Arc<Self>) -> Waker {
        let data = Arc::into_raw(self.clone()).cast::<()>();
        // SAFETY: `data` is an owned `Arc<Probe>` reference and `PROBE_VTABLE`
        // treats it as one (clone increments, wake/drop release it).
        unsafe { Waker::from_raw(RawWaker::new(data, &PROBE_VTABLE)) }
    }

    fn clones(&self) -> usize {
        self.clones.load(Ordering::SeqCst)
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

static PROBE_VTABLE: RawWakerVTable =
    RawWakerVTable::new(probe_clone, probe_wake, probe_wake_by_ref, probe_drop);

unsafe fn probe_clone(data: *const ()) -> RawWaker {
    let ptr = data.cast::<Probe>();
    // SAFETY: `data` is a live `Arc<Probe>` reference (see `Probe::waker`).
    unsafe { Arc::increment_strong_count(ptr) };
    // SAFETY: as above, the pointee is alive for the duration of this call.
    let probe = unsafe { &*ptr };
    probe.clones.fetch_add(1, Ordering::SeqCst);
    if let Some(queue) = probe.reenter {
        let woken = queue.wake_up_all();
        probe.nested_woken.fetch_add(woken, Ordering::SeqCst);
    }
    RawWaker::new(data, &PROBE_VTABLE)
}

unsafe fn probe_wake(data: *const ()) {
    // SAFETY: `wake` consumes one owned reference: count it, then release it.
    unsafe {
        probe_wake_by_ref(data);
        probe_drop(data);
    }
}

unsafe fn probe_wake_by_ref(data: *const ()) {
    // SAFETY: `data` is a live `Arc<Probe>` reference.
    let probe = unsafe { &*data.cast::<Probe>() };
    probe.wakes.fetch_add(1, Ordering::SeqCst);
}

unsafe fn probe_drop(data: *const ()) {
    // SAFETY: releases the owned reference this `RawWaker` stood for.
    drop(unsafe { Arc::from_raw(data.cast::<Probe>()) });
}

// ===== hostile `Wake` impls (rules 13 and 14) =====

/// A waker whose `wake` optionally calls `wake_up_all` on its queue and then
/// registers a new waiter on it by polling `newcomer`.
struct Reentrant {
    queue: &'static WaitQueue,
    wake_all_first: bool,
    newcomer: Mutex<Option<Never>>,
    newcomer_waker: Arc<CountingWaker>,
    newcomer_pending: AtomicBool,
    nested_woken: AtomicUsize,
    wakes: AtomicUsize,
}

impl Reentrant {
    fn new(queue: &'static WaitQueue, wake_all_first: bool, newcomer: Never) -> Arc<Self> {
        Arc::new(Reentrant {
            queue,
            wake_all_first,
            newcomer: Mutex::new(Some(newcomer)),
            newcomer_waker: CountingWaker::new(),
            newcomer_pending: AtomicBool::new(false),
            nested_woken: AtomicUsize::new(0),
            wakes: AtomicUsize::new(0),
        })
    }

    fn take_newcomer(&self) -> Never {
        self.newcomer.lock().unwrap().take().expect("newcomer")
    }
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        if self.wake_all_first {
            let woken = self.queue.wake_up_all();
            self.nested_woken.fetch_add(woken, Ordering::SeqCst);
        }
        let mut slot = self.newcomer.lock().unwrap();
        if let Some(fut) = slot.as_mut() {
            let pending = poll_with(fut, &self.newcomer_waker.waker()).is_pending();
            self.newcomer_pending.store(pending, Ordering::SeqCst);
        }
    }
}

/// A waker whose last reference calls `wake_up_all` on its queue when dropped.
struct WakeAllOnDrop {
    queue: &'static WaitQueue,
    dropped: Arc<AtomicBool>,
    nested_woken: Arc<AtomicUsize>,
}

impl Wake for WakeAllOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for WakeAllOnDrop {
    fn drop(&mut self) {
        let woken = self.queue.wake_up_all();
        self.nested_woken.fetch_add(woken, Ordering::SeqCst);
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A `WakeAllOnDrop` waker plus the flags it reports through.
fn wake_all_on_drop(queue: &'static WaitQueue) -> (Waker, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let nested = Arc::new(AtomicUsize::new(0));
    let waker = Waker::from(Arc::new(WakeAllOnDrop {
        queue,
        dropped: dropped.clone(),
        nested_woken: nested.clone(),
    }));
    (waker, dropped, nested)
}

// ===== rule 1: register before check =====

#[test]
fn rule01_register_before_check_wake_from_another_thread() {
    // Breaks if a registered waiter is not linked (len 0) or its waker is not the one the wake fires.
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    let woken = std::thread::scope(|s| {
        s.spawn(|| {
            ready.store(true, Ordering::SeqCst);
            queue.wake_up()
        })
        .join()
        .unwrap()
    });
    assert_eq!(woken, 1);
    assert!(fut.is_woken());
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule01_condition_is_rechecked_after_linking() {
    // Breaks if the entry is linked after (not before) the second condition check.
    let queue = WaitQueue::new();
    let seen_len = Mutex::new(Vec::new());
    let mut fut = task::spawn(queue.wait_event(|| {
        seen_len.lock().unwrap().push(queue.len());
        false
    }));
    assert_pending!(fut.poll());
    // Fast-path check with nothing linked, then the re-check with the entry linked.
    assert_eq!(*seen_len.lock().unwrap(), vec![0, 1]);
}

#[test]
fn rule01_setter_between_check_and_link_is_not_lost() {
    // Breaks if the condition is not re-tested after linking: the wake_up finds no waiter and the wait hangs.
    for exclusive in [false, true] {
        let queue = WaitQueue::new();
        let ready = AtomicBool::new(false);
        let calls = AtomicUsize::new(0);
        let setter_woke = AtomicUsize::new(usize::MAX);
        let cond = || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // A setter racing the first check: state changed, then an (empty-queue) wake.
                ready.store(true, Ordering::SeqCst);
                setter_woke.store(queue.wake_up(), Ordering::SeqCst);
                return false;
            }
            ready.load(Ordering::SeqCst)
        };
        let fut = if exclusive {
            queue.wait_event_exclusive(cond)
        } else {
            queue.wait_event(cond)
        };
        let mut fut = task::spawn(fut);
        assert_ready!(fut.poll()).unwrap();
        assert_eq!(
            setter_woke.load(Ordering::SeqCst),
            0,
            "the setter's wake found nobody"
        );
        assert_eq!(queue.len(), 0);
    }
}

// ===== rule 2: fast path =====

#[test]
fn rule02_true_condition_at_first_poll_registers_nothing() {
    // Breaks if a first poll with a true condition links an entry or keeps a waker.
    let queue = WaitQueue::new();
    let waker = CountingWaker::new();
    let refs = Arc::strong_count(&waker);

    let mut plain = queue.wait_event(|| true);
    assert!(poll_with(&mut plain, &waker.waker()).is_ready());
    let mut exclusive = queue.wait_event_exclusive(|| true);
    assert!(poll_with(&mut exclusive, &waker.waker()).is_ready());
    let mut value = queue.wait_event_value(|| Some(7));
    assert!(matches!(
        poll_with(&mut value, &waker.waker()),
        std::task::Poll::Ready(Ok(7))
    ));

    assert_eq!(queue.len(), 0);
    assert!(!queue.waitqueue_active());
    assert_eq!(queue.capacity(), 0, "no slab slot was ever allocated");
    assert_eq!(Arc::strong_count(&waker), refs, "no waker clone was stored");
    assert_eq!(queue.wake_up(), 0);
    assert_eq!(queue.wake_up_all(), 0);
    assert_eq!(waker.wakes(), 0);
}

// ===== rule 3: a wake before the first poll is not stored =====

#[test]
fn rule03_wake_before_first_poll_with_true_condition_completes() {
    // Breaks if creating a future registers it, or if the first poll ignores the condition.
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_eq!(
        queue.len(),
        0,
        "futures register on first poll, not at creation"
    );
    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 0);
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule03_wake_before_first_poll_with_false_condition_is_not_a_permit() {
    // Breaks if a wake on an empty queue is stored as a permit (tokio-style) and completes the later wait.
    let queue = WaitQueue::new();
    let mut fut = task::spawn(queue.wait_event(never));
    assert_eq!(queue.wake_up(), 0);
    assert_eq!(queue.wake_up_all(), 0);
    assert_pending!(fut.poll());
    assert!(!fut.is_woken());
    assert_eq!(queue.len(), 1);
    // Still asleep: only a wake after registration reaches it.
    assert_pending!(fut.poll());
    assert!(!fut.is_woken());
    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
}

// ===== rule 4: spurious wake =====

#[test]
fn rule04_spurious_wake_re_registers_the_waiter() {
    // Breaks if a waiter woken with its condition false does not link itself again (the later wake is lost).
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let mut fut = task::spawn(queue.wait_event(|| ready.load(Ordering::SeqCst)));
    assert_pending!(fut.poll());

    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
    assert_eq!(queue.len(), 0, "the wake unlinks the entry at once");
    assert_pending!(fut.poll());
    assert!(queue.waitqueue_active());
    assert_eq!(queue.len(), 1);

    ready.store(true, Ordering::SeqCst);
    assert_eq!(queue.wake_up(), 1);
    assert!(fut.is_woken());
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(queue.len(), 0);
}

// ===== rule 10: drop of an unwoken waiter unlinks it =====

#[test]
fn rule10_dropping_an_unwoken_waiter_unlinks_it() {
    // Breaks if a dropped future leaves its entry (and waker) in the queue.
    let queue = WaitQueue::new();
    let mut fut = task::spawn(queue.wait_event(never));
    assert_pending!(fut.poll());
    assert_eq!(queue.len(), 1);
    assert_eq!(fut.waker_ref_count(), 2, "the queue holds the waker");
    drop(fut);
    assert_eq!(queue.len(), 0);
    assert!(!queue.waitqueue_active());
    assert_eq!(queue.wake_up(), 0);
    assert_eq!(queue.wake_up_all(), 0);
}

#[test]
fn rule10_dropping_one_of_several_unlinks_only_it() {
    // Breaks if dropping a waiter unlinks a neighbour or leaves itself behind.
    let queue = WaitQueue::new();
    let wakers: Vec<_> = (0..3).map(|_| CountingWaker::new()).collect();
    let mut futs: Vec<_> = (0..3).map(|_| queue.wait_event(never_fn())).collect();
    for (fut, w) in futs.iter_mut().zip(&wakers) {
        assert!(poll_with(fut, &w.waker()).is_pending());
    }
    let middle = futs.remove(1);
    drop(middle);
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.wake_up_all(), 2);
    assert_eq!(
        wakers.iter().map(|w| w.wakes()).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
}

#[test]
fn rule10_register_and_drop_cycles_reuse_slots() {
    // Breaks if dropped waiters leak slab slots (capacity would grow with every cycle).
    let queue = WaitQueue::new();
    let waker = CountingWaker::new().waker();
    let mut first_capacity = None;
    for _ in 0..200 {
        let mut futs: Vec<_> = (0..3).map(|_| queue.wait_event(never_fn())).collect();
        for fut in &mut futs {
            assert!(poll_with(fut, &waker).is_pending());
        }
        assert_eq!(queue.len(), 3);
        drop(futs);
        assert_eq!(queue.len(), 0);
        let capacity = *first_capacity.get_or_insert(queue.capacity());
        assert_eq!(
            queue.capacity(),
            capacity,
            "the slab grew although len() never exceeded 3"
        );
    }
}

// ===== rule 11: slab key reuse (ABA) =====

/// A (woken, so its slot was freed) and B (registered after, in A's old slot).
struct Aba<'q, F> {
    a: WaitEvent<'q, F>,
    b: WaitEvent<'q, fn() -> bool>,
    wa: Arc<CountingWaker>,
    wb: Arc<CountingWaker>,
}

/// A registers and is woken (its slot freed); B registers and takes A's old
/// slot (the slab reuses the last freed key first).
fn aba_setup<F: FnMut() -> bool>(queue: &WaitQueue, a_cond: F) -> Aba<'_, F> {
    let (wa, wb) = (CountingWaker::new(), CountingWaker::new());
    let mut a = queue.wait_event(a_cond);
    assert!(poll_with(&mut a, &wa.waker()).is_pending());
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(queue.len(), 0);
    let mut b = queue.wait_event(never_fn());
    assert!(poll_with(&mut b, &wb.waker()).is_pending());
    assert_eq!(queue.len(), 1);
    Aba { a, b, wa, wb }
}

#[test]
fn rule11_stale_future_polled_then_dropped_leaves_new_occupant_alone() {
    // Breaks without a generation per slot: A's stale handle would hijack B's waker and unlink B.
    let queue = WaitQueue::new();
    let Aba { mut a, b, wa, wb } = aba_setup(&queue, never);
    let a_waker = CountingWaker::new();
    assert!(poll_with(&mut a, &a_waker.waker()).is_pending());
    assert_eq!(
        queue.len(),
        2,
        "A re-registered in a fresh slot, B untouched"
    );
    drop(a);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(wb.wakes(), 1, "B is still registered with its own waker");
    assert_eq!(a_waker.wakes(), 0);
    assert_eq!(wa.wakes(), 1);
    drop(b);
}

#[test]
fn rule11_stale_future_dropped_unpolled_leaves_new_occupant_alone() {
    // Breaks without a generation per slot: dropping A would unlink B's entry.
    let queue = WaitQueue::new();
    let Aba { a, b, wb, .. } = aba_setup(&queue, never);
    drop(a);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(wb.wakes(), 1);
    drop(b);
}

#[test]
fn rule11_stale_future_completing_leaves_new_occupant_alone() {
    // Breaks without a generation per slot: A's successful finish would unlink B's entry.
    let a_ready = AtomicBool::new(false);
    let queue = WaitQueue::new();
    let Aba { mut a, b, wb, .. } = aba_setup(&queue, || a_ready.load(Ordering::SeqCst));
    a_ready.store(true, Ordering::SeqCst);
    assert!(poll_with(&mut a, &CountingWaker::new().waker()).is_ready());
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.wake_up(), 1);
    assert_eq!(wb.wakes(), 1);
    drop(b);
}

// ===== rule 12: waker update =====

#[test]
fn rule12_re_poll_with_new_waker_replaces_the_old_one() {
    // Breaks if a re-poll keeps the first waker: the wake would go to a task that no longer waits.
    for exclusive in [false, true] {
        let queue = WaitQueue::new();
        let (w1, w2) = (CountingWaker::new(), CountingWaker::new());
        let mut fut = if exclusive {
            queue.wait_event_exclusive(never_fn())
        } else {
            queue.wait_event(never_fn())
        };
        assert!(poll_with(&mut fut, &w1.waker()).is_pending());
        assert!(poll_with(&mut fut, &w2.waker()).is_pending());
        assert_eq!(queue.len(), 1, "a re-poll does not add a second entry");
        assert_eq!(queue.wake_up(), 1);
        assert_eq!((w1.wakes(), w2.wakes()), (0, 1));
    }
}

#[test]
fn rule12_waker_update_keeps_the_queue_position() {
    // Breaks if replacing the waker re-queues the exclusive waiter at the tail.
    let queue = WaitQueue::new();
    let (w1, w2, other) = (
        CountingWaker::new(),
        CountingWaker::new(),
        CountingWaker::new(),
    );
    let mut first = queue.wait_event_exclusive(never_fn());
    let mut second = queue.wait_event_exclusive(never_fn());
    assert!(poll_with(&mut first, &w1.waker()).is_pending());
    assert!(poll_with(&mut second, &other.waker()).is_pending());
    assert!(poll_with(&mut first, &w2.waker()).is_pending());
    assert_eq!(queue.wake_up(), 1);
    assert_eq!((w1.wakes(), w2.wakes(), other.wakes()), (0, 1, 0));
}

#[test]
fn rule12_same_waker_is_not_cloned_again() {
    // Breaks if a re-poll with a waker that `will_wake` the stored one clones it anyway.
    let queue = WaitQueue::new();
    let probe = Probe::new(None);
    let waker = probe.waker();
    let mut fut = queue.wait_event(never_fn());
    assert!(poll_with(&mut fut, &waker).is_pending());
    assert_eq!(probe.clones(), 1, "registration stores one clone");
    for _ in 0..3 {
        assert!(poll_with(&mut fut, &waker).is_pending());
    }
    assert_eq!(
        probe.clones(),
        1,
        "re-polls with the same waker clone nothing"
    );
    let other = Probe::new(None);
    assert!(poll_with(&mut fut, &other.waker()).is_pending());
    assert_eq!(other.clones(), 1, "a different waker is cloned once");
    assert_eq!(queue.wake_up(), 1);
    assert_eq!((probe.wakes(), other.wakes()), (0, 1));
}

// ===== rule 13: re-entrant wakers =====

#[test]
fn rule13_wake_that_wakes_all_and_registers_does_not_deadlock() {
    // Breaks (deadlock or panic) if a waker is called with the queue lock held.
    support::watchdog("re-entrant wake", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        let hostile = Reentrant::new(&QUEUE, true, QUEUE.wait_event(never_fn()));
        let mut a = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut a, &Waker::from(hostile.clone())).is_pending());
        let wb = CountingWaker::new();
        let mut b = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut b, &wb.waker()).is_pending());

        assert_eq!(QUEUE.wake_up_all(), 2);
        assert_eq!(hostile.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(wb.wakes(), 1);
        assert_eq!(
            hostile.nested_woken.load(Ordering::SeqCst),
            0,
            "A and B were already taken"
        );
        assert!(hostile.newcomer_pending.load(Ordering::SeqCst));
        assert_eq!(
            QUEUE.len(),
            1,
            "the newcomer registered from inside the waker"
        );

        let mut newcomer = hostile.take_newcomer();
        assert!(poll_with(&mut newcomer, &hostile.newcomer_waker.waker()).is_pending());
        assert_eq!(hostile.newcomer_waker.wakes(), 0);
        assert_eq!(QUEUE.wake_up_all(), 1);
        assert_eq!(hostile.newcomer_waker.wakes(), 1);
        drop((a, b, newcomer));
        assert_eq!(QUEUE.len(), 0);
    });
}

#[test]
fn rule13_nested_wake_all_between_batches_wakes_each_waiter_once() {
    // Breaks (deadlock, double wake or miscount) if a nested wake_up_all is not safe between batches.
    support::watchdog("nested broadcast", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        const N: usize = 40;
        let hostile = Reentrant::new(&QUEUE, true, QUEUE.wait_event(never_fn()));
        let mut first = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut first, &Waker::from(hostile.clone())).is_pending());
        let wakers: Vec<_> = (1..N).map(|_| CountingWaker::new()).collect();
        let mut rest: Vec<_> = (1..N).map(|_| QUEUE.wait_event(never_fn())).collect();
        for (fut, w) in rest.iter_mut().zip(&wakers) {
            assert!(poll_with(fut, &w.waker()).is_pending());
        }

        let outer = QUEUE.wake_up_all();
        let nested = hostile.nested_woken.load(Ordering::SeqCst);
        assert_eq!(
            outer + nested,
            N,
            "every original woken once, by one of the two walks"
        );
        assert!(wakers.iter().all(|w| w.wakes() == 1));
        assert_eq!(hostile.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(QUEUE.len(), 1, "only the newcomer is linked");
        assert_eq!(hostile.newcomer_waker.wakes(), 0);
        drop(hostile.take_newcomer());
        assert_eq!(QUEUE.len(), 0);
    });
}

#[test]
fn rule13_waker_dropped_after_wake_calls_wake_all() {
    // Breaks (deadlock) if a woken waker is dropped with the queue lock held (tokio notify_in_drop_after_wake).
    support::watchdog("wake_up_all in waker drop after wake", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        let (hostile, dropped, nested) = wake_all_on_drop(&QUEUE);
        let mut a = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut a, &hostile).is_pending());
        drop(hostile); // the queue now holds the last reference
        let wb = CountingWaker::new();
        let mut b = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut b, &wb.waker()).is_pending());

        assert_eq!(QUEUE.wake_up_all(), 2);
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(nested.load(Ordering::SeqCst), 0);
        assert_eq!(wb.wakes(), 1);
        assert_eq!(QUEUE.len(), 0);
        drop((a, b));
    });
}

#[test]
fn rule13_replaced_waker_dropped_calls_wake_all() {
    // Breaks (deadlock) if the replaced waker is dropped under the lock during a re-poll.
    support::watchdog("wake_up_all in replaced waker drop", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        let (hostile, dropped, nested) = wake_all_on_drop(&QUEUE);
        let wa = CountingWaker::new();
        let mut a = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut a, &hostile).is_pending());
        drop(hostile);
        let wb = CountingWaker::new();
        let mut b = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut b, &wb.waker()).is_pending());

        // Re-poll A with a new waker: the old (hostile) one is dropped and wakes everyone.
        assert!(poll_with(&mut a, &wa.waker()).is_pending());
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(nested.load(Ordering::SeqCst), 2, "A (new waker) and B");
        assert_eq!((wa.wakes(), wb.wakes()), (1, 1));
        // A was woken, so its next poll re-registers it.
        assert!(poll_with(&mut a, &wa.waker()).is_pending());
        assert_eq!(QUEUE.len(), 1);
        assert_eq!(QUEUE.wake_up_all(), 1);
        assert_eq!(wa.wakes(), 2);
        drop((a, b));
    });
}

#[test]
fn rule13_unlinked_waker_dropped_calls_wake_all() {
    // Breaks (deadlock) if a cancelled future's entry (and waker) is dropped under the lock.
    support::watchdog("wake_up_all in cancelled waker drop", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        let (hostile, dropped, nested) = wake_all_on_drop(&QUEUE);
        let mut a = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut a, &hostile).is_pending());
        drop(hostile);
        let wb = CountingWaker::new();
        let mut b = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut b, &wb.waker()).is_pending());

        drop(a);
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(nested.load(Ordering::SeqCst), 1, "B");
        assert_eq!(wb.wakes(), 1);
        assert_eq!(QUEUE.len(), 0);
        drop(b);
    });
}

#[test]
fn rule13_clone_that_wakes_all_does_not_deadlock() {
    // Breaks (deadlock) if the waker is cloned with the queue lock held, on registration or on update.
    support::watchdog("wake_up_all in waker clone", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        let wb = CountingWaker::new();
        let mut b = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut b, &wb.waker()).is_pending());

        // Registration clones the waker: the clone wakes B.
        let p1 = Probe::new(Some(&QUEUE));
        let mut a = QUEUE.wait_event(never_fn());
        assert!(poll_with(&mut a, &p1.waker()).is_pending());
        assert_eq!(wb.wakes(), 1);
        assert_eq!(QUEUE.len(), 1, "A is linked");

        // A waker update clones the new waker: the clone wakes A itself.
        let p2 = Probe::new(Some(&QUEUE));
        assert!(poll_with(&mut a, &p2.waker()).is_pending());
        assert_eq!(p1.wakes(), 1, "A's stored waker fired");
        assert_eq!(QUEUE.len(), 1, "A linked itself again");
        assert_eq!(QUEUE.wake_up_all(), 1);
        drop((a, b));
        assert_eq!(QUEUE.len(), 0);
    });
}

// ===== rule 14: atomic broadcast =====

/// More than three batches of 32, so the broadcast drops the lock between batches.
const MANY: usize = 101;

fn broadcast_is_atomic(queue: &'static WaitQueue, newcomer: Never) {
    let hostile = Reentrant::new(queue, false, newcomer);
    let mut first = queue.wait_event(never_fn());
    assert!(poll_with(&mut first, &Waker::from(hostile.clone())).is_pending());
    let wakers: Vec<_> = (1..MANY).map(|_| CountingWaker::new()).collect();
    // A mix of classes: the walk crosses from the shared list to the exclusive one.
    let mut rest: Vec<_> = (1..MANY)
        .map(|i| {
            if i % 3 == 0 {
                queue.wait_event_exclusive(never_fn())
            } else {
                queue.wait_event(never_fn())
            }
        })
        .collect();
    for (fut, w) in rest.iter_mut().zip(&wakers) {
        assert!(poll_with(fut, &w.waker()).is_pending());
    }
    assert_eq!(queue.len(), MANY);

    assert_eq!(queue.wake_up_all(), MANY, "exactly the originals");
    assert_eq!(hostile.wakes.load(Ordering::SeqCst), 1);
    assert!(
        wakers.iter().all(|w| w.wakes() == 1),
        "every original fired once"
    );
    assert!(hostile.newcomer_pending.load(Ordering::SeqCst));
    assert_eq!(
        hostile.newcomer_waker.wakes(),
        0,
        "the newcomer was not woken"
    );
    assert_eq!(queue.len(), 1, "the newcomer is still linked");

    let mut newcomer = hostile.take_newcomer();
    assert!(poll_with(&mut newcomer, &hostile.newcomer_waker.waker()).is_pending());
    assert_eq!(queue.wake_up_all(), 1);
    assert_eq!(hostile.newcomer_waker.wakes(), 1);
    drop((first, rest, newcomer));
    assert_eq!(queue.len(), 0);
}

#[test]
fn rule14_broadcast_does_not_wake_a_shared_waiter_registered_during_it() {
    // Breaks without the start-of-wake snapshot: a later batch would wake the newcomer.
    support::watchdog("atomic broadcast (shared newcomer)", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        broadcast_is_atomic(&QUEUE, QUEUE.wait_event(never_fn()));
    });
}

#[test]
fn rule14_broadcast_does_not_wake_an_exclusive_waiter_registered_during_it() {
    // Breaks without the start-of-wake snapshot: the exclusive part of the walk would wake the newcomer.
    support::watchdog("atomic broadcast (exclusive newcomer)", HANG, || {
        static QUEUE: WaitQueue = WaitQueue::new();
        broadcast_is_atomic(&QUEUE, QUEUE.wait_event_exclusive(never_fn()));
    });
}
