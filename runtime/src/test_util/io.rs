//! A scripted mock over the `futures::io` traits ([`AsyncRead`],
//! [`AsyncWrite`]), in the shape of `tokio_test::io`, that fails fast: an
//! operation the script does not expect panics at once (it never parks
//! without a waker), a written byte that differs from the script panics
//! naming the offset, and dropping the mock with actions left panics.
//!
//! ```
//! use futures::io::{AsyncReadExt, AsyncWriteExt};
//! use waitrt::test_util::io::Builder;
//!
//! waitrt::test_util::Check::new().run(|| async {
//!     let mut mock = Builder::new().write(b"ping").read(b"pong").build();
//!     mock.write_all(b"ping").await.unwrap();
//!     let mut reply = [0; 4];
//!     mock.read_exact(&mut reply).await.unwrap();
//!     assert_eq!(&reply, b"pong");
//! });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

use crate::time::Sleep;

enum Action {
    Read(Vec<u8>),
    Write(Vec<u8>),
    ReadError(Option<io::Error>),
    WriteError(Option<io::Error>),
    Wait(Duration),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Read(data) => write!(f, "read {} bytes {:?}", data.len(), preview(data)),
            Action::Write(data) => write!(f, "write {} bytes {:?}", data.len(), preview(data)),
            Action::ReadError(e) => write!(f, "read error {e:?}"),
            Action::WriteError(e) => write!(f, "write error {e:?}"),
            Action::Wait(d) => write!(f, "wait {d:?}"),
        }
    }
}

fn preview(data: &[u8]) -> String {
    let shown = &data[..data.len().min(32)];
    let mut s = String::from_utf8_lossy(shown).into_owned();
    if data.len() > shown.len() {
        s.push('…');
    }
    s
}

/// Builds a [`Mock`] from a script of actions, consumed in order.
///
/// # Examples
///
/// ```
/// let mock = waitrt::test_util::io::Builder::new().name("server").build();
/// drop(mock); // empty script: nothing left over
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    actions: VecDeque<Action>,
    name: Option<String>,
}

impl Builder {
    /// An empty script.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = waitrt::test_util::io::Builder::new();
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The next operation must be a read; it returns `data` (over one or
    /// more reads).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::io::AsyncReadExt;
    /// let mut mock = waitrt::test_util::io::Builder::new().read(b"hi").build();
    /// let mut buf = [0; 2];
    /// futures::executor::block_on(mock.read_exact(&mut buf)).unwrap();
    /// ```
    pub fn read(mut self, data: &[u8]) -> Builder {
        self.actions.push_back(Action::Read(data.to_vec()));
        self
    }

    /// The next operation must be a write of exactly `data` (over one or
    /// more writes).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::io::AsyncWriteExt;
    /// let mut mock = waitrt::test_util::io::Builder::new().write(b"hi").build();
    /// futures::executor::block_on(mock.write_all(b"hi")).unwrap();
    /// ```
    pub fn write(mut self, data: &[u8]) -> Builder {
        self.actions.push_back(Action::Write(data.to_vec()));
        self
    }

    /// The next read fails with `error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::io::AsyncReadExt;
    /// let err = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    /// let mut mock = waitrt::test_util::io::Builder::new().read_error(err).build();
    /// let mut buf = [0; 1];
    /// assert!(futures::executor::block_on(mock.read(&mut buf)).is_err());
    /// ```
    pub fn read_error(mut self, error: io::Error) -> Builder {
        self.actions.push_back(Action::ReadError(Some(error)));
        self
    }

    /// The next write fails with `error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::io::AsyncWriteExt;
    /// let err = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
    /// let mut mock = waitrt::test_util::io::Builder::new().write_error(err).build();
    /// assert!(futures::executor::block_on(mock.write(b"x")).is_err());
    /// ```
    pub fn write_error(mut self, error: io::Error) -> Builder {
        self.actions.push_back(Action::WriteError(Some(error)));
        self
    }

    /// The next operation (either kind) first waits `duration` on the
    /// runtime's clock: virtual time under a [`Check`](super::Check).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::io::AsyncReadExt;
    /// waitrt::test_util::Check::new().run(|| async {
    ///     let start = waitrt::time::now();
    ///     let mut mock = waitrt::test_util::io::Builder::new()
    ///         .wait(Duration::from_secs(5))
    ///         .read(b"late")
    ///         .build();
    ///     let mut buf = [0; 4];
    ///     mock.read_exact(&mut buf).await.unwrap();
    ///     assert_eq!(waitrt::time::now() - start, Duration::from_secs(5));
    /// });
    /// ```
    pub fn wait(mut self, duration: Duration) -> Builder {
        self.actions.push_back(Action::Wait(duration));
        self
    }

    /// A name for the mock's panic messages.
    ///
    /// # Examples
    ///
    /// ```
    /// let _ = waitrt::test_util::io::Builder::new().name("smb server");
    /// ```
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(name.to_string());
        self
    }

    /// The mock.
    ///
    /// # Examples
    ///
    /// ```
    /// let _mock = waitrt::test_util::io::Builder::new().build();
    /// ```
    pub fn build(self) -> Mock {
        Mock {
            actions: self.actions,
            name: self.name.unwrap_or_else(|| "mock I/O".into()),
            sleep: None,
            offset: 0,
        }
    }
}

/// A scripted [`AsyncRead`] + [`AsyncWrite`]; see [`Builder`].
#[derive(Debug)]
pub struct Mock {
    actions: VecDeque<Action>,
    name: String,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Bytes written so far (for mismatch reports).
    offset: usize,
}

impl Mock {
    /// Waits out a leading `wait` action; `Ready` when the next action is
    /// not a wait (or the script is done).
    fn poll_waits(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(Action::Wait(duration)) = self.actions.front() {
            let duration = *duration;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(crate::time::sleep(duration)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            self.actions.pop_front();
        }
        Poll::Ready(())
    }

    #[track_caller]
    fn unexpected(&self, what: &str) -> ! {
        match self.actions.front() {
            Some(next) => panic!(
                "{}: unexpected {what}: the script expects {next:?} next",
                self.name
            ),
            None => panic!("{}: unexpected {what}: the script is finished", self.name),
        }
    }
}

impl AsyncRead for Mock {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_waits(cx).is_pending() {
            return Poll::Pending;
        }
        match this.actions.front_mut() {
            // The script is done: end of stream.
            None => Poll::Ready(Ok(0)),
            Some(Action::Read(data)) => {
                let n = buf.len().min(data.len());
                buf[..n].copy_from_slice(&data[..n]);
                data.drain(..n);
                if data.is_empty() {
                    this.actions.pop_front();
                }
                Poll::Ready(Ok(n))
            }
            Some(Action::ReadError(error)) => {
                let error = error.take().expect("an error is returned once");
                this.actions.pop_front();
                Poll::Ready(Err(error))
            }
            Some(_) => this.unexpected("read"),
        }
    }
}

impl AsyncWrite for Mock {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_waits(cx).is_pending() {
            return Poll::Pending;
        }
        match this.actions.front_mut() {
            Some(Action::Write(expected)) => {
                let n = buf.len().min(expected.len());
                if let Some(i) = (0..n).find(|&i| buf[i] != expected[i]) {
                    panic!(
                        "{}: write differs from the script at byte {} (offset {} of the stream): \
                         wrote {:?}, expected {:?}",
                        this.name,
                        i,
                        this.offset + i,
                        preview(&buf[i..n]),
                        preview(&expected[i..n])
                    );
                }
                expected.drain(..n);
                this.offset += n;
                if expected.is_empty() {
                    this.actions.pop_front();
                }
                Poll::Ready(Ok(n))
            }
            Some(Action::WriteError(error)) => {
                let error = error.take().expect("an error is returned once");
                this.actions.pop_front();
                Poll::Ready(Err(error))
            }
            _ => this.unexpected(&format!("write of {} bytes {:?}", buf.len(), preview(buf))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if !self.actions.is_empty() && !std::thread::panicking() {
            panic!(
                "{}: dropped with {} scripted action(s) left: {:?}",
                self.name,
                self.actions.len(),
                self.actions
            );
        }
    }
}
