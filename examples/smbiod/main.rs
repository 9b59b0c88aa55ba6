//! smbiod: an SMB2 client daemon in the style of Linux's `smbiod`, with an
//! embedded SMB2 server to talk to (issue 7).
//!
//! Until the async sockets land, `main` starts the embedded server (blocking
//! driver) on an ephemeral port, serving a directory, runs a self-check with
//! the protocol client against it on every dialect (list, write, read
//! back), and with `--serve` keeps serving so smbclient can connect:
//!
//! ```text
//! cargo run --release --example smbiod -- [DIR] [--serve]
//! smbclient //127.0.0.1/share -p PORT -N -m SMB3 -c 'ls'
//! ```

#![forbid(unsafe_code)]

mod client;
mod server;
mod wire;

use client::blocking::SyncClient;
use client::ClientError;

/// List, write and read back over one connection at `dialect`.
fn self_check(addr: &str, dialect: u16) -> Result<usize, ClientError> {
    let mut c = SyncClient::connect(addr, &[dialect], "", "share")?;
    let name = format!("smbiod-selfcheck-{dialect:04x}.bin");
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i * 7 + u32::from(dialect)) as u8)
        .collect();
    c.write_file(&name, &data)?;
    let back = c.read_file(&name)?;
    let entries = c.list("")?.len();
    if c.state.in_flight() != 0 || c.state.credits() == 0 {
        return Err(ClientError::Protocol("credit bookkeeping is off"));
    }
    c.logoff()?;
    if back != data {
        return Err(ClientError::Protocol(
            "read-back differs from what was written",
        ));
    }
    Ok(entries)
}

fn main() {
    let mut dir = std::env::temp_dir().join(format!("smbiod-share-{}", std::process::id()));
    let mut serve = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--serve" => serve = true,
            other => dir = other.into(),
        }
    }
    std::fs::create_dir_all(&dir).expect("share directory");
    let share = server::ShareConfig::new("share", &dir).expect("share directory");
    let addr = server::blocking::spawn("127.0.0.1:0", share)
        .expect("bind")
        .to_string();
    println!("serving {} as //127.0.0.1/share on {addr}", dir.display());
    let mut failed = false;
    for d in wire::negotiate::DIALECTS {
        match self_check(&addr, d) {
            Ok(n) => println!("self-check dialect {d:04x}: ok ({n} directory entries)"),
            Err(e) => {
                failed = true;
                println!("self-check dialect {d:04x}: FAILED: {e}");
            }
        }
    }
    if serve {
        println!("serving until killed");
        loop {
            std::thread::park();
        }
    }
    std::process::exit(i32::from(failed));
}
