//! The SMB2 wire format: framing, header, and every message the client and
//! the embedded server exchange, in both directions. Pure functions over
//! byte slices; every parser is bounds-checked and returns [`WireError`]
//! instead of panicking. Layouts follow MS-SMB2 2.2, MS-NLMP 2.2 and
//! RFC 4178, cross-checked with Samba 4.17 (golden bytes in `tests.rs`).

pub mod buf;
pub mod create;
pub mod dir;
pub mod error;
pub mod frame;
#[cfg(test)]
pub mod fuzz;
#[cfg(test)]
pub mod golden;
pub mod header;
pub mod info;
pub mod lock;
pub mod message;
pub mod negotiate;
pub mod notify;
pub mod ntlmssp;
pub mod rw;
pub mod session;
pub mod setinfo;
pub mod spnego;
pub mod status;
#[cfg(test)]
pub mod tests;
pub mod tree;

pub use error::WireError;
pub use header::{Command, Header, HEADER_LEN};

/// Checks the StructureSize that starts every body.
fn check_size(msg: &[u8], command: Command, expected: u16) -> buf::WireResult<()> {
    let got = buf::u16_at(msg, HEADER_LEN, "StructureSize")?;
    if got != expected {
        return Err(WireError::BadStructureSize {
            command: command as u16,
            got,
        });
    }
    Ok(())
}

/// FILETIME (100 ns since 1601) of a `SystemTime`; 0 for times before 1601.
pub fn filetime(t: std::time::SystemTime) -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(d.subsec_nanos() / 100),
        Err(e) => {
            let back = e.duration();
            (EPOCH_DIFF_SECS * 10_000_000)
                .saturating_sub(back.as_secs() * 10_000_000 + u64::from(back.subsec_nanos() / 100))
        }
    }
}
