//! The runtime's spin lock, for state held a few instructions at a time:
//! the `mpsc` channel's ring (through [`SpinKind`], a [`waitq::LockKind`]
//! for its [`RcuWait`](waitq::RcuWait)) and the owned-task list's shards.
//!
//! Its release is a plain store, where `std`'s mutex needs a
//! read-modify-write to look for sleepers. A waiter that finds it held
//! backs off: it pauses 1, 2, 4, ... up to 1,024 times between looks
//! (reading, not writing, the lock's line, so the holder keeps it), then
//! yields the CPU between looks ([`YieldWhileLocked`]): on two cores the
//! holder may be preempted and share this one. Without the backoff, two
//! workers sending on one channel took turns stealing the line from each
//! other and a send cost up to ten times as much (mpsc_unbounded_4tx/2wk
//! in `benches/sync.rs`: 14 to 241 ns per message across processes, 14
//! to 28 with it, `std`'s mutex 19 to 45). Every hold under it is short
//! and never waits (no waker is called, cloned or dropped under it), so
//! nothing spins for long.

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::RelaxStrategy;
use waitq::{LockKind, StateLock};

/// Waiting for a spin lock: give the CPU to the holder.
pub(crate) struct YieldWhileLocked;

impl RelaxStrategy for YieldWhileLocked {
    fn relax() {
        std::thread::yield_now();
    }
}

/// The spin lock as a [`waitq::LockKind`].
pub(crate) struct SpinKind;

impl LockKind for SpinKind {
    type Lock<T> = SpinCell<T>;
}

/// A value under the spin lock.
pub(crate) struct SpinCell<T>(SpinMutex<T, YieldWhileLocked>);

impl<T> StateLock<T> for SpinCell<T> {
    type Guard<'a>
        = SpinMutexGuard<'a, T, YieldWhileLocked>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        SpinCell(SpinMutex::new(value))
    }

    #[inline]
    fn lock(&self) -> Self::Guard<'_> {
        match self.0.try_lock() {
            Some(guard) => guard,
            None => self.lock_contended(),
        }
    }
}

/// The longest pause between looks at a held lock, in spin-loop hints;
/// past it the waiter yields the CPU between looks.
const MAX_PAUSES: u32 = 1024;

impl<T> SpinCell<T> {
    #[cold]
    fn lock_contended(&self) -> SpinMutexGuard<'_, T, YieldWhileLocked> {
        let mut pauses = 1u32;
        loop {
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            if !self.0.is_locked() {
                if let Some(guard) = self.0.try_lock() {
                    return guard;
                }
            }
            if pauses < MAX_PAUSES {
                pauses *= 2;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpinCell;
    use waitq::StateLock;

    /// Mutual exclusion under contention on real threads: a plain
    /// read-then-write counter loses no increment (with a `lock` that
    /// stole a held lock it ended at 78,644 of 80,000, watched).
    #[test]
    fn contended_holds_exclude_each_other() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 20_000;
        let cell = SpinCell::new(0usize);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        let mut n = cell.lock();
                        let seen = *n;
                        std::hint::black_box(&mut *n);
                        *n = seen + 1;
                    }
                });
            }
        });
        assert_eq!(*cell.lock(), THREADS * ROUNDS);
    }

    /// A holder that panics releases the lock as it unwinds.
    #[test]
    fn a_panicking_holder_releases_the_lock() {
        let cell = SpinCell::new(1u32);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = cell.lock();
            panic!("holder panics");
        }));
        assert!(res.is_err());
        assert_eq!(*cell.lock(), 1);
    }
}
