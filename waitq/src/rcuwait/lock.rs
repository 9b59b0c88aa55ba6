//! The lock an [`RcuWait`](super::RcuWait) keeps its slot (and a locked
//! wait's state) under: `std`'s mutex by default, or one its owner
//! supplies.

use std::ops::DerefMut;

use crate::sync::{Mutex, MutexGuard, PoisonError};

/// A kind of lock for an [`RcuWait`](super::RcuWait)'s slot and state:
/// [`StdLock`] (the default) or one its owner supplies.
///
/// Every hold of that lock is a few instructions (store or take a waker,
/// and for a locked wait the owner's own short holds), so a spin lock can
/// do: its release is a plain store, where `std`'s mutex needs a
/// read-modify-write to look for sleepers. The runtime's `mpsc` channel
/// keeps its ring under one (one read-modify-write per send instead of
/// two). `waitq` itself has no `unsafe`, so it ships only [`StdLock`].
///
/// Kernel: the choice between a `spinlock_t` and a `struct mutex`.
///
/// # Examples
///
/// A kind whose lock is `std`'s `RwLock` used as a mutex, to show the
/// shape (a real one would be a spin lock):
///
/// ```
/// use std::sync::{PoisonError, RwLock, RwLockWriteGuard};
/// use waitq::{LockKind, RcuWait, StateLock};
///
/// struct Rw;
/// struct RwCell<T>(RwLock<T>);
///
/// impl LockKind for Rw {
///     type Lock<T> = RwCell<T>;
/// }
///
/// impl<T> StateLock<T> for RwCell<T> {
///     type Guard<'a> = RwLockWriteGuard<'a, T> where Self: 'a;
///     fn new(value: T) -> Self {
///         RwCell(RwLock::new(value))
///     }
///     fn lock(&self) -> Self::Guard<'_> {
///         self.0.write().unwrap_or_else(PoisonError::into_inner)
///     }
/// }
///
/// let wait: RcuWait<u32, Rw> = RcuWait::with_lock(Some("count_wait"), 0);
/// *wait.lock() += 1;
/// assert_eq!(*wait.lock(), 1);
/// ```
pub trait LockKind {
    /// The lock around a `T`.
    type Lock<T>: StateLock<T>;
}

/// A lock around a `T` (see [`LockKind`]).
pub trait StateLock<T>: Sized {
    /// Holds the lock while it lives.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;

    /// A lock around `value`.
    fn new(value: T) -> Self;

    /// Takes the lock, waiting as long as it takes. A holder that
    /// panicked must not make it unusable (the slot is never left
    /// half-written; `std`'s poisoning is ignored).
    fn lock(&self) -> Self::Guard<'_>;
}

/// `std::sync::Mutex`: the default [`LockKind`], the only one that can
/// make a `const` [`RcuWait`](super::RcuWait).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdLock;

impl LockKind for StdLock {
    type Lock<T> = Mutex<T>;
}

impl<T> StateLock<T> for Mutex<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        Mutex::new(value)
    }

    #[inline]
    fn lock(&self) -> Self::Guard<'_> {
        Mutex::lock(self).unwrap_or_else(PoisonError::into_inner)
    }
}
