//! [`ToSocketAddrs`]: addresses the socket constructors accept. Literal
//! addresses are used as they are; host names are resolved on the
//! blocking pool, so a DNS lookup never stalls a scheduler thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What can name a socket address: a [`SocketAddr`], an `(ip, port)`
/// pair, a `"host:port"` string or a `(host, port)` pair, or a slice of
/// addresses. Sealed: the runtime decides how names are resolved.
pub trait ToSocketAddrs: sealed::Resolve {}

pub(crate) mod sealed {
    use super::*;

    /// How an address is turned into socket addresses.
    pub trait Resolve {
        /// Literal addresses, or the name to look up on the blocking pool.
        fn resolve(&self) -> Resolved;
    }

    #[derive(Debug)]
    pub enum Resolved {
        Addrs(Vec<SocketAddr>),
        Lookup(String),
    }
}

use sealed::{Resolve, Resolved};

/// Resolves `addr` (host names on the blocking pool).
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.resolve() {
        Resolved::Addrs(addrs) => addrs,
        Resolved::Lookup(name) => crate::spawn_blocking(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&name).map(Iterator::collect)
        })
        .await
        .map_err(|err| io::Error::other(err.to_string()))??,
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// Tries `op` on each address in turn; the last error if none works.
pub(crate) async fn each_addr<T, F, Fut>(
    addr: &(impl ToSocketAddrs + ?Sized),
    mut op: F,
) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = None;
    for addr in resolve(addr).await? {
        match op(addr).await {
            Ok(value) => return Ok(value),
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

macro_rules! literal {
    ($($ty:ty => |$a:ident| $e:expr;)*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Resolve for $ty {
            fn resolve(&self) -> Resolved {
                let $a = self;
                Resolved::Addrs(vec![$e])
            }
        }
    )*};
}

literal! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

impl ToSocketAddrs for [SocketAddr] {}
impl Resolve for [SocketAddr] {
    fn resolve(&self) -> Resolved {
        Resolved::Addrs(self.to_vec())
    }
}

impl ToSocketAddrs for str {}
impl Resolve for str {
    fn resolve(&self) -> Resolved {
        match self.parse() {
            Ok(addr) => Resolved::Addrs(vec![addr]),
            Err(_) => Resolved::Lookup(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Resolve for String {
    fn resolve(&self) -> Resolved {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Resolve for (&str, u16) {
    fn resolve(&self) -> Resolved {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Resolved::Addrs(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Resolved::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Resolve for (String, u16) {
    fn resolve(&self) -> Resolved {
        (self.0.as_str(), self.1).resolve()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> Resolved {
        (**self).resolve()
    }
}
