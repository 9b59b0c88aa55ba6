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
        /// One literal address: no allocation (a `send_to` resolves its
        /// target on every call; a `Vec` of one cost each an allocation
        /// tokio's does not make, an independent probe).
        One(SocketAddr),
        Addrs(Vec<SocketAddr>),
        Lookup(String),
    }
}

use sealed::{Resolve, Resolved};

/// Looks up `host` on the blocking pool and gives its socket addresses;
/// a literal address (`"127.0.0.1:80"`, a [`SocketAddr`], an `(ip, port)`
/// pair) is given back at once, with no lookup and no blocking-pool job.
///
/// A name is resolved as [`std::net::ToSocketAddrs`] resolves it
/// (`getaddrinfo(3)`: `/etc/hosts`, then DNS, as the system is set up),
/// which blocks; running it on the blocking pool keeps the scheduler's
/// threads free meanwhile. A name needs a port: `"example.com:443"` or
/// `("example.com", 443)`.
///
/// As tokio's `net::lookup_host`. Every `connect`, `bind` and `send_to`
/// that takes an address resolves it the same way.
///
/// # Errors
///
/// As [`std::net::ToSocketAddrs`]: `InvalidInput` for a string that is
/// not `host:port` or a port out of range, the resolver's error for a
/// name it cannot find; an error if the runtime shut down before the
/// lookup ran, or for a name looked up outside a runtime.
///
/// # Cancel safety
///
/// Dropping the future loses nothing; a lookup already running on the
/// blocking pool finishes there and its result is dropped.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
///
/// waitrt::Runtime::new().unwrap().block_on(async {
///     let addrs: Vec<SocketAddr> = waitrt::net::lookup_host("localhost:8080").await?.collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn lookup_host(
    host: impl ToSocketAddrs,
) -> io::Result<impl Iterator<Item = SocketAddr> + Send + 'static> {
    Ok(lookup(&host).await?.into_iter())
}

/// Resolves `addr` (host names on the blocking pool); may be empty.
async fn lookup(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    lookup_resolved(addr.resolve()).await
}

/// [`lookup`] of what `resolve` gave.
async fn lookup_resolved(resolved: Resolved) -> io::Result<Vec<SocketAddr>> {
    match resolved {
        Resolved::One(addr) => Ok(vec![addr]),
        Resolved::Addrs(addrs) => Ok(addrs),
        Resolved::Lookup(name) => crate::Handle::try_current()
            .ok_or_else(|| {
                io::Error::other(format!(
                    "cannot look up `{name}`: names are looked up on a runtime's blocking \
                     pool, and there is no runtime here"
                ))
            })?
            .spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&name).map(Iterator::collect)
            })
            .await
            .map_err(|err| io::Error::other(format!("the lookup did not run: {err}")))?,
    }
}

/// Resolves `addr` (host names on the blocking pool); at least one
/// address, or an error.
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    at_least_one(lookup(addr).await?)
}

/// `addrs`, or the error for a name that resolved to no address.
fn at_least_one(addrs: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// The first address `addr` names (host names on the blocking pool), as
/// [`resolve`]`(addr)[0]`; a literal address allocates nothing.
pub(crate) async fn resolve_first(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<SocketAddr> {
    match addr.resolve() {
        Resolved::One(addr) => Ok(addr),
        resolved => Ok(at_least_one(lookup_resolved(resolved).await?)?[0]),
    }
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
                Resolved::One($e)
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
            Ok(addr) => Resolved::One(addr),
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
            Ok(ip) => Resolved::One(SocketAddr::new(ip, self.1)),
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
