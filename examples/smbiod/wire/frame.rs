//! SMB2 over TCP framing (MS-SMB2 2.1, "Direct TCP transport"): every SMB2
//! message is preceded by a 4-byte header, a zero byte and a 24-bit
//! big-endian length.

#[cfg(test)]
use std::io::{self, Read};

use super::WireError;

/// The largest length the 24-bit field can carry.
pub const MAX_FRAME_LEN: usize = 0x00FF_FFFF;

/// Decodes a 4-byte transport header into the length of the message that
/// follows. Refuses a non-zero first byte (not a session message) and
/// lengths over `max` (and over [`MAX_FRAME_LEN`], which the field cannot
/// exceed) or shorter than an SMB2 header.
pub fn decode_len(hdr: [u8; 4], max: usize) -> Result<usize, WireError> {
    if hdr[0] != 0 {
        return Err(WireError::BadMagic);
    }
    let len = usize::from(hdr[1]) << 16 | usize::from(hdr[2]) << 8 | usize::from(hdr[3]);
    if len > max {
        return Err(WireError::Oversized {
            what: "frame",
            len,
            max,
        });
    }
    if len < super::HEADER_LEN {
        return Err(WireError::Truncated {
            what: "frame",
            need: super::HEADER_LEN,
            have: len,
        });
    }
    Ok(len)
}

/// Prefixes `msg` with its transport header.
pub fn encode(msg: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(msg.len() + 4);
    encode_into(&mut out, msg)?;
    Ok(out)
}

/// Appends `msg` with its transport header to `out`.
pub fn encode_into(out: &mut Vec<u8>, msg: &[u8]) -> Result<(), WireError> {
    if msg.len() > MAX_FRAME_LEN {
        return Err(WireError::Oversized {
            what: "frame",
            len: msg.len(),
            max: MAX_FRAME_LEN,
        });
    }
    let len = msg.len() as u32; // fits: checked against 24 bits above
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// Splits the first complete frame off a stream buffer (used by the tests;
/// the async daemon's reader will use it too): `Ok(None)` when more
/// bytes are needed, else the message and the number of bytes it used.
#[cfg(test)]
pub fn split(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, WireError> {
    let Some(hdr) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = decode_len(*hdr, max)?;
    Ok(buf.get(4..4 + len).map(|msg| (msg, 4 + len)))
}

/// Reads one frame from a blocking reader (the tests' std drivers).
/// `Ok(None)` on a clean end of stream before the first byte; framing
/// errors become `InvalidData`.
#[cfg(test)]
pub fn read_blocking(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut hdr = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut hdr[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let len = decode_len(hdr, max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg)?;
    Ok(Some(msg))
}
