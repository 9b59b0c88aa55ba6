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
//! They do not model weak memory: under a check every access is
//! sequentially consistent in effect (one thread). Ordering bugs need
//! real-thread stress (see the toolkit's guide).
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
                self.0.load(order)
            }

            /// Stores `v` (a decision point first).
            #[inline]
            #[track_caller]
            pub fn store(&self, v: $ty, order: Ordering) {
                waitq::hook::switch_point();
                self.0.store(v, order)
            }

            /// Swaps in `v` (a decision point first).
            #[inline]
            #[track_caller]
            pub fn swap(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
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
                self.0.compare_exchange_weak(current, new, success, failure)
            }

            /// Bitwise and (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_and(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.0.fetch_and(v, order)
            }

            /// Bitwise or (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_or(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.0.fetch_or(v, order)
            }

            /// Bitwise xor (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_xor(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.0.fetch_xor(v, order)
            }

            /// The value, through exclusive access (no decision point).
            #[inline]
            pub fn get_mut(&mut self) -> &mut $ty {
                self.0.get_mut()
            }

            /// The value (no decision point).
            #[inline]
            pub fn into_inner(self) -> $ty {
                self.0.into_inner()
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
                self.0.fetch_add(v, order)
            }

            /// Subtracts `v`, wrapping (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_sub(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.0.fetch_sub(v, order)
            }

            /// Stores the maximum (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_max(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
                self.0.fetch_max(v, order)
            }

            /// Stores the minimum (a decision point first).
            #[inline]
            #[track_caller]
            pub fn fetch_min(&self, v: $ty, order: Ordering) -> $ty {
                waitq::hook::switch_point();
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
