//! Honest runs: every co-signature is a standard SM2 signature.

use crate::common::*;
use proptest::prelude::*;
use sm2_cosign::DEFAULT_ID;
use sm2_cosign::plain;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random keys (a fresh key generation per case) and random messages: the co-signature
    /// verifies with RustCrypto's verifier, with libsm (independent implementation) and with
    /// our own verifier; flipping a message bit breaks all three.
    #[test]
    fn cosignatures_verify_everywhere(msg in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<usize>()) {
        let (c, s) = keygen();
        let sig = cosign(&c, &s, &[&msg]).pop().unwrap();
        prop_assert!(verify_rustcrypto(&c, &msg, &sig));
        prop_assert!(verify_libsm(&c, &msg, &sig));
        prop_assert!(plain::verify(&c.public().public_key(), DEFAULT_ID, &msg, &sig).is_ok());
        if !msg.is_empty() {
            let mut bad = msg.clone();
            let i = flip % bad.len();
            bad[i] ^= 1;
            prop_assert!(!verify_rustcrypto(&c, &bad, &sig));
            prop_assert!(!verify_libsm(&c, &bad, &sig));
        }
    }

    /// Plain single-party signing with a custom ID verifies with RustCrypto and libsm.
    #[test]
    fn plain_sign_custom_id(msg in proptest::collection::vec(any::<u8>(), 0..200), id in "[a-z0-9@.]{1,40}") {
        use sm2::dsa::{VerifyingKey, signature::Verifier};
        let sk = <sm2::SecretKey as sm2::elliptic_curve::Generate>::try_generate_from_rng(&mut sm2_cosign::OsRng).unwrap();
        let sig = plain::sign_os(&sk, id.as_bytes(), &msg).unwrap();
        let vk = VerifyingKey::new(&id, sk.public_key()).unwrap();
        prop_assert!(vk.verify(&msg, &sig).is_ok());
        // Our Z agrees with libsm's (e = H(Z ‖ M) with the same ID).
        let ctx = libsm::sm2::signature::SigCtx::new();
        let pk_bytes = sm2::elliptic_curve::sec1::ToSec1Point::to_sec1_point(sk.public_key().as_affine(), false);
        let lpk = ctx.load_pubkey(pk_bytes.as_bytes()).unwrap();
        let e = plain::message_digest(id.as_bytes(), sk.public_key().as_affine(), &msg).unwrap();
        prop_assert_eq!(ctx.hash(&id, &lpk, &msg).unwrap(), *e.as_bytes());
        prop_assert!(plain::verify(&sk.public_key(), id.as_bytes(), &msg, &sig).is_ok());
        prop_assert!(plain::verify(&sk.public_key(), b"other-id", &msg, &sig).is_err());
    }
}

#[test]
fn batch_of_100_in_one_round() {
    let (c, s) = keygen();
    let msgs: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("护理记录 #{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let sigs = cosign(&c, &s, &refs);
    assert_eq!(sigs.len(), 100);
    for (m, sig) in msgs.iter().zip(&sigs) {
        assert!(verify_rustcrypto(&c, m, sig));
    }
    // Nonces are fresh: all r differ.
    let mut rs: Vec<_> = sigs.iter().map(|s| s.r().to_bytes()).collect();
    rs.sort();
    rs.dedup();
    assert_eq!(rs.len(), 100);
}

#[test]
fn same_message_twice_gives_different_signatures() {
    let (c, s) = keygen();
    let a = cosign(&c, &s, &[b"x"]).pop().unwrap();
    let b = cosign(&c, &s, &[b"x"]).pop().unwrap();
    assert_ne!(a, b);
}

#[test]
fn shares_round_trip_through_bytes_and_messages_through_json() {
    let (c, s) = keygen();
    let c2 = sm2_cosign::ClientKeyShare::from_bytes(&c.to_bytes()).unwrap();
    let s2 = sm2_cosign::ServerKeyShare::from_bytes(&s.to_bytes()).unwrap();
    assert_eq!(c2.public(), c.public());
    // Debug never prints the secret.
    let dbg = format!("{c:?} {s:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&hex::encode(c.secret_scalar_for_tests().to_bytes())));

    use sm2_cosign::sign::*;
    let (srv, req) = ServerSignSession::new_os(&s2, DEFAULT_ID, &[b"json"]).unwrap();
    let req: SignRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
    let d = client_digests(&c2, &[b"json"]);
    let (cli, commit) = ClientSignSession::commit_os(&c2, &req, &d).unwrap();
    let commit: SignCommit =
        serde_json::from_str(&serde_json::to_string(&commit).unwrap()).unwrap();
    let (srv, partial) = srv.respond_os(&s2, &commit).unwrap();
    let partial: SignPartial =
        serde_json::from_str(&serde_json::to_string(&partial).unwrap()).unwrap();
    let (_, result) = cli.finish(&c2, &partial).unwrap();
    let result: SignResult =
        serde_json::from_str(&serde_json::to_string(&result).unwrap()).unwrap();
    let sigs = srv.finish(&result).unwrap();
    assert!(verify_rustcrypto(&c, b"json", &sigs[0]));
}

/// A server may store its first message and answer the next ones from another process: the
/// resumed sessions behave exactly like the originals, and the parked key-generation share
/// confirms like the live one.
#[test]
fn server_state_resumes_from_stored_messages() {
    use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
    use sm2_cosign::sign::{
        ClientSignSession, ServerAwaitingResult, ServerSignSession, SignRequest,
    };
    use sm2_cosign::{DEFAULT_ID, OsRng, ServerKeyShare, SessionId};

    let session = SessionId::random_os().unwrap();
    let (client, req) = ClientKeygen::start(&mut OsRng, session).unwrap();
    let (server, resp) = ServerKeygen::respond(&mut OsRng, session, &req).unwrap();
    let (parked_session, parked) = server.park();
    let stored = parked.to_bytes();
    let (c, confirm) = client.finish(&resp).unwrap();
    let resumed = ServerKeygen::resume(
        parked_session,
        &ServerKeyShare::from_bytes(&stored).unwrap(),
    );
    let s = resumed.confirm(&confirm).unwrap();
    assert_eq!(c.public(), s.public());

    let msgs: [&[u8]; 3] = [b"a", b"bb", b"ccc"];
    let (_, req) = ServerSignSession::new(&mut OsRng, &s, DEFAULT_ID, &msgs).unwrap();
    let req: SignRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
    let digests = crate::common::client_digests(&c, &msgs);
    let (cli, commit) = ClientSignSession::commit(&mut OsRng, &c, &req, &digests).unwrap();
    let (_, partial) = ServerSignSession::resume(&req)
        .unwrap()
        .respond(&mut OsRng, &s, &commit)
        .unwrap();
    let (sigs, result) = cli.finish(&c, &partial).unwrap();
    let stored = ServerAwaitingResult::resume(&req)
        .unwrap()
        .finish(&result)
        .unwrap();
    assert_eq!(sigs, stored);
    for (m, sig) in msgs.iter().zip(&sigs) {
        assert!(crate::common::verify_rustcrypto(&c, m, sig));
    }
    // A result for other digests (a stored request of another round) is refused.
    let others: [&[u8]; 3] = [b"x", b"yy", b"zzz"];
    let (_, other) = ServerSignSession::new(&mut OsRng, &s, DEFAULT_ID, &others).unwrap();
    let mut wrong = result.clone();
    wrong.session = other.session;
    assert!(
        ServerAwaitingResult::resume(&other)
            .unwrap()
            .finish(&wrong)
            .is_err()
    );
    // A stored request with a bad key point does not resume.
    let mut broken = req.clone();
    broken.public_key.0[1] ^= 1;
    assert!(ServerSignSession::resume(&broken).is_err());
}
