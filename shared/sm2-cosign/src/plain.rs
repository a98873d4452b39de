//! Single-party SM2 (GB/T 32918.2-2016 §6, §7): `Z`, the message digest `e`, signing with a
//! fresh random `k`, and verification, all with a configurable distinguishing ID.
//!
//! The rest of the project uses these helpers; [`DEFAULT_ID`] is the ID unless a
//! certificate says otherwise.

use crate::ec::{self, random_nonzero};
use crate::error::{Error, Result};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::dsa::Signature;
use sm2::elliptic_curve::{Group, ff::PrimeField, point::AffineCoordinates};
use sm2::{AffinePoint, PublicKey, Scalar, SecretKey};
use sm3::{Digest as _, Sm3};
use zeroize::Zeroize;

/// The default SM2 distinguishing ID (GB/T 35276-2017 §10, GM/T 0009): `1234567812345678`.
pub const DEFAULT_ID: &[u8] = b"1234567812345678";

/// A 32-byte SM3 message digest `e = H256(Z ‖ M)` (GB/T 32918.2 §6.1 A2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(pub crate::wire::Hex<32>);

impl Digest {
    /// Wraps raw digest bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(crate::wire::Hex(b))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

impl core::fmt::Debug for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Digest({:?})", self.0)
    }
}

/// SM2 curve parameters a, b, xG, yG as bytes (GB/T 32918.5 §4).
const CURVE_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const CURVE_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const GX: [u8; 32] = hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const GY: [u8; 32] = hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

// Evaluated at compile time on the literals above: an out-of-range index is a build error,
// never a runtime panic.
#[allow(clippy::indexing_slicing)]
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// `Z_A = H256(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` (GB/T 32918.2 §5.5).
///
/// `ENTL_A` is the bit length of `ID_A` as two bytes, so IDs are at most 8191 bytes.
pub fn compute_z(id: &[u8], public_key: &AffinePoint) -> Result<[u8; 32]> {
    let entl: u16 = id
        .len()
        .checked_mul(8)
        .and_then(|l| u16::try_from(l).ok())
        .ok_or(Error::IdTooLong)?;
    if bool::from(sm2::ProjectivePoint::from(*public_key).is_identity()) {
        return Err(Error::InvalidPoint { what: "public key" });
    }
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(id);
    h.update(CURVE_A);
    h.update(CURVE_B);
    h.update(GX);
    h.update(GY);
    h.update(public_key.x());
    h.update(y_bytes(public_key));
    Ok(h.finalize().into())
}

fn y_bytes(p: &AffinePoint) -> [u8; 32] {
    let enc = ec::encode_point(p);
    let mut y = [0u8; 32];
    if let Some(tail) = enc.get(33..65) {
        y.copy_from_slice(tail);
    }
    y
}

/// `e = H256(Z_A ‖ M)` (GB/T 32918.2 §6.1 A1–A2).
pub fn message_digest(id: &[u8], public_key: &AffinePoint, msg: &[u8]) -> Result<Digest> {
    let z = compute_z(id, public_key)?;
    Ok(digest_with_z(&z, msg))
}

/// `e = H256(Z ‖ M)` for a precomputed `Z` (saves one SM3 block per message in batches).
pub fn digest_with_z(z: &[u8; 32], msg: &[u8]) -> Digest {
    let mut h = Sm3::new();
    h.update(z);
    h.update(msg);
    Digest::from_bytes(h.finalize().into())
}

/// Signs a digest with a fresh random `k` from `rng` (GB/T 32918.2 §6.1 A3–A7).
pub fn sign_digest<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    secret: &SecretKey,
    e: &Digest,
) -> Result<Signature> {
    let mut d: Scalar = *secret.to_nonzero_scalar();
    let e = ec::bytes_mod_n(e.as_bytes());
    // (1 + d)⁻¹ exists because key generation keeps d ≠ n − 1; refuse such a key otherwise.
    let Some(mut inv) = ec::invert_scalar(&(d + Scalar::ONE)) else {
        d.zeroize();
        return Err(Error::ApiMisuse("SM2 private key must not be n - 1"));
    };
    let mut out = Err(Error::Internal("no valid nonce after 16 tries"));
    for _ in 0..16 {
        // A3: k ∈ [1, n-1] from the CSPRNG.
        let mut k = match random_nonzero(rng) {
            Ok(k) => k,
            Err(err) => {
                out = Err(err);
                break;
            }
        };
        let sig = sign_with_k(&d, &inv, &e, &k);
        k.zeroize();
        if let Some(sig) = sig {
            out = Ok(sig);
            break;
        }
    }
    d.zeroize();
    inv.zeroize();
    out
}

/// A4–A7 for a given `k`; `None` means "back to A3". Private: a fixed `k` is only for the
/// standard's worked example in the unit tests.
fn sign_with_k(d: &Scalar, inv: &Scalar, e: &Scalar, k: &Scalar) -> Option<Signature> {
    // A4: (x1, y1) = [k]G (constant time: k is secret)
    let p = ec::to_affine_nonidentity(&ec::mul_g(k), "kG").ok()?;
    // A5: r = (e + x1) mod n; back to A3 if r = 0 or r + k = n
    let r = *e + ec::x_mod_n(&p);
    if bool::from(r.is_zero() | (r + k).is_zero()) {
        return None;
    }
    // A6: s = ((1 + d)⁻¹ · (k − r·d)) mod n; back to A3 if s = 0
    let s = *inv * (*k - r * d);
    if bool::from(s.is_zero()) {
        return None;
    }
    // A7: (r, s)
    Signature::from_scalars(r.to_repr(), s.to_repr()).ok()
}

/// Signs `msg` for `id` with a fresh random `k` (GB/T 32918.2 §6.1).
pub fn sign<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    secret: &SecretKey,
    id: &[u8],
    msg: &[u8],
) -> Result<Signature> {
    // P = d·G with the crate's constant-time comb (d is secret).
    let mut d: Scalar = *secret.to_nonzero_scalar();
    let public = ec::to_affine_nonidentity(&ec::mul_g(&d), "public key");
    d.zeroize();
    let public = public?;
    let e = message_digest(id, &public, msg)?;
    sign_digest(rng, secret, &e)
}

/// [`sign`] with the OS CSPRNG.
pub fn sign_os(secret: &SecretKey, id: &[u8], msg: &[u8]) -> Result<Signature> {
    sign(&mut crate::OsRng, secret, id, msg)
}

/// Verifies a signature over a digest (GB/T 32918.2 §7.1 B1–B7). Variable time: every input
/// is public.
pub fn verify_digest(public_key: &AffinePoint, e: &Digest, sig: &Signature) -> Result<()> {
    // B1, B2: r, s ∈ [1, n-1] — guaranteed by `Signature`'s non-zero canonical scalars.
    let (r, s) = sig.split_scalars();
    // B4: e' as an integer mod n
    let e = ec::bytes_mod_n(e.as_bytes());
    // B5: t = (r + s) mod n, fail if t = 0
    let t = *r + *s;
    if bool::from(t.is_zero()) {
        return Err(Error::VerificationFailed);
    }
    // B6: (x1', y1') = [s']G + [t]P_A (variable time: public scalars)
    let p = ec::verify_point_vartime(&s, &t, public_key)?;
    // B7: R = (e' + x1') mod n = r', i.e. x1' mod n = r' − e'; false for the point at
    // infinity
    if p.x_mod_n_is(&(*r - e)) {
        Ok(())
    } else {
        Err(Error::VerificationFailed)
    }
}

/// Verifies N signatures over N digests for one key (B1–B7 for each; the x comparison needs
/// no field inversion). Fails if any one fails.
pub fn verify_digests(
    public_key: &AffinePoint,
    digests: &[Digest],
    sigs: &[Signature],
) -> Result<()> {
    if digests.len() != sigs.len() {
        return Err(Error::ApiMisuse("digest and signature counts differ"));
    }
    for (e, sig) in digests.iter().zip(sigs) {
        // B1, B2 by construction of `Signature`; B4: e' mod n; B5: t = r' + s' ≠ 0
        let (r, s) = sig.split_scalars();
        let t = *r + *s;
        if bool::from(t.is_zero()) {
            return Err(Error::VerificationFailed);
        }
        // B6: [s']G + [t]P_A (variable time: public scalars)
        let p = ec::verify_point_vartime(&s, &t, public_key)?;
        // B7: x1' mod n = r' − e', never for the point at infinity
        if !p.x_mod_n_is(&(*r - ec::bytes_mod_n(e.as_bytes()))) {
            return Err(Error::VerificationFailed);
        }
    }
    Ok(())
}

/// Verifies `sig` over `msg` for `id` and `public` (GB/T 32918.2 §7.1).
pub fn verify(public: &PublicKey, id: &[u8], msg: &[u8], sig: &Signature) -> Result<()> {
    let e = message_digest(id, public.as_affine(), msg)?;
    verify_digest(public.as_affine(), &e, sig)
}

/// Parses a DER `SM2Signature ::= SEQUENCE { r INTEGER, s INTEGER }` (GB/T 35276 §7.2).
pub fn signature_from_der(der: &[u8]) -> Result<Signature> {
    Signature::from_der(der).map_err(|_| Error::Malformed {
        what: "DER signature",
    })
}

/// Encodes a signature as DER `SM2Signature` (what OpenSSL's `pkeyutl -sigfile` reads).
pub fn signature_to_der(sig: &Signature) -> Vec<u8> {
    sig.to_der().to_vec()
}

/// A public key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
pub fn public_key_to_pem(public: &PublicKey) -> Result<String> {
    use sm2::pkcs8::{EncodePublicKey, LineEnding};
    public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| Error::Internal("SPKI encoding"))
}

/// A public key from PEM SubjectPublicKeyInfo.
pub fn public_key_from_pem(pem: &str) -> Result<PublicKey> {
    use sm2::pkcs8::DecodePublicKey;
    PublicKey::from_public_key_pem(pem).map_err(|_| Error::Malformed { what: "SPKI PEM" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::elliptic_curve::ff::PrimeField;

    fn h(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    // Worked example of GB/T 32918.5-2017 (GM/T 0003.5-2012) with the recommended curve:
    // "数字签名示例", ID = "1234567812345678" (ALICE123@YAHOO.COM in the older part-2 example,
    // which uses a test curve the `sm2` crate cannot express), M = "message digest".
    const DA: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const XA: &str = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
    const YA: &str = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    const ZA: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
    const E: &str = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
    const K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
    const R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
    const S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

    fn key() -> SecretKey {
        SecretKey::from_bytes(&h(DA).into()).unwrap()
    }

    #[test]
    fn gbt32918_5_public_key_z_and_e() {
        let pk = key().public_key();
        let enc = ec::encode_point(pk.as_affine());
        assert_eq!(hex::encode_upper(&enc[1..33]), XA);
        assert_eq!(hex::encode_upper(&enc[33..]), YA);
        assert_eq!(
            hex::encode_upper(compute_z(DEFAULT_ID, pk.as_affine()).unwrap()),
            ZA
        );
        let e = message_digest(DEFAULT_ID, pk.as_affine(), b"message digest").unwrap();
        assert_eq!(hex::encode_upper(e.as_bytes()), E);
    }

    #[test]
    fn gbt32918_5_signature_with_the_examples_k() {
        let sk = key();
        let d = *sk.to_nonzero_scalar();
        let inv = (d + Scalar::ONE).invert().unwrap();
        let e = ec::bytes_mod_n(&h(E));
        let k = Scalar::from_repr(h(K).into()).unwrap();
        let sig = sign_with_k(&d, &inv, &e, &k).unwrap();
        assert_eq!(hex::encode_upper(sig.r().to_repr()), R);
        assert_eq!(hex::encode_upper(sig.s().to_repr()), S);
        verify(&sk.public_key(), DEFAULT_ID, b"message digest", &sig).unwrap();
        assert_eq!(
            verify(&sk.public_key(), DEFAULT_ID, b"message digesT", &sig),
            Err(Error::VerificationFailed)
        );
        assert_eq!(
            verify(
                &sk.public_key(),
                b"1234567812345679",
                b"message digest",
                &sig
            ),
            Err(Error::VerificationFailed)
        );
    }
}
