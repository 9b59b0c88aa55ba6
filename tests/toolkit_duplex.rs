//! Network code under the toolkit: in-memory `duplex` pipes whose waits go
//! through `waitq`, so every interleaving of two ends' reads and writes is
//! a schedule the toolkit explores. The same bodies also run on the real
//! multi-thread runtime.

use futures::{AsyncReadExt, AsyncWriteExt};
use waitrt::test_util::{duplex, Check, FailureKind, Policy};

/// A length-prefixed echo: the client sends frames, the server echoes
/// them; small pipe capacities force partial reads and writes.
async fn framed_echo(capacity: usize) {
    let (mut client, mut server) = duplex(capacity);
    let server = waitrt::spawn(async move {
        loop {
            let mut len = [0u8; 2];
            if server.read_exact(&mut len).await.is_err() {
                return; // the client closed
            }
            let mut body = vec![0; u16::from_le_bytes(len) as usize];
            server.read_exact(&mut body).await.unwrap();
            server.write_all(&len).await.unwrap();
            server.write_all(&body).await.unwrap();
        }
    });
    for size in [1usize, 5, 17] {
        let body: Vec<u8> = (0..size as u8).collect();
        client
            .write_all(&(size as u16).to_le_bytes())
            .await
            .unwrap();
        client.write_all(&body).await.unwrap();
        let mut len = [0u8; 2];
        client.read_exact(&mut len).await.unwrap();
        let mut back = vec![0; u16::from_le_bytes(len) as usize];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(back, body);
    }
    client.close().await.unwrap();
    server.await.unwrap();
}

#[test]
fn framed_echo_over_duplex_under_every_policy() {
    let seeds = if cfg!(debug_assertions) { 300 } else { 2_000 };
    for policy in [Policy::Fifo, Policy::Random, Policy::Pct { depth: 3 }] {
        for capacity in [1, 3, 64] {
            let stats = Check::new()
                .seeds(seeds)
                .policy(policy)
                .quiet(true)
                .run(move || framed_echo(capacity));
            println!("framed echo, capacity {capacity}, {policy:?}: {stats}");
        }
    }
}

#[test]
fn framed_echo_over_duplex_on_real_threads() {
    let rt = waitrt::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for _ in 0..200 {
        rt.block_on(framed_echo(3));
    }
}

#[test]
fn eof_after_the_peer_goes_and_broken_pipe_on_write() {
    Check::new().seeds(64).run(|| async {
        let (mut a, mut b) = duplex(8);
        a.write_all(b"last").await.unwrap();
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last", "buffered bytes drain before EOF");
        let err = b.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn a_writer_blocked_on_a_full_pipe_wakes_when_the_reader_leaves() {
    Check::new().seeds(64).run(|| async {
        let (mut a, b) = duplex(2);
        let writer = waitrt::spawn(async move { a.write_all(b"too long").await });
        waitrt::test_util::until_idle().await; // the writer sleeps, pipe full
        drop(b);
        let err = writer.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    });
}

/// The classic short-read bug (one `read` assumed to return a whole
/// message) is caught: a pipe of capacity 4 delivers an 8-byte message in
/// pieces, and the toolkit reports the failing assertion with its seed.
#[test]
fn the_toolkit_catches_a_short_read_bug() {
    let failure = Check::new()
        .seeds(16)
        .try_run(|| async {
            let (mut client, mut server) = duplex(4);
            let sender = waitrt::spawn(async move {
                client.write_all(b"12345678").await.unwrap();
            });
            let mut buf = [0; 8];
            let n = server.read(&mut buf).await.unwrap(); // the bug: one read
            assert_eq!(n, 8, "short read");
            sender.await.unwrap();
        })
        .expect_err("a 4-byte pipe cannot deliver 8 bytes in one read");
    assert_eq!(failure.kind(), FailureKind::Panic, "{failure}");
    assert!(failure.report().contains("short read"), "{failure}");
}
