//! Schnorr proofs of knowledge of a discrete logarithm, made non-interactive with
//! Fiat–Shamir over SM3 and bound to a context (session id, role, purpose, position).
//!
//! Statement: "I know x with X = x·G". Proof `(T, z)`: pick random t, `T = t·G`,
//! `c = H(ctx ‖ X ‖ T) mod n`, `z = t + c·x`. Verify: `z·G − c·X = T` (compared in
//! projective coordinates: no field inversion). A proof made for one context fails in any
//! other, because `c` changes.

use crate::arith::{self, Jac};
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

/// Verifies N proofs at once (variable time, public data): with fresh random 128-bit
/// weights `w_i` from the verifier's CSPRNG, checks `Σ w_i·z_i·G − Σ w_i·c_i·X_i − Σ w_i·T_i
/// = O` in one multi-scalar multiplication whose 256 doublings all proofs share. Accepts a
/// set containing an invalid proof with probability at most 2⁻¹²⁸ (the weights are unknown to
/// the prover when it answers). On failure, each proof is checked alone so the error is the
/// one [`verify`] gives.
pub(crate) fn verify_batch<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    items: &[(&DlogProof, &AffinePoint, ProofContext<'_>)],
    what: &'static str,
) -> Result<()> {
    if items.len() < 2 {
        for (proof, x, ctx) in items {
            verify(proof, x, ctx, what)?;
        }
        return Ok(());
    }
    let mut g_scalar = Scalar::ZERO;
    let mut terms = Vec::with_capacity(2 * items.len());
    for (proof, x, ctx) in items {
        let big_t = ec::decode_point(&proof.t.0, "proof commitment")?;
        let z = ec::decode_scalar(&proof.z.0, "proof response")?;
        let c = challenge(ctx, x, &proof.t.0);
        let mut w = [0u8; 32];
        rng.try_fill_bytes(w.get_mut(16..).unwrap_or_default())
            .map_err(|_| Error::Rng)?;
        let w = ec::bytes_mod_n(&w);
        g_scalar += w * z;
        terms.push((-(w * c), ec::aff(x, what)?));
        // w·(−T): the 128-bit weight keeps its short wNAF
        terms.push((w, ec::aff(&(-big_t), "proof commitment")?));
    }
    match arith::lincomb_vartime(&g_scalar, &terms).map(|p| bool::from(p.is_identity())) {
        Some(true) => Ok(()),
        Some(false) => {
            for (proof, x, ctx) in items {
                verify(proof, x, ctx, what)?;
            }
            Err(Error::InvalidProof { what })
        }
        None => Err(Error::Internal("G table")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(extra: &[u8]) -> ProofContext<'_> {
        ProofContext {
            purpose: b"test",
            session: b"session",
            extra,
        }
    }

    #[test]
    fn batch_accepts_valid_and_refuses_any_forgery() {
        let mut rng = crate::OsRng;
        let extras: Vec<[u8; 1]> = (0..5u8).map(|i| [i]).collect();
        let mut statements = Vec::new();
        for e in &extras {
            let x = ec::random_nonzero(&mut rng).unwrap();
            let big_x = ec::to_affine_nonidentity(&ec::mul_g(&x), "X").unwrap();
            let proof = prove(&mut rng, &x, &big_x, &ctx(e)).unwrap();
            statements.push((proof, big_x));
        }
        let items = |s: &[(DlogProof, AffinePoint)]| -> Vec<(DlogProof, AffinePoint, Vec<u8>)> {
            s.iter()
                .zip(&extras)
                .map(|((p, x), e)| (*p, *x, e.to_vec()))
                .collect()
        };
        let check = |v: &[(DlogProof, AffinePoint, Vec<u8>)]| {
            let refs: Vec<_> = v.iter().map(|(p, x, e)| (p, x, ctx(e))).collect();
            verify_batch(&mut crate::OsRng, &refs, "X")
        };
        assert_eq!(check(&items(&statements)), Ok(()));
        // A tampered response, swapped proofs, a proof bound to another position.
        let mut bad = items(&statements);
        bad[2].0.z.0[31] ^= 1;
        assert_eq!(check(&bad), Err(Error::InvalidProof { what: "X" }));
        let mut bad = items(&statements);
        let p0 = bad[0].0;
        bad[0].0 = bad[1].0;
        bad[1].0 = p0;
        assert_eq!(check(&bad), Err(Error::InvalidProof { what: "X" }));
        let mut bad = items(&statements);
        bad[4].2 = vec![9];
        assert_eq!(check(&bad), Err(Error::InvalidProof { what: "X" }));
        // Two forgeries that cancel in an unweighted sum: z0 + δ, z1 − δ.
        let mut bad = items(&statements);
        let delta = Scalar::from(12345u64);
        let z0 = ec::decode_scalar(&bad[0].0.z.0, "z").unwrap();
        let z1 = ec::decode_scalar(&bad[1].0.z.0, "z").unwrap();
        bad[0].0.z.0 = ec::scalar_to_bytes(&(z0 + delta));
        bad[1].0.z.0 = ec::scalar_to_bytes(&(z1 - delta));
        assert_eq!(check(&bad), Err(Error::InvalidProof { what: "X" }));
    }
}
