//! The receiving half both flavours share, and its `Recv` future.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use waitq::{Interrupted, Killed, TimedOut};

use super::chan::Chan;
use super::error::TryRecvError;

/// The receiver's state: the channel, its batch of messages taken from
/// the ring but not yet handed out (see `chan.rs`, "The receiver's
/// batch"), and whether its `poll_recv` (or `Stream`) left a waker stored
/// in the channel's one-waiter wait.
pub(super) struct Rx<T> {
    pub(super) chan: Arc<Chan<T>>,
    /// Only ever reached through `&mut self` (`Mutex::get_mut`, no
    /// locking), except by `len`; the `Mutex` keeps the receiver `Sync`
    /// for any `T: Send`, as the ring's own lock does.
    local: Mutex<VecDeque<T>>,
    slept: bool,
}

/// Future returned by [`Receiver::recv`](super::Receiver::recv) and
/// [`UnboundedReceiver::recv`](super::UnboundedReceiver::recv).
///
/// # Cancel safety
///
/// Dropping it loses no message: a message is taken only by the poll that
/// returns it.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    chan: &'a Chan<T>,
    local: &'a mut Mutex<VecDeque<T>>,
    /// A poll left its waker stored: a drop takes it back.
    slept: bool,
    /// Where `recv` was called: the wait is listed there.
    site: &'static Location<'static>,
}

// ===== impl Rx =====

impl<T> Rx<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Self {
        Rx {
            chan,
            local: Mutex::new(VecDeque::new()),
            slept: false,
        }
    }

    #[track_caller]
    pub(super) fn recv(&mut self) -> Recv<'_, T> {
        // A waker the receiver's own `poll_recv` left goes first: the new
        // future stores its own.
        self.chan.finish_wait(&mut self.slept);
        Recv {
            chan: &self.chan,
            local: &mut self.local,
            slept: false,
            site: Location::caller(),
        }
    }

    pub(super) async fn recv_many(
        &mut self,
        buffer: &mut Vec<T>,
        limit: usize,
        site: &'static Location<'static>,
    ) -> usize {
        self.chan.finish_wait(&mut self.slept);
        let mut wait = FinishOnDrop {
            chan: &self.chan,
            slept: false,
        };
        let local = batch(&mut self.local);
        std::future::poll_fn(|cx| {
            wait.chan
                .poll_recv_many(local, &mut wait.slept, cx, buffer, limit, site)
        })
        .await
    }

    #[track_caller]
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let local = batch(&mut self.local);
        self.chan
            .poll_recv(local, &mut self.slept, cx, Location::caller())
    }

    pub(super) fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &mut Vec<T>,
        limit: usize,
        site: &'static Location<'static>,
    ) -> Poll<usize> {
        let local = batch(&mut self.local);
        self.chan
            .poll_recv_many(local, &mut self.slept, cx, buffer, limit, site)
    }

    pub(super) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.chan.try_recv(batch(&mut self.local))
    }

    pub(super) async fn recv_interruptible(
        &mut self,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, Interrupted> {
        self.chan
            .recv_interruptible(batch(&mut self.local), site)
            .await
    }

    pub(super) async fn recv_killable(
        &mut self,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, Killed> {
        self.chan.recv_killable(batch(&mut self.local), site).await
    }

    pub(super) async fn recv_timeout(
        &mut self,
        timeout: Duration,
        site: &'static Location<'static>,
    ) -> Result<Option<T>, TimedOut> {
        self.chan
            .recv_timeout(batch(&mut self.local), timeout, site)
            .await
    }

    #[track_caller]
    pub(super) fn blocking_recv(&mut self) -> Option<T> {
        crate::sync::assert_blocking_allowed("blocking_recv");
        self.chan.blocking_recv(batch(&mut self.local))
    }

    #[track_caller]
    pub(super) fn blocking_recv_many(&mut self, buffer: &mut Vec<T>, limit: usize) -> usize {
        crate::sync::assert_blocking_allowed("blocking_recv_many");
        self.chan
            .blocking_recv_many(batch(&mut self.local), buffer, limit)
    }

    /// Live senders (weak ones not counted).
    pub(super) fn sender_strong_count(&self) -> usize {
        self.chan.strong_count()
    }

    /// Live weak senders.
    pub(super) fn sender_weak_count(&self) -> usize {
        self.chan.weak_count()
    }

    /// Messages waiting: the ring's and the batch's.
    /// The room the ring and the batch keep (tests).
    #[cfg(test)]
    pub(super) fn room(&mut self) -> usize {
        self.chan.ring_room() + batch(&mut self.local).capacity()
    }

    pub(super) fn len(&self) -> usize {
        let batched = self
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        self.chan.len() + batched
    }

    pub(super) fn close(&mut self) {
        self.chan.close_rx();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.chan.is_rx_closed() || self.chan.strong_count() == 0
    }
}

// Nothing in the receiver is pinned (`VecDeque<T>` is `Unpin` only for
// `T: Unpin`, but the messages are never pinned in place).
impl<T> Unpin for Rx<T> {}

impl<T> Drop for Rx<T> {
    fn drop(&mut self) {
        self.chan.finish_wait(&mut self.slept);
        self.chan.drop_rx();
    }
}

impl<T> std::fmt::Debug for Rx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chan.fmt(f)
    }
}

// ===== impl Recv =====

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        this.chan
            .poll_recv(batch(this.local), &mut this.slept, cx, this.site)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        self.chan.finish_wait(&mut self.slept);
    }
}

impl<T> std::fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.slept)
            .finish()
    }
}

/// A wait of `recv_many`'s: takes back its stored waker if dropped.
struct FinishOnDrop<'a, T> {
    chan: &'a Chan<T>,
    slept: bool,
}

impl<T> Drop for FinishOnDrop<'_, T> {
    fn drop(&mut self) {
        self.chan.finish_wait(&mut self.slept);
    }
}

/// The batch, reached through `&mut` without locking.
fn batch<T>(local: &mut Mutex<VecDeque<T>>) -> &mut VecDeque<T> {
    local.get_mut().unwrap_or_else(PoisonError::into_inner)
}
