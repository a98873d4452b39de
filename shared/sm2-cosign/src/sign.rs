//! Two-party signing, one digest or a batch of N per round (GB/T 32918.2 §6.1 split in two).
//!
//! ```text
//! server                                             client (phone)
//!   e_i = H256(Z(ID, P) ‖ M_i)  (computed by the server itself, A1–A2)
//!   ── SignRequest { session, P, e_1..e_N } ────────►  compare P and e_i with its own
//!                                                      k1_i ←$ [1,n-1], Q1_i = k1_i·G,
//!                                                      π_i = PoK(k1_i) bound to (session, i, e_i)
//!   ◄── SignCommit { session, (Q1_i, π_i)… } ───────
//!   check Q1_i, π_i; k2_i, k3_i ←$ [1,n-1]
//!   (x1, y1) = k3·Q1 + k2·G                  (A4 with k = k1·k3 + k2)
//!   r = (e + x1) mod n, redo if r = 0        (A5)
//!   s2 = d2·k3, s3 = d2·(r + k2)
//!   ── SignPartial { session, (r, s2, s3)… } ───────►  reject r, s2, s3 = 0
//!                                                      s = d1·k1·s2 + d1·s3 − r   (A6)
//!                                                      reject s = 0, r + s = n;
//!                                                      verify (r, s) against own P (B1–B7)
//!   ◄── SignResult { session, (r, s)… } ─────────────
//!   verify each (r, s) again before storing
//! ```
//! Correctness: with `D = d1·d2` and `d = D⁻¹ − 1`, `s = D·(k + r) − r = (1 + d)⁻¹·(k − r·d)`.
//!
//! Nonces come from the caller's CSPRNG, are never derived deterministically, and live only
//! in the session objects, which are consumed by the step that uses them and zeroized on drop.

use crate::ec::{self, random_nonzero};
use crate::error::{Error, Result, ScalarName};
use crate::plain::{self, Digest};
use crate::proof::{self, DlogProof, ProofContext};
use crate::share::{ClientKeyShare, ServerKeyShare};
use crate::wire::{
    Hex, PROTOCOL_VERSION, SessionId, WirePoint, WireScalar, check_session, check_version,
};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::dsa::Signature;
use sm2::elliptic_curve::ff::PrimeField;
use sm2::{AffinePoint, NonZeroScalar, Scalar};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Largest batch one round may carry (bounds memory and work a peer can demand).
pub const MAX_BATCH: usize = 1024;

const PURPOSE_Q1: &[u8] = b"sign/client/Q1";

/// Server → client: what is to be signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// Protocol version.
    pub version: u16,
    /// Session id (fresh per signing round).
    pub session: SessionId,
    /// The joint public key the server will sign with.
    pub public_key: WirePoint,
    /// The server share's epoch (see [`crate::refresh`]); the client's must match.
    pub epoch: u32,
    /// The digests `e_i = H256(Z ‖ M_i)`, computed by the server from the messages.
    pub digests: Vec<Digest>,
}

/// One client nonce commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitItem {
    /// `Q1 = k1·G`.
    pub q1: WirePoint,
    /// Proof of knowledge of `k1`, bound to the session, position and digest.
    pub proof: DlogProof,
}

/// Client → server: one nonce commitment per digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignCommit {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// One item per requested digest, in order.
    pub items: Vec<CommitItem>,
}

/// One partial signature from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialItem {
    /// `r = (e + x1) mod n`.
    pub r: WireScalar,
    /// `s2 = d2·k3`.
    pub s2: WireScalar,
    /// `s3 = d2·(r + k2)`.
    pub s3: WireScalar,
}

/// Server → client: the partial signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignPartial {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// One item per digest, in order.
    pub items: Vec<PartialItem>,
}

/// Client → server: the finished, client-verified signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResult {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
    /// `r ‖ s` (32 + 32 bytes big-endian) per digest, in order.
    pub signatures: Vec<Hex<64>>,
}

/// Either side may send this to abandon a session; both then erase its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignAbort {
    /// Protocol version.
    pub version: u16,
    /// Session id.
    pub session: SessionId,
}

fn q1_context<'a>(session: &'a SessionId, extra: &'a [u8]) -> ProofContext<'a> {
    ProofContext {
        purpose: PURPOSE_Q1,
        session: session.as_bytes(),
        extra,
    }
}

/// Binds a commitment to (joint key, batch size, position, digest).
fn q1_extra(public_key: &[u8; 65], n: usize, index: usize, e: &Digest) -> Vec<u8> {
    let mut v = Vec::with_capacity(65 + 16 + 32);
    v.extend_from_slice(public_key);
    v.extend_from_slice(&(n as u64).to_be_bytes());
    v.extend_from_slice(&(index as u64).to_be_bytes());
    v.extend_from_slice(e.as_bytes());
    v
}

fn check_batch(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::ApiMisuse("empty batch"));
    }
    if n > MAX_BATCH {
        return Err(Error::ApiMisuse("batch larger than MAX_BATCH"));
    }
    Ok(())
}

fn sig_to_wire(sig: &Signature) -> Hex<64> {
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    Hex(out)
}

fn sig_from_wire(h: &Hex<64>) -> Result<Signature> {
    Signature::from_bytes(&h.0.into()).map_err(|_| Error::Malformed { what: "signature" })
}

// ------------------------------------------------------------------------------------------
// server role

/// Server signing session: created with the messages, consumed by [`Self::respond`].
#[derive(Debug)]
pub struct ServerSignSession {
    session: SessionId,
    public_key: [u8; 65],
    digests: Vec<Digest>,
}

impl ServerSignSession {
    /// Starts a session over `messages` (each the exact bytes to be signed, e.g. a document or
    /// DER signed attributes). The server computes `Z(id, P)` and every `e_i` itself (A1–A2).
    pub fn new<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        share: &ServerKeyShare,
        id: &[u8],
        messages: &[&[u8]],
    ) -> Result<(Self, SignRequest)> {
        check_batch(messages.len())?;
        let z = plain::compute_z(id, share.public.public_point())?;
        let digests: Vec<Digest> = messages
            .iter()
            .map(|m| plain::digest_with_z(&z, m))
            .collect();
        let session = SessionId::random(rng)?;
        let public_key = share.public.public_key_bytes();
        let req = SignRequest {
            version: PROTOCOL_VERSION,
            session,
            public_key: Hex(public_key),
            epoch: share.public.epoch(),
            digests: digests.clone(),
        };
        Ok((
            Self {
                session,
                public_key,
                digests,
            },
            req,
        ))
    }

    /// [`Self::new`] with the OS CSPRNG.
    pub fn new_os(
        share: &ServerKeyShare,
        id: &[u8],
        messages: &[&[u8]],
    ) -> Result<(Self, SignRequest)> {
        Self::new(&mut crate::OsRng, share, id, messages)
    }

    /// Rebuilds the session from the [`SignRequest`] this server made and stored, so the
    /// client's commitment may be answered by another process or after a restart (the
    /// session holds no secret). The caller must only pass requests it made itself.
    pub fn resume(req: &SignRequest) -> Result<Self> {
        check_version(req.version)?;
        check_batch(req.digests.len())?;
        ec::decode_point(&req.public_key.0, "P")?;
        Ok(Self {
            session: req.session,
            public_key: req.public_key.0,
            digests: req.digests.clone(),
        })
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The digests this session signs.
    pub fn digests(&self) -> &[Digest] {
        &self.digests
    }

    /// Checks every commitment (point valid, proof bound to this session / position /
    /// digest), then computes the partial signatures with fresh `k2`, `k3`.
    pub fn respond<R: TryCryptoRng + ?Sized>(
        self,
        rng: &mut R,
        share: &ServerKeyShare,
        commit: &SignCommit,
    ) -> Result<(ServerAwaitingResult, SignPartial)> {
        check_version(commit.version)?;
        check_session(&self.session, &commit.session)?;
        if share.public.public_key_bytes() != self.public_key {
            return Err(Error::ApiMisuse(
                "share does not belong to this session's key",
            ));
        }
        let n = self.digests.len();
        if commit.items.len() != n {
            return Err(Error::CountMismatch {
                expected: n,
                got: commit.items.len(),
            });
        }
        // Validate everything before any secret is used: every point, then every proof (a
        // batch round checks all its proofs in one multi-scalar multiplication).
        let q1s = commit
            .items
            .iter()
            .map(|item| ec::decode_point(&item.q1.0, "Q1"))
            .collect::<Result<Vec<_>>>()?;
        let extras: Vec<Vec<u8>> = (0..n)
            .zip(&self.digests)
            .map(|(i, e)| q1_extra(&self.public_key, n, i, e))
            .collect();
        let checks: Vec<_> = commit
            .items
            .iter()
            .zip(&q1s)
            .zip(&extras)
            .map(|((item, q1), extra)| (&item.proof, q1, q1_context(&self.session, extra)))
            .collect();
        proof::verify_batch(rng, &checks, "Q1")?;
        let d2: &Scalar = &share.d2;
        let mut items = Vec::with_capacity(n);
        for (q1, e) in q1s.iter().zip(&self.digests) {
            let e = ec::bytes_mod_n(e.as_bytes());
            let (r, s2, s3) = server_partial(rng, d2, q1, &e)?;
            items.push(PartialItem {
                r: Hex(ec::scalar_to_bytes(&r)),
                s2: Hex(ec::scalar_to_bytes(&s2)),
                s3: Hex(ec::scalar_to_bytes(&s3)),
            });
        }
        let partial = SignPartial {
            version: PROTOCOL_VERSION,
            session: self.session,
            items,
        };
        Ok((
            ServerAwaitingResult {
                session: self.session,
                public_key: *share.public.public_point(),
                digests: self.digests,
            },
            partial,
        ))
    }

    /// [`Self::respond`] with the OS CSPRNG.
    pub fn respond_os(
        self,
        share: &ServerKeyShare,
        commit: &SignCommit,
    ) -> Result<(ServerAwaitingResult, SignPartial)> {
        self.respond(&mut crate::OsRng, share, commit)
    }
}

/// The server's half for one item: fresh `k2`, `k3`; returns `(r, s2, s3)`.
fn server_partial<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    d2: &Scalar,
    q1: &AffinePoint,
    e: &Scalar,
) -> Result<(Scalar, Scalar, Scalar)> {
    for _ in 0..16 {
        // A3 (server's part): k2, k3 ∈ [1, n-1]; the joint nonce is k = k1·k3 + k2.
        let mut k2 = random_nonzero(rng)?;
        let mut k3 = random_nonzero(rng)?;
        // A4: (x1, y1) = k3·Q1 + k2·G = [k]G, both constant time (k2, k3 are secret); the
        // sum is complete (equal summands are possible in principle).
        let big_r = ec::mul(&k3, q1)?.add_complete(&ec::mul_g(&k2));
        let Ok(big_r) = ec::to_affine_nonidentity(&big_r, "R") else {
            k2.zeroize();
            k3.zeroize();
            continue;
        };
        // A5: r = (e + x1) mod n; retry if r = 0 (r + k = n is checked by the client as
        // r + s = n, since k is known to nobody).
        let r = *e + ec::x_mod_n(&big_r);
        let mut rk2 = r + *k2;
        if bool::from(r.is_zero() | rk2.is_zero()) {
            k2.zeroize();
            k3.zeroize();
            rk2.zeroize();
            continue;
        }
        let s2 = *d2 * *k3;
        let s3 = *d2 * rk2;
        k2.zeroize();
        k3.zeroize();
        rk2.zeroize();
        return Ok((r, s2, s3));
    }
    Err(Error::Internal("no valid server nonce after 16 tries"))
}

/// Server state waiting for the client's signatures; holds no secret.
#[derive(Debug)]
pub struct ServerAwaitingResult {
    session: SessionId,
    public_key: AffinePoint,
    digests: Vec<Digest>,
}

impl ServerAwaitingResult {
    /// Rebuilds the waiting state from the [`SignRequest`] this server made and stored (it
    /// holds no secret), for a result that reaches another process or arrives after a restart.
    pub fn resume(req: &SignRequest) -> Result<Self> {
        check_version(req.version)?;
        check_batch(req.digests.len())?;
        Ok(Self {
            session: req.session,
            public_key: ec::decode_point(&req.public_key.0, "P")?,
            digests: req.digests.clone(),
        })
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Verifies every signature against the joint key and the server's own digests before
    /// anything is stored (B1–B7).
    pub fn finish(self, result: &SignResult) -> Result<Vec<Signature>> {
        check_version(result.version)?;
        check_session(&self.session, &result.session)?;
        if result.signatures.len() != self.digests.len() {
            return Err(Error::CountMismatch {
                expected: self.digests.len(),
                got: result.signatures.len(),
            });
        }
        let out = result
            .signatures
            .iter()
            .map(sig_from_wire)
            .collect::<Result<Vec<_>>>()?;
        plain::verify_digests(&self.public_key, &self.digests, &out)?;
        Ok(out)
    }
}

// ------------------------------------------------------------------------------------------
// client role

/// Client signing session: holds the nonces `k1_i` (zeroized on drop); consumed by
/// [`Self::finish`], so a nonce can never be used twice.
#[derive(ZeroizeOnDrop)]
pub struct ClientSignSession {
    k1: Vec<NonZeroScalar>,
    #[zeroize(skip)]
    session: SessionId,
    #[zeroize(skip)]
    digests: Vec<Digest>,
}

impl core::fmt::Debug for ClientSignSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSignSession")
            .field("session", &self.session)
            .field("items", &self.digests.len())
            .finish_non_exhaustive()
    }
}

impl ClientSignSession {
    /// Checks the request against the client's own key and the digests the client computed
    /// itself from what it displayed (`expected`), then commits to fresh nonces.
    pub fn commit<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        share: &ClientKeyShare,
        req: &SignRequest,
        expected: &[Digest],
    ) -> Result<(Self, SignCommit)> {
        check_version(req.version)?;
        let n = req.digests.len();
        check_batch(n).map_err(|_| Error::CountMismatch {
            expected: expected.len(),
            got: n,
        })?;
        let public_key = share.public.public_key_bytes();
        if req.public_key.0 != public_key {
            return Err(Error::PublicKeyMismatch);
        }
        if req.epoch != share.public.epoch() {
            return Err(Error::EpochMismatch {
                ours: share.public.epoch(),
                theirs: req.epoch,
            });
        }
        if req.digests.as_slice() != expected {
            return Err(Error::DigestMismatch);
        }
        // A3 (client's part): fresh k1 from the CSPRNG, never derived from (d1, e); and the
        // proof nonces t. All 2N points are normalized with one field inversion.
        let mut k1 = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let k = random_nonzero(rng)?;
            points.push(ec::mul_g(&k));
            k1.push(k);
            let (t, big_t) = proof::commit(rng)?;
            points.push(big_t);
            ts.push(t);
        }
        let affine = ec::normalize_nonidentity(&points, "Q1")?;
        let mut items = Vec::with_capacity(n);
        for (i, ((e, k), t)) in req.digests.iter().zip(&k1).zip(ts).enumerate() {
            let (Some(q1), Some(big_t)) = (affine.get(2 * i), affine.get(2 * i + 1)) else {
                return Err(Error::Internal("normalized point count"));
            };
            let extra = q1_extra(&public_key, n, i, e);
            let proof = proof::respond(t, big_t, k, q1, &q1_context(&req.session, &extra));
            items.push(CommitItem {
                q1: Hex(ec::encode_point(q1)),
                proof,
            });
        }
        let commit = SignCommit {
            version: PROTOCOL_VERSION,
            session: req.session,
            items,
        };
        Ok((
            Self {
                k1,
                session: req.session,
                digests: req.digests.clone(),
            },
            commit,
        ))
    }

    /// [`Self::commit`] with the OS CSPRNG.
    pub fn commit_os(
        share: &ClientKeyShare,
        req: &SignRequest,
        expected: &[Digest],
    ) -> Result<(Self, SignCommit)> {
        Self::commit(&mut crate::OsRng, share, req, expected)
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Abandons the session, erasing the nonces.
    pub fn abort(self) -> SignAbort {
        SignAbort {
            version: PROTOCOL_VERSION,
            session: self.session,
        }
    }

    /// Completes every signature, refusing zero scalars from the server (the `k3 = 0`
    /// key-extraction attack) and any result that does not verify against the client's own
    /// `P`. Nothing is returned unless all N signatures verify.
    pub fn finish(
        self,
        share: &ClientKeyShare,
        partial: &SignPartial,
    ) -> Result<(Vec<Signature>, SignResult)> {
        check_version(partial.version)?;
        check_session(&self.session, &partial.session)?;
        let n = self.digests.len();
        if partial.items.len() != n {
            return Err(Error::CountMismatch {
                expected: n,
                got: partial.items.len(),
            });
        }
        let d1: &Scalar = &share.d1;
        let public_key = share.public.public_point();
        let mut sigs = Vec::with_capacity(n);
        for (item, k1) in partial.items.iter().zip(&self.k1) {
            let r = ec::decode_scalar(&item.r.0, "r")?;
            let s2 = ec::decode_scalar(&item.s2.0, "s2")?;
            let s3 = ec::decode_scalar(&item.s3.0, "s3")?;
            // Zero checks (constant-time per value; reported without revealing secrets).
            if bool::from(r.is_zero()) {
                return Err(Error::ZeroScalar(ScalarName::R));
            }
            if bool::from(s2.is_zero()) {
                return Err(Error::ZeroScalar(ScalarName::S2));
            }
            if bool::from(s3.is_zero()) {
                return Err(Error::ZeroScalar(ScalarName::S3));
            }
            // A6: s = d1·k1·s2 + d1·s3 − r = (1 + d)⁻¹·(k − r·d)
            let mut dk = *d1 * **k1;
            let s = dk * s2 + *d1 * s3 - r;
            dk.zeroize();
            if bool::from(s.is_zero() | (r + s).is_zero()) {
                return Err(Error::ZeroScalar(ScalarName::FinalS));
            }
            let sig = Signature::from_scalars(r.to_repr(), s.to_repr())
                .map_err(|_| Error::Internal("signature encoding"))?;
            sigs.push(sig);
        }
        // B1–B7 against our own P before anything leaves the phone.
        plain::verify_digests(public_key, &self.digests, &sigs)?;
        let result = SignResult {
            version: PROTOCOL_VERSION,
            session: self.session,
            signatures: sigs.iter().map(sig_to_wire).collect(),
        };
        Ok((sigs, result))
    }
}
