//! UDP: [`UdpSocket`], a datagram socket that many tasks can share.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::Location;
use std::task::{Context, Poll};

use crate::net::addr::{each_addr, resolve_first, ToSocketAddrs};
use crate::reactor::readiness::{Direction, IoNames};
use crate::reactor::PollEvented;

/// A UDP socket. Every operation takes `&self`: share one socket between
/// tasks in an `Arc`; each datagram goes to exactly one receiving task,
/// and a datagram is never lost because a waiting future was dropped.
///
/// Unconnected, use [`send_to`](Self::send_to) and
/// [`recv_from`](Self::recv_from); after [`connect`](Self::connect), use
/// [`send`](Self::send) and [`recv`](Self::recv), and the kernel drops
/// datagrams from any other sender. A datagram longer than the receive
/// buffer is truncated: the rest of it is discarded.
///
/// # Examples
///
/// ```
/// use waitrt::net::UdpSocket;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct UdpSocket {
    io: PollEvented<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`, trying each address it resolves to in turn. Port
    /// 0 picks a free port.
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
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(&addr, |addr| async move {
            UdpSocket::new(mio::net::UdpSocket::bind(addr)?)
        })
        .await
    }

    fn new(socket: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: PollEvented::new(socket, IoNames::UDP)?,
        })
    }

    /// Wraps a bound std socket (it is switched to non-blocking).
    ///
    /// # Errors
    ///
    /// Outside a runtime with I/O enabled, or if registration fails.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        UdpSocket::new(mio::net::UdpSocket::from_std(socket))
    }

    /// Deregisters the socket and returns it as a *blocking* std socket.
    ///
    /// # Errors
    ///
    /// If switching back to blocking mode fails.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let socket = std::net::UdpSocket::from(OwnedFd::from(self.io.into_inner()));
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    fn source(&self) -> &mio::net::UdpSocket {
        self.io.source()
    }

    /// Sets the default peer: [`send`](Self::send) goes there, and only
    /// its datagrams are received. Tries each address `addr` resolves to
    /// in turn.
    ///
    /// # Errors
    ///
    /// The last address's error, for example an address of the other IP
    /// family.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the socket's peer as
    /// it was: connecting a UDP socket is one call, made after the lookup.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let source = self.source();
        each_addr(&addr, |addr| async move { source.connect(addr) }).await
    }

    /// Sends `buf` as one datagram to the connected peer; returns the
    /// bytes sent.
    ///
    /// # Errors
    ///
    /// As `send(2)`: without [`connect`](Self::connect), an error whose
    /// `raw_os_error()` is `EDESTADDRREQ` ("Destination address
    /// required"; as on tokio, not `NotConnected`), and after an ICMP
    /// error from the peer, `ConnectionRefused`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram is sent whole or not at all, and if the
    /// future is dropped before it completes, nothing was sent.
    #[track_caller]
    pub fn send<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Write, || source.send(buf))
                .await
        }
    }

    /// Receives one datagram from the connected peer into `buf`; a longer
    /// datagram is truncated to `buf.len()`.
    ///
    /// # Errors
    ///
    /// As `recv(2)`, or if the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// datagram was taken from the socket (none is lost).
    #[track_caller]
    pub fn recv<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.recv(buf))
                .await
        }
    }

    /// Sends `buf` as one datagram to `target` (the first address it
    /// resolves to).
    ///
    /// # Errors
    ///
    /// If `target` does not resolve, or as `sendto(2)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a datagram is sent whole or not at all, and if the
    /// future is dropped before it completes, nothing was sent.
    #[track_caller]
    pub fn send_to<'a, A: ToSocketAddrs + 'a>(
        &'a self,
        buf: &'a [u8],
        target: A,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let target = resolve_first(&target).await?;
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Write, || source.send_to(buf, target))
                .await
        }
    }

    /// Receives one datagram and its sender's address; a longer datagram
    /// is truncated to `buf.len()`.
    ///
    /// # Errors
    ///
    /// As `recvfrom(2)`, or if the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no
    /// datagram was taken from the socket (none is lost).
    #[track_caller]
    pub fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.recv_from(buf))
                .await
        }
    }

    /// Like [`recv_from`](Self::recv_from), but the datagram stays queued:
    /// the next receive returns it again.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking consumes nothing.
    #[track_caller]
    pub fn peek_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.peek_from(buf))
                .await
        }
    }

    /// Like [`recv`](Self::recv), but the datagram stays queued: the next
    /// receive returns it again. For a connected socket (tokio's `peek`).
    ///
    /// # Errors
    ///
    /// As `recv`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking consumes nothing.
    #[track_caller]
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || source.peek(buf))
                .await
        }
    }

    /// The sender's address of the next datagram, which stays queued
    /// (tokio's `peek_sender`): waits for one to arrive.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: peeking consumes nothing.
    #[track_caller]
    pub fn peek_sender(&self) -> impl Future<Output = io::Result<SocketAddr>> + '_ {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move {
            let source = self.source();
            self.io
                .registration()
                .async_io_at(site, Direction::Read, || {
                    // An empty buffer: the kernel reports the address and
                    // truncates nothing that stays queued.
                    source.peek_from(&mut []).map(|(_, from)| from)
                })
                .await
        }
    }

    /// [`recv_from`](Self::recv_from) for hand-written futures: only the
    /// task that polled last is woken.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    #[track_caller]
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.recv_from(buf))
    }

    /// [`send_to`](Self::send_to) with a resolved address, for
    /// hand-written futures.
    ///
    /// # Errors
    ///
    /// As `send_to`.
    #[track_caller]
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Write, || source.send_to(buf, target))
    }

    /// [`recv`](Self::recv) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As `recv`.
    #[track_caller]
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || source.recv(buf))
    }

    /// [`send`](Self::send) for hand-written futures.
    ///
    /// # Errors
    ///
    /// As `send`.
    #[track_caller]
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let source = self.source();
        self.io
            .registration()
            .poll_io(cx, Direction::Write, || source.send(buf))
    }

    /// Receives a queued datagram without waiting: `WouldBlock` if none is.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `recv_from`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Read, || source.recv_from(buf))
    }

    /// Sends without waiting: `WouldBlock` if the send buffer is full.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `send_to`.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Write, || source.send_to(buf, target))
    }

    /// [`recv`](Self::recv) without waiting: `WouldBlock` if nothing is
    /// queued.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `recv`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Read, || source.recv(buf))
    }

    /// [`send`](Self::send) without waiting: `WouldBlock` if the send
    /// buffer is full.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or as `send`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let source = self.source();
        self.io
            .registration()
            .try_io(Direction::Write, || source.send(buf))
    }

    /// Waits until a receive would not block. The readiness may be stale,
    /// as tokio's may: a new socket starts out ready, and a datagram may
    /// be gone by the time you receive, so receive with [`try_recv`](Self::try_recv) and wait
    /// again on `WouldBlock` (which clears it).
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. Dropping it consumes no readiness, and a
    /// wake-up it had received passes on to the next waiter; so does one
    /// it completes with (it moves no data).
    #[track_caller]
    pub fn readable<'a>(&'a self) -> impl Future<Output = io::Result<()>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.io.ready_at(site, Direction::Read).await }
    }

    /// Waits until a send would not block.
    ///
    /// # Errors
    ///
    /// If the runtime shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. Dropping it consumes no readiness, and a
    /// wake-up it had received passes on to the next waiter; so does one
    /// it completes with (it moves no data).
    #[track_caller]
    pub fn writable<'a>(&'a self) -> impl Future<Output = io::Result<()>> + 'a {
        // The wait is listed at our caller's site.
        let site = Location::caller();
        async move { self.io.ready_at(site, Direction::Write).await }
    }

    /// The bound address (the real port when bound to port 0).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` without [`connect`](Self::connect).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source().peer_addr()
    }

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast
    /// address.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::set_broadcast`].
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.source().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::broadcast`].
    pub fn broadcast(&self) -> io::Result<bool> {
        self.source().broadcast()
    }

    /// Joins IPv4 multicast group `multiaddr` on the interface with
    /// address `interface` (`UNSPECIFIED`: the kernel picks one).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::join_multicast_v4`] (for example when
    /// no route accepts multicast).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.source().join_multicast_v4(&multiaddr, &interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::leave_multicast_v4`] (for example if the
    /// group was not joined).
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.source().leave_multicast_v4(&multiaddr, &interface)
    }

    /// Joins IPv6 multicast group `multiaddr` on interface index
    /// `interface` (0: the kernel picks one).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::join_multicast_v6`].
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::leave_multicast_v6`].
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source().leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host's own IPv4 multicast
    /// datagrams are looped back to its sockets.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::set_multicast_loop_v4`].
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.source().set_multicast_loop_v4(on)
    }

    /// Whether `IP_MULTICAST_LOOP` is set.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::multicast_loop_v4`].
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.source().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL` (1, the default, keeps datagrams on the
    /// local network).
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::set_multicast_ttl_v4`].
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.source().set_multicast_ttl_v4(ttl)
    }

    /// The `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::multicast_ttl_v4`].
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.source().multicast_ttl_v4()
    }

    /// Sets the IP time-to-live of sent datagrams.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::set_ttl`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// # Errors
    ///
    /// As [`std::net::UdpSocket::ttl`].
    pub fn ttl(&self) -> io::Result<u32> {
        self.source().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), for example an
    /// ICMP port-unreachable after a send.
    ///
    /// # Errors
    ///
    /// If reading the option fails.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.source().as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source().as_fd()
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;
    fn try_from(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_std(socket)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
