//! Linux-kernel-style wait queues for async tasks and plain threads.
//!
//! A task that must sleep until something is true *registers on a wait
//! queue, then re-checks its condition, then sleeps*; whoever makes the
//! condition true *changes the state, then calls `wake_up`*. That order,
//! Linux's for twenty years (`include/linux/wait.h`, `kernel/sched/wait.c`),
//! is why no wake-up is ever lost. This crate brings the whole family to
//! async Rust, executor-agnostic and without `unsafe`:
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use waitq::WaitQueue;
//!
//! static DATA_READY: AtomicBool = AtomicBool::new(false);
//! static SMBIOD_WAIT: WaitQueue = WaitQueue::new(); // DECLARE_WAIT_QUEUE_HEAD
//!
//! let daemon = std::thread::spawn(|| {
//!     futures::executor::block_on(SMBIOD_WAIT.wait_event(|| DATA_READY.load(Ordering::SeqCst)))
//! });
//! DATA_READY.store(true, Ordering::SeqCst); // 1. change the state
//! SMBIOD_WAIT.wake_up(); //                    2. then wake
//! daemon.join().unwrap().unwrap();
//! ```
//!
//! # Kernel → waitq → peers
//!
//! | kernel (`wait.h`) | `waitq` | tokio / event-listener |
//! | --- | --- | --- |
//! | `DECLARE_WAIT_QUEUE_HEAD`, `init_waitqueue_head` | [`WaitQueue::new`] (`const`) | `Notify::const_new`, `Event::new` |
//! | `wait_event(wq, cond)` | [`WaitQueue::wait_event`] | loop of `notified()` + check / `listen()` + check |
//! | `wait_event_exclusive` | [`WaitQueue::wait_event_exclusive`] | none (one-vs-all is chosen by the waker) |
//! | `wait_until`-style value wait | [`WaitQueue::wait_event_value`] | maitake `wait_for_value` |
//! | `wait_event_interruptible[_exclusive]` | [`WaitQueue::wait_event_interruptible`] → [`Interrupted`] | none (drop the future) |
//! | `wait_event_killable` | [`WaitQueue::wait_event_killable`] → [`Killed`] | none |
//! | `wait_event_timeout` (time left) | [`WaitQueue::wait_event_timeout`] → `Ok(left)` / [`TimedOut`] | `time::timeout(..)` → `Elapsed` (no time left) |
//! | `wait_event_{interruptible,killable}_timeout` | [`WaitQueue::wait_event_interruptible_timeout`], [`WaitQueue::wait_event_killable_timeout`] | none |
//! | `wait_event_lock_irq` | [`WaitQueue::wait_event_lock`] | none (async condvar) |
//! | poll table entry + `pollwake` key | [`WaitQueue::wait_event_key`] | none |
//! | `prepare_to_wait[_exclusive]` / `schedule` / `finish_wait` | [`WaitQueue::prepare_to_wait`], [`WaitEntry::wait`], [`WaitQueue::finish_wait`] | `Notified::enable` / `listen()` |
//! | `DEFINE_WAIT_FUNC` | [`WaitEntry::with_func`], [`WaitEntry::with_shared_func`] | none |
//! | `wait_queue_entry` embedded in the caller's struct | [`PollWaiter`] (owned, reusable, `poll_wait_event`) | `Notified` + `enable`, `EventListener` |
//! | `cond_resched()` | [`coop`] ([`coop::with_budget`], [`coop::consume_budget`]) | tokio's `coop`, `task::consume_budget` |
//! | `wait_event` in a kernel thread | [`WaitQueue::blocking_wait_event`] (`_exclusive`, `_timeout`) | `EventListener::wait` |
//! | `wake_up` | [`WaitQueue::wake_up`] | `notify_one` (but stores a permit) / `notify(1)` |
//! | `wake_up_nr(n)` | [`WaitQueue::wake_up_nr`] | `notify(n)` (at-least-n semantics) |
//! | `wake_up_all` | [`WaitQueue::wake_up_all`] | `notify_waiters` / `notify(usize::MAX)` |
//! | `wake_up_interruptible[_nr,_all]` | [`WaitQueue::wake_up_interruptible`] … | none |
//! | `wake_up_poll(wq, mask)` | [`WaitQueue::wake_up_poll`] | none |
//! | `waitqueue_active`, `wq_has_sleeper` | [`WaitQueue::waitqueue_active`], [`WaitQueue::wq_has_sleeper`] | none |
//! | `wake_up_pollfree` (closest) | [`WaitQueue::close`] → [`Closed`] | maitake `close` |
//! | `signal_pending_state` | [`SignalSource`] ([`TaskSignals`]) | none |
//! | `struct rcuwait` (one waiter, no list): `rcuwait_wait_event`, `rcuwait_wake_up`, `rcuwait_active` | [`RcuWait`] ([`RcuWait::poll_wait_event`], [`RcuWait::wake_up`], [`RcuWait::rcuwait_active`]) | `AtomicWaker` |
//! | `struct completion` (`done` under the wait's lock, `swake_up_locked`) | [`RcuWait::with_state`], [`RcuWait::lock`] + [`RcuWaitGuard::wake_up`], [`RcuWait::poll_wait_event_locked`] | tokio's oneshot state word |
//! | `struct semaphore`'s `lock` + `wait_list`: `__down_common()` tests and links in one hold, `__up()` unlinks the first waiter and sets its `up` | [`HandoffQueue`] ([`HandoffQueue::poll_wait`], [`HandoffQueue::lock`] + [`HandoffGuard::hand_off_front`], [`HandoffGuard::unlink`]) | tokio's `batch_semaphore` waiter list |
//!
//! # The contract
//!
//! 1. **The condition** may be evaluated many times (after spurious wakes
//!    too) and is never evaluated with the queue lock held, so it may take
//!    other locks or call `wake_up` on the same queue. Keep it cheap and free
//!    of side effects (except in [`WaitQueue::wait_event_value`], whose point
//!    is to take the value).
//! 2. **Wakers change the state first.** The waking side changes what the
//!    condition reads *before* it calls `wake_up*`. A wake on an empty queue
//!    does nothing: no permit is stored, the condition is the state.
//! 3. **No waker runs under the lock.** Wakers are cloned, called and dropped
//!    outside the queue lock, taken out in fixed-size batches; the lock is
//!    held only to link, unlink and walk entries. A waker that re-enters the
//!    queue (wakes it, registers on it) or panics is safe: a panic is
//!    re-raised after the whole wake is done and the queue stays usable.
//! 4. **Who a wake wakes.** `wake_up` wakes every matching non-exclusive
//!    waiter and the oldest matching exclusive waiter; `wake_up_nr(n)` the
//!    oldest `n` exclusive ones; `wake_up_all` everyone. Exclusive waiters
//!    are FIFO. Wakes return how many waiters they woke (non-exclusive ones
//!    included; the kernel counts only exclusive ones). A woken waiter is
//!    unlinked at once, so a second wake goes to the next waiter. Waiters
//!    registered while a wake runs are not woken by it (a broadcast is
//!    atomic). An exclusive waiter woken with its condition false goes back
//!    to the tail, as in the kernel.
//! 5. **Hand-off.** An exclusive waiter chosen by a wake that then ends
//!    without success (dropped, timed out, interrupted with its condition
//!    false) passes the wake to the next exclusive waiter. So does one that
//!    succeeds on a state it saw *before* the wake chose it (it was still
//!    linked when its condition came true): that wake was for the next
//!    change, and a success never absorbs it. Hand-written
//!    `prepare_to_wait` loops own this choice, as in the kernel.
//! 6. **A true condition wins** over a pending signal and over an expired
//!    deadline: every failure path tests the condition again *after* its
//!    signal or deadline spoke (the kernel's order), so a state change that
//!    lands just before the signal is never reported as `Interrupted`. (A
//!    zero timeout still tests the condition exactly once.)
//! 7. **Close.** [`WaitQueue::close`] ends every current and future wait
//!    whose condition is false with [`Closed`] (or the `is_closed()` form of
//!    the wait's own error); wakes after it are no-ops.
//! 8. **No ABA.** Waiters live in a slab whose keys are reused; every handle
//!    carries a 64-bit registration number, so a stale future never touches
//!    a new occupant of its old slot. After warm-up a wait allocates nothing
//!    (the slab grows only when more waiters are linked at once than ever
//!    before).
//!
//! Futures are `Unpin` (the `_timeout` ones when the clock's sleep is),
//! `Send` when their condition (and signal source and clock) are, fused
//! (`FusedFuture`) and `#[must_use]`. They register on their first poll, not
//! at creation. A `mem::forget`-ten future is memory-safe; its entry is
//! unlinked by the next wake that picks it (a forgotten exclusive waiter
//! absorbs that one wake).
//!
//! # Cooperative budget
//!
//! An executor may run each task poll inside [`coop::with_budget`]; every
//! async wait then spends one unit per poll and, once the budget is spent,
//! returns `Pending` after waking its task, so a task whose conditions are
//! always true cannot starve the others (tokio's coop). Executors that set
//! no budget (tokio, smol, `block_on`) see no change; blocking waits never
//! spend budget.
//!
//! # Signals and time on any executor
//!
//! The interruptible and killable waits take a [`SignalSource`]; the timed
//! waits take a [`Clock`]. The runtime of this workspace implements both
//! (per-task signals, its timer wheel). On another executor, use
//! [`TaskSignals`] for signals, and implement [`Clock`] over its timer:
//!
//! ```
//! use std::time::Instant;
//! use std::pin::Pin;
//!
//! /// tokio's timer (also honours `tokio::time::pause()`):
//! /// `fn now` = `tokio::time::Instant::now().into_std()`,
//! /// `fn sleep_until(d)` = `Box::pin(tokio::time::sleep_until(d.into()))`.
//! /// smol's: `Instant::now()` and `async_io::Timer::at(d)`. Any future works:
//! struct Never;
//! impl waitq::Clock for Never {
//!     type Sleep = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
//!     fn now(&self) -> Instant {
//!         Instant::now()
//!     }
//!     fn sleep_until(&self, _deadline: Instant) -> Self::Sleep {
//!         Box::pin(std::future::pending())
//!     }
//! }
//! let queue = waitq::WaitQueue::new();
//! let left = queue.wait_event_timeout(Never, std::time::Duration::from_secs(1), || true);
//! assert!(futures::executor::block_on(left).is_ok());
//! ```
#![deny(missing_docs, unsafe_code, unsafe_op_in_unsafe_fn)]
#![warn(
    rust_2018_idioms,
    unreachable_pub,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks
)]
#![doc(test(attr(deny(warnings))))]

mod blocking;
mod clock;
pub mod coop;
mod entry;
mod error;
mod handoff;
pub mod hook;
mod list;
mod poll_waiter;
mod prepare;
mod queue;
mod rcuwait;
pub mod registry;
mod signal;
mod sync;
mod wait;
mod wake_batch;

pub use clock::Clock;
pub use entry::{TaskState, WakeDecision, WakeFunction, WakeInfo, WakeMode};
pub use error::{Closed, Interrupted, Killed, TimedOut, WaitError};
pub use handoff::{HandoffEntry, HandoffGuard, HandoffQueue};
pub use poll_waiter::PollWaiter;
pub use prepare::{Wait, WaitEntry};
pub use queue::WaitQueue;
pub use rcuwait::{LockKind, RcuWait, RcuWaitEvent, RcuWaitGuard, StateLock, StdLock};
pub use signal::{SignalKind, SignalSource, TaskSignals};
pub use wait::{
    WaitEvent, WaitEventInterruptible, WaitEventInterruptibleTimeout, WaitEventKillable,
    WaitEventKillableTimeout, WaitEventLock, WaitEventTimeout, WaitEventValue,
};
