//! TCP reads that say whether they emptied the receive queue (Linux's
//! `TCP_INQ`).
//!
//! A read that fills the caller's buffer exactly cannot tell from its byte
//! count whether more bytes are queued, so the readiness stays set and the
//! next read makes a syscall only to learn `WouldBlock`: one wasted `recv`
//! per message for a protocol that reads each message into a buffer of its
//! size (`read_exact` of a header, a fixed-size request). With `TCP_INQ`
//! on, `recvmsg` also returns how many bytes are left, and a read that
//! leaves none clears the readiness at once.
//!
//! Only message-sized reads use it (at most [`MESSAGE_READ`] bytes): for a
//! bulk read the saved syscall is small against the copy, and a plain
//! `recv` is cheaper than `recvmsg`. It is turned on lazily, by a stream's
//! first message-sized read that fills its buffer exactly, so a stream
//! that never does one pays nothing. Where the option is refused (a kernel
//! before 4.18, another system), reads stay plain.
//!
//! End-of-file is never lost to the clear: the kernel counts a received
//! FIN as one byte left, and the reactor's read-closed bit, set by the
//! FIN's own edge, is never cleared. Code that borrows the socket's fd
//! (`AsRawFd`) while the stream holds it may see `TCP_CM_INQ` control
//! messages; [`into_std`](super::TcpStream::into_std) turns the option
//! back off.

use std::io::{self, IoSliceMut, Read};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::reactor::registration::Moved;
use crate::reactor::vectored_len;

/// The largest read that asks the kernel what it left.
pub(super) const MESSAGE_READ: usize = 16 * 1024;

const UNTRIED: u8 = 0;
const ON: u8 = 1;
const REFUSED: u8 = 2;

/// A stream's `TCP_INQ` state: not tried yet, on, or refused.
#[derive(Debug)]
pub(super) struct InqReads(AtomicU8);

impl InqReads {
    pub(super) const fn new() -> InqReads {
        InqReads(AtomicU8::new(UNTRIED))
    }

    /// One read into `buf`.
    pub(super) fn read(&self, socket: &mio::net::TcpStream, buf: &mut [u8]) -> io::Result<Moved> {
        if buf.len() <= MESSAGE_READ && self.0.load(Relaxed) == ON {
            return sys::recv_reporting(socket, &mut [IoSliceMut::new(buf)]);
        }
        let bytes = (&*socket).read(buf)?;
        self.after_plain_read(socket, bytes, buf.len());
        Ok(Moved::bytes(bytes))
    }

    /// One read into `bufs`, filled in order.
    /// [`read`](Self::read) into memory that may be uninitialised (hyper's
    /// read buffer, see `hyper::Io`).
    #[cfg(all(feature = "hyper", any(target_os = "linux", target_os = "android")))]
    pub(super) fn read_uninit(
        &self,
        socket: &mio::net::TcpStream,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> io::Result<Moved> {
        if buf.len() <= MESSAGE_READ && self.0.load(Relaxed) == ON {
            return sys::recv_reporting_uninit(socket, buf);
        }
        let bytes = sys::recv_uninit(socket, buf)?;
        self.after_plain_read(socket, bytes, buf.len());
        Ok(Moved::bytes(bytes))
    }

    pub(super) fn read_vectored(
        &self,
        socket: &mio::net::TcpStream,
        bufs: &mut [IoSliceMut<'_>],
    ) -> io::Result<Moved> {
        let requested = vectored_len(bufs);
        if requested <= MESSAGE_READ && self.0.load(Relaxed) == ON {
            return sys::recv_reporting(socket, bufs);
        }
        let bytes = (&*socket).read_vectored(bufs)?;
        self.after_plain_read(socket, bytes, requested);
        Ok(Moved::bytes(bytes))
    }

    /// Turns the option on after the first message-sized read that filled
    /// its buffer. Two readers racing here both set it: harmless.
    fn after_plain_read(&self, socket: &mio::net::TcpStream, bytes: usize, requested: usize) {
        if bytes > 0
            && bytes == requested
            && requested <= MESSAGE_READ
            && self.0.load(Relaxed) == UNTRIED
        {
            let state = if sys::set_inq(socket, true) {
                ON
            } else {
                REFUSED
            };
            self.0.store(state, Relaxed);
        }
    }

    /// Turns the option back off if this stream turned it on (the socket
    /// leaves for code that does not expect the extra control message).
    pub(super) fn turn_off(&self, socket: &mio::net::TcpStream) {
        if self.0.swap(UNTRIED, Relaxed) == ON {
            sys::set_inq(socket, false);
        }
    }

    /// Whether reads report what they leave (for tests).
    #[cfg(test)]
    pub(super) fn is_on(&self) -> bool {
        self.0.load(Relaxed) == ON
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
mod sys {
    use std::io::{self, IoSliceMut};
    #[cfg(feature = "hyper")]
    use std::mem::MaybeUninit;
    use std::mem::{size_of, size_of_val, zeroed};
    use std::os::fd::AsRawFd;

    use crate::reactor::registration::Moved;
    use crate::reactor::MAX_IOVECS;

    /// Room for one control message carrying an int (`CMSG_SPACE(4)`: 24
    /// bytes on 64-bit Linux, 16 on 32-bit), 8-byte aligned.
    type Control = [u64; 4];
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    const _: () =
        assert!(unsafe { libc::CMSG_SPACE(4) } as usize <= std::mem::size_of::<Control>());

    /// Sets `TCP_INQ`; whether the kernel took it.
    pub(super) fn set_inq(socket: &impl AsRawFd, on: bool) -> bool {
        let value = libc::c_int::from(on);
        // SAFETY: `value` is a live `c_int` for the whole call and the
        // length passed is its size; the fd is open (borrowed from
        // `socket`).
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INQ,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// `recvmsg` into `bufs`, with the bytes left in the receive queue
    /// read from the `TCP_CM_INQ` control message (absent or truncated:
    /// nothing is known, `drained` is false).
    pub(super) fn recv_reporting(
        socket: &impl AsRawFd,
        bufs: &mut [IoSliceMut<'_>],
    ) -> io::Result<Moved> {
        // `IoSliceMut` is guaranteed ABI-compatible with `iovec` on Unix.
        let iov = bufs.as_mut_ptr().cast::<libc::iovec>();
        // SAFETY: the iovecs are the caller's buffers, borrowed mutably for
        // this call.
        unsafe { recvmsg_reporting(socket, iov, bufs.len().min(MAX_IOVECS)) }
    }

    /// [`recv_reporting`] into memory that may be uninitialised (hyper's
    /// read buffer): the kernel only writes it.
    #[cfg(feature = "hyper")]
    pub(super) fn recv_reporting_uninit(
        socket: &impl AsRawFd,
        buf: &mut [MaybeUninit<u8>],
    ) -> io::Result<Moved> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: the one iovec describes `buf`, borrowed mutably for this
        // call; `recvmsg` writes into it and never reads it.
        unsafe { recvmsg_reporting(socket, &mut iov, 1) }
    }

    /// A plain `recv` into memory that may be uninitialised.
    #[cfg(feature = "hyper")]
    pub(super) fn recv_uninit(
        socket: &impl AsRawFd,
        buf: &mut [MaybeUninit<u8>],
    ) -> io::Result<usize> {
        // SAFETY: `buf` is live and borrowed mutably for this call; `recv`
        // writes at most `buf.len()` bytes into it and never reads it. The
        // fd is open (borrowed from `socket`).
        let received =
            unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(received as usize)
    }

    /// `recvmsg` into the `iovlen` iovecs at `iov`, reporting the bytes
    /// left in the receive queue.
    ///
    /// # Safety
    ///
    /// `iov` points at `iovlen` iovecs, each describing memory the caller
    /// may write (initialised or not) for the duration of the call.
    unsafe fn recvmsg_reporting(
        socket: &impl AsRawFd,
        iov: *mut libc::iovec,
        iovlen: usize,
    ) -> io::Result<Moved> {
        let mut control: Control = [0; 4];
        // SAFETY: `msghdr` is plain integers and pointers, for which all
        // zeroes is a valid value (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = iov;
        msg.msg_iovlen = iovlen as _;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: `msg` points at `msg_iovlen` iovecs of writable memory
        // (this function's contract) and at `control`, whose length is
        // `msg_controllen`; the fd is open (borrowed from `socket`). The
        // kernel writes only inside those.
        let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let left = if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            None
        } else {
            // SAFETY: `msg` is the header the kernel just filled; its
            // control pointer and length describe `control`, still live.
            // CMSG_FIRSTHDR returns null or a header inside it, and a
            // header of the expected level and type carries one int.
            unsafe {
                let header = libc::CMSG_FIRSTHDR(&msg);
                if header.is_null()
                    || (*header).cmsg_level != libc::SOL_TCP
                    || (*header).cmsg_type != libc::TCP_CM_INQ
                {
                    None
                } else {
                    Some(
                        libc::CMSG_DATA(header)
                            .cast::<libc::c_int>()
                            .read_unaligned(),
                    )
                }
            }
        };
        Ok(Moved {
            bytes: received as usize,
            drained: left == Some(0),
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod sys {
    use std::io::{self, IoSliceMut};
    use std::os::fd::AsRawFd;

    use crate::reactor::registration::Moved;

    pub(super) fn set_inq(_: &impl AsRawFd, _: bool) -> bool {
        false
    }

    pub(super) fn recv_reporting(_: &impl AsRawFd, _: &mut [IoSliceMut<'_>]) -> io::Result<Moved> {
        unreachable!("TCP_INQ is never on here")
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests;
