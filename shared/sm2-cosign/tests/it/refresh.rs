//! Share refresh: a two-phase commit that keeps P, rolls back cleanly, and makes old shares
//! useless with new ones.

use crate::common::*;
use sm2::elliptic_curve::{Group, ff::PrimeField};
use sm2::{ProjectivePoint, Scalar};
use sm2_cosign::refresh::*;
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, Error, OsRng, ServerKeyShare};

fn full_refresh(c: &ClientKeyShare, s: &ServerKeyShare) -> (ClientKeyShare, ServerKeyShare) {
    let (srv, propose) = ServerRefresh::propose(&mut OsRng, s).unwrap();
    let (cli, accept) = ClientRefreshPending::accept(&mut OsRng, c, &propose).unwrap();
    let (srv, prepared) = srv.prepare(s, &accept).unwrap();
    let (cli, done) = cli.on_prepared(&prepared).unwrap();
    let (s_new, fin) = srv.commit(&done).unwrap();
    let c_new = cli.finalize(&fin).unwrap();
    (c_new, s_new)
}

#[test]
fn refresh_keeps_the_public_key_and_changes_the_shares() {
    let (c, s) = keygen();
    let (c2, s2) = full_refresh(&c, &s);
    assert_eq!(c2.public().public_key(), c.public().public_key());
    assert_eq!(c2.public(), s2.public());
    assert_eq!(c2.public().epoch(), 1);
    assert_ne!(
        c2.secret_scalar_for_tests().to_repr(),
        c.secret_scalar_for_tests().to_repr()
    );
    assert_ne!(
        s2.secret_scalar_for_tests().to_repr(),
        s.secret_scalar_for_tests().to_repr()
    );
    let sig = cosign(&c2, &s2, &[b"after refresh"]).pop().unwrap();
    assert!(verify_rustcrypto(&c, b"after refresh", &sig));
    // Twice more.
    let (c3, s3) = full_refresh(&c2, &s2);
    assert_eq!(c3.public().epoch(), 2);
    cosign(&c3, &s3, &[b"again"]);
}

#[test]
fn old_shares_do_not_combine_with_new_ones() {
    let (c, s) = keygen();
    let (c2, s2) = full_refresh(&c, &s);
    let p = ProjectivePoint::from(*c.public().public_point());
    let key_from = |d1: Scalar, d2: Scalar| {
        ProjectivePoint::mul_by_generator(&((d1 * d2).invert().unwrap() - Scalar::ONE))
    };
    let (d1, d2) = (*c.secret_scalar_for_tests(), *s.secret_scalar_for_tests());
    let (d1n, d2n) = (*c2.secret_scalar_for_tests(), *s2.secret_scalar_for_tests());
    assert_eq!(key_from(d1, d2), p);
    assert_eq!(key_from(d1n, d2n), p);
    assert_ne!(key_from(d1, d2n), p);
    assert_ne!(key_from(d1n, d2), p);

    // Protocol level: the server refuses to mix epochs, and even with the epoch forged the
    // old client share cannot complete a signature with the new server share.
    let (srv, req) = ServerSignSession::new_os(&s2, DEFAULT_ID, &[b"mix"]).unwrap();
    let d = client_digests(&c, &[b"mix"]);
    assert_eq!(
        ClientSignSession::commit_os(&c, &req, &d).unwrap_err(),
        Error::EpochMismatch { ours: 0, theirs: 1 }
    );
    let mut forged = req.clone();
    forged.epoch = 0;
    let (cli, commit) = ClientSignSession::commit_os(&c, &forged, &d).unwrap();
    let (_srv, partial) = srv.respond_os(&s2, &commit).unwrap();
    assert_eq!(
        cli.finish(&c, &partial).unwrap_err(),
        Error::VerificationFailed
    );
    // And a share file mixing an old scalar with new public values is refused.
    assert_eq!(
        ClientKeyShare::from_parts(c.secret_scalar_for_tests(), *c2.public()).unwrap_err(),
        Error::ShareMismatch
    );
    let _ = ProjectivePoint::identity();
}

#[test]
fn either_side_can_roll_back_before_commit() {
    let (c, s) = keygen();
    // Client rolls back right after accepting.
    let (srv, propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    let (cli, _accept) = ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap();
    let (c_back, abort) = cli.rollback();
    assert_eq!(abort.session, srv.session());
    cosign(&c_back, &s, &[b"still works"]);

    // Server rolls back after preparing; the client (ready) follows the abort.
    let (srv, propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    let (cli, accept) = ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap();
    let (srv, prepared) = srv.prepare(&s, &accept).unwrap();
    let (cli, _done) = cli.on_prepared(&prepared).unwrap();
    let (s_back, abort) = srv.rollback();
    let c_back = cli.on_abort(&abort).unwrap();
    assert_eq!(c_back.public().epoch(), 0);
    cosign(&c_back, &s_back, &[b"rolled back"]);
}

#[test]
fn lost_finalize_is_resolved_from_the_servers_epoch() {
    let (c, s) = keygen();
    let (srv, propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    let (cli, accept) = ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap();
    let (srv, prepared) = srv.prepare(&s, &accept).unwrap();
    let (cli, done) = cli.on_prepared(&prepared).unwrap();
    let (s_new, _lost) = srv.commit(&done).unwrap();
    let c_new = cli.resolve(s_new.public().epoch()).unwrap();
    cosign(&c_new, &s_new, &[b"resolved"]);
}

#[test]
fn refresh_rejects_tampering() {
    let (c, s) = keygen();
    let (srv, propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    let (_cli, mut accept) = ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap();
    accept.client_contribution.0[0] ^= 1;
    assert!(matches!(
        srv.prepare(&s, &accept),
        Err(Error::InvalidProof { .. })
    ));

    let (srv, propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    let (cli, accept) = ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap();
    let (_srv, mut prepared) = srv.prepare(&s, &accept).unwrap();
    prepared.p2 = accept.p1;
    assert!(matches!(
        cli.on_prepared(&prepared),
        Err(Error::InvalidProof { .. })
    ));

    let (srv, mut propose) = ServerRefresh::propose(&mut OsRng, &s).unwrap();
    propose.epoch = 5;
    assert_eq!(
        ClientRefreshPending::accept(&mut OsRng, &c, &propose).unwrap_err(),
        Error::EpochMismatch { ours: 0, theirs: 5 }
    );
    let _ = srv.abort();
}
