//! An async runtime for Linux services: tasks on a current-thread or
//! work-stealing scheduler, timers, TCP, UDP and Unix sockets, files,
//! child processes and signals, with the shapes a tokio user knows
//! (`spawn`, `JoinHandle`, `sleep`, `TcpListener`, `mpsc`, ...). Its
//! sockets and streams implement the [`futures::io`](futures_io) traits.
//! Underneath, every sleep is on a kernel-style [`waitq::WaitQueue`],
//! except a timer's, whose wheel entry wakes its task directly (see
//! [Internals](#internals)).
//!
//! # Start here
//!
//! ## Build a runtime, or let `#[waitrt::main]` build it
//!
//! A [`Runtime`] runs futures: [`Runtime::new`] is the work-stealing
//! scheduler with a worker per CPU and every driver (timers, sockets)
//! on; the [`Builder`] picks the scheduler and the drivers.
//! [`block_on`](Runtime::block_on) runs your top-level future on the
//! calling thread.
//!
//! ```
//! let rt = waitrt::Builder::new_multi_thread()
//!     .worker_threads(2)
//!     .enable_all() // timers and sockets
//!     .build()
//!     .unwrap();
//! let answer = rt.block_on(async { 40 + 2 });
//! assert_eq!(answer, 42);
//! ```
//!
//! In a program, [`#[waitrt::main]`](macro@main) on `async fn main`
//! does the same (`flavor = "current_thread"` for one thread); in tests,
//! [`#[waitrt::test]`](macro@test) runs each `async fn` test on a fresh
//! current-thread runtime, or under the deterministic
//! [test toolkit](test_util) with `check`.
//!
//! ## Spawn tasks
//!
//! [`spawn`] starts a task; its [`JoinHandle`](task::JoinHandle) is a
//! future of the task's output (an `Err` if it panicked or was
//! aborted). A [`JoinSet`](task::JoinSet) keeps a group of them and
//! aborts what is left when dropped; [`spawn_blocking`] runs blocking
//! code on a thread pool. Blocking code in a task holds up more than that
//! task: on the multi-thread flavour a task it woke waits in its worker's
//! next-task slot until the worker is free again (as on tokio), and the
//! stuck-worker detector ([`Builder::stuck_worker_threshold`]) reports it.
//!
//! ```
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let tasks: Vec<_> = (0..4u64).map(|i| waitrt::spawn(async move { i * i })).collect();
//!     let mut sum = 0;
//!     for task in tasks {
//!         sum += task.await.unwrap();
//!     }
//!     let text = waitrt::spawn_blocking(move || sum.to_string()).await.unwrap();
//!     assert_eq!(text, "14");
//! });
//! ```
//!
//! ## Sleep, time out, tick
//!
//! [`time::sleep`], [`time::timeout`] and [`time::interval`] run on the
//! runtime's timer (build it with `enable_time()` or `enable_all()`).
//!
//! ```
//! use std::time::Duration;
//! use waitrt::time::{sleep, timeout};
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     sleep(Duration::from_millis(10)).await;
//!     let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
//!     assert!(slow.is_err(), "the sleep did not finish in time");
//! });
//! ```
//!
//! ## Serve TCP
//!
//! [`net::TcpListener`] accepts [`net::TcpStream`]s, which read and
//! write through [`futures::io`](futures_io)'s `AsyncRead` and
//! `AsyncWrite` (with the extension traits of the `futures` crate). One
//! task per connection:
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use waitrt::net::{TcpListener, TcpStream};
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     waitrt::spawn(async move {
//!         while let Ok((mut conn, _peer)) = listener.accept().await {
//!             waitrt::spawn(async move {
//!                 let mut buf = [0; 1024];
//!                 // Echo until the client closes its side.
//!                 while let Ok(n @ 1..) = conn.read(&mut buf).await {
//!                     if conn.write_all(&buf[..n]).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!         }
//!     });
//!
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo).await?;
//!     assert_eq!(&echo, b"hello");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```
//!
//! A real server also backs off when it runs out of file descriptors and
//! stops gracefully on Ctrl-C and `SIGTERM`: the guide [write a
//! server](guide::write_a_server) shows both, and how to test it.
//!
//! ## Where to go next
//!
//! Guides:
//!
//! - [Coming from tokio](guide::coming_from_tokio): each tokio item and
//!   ours side by side, which tokio-ecosystem crates work here and which
//!   do not (and why), and `futures::io` versus tokio's I/O traits.
//! - [Write a server](guide::write_a_server): an accept loop that
//!   survives `EMFILE`, a task per connection, graceful shutdown with a
//!   deadline, and its tests.
//! - [Testing with the toolkit](test_util): run a test body under many
//!   schedules, with a paused clock, and get a replay line for a failure.
//!
//! The modules:
//!
//! | module | for |
//! | --- | --- |
//! | [`task`] | `spawn`, `JoinHandle`, `JoinSet`, `LocalSet` for `!Send` futures, task-local values ([`task_local!`]), task signals |
//! | [`time`] | `sleep`, `timeout`, `interval`, the runtime's clock |
//! | [`net`] | TCP (with `TcpSocket` for options), UDP, Unix sockets, `lookup_host`, `AsyncFd` for any other descriptor |
//! | [`io`] | tokio's paths for `io::unix::AsyncFd` and `io::Interest` |
//! | [`fs`] | files and directories, on the blocking pool |
//! | [`process`] | child processes: `wait`, `output`, pipes |
//! | [`signal`] | Ctrl-C, `SIGTERM`, any Unix signal as a stream |
//! | [`sync`] | channels (`mpsc`, `oneshot`, `broadcast`, `watch`), `Mutex`, `RwLock`, `Semaphore`, `Barrier`, `OnceCell`, and the wait queue |
//! | [`test_util`] | the deterministic test toolkit, in-memory duplex streams, mock I/O |
//! | `hyper` (feature `hyper`) | hyper 1.x's executor, timer and I/O glue |
//!
//! # Internals
//!
//! Every sleep but a timer's is on a kernel-style
//! [`waitq::WaitQueue`]: join handles wait on the task's join queue,
//! sockets on their readiness queues, channels, locks and semaphores on
//! theirs, idle worker threads and blocking-pool threads sleep on wait
//! queues, and shutdown closes queues so that every waiter ends with an
//! error instead of hanging. A timer is an entry in the wheel that holds
//! its task's waker and wakes it directly (the kernel's `hrtimer`
//! callback); a wait queue per timer cost 512-576 bytes against tokio's
//! 112 per registered timer (`cargo bench --bench timers`, row `bytes`,
//! measures ours against tokio's).
//!
//! ## Where each piece lives
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
//! | [`AsyncFd`](net::AsyncFd): any descriptor in the reactor, with [`io::Interest`] | `net/async_fd.rs`, `io.rs` (tokio's `io::unix` path) |
//! | [`fs`]: files and directories on the blocking pool | `fs.rs`, `fs/` |
//! | [`process`]: child processes, their exits and pipes in the reactor | `process.rs`, `process/` (`pidfd.rs`: exits as pidfds; `reaper.rs`: the `SIGCHLD` fallback and orphans) |
//! | signals routed to tasks' waits, and any signal as a stream ([`signal::unix`]) | `signal.rs`, `signal/` (`unix.rs` for the streams) |
//! | task-local values ([`task_local!`]) | `task/task_local.rs` |
//! | `waitrt::hyper` (feature `hyper`): hyper's executor, timer and I/O glue | `hyper.rs`, `hyper/` |
//! | the deterministic test toolkit | [`test_util`] |
//! | `!Send` tasks: [`LocalSet`](task::LocalSet), [`spawn_local`](task::spawn_local) | `task/local.rs` |
//! | the [`#[test]`](macro@test) and [`#[main]`](macro@main) attributes | the `waitrt-macros` crate (`macros/`) |
//!
//! ## Audited `unsafe`
//!
//! `unsafe` is denied crate-wide with six audited exceptions, each block
//! with its `SAFETY` invariant:
//!
//! - the oneshot's cells (`sync/oneshot.rs`): the value and the
//!   receiver's waker sit in `UnsafeCell`s whose owner (sender or
//!   receiver) one atomic state word decides, as tokio's oneshot, with
//!   `Send`/`Sync` impls bounded as tokio's. A send and a receive that
//!   sleeps are two read-modify-writes of that word instead of three
//!   holds of a mutex: `oneshot/ct` went from 0.76x tokio's to parity
//!   (`cargo bench --bench sync`);
//!
//! - the sleep slots (`obs.rs`): a task's poll makes its slot waitq's
//!   current slot, and a dump turns the slot's site and queue name
//!   (stored as raw pointers, from `&'static` values, under a sequence
//!   count) back into references. A
//!   sleep is then a few plain stores where the registry's shared map took
//!   two locks and a hash insert: a ping-pong ran 1.04x instead of 1.6x
//!   its time without the registry ([`Builder::wait_registry`];
//!   `cargo bench --bench runtime`, row `ping_pong/ct`, registry on (the
//!   default) against `RT_BENCH_WAIT_REGISTRY=0`, commit `cb65d4b`);
//! - the task cell (`task/raw.rs`): a task's future is pinned in place
//!   inside the task allocation (one allocation per spawn instead of two),
//!   and its stage (future, then output) sits in an `UnsafeCell` whose
//!   access the task's state word serializes instead of a mutex (four or
//!   five fewer lock round trips per task);
//! - `TCP_INQ` reads (`net/tcp/inq.rs`, Linux only): `setsockopt` and
//!   `recvmsg` with a control message, which `std` does not expose, so a
//!   message-sized read learns that it emptied the receive queue and saves
//!   the `recv` that would only return `WouldBlock`; the same module's
//!   `recv` into memory that may be uninitialised, for the next item;
//! - hyper's reads (`hyper/io.rs`, feature `hyper`, Linux only): a
//!   [`TcpStream`](net::TcpStream) wrapped in `hyper::Io`
//!   reads straight into hyper's uninitialised read buffer (`ReadBufCursor::as_mut`,
//!   then `advance` by what `recv` wrote) instead of through a scratch
//!   buffer and a copy: about 190 fewer instructions per HTTP request
//!   (callgrind, `benches/http.rs` server under `wrk -c64`), the copy
//!   hyper-util's `TokioIo` also avoids;
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
//! ## Cooperative budget
//!
//! Every task poll gets 128 units of [`waitq::coop`] budget; each wait that
//! makes progress spends one, and a wait that finds the budget spent yields
//! (wakes its task and returns `Pending`), so one busy task cannot starve
//! the others. CPU loops can call [`sync::coop::consume_budget`].
//!
//! ## Task signals
//!
//! Every task can be interrupted or killed through its handle
//! ([`JoinHandle::interrupt`](task::JoinHandle::interrupt),
//! [`kill`](task::JoinHandle::kill)); the task's
//! [`signals()`](task::signals) are the [`waitq::SignalSource`] its
//! `_interruptible` and `_killable` waits read, exactly as in the kernel.
//!
//! ## A wait queue, by hand
//!
//! ```
//! use waitrt::sync::WaitQueue;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! let rt = waitrt::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! rt.block_on(async {
//!     let queue = Arc::new(WaitQueue::new());
//!     let ready = Arc::new(AtomicBool::new(false));
//!     let waiter = {
//!         let (queue, ready) = (queue.clone(), ready.clone());
//!         waitrt::spawn(async move {
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
pub mod guide;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod io;
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

// `#[waitrt::main]` and `#[waitrt::test]`; their docs are in the
// `waitrt-macros` crate and show here.
pub use waitrt_macros::{main, test};

// Inside this crate the attributes take `crate = "crate"` (the crate's own
// code says `crate::`, as everywhere else in it).
#[cfg(test)]
mod test_child;

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
