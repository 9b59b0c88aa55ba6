//! Every async wait of `waitrt::sync`, the task handles, the sockets
//! (their async methods and, from a hand-written future, their `poll_*`
//! methods), `AsyncFd` and `process` is listed in a dump at its caller's
//! line, on a named queue (issue 22: "waits at" must say where the user's
//! code sleeps, not which file of the runtime holds the wait). The last
//! test: waits inside `futures::io` trait methods, which cannot name the
//! user's line, are on queues named for their socket.
//!
//! One task per wait, each asleep for good; then one dump, checked task by
//! task. A wait listed inside `runtime/src/...` fails here with its name.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitrt::obs::Dump;
use waitrt::sync::{
    broadcast, mpsc, oneshot, watch, Barrier, Mutex, OnceCell, RwLock, Semaphore, WaitQueue,
};
use waitrt::task::{JoinHandle, JoinSet};
use waitrt::{Builder, Runtime};

/// Every wait in this test gives up after this.
const WATCHDOG: Duration = Duration::from_secs(20);
/// Longer than the test: a timed wait that must not end.
const HOUR: Duration = Duration::from_secs(3600);

static NEVER: WaitQueue = WaitQueue::named("obs_sites_never");

fn runtime() -> Runtime {
    let mut builder = Builder::new_multi_thread();
    builder.worker_threads(2);
    builder.enable_all().wait_registry(true).build().unwrap()
}

/// One sleeping task and the line its wait was written on.
struct Case {
    what: &'static str,
    line: u32,
    task: JoinHandle<()>,
}

/// Spawns `$wait.await` as a task, noting the line the macro is invoked
/// on (`line!()` inside a macro gives its invocation's line): the wait's
/// call is on it or a few lines below.
macro_rules! case {
    ($cases:ident, $rt:ident, $what:literal, $wait:expr) => {{
        let line = line!();
        let task = $rt.spawn(async move {
            let _ = $wait.await;
        });
        $cases.push(Case {
            what: $what,
            line,
            task,
        });
    }};
}

/// The checks: each case's task is asleep on a named queue at its line.
fn misplaced(dump: &Dump, cases: &[Case]) -> Vec<String> {
    let mut wrong = Vec::new();
    for case in cases {
        let Some(task) = dump.task(case.task.id()) else {
            wrong.push(format!("{}: not in the dump", case.what));
            continue;
        };
        if task.waits.is_empty() {
            wrong.push(format!("{}: not asleep", case.what));
            continue;
        }
        // Every wait of the task (`Command::output` sleeps on its child's
        // exit and both pipes at once).
        for wait in &task.waits {
            let file = wait.site.file().replace('\\', "/");
            // The wait's call is on the macro's line or, formatted, a few below.
            let lines = case.line..=case.line + 4;
            if file != "tests/obs_sites.rs" || !lines.contains(&wait.site.line()) {
                wrong.push(format!(
                    "{}: waits at {}:{}, written at tests/obs_sites.rs:{}",
                    case.what,
                    file,
                    wait.site.line(),
                    case.line
                ));
            }
            if wait.queue_name.is_none() {
                wrong.push(format!("{}: its queue has no name", case.what));
            }
        }
    }
    wrong
}

#[test]
fn every_wait_is_listed_at_its_callers_line() {
    let rt = runtime();
    let release = Arc::new(AtomicBool::new(false));
    let never = {
        let release = release.clone();
        move || {
            let release = release.clone();
            async move { NEVER.wait_event(|| release.load(SeqCst)).await }
        }
    };
    let mut cases = Vec::new();

    // mpsc, bounded: an empty channel and a full one.
    let (empty_tx, empty_rx) = mpsc::channel::<u8>(1);
    let (full_tx, _full_rx) = mpsc::channel::<u8>(1);
    full_tx.try_send(0).unwrap();
    let mut rx = empty_rx;
    case!(
        cases,
        rt,
        "mpsc Receiver::recv",
        async move { rx.recv().await }
    );
    let tx = full_tx.clone();
    case!(cases, rt, "mpsc Sender::send", tx.send(1));
    let tx = full_tx.clone();
    case!(cases, rt, "mpsc Sender::reserve", tx.reserve());
    let tx = full_tx.clone();
    case!(cases, rt, "mpsc Sender::reserve_owned", tx.reserve_owned());
    let tx = full_tx.clone();
    case!(
        cases,
        rt,
        "mpsc Sender::send_timeout",
        tx.send_timeout(1, HOUR)
    );
    let tx = full_tx.clone();
    case!(
        cases,
        rt,
        "mpsc Sender::reserve_timeout",
        tx.reserve_timeout(HOUR)
    );
    let tx = full_tx.clone();
    case!(
        cases,
        rt,
        "mpsc Sender::send_interruptible",
        tx.send_interruptible(1)
    );
    let tx = full_tx.clone();
    case!(cases, rt, "mpsc Sender::send_killable", tx.send_killable(1));
    let tx = empty_tx.clone();
    case!(cases, rt, "mpsc Sender::closed", tx.closed());

    let mut more = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = mpsc::channel::<u8>(1);
        more.push(tx);
        let mut rx = rx;
        let which = more.len();
        match which {
            1 => case!(cases, rt, "mpsc Receiver::recv_many", async move {
                let mut got = Vec::new();
                rx.recv_many(&mut got, 4).await
            }),
            2 => case!(cases, rt, "mpsc Receiver::recv_interruptible", async move {
                rx.recv_interruptible().await
            }),
            3 => case!(cases, rt, "mpsc Receiver::recv_killable", async move {
                rx.recv_killable().await
            }),
            _ => case!(cases, rt, "mpsc Receiver::recv_timeout", async move {
                rx.recv_timeout(HOUR).await
            }),
        }
    }

    // mpsc, unbounded.
    let (utx, mut urx) = mpsc::unbounded_channel::<u8>();
    case!(cases, rt, "mpsc UnboundedReceiver::recv", async move {
        urx.recv().await
    });
    let tx = utx.clone();
    case!(cases, rt, "mpsc UnboundedSender::closed", tx.closed());

    // oneshot.
    let (mut otx, orx) = oneshot::channel::<u8>();
    case!(cases, rt, "oneshot Receiver (await)", orx);
    case!(cases, rt, "oneshot Sender::closed", async move {
        otx.closed().await
    });
    let (otx2, mut orx2) = oneshot::channel::<u8>();
    case!(cases, rt, "oneshot Receiver::recv_timeout", async move {
        orx2.recv_timeout(HOUR).await
    });
    let (otx3, mut orx3) = oneshot::channel::<u8>();
    case!(
        cases,
        rt,
        "oneshot Receiver::recv_interruptible",
        async move { orx3.recv_interruptible().await }
    );

    // watch.
    let (wtx, mut wrx) = watch::channel(0u8);
    wrx.borrow_and_update();
    let mut wrx2 = wrx.clone();
    let mut wrx3 = wrx.clone();
    case!(cases, rt, "watch Receiver::changed", async move {
        wrx.changed().await
    });
    case!(cases, rt, "watch Receiver::wait_for", async move {
        wrx2.wait_for(|v| *v == 9).await.map(|_| ())
    });
    case!(cases, rt, "watch Receiver::changed_timeout", async move {
        wrx3.changed_timeout(HOUR).await
    });
    let wtx = Arc::new(wtx);
    let watch_tx = wtx.clone();
    case!(cases, rt, "watch Sender::closed", async move {
        watch_tx.closed().await
    });

    // broadcast.
    let (btx, mut brx) = broadcast::channel::<u8>(4);
    let mut brx2 = btx.subscribe();
    case!(cases, rt, "broadcast Receiver::recv", async move {
        brx.recv().await
    });
    case!(cases, rt, "broadcast Receiver::recv_timeout", async move {
        brx2.recv_timeout(HOUR).await
    });

    let (btx_more, mut brx3) = broadcast::channel::<u8>(4);
    let mut brx4 = btx_more.subscribe();
    case!(
        cases,
        rt,
        "broadcast Receiver::recv_interruptible",
        async move { brx3.recv_interruptible().await }
    );
    case!(cases, rt, "broadcast Receiver::recv_killable", async move {
        brx4.recv_killable().await
    });
    let btx_more = Arc::new(btx_more);
    let b = btx_more.clone();
    case!(cases, rt, "broadcast Sender::closed", async move {
        b.closed().await
    });
    let (wtx_more, mut wrx4) = watch::channel(0u8);
    let mut wrx5 = wrx4.clone();
    wrx4.borrow_and_update();
    wrx5.borrow_and_update();
    case!(
        cases,
        rt,
        "watch Receiver::changed_interruptible",
        async move { wrx4.changed_interruptible().await }
    );
    case!(cases, rt, "watch Receiver::changed_killable", async move {
        wrx5.changed_killable().await
    });
    let (otx4, mut orx4) = oneshot::channel::<u8>();
    case!(cases, rt, "oneshot Receiver::recv_killable", async move {
        orx4.recv_killable().await
    });
    let poll_fn_rx = {
        let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
        case!(cases, rt, "mpsc UnboundedReceiver::poll_recv", async move {
            std::future::poll_fn(|cx| rx.poll_recv(cx)).await
        });
        tx
    };

    let tx = full_tx.clone();
    case!(cases, rt, "mpsc Sender::reserve_many", tx.reserve_many(1));
    let poll_many_rx = {
        let (tx, mut rx) = mpsc::channel::<u8>(1);
        case!(cases, rt, "mpsc Receiver::poll_recv_many", async move {
            let mut got = Vec::new();
            std::future::poll_fn(|cx| rx.poll_recv_many(cx, &mut got, 4)).await
        });
        tx
    };

    // Sockets (on loopback): nothing is ever sent to them.
    let (tcp, udp, unix, unix_dgram) = rt.block_on(async {
        let tcp = waitrt::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = waitrt::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let path = std::env::temp_dir().join(format!("obs_sites_{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = waitrt::net::UnixListener::bind(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let (dgram, _peer) = waitrt::net::UnixDatagram::pair().unwrap();
        (
            Arc::new(tcp),
            Arc::new(udp),
            Arc::new(unix),
            Arc::new(dgram),
        )
    });
    let l = tcp.clone();
    case!(cases, rt, "TcpListener::accept", async move {
        l.accept().await.map(drop)
    });
    // A listener of its own: the accept case above sleeps on `tcp` and
    // would take this connection (seen in CI: the block_on waited forever).
    let (client, server) = rt.block_on(async {
        let pair = waitrt::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = pair.local_addr().unwrap();
        let client = waitrt::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = pair.accept().await.unwrap();
        (Arc::new(client), Arc::new(server))
    });
    // Readiness starts set: a read that would block clears it first.
    assert!(client.try_read(&mut [0; 1]).is_err());
    let c = client.clone();
    case!(cases, rt, "TcpStream::readable", async move {
        c.readable().await
    });
    let s = server.clone();
    case!(cases, rt, "TcpStream::peek", async move {
        let mut buf = [0; 4];
        s.peek(&mut buf).await
    });
    let u = udp.clone();
    case!(cases, rt, "UdpSocket::recv_from", async move {
        let mut buf = [0; 4];
        u.recv_from(&mut buf).await.map(drop)
    });
    let u = udp.clone();
    case!(cases, rt, "UdpSocket::readable", async move {
        u.readable().await
    });
    let l = unix.clone();
    case!(cases, rt, "UnixListener::accept", async move {
        l.accept().await.map(drop)
    });
    let d = unix_dgram.clone();
    case!(cases, rt, "UnixDatagram::recv", async move {
        let mut buf = [0; 4];
        d.recv(&mut buf).await
    });

    // Hand-written futures over the sockets' `poll_*` methods: listed at
    // the closure's line.
    let u = udp.clone();
    case!(cases, rt, "UdpSocket::poll_recv (poll_fn)", async move {
        let mut buf = [0; 4];
        std::future::poll_fn(|cx| u.poll_recv(cx, &mut buf)).await
    });
    let l = tcp.clone();
    case!(
        cases,
        rt,
        "TcpListener::poll_accept (poll_fn)",
        async move { std::future::poll_fn(|cx| l.poll_accept(cx)).await.map(drop) }
    );
    let s = server.clone();
    case!(cases, rt, "TcpStream::poll_peek (poll_fn)", async move {
        let mut buf = [0; 4];
        std::future::poll_fn(|cx| s.poll_peek(cx, &mut buf)).await
    });
    // A descriptor of the caller's own, through `AsyncFd`.
    let (fd_end, fd_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    fd_end.set_nonblocking(true).unwrap();
    let fd = {
        let _enter = rt.enter();
        Arc::new(waitrt::net::AsyncFd::new(fd_end).unwrap())
    };
    let f = fd.clone();
    case!(cases, rt, "AsyncFd::read_with", async move {
        let mut buf = [0; 4];
        f.read_with(|s| std::io::Read::read(&mut &*s, &mut buf))
            .await
    });
    // A datagram to a receiver whose queue is full (nobody reads it).
    let dgram_path =
        std::env::temp_dir().join(format!("obs_sites_dgram_{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&dgram_path);
    let (receiver, sender) = rt.block_on(async {
        let receiver = waitrt::net::UnixDatagram::bind(&dgram_path).unwrap();
        let sender = waitrt::net::UnixDatagram::unbound().unwrap();
        // Bounded: the kernel's queue holds a few hundred at most.
        for sent in 0.. {
            assert!(sent < 100_000, "the receiver's queue never filled");
            match sender.try_send_to(&[0; 64], &dgram_path) {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("try_send_to: {err}"),
            }
        }
        (receiver, Arc::new(sender))
    });
    let (d, path) = (sender.clone(), dgram_path.clone());
    case!(cases, rt, "UnixDatagram::send_to", async move {
        d.send_to(&[0; 64], &path).await
    });
    // A connection the listener never takes: its backlog is full.
    let (full, full_addr, fillers) = rt.block_on(async {
        let socket = waitrt::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = socket.listen(0).unwrap();
        let addr = full.local_addr().unwrap();
        let mut fillers = Vec::new();
        // The accept queue takes one or two; then the kernel drops SYNs.
        for _ in 0..4 {
            if let Ok(stream) =
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            {
                fillers.push(stream);
            }
        }
        (full, addr, fillers)
    });
    let connects = [
        (
            "TcpStream::connect",
            line!(),
            rt.spawn(async move {
                let _ = waitrt::net::TcpStream::connect(full_addr).await;
            }),
        ),
        (
            "TcpStream::connect_timeout",
            line!(),
            rt.spawn(async move {
                let _ = waitrt::net::TcpStream::connect_timeout(full_addr, HOUR).await;
            }),
        ),
        (
            "TcpSocket::connect",
            line!(),
            rt.spawn(async move {
                let socket = waitrt::net::TcpSocket::new_v4().unwrap();
                let _ = socket.connect(full_addr).await;
            }),
        ),
    ];
    for (what, line, task) in connects {
        cases.push(Case { what, line, task });
    }
    // A child that runs for an hour, killed when its task is dropped.
    let sleeper = || {
        let mut command = waitrt::process::Command::new("sleep");
        command.arg("3600").kill_on_drop(true);
        command
    };
    let mut child = {
        let _enter = rt.enter();
        sleeper().spawn().unwrap()
    };
    case!(cases, rt, "Child::wait", async move { child.wait().await });
    let mut command = sleeper();
    case!(cases, rt, "Command::status", async move {
        command.status().await
    });
    let mut command = sleeper();
    case!(cases, rt, "Command::output", async move {
        command.output().await
    });

    // Locks and counters, each held by the test.
    let mutex = Arc::new(Mutex::new(0u8));
    let held = rt.block_on(mutex.clone().lock_owned());
    for which in 0..3 {
        let m = mutex.clone();
        match which {
            0 => case!(cases, rt, "Mutex::lock_interruptible", async move {
                m.lock_interruptible().await.map(|_| ())
            }),
            1 => case!(cases, rt, "Mutex::lock_killable", async move {
                m.lock_killable().await.map(|_| ())
            }),
            _ => case!(cases, rt, "Mutex::lock_timeout", async move {
                m.lock_timeout(HOUR).await.map(|_| ())
            }),
        }
    }
    let rwlock = Arc::new(RwLock::new(0u8));
    let written = rt.block_on(rwlock.clone().write_owned());
    for which in 0..6 {
        let l = rwlock.clone();
        match which {
            0 => case!(cases, rt, "RwLock::read_interruptible", async move {
                l.read_interruptible().await.map(|_| ())
            }),
            1 => case!(cases, rt, "RwLock::read_killable", async move {
                l.read_killable().await.map(|_| ())
            }),
            2 => case!(cases, rt, "RwLock::write_interruptible", async move {
                l.write_interruptible().await.map(|_| ())
            }),
            3 => case!(cases, rt, "RwLock::write_killable", async move {
                l.write_killable().await.map(|_| ())
            }),
            4 => case!(cases, rt, "RwLock::read_timeout", async move {
                l.read_timeout(HOUR).await.map(|_| ())
            }),
            _ => case!(cases, rt, "RwLock::write_timeout", async move {
                l.write_timeout(HOUR).await.map(|_| ())
            }),
        }
    }
    let sem = Arc::new(Semaphore::new(0));
    for which in 0..3 {
        let s = sem.clone();
        match which {
            0 => case!(cases, rt, "Semaphore::acquire_interruptible", async move {
                s.acquire_interruptible().await.map(|_| ())
            }),
            1 => case!(cases, rt, "Semaphore::acquire_killable", async move {
                s.acquire_killable().await.map(|_| ())
            }),
            _ => case!(cases, rt, "Semaphore::acquire_timeout", async move {
                s.acquire_timeout(HOUR).await.map(|_| ())
            }),
        }
    }
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    case!(cases, rt, "Barrier::wait", async move { b.wait().await });
    let cell = Arc::new(OnceCell::<u8>::new());
    let init = {
        let (cell, never) = (cell.clone(), never.clone());
        rt.spawn(async move {
            cell.get_or_init(|| async move {
                let _ = never().await;
                1
            })
            .await;
        })
    };
    // The initializer first, so the second caller waits for it.
    dump_until(&rt, |d| {
        d.task(init.id()).is_some_and(|t| !t.waits.is_empty())
    });
    let c = cell.clone();
    case!(
        cases,
        rt,
        "OnceCell::get_or_init (another initializes)",
        async move { *c.get_or_init(|| async { 2 }).await }
    );

    // Task handles.
    let sleeper = rt.spawn(never());
    case!(cases, rt, "JoinHandle (await)", sleeper);
    let mut set = JoinSet::new();
    {
        let _enter = rt.handle().enter();
        set.spawn(never());
    }
    case!(cases, rt, "JoinSet::join_next", async move {
        set.join_next().await.map(|_| ())
    });

    let dump = dump_until(&rt, |d| {
        cases
            .iter()
            .all(|c| d.task(c.task.id()).is_some_and(|t| !t.waits.is_empty()))
    });
    let wrong = misplaced(&dump, &cases);
    assert!(
        wrong.is_empty(),
        "{} of {} waits misplaced:\n  {}\n{dump}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );

    release.store(true, SeqCst);
    NEVER.wake_up_all();
    drop((
        held, written, more, utx, otx2, otx3, empty_tx, full_tx, btx, wtx,
    ));
    drop((btx_more, wtx_more, otx4, poll_fn_rx, poll_many_rx));
    drop((tcp, udp, unix, unix_dgram, client, server));
    drop((fd, fd_peer, receiver, sender, full, fillers));
    let _ = std::fs::remove_file(&dgram_path);
    rt.shutdown_timeout(WATCHDOG);
}

/// Takes dumps until `ok` holds (or panics at the watchdog, printing the last one).
fn dump_until(rt: &Runtime, mut ok: impl FnMut(&Dump) -> bool) -> Dump {
    let start = Instant::now();
    loop {
        let dump = rt.handle().dump();
        if ok(&dump) {
            return dump;
        }
        assert!(start.elapsed() < WATCHDOG, "dump never got there:\n{dump}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A wait inside a `futures::io` or `Stream` trait method cannot name the
/// user's line (the combinator between, `AsyncReadExt::read`'s future,
/// calls it), so its queue names the socket: a dump says `on
/// tcp_stream_readable`, `on child_exit`, not just "a socket".
#[test]
fn socket_waits_are_on_queues_named_for_their_kind() {
    use futures::{AsyncReadExt as _, StreamExt as _};
    let rt = runtime();
    let (tcp_client, _tcp_server, unix, _unix_peer) = rt.block_on(async {
        let listener = waitrt::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = waitrt::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (unix, peer) = waitrt::net::UnixStream::pair().unwrap();
        (client, server, unix, peer)
    });
    let listener = rt
        .block_on(waitrt::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let mut child = {
        let _enter = rt.enter();
        waitrt::process::Command::new("sleep")
            .arg("3600")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut stdout = child.stdout.take().unwrap();
    let mut tasks = Vec::new();
    let mut c = tcp_client;
    tasks.push((
        "tcp_stream_readable",
        rt.spawn(async move {
            let _ = c.read(&mut [0; 4]).await;
        }),
    ));
    let mut u = unix;
    tasks.push((
        "unix_stream_readable",
        rt.spawn(async move {
            let _ = u.read(&mut [0; 4]).await;
        }),
    ));
    tasks.push((
        "tcp_listener_accept",
        rt.spawn(async move {
            let mut incoming = listener.incoming();
            let _ = incoming.next().await;
        }),
    ));
    tasks.push((
        "child_pipe_readable",
        rt.spawn(async move {
            let _ = stdout.read(&mut [0; 4]).await;
        }),
    ));
    tasks.push((
        "child_exit",
        rt.spawn(async move {
            let _ = child.wait().await;
        }),
    ));
    let dump = dump_until(&rt, |d| {
        tasks
            .iter()
            .all(|(_, t)| d.task(t.id()).is_some_and(|t| !t.waits.is_empty()))
    });
    for (queue, task) in &tasks {
        let wait = &dump.task(task.id()).unwrap().waits[0];
        assert_eq!(wait.queue_name, Some(*queue), "{dump}");
    }
    rt.shutdown_timeout(WATCHDOG);
}
