//! SMS one-time codes through the hospital's SMS gateway.
//!
//! [`SmsGateway`] is the one seam every flow sends through (staff activation's second factor
//! today, patient verification later), so tests and other gateways plug in without touching
//! the flows. [`HttpSmsGateway`] is the adapter for the on-premises gateway: a JSON POST
//!
//! ```json
//! {"phone": "13800000000", "template": "staff.activation", "params": {"code": "123456", "minutes": 5},
//!  "text": "【医签】您的激活验证码为 123456，5 分钟内有效。请勿告诉他人。"}
//! ```
//!
//! with `Authorization: Bearer <COSIGN_SMS_TOKEN>` (when set); any 2xx answer means accepted.
//! Gateways that fill their own templates use `template` + `params`, plain ones `text`.
//!
//! Codes: [`new_code`] draws 6 digits from the crypto device's random source; only
//! [`code_hash`] (SM3 over a scope and the code) is stored. Six digits are guessable offline from
//! the hash, so the flows bound attempts and lifetime rather than relying on the hash.

use std::time::Duration;

use async_trait::async_trait;
use sm3::{Digest, Sm3};

use crate::config::SmsConfig;

/// One text to send.
#[derive(Debug, Clone)]
pub struct SmsMessage {
    /// 11-digit mobile number.
    pub phone: String,
    /// Stable template name, e.g. `staff.activation`.
    pub template: &'static str,
    /// Template parameters (the code, its lifetime).
    pub params: serde_json::Value,
    /// The full text, signature included, for gateways without templates.
    pub text: String,
}

/// Why a text was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway could not be reached or timed out.
    #[error("SMS gateway unreachable: {0}")]
    Unreachable(String),
    /// The gateway answered with a non-2xx status.
    #[error("SMS gateway refused the message (HTTP {0})")]
    Refused(u16),
}

/// Something that delivers texts.
#[async_trait]
pub trait SmsGateway: Send + Sync + std::fmt::Debug {
    /// Sends one text; `Ok` once the gateway accepted it.
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError>;
}

/// The HTTP adapter for the hospital's gateway (`[sms] url`).
#[derive(Debug)]
pub struct HttpSmsGateway {
    url: String,
    sign_name: String,
    token: Option<zeroize::Zeroizing<String>>,
    http: reqwest::Client,
}

impl HttpSmsGateway {
    /// The gateway of `[sms]`, or `None` when no URL is configured.
    pub fn from_config(cfg: &SmsConfig) -> Option<Self> {
        let url = cfg.url.clone()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        Some(Self {
            url,
            sign_name: cfg.sign_name.clone(),
            token: cfg.token.clone(),
            http,
        })
    }

    /// `【签名】` prefix for texts.
    pub fn sign_name(&self) -> &str {
        &self.sign_name
    }
}

#[async_trait]
impl SmsGateway for HttpSmsGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let body = serde_json::json!({
            "phone": message.phone,
            "template": message.template,
            "params": message.params,
            "text": format!("【{}】{}", self.sign_name, message.text),
        });
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SmsError::Unreachable(e.without_url().to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SmsError::Refused(resp.status().as_u16()))
        }
    }
}

/// A 6-digit one-time code from `random` (at least 8 bytes from the crypto device).
pub fn new_code(random: &[u8]) -> String {
    let mut n = 0u64;
    for b in random.iter().take(8) {
        n = (n << 8) | u64::from(*b);
    }
    format!("{:06}", n % 1_000_000)
}

/// SM3 over `scope` (e.g. the staff id) and the code, hex; what the database keeps.
pub fn code_hash(scope: &str, code: &str) -> String {
    let mut h = Sm3::new();
    h.update(b"YQSMS1\n");
    h.update(scope.as_bytes());
    h.update(b"\n");
    h.update(code.trim().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_six_digits_and_hashes_are_scoped() {
        assert_eq!(new_code(&[0, 0, 0, 0, 0, 0, 0, 7]), "000007");
        assert_eq!(new_code(&[255; 8]).len(), 6);
        assert_ne!(code_hash("D001", "123456"), code_hash("D002", "123456"));
        assert_eq!(code_hash("D001", " 123456 "), code_hash("D001", "123456"));
    }
}
