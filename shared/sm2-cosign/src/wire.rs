//! Wire encodings shared by the protocol messages (serde; JSON-friendly lower-case hex).
//!
//! Stability: version [`PROTOCOL_VERSION`] messages stay decodable by later releases;
//! fields are only added in a new version.

use crate::error::{Error, Result};
use core::fmt;
use rand_core::TryCryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Version carried by every message; receivers refuse any other.
pub const PROTOCOL_VERSION: u16 = 1;

pub(crate) fn check_version(v: u16) -> Result<()> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion(v))
    }
}

/// Fixed-length bytes that serialize as a hex string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

/// A SEC1 uncompressed point on the wire (validated when used).
pub type WirePoint = Hex<65>;
/// A big-endian scalar on the wire (validated when used).
pub type WireScalar = Hex<32>;

/// A random 128-bit session identifier. Every proof and message is bound to one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub Hex<16>);

impl SessionId {
    /// A fresh random session id.
    pub fn random<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        let mut b = [0u8; 16];
        rng.try_fill_bytes(&mut b).map_err(|_| Error::Rng)?;
        Ok(Self(Hex(b)))
    }

    /// A fresh random session id from the OS CSPRNG.
    pub fn random_os() -> Result<Self> {
        Self::random(&mut crate::OsRng)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:?})", self.0)
    }
}

pub(crate) fn check_session(expected: &SessionId, got: &SessionId) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::SessionMismatch)
    }
}
