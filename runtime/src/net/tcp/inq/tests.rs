//! `TCP_INQ` reads on real loopback sockets, in a current-thread runtime:
//! when the option turns on, what a draining read clears, what a read
//! that leaves bytes keeps, and that a FIN counts as a byte left.

use std::io::IoSliceMut;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};

use super::sys;
use crate::net::{TcpListener, TcpStream};
use crate::reactor::readiness::Direction;
use crate::Builder;

const FRAME: usize = 64;

/// Runs `test` on a current-thread runtime with a connected pair
/// (client, server).
fn with_pair<F: std::future::Future<Output = ()>>(test: impl FnOnce(TcpStream, TcpStream) -> F) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hang_guard = Duration::from_secs(10);
        crate::time::timeout(hang_guard, test(client, server))
            .await
            .expect("a read hung: readiness was cleared with bytes left");
    });
}

/// Sends one frame and reads it back exactly: the first such read turns
/// the option on.
async fn exact_round(client: &mut TcpStream, server: &mut TcpStream, fill: u8) {
    server.write_all(&[fill; FRAME]).await.unwrap();
    let mut got = [0; FRAME];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [fill; FRAME]);
}

#[test]
fn only_a_read_that_fills_its_buffer_turns_the_option_on() {
    with_pair(|mut client, mut server| async move {
        server.write_all(&[1; FRAME]).await.unwrap();
        let mut big = [0; 4 * FRAME];
        let mut got = 0;
        while got < FRAME {
            got += client.read(&mut big).await.unwrap();
        }
        assert!(!client.inq.is_on(), "short reads know they drained");
        exact_round(&mut client, &mut server, 2).await;
        assert!(client.inq.is_on());
    });
}

/// Waits until `len` bytes are queued on `stream` (a write that big may
/// reach it in pieces), so one read of `len` fills its buffer exactly.
async fn wait_queued(stream: &TcpStream, len: usize) {
    let mut peeked = vec![0; len];
    while stream.peek(&mut peeked).await.unwrap() < len {
        crate::task::yield_now().await;
    }
}

#[test]
fn bulk_reads_stay_plain() {
    with_pair(|mut client, mut server| async move {
        let bulk = vec![7; super::MESSAGE_READ + 1];
        let mut got = vec![0; bulk.len()];
        server.write_all(&bulk).await.unwrap();
        wait_queued(&client, bulk.len()).await;
        assert_eq!(client.read(&mut got).await.unwrap(), bulk.len());
        assert!(
            !client.inq.is_on(),
            "no message-sized read filled its buffer"
        );
        // Once on, a bulk read that empties the queue is still a plain
        // recv: it keeps the readiness it cannot judge.
        exact_round(&mut client, &mut server, 1).await;
        assert!(client.inq.is_on());
        server.write_all(&bulk).await.unwrap();
        wait_queued(&client, bulk.len()).await;
        assert_eq!(client.read(&mut got).await.unwrap(), bulk.len());
        assert!(client.io.is_ready(Direction::Read));
    });
}

#[test]
fn a_read_that_empties_the_queue_clears_the_readiness() {
    with_pair(|mut client, mut server| async move {
        exact_round(&mut client, &mut server, 1).await;
        // The plain read that turned the option on could not tell.
        assert!(client.io.is_ready(Direction::Read));
        exact_round(&mut client, &mut server, 2).await;
        assert!(
            !client.io.is_ready(Direction::Read),
            "the next read would only learn WouldBlock"
        );
        // The same through a vectored read.
        server.write_all(&[3; FRAME]).await.unwrap();
        let (mut head, mut body) = ([0; 16], [0; FRAME - 16]);
        let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut body)];
        let got = client.read_vectored(&mut bufs).await.unwrap();
        assert_eq!(got, FRAME, "loopback delivers a frame whole");
        assert!(!client.io.is_ready(Direction::Read));
        // And the next frame still arrives (a later edge is not lost).
        exact_round(&mut client, &mut server, 4).await;
    });
}

#[test]
fn a_read_that_leaves_bytes_keeps_the_readiness() {
    with_pair(|mut client, mut server| async move {
        exact_round(&mut client, &mut server, 1).await;
        assert!(client.inq.is_on());
        // Two frames in one write: one edge for both.
        server.write_all(&[2; 2 * FRAME]).await.unwrap();
        let mut got = [0; FRAME];
        client.read_exact(&mut got).await.unwrap();
        assert!(
            client.io.is_ready(Direction::Read),
            "a frame is still queued and no new edge will come for it"
        );
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [2; FRAME]);
    });
}

#[test]
fn end_of_file_after_an_exact_read_is_still_read() {
    with_pair(|mut client, mut server| async move {
        exact_round(&mut client, &mut server, 1).await;
        server.write_all(&[2; FRAME]).await.unwrap();
        server.close().await.unwrap();
        let mut got = [0; FRAME];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(client.read(&mut got).await.unwrap(), 0);
    });
}

#[test]
fn a_fin_counts_as_a_byte_left() {
    // Plain sockets, so that nothing but the kernel's count is tested: the
    // reactor's read-closed bit would keep EOF readable on its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (receiver, _) = listener.accept().unwrap();
    receiver.set_nonblocking(true).unwrap();
    let mut receiver = mio::net::TcpStream::from_std(receiver);
    assert!(sys::set_inq(&receiver, true));
    std::io::Write::write_all(&mut sender, &[1; FRAME]).unwrap();
    sender.shutdown(std::net::Shutdown::Write).unwrap();
    // Wait until the FIN is in: the read-closed event.
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(4);
    poll.registry()
        .register(&mut receiver, mio::Token(0), mio::Interest::READABLE)
        .unwrap();
    while !events.iter().any(|event| event.is_read_closed()) {
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(!events.is_empty(), "no FIN within 10 s");
    }
    let mut got = [0; FRAME];
    let moved = sys::recv_reporting(&receiver, &mut [IoSliceMut::new(&mut got)]).unwrap();
    assert_eq!(moved.bytes, FRAME);
    assert!(!moved.drained, "the FIN is still to be read");
}

#[test]
fn into_std_turns_the_option_off() {
    with_pair(|mut client, mut server| async move {
        exact_round(&mut client, &mut server, 1).await;
        server.write_all(&[2; FRAME]).await.unwrap();
        client.readable().await.unwrap();
        let std_client = client.into_std().unwrap();
        // Blocking now: a stall must fail the test, not hang it.
        std_client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = [0; FRAME];
        let moved = sys::recv_reporting(&std_client, &mut [IoSliceMut::new(&mut got)]).unwrap();
        assert_eq!(moved.bytes, FRAME);
        assert!(!moved.drained, "no TCP_CM_INQ message once it is off");
        // Control: with the option on, the same read reports the drain.
        assert!(sys::set_inq(&std_client, true));
        server.write_all(&[3; FRAME]).await.unwrap();
        let moved = sys::recv_reporting(&std_client, &mut [IoSliceMut::new(&mut got)]).unwrap();
        assert!(moved.drained);
    });
}
