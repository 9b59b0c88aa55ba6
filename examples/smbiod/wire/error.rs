//! The one error type of the wire layer.

use std::fmt;

/// Why a frame or message could not be decoded (or encoded).
///
/// Every parser in [`crate::wire`] returns this instead of panicking, whatever
/// bytes it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The input ended before a field that must be there.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed (from the start of the message).
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The NetBIOS session header or the SMB2 ProtocolId is not what it must be.
    BadMagic,
    /// A frame or field is larger than allowed.
    Oversized {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An offset/length pair points outside the message or into the fixed part.
    BadOffset(&'static str),
    /// A body's StructureSize is not the one its command requires.
    BadStructureSize {
        /// The command code.
        command: u16,
        /// The StructureSize found.
        got: u16,
    },
    /// A string is not valid UTF-16LE (or has an odd byte length).
    BadString(&'static str),
    /// Well-formed but outside what this implementation speaks.
    Unsupported(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { what, need, have } => {
                write!(f, "truncated {what}: need {need} bytes, have {have}")
            }
            WireError::BadMagic => f.write_str("bad magic (not an SMB2 message)"),
            WireError::Oversized { what, len, max } => {
                write!(f, "oversized {what}: {len} bytes, limit {max}")
            }
            WireError::BadOffset(what) => write!(f, "bad offset/length for {what}"),
            WireError::BadStructureSize { command, got } => {
                write!(f, "bad StructureSize {got} for command {command:#x}")
            }
            WireError::BadString(what) => write!(f, "bad UTF-16LE string in {what}"),
            WireError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for WireError {}
