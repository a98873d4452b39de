//! SM2 signing through a trait, so that keys can live in a crypto device or be split between
//! two parties; verification helpers with a configurable distinguishing ID.
//!
//! GM/T 0003.2 §6.1: `Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)`,
//! `e = SM3(Z_A || M)`. Every signature in this crate is over `e` computed that way.

use crate::error::{Error, Result};
use crate::oid;
use der::Encode;
use der::asn1::BitString;
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::{PublicKey, dsa};
use sm3::{Digest, Sm3};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The SM2 distinguishing identifier used when nothing else is configured (GM/T 0009).
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// `Z_A` for a public key and distinguishing ID (GM/T 0003.2 §5.5).
pub fn z_value(distid: &str, public_key: &PublicKey) -> Result<[u8; 32]> {
    // One Z implementation for the whole project: sm2-cosign's, checked against the GB/T 32918.5 example.
    sm2_cosign::plain::compute_z(distid.as_bytes(), public_key.as_affine())
        .map_err(|e| Error::InvalidArgument(format!("SM2 Z value: {e}")))
}

/// `e = SM3(Z_A || msg)`: the value an SM2 signature actually signs.
pub fn message_hash(distid: &str, public_key: &PublicKey, msg: &[u8]) -> Result<[u8; 32]> {
    let z = z_value(distid, public_key)?;
    let mut h = Sm3::new();
    h.update(z);
    h.update(msg);
    Ok(h.finalize().into())
}

/// SM3 of some bytes.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// A holder of an SM2 private key: software, a GM/T 0018 device, or a two-party protocol.
///
/// `sign` receives the to-be-signed bytes (a DER TBSCertificate, the SET OF signed attributes...)
/// and must return an SM2 signature over `SM3(Z(distid, public_key) || tbs)`.
pub trait Sm2Signer {
    /// The public key matching the private key.
    fn public_key(&self) -> PublicKey;

    /// The distinguishing ID the signer uses for `Z`. Default `1234567812345678`.
    fn distid(&self) -> &str {
        DEFAULT_DISTID
    }

    /// Sign `tbs` (the signer hashes it with `Z` itself).
    fn sign(&self, tbs: &[u8]) -> Result<dsa::Signature>;
}

/// A software key: RustCrypto `sm2::dsa::SigningKey` (deterministic RFC 6979-style nonces).
#[derive(Clone)]
pub struct SoftwareSigner {
    key: dsa::SigningKey,
    public: PublicKey,
    distid: String,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("public", &self.public)
            .field("distid", &self.distid)
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    /// Wrap a secret key, using the default distinguishing ID.
    pub fn new(secret: &sm2::SecretKey) -> Result<Self> {
        Self::with_distid(secret, DEFAULT_DISTID)
    }

    /// Wrap a secret key with a specific distinguishing ID.
    pub fn with_distid(secret: &sm2::SecretKey, distid: &str) -> Result<Self> {
        let key = dsa::SigningKey::new(distid, secret)
            .map_err(|_| Error::InvalidArgument("unusable SM2 secret key or ID".into()))?;
        Ok(Self {
            key,
            public: secret.public_key(),
            distid: distid.to_owned(),
        })
    }

    /// A fresh random key.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Result<Self> {
        use sm2::elliptic_curve::Generate;
        Self::new(&sm2::SecretKey::generate_from_rng(rng))
    }

    /// Load from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm SM2`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        use sm2::pkcs8::DecodePrivateKey;
        let secret = sm2::SecretKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::malformed("PKCS#8 private key", e))?;
        Self::new(&secret)
    }

    /// Export as PKCS#8 PEM (test CA, fixtures). Handle the result as a secret.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        use sm2::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = sm2::SecretKey::from(self.key.as_nonzero_scalar());
        secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|_| Error::Internal("PKCS#8 encoding failed"))
    }
}

impl Sm2Signer for SoftwareSigner {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn distid(&self) -> &str {
        &self.distid
    }

    fn sign(&self, tbs: &[u8]) -> Result<dsa::Signature> {
        use sm2::dsa::signature::hazmat::PrehashSigner;
        let e = message_hash(&self.distid, &self.public, tbs)?;
        self.key
            .sign_prehash(&e)
            .map_err(|_| Error::Signer("software SM2 signing failed".into()))
    }
}

/// Sign and return the DER `SEQUENCE { r, s }` form used in certificates and CMS.
pub fn sign_der(signer: &dyn Sm2Signer, tbs: &[u8]) -> Result<Vec<u8>> {
    let sig = signer.sign(tbs)?;
    Ok(sig.to_der().as_bytes().to_vec())
}

/// Verify a DER-encoded SM2 signature over `msg` with `distid`.
pub fn verify_der(public_key: &PublicKey, distid: &str, msg: &[u8], sig_der: &[u8]) -> Result<()> {
    let sig = dsa::Signature::from_der(sig_der)
        .map_err(|_| Error::BadSignature("SM2 signature value is not a valid DER (r, s)"))?;
    verify(public_key, distid, msg, &sig)
}

/// Verify an SM2 signature over `msg` with `distid`.
///
/// The arithmetic is `sm2-cosign`'s (GB/T 32918.2 §7.1 B1–B7 with its own field code and
/// per-key tables, proptested against the `sm2` crate): about a fifth of the `sm2` crate's
/// instructions, and every CMS, time-stamp and certificate check in the server goes through here.
pub fn verify(
    public_key: &PublicKey,
    distid: &str,
    msg: &[u8],
    sig: &dsa::Signature,
) -> Result<()> {
    let e = message_hash(distid, public_key, msg)?;
    sm2_cosign::plain::verify_digest(
        public_key.as_affine(),
        &sm2_cosign::plain::Digest::from_bytes(e),
        sig,
    )
    .map_err(|_| Error::BadSignature("SM2 signature does not verify"))
}

/// `AlgorithmIdentifier { SM3withSM2 }` (no parameters) for certificates, CRLs, CSRs, OCSP.
pub fn sm3_with_sm2_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SM3_WITH_SM2,
        parameters: None,
    }
}

/// Check an AlgorithmIdentifier names SM3withSM2 (or the bare SM2 signature OID some CAs use).
pub fn check_sm2_sig_alg(alg: &AlgorithmIdentifierOwned) -> Result<()> {
    if alg.oid == oid::SM3_WITH_SM2 || alg.oid == oid::SM2_SIGN {
        Ok(())
    } else {
        Err(Error::UnsupportedAlgorithm(format!(
            "signature algorithm {} (only SM3withSM2)",
            alg.oid
        )))
    }
}

/// SubjectPublicKeyInfo for an SM2 key: `id-ecPublicKey` with the SM2 curve OID, uncompressed point.
pub fn spki_for(public_key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned> {
    let point = public_key.as_affine().to_sec1_point(false);
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(der::Any::encode_from(&oid::SM2)?),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes())?,
    })
}

/// The SM2 public key inside a SubjectPublicKeyInfo (accepts `id-ecPublicKey` + SM2 curve, and
/// the bare SM2 OID some issuers use as the algorithm).
pub fn public_key_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey> {
    let ok = if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        match &spki.algorithm.parameters {
            Some(p) => p.decode_as::<const_oid::ObjectIdentifier>().ok() == Some(oid::SM2),
            None => false,
        }
    } else {
        spki.algorithm.oid == oid::SM2
    };
    if !ok {
        return Err(Error::UnsupportedAlgorithm(format!(
            "public key algorithm {} (only SM2)",
            spki.algorithm.oid
        )));
    }
    let bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::malformed("SM2 public key", "unused bits in key BIT STRING"))?;
    PublicKey::from_sec1_bytes(bytes)
        .map_err(|_| Error::malformed("SM2 public key", "not a point on the SM2 curve"))
}

/// The SPKI DER of a public key (e.g. for `openssl pkeyutl -pubin`).
pub fn public_key_der(public_key: &PublicKey) -> Result<Vec<u8>> {
    Ok(spki_for(public_key)?.to_der()?)
}

/// The SPKI PEM of a public key.
pub fn public_key_pem(public_key: &PublicKey) -> Result<String> {
    Ok(crate::pem_encode(
        "PUBLIC KEY",
        &public_key_der(public_key)?,
    ))
}
