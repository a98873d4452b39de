//! ShangMi primitives used by the devices: SM3, HMAC-SM3, PBKDF2-HMAC-SM3, SM4
//! (ECB, CBC, GCM), SM2 signing over a caller-computed digest, and the SM2 Z value.
//!
//! `sm4` (RustCrypto 0.6) is table-based and therefore NOT constant-time: acceptable for
//! wrapping keys at rest in a process an attacker cannot time precisely, noted in
//! `docs/crypto/key-management.md`.

use aes_gcm::aead::{Aead, KeyInit as _, Payload};
use hmac::Mac as _;
use sm3::Digest as _;
use sm4::cipher::{BlockCipherDecrypt as _, BlockCipherEncrypt as _};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// SM2 default distinguishing identifier (GB/T 35276): "1234567812345678".
pub const DEFAULT_SM2_ID: &[u8] = b"1234567812345678";

/// SM4 key length in bytes.
pub const SM4_KEY_LEN: usize = 16;
/// SM4 block length in bytes.
pub const SM4_BLOCK: usize = 16;
/// SM4-GCM nonce length in bytes.
pub const GCM_NONCE_LEN: usize = 12;
/// SM4-GCM tag length in bytes.
pub const GCM_TAG_LEN: usize = 16;

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;
type HmacSm3 = hmac::Hmac<sm3::Sm3>;

/// Fill a buffer from the operating system CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// `n` bytes from the operating system CSPRNG.
pub fn random_vec(n: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    fill_random(&mut v)?;
    Ok(v)
}

/// SM3 digest.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    sm3::Sm3::digest(data).into()
}

/// SM3 over several parts.
pub fn sm3_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sm3::Sm3::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-SM3 over several parts.
pub fn hmac_sm3(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <HmacSm3 as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        <HmacSm3 as hmac::KeyInit>::new_from_slice(&[]).unwrap_or_else(|_| unreachable_hmac())
    });
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> HmacSm3 {
    // HMAC's new_from_slice never fails; keep the type checker happy without a panic path
    // that untrusted input could reach.
    #[allow(clippy::panic)]
    {
        panic!("HMAC-SM3 rejected a key: impossible")
    }
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// PBKDF2-HMAC-SM3 (RFC 8018 PBKDF2 with HMAC-SM3 as the PRF, as in GM/T 0091-2020).
pub fn pbkdf2_sm3(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sm3::Sm3>(password, salt, iterations, out);
}

fn sm4_cipher(key: &[u8]) -> Result<sm4::Sm4> {
    sm4::Sm4::new_from_slice(key)
        .map_err(|_| Error::InvalidInput("SM4 key must be 16 bytes".into()))
}

fn check_blocks(data: &[u8]) -> Result<()> {
    if !data.len().is_multiple_of(SM4_BLOCK) {
        return Err(Error::InvalidInput(format!(
            "ECB/CBC data must be a multiple of 16 bytes (no padding, as SDF_Encrypt), got {}",
            data.len()
        )));
    }
    Ok(())
}

/// SM4-ECB encryption in place (no padding; length a multiple of 16).
pub fn sm4_ecb_encrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data)?;
    let c = sm4_cipher(key)?;
    let mut out = data.to_vec();
    for chunk in out.chunks_exact_mut(SM4_BLOCK) {
        if let Ok(block) = <&mut sm4::cipher::Block<sm4::Sm4>>::try_from(&mut *chunk) {
            c.encrypt_block(block);
        }
    }
    Ok(out)
}

/// SM4-ECB decryption (no padding).
pub fn sm4_ecb_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data)?;
    let c = sm4_cipher(key)?;
    let mut out = data.to_vec();
    for chunk in out.chunks_exact_mut(SM4_BLOCK) {
        if let Ok(block) = <&mut sm4::cipher::Block<sm4::Sm4>>::try_from(&mut *chunk) {
            c.decrypt_block(block);
        }
    }
    Ok(out)
}

fn iv16(iv: &[u8]) -> Result<[u8; 16]> {
    iv.try_into()
        .map_err(|_| Error::InvalidInput("CBC IV must be 16 bytes".into()))
}

/// SM4-CBC encryption (no padding; see [`pkcs7_pad`]).
pub fn sm4_cbc_encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data)?;
    let c = sm4_cipher(key)?;
    let mut prev = iv16(iv)?;
    let mut out = data.to_vec();
    for chunk in out.chunks_exact_mut(SM4_BLOCK) {
        for (b, p) in chunk.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        if let Ok(block) = <&mut sm4::cipher::Block<sm4::Sm4>>::try_from(&mut *chunk) {
            c.encrypt_block(block);
        }
        prev.copy_from_slice(chunk);
    }
    Ok(out)
}

/// SM4-CBC decryption (no padding).
pub fn sm4_cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data)?;
    let c = sm4_cipher(key)?;
    let mut prev = iv16(iv)?;
    let mut out = data.to_vec();
    for chunk in out.chunks_exact_mut(SM4_BLOCK) {
        let mut this = [0u8; 16];
        this.copy_from_slice(chunk);
        if let Ok(block) = <&mut sm4::cipher::Block<sm4::Sm4>>::try_from(&mut *chunk) {
            c.decrypt_block(block);
        }
        for (b, p) in chunk.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        prev = this;
    }
    Ok(out)
}

/// PKCS#7 padding to a multiple of 16 bytes.
pub fn pkcs7_pad(data: &[u8]) -> Vec<u8> {
    let pad = SM4_BLOCK - data.len() % SM4_BLOCK;
    let mut v = data.to_vec();
    // pad is in 1..=16, fits a byte.
    v.extend(std::iter::repeat_n(u8::try_from(pad).unwrap_or(16), pad));
    v
}

/// Remove PKCS#7 padding.
pub fn pkcs7_unpad(data: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::Integrity("bad PKCS#7 padding");
    let last = *data.last().ok_or_else(bad)?;
    let n = usize::from(last);
    if n == 0 || n > SM4_BLOCK || n > data.len() {
        return Err(bad());
    }
    let (body, pad) = data.split_at(data.len() - n);
    if pad.iter().any(|&b| b != last) {
        return Err(bad());
    }
    Ok(body.to_vec())
}

/// SM4-GCM encryption: returns ciphertext || 16-byte tag.
pub fn sm4_gcm_encrypt(key: &[u8], nonce: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let c = Sm4Gcm::new_from_slice(key)
        .map_err(|_| Error::InvalidInput("SM4 key must be 16 bytes".into()))?;
    let n = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(nonce)
        .map_err(|_| Error::InvalidInput("GCM nonce must be 12 bytes".into()))?;
    c.encrypt(&n, Payload { msg: data, aad })
        .map_err(|_| Error::Internal("SM4-GCM encryption failed"))
}

/// SM4-GCM decryption of ciphertext || tag; fails with [`Error::Integrity`] on any change.
pub fn sm4_gcm_decrypt(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let c = Sm4Gcm::new_from_slice(key)
        .map_err(|_| Error::InvalidInput("SM4 key must be 16 bytes".into()))?;
    let n = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(nonce)
        .map_err(|_| Error::InvalidInput("GCM nonce must be 12 bytes".into()))?;
    c.decrypt(&n, Payload { msg: data, aad })
        .map(Zeroizing::new)
        .map_err(|_| Error::Integrity("SM4-GCM tag mismatch"))
}

/// GCM (NIST SP 800-38D, 96-bit nonce, 128-bit tag) built on a block-encryption oracle:
/// `ecb(blocks)` encrypts 16-byte blocks under the key, which stays inside the device.
/// Used by the SDF adapter, whose standard interface offers SM4-ECB but no GCM.
/// Output matches [`sm4_gcm_encrypt`] for the same key (tested).
pub fn gcm_encrypt_with<F>(ecb: F, nonce: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>>,
{
    let (mut out, tag) = gcm_core(ecb, nonce, aad, data, true)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// GCM decryption over a block-encryption oracle; see [`gcm_encrypt_with`].
pub fn gcm_decrypt_with<F>(
    ecb: F,
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>>,
{
    if data.len() < GCM_TAG_LEN {
        return Err(Error::Integrity("GCM ciphertext shorter than its tag"));
    }
    let (ct, tag) = data.split_at(data.len() - GCM_TAG_LEN);
    let (pt, expect) = gcm_core(ecb, nonce, aad, ct, false)?;
    let pt = Zeroizing::new(pt);
    if !ct_eq(&expect, tag) {
        return Err(Error::Integrity("GCM tag mismatch"));
    }
    Ok(pt)
}

fn gcm_core<F>(
    mut ecb: F,
    nonce: &[u8],
    aad: &[u8],
    input: &[u8],
    encrypt: bool,
) -> Result<(Vec<u8>, [u8; 16])>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>>,
{
    use ghash::universal_hash::UniversalHash as _;
    if nonce.len() != GCM_NONCE_LEN {
        return Err(Error::InvalidInput("GCM nonce must be 12 bytes".into()));
    }
    let nblocks = input.len().div_ceil(16);
    let nblocks_u32 =
        u32::try_from(nblocks).map_err(|_| Error::InvalidInput("GCM input too long".into()))?;
    if nblocks_u32 > u32::MAX - 2 {
        return Err(Error::InvalidInput("GCM input too long".into()));
    }
    // Blocks to encrypt in one oracle call: H = E(0), J0 = nonce||1, then J0+1.. for the data.
    let mut req = Vec::with_capacity((nblocks + 2) * 16);
    req.extend_from_slice(&[0u8; 16]);
    for i in 0..=nblocks_u32 {
        req.extend_from_slice(nonce);
        req.extend_from_slice(&(i + 1).to_be_bytes());
    }
    let ks = Zeroizing::new(ecb(&req)?);
    if ks.len() != req.len() {
        return Err(Error::Internal("block oracle returned a wrong length"));
    }
    let (h, rest) = ks.split_at(16);
    let (ej0, stream) = rest.split_at(16);
    let mut out: Vec<u8> = input
        .iter()
        .zip(stream.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    let ct: &[u8] = if encrypt { &out } else { input };
    let key = ghash::Key::try_from(h).map_err(|_| Error::Internal("GHASH key length"))?;
    let mut g = ghash::GHash::new(&key);
    g.update_padded(aad);
    g.update_padded(ct);
    let mut lens = [0u8; 16];
    let aad_bits = u64::try_from(aad.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    let ct_bits = u64::try_from(ct.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    lens[..8].copy_from_slice(&aad_bits.to_be_bytes());
    lens[8..].copy_from_slice(&ct_bits.to_be_bytes());
    g.update_padded(&lens);
    let s: [u8; 16] = g.finalize().into();
    let mut tag = [0u8; 16];
    for (t, (a, b)) in tag.iter_mut().zip(s.iter().zip(ej0.iter())) {
        *t = a ^ b;
    }
    if !encrypt {
        // Caller compares the tag before releasing `out`.
        let _ = &mut out;
    }
    Ok((out, tag))
}

/// An SM2 public key (a point on the SM2 curve, validated).
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2PublicKey(sm2::PublicKey);

impl std::fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sm2PublicKey({})",
            hex::encode(self.to_sec1_uncompressed())
        )
    }
}

impl Sm2PublicKey {
    /// Parse an SEC1 encoded point (uncompressed `04||x||y` or compressed).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        sm2::PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidInput("not a valid SM2 public key".into()))
    }

    /// Build from 32-byte affine coordinates.
    pub fn from_xy(x: &[u8; 32], y: &[u8; 32]) -> Result<Self> {
        let mut b = Vec::with_capacity(65);
        b.push(4);
        b.extend_from_slice(x);
        b.extend_from_slice(y);
        Self::from_sec1(&b)
    }

    /// Uncompressed SEC1 encoding `04||x||y` (65 bytes).
    pub fn to_sec1_uncompressed(&self) -> Vec<u8> {
        use sm2::elliptic_curve::sec1::ToSec1Point as _;
        self.0.to_sec1_point(false).as_bytes().to_vec()
    }

    /// The 32-byte x and y coordinates.
    pub fn xy(&self) -> ([u8; 32], [u8; 32]) {
        let b = self.to_sec1_uncompressed();
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        if let (Some(xs), Some(ys)) = (b.get(1..33), b.get(33..65)) {
            x.copy_from_slice(xs);
            y.copy_from_slice(ys);
        }
        (x, y)
    }

    /// SubjectPublicKeyInfo PEM (what `openssl pkeyutl -pubin` reads).
    pub fn to_pem(&self) -> Result<String> {
        use sm2::pkcs8::EncodePublicKey as _;
        self.0
            .to_public_key_pem(sm2::pkcs8::LineEnding::LF)
            .map_err(|_| Error::Internal("SPKI PEM encoding failed"))
    }

    /// The inner RustCrypto key.
    pub fn as_inner(&self) -> &sm2::PublicKey {
        &self.0
    }

    /// Verify a signature over `msg` with distinguishing ID `id` (computes e = SM3(Z||M)).
    pub fn verify(&self, id: &[u8], msg: &[u8], sig: &Sm2Signature) -> Result<()> {
        let e = sm2_digest(self, id, msg)?;
        self.verify_digest(&e, sig)
    }

    /// Verify a signature over a caller-computed digest e.
    pub fn verify_digest(&self, e: &[u8; 32], sig: &Sm2Signature) -> Result<()> {
        use sm2::dsa::signature::hazmat::PrehashVerifier as _;
        let id = "1234567812345678"; // Z is not used by verify_prehash; any valid ID works.
        let vk = sm2::dsa::VerifyingKey::new(id, self.0)
            .map_err(|_| Error::Internal("verifying key construction failed"))?;
        let s = sm2::dsa::Signature::from_scalars(sig.r, sig.s)
            .map_err(|_| Error::Integrity("SM2 signature r or s out of range"))?;
        vk.verify_prehash(e, &s)
            .map_err(|_| Error::Integrity("SM2 signature does not verify"))
    }
}

/// An SM2 signature (r, s), each a 32-byte big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sm2Signature {
    /// r
    pub r: [u8; 32],
    /// s
    pub s: [u8; 32],
}

impl Sm2Signature {
    /// DER `SEQUENCE { INTEGER r, INTEGER s }` (GB/T 35276), what OpenSSL reads.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        let s = sm2::dsa::Signature::from_scalars(self.r, self.s)
            .map_err(|_| Error::Integrity("SM2 signature r or s out of range"))?;
        Ok(s.to_der().as_bytes().to_vec())
    }

    /// Parse DER.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let s = sm2::dsa::Signature::from_der(der)
            .map_err(|_| Error::InvalidInput("bad SM2 DER signature".into()))?;
        Ok(Self {
            r: s.r_bytes().into(),
            s: s.s_bytes().into(),
        })
    }
}

/// Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) (GB/T 32918.2 §5.5).
pub fn sm2_z(public: &Sm2PublicKey, id: &[u8]) -> Result<[u8; 32]> {
    // One Z implementation for the whole project: sm2-cosign's.
    sm2_cosign::plain::compute_z(id, public.as_inner().as_affine())
        .map_err(|e| Error::InvalidInput(format!("SM2 Z value: {e}")))
}

/// e = SM3(Z || M): the digest that SDF internal signing (`SDF_InternalSign_ECC`) expects.
pub fn sm2_digest(public: &Sm2PublicKey, id: &[u8], msg: &[u8]) -> Result<[u8; 32]> {
    let z = sm2_z(public, id)?;
    Ok(sm3_parts(&[&z, msg]))
}

/// An SM2 private key in memory (zeroized on drop by the RustCrypto type).
pub(crate) struct Sm2Secret(sm2::dsa::SigningKey);

impl Sm2Secret {
    pub(crate) fn generate() -> Result<(Self, Zeroizing<Vec<u8>>)> {
        for _ in 0..64 {
            let mut d = Zeroizing::new(vec![0u8; 32]);
            fill_random(&mut d)?;
            if let Ok(k) = Self::from_bytes(&d) {
                return Ok((k, d));
            }
        }
        Err(Error::Random)
    }

    pub(crate) fn from_bytes(d: &[u8]) -> Result<Self> {
        sm2::dsa::SigningKey::from_slice("1234567812345678", d)
            .map(Self)
            .map_err(|_| Error::Integrity("stored SM2 private key is invalid"))
    }

    pub(crate) fn public(&self) -> Sm2PublicKey {
        Sm2PublicKey(sm2::PublicKey::from(self.0.verifying_key()))
    }

    /// Sign e (= SM3(Z||M) computed by the caller) with hedged nonces (RFC 6979 + fresh randomness).
    pub(crate) fn sign_digest(&self, e: &[u8; 32]) -> Result<Sm2Signature> {
        use sm2::dsa::signature::hazmat::RandomizedPrehashSigner as _;
        let mut rng = getrandom::SysRng;
        let s: sm2::dsa::Signature = self
            .0
            .sign_prehash_with_rng(&mut rng, e)
            .map_err(|_| Error::Internal("SM2 signing failed"))?;
        Ok(Sm2Signature {
            r: s.r_bytes().into(),
            s: s.s_bytes().into(),
        })
    }
}

/// Zeroize helper for fixed arrays.
pub(crate) fn wipe(b: &mut [u8]) {
    b.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_over_block_oracle_matches_the_aes_gcm_crate() {
        let key = random_vec(16).unwrap();
        for len in [0usize, 1, 15, 16, 17, 64, 100] {
            let nonce = random_vec(12).unwrap();
            let data = random_vec(len).unwrap();
            let aad = random_vec(len % 7).unwrap();
            let a = sm4_gcm_encrypt(&key, &nonce, &aad, &data).unwrap();
            let b = gcm_encrypt_with(|blocks| sm4_ecb_encrypt(&key, blocks), &nonce, &aad, &data)
                .unwrap();
            assert_eq!(a, b, "len {len}");
            let p =
                gcm_decrypt_with(|blocks| sm4_ecb_encrypt(&key, blocks), &nonce, &aad, &a).unwrap();
            assert_eq!(&p[..], &data[..]);
            let mut t = a.clone();
            t[0] ^= 1;
            assert!(
                gcm_decrypt_with(|blocks| sm4_ecb_encrypt(&key, blocks), &nonce, &aad, &t).is_err()
            );
        }
    }

    #[test]
    fn sm4_known_answer_gbt_32907() {
        // GB/T 32907-2016 appendix A, example 1.
        let k = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = sm4_ecb_encrypt(&k, &k).unwrap();
        assert_eq!(hex::encode(c), "681edf34d206965e86b3e94f536e4246");
        let iv = random_vec(16).unwrap();
        let data = random_vec(48).unwrap();
        let ct = sm4_cbc_encrypt(&k, &iv, &data).unwrap();
        assert_eq!(sm4_cbc_decrypt(&k, &iv, &ct).unwrap(), data);
        assert_eq!(pkcs7_unpad(&pkcs7_pad(b"abc")).unwrap(), b"abc");
    }

    #[test]
    fn own_z_matches_the_sm2_crate_verifier() {
        use sm2::dsa::signature::Signer as _;
        let (sk, _) = Sm2Secret::generate().unwrap();
        let msg = b"message digest";
        let s: sm2::dsa::Signature = sk.0.sign(msg);
        let sig = Sm2Signature {
            r: s.r_bytes().into(),
            s: s.s_bytes().into(),
        };
        sk.public().verify(DEFAULT_SM2_ID, msg, &sig).unwrap();
        let e = sm2_digest(&sk.public(), DEFAULT_SM2_ID, msg).unwrap();
        let mine = sk.sign_digest(&e).unwrap();
        sk.public().verify(DEFAULT_SM2_ID, msg, &mine).unwrap();
        assert!(sk.public().verify(DEFAULT_SM2_ID, b"other", &mine).is_err());
    }
}
