//! Internal curve helpers: encodings with validation, random scalars, hashing to scalars.

use crate::arith::{self, Aff, Jac};
use crate::error::{Error, Result};
use rand_core::TryCryptoRng;
use sm2::elliptic_curve::{
    Generate, Group,
    ff::PrimeField,
    ops::Reduce,
    point::AffineCoordinates,
    sec1::{FromSec1Point, ToSec1Point},
};
use sm2::{AffinePoint, FieldBytes, NonZeroScalar, ProjectivePoint, Scalar, Sec1Point};
use sm3::{Digest as _, Sm3};

/// SEC1 uncompressed point length.
pub(crate) const POINT_LEN: usize = 65;

/// Domain separation prefix for every hash this crate computes (other than standard SM2).
pub(crate) const DOMAIN: &[u8] = b"YIQIAN-SM2-COSIGN-V1";

pub(crate) fn encode_point(p: &AffinePoint) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    let ep = p.to_sec1_point(false);
    let bytes = ep.as_bytes();
    if bytes.len() == POINT_LEN {
        out.copy_from_slice(bytes);
    }
    // The identity encodes as one byte; it is rejected before any point is encoded.
    out
}

/// Decodes a SEC1 uncompressed point: on the curve (checked by the decoder) and not the
/// identity.
pub(crate) fn decode_point(bytes: &[u8; POINT_LEN], what: &'static str) -> Result<AffinePoint> {
    let ep = Sec1Point::from_bytes(bytes).map_err(|_| Error::InvalidPoint { what })?;
    let p: Option<AffinePoint> = AffinePoint::from_sec1_point(&ep).into();
    let p = p.ok_or(Error::InvalidPoint { what })?;
    if bool::from(ProjectivePoint::from(p).is_identity()) {
        return Err(Error::InvalidPoint { what });
    }
    Ok(p)
}

/// Converts a point to affine, refusing the identity.
pub(crate) fn to_affine_nonidentity(p: &Jac, what: &'static str) -> Result<AffinePoint> {
    p.to_affine()
        .and_then(Aff::to_point)
        .ok_or(Error::InvalidPoint { what })
}

/// Converts an `sm2` projective point to affine, refusing the identity (paths off the
/// signing hot path: sealing, refresh).
pub(crate) fn proj_to_affine_nonidentity(
    p: &ProjectivePoint,
    what: &'static str,
) -> Result<AffinePoint> {
    if bool::from(p.is_identity()) {
        return Err(Error::InvalidPoint { what });
    }
    Ok(p.to_affine())
}

/// Normalizes many points with one field inversion, refusing the identity.
pub(crate) fn normalize_nonidentity(
    points: &[Jac],
    what: &'static str,
) -> Result<Vec<AffinePoint>> {
    arith::batch_to_affine(points)
        .ok_or(Error::InvalidPoint { what })?
        .into_iter()
        .map(|a| a.to_point().ok_or(Error::InvalidPoint { what }))
        .collect()
}

/// A validated non-identity point in the arithmetic's representation.
pub(crate) fn aff(p: &AffinePoint, what: &'static str) -> Result<Aff> {
    Aff::from_point(p).ok_or(Error::InvalidPoint { what })
}

pub(crate) fn scalar_to_bytes(s: &Scalar) -> [u8; 32] {
    s.to_repr().into()
}

/// Decodes a canonical scalar (`< n`); zero allowed.
pub(crate) fn decode_scalar(bytes: &[u8; 32], what: &'static str) -> Result<Scalar> {
    let fb = FieldBytes::from(*bytes);
    Option::<Scalar>::from(Scalar::from_repr(fb)).ok_or(Error::Malformed { what })
}

/// Decodes a canonical non-zero scalar.
pub(crate) fn decode_nonzero(bytes: &[u8; 32], what: &'static str) -> Result<NonZeroScalar> {
    let s = decode_scalar(bytes, what)?;
    Option::<NonZeroScalar>::from(NonZeroScalar::new(s)).ok_or(Error::Malformed { what })
}

/// A fresh uniformly random scalar in `[1, n-1]` from the caller's CSPRNG.
pub(crate) fn random_nonzero<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<NonZeroScalar> {
    NonZeroScalar::try_generate_from_rng(rng).map_err(|_| Error::Rng)
}

/// `x mod n` of an affine point's x coordinate (GB/T 32918.2 A5 / B7).
pub(crate) fn x_mod_n(p: &AffinePoint) -> Scalar {
    Scalar::reduce(&p.x())
}

/// The 32-byte value reduced mod n (GB/T 32918.2 A2: e as an integer, used mod n).
pub(crate) fn bytes_mod_n(bytes: &[u8; 32]) -> Scalar {
    Scalar::reduce(&FieldBytes::from(*bytes))
}

/// `a·G + b·X` in variable time for a point seen once (a proof's statement): only for
/// public scalars.
pub(crate) fn mul_g_add_vartime(a: &Scalar, b: &Scalar, x: &AffinePoint) -> Result<Jac> {
    arith::mul_g_add_vartime(a, b, &aff(x, "point")?).ok_or(Error::Internal("G table"))
}

/// `a·G + b·P` in variable time for a public key `P` (SM2 verification, B6), with `P`'s
/// precomputed table once the key has been seen before: only for public scalars.
pub(crate) fn verify_point_vartime(a: &Scalar, b: &Scalar, p: &AffinePoint) -> Result<Jac> {
    arith::verify_point_vartime(a, b, &aff(p, "public key")?).ok_or(Error::Internal("G table"))
}

/// `s⁻¹ mod n`, constant time (Fermat); `None` for zero.
pub(crate) fn invert_scalar(s: &Scalar) -> Option<Scalar> {
    if bool::from(s.is_zero()) {
        return None;
    }
    Some(arith::invert_scalar(s))
}

/// `k·G` with the precomputed comb, constant time (secret `k`).
pub(crate) fn mul_g(k: &Scalar) -> Jac {
    arith::mul_g(k)
}

/// `k·X` for a public point `X`, constant time in `k` (secret `k`).
pub(crate) fn mul(k: &Scalar, x: &AffinePoint) -> Result<Jac> {
    Ok(arith::mul(k, &aff(x, "point")?))
}

/// A transcript hashed with SM3 into a scalar: every part is length-prefixed so distinct
/// part lists never collide.
pub(crate) struct Transcript {
    h: Sm3,
}

impl Transcript {
    pub(crate) fn new(label: &'static [u8]) -> Self {
        let mut t = Self { h: Sm3::new() };
        t.append(DOMAIN);
        t.append(label);
        t
    }

    pub(crate) fn append(&mut self, part: &[u8]) {
        // Parts are far below 4 GiB; saturate instead of truncating if ever not.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.h.update(len.to_be_bytes());
        self.h.update(part);
    }

    pub(crate) fn append_point(&mut self, p: &AffinePoint) {
        self.append(&encode_point(p));
    }

    /// The challenge scalar (SM3 output mod n; bias below 2⁻³²).
    pub(crate) fn challenge(&self) -> Scalar {
        let out: [u8; 32] = self.h.clone().finalize().into();
        bytes_mod_n(&out)
    }
}
