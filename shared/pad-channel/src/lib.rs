//! The bedside pad's application-layer channel (issue 8, `docs/api/patient.md` “Bedside pads”).
//!
//! Every call a registered pad makes goes as one binary envelope in the body of
//! `POST /api/v1/pad/call`, on top of whatever TLS the hospital runs:
//!
//! * a fresh 128-bit SM4 key `k` per request, encrypted to the server's channel key with SM2
//!   public-key encryption (GB/T 32918.4, C1C3C2, SM3) — a digital envelope (数字信封);
//! * the inner request (method, path, session, body) encrypted under `k` with SM4-GCM, the
//!   header (version, pad certificate serial, time, nonce, wrapped key) as associated data;
//! * an SM2 signature (GB/T 32918.2, default ID) by the pad's device key over everything
//!   before it, so the server knows which registered pad sent it;
//! * the time and a 128-bit nonce, which the server checks (window, nonce never seen) so a
//!   captured request cannot be sent again.
//!
//! The answer is SM4-GCM under the same `k`, bound to the request nonce. Only the server
//! (whose channel key lives in the crypto device) and the pad can read either body.
//!
//! ```text
//! request  = "YQP1" 0x01 | u16 serial_len serial | u64 time_ms | nonce[16]
//!            | u16 wrapped_len wrapped_key | iv[12] | u32 ct_len ct | u16 sig_len sig_der
//! response = "YQP1" 0x02 | nonce[16] | iv[12] | u32 ct_len ct
//! ```
//! All integers big-endian. Parsing is bounded and total: any byte string either parses or
//! gives [`Error::Malformed`], never a panic (proptest).
#![forbid(unsafe_code)]

use aes_gcm::aead::{Aead, KeyInit as _, Payload};
use sm2::pke::{DecryptingKey, EncryptingKey, Mode};
use sm2::{PublicKey, SecretKey};
use zeroize::{Zeroize, Zeroizing};

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// Magic and version of the envelope format.
pub const MAGIC: &[u8; 4] = b"YQP1";
/// Request kind byte.
pub const KIND_REQUEST: u8 = 1;
/// Response kind byte.
pub const KIND_RESPONSE: u8 = 2;
/// Nonce length (bytes).
pub const NONCE_LEN: usize = 16;
/// GCM IV length (bytes).
pub const IV_LEN: usize = 12;
/// Longest certificate serial (hex characters).
pub const MAX_SERIAL: usize = 64;
/// Longest wrapped key: C1 (65) + C3 (32) + C2 (16) is 113; a little slack.
pub const MAX_WRAPPED: usize = 200;
/// Longest DER signature.
pub const MAX_SIG: usize = 80;
/// Largest ciphertext (a submission with a PNG is under 4 MiB of JSON; base64 adds a third).
pub const MAX_CT: usize = 6 * 1024 * 1024;
/// The SM2 distinguishing ID the pad signs with.
pub const SIGN_ID: &[u8] = sm2_cosign::DEFAULT_ID;

/// What can go wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not an envelope of the expected kind.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the pad's key.
    #[error("bad signature")]
    Signature,
    /// The SM4 key could not be unwrapped, or a GCM tag did not match.
    #[error("cannot decrypt")]
    Decrypt,
    /// A key was not a valid SM2 key.
    #[error("invalid key")]
    Key,
    /// The system random generator failed.
    #[error("no randomness")]
    Random,
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// A parsed request envelope (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The pad's device certificate serial (hex).
    pub serial: String,
    /// Milliseconds since the Unix epoch, as the pad saw it.
    pub time_ms: u64,
    /// Request nonce (replay protection).
    pub nonce: [u8; NONCE_LEN],
    /// The SM4 key, SM2-encrypted to the server's channel key.
    pub wrapped_key: Vec<u8>,
    /// GCM IV.
    pub iv: [u8; IV_LEN],
    /// SM4-GCM ciphertext ‖ tag of the inner request.
    pub ct: Vec<u8>,
    /// DER SM2 signature over [`Request::signed_bytes`].
    pub sig: Vec<u8>,
}

/// A parsed response envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The nonce of the request it answers.
    pub nonce: [u8; NONCE_LEN],
    /// GCM IV.
    pub iv: [u8; IV_LEN],
    /// SM4-GCM ciphertext ‖ tag of the inner response.
    pub ct: Vec<u8>,
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(Error::Malformed(what));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u16_field(&mut self, max: usize, what: &'static str) -> Result<&'a [u8]> {
        let n = usize::from(u16::from_be_bytes(self.array(what)?));
        if n == 0 || n > max {
            return Err(Error::Malformed(what));
        }
        self.take(n, what)
    }
    fn u32_field(&mut self, max: usize, what: &'static str) -> Result<&'a [u8]> {
        let n = u32::from_be_bytes(self.array(what)?);
        let n = usize::try_from(n).map_err(|_| Error::Malformed(what))?;
        if n < 16 || n > max {
            return Err(Error::Malformed(what));
        }
        self.take(n, what)
    }
    fn header(&mut self, kind: u8) -> Result<()> {
        if self.take(4, "magic")? != MAGIC {
            return Err(Error::Malformed("magic"));
        }
        if self.take(1, "kind")?[0] != kind {
            return Err(Error::Malformed("kind"));
        }
        Ok(())
    }
    fn end(&self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed("trailing bytes"))
        }
    }
}

fn put_u16(out: &mut Vec<u8>, field: &[u8]) {
    let n = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(field);
}

fn put_u32(out: &mut Vec<u8>, field: &[u8]) {
    let n = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(field);
}

impl Request {
    /// Parses a request envelope (bounded; no cryptography).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes };
        r.header(KIND_REQUEST)?;
        let serial = r.u16_field(MAX_SERIAL, "serial")?;
        if !serial.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::Malformed("serial"));
        }
        let serial = String::from_utf8_lossy(serial).into_owned();
        let time_ms = u64::from_be_bytes(r.array("time")?);
        let nonce = r.array("nonce")?;
        let wrapped_key = r.u16_field(MAX_WRAPPED, "wrapped key")?.to_vec();
        let iv = r.array("iv")?;
        let ct = r.u32_field(MAX_CT, "ciphertext")?.to_vec();
        let sig = r.u16_field(MAX_SIG, "signature")?.to_vec();
        r.end()?;
        Ok(Self {
            serial,
            time_ms,
            nonce,
            wrapped_key,
            iv,
            ct,
            sig,
        })
    }

    /// The header: the associated data of the inner ciphertext.
    fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.wrapped_key.len());
        out.extend_from_slice(MAGIC);
        out.push(KIND_REQUEST);
        put_u16(&mut out, self.serial.as_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        put_u16(&mut out, &self.wrapped_key);
        out
    }

    /// Everything the signature covers (all fields before it).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        out.extend_from_slice(&self.iv);
        put_u32(&mut out, &self.ct);
        out
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        put_u16(&mut out, &self.sig);
        out
    }

    /// Checks the pad's signature with its public key (SEC1 bytes from its certificate).
    pub fn verify(&self, pad_public: &[u8]) -> Result<()> {
        let public = PublicKey::from_sec1_bytes(pad_public).map_err(|_| Error::Key)?;
        let sig = sm2_cosign::plain::signature_from_der(&self.sig).map_err(|_| Error::Signature)?;
        sm2_cosign::plain::verify(&public, SIGN_ID, &self.signed_bytes(), &sig)
            .map_err(|_| Error::Signature)
    }

    /// Unwraps the SM4 key with `unwrap` (the server's SM2 decryption, done where the channel
    /// key lives) and opens the inner request. Returns the key (for the answer) and the body.
    pub fn open(
        &self,
        unwrap: impl FnOnce(&[u8]) -> Result<Zeroizing<Vec<u8>>>,
    ) -> Result<(SessionKey, Zeroizing<Vec<u8>>)> {
        let key = unwrap(&self.wrapped_key)?;
        let key = SessionKey::from_slice(&key)?;
        let plain = key.decrypt(&self.iv, &self.header_bytes(), &self.ct)?;
        Ok((key, plain))
    }
}

impl Response {
    /// Parses a response envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes };
        r.header(KIND_RESPONSE)?;
        let nonce = r.array("nonce")?;
        let iv = r.array("iv")?;
        let ct = r.u32_field(MAX_CT, "ciphertext")?.to_vec();
        r.end()?;
        Ok(Self { nonce, iv, ct })
    }

    fn aad(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(KIND_RESPONSE);
        out.extend_from_slice(nonce);
        out
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Self::aad(&self.nonce);
        out.extend_from_slice(&self.iv);
        put_u32(&mut out, &self.ct);
        out
    }

    /// Seals `plain` as the answer to the request with `nonce`.
    pub fn seal(key: &SessionKey, nonce: [u8; NONCE_LEN], plain: &[u8]) -> Result<Self> {
        let iv: [u8; IV_LEN] = random_array()?;
        let ct = key.encrypt(&iv, &Self::aad(&nonce), plain)?;
        Ok(Self { nonce, iv, ct })
    }

    /// Opens the answer on the pad; it must answer the request with `nonce`.
    pub fn open(&self, key: &SessionKey, nonce: &[u8; NONCE_LEN]) -> Result<Zeroizing<Vec<u8>>> {
        if &self.nonce != nonce {
            return Err(Error::Malformed("answer to another request"));
        }
        key.decrypt(&self.iv, &Self::aad(nonce), &self.ct)
    }
}

/// The per-request SM4 key (wiped on drop).
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    fn from_slice(b: &[u8]) -> Result<Self> {
        let a: [u8; 16] = b.try_into().map_err(|_| Error::Decrypt)?;
        Ok(Self(Zeroizing::new(a)))
    }
    fn cipher(&self) -> Result<Sm4Gcm> {
        Sm4Gcm::new_from_slice(self.0.as_slice()).map_err(|_| Error::Key)
    }
    fn encrypt(&self, iv: &[u8; IV_LEN], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let n = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from(*iv);
        self.cipher()?
            .encrypt(&n, Payload { msg: plain, aad })
            .map_err(|_| Error::Decrypt)
    }
    fn decrypt(&self, iv: &[u8; IV_LEN], aad: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let n = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from(*iv);
        self.cipher()?
            .decrypt(&n, Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| Error::Decrypt)
    }
}

fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut a = [0u8; N];
    getrandom::fill(&mut a).map_err(|_| Error::Random)?;
    Ok(a)
}

/// A new SM2 private key (32 bytes) from the system generator: the pad's device key or the
/// server's channel key.
pub fn generate_secret() -> Result<Zeroizing<Vec<u8>>> {
    for _ in 0..16 {
        let mut b: [u8; 32] = random_array()?;
        let ok = SecretKey::from_slice(&b).is_ok();
        if ok {
            let out = Zeroizing::new(b.to_vec());
            b.zeroize();
            return Ok(out);
        }
        b.zeroize();
    }
    Err(Error::Random)
}

/// The uncompressed SEC1 public key (65 bytes) of a 32-byte private key.
pub fn public_of(secret: &[u8]) -> Result<Vec<u8>> {
    let sk = SecretKey::from_slice(secret).map_err(|_| Error::Key)?;
    Ok(sk.public_key().to_sec1_bytes().to_vec())
}

/// SM2 signature (DER, default ID) of `msg` with a 32-byte private key (enrolment proof).
pub fn sign(secret: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
    let sk = SecretKey::from_slice(secret).map_err(|_| Error::Key)?;
    let sig = sm2_cosign::plain::sign_os(&sk, SIGN_ID, msg).map_err(|_| Error::Key)?;
    Ok(sm2_cosign::plain::signature_to_der(&sig))
}

/// Verifies what [`sign`] made, with SEC1 public-key bytes.
pub fn verify(public: &[u8], msg: &[u8], sig_der: &[u8]) -> Result<()> {
    let public = PublicKey::from_sec1_bytes(public).map_err(|_| Error::Key)?;
    let sig = sm2_cosign::plain::signature_from_der(sig_der).map_err(|_| Error::Signature)?;
    sm2_cosign::plain::verify(&public, SIGN_ID, msg, &sig).map_err(|_| Error::Signature)
}

/// SM2 decryption of a wrapped key with the channel private key (runs where that key is: the
/// server calls it inside the crypto device's `use_secret`).
pub fn unwrap_key(channel_secret: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let sk = SecretKey::from_slice(channel_secret).map_err(|_| Error::Key)?;
    let dk = DecryptingKey::new_with_mode(sk.to_nonzero_scalar(), Mode::C1C3C2);
    dk.decrypt(wrapped)
        .map(Zeroizing::new)
        .map_err(|_| Error::Decrypt)
}

/// The pad side: builds signed, encrypted requests.
#[derive(Clone)]
pub struct Pad {
    secret: Zeroizing<Vec<u8>>,
    serial: String,
    server: EncryptingKey,
}

impl std::fmt::Debug for Pad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pad")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Pad {
    /// A pad with its device key, its certificate serial and the server's channel public key
    /// (SEC1 bytes).
    pub fn new(secret: &[u8], serial: &str, server_public: &[u8]) -> Result<Self> {
        SecretKey::from_slice(secret).map_err(|_| Error::Key)?;
        let public = PublicKey::from_sec1_bytes(server_public).map_err(|_| Error::Key)?;
        if serial.is_empty()
            || serial.len() > MAX_SERIAL
            || !serial.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Malformed("serial"));
        }
        Ok(Self {
            secret: Zeroizing::new(secret.to_vec()),
            serial: serial.to_owned(),
            server: EncryptingKey::new_with_mode(public, Mode::C1C3C2),
        })
    }

    /// Seals `inner` as a request at `time_ms`. Returns the envelope and the key and nonce to
    /// open the answer with.
    pub fn seal(&self, time_ms: u64, inner: &[u8]) -> Result<(Request, SessionKey)> {
        let key = SessionKey(Zeroizing::new(random_array()?));
        let wrapped_key = self
            .server
            .encrypt(&mut sm2_cosign::OsRng, key.0.as_slice())
            .map_err(|_| Error::Key)?;
        let mut req = Request {
            serial: self.serial.clone(),
            time_ms,
            nonce: random_array()?,
            wrapped_key,
            iv: random_array()?,
            ct: Vec::new(),
            sig: Vec::new(),
        };
        req.ct = key.encrypt(&req.iv, &req.header_bytes(), inner)?;
        req.sig = sign(&self.secret, &req.signed_bytes())?;
        Ok((req, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn setup() -> (Pad, Zeroizing<Vec<u8>>, Vec<u8>) {
        let pad_secret = generate_secret().unwrap();
        let pad_public = public_of(&pad_secret).unwrap();
        let channel = generate_secret().unwrap();
        let channel_public = public_of(&channel).unwrap();
        let pad = Pad::new(&pad_secret, "0a1b2c", &channel_public).unwrap();
        (pad, channel, pad_public)
    }

    #[test]
    fn round_trip_request_and_answer() {
        let (pad, channel, pad_public) = setup();
        let inner = br#"{"method":"GET","path":"/pad/queue"}"#;
        let (req, pad_key) = pad.seal(1_700_000_000_000, inner).unwrap();
        let wire = req.to_bytes();
        // The body is ciphertext: the inner request does not appear.
        assert!(!wire.windows(8).any(|w| w == b"/pad/que"));
        let parsed = Request::parse(&wire).unwrap();
        assert_eq!(parsed, req);
        parsed.verify(&pad_public).unwrap();
        let (server_key, plain) = parsed.open(|w| unwrap_key(&channel, w)).unwrap();
        assert_eq!(plain.as_slice(), inner);
        let answer = Response::seal(&server_key, parsed.nonce, b"{\"ok\":true}").unwrap();
        let back = Response::parse(&answer.to_bytes()).unwrap();
        assert_eq!(
            back.open(&pad_key, &req.nonce).unwrap().as_slice(),
            b"{\"ok\":true}"
        );
        // An answer is bound to its request.
        assert!(back.open(&pad_key, &[0; 16]).is_err());
    }

    #[test]
    fn other_keys_and_changed_bytes_are_refused() {
        let (pad, channel, pad_public) = setup();
        let (req, _) = pad.seal(5, b"hello").unwrap();
        let (other, other_channel, other_public) = setup();
        // Another pad's key does not verify this request.
        assert_eq!(req.verify(&other_public), Err(Error::Signature));
        // Another channel key cannot open it.
        assert!(req.open(|w| unwrap_key(&other_channel, w)).is_err());
        let _ = other;
        // Any changed field breaks the signature; a changed header also breaks the tag.
        let mut t = req.clone();
        t.time_ms += 1;
        assert_eq!(t.verify(&pad_public), Err(Error::Signature));
        assert!(t.open(|w| unwrap_key(&channel, w)).is_err());
        let mut t = req.clone();
        t.nonce[0] ^= 1;
        assert_eq!(t.verify(&pad_public), Err(Error::Signature));
        assert!(t.open(|w| unwrap_key(&channel, w)).is_err());
        let mut t = req.clone();
        let last = t.ct.len() - 1;
        t.ct[last] ^= 1;
        assert_eq!(t.verify(&pad_public), Err(Error::Signature));
        assert_eq!(
            t.open(|w| unwrap_key(&channel, w)).unwrap_err(),
            Error::Decrypt
        );
    }

    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        // RFC 8998 appendix A.1 SM4-GCM test vector.
        let key = SessionKey::from_slice(&hexv("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let iv: [u8; 12] = [
            0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xAB, 0xCD,
        ];
        let aad = hexv("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let plain = hexv(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let ct = key.encrypt(&iv, &aad, &plain).unwrap();
        assert_eq!(
            &ct[..16],
            hexv("17F399F08C67D5EE19D0DC9969C4BB7D").as_slice()
        );
        assert_eq!(
            &ct[ct.len() - 16..],
            hexv("83DE3541E4C2B58177E065A9BF7B62EC").as_slice()
        );
    }

    fn hexv(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn fixed_bad_inputs() {
        for bad in [
            &b""[..],
            b"YQP1",
            b"YQP2\x01",
            b"YQP1\x02",
            b"YQP1\x01\x00\x00",
            b"YQP1\x01\x00\x02zz",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
        let (pad, _, _) = setup();
        let (req, _) = pad.seal(1, b"x").unwrap();
        let mut wire = req.to_bytes();
        wire.push(0);
        assert_eq!(
            Request::parse(&wire),
            Err(Error::Malformed("trailing bytes"))
        );
        assert!(Response::parse(&req.to_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes never panic the parsers.
        #[test]
        fn parsers_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Request::parse(&bytes);
            let _ = Response::parse(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.push(KIND_REQUEST);
            prefixed.extend_from_slice(&bytes);
            let _ = Request::parse(&prefixed);
        }

        /// Well-formed envelopes of any field contents round-trip exactly.
        #[test]
        fn request_round_trips(
            serial in "[0-9a-f]{1,64}",
            time_ms in any::<u64>(),
            nonce in any::<[u8; 16]>(),
            wrapped in proptest::collection::vec(any::<u8>(), 1..200),
            iv in any::<[u8; 12]>(),
            ct in proptest::collection::vec(any::<u8>(), 16..300),
            sig in proptest::collection::vec(any::<u8>(), 1..80),
        ) {
            let r = Request { serial, time_ms, nonce, wrapped_key: wrapped, iv, ct, sig };
            prop_assert_eq!(Request::parse(&r.to_bytes()).unwrap(), r);
        }

        /// Cutting or extending a valid envelope anywhere is refused, never accepted as another.
        #[test]
        fn truncation_is_refused(cut in 0usize..400, extra in any::<u8>()) {
            let r = Request {
                serial: "abc123".into(), time_ms: 7, nonce: [1; 16], wrapped_key: vec![2; 113],
                iv: [3; 12], ct: vec![4; 40], sig: vec![5; 71],
            };
            let wire = r.to_bytes();
            let cut = cut % wire.len();
            prop_assert!(Request::parse(&wire[..cut]).is_err());
            let mut longer = wire.clone();
            longer.push(extra);
            prop_assert!(Request::parse(&longer).is_err());
            let resp = Response { nonce: [9; 16], iv: [8; 12], ct: vec![7; 33] };
            let w = resp.to_bytes();
            prop_assert_eq!(Response::parse(&w).unwrap(), resp);
            prop_assert!(Response::parse(&w[..cut % w.len()]).is_err());
        }
    }
}
