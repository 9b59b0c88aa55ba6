//! [`Io`]: `futures::io` streams as hyper's I/O, and hyper's I/O as
//! `futures::io` streams.

// The read into hyper's uninitialised buffer (see `Io`'s "Reads").
#![allow(unsafe_code)]

use std::any::TypeId;
use std::cell::Cell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use hyper::rt::{ReadBuf, ReadBufCursor};
use pin_project_lite::pin_project;

use crate::net::{TcpStream, UnixStream};

pin_project! {
    /// Adapts a stream between the two I/O trait families: a
    /// [`futures_io::AsyncRead`] + [`AsyncWrite`] stream (this runtime's
    /// [`TcpStream`], [`UnixStream`], or any other) becomes a
    /// [`hyper::rt::Read`] + [`hyper::rt::Write`] one, to hand to hyper's
    /// `serve_connection` or `handshake`; and a hyper stream (an upgraded
    /// connection, `hyper::upgrade::Upgraded`) becomes a `futures::io` one.
    /// The counterpart of hyper-util's `TokioIo`.
    ///
    /// # Reads
    ///
    /// A runtime [`TcpStream`] (on Linux) reads straight into hyper's
    /// buffer, which hyper has not initialised: the `recv` only writes it,
    /// and the cursor advances by what it wrote (one of the crate's
    /// audited `unsafe` places, see the crate docs). That is what
    /// hyper-util's `TokioIo` does with tokio's `ReadBuf`, and it saved
    /// about 190 instructions per HTTP request here (callgrind).
    ///
    /// Every other stream's `AsyncRead` takes an initialised `&mut [u8]`
    /// (`futures::io` has no uninitialised read), and the memory behind
    /// it might be read by the stream, so its reads go through a scratch
    /// buffer, initialised once and shared by every `Io` on the thread,
    /// and the bytes read (only those) are copied in with
    /// [`ReadBufCursor::put_slice`]: a request of a few hundred bytes
    /// costs a copy of a few hundred bytes, and no memory per connection.
    /// The scratch holds at most 64 KiB: one read asks for no more than
    /// that. The other way, zeroing hyper's buffer before each read (8 KiB
    /// and up: hyper hands every read a fresh cursor that counts nothing
    /// as initialised), costs more where HTTP spends its reads
    /// (`cargo bench --bench http -- readbuf`, in-memory reader, one read,
    /// ns; a syscall adds about 1,000):
    ///
    /// | bytes read | hyper's buffer | copy (scratch) | zero, then advance |
    /// | ---: | ---: | ---: | ---: |
    /// | 100 | 8 KiB | 13.5 | 46.2 |
    /// | 1,024 | 8 KiB | 34.1 | 67.4 |
    /// | 16 KiB | 16 KiB | 289 | 193 |
    /// | 64 KiB | 64 KiB | 3,383 | 2,675 |
    ///
    /// # Vectored writes
    ///
    /// `poll_write_vectored` is forwarded. hyper only uses it (queueing
    /// headers and body as separate buffers instead of copying the body
    /// behind the headers) when [`is_write_vectored`](hyper::rt::Write::is_write_vectored)
    /// says the stream writes several buffers in one go, which
    /// `futures::io` cannot tell. [`Io::new`] answers yes for this
    /// runtime's [`TcpStream`] and [`UnixStream`] (one `writev` each) and
    /// no for every other type, whose vectored write may be the trait's
    /// default (the first buffer only: headers and body would go out in
    /// two writes, and Nagle plus delayed ACKs can stall the second one).
    /// [`Io::with_write_vectored`] states it for other streams.
    ///
    /// # Examples
    ///
    /// A server on this runtime: name [`Io`], [`RuntimeTimer`](super::RuntimeTimer)
    /// and [`RuntimeExecutor`](super::RuntimeExecutor) where hyper-util's
    /// `TokioIo`, `TokioTimer` and `TokioExecutor` would go.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    /// use http_body_util::Full;
    /// use hyper::body::{Bytes, Incoming};
    /// use hyper::server::conn::http1;
    /// use hyper::service::service_fn;
    /// use hyper::{Request, Response};
    /// use waitrt::hyper::{Io, RuntimeTimer};
    /// use waitrt::net::{TcpListener, TcpStream};
    ///
    /// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    ///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
    /// }
    ///
    /// waitrt::Runtime::new().unwrap().block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     waitrt::spawn(async move {
    ///         loop {
    ///             let (stream, _) = listener.accept().await.unwrap();
    ///             waitrt::spawn(async move {
    ///                 let served = http1::Builder::new()
    ///                     .timer(RuntimeTimer::new())
    ///                     .serve_connection(Io::new(stream), service_fn(hello))
    ///                     .await;
    ///                 if let Err(err) = served {
    ///                     eprintln!("connection: {err}");
    ///                 }
    ///             });
    ///         }
    ///     });
    ///
    ///     let mut client = TcpStream::connect(addr).await?;
    ///     client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    ///     let mut response = String::new();
    ///     client.read_to_string(&mut response).await?;
    ///     assert!(response.starts_with("HTTP/1.1 200 OK"));
    ///     assert!(response.ends_with("hello"));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    #[derive(Debug)]
    pub struct Io<T> {
        #[pin]
        inner: T,
        vectored: bool,
        // Reads into hyper's uninitialised buffer, for a runtime
        // `TcpStream` (see "Reads").
        read_uninit: Option<UninitRead<T>>,
    }
}

/// The most one read asks of the inner stream (the scratch's cap).
const SCRATCH_MAX: usize = 64 * 1024;

thread_local! {
    /// The initialised buffer reads go through (see `Io`'s docs). Taken
    /// out for the read and put back, so a read polled re-entrantly
    /// inside another (the test toolkit can do that) finds it empty and
    /// uses one of its own instead of failing.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

// ===== impl Io =====

impl<T: 'static> Io<T> {
    /// Wraps `inner`. Writes are vectored (see [above](Io#vectored-writes))
    /// when `inner` is this runtime's [`TcpStream`] or [`UnixStream`].
    ///
    /// For a borrowed stream (not `'static`), use
    /// [`with_write_vectored`](Io::with_write_vectored).
    pub fn new(inner: T) -> Io<T> {
        let vectored = is_runtime_stream::<T>();
        Io {
            inner,
            vectored,
            read_uninit: uninit_reader::<T>(),
        }
    }
}

impl<T> Io<T> {
    /// Wraps `inner`, stating whether its `poll_write_vectored` writes
    /// several buffers at once (what hyper's `is_write_vectored` asks).
    pub fn with_write_vectored(inner: T, vectored: bool) -> Io<T> {
        Io {
            inner,
            vectored,
            read_uninit: None,
        }
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

fn is_runtime_stream<T: 'static>() -> bool {
    let id = TypeId::of::<T>();
    id == TypeId::of::<TcpStream>() || id == TypeId::of::<UnixStream>()
}

/// A read of `T` into memory that may be uninitialised.
type UninitRead<T> = fn(&T, &mut Context<'_>, &mut [MaybeUninit<u8>]) -> Poll<io::Result<usize>>;

/// The uninitialised read for `T`, if it is a runtime `TcpStream` on a
/// system where its `recv` can take such memory.
fn uninit_reader<T: 'static>() -> Option<UninitRead<T>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if TypeId::of::<T>() == TypeId::of::<TcpStream>() {
        return Some(read_tcp_uninit::<T>);
    }
    None
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_tcp_uninit<T: 'static>(
    inner: &T,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Poll<io::Result<usize>> {
    let stream: &dyn std::any::Any = inner;
    stream
        .downcast_ref::<TcpStream>()
        .expect("made only for a TcpStream")
        .poll_read_uninit(cx, buf)
}

// ===== futures::io -> hyper =====

impl<T: AsyncRead> hyper::rt::Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(read) = self.read_uninit {
            let inner = self.project().inner.into_ref().get_ref();
            // SAFETY: the bytes `as_mut` hands out are only passed to the
            // stream's `recv` as its destination: the kernel writes them and
            // nothing reads them, so none that hyper initialised is
            // un-initialised.
            let unfilled = unsafe { buf.as_mut() };
            let n = ready!(read(inner, cx, unfilled))?;
            // SAFETY: `recv` returned `n`: it wrote the first `n` bytes of
            // `unfilled` (never more than its length).
            unsafe { buf.advance(n) };
            return Poll::Ready(Ok(()));
        }
        let want = buf.remaining().min(SCRATCH_MAX);
        let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
        if scratch.len() < want {
            scratch.resize(want, 0);
        }
        let read = self.project().inner.poll_read(cx, &mut scratch[..want]);
        if let Poll::Ready(Ok(n)) = read {
            buf.put_slice(&scratch[..n]);
        }
        // Gone only in the thread's teardown: then the scratch goes too.
        let _ = SCRATCH.try_with(|cell| cell.set(scratch));
        read.map_ok(drop)
    }
}

impl<T: AsyncWrite> hyper::rt::Write for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}

// ===== hyper -> futures::io =====

impl<T: hyper::rt::Read> AsyncRead for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // `buf` is initialised: hyper's cursor over it needs no copy.
        let mut read_buf = ReadBuf::new(buf);
        ready!(self.project().inner.poll_read(cx, read_buf.unfilled()))?;
        Poll::Ready(Ok(read_buf.filled().len()))
    }
}

impl<T: hyper::rt::Write> AsyncWrite for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
