//! Key shares: the client's `d1`, the server's `d2`, and the public values both hold.
//!
//! Shares are secret: `Debug` prints only public values, memory is zeroized on drop, and
//! there is deliberately no serde implementation. Use `to_bytes` / `from_bytes` to persist
//! (the phone seals the bytes with [`crate::seal`]; the server wraps them in its crypto
//! device), and `from_bytes` re-checks the share against its public values.

use crate::arith;
use crate::ec::{self, POINT_LEN};
use crate::error::{Error, Result};
use sm2::{AffinePoint, NonZeroScalar, PublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const SHARE_FORMAT_CLIENT: u8 = 0xC1;
const SHARE_FORMAT_SERVER: u8 = 0x51;
const SHARE_LEN: usize = 1 + 32 + 3 * POINT_LEN + 4;

/// The public values of a two-party key: the joint key `P` and the two share points
/// `P1 = d1⁻¹·G`, `P2 = d2⁻¹·G`, and the share epoch (0 after key generation, +1 per
/// [refresh](crate::refresh); `P` never changes, `P1` and `P2` do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JointPublic {
    pub(crate) public_key: PublicKey,
    pub(crate) p1: AffinePoint,
    pub(crate) p2: AffinePoint,
    pub(crate) epoch: u32,
}

impl JointPublic {
    /// `P = d1⁻¹·P2 − G` computed from `d1` (client side, keygen step "compute P").
    pub(crate) fn derive_client(
        d1: &NonZeroScalar,
        p1: AffinePoint,
        p2: AffinePoint,
        epoch: u32,
    ) -> Result<Self> {
        let d1_inv = ec::invert_scalar(d1).ok_or(Error::Internal("d1 inverse"))?;
        let p = ec::mul(&d1_inv, &p2)?.add_complete(&arith::minus_g());
        let public_key = ec::to_affine_nonidentity(&p, "joint public key")?;
        let public_key = PublicKey::from_affine(public_key).map_err(|_| Error::InvalidPoint {
            what: "joint public key",
        })?;
        Ok(Self {
            public_key,
            p1,
            p2,
            epoch,
        })
    }

    /// `P = d2⁻¹·P1 − G` computed from `d2` (server side).
    pub(crate) fn derive_server(
        d2: &NonZeroScalar,
        p1: AffinePoint,
        p2: AffinePoint,
        epoch: u32,
    ) -> Result<Self> {
        let d2_inv = ec::invert_scalar(d2).ok_or(Error::Internal("d2 inverse"))?;
        let p = ec::mul(&d2_inv, &p1)?.add_complete(&arith::minus_g());
        let public_key = ec::to_affine_nonidentity(&p, "joint public key")?;
        let public_key = PublicKey::from_affine(public_key).map_err(|_| Error::InvalidPoint {
            what: "joint public key",
        })?;
        Ok(Self {
            public_key,
            p1,
            p2,
            epoch,
        })
    }

    /// The joint SM2 public key `P`.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The joint public key as an affine point.
    pub fn public_point(&self) -> &AffinePoint {
        self.public_key.as_affine()
    }

    /// The client's share point `P1 = d1⁻¹·G`.
    pub fn p1(&self) -> &AffinePoint {
        &self.p1
    }

    /// The server's share point `P2 = d2⁻¹·G`.
    pub fn p2(&self) -> &AffinePoint {
        &self.p2
    }

    /// The share epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// `P` as SEC1 uncompressed bytes (65 bytes).
    pub fn public_key_bytes(&self) -> [u8; POINT_LEN] {
        ec::encode_point(self.public_key.as_affine())
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&ec::encode_point(self.public_key.as_affine()));
        out.extend_from_slice(&ec::encode_point(&self.p1));
        out.extend_from_slice(&ec::encode_point(&self.p2));
        out.extend_from_slice(&self.epoch.to_be_bytes());
    }

    pub(crate) fn read_bytes(bytes: &[u8]) -> Result<Self> {
        Self::read(bytes)
    }

    fn read(bytes: &[u8]) -> Result<Self> {
        let (points, epoch) = bytes
            .split_at_checked(3 * POINT_LEN)
            .ok_or(Error::Malformed { what: "key share" })?;
        let epoch: [u8; 4] = epoch
            .try_into()
            .map_err(|_| Error::Malformed { what: "key share" })?;
        let mut chunks = points.chunks_exact(POINT_LEN);
        let mut next = |what| -> Result<AffinePoint> {
            let c: &[u8; POINT_LEN] = chunks
                .next()
                .and_then(|c| c.try_into().ok())
                .ok_or(Error::Malformed { what: "key share" })?;
            ec::decode_point(c, what)
        };
        let public_key =
            PublicKey::from_affine(next("P")?).map_err(|_| Error::InvalidPoint { what: "P" })?;
        Ok(Self {
            public_key,
            p1: next("P1")?,
            p2: next("P2")?,
            epoch: u32::from_be_bytes(epoch),
        })
    }
}

fn encode_share(tag: u8, d: &NonZeroScalar, public: &JointPublic) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(SHARE_LEN));
    out.push(tag);
    let mut d_bytes = ec::scalar_to_bytes(d);
    out.extend_from_slice(&d_bytes);
    d_bytes.zeroize();
    public.write(&mut out);
    out
}

fn decode_share(tag: u8, bytes: &[u8]) -> Result<(NonZeroScalar, JointPublic)> {
    if bytes.len() != SHARE_LEN || bytes.first() != Some(&tag) {
        return Err(Error::Malformed { what: "key share" });
    }
    let d_bytes: &[u8; 32] = bytes
        .get(1..33)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Malformed { what: "key share" })?;
    let d = ec::decode_nonzero(d_bytes, "key share scalar")?;
    let public = JointPublic::read(
        bytes
            .get(33..)
            .ok_or(Error::Malformed { what: "key share" })?,
    )?;
    Ok((d, public))
}

/// Checks `d⁻¹·G = expected` (constant-time fixed-base multiplication).
fn check_share_point(d: &NonZeroScalar, expected: &AffinePoint) -> Result<()> {
    let inv = ec::invert_scalar(d).ok_or(Error::Internal("share inverse"))?;
    if ec::to_affine_nonidentity(&ec::mul_g(&inv), "share point").ok() == Some(*expected) {
        Ok(())
    } else {
        Err(Error::ShareMismatch)
    }
}

/// The phone's share `d1` with the public values.
#[derive(Clone, ZeroizeOnDrop)]
pub struct ClientKeyShare {
    pub(crate) d1: NonZeroScalar,
    #[zeroize(skip)]
    pub(crate) public: JointPublic,
}

impl ClientKeyShare {
    /// Builds a share from `d1` and public values, checking `d1⁻¹·G = P1` and
    /// `P = d1⁻¹·P2 − G` ([`Error::ShareMismatch`] for a wrong `d1`).
    pub fn from_parts(d1: NonZeroScalar, public: JointPublic) -> Result<Self> {
        check_share_point(&d1, &public.p1)?;
        let again = JointPublic::derive_client(&d1, public.p1, public.p2, public.epoch)?;
        if again != public {
            return Err(Error::ShareMismatch);
        }
        Ok(Self { d1, public })
    }

    /// The public values.
    pub fn public(&self) -> &JointPublic {
        &self.public
    }

    /// Serializes the share (secret!): format byte ‖ d1 ‖ P ‖ P1 ‖ P2.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        encode_share(SHARE_FORMAT_CLIENT, &self.d1, &self.public)
    }

    /// Parses and re-checks a share written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (d1, public) = decode_share(SHARE_FORMAT_CLIENT, bytes)?;
        Self::from_parts(d1, public)
    }
}

impl core::fmt::Debug for ClientKeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientKeyShare")
            .field("d1", &"<redacted>")
            .field("public", &self.public)
            .finish()
    }
}

/// The server's share `d2` with the public values.
#[derive(Clone, ZeroizeOnDrop)]
pub struct ServerKeyShare {
    pub(crate) d2: NonZeroScalar,
    #[zeroize(skip)]
    pub(crate) public: JointPublic,
}

impl ServerKeyShare {
    /// Builds a share from `d2` and public values, checking `d2⁻¹·G = P2` and
    /// `P = d2⁻¹·P1 − G`.
    pub fn from_parts(d2: NonZeroScalar, public: JointPublic) -> Result<Self> {
        check_share_point(&d2, &public.p2)?;
        let again = JointPublic::derive_server(&d2, public.p1, public.p2, public.epoch)?;
        if again != public {
            return Err(Error::ShareMismatch);
        }
        Ok(Self { d2, public })
    }

    /// The public values.
    pub fn public(&self) -> &JointPublic {
        &self.public
    }

    /// Serializes the share (secret!): format byte ‖ d2 ‖ P ‖ P1 ‖ P2.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        encode_share(SHARE_FORMAT_SERVER, &self.d2, &self.public)
    }

    /// Parses and re-checks a share written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (d2, public) = decode_share(SHARE_FORMAT_SERVER, bytes)?;
        Self::from_parts(d2, public)
    }
}

impl core::fmt::Debug for ServerKeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeyShare")
            .field("d2", &"<redacted>")
            .field("public", &self.public)
            .finish()
    }
}
