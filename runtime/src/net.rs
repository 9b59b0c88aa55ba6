//! Sockets over the runtime's reactor: TCP, UDP and Unix-domain, each
//! implementing [`futures_io::AsyncRead`] / [`futures_io::AsyncWrite`] as
//! fits, with `poll_*` methods for hand-written futures and `try_*`
//! methods that never wait.
//!
//! The modules: [`tcp`] ([`TcpListener`], [`TcpStream`], and
//! [`TcpSocket`] for options set before connecting or listening), [`udp`]
//! ([`UdpSocket`]) and [`unix`] ([`UnixListener`], [`UnixStream`],
//! [`UnixDatagram`], and the rule for removing socket files).
//! [`lookup_host`] resolves a host name on the blocking pool, as every
//! constructor that takes a [`ToSocketAddrs`] does. [`AsyncFd`] registers
//! any other descriptor (a pipe, a device, another crate's socket) with
//! the reactor.
//!
//! Readiness per direction is a [`WaitQueue`](crate::sync::WaitQueue):
//! a task that finds its socket not ready sleeps on the socket's reader
//! or writer queue as an exclusive waiter, so one readiness edge wakes one
//! task, and a task that made progress hands the wake on (see the
//! reactor's docs). Many tasks can therefore share one socket (an
//! `Arc<UdpSocket>`, a `&TcpListener`) and each wake reaches one of them.
//! `readable()` and `writable()` move no data, so they hand the wake on as
//! they return: a task that returns from one and then reads nothing (or
//! awaits something else first) holds up no other task of the socket.
//!
//! Sockets must be created inside a runtime built with
//! [`enable_io`](crate::Builder::enable_io) (or `enable_all`); elsewhere
//! their constructors return an error. After the runtime shuts down, every
//! pending and later operation fails with an error instead of hanging.
//!
//! # Examples
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use waitrt::net::{TcpListener, TcpStream};
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = waitrt::spawn(async move {
//!         let (mut conn, _) = listener.accept().await?;
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf).await?;
//!         conn.write_all(&buf).await?; // echo
//!         std::io::Result::Ok(())
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo).await?;
//!     assert_eq!(&echo, b"hello");
//!     server.await.unwrap()
//! })
//! .unwrap();
//! ```

mod addr;
pub(crate) mod async_fd;
pub mod tcp;
pub mod udp;
pub mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use async_fd::{AsyncFd, AsyncFdReadyGuard, TryIoError};
pub use tcp::{is_resource_exhaustion, AcceptBackoff, TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
