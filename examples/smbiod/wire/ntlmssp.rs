//! NTLMSSP messages (MS-NLMP 2.2.1) for anonymous and guest sessions: no
//! hashes, no MIC, no session key. The server side accepts any
//! AUTHENTICATE and never signs.

use super::buf::{array, bytes, fit_u16, fit_u32, u16_at, u32_at, Put, WireResult};
use super::WireError;

const SIG: &[u8; 8] = b"NTLMSSP\0";
/// NegotiateFlags: UNICODE.
pub const UNICODE: u32 = 0x0000_0001;
/// NegotiateFlags: REQUEST_TARGET.
pub const REQUEST_TARGET: u32 = 0x0000_0004;
/// NegotiateFlags: NTLM.
pub const NTLM: u32 = 0x0000_0200;
/// NegotiateFlags: ANONYMOUS.
pub const ANONYMOUS: u32 = 0x0000_0800;
/// NegotiateFlags: ALWAYS_SIGN.
pub const ALWAYS_SIGN: u32 = 0x0000_8000;
/// NegotiateFlags: TARGET_TYPE_SERVER.
pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
/// NegotiateFlags: EXTENDED_SESSIONSECURITY.
pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// NegotiateFlags: TARGET_INFO.
pub const TARGET_INFO: u32 = 0x0080_0000;
/// NegotiateFlags: VERSION.
pub const VERSION: u32 = 0x0200_0000;
/// NegotiateFlags: 128-bit.
pub const NEG_128: u32 = 0x2000_0000;
/// The flags the client offers: `0x20088205`.
pub const CLIENT_FLAGS: u32 =
    UNICODE | REQUEST_TARGET | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY | NEG_128;

/// Message type of a token that starts with the NTLMSSP signature.
pub fn message_type(tok: &[u8]) -> WireResult<u32> {
    if !tok.starts_with(SIG) {
        return Err(WireError::BadMagic);
    }
    u32_at(tok, 8, "NTLMSSP MessageType")
}

/// The 32-byte NEGOTIATE_MESSAGE (no domain, no workstation, no version).
pub fn negotiate_message(flags: u32) -> Vec<u8> {
    let mut out = SIG.to_vec();
    out.put_u32(1);
    out.put_u32(flags);
    out.extend_from_slice(&[0u8; 16]);
    out
}

/// Reads the flags of a NEGOTIATE_MESSAGE.
pub fn parse_negotiate(tok: &[u8]) -> WireResult<u32> {
    if message_type(tok)? != 1 {
        return Err(WireError::Unsupported("NTLMSSP message is not NEGOTIATE"));
    }
    u32_at(tok, 12, "NTLMSSP NegotiateFlags")
}

/// A (Len, MaxLen, Offset) field's payload.
fn payload<'a>(tok: &'a [u8], at: usize, what: &'static str) -> WireResult<&'a [u8]> {
    let len = usize::from(u16_at(tok, at, what)?);
    let off = u32_at(tok, at + 4, what)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    bytes(tok, off, len, what)
}

/// Writes `items` as consecutive (Len, MaxLen, Offset) fields, payloads
/// starting at `start`; returns the payload bytes.
fn fields(out: &mut Vec<u8>, start: usize, items: &[&[u8]]) -> WireResult<Vec<u8>> {
    let mut pay = Vec::new();
    for item in items {
        let len = fit_u16(item.len(), "NTLMSSP field")?;
        out.put_u16(len);
        out.put_u16(len);
        out.put_u32(fit_u32(start + pay.len(), "NTLMSSP offset")?);
        pay.extend_from_slice(item);
    }
    Ok(pay)
}

/// CHALLENGE_MESSAGE (type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// NegotiateFlags.
    pub flags: u32,
    /// ServerChallenge.
    pub server_challenge: [u8; 8],
    /// TargetName (UTF-16LE bytes).
    pub target_name: Vec<u8>,
    /// TargetInfo (AV pairs, raw).
    pub target_info: Vec<u8>,
}

impl Challenge {
    /// Encodes with a Version field (6.1 build 0, NTLM revision 15), as
    /// Samba does; payload at 56.
    pub fn encode(&self) -> WireResult<Vec<u8>> {
        let mut out = SIG.to_vec();
        out.put_u32(2);
        let name = fields(&mut out, 56, &[&self.target_name])?;
        out.put_u32(self.flags);
        out.extend_from_slice(&self.server_challenge);
        out.put_u64(0);
        let info = fields(&mut out, 56 + name.len(), &[&self.target_info])?;
        out.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 15]);
        out.extend(name);
        out.extend(info);
        Ok(out)
    }

    /// Parses a CHALLENGE_MESSAGE.
    pub fn parse(tok: &[u8]) -> WireResult<Challenge> {
        if message_type(tok)? != 2 {
            return Err(WireError::Unsupported("NTLMSSP message is not CHALLENGE"));
        }
        Ok(Challenge {
            flags: u32_at(tok, 20, "NTLMSSP NegotiateFlags")?,
            server_challenge: array(tok, 24, "ServerChallenge")?,
            target_name: payload(tok, 12, "TargetName")?.to_vec(),
            target_info: payload(tok, 40, "TargetInfo")?.to_vec(),
        })
    }
}

/// Builds TargetInfo AV pairs: NbComputerName, NbDomainName, Timestamp, EOL.
pub fn target_info(computer: &str, domain: &str, filetime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, val) in [(2u16, domain), (1, computer)] {
        let v = super::buf::to_utf16(val);
        out.put_u16(id);
        out.put_u16(v.len() as u16); // short names only: callers pass NetBIOS names
        out.extend(v);
    }
    out.put_u16(7);
    out.put_u16(8);
    out.put_u64(filetime);
    out.put_u32(0); // MsvAvEOL
    out
}

/// AUTHENTICATE_MESSAGE (type 3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authenticate {
    /// LmChallengeResponse.
    pub lm: Vec<u8>,
    /// NtChallengeResponse.
    pub nt: Vec<u8>,
    /// DomainName (UTF-16LE bytes).
    pub domain: Vec<u8>,
    /// UserName (UTF-16LE bytes).
    pub user: Vec<u8>,
    /// Workstation (UTF-16LE bytes).
    pub workstation: Vec<u8>,
    /// EncryptedRandomSessionKey.
    pub session_key: Vec<u8>,
    /// NegotiateFlags.
    pub flags: u32,
}

impl Authenticate {
    /// The anonymous (empty user) or guest (unknown user, empty responses)
    /// message: flags are ours ∩ the challenge's, plus ANONYMOUS when `user`
    /// is empty.
    pub fn for_user(user: &str, challenge_flags: u32) -> Authenticate {
        let anon = if user.is_empty() { ANONYMOUS } else { 0 };
        Authenticate {
            user: super::buf::to_utf16(user),
            flags: (CLIENT_FLAGS & challenge_flags) | anon,
            ..Authenticate::default()
        }
    }

    /// True for the anonymous form: empty user and empty NT response.
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty() && self.nt.is_empty()
    }

    /// Encodes the 64-byte fixed part (no Version, no MIC) and payload.
    pub fn encode(&self) -> WireResult<Vec<u8>> {
        let mut out = SIG.to_vec();
        out.put_u32(3);
        let items: [&[u8]; 6] = [
            &self.lm,
            &self.nt,
            &self.domain,
            &self.user,
            &self.workstation,
            &self.session_key,
        ];
        let pay = fields(&mut out, 64, &items)?;
        out.put_u32(self.flags);
        out.extend(pay);
        Ok(out)
    }

    /// Parses an AUTHENTICATE_MESSAGE (any fixed-part size; payloads by offset).
    pub fn parse(tok: &[u8]) -> WireResult<Authenticate> {
        if message_type(tok)? != 3 {
            return Err(WireError::Unsupported(
                "NTLMSSP message is not AUTHENTICATE",
            ));
        }
        Ok(Authenticate {
            lm: payload(tok, 12, "LmChallengeResponse")?.to_vec(),
            nt: payload(tok, 20, "NtChallengeResponse")?.to_vec(),
            domain: payload(tok, 28, "DomainName")?.to_vec(),
            user: payload(tok, 36, "UserName")?.to_vec(),
            workstation: payload(tok, 44, "Workstation")?.to_vec(),
            session_key: payload(tok, 52, "EncryptedRandomSessionKey")?.to_vec(),
            flags: u32_at(tok, 60, "NTLMSSP NegotiateFlags")?,
        })
    }
}
