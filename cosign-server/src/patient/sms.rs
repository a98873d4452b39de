//! SMS delivery behind [`SmsGateway`]: the hospital's on-premises gateway over HTTP
//! ([`HttpSms`]: JSON `{"phone", "text"}` POSTed to `[patient] sms_gateway_url` with
//! `authorization: Bearer <COSIGN_SMS_TOKEN>`), or none ([`NoGateway`]: logs that nothing was
//! sent and, only with `sms_dev_echo`, prints the text for local trials).

use std::time::Duration;

use cosign_proto::v1::patient::mask_phone;

/// Sends one text message.
#[async_trait::async_trait]
pub trait SmsGateway: Send + Sync + std::fmt::Debug {
    /// Sends `text` to `phone`; `Err` with a reason (logged, never shown to the patient).
    async fn send(&self, phone: &str, text: &str) -> Result<(), String>;
}

/// The hospital gateway over HTTP.
pub struct HttpSms {
    url: String,
    token: Option<zeroize::Zeroizing<String>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for HttpSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSms")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HttpSms {
    /// A gateway at `url` (Bearer `token` when given); each send may take 10 s.
    pub fn new(url: String, token: Option<zeroize::Zeroizing<String>>) -> Self {
        Self {
            url,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait::async_trait]
impl SmsGateway for HttpSms {
    async fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        let mut req = self
            .http
            .post(&self.url)
            .json(&serde_json::json!({ "phone": phone, "text": text }));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.as_str());
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("SMS gateway answered HTTP {}", resp.status()))
        }
    }
}

/// No gateway configured.
#[derive(Debug, Default)]
pub struct NoGateway {
    /// Print the text to the console (`[patient] sms_dev_echo`, local trials only).
    pub echo: bool,
}

#[async_trait::async_trait]
impl SmsGateway for NoGateway {
    async fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        tracing::warn!(phone = %mask_phone(phone), "SMS to {} not sent: no gateway", mask_phone(phone));
        if self.echo {
            #[allow(clippy::print_stdout)]
            {
                println!("[sms_dev_echo] {}: {text}", mask_phone(phone));
            }
        }
        Ok(())
    }
}

/// The gateway `[patient]` configures.
pub fn from_config(cfg: &crate::config::PatientConfig) -> std::sync::Arc<dyn SmsGateway> {
    match &cfg.sms_gateway_url {
        Some(url) => std::sync::Arc::new(HttpSms::new(url.clone(), cfg.sms_token.clone())),
        None => std::sync::Arc::new(NoGateway {
            echo: cfg.sms_dev_echo,
        }),
    }
}
