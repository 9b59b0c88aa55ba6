//! TCP: [`TcpListener`], [`TcpStream`], and a stream's owned halves.

mod inq;
mod listener;
mod split;
mod stream;

pub use listener::{is_resource_exhaustion, AcceptBackoff, Incoming, TcpListener};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use stream::TcpStream;
