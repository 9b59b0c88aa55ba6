//! The physical reference for `tcp_echo_rr`: one thread, one `mio::Poll`,
//! a hand-written state machine per connection, no runtime at all.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::{Sizes, Workload, CLIENTS, MESSAGE};

const LISTENER: Token = Token(usize::MAX);

enum Conn {
    /// Echoes whatever it reads.
    Server(TcpStream),
    /// Sends a message, waits for all of it back, repeats.
    Client {
        stream: TcpStream,
        received: usize,
        done: usize,
        sent: bool,
    },
}

/// Runs `tcp_echo_rr` on one thread (the only workload it has).
pub(super) fn run(_workers: usize, workload: Workload, sizes: Sizes) -> Duration {
    assert!(
        workload == Workload::EchoRr,
        "raw mio runs tcp_echo_rr only"
    );
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    let start = Instant::now();
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0;
    for _ in 0..CLIENTS {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        poll.registry()
            .register(
                &mut stream,
                Token(next),
                Interest::READABLE | Interest::WRITABLE,
            )
            .unwrap();
        conns.insert(
            next,
            Conn::Client {
                stream,
                received: 0,
                done: 0,
                sent: false,
            },
        );
        next += 1;
    }
    let msg = [7u8; MESSAGE];
    let mut buf = [0u8; 4096];
    let mut finished = 0;
    while finished < CLIENTS {
        poll.poll(&mut events, None).unwrap();
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            poll.registry()
                                .register(&mut stream, Token(next), Interest::READABLE)
                                .unwrap();
                            conns.insert(next, Conn::Server(stream));
                            next += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            match conns.get_mut(&event.token().0).unwrap() {
                Conn::Server(stream) => loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("server read: {e}"),
                    }
                },
                Conn::Client {
                    stream,
                    received,
                    done,
                    sent,
                } => {
                    if !*sent && event.is_writable() && *done < sizes.round_trips {
                        stream.write_all(&msg).unwrap();
                        *sent = true;
                    }
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) => panic!("server closed"),
                            Ok(n) => *received += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => panic!("client read: {e}"),
                        }
                    }
                    while *received >= MESSAGE {
                        *received -= MESSAGE;
                        *done += 1;
                        *sent = false;
                        if *done == sizes.round_trips {
                            finished += 1;
                        } else {
                            stream.write_all(&msg).unwrap();
                            *sent = true;
                        }
                    }
                }
            }
        }
    }
    start.elapsed()
}
