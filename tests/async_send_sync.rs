//! Rule 28: futures are `Send` (when their parts are) and `Unpin`, shared types are
//! `Send + Sync`, and a wait registered on one thread completes on another.
mod support;

use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::FusedFuture;
use support::{poll_with, CountingWaker, ManualClock, SmolClock, TokioClock};
use waitq::{
    Closed, Interrupted, Killed, TaskSignals, TaskState, TimedOut, WaitEntry, WaitError, WaitQueue,
};

// ===== compile-time helpers =====

fn assert_send_unpin<T: Send + Unpin>(_: &T) {}
fn assert_fused<T: FusedFuture>(_: &T) {}
fn assert_send_sync<T: Send + Sync>() {}
fn assert_error<T: std::error::Error + Send + Sync + Copy + 'static>() {}

/// Answers "does this value's type implement X?" for negative checks, by autoref
/// specialisation: `(&probe(&v)).is_send()` finds the bounded impl on `Probe<T>`
/// first when it applies, else autorefs to the fallback on `&Probe<T>`. Only valid
/// at monomorphic call sites.
struct Probe<T>(PhantomData<T>);

fn probe<T>(_: &T) -> Probe<T> {
    Probe(PhantomData)
}

trait IsSend {
    fn is_send(&self) -> bool {
        true
    }
}
impl<T: Send> IsSend for Probe<T> {}
trait NotSend {
    fn is_send(&self) -> bool {
        false
    }
}
impl<T> NotSend for &Probe<T> {}

trait IsUnpin {
    fn is_unpin(&self) -> bool {
        true
    }
}
impl<T: Unpin> IsUnpin for Probe<T> {}
trait NotUnpin {
    fn is_unpin(&self) -> bool {
        false
    }
}
impl<T> NotUnpin for &Probe<T> {}

/// A clock whose sleep is `!Unpin`, to check that the timed futures are then `!Unpin`.
struct PinnedClock;

struct PinnedSleep(PhantomPinned);

impl Future for PinnedSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl waitq::Clock for PinnedClock {
    type Sleep = PinnedSleep;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, _: Instant) -> PinnedSleep {
        PinnedSleep(PhantomPinned)
    }
}

static STATIC_QUEUE: WaitQueue = WaitQueue::new();
static STATIC_SIGNALS: TaskSignals = TaskSignals::new();

// ===== rule 28: compile-time =====

// Breaks (fails to compile) if any public future stopped being Send + Unpin (+ fused).
#[test]
fn rule28_every_future_is_send_and_unpin() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let arc_signals = Arc::new(TaskSignals::new());
    let lock = Mutex::new(0u32);
    let flag = AtomicBool::new(false);
    let cond = || flag.load(Ordering::SeqCst);
    let long = Duration::from_secs(1);

    let f = queue.wait_event(cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_exclusive(cond));
    assert_send_unpin(&queue.wait_event_key(1, cond));
    assert_send_unpin(&queue.wait_event_key_exclusive(1, cond));
    let f = queue.wait_event_value(|| Some(1u8));
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_value_exclusive(|| Some(1u8)));
    let f = queue.wait_event_interruptible(&signals, cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_interruptible(arc_signals.clone(), cond));
    assert_send_unpin(&queue.wait_event_interruptible_exclusive(&signals, cond));
    let f = queue.wait_event_killable(&signals, cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_killable_exclusive(arc_signals.clone(), cond));
    let f = queue.wait_event_timeout(ManualClock::new(), long, cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_timeout(TokioClock, long, cond));
    assert_send_unpin(&queue.wait_event_timeout(SmolClock, long, cond));
    let f = queue.wait_event_interruptible_timeout(&signals, ManualClock::new(), long, cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    let f = queue.wait_event_killable_timeout(&signals, TokioClock, long, cond);
    assert_send_unpin(&f);
    assert_fused(&f);
    let f = queue.wait_event_lock(&lock, |n| *n == 1);
    assert_send_unpin(&f);
    assert_fused(&f);
    assert_send_unpin(&queue.wait_event_lock_exclusive(&lock, |n| *n == 1));
    let mut entry = WaitEntry::new(&queue);
    let w = entry.wait();
    assert_send_unpin(&w);
    assert_fused(&w);
    drop(w);
    // The static forms too.
    assert_send_unpin(&STATIC_QUEUE.wait_event_interruptible(&STATIC_SIGNALS, cond));
}

// Breaks (fails to compile) if the shared types stopped being Send + Sync, or the
// error types stopped being thread-safe `'static` errors.
#[test]
fn rule28_shared_types_are_send_sync_and_errors_are_static() {
    assert_send_sync::<WaitQueue>();
    assert_send_sync::<TaskSignals>();
    assert_send_sync::<WaitEntry<'static>>();
    assert_send_sync::<TaskState>();
    assert_error::<Closed>();
    assert_error::<Interrupted>();
    assert_error::<Killed>();
    assert_error::<TimedOut>();
    assert_error::<WaitError>();
    assert_send_sync::<Arc<WaitQueue>>();
}

// Closures built in their own functions, so their auto traits are known where probed.
fn rc_cond(rc: Rc<bool>) -> impl FnMut() -> bool {
    move || *rc
}

fn plain_cond() -> impl FnMut() -> bool + Send {
    || false
}

// Breaks if the auto traits were forced: a future must be Send only when its condition
// is, and a timed future Unpin only when its clock's sleep is.
#[test]
#[allow(clippy::needless_borrow)] // the explicit `&` is what the autoref probe needs
fn rule28_auto_traits_follow_the_parts() {
    let queue = WaitQueue::new();
    let not_send = queue.wait_event(rc_cond(Rc::new(false)));
    assert!(!(&probe(&not_send)).is_send());
    assert!(
        (&probe(&not_send)).is_unpin(),
        "Unpin regardless of the closure"
    );
    let send = queue.wait_event(plain_cond());
    assert!((&probe(&send)).is_send());

    let pinned = queue.wait_event_timeout(PinnedClock, Duration::from_secs(1), plain_cond());
    assert!(!(&probe(&pinned)).is_unpin());
    assert!((&probe(&pinned)).is_send());
    let unpinned =
        queue.wait_event_timeout(ManualClock::new(), Duration::from_secs(1), plain_cond());
    assert!((&probe(&unpinned)).is_unpin());
}

// ===== rule 28: runtime =====

// Breaks if a waiter registered on thread A could not be woken and completed on thread B.
#[test]
fn rule28_register_on_one_thread_complete_on_another() {
    let queue = WaitQueue::new();
    let ready = AtomicBool::new(false);
    let w = CountingWaker::new();
    std::thread::scope(|s| {
        let fut = queue.wait_event_exclusive(|| ready.load(Ordering::SeqCst));
        let waker = w.waker();
        let mut fut = s
            .spawn(move || {
                let mut fut = fut;
                assert!(poll_with(&mut fut, &waker).is_pending());
                fut
            })
            .join()
            .unwrap();
        assert_eq!(queue.len(), 1);
        ready.store(true, Ordering::SeqCst);
        assert_eq!(queue.wake_up(), 1);
        assert_eq!(w.wakes(), 1);
        let waker = w.waker();
        let res = s.spawn(move || poll_with(&mut fut, &waker)).join().unwrap();
        assert!(matches!(res, Poll::Ready(Ok(()))));
    });
    assert_eq!(queue.len(), 0);
}

// Breaks if the signal and timed futures could not move between threads mid-wait.
#[test]
fn rule28_signal_and_timed_futures_move_between_threads() {
    let queue = WaitQueue::new();
    let signals = TaskSignals::new();
    let clock = ManualClock::new();
    let w = CountingWaker::new();
    std::thread::scope(|s| {
        let intr = queue.wait_event_interruptible(&signals, || false);
        let timed = queue.wait_event_timeout(clock.clone(), Duration::from_millis(10), || false);
        let waker = w.waker();
        let (mut intr, mut timed) = s
            .spawn(move || {
                let (mut intr, mut timed) = (intr, timed);
                assert!(poll_with(&mut intr, &waker).is_pending());
                assert!(poll_with(&mut timed, &waker).is_pending());
                (intr, timed)
            })
            .join()
            .unwrap();
        assert_eq!(queue.len(), 2);
        signals.interrupt();
        clock.advance(Duration::from_millis(10));
        let waker = w.waker();
        s.spawn(move || {
            assert!(matches!(poll_with(&mut intr, &waker), Poll::Ready(Err(_))));
            assert!(matches!(poll_with(&mut timed, &waker), Poll::Ready(Err(_))));
        })
        .join()
        .unwrap();
    });
    assert_eq!(queue.len(), 0);
}

// Breaks if a lock wait could not be spawned on a multi-threaded runtime (needs Send)
// or a wake from another thread did not reach it.
#[test]
fn rule28_waits_run_on_a_multi_thread_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let queue = Arc::new(WaitQueue::new());
    let state = Arc::new(Mutex::new(0u32));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (queue, state) = (queue.clone(), state.clone());
            rt.spawn(async move {
                if i % 2 == 0 {
                    let guard = queue.wait_event_lock(&state, |n| *n == 1).await.unwrap();
                    *guard
                } else {
                    let s = state.clone();
                    queue
                        .wait_event(move || *s.lock().unwrap() == 1)
                        .await
                        .unwrap();
                    1
                }
            })
        })
        .collect();
    support::watchdog("multi-thread waits", support::WATCHDOG, move || {
        while queue.len() < 4 {
            std::thread::yield_now();
        }
        *state.lock().unwrap() = 1;
        queue.wake_up_all();
        for t in tasks {
            assert_eq!(rt.block_on(t).unwrap(), 1);
        }
    });
}

trait IsSync {
    fn is_sync(&self) -> bool {
        true
    }
}
impl<T: Sync> IsSync for Probe<T> {}
trait NotSync {
    fn is_sync(&self) -> bool {
        false
    }
}
impl<T> NotSync for &Probe<T> {}

/// `(Send, Sync)` of a value's type (monomorphic call sites only).
macro_rules! traits_of {
    ($value:expr) => {
        ((&probe(&$value)).is_send(), (&probe(&$value)).is_sync())
    };
}

// Breaks if a lock or guard of `waitrt::sync` is `Sync` or `Send` where
// sharing or moving its value would be unsound (a `Cell` shared through a
// guard, an `Rc` moved through a mutex), or misses the bounds tokio's have.
#[test]
fn rule28_lock_and_guard_auto_traits_follow_tokios() {
    use std::cell::Cell;
    use waitrt::sync::{
        MappedMutexGuard, MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex as AsyncMutex,
        MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
    };
    waitrt::block_on(async {
        // Mutex<T>: Send + Sync when T: Send (its value is never shared).
        let cell = AsyncMutex::new(Cell::new(1));
        assert_eq!(traits_of!(cell), (true, true));
        assert_eq!(traits_of!(AsyncMutex::new(Rc::new(1))), (false, false));
        // Its guards are `&mut T`: Send when T: Send, Sync when T: Sync.
        let guard = cell.lock().await;
        assert_eq!(traits_of!(guard), (true, false));
        let mapped: MappedMutexGuard<'_, Cell<i32>> = MutexGuard::map(guard, |c| c);
        assert_eq!(traits_of!(mapped), (true, false));
        drop(mapped);
        let plain = AsyncMutex::new(1);
        let mapped = MutexGuard::map(plain.lock().await, |n| n);
        assert_eq!(traits_of!(mapped), (true, true));
        drop(mapped);

        // RwLock<T>: Sync only when T: Send + Sync (readers share `&T`).
        let rw_cell = RwLock::new(Cell::new(1));
        assert_eq!(traits_of!(rw_cell), (true, false));
        let rw = RwLock::new(1);
        assert_eq!(traits_of!(rw), (true, true));
        let read = rw.read().await;
        assert_eq!(traits_of!(read), (true, true));
        let mapped: MappedRwLockReadGuard<'_, i32> = RwLockReadGuard::map(read, |n| n);
        assert_eq!(traits_of!(mapped), (true, true));
        drop(mapped);
        let write = rw.write().await;
        assert_eq!(traits_of!(write), (true, true));
        let mapped: MappedRwLockWriteGuard<'_, i32> = RwLockWriteGuard::map(write, |n| n);
        assert_eq!(traits_of!(mapped), (true, true));
        drop(mapped);
        let write = rw_cell.write().await;
        let mapped = RwLockWriteGuard::map(write, |c| c);
        assert_eq!(traits_of!(mapped), (true, false));
        drop(mapped);

        // Owned guards: sharing one shares `&T`, so `Sync` needs `T: Sync`
        // (their `Arc<Mutex<T>>` alone is `Sync` with `T: Send`).
        let owned = Arc::new(AsyncMutex::new(Cell::new(1))).lock_owned().await;
        assert_eq!(traits_of!(owned), (true, false));
        let owned = Arc::new(AsyncMutex::new(1)).lock_owned().await;
        assert_eq!(traits_of!(owned), (true, true));
        let owned = Arc::new(RwLock::new(1)).read_owned().await;
        assert_eq!(traits_of!(owned), (true, true));
        let owned = Arc::new(RwLock::new(1)).write_owned().await;
        assert_eq!(traits_of!(owned), (true, true));
    });
}
