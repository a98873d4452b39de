//! The two classic key-extraction attacks on two-party SM2, each shown to work against a
//! naive client and to be refused (or defeated) by ours.

use crate::common::*;
use sm2::elliptic_curve::{
    Group, ff::PrimeField, ops::Reduce, point::AffineCoordinates, sec1::ToSec1Point,
};
use sm2::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sm2_cosign::sign::{
    ClientSignSession, PartialItem, ServerSignSession, SignCommit, SignPartial,
};
use sm2_cosign::wire::Hex;
use sm2_cosign::{DEFAULT_ID, Error, OsRng, ScalarName, plain};

fn q1_of(commit: &SignCommit, i: usize) -> ProjectivePoint {
    let bytes = commit.items[i].q1.0;
    let ep = sm2::Sec1Point::from_bytes(&bytes).unwrap();
    let p: Option<AffinePoint> =
        sm2::elliptic_curve::sec1::FromSec1Point::from_sec1_point(&ep).into();
    ProjectivePoint::from(p.unwrap())
}

fn random_scalar() -> Scalar {
    *<sm2::NonZeroScalar as sm2::elliptic_curve::Generate>::try_generate_from_rng(&mut OsRng)
        .unwrap()
}

/// A naive client's last step: s = d1·k1·s2 + d1·s3 − r, with only a final verification.
fn naive_finish(d1: Scalar, k1: Scalar, r: Scalar, s2: Scalar, s3: Scalar) -> Scalar {
    d1 * k1 * s2 + d1 * s3 - r
}

/// Malicious server with k3 = 0: (x1, y1) = k2·G, r = e + x1, s2 = d2·0 = 0, s3 = d2·(r + k2).
/// The naive client's s = d1·s3 − r is even a VALID signature (k = k2), so a verification
/// before release does not help — and it gives the server d1 = (s + r)·s3⁻¹, i.e. the whole key.
#[test]
fn k3_zero_attack_leaks_key_from_naive_client_and_is_refused_by_ours() {
    let (c, s) = keygen();
    let d2 = *s.secret_scalar_for_tests();
    let msg = b"order: 10 mg morphine";
    let e_bytes = *plain::message_digest(DEFAULT_ID, c.public().public_point(), msg)
        .unwrap()
        .as_bytes();
    let e = <Scalar as Reduce<FieldBytes>>::reduce(&e_bytes.into());

    let malicious_partial = |_q1: ProjectivePoint| -> (Scalar, Scalar, Scalar) {
        let k2 = random_scalar();
        let big_r = ProjectivePoint::mul_by_generator(&k2).to_affine();
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&big_r.x());
        (r, Scalar::ZERO, d2 * (r + k2))
    };

    // --- naive client ---
    let d1 = *c.secret_scalar_for_tests();
    let k1 = random_scalar();
    let q1 = ProjectivePoint::mul_by_generator(&k1);
    let (r, s2, s3) = malicious_partial(q1);
    let s_naive = naive_finish(d1, k1, r, s2, s3);
    let sig = sm2::dsa::Signature::from_scalars(r.to_repr(), s_naive.to_repr()).unwrap();
    assert!(
        verify_rustcrypto(&c, msg, &sig),
        "the leaked signature even verifies"
    );
    // The server extracts d1 and with its d2 the full SM2 private key d = (d1·d2)⁻¹ − 1.
    let d1_recovered = (s_naive + r) * s3.invert().unwrap();
    assert_eq!(d1_recovered, d1, "naive client leaked d1");
    let d = (d1_recovered * d2).invert().unwrap() - Scalar::ONE;
    let forged_key = sm2::SecretKey::from_bytes(&d.to_repr()).unwrap();
    assert_eq!(forged_key.public_key(), c.public().public_key());
    let forged = plain::sign_os(&forged_key, DEFAULT_ID, b"anything at all").unwrap();
    assert!(verify_rustcrypto(&c, b"anything at all", &forged));

    // --- our client ---
    let (srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[msg]).unwrap();
    let digests = client_digests(&c, &[msg]);
    let (cli, commit) = ClientSignSession::commit_os(&c, &req, &digests).unwrap();
    let (r, s2, s3) = malicious_partial(q1_of(&commit, 0));
    let partial = SignPartial {
        version: sm2_cosign::PROTOCOL_VERSION,
        session: srv.session(),
        items: vec![PartialItem {
            r: Hex(r.to_repr().into()),
            s2: Hex(s2.to_repr().into()),
            s3: Hex(s3.to_repr().into()),
        }],
    };
    assert_eq!(
        cli.finish(&c, &partial).unwrap_err(),
        Error::ZeroScalar(ScalarName::S2)
    );
}

/// A client that derives k1 deterministically from (d1, e) — as RFC 6979 would for a single
/// party — gives a malicious server two equations in the two unknowns a = d1·k1 and d1 when it
/// asks for the same digest twice with different (k2, k3):
///   s + r = a·s2 + d1·s3,   s' + r' = a·s2' + d1·s3'.
/// Both signatures are valid, so verification does not help. Our client draws k1 from the
/// CSPRNG for every session, so the same algebra yields garbage.
#[test]
fn deterministic_nonce_replay_leaks_key_from_naive_client_not_from_ours() {
    let (c, s) = keygen();
    let d1 = *c.secret_scalar_for_tests();
    let d2 = *s.secret_scalar_for_tests();
    let msg = b"same record";
    let e_bytes = *plain::message_digest(DEFAULT_ID, c.public().public_point(), msg)
        .unwrap()
        .as_bytes();
    let e = <Scalar as Reduce<FieldBytes>>::reduce(&e_bytes.into());

    // An honest-looking server computation (fresh k2, k3 each time) that records outputs.
    let server_half = |q1: ProjectivePoint| -> (Scalar, Scalar, Scalar) {
        let k2 = random_scalar();
        let k3 = random_scalar();
        let big_r = (q1 * k3 + ProjectivePoint::mul_by_generator(&k2)).to_affine();
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&big_r.x());
        (r, d2 * k3, d2 * (r + k2))
    };
    let solve =
        |o1: (Scalar, Scalar, Scalar, Scalar), o2: (Scalar, Scalar, Scalar, Scalar)| -> Scalar {
            // (r, s2, s3, s): solve a·s2 + b·s3 = s + r for b (Cramer's rule).
            let (r1, a1, b1, s1) = o1;
            let (r2, a2, b2, s2) = o2;
            let det = a1 * b2 - a2 * b1;
            (a1 * (s2 + r2) - a2 * (s1 + r1)) * det.invert().unwrap()
        };

    // --- naive deterministic client: k1 = SM3(d1 ‖ e) mod n ---
    let k1 = {
        use sm3::Digest as _;
        let mut h = sm3::Sm3::new();
        h.update(d1.to_repr());
        h.update(e_bytes);
        let out: [u8; 32] = h.finalize().into();
        <Scalar as Reduce<FieldBytes>>::reduce(&out.into())
    };
    let q1 = ProjectivePoint::mul_by_generator(&k1);
    let mut outs = Vec::new();
    for _ in 0..2 {
        let (r, s2, s3) = server_half(q1);
        let sig_s = naive_finish(d1, k1, r, s2, s3);
        let sig = sm2::dsa::Signature::from_scalars(r.to_repr(), sig_s.to_repr()).unwrap();
        assert!(verify_rustcrypto(&c, msg, &sig));
        outs.push((r, s2, s3, sig_s));
    }
    assert_eq!(
        solve(outs[0], outs[1]),
        d1,
        "naive deterministic client leaked d1"
    );

    // --- our client: same digest requested twice ---
    let mut outs = Vec::new();
    let mut q1s = Vec::new();
    for _ in 0..2 {
        let (srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[msg]).unwrap();
        let digests = client_digests(&c, &[msg]);
        let (cli, commit) = ClientSignSession::commit_os(&c, &req, &digests).unwrap();
        let q1 = q1_of(&commit, 0);
        q1s.push(q1.to_affine().to_sec1_point(false));
        let (r, s2, s3) = server_half(q1);
        let partial = SignPartial {
            version: sm2_cosign::PROTOCOL_VERSION,
            session: srv.session(),
            items: vec![PartialItem {
                r: Hex(r.to_repr().into()),
                s2: Hex(s2.to_repr().into()),
                s3: Hex(s3.to_repr().into()),
            }],
        };
        let (sigs, _) = cli.finish(&c, &partial).unwrap();
        outs.push((r, s2, s3, *sigs[0].s()));
    }
    assert_ne!(q1s[0], q1s[1], "fresh k1 per session");
    assert_ne!(solve(outs[0], outs[1]), d1, "our client leaks nothing");
}

/// A deterministic-nonce RNG would make our client as weak as the naive one: the nonce source
/// is a parameter so that this can be tested, and the product wrappers use the OS CSPRNG.
#[test]
fn os_rng_nonces_never_repeat() {
    let (c, s) = keygen();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let (_srv, req) = ServerSignSession::new_os(&s, DEFAULT_ID, &[b"m"]).unwrap();
        let digests = client_digests(&c, &[b"m"]);
        let (_cli, commit) = ClientSignSession::commit_os(&c, &req, &digests).unwrap();
        assert!(seen.insert(commit.items[0].q1.0.to_vec()));
    }
}
