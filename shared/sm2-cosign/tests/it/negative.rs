//! Malformed input and misbehaving peers: every case is a typed error, never a panic, never a
//! signature that verifies.

use crate::common::*;
use proptest::prelude::*;
use sm2::elliptic_curve::ff::PrimeField;
use sm2_cosign::keygen::{ClientKeygen, KeygenRequest, ServerKeygen};
use sm2_cosign::sign::{
    ClientSignSession, ServerSignSession, SignCommit, SignPartial, SignRequest,
};
use sm2_cosign::wire::Hex;
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, Error, OsRng, ScalarName, ServerKeyShare, SessionId};

fn sid() -> SessionId {
    SessionId::random_os().unwrap()
}

fn started_sign(
    c: &ClientKeyShare,
    s: &ServerKeyShare,
    msgs: &[&[u8]],
) -> (
    ServerSignSession,
    SignRequest,
    ClientSignSession,
    SignCommit,
) {
    let (srv, req) = ServerSignSession::new_os(s, DEFAULT_ID, msgs).unwrap();
    let d = client_digests(c, msgs);
    let (cli, commit) = ClientSignSession::commit_os(c, &req, &d).unwrap();
    (srv, req, cli, commit)
}

/// A point not on the curve: flip a bit of y.
fn off_curve(mut p: [u8; 65]) -> [u8; 65] {
    p[64] ^= 1;
    p
}

#[test]
fn keygen_rejects_forged_proof() {
    let s = sid();
    let (_c, mut req) = ClientKeygen::start_os(s).unwrap();
    req.proof.z.0[31] ^= 1;
    assert!(matches!(
        ServerKeygen::respond_os(s, &req),
        Err(Error::InvalidProof { .. })
    ));
    // A proof for another point.
    let (_c2, req2) = ClientKeygen::start_os(s).unwrap();
    let (_c, mut req) = ClientKeygen::start_os(s).unwrap();
    req.proof = req2.proof;
    assert!(matches!(
        ServerKeygen::respond_os(s, &req),
        Err(Error::InvalidProof { .. })
    ));
}

#[test]
fn keygen_rejects_replayed_proof_from_another_session() {
    let old = sid();
    let (_c, req) = ClientKeygen::start_os(old).unwrap();
    let new = sid();
    let replay = KeygenRequest {
        session: new,
        ..req.clone()
    };
    assert!(matches!(
        ServerKeygen::respond_os(new, &replay),
        Err(Error::InvalidProof { .. })
    ));
    // Unchanged session id but another server session.
    assert_eq!(
        ServerKeygen::respond_os(new, &req).unwrap_err(),
        Error::SessionMismatch
    );
}

#[test]
fn keygen_rejects_server_proof_replayed_as_client_proof() {
    // The server's proof for P2 presented back as a proof for P1 (role binding).
    let s = sid();
    let (_c, req) = ClientKeygen::start_os(s).unwrap();
    let (_srv, resp) = ServerKeygen::respond_os(s, &req).unwrap();
    let reflected = KeygenRequest {
        p1: resp.p2,
        proof: resp.proof,
        ..req
    };
    assert!(matches!(
        ServerKeygen::respond_os(s, &reflected),
        Err(Error::InvalidProof { .. })
    ));
}

#[test]
fn keygen_rejects_bad_points() {
    let s = sid();
    let (_c, req) = ClientKeygen::start_os(s).unwrap();
    let bad = KeygenRequest {
        p1: Hex(off_curve(req.p1.0)),
        ..req.clone()
    };
    assert!(matches!(
        ServerKeygen::respond_os(s, &bad),
        Err(Error::InvalidPoint { .. })
    ));
    let inf = KeygenRequest {
        p1: Hex([0u8; 65]),
        ..req.clone()
    };
    assert!(matches!(
        ServerKeygen::respond_os(s, &inf),
        Err(Error::InvalidPoint { .. })
    ));
    let mut compressed_tag = req.p1.0;
    compressed_tag[0] = 0x02;
    let bad = KeygenRequest {
        p1: Hex(compressed_tag),
        ..req.clone()
    };
    assert!(matches!(
        ServerKeygen::respond_os(s, &bad),
        Err(Error::InvalidPoint { .. })
    ));

    // Client side: the server's P2 off the curve or at infinity.
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let (_srv, mut resp) = ServerKeygen::respond_os(s, &req).unwrap();
    resp.p2 = Hex(off_curve(resp.p2.0));
    assert!(matches!(c.finish(&resp), Err(Error::InvalidPoint { .. })));
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let (_srv, mut resp) = ServerKeygen::respond_os(s, &req).unwrap();
    resp.p2 = Hex([0u8; 65]);
    assert!(matches!(c.finish(&resp), Err(Error::InvalidPoint { .. })));
}

#[test]
fn keygen_client_never_accepts_the_servers_public_key() {
    let s = sid();
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let (_srv, mut resp) = ServerKeygen::respond_os(s, &req).unwrap();
    // The server claims a key it controls.
    let evil = sm2::SecretKey::from_bytes(&[7u8; 32].into()).unwrap();
    let enc =
        sm2::elliptic_curve::sec1::ToSec1Point::to_sec1_point(evil.public_key().as_affine(), false);
    resp.public_key = Hex(enc.as_bytes().try_into().unwrap());
    assert_eq!(c.finish(&resp).unwrap_err(), Error::PublicKeyMismatch);
    // An echo of the client's own point as P2 (would make d1 = d2).
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let (_srv, mut resp) = ServerKeygen::respond_os(s, &req).unwrap();
    resp.p2 = req.p1;
    assert!(matches!(c.finish(&resp), Err(Error::InvalidProof { .. })));
}

#[test]
fn keygen_wrong_session_and_version() {
    let s = sid();
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let (srv, mut resp) = ServerKeygen::respond_os(s, &req).unwrap();
    resp.session = sid();
    assert_eq!(c.finish(&resp).unwrap_err(), Error::SessionMismatch);
    let (c, req) = ClientKeygen::start_os(s).unwrap();
    let mut req2 = req.clone();
    req2.version = 9;
    assert_eq!(
        ServerKeygen::respond_os(s, &req2).unwrap_err(),
        Error::UnsupportedVersion(9)
    );
    let (_srv2, resp) = ServerKeygen::respond_os(s, &req).unwrap();
    let (_share, mut confirm) = c.finish(&resp).unwrap();
    // Confirmation for another server session.
    confirm.session = sid();
    assert_eq!(srv.confirm(&confirm).unwrap_err(), Error::SessionMismatch);
}

#[test]
fn sign_rejects_forged_and_replayed_commitments() {
    let (c, s) = keygen();
    // Forged proof.
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a"]);
    commit.items[0].proof.z.0[5] ^= 0x40;
    assert!(matches!(
        srv.respond_os(&s, &commit),
        Err(Error::InvalidProof { .. })
    ));
    // A commitment T swapped for another valid point.
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a"]);
    commit.items[0].proof.t = commit.items[0].q1;
    assert!(matches!(
        srv.respond_os(&s, &commit),
        Err(Error::InvalidProof { .. })
    ));
    // Replayed from an earlier session (session id rewritten to the new one).
    let (_srv_old, _r, _c_old, old_commit) = started_sign(&c, &s, &[b"a"]);
    let (srv, _req, _cli, _commit) = started_sign(&c, &s, &[b"a"]);
    let replay = SignCommit {
        session: srv.session(),
        ..old_commit.clone()
    };
    assert!(matches!(
        srv.respond_os(&s, &replay),
        Err(Error::InvalidProof { .. })
    ));
    // Verbatim replay: wrong session id.
    let (srv, _req, _cli, _commit) = started_sign(&c, &s, &[b"a"]);
    assert_eq!(
        srv.respond_os(&s, &old_commit).unwrap_err(),
        Error::SessionMismatch
    );
    // Items swapped inside a batch (position binding).
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a", b"b"]);
    commit.items.swap(0, 1);
    assert!(matches!(
        srv.respond_os(&s, &commit),
        Err(Error::InvalidProof { .. })
    ));
    // Dropped item.
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a", b"b"]);
    commit.items.pop();
    assert_eq!(
        srv.respond_os(&s, &commit).unwrap_err(),
        Error::CountMismatch {
            expected: 2,
            got: 1
        }
    );
    // Q1 off the curve / at infinity.
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a"]);
    commit.items[0].q1 = Hex(off_curve(commit.items[0].q1.0));
    assert!(matches!(
        srv.respond_os(&s, &commit),
        Err(Error::InvalidPoint { .. })
    ));
    let (srv, _req, _cli, mut commit) = started_sign(&c, &s, &[b"a"]);
    commit.items[0].q1 = Hex([0u8; 65]);
    assert!(matches!(
        srv.respond_os(&s, &commit),
        Err(Error::InvalidPoint { .. })
    ));
}

#[test]
fn client_rejects_zero_and_out_of_range_scalars() {
    let (c, s) = keygen();
    let zero = Hex([0u8; 32]);
    for (which, name) in [(0, ScalarName::R), (1, ScalarName::S2), (2, ScalarName::S3)] {
        let (srv, _req, cli, commit) = started_sign(&c, &s, &[b"z"]);
        let (_srv, mut partial) = srv.respond_os(&s, &commit).unwrap();
        match which {
            0 => partial.items[0].r = zero,
            1 => partial.items[0].s2 = zero,
            _ => partial.items[0].s3 = zero,
        }
        assert_eq!(
            cli.finish(&c, &partial).unwrap_err(),
            Error::ZeroScalar(name)
        );
    }
    // n itself is not a canonical scalar.
    let n =
        hex::decode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123").unwrap();
    let (srv, _req, cli, commit) = started_sign(&c, &s, &[b"z"]);
    let (_srv, mut partial) = srv.respond_os(&s, &commit).unwrap();
    partial.items[0].s2 = Hex(n.try_into().unwrap());
    assert!(matches!(
        cli.finish(&c, &partial),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn client_rejects_tampered_partials_by_verifying() {
    let (c, s) = keygen();
    let (srv, _req, cli, commit) = started_sign(&c, &s, &[b"t"]);
    let (_srv, mut partial) = srv.respond_os(&s, &commit).unwrap();
    partial.items[0].s3.0[31] ^= 1;
    assert_eq!(
        cli.finish(&c, &partial).unwrap_err(),
        Error::VerificationFailed
    );
}

#[test]
fn mixed_messages_between_sessions_are_refused() {
    let (c, s) = keygen();
    let (srv_a, _ra, cli_a, commit_a) = started_sign(&c, &s, &[b"A"]);
    let (srv_b, _rb, cli_b, commit_b) = started_sign(&c, &s, &[b"B"]);
    // B's commitment sent to A (session id rewritten): the proof is bound to B.
    let mixed = SignCommit {
        session: srv_a.session(),
        ..commit_b.clone()
    };
    assert!(matches!(
        srv_a.respond_os(&s, &mixed),
        Err(Error::InvalidProof { .. })
    ));
    // A's partial given to B's client (session id rewritten): does not verify, not released.
    let (srv_a, _ra, _cli_a2, commit_a2) = started_sign(&c, &s, &[b"A"]);
    let (_sa, partial_a) = srv_a.respond_os(&s, &commit_a2).unwrap();
    let mixed = SignPartial {
        session: cli_b.session(),
        ..partial_a.clone()
    };
    assert_eq!(
        cli_b.finish(&c, &mixed).unwrap_err(),
        Error::VerificationFailed
    );
    // Verbatim: session mismatch.
    assert_eq!(
        cli_a.finish(&c, &partial_a).unwrap_err(),
        Error::SessionMismatch
    );
    let _ = (srv_b, commit_a, commit_b);
}

#[test]
fn client_checks_request_key_and_digests() {
    let (c, s) = keygen();
    let (c_other, _s_other) = keygen();
    let (_srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[b"shown"]).unwrap();
    let shown = client_digests(&c, &[b"shown"]);
    let other = client_digests(&c, &[b"hidden"]);
    assert_eq!(
        ClientSignSession::commit_os(&c, &req, &other).unwrap_err(),
        Error::DigestMismatch
    );
    let d_other = client_digests(&c_other, &[b"shown"]);
    assert_eq!(
        ClientSignSession::commit_os(&c_other, &req, &d_other).unwrap_err(),
        Error::PublicKeyMismatch
    );
    assert!(ClientSignSession::commit_os(&c, &req, &shown).is_ok());
    assert_eq!(
        ServerSignSession::new_os(&s, DEFAULT_ID, &[]).unwrap_err(),
        Error::ApiMisuse("empty batch")
    );
}

#[test]
fn server_verifies_before_storing() {
    let (c, s) = keygen();
    let (srv, _req, cli, commit) = started_sign(&c, &s, &[b"store"]);
    let (srv, partial) = srv.respond_os(&s, &commit).unwrap();
    let (_sigs, mut result) = cli.finish(&c, &partial).unwrap();
    result.signatures[0].0[63] ^= 1;
    assert!(matches!(
        srv.finish(&result),
        Err(Error::VerificationFailed | Error::Malformed { .. })
    ));
}

#[test]
fn wrong_d1_is_a_typed_error() {
    let (c, _s) = keygen();
    let wrong =
        <sm2::NonZeroScalar as sm2::elliptic_curve::Generate>::try_generate_from_rng(&mut OsRng)
            .unwrap();
    assert_eq!(
        ClientKeyShare::from_parts(wrong, *c.public()).unwrap_err(),
        Error::ShareMismatch
    );
    let mut bytes = c.to_bytes();
    bytes[10] ^= 1;
    assert!(matches!(
        ClientKeyShare::from_bytes(&bytes),
        Err(Error::ShareMismatch | Error::Malformed { .. })
    ));
    assert!(matches!(
        ClientKeyShare::from_bytes(&bytes[..40]),
        Err(Error::Malformed { .. })
    ));
    let d = c.secret_scalar_for_tests();
    assert_eq!(d.to_repr().len(), 32);
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for bad in [
        r#"{"version":1,"session":"00","public_key":"04","digests":[]}"#,
        r#"{"version":1,"session":"zz112233445566778899aabbccddeeff","public_key":"","digests":[]}"#,
        r#"{}"#,
        r#"[1,2,3]"#,
    ] {
        assert!(serde_json::from_str::<SignRequest>(bad).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Random corruption of a partial: the client never panics and never releases a
    /// signature that fails verification.
    #[test]
    fn corrupted_partials_never_yield_bad_signatures(item in 0usize..3, byte in 0usize..32, bit in 0u8..8) {
        let (c, s) = keygen();
        let (srv, _req, cli, commit) = started_sign(&c, &s, &[b"fuzz"]);
        let (_srv, mut partial) = srv.respond_os(&s, &commit).unwrap();
        let f = match item { 0 => &mut partial.items[0].r, 1 => &mut partial.items[0].s2, _ => &mut partial.items[0].s3 };
        f.0[byte] ^= 1 << bit;
        if let Ok((sigs, _)) = cli.finish(&c, &partial) {
            prop_assert!(verify_rustcrypto(&c, b"fuzz", &sigs[0]));
        }
    }
}
