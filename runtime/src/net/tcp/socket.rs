//! [`TcpSocket`]: a TCP socket not yet connected or listening, to set
//! options on (and bind) before [`connect`](TcpSocket::connect) or
//! [`listen`](TcpSocket::listen).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{TcpListener, TcpStream};

/// `connect(2)` on a non-blocking socket answers "in progress" and goes on
/// in the kernel; writable readiness says when it is done.
#[cfg(any(target_os = "linux", target_os = "android"))]
const EINPROGRESS: i32 = libc::EINPROGRESS;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const EINPROGRESS: i32 = 36; // the BSDs' and macOS's value

/// A TCP socket before it connects or listens: set options and bind it,
/// then turn it into a [`TcpStream`] with [`connect`](Self::connect) or
/// into a [`TcpListener`] with [`listen`](Self::listen). The options stay
/// on the stream or listener (and listeners pass most of them on to the
/// connections they accept, as the kernel does).
///
/// Use it where [`TcpStream::connect`] and [`TcpListener::bind`] decide
/// too much for you: `SO_REUSEPORT` to run several listeners on one port,
/// a chosen backlog, buffer sizes set before the handshake (the window
/// scale is fixed then), or a client bound to a chosen local address.
///
/// As tokio's `TcpSocket`; the options are `setsockopt(2)` /
/// `getsockopt(2)` calls, made at once.
///
/// # Examples
///
/// A listener with `SO_REUSEPORT` and a backlog of 1,024, and a client
/// that sets `TCP_NODELAY` before it connects:
///
/// ```
/// use waitrt::net::TcpSocket;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let socket = TcpSocket::new_v4()?;
///     socket.set_reuseaddr(true)?;
///     socket.set_reuseport(true)?;
///     socket.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = socket.listen(1024)?;
///
///     let client = TcpSocket::new_v4()?;
///     client.set_nodelay(true)?;
///     let stream = client.connect(listener.local_addr()?).await?;
///     assert!(stream.nodelay()?);
///     let (_server, peer) = listener.accept().await?;
///     assert_eq!(peer, stream.local_addr()?);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpSocket {
    inner: Socket,
}

impl TcpSocket {
    /// A new IPv4 TCP socket (`socket(AF_INET, SOCK_STREAM)`, non-blocking
    /// and close-on-exec).
    ///
    /// # Errors
    ///
    /// As `socket(2)` (for example `EMFILE` when out of descriptors).
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket (`socket(AF_INET6, SOCK_STREAM)`).
    ///
    /// # Errors
    ///
    /// As `socket(2)`.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    fn new(domain: Domain) -> io::Result<TcpSocket> {
        let inner = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
        Ok(TcpSocket { inner })
    }

    /// Takes a std stream's socket, to set options on it (it is switched
    /// to non-blocking). It is usually not connected yet, since a
    /// connected socket can only be listened on or connected again, which
    /// fails.
    ///
    /// # Errors
    ///
    /// If switching to non-blocking mode fails.
    pub fn from_std_stream(stream: std::net::TcpStream) -> io::Result<TcpSocket> {
        stream.set_nonblocking(true)?;
        Ok(TcpSocket {
            inner: Socket::from(stream),
        })
    }

    /// Sets `SO_KEEPALIVE`: the kernel probes an idle connection and
    /// fails it if the peer has gone.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.inner.set_keepalive(keepalive)
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.inner.keepalive()
    }

    /// Sets `SO_REUSEADDR`: bind to a local address that a closed
    /// connection still holds in `TIME_WAIT` (servers set it so that a
    /// restart can bind at once).
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.inner.set_reuse_address(reuseaddr)
    }

    /// Whether `SO_REUSEADDR` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets (of one user), each with it
    /// set, may bind the same address and port; the kernel spreads
    /// incoming connections over their listeners.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.inner.set_reuse_port(reuseport)
    }

    /// Whether `SO_REUSEPORT` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.inner.reuse_port()
    }

    /// Sets `SO_SNDBUF`, the kernel's send buffer. Linux doubles the value
    /// (for its bookkeeping) and clamps it to `net.core.wmem_max`, so
    /// [`send_buffer_size`](Self::send_buffer_size) reads back twice what
    /// was set.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_send_buffer_size(to_usize(size))
    }

    /// `SO_SNDBUF`, as the kernel holds it.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.inner.send_buffer_size().map(to_u32)
    }

    /// Sets `SO_RCVBUF`, the kernel's receive buffer (doubled, and clamped
    /// to `net.core.rmem_max`, as the send buffer is). Set it before
    /// connecting or listening: the TCP window scale is agreed in the
    /// handshake.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_recv_buffer_size(to_usize(size))
    }

    /// `SO_RCVBUF`, as the kernel holds it.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.inner.recv_buffer_size().map(to_u32)
    }

    /// Sets `SO_LINGER`. `Some(t)`: closing the connection tries to send
    /// what is queued for up to `t` (a blocking `close(2)`: keep it short,
    /// it stalls the thread that drops the stream); `Some(Duration::ZERO)`
    /// resets the connection on close (RST, no `TIME_WAIT`). `None`, the
    /// default: close at once and let the kernel send the rest.
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// `SO_LINGER` (whole seconds: the kernel keeps no finer value).
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.inner.linger()
    }

    /// Sets `TCP_NODELAY` (no Nagle: small writes leave at once).
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp_nodelay()
    }

    /// Binds to `addr` (`bind(2)`); port 0 picks a free port, which
    /// [`local_addr`](Self::local_addr) then tells. A client binds to
    /// choose its source address; unbound, the kernel picks at connect.
    ///
    /// # Errors
    ///
    /// As `bind(2)`: `AddrInUse`, `AddrNotAvailable`, or `InvalidInput`
    /// for an address of the other family.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&SockAddr::from(addr))
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket address"))
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    ///
    /// # Errors
    ///
    /// If reading the option fails.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Connects to `addr` and gives the connected [`TcpStream`], with the
    /// options set on this socket.
    ///
    /// # Errors
    ///
    /// As `connect(2)` (for example `ConnectionRefused`), or an error
    /// outside a runtime with I/O enabled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the socket and abandons the connection
    /// (the kernel resets it if the handshake had completed). The socket
    /// was moved into the call, so a new attempt needs a new socket.
    #[track_caller]
    pub fn connect(
        self,
        addr: SocketAddr,
    ) -> impl std::future::Future<Output = io::Result<TcpStream>> {
        // The wait is listed at our caller's site.
        let site = std::panic::Location::caller();
        async move {
            match self.inner.connect(&SockAddr::from(addr)) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
                Err(e) => return Err(e),
            }
            let stream = std::net::TcpStream::from(self.inner);
            TcpStream::connected(mio::net::TcpStream::from_std(stream), site).await
        }
    }

    /// Listens (`listen(2)`) with room for `backlog` connections that have
    /// completed the handshake and wait for `accept` (the kernel caps it
    /// at `net.core.somaxconn`). Binds to a free port first if the socket
    /// is not bound.
    ///
    /// # Errors
    ///
    /// As `listen(2)`, or an error outside a runtime with I/O enabled.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        self.inner.listen(backlog)?;
        let listener = std::net::TcpListener::from(self.inner);
        TcpListener::new(mio::net::TcpListener::from_std(listener))
    }
}

fn to_usize(size: u32) -> usize {
    usize::try_from(size).unwrap_or(usize::MAX)
}

fn to_u32(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl From<TcpSocket> for OwnedFd {
    fn from(socket: TcpSocket) -> OwnedFd {
        socket.inner.into()
    }
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket")
            .field("local", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
