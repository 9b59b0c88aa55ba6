//! Cooperative scheduling budget: a busy task yields to its executor.
//!
//! A task whose waits keep finding their condition true never returns
//! `Pending`, so on a cooperative executor it can starve every other task
//! on its thread. An executor that opts in runs each task poll inside
//! [`with_budget`]; every async wait of this crate (and any resource that
//! calls [`poll_proceed`]) spends one unit per poll, and once the budget is
//! spent it returns `Pending` after waking its own task, which therefore
//! goes back to the end of the run queue (tokio's `coop`, 128 units per
//! task poll). Kernel analog: `cond_resched()` / `need_resched()`.
//!
//! Without [`with_budget`] (tokio, smol, `futures::executor::block_on`)
//! nothing is constrained and nothing changes. Blocking (thread) waits never
//! spend budget.
//!
//! ```
//! use std::future::Future;
//! use waitq::{coop, WaitQueue};
//!
//! let queue = WaitQueue::new();
//! let waker = std::task::Waker::noop();
//! let mut cx = std::task::Context::from_waker(waker);
//! let (ready, forced) = coop::with_budget(2, || {
//!     let mut ready = 0;
//!     while std::pin::pin!(queue.wait_event(|| true)).poll(&mut cx).is_ready() {
//!         ready += 1;
//!     }
//!     ready
//! });
//! assert_eq!((ready, forced), (2, true)); // the third wait yielded
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// This thread's budget: `units` is `None` when unconstrained; `forced`
/// records that a resource yielded because `units` reached zero.
struct Budget {
    units: Cell<Option<u32>>,
    forced: Cell<bool>,
}

thread_local! {
    static BUDGET: Budget = const {
        Budget {
            units: Cell::new(None),
            forced: Cell::new(false),
        }
    };
}

/// Puts the thread's budget back as it was, even if the poll panics.
struct Restore {
    units: Option<u32>,
    forced: bool,
}

impl Restore {
    /// Replaces the budget with `units` (forced flag cleared when `clear`).
    #[inline]
    fn set(units: Option<u32>, clear: bool) -> Restore {
        BUDGET
            .try_with(|b| {
                let saved = Restore {
                    units: b.units.replace(units),
                    forced: b.forced.get(),
                };
                if clear {
                    b.forced.set(false);
                }
                saved
            })
            // (Lazily: a `Restore` built and dropped here would reset the budget.)
            .unwrap_or_else(|_| Restore {
                units: None,
                forced: false,
            })
    }
}

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        let _ = BUDGET.try_with(|b| {
            b.units.set(self.units);
            b.forced.set(self.forced);
        });
    }
}

/// Runs `f` (one task poll) with `budget` units available on this thread,
/// and returns `f`'s output and whether a resource returned `Pending`
/// during `f` because the budget ran out (a forced yield: the task woke
/// itself and should go to the back of the run queue).
///
/// A nested call replaces the outer budget for its duration; the outer
/// budget and forced flag are restored afterwards (also on panic).
///
/// # Examples
///
/// ```
/// use std::task::{Context, Waker};
/// use waitq::coop;
///
/// let mut cx = Context::from_waker(Waker::noop());
/// let ((), forced) = coop::with_budget(1, || {
///     assert!(coop::poll_proceed(&mut cx).is_ready());
///     assert!(coop::poll_proceed(&mut cx).is_pending());
/// });
/// assert!(forced);
/// ```
// Always inlined into the executor's poll: out of line, its `(R, bool)`
// came back through memory with the flag stored as one byte and read back
// as part of a wider load that could not be forwarded from it, a stall on
// every task poll (`perf annotate` of the runtime's yield_many; 0.91x its
// time inlined).
#[inline(always)]
pub fn with_budget<R>(budget: u32, f: impl FnOnce() -> R) -> (R, bool) {
    let restore = Restore::set(Some(budget), true);
    let out = f();
    let forced = BUDGET.try_with(|b| b.forced.get()).unwrap_or(false);
    drop(restore);
    (out, forced)
}

/// Spends one unit of the task's budget, for resources about to do work.
///
/// `Ready(())` when unconstrained (no [`with_budget`] active) or when units
/// remain (one is then spent). When the budget is exhausted: records a
/// forced yield, wakes `cx`'s waker (so the task is polled again) and
/// returns `Pending`; the resource must then return `Pending` without
/// doing anything else. A resource that spent a unit and still ends up
/// `Pending` made no progress and should [`refund`] it.
///
/// # Examples
///
/// ```
/// use std::task::{Context, Waker};
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(waitq::coop::poll_proceed(&mut cx).is_ready()); // unconstrained
/// ```
#[inline]
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    let exhausted = BUDGET
        .try_with(|b| match b.units.get() {
            None => false,
            Some(0) => {
                b.forced.set(true);
                true
            }
            Some(n) => {
                b.units.set(Some(n - 1));
                false
            }
        })
        .unwrap_or(false);
    if exhausted {
        cx.waker().wake_by_ref();
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}

/// Gives back the unit spent by the last successful [`poll_proceed`]: a
/// resource that ends up `Pending` made no progress. Call it only after a
/// `poll_proceed` that returned `Ready`. No-op when unconstrained.
///
/// # Examples
///
/// ```
/// use std::task::{Context, Waker};
/// use waitq::coop;
///
/// let mut cx = Context::from_waker(Waker::noop());
/// coop::with_budget(1, || {
///     assert!(coop::poll_proceed(&mut cx).is_ready());
///     assert!(!coop::has_budget_remaining());
///     coop::refund(); // the resource was not ready after all
///     assert!(coop::has_budget_remaining());
/// });
/// ```
#[inline]
pub fn refund() {
    let _ = BUDGET.try_with(|b| {
        if let Some(n) = b.units.get() {
            b.units.set(Some(n.saturating_add(1)));
        }
    });
}

/// Whether a [`poll_proceed`] now would succeed (always true when
/// unconstrained).
///
/// # Examples
///
/// ```
/// use waitq::coop;
/// assert!(coop::has_budget_remaining());
/// coop::with_budget(0, || assert!(!coop::has_budget_remaining()));
/// ```
#[inline]
pub fn has_budget_remaining() -> bool {
    BUDGET
        .try_with(|b| b.units.get() != Some(0))
        .unwrap_or(true)
}

/// Spends one unit of budget, yielding to the executor once it is gone:
/// for CPU-bound loops that never touch a resource (tokio's
/// `task::consume_budget`, the kernel's `cond_resched()`).
///
/// # Examples
///
/// ```
/// futures::executor::block_on(async {
///     for _ in 0..1_000 {
///         // ... a step of CPU-bound work ...
///         waitq::coop::consume_budget().await;
///     }
/// });
/// ```
#[doc(alias = "cond_resched")]
pub fn consume_budget() -> ConsumeBudget {
    ConsumeBudget { done: false }
}

/// Future returned by [`consume_budget`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct ConsumeBudget {
    done: bool,
}

impl Future for ConsumeBudget {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let poll = poll_proceed(cx);
        self.done = poll.is_ready();
        poll
    }
}

/// Runs `future` with no budget: none of its polls is ever forced to
/// yield, whatever budget the executor set (tokio's `task::unconstrained`).
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Waker};
/// use waitq::{coop, WaitQueue};
///
/// let queue = WaitQueue::new();
/// let mut cx = Context::from_waker(Waker::noop());
/// let mut fut = std::pin::pin!(coop::unconstrained(async {
///     for _ in 0..1_000 {
///         queue.wait_event(|| true).await.unwrap();
///     }
/// }));
/// let (poll, forced) = coop::with_budget(10, || fut.as_mut().poll(&mut cx));
/// assert!(poll.is_ready() && !forced);
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { inner: future }
}

pin_project! {
    /// Future returned by [`unconstrained`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Unconstrained<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _restore = Restore::set(None, false);
        self.project().inner.poll(cx)
    }
}
