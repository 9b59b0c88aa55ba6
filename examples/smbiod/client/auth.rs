//! The requests of connection setup: NEGOTIATE and the two SESSION_SETUP
//! legs of an anonymous or guest NTLMSSP logon (SPNEGO-wrapped). Nothing is
//! signed: a guest or anonymous session has no usable key, and Samba
//! refuses signed guest traffic (smb2-notes §2). For the same reason the
//! 3.1.1 rule "the final SESSION_SETUP reply must be signed" is waived —
//! the client knows it asked for guest/anonymous.

use super::ClientError;
use crate::wire::message::Request;
use crate::wire::negotiate::{NegotiateContext, NegotiateRequest, DIALECT_311, SIGNING_ENABLED};
use crate::wire::ntlmssp::{self, Authenticate};
use crate::wire::session::SessionSetupRequest;
use crate::wire::spnego;

/// NEGOTIATE offering `dialects`; with 3.1.1 among them, a preauth
/// (SHA-512, `salt`) context is added — the hash itself is never computed.
pub fn negotiate(dialects: &[u16], client_guid: [u8; 16], salt: [u8; 32]) -> Request {
    let contexts = if dialects.contains(&DIALECT_311) {
        vec![NegotiateContext::preauth_sha512(salt)]
    } else {
        Vec::new()
    };
    Request::Negotiate(NegotiateRequest {
        dialects: dialects.to_vec(),
        security_mode: SIGNING_ENABLED,
        capabilities: 0,
        client_guid,
        contexts,
    })
}

fn session_setup(blob: Vec<u8>) -> Request {
    Request::SessionSetup(SessionSetupRequest {
        security_mode: SIGNING_ENABLED as u8,
        security_buffer: blob,
        ..SessionSetupRequest::default()
    })
}

/// First leg: SPNEGO NegTokenInit carrying the NTLMSSP NEGOTIATE.
pub fn session_setup_1() -> Request {
    session_setup(spnego::neg_token_init(Some(&ntlmssp::negotiate_message(
        ntlmssp::CLIENT_FLAGS,
    ))))
}

/// Second leg, from the server's first-leg security buffer: SPNEGO
/// NegTokenResp carrying an AUTHENTICATE for `user` ("" = anonymous; a name
/// the server does not know = guest on Samba) with empty responses.
pub fn session_setup_2(server_blob: &[u8], user: &str) -> Result<Request, ClientError> {
    let tok = spnego::parse(server_blob)?;
    if tok.state == Some(spnego::REJECT) {
        return Err(ClientError::Protocol(
            "server rejected the SPNEGO negotiation",
        ));
    }
    let challenge = tok.token.ok_or(ClientError::Protocol(
        "no NTLMSSP CHALLENGE in SESSION_SETUP reply",
    ))?;
    let challenge = ntlmssp::Challenge::parse(challenge)?;
    let auth = Authenticate::for_user(user, challenge.flags).encode()?;
    Ok(session_setup(spnego::neg_token_resp(
        None,
        false,
        Some(&auth),
    )))
}
