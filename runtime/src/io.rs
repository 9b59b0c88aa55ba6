//! I/O pieces at tokio's paths: [`unix::AsyncFd`] (any file descriptor
//! registered with the reactor, also at [`net::AsyncFd`](crate::net::AsyncFd))
//! and the [`Interest`] it is registered with.
//!
//! The byte-stream traits are not here: this runtime's sockets, pipes and
//! files implement [`futures::io`](futures_io)'s `AsyncRead` and
//! `AsyncWrite` (see the guide [coming from
//! tokio](crate::guide::coming_from_tokio) for tokio's traits and
//! `tokio_util::compat`).
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use waitrt::io::{unix::AsyncFd, Interest};
//!
//! waitrt::Runtime::new().unwrap().block_on(async {
//!     let (ours, theirs) = UnixStream::pair()?;
//!     ours.set_nonblocking(true)?;
//!     // Only writes are watched: no read wakes for this descriptor.
//!     let fd = AsyncFd::with_interest(ours, Interest::WRITABLE)?;
//!     let n = fd.write_with(|s| (&*s).write(b"hi")).await?;
//!     assert_eq!(n, 2);
//!     drop(theirs);
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

use std::fmt;
use std::ops::BitOr;

/// Unix-only I/O: [`AsyncFd`](unix::AsyncFd) and its guard, as tokio's
/// `tokio::io::unix`.
pub mod unix {
    pub use crate::net::{AsyncFd, AsyncFdReadyGuard, TryIoError};
}

/// Which readiness a source is registered for (`EPOLLIN`, `EPOLLOUT`), as
/// tokio's `io::Interest`: [`READABLE`](Self::READABLE),
/// [`WRITABLE`](Self::WRITABLE), or both (`READABLE | WRITABLE`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Interest(Bits);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bits {
    Readable,
    Writable,
    Both,
}

impl Interest {
    /// Readable: data to read, a connection to accept, end of file, a
    /// hang-up or an error (`EPOLLIN`).
    pub const READABLE: Interest = Interest(Bits::Readable);

    /// Writable: room to write (`EPOLLOUT`).
    pub const WRITABLE: Interest = Interest(Bits::Writable);

    /// Both `self` and `other` (as `self | other`).
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        match (self.0, other.0) {
            (Bits::Readable, Bits::Readable) => Interest::READABLE,
            (Bits::Writable, Bits::Writable) => Interest::WRITABLE,
            _ => Interest(Bits::Both),
        }
    }

    /// Whether it includes [`READABLE`](Self::READABLE).
    pub const fn is_readable(self) -> bool {
        !matches!(self.0, Bits::Writable)
    }

    /// Whether it includes [`WRITABLE`](Self::WRITABLE).
    pub const fn is_writable(self) -> bool {
        !matches!(self.0, Bits::Readable)
    }

    pub(crate) fn to_mio(self) -> mio::Interest {
        match self.0 {
            Bits::Readable => mio::Interest::READABLE,
            Bits::Writable => mio::Interest::WRITABLE,
            Bits::Both => mio::Interest::READABLE | mio::Interest::WRITABLE,
        }
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Bits::Readable => "READABLE",
            Bits::Writable => "WRITABLE",
            Bits::Both => "READABLE | WRITABLE",
        })
    }
}
