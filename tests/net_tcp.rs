//! TCP over the reactor, on real loopback sockets, on every scheduler
//! flavour (current-thread, mt(1), mt(2)) through `rt_test!`.
//!
//! Covered: echo round trips, 1,000 concurrent connections, EOF on peer
//! close, reset by peer (an error, not a hang), half-close, peek, vectored
//! writes, owned halves on two tasks and `reunite`, many tasks accepting on
//! one listener (each connection reaches exactly one), a read future
//! dropped mid-wait (no byte lost), sockets outliving their runtime (an
//! error, not a hang), `incoming`, std conversions, refused connects, host
//! names looked up on the blocking pool (the scheduler runs meanwhile), and
//! sockets made without I/O enabled.
#[macro_use]
mod support;

use std::collections::HashSet;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use waitrt::net::{TcpListener, TcpStream};
use waitrt::Builder;

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A connected pair on loopback: (the connecting end, the accepted end).
async fn connected() -> (TcpStream, TcpStream) {
    let (listener, addr) = listener().await;
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Accepts connections forever and echoes each one until EOF.
fn spawn_echo_server(listener: TcpListener) {
    waitrt::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            waitrt::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let mut buf = vec![0; 4096];
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

rt_test! {
    fn echo_round_trips(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            spawn_echo_server(listener);
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.set_nodelay(true).unwrap();
            assert!(client.nodelay().unwrap());
            for round in 0..200u32 {
                let msg = round.to_le_bytes();
                client.write_all(&msg).await.unwrap();
                let mut back = [0; 4];
                client.read_exact(&mut back).await.unwrap();
                assert_eq!(back, msg, "round {round}");
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
    /// Frames read with `read_exact` of their size, sent in chunks of
    /// every size and pace: a read that empties the queue clears the
    /// readiness (TCP_INQ), one that leaves bytes must not, and neither
    /// may lose a later edge.
    fn exact_size_frame_reads_lose_nothing(rt) {
        const FRAME: usize = 64;
        const FRAMES: usize = 2_000;
        rt.block_on(async {
            let (client, server) = connected().await;
            let stream: Vec<u8> = (0..FRAME * FRAMES).map(|i| (i % 253) as u8).collect();
            let expected = stream.clone();
            let writer = waitrt::spawn(async move {
                let mut server = server;
                let mut seed = 0x2545_f491_u32;
                // The last three frames go in one write after a pause: no
                // edge follows them, so a read that wrongly cleared the
                // readiness with bytes left would wait forever.
                let tail = stream.len() - 3 * FRAME;
                let mut at = 0;
                while at < tail {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let chunk = (seed >> 16) as usize % (3 * FRAME) + 1;
                    let end = (at + chunk).min(tail);
                    server.write_all(&stream[at..end]).await.unwrap();
                    at = end;
                    if seed & 3 == 0 {
                        waitrt::task::yield_now().await;
                    }
                }
                waitrt::time::sleep(Duration::from_millis(1)).await;
                server.write_all(&stream[tail..]).await.unwrap();
                server // kept open until every frame is read
            });
            let (mut read, _write) = client.into_split();
            let mut frame = [0; FRAME];
            for i in 0..FRAMES {
                read.read_exact(&mut frame).await.unwrap();
                assert!(frame[..] == expected[i * FRAME..][..FRAME], "frame {i}");
            }
            drop(writer.await.unwrap());
            assert_eq!(read.read(&mut frame).await.unwrap(), 0, "then EOF");
        });
    }
}

rt_test! {
    /// One vectored read passes at most 1,024 buffers to the kernel: a
    /// read over more that fills those is not short, so the bytes left
    /// are read next without waiting for an edge that will not come.
    fn a_read_over_more_than_1024_buffers_keeps_what_is_left(rt) {
        rt.block_on(async {
            let (mut client, mut server) = connected().await;
            let sent: Vec<u8> = (0..2048u32).map(|i| i as u8).collect();
            server.write_all(&sent).await.unwrap();
            // Everything is queued before the first read: no later edge.
            let mut peeked = vec![0; sent.len()];
            while client.peek(&mut peeked).await.unwrap() < sent.len() {
                waitrt::task::yield_now().await;
            }
            // Let the reactor take in that data's edge now, so that no
            // pending edge can make up for a wrongly cleared readiness.
            waitrt::time::sleep(Duration::from_millis(1)).await;
            let got = support::read_bytewise_vectored(&mut client, sent.len()).await;
            assert_eq!(got, sent);
            drop(server); // open until here: its FIN would be an edge
        });
    }
}

rt_test! {
    fn thousand_concurrent_connections(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            spawn_echo_server(listener);
            let clients: Vec<_> = (0..1000u32)
                .map(|i| {
                    waitrt::spawn(async move {
                        let mut stream = TcpStream::connect(addr).await?;
                        let msg = i.to_le_bytes();
                        stream.write_all(&msg).await?;
                        let mut back = [0; 4];
                        stream.read_exact(&mut back).await?;
                        assert_eq!(back, msg);
                        io::Result::Ok(())
                    })
                })
                .collect();
            for client in clients {
                client.await.unwrap().unwrap();
            }
        });
    }
}

rt_test! {
    fn peer_close_is_eof(rt) {
        rt.block_on(async {
            let (mut client, mut server) = connected().await;
            server.write_all(b"last words").await.unwrap();
            drop(server);
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"last words");
            // EOF stays EOF.
            assert_eq!(client.read(&mut [0; 8]).await.unwrap(), 0);
        });
    }
}

rt_test! {
    fn peer_reset_is_an_error_not_a_hang(rt) {
        rt.block_on(async {
            let (mut client, server) = connected().await;
            client.write_all(b"never read").await.unwrap();
            // Wait until the bytes reached the server, then close it with
            // them unread: the kernel answers with RST.
            server.readable().await.unwrap();
            drop(server);
            let mut buf = [0; 16];
            let err = loop {
                match client.read(&mut buf).await {
                    Ok(0) => panic!("a reset must be an error, not EOF"),
                    Ok(_) => continue,
                    Err(err) => break err,
                }
            };
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        });
    }
}

rt_test! {
    fn half_close_lets_the_other_direction_work(rt) {
        rt.block_on(async {
            let (mut client, mut server) = connected().await;
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
    fn peek_then_read_sees_the_same_bytes(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            let client = waitrt::spawn(async move {
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.write_all(b"abcdef").await.unwrap();
                c
            });
            let (mut server, _) = listener.accept().await.unwrap();
            let _client = client.await.unwrap();
            let mut peeked = [0; 6];
            let mut n = 0;
            while n < 6 {
                n = server.peek(&mut peeked).await.unwrap();
            }
            assert_eq!(&peeked, b"abcdef");
            let mut read = [0; 6];
            server.read_exact(&mut read).await.unwrap();
            assert_eq!(read, peeked);
        });
    }
}

rt_test! {
    fn vectored_write_arrives_in_order(rt) {
        rt.block_on(async {
            let (mut client, mut server) = connected().await;
            let parts = [IoSlice::new(b"one "), IoSlice::new(b"two "), IoSlice::new(b"three")];
            let n = client.write_vectored(&parts).await.unwrap();
            assert_eq!(n, 13, "loopback takes a small vectored write whole");
            drop(client);
            let mut got = String::new();
            server.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "one two three");
        });
    }
}

rt_test! {
    fn owned_halves_on_two_tasks_then_reunite(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            spawn_echo_server(listener);
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let writer = waitrt::spawn(async move {
                for i in 0..100u8 {
                    write.write_all(&[i; 100]).await.unwrap();
                }
                write
            });
            let mut got = vec![0; 100 * 100];
            read.read_exact(&mut got).await.unwrap();
            for (i, chunk) in got.chunks(100).enumerate() {
                assert!(chunk.iter().all(|&b| b == i as u8), "chunk {i} out of order");
            }
            let write = writer.await.unwrap();
            let mut stream = read.reunite(write).expect("same stream");
            stream.write_all(b"x").await.unwrap();
            let mut x = [0];
            stream.read_exact(&mut x).await.unwrap();
            assert_eq!(&x, b"x");

            // Halves of different streams do not reunite.
            let (r1, _w1) = TcpStream::connect(addr).await.unwrap().into_split();
            let (_r2, w2) = TcpStream::connect(addr).await.unwrap().into_split();
            assert!(r1.reunite(w2).is_err());
        });
    }
}

rt_test! {
    fn dropping_the_write_half_sends_eof(rt) {
        rt.block_on(async {
            let (client, mut server) = connected().await;
            let (_read, mut write) = client.into_split();
            write.write_all(b"bye").await.unwrap();
            drop(write);
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"bye");
        });
    }
}

rt_test! {
    fn many_acceptors_each_connection_reaches_exactly_one(rt) {
        rt.block_on(async {
            const ACCEPTORS: usize = 16;
            const CONNECTIONS: u32 = 200;
            let (listener, addr) = listener().await;
            let listener = Arc::new(listener);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let acceptors: Vec<_> = (0..ACCEPTORS)
                .map(|_| {
                    let (listener, seen) = (listener.clone(), seen.clone());
                    waitrt::spawn(async move {
                        loop {
                            let (mut stream, _) = listener.accept().await.unwrap();
                            let mut id = [0; 4];
                            stream.read_exact(&mut id).await.unwrap();
                            let id = u32::from_le_bytes(id);
                            if id == u32::MAX {
                                return;
                            }
                            seen.lock().unwrap().push(id);
                            stream.write_all(b"k").await.unwrap();
                        }
                    })
                })
                .collect();
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|id| {
                    waitrt::spawn(async move {
                        let mut stream = TcpStream::connect(addr).await.unwrap();
                        stream.write_all(&id.to_le_bytes()).await.unwrap();
                        let mut ack = [0];
                        stream.read_exact(&mut ack).await.unwrap();
                    })
                })
                .collect();
            for client in clients {
                client.await.unwrap();
            }
            for _ in 0..ACCEPTORS {
                let mut stop = TcpStream::connect(addr).await.unwrap();
                stop.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
            }
            for acceptor in acceptors {
                acceptor.await.unwrap();
            }
            let mut seen = seen.lock().unwrap().clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..CONNECTIONS).collect::<Vec<_>>());
        });
    }
}

rt_test! {
    fn a_dropped_read_future_loses_no_bytes(rt) {
        rt.block_on(async {
            let (mut client, mut server) = connected().await;
            let mut buf = [0; 8];
            // Poll a read until it sleeps, then drop it.
            {
                let mut read = server.read(&mut buf);
                assert!(futures::poll!(&mut read).is_pending());
            }
            // Also a timed-out read: dropped by `timeout` mid-wait.
            let timed = waitrt::time::timeout(Duration::from_millis(5), server.read(&mut buf)).await;
            assert!(timed.is_err(), "nothing was sent yet");
            client.write_all(b"kept").await.unwrap();
            let mut got = [0; 4];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"kept");
        });
    }
}

rt_test! {
    fn incoming_yields_connections(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            let connector = waitrt::spawn(async move {
                let mut streams = Vec::new();
                for _ in 0..3 {
                    streams.push(TcpStream::connect(addr).await.unwrap());
                }
                streams
            });
            let mut incoming = listener.incoming();
            let mut peers = HashSet::new();
            for _ in 0..3 {
                let stream = incoming.next().await.unwrap().unwrap();
                peers.insert(stream.peer_addr().unwrap());
            }
            let streams = connector.await.unwrap();
            let expected: HashSet<_> = streams.iter().map(|s| s.local_addr().unwrap()).collect();
            assert_eq!(peers, expected);
        });
    }
}

rt_test! {
    fn std_conversions_round_trip(rt) {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let mut blocking_client = std::net::TcpStream::connect(addr).unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let (server, _) = listener.accept().await.unwrap();
            blocking_client.write_all(b"hi").unwrap();
            let mut server = server;
            let mut got = [0; 2];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hi");
            // Back to std: blocking again.
            let mut std_server = server.into_std().unwrap();
            std_server.write_all(b"yo").unwrap();
            let mut back = [0; 2];
            blocking_client.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"yo");
            let client = TcpStream::from_std(blocking_client).unwrap();
            assert_eq!(client.peer_addr().unwrap(), addr);
            let std_listener = listener.into_std().unwrap();
            assert_eq!(std_listener.local_addr().unwrap(), addr);
        });
    }
}

rt_test! {
    fn connect_to_a_closed_port_is_refused(rt) {
        rt.block_on(async {
            let (listener, addr) = listener().await;
            drop(listener);
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
            let err = TcpStream::connect_timeout(addr, Duration::from_secs(5)).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        });
    }
}

/// Host names are looked up on the blocking pool, never on a scheduler
/// thread. With the pool's only thread held busy, `connect("localhost")`
/// must queue its lookup there and stay pending while the scheduler keeps
/// running this task; once the pool is free the connection completes. A
/// lookup made on the scheduler (inline) never queues, and fails the wait.
#[test]
fn host_names_resolve_off_the_scheduler() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog(
            "host_names_resolve_off_the_scheduler",
            support::RT_LIMIT,
            move || {
                let mut builder = match workers {
                    None => Builder::new_current_thread(),
                    Some(_) => Builder::new_multi_thread(),
                };
                if let Some(n) = workers {
                    builder.worker_threads(n);
                }
                let rt = builder
                    .enable_all()
                    .max_blocking_threads(1)
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (listener, addr) = listener().await;
                    // Hold the pool's only thread until told (bounded).
                    let (busy_tx, busy_rx) = futures::channel::oneshot::channel();
                    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
                    let holder = waitrt::spawn_blocking(move || {
                        busy_tx.send(()).unwrap();
                        release_rx.recv_timeout(Duration::from_secs(30))
                    });
                    busy_rx.await.unwrap();
                    let connect = waitrt::spawn(async move {
                        TcpStream::connect(("localhost", addr.port())).await
                    });
                    // The lookup is queued behind the held thread, and this task
                    // (on the scheduler) keeps running meanwhile. The bound is
                    // a watchdog: the lookup queues at the connect's first poll.
                    let metrics = || waitrt::Handle::current().metrics();
                    let mut waits = 0;
                    while metrics().blocking_queue_depth() == 0 {
                        waits += 1;
                        assert!(
                            waits < 10_000,
                            "connect(\"localhost\") queued no lookup on the blocking pool \
                         (finished: {}): was the name resolved on the scheduler?",
                            connect.is_finished()
                        );
                        waitrt::time::sleep(Duration::from_millis(1)).await;
                    }
                    assert_eq!(metrics().blocking_queue_depth(), 1);
                    assert!(!connect.is_finished(), "connected before the lookup ran");
                    release_tx.send(()).unwrap();
                    holder.await.unwrap().unwrap();
                    // localhost may resolve to ::1 first; one of its addresses works.
                    let stream = connect.await.unwrap().unwrap();
                    let (server, _) = listener.accept().await.unwrap();
                    assert_eq!(stream.local_addr().unwrap(), server.peer_addr().unwrap());
                });
            },
        );
    }
}

rt_test! {
    fn try_read_and_try_write_never_wait(rt) {
        rt.block_on(async {
            let (client, server) = connected().await;
            let err = server.try_read(&mut [0; 4]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            client.writable().await.unwrap();
            assert_eq!(client.try_write(b"ok").unwrap(), 2);
            server.readable().await.unwrap();
            let mut buf = [0; 4];
            assert_eq!(server.try_read(&mut buf).unwrap(), 2);
            assert_eq!(&buf[..2], b"ok");
        });
    }
}

/// A socket kept past its runtime: waits end with an error, nothing hangs.
#[test]
fn io_after_runtime_shutdown_is_an_error() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog("io_after_runtime_shutdown", support::RT_LIMIT, move || {
            let rt = support::build(workers);
            let (server, client, pending_read) = rt.block_on(async {
                let (client, server) = connected().await;
                let server = Arc::new(server);
                // A task asleep in a read when the runtime goes away.
                let reader = server.clone();
                let pending_read = waitrt::spawn(async move {
                    let mut buf = [0; 4];
                    (&*reader).read(&mut buf).await
                });
                waitrt::task::yield_now().await;
                (server, client, pending_read)
            });
            rt.shutdown_timeout(Duration::from_secs(5));
            // The sleeping task was cancelled by shutdown.
            let other = Builder::new_current_thread().build().unwrap();
            let joined = other.block_on(pending_read);
            assert!(joined.unwrap_err().is_shutdown());
            // Later operations fail at once instead of waiting forever.
            let mut buf = [0; 4];
            let mut server_ref = &*server;
            let read = futures::executor::block_on(server_ref.read(&mut buf));
            let err = read.expect_err("no reactor to wait on");
            assert!(err.to_string().contains("shut down"), "{err}");
            let write = futures::executor::block_on((&client).write(b"x"));
            // A write may still fit the socket buffer without waiting; it
            // must never hang. Either outcome is fine, a hang is not.
            let _ = write;
        });
    }
}

/// A socket registered while its runtime has no other source: the driver
/// may then sleep off the reactor (`park.rs`, "No sources"), and the
/// registration must wake it, or the socket's events go unread. A
/// multi-thread runtime's `block_on` thread never drives: its connect and
/// read wait on the idle workers' driver. (Without the wake in
/// `Registration::new`, every round hangs until the watchdog.)
#[test]
fn the_first_socket_wakes_a_driver_asleep_off_the_reactor() {
    for round in 0..10 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"x").unwrap();
        });
        let what = format!("round {round}: a first socket's connect and read");
        support::watchdog(&what, Duration::from_secs(30), move || {
            let rt = Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            // Both workers parked (one as the driver) before the socket
            // exists; the extra millisecond lets the driver reach its sleep.
            for _ in 0..10_000 {
                if rt.metrics().parks() >= 2 {
                    break;
                }
                std::thread::sleep(support::ms(1));
            }
            std::thread::sleep(support::ms(1));
            assert_eq!(rt.metrics().io_sources(), 0, "no source before the socket");
            rt.block_on(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                let mut byte = [0u8; 1];
                conn.read_exact(&mut byte).await.unwrap();
                assert_eq!(&byte, b"x");
            });
        });
        server.join().unwrap();
    }
}

#[test]
fn sockets_need_a_runtime_with_io() {
    let rt = Builder::new_current_thread().enable_time().build().unwrap();
    let err = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect_err("no I/O driver");
    assert!(err.to_string().contains("enable_io"), "{err}");
    let err = futures::executor::block_on(TcpListener::bind("127.0.0.1:0")).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
}

/// Polling a read by hand: `Pending` registers, data wakes it.
#[test]
fn poll_read_wakes_on_data() {
    let rt = support::build(None);
    rt.block_on(async {
        let (mut client, mut server) = connected().await;
        let mut buf = [0; 4];
        let waker = support::CountingWaker::new();
        {
            let mut read = server.read(&mut buf);
            assert!(support::poll_with(&mut read, &waker.waker()).is_pending());
            client.write_all(b"ding").await.unwrap();
            // The reactor runs when this task yields to the scheduler.
            while waker.wakes() == 0 {
                waitrt::task::yield_now().await;
                waitrt::time::sleep(Duration::from_millis(1)).await;
            }
            match support::poll_with(&mut read, &waker.waker()) {
                Poll::Ready(Ok(4)) => {}
                other => panic!("expected 4 bytes, got {other:?}"),
            }
        }
        assert_eq!(&buf, b"ding");
    });
}

use support::PanickingWaker;

/// A panicking waker cannot take the reactor down: the wake is guarded,
/// and every other socket keeps working.
#[test]
fn a_panicking_waker_does_not_stop_the_reactor() {
    for workers in [None, Some(2)] {
        support::watchdog("panicking_waker", support::RT_LIMIT, move || {
            let rt = support::build(workers);
            rt.block_on(async {
                let (listener, addr) = listener().await;
                let mut doomed_client = TcpStream::connect(addr).await.unwrap();
                let (doomed, _) = listener.accept().await.unwrap();
                let waker = std::task::Waker::from(Arc::new(PanickingWaker));
                let mut buf = [0; 4];
                let mut cx = std::task::Context::from_waker(&waker);
                // Registers the panicking waker on the doomed socket.
                let mut reader = &doomed;
                let polled = std::pin::Pin::new(&mut reader).poll_read(&mut cx, &mut buf);
                assert!(polled.is_pending());
                doomed_client.write_all(b"boom").await.unwrap();
                // The reactor wakes it (and survives); other I/O still works.
                spawn_echo_server(listener);
                for _ in 0..20 {
                    let mut client = TcpStream::connect(addr).await.unwrap();
                    client.write_all(b"ping").await.unwrap();
                    let mut back = [0; 4];
                    client.read_exact(&mut back).await.unwrap();
                    assert_eq!(&back, b"ping");
                }
                drop(doomed);
            });
        });
    }
}

/// One event that makes a socket readable and writable at once (the
/// peer's reset) wakes its writer even when its reader's waker panics:
/// the write side's wake must not be skipped, since the edge does not
/// come again (an independent probe: the writer slept for good).
#[test]
fn a_panicking_reader_waker_does_not_strand_the_writer() {
    for workers in [None, Some(2)] {
        support::watchdog("panicking_reader", support::RT_LIMIT, move || {
            let mut builder = match workers {
                None => Builder::new_current_thread(),
                Some(n) => {
                    let mut b = Builder::new_multi_thread();
                    b.worker_threads(n);
                    b
                }
            };
            let rt = builder.enable_all().wait_registry(true).build().unwrap();
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = peer.local_addr().unwrap();
            let (reset_tx, reset_rx) = std::sync::mpsc::channel::<()>();
            let resetter = std::thread::spawn(move || {
                let (peer, _) = peer.accept().unwrap();
                // Reset (SO_LINGER 0) when told, or at the watchdog.
                let _ = reset_rx.recv_timeout(support::RT_LIMIT);
                socket2::SockRef::from(&peer)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            });
            rt.block_on(async {
                let stream = Arc::new(TcpStream::connect(addr).await.unwrap());
                let writer = {
                    let stream = stream.clone();
                    waitrt::spawn(async move {
                        let chunk = vec![0u8; 65536];
                        // Fill the send buffer (the peer never reads).
                        for _ in 0..10_000 {
                            match stream.try_write(&chunk) {
                                Ok(_) => continue,
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => panic!("{e}"),
                            }
                        }
                        stream.writable().await
                    })
                };
                let handle = waitrt::Handle::current();
                for _ in 0..4_000 {
                    let dump = handle.dump();
                    if dump.task(writer.id()).is_some_and(|t| !t.waits.is_empty()) {
                        break;
                    }
                    waitrt::time::sleep(Duration::from_millis(5)).await;
                }
                // The reader sleeps with a waker that panics (a read that
                // would block first clears a readiness seen at connect).
                let mut byte = [0u8; 1];
                let read = stream.try_read(&mut byte);
                assert_eq!(read.unwrap_err().kind(), io::ErrorKind::WouldBlock);
                let waker = std::task::Waker::from(Arc::new(PanickingWaker));
                let mut reader = Box::pin(stream.readable());
                let mut cx = std::task::Context::from_waker(&waker);
                assert!(std::future::Future::poll(reader.as_mut(), &mut cx).is_pending());
                reset_tx.send(()).unwrap();
                let woke = waitrt::time::timeout(support::RT_LIMIT / 2, writer).await;
                assert!(woke.is_ok(), "the writer was never woken");
                drop(reader);
            });
            resetter.join().unwrap();
        });
    }
}

/// A runtime shutting down tells every source's waiters, even past a
/// source whose waiter's waker panics: a waiter polled on another runtime
/// for a socket of the dropped one gets the shutdown error (an independent
/// review: the shutdown loop stopped at the panic, and the drop panicked).
#[test]
fn shutdown_reaches_every_source_past_a_panicking_waker() {
    support::watchdog("shutdown_past_panic", support::RT_LIMIT, || {
        let a = support::build(Some(1));
        let b = support::build(None);
        let (doomed, watched, _peers) = a.block_on(async {
            let (first, first_peer) = connected().await;
            let (second, second_peer) = connected().await;
            (first, second, (first_peer, second_peer))
        });
        // The first source's reader sleeps with a waker that panics (a
        // read that would block first clears a readiness seen at connect).
        let would_block = |s: &TcpStream| s.try_read(&mut [0u8; 1]).unwrap_err().kind();
        assert_eq!(would_block(&doomed), io::ErrorKind::WouldBlock);
        assert_eq!(would_block(&watched), io::ErrorKind::WouldBlock);
        let waker = std::task::Waker::from(Arc::new(PanickingWaker));
        let mut reader = Box::pin(doomed.readable());
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::future::Future::poll(reader.as_mut(), &mut cx).is_pending());
        let watcher = b.spawn(async move { watched.readable().await });
        b.block_on(async {
            for _ in 0..100 {
                waitrt::task::yield_now().await;
            }
        });
        drop(a);
        let woke =
            b.block_on(async { waitrt::time::timeout(support::RT_LIMIT / 2, watcher).await });
        let ended = woke.expect("the second source's waiter never heard of the shutdown");
        assert!(ended.unwrap().is_err(), "not the shutdown error");
        drop(reader);
    });
}

rt_test! {
    fn busy_tasks_do_not_starve_the_reactor(rt) {
        rt.block_on(async {
            use std::sync::atomic::{AtomicBool, Ordering};
            let (listener, addr) = listener().await;
            spawn_echo_server(listener);
            // Spinners that are always runnable: the scheduler never idles,
            // so I/O is seen only through the every-N-polls driver check.
            let stop = Arc::new(AtomicBool::new(false));
            let spinners: Vec<_> = (0..4)
                .map(|_| {
                    let stop = stop.clone();
                    waitrt::spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            waitrt::task::yield_now().await;
                        }
                    })
                })
                .collect();
            let mut client = TcpStream::connect(addr).await.unwrap();
            for _ in 0..50 {
                client.write_all(b"spin").await.unwrap();
                let mut back = [0; 4];
                client.read_exact(&mut back).await.unwrap();
                assert_eq!(&back, b"spin");
            }
            stop.store(true, Ordering::Relaxed);
            for spinner in spinners {
                spinner.await.unwrap();
            }
        });
    }
}

rt_test! {
    /// A socket whose reads are always ready spends the cooperative
    /// budget: a loop reading it byte by byte yields to other tasks (on
    /// the current-thread flavour nothing else could run otherwise).
    fn a_read_loop_over_a_ready_socket_yields(rt) {
        const LEN: usize = 4096;
        rt.block_on(async {
            let (mut client, server) = connected().await;
            client.write_all(&[7; LEN]).await.unwrap();
            let reader = waitrt::spawn(async move {
                let mut server = server;
                // Wait until everything arrived, so every read below is
                // ready at once.
                let mut peek = [0u8; LEN];
                let mut first = 0;
                while first == 0 {
                    first = server.read(&mut peek[..1]).await.unwrap();
                }
                let other_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let o = other_ran.clone();
                let other = waitrt::spawn(async move {
                    o.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                let mut reads_before_other = 0;
                let mut byte = [0u8; 1];
                for _ in 1..LEN {
                    assert_eq!(server.read(&mut byte).await.unwrap(), 1);
                    if !other_ran.load(std::sync::atomic::Ordering::SeqCst) {
                        reads_before_other += 1;
                    }
                }
                other.await.unwrap();
                reads_before_other
            });
            let reads_before_other = reader.await.unwrap();
            assert!(
                reads_before_other < LEN - 1,
                "{} ready reads in a row never yielded",
                LEN - 1
            );
            drop(client);
        });
    }
}

/// Out of file descriptors, `accept_with_backoff` pauses instead of
/// spinning (issue 25: a plain loop made ~120k accept calls a second), and
/// accepts again once descriptors are freed. Runs in a child process under
/// `ulimit -n 64` so exhausting descriptors touches nothing else.
#[test]
fn accept_backs_off_when_out_of_descriptors() {
    const CHILD: &str = "NET_TCP_ACCEPT_BACKOFF_CHILD";
    if std::env::var_os(CHILD).is_some() {
        accept_backoff_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" accept_backs_off_when_out_of_descriptors --exact --nocapture --test-threads=1"#)
        .arg(exe)
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Watchdog: 60 s in 50 ms steps.
    let mut status = None;
    for _ in 0..1200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(status.is_some(), "child hung:\n{text}");
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
}

fn accept_backoff_child() {
    use waitrt::net::{is_resource_exhaustion, AcceptBackoff};
    use waitrt::time::timeout;
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (listener, addr) = listener().await;
        // Connected before the descriptors run out: the handshakes complete
        // in the backlog, so the listener is readable from here on.
        let mut clients: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut hog = Vec::new();
        for _ in 0..1000 {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) if e.raw_os_error() == Some(24) => break,
                Err(e) => panic!("opening /dev/null: {e}"),
            }
        }
        assert!(hog.len() < 1000, "the descriptor limit applies");
        let mut backoff = AcceptBackoff::new();
        // The first failure of the episode is returned, once.
        let first = timeout(
            Duration::from_secs(10),
            listener.accept_with_backoff(&mut backoff),
        )
        .await
        .expect("the first failure is returned at once");
        let e = first.expect_err("no descriptor left");
        assert!(is_resource_exhaustion(&e), "{e}");
        assert!(backoff.in_episode());
        // Then silent retries with growing pauses; 500 ms of them is a
        // handful of accept calls (the pauses bound it from above), where a
        // plain loop makes tens of thousands.
        let quiet = timeout(
            Duration::from_millis(500),
            listener.accept_with_backoff(&mut backoff),
        )
        .await;
        assert!(
            quiet.is_err(),
            "nothing is accepted and nothing returned while out of descriptors"
        );
        assert!(
            backoff.failures() <= 50,
            "{} accept calls while out of descriptors",
            backoff.failures()
        );
        assert!(backoff.failures() >= 2);
        // Descriptors freed: the next accept succeeds and the episode ends,
        // also in a loop whose calls are cut short every 50 ms (a `select!`
        // with a tick), shorter than the pause reached by now (160 ms or
        // more). Found by an independent probe: each call started its pause
        // over, so such a loop never accepted again (8 s, every run).
        drop(hog);
        let mut accepted = None;
        for _ in 0..200 {
            let cut_short = Duration::from_millis(50);
            if let Ok(result) = timeout(cut_short, listener.accept_with_backoff(&mut backoff)).await
            {
                accepted = Some(result);
                break;
            }
        }
        let (mut conn, _) = accepted
            .expect("accepts again once descriptors are freed, calls cut short or not")
            .unwrap();
        assert!(!backoff.in_episode());
        assert_eq!(backoff.episodes(), 1);
        conn.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        clients[0]
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        clients[0].read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        clients.clear();
    });
}

rt_test! {
    /// `writable()` likewise: a writer that returns from it and writes
    /// nothing leaves the next writer woken once the peer drains the send
    /// buffer (see net_udp's `a_readable_that_reads_nothing_*`).
    fn a_writable_that_writes_nothing_leaves_the_next_writer_woken(rt) {
        rt.block_on(async {
            let (client, mut server) = connected().await;
            let client = Arc::new(client);
            // Fill the send buffer: the peer reads nothing yet.
            let chunk = vec![7u8; 65536];
            let mut sent = 0usize;
            for _ in 0..10_000 {
                match client.try_write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let (release, held) = waitrt::sync::oneshot::channel::<()>();
            let observer = {
                let client = client.clone();
                waitrt::spawn(async move {
                    client.writable().await.unwrap();
                    // Holds on without writing.
                    let _ = held.await;
                })
            };
            support::until_asleep(observer.id()).await;
            let writer = {
                let client = client.clone();
                waitrt::spawn(async move {
                    loop {
                        client.writable().await.unwrap();
                        match client.try_write(b"last") {
                            Ok(n) => return n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            };
            support::until_asleep(writer.id()).await;
            // The peer drains everything sent so far.
            let drain = waitrt::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = 0;
                while got < sent {
                    got += server.read(&mut buf).await.unwrap();
                }
                server
            });
            let n = waitrt::time::timeout(support::RT_LIMIT / 2, writer)
                .await
                .expect("the second writer was never woken");
            assert!(n.unwrap() > 0);
            release.send(()).unwrap();
            observer.await.unwrap();
            drop(drain.await.unwrap());
        });
    }
}
