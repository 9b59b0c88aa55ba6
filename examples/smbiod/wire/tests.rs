//! Golden-byte tests against the Samba capture in `golden.rs`, and
//! encode/parse round trips.

use super::create::{CreateRequest, FILE_DIRECTORY_FILE, FILE_OPEN};
use super::dir::{parse_entries, FILE_DIRECTORY_INFORMATION};
use super::golden::{ANON_311, GUEST_202};
use super::message::{encode_message, split_compound, Request, Response};
use super::negotiate::CTX_PREAUTH;
use super::{frame, ntlmssp, spnego, status, Command, Header, WireError, HEADER_LEN};
use crate::client::auth;

/// Hex to bytes (test helper shared with the other test modules).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn messages(set: &[(&str, &str)], dir: &str) -> Vec<Vec<u8>> {
    set.iter()
        .filter(|(d, _)| *d == dir)
        .map(|(_, h)| unhex(h))
        .collect()
}

fn reencode_request(msg: &[u8]) -> Vec<u8> {
    let (h, req) = Request::parse(msg).unwrap();
    encode_message(&h, |out| req.encode(out)).unwrap()
}

#[test]
fn every_captured_request_parses_and_reencodes_byte_exact() {
    for set in [ANON_311, GUEST_202] {
        for msg in messages(set, "C") {
            assert_eq!(reencode_request(&msg), msg, "command {}", msg[12]);
        }
    }
}

#[test]
fn every_captured_samba_response_parses_and_reencodes_byte_exact() {
    for set in [ANON_311, GUEST_202] {
        for msg in messages(set, "S") {
            let (h, body) = Response::parse(&msg).unwrap();
            let again = encode_message(&h, |out| body.encode(out)).unwrap();
            assert_eq!(again, msg, "command {} status {:#x}", h.command, h.status);
        }
    }
}

/// Builds each request from scratch (not from the capture) and compares.
#[test]
fn client_builders_match_the_python_spec() {
    let c = messages(ANON_311, "C");
    let s = messages(ANON_311, "S");
    // uuid.UUID(bytes=10..1f).bytes_le: the first three fields byte-swapped
    let guid: [u8; 16] = unhex(
        "13121110151417161819 1a1b1c1d1e1f"
            .replace(' ', "")
            .as_str(),
    )
    .try_into()
    .unwrap();
    let salt: [u8; 32] = core::array::from_fn(|i| i as u8);
    let hdr = |msg: &[u8]| Header::decode(msg).unwrap();
    let build = |h: Header, req: &Request| encode_message(&h, |out| req.encode(out)).unwrap();
    let mut h = Header::request(Command::Negotiate);
    h.credit_charge = 1;
    h.credits = 64;
    let neg = auth::negotiate(&[0x0202, 0x0210, 0x0300, 0x0302, 0x0311], guid, salt);
    assert_eq!(build(h, &neg), c[0]);
    assert_eq!(build(hdr(&c[1]), &auth::session_setup_1()), c[1]);
    let Response::SessionSetup(first) = Response::parse(&s[1]).unwrap().1 else {
        panic!()
    };
    assert_eq!(
        build(
            hdr(&c[2]),
            &auth::session_setup_2(&first.security_buffer, "").unwrap()
        ),
        c[2]
    );
    let tc = Request::TreeConnect(super::tree::TreeConnectRequest {
        flags: 0,
        path: "\\\\127.0.0.1\\share".into(),
    });
    assert_eq!(build(hdr(&c[3]), &tc), c[3]);
    let root = Request::Create(CreateRequest {
        impersonation: 2,
        desired_access: 0x0010_0081,
        file_attributes: 0x10,
        share_access: 7,
        disposition: FILE_OPEN,
        options: FILE_DIRECTORY_FILE,
        ..CreateRequest::default()
    });
    assert_eq!(build(hdr(&c[4]), &root), c[4]);
    let g = messages(GUEST_202, "C");
    let gs = messages(GUEST_202, "S");
    let Response::SessionSetup(first) = Response::parse(&gs[1]).unwrap().1 else {
        panic!()
    };
    assert_eq!(
        build(
            hdr(&g[2]),
            &auth::session_setup_2(&first.security_buffer, "nosuch").unwrap()
        ),
        g[2]
    );
}

#[test]
fn samba_replies_decode_to_the_expected_fields() {
    let s = messages(ANON_311, "S");
    let Response::Negotiate(n) = Response::parse(&s[0]).unwrap().1 else {
        panic!()
    };
    assert_eq!(
        (n.dialect, n.security_mode, n.max_read),
        (0x0311, 1, 8 << 20)
    );
    assert_eq!(n.contexts.len(), 1);
    assert_eq!(n.contexts[0].ctype, CTX_PREAUTH);
    let (h, body) = Response::parse(&s[1]).unwrap();
    assert_eq!(h.status, status::MORE_PROCESSING_REQUIRED);
    assert_ne!(h.session_id, 0);
    let Response::SessionSetup(first) = body else {
        panic!()
    };
    let tok = spnego::parse(&first.security_buffer).unwrap();
    assert_eq!(tok.state, Some(spnego::ACCEPT_INCOMPLETE));
    let ch = ntlmssp::Challenge::parse(tok.token.unwrap()).unwrap();
    assert_eq!(ch.flags, 0x228a_8205);
    let Response::SessionSetup(done) = Response::parse(&s[2]).unwrap().1 else {
        panic!()
    };
    assert_eq!(done.session_flags, 0); // Samba 4.17: anonymous is not flagged IS_NULL
    assert_eq!(
        spnego::parse(&done.security_buffer).unwrap().state,
        Some(spnego::ACCEPT_COMPLETED)
    );
    let (h, Response::TreeConnect(t)) = Response::parse(&s[3]).unwrap() else {
        panic!()
    };
    assert_ne!(h.tree_id, 0);
    assert_eq!((t.share_type, t.maximal_access), (1, 0x001f_01ff));
    let Response::QueryDirectory(buf) = Response::parse(&s[5]).unwrap().1 else {
        panic!()
    };
    let names: Vec<String> = parse_entries(FILE_DIRECTORY_INFORMATION, &buf)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"hello.txt".to_string()), "{names:?}");
    let (h, Response::Error(_)) = Response::parse(&s[6]).unwrap() else {
        panic!()
    };
    assert_eq!(h.status, status::NO_MORE_FILES);
    let Response::Write(w) = Response::parse(&s[9]).unwrap().1 else {
        panic!()
    };
    assert_eq!(w.count, 48);
    let Response::Read(r) = Response::parse(&s[10]).unwrap().1 else {
        panic!()
    };
    assert_eq!(r.data, b"hello from the minimal raw client, dialect 0311\n");
    let gs = messages(GUEST_202, "S");
    let Response::SessionSetup(done) = Response::parse(&gs[2]).unwrap().1 else {
        panic!()
    };
    assert_eq!(done.session_flags, 1); // guest
}

#[test]
fn ntlmssp_golden_tokens() {
    assert_eq!(
        ntlmssp::negotiate_message(ntlmssp::CLIENT_FLAGS),
        unhex("4e544c4d5353500001000000058208200000000000000000000000000000000000000000")[..32]
    );
    let anon = ntlmssp::Authenticate::for_user("", 0x228a_8205)
        .encode()
        .unwrap();
    assert_eq!(anon.len(), 64);
    assert_eq!(&anon[60..64], &unhex("058a0820")[..]);
    let back = ntlmssp::Authenticate::parse(&anon).unwrap();
    assert!(back.is_anonymous());
    assert!(!ntlmssp::Authenticate::parse(
        &ntlmssp::Authenticate::for_user("x", 0).encode().unwrap()
    )
    .unwrap()
    .is_anonymous());
    // the server's final SPNEGO token, as Samba sends it
    assert_eq!(
        spnego::neg_token_resp(Some(0), false, None),
        unhex("a1073005a0030a0100")
    );
}

#[test]
fn framing_checks_magic_and_size() {
    assert_eq!(frame::encode(&[7; 70]).unwrap()[..4], [0, 0, 0, 70]);
    assert_eq!(
        frame::decode_len([0, 0x01, 0x00, 0x00], 1 << 20),
        Ok(65_536)
    );
    assert_eq!(
        frame::decode_len([0x85, 0, 0, 0], 1 << 20),
        Err(WireError::BadMagic)
    );
    assert!(matches!(
        frame::decode_len([0, 0xff, 0xff, 0xff], 1 << 20),
        Err(WireError::Oversized { .. })
    ));
    assert!(matches!(
        frame::decode_len([0, 0, 0, 10], 1 << 20),
        Err(WireError::Truncated { .. })
    ));
    let f = frame::encode(&[1; 64]).unwrap();
    assert_eq!(frame::split(&f[..30], 1 << 20), Ok(None));
    assert_eq!(frame::split(&f, 1 << 20).unwrap().unwrap().1, 68);
    assert!(frame::encode(&vec![0; frame::MAX_FRAME_LEN + 1]).is_err());
}

#[test]
fn header_rejects_smb1_and_short_input() {
    assert_eq!(
        Header::decode(b"\xffSMB").unwrap_err(),
        WireError::Truncated {
            what: "SMB2 header",
            need: 64,
            have: 4
        }
    );
    let mut smb1 = vec![0u8; 64];
    smb1[..4].copy_from_slice(b"\xffSMB");
    assert_eq!(Header::decode(&smb1), Err(WireError::BadMagic));
    let async_hdr = Header {
        flags: super::header::FLAG_ASYNC | 1,
        status: status::PENDING,
        async_id: 0x1122_3344_5566_7788,
        ..Header::default()
    };
    let mut out = Vec::new();
    async_hdr.encode(&mut out);
    assert_eq!(out.len(), HEADER_LEN);
    let back = Header::decode(&out).unwrap();
    assert!(back.is_interim());
    assert_eq!(back.async_id, 0x1122_3344_5566_7788);
}

#[test]
fn bad_offsets_are_reported_not_panicked() {
    let c = messages(ANON_311, "C");
    let mut tc = c[3].clone();
    tc[HEADER_LEN + 6] = 0xff; // PathLength past the end
    assert_eq!(
        Request::parse(&tc).unwrap_err(),
        WireError::BadOffset("Path")
    );
    let mut tc = c[3].clone();
    tc[HEADER_LEN + 4] = 0x10; // PathOffset inside the header
    assert_eq!(
        Request::parse(&tc).unwrap_err(),
        WireError::BadOffset("Path")
    );
    let mut wr = c[9].clone();
    wr[HEADER_LEN] = 48; // StructureSize
    assert!(matches!(
        Request::parse(&wr),
        Err(WireError::BadStructureSize { .. })
    ));
    let msg = c[0].clone();
    let mut chain = msg.clone();
    chain[20] = 3; // NextCommand not 8-aligned
    assert_eq!(
        split_compound(&chain),
        Err(WireError::BadOffset("NextCommand"))
    );
    assert!(WireError::BadOffset("Path").to_string().contains("Path"));
}

#[test]
fn fuzzed_frames_never_panic_the_parsers() {
    use super::fuzz::{mutate, Rng};
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for set in [ANON_311, GUEST_202] {
        seeds.extend(set.iter().map(|(_, h)| unhex(h)));
    }
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    let (mut ok_resp, mut ok_req) = (0, 0);
    for i in 0..40_000 {
        let m = mutate(&mut rng, &seeds[i % seeds.len()]);
        ok_resp += usize::from(Response::parse(&m).is_ok());
        ok_req += usize::from(Request::parse(&m).is_ok());
        let _ = split_compound(&m);
        let _ = frame::split(&m, 1 << 20);
        let _ = spnego::parse(&m);
        let _ = ntlmssp::Challenge::parse(&m);
        let _ = ntlmssp::Authenticate::parse(&m);
        for class in [1u8, 2, 3, 0x0c, 0x25, 0x26] {
            let _ = parse_entries(class, &m);
        }
    }
    // both outcomes occur: mutations are neither all rejected nor all accepted
    assert!(ok_resp > 1_000 && ok_resp < 39_000, "{ok_resp}");
    assert!(ok_req > 1_000 && ok_req < 39_000, "{ok_req}");
}
