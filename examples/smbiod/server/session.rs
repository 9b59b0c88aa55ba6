//! NEGOTIATE, SESSION_SETUP (guest/anonymous NTLMSSP, never signing) and
//! TREE_CONNECT for the embedded server.

use std::time::SystemTime;

use super::{Connection, Outcome, Session, MAX_SESSIONS};
use crate::wire::message::Response;
use crate::wire::negotiate::{
    NegotiateContext, NegotiateRequest, NegotiateResponse, CAP_LARGE_MTU, DIALECTS, DIALECT_311,
    SIGNING_ENABLED,
};
use crate::wire::session::{
    SessionSetupRequest, SessionSetupResponse, SESSION_FLAG_IS_GUEST, SESSION_FLAG_IS_NULL,
};
use crate::wire::tree::{TreeConnectRequest, TreeConnectResponse, SHARE_TYPE_DISK};
use crate::wire::{filetime, ntlmssp, spnego, status, Header};

/// The NTLMSSP flags of our CHALLENGE (Samba's, minus nothing): no SIGN,
/// no SEAL, no KEY_EXCH, so a client has no reason to sign.
const CHALLENGE_FLAGS: u32 = ntlmssp::UNICODE
    | ntlmssp::REQUEST_TARGET
    | ntlmssp::NTLM
    | ntlmssp::ALWAYS_SIGN
    | ntlmssp::TARGET_TYPE_SERVER
    | ntlmssp::EXTENDED_SESSIONSECURITY
    | ntlmssp::TARGET_INFO
    | ntlmssp::VERSION
    | ntlmssp::NEG_128;
/// The NetBIOS name we report.
const SERVER_NAME: &str = "SMBIOD";
/// Full access (what a guest gets on this share).
pub const FULL_ACCESS: u32 = 0x001F_01FF;

/// MaxRead/MaxWrite/MaxTransact for a dialect: 64 KiB on 2.0.2 (no
/// multi-credit), 1 MiB otherwise.
pub fn max_io(dialect: u16) -> u32 {
    if dialect == 0x0202 {
        65_536
    } else {
        1 << 20
    }
}

impl Connection {
    pub(super) fn negotiate(&mut self, r: &NegotiateRequest) -> Outcome {
        if self.dialect.is_some() {
            // MS-SMB2 3.3.5.3.1: a second NEGOTIATE on a connection that
            // has negotiated drops it (Samba does the same).
            self.drop_connection("a second NEGOTIATE".into());
            return Err(status::INVALID_PARAMETER);
        }
        let dialect = DIALECTS
            .iter()
            .rev()
            .find(|d| r.dialects.contains(d))
            .copied()
            .ok_or(status::NOT_SUPPORTED)?;
        self.dialect = Some(dialect);
        let contexts = if dialect == DIALECT_311 {
            // The salt is arbitrary; no key is ever derived from the
            // preauth hash because no session here signs or encrypts.
            let mut salt = [0u8; 32];
            salt[..16].copy_from_slice(&self.server_guid);
            vec![NegotiateContext::preauth_sha512(salt)]
        } else {
            Vec::new()
        };
        let now = filetime(SystemTime::now());
        Ok((
            status::SUCCESS,
            Response::Negotiate(NegotiateResponse {
                security_mode: SIGNING_ENABLED,
                dialect,
                server_guid: self.server_guid,
                capabilities: if dialect == 0x0202 { 0 } else { CAP_LARGE_MTU },
                max_transact: max_io(dialect),
                max_read: max_io(dialect),
                max_write: max_io(dialect),
                system_time: now,
                server_start_time: 0,
                security_buffer: spnego::neg_token_init(None),
                contexts,
            }),
        ))
    }

    pub(super) fn session_setup(&mut self, h: &mut Header, r: &SessionSetupRequest) -> Outcome {
        if self.dialect.is_none() {
            return Err(status::INVALID_PARAMETER);
        }
        let tok = spnego::parse(&r.security_buffer).map_err(|_| status::INVALID_PARAMETER)?;
        let token = tok.token.ok_or(status::INVALID_PARAMETER)?;
        let raw = r.security_buffer.starts_with(b"NTLMSSP\0");
        match ntlmssp::message_type(token).map_err(|_| status::INVALID_PARAMETER)? {
            1 => {
                ntlmssp::parse_negotiate(token).map_err(|_| status::INVALID_PARAMETER)?;
                // SessionId 0 starts a new session beside any others; a
                // known one re-authenticates it, keeping its trees and
                // handles (MS-SMB2 3.3.5.5.3).
                if h.session_id == 0 {
                    if self.sessions.len() >= MAX_SESSIONS {
                        return Err(status::INSUFFICIENT_RESOURCES);
                    }
                    let id = self.next_session;
                    self.next_session += 1;
                    self.sessions.insert(
                        id,
                        Session {
                            logged_on: false,
                            challenged: Some(raw),
                        },
                    );
                    h.session_id = id;
                } else {
                    let s = self
                        .sessions
                        .get_mut(&h.session_id)
                        .ok_or(status::USER_SESSION_DELETED)?;
                    s.challenged = Some(raw);
                }
                let challenge = ntlmssp::Challenge {
                    flags: CHALLENGE_FLAGS,
                    server_challenge: *b"smbiod!!",
                    target_name: crate::wire::buf::to_utf16(SERVER_NAME),
                    target_info: ntlmssp::target_info(
                        SERVER_NAME,
                        SERVER_NAME,
                        filetime(SystemTime::now()),
                    ),
                }
                .encode()
                .map_err(|_| status::UNSUCCESSFUL)?;
                let blob = if raw {
                    challenge
                } else {
                    spnego::neg_token_resp(Some(spnego::ACCEPT_INCOMPLETE), true, Some(&challenge))
                };
                let body = SessionSetupResponse {
                    session_flags: 0,
                    security_buffer: blob,
                };
                Ok((
                    status::MORE_PROCESSING_REQUIRED,
                    Response::SessionSetup(body),
                ))
            }
            3 => {
                let s = self
                    .sessions
                    .get_mut(&h.session_id)
                    .ok_or(status::USER_SESSION_DELETED)?;
                let Some(raw) = s.challenged else {
                    return Err(status::USER_SESSION_DELETED);
                };
                let auth =
                    ntlmssp::Authenticate::parse(token).map_err(|_| status::LOGON_FAILURE)?;
                s.challenged = None;
                s.logged_on = true;
                let flags = if auth.is_anonymous() {
                    SESSION_FLAG_IS_NULL
                } else {
                    SESSION_FLAG_IS_GUEST
                };
                let blob = if raw {
                    Vec::new()
                } else {
                    spnego::neg_token_resp(Some(spnego::ACCEPT_COMPLETED), false, None)
                };
                let body = SessionSetupResponse {
                    session_flags: flags,
                    security_buffer: blob,
                };
                Ok((status::SUCCESS, Response::SessionSetup(body)))
            }
            _ => Err(status::INVALID_PARAMETER),
        }
    }

    pub(super) fn tree_connect(&mut self, h: &mut Header, r: &TreeConnectRequest) -> Outcome {
        let name = r.path.rsplit('\\').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case(&self.share.name) {
            return Err(status::BAD_NETWORK_NAME);
        }
        let id = self.next_tree;
        self.next_tree += 1;
        self.trees.insert(id, h.session_id);
        h.tree_id = id;
        Ok((
            status::SUCCESS,
            Response::TreeConnect(TreeConnectResponse {
                share_type: SHARE_TYPE_DISK,
                share_flags: 0,
                capabilities: 0,
                maximal_access: FULL_ACCESS,
            }),
        ))
    }
}
