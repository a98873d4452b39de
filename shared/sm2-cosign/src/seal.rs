//! Sealing the phone's share `d1` so that a stolen device allows no offline PIN guessing.
//!
//! The key that seals `d1` is `K = SM3(ctx ‖ PIN ‖ F_k(ctx ‖ PIN))` where
//! `F_k(x) = k·H2C(x)` is an oblivious PRF (2HashDH, the construction of RFC 9497 §3) whose
//! key `k` only the server holds. The phone stores `Enc_K(d1)`; to get `K` it must ask the
//! server to evaluate `F_k` on a *blinded* point `r·H2C(ctx ‖ PIN)`, so
//! - the server learns nothing about the PIN (it sees a uniformly random point);
//! - whoever holds the phone (and its sealed blob) needs one server evaluation per PIN guess;
//!   the server counts evaluations with [`AttemptCounter`] and locks after a few failures.
//!
//! A wrong PIN is detected by the MAC on the sealed blob ([`Error::WrongPin`]); the server
//! learns of a right PIN when the following co-signature verifies, and only then calls
//! [`AttemptCounter::success`].
//!
//! `H2C` is the hash-to-curve of RFC 9380 (expand_message_xmd with SM3, simplified SWU
//! with Z = −9 for the SM2 curve, random-oracle variant `map(u0) + map(u1)`), constant-time.
//! Encryption is a KDF stream (GB/T 32918.4 KDF over SM3) XOR `d1`, authenticated with
//! HMAC-SM3 over the header and ciphertext, under a fresh random salt per sealing.
//! Design and threat model: `docs/crypto/cosign.md`.

use crate::ec::{self, DOMAIN};
use crate::error::{Error, Result};
use crate::share::{ClientKeyShare, JointPublic};
use crate::wire::{Hex, PROTOCOL_VERSION, WirePoint, check_version};
use hmac::{KeyInit, Mac};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sm2::elliptic_curve::{
    Field,
    ff::PrimeField,
    hazmat::FieldArithmetic,
    subtle::{Choice, ConditionallyNegatable, ConditionallySelectable},
};
use sm2::{AffinePoint, NonZeroScalar, ProjectivePoint, Scalar, Sm2};
use sm3::{Digest as _, Sm3};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type Fe = <Sm2 as FieldArithmetic>::FieldElement;
type HmacSm3 = hmac::Hmac<Sm3>;

/// Domain separation tag for hash-to-curve (RFC 9380 §3.1).
const H2C_DST: &[u8] = b"YIQIAN-SM2-COSIGN-V1-OPRF-SM2_XMD:SM3_SSWU_RO_";

// ---- hash to curve (RFC 9380) -------------------------------------------------------------

/// expand_message_xmd (RFC 9380 §5.3.1) with SM3 (b_in_bytes = 32, s_in_bytes = 64).
fn expand_message_xmd(msg: &[&[u8]], dst: &[u8], out: &mut [u8]) -> Result<()> {
    let ell = out.len().div_ceil(32);
    let len = u16::try_from(out.len()).map_err(|_| Error::Internal("xmd length"))?;
    let dst_len = u8::try_from(dst.len()).map_err(|_| Error::Internal("xmd dst"))?;
    if ell > 255 {
        return Err(Error::Internal("xmd length"));
    }
    let mut h = Sm3::new();
    h.update([0u8; 64]); // Z_pad
    for m in msg {
        h.update(m);
    }
    h.update(len.to_be_bytes());
    h.update([0u8]);
    h.update(dst);
    h.update([dst_len]);
    let b0: [u8; 32] = h.finalize().into();
    let mut prev = [0u8; 32];
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut h = Sm3::new();
        let mut x = b0;
        if i > 0 {
            for (a, b) in x.iter_mut().zip(prev.iter()) {
                *a ^= b;
            }
        }
        h.update(x);
        h.update([u8::try_from(i + 1).map_err(|_| Error::Internal("xmd counter"))?]);
        h.update(dst);
        h.update([dst_len]);
        prev = h.finalize().into();
        chunk.copy_from_slice(
            prev.get(..chunk.len())
                .ok_or(Error::Internal("xmd chunk"))?,
        );
    }
    Ok(())
}

/// 48 uniform bytes → field element (hi·2¹⁹² + lo, both halves < 2¹⁹² < p).
fn fe_from_wide(bytes: &[u8; 48]) -> Result<Fe> {
    let (hi, lo) = bytes.split_at(24);
    let mut hb = [0u8; 32];
    let mut lb = [0u8; 32];
    hb.get_mut(8..)
        .ok_or(Error::Internal("fe"))?
        .copy_from_slice(hi);
    lb.get_mut(8..)
        .ok_or(Error::Internal("fe"))?
        .copy_from_slice(lo);
    let mut shift = [0u8; 32];
    *shift.get_mut(7).ok_or(Error::Internal("fe"))? = 1; // 2^192
    let f =
        |b: [u8; 32]| Option::<Fe>::from(Fe::from_repr(b.into())).ok_or(Error::Internal("fe repr"));
    Ok(f(hb)? * f(shift)? + f(lb)?)
}

fn curve_a() -> Fe {
    -Fe::from(3u64)
}

fn curve_b() -> Result<Fe> {
    let b = hex_literal_b();
    Option::<Fe>::from(Fe::from_repr(b.into())).ok_or(Error::Internal("b"))
}

fn hex_literal_b() -> [u8; 32] {
    [
        0x28, 0xE9, 0xFA, 0x9E, 0x9D, 0x9F, 0x5E, 0x34, 0x4D, 0x5A, 0x9E, 0x4B, 0xCF, 0x65, 0x09,
        0xA7, 0xF3, 0x97, 0x89, 0xF5, 0x15, 0xAB, 0x8F, 0x92, 0xDD, 0xBC, 0xBD, 0x41, 0x4D, 0x94,
        0x0E, 0x93,
    ]
}

/// Simplified SWU map (RFC 9380 §6.6.2) for y² = x³ + Ax + B with Z = −9 (found with the
/// procedure of RFC 9380 Appendix H.2; the same procedure gives Z = −10 for P-256).
/// Constant time: both square roots are computed and selected.
fn map_to_curve_sswu(u: &Fe) -> Result<AffinePoint> {
    let a = curve_a();
    let b = curve_b()?;
    let z = -Fe::from(9u64);
    let u2 = u.square();
    let tv1 = z.square() * u2.square() + z * u2;
    let tv1_is_zero = tv1.is_zero();
    let inv_tv1 = tv1.invert().unwrap_or(Fe::ZERO); // inv0, constant time
    let a_inv = Option::<Fe>::from(a.invert()).ok_or(Error::Internal("A inverse"))?;
    let za_inv = Option::<Fe>::from((z * a).invert()).ok_or(Error::Internal("ZA inverse"))?;
    let x1_generic = -b * a_inv * (Fe::ONE + inv_tv1);
    let x1_exceptional = b * za_inv;
    let x1 = Fe::conditional_select(&x1_generic, &x1_exceptional, tv1_is_zero);
    let gx1 = x1.square() * x1 + a * x1 + b;
    let x2 = z * u2 * x1;
    let gx2 = x2.square() * x2 + a * x2 + b;
    let y1 = gx1.sqrt();
    let y2 = gx2.sqrt();
    let is_sq1: Choice = y1.is_some();
    let x = Fe::conditional_select(&x2, &x1, is_sq1);
    let mut y = Fe::conditional_select(&y2.unwrap_or(Fe::ZERO), &y1.unwrap_or(Fe::ZERO), is_sq1);
    // sgn0(u) == sgn0(y)
    let flip = u.is_odd() ^ y.is_odd();
    y.conditional_negate(flip);
    let mut enc = [0u8; 65];
    enc[0] = 4;
    enc.get_mut(1..33)
        .ok_or(Error::Internal("enc"))?
        .copy_from_slice(&x.to_repr());
    enc.get_mut(33..)
        .ok_or(Error::Internal("enc"))?
        .copy_from_slice(&y.to_repr());
    ec::decode_point(&enc, "hash-to-curve").map_err(|_| Error::Internal("SSWU left the curve"))
}

/// hash_to_curve (RFC 9380 §3, random-oracle encoding) onto SM2.
pub fn hash_to_curve(msg: &[&[u8]], dst: &[u8]) -> Result<ProjectivePoint> {
    let mut uniform = Zeroizing::new([0u8; 96]);
    expand_message_xmd(msg, dst, uniform.as_mut_slice())?;
    let (a, b) = uniform.split_at(48);
    let a: &[u8; 48] = a.try_into().map_err(|_| Error::Internal("h2c"))?;
    let b: &[u8; 48] = b.try_into().map_err(|_| Error::Internal("h2c"))?;
    let p = ProjectivePoint::from(map_to_curve_sswu(&fe_from_wide(a)?)?)
        + ProjectivePoint::from(map_to_curve_sswu(&fe_from_wide(b)?)?);
    Ok(p)
}

fn pin_point(context: &[u8], pin: &[u8]) -> Result<ProjectivePoint> {
    let cl = u32::try_from(context.len()).map_err(|_| Error::ApiMisuse("context too long"))?;
    let pl = u32::try_from(pin.len()).map_err(|_| Error::ApiMisuse("PIN too long"))?;
    hash_to_curve(
        &[&cl.to_be_bytes(), context, &pl.to_be_bytes(), pin],
        H2C_DST,
    )
}

// ---- OPRF ---------------------------------------------------------------------------------

/// Client → server: the blinded PIN point `r·H2C(ctx ‖ PIN)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OprfRequest {
    /// Protocol version.
    pub version: u16,
    /// The blinded element.
    pub blinded: WirePoint,
}

/// Server → client: `k·blinded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OprfResponse {
    /// Protocol version.
    pub version: u16,
    /// The evaluated element.
    pub evaluated: WirePoint,
}

/// The server's per-user OPRF key `k` (secret; keep it in the crypto device or wrapped).
#[derive(Clone, ZeroizeOnDrop)]
pub struct OprfKey {
    k: NonZeroScalar,
}

impl core::fmt::Debug for OprfKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OprfKey(<redacted>)")
    }
}

impl OprfKey {
    /// A fresh random key.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        Ok(Self {
            k: ec::random_nonzero(rng)?,
        })
    }

    /// Serializes the key (secret!).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(ec::scalar_to_bytes(&self.k))
    }

    /// Parses a key written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        Ok(Self {
            k: ec::decode_nonzero(bytes, "OPRF key")?,
        })
    }

    /// Evaluates the OPRF on a blinded element. The caller must have charged the attempt
    /// with [`AttemptCounter::begin`] first.
    pub fn evaluate(&self, req: &OprfRequest) -> Result<OprfResponse> {
        check_version(req.version)?;
        let b = ec::decode_point(&req.blinded.0, "blinded PIN")?;
        let e = ec::proj_to_affine_nonidentity(
            &(ProjectivePoint::from(b) * *self.k),
            "OPRF evaluation",
        )?;
        Ok(OprfResponse {
            version: PROTOCOL_VERSION,
            evaluated: Hex(ec::encode_point(&e)),
        })
    }
}

/// Client state between [`OprfClient::blind`] and [`OprfClient::finalize`]: the blind and
/// the PIN, erased on drop.
#[derive(ZeroizeOnDrop)]
pub struct OprfClient {
    r: NonZeroScalar,
    pin: Zeroizing<Vec<u8>>,
    #[zeroize(skip)]
    context: Vec<u8>,
}

impl core::fmt::Debug for OprfClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OprfClient(<redacted>)")
    }
}

/// The 32-byte key that seals / opens `d1`. Secret; erased on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct UnlockKey([u8; 32]);

impl core::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UnlockKey(<redacted>)")
    }
}

impl OprfClient {
    /// Blinds `H2C(context ‖ pin)`. `context` binds the PIN to one user and device (e.g.
    /// `"<hospital>/<staff id>/<device id>"`), so an evaluation cannot serve another account.
    pub fn blind<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        context: &[u8],
        pin: &[u8],
    ) -> Result<(Self, OprfRequest)> {
        let h = pin_point(context, pin)?;
        let r = ec::random_nonzero(rng)?;
        let b = ec::proj_to_affine_nonidentity(&(h * *r), "blinded PIN")?;
        let req = OprfRequest {
            version: PROTOCOL_VERSION,
            blinded: Hex(ec::encode_point(&b)),
        };
        Ok((
            Self {
                r,
                pin: Zeroizing::new(pin.to_vec()),
                context: context.to_vec(),
            },
            req,
        ))
    }

    /// Unblinds `r⁻¹·k·r·H = k·H` and derives the unlock key.
    pub fn finalize(self, resp: &OprfResponse) -> Result<UnlockKey> {
        check_version(resp.version)?;
        let e = ec::decode_point(&resp.evaluated.0, "OPRF evaluation")?;
        let r_inv: Scalar =
            Option::from(self.r.invert()).ok_or(Error::Internal("blind inverse"))?;
        let u = ec::proj_to_affine_nonidentity(&(ProjectivePoint::from(e) * r_inv), "OPRF output")?;
        let mut h = Sm3::new();
        for part in [
            DOMAIN,
            b"oprf-finalize".as_slice(),
            &self.context,
            &self.pin,
            &ec::encode_point(&u),
        ] {
            h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part);
        }
        Ok(UnlockKey(h.finalize().into()))
    }
}

// ---- sealing ------------------------------------------------------------------------------

/// `d1` sealed under an [`UnlockKey`], with the share's public values in clear. Safe to
/// store on the device and to back up: opening it needs the PIN *and* the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedShare {
    /// Format version.
    pub version: u16,
    /// Random salt, fresh per sealing.
    pub salt: Hex<32>,
    /// Public values: P ‖ P1 ‖ P2 ‖ epoch.
    pub public: Hex<199>,
    /// `d1 ⊕ KDF(K, salt)`.
    pub ciphertext: Hex<32>,
    /// HMAC-SM3 over version, salt, public values and ciphertext.
    pub tag: Hex<32>,
}

/// KDF of GB/T 32918.4 §5.4.3: `SM3(Z ‖ ct)` for ct = 1, 2, … (32-bit big-endian).
fn kdf(z: &[&[u8]], out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut h = Sm3::new();
        for part in z {
            h.update(part);
        }
        h.update(u32::try_from(i + 1).unwrap_or(u32::MAX).to_be_bytes());
        let block: [u8; 32] = h.finalize().into();
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o = *b;
        }
    }
}

fn seal_keys(key: &UnlockKey, salt: &[u8; 32]) -> Zeroizing<[u8; 64]> {
    let mut ks = Zeroizing::new([0u8; 64]);
    kdf(&[DOMAIN, b"seal-d1", &key.0, salt], ks.as_mut_slice());
    ks
}

fn seal_tag(mac_key: &[u8], s: &SealedShare) -> Result<HmacSm3> {
    let mut mac =
        <HmacSm3 as KeyInit>::new_from_slice(mac_key).map_err(|_| Error::Internal("hmac key"))?;
    mac.update(DOMAIN);
    mac.update(b"sealed-share");
    mac.update(&s.version.to_be_bytes());
    mac.update(&s.salt.0);
    mac.update(&s.public.0);
    mac.update(&s.ciphertext.0);
    Ok(mac)
}

/// Seals `share` under `key` with a fresh salt.
pub fn seal_share<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    key: &UnlockKey,
    share: &ClientKeyShare,
) -> Result<SealedShare> {
    let mut salt = [0u8; 32];
    rng.try_fill_bytes(&mut salt).map_err(|_| Error::Rng)?;
    let ks = seal_keys(key, &salt);
    let (pad, mac_key) = ks.split_at(32);
    let mut ct = ec::scalar_to_bytes(&share.d1);
    for (c, p) in ct.iter_mut().zip(pad.iter()) {
        *c ^= p;
    }
    let mut public = [0u8; 199];
    let bytes = share.to_bytes();
    public.copy_from_slice(bytes.get(33..).ok_or(Error::Internal("share bytes"))?);
    let mut sealed = SealedShare {
        version: PROTOCOL_VERSION,
        salt: Hex(salt),
        public: Hex(public),
        ciphertext: Hex(ct),
        tag: Hex([0; 32]),
    };
    sealed.tag = Hex(seal_tag(mac_key, &sealed)?.finalize().into_bytes().into());
    Ok(sealed)
}

/// Opens a sealed share: [`Error::WrongPin`] if the key is wrong (checked in constant time
/// before anything is decrypted).
pub fn open_share(key: &UnlockKey, sealed: &SealedShare) -> Result<ClientKeyShare> {
    check_version(sealed.version)?;
    let ks = seal_keys(key, &sealed.salt.0);
    let (pad, mac_key) = ks.split_at(32);
    seal_tag(mac_key, sealed)?
        .verify_slice(&sealed.tag.0)
        .map_err(|_| Error::WrongPin)?;
    let mut d = Zeroizing::new(sealed.ciphertext.0);
    for (c, p) in d.iter_mut().zip(pad.iter()) {
        *c ^= p;
    }
    let d1 = ec::decode_nonzero(&d, "sealed share")?;
    let public = JointPublic::read_bytes(&sealed.public.0)?;
    ClientKeyShare::from_parts(d1, public)
}

// ---- server-side attempt counting ---------------------------------------------------------

/// Server-side PIN attempt counter, stored per user (serde). Every OPRF evaluation is
/// charged as a failure *before* it happens; a co-signature that verifies afterwards proves
/// the PIN was right and resets the count. Pure logic: the server persists it atomically
/// with the evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCounter {
    /// Evaluations not (yet) followed by a successful co-signature.
    pub failures: u32,
}

impl AttemptCounter {
    /// Charges one attempt; [`Error::Locked`] once `max_failures` unconfirmed evaluations
    /// have been served (the account then needs re-enrolment by an administrator).
    pub fn begin(&mut self, max_failures: u32) -> Result<()> {
        if max_failures == 0 {
            return Err(Error::ApiMisuse("max_failures must be at least 1"));
        }
        if self.failures >= max_failures {
            return Err(Error::Locked);
        }
        self.failures = self.failures.saturating_add(1);
        Ok(())
    }

    /// The PIN was right (a co-signature verified): reset.
    pub fn success(&mut self) {
        self.failures = 0;
    }

    /// Attempts left before lock-out.
    pub fn remaining(&self, max_failures: u32) -> u32 {
        max_failures.saturating_sub(self.failures)
    }
}
