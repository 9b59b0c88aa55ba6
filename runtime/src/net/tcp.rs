//! TCP: [`TcpListener`], [`TcpStream`], a stream's owned halves, and
//! [`TcpSocket`] to set options before connecting or listening.

mod inq;
mod listener;
mod socket;
mod split;
mod stream;

pub use listener::{is_resource_exhaustion, AcceptBackoff, Incoming, TcpListener};
pub use socket::TcpSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use stream::TcpStream;
