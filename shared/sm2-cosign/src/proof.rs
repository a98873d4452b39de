//! Schnorr proofs of knowledge of a discrete logarithm, made non-interactive with
//! Fiat–Shamir over SM3 and bound to a context (session id, role, purpose, position).
//!
//! Statement: "I know x with X = x·G". Proof `(T, z)`: pick random t, `T = t·G`,
//! `c = H(ctx ‖ X ‖ T) mod n`, `z = t + c·x`. Verify: `z·G − c·X = T` (compared in
//! projective coordinates: no field inversion). A proof made for one context fails in any
//! other, because `c` changes.

use crate::arith::Jac;
use crate::ec::{self, Transcript};
use crate::error::{Error, Result};
use crate::wire::{Hex, WirePoint, WireScalar};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::{AffinePoint, NonZeroScalar, Scalar};
use zeroize::Zeroize;

/// A Schnorr proof of knowledge `(T, z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlogProof {
    /// Commitment `T = t·G`.
    pub t: WirePoint,
    /// Response `z = t + c·x`.
    pub z: WireScalar,
}

/// What a proof is bound to. Built by the protocol modules.
#[derive(Clone, Debug)]
pub(crate) struct ProofContext<'a> {
    pub(crate) purpose: &'static [u8],
    pub(crate) session: &'a [u8],
    pub(crate) extra: &'a [u8],
}

fn challenge(ctx: &ProofContext<'_>, x: &AffinePoint, t: &[u8; 65]) -> Scalar {
    let mut tr = Transcript::new(b"dlog-proof");
    tr.append(ctx.purpose);
    tr.append(ctx.session);
    tr.append(ctx.extra);
    tr.append_point(x);
    tr.append(t);
    tr.challenge()
}

/// The prover's first move: a fresh `t` and `T = t·G` (projective, so callers can normalize
/// several points with one inversion).
pub(crate) fn commit<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<(NonZeroScalar, Jac)> {
    let t = ec::random_nonzero(rng)?;
    let big_t = ec::mul_g(&t);
    Ok((t, big_t))
}

/// The prover's response for `x` with `big_x = x·G`, given the commitment from [`commit`]
/// (normalized). Consumes and erases `t`.
pub(crate) fn respond(
    mut t: NonZeroScalar,
    big_t: &AffinePoint,
    x: &Scalar,
    big_x: &AffinePoint,
    ctx: &ProofContext<'_>,
) -> DlogProof {
    let t_bytes = ec::encode_point(big_t);
    let c = challenge(ctx, big_x, &t_bytes);
    let mut z = *t + c * x;
    let proof = DlogProof {
        t: Hex(t_bytes),
        z: Hex(ec::scalar_to_bytes(&z)),
    };
    t.zeroize();
    z.zeroize();
    proof
}

/// Proves knowledge of `x` for `big_x = x·G` (the caller guarantees the relation).
pub(crate) fn prove<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    x: &Scalar,
    big_x: &AffinePoint,
    ctx: &ProofContext<'_>,
) -> Result<DlogProof> {
    let (t, big_t) = commit(rng)?;
    let big_t = ec::to_affine_nonidentity(&big_t, "proof commitment")?;
    Ok(respond(t, &big_t, x, big_x, ctx))
}

/// Verifies a proof for `big_x` in `ctx` (variable time: `z`, `c`, `X` and `T` are all
/// public).
pub(crate) fn verify(
    proof: &DlogProof,
    big_x: &AffinePoint,
    ctx: &ProofContext<'_>,
    what: &'static str,
) -> Result<()> {
    let big_t = ec::decode_point(&proof.t.0, "proof commitment")?;
    let z = ec::decode_scalar(&proof.z.0, "proof response")?;
    let c = challenge(ctx, big_x, &proof.t.0);
    let lhs = ec::mul_g_add_vartime(&z, &(-c), big_x)?;
    if lhs.eq_affine(&ec::aff(&big_t, "proof commitment")?) {
        Ok(())
    } else {
        Err(Error::InvalidProof { what })
    }
}
