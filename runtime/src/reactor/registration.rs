//! A source registered with the reactor, and the two ways a task waits for
//! it: `poll_*` (one stored waiter per direction, for hand-written futures
//! and the `futures::io` traits) and `async` (one wait entry per call, so
//! many tasks can wait on one socket and each wake reaches one of them).
//!
//! Every operation follows one loop: wait until the direction is ready,
//! try the syscall, and on `WouldBlock` clear the readiness (only if no
//! newer event came) and wait again. After any other outcome the wake is
//! passed on to the next sleeper, since the readiness may still hold.

use std::io;
use std::panic::Location;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use mio::Interest;

use super::readiness::{Direction, IoNames, ReadyEvent, ScheduledIo};
use super::{no_reactor_error, shutdown_error, Reactor};

/// What one stream syscall moved: its byte count, and whether the kernel
/// said that emptied its buffer (known only where it reports it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moved {
    pub(crate) bytes: usize,
    pub(crate) drained: bool,
}

impl Moved {
    /// A byte count with nothing more known.
    pub(crate) fn bytes(bytes: usize) -> Moved {
        Moved {
            bytes,
            drained: false,
        }
    }
}

/// A source's registration: its readiness, and (in the reactor's
/// [`ScheduledIo`]) each direction's `poll_*` waiter and async waiters.
#[derive(Debug)]
pub(crate) struct Registration {
    reactor: Arc<Reactor>,
    io: Arc<ScheduledIo>,
    key: usize,
}

impl Registration {
    fn new(
        source: &mut impl mio::event::Source,
        interest: Interest,
        names: IoNames,
    ) -> io::Result<Registration> {
        let scheduler = crate::context::scheduler().ok_or_else(no_reactor_error)?;
        let reactor = scheduler.common().io.clone().ok_or_else(no_reactor_error)?;
        let registered = reactor.register(source, interest, names)?;
        if registered.first {
            // The driver may sleep off the reactor while no source is
            // registered (`park.rs`, "No sources"): from another thread (a
            // multi-thread runtime's `block_on`, a thread in
            // `Handle::enter`) this source's events would go unread.
            scheduler.unpark_driver();
        }
        Ok(Registration {
            reactor,
            io: registered.io,
            key: registered.key,
        })
    }

    fn is_ready(&self, direction: Direction) -> bool {
        self.io.is_shutdown() || self.io.ready_event(direction).is_some()
    }

    /// The readiness after a wait ended; `None` if another task cleared it
    /// in between (wait again).
    fn after_wait(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        if self.io.is_shutdown() {
            return Some(Err(shutdown_error()));
        }
        self.io.ready_event(direction).map(Ok)
    }

    /// Waits (poll style) until `direction` is ready, on the direction's
    /// one-waiter [`RcuWait`](waitq::RcuWait): only the task that polled
    /// last is woken. A ready direction costs no lock. Spends one unit of
    /// the cooperative budget.
    #[track_caller]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        self.poll_ready_at(cx, Location::caller(), direction)
    }

    /// [`poll_ready`](Self::poll_ready), the wait listed at `site`.
    pub(crate) fn poll_ready_at(
        &self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        let wait = self.io.poll_wait(direction);
        loop {
            match wait.poll_wait_event_at(cx, site, || self.is_ready(direction)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_closed)) => return Poll::Ready(Err(shutdown_error())),
                Poll::Ready(Ok(())) => {
                    // `None`: another task cleared the readiness in
                    // between; the next step sleeps (or spends the budget).
                    if let Some(result) = self.after_wait(direction) {
                        return Poll::Ready(result);
                    }
                }
            }
        }
    }

    /// Waits (async) until `direction` is ready; every caller has its own
    /// exclusive wait entry, listed at `site` (a socket method's caller).
    pub(crate) async fn ready_at(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
    ) -> io::Result<ReadyEvent> {
        loop {
            let queue = self.io.queue(direction);
            if queue
                .wait_event_exclusive(|| self.is_ready(direction))
                .at(site)
                .await
                .is_err()
            {
                return Err(shutdown_error());
            }
            if let Some(result) = self.after_wait(direction) {
                return result;
            }
        }
    }

    /// Clears `direction`'s readiness seen as `seen` (unless a newer event
    /// came): for `AsyncFd`'s guard, whose caller saw `WouldBlock`.
    pub(crate) fn clear_readiness(&self, seen: ReadyEvent, direction: Direction) {
        self.io.clear_readiness(seen, direction);
    }

    /// Passes a wake on to the next sleeper of `direction` (the readiness
    /// may still hold): for `AsyncFd`'s guard, dropped without a clear.
    pub(crate) fn pass_on(&self, direction: Direction) {
        self.io.pass_on(direction);
    }

    /// The outcome of one syscall attempt after readiness `seen`: `None`
    /// to wait again (it would block), `Some` to return.
    fn finish<R>(
        &self,
        seen: ReadyEvent,
        direction: Direction,
        result: io::Result<R>,
    ) -> Option<io::Result<R>> {
        match result {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.io.clear_readiness(seen, direction);
                None
            }
            result => {
                self.io.pass_on(direction);
                Some(result)
            }
        }
    }

    /// Poll-style I/O: `op` is tried whenever `direction` is ready.
    #[track_caller]
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let seen = ready!(self.poll_ready(cx, direction))?;
            if let Some(result) = self.finish(seen, direction, op()) {
                return Poll::Ready(result);
            }
        }
    }

    /// Poll-style I/O on a stream socket (TCP, Unix stream), where `op`
    /// moves up to `requested` bytes (for a vectored call, what the
    /// buffers one syscall takes can hold: see `vectored_len`). A
    /// transfer shorter than asked means the kernel buffer was drained
    /// (read) or filled (write) at that moment, and so does one the
    /// kernel reported as draining it (a TCP read with `TCP_INQ`): the
    /// readiness is cleared now, sparing the next call a syscall that
    /// would only say `WouldBlock` (one `recv` per round trip on each side
    /// of a request/response exchange). An edge that arrives later has a
    /// newer tick and survives the clear.
    #[track_caller]
    pub(crate) fn poll_stream_io(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        requested: usize,
        op: impl FnMut() -> io::Result<Moved>,
    ) -> Poll<io::Result<usize>> {
        self.poll_stream_io_at(cx, Location::caller(), direction, requested, op)
    }

    /// [`poll_stream_io`](Self::poll_stream_io), the wait listed at `site`.
    pub(crate) fn poll_stream_io_at(
        &self,
        cx: &mut Context<'_>,
        site: &'static Location<'static>,
        direction: Direction,
        requested: usize,
        mut op: impl FnMut() -> io::Result<Moved>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let seen = ready!(self.poll_ready_at(cx, site, direction))?;
            match op() {
                Ok(moved) if moved.bytes > 0 && (moved.bytes < requested || moved.drained) => {
                    self.io.clear_readiness(seen, direction);
                    return Poll::Ready(Ok(moved.bytes));
                }
                result => {
                    let result = result.map(|moved| moved.bytes);
                    if let Some(result) = self.finish(seen, direction, result) {
                        return Poll::Ready(result);
                    }
                }
            }
        }
    }

    /// Async I/O: `op` is tried whenever `direction` is ready, the wait
    /// listed at `site` (the caller of a socket's or a child's method).
    pub(crate) async fn async_io_at<R>(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let seen = self.ready_at(site, direction).await?;
            if let Some(result) = self.finish(seen, direction, op()) {
                return result;
            }
        }
    }

    /// One attempt without waiting: `WouldBlock` if not ready.
    pub(crate) fn try_io<R>(
        &self,
        direction: Direction,
        op: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        if self.io.is_shutdown() {
            return Err(shutdown_error());
        }
        let Some(seen) = self.io.ready_event(direction) else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        match self.finish(seen, direction, op()) {
            Some(result) => result,
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// A mio source with its registration; dropping it deregisters the source
/// before closing it.
#[derive(Debug)]
pub(crate) struct PollEvented<E: mio::event::Source> {
    source: Option<E>,
    registration: Registration,
}

impl<E: mio::event::Source> PollEvented<E> {
    /// Registers `source` with the current runtime's reactor, for both
    /// directions.
    pub(crate) fn new(source: E, names: IoNames) -> io::Result<Self> {
        Self::with_interest(source, Interest::READABLE | Interest::WRITABLE, names)
    }

    /// Registers `source` for `interest`; its wait queues are named
    /// `names` (in dumps and reports).
    pub(crate) fn with_interest(
        mut source: E,
        interest: Interest,
        names: IoNames,
    ) -> io::Result<Self> {
        let registration = Registration::new(&mut source, interest, names)?;
        Ok(PollEvented {
            source: Some(source),
            registration,
        })
    }

    /// [`with_interest`](Self::with_interest) for a source known not to
    /// be ready when registered (a running child's pidfd, its new output
    /// pipes): the first wait sleeps until the reactor reports an edge
    /// instead of trying the syscall first, which could only say
    /// `WouldBlock`. Nothing is lost when the source was ready after all:
    /// epoll reports a ready source as it is added, and a readiness
    /// already reported is kept.
    pub(crate) fn with_interest_unready(
        source: E,
        interest: Interest,
        names: IoNames,
    ) -> io::Result<Self> {
        let this = Self::with_interest(source, interest, names)?;
        for direction in [Direction::Read, Direction::Write] {
            this.registration
                .io
                .clear_readiness(ReadyEvent::FRESH, direction);
        }
        Ok(this)
    }

    /// The source itself, for its syscalls.
    pub(crate) fn source(&self) -> &E {
        self.source
            .as_ref()
            .expect("the source is present until drop or into_inner")
    }

    /// The source itself, mutably (it stays registered).
    pub(crate) fn source_mut(&mut self) -> &mut E {
        self.source
            .as_mut()
            .expect("the source is present until drop or into_inner")
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Whether `direction` is marked ready now (for tests).
    #[cfg(test)]
    pub(crate) fn is_ready(&self, direction: Direction) -> bool {
        self.registration.is_ready(direction)
    }

    /// Waits until `direction` would not block (or the runtime is gone),
    /// the wait listed at `site`: every socket type's `readable()` /
    /// `writable()`.
    ///
    /// The wait is an exclusive one, as every I/O wait here, but it moves
    /// no data: its caller may return, or await something else, before it
    /// reads or writes (if ever), so the wake it took is passed on to the
    /// next sleeper of `direction` now, as a syscall that made progress
    /// would (`finish`). Without that, the readiness it saw stayed set and
    /// the later edges, which wake only on a change, woke nobody: a task
    /// that returned from `readable()` without reading left the socket's
    /// other readers asleep for good. Kernel: a `poll()` wait is
    /// non-exclusive; tokio wakes every readiness waiter.
    pub(crate) async fn ready_at(
        &self,
        site: &'static Location<'static>,
        direction: Direction,
    ) -> io::Result<()> {
        self.registration.ready_at(site, direction).await?;
        self.registration.pass_on(direction);
        Ok(())
    }

    /// Deregisters and hands the source back.
    pub(crate) fn into_inner(mut self) -> E {
        let mut source = self
            .source
            .take()
            .expect("the source is present until drop or into_inner");
        self.registration.deregister(&mut source);
        source
    }
}

impl<E: mio::event::Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let Some(mut source) = self.source.take() {
            self.registration.deregister(&mut source);
        }
    }
}

impl Registration {
    /// Deregisters `source`, and ends the `poll_*` callers' sleeps: a
    /// `poll_read` that returned `Pending` keeps its waker stored, and its
    /// sleep listed in its task's slot, until something ends it; the
    /// socket going away is that end. (Left, the task that polled was
    /// listed on `tcp_stream_readable` for as long as it lived, and its
    /// later sleeps went to the registry's shared map: an independent
    /// review.)
    fn deregister(&self, source: &mut impl mio::event::Source) {
        self.io.poll_wait(Direction::Read).finish_wait();
        self.io.poll_wait(Direction::Write).finish_wait();
        self.reactor.deregister(source, self.key);
    }
}
