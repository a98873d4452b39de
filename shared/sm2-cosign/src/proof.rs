//! Schnorr proofs of knowledge of a discrete logarithm, made non-interactive with
//! Fiat–Shamir over SM3 and bound to a context (session id, role, purpose, position).
//!
//! Statement: "I know x with X = x·G". Proof `(c, z)`: pick random t, `T = t·G`,
//! `c = H(ctx ‖ X ‖ T) mod n`, `z = t + c·x`. Verify: `T' = z·G − c·X`, accept iff
//! `H(ctx ‖ X ‖ T') = c`. A proof made for one context fails in any other.

use crate::ec::{self, Transcript};
use crate::error::{Error, Result};
use crate::wire::WireScalar;
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::elliptic_curve::Group;
use sm2::{AffinePoint, Scalar};
use zeroize::Zeroize;

/// A Schnorr proof of knowledge `(c, z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlogProof {
    /// Challenge.
    pub c: WireScalar,
    /// Response.
    pub z: WireScalar,
}

/// What a proof is bound to. Built by the protocol modules.
#[derive(Clone, Debug)]
pub(crate) struct ProofContext<'a> {
    pub(crate) purpose: &'static [u8],
    pub(crate) session: &'a [u8],
    pub(crate) extra: &'a [u8],
}

fn challenge(ctx: &ProofContext<'_>, x: &AffinePoint, t: &AffinePoint) -> Scalar {
    let mut tr = Transcript::new(b"dlog-proof");
    tr.append(ctx.purpose);
    tr.append(ctx.session);
    tr.append(ctx.extra);
    tr.append_point(x);
    tr.append_point(t);
    tr.challenge()
}

/// Proves knowledge of `x` for `big_x = x·G` (the caller guarantees the relation).
pub(crate) fn prove<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    x: &Scalar,
    big_x: &AffinePoint,
    ctx: &ProofContext<'_>,
) -> Result<DlogProof> {
    let mut t = ec::random_nonzero(rng)?;
    let big_t = ec::mul_g(&t).to_affine();
    let c = challenge(ctx, big_x, &big_t);
    let mut z = *t + c * x;
    let proof = DlogProof {
        c: crate::wire::Hex(ec::scalar_to_bytes(&c)),
        z: crate::wire::Hex(ec::scalar_to_bytes(&z)),
    };
    t.zeroize();
    z.zeroize();
    Ok(proof)
}

/// Verifies a proof for `big_x` in `ctx` (variable time: all inputs are public).
pub(crate) fn verify(
    proof: &DlogProof,
    big_x: &AffinePoint,
    ctx: &ProofContext<'_>,
    what: &'static str,
) -> Result<()> {
    let c = ec::decode_scalar(&proof.c.0, "proof challenge")?;
    let z = ec::decode_scalar(&proof.z.0, "proof response")?;
    let t = ec::mul_g_add_vartime(&z, &(-c), big_x);
    if bool::from(t.is_identity()) {
        return Err(Error::InvalidProof { what });
    }
    let c2 = challenge(ctx, big_x, &t.to_affine());
    if c2 == c {
        Ok(())
    } else {
        Err(Error::InvalidProof { what })
    }
}
