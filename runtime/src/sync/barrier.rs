//! [`Barrier`]: `n` tasks wait for each other, generation after generation.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};
use std::sync::{Mutex, PoisonError};

use waitq::WaitQueue;

/// Makes `n` tasks wait until all of them have arrived, then lets them all
/// go; reusable (each round is a *generation*).
///
/// No kernel counterpart (the closest is `pthread_barrier_wait`). The
/// last task to arrive is the generation's leader.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use waitrt::sync::Barrier;
///
/// waitrt::block_on(async {
///     let barrier = Arc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             waitrt::spawn(async move { barrier.wait().await.is_leader() })
///         })
///         .collect();
///     let mut leaders = 0;
///     for task in tasks {
///         leaders += task.await.unwrap() as usize;
///     }
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    /// Arrivals in the current generation (changed under this lock only).
    arrived: Mutex<usize>,
    /// Completed generations; what waiters' conditions read.
    generation: AtomicU64,
    queue: WaitQueue,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

// ===== impl Barrier =====

impl Barrier {
    /// A barrier for `n` tasks (`0` acts as `1`).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = waitrt::sync::Barrier::new(1);
    /// waitrt::block_on(async { assert!(barrier.wait().await.is_leader()) });
    /// ```
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            arrived: Mutex::new(0),
            generation: AtomicU64::new(0),
            queue: WaitQueue::named("barrier"),
        }
    }

    /// Arrives, and waits until `n` tasks have arrived in this generation.
    /// The last to arrive returns at once, as the leader, and lets the
    /// others go.
    ///
    /// # Cancel safety
    ///
    /// A dropped wait takes its arrival back if its generation has not
    /// completed yet (so it is not counted twice when it comes back); once
    /// the generation completed, it counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// waitrt::block_on(async {
    ///     let barrier = Arc::new(waitrt::sync::Barrier::new(2));
    ///     for _ in 0..3 {
    ///         // three generations
    ///         let other = {
    ///             let barrier = barrier.clone();
    ///             waitrt::spawn(async move { barrier.wait().await })
    ///         };
    ///         let mine = barrier.wait().await;
    ///         assert!(mine.is_leader() != other.await.unwrap().is_leader());
    ///     }
    /// });
    /// ```
    #[track_caller]
    pub fn wait(&self) -> impl Future<Output = BarrierWaitResult> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let generation = {
                let mut arrived = self.arrived();
                let generation = self.generation.load(Acquire);
                *arrived += 1;
                if *arrived == self.n {
                    *arrived = 0;
                    self.generation.store(generation + 1, Release);
                    drop(arrived);
                    // A waiter's panicking waker must not cost the leader
                    // its result (the others are woken regardless).
                    crate::scheduler::wake_aside(
                        || "the waker of a barrier's waiter".into(),
                        || {
                            self.queue.wake_up_all();
                        },
                    );
                    return BarrierWaitResult(true);
                }
                generation
            };
            let arrival = Arrival {
                barrier: self,
                generation,
            };
            let done = || self.generation.load(Acquire) != generation;
            if self.queue.wait_event(done).at(site).await.is_err() {
                unreachable!("a barrier's queue is never closed");
            }
            std::mem::forget(arrival);
            BarrierWaitResult(false)
        }
    }

    fn arrived(&self) -> std::sync::MutexGuard<'_, usize> {
        waitq::hook::barrier(); // a lock: the test toolkit's store buffers drain
        self.arrived.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes back an arrival whose wait was dropped before its generation
/// completed.
struct Arrival<'a> {
    barrier: &'a Barrier,
    generation: u64,
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        let mut arrived = self.barrier.arrived();
        if self.barrier.generation.load(Acquire) == self.generation {
            *arrived -= 1;
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &*self.arrived())
            .field("generation", &self.generation.load(Acquire))
            .finish()
    }
}

// ===== impl BarrierWaitResult =====

impl BarrierWaitResult {
    /// Whether this task arrived last in its generation (one per
    /// generation is).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = waitrt::sync::Barrier::new(1);
    /// waitrt::block_on(async { assert!(barrier.wait().await.is_leader()) });
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}
