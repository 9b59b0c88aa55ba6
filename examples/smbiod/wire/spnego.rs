//! The few SPNEGO (RFC 4178) tokens an anonymous/guest NTLMSSP exchange
//! needs, built from DER templates, and a small bounds-checked DER walker to
//! take the mechanism token back out.

use super::buf::WireResult;
use super::WireError;

/// OID 1.3.6.1.5.5.2 (SPNEGO), DER contents.
const SPNEGO_OID: [u8; 6] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// OID 1.3.6.1.4.1.311.2.2.10 (NTLMSSP), DER contents.
const NTLM_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// negState values.
pub const ACCEPT_COMPLETED: u8 = 0;
/// negState: more legs follow.
pub const ACCEPT_INCOMPLETE: u8 = 1;
/// negState: refused.
pub const REJECT: u8 = 2;
const NTLMSSP_SIG: &[u8; 8] = b"NTLMSSP\0";

/// One DER TLV: tag byte + definite length (short form or 1–3 length bytes).
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut out = vec![tag];
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x1_0000 {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

fn mech_types() -> Vec<u8> {
    der(0xa0, &der(0x30, &der(0x06, &NTLM_OID)))
}

/// GSS InitialContextToken carrying a NegTokenInit that offers NTLMSSP,
/// with `mech_token` (the client's first leg) or without (the server's
/// hint in the NEGOTIATE response).
pub fn neg_token_init(mech_token: Option<&[u8]>) -> Vec<u8> {
    let mut seq = mech_types();
    if let Some(tok) = mech_token {
        seq.extend(der(0xa2, &der(0x04, tok)));
    }
    let mut inner = der(0x06, &SPNEGO_OID);
    inner.extend(der(0xa0, &der(0x30, &seq)));
    der(0x60, &inner)
}

/// NegTokenResp with an optional negState, optional supportedMech (NTLMSSP)
/// and optional responseToken.
pub fn neg_token_resp(state: Option<u8>, supported_mech: bool, token: Option<&[u8]>) -> Vec<u8> {
    let mut seq = Vec::new();
    if let Some(s) = state {
        seq.extend(der(0xa0, &der(0x0a, &[s])));
    }
    if supported_mech {
        seq.extend(der(0xa1, &der(0x06, &NTLM_OID)));
    }
    if let Some(tok) = token {
        seq.extend(der(0xa2, &der(0x04, tok)));
    }
    der(0xa1, &der(0x30, &seq))
}

/// Splits one TLV off `buf`: (tag, contents, rest).
fn tlv(buf: &[u8]) -> WireResult<(u8, &[u8], &[u8])> {
    let bad = WireError::BadOffset("SPNEGO DER length");
    let (&tag, rest) = buf.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return Err(WireError::Unsupported("DER length form"));
        }
        let raw = rest.get(..n).ok_or(bad.clone())?;
        let len = raw.iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    let body = rest.get(..len).ok_or(bad)?;
    Ok((tag, body, &rest[len..]))
}

/// The contents of the element tagged `tag` inside a SEQUENCE's contents.
fn field(mut seq: &[u8], tag: u8) -> WireResult<Option<&[u8]>> {
    while !seq.is_empty() {
        let (t, body, rest) = tlv(seq)?;
        if t == tag {
            return Ok(Some(body));
        }
        seq = rest;
    }
    Ok(None)
}

/// What a SPNEGO token carries that the NTLMSSP exchange needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spnego<'a> {
    /// negState, when present (NegTokenResp only).
    pub state: Option<u8>,
    /// The NTLMSSP (mech/response) token, when present.
    pub token: Option<&'a [u8]>,
}

/// Parses a NegTokenInit (tag 0x60), a NegTokenResp (0xa1) or a raw
/// NTLMSSP token (which Samba also accepts without SPNEGO).
pub fn parse(blob: &[u8]) -> WireResult<Spnego<'_>> {
    if blob.starts_with(NTLMSSP_SIG) {
        return Ok(Spnego {
            state: None,
            token: Some(blob),
        });
    }
    let (tag, body, _) = tlv(blob)?;
    let (token_tag, seq) = match tag {
        0x60 => {
            let (oid_tag, oid, rest) = tlv(body)?;
            if oid_tag != 0x06 || oid != SPNEGO_OID {
                return Err(WireError::Unsupported("GSS mechanism other than SPNEGO"));
            }
            let (t, init, _) = tlv(rest)?;
            if t != 0xa0 {
                return Err(WireError::Unsupported(
                    "SPNEGO token other than NegTokenInit",
                ));
            }
            (0xa2, init)
        }
        0xa1 => (0xa2, body),
        _ => return Err(WireError::Unsupported("SPNEGO token type")),
    };
    let (t, seq, _) = tlv(seq)?;
    if t != 0x30 {
        return Err(WireError::Unsupported("SPNEGO body is not a SEQUENCE"));
    }
    let state = match field(seq, 0xa0)? {
        Some(e) if tag == 0xa1 => match tlv(e)? {
            (0x0a, [s], _) => Some(*s),
            _ => return Err(WireError::Unsupported("negState encoding")),
        },
        _ => None,
    };
    let token = match field(seq, token_tag)? {
        Some(octets) => match tlv(octets)? {
            (0x04, tok, _) => Some(tok),
            _ => return Err(WireError::Unsupported("mechToken encoding")),
        },
        None => None,
    };
    Ok(Spnego { state, token })
}
