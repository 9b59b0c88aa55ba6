//! An async runtime whose every sleep and wake goes through a kernel-style
//! [`waitq::WaitQueue`]: join handles wait on the task's join queue, a
//! sleep waits on its timer's queue, idle worker threads and blocking-pool
//! threads sleep on wait queues, and shutdown closes queues so that every
//! waiter ends with an error instead of hanging.
//!
//! | piece | where |
//! | --- | --- |
//! | [`Builder`], [`Runtime`], [`Handle`], [`block_on`] | `builder.rs`, `runtime.rs` (with the numbered shutdown protocol) |
//! | [`spawn`], [`JoinHandle`](task::JoinHandle), [`JoinSet`](task::JoinSet), [`yield_now`](task::yield_now), signals | `task.rs`, `task/` |
//! | current-thread and work-stealing schedulers (fairness rules in their module docs) | `scheduler/` |
//! | [`spawn_blocking`] pool | `blocking.rs` |
//! | [`time`]: `sleep`, `timeout`, `interval` on a hierarchical wheel | `time/` |
//! | channels, locks, semaphores and the wait queue itself | [`sync`] (re-exports `waitq`), `sync/` |
//! | the mio reactor and sockets: [`net`] (TCP, UDP, Unix) | `reactor.rs`, `reactor/`, `net/` |
//! | [`fs`]: files and directories on the blocking pool | `fs.rs`, `fs/` |
//! | [`process`]: child processes, their exits and pipes in the reactor | `process.rs`, `process/` |
//! | `runtime::hyper` (feature `hyper`): hyper's executor, timer and I/O glue | `hyper.rs`, `hyper/` |
//! | the deterministic test toolkit | [`test_util`] |
//! | `!Send` tasks: [`LocalSet`](task::LocalSet), [`spawn_local`](task::spawn_local) | `task/local.rs` |
//! | the [`#[test]`](macro@test) and [`#[main]`](macro@main) attributes | the `runtime-macros` crate (`macros/`) |
//!
//! `unsafe` is denied crate-wide with three audited exceptions, each block
//! with its `SAFETY` invariant:
//!
//! - the task cell (`task/raw.rs`): a task's future is pinned in place
//!   inside the task allocation (one allocation per spawn instead of two),
//!   and its stage (future, then output) sits in an `UnsafeCell` whose
//!   access the task's state word serializes instead of a mutex (four or
//!   five fewer lock round trips per task);
//! - `TCP_INQ` reads (`net/tcp/inq.rs`, Linux only): `setsockopt` and
//!   `recvmsg` with a control message, which `std` does not expose, so a
//!   message-sized read learns that it emptied the receive queue and saves
//!   the `recv` that would only return `WouldBlock`;
//! - the lock values (`sync/mutex.rs`, `sync/rwlock.rs`,
//!   `sync/rwlock/guards.rs`): a [`Mutex`](sync::Mutex)'s or
//!   [`RwLock`](sync::RwLock)'s value sits in an `UnsafeCell` that a guard
//!   reaches only while it holds the semaphore permits that exclude every
//!   conflicting guard, with `Sync` impls bounded as tokio's. It gives the
//!   mapped guards and two atomic read-modify-writes per read instead of
//!   five (the safe version kept an `Arc` per reader): `rwlock_95r` on 2
//!   workers went from 0.15x to 0.37x async-lock and 0.55x to 0.73x tokio
//!   (`cargo bench --bench sync`).
//!
//! # Cooperative budget
//!
//! Every task poll gets 128 units of [`waitq::coop`] budget; each wait that
//! makes progress spends one, and a wait that finds the budget spent yields
//! (wakes its task and returns `Pending`), so one busy task cannot starve
//! the others. CPU loops can call [`sync::coop::consume_budget`].
//!
//! # Signals
//!
//! Every task can be interrupted or killed through its handle
//! ([`JoinHandle::interrupt`](task::JoinHandle::interrupt),
//! [`kill`](task::JoinHandle::kill)); the task's
//! [`signals()`](task::signals) are the [`waitq::SignalSource`] its
//! `_interruptible` and `_killable` waits read, exactly as in the kernel.
//!
//! # Examples
//!
//! ```
//! use runtime::sync::WaitQueue;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! let rt = runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! rt.block_on(async {
//!     let queue = Arc::new(WaitQueue::new());
//!     let ready = Arc::new(AtomicBool::new(false));
//!     let waiter = {
//!         let (queue, ready) = (queue.clone(), ready.clone());
//!         runtime::spawn(async move {
//!             queue.wait_event(|| ready.load(Ordering::Acquire)).await.unwrap();
//!         })
//!     };
//!     ready.store(true, Ordering::Release);
//!     queue.wake_up_all();
//!     waiter.await.unwrap();
//! });
//! ```
#![deny(missing_docs, unsafe_code)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod blocking;
mod builder;
mod context;
pub mod fs;
#[cfg(feature = "hyper")]
pub mod hyper;
mod metrics;
pub mod net;
pub mod obs;
mod park;
pub mod process;
mod reactor;
mod runtime;
mod scheduler;
pub mod signal;
pub mod sync;
pub mod task;
pub mod test_util;
pub mod time;

pub use builder::Builder;
pub use metrics::RuntimeMetrics;
pub use runtime::{block_on, EnterGuard, Handle, Runtime, SpawnError};
pub use scheduler::UnhandledPanic;
pub use task::{spawn, spawn_blocking};

// `#[runtime::main]` and `#[runtime::test]`; their docs are in the
// `runtime-macros` crate and show here.
pub use runtime_macros::{main, test};

// `extern crate self as runtime;` would clash with `mod runtime`: inside
// this crate the attributes take `crate = "crate"`.
#[cfg(test)]
mod macro_tests {
    #[crate::test(crate = "crate", start_paused = true)]
    async fn test_attribute_inside_the_crate() {
        let start = crate::time::now();
        crate::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(
            crate::time::now() - start,
            std::time::Duration::from_secs(3600)
        );
    }

    #[crate::test(crate = "crate", check(seeds = 4))]
    async fn check_inside_the_crate() {
        assert!(crate::test_util::is_checking());
    }
}
