//! Multi-producer, single-consumer channels: [`channel`] (bounded: a
//! sender waits while every slot is taken) and [`unbounded_channel`].
//!
//! The API is tokio's (`tokio::sync::mpsc`), plus the kernel family on
//! the main waits: `_interruptible`, `_killable` and `_timeout` forms of
//! `send`, `reserve` and `recv`, and `blocking_*` forms for
//! plain threads.
//!
//! ```
//! use waitrt::sync::mpsc;
//!
//! let rt = waitrt::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = mpsc::channel(8);
//!     for id in 0..3 {
//!         let tx = tx.clone();
//!         waitrt::spawn(async move { tx.send(id).await.unwrap() });
//!     }
//!     drop(tx); // the channel ends when the last sender is gone
//!     let mut got = Vec::new();
//!     while let Some(id) = rx.recv().await {
//!         got.push(id);
//!     }
//!     got.sort();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```
//!
//! # Contract
//!
//! - **Ending.** When every sender is gone, `recv` returns the buffered
//!   messages and then `None`. When the receiver is dropped or
//!   [`close`](Receiver::close)d, every send and reserve fails with its
//!   value back (senders asleep on a full channel too). After `close`,
//!   buffered messages can still be received, and permits reserved before
//!   it can still send; `recv` returns `None` once both are used up.
//! - **Fairness.** Senders of a full channel are exclusive waiters, woken
//!   oldest first, one per freed slot, and a slot freed while senders
//!   sleep is theirs, as in tokio (whose semaphore hands a released
//!   permit to the queued waiter): while `k` senders sleep (or are woken
//!   and have not taken their slot yet), `k` of the free slots are owed to
//!   them, and a sender arriving then (`try_send`, `try_reserve`, `send`,
//!   `reserve`, the kernel-family and blocking forms) sees only the free
//!   slots beyond those, [`capacity`](Sender::capacity) too. So a task
//!   that refills the channel with `try_send` right after each receive
//!   no longer keeps a sleeping sender waiting: it is served within a
//!   round or two (it waited 100,000 rounds in an audit before). A sender
//!   that was woken and then dropped (cancelled, timed out, interrupted)
//!   hands its wake to the next sleeper, and the slot owed to it is owed
//!   to the next, or free again when nobody sleeps: no slot is lost. As in
//!   tokio, a woken sender whose task does not poll it again keeps its
//!   slot from newcomers until it does (or is dropped). A
//!   [`reserve_many`](Sender::reserve_many) short of slots after its turn
//!   joins a line that every slot freed from then on goes to first: no
//!   later sender overtakes it.
//! - **Cancel safety.** A dropped `recv` loses no message; a dropped
//!   `send` sends nothing (its value is dropped with it) and gives its
//!   place away; a dropped `reserve` (or `reserve_many`, which gives back
//!   the slots it took in line) reserves nothing, and a dropped
//!   [`Permit`] (or [`PermitIterator`]) frees its slots.
//! - **Panicking wakers.** A receive that frees a slot wakes a sleeping
//!   sender; if that sender's waker panics, the receiver still gets its
//!   message, and the panic goes to the runtime's
//!   [`UnhandledPanic`](crate::UnhandledPanic) policy (it does not unwind
//!   through the receive).
//! - **Budget.** Every completed `send`, `reserve` or `recv` spends a unit
//!   of the task's cooperative budget, so a loop over a channel that is
//!   never empty (or never full) still lets other tasks run.
//! - **Memory.** A bounded channel allocates its ring when it is created
//!   (up to 1,024 slots; a larger one grows up to its capacity on demand
//!   and keeps it), the receiver a batch of up to 64 messages at its first
//!   receives, and nothing per message after that.
//!
//! # Kernel counterparts
//!
//! There is no mpsc channel in the kernel; the nearest is a `kfifo` with a
//! wait queue on each side (a pipe: `pipe_read` sleeps in
//! `wait_event_interruptible(pipe->rd_wait, ...)`, `pipe_write` in
//! `wait_event_interruptible_exclusive(pipe->wr_wait, ...)`). This is
//! that: one ring and its accounting under a short lock, the receiver a
//! non-exclusive waiter, senders exclusive ones. A send takes one lock
//! hold; the receiver moves up to 64 messages per lock hold into a batch
//! of its own. The wake protocol (wake only when somebody sleeps, and why
//! no wake-up is lost) is written at the top of `mpsc/chan.rs`.

mod bounded;
mod chan;
pub mod error;
mod rx;
mod unbounded;

pub use bounded::{channel, OwnedPermit, Permit, PermitIterator, Receiver, Sender, WeakSender};
pub use rx::Recv;
pub use unbounded::{unbounded_channel, UnboundedReceiver, UnboundedSender, WeakUnboundedSender};
