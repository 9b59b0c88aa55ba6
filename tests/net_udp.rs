//! UDP over the reactor, on real loopback sockets, on every scheduler
//! flavour (current-thread, mt(1), mt(2)) through `rt_test!`.
//!
//! Covered: echo round trips, `send_to`/`recv_from`/`peek_from` addresses,
//! `peek`/`peek_sender` on a connected socket,
//! connected sockets (and that they ignore other senders), 1,000
//! datagrams in order, truncation, many tasks receiving on one
//! `Arc<UdpSocket>` (each datagram reaches exactly one), receive futures
//! dropped mid-wait (no datagram lost, the wake handed on), the `poll_*`
//! and `try_*` methods, socket options, multicast join/leave, std
//! conversions, and sockets outliving their runtime (an error, not a
//! hang).
#[macro_use]
mod support;

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use waitrt::net::UdpSocket;
use waitrt::sync::WaitQueue;
use waitrt::time::{sleep, timeout};
use waitrt::Builder;

async fn bind() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Generous: only a lost datagram or a lost wake-up gets near it.
const LONG: Duration = Duration::from_secs(10);

/// A counter tasks can wait on.
#[derive(Default)]
struct Counter {
    n: AtomicUsize,
    queue: WaitQueue,
}

impl Counter {
    fn inc(&self) {
        self.n.fetch_add(1, SeqCst);
        self.queue.wake_up_all();
    }
    async fn wait_for(&self, n: usize) {
        self.queue
            .wait_event(|| self.n.load(SeqCst) >= n)
            .await
            .unwrap();
    }
}

rt_test! {
    fn echo_round_trips(rt) {
        rt.block_on(async {
            let (server, server_addr) = bind().await;
            waitrt::spawn(async move {
                let mut buf = [0; 1500];
                while let Ok((n, from)) = server.recv_from(&mut buf).await {
                    server.send_to(&buf[..n], from).await.unwrap();
                }
            });
            let (client, _) = bind().await;
            for round in 0..200u32 {
                client.send_to(&round.to_le_bytes(), server_addr).await.unwrap();
                let mut back = [0; 8];
                let (n, from) = client.recv_from(&mut back).await.unwrap();
                assert_eq!((n, from), (4, server_addr), "round {round}");
                assert_eq!(back[..4], round.to_le_bytes(), "round {round}");
            }
        });
    }
}

rt_test! {
    fn send_to_and_recv_from_report_addresses(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, b_addr) = bind().await;
            assert_ne!(a_addr.port(), 0, "port 0 picks a real port");
            // A "host:port" string resolves too.
            let sent = a.send_to(b"hello", format!("127.0.0.1:{}", b_addr.port())).await;
            assert_eq!(sent.unwrap(), 5);
            let mut buf = [0; 16];
            let (n, from) = b.peek_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"hello"[..], a_addr));
            // Peeking left it queued.
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"hello"[..], a_addr));
            b.send_to(b"back", a_addr).await.unwrap();
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"back"[..], b_addr));
            // Unconnected: no peer, and `send` has nowhere to go (the
            // kernel's EDESTADDRREQ, as its docs say).
            assert_eq!(a.peer_addr().unwrap_err().kind(), io::ErrorKind::NotConnected);
            let unsent = a.send(b"x").await.unwrap_err();
            assert_eq!(unsent.raw_os_error(), Some(89), "EDESTADDRREQ: {unsent}");
        });
    }
}

rt_test! {
    fn peek_and_peek_sender_leave_the_datagram_queued(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, b_addr) = bind().await;
            b.connect(a_addr).await.unwrap();
            // Both wait for the datagram: it is sent after they sleep.
            let sender = waitrt::spawn(async move {
                sleep(Duration::from_millis(20)).await;
                a.send_to(b"peeked", b_addr).await.unwrap();
                a
            });
            let mut buf = [0; 16];
            let from = timeout(LONG, b.peek_sender()).await.unwrap().unwrap();
            assert_eq!(from, a_addr);
            let n = timeout(LONG, b.peek(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], b"peeked");
            // A short buffer truncates the peek, not the datagram.
            let mut short = [0; 3];
            assert_eq!(b.peek(&mut short).await.unwrap(), 3);
            assert_eq!(&short, b"pee");
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"peeked", "peeking consumed the datagram");
            assert!(matches!(
                b.try_recv(&mut buf),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ));
            drop(sender.await.unwrap());
        });
    }
}

rt_test! {
    fn connected_socket_ignores_other_senders(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, b_addr) = bind().await;
            let (stranger, _) = bind().await;
            a.connect(b_addr).await.unwrap();
            b.connect(a_addr).await.unwrap();
            assert_eq!(a.peer_addr().unwrap(), b_addr);
            // The stranger's datagram is sent first but filtered out.
            stranger.send_to(b"spam", a_addr).await.unwrap();
            b.send(b"from b").await.unwrap();
            let mut buf = [0; 16];
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"from b");
            let (n, from) = timeout(LONG, async {
                a.send(b"reply").await.unwrap();
                b.recv_from(&mut buf).await.unwrap()
            })
            .await
            .unwrap();
            assert_eq!((&buf[..n], from), (&b"reply"[..], a_addr));
            // Nothing else is queued for `a`: the spam never arrived.
            sleep(Duration::from_millis(20)).await;
            let err = a.try_recv(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        });
    }
}

rt_test! {
    fn a_thousand_datagrams_arrive_in_order(rt) {
        const COUNT: u32 = 1000;
        // Back-pressure: the sender waits for an ack after each batch, so
        // the receive buffer never overflows and nothing is dropped.
        const BATCH: u32 = 50;
        rt.block_on(async {
            let (rx, rx_addr) = bind().await;
            let (tx, tx_addr) = bind().await;
            rx.connect(tx_addr).await.unwrap();
            tx.connect(rx_addr).await.unwrap();
            let receiver = waitrt::spawn(async move {
                let mut buf = [0; 8];
                for expected in 0..COUNT {
                    let n = rx.recv(&mut buf).await.unwrap();
                    assert_eq!(n, 4);
                    let got = u32::from_le_bytes(buf[..4].try_into().unwrap());
                    assert_eq!(got, expected, "out of order");
                    if (expected + 1) % BATCH == 0 {
                        rx.send(&expected.to_le_bytes()).await.unwrap();
                    }
                }
            });
            let mut ack = [0; 8];
            for batch in 0..COUNT / BATCH {
                for seq in batch * BATCH..(batch + 1) * BATCH {
                    tx.send(&seq.to_le_bytes()).await.unwrap();
                }
                let n = timeout(LONG, tx.recv(&mut ack)).await.expect("ack lost").unwrap();
                assert_eq!(ack[..n], ((batch + 1) * BATCH - 1).to_le_bytes());
            }
            receiver.await.unwrap();
        });
    }
}

rt_test! {
    fn a_long_datagram_is_truncated_and_the_next_one_kept(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, _) = bind().await;
            let long: Vec<u8> = (0..100).collect();
            b.send_to(&long, a_addr).await.unwrap();
            b.send_to(b"next", a_addr).await.unwrap();
            let mut small = [0; 10];
            let (n, _) = a.recv_from(&mut small).await.unwrap();
            assert_eq!((n, &small[..]), (10, &long[..10]));
            let mut buf = [0; 100];
            let (n, _) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"next", "the rest of the long one was discarded");
        });
    }
}

rt_test! {
    fn many_receivers_each_datagram_reaches_exactly_one(rt) {
        const TASKS: usize = 8;
        const COUNT: u32 = 2000;
        const BATCH: u32 = 50;
        const STOP: u32 = u32::MAX;
        rt.block_on(async {
            let (socket, addr) = bind().await;
            let socket = Arc::new(socket);
            let received = Arc::new(Counter::default());
            let receivers: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (socket, received) = (socket.clone(), received.clone());
                    waitrt::spawn(async move {
                        let mut mine = Vec::new();
                        let mut buf = [0; 8];
                        loop {
                            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                            let seq = u32::from_le_bytes(buf[..n].try_into().unwrap());
                            if seq == STOP {
                                return mine;
                            }
                            mine.push(seq);
                            received.inc();
                        }
                    })
                })
                .collect();
            let (tx, _) = bind().await;
            for batch in 0..COUNT / BATCH {
                for seq in batch * BATCH..(batch + 1) * BATCH {
                    tx.send_to(&seq.to_le_bytes(), addr).await.unwrap();
                }
                let want = ((batch + 1) * BATCH) as usize;
                timeout(LONG, received.wait_for(want)).await.expect("datagram lost or wake lost");
            }
            // One stop per task: each task leaves after its first.
            for _ in 0..TASKS {
                tx.send_to(&STOP.to_le_bytes(), addr).await.unwrap();
            }
            let mut all = Vec::new();
            for receiver in receivers {
                all.extend(timeout(LONG, receiver).await.expect("receiver hung").unwrap());
            }
            all.sort_unstable();
            assert_eq!(all, (0..COUNT).collect::<Vec<_>>());
        });
    }
}

rt_test! {
    fn a_dropped_recv_future_loses_no_datagram(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, _) = bind().await;
            let mut buf = [0; 16];
            // Dropped before anything arrives.
            {
                let mut recv = pin!(a.recv_from(&mut buf));
                assert!(futures::poll!(recv.as_mut()).is_pending());
            }
            // Dropped by `timeout` mid-wait.
            assert!(timeout(Duration::from_millis(5), a.recv_from(&mut buf)).await.is_err());
            // Dropped after the datagram woke it, without being polled.
            {
                let mut recv = pin!(a.recv_from(&mut buf));
                assert!(futures::poll!(recv.as_mut()).is_pending());
                b.send_to(b"one", a_addr).await.unwrap();
                sleep(Duration::from_millis(20)).await;
            }
            let mut buf = [0; 16];
            let (n, _) = timeout(LONG, a.recv_from(&mut buf)).await.expect("lost").unwrap();
            assert_eq!(&buf[..n], b"one");
        });
    }
}

rt_test! {
    fn a_woken_then_dropped_waiter_hands_the_wake_on(rt) {
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let a = Arc::new(a);
            let (b, _) = bind().await;
            let mut buf = [0; 16];
            let mut first = Box::pin(a.recv_from(&mut buf));
            // `first` queues before `second`, so the datagram wakes it.
            assert!(futures::poll!(first.as_mut()).is_pending());
            let other = a.clone();
            let second = waitrt::spawn(async move {
                let mut buf = [0; 16];
                let (n, _) = other.recv_from(&mut buf).await.unwrap();
                buf[..n].to_vec()
            });
            sleep(Duration::from_millis(20)).await; // `second` is asleep
            b.send_to(b"two", a_addr).await.unwrap();
            sleep(Duration::from_millis(20)).await; // `first` was woken
            drop(first);
            let got = timeout(LONG, second).await.expect("the wake was not handed on");
            assert_eq!(got.unwrap(), b"two");
        });
    }
}

rt_test! {
    fn poll_and_try_methods(rt) {
        use std::future::poll_fn;
        rt.block_on(async {
            let (a, a_addr) = bind().await;
            let (b, b_addr) = bind().await;
            let mut buf = [0; 16];
            let err = a.try_recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            let n = poll_fn(|cx| b.poll_send_to(cx, b"polled", a_addr)).await.unwrap();
            assert_eq!(n, 6);
            let (n, from) = poll_fn(|cx| a.poll_recv_from(cx, &mut buf)).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"polled"[..], b_addr));
            b.writable().await.unwrap();
            assert_eq!(b.try_send_to(b"tried", a_addr).unwrap(), 5);
            a.readable().await.unwrap();
            let (n, from) = a.try_recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"tried"[..], b_addr));
            a.connect(b_addr).await.unwrap();
            b.connect(a_addr).await.unwrap();
            poll_fn(|cx| a.poll_send(cx, b"conn")).await.unwrap();
            let n = poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap();
            assert_eq!(&buf[..n], b"conn");
            assert_eq!(b.try_send(b"t").unwrap(), 1);
            a.readable().await.unwrap();
            assert_eq!(a.try_recv(&mut buf).unwrap(), 1);
        });
    }
}

/// Polls `future` and counts its polls.
struct CountPolls<'a, F> {
    future: std::pin::Pin<&'a mut F>,
    polls: &'a AtomicUsize,
}

impl<F: std::future::Future> std::future::Future for CountPolls<'_, F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        self.future.as_mut().poll(cx)
    }
}

rt_test! {
    // A connected socket sends to a closed port: the kernel's ICMP "port
    // unreachable" comes back as the socket's pending error, which the
    // next receive returns (`ConnectionRefused`) and so takes. A receive
    // after it has nothing to read and must sleep. Found by an independent
    // probe: the reactor kept the error bit set for good, so every later
    // wait returned at once and the task spun (a core busy for the whole of
    // a 1 s timeout, 10 of 10 runs; tokio sleeps). Here the second receive
    // is polled a handful of times in 200 ms, where the spin polled it
    // hundreds of thousands of times.
    fn a_socket_error_taken_by_a_receive_does_not_keep_waking_receivers(rt) {
        rt.block_on(async {
            let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let (socket, _) = bind().await;
            socket.connect(closed).await.unwrap();
            let socket = Arc::new(socket);
            let receiver = {
                let socket = socket.clone();
                waitrt::spawn(async move {
                    let mut buf = [0; 16];
                    let first = timeout(LONG, socket.recv(&mut buf)).await.expect("no error");
                    assert_eq!(first.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
                    let polls = AtomicUsize::new(0);
                    let recv = pin!(socket.recv(&mut buf));
                    let counted = CountPolls { future: recv, polls: &polls };
                    assert!(timeout(Duration::from_millis(200), counted).await.is_err());
                    polls.load(SeqCst)
                })
            };
            // Sent once the receiver sleeps in its first receive.
            sleep(Duration::from_millis(20)).await;
            socket.send(b"x").await.unwrap();
            let polls = receiver.await.unwrap();
            assert!(polls < 100, "the second receive was polled {polls} times: it spun");
        });
    }
}

rt_test! {
    fn socket_options(rt) {
        rt.block_on(async {
            let (socket, addr) = bind().await;
            socket.set_broadcast(true).unwrap();
            assert!(socket.broadcast().unwrap());
            socket.set_broadcast(false).unwrap();
            assert!(!socket.broadcast().unwrap());
            socket.set_ttl(42).unwrap();
            assert_eq!(socket.ttl().unwrap(), 42);
            socket.set_multicast_ttl_v4(3).unwrap();
            assert_eq!(socket.multicast_ttl_v4().unwrap(), 3);
            socket.set_multicast_loop_v4(false).unwrap();
            assert!(!socket.multicast_loop_v4().unwrap());
            assert!(socket.take_error().unwrap().is_none());
            let debug = format!("{socket:?}");
            assert!(debug.contains("UdpSocket") && debug.contains(&addr.to_string()), "{debug}");
        });
    }
}

/// A skipped check: under `CI=true` it fails (CI must run everything);
/// elsewhere the reason goes straight to stderr, which `cargo test` shows
/// even for a passing test (`eprintln!` would be captured with stdout).
#[track_caller]
fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot skip under CI=true: {reason}");
    }
    let _ = writeln!(io::stderr().lock(), "SKIP: {reason}");
}

/// Index of the loopback interface (`lo`), for the IPv6 multicast options.
fn loopback_index() -> io::Result<u32> {
    let text = std::fs::read_to_string("/sys/class/net/lo/ifindex")?;
    text.trim()
        .parse()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, format!("lo ifindex: {err}")))
}

/// A multicast sender that can only reach this host: bound to 127.0.0.1,
/// its multicast interface is loopback, its own datagrams loop back, and
/// a TTL of 0 lets the kernel deliver them locally but never transmit them
/// on any link. Each option is read back before the socket is used.
fn loopback_multicast_sender() -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(0)?;
    assert_eq!(socket.multicast_if_v4()?, Ipv4Addr::LOCALHOST);
    assert!(socket.multicast_loop_v4()?);
    assert_eq!(socket.multicast_ttl_v4()?, 0);
    let local = socket.local_addr()?.as_socket().expect("an IP socket");
    assert_eq!(local.ip(), Ipv4Addr::LOCALHOST, "sender bound to {local}");
    UdpSocket::from_std(socket.into())
}

rt_test! {
    fn multicast_join_and_leave(rt) {
        // Everything stays on `lo`: groups are joined on the loopback
        // interface, and the sender is loopback-only (see
        // `loopback_multicast_sender`), so no datagram leaves the host.
        let group = Ipv4Addr::new(239, 255, 42, 99);
        rt.block_on(async {
            // Receives only (a group member binds the wildcard address).
            let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
            if let Err(err) = socket.join_multicast_v4(group, Ipv4Addr::LOCALHOST) {
                return skip(&format!("the kernel refuses IPv4 multicast on lo: {err}"));
            }
            socket.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
            let err = socket.leave_multicast_v4(group, Ipv4Addr::LOCALHOST);
            assert!(err.is_err(), "left a group twice");
            socket.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
            // Delivery, looped back on lo by a sender that cannot reach
            // any other interface.
            let port = socket.local_addr().unwrap().port();
            let sender = match loopback_multicast_sender() {
                Ok(sender) => sender,
                Err(err) => return skip(&format!("no loopback-only multicast sender: {err}")),
            };
            if let Err(err) = sender.send_to(b"group", (group, port)).await {
                return skip(&format!("the kernel refuses multicast on lo: {err}"));
            }
            let mut buf = [0; 16];
            let (n, from) = timeout(LONG, socket.recv_from(&mut buf))
                .await
                .expect("the looped-back datagram arrives")
                .unwrap();
            assert_eq!((&buf[..n], from), (&b"group"[..], sender.local_addr().unwrap()));
            socket.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();

            // IPv6: join and leave on lo only. No send: Linux gives lo no
            // IPv6 multicast route (`ip -6 route get ff02::1 oif lo` is
            // unreachable), and any other interface would leave the host.
            let lo = match loopback_index() {
                Ok(lo) => lo,
                Err(err) => return skip(&format!("no index for lo: {err}")),
            };
            let v6 = match UdpSocket::bind("[::1]:0").await {
                Ok(v6) => v6,
                Err(err) => return skip(&format!("no IPv6 loopback: {err}")),
            };
            let group6: Ipv6Addr = "ff02::4242".parse().unwrap();
            if let Err(err) = v6.join_multicast_v6(&group6, lo) {
                return skip(&format!("the kernel refuses IPv6 multicast on lo: {err}"));
            }
            v6.leave_multicast_v6(&group6, lo).unwrap();
            assert!(v6.leave_multicast_v6(&group6, lo).is_err(), "left a group twice");
        });
    }
}

rt_test! {
    fn std_conversions_round_trip(rt) {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = std_socket.local_addr().unwrap();
        rt.block_on(async move {
            let socket = UdpSocket::try_from(std_socket).unwrap();
            let (peer, peer_addr) = bind().await;
            peer.send_to(b"in", addr).await.unwrap();
            let mut buf = [0; 4];
            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"in");
            // Back to std: blocking again, so a receive waits for the
            // datagram sent later instead of failing with WouldBlock.
            let std_socket = socket.into_std().unwrap();
            let waiter = std::thread::spawn(move || {
                let mut buf = [0; 4];
                let n = std_socket.recv(&mut buf).unwrap();
                (buf[..n].to_vec(), std_socket)
            });
            sleep(Duration::from_millis(50)).await;
            peer.send_to(b"late", addr).await.unwrap();
            let (got, std_socket) = waiter.join().unwrap();
            assert_eq!(got, b"late");
            let again = UdpSocket::from_std(std_socket).unwrap();
            again.send_to(b"ok", peer_addr).await.unwrap();
            let (n, from) = peer.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"ok"[..], addr));
        });
    }
}

/// A socket kept past its runtime: waits end with an error, nothing hangs.
#[test]
fn io_after_runtime_shutdown_is_an_error() {
    for workers in [None, Some(1), Some(2)] {
        support::watchdog(
            "udp io_after_runtime_shutdown",
            support::RT_LIMIT,
            move || {
                let rt = support::build(workers);
                let socket = Arc::new(rt.block_on(async { bind().await.0 }));
                // A receive asleep on a foreign thread when the runtime goes.
                let waiting = socket.clone();
                let pending = std::thread::spawn(move || {
                    let mut buf = [0; 4];
                    futures::executor::block_on(waiting.recv_from(&mut buf))
                });
                std::thread::sleep(Duration::from_millis(20));
                rt.shutdown_timeout(Duration::from_secs(5));
                let err = pending.join().unwrap().expect_err("nothing was sent");
                assert!(err.to_string().contains("shut down"), "{err}");
                // Later operations fail at once, in a fresh runtime or not.
                let other = support::build(workers);
                let mut buf = [0; 4];
                let err = other.block_on(socket.recv_from(&mut buf)).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
                let target = socket.local_addr().unwrap();
                let err = other.block_on(socket.send_to(b"x", target)).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
                let err = socket.try_recv_from(&mut buf).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
                let err = futures::executor::block_on(socket.readable()).unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
            },
        );
    }
}

#[test]
fn sockets_need_a_runtime_with_io() {
    let rt = Builder::new_current_thread().enable_time().build().unwrap();
    let err = rt
        .block_on(UdpSocket::bind("127.0.0.1:0"))
        .expect_err("no I/O driver");
    assert!(err.to_string().contains("enable_io"), "{err}");
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = UdpSocket::from_std(std_socket).unwrap_err();
    assert!(err.to_string().contains("enable_io"), "{err}");
}

use support::PanickingWaker;

rt_test! {
    /// A receive that succeeds passes the readiness on to the next reader;
    /// that reader's panicking waker must not unwind through the receive
    /// and lose the datagram (an independent probe: the receiving task
    /// died with the other's panic and the datagram was gone).
    fn a_panicking_readers_waker_costs_the_receiver_nothing(rt) {
        rt.block_on(async {
            let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let addr = socket.local_addr().unwrap();
            let receiver = {
                let socket = socket.clone();
                waitrt::spawn(async move {
                    let mut buf = [0u8; 16];
                    let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                    buf[..n].to_vec()
                })
            };
            // The receiver sleeps first (it is then the one the datagram
            // wakes, and it passes the wake on to the panicking reader):
            // its sleep is seen in a dump.
            let handle = waitrt::Handle::current();
            for _ in 0..4_000 {
                let dump = handle.dump();
                if dump.task(receiver.id()).is_some_and(|t| !t.waits.is_empty()) {
                    break;
                }
                sleep(Duration::from_millis(5)).await;
            }
            let waker = std::task::Waker::from(Arc::new(PanickingWaker));
            let mut doomed = Box::pin(socket.readable());
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(std::future::Future::poll(doomed.as_mut(), &mut cx).is_pending());
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(b"hello", addr).unwrap();
            let got = timeout(Duration::from_secs(20), receiver).await.unwrap();
            assert_eq!(got.expect("the receiving task died").as_slice(), b"hello");
            drop(doomed);
        });
    }
}

rt_test! {
    /// `readable()` reports readiness and reads nothing, so it takes no
    /// wake from a task that then reads: a task that returns from it and
    /// does no I/O leaves the socket's next waiter woken (tokio's waits
    /// wake every waiter; the kernel's poll waits are non-exclusive). The
    /// readiness wait was an exclusive one that passed nothing on, so the
    /// receiver behind it slept for good, whatever came after (an
    /// independent probe of the reactor).
    fn a_readable_that_reads_nothing_leaves_the_next_reader_woken(rt) {
        rt.block_on(async {
            let (socket, addr) = bind().await;
            let socket = Arc::new(socket);
            // A fresh socket is assumed ready; a read that would block
            // clears that, so the waits below sleep.
            let err = socket.try_recv_from(&mut [0u8; 8]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            let (release, held) = waitrt::sync::oneshot::channel::<()>();
            let observer = {
                let socket = socket.clone();
                waitrt::spawn(async move {
                    socket.readable().await.unwrap();
                    // Holds on without reading.
                    let _ = held.await;
                })
            };
            support::until_asleep(observer.id()).await;
            let reader = {
                let socket = socket.clone();
                waitrt::spawn(async move {
                    let mut buf = [0u8; 16];
                    socket.recv_from(&mut buf).await.map(|(n, _)| buf[..n].to_vec())
                })
            };
            support::until_asleep(reader.id()).await;
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.send_to(b"hello", addr).unwrap();
            let got = timeout(LONG, reader).await.expect("the reader was never woken");
            assert_eq!(got.unwrap().unwrap(), b"hello");
            release.send(()).unwrap();
            observer.await.unwrap();
        });
    }
}
