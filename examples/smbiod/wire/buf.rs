//! Bounds-checked little-endian reads and appending writes.
//!
//! SMB2 offsets count from the start of the SMB2 header, so the readers take
//! the whole message and an absolute offset.

use super::WireError;

/// Result of a wire parser.
pub type WireResult<T> = Result<T, WireError>;

/// `len` bytes at `off`, or `Truncated`.
pub fn bytes<'a>(
    msg: &'a [u8],
    off: usize,
    len: usize,
    what: &'static str,
) -> WireResult<&'a [u8]> {
    let end = off.checked_add(len).ok_or(WireError::BadOffset(what))?;
    msg.get(off..end).ok_or(WireError::Truncated {
        what,
        need: end,
        have: msg.len(),
    })
}

/// A fixed-size array at `off`.
pub fn array<const N: usize>(msg: &[u8], off: usize, what: &'static str) -> WireResult<[u8; N]> {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes(msg, off, N, what)?);
    Ok(out)
}

/// A `u8` at `off`.
pub fn u8_at(msg: &[u8], off: usize, what: &'static str) -> WireResult<u8> {
    Ok(array::<1>(msg, off, what)?[0])
}

/// A little-endian `u16` at `off`.
pub fn u16_at(msg: &[u8], off: usize, what: &'static str) -> WireResult<u16> {
    array(msg, off, what).map(u16::from_le_bytes)
}

/// A little-endian `u32` at `off`.
pub fn u32_at(msg: &[u8], off: usize, what: &'static str) -> WireResult<u32> {
    array(msg, off, what).map(u32::from_le_bytes)
}

/// A little-endian `u64` at `off`.
pub fn u64_at(msg: &[u8], off: usize, what: &'static str) -> WireResult<u64> {
    array(msg, off, what).map(u64::from_le_bytes)
}

/// The variable buffer named by an (offset, length) pair counted from the
/// header start. A zero length is always an empty buffer (offsets of empty
/// buffers are often 0). A non-empty buffer must start at or after `min_off`
/// (the end of the fixed part) and lie inside `msg`.
pub fn buffer<'a>(
    msg: &'a [u8],
    off: usize,
    len: usize,
    min_off: usize,
    what: &'static str,
) -> WireResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if off < min_off {
        return Err(WireError::BadOffset(what));
    }
    let end = off.checked_add(len).ok_or(WireError::BadOffset(what))?;
    msg.get(off..end).ok_or(WireError::BadOffset(what))
}

/// Decodes UTF-16LE.
pub fn utf16(raw: &[u8], what: &'static str) -> WireResult<String> {
    if raw.len() & 1 != 0 {
        return Err(WireError::BadString(what));
    }
    let units = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| WireError::BadString(what))
}

/// Encodes UTF-16LE.
pub fn to_utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `len` as a `u16` field, or `Oversized`.
pub fn fit_u16(len: usize, what: &'static str) -> WireResult<u16> {
    u16::try_from(len).map_err(|_| WireError::Oversized {
        what,
        len,
        max: u16::MAX.into(),
    })
}

/// `len` as a `u32` field, or `Oversized`.
pub fn fit_u32(len: usize, what: &'static str) -> WireResult<u32> {
    u32::try_from(len).map_err(|_| WireError::Oversized {
        what,
        len,
        max: u32::MAX as usize,
    })
}

/// Appending little-endian writers for `Vec<u8>`.
pub trait Put {
    /// Appends a byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a little-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a little-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a little-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends zero bytes until the length is a multiple of `align`.
    fn pad_to(&mut self, align: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn pad_to(&mut self, align: usize) {
        let len = self.len().next_multiple_of(align);
        self.resize(len, 0);
    }
}
