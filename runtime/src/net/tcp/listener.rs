//! [`TcpListener`]: accepts TCP connections.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::TcpStream;
use crate::net::addr::{each_addr, ToSocketAddrs};
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// A listening TCP socket. Many tasks may `accept` on one listener (share
/// it by reference or in an `Arc`); each connection goes to one of them.
///
/// # Examples
///
/// ```
/// use waitrt::net::{TcpListener, TcpStream};
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, peer) = listener.accept().await?;
///     assert_eq!(peer, client.local_addr()?);
///     assert_eq!(server.peer_addr()?, client.local_addr()?);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (`SO_REUSEADDR` set, listen backlog 128: mio's
    /// `TcpListener::bind`, which uses std's value), trying each address it
    /// resolves to in turn. Port 0 picks a free port.
    ///
    /// # Errors
    ///
    /// The last address's error (for example `AddrInUse`), or an error
    /// outside a runtime with I/O.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes binds nothing (a host-name
    /// lookup still running on the blocking pool finishes there, unused).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(&addr, |addr| async move {
            TcpListener::new(mio::net::TcpListener::bind(addr)?)
        })
        .await
    }

    pub(super) fn new(listener: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: PollEvented::with_interest(
                listener,
                mio::Interest::READABLE,
                IoNames::TCP_LISTENER,
            )?,
        })
    }

    /// Wraps a bound std listener (it is switched to non-blocking).
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::new(mio::net::TcpListener::from_std(listener))
    }

    /// Deregisters the listener and returns it as a *blocking* std one.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::from(OwnedFd::from(self.io.into_inner()));
        listener.set_nonblocking(false)?;
        Ok(listener)
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    ///
    /// As `accept(2)` (for example when out of file descriptors), or if
    /// the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// connection was accepted; it stays queued for the next `accept`.
    #[track_caller]
    pub fn accept<'a>(&'a self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.io.source();
            let (stream, addr) = self
                .io
                .registration()
                .async_io_at(site, Direction::Read, || source.accept())
                .await?;
            Ok((TcpStream::new(stream)?, addr))
        }
    }

    /// [`accept`](Self::accept) for a server's accept loop: when the
    /// process or the system runs out of resources (see
    /// [`is_resource_exhaustion`]) it pauses accepting instead of spinning.
    ///
    /// Out of descriptors, `accept(2)` fails while the connection stays
    /// queued, so the listener stays readable and a plain loop retries at
    /// once, forever, at full speed. Here the first such error of an
    /// *episode* is returned (log it: once per episode), and every later
    /// call sleeps on the runtime's timer before retrying, silently,
    /// [`AcceptBackoff::MIN`] doubling up to [`AcceptBackoff::MAX`]; a
    /// successful accept ends the episode and resets the pause. Other
    /// errors are returned as they come. Needs a runtime with timers.
    ///
    /// # Errors
    ///
    /// As `accept`, except that resource exhaustion is returned only once
    /// per episode.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe as [`accept`](Self::accept); dropped during a pause, the
    /// `AcceptBackoff` keeps its episode and the pause's end: the next call
    /// sleeps until then (not a whole pause again), so a loop that also
    /// waits on something more frequent (`select!` with a timer) still gets
    /// to accept.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use waitrt::net::{AcceptBackoff, TcpListener};
    ///
    /// # #[allow(dead_code)]
    /// # async fn serve(listener: TcpListener) {
    /// let mut backoff = AcceptBackoff::new();
    /// loop {
    ///     match listener.accept_with_backoff(&mut backoff).await {
    ///         Ok((stream, _peer)) => { waitrt::spawn(async move { drop(stream) }); }
    ///         Err(e) => eprintln!("accept failed: {e}"), // once per episode
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn accept_with_backoff(
        &self,
        backoff: &mut AcceptBackoff,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        // Bounded by the caller: each pass either returns or sleeps.
        loop {
            if let Some(pause) = backoff.pause {
                // The pause ends at a deadline kept in `backoff`, so that a
                // call dropped mid-pause (a `select!` whose other branch
                // ticks more often than the pause) does not start it over:
                // restarted on every call, a pause longer than the tick was
                // never over, and nothing was accepted again.
                let resume_at = *backoff
                    .resume_at
                    .get_or_insert_with(|| crate::time::now() + pause);
                crate::time::sleep_until(resume_at).await;
                backoff.resume_at = None;
                backoff.pause = Some((pause * 2).min(AcceptBackoff::MAX));
            }
            match self.accept().await {
                Ok(ok) => {
                    backoff.pause = None;
                    backoff.resume_at = None;
                    return Ok(ok);
                }
                Err(e) if is_resource_exhaustion(&e) => {
                    backoff.failures += 1;
                    if backoff.pause.is_none() {
                        backoff.pause = Some(AcceptBackoff::MIN);
                        backoff.episodes += 1;
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`accept`](Self::accept) for hand-written futures: only the task
    /// that polled last is woken.
    ///
    /// # Errors
    ///
    /// As `accept`.
    #[track_caller]
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let source = self.io.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.accept())
            .map(|result| {
                let (stream, addr) = result?;
                Ok((TcpStream::new(stream)?, addr))
            })
    }

    /// The connections as a [`Stream`]; it never ends, and yields accept
    /// errors as items.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address (the real port when bound to port 0).
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.source().local_addr()
    }

    /// Sets the IP time-to-live of accepted connections.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpListener::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.source().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As [`std::net::TcpListener::ttl`].
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.source().ttl()
    }
}

/// Whether `e` means the process or system is out of a resource that
/// closing something frees: EMFILE, ENFILE, ENOMEM or ENOBUFS. An accept
/// loop should pause on these rather than retry at once (see
/// [`TcpListener::accept_with_backoff`]).
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    // Linux's values: EMFILE 24, ENFILE 23, ENOMEM 12, ENOBUFS 105.
    matches!(e.raw_os_error(), Some(24 | 23 | 12 | 105)) || e.kind() == io::ErrorKind::OutOfMemory
}

/// The state of [`TcpListener::accept_with_backoff`]: whether an episode
/// of resource exhaustion is under way and how long the next pause is.
/// Keep one per accept loop.
#[derive(Debug, Default, Clone)]
pub struct AcceptBackoff {
    /// The pause before the next accept; `None` outside an episode.
    pause: Option<Duration>,
    /// When the pause under way ends (on the runtime's clock), once a call
    /// has started it.
    resume_at: Option<std::time::Instant>,
    episodes: u64,
    failures: u64,
}

impl AcceptBackoff {
    /// The first pause of an episode.
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// No episode under way.
    pub fn new() -> AcceptBackoff {
        AcceptBackoff::default()
    }

    /// Whether an episode of resource exhaustion is under way.
    pub fn in_episode(&self) -> bool {
        self.pause.is_some()
    }

    /// Episodes so far.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Accepts that failed for lack of resources so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

/// The stream of [`TcpListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|result| Some(result.map(|(stream, _)| stream)))
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.source().as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.source().as_fd()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;
    fn try_from(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(listener)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
