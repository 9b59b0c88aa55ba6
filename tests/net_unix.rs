//! Unix-domain sockets over the reactor, on real sockets in temporary
//! directories, on every scheduler flavour (current-thread, mt(1), mt(2))
//! through `rt_test!`.
//!
//! Covered: stream echo, 200 concurrent connections, EOF on peer close,
//! half-close, vectored I/O, owned halves on two tasks and `reunite`,
//! `pair`, `incoming`, `try_*`, datagrams (paths, `pair`, `connect`,
//! unbound senders, `poll_*`, `try_send`/`try_recv`, 200 in order through a 10-deep queue),
//! the socket-file cleanup rule (removed on drop only if the path still
//! names our socket), connecting to a missing path, std conversions,
//! Linux abstract names, and sockets outliving their runtime (an error, not
//! a hang).
#[macro_use]
mod support;

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use waitrt::net::{UnixDatagram, UnixListener, UnixStream};
use waitrt::Builder;

/// A fresh directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rt-net-unix-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Accepts connections forever and echoes each one until EOF.
fn spawn_echo_server(listener: UnixListener) {
    waitrt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            waitrt::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let mut buf = vec![0; 4096];
                while let Ok(n @ 1..) = read.read(&mut buf).await {
                    if write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

async fn connected(dir: &TempDir) -> (UnixStream, UnixStream) {
    let path = dir.path("pair.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

rt_test! {
    // A name whose first byte is NUL is a Linux abstract socket, as with
    // tokio: a listener binds it (no file appears), a stream connects to
    // it, a datagram socket binds one. Found by an independent probe
    // against tokio: bind said "paths must not contain interior null
    // bytes" (every run).
    #[cfg(target_os = "linux")]
    fn abstract_names(rt) {
        let n = NEXT_NAME.fetch_add(1, SeqCst);
        let name = format!("\0waitrt-test-{}-{n}", std::process::id());
        let dgram_name = format!("{name}-dgram");
        rt.block_on(async {
            let listener = UnixListener::bind(&name).unwrap();
            let address = listener.local_addr().unwrap();
            {
                use std::os::linux::net::SocketAddrExt;
                assert_eq!(address.as_abstract_name(), Some(&name.as_bytes()[1..]));
            }
            assert!(address.as_pathname().is_none(), "no socket file");
            spawn_echo_server(listener);
            let mut client = UnixStream::connect(&name).await.unwrap();
            client.write_all(b"abstract").await.unwrap();
            let mut back = [0; 8];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"abstract");

            let receiver = UnixDatagram::bind(&dgram_name).unwrap();
            let sender = UnixDatagram::unbound().unwrap();
            let std_sender = sender.into_std().unwrap();
            {
                use std::os::linux::net::SocketAddrExt;
                let to = std::os::unix::net::SocketAddr::from_abstract_name(&dgram_name.as_bytes()[1..]).unwrap();
                std_sender.send_to_addr(b"dgram", &to).unwrap();
            }
            let mut buf = [0; 16];
            let n = receiver.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"dgram");
            // A second bind of a name in use fails, as for a file.
            let again = UnixDatagram::bind(&dgram_name).unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::AddrInUse, "{again}");
        });
        // The names go with their sockets (the echo server's listener
        // with the runtime): bound again at once.
        drop(rt);
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { drop(UnixListener::bind(&name).unwrap()) });
    }
}

/// Tells the abstract names of concurrent tests apart.
static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

rt_test! {
    fn stream_echo(rt) {
        let dir = TempDir::new();
        let path = dir.path("echo.sock");
        rt.block_on(async {
            spawn_echo_server(UnixListener::bind(&path).unwrap());
            let mut client = UnixStream::connect(&path).await.unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
            assert!(client.local_addr().unwrap().is_unnamed());
            for round in 0..200u32 {
                client.write_all(&round.to_le_bytes()).await.unwrap();
                let mut back = [0; 4];
                client.read_exact(&mut back).await.unwrap();
                assert_eq!(back, round.to_le_bytes(), "round {round}");
            }
            // A large message crosses many readiness edges both ways.
            let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            let (mut read, mut write) = client.into_split();
            let sent = big.clone();
            let writer = waitrt::spawn(async move { write.write_all(&sent).await });
            let mut back = vec![0; big.len()];
            read.read_exact(&mut back).await.unwrap();
            writer.await.unwrap().unwrap();
            assert!(back == big, "bulk echo corrupted");
        });
    }
}

rt_test! {
    /// One vectored read passes at most 1,024 buffers to the kernel (and
    /// a vectored write as many): a transfer that fills those is not
    /// short, so the rest moves without waiting for an edge.
    fn vectored_transfers_over_more_than_1024_buffers_lose_nothing(rt) {
        rt.block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let sent: Vec<u8> = (0..2048u32).map(|i| i as u8).collect();
            let mut at = 0;
            while at < sent.len() {
                let bufs: Vec<IoSlice<'_>> = sent[at..].chunks(1).map(IoSlice::new).collect();
                at += a.write_vectored(&bufs).await.unwrap();
            }
            // A socketpair write is queued at the peer when it returns;
            // let the reactor take in its edge now, so that no pending
            // edge can make up for a wrongly cleared readiness.
            waitrt::time::sleep(Duration::from_millis(1)).await;
            let got = support::read_bytewise_vectored(&mut b, sent.len()).await;
            assert_eq!(got, sent);
            drop(a); // open until here: its close would be an edge
        });
    }
}

rt_test! {
    fn two_hundred_concurrent_connections(rt) {
        const CLIENTS: u32 = 200;
        let dir = TempDir::new();
        let path = Arc::new(dir.path("many.sock"));
        rt.block_on(async {
            spawn_echo_server(UnixListener::bind(&*path).unwrap());
            let clients: Vec<_> = (0..CLIENTS)
                .map(|id| {
                    let path = path.clone();
                    waitrt::spawn(async move {
                        let mut stream = UnixStream::connect(&*path).await.unwrap();
                        let msg = [id.to_le_bytes(), (!id).to_le_bytes()].concat();
                        stream.write_all(&msg).await.unwrap();
                        let mut back = [0; 8];
                        stream.read_exact(&mut back).await.unwrap();
                        assert_eq!(back[..], msg[..], "client {id}");
                        id
                    })
                })
                .collect();
            let mut done = Vec::new();
            for client in clients {
                done.push(client.await.unwrap());
            }
            assert_eq!(done, (0..CLIENTS).collect::<Vec<_>>());
        });
    }
}

rt_test! {
    fn peer_close_is_eof(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let (mut client, mut server) = connected(&dir).await;
            client.write_all(b"last words").await.unwrap();
            drop(client);
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"last words");
            assert_eq!(server.read(&mut [0; 4]).await.unwrap(), 0, "EOF stays EOF");
        });
    }
}

rt_test! {
    fn half_close_lets_the_other_direction_work(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let (mut client, mut server) = connected(&dir).await;
            client.write_all(b"request").await.unwrap();
            client.close().await.unwrap(); // shutdown(Write)
            let mut request = Vec::new();
            server.read_to_end(&mut request).await.unwrap();
            assert_eq!(request, b"request");
            server.write_all(b"response").await.unwrap();
            server.shutdown(Shutdown::Write).unwrap();
            let mut response = Vec::new();
            client.read_to_end(&mut response).await.unwrap();
            assert_eq!(response, b"response");
        });
    }
}

rt_test! {
    fn vectored_io_keeps_order(rt) {
        rt.block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let parts = [IoSlice::new(b"one,"), IoSlice::new(b"two,"), IoSlice::new(b"three")];
            let n = a.write_vectored(&parts).await.unwrap();
            assert_eq!(n, 13, "a fresh socket buffer takes it all");
            let (mut x, mut y) = ([0; 4], [0; 9]);
            let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
            // All 13 bytes are queued already: one read fills both buffers.
            let got = (&b).read_vectored(&mut bufs).await.unwrap();
            assert_eq!(got, 13);
            assert_eq!((&x, &y), (b"one,", b"two,three"));
            b.write_all(b"back").await.unwrap();
            let mut back = [0; 4];
            a.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"back");
        });
    }
}

rt_test! {
    fn owned_halves_on_two_tasks_then_reunite(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let (client, server) = connected(&dir).await;
            let (mut read, mut write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let writer = waitrt::spawn(async move {
                for i in 0..100u8 {
                    write.write_all(&[i; 16]).await.unwrap();
                }
                write
            });
            let reader = waitrt::spawn(async move {
                let mut buf = [0; 16];
                for i in 0..100u8 {
                    read.read_exact(&mut buf).await.unwrap();
                    assert_eq!(buf, [i; 16]);
                }
                read
            });
            let mut all = vec![0; 1600];
            server_read.read_exact(&mut all).await.unwrap();
            server_write.write_all(&all).await.unwrap();
            let (read, write) = (reader.await.unwrap(), writer.await.unwrap());
            let mut client = read.reunite(write).expect("same stream");
            // Reuniting did not shut the write side down.
            client.write_all(b"still open").await.unwrap();
            let mut got = [0; 10];
            server_read.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"still open");
            // Dropping a write half sends EOF.
            let (_read, write) = client.into_split();
            drop(write);
            assert_eq!(server_read.read(&mut got).await.unwrap(), 0);
            // Halves of different streams do not reunite.
            let (a, b) = UnixStream::pair().unwrap();
            let (a_read, _a_write) = a.into_split();
            let (_b_read, b_write) = b.into_split();
            let err = a_read.reunite(b_write).unwrap_err();
            assert!(err.to_string().contains("not from the same socket"));
        });
    }
}

rt_test! {
    fn incoming_and_try_methods(rt) {
        let dir = TempDir::new();
        let path = dir.path("incoming.sock");
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let connector = {
                let path = path.clone();
                waitrt::spawn(async move {
                    let mut streams = Vec::new();
                    for _ in 0..3 {
                        streams.push(UnixStream::connect(&path).await.unwrap());
                    }
                    streams
                })
            };
            let mut incoming = listener.incoming();
            let mut servers = Vec::new();
            for _ in 0..3 {
                servers.push(incoming.next().await.unwrap().unwrap());
            }
            let clients = connector.await.unwrap();
            let (client, server) = (&clients[0], &servers[0]);
            let err = server.try_read(&mut [0; 4]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            client.writable().await.unwrap();
            assert_eq!(client.try_write(b"ok").unwrap(), 2);
            server.readable().await.unwrap();
            let mut buf = [0; 4];
            assert_eq!(server.try_read(&mut buf).unwrap(), 2);
            assert_eq!(&buf[..2], b"ok");
            let debug = format!("{listener:?} {server:?}");
            assert!(debug.contains("UnixListener") && debug.contains("UnixStream"), "{debug}");
        });
    }
}

rt_test! {
    fn datagrams_with_paths(rt) {
        let dir = TempDir::new();
        let (a_path, b_path) = (dir.path("a.sock"), dir.path("b.sock"));
        rt.block_on(async {
            let a = UnixDatagram::bind(&a_path).unwrap();
            let b = UnixDatagram::bind(&b_path).unwrap();
            assert_eq!(a.local_addr().unwrap().as_pathname(), Some(a_path.as_path()));
            a.send_to(b"to b", &b_path).await.unwrap();
            let mut buf = [0; 16];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"to b");
            assert_eq!(from.as_pathname(), Some(a_path.as_path()));
            // An unbound sender is unnamed, and cannot be answered.
            let anon = UnixDatagram::unbound().unwrap();
            anon.send_to(b"anon", &b_path).await.unwrap();
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from.is_unnamed()), (&b"anon"[..], true));
            // Connected: `send`/`recv`, and the poll variants.
            b.connect(&a_path).unwrap();
            assert_eq!(b.peer_addr().unwrap().as_pathname(), Some(a_path.as_path()));
            std::future::poll_fn(|cx| b.poll_send(cx, b"polled")).await.unwrap();
            let n = std::future::poll_fn(|cx| a.poll_recv(cx, &mut buf)).await.unwrap();
            assert_eq!(&buf[..n], b"polled");
            std::future::poll_fn(|cx| a.poll_send_to(cx, b"p2", &b_path)).await.unwrap();
            let (n, from) = std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await.unwrap();
            assert_eq!((&buf[..n], from.as_pathname()), (&b"p2"[..], Some(a_path.as_path())));
            let err = a.try_recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            b.send(b"last").await.unwrap();
            assert_eq!(a.recv(&mut buf).await.unwrap(), 4);
            // A missing path is an error, not a wait.
            let err = a.send_to(b"x", dir.path("nobody.sock")).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        });
    }
}

rt_test! {
    fn datagram_try_send_and_try_recv_never_wait(rt) {
        rt.block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let mut buf = [0; 16];
            let empty = b.try_recv(&mut buf).unwrap_err();
            assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
            // Fill the peer's queue until the kernel says it is full.
            let mut sent = 0u32;
            loop {
                match a.try_send(&sent.to_le_bytes()) {
                    Ok(n) => assert_eq!(n, 4),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("try_send: {e}"),
                }
                sent += 1;
                assert!(sent < 100_000, "the queue never filled");
            }
            assert!(sent > 0);
            // All of them come back, in order. A `WouldBlock` with
            // datagrams still to come is the readiness `try_recv` cleared
            // before they were sent (as on tokio): wait for the edge.
            let mut seq = 0;
            for _ in 0..2 * sent + 10 {
                if seq == sent {
                    break;
                }
                match b.try_recv(&mut buf) {
                    Ok(n) => {
                        assert_eq!(&buf[..n], seq.to_le_bytes(), "datagram {seq}");
                        seq += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        waitrt::time::timeout(Duration::from_secs(10), b.readable())
                            .await
                            .unwrap()
                            .unwrap();
                    }
                    Err(e) => panic!("try_recv: {e}"),
                }
            }
            assert_eq!(seq, sent, "datagrams lost");
            let drained = b.try_recv(&mut buf).unwrap_err();
            assert_eq!(drained.kind(), io::ErrorKind::WouldBlock);
            // Room again: a send after the drain goes through.
            waitrt::time::timeout(Duration::from_secs(10), a.writable())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(a.try_send(b"more").unwrap(), 4);
            assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
        });
    }
}

rt_test! {
    fn datagram_pair_and_back_pressure(rt) {
        // Linux queues 10 datagrams by default (`max_dgram_qlen`): the
        // sender must wait for the receiver, not drop or reorder.
        const COUNT: u32 = 200;
        rt.block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            assert!(a.peer_addr().unwrap().is_unnamed());
            let sender = waitrt::spawn(async move {
                for seq in 0..COUNT {
                    a.send(&seq.to_le_bytes()).await.unwrap();
                }
                a
            });
            let mut buf = [0; 8];
            for expected in 0..COUNT {
                let n = b.recv(&mut buf).await.unwrap();
                assert_eq!(buf[..n], expected.to_le_bytes());
            }
            let a = sender.await.unwrap();
            // Also through a bound path, unconnected.
            let dir = TempDir::new();
            let path = dir.path("dgram.sock");
            let server = UnixDatagram::bind(&path).unwrap();
            let sender = waitrt::spawn(async move {
                for seq in 0..COUNT {
                    a.send_to(&seq.to_le_bytes(), &path).await.unwrap();
                }
            });
            for expected in 0..COUNT {
                let (n, _) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!(buf[..n], expected.to_le_bytes());
            }
            sender.await.unwrap();
        });
    }
}

rt_test! {
    fn dropping_a_listener_removes_its_socket_file(rt) {
        let dir = TempDir::new();
        let path = dir.path("mine.sock");
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            assert!(path.exists());
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
            drop(listener);
            assert!(!path.exists(), "our own socket file is removed");
            // So the path can be bound again at once; datagrams too.
            let datagram = UnixDatagram::bind(&path).unwrap();
            drop(datagram);
            assert!(!path.exists(), "a datagram socket removes its file too");
            // `into_std` hands the file over: it stays.
            let listener = UnixListener::bind(&path).unwrap();
            let std_listener = listener.into_std().unwrap();
            assert!(path.exists(), "into_std keeps the file");
            drop(std_listener);
            assert!(path.exists(), "std never removes it");
        });
    }
}

rt_test! {
    fn a_rebound_path_is_left_alone(rt) {
        let dir = TempDir::new();
        let path = dir.path("shared.sock");
        rt.block_on(async {
            let old = UnixListener::bind(&path).unwrap();
            // Someone removes the file and binds a new socket there.
            std::fs::remove_file(&path).unwrap();
            let new = UnixListener::bind(&path).unwrap();
            drop(old);
            assert!(path.exists(), "the new owner's file was deleted");
            let _client = UnixStream::connect(&path).await.unwrap();
            let (_, _) = new.accept().await.unwrap();
            // A plain file put at the path is never deleted either.
            drop(new);
            assert!(!path.exists());
            let impostor = UnixListener::bind(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, b"not a socket").unwrap();
            drop(impostor);
            assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        });
    }
}

rt_test! {
    fn connecting_to_a_missing_path_errors(rt) {
        let dir = TempDir::new();
        rt.block_on(async {
            let err = UnixStream::connect(dir.path("missing.sock")).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
            // A socket file nobody listens on any more.
            let path = dir.path("stale.sock");
            drop(UnixListener::bind(&path).unwrap().into_std().unwrap());
            let err = UnixStream::connect(&path).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        });
    }
}

rt_test! {
    fn std_conversions_round_trip(rt) {
        let dir = TempDir::new();
        let path = dir.path("std.sock");
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut blocking_client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        rt.block_on(async {
            let listener = UnixListener::try_from(std_listener).unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            blocking_client.write_all(b"hi").unwrap();
            let mut got = [0; 2];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hi");
            // Back to std: blocking again.
            let mut std_server = server.into_std().unwrap();
            std_server.write_all(b"yo").unwrap();
            let mut back = [0; 2];
            blocking_client.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"yo");
            let client = UnixStream::from_std(blocking_client).unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
            drop(listener);
            assert!(path.exists(), "a listener from std never removes the file");
            let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let a = UnixDatagram::from_std(a).unwrap();
            a.send(b"d").await.unwrap();
            let b = UnixDatagram::try_from(b).unwrap().into_std().unwrap();
            let mut buf = [0; 1];
            assert_eq!(b.recv(&mut buf).unwrap(), 1);
        });
    }
}

/// Sockets kept past their runtime: waits end with an error, nothing hangs.
#[test]
fn io_after_runtime_shutdown_is_an_error() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog(
            "unix io_after_runtime_shutdown",
            support::RT_LIMIT,
            move || {
                let rt = support::build(workers);
                let (stream, _peer, datagram) = rt.block_on(async {
                    let (a, b) = UnixStream::pair().unwrap();
                    (Arc::new(a), b, UnixDatagram::pair().unwrap().0)
                });
                let reader = stream.clone();
                let pending = std::thread::spawn(move || {
                    futures::executor::block_on((&*reader).read(&mut [0; 4]))
                });
                std::thread::sleep(Duration::from_millis(20));
                rt.shutdown_timeout(Duration::from_secs(5));
                let err = pending.join().unwrap().expect_err("nothing was sent");
                assert!(err.to_string().contains("shut down"), "{err}");
                let other = support::build(workers);
                let err = other.block_on((&*stream).read(&mut [0; 4])).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
                let err = other.block_on(datagram.recv(&mut [0; 4])).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
                let err = stream.try_read(&mut [0; 4]).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
            },
        );
    }
}

#[test]
fn sockets_need_a_runtime_with_io() {
    let dir = TempDir::new();
    let path = dir.path("no-io.sock");
    let rt = Builder::new_current_thread().enable_time().build().unwrap();
    let _guard = rt.handle().enter();
    let err = UnixListener::bind(&path).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
    assert!(!path.exists(), "a failed bind leaves no file behind");
    let err = UnixDatagram::bind(&path).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
    assert!(!path.exists());
    assert!(UnixStream::pair().is_err());
}
