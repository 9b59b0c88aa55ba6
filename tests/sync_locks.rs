//! `waitrt::sync`'s locks and counters: Semaphore, Mutex, RwLock, Barrier,
//! OnceCell. Each rule of their contract has a test here; the concurrency
//! scenarios run on real threads many times (under a watchdog) and under
//! the test toolkit (random and PCT schedules), as `toolkit_rules.rs` does.

#[macro_use]
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tokio_test::{assert_pending, assert_ready, task};
use waitrt::sync::{Barrier, Mutex, OnceCell, RwLock, Semaphore, TryAcquireError};
use waitrt::task::yield_now;
use waitrt::test_util::Check;

use support::{watchdog, WATCHDOG};

// ===== the runner =====

const SEEDS: u64 = if cfg!(debug_assertions) { 300 } else { 3_000 };
const ITERS: usize = if cfg!(debug_assertions) { 100 } else { 1_000 };

/// Runs `scenario` `ITERS` times on a 2-worker runtime, then `SEEDS`
/// seeds under the toolkit with random and PCT schedules.
fn both<F, Fut>(name: &str, scenario: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    support::both_modes(name, ITERS, SEEDS, false, scenario);
}

/// A small pseudo-random sequence (the toolkit's runs must be
/// deterministic, so no thread RNG).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

// ===== Mutex: FIFO =====

/// Six tasks contend, on every flavour (current-thread, 1 and 2 workers),
/// each holding the lock across a yield. Each acquisition takes an arrival number before it calls `lock`
/// and, if the first poll queued it, another one just after: nobody that
/// arrived after a waiter was queued may be served before it (the unlock
/// hands the lock to the first waiter; newcomers queue behind). Numbers
/// taken this way are immune to the OS preempting a worker in between.
/// The worst overtaking, counted from the first number, is printed.
#[test]
fn mutex_is_fifo_under_contention() {
    for workers in [None, Some(1), Some(2)] {
        mutex_is_fifo_on(workers);
    }
}

fn mutex_is_fifo_on(workers: Option<usize>) {
    const TASKS: usize = 6;
    const ROUNDS: usize = if cfg!(debug_assertions) { 300 } else { 2_000 };
    let log = watchdog("mutex fifo", WATCHDOG, move || {
        let rt = support::build(workers);
        rt.block_on(async {
            let lock = Arc::new(Mutex::new(0usize));
            let arrivals = Arc::new(AtomicUsize::new(0));
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (lock, arrivals, log) = (lock.clone(), arrivals.clone(), log.clone());
                    waitrt::spawn(async move {
                        for _ in 0..ROUNDS {
                            let arrived = arrivals.fetch_add(1, SeqCst);
                            let mut queued = None;
                            let mut lock = std::pin::pin!(lock.lock());
                            let mut served = std::future::poll_fn(|cx| {
                                let poll = lock.as_mut().poll(cx);
                                if poll.is_pending() && queued.is_none() {
                                    queued = Some(arrivals.fetch_add(1, SeqCst));
                                }
                                poll
                            })
                            .await;
                            log.lock().unwrap().push((arrived, queued, *served));
                            *served += 1;
                            yield_now().await; // hold it across a yield: others queue
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let mut log = std::mem::take(&mut *log.lock().unwrap());
            log.sort_by_key(|&(_, _, served)| served);
            log
        })
    });
    // Served before acquisition `i` although they arrived after `since`.
    let overtakes = |i: usize, since: usize| log[..i].iter().filter(|e| e.0 > since).count();
    let worst_wait = (0..log.len()).map(|i| overtakes(i, log[i].0)).max();
    let unfair = (0..log.len())
        .filter_map(|i| log[i].1.map(|queued| overtakes(i, queued)))
        .max()
        .unwrap_or(0);
    let waited = log.iter().filter(|e| e.1.is_some()).count();
    println!(
        "mutex fifo ({workers:?} workers): {waited} of {} acquisitions waited; worst wait \
         overtaken by {worst_wait:?} later arrivals; by {unfair} that arrived after it queued",
        log.len()
    );
    assert!(
        waited > log.len() / 2,
        "{workers:?} workers: too little contention to tell"
    );
    assert_eq!(
        unfair, 0,
        "{workers:?} workers: a queued locker was overtaken by {unfair} later arrivals"
    );
}

// ===== cancellation =====

/// Random acquires of 1-3 permits, each cancelled by a short timeout at a
/// random point (waiting, partly assigned, or just granted): when all are
/// done every permit is back and nobody is left queued.
async fn cancelled_acquires_lose_no_permits() {
    const PERMITS: usize = 3;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let tasks: Vec<_> = (0..4u64)
        .map(|t| {
            let sem = sem.clone();
            waitrt::spawn(async move {
                let mut seed = t + 1;
                for _ in 0..4 {
                    let n = 1 + (lcg(&mut seed) % 3) as u32;
                    let wait = Duration::from_micros(lcg(&mut seed) % 50);
                    if let Ok(Ok(permits)) = waitrt::time::timeout(wait, sem.acquire_many(n)).await
                    {
                        yield_now().await;
                        drop(permits);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sem.available_permits(), PERMITS, "permits lost");
    // Nobody is counted as queued: a try of all of them succeeds.
    assert!(
        sem.try_acquire_many(PERMITS as u32).is_ok(),
        "a waiter left behind"
    );
}

#[test]
fn cancelled_acquires_hand_their_permits_on() {
    both("cancelled_acquires", cancelled_acquires_lose_no_permits);
}

/// The same for locks: lock futures dropped at random points never leave
/// the mutex locked, and the count of completed increments is exact.
async fn cancelled_locks_hand_their_turn_on() {
    let lock = Arc::new(Mutex::new(0usize));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..3u64)
        .map(|t| {
            let (lock, done) = (lock.clone(), done.clone());
            waitrt::spawn(async move {
                let mut seed = t + 7;
                for _ in 0..4 {
                    let wait = Duration::from_micros(lcg(&mut seed) % 30);
                    if let Ok(mut guard) = waitrt::time::timeout(wait, lock.lock()).await {
                        *guard += 1;
                        yield_now().await;
                        done.fetch_add(1, SeqCst);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*lock.try_lock().expect("left locked"), done.load(SeqCst));
}

#[test]
fn cancelled_lock_futures_hand_their_turn_on() {
    both("cancelled_locks", cancelled_locks_hand_their_turn_on);
}

/// The waiter an unlock hands the lock to is dropped before it runs: the
/// lock goes on to the next waiter (no lost wake-up, no lost permit).
#[test]
fn picked_waiter_cancelled_passes_the_lock_on() {
    let lock = Mutex::new(());
    let held = lock.try_lock().unwrap();
    let mut first = task::spawn(lock.lock());
    let mut second = task::spawn(lock.lock());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    drop(held);
    assert!(
        first.is_woken(),
        "the unlock handed the lock to the first waiter"
    );
    assert!(!second.is_woken());
    drop(first); // granted, never polled
    assert!(second.is_woken(), "the dropped waiter passed the lock on");
    let _guard = assert_ready!(second.poll());
}

/// The scenario behind the test above, with tasks: an unlock's chosen
/// waiter is aborted, and everyone else still gets the lock.
async fn picked_waiter_aborted() {
    let lock = Arc::new(Mutex::new(()));
    let held = lock.clone().lock_owned().await;
    let victim = {
        let lock = lock.clone();
        waitrt::spawn(async move { drop(lock.lock().await) })
    };
    let others: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            waitrt::spawn(async move { drop(lock.lock().await) })
        })
        .collect();
    yield_now().await;
    drop(held);
    victim.abort();
    for other in others {
        other.await.unwrap();
    }
    let _ = victim.await;
    assert!(lock.try_lock().is_ok());
}

#[test]
fn aborted_picked_waiter_loses_no_wake() {
    both("picked_waiter_aborted", picked_waiter_aborted);
}

// ===== Semaphore: strict FIFO for acquire_many =====

/// The first waiter takes permits as they come and blocks smaller
/// acquirers behind it until it has all it asked for.
#[test]
fn acquire_many_blocks_later_small_acquires() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut big = task::spawn(sem.acquire_many(2));
    assert_pending!(big.poll());
    drop(held); // one of two: assigned to `big`, not free
    assert_eq!(sem.available_permits(), 0);
    let mut small = task::spawn(sem.acquire());
    assert_pending!(small.poll()); // queued behind `big`
    assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::NoPermits));
    sem.add_permits(1);
    let permits = assert_ready!(big.poll()).unwrap();
    assert_pending!(small.poll());
    drop(permits);
    assert!(small.is_woken());
    drop(assert_ready!(small.poll()).unwrap());
    assert_eq!(sem.available_permits(), 2);
}

/// Zero permits are had at once, even behind waiters (as tokio's): nothing
/// is taken from them, and so no linked waiter is ever owed nothing (a
/// release's hand-off stops at the first waiter it cannot serve). Closed,
/// even zero fails.
#[test]
fn zero_permits_are_had_at_once_even_behind_waiters() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut waiter = task::spawn(sem.acquire());
    assert_pending!(waiter.poll());
    let mut zero = task::spawn(sem.acquire_many(0));
    assert_eq!(assert_ready!(zero.poll()).unwrap().num_permits(), 0);
    assert_eq!(sem.try_acquire_many(0).unwrap().num_permits(), 0);
    // One release serves exactly the one waiter, and nothing stays owed.
    drop(held);
    drop(assert_ready!(waiter.poll()).unwrap());
    assert_eq!(sem.available_permits(), 1);
    sem.close();
    assert!(sem.try_acquire_many(0).is_err());
    let mut closed = task::spawn(sem.acquire_many(0));
    assert!(assert_ready!(closed.poll()).is_err());
}

/// A release of several permits serves every waiter it can, in order, in
/// one hand-off, and frees the rest only once nobody waits.
#[test]
fn one_release_serves_several_waiters_in_order() {
    let sem = Semaphore::new(0);
    let mut a = task::spawn(sem.acquire());
    let mut b = task::spawn(sem.acquire_many(2));
    let mut c = task::spawn(sem.acquire());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll());
    sem.add_permits(4); // a: 1, b: 2, c: 1
    assert!(a.is_woken() && b.is_woken() && c.is_woken());
    let (pa, pb, pc) = (
        assert_ready!(a.poll()).unwrap(),
        assert_ready!(b.poll()).unwrap(),
        assert_ready!(c.poll()).unwrap(),
    );
    assert_eq!(sem.available_permits(), 0);
    sem.add_permits(1); // nobody waits: free
    assert_eq!(sem.available_permits(), 1);
    drop((pa, pb, pc));
    assert_eq!(sem.available_permits(), 5);
}

/// A stream of single acquires on real threads (each holding its permit
/// across a yield) does not starve an `acquire_many` of all permits: it is
/// served within a bounded number of single acquisitions.
#[test]
fn acquire_many_not_starved_by_single_acquires() {
    for workers in [None, Some(1), Some(2)] {
        acquire_many_not_starved_on(workers);
    }
}

fn acquire_many_not_starved_on(workers: Option<usize>) {
    const PERMITS: usize = 4;
    let overtaken = watchdog("acquire_many starvation", WATCHDOG, move || {
        let rt = support::build(workers);
        rt.block_on(async {
            let sem = Arc::new(Semaphore::new(PERMITS));
            let stop = Arc::new(AtomicBool::new(false));
            let singles = Arc::new(AtomicUsize::new(0));
            let streams: Vec<_> = (0..PERMITS + 2)
                .map(|_| {
                    let (sem, stop, singles) = (sem.clone(), stop.clone(), singles.clone());
                    waitrt::spawn(async move {
                        for _ in 0..100_000 {
                            if stop.load(SeqCst) {
                                break;
                            }
                            let _permit = sem.acquire().await.unwrap();
                            singles.fetch_add(1, SeqCst);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            while singles.load(SeqCst) < 100 {
                yield_now().await;
            }
            // Count from the moment the big acquire is queued (its first
            // poll), not from before it: this thread may be descheduled in
            // between while the streams run on.
            let mut many = std::pin::pin!(sem.acquire_many(PERMITS as u32));
            let first = futures::poll!(many.as_mut());
            let before = singles.load(SeqCst);
            let all = match first {
                std::task::Poll::Ready(all) => all,
                std::task::Poll::Pending => many.await,
            }
            .unwrap();
            let overtaken = singles.load(SeqCst) - before;
            drop(all);
            stop.store(true, SeqCst);
            for stream in streams {
                stream.await.unwrap();
            }
            overtaken
        })
    });
    println!("acquire_many waited for {overtaken} single acquisitions");
    // FIFO: only acquirers already queued (at most one per stream task)
    // go first, and holders release.
    assert!(
        overtaken <= 2 * (PERMITS + 2),
        "{workers:?} workers: starved for {overtaken} acquisitions"
    );
}

// ===== RwLock: no writer starvation =====

#[test]
fn waiting_writer_blocks_new_readers() {
    let lock = RwLock::new(0);
    let reader = lock.try_read().unwrap();
    let mut writer = task::spawn(lock.write());
    assert_pending!(writer.poll());
    assert!(lock.try_read().is_err(), "a reader jumped a waiting writer");
    let mut late = task::spawn(lock.read());
    assert_pending!(late.poll());
    drop(reader);
    let mut w = assert_ready!(writer.poll());
    *w = 1;
    assert_pending!(late.poll());
    drop(w);
    assert_eq!(*assert_ready!(late.poll()), 1);
}

/// Readers overlapping on real threads (each holds its read lock across a
/// yield, so some reader always holds it) do not starve a writer.
#[test]
fn writer_not_starved_by_a_stream_of_readers() {
    for workers in [None, Some(1), Some(2)] {
        writer_not_starved_on(workers);
    }
}

fn writer_not_starved_on(workers: Option<usize>) {
    const READERS: usize = 6;
    let reads = watchdog("writer starvation", WATCHDOG, move || {
        let rt = support::build(workers);
        rt.block_on(async {
            let lock = Arc::new(RwLock::new(0u64));
            let stop = Arc::new(AtomicBool::new(false));
            let count = Arc::new(AtomicUsize::new(0));
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let (lock, stop, count) = (lock.clone(), stop.clone(), count.clone());
                    waitrt::spawn(async move {
                        for _ in 0..100_000 {
                            if stop.load(SeqCst) {
                                break;
                            }
                            let _r = lock.read().await;
                            count.fetch_add(1, SeqCst);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            while count.load(SeqCst) < 100 {
                yield_now().await;
            }
            // Count from the moment the writer is queued (its first poll):
            // this thread may be descheduled before it while readers run.
            let mut write = std::pin::pin!(lock.write());
            let first = futures::poll!(write.as_mut());
            let before = count.load(SeqCst);
            let mut guard = match first {
                std::task::Poll::Ready(guard) => guard,
                std::task::Poll::Pending => write.await,
            };
            let reads = count.load(SeqCst) - before;
            *guard += 1;
            drop(guard);
            stop.store(true, SeqCst);
            for reader in readers {
                reader.await.unwrap();
            }
            reads
        })
    });
    println!("the writer waited for {reads} reads");
    assert!(reads <= 2 * READERS, "writer starved for {reads} reads");
}

/// Readers and writers on real threads and under the toolkit: a writer
/// always sees the lock alone, readers never see a half-done write.
async fn readers_and_writers() {
    let lock = Arc::new(RwLock::new((0u32, 0u32)));
    let tasks: Vec<_> = (0..4u32)
        .map(|t| {
            let lock = lock.clone();
            waitrt::spawn(async move {
                for _ in 0..3 {
                    if t % 2 == 0 {
                        let mut w = lock.write().await;
                        w.0 += 1;
                        yield_now().await;
                        w.1 += 1;
                    } else {
                        let r = lock.read().await;
                        let seen = *r;
                        yield_now().await;
                        assert_eq!(seen.0, seen.1, "a reader saw a write in progress");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*lock.read().await, (6, 6));
}

#[test]
fn rwlock_excludes_writers() {
    both("readers_and_writers", readers_and_writers);
}

// ===== close =====

async fn close_wakes_every_waiter() {
    let sem = Arc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let sem = sem.clone();
            waitrt::spawn(async move {
                match i {
                    0 => sem.acquire().await.map(drop).is_err(),
                    1 => sem.acquire_many(2).await.map(drop).is_err(),
                    _ => sem
                        .acquire_interruptible()
                        .await
                        .is_err_and(|e| e.is_closed()),
                }
            })
        })
        .collect();
    yield_now().await;
    sem.close();
    for waiter in waiters {
        assert!(waiter.await.unwrap(), "a waiter did not end with an error");
    }
    assert!(sem.acquire().await.is_err());
    assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::Closed));
}

#[test]
fn close_wakes_all_waiters() {
    both("close", close_wakes_every_waiter);
}

// ===== the kernel forms =====

rt_test! {
    fn interruptible_and_killable_forms_end_on_signals(rt) {
        rt.block_on(async {
            let sem = Arc::new(Semaphore::new(0));
            let lock = Arc::new(Mutex::new(()));
            let rw = Arc::new(RwLock::new(()));
            let held = lock.clone().lock_owned().await;
            let w = rw.clone().write_owned().await;

            let interruptible = {
                let (sem, lock, rw) = (sem.clone(), lock.clone(), rw.clone());
                waitrt::spawn(async move {
                    let s = sem.acquire_interruptible().await.map(drop).unwrap_err();
                    let m = lock.lock_interruptible().await.map(drop).unwrap_err();
                    let r = rw.read_interruptible().await.map(drop).unwrap_err();
                    let w = rw.write_interruptible().await.map(drop).unwrap_err();
                    [s, m, r, w].iter().all(|e| !e.is_closed() && !e.is_fatal())
                })
            };
            // A killable wait ignores the interrupt, and ends on the kill.
            let killable = {
                let (sem, lock, rw) = (sem.clone(), lock.clone(), rw.clone());
                waitrt::spawn(async move {
                    let s = sem.acquire_killable().await.map(drop).unwrap_err();
                    let m = lock.lock_killable().await.map(drop).unwrap_err();
                    let r = rw.read_killable().await.map(drop).unwrap_err();
                    let w = rw.write_killable().await.map(drop).unwrap_err();
                    [s, m, r, w].iter().all(|e| !e.is_closed())
                })
            };
            yield_now().await;
            interruptible.interrupt();
            killable.interrupt();
            assert!(interruptible.await.unwrap());
            for _ in 0..10 {
                yield_now().await;
            }
            assert!(!killable.is_finished(), "an interrupt ended a killable wait");
            killable.kill();
            assert!(killable.await.unwrap());
            // Nothing was lost: the locks still work.
            drop((held, w));
            sem.add_permits(1);
            let _p = sem.acquire_interruptible().await.unwrap();
            let _g = lock.lock_killable().await.unwrap();
            let _r = rw.read_interruptible().await.unwrap();
        });
    }
}

rt_test! {
    /// A free lock or semaphore is taken by its `_interruptible` and
    /// `_killable` forms even with the task's signal pending, every time
    /// (the kernel's fast path: a true condition wins), past the task's
    /// cooperative budget too: 1,000 rounds, where the budget runs out at
    /// 128 polls. Once the budget was spent, the poll that yielded for it
    /// looked like a wait and ended on the signal: every round from the
    /// 129th failed (an independent audit).
    fn kernel_forms_take_a_free_resource_with_a_signal_pending(rt) {
        rt.block_on(async {
            let task = waitrt::spawn(async {
                waitrt::task::signals().interrupt();
                let (sem, lock, rw) = (Semaphore::new(1), Mutex::new(0u32), RwLock::new(0u32));
                for round in 0..1_000u32 {
                    let taken = [
                        sem.acquire_interruptible().await.map(drop).is_ok(),
                        sem.acquire_killable().await.map(drop).is_ok(),
                        lock.lock_interruptible().await.map(|mut g| *g += 1).is_ok(),
                        lock.lock_killable().await.map(|mut g| *g += 1).is_ok(),
                        rw.read_interruptible().await.map(drop).is_ok(),
                        rw.write_interruptible().await.map(|mut g| *g += 1).is_ok(),
                        rw.read_killable().await.map(drop).is_ok(),
                        rw.write_killable().await.map(|mut g| *g += 1).is_ok(),
                    ];
                    assert!(
                        taken.iter().all(|&ok| ok),
                        "round {round}: a free resource refused with a signal pending: {taken:?}"
                    );
                }
                let counts = (*lock.lock().await, *rw.read().await);
                counts
            });
            assert_eq!(task.await.unwrap(), (2_000, 2_000));
        });
    }
}

/// `_timeout` forms on a paused clock: they time out exactly at the
/// deadline when nothing comes, and succeed when the resource comes first.
#[test]
fn timeout_forms_on_a_paused_clock() {
    let rt = waitrt::Builder::new_current_thread()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let sem = Arc::new(Semaphore::new(0));
        let lock = Arc::new(Mutex::new(()));
        let rw = Arc::new(RwLock::new(()));
        let hour = Duration::from_secs(3600);

        let start = waitrt::time::now();
        assert!(sem.acquire_timeout(hour).await.is_err());
        let held = lock.try_lock().unwrap();
        assert!(lock.lock_timeout(hour).await.is_err());
        drop(held);
        let r = rw.try_read().unwrap();
        assert!(rw.write_timeout(hour).await.is_err());
        drop(r);
        let w = rw.try_write().unwrap();
        assert!(rw.read_timeout(hour).await.is_err());
        drop(w);
        assert_eq!(waitrt::time::now() - start, 4 * hour);

        // The resource comes before the deadline: success.
        let giver = {
            let sem = sem.clone();
            waitrt::spawn(async move {
                waitrt::time::sleep(Duration::from_secs(5)).await;
                sem.add_permits(1);
            })
        };
        let start = waitrt::time::now();
        let permit = sem.acquire_timeout(hour).await.unwrap();
        assert_eq!(waitrt::time::now() - start, Duration::from_secs(5));
        drop(permit);
        giver.await.unwrap();
        assert_eq!(
            sem.available_permits(),
            1,
            "a timed-out acquire kept a permit"
        );
        assert!(lock.lock_timeout(hour).await.is_ok());
        assert!(rw.write_timeout(hour).await.is_ok());
    });
}

/// A timed-out waiter in the middle of the queue loses its place, not
/// anybody else's: the waiter behind it is served next.
#[test]
fn timed_out_waiter_hands_on_its_place() {
    Check::new().seeds(SEEDS).run(|| async {
        let sem = Arc::new(Semaphore::new(0));
        let timed = {
            let sem = sem.clone();
            waitrt::spawn(async move { sem.acquire_many_timeout_for_test().await })
        };
        let patient = {
            let sem = sem.clone();
            waitrt::spawn(async move { sem.acquire().await.map(drop).is_ok() })
        };
        waitrt::test_util::advance(Duration::from_secs(2)).await;
        sem.add_permits(1);
        assert!(timed.await.unwrap());
        assert!(patient.await.unwrap());
        assert_eq!(sem.available_permits(), 1);
    });
}

trait TimeoutForTest {
    fn acquire_many_timeout_for_test(&self) -> impl Future<Output = bool> + Send + '_;
}

impl TimeoutForTest for Semaphore {
    /// Waits for one permit for one second; true if it timed out.
    fn acquire_many_timeout_for_test(&self) -> impl Future<Output = bool> + Send + '_ {
        let wait = self.acquire_timeout(Duration::from_secs(1));
        async move { wait.await.is_err() }
    }
}

/// Plain threads: `blocking_*` forms mixed with tasks.
#[test]
fn blocking_forms_mix_with_tasks() {
    watchdog("blocking forms", WATCHDOG, || {
        let lock = Arc::new(Mutex::new(0));
        let rw = Arc::new(RwLock::new(0));
        let sem = Arc::new(Semaphore::new(1));
        let rt = support::build(Some(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (lock, rw, sem) = (lock.clone(), rw.clone(), sem.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        *lock.blocking_lock() += 1;
                        *rw.blocking_write() += 1;
                        let _ = *rw.blocking_read();
                        drop(sem.blocking_acquire().unwrap());
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for _ in 0..200 {
                *lock.lock().await += 1;
                *rw.write().await += 1;
                drop(sem.acquire().await.unwrap());
            }
        });
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.blocking_lock(), 600);
        assert_eq!(*rw.blocking_read(), 600);
    });
}

// ===== budget =====

/// A loop over an uncontended lock yields to the other task of a
/// current-thread runtime (each completed lock spends budget).
#[test]
fn uncontended_lock_loop_yields() {
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let lock = Arc::new(Mutex::new(0u64));
        let sem = Arc::new(Semaphore::new(1));
        let rw = Arc::new(RwLock::new(0u64));
        let other_ran = Arc::new(AtomicBool::new(false));
        // The looper is spawned first, so it runs first.
        let looper = {
            let (lock, sem, rw, other_ran) =
                (lock.clone(), sem.clone(), rw.clone(), other_ran.clone());
            waitrt::spawn(async move {
                assert!(!other_ran.load(SeqCst));
                for i in 0..10_000 {
                    match i % 3 {
                        0 => *lock.lock().await += 1,
                        1 => drop(sem.acquire().await.unwrap()),
                        _ => *rw.write().await += 1,
                    }
                    if other_ran.load(SeqCst) {
                        return true;
                    }
                }
                false
            })
        };
        let other = {
            let other_ran = other_ran.clone();
            waitrt::spawn(async move { other_ran.store(true, SeqCst) })
        };
        assert!(looper.await.unwrap(), "the lock loop never yielded");
        other.await.unwrap();
    });
}

// ===== OnceCell =====

/// The first initializer is dropped in the middle of its `f`; the second
/// one runs and completes; later callers read its value.
#[test]
fn once_cell_init_is_cancel_safe() {
    let cell = OnceCell::new();
    let mut first = task::spawn(cell.get_or_init(|| async {
        std::future::pending::<()>().await;
        1
    }));
    assert_pending!(first.poll());
    let mut second = task::spawn(cell.get_or_init(|| async { 2 }));
    assert_pending!(second.poll()); // one initializer at a time
    drop(first);
    assert!(second.is_woken());
    assert_eq!(*assert_ready!(second.poll()), 2);
    drop(second);
    assert_eq!(cell.get(), Some(&2));
}

/// Many concurrent `get_or_init`s: the initializer runs once (a failed or
/// cancelled one aside), everybody gets its value.
async fn once_cell_many_callers() {
    let cell = Arc::new(OnceCell::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..4u32)
        .map(|i| {
            let (cell, runs) = (cell.clone(), runs.clone());
            waitrt::spawn(async move {
                let init = || async {
                    runs.fetch_add(1, SeqCst);
                    yield_now().await;
                    if i == 0 {
                        Err("the first one fails")
                    } else {
                        Ok(i)
                    }
                };
                cell.get_or_try_init(init).await.ok().copied()
            })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap());
    }
    let value = *cell.get().expect("initialized");
    assert!(got.iter().all(|g| g.is_none() || *g == Some(value)));
    // At most one failed run before the one that stored the value.
    assert!(
        runs.load(SeqCst) <= 2,
        "initializers ran {} times",
        runs.load(SeqCst)
    );
}

#[test]
fn once_cell_runs_one_initializer_at_a_time() {
    both("once_cell", once_cell_many_callers);
}

// ===== Barrier =====

async fn barrier_generations() {
    const N: usize = 3;
    const GENERATIONS: usize = 4;
    let barrier = Arc::new(Barrier::new(N));
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
            waitrt::spawn(async move {
                for g in 0..GENERATIONS {
                    arrived.fetch_add(1, SeqCst);
                    if barrier.wait().await.is_leader() {
                        leaders.fetch_add(1, SeqCst);
                    }
                    // Nobody leaves generation g before all arrived in it.
                    assert!(
                        arrived.load(SeqCst) >= (g + 1) * N,
                        "left before all arrived"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        leaders.load(SeqCst),
        GENERATIONS,
        "one leader per generation"
    );
}

#[test]
fn barrier_is_reusable_across_generations() {
    both("barrier", barrier_generations);
}

/// A dropped wait takes its arrival back: it does not complete a
/// generation for the others.
#[test]
fn barrier_cancelled_wait_takes_its_arrival_back() {
    let barrier = Barrier::new(2);
    let mut gone = task::spawn(barrier.wait());
    assert_pending!(gone.poll());
    drop(gone);
    let mut a = task::spawn(barrier.wait());
    assert_pending!(a.poll()); // alone: the dropped one does not count
    let mut b = task::spawn(barrier.wait());
    assert!(assert_ready!(b.poll()).is_leader());
    assert!(!assert_ready!(a.poll()).is_leader());
}

// ===== owned guards, downgrade, holder =====

#[test]
fn owned_guards_downgrade_and_holder() {
    let rt = support::build(Some(2));
    rt.block_on(async {
        let lock = Arc::new(Mutex::new(vec![1]));
        let task = {
            let lock = lock.clone();
            waitrt::spawn(async move {
                let mut guard = lock.lock_owned().await;
                guard.push(2);
                let id = waitrt::task::try_id();
                assert_eq!(guard.mutex().holder(), id);
            })
        };
        task.await.unwrap();
        assert_eq!(*lock.lock().await, [1, 2]);
        assert_eq!(lock.holder(), None); // block_on is no task

        let rw = Arc::new(RwLock::new(1));
        let mut w = rw.write().await;
        *w += 1;
        let mut late_writer = task::spawn(rw.write());
        let r = w.downgrade();
        assert_eq!(*r, 2);
        assert_pending!(late_writer.poll());
        // The waiting writer blocks new readers: map the one we have.
        assert!(rw.try_read().is_err());
        let mapped = waitrt::sync::RwLockReadGuard::map(r, |n| n);
        assert_eq!(*mapped, 2);
        drop(mapped);
        *assert_ready!(late_writer.poll()) += 1;
        drop(late_writer);
        assert_eq!(*rw.read().await, 3);
        let owned = rw.clone().write_owned().await.downgrade();
        assert_eq!(*owned, 3);
        assert_eq!(*rw.try_read().unwrap(), 3);
        drop(owned);
        assert!(rw.try_write().is_ok());
    });
}

/// The ownership events the test toolkit's hook hears (see
/// `shared_holds_are_named_for_every_read_guard`).
#[derive(Default)]
struct Holds {
    /// `Hook::held`: the one holder (a writer), `None` when released.
    exclusive: std::cell::RefCell<Vec<Option<u64>>>,
    /// `Hook::held_shared`: (task, acquired).
    shared: std::cell::RefCell<Vec<(u64, bool)>>,
}

impl waitrt::sync::hook::Hook for Holds {
    fn decide(&self, _: &waitrt::sync::hook::Point) {}
    fn held(&self, held: &waitrt::sync::hook::Held) {
        self.exclusive.borrow_mut().push(held.task);
    }
    fn held_shared(&self, held: &waitrt::sync::hook::HeldShared) {
        self.shared.borrow_mut().push((held.task, held.acquired));
    }
}

/// The current task's id as the hook names it.
fn task_id() -> u64 {
    let id = waitrt::task::try_id().expect("inside a task");
    id.to_string().parse().expect("an id is a number")
}

impl Holds {
    /// The shared holds now, by task (each taken and not given back).
    fn readers(&self) -> std::collections::BTreeMap<u64, usize> {
        let mut readers = std::collections::BTreeMap::new();
        for &(task, acquired) in self.shared.borrow().iter() {
            let holds: &mut usize = readers.entry(task).or_default();
            match acquired {
                true => *holds += 1,
                false => *holds = holds.checked_sub(1).expect("given back, never taken"),
            }
        }
        readers.retain(|_, holds| *holds > 0);
        readers
    }
}

// Every way to make a read guard names its task a shared holder while a
// hook is installed, and the guard takes it back when it drops, wherever
// it has moved: the plain, mapped (twice), owned, tried, blocking and
// downgraded guards. Breaks if one of them named no reader (the toolkit
// then saw no holder: a cycle through a read lock was a plain hang, and
// a downgraded writer held nothing) or took back another task's hold.
#[test]
fn shared_holds_are_named_for_every_read_guard() {
    use std::collections::BTreeMap;
    use waitrt::sync::hook::NOT_A_TASK;
    use waitrt::sync::{MappedRwLockReadGuard, RwLockReadGuard};

    let holds = std::rc::Rc::new(Holds::default());
    let _installed = waitrt::sync::hook::install(holds.clone());
    let none = BTreeMap::new();
    let body = |n| BTreeMap::from([(NOT_A_TASK, n)]);

    // Outside any task: the holder is no task.
    let lock = RwLock::new((1, 2));
    let r = lock.try_read().unwrap();
    let b = lock.blocking_read();
    assert_eq!(
        holds.readers(),
        body(2),
        "a reader reading twice holds twice"
    );
    drop(b);
    let mapped = RwLockReadGuard::map(r, |v| &v.0);
    let mapped = MappedRwLockReadGuard::map(mapped, |v| v);
    assert_eq!(holds.readers(), body(1), "a mapped guard keeps the hold");
    drop(mapped);
    assert_eq!(holds.readers(), none);
    let w = lock.try_write().unwrap();
    assert_eq!(holds.exclusive.borrow()[..], [Some(NOT_A_TASK)]);
    let r = w.downgrade();
    assert_eq!(holds.exclusive.borrow()[..], [Some(NOT_A_TASK), None]);
    assert_eq!(holds.readers(), body(1), "the downgraded writer reads");
    drop(r);
    assert_eq!(holds.readers(), none);
    assert_eq!(format!("{lock:?}"), "RwLock { data: (1, 2) }");
    assert_eq!(
        holds.readers(),
        none,
        "Debug's try_read gives back its hold"
    );

    // Tasks on a current-thread runtime (this thread: the hook is the
    // thread's). A guard made in a task and dropped by the body takes back
    // the task's hold.
    let rt = waitrt::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let lock = Arc::new(RwLock::new(0));
        let (id, owned) = {
            let lock = lock.clone();
            let reader = waitrt::spawn(async move {
                let guard = lock.read_owned().await;
                (task_id(), guard)
            });
            reader.await.unwrap()
        };
        assert_eq!(holds.readers(), BTreeMap::from([(id, 1)]));
        let plain = lock.read().await;
        assert_eq!(holds.readers(), BTreeMap::from([(id, 1), (NOT_A_TASK, 1)]));
        drop((owned, plain));
        assert_eq!(holds.readers(), none);
        let (id, downgraded) = {
            let lock = lock.clone();
            let writer = waitrt::spawn(async move {
                let guard = lock.write_owned().await.downgrade();
                (task_id(), guard)
            });
            writer.await.unwrap()
        };
        assert_eq!(holds.readers(), BTreeMap::from([(id, 1)]));
        assert_eq!(holds.exclusive.borrow().last(), Some(&None));
        drop(downgraded);
        assert_eq!(holds.readers(), none);
    });
}

// ===== mapped guards =====

// Breaks if a mapped guard gave the lock back early (the counter would see
// two holders) or never (the other tasks would hang: the watchdog), or if
// a mapped write guard of the rwlock let readers in while it lived.
#[test]
fn mapped_guards_hold_the_whole_lock_until_dropped() {
    use waitrt::sync::{MappedMutexGuard, MutexGuard, RwLockReadGuard, RwLockWriteGuard};
    both("mapped_guards", || async {
        let lock = Arc::new(Mutex::new((0u64, 0u64)));
        let rw = Arc::new(RwLock::new((0u64, 0u64)));
        let mut tasks = Vec::new();
        for i in 0..3u64 {
            let (lock, rw) = (lock.clone(), rw.clone());
            tasks.push(waitrt::spawn(async move {
                for _ in 0..3 {
                    // Both halves move together under one mapped guard.
                    let pair = MutexGuard::map(lock.lock().await, |p| p);
                    let mut first = MappedMutexGuard::map(pair, |p| &mut p.0);
                    let before = *first;
                    yield_now().await;
                    *first = before + 1;
                    drop(first);
                    if i == 0 {
                        let mut w = RwLockWriteGuard::map(rw.write().await, |p| p);
                        w.0 += 1;
                        yield_now().await;
                        w.1 += 1;
                    } else {
                        let r = RwLockReadGuard::map(rw.read().await, |p| p);
                        assert_eq!(r.0, r.1, "a reader saw a half-done write");
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(lock.lock().await.0, 9, "an increment was lost");
        assert_eq!(*rw.read().await, (3, 3));
    });
}

// Breaks if a panic inside a guard's `map` closure leaked the lock (every
// later lock would hang: the try_* calls below fail) or gave it back twice.
#[test]
fn a_panic_in_map_gives_the_lock_back_once() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use waitrt::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};
    waitrt::block_on(async {
        let rw = RwLock::new(vec![1]);
        let read = rw.read().await;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = RwLockReadGuard::map(read, |v| &v[5]);
        }));
        assert!(caught.is_err());
        assert!(rw.try_write().is_ok(), "the read permit leaked");
        let write = rw.write().await;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = RwLockWriteGuard::map(write, |v| &mut v[5]);
        }));
        assert!(caught.is_err());
        assert!(rw.try_read().is_ok(), "the write permits leaked");
        // Given back once: a writer still excludes a reader.
        let _w = rw.try_write().unwrap();
        assert!(rw.try_read().is_err(), "permits were given back twice");

        let lock = Mutex::new(vec![1]);
        let guard = lock.lock().await;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = MutexGuard::map(guard, |v| &mut v[5]);
        }));
        assert!(caught.is_err());
        let _g = lock.try_lock().expect("the mutex leaked");
        assert!(lock.try_lock().is_err(), "the mutex was unlocked twice");
    });
}

// ===== blocking forms inside a runtime =====

/// `blocking_lock`, `blocking_read`, `blocking_write` and
/// `blocking_acquire` called from a thread that drives tasks panic, as
/// tokio's (and as our channels' `blocking_*` did already): inside a task,
/// with the lock held by another task of a current-thread runtime, the
/// call used to hang the runtime for good (found by an independent probe
/// against tokio; the held case timed out under its 5 s watchdog 4 of 4
/// times). Each form once free and once held, on every flavour; the
/// panic's message names the method.
#[test]
fn blocking_forms_inside_a_runtime_panic() {
    type Form = fn(&Mutex<u8>, &RwLock<u8>, &Semaphore);
    let forms: [(&str, Form); 4] = [
        ("Mutex::blocking_lock", |m, _, _| drop(m.blocking_lock())),
        ("RwLock::blocking_read", |_, rw, _| drop(rw.blocking_read())),
        ("RwLock::blocking_write", |_, rw, _| {
            drop(rw.blocking_write())
        }),
        ("Semaphore::blocking_acquire", |_, _, s| {
            drop(s.blocking_acquire())
        }),
    ];
    for workers in [None, Some(1), Some(2)] {
        for (name, form) in forms {
            for held in [false, true] {
                watchdog(name, WATCHDOG, move || {
                    let rt = support::build(workers);
                    let locks = Arc::new((Mutex::new(0u8), RwLock::new(0u8), Semaphore::new(1)));
                    let res = rt.block_on(async move {
                        let (m, rw, s) = &*locks;
                        let _held = match held {
                            true => Some((m.lock().await, rw.write().await, s.acquire().await)),
                            false => None,
                        };
                        let locks = locks.clone();
                        waitrt::spawn(async move {
                            let (m, rw, s) = &*locks;
                            form(m, rw, s);
                        })
                        .await
                    });
                    let panic = res.expect_err("no panic").into_panic();
                    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                    assert!(message.contains(name), "{workers:?} {held}: {message}");
                    assert!(message.contains("inside a runtime"), "{message}");
                });
            }
        }
    }
}

// ===== tokio's permit and count API =====

/// `forget_permits` takes only free permits (none while a waiter is
/// queued: free permits are then the oldest waiter's), and a permit split
/// off another gives its permits back on its own, serving the waiter.
#[test]
fn forget_permits_and_split_permits_keep_the_fifo_rules() {
    waitrt::block_on(async {
        let sem = Arc::new(Semaphore::new(4));
        assert_eq!(sem.forget_permits(1), 1);
        let mut three = sem.try_acquire_many(3).unwrap();
        // A waiter for 2 queues; nothing is free to forget.
        let waiter = {
            let sem = sem.clone();
            waitrt::spawn(async move { sem.acquire_many(2).await.unwrap().num_permits() })
        };
        yield_now().await;
        assert_eq!(
            sem.forget_permits(10),
            0,
            "no permit is free while one waits"
        );
        let one = three.split(1).unwrap();
        assert!(three.split(3).is_none(), "holds only 2");
        assert_eq!(three.num_permits(), 2);
        drop(one); // 1 of the waiter's 2
        yield_now().await;
        assert!(!waiter.is_finished());
        let last = three.split(1).unwrap();
        drop(last); // its second: served
        assert_eq!(waiter.await.unwrap(), 2);
        three.merge(
            sem.try_acquire()
                .unwrap_or_else(|_| unreachable!("1 is free")),
        );
        assert_eq!(three.num_permits(), 2);
        drop(three);
        assert_eq!(sem.available_permits(), 3, "4 less the forgotten one");
    });
}

#[test]
#[should_panic(expected = "two different semaphores")]
fn merging_permits_of_two_semaphores_panics() {
    let (a, b) = (Semaphore::new(1), Semaphore::new(1));
    let mut permit = a.try_acquire().unwrap();
    permit.merge(b.try_acquire().unwrap());
}

use support::PanickingWaker;

/// The last task to reach a barrier wakes the others; a waiter's
/// panicking waker does not cost the leader its result, nor the other
/// waiters their wake (an independent review: the leader's `wait`
/// panicked with the other's panic, its `is_leader` lost).
#[test]
fn a_waiters_panicking_waker_costs_the_leader_nothing() {
    for workers in [None, Some(2)] {
        let rt = support::build(workers);
        rt.block_on(async {
            let barrier = Arc::new(Barrier::new(3));
            let waker = std::task::Waker::from(Arc::new(PanickingWaker));
            let mut doomed = Box::pin(barrier.wait());
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(doomed.as_mut().poll(&mut cx).is_pending());
            let other = {
                let barrier = barrier.clone();
                waitrt::spawn(async move { barrier.wait().await.is_leader() })
            };
            // Whichever of the two arrives last leads, and gets to say so
            // (the other's wait panicked in it before, or its task died).
            let mine = barrier.wait().await.is_leader();
            let theirs = other.await.expect("the leading task died");
            assert!(mine != theirs, "one leader: {mine} {theirs}");
            assert!(!doomed.await.is_leader());
        });
    }
}

/// Releasing a permit (a guard's drop) hands it to the next waiter; that
/// waiter's panicking waker does not unwind through the releasing task,
/// which goes on with what it had (an independent review: a `select!`
/// dropping a granted acquire beside a received value lost the value).
/// The same for a Mutex's guard and a semaphore's close.
#[test]
fn a_waiters_panicking_waker_does_not_unwind_through_the_release() {
    for workers in [None, Some(2)] {
        let rt = support::build(workers);
        rt.block_on(async {
            let waker = std::task::Waker::from(Arc::new(PanickingWaker));
            let mut cx = std::task::Context::from_waker(&waker);

            let sem = Arc::new(Semaphore::new(1));
            let held = sem.acquire().await.unwrap();
            let mut doomed = Box::pin(sem.acquire());
            assert!(doomed.as_mut().poll(&mut cx).is_pending());
            let kept = String::from("kept");
            drop(held); // hands the permit to `doomed`, whose waker panics
            assert_eq!(kept, "kept");
            assert!(doomed.await.is_ok(), "the permit was handed over");

            let mutex = Arc::new(Mutex::new(0u32));
            let guard = mutex.lock().await;
            let mut doomed = Box::pin(mutex.lock());
            assert!(doomed.as_mut().poll(&mut cx).is_pending());
            drop(guard);
            *doomed.await += 1;
            assert_eq!(*mutex.lock().await, 1);

            let sem = Semaphore::new(0);
            let mut doomed = Box::pin(sem.acquire());
            assert!(doomed.as_mut().poll(&mut cx).is_pending());
            sem.close();
            assert!(doomed.await.is_err());
        });
    }
}
