//! smbiod: an SMB2 client daemon in the style of Linux's `fs/smbfs/smbiod.c`
//! on this workspace's wait-queue runtime, with an embedded SMB2 server to
//! talk to (issue 7).
//!
//! ```text
//! cargo run --release --example smbiod                  # embedded server + workload
//! cargo run --release --example smbiod -- --server 127.0.0.1:4445 --share share
//! cargo run --release --example smbiod -- --help
//! ```
//!
//! Modules: [`wire`] (every SMB2 message, framing), [`client`] (the no-I/O
//! protocol layer, anonymous/guest auth, the async [`client::api::Client`]),
//! [`daemon`] (smbiod itself: request queue, credits, reply matching, all
//! on wait queues), [`server`] (the embedded server and its async driver),
//! [`workload`], [`report`] and [`cli`].

#![forbid(unsafe_code)]

mod cli;
mod client;
mod daemon;
mod report;
mod server;
#[cfg(test)]
mod testchild;
mod wire;
mod workload;

fn main() {
    std::process::exit(cli::main());
}
