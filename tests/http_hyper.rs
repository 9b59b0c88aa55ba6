//! hyper 1.x on this runtime through `waitrt::hyper` (`Io`, `RuntimeTimer`,
//! `RuntimeExecutor`), on real loopback sockets, on every scheduler flavour
//! (current-thread, mt(1), mt(2)) through `rt_test!`, against a real client
//! (`curl`, when installed) and against hyper's own client.
//!
//! Covered: keep-alive (one connection for several requests: curl's
//! `num_connects`, hyper's client reusing its `SendRequest`), pipelined
//! requests in one write, the header-read timeout closing a slow client
//! (our timer fires), HTTP/2 keep-alive pings over a long idle spell (our
//! timer's `reset` moves the deadline: a no-op reset times the connection
//! out), h2c with 100 concurrent streams (all in their handlers at once;
//! and from `h2load`, nghttp2's client, when installed),
//! a client that disconnects mid-response (the connection task ends with
//! an error, the server keeps serving; a raw socket and curl cut off by a
//! closed pipe), graceful shutdown with a request in flight (it completes;
//! from hyper's client and from curl), an axum `Router` as the service (its handler
//! runs on our runtime, with no tokio runtime anywhere), hyper-util's
//! `auto` builder and `GracefulShutdown` (no tokio runtime either), and
//! `Io` both ways (hyper's traits over a `futures::io` stream, and back).
//!
//! No timing assertions: timeouts here are hang detectors, far above the
//! expected times.
#[macro_use]
mod support;

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::client::conn::{http1 as client1, http2 as client2};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use waitrt::hyper::{Io, RuntimeExecutor, RuntimeTimer};
use waitrt::net::{TcpListener, TcpStream};
use waitrt::sync::{oneshot, Barrier};
use waitrt::time::timeout;

/// Hang detector for one client exchange (never a timing assertion).
const LIMIT: Duration = Duration::from_secs(20);

// ===== helpers =====

/// Accepts on a fresh loopback listener and runs `serve` on each
/// connection in its own task. Returns the address and the number of
/// connections accepted so far.
async fn server<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    waitrt::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            waitrt::spawn(serve(stream));
        }
    });
    (addr, accepted)
}

/// Answers `hello <path>`.
async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {}", request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves one HTTP/1.1 connection with `hello`.
async fn serve_h1(stream: TcpStream) {
    let _ = http1::Builder::new()
        .timer(RuntimeTimer::new())
        .serve_connection(Io::new(stream), service_fn(hello))
        .await;
}

/// Serves one h2c (prior knowledge) connection with `hello`.
async fn serve_h2(stream: TcpStream) {
    let _ = http2::Builder::new(RuntimeExecutor::new())
        .timer(RuntimeTimer::new())
        .serve_connection(Io::new(stream), service_fn(hello))
        .await;
}

/// hyper's HTTP/1.1 client on a fresh connection to `addr`.
async fn h1_client(addr: SocketAddr) -> client1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = client1::handshake(Io::new(stream)).await.unwrap();
    waitrt::spawn(connection);
    sender
}

/// hyper's HTTP/2 client (prior knowledge) on a fresh connection to `addr`.
async fn h2_client(addr: SocketAddr) -> client2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = client2::handshake(RuntimeExecutor::new(), Io::new(stream))
        .await
        .unwrap();
    waitrt::spawn(connection);
    sender
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://localhost{path}"))
        .body(Empty::new())
        .unwrap()
}

/// The status and whole body of `response`.
async fn read(response: Response<Incoming>) -> (StatusCode, Bytes) {
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

async fn h1_get(
    sender: &mut client1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (StatusCode, Bytes) {
    // HTTP/1: the connection takes the next request once it has finished
    // the last response (its task may still be at it).
    let response = timeout(LIMIT, async {
        sender.ready().await?;
        sender.send_request(get(path)).await
    })
    .await;
    read(response.expect("response within the limit").unwrap()).await
}

/// Runs curl with `args` on the blocking pool (a current-thread runtime
/// keeps serving meanwhile), bounded by `--max-time`. `None`, said on
/// stderr, when curl is not installed; under `CI=true` that fails instead.
async fn curl(args: &[&str]) -> Option<String> {
    let mut all = vec!["--silent", "--show-error", "--max-time", "20"];
    all.extend_from_slice(args);
    tool("curl", &all).await
}

/// Runs the client `program` with `args` on the blocking pool, killed
/// after 60 s (`timeout`); its stdout. `None`, said on stderr, when it is
/// not installed; under `CI=true` that fails instead.
async fn tool(program: &str, args: &[&str]) -> Option<String> {
    let (program, args): (String, Vec<String>) = (
        program.to_string(),
        args.iter().map(|arg| arg.to_string()).collect(),
    );
    waitrt::spawn_blocking(move || {
        let installed = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|out| out.status.success());
        let output = match installed {
            true => Command::new("timeout")
                .arg("60")
                .arg(&program)
                .args(&args)
                .output(),
            false => Err(std::io::ErrorKind::NotFound.into()),
        };
        match output {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{program} is not installed, and CI=true: install it");
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED ({program} is not installed): {program} {}",
                    args.join(" ")
                );
                None
            }
            Err(err) => panic!("running {program}: {err}"),
            Ok(output) => {
                assert!(
                    output.status.success(),
                    "{program} {args:?} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                Some(String::from_utf8(output.stdout).unwrap())
            }
        }
    })
    .await
    .unwrap()
}

// ===== keep-alive and pipelining =====

rt_test! {
    fn curl_keep_alive(rt) {
        rt.block_on(async {
            let (addr, accepted) = server(serve_h1).await;
            let (a, b) = (format!("http://{addr}/a"), format!("http://{addr}/b"));
            // One curl, two URLs: the second reuses the connection (0 new connects).
            let Some(out) = curl(&["-w", " %{num_connects}\n", &a, &b]).await else {
                return;
            };
            assert_eq!(out, "hello /a 1\nhello /b 0\n");
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }
}

rt_test! {
    fn curl_h2c(rt) {
        rt.block_on(async {
            let (addr, _) = server(serve_h2).await;
            let url = format!("http://{addr}/h2");
            let args = ["--http2-prior-knowledge", "-w", " %{http_version}", &url];
            let Some(out) = curl(&args).await else {
                return;
            };
            assert_eq!(out, "hello /h2 2");
        });
    }
}

rt_test! {
    fn hyper_client_keep_alive(rt) {
        rt.block_on(async {
            let (addr, accepted) = server(serve_h1).await;
            let mut sender = h1_client(addr).await;
            for i in 0..5 {
                let path = format!("/{i}");
                let (status, body) = h1_get(&mut sender, &path).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, format!("hello {path}"));
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }
}

rt_test! {
    fn pipelined_requests(rt) {
        rt.block_on(async {
            let (addr, _) = server(serve_h1).await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            // Both requests in one write: the second waits in hyper's buffer.
            stream
                .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            timeout(LIMIT, stream.read_to_end(&mut got)).await.unwrap().unwrap();
            let got = String::from_utf8(got).unwrap();
            assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
            let (first, second) = (got.find("hello /first"), got.find("hello /second"));
            assert!(first.unwrap() < second.unwrap(), "{got}");
        });
    }
}

// ===== timers =====

rt_test! {
    fn header_read_timeout_closes_slow_client(rt) {
        rt.block_on(async {
            let (result_tx, result_rx) = oneshot::channel();
            let result_tx = Arc::new(std::sync::Mutex::new(Some(result_tx)));
            let (addr, _) = server(move |stream| {
                let result_tx = result_tx.clone();
                async move {
                    let served = http1::Builder::new()
                        .timer(RuntimeTimer::new())
                        .header_read_timeout(Duration::from_millis(100))
                        .serve_connection(Io::new(stream), service_fn(hello))
                        .await;
                    let tx = result_tx.lock().unwrap().take().unwrap();
                    let _ = tx.send(served.map_err(|err| err.is_timeout()));
                }
            })
            .await;
            let mut stream = TcpStream::connect(addr).await.unwrap();
            // Half a request head, then nothing.
            stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            let mut got = Vec::new();
            let closed = timeout(LIMIT, stream.read_to_end(&mut got)).await;
            assert!(closed.is_ok(), "the server never closed the slow connection");
            assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
            assert_eq!(result_rx.await.unwrap(), Err(true), "not a header timeout");
        });
    }
}

rt_test! {
    fn h2_keep_alive_pings_move_the_timer(rt) {
        rt.block_on(async {
            // The server pings every 10 ms and gives each ping 10 s. hyper
            // moves one sleep between the two deadlines with `reset`: if
            // `reset` left the first (passed) deadline, the ping would time
            // out at once and close the connection.
            let (addr, _) = server(|stream| async move {
                let _ = http2::Builder::new(RuntimeExecutor::new())
                    .timer(RuntimeTimer::new())
                    .keep_alive_interval(Duration::from_millis(10))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .serve_connection(Io::new(stream), service_fn(hello))
                    .await;
            })
            .await;
            let mut sender = h2_client(addr).await;
            let response = sender.send_request(get("/before")).await.unwrap();
            assert_eq!(read(response).await.1, "hello /before");
            // Idle across many ping rounds (the client answers them).
            waitrt::time::sleep(Duration::from_millis(300)).await;
            let response = timeout(LIMIT, sender.send_request(get("/after"))).await.unwrap();
            let response = response.expect("the server closed a live connection");
            assert_eq!(read(response).await.1, "hello /after");
        });
    }
}

// ===== HTTP/2 =====

rt_test! {
    fn h2c_100_concurrent_streams(rt) {
        rt.block_on(async {
            const STREAMS: usize = 100;
            // Every handler waits for all the others: the test ends only if
            // all 100 streams are in their handlers at once.
            let barrier = Arc::new(Barrier::new(STREAMS));
            let (addr, accepted) = server(move |stream| {
                let barrier = barrier.clone();
                async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let barrier = barrier.clone();
                        async move {
                            barrier.wait().await;
                            hello(request).await
                        }
                    });
                    let _ = http2::Builder::new(RuntimeExecutor::new())
                        .timer(RuntimeTimer::new())
                        .serve_connection(Io::new(stream), service)
                        .await;
                }
            })
            .await;
            let sender = h2_client(addr).await;
            let streams: Vec<_> = (0..STREAMS)
                .map(|i| {
                    let mut sender = sender.clone();
                    waitrt::spawn(async move {
                        let response = sender.send_request(get(&format!("/{i}"))).await.unwrap();
                        read(response).await
                    })
                })
                .collect();
            for (i, stream) in streams.into_iter().enumerate() {
                let (status, body) = timeout(LIMIT, stream).await.expect("all streams at once").unwrap();
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, format!("hello /{i}"));
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }
}

rt_test! {
    /// A real h2 client with 100 streams in flight on one connection:
    /// `h2load -c1 -m100` (nghttp2's load generator; CI installs it), 500
    /// requests, every one answered.
    fn h2load_100_concurrent_streams(rt) {
        rt.block_on(async {
            let (addr, accepted) = server(serve_h2).await;
            let url = format!("http://{addr}/h2load");
            let Some(out) = tool("h2load", &["-c1", "-m100", "-n500", &url]).await else {
                return;
            };
            assert!(
                out.contains("500 total, 500 started, 500 done, 500 succeeded, 0 failed, 0 errored"),
                "h2load: {out}"
            );
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }
}

// ===== failures and shutdown =====

/// Who plays the client that goes away mid-response.
#[derive(Clone, Copy)]
enum Client {
    /// A socket written and dropped by hand.
    Raw,
    /// curl, cut off by a closed pipe (skipped, said on stderr, when curl
    /// is not installed; under `CI=true` that fails instead).
    Curl,
}

/// A client that disconnects mid-response: the connection task ends with
/// an error, and the server keeps serving.
async fn client_disconnects_mid_response_by(by: Client) {
    let (ended_tx, ended_rx) = oneshot::channel::<bool>();
    let ended_tx = Arc::new(std::sync::Mutex::new(Some(ended_tx)));
    let (addr, _) = server(move |stream| {
        let ended_tx = ended_tx.clone();
        async move {
            // `/endless` streams 64 KiB chunks forever.
            let service = service_fn(|request: Request<Incoming>| async move {
                if request.uri().path() != "/endless" {
                    let response = hello(request).await?;
                    return Ok::<_, Infallible>(
                        response.map(|body| body.map_err(|never| match never {}).boxed()),
                    );
                }
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = futures::stream::repeat_with(move || {
                    Ok::<_, Infallible>(Frame::data(chunk.clone()))
                });
                Ok(Response::new(StreamBody::new(chunks).boxed()))
            });
            let served = http1::Builder::new()
                .timer(RuntimeTimer::new())
                .serve_connection(Io::new(stream), service)
                .await;
            if let Some(tx) = ended_tx.lock().unwrap().take() {
                let _ = tx.send(served.is_err());
            }
        }
    })
    .await;
    match by {
        Client::Raw => {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut some = vec![0; 256 * 1024];
            timeout(LIMIT, stream.read_exact(&mut some))
                .await
                .unwrap()
                .unwrap();
            assert!(some.starts_with(b"HTTP/1.1 200 OK"));
            drop(stream); // mid-response
        }
        Client::Curl => {
            // curl reads 256 KiB of the endless body, then `head` exits
            // and curl, failing to write, drops the connection.
            if curl(&["--version"]).await.is_none() {
                return;
            }
            let url = format!("http://{addr}/endless");
            let pipe = format!("curl --silent --max-time 20 {url} | head -c 262144 | wc -c");
            let out = tool("sh", &["-c", &pipe]).await.unwrap();
            assert_eq!(out.trim(), "262144");
        }
    }
    let ended = timeout(LIMIT, ended_rx)
        .await
        .expect("the connection task never ended");
    assert!(
        ended.unwrap(),
        "the aborted response did not end in an error"
    );
    // Still serving.
    let mut sender = h1_client(addr).await;
    assert_eq!(h1_get(&mut sender, "/next").await.1, "hello /next");
}

rt_test! {
    fn client_disconnects_mid_response(rt) {
        rt.block_on(client_disconnects_mid_response_by(Client::Raw));
    }
}

rt_test! {
    fn curl_disconnects_mid_response(rt) {
        rt.block_on(client_disconnects_mid_response_by(Client::Curl));
    }
}

rt_test! {
    /// The same on HTTP/2 with hyper's client: a client whose connection
    /// goes mid-response (its connection task aborted, the socket closed)
    /// ends the server's connection, which keeps no task behind; and a
    /// graceful shutdown (GOAWAY) lets the stream in flight finish, then
    /// the connection ends cleanly.
    fn h2_disconnect_mid_response_and_graceful_shutdown(rt) {
        rt.block_on(async {
            let (ended_tx, mut ended_rx) = waitrt::sync::mpsc::unbounded_channel::<bool>();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let stop_rx = Arc::new(std::sync::Mutex::new(Some(stop_rx)));
            let (started_tx, started_rx) = oneshot::channel::<()>();
            let (release_tx, release_rx) = oneshot::channel::<()>();
            let slow = Arc::new(std::sync::Mutex::new(Some((started_tx, release_rx))));
            let (addr, _) = server(move |stream| {
                let (ended_tx, slow) = (ended_tx.clone(), slow.clone());
                // The first connection takes the stop; the second never stops.
                let stop_rx = stop_rx.lock().unwrap().take();
                async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let slow = (request.uri().path() == "/slow")
                            .then(|| slow.lock().unwrap().take())
                            .flatten();
                        async move {
                            if request.uri().path() == "/endless" {
                                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                                let chunks = futures::stream::repeat_with(move || {
                                    Ok::<_, Infallible>(Frame::data(chunk.clone()))
                                });
                                return Ok::<_, Infallible>(Response::new(StreamBody::new(chunks).boxed()));
                            }
                            if let Some((started, release)) = slow {
                                started.send(()).unwrap();
                                release.await.unwrap();
                            }
                            let response = hello(request).await?;
                            Ok(response.map(|body| body.map_err(|never| match never {}).boxed()))
                        }
                    });
                    let connection = http2::Builder::new(RuntimeExecutor::new())
                        .timer(RuntimeTimer::new())
                        .serve_connection(Io::new(stream), service);
                    let mut connection = pin!(connection);
                    let served = match stop_rx {
                        None => connection.await,
                        Some(stop_rx) => match select(connection.as_mut(), stop_rx).await {
                            Either::Left((served, _)) => served,
                            Either::Right(_) => {
                                connection.as_mut().graceful_shutdown();
                                connection.await
                            }
                        },
                    };
                    let _ = ended_tx.send(served.is_ok());
                }
            })
            .await;

            // One connection first: it is the one stopped below.
            let mut stopped = h2_client(addr).await;
            let (status, _) = read(timeout(LIMIT, stopped.send_request(get("/warm"))).await.unwrap().unwrap()).await;
            assert_eq!(status, StatusCode::OK);

            // Mid-response: read some of an endless body, then the client's
            // connection goes (its task aborted closes the socket).
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) = client2::handshake(RuntimeExecutor::new(), Io::new(stream))
                .await
                .unwrap();
            let client_connection = waitrt::spawn(connection);
            let response = timeout(LIMIT, sender.send_request(get("/endless"))).await.unwrap().unwrap();
            let mut body = response.into_body();
            let mut got = 0;
            while got < 256 * 1024 {
                let frame = timeout(LIMIT, body.frame()).await.unwrap().unwrap().unwrap();
                got += frame.data_ref().map_or(0, |data| data.len());
            }
            client_connection.abort();
            drop((body, sender));
            let ended = timeout(LIMIT, ended_rx.recv()).await.expect("the h2 connection never ended");
            assert!(ended.is_some(), "the server's connection task is gone without a word");

            // Graceful shutdown of the other connection with a stream in flight.
            let in_flight = waitrt::spawn(stopped.send_request(get("/slow")));
            timeout(LIMIT, started_rx).await.unwrap().unwrap();
            stop_tx.send(()).unwrap();
            release_tx.send(()).unwrap();
            let response = timeout(LIMIT, in_flight).await.unwrap().unwrap();
            let (status, body) = read(response.expect("the stream in flight was cut off")).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello /slow"[..]));
            let ended = timeout(LIMIT, ended_rx.recv()).await.expect("the stopped connection never ended");
            assert_eq!(ended, Some(true), "the graceful shutdown ended in an error");
        });
    }
}

/// Graceful shutdown with a request in flight, sent by hyper's client
/// or by curl (`by_curl`; skipped, said on stderr, when curl is not
/// installed): the request completes, and the connection ends cleanly.
async fn graceful_shutdown_finishes_the_request_in_flight_from(by_curl: bool) {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let handler = Arc::new(std::sync::Mutex::new(Some((started_tx, release_rx))));
    let server_side = Arc::new(std::sync::Mutex::new(Some((stop_rx, stopping_tx, done_tx))));
    let (addr, _) = server(move |stream| {
        let handler = handler.clone();
        let (stop_rx, stopping_tx, done_tx) = server_side.lock().unwrap().take().unwrap();
        async move {
            // `/slow` tells the test it started, then waits to be released.
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = handler.lock().unwrap().take();
                async move {
                    if let Some((started, release)) = handler {
                        started.send(()).unwrap();
                        release.await.unwrap();
                    }
                    hello(request).await
                }
            });
            let connection = http1::Builder::new()
                .timer(RuntimeTimer::new())
                .serve_connection(Io::new(stream), service);
            let mut connection = pin!(connection);
            let served = match select(connection.as_mut(), stop_rx).await {
                Either::Left((served, _)) => served,
                Either::Right(_) => {
                    connection.as_mut().graceful_shutdown();
                    stopping_tx.send(()).unwrap();
                    connection.await
                }
            };
            done_tx.send(served.is_ok()).unwrap();
        }
    })
    .await;
    if by_curl && curl(&["--version"]).await.is_none() {
        return;
    }
    // One connection only: the server's first takes the test's channels.
    let mut sender = match by_curl {
        false => Some(h1_client(addr).await),
        true => None,
    };
    let in_flight = match &mut sender {
        Some(sender) => Either::Left(waitrt::spawn(sender.send_request(get("/slow")))),
        // curl's body, then the status code on a line of its own.
        None => Either::Right(waitrt::spawn(async move {
            let url = format!("http://{addr}/slow");
            curl(&["--write-out", "\n%{http_code}", &url])
                .await
                .unwrap()
        })),
    };
    timeout(LIMIT, started_rx).await.unwrap().unwrap();
    stop_tx.send(()).unwrap();
    timeout(LIMIT, stopping_rx).await.unwrap().unwrap();
    release_tx.send(()).unwrap();
    match in_flight {
        Either::Left(in_flight) => {
            let response = timeout(LIMIT, in_flight).await.unwrap().unwrap();
            let (status, body) = read(response.expect("the request in flight was cut off")).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello /slow"[..]));
        }
        Either::Right(in_flight) => {
            let out = timeout(LIMIT, in_flight).await.unwrap().unwrap();
            assert_eq!(out, "hello /slow\n200");
        }
    }
    assert!(
        timeout(LIMIT, done_rx).await.unwrap().unwrap(),
        "the connection ended in an error"
    );
    if let Some(mut sender) = sender {
        // Closed after that request: no new one on this connection.
        assert!(sender.send_request(get("/late")).await.is_err());
    }
}

rt_test! {
    fn graceful_shutdown_finishes_the_request_in_flight(rt) {
        rt.block_on(graceful_shutdown_finishes_the_request_in_flight_from(false));
    }
}

rt_test! {
    fn graceful_shutdown_finishes_curls_request_in_flight(rt) {
        rt.block_on(graceful_shutdown_finishes_the_request_in_flight_from(true));
    }
}

// ===== hyper-util's server side =====

rt_test! {
    /// hyper-util's `auto` builder (HTTP/1 and h2c on one port) and its
    /// `GracefulShutdown` need no tokio runtime: over `Io`, with our
    /// executor and timer, both serve here (the docs once said the `auto`
    /// builder did not work; an independent audit found it does). hyper's
    /// client on both protocols and curl (when installed) on both; then a
    /// request in flight finishes through `GracefulShutdown`.
    fn hyper_util_auto_builder_and_graceful_shutdown(rt) {
        use hyper_util::server::conn::auto;
        use hyper_util::server::graceful::GracefulShutdown;
        rt.block_on(async {
            let graceful = Arc::new(std::sync::Mutex::new(Some(GracefulShutdown::new())));
            let (started_tx, started_rx) = oneshot::channel::<()>();
            let (release_tx, release_rx) = oneshot::channel::<()>();
            let slow = Arc::new(std::sync::Mutex::new(Some((started_tx, release_rx))));
            let watcher = graceful.clone();
            let (addr, _) = server(move |stream| {
                let slow = slow.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let slow = (request.uri().path() == "/slow")
                        .then(|| slow.lock().unwrap().take())
                        .flatten();
                    async move {
                        if let Some((started, release)) = slow {
                            started.send(()).unwrap();
                            release.await.unwrap();
                        }
                        let body = format!("{:?} {}", request.version(), request.uri().path());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let mut builder = auto::Builder::new(RuntimeExecutor::new());
                builder.http1().timer(RuntimeTimer::new());
                builder.http2().timer(RuntimeTimer::new());
                let connection = builder.serve_connection(Io::new(stream), service).into_owned();
                let watched = watcher.lock().unwrap().as_ref().map(|g| g.watch(connection));
                async move {
                    if let Some(connection) = watched {
                        let _ = connection.await;
                    }
                }
            })
            .await;

            let mut h1 = h1_client(addr).await;
            let (status, body) = h1_get(&mut h1, "/one").await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"HTTP/1.1 /one"[..]));
            let mut h2 = h2_client(addr).await;
            let response = timeout(LIMIT, h2.send_request(get("/two"))).await.unwrap().unwrap();
            let (status, body) = read(response).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"HTTP/2.0 /two"[..]));
            let url = format!("http://{addr}/curl");
            if let Some(out) = curl(&[&url]).await {
                assert_eq!(out, "HTTP/1.1 /curl");
            }
            if let Some(out) = curl(&["--http2-prior-knowledge", &url]).await {
                assert_eq!(out, "HTTP/2.0 /curl");
            }

            // A request in flight when the shutdown starts finishes.
            let in_flight = waitrt::spawn(h1.send_request(get("/slow")));
            timeout(LIMIT, started_rx).await.unwrap().unwrap();
            let graceful = graceful.lock().unwrap().take().unwrap();
            let mut shutdown = pin!(graceful.shutdown());
            assert!(poll_once(shutdown.as_mut()).await.is_pending(), "drained with a request in flight");
            release_tx.send(()).unwrap();
            let response = timeout(LIMIT, in_flight).await.unwrap().unwrap();
            let (status, body) = read(response.expect("the request in flight was cut off")).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"HTTP/1.1 /slow"[..]));
            timeout(LIMIT, shutdown).await.expect("every connection drained");
        });
    }
}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(mut future: F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut future).poll(cx)))
        .await
}

// ===== axum and Io =====

rt_test! {
    fn axum_router_runs_on_our_runtime(rt) {
        use axum::routing::get as route_get;
        use tower_service::Service;
        rt.block_on(async {
            let router = axum::Router::new().route(
                "/where",
                route_get(|| async {
                    let ours = waitrt::Handle::try_current().is_some();
                    let tokio = tokio::runtime::Handle::try_current().is_ok();
                    format!("ours={ours} tokio={tokio}")
                }),
            );
            let (addr, _) = server(move |stream| {
                let router = router.clone();
                async move {
                    let service = service_fn(move |request: Request<Incoming>| router.clone().call(request));
                    let _ = http1::Builder::new()
                        .timer(RuntimeTimer::new())
                        .serve_connection(Io::new(stream), service)
                        .await;
                }
            })
            .await;
            let mut sender = h1_client(addr).await;
            assert_eq!(h1_get(&mut sender, "/where").await.1, "ours=true tokio=false");
            assert_eq!(h1_get(&mut sender, "/nowhere").await.0, StatusCode::NOT_FOUND);
        });
    }
}

rt_test! {
    fn io_both_ways(rt) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            // futures::io -> hyper::rt -> futures::io again.
            let mut client = Io::new(Io::new(client));
            let mut server = Io::new(Io::new(server));
            client.write_all(b"ping").await.unwrap();
            client.close().await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"ping");
        });
    }
}

#[test]
fn runtime_streams_write_vectored() {
    use hyper::rt::Write;
    let rt = support::build(None);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        // A borrowed stream says what it is told.
        assert!(Io::with_write_vectored(&stream, true).is_write_vectored());
        assert!(Io::new(stream).is_write_vectored());
        let (duplex, _) = waitrt::test_util::duplex(64);
        assert!(!Io::new(duplex).is_write_vectored());
    });
}

rt_test! {
    /// A 4 MiB upload through hyper's server and a 4 MiB response to
    /// hyper's client, both over `Io<TcpStream>`, which reads straight into
    /// hyper's uninitialised buffer: small reads (headers, the
    /// `TCP_INQ`-reporting `recvmsg`) and big ones (a plain `recv` into a
    /// buffer hyper grew) all arrive whole and in order.
    fn big_bodies_both_ways_arrive_whole(rt) {
        rt.block_on(async {
            const LEN: usize = 4 << 20;
            let pattern = |i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8;
            let (addr, _) = server(|stream| async move {
                let echo = service_fn(|request: Request<Incoming>| async move {
                    let body = request.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(Response::new(Full::new(body)))
                });
                let _ = http1::Builder::new()
                    .timer(RuntimeTimer::new())
                    .serve_connection(Io::new(stream), echo)
                    .await;
            })
            .await;
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) =
                client1::handshake::<_, Full<Bytes>>(Io::new(stream)).await.unwrap();
            waitrt::spawn(connection);
            let upload: Vec<u8> = (0..LEN).map(pattern).collect();
            let request = Request::post("http://localhost/echo")
                .body(Full::new(Bytes::from(upload)))
                .unwrap();
            let response = timeout(LIMIT, sender.send_request(request))
                .await
                .expect("the echo came back")
                .unwrap();
            let body = timeout(LIMIT, response.into_body().collect())
                .await
                .expect("the whole body came back")
                .unwrap()
                .to_bytes();
            assert_eq!(body.len(), LEN);
            let first_bad = body.iter().enumerate().position(|(i, &b)| b != pattern(i));
            assert_eq!(first_bad, None, "a byte arrived wrong");
        });
    }
}
