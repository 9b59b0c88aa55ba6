//! The sockets of a `tcp_bulk` run: the same for every runtime, with the
//! kernel's run-to-run memory taken out (a pinned congestion control, a
//! fresh loopback address per run).

/// The congestion control both ends of a `tcp_bulk` connection use. Under
/// BBR (the default on these machines) each loopback connection settles
/// at about 3.2k or 8k MiB/s by chance, for every runtime and with the
/// same syscalls either way, so a median compared luck; under Reno or
/// CUBIC every run is steady. Reno is the one every Linux lets an
/// unprivileged socket choose.
const BULK_CONGESTION_CONTROL: &str = "reno";

/// Puts `socket` on [`BULK_CONGESTION_CONTROL`], on the systems that let
/// a socket choose (Linux, FreeBSD).
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn choose_congestion_control(socket: &socket2::Socket) -> std::io::Result<()> {
    socket.set_tcp_congestion(BULK_CONGESTION_CONTROL.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn choose_congestion_control(_: &socket2::Socket) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn tcp_socket() -> socket2::Socket {
    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket")
}

/// The congestion control `tcp_bulk` runs under here, for the header.
pub(crate) fn bulk_congestion_control() -> String {
    match choose_congestion_control(&tcp_socket()) {
        Ok(()) => BULK_CONGESTION_CONTROL.into(),
        Err(e) => format!(
            "the system's congestion control: {BULK_CONGESTION_CONTROL} refused ({e}), \
             runs may be bimodal"
        ),
    }
}

/// A new socket on [`BULK_CONGESTION_CONTROL`], chosen before it connects
/// or listens: switching later leaves the socket paced as BBR set it up,
/// which is bimodal again. A refusal is in the header.
fn bulk_socket() -> socket2::Socket {
    let socket = tcp_socket();
    let _ = choose_congestion_control(&socket);
    socket
}

/// A loopback address no earlier `tcp_bulk` run connected to. The kernel
/// remembers each destination's congestion window and RTT and starts the
/// next connection to it from them, so on one address every run began
/// where the previous one (another runtime's) left off: ours alone ran at
/// 5.2k MiB/s on 2 threads after its own runs, 6.8k with that memory
/// off. Linux routes all of 127.0.0.0/8 to loopback. The kernel's memory
/// outlives a process, and every measurement is a process of its own, so
/// the address starts from the process id (16 addresses per process; a
/// pid comes back only after the pid space wraps) and counts up in it.
fn fresh_loopback() -> std::net::SocketAddr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
    // 127.1.0.0 up to 127.254.255.255: never 127.0.0.x, nor the broadcast.
    let host = 0x01_0000 + (std::process::id().wrapping_mul(16) + n) % 0xFE_0000;
    let [_, a, b, c] = (0x7f00_0000 + host).to_be_bytes();
    (std::net::Ipv4Addr::new(127, a, b, c), 0).into()
}

/// A non-blocking listener for `tcp_bulk` on a [`fresh_loopback`] address
/// (127.0.0.1, with a warning, where the system refuses it); the
/// connections it accepts inherit its congestion control.
pub(crate) fn bulk_listener() -> std::net::TcpListener {
    static WARN: std::sync::Once = std::sync::Once::new();
    let socket = bulk_socket();
    let fresh = fresh_loopback();
    if let Err(e) = socket.bind(&fresh.into()) {
        WARN.call_once(|| {
            eprintln!(
                "tcp_bulk: cannot bind {fresh} ({e}); every run uses 127.0.0.1 and starts \
                 from the previous run's window"
            )
        });
        let localhost: std::net::SocketAddr = (std::net::Ipv4Addr::LOCALHOST, 0).into();
        socket.bind(&localhost.into()).expect("bind");
    }
    socket.listen(128).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    socket.into()
}

/// A non-blocking connection to a [`bulk_listener`] (on loopback the
/// connect completes before anyone accepts).
pub(crate) fn bulk_connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = bulk_socket();
    socket.connect(&addr.into()).expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");
    socket.into()
}
