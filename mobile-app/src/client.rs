//! API calls signed with the device key: `x-yiqian-device-id`, `-timestamp`, `-nonce`,
//! `-signature` (SM2 over `cosign_proto::v1::auth::canonical_request`).

use cosign_proto::v1::ApiError;
use cosign_proto::v1::auth::{
    HEADER_DEVICE_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, canonical_request,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sm2::dsa::signature::Signer;
use sm3::{Digest, Sm3};

use crate::{PhoneError, Result};

/// SM2 user ID of device signatures.
pub const DEVICE_DISTID: &str = "1234567812345678";

/// A device key.
pub struct DeviceKey {
    key: sm2::dsa::SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// A fresh random key.
    pub fn generate() -> Result<(Self, zeroize::Zeroizing<String>)> {
        loop {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut *bytes).map_err(|e| PhoneError::State(e.to_string()))?;
            if let Ok(secret) = sm2::SecretKey::from_slice(&*bytes) {
                let hex = zeroize::Zeroizing::new(hex::encode(*bytes));
                return Ok((Self::from_secret(&secret)?, hex));
            }
        }
    }

    /// From the stored hex secret.
    pub fn from_hex(h: &str) -> Result<Self> {
        let bytes =
            zeroize::Zeroizing::new(hex::decode(h).map_err(|e| PhoneError::State(e.to_string()))?);
        let secret =
            sm2::SecretKey::from_slice(&bytes).map_err(|e| PhoneError::State(e.to_string()))?;
        Self::from_secret(&secret)
    }

    fn from_secret(secret: &sm2::SecretKey) -> Result<Self> {
        Ok(Self {
            key: sm2::dsa::SigningKey::new(DEVICE_DISTID, secret)
                .map_err(|e| PhoneError::State(e.to_string()))?,
        })
    }

    /// Uncompressed public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_sec1_bytes())
    }

    fn sign(&self, msg: &str) -> String {
        let sig: sm2::dsa::Signature = self.key.sign(msg.as_bytes());
        hex::encode(sig.to_bytes())
    }
}

/// An HTTP client for one server, signing as one device (or unsigned before enrolment).
#[derive(Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    device: Option<(String, DeviceKey)>,
}

fn random_nonce() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| PhoneError::State(e.to_string()))?;
    Ok(hex::encode(b))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            device: None,
        }
    }

    /// Signs every later call as `device_id`.
    #[must_use]
    pub fn with_device(mut self, device_id: &str, key: DeviceKey) -> Self {
        self.device = Some((device_id.to_owned(), key));
        self
    }

    /// The server base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The device-signature headers for a call (empty before enrolment).
    pub fn signed_headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>> {
        let Some((id, key)) = &self.device else {
            return Ok(Vec::new());
        };
        let ts = now_ms();
        let nonce = random_nonce()?;
        let canonical =
            canonical_request(method, path, ts, &nonce, &hex::encode(Sm3::digest(body)));
        Ok(vec![
            (HEADER_DEVICE_ID, id.clone()),
            (HEADER_TIMESTAMP, ts.to_string()),
            (HEADER_NONCE, nonce),
            (HEADER_SIGNATURE, key.sign(&canonical)),
        ])
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (name, value) in self.signed_headers(method.as_str(), path, &body)? {
            req = req.header(name, value);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| PhoneError::Network(e.to_string()))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            Err(match serde_json::from_str::<ApiError>(&text) {
                Ok(e) => PhoneError::Server(e),
                Err(_) => PhoneError::Network(format!("HTTP {status}: {text}")),
            })
        }
    }

    /// POSTs JSON, reads JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| PhoneError::State(e.to_string()))?;
        let resp = self.send(reqwest::Method::POST, path, bytes).await?;
        resp.json()
            .await
            .map_err(|e| PhoneError::Network(e.to_string()))
    }

    /// GETs JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(reqwest::Method::GET, path, Vec::new()).await?;
        resp.json()
            .await
            .map_err(|e| PhoneError::Network(e.to_string()))
    }

    /// GETs raw bytes.
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self.send(reqwest::Method::GET, path, Vec::new()).await?;
        Ok(resp
            .bytes()
            .await
            .map_err(|e| PhoneError::Network(e.to_string()))?
            .to_vec())
    }
}
