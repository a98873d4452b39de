//! Shared helpers: run the protocols in-process.

use sm2::dsa::Signature;
use sm2_cosign::keygen::{ClientKeygen, ServerKeygen};
use sm2_cosign::plain::{self, Digest};
use sm2_cosign::sign::{ClientSignSession, ServerSignSession};
use sm2_cosign::{ClientKeyShare, DEFAULT_ID, OsRng, ServerKeyShare, SessionId};

pub fn keygen() -> (ClientKeyShare, ServerKeyShare) {
    let session = SessionId::random_os().unwrap();
    let (client, req) = ClientKeygen::start(&mut OsRng, session).unwrap();
    let (server, resp) = ServerKeygen::respond(&mut OsRng, session, &req).unwrap();
    let (cshare, confirm) = client.finish(&resp).unwrap();
    let sshare = server.confirm(&confirm).unwrap();
    assert_eq!(cshare.public(), sshare.public());
    (cshare, sshare)
}

/// The digests the client computes itself for `msgs`.
pub fn client_digests(c: &ClientKeyShare, msgs: &[&[u8]]) -> Vec<Digest> {
    msgs.iter()
        .map(|m| plain::message_digest(DEFAULT_ID, c.public().public_point(), m).unwrap())
        .collect()
}

/// A complete honest co-signing round over `msgs`, with every check on both sides.
pub fn cosign(c: &ClientKeyShare, s: &ServerKeyShare, msgs: &[&[u8]]) -> Vec<Signature> {
    let (srv, req) = ServerSignSession::new(&mut OsRng, s, DEFAULT_ID, msgs).unwrap();
    let digests = client_digests(c, msgs);
    let (cli, commit) = ClientSignSession::commit(&mut OsRng, c, &req, &digests).unwrap();
    let (srv, partial) = srv.respond(&mut OsRng, s, &commit).unwrap();
    let (sigs, result) = cli.finish(c, &partial).unwrap();
    let stored = srv.finish(&result).unwrap();
    assert_eq!(sigs, stored);
    sigs
}

pub fn verify_rustcrypto(c: &ClientKeyShare, msg: &[u8], sig: &Signature) -> bool {
    use sm2::dsa::{VerifyingKey, signature::Verifier};
    let vk = VerifyingKey::from_affine("1234567812345678", *c.public().public_point()).unwrap();
    vk.verify(msg, sig).is_ok()
}

pub fn verify_libsm(c: &ClientKeyShare, msg: &[u8], sig: &Signature) -> bool {
    let ctx = libsm::sm2::signature::SigCtx::new();
    let pk = ctx.load_pubkey(&c.public().public_key_bytes()).unwrap();
    let bytes = sig.to_bytes();
    let lsig = libsm::sm2::signature::Signature::new(&bytes[..32], &bytes[32..]);
    ctx.verify(msg, &pk, &lsig).unwrap_or(false)
}

/// The raw share scalar, read through the public persistence format (tests and attack
/// demonstrations only; product code never needs it).
pub trait SecretForTests {
    fn secret_scalar_for_tests(&self) -> sm2::NonZeroScalar;
}

fn scalar_from_share_bytes(b: &[u8]) -> sm2::NonZeroScalar {
    let d: [u8; 32] = b[1..33].try_into().unwrap();
    sm2::NonZeroScalar::from_repr(d.into()).unwrap()
}

impl SecretForTests for ClientKeyShare {
    fn secret_scalar_for_tests(&self) -> sm2::NonZeroScalar {
        scalar_from_share_bytes(&self.to_bytes())
    }
}

impl SecretForTests for ServerKeyShare {
    fn secret_scalar_for_tests(&self) -> sm2::NonZeroScalar {
        scalar_from_share_bytes(&self.to_bytes())
    }
}
