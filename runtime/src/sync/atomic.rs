//! Atomics the test toolkit can interleave: the `std` atomics with a
//! decision point of [`Check`](crate::test_util::Check) before every access.
//!
//! # When to use them
//!
//! The toolkit switches tasks at awaits and inside the wait queue. A task
//! that reads two pieces of shared state with no await between them (a
//! receiver asking "empty?" and then "disconnected?", a value and then its
//! version) is never interrupted between the reads, so a bug that needs
//! another task's writes to land between them is never found. Declare such
//! state with these types (or put [`test_util::switch_point`] between the
//! accesses): every `load`, `store` and read-modify-write is then a place
//! where a check may run other tasks first, as if this thread had been
//! preempted there.
//!
//! Use them for the flags and counters a protocol reads outside a lock:
//! the state behind a `wait_event` condition, "closed" bits, sequence
//! numbers. Inside a check, a `wait_event` condition built from them has
//! decision points of its own (legal: conditions run without a queue
//! lock); inside a `wait_event_lock*` condition, where the user's lock is
//! held, read them with [`as_std`](AtomicBool::as_std) so that no other
//! task is run while the lock is held.
//!
//! # Cost
//!
//! Outside a check each access is the `std` access plus one `Relaxed` load
//! of a global (the count of installed test hooks) and a branch that is
//! never taken: no thread-local, no allocation. The types have the layout
//! of the `std` ones.
//!
//! # Weak memory
//!
//! Under a check (with [`Check::weak_memory`], on by default) a `store`
//! weaker than `SeqCst` stays in the storing task's *store buffer* for a
//! while: other tasks keep reading the old value until that task passes a
//! full barrier (a read-modify-write, a `SeqCst` store, [`fence`]`(SeqCst)`,
//! a wait-queue or lock operation, a spawn, a wake, a channel send, or the
//! end of its poll). That is x86's TSO, each task on a core of its own,
//! and it is what finds a Release store followed by a Relaxed
//! `waitqueue_active()` with no fence between. Use [`fence`] rather than
//! `std::sync::atomic::fence` in such code, and publish through the
//! runtime's primitives or `SeqCst` rather than a `std::sync::Mutex`: the
//! check sees only these, and would report a store published through an
//! unseen `std` lock as still buffered.
//! Orderings weaker than TSO (ARM's load reordering) are not modelled:
//! run real-thread stress on such hardware for those (see the toolkit's
//! guide).
//!
//! [`Check::weak_memory`]: crate::test_util::Check::weak_memory
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::Ordering::SeqCst;
//! use waitrt::sync::atomic::AtomicUsize;
//!
//! let n = AtomicUsize::new(1);
//! n.fetch_add(1, SeqCst); // a decision point when a check runs
//! assert_eq!(n.load(SeqCst), 2);
//! ```
//!
//! [`test_util::switch_point`]: crate::test_util::switch_point

use std::fmt;
use std::sync::atomic::{self as std_atomic, Ordering};

use crate::test_util::weak_memory as weak;

/// [`std::sync::atomic::fence`], which a check also sees: `fence(SeqCst)`
/// drains the running task's store buffer (see [Weak memory](self#weak-memory)).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering::{Release, SeqCst};
/// use waitrt::sync::atomic::{fence, AtomicBool};
///
/// let ready = AtomicBool::new(false);
/// ready.store(true, Release);
/// fence(SeqCst); // the store is visible to every task from here on
/// ```
#[inline]
pub fn fence(order: Ordering) {
    if order == Ordering::SeqCst && waitq::hook::is_enabled() {
        weak::fence();
    }
    std_atomic::fence(order);
}

/// A value as the store buffers keep it (`u64` bits).
trait Bits: Copy {
    fn to_bits(self) -> u64;
    fn from_bits(bits: u64) -> Self;
}

impl Bits for bool {
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
}

macro_rules! bits {
    ($($ty:ty),*) => {$(
        impl Bits for $ty {
            #[allow(clippy::cast_sign_loss, clippy::cast_lossless)]
            fn to_bits(self) -> u64 {
                self as u64
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            fn from_bits(bits: u64) -> Self {
                bits as $ty
            }
        }
    )*};
}

bits!(usize, isize, u32, i32, u64, i64);

macro_rules! common {
    ($name:ident, $ty:ty, $example:expr) => {
        #[doc = concat!("[`std::sync::atomic::", stringify!($name), "`] with a toolkit decision point before every access (see the [module docs](self)).")]
        ///
        /// # Examples
        ///
        /// ```
        /// use std::sync::atomic::Ordering::SeqCst;
        #[doc = concat!("let a = waitrt::sync::atomic::", stringify!($name), "::new(", stringify!($example), ");")]
        #[doc = concat!("assert_eq!(a.swap(", stringify!($example), ", SeqCst), ", stringify!($example), ");")]
        /// ```
        #[derive(Default)]
        #[repr(transparent)]
        pub struct $name(std_atomic::$name);

        impl $name {
            /// A new atomic (no decision point: nobody else can see it yet).
            pub const fn new(v: $ty) -> Self {
                $name(std_atomic::$name::new(v))
            }

            /// The `std` atomic inside, for accesses that must not be
            /// decision points (under a user lock, in a hot loop).
            #[inline]
            pub fn as_std(&self) -> &std_atomic::$name {
                &self.0
            }

            /// Loads the value (a decision point first).
            #[inline]
            #[track_caller]
            pub fn load(&self, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                if waitq::hook::is_enabled() {
                    if let Some(bits) = weak::load(self.addr()) {
                        return <$ty as Bits>::from_bits(bits);
                    }
                }
                self.0.load(order)
            }

            /// Stores `v` (a decision point first).
            #[inline]
            #[track_caller]
            pub fn store(&self, v: $ty, order: Ordering) {
                waitq::hook::switch_point();
                if waitq::hook::is_enabled() {
                    let old = Bits::to_bits(self.0.load(Ordering::Relaxed));
                    weak::store(self.addr(), old, order == Ordering::SeqCst);
                }
                self.0.store(v, order)
            }

            /// Swaps in `v` (a decision point first).
            #[inline]
            #[track_caller]
            pub fn swap(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.swap(v, order)
            }

            /// Compare-and-exchange (a decision point first).
            ///
            /// # Errors
            ///
            /// The value found when it was not `current`.
            #[inline]
            #[track_caller]
            pub fn compare_exchange(
                &self,
                current: $ty,
                new: $ty,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$ty, $ty> {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.compare_exchange(current, new, success, failure)
            }

            /// Weak compare-and-exchange (a decision point first).
            ///
            /// # Errors
            ///
            /// The value found when it was not `current` (or spuriously).
            #[inline]
            #[track_caller]
            pub fn compare_exchange_weak(
                &self,
                current: $ty,
                new: $ty,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$ty, $ty> {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.compare_exchange_weak(current, new, success, failure)
            }

            /// Bitwise and (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_and(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_and(v, order)
            }

            /// Bitwise or (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_or(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_or(v, order)
            }

            /// Bitwise xor (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_xor(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_xor(v, order)
            }

            /// The value, through exclusive access (no decision point).
            #[inline]
            pub fn get_mut(&mut self) -> &mut $ty {
                if waitq::hook::is_enabled() {
                    weak::forget(self.addr());
                }
                self.0.get_mut()
            }

            /// The value (no decision point).
            #[inline]
            pub fn into_inner(self) -> $ty {
                self.0.load(Ordering::Relaxed)
            }

            fn addr(&self) -> usize {
                std::ptr::from_ref(self).addr()
            }

            /// A read-modify-write: a full barrier (see [Weak memory](self#weak-memory)).
            #[inline]
            fn read_modify_write(&self) {
                if waitq::hook::is_enabled() {
                    weak::read_modify_write(self.addr());
                }
            }
        }

        impl Drop for $name {
            #[inline]
            fn drop(&mut self) {
                if waitq::hook::is_enabled() {
                    weak::forget(self.addr());
                }
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name::new(v)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

macro_rules! integer {
    ($name:ident, $ty:ty) => {
        common!($name, $ty, 7);

        impl $name {
            /// Adds `v`, wrapping (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_add(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_add(v, order)
            }

            /// Subtracts `v`, wrapping (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_sub(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_sub(v, order)
            }

            /// Stores the maximum (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_max(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_max(v, order)
            }

            /// Stores the minimum (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_min(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.read_modify_write();
                self.0.fetch_min(v, order)
            }
        }
    };
}

common!(AtomicBool, bool, true);
integer!(AtomicUsize, usize);
integer!(AtomicIsize, isize);
integer!(AtomicU32, u32);
integer!(AtomicI32, i32);
integer!(AtomicU64, u64);
integer!(AtomicI64, i64);
