//! `TcpSocket` (options before connect/listen), `TcpStream`'s keepalive
//! and linger, `lookup_host`, and `AsyncFd` (over a Unix socket pair), on
//! real loopback sockets, on every scheduler flavour through `rt_test!`.
//!
//! Every option is read back twice: through our getter, and through
//! `getsockopt(2)` on the descriptor directly (socket2's `SockRef`, or
//! std's own getter), so a setter that sets the wrong option is caught
//! even if its getter reads the same wrong one.
#[macro_use]
mod support;

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use socket2::SockRef;
use waitrt::net::{lookup_host, AsyncFd, TcpListener, TcpSocket, TcpStream};

/// A watchdog for an await: far longer than any test needs.
const WATCHDOG: Duration = Duration::from_secs(30);

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A skipped check: under `CI=true` it fails (CI must run everything);
/// elsewhere the reason goes straight to stderr.
#[track_caller]
fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot skip under CI=true: {reason}");
    }
    let _ = writeln!(io::stderr().lock(), "SKIP: {reason}");
}

rt_test! {
    fn every_option_reads_back_through_getsockopt(rt) {
        rt.block_on(async {
            let socket = TcpSocket::new_v4().unwrap();
            let raw = SockRef::from(&socket);
            // Defaults first, so that each set below changes something.
            assert!(!socket.reuseaddr().unwrap() && !raw.reuse_address().unwrap());
            assert!(!socket.reuseport().unwrap() && !raw.reuse_port().unwrap());
            assert!(!socket.keepalive().unwrap() && !raw.keepalive().unwrap());
            assert!(!socket.nodelay().unwrap() && !raw.tcp_nodelay().unwrap());
            assert_eq!(socket.linger().unwrap(), None);
            assert_eq!(raw.linger().unwrap(), None);

            socket.set_reuseaddr(true).unwrap();
            assert!(socket.reuseaddr().unwrap() && raw.reuse_address().unwrap());
            // Only SO_REUSEADDR so far: each setter sets its own option.
            assert!(!raw.reuse_port().unwrap());
            socket.set_reuseport(true).unwrap();
            assert!(socket.reuseport().unwrap() && raw.reuse_port().unwrap());
            socket.set_keepalive(true).unwrap();
            assert!(socket.keepalive().unwrap() && raw.keepalive().unwrap());
            socket.set_nodelay(true).unwrap();
            assert!(socket.nodelay().unwrap() && raw.tcp_nodelay().unwrap());
            socket.set_linger(Some(Duration::from_secs(3))).unwrap();
            assert_eq!(socket.linger().unwrap(), Some(Duration::from_secs(3)));
            assert_eq!(raw.linger().unwrap(), Some(Duration::from_secs(3)));

            // Linux doubles SO_SNDBUF / SO_RCVBUF; both sides read the
            // kernel's value, and the two buffers are set independently.
            socket.set_send_buffer_size(64 * 1024).unwrap();
            let send = socket.send_buffer_size().unwrap();
            assert_eq!(send as usize, raw.send_buffer_size().unwrap());
            assert!(send >= 64 * 1024, "SO_SNDBUF {send}");
            socket.set_recv_buffer_size(48 * 1024).unwrap();
            let recv = socket.recv_buffer_size().unwrap();
            assert_eq!(recv as usize, raw.recv_buffer_size().unwrap());
            assert!(recv >= 48 * 1024, "SO_RCVBUF {recv}");
            assert_eq!(raw.send_buffer_size().unwrap(), send as usize);
            assert_ne!(send, recv, "one setter changed the other buffer");
            assert!(socket.take_error().unwrap().is_none());

            // The options stay on the listener.
            socket.bind(loopback(0)).unwrap();
            let addr = socket.local_addr().unwrap();
            assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
            assert_ne!(addr.port(), 0);
            let listener = socket.listen(64).unwrap();
            assert_eq!(listener.local_addr().unwrap(), addr);
            let raw = SockRef::from(&listener);
            assert!(raw.reuse_address().unwrap() && raw.reuse_port().unwrap());
            assert_eq!(raw.recv_buffer_size().unwrap(), recv as usize);

            // And on the connected stream.
            let client = TcpSocket::new_v4().unwrap();
            client.set_nodelay(true).unwrap();
            client.set_keepalive(true).unwrap();
            client.set_linger(Some(Duration::from_secs(1))).unwrap();
            let stream = client.connect(addr).await.unwrap();
            assert!(stream.nodelay().unwrap());
            let raw = SockRef::from(&stream);
            assert!(raw.tcp_nodelay().unwrap() && raw.keepalive().unwrap());
            assert!(stream.keepalive().unwrap());
            assert_eq!(raw.linger().unwrap(), Some(Duration::from_secs(1)));
            let (server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, stream.local_addr().unwrap());
            // The accepted end inherits the listener's options (Linux
            // copies the listener's socket): set there, read back here.
            assert!(server.nodelay().unwrap() && server.keepalive().unwrap());
            assert_eq!(server.linger().unwrap(), Some(Duration::from_secs(3)));
        });
    }
}

rt_test! {
    fn stream_keepalive_and_linger_read_back(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback(0)).await.unwrap();
            let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let raw = SockRef::from(&stream);
            assert!(!stream.keepalive().unwrap() && !raw.keepalive().unwrap());
            stream.set_keepalive(true).unwrap();
            assert!(stream.keepalive().unwrap() && raw.keepalive().unwrap());
            stream.set_keepalive(false).unwrap();
            assert!(!stream.keepalive().unwrap() && !raw.keepalive().unwrap());
            assert_eq!(stream.linger().unwrap(), None);
            stream.set_linger(Some(Duration::from_secs(7))).unwrap();
            assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(7)));
            assert_eq!(raw.linger().unwrap(), Some(Duration::from_secs(7)));
            stream.set_linger(None).unwrap();
            assert_eq!(raw.linger().unwrap(), None);
            // Through std's own getter too (a second, independent reader).
            let std_view = stream.into_std().unwrap();
            assert_eq!(SockRef::from(&std_view).linger().unwrap(), None);
            assert!(!std_view.nodelay().unwrap());
        });
    }
}

rt_test! {
    /// A zero linger makes dropping the stream reset the connection: the
    /// peer's read fails with `ConnectionReset` instead of reading EOF.
    fn zero_linger_resets_on_drop(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback(0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Without linger: a clean EOF.
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            drop(stream);
            let mut buf = [0; 8];
            assert_eq!(server.read(&mut buf).await.unwrap(), 0);
            // With a zero linger: RST.
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_linger(Some(Duration::ZERO)).unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            drop(stream);
            let err = server.read(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        });
    }
}

rt_test! {
    /// Two listeners with `SO_REUSEPORT` share one port, and the kernel
    /// hands each connection to one of them; without it, the second bind
    /// fails.
    fn reuseport_lets_two_listeners_share_a_port(rt) {
        rt.block_on(async {
            let first = TcpSocket::new_v4().unwrap();
            first.set_reuseport(true).unwrap();
            first.bind(loopback(0)).unwrap();
            let addr = first.local_addr().unwrap();
            let first = first.listen(128).unwrap();

            let refused = TcpSocket::new_v4().unwrap();
            let err = refused.bind(addr).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");

            let second = TcpSocket::new_v4().unwrap();
            second.set_reuseport(true).unwrap();
            second.bind(addr).unwrap();
            let second = second.listen(128).unwrap();
            assert_eq!(second.local_addr().unwrap(), addr);

            // Every connection reaches one of the two; with 64 of them both
            // get some (the kernel hashes each 4-tuple over the group).
            let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            for (i, listener) in [first, second].into_iter().enumerate() {
                let counts = counts.clone();
                waitrt::spawn(async move {
                    let mut held = Vec::new();
                    while let Ok((stream, _)) = listener.accept().await {
                        held.push(stream);
                        counts[i].fetch_add(1, SeqCst);
                    }
                });
            }
            let mut clients = Vec::new();
            for _ in 0..64 {
                clients.push(TcpStream::connect(addr).await.unwrap());
            }
            let total = || counts[0].load(SeqCst) + counts[1].load(SeqCst);
            for _ in 0..10_000 {
                if total() == 64 {
                    break;
                }
                waitrt::time::sleep(Duration::from_millis(1)).await;
            }
            let got = [counts[0].load(SeqCst), counts[1].load(SeqCst)];
            assert_eq!(got[0] + got[1], 64, "{got:?}");
            assert!(got[0] > 0 && got[1] > 0, "one listener got everything: {got:?}");
        });
    }
}

rt_test! {
    /// A client bound before it connects keeps its source address: the
    /// server sees the connection come from 127.0.0.2 (loopback is all of
    /// 127.0.0.0/8).
    fn bind_before_connect_sets_the_source_address(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback(0)).await.unwrap();
            let client = TcpSocket::new_v4().unwrap();
            client.set_reuseaddr(true).unwrap();
            client.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
            let bound = client.local_addr().unwrap();
            let mut stream = client.connect(listener.local_addr().unwrap()).await.unwrap();
            assert_eq!(stream.local_addr().unwrap(), bound);
            let (mut server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, bound);
            assert_eq!(peer.ip(), IpAddr::from([127, 0, 0, 2]));
            stream.write_all(b"from .2").await.unwrap();
            stream.close().await.unwrap();
            let mut got = String::new();
            server.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "from .2");
        });
    }
}

rt_test! {
    /// `listen` on an unbound socket picks a free port, as the kernel
    /// does; connections to it are accepted.
    fn listen_unbound_picks_a_port(rt) {
        rt.block_on(async {
            let listener = TcpSocket::new_v4().unwrap().listen(1).unwrap();
            let addr = listener.local_addr().unwrap();
            assert_ne!(addr.port(), 0);
            let client = TcpStream::connect(loopback(addr.port())).await.unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
        });
    }
}

rt_test! {
    fn connect_errors_are_reported(rt) {
        rt.block_on(async {
            // A port nobody listens on: bound, then closed.
            let port = TcpSocket::new_v4().unwrap();
            port.bind(loopback(0)).unwrap();
            let addr = port.local_addr().unwrap();
            drop(port);
            let err = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
            // The other family: refused at once.
            let err = TcpSocket::new_v4()
                .unwrap()
                .connect(SocketAddr::from((Ipv6Addr::LOCALHOST, 1)))
                .await
                .unwrap_err();
            assert!(err.raw_os_error().is_some(), "{err}");
            let err = TcpSocket::new_v4()
                .unwrap()
                .bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
                .unwrap_err();
            assert!(err.raw_os_error().is_some(), "{err}");
        });
    }
}

rt_test! {
    fn ipv6_sockets_connect_and_listen(rt) {
        rt.block_on(async {
            let socket = TcpSocket::new_v6().unwrap();
            if let Err(e) = socket.bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))) {
                return skip(&format!("no IPv6 loopback here: {e}"));
            }
            let addr = socket.local_addr().unwrap();
            assert!(addr.is_ipv6());
            let listener = socket.listen(16).unwrap();
            let client = TcpSocket::new_v6().unwrap();
            client.set_nodelay(true).unwrap();
            let mut stream = client.connect(addr).await.unwrap();
            let (mut server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, stream.local_addr().unwrap());
            stream.write_all(b"v6").await.unwrap();
            let mut buf = [0; 2];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"v6");
        });
    }
}

rt_test! {
    /// A std stream's socket taken over: its options are readable, and it
    /// listens.
    fn from_std_stream_keeps_the_socket(rt) {
        rt.block_on(async {
            let std_socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .unwrap();
            std_socket.set_keepalive(true).unwrap();
            let socket = TcpSocket::from_std_stream(std_socket.into()).unwrap();
            assert!(socket.keepalive().unwrap());
            socket.bind(loopback(0)).unwrap();
            let listener = socket.listen(8).unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
        });
    }
}

/// `listen` and `connect` need the reactor: outside a runtime with I/O
/// they fail with the runtime's message. Making and configuring a socket
/// needs nothing.
#[test]
fn listen_and_connect_need_a_runtime_with_io() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(loopback(0)).unwrap();
    let err = socket.listen(8).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");

    let std_listener = std::net::TcpListener::bind(loopback(0)).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let rt = waitrt::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err = rt
        .block_on(TcpSocket::new_v4().unwrap().connect(addr))
        .unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
}

// ===== lookup_host =====

rt_test! {
    fn lookup_host_resolves_names_and_literals(rt) {
        rt.block_on(async {
            // A name, through /etc/hosts: loopback addresses, port kept.
            let addrs: Vec<SocketAddr> = lookup_host("localhost:8080").await.unwrap().collect();
            assert!(!addrs.is_empty());
            assert!(
                addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080),
                "{addrs:?}"
            );
            let pair: Vec<SocketAddr> = lookup_host(("localhost", 9)).await.unwrap().collect();
            assert!(pair.iter().all(|a| a.ip().is_loopback() && a.port() == 9), "{pair:?}");
            // Literals come back as they are.
            let v4: Vec<_> = lookup_host("127.0.0.1:80").await.unwrap().collect();
            assert_eq!(v4, [loopback(80)]);
            let v6: Vec<_> = lookup_host("[::1]:443").await.unwrap().collect();
            assert_eq!(v6, [SocketAddr::from((Ipv6Addr::LOCALHOST, 443))]);
            let ip: Vec<_> = lookup_host((Ipv4Addr::LOCALHOST, 7)).await.unwrap().collect();
            assert_eq!(ip, [loopback(7)]);
            // An address lookup_host gave connects.
            let listener = TcpListener::bind(loopback(0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let addr = lookup_host(("127.0.0.1", port)).await.unwrap().next().unwrap();
            let client = TcpStream::connect(addr).await.unwrap();
            assert_eq!(listener.accept().await.unwrap().1, client.local_addr().unwrap());
        });
    }
}

rt_test! {
    /// Bad input is an `io::Error`, never a panic; none of these reaches
    /// a resolver (std rejects them before any lookup).
    fn lookup_host_errors_are_io_errors(rt) {
        rt.block_on(async {
            for bad in ["localhost", "localhost:99999", "localhost:port", "127.0.0.1", ""] {
                let err = lookup_host(bad).await.err().unwrap_or_else(|| {
                    panic!("`{bad}` resolved")
                });
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "`{bad}`: {err}");
            }
        });
    }
}

/// A name is looked up on the blocking pool: with the pool's one thread
/// held, `lookup_host("localhost:…")` queues there and waits, while the
/// scheduler runs on; a literal address needs no pool and resolves at
/// once.
#[test]
fn lookup_host_uses_the_blocking_pool_for_names_only() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog("lookup_host_on_the_pool", support::RT_LIMIT, move || {
            let mut builder = match workers {
                None => waitrt::Builder::new_current_thread(),
                Some(n) => {
                    let mut b = waitrt::Builder::new_multi_thread();
                    b.worker_threads(n);
                    b
                }
            };
            let rt = builder
                .enable_all()
                .max_blocking_threads(1)
                .build()
                .unwrap();
            rt.block_on(async {
                let (busy_tx, busy_rx) = futures::channel::oneshot::channel();
                let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
                let holder = waitrt::spawn_blocking(move || {
                    busy_tx.send(()).unwrap();
                    release_rx.recv_timeout(Duration::from_secs(30))
                });
                busy_rx.await.unwrap();
                // A literal: no pool needed, done although the pool is busy.
                let literal: Vec<_> = lookup_host("127.0.0.1:5").await.unwrap().collect();
                assert_eq!(literal, [loopback(5)]);
                let name = waitrt::spawn(async {
                    lookup_host("localhost:5")
                        .await
                        .map(Iterator::collect::<Vec<_>>)
                });
                let metrics = || waitrt::Handle::current().metrics();
                let mut waits = 0;
                while metrics().blocking_queue_depth() == 0 {
                    waits += 1;
                    assert!(waits < 10_000, "lookup_host(\"localhost:5\") queued no job");
                    waitrt::time::sleep(Duration::from_millis(1)).await;
                }
                assert!(!name.is_finished(), "resolved before the pool was free");
                release_tx.send(()).unwrap();
                holder.await.unwrap().unwrap();
                let addrs = name.await.unwrap().unwrap();
                assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 5));
            });
        });
    }
}

/// A name outside a runtime: an error naming the cause, not a panic.
#[test]
fn lookup_host_outside_a_runtime_is_an_error() {
    let err = futures::executor::block_on(lookup_host("localhost:1"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no runtime"), "{err}");
    // A literal needs no runtime.
    let addrs: Vec<_> = futures::executor::block_on(lookup_host("127.0.0.1:1"))
        .unwrap()
        .collect();
    assert_eq!(addrs, [loopback(1)]);
}

// ===== AsyncFd =====

/// A connected, non-blocking Unix socket pair from std: (wrapped end,
/// peer).
fn fd_pair() -> (AsyncFd<StdUnixStream>, StdUnixStream) {
    let (ours, peer) = StdUnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    (AsyncFd::new(ours).unwrap(), peer)
}

/// Spends a new `AsyncFd`'s first readiness (a registration starts out
/// ready, as tokio's) with a read that would block, so the read readiness
/// the test sees next comes from an edge the reactor collected after its
/// own writes, never from this start. It never waits: once the reactor
/// has delivered the registration's first event ("writable" only), that
/// event has replaced the optimistic bits and `readable()` would sleep
/// until data came (a worker's reactor turn between `fd_pair` and here
/// did that, and the test hung with no watchdog on this wait).
async fn spend_initial_readiness(fd: &AsyncFd<StdUnixStream>) {
    if let Some(guard) = futures::future::poll_immediate(fd.readable()).await {
        let mut guard = guard.unwrap();
        let mut buf = [0; 8];
        let read = guard.try_io(|fd| fd.get_ref().read(&mut buf));
        assert!(read.is_err(), "nothing was written yet: {read:?}");
    }
    assert!(!ready_now(fd.readable()), "readable with nothing written");
}

/// Whether `fut` is ready at its first poll.
fn ready_now<F: Future>(fut: F) -> bool {
    let waker = futures::task::noop_waker();
    std::pin::pin!(fut)
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_ready()
}

rt_test! {
    /// `read_with` sleeps until the peer writes (from another thread),
    /// `write_with` until the peer drains a full buffer.
    fn async_fd_read_with_and_write_with_wait_for_the_peer(rt) {
        rt.block_on(async {
            let (fd, mut peer) = fd_pair();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                peer.write_all(b"ping").unwrap();
                peer
            });
            let mut buf = [0; 4];
            // The output type can be named, as before the methods took
            // their caller's site (a review found `::<usize>` broken).
            let n = waitrt::time::timeout(WATCHDOG, fd.read_with::<usize>(|s| (&*s).read(&mut buf)))
                .await
                .expect("read_with never woke")
                .unwrap();
            assert_eq!(&buf[..n], b"ping");
            let mut peer = writer.join().unwrap();

            // Fill the socket until it would block, then write_with waits.
            let chunk = [7u8; 4096];
            let mut filled = 0usize;
            for _ in 0..100_000 {
                match fd.get_ref().write(&chunk) {
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let fd = Arc::new(fd);
            let writer = {
                let fd = fd.clone();
                waitrt::spawn(async move { fd.write_with::<usize>(|s| (&*s).write(b"tail")).await })
            };
            waitrt::time::sleep(Duration::from_millis(20)).await;
            assert!(!writer.is_finished(), "write_with did not wait for room");
            let drain = std::thread::spawn(move || {
                let mut got = vec![0; filled + 4];
                peer.read_exact(&mut got).unwrap();
                got
            });
            let wrote = waitrt::time::timeout(WATCHDOG, writer)
                .await
                .expect("write_with never woke")
                .unwrap()
                .unwrap();
            assert_eq!(wrote, 4);
            let got = drain.join().unwrap();
            assert_eq!(&got[filled..], b"tail");
        });
    }
}

rt_test! {
    /// A guard's `try_io` that sees `WouldBlock` clears the readiness: the
    /// next `readable` sleeps until new data comes. One that succeeds
    /// keeps it.
    fn async_fd_guard_clears_readiness_on_would_block(rt) {
        rt.block_on(async {
            let (fd, mut peer) = fd_pair();
            spend_initial_readiness(&fd).await;
            peer.write_all(b"abc").unwrap();
            let mut buf = [0; 8];
            let mut guard = fd.readable().await.unwrap();
            let n = guard.try_io(|fd| fd.get_ref().read(&mut buf)).unwrap().unwrap();
            assert_eq!(&buf[..n], b"abc");
            drop(guard);
            // Kept after a read that worked: the next readable is at once.
            let mut guard = fd.readable().await.unwrap();
            let err = guard.try_io(|fd| fd.get_ref().read(&mut buf)).unwrap_err();
            assert_eq!(err.to_string(), "the I/O would have blocked; the readiness was cleared");
            drop(guard);
            assert!(!ready_now(fd.readable()), "readable after WouldBlock without new data");
            peer.write_all(b"d").unwrap();
            let mut guard = waitrt::time::timeout(WATCHDOG, fd.readable())
                .await
                .expect("readable never woke for new data")
                .unwrap();
            let n = guard.try_io(|fd| fd.get_ref().read(&mut buf)).unwrap().unwrap();
            assert_eq!(&buf[..n], b"d");
            // clear_ready by hand does the same.
            guard.clear_ready();
            drop(guard);
            assert!(!ready_now(fd.readable()));
            // Writable at once (an empty send buffer).
            let guard = fd.writable().await.unwrap();
            assert_eq!(guard.get_ref().as_raw_fd(), fd.as_raw_fd());
        });
    }
}

rt_test! {
    /// `into_inner` gives the descriptor back, working; an unwatchable
    /// descriptor (a regular file) is refused with an error.
    fn async_fd_into_inner_and_refusals(rt) {
        rt.block_on(async {
            let (fd, mut peer) = fd_pair();
            let mut ours = fd.into_inner();
            ours.set_nonblocking(false).unwrap();
            peer.write_all(b"back").unwrap();
            let mut buf = [0; 4];
            ours.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"back");
            let file = std::fs::File::open("/proc/self/exe").unwrap();
            let err = AsyncFd::new(file).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(1), "{err}"); // EPERM
        });
    }
}

rt_test! {
    /// `with_interest` registers one direction: the other fails at once
    /// (`InvalidInput`) instead of sleeping forever; the registered one
    /// works. At tokio's path, `waitrt::io::unix::AsyncFd`, the same type.
    fn async_fd_with_interest_one_direction(rt) {
        use waitrt::io::{unix, Interest};
        rt.block_on(async {
            let (ours, mut peer) = StdUnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let fd: AsyncFd<_> = unix::AsyncFd::with_interest(ours, Interest::READABLE).unwrap();
            let invalid = |result: io::Result<_>, what: &str| {
                let err = result.map(drop).expect_err(what);
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
                assert!(err.to_string().contains("is registered for"), "{err}");
            };
            invalid(fd.writable().await.map(drop), "writable on READABLE");
            invalid(fd.write_with(|s| (&*s).write(b"x")).await.map(drop), "write_with on READABLE");
            let waker = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            match fd.poll_write_ready(&mut cx) {
                std::task::Poll::Ready(result) => invalid(result.map(drop), "poll_write_ready"),
                std::task::Poll::Pending => panic!("poll_write_ready on READABLE is pending"),
            }
            peer.write_all(b"in").unwrap();
            let mut buf = [0; 2];
            let n = waitrt::time::timeout(WATCHDOG, fd.read_with(|s| (&*s).read(&mut buf)))
                .await
                .expect("read_with never woke")
                .unwrap();
            assert_eq!(&buf[..n], b"in");

            let (ours, mut peer) = StdUnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let interest = Interest::WRITABLE;
            assert!(interest.is_writable() && !interest.is_readable());
            assert_eq!(interest | Interest::READABLE, Interest::READABLE.add(Interest::WRITABLE));
            let fd = unix::AsyncFd::with_interest(ours, interest).unwrap();
            invalid(fd.readable().await.map(drop), "readable on WRITABLE");
            let n = fd.write_with(|s| (&*s).write(b"out")).await.unwrap();
            assert_eq!(n, 3);
            let mut got = [0; 3];
            peer.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"out");
        });
    }
}

rt_test! {
    /// `get_mut` reaches the wrapped value for `&mut self` calls (std's
    /// `Read for UnixStream`); it stays registered, so a read that would
    /// block, then new data, wakes the next wait.
    fn async_fd_get_mut(rt) {
        rt.block_on(async {
            let (mut fd, mut peer) = fd_pair();
            spend_initial_readiness(&fd).await;
            peer.write_all(b"one").unwrap();
            let mut buf = [0; 8];
            fd.readable().await.unwrap().retain_ready();
            let n = fd.get_mut().read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"one");
            let err = fd.get_mut().read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            fd.readable().await.unwrap().clear_ready();
            let peer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                peer.write_all(b"two").unwrap();
                peer
            });
            // The usual loop: a readiness that was stale (the reactor may
            // collect the edge of the first write only now) says
            // `WouldBlock` to `try_io`, which clears it, and the loop waits
            // again. Bounded by the watchdog: a lost registration never wakes.
            let n = waitrt::time::timeout(WATCHDOG, async {
                loop {
                    let mut guard = fd.readable().await.unwrap();
                    if let Ok(read) = guard.try_io(|fd| fd.get_ref().read(&mut buf)) {
                        break read.unwrap();
                    }
                }
            })
            .await
            .expect("readable never woke after get_mut's reads");
            assert_eq!(&buf[..n], b"two");
            drop(peer.join().unwrap());
            assert_eq!(fd.get_mut().as_raw_fd(), fd.as_raw_fd());
        });
    }
}

rt_test! {
    /// A readiness guard held across an await (a lock taken before
    /// `try_io`) holds up no other waiter: the wait that made it passed its
    /// wake on. It passed it on only as the guard dropped, so a reader that
    /// awaited a lock its peer held, the peer asleep in `readable()`,
    /// deadlocked (an independent review, 10 of 10; tokio wakes every
    /// readiness waiter).
    fn an_async_fd_guard_held_across_an_await_holds_up_no_waiter(rt) {
        rt.block_on(async {
            let (fd, mut peer) = fd_pair();
            spend_initial_readiness(&fd).await;
            let fd = Arc::new(fd);
            let lock = Arc::new(waitrt::sync::Mutex::new(()));
            // A: readable, then the lock, then the read.
            let a = {
                let (fd, lock) = (fd.clone(), lock.clone());
                waitrt::spawn(async move {
                    let mut guard = fd.readable().await.unwrap();
                    let _held = lock.lock().await;
                    let mut buf = [0; 8];
                    let _ = guard.try_io(|fd| fd.get_ref().read(&mut buf));
                })
            };
            support::until_asleep(a.id()).await;
            // B: the lock, then readable.
            let (locked_tx, locked_rx) = waitrt::sync::oneshot::channel();
            let b = {
                let (fd, lock) = (fd.clone(), lock.clone());
                waitrt::spawn(async move {
                    let _held = lock.lock().await;
                    locked_tx.send(()).unwrap();
                    let _guard = fd.readable().await.unwrap();
                })
            };
            locked_rx.await.unwrap();
            support::until_asleep(b.id()).await;
            peer.write_all(b"x").unwrap();
            let both = async {
                b.await.unwrap();
                a.await.unwrap();
            };
            waitrt::time::timeout(WATCHDOG, both)
                .await
                .expect("deadlocked: the guard's holder kept the wake");
        });
    }
}

/// Outside a runtime with I/O: an error; after the runtime shuts down, a
/// wait is an error, not a hang.
#[test]
fn async_fd_needs_a_live_runtime_with_io() {
    let (ours, _peer) = StdUnixStream::pair().unwrap();
    let err = AsyncFd::new(ours).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
    let rt = support::build(Some(1));
    let (fd, _peer) = rt.block_on(async { fd_pair() });
    drop(rt);
    let err = futures::executor::block_on(fd.readable()).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}
