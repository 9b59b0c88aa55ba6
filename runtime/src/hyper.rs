//! hyper 1.x on this runtime (feature `hyper`): the three pieces hyper
//! asks a runtime for, under the names tokio users know from
//! `hyper_util::rt`.
//!
//! | hyper needs | tokio (hyper-util) | here |
//! | --- | --- | --- |
//! | `hyper::rt::Read` + `Write` over a socket | `TokioIo<T>` | [`Io<T>`](Io), over any `futures::io` stream |
//! | `futures::io` over hyper's IO (an upgraded connection: `hyper::upgrade::Upgraded`) | `TokioIo<Upgraded>` (tokio's traits) | [`Io<T>`](Io) the other way round: `Io::new(upgraded)` is `AsyncRead` + `AsyncWrite` |
//! | `hyper::rt::Timer` (header-read timeout, keep-alive pings) | `TokioTimer` | [`RuntimeTimer`], on our wheel |
//! | `hyper::rt::Executor` (HTTP/2 streams, client connections) | `TokioExecutor` | [`RuntimeExecutor`], [`crate::spawn`] |
//!
//! Nothing else is needed: name them where hyper takes them (see
//! [`Io`]'s example for a whole HTTP/1.1 server, and `examples/http.rs`
//! for HTTP/1.1 and h2c on one port, an axum `Router` and graceful
//! shutdown). The feature enables no hyper feature of its own: pick
//! `server`/`client` and `http1`/`http2` in your `Cargo.toml`.
//!
//! # Which tokio-based crates work here
//!
//! A crate works on this runtime when it only needs tokio's *types*, not
//! tokio's *runtime*: tokio's reactor (sockets, `tokio::net`) and timer
//! (`tokio::time`) exist only inside a tokio runtime, and using them from
//! one of our tasks panics with "there is no reactor running, must be
//! called from the context of a Tokio 1.x runtime".
//!
//! Work here:
//!
//! - **hyper** itself, with the three pieces above (it depends on tokio,
//!   for `tokio::sync` only).
//! - **`tokio::sync`** (channels, `Mutex`, `Notify`, `Semaphore`): plain
//!   data structures with wakers, no driver.
//! - **`tokio_util::compat`**, to pass a tokio-IO type to a `futures::io`
//!   consumer or back, as long as the stream itself is not a
//!   `tokio::net` one.
//! - **axum's `Router`** (and any tower `Service` without timers): call it
//!   from a hyper `service_fn`, as `examples/http.rs` does; a `Router` is a
//!   `Service<Request<B>>` that never touches the runtime.
//! - **h2** (through hyper's `http2` feature): it uses tokio's I/O
//!   *traits*, which hyper implements over [`Io`].
//!
//! Do not work (they need a tokio runtime's reactor or timer):
//!
//! - **`axum::serve`**: its accept loop is `tokio::net::TcpListener`.
//!   Write the accept loop with [`crate::net::TcpListener`] instead.
//! - **reqwest**: its connector is `tokio::net::TcpStream` plus tokio's
//!   timer. Use hyper's client (`hyper::client::conn::http1::handshake`
//!   over [`Io`]).
//! - **tonic's transport** (`Server`, `Channel`): tokio sockets and
//!   timers. tonic's generated services are tower `Service`s and can be
//!   served by hyper's `http2` builder here.
//! - **tower's `timeout`** and other timer layers: `tokio::time::sleep`.
//! - **hyper-util's `TokioIo` and `TokioTimer`** (and its legacy client,
//!   whose `HttpConnector` opens `tokio::net` sockets): use [`Io`] and
//!   [`RuntimeTimer`].
//!
//! hyper-util's server pieces need no tokio runtime and do work here
//! (feature `server-auto`, `server-graceful`): its `auto` builder serves
//! HTTP/1 and h2c on one port over [`Io`], given [`RuntimeExecutor`] and
//! [`RuntimeTimer`], and `GracefulShutdown` drains connections.
//!
//! # Examples
//!
//! An HTTP/1.1 client and server (both hyper's) on this runtime:
//!
//! ```
//! use std::convert::Infallible;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use waitrt::hyper::{Io, RuntimeTimer};
//! use waitrt::net::{TcpListener, TcpStream};
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     waitrt::spawn(async move {
//!         let (stream, _) = listener.accept().await.unwrap();
//!         let service = hyper::service::service_fn(|_: Request<Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi"))))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .timer(RuntimeTimer::new())
//!             .serve_connection(Io::new(stream), service)
//!             .await
//!     });
//!
//!     let stream = TcpStream::connect(addr).await?;
//!     let (mut sender, connection) = hyper::client::conn::http1::handshake(Io::new(stream)).await?;
//!     waitrt::spawn(connection);
//!     let request = Request::get("/").header("host", "x").body(Empty::<Bytes>::new())?;
//!     let response = sender.send_request(request).await?;
//!     assert_eq!(response.into_body().collect().await?.to_bytes(), "hi");
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! })
//! .unwrap();
//! ```

mod executor;
mod io;
mod timer;

pub use executor::RuntimeExecutor;
pub use io::Io;
pub use timer::RuntimeTimer;
