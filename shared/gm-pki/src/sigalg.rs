//! Signer keys beyond SM2, for verifying CMS signatures that other producers made (a PDF signed
//! elsewhere): ECDSA on NIST P-256 and RSA PKCS#1 v1.5, both with SHA-256. Everything this
//! crate *issues* stays SM2; these are verification-only, except the P-256 software signer
//! used for the ECDSA PDF signing variant (`doc-sign`).

use crate::cms::HashAlg;
use crate::error::{Error, Result};
use crate::oid;
use der::{Decode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The public key of a certificate, in one of the algorithms CMS verification accepts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignerKey {
    /// SM2 (`id-ecPublicKey` + SM2 curve, or the bare SM2 OID).
    Sm2(sm2::PublicKey),
    /// ECDSA on NIST P-256 (`id-ecPublicKey` + prime256v1).
    P256(p256::PublicKey),
    /// RSA (`rsaEncryption`), 1024 to 4096 bits.
    Rsa(rsa::RsaPublicKey),
}

/// RSAPublicKey (RFC 8017 A.1.1).
#[derive(Sequence)]
struct RsaPublicKeyDer {
    modulus: der::asn1::Uint,
    public_exponent: der::asn1::Uint,
}

/// DigestInfo prefix of SHA-256 for PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl SignerKey {
    /// The key inside a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self> {
        let bytes = || {
            spki.subject_public_key
                .as_bytes()
                .ok_or_else(|| Error::malformed("public key", "unused bits in key BIT STRING"))
        };
        if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
            if curve == Some(oid::P256) {
                return p256::PublicKey::from_sec1_bytes(bytes()?)
                    .map(Self::P256)
                    .map_err(|_| Error::malformed("P-256 public key", "not a point on P-256"));
            }
        }
        if spki.algorithm.oid == oid::RSA_ENCRYPTION {
            let k = RsaPublicKeyDer::from_der(bytes()?)
                .map_err(|e| Error::malformed("RSA public key", e))?;
            let n = rsa::BigUint::from_bytes_be(k.modulus.as_bytes());
            if n.bits() < 1024 {
                return Err(Error::UnsupportedAlgorithm(format!(
                    "RSA key of {} bits (at least 1024)",
                    n.bits()
                )));
            }
            let e = rsa::BigUint::from_bytes_be(k.public_exponent.as_bytes());
            return rsa::RsaPublicKey::new(n, e)
                .map(Self::Rsa)
                .map_err(|e| Error::malformed("RSA public key", e));
        }
        crate::signer::public_key_from_spki(spki)
            .map(Self::Sm2)
            .map_err(|_| {
                Error::UnsupportedAlgorithm(format!(
                    "public key algorithm {} (SM2, ECDSA P-256 or RSA)",
                    spki.algorithm.oid
                ))
            })
    }

    /// A short name: `SM2`, `ECDSA P-256`, `RSA`.
    pub fn algorithm_name(&self) -> &'static str {
        match self {
            Self::Sm2(_) => "SM2",
            Self::P256(_) => "ECDSA P-256",
            Self::Rsa(_) => "RSA",
        }
    }
}

/// Whether a SignerInfo with `signature_alg` and `digest_alg` can be verified with `key`.
pub(crate) fn check_cms_algorithms(
    key: &SignerKey,
    signature_alg: &AlgorithmIdentifierOwned,
    digest_alg: HashAlg,
) -> Result<()> {
    let alg = signature_alg.oid;
    let ok = match key {
        SignerKey::Sm2(_) => alg == oid::SM2_SIGN || alg == oid::SM3_WITH_SM2 || alg == oid::SM2,
        // ecdsa-with-SHA256, or the bare id-ecPublicKey some producers write (the hash is then
        // the SignerInfo's digest algorithm).
        SignerKey::P256(_) => {
            alg == oid::ECDSA_WITH_SHA256
                || (alg == oid::EC_PUBLIC_KEY && digest_alg == HashAlg::Sha256)
        }
        SignerKey::Rsa(_) => {
            alg == oid::SHA256_WITH_RSA
                || (alg == oid::RSA_ENCRYPTION && digest_alg == HashAlg::Sha256)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::UnsupportedAlgorithm(format!(
            "signature algorithm {alg} with digest {} for a {} key",
            digest_alg.oid(),
            key.algorithm_name()
        )))
    }
}

/// Verify a CMS SignerInfo signature value `sig` over `msg` (the DER signed attributes, or the
/// content when there are none) with `key`, for the SignerInfo's `signature_alg` and
/// `digest_alg`. SM2 uses the default distinguishing ID, as before.
pub(crate) fn verify_cms_signature(
    key: &SignerKey,
    signature_alg: &AlgorithmIdentifierOwned,
    digest_alg: HashAlg,
    msg: &[u8],
    sig: &[u8],
) -> Result<()> {
    check_cms_algorithms(key, signature_alg, digest_alg)?;
    verify_with_key(key, msg, sig)
}

/// Verify the signature of an X.509 structure (certificate, CRL, OCSP response) whose
/// `signatureAlgorithm` is `alg` over its DER `tbs` part: SM3withSM2, ecdsa-with-SHA256 or
/// sha256WithRSAEncryption, each accepted only with a key of its own kind.
pub(crate) fn verify_x509_signature(
    key: &SignerKey,
    alg: &AlgorithmIdentifierOwned,
    tbs: &[u8],
    sig: &[u8],
) -> Result<()> {
    let ok = match key {
        SignerKey::Sm2(_) => alg.oid == oid::SM3_WITH_SM2 || alg.oid == oid::SM2_SIGN,
        SignerKey::P256(_) => alg.oid == oid::ECDSA_WITH_SHA256,
        SignerKey::Rsa(_) => alg.oid == oid::SHA256_WITH_RSA,
    };
    if !ok {
        return Err(Error::UnsupportedAlgorithm(format!(
            "signature algorithm {} for a {} key (SM3withSM2, ecdsa-with-SHA256 or \
             sha256WithRSAEncryption)",
            alg.oid,
            key.algorithm_name()
        )));
    }
    verify_with_key(key, tbs, sig)
}

/// The signature check itself: SM2 with the default distinguishing ID over SM3, ECDSA P-256
/// and RSA PKCS#1 v1.5 over SHA-256.
fn verify_with_key(key: &SignerKey, msg: &[u8], sig: &[u8]) -> Result<()> {
    match key {
        SignerKey::Sm2(pk) => {
            crate::signer::verify_der(pk, crate::signer::DEFAULT_DISTID, msg, sig)
        }
        SignerKey::P256(pk) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| {
                Error::BadSignature("ECDSA signature value is not a valid DER (r, s)")
            })?;
            let vk = p256::ecdsa::VerifyingKey::from(pk);
            vk.verify_prehash(&HashAlg::Sha256.digest(msg), &sig)
                .map_err(|_| Error::BadSignature("ECDSA P-256 signature does not verify"))
        }
        SignerKey::Rsa(pk) => {
            let scheme = rsa::Pkcs1v15Sign {
                hash_len: Some(32),
                prefix: Box::new(SHA256_DIGEST_INFO_PREFIX),
            };
            pk.verify(scheme, &HashAlg::Sha256.digest(msg), sig)
                .map_err(|_| Error::BadSignature("RSA PKCS#1 v1.5 signature does not verify"))
        }
    }
}

/// A holder of an ECDSA P-256 private key (software here; a device could implement it too):
/// the PDF signing variant for relying parties outside the ShangMi world.
pub trait P256Signer {
    /// The public key matching the private key.
    fn public_key(&self) -> p256::PublicKey;

    /// Sign `tbs`: ECDSA over SHA-256(`tbs`) (ecdsa-with-SHA256).
    fn sign(&self, tbs: &[u8]) -> Result<p256::ecdsa::Signature>;
}

/// A software P-256 key (RustCrypto `p256`, RFC 6979 nonces; the key is zeroized on drop).
#[derive(Clone)]
pub struct SoftwareP256Signer {
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SoftwareP256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareP256Signer")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SoftwareP256Signer {
    /// Load from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm EC
    /// -pkeyopt ec_paramgen_curve:P-256` or `openssl req -newkey ec ... -nodes` writes).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        use p256::pkcs8::DecodePrivateKey;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::malformed("PKCS#8 P-256 private key", e))?;
        Ok(Self { key })
    }
}

impl P256Signer for SoftwareP256Signer {
    fn public_key(&self) -> p256::PublicKey {
        p256::PublicKey::from(self.key.verifying_key())
    }

    fn sign(&self, tbs: &[u8]) -> Result<p256::ecdsa::Signature> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        self.key
            .sign_prehash(&HashAlg::Sha256.digest(tbs))
            .map_err(|_| Error::Signer("software ECDSA P-256 signing failed".into()))
    }
}

/// Sign with a P-256 key and return the DER `SEQUENCE { r, s }` CMS carries.
pub fn p256_sign_der(signer: &dyn P256Signer, tbs: &[u8]) -> Result<Vec<u8>> {
    Ok(signer.sign(tbs)?.to_der().as_bytes().to_vec())
}
