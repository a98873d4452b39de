//! Configuration: a `cosign.toml` file (created with commented defaults on first start), then
//! `COSIGN_*` environment variables, then command-line flags, each overriding the one before.
//!
//! Two types, as in kanidm: [`FileConfig`] is the file format (unknown keys are an error, so a
//! typo never silently falls back to a default); [`Config`] is the validated runtime value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file written on first start and shipped as `deploy/cosign.example.toml`.
pub const DEFAULT_TOML: &str = r#"# Yiqian 医签 cosign-server configuration.
# Every key may also be set by an environment variable (shown in brackets), and the most
# important ones by a command-line flag; flags win over variables, variables over this file.

# Address to listen on [COSIGN_LISTEN, --listen]. Put a TLS-terminating proxy in front in production.
listen = "127.0.0.1:8080"

# Directory for the SQLite database, signed files and keys [COSIGN_DATA, --data].
data_dir = "./data"

# Database URL [COSIGN_DATABASE_URL]. Empty means SQLite at <data_dir>/yiqian.db.
# PostgreSQL (also openGauss / Kingbase in PG mode): "postgres://user@host:5432/yiqian"
database_url = ""

# The URL terminals and phones use to reach this server (QR codes, CRL and OCSP URLs) [COSIGN_PUBLIC_URL].
# Empty means http://<listen>.
public_url = ""

# Log format: "human" or "json" [COSIGN_LOG_FORMAT]; level filter [COSIGN_LOG], e.g. "info" or "cosign_server=debug".
log_format = "human"
log_level = "info"

[http]
# Largest request body accepted by JSON endpoints, in bytes [COSIGN_HTTP_BODY_LIMIT].
body_limit = 2097152
# Requests taking longer than this are answered 408 [COSIGN_HTTP_TIMEOUT_SECS].
timeout_secs = 30

[security]
# Administrator session lifetime in seconds.
session_ttl_secs = 28800
# Failed logins before an account is locked, and how long it stays locked.
max_failed_logins = 5
lockout_secs = 900
# PBKDF2-HMAC-SM3 iterations for stored password verifiers.
password_iterations = 100000

[keys]
# Crypto device holding every CA, TSA, OCSP and seal key [COSIGN_KEYS_DEVICE]. "soft": the
# software device, whose master key is sealed in <data_dir>/master-key.sealed (GM/T 0028 level 1
# at most). "sdf": a certified crypto device (密码机) through its GM/T 0018 library (production).
device = "soft"
# For device = "sdf": the vendor's library [COSIGN_SDF_LIBRARY], the internal SM2 signing key
# indices this server may use (e.g. "1-16" or "1,2,5"), and the internal KEK index that wraps
# keys and secrets. The private-key access password, if the device needs one, comes from the
# environment only [COSIGN_SDF_KEY_PASSWORD].
sdf_library = ""
sdf_sign_keys = "1-16"
sdf_kek_index = 1
# How the sealed master key is unlocked. If COSIGN_MASTER_PASSPHRASE is set (at least 12
# characters) it is used. Otherwise this key file is used, and created with 32 random bytes on
# first start: the embedded default, convenient but only as safe as the data directory.
# Production: use the passphrase (or a key file on removable media) — never a file beside the data.
# Empty means <data_dir>/master.key [COSIGN_MASTER_KEY_FILE].
key_file = ""
# PBKDF2-HMAC-SM3 iterations when the master key is sealed with a passphrase.
passphrase_iterations = 600000

[pki]
# Organisation named in the CA, TSA and OCSP certificates (O=...).
organisation = "医签 Yiqian"
# Hours a CRL or an OCSP response stays valid (nextUpdate).
crl_validity_hours = 24
ocsp_validity_hours = 24
# TSA policy OID put into every time-stamp token.
tsa_policy = "1.2.156.112233.2.1"
# OID under which staff certificates carry the practising-licence number (执业证号); no public
# OID exists, so this defaults to one in the project's private arc.
licence_oid = "1.2.156.112233.1.1"

[documents]
# Largest document upload in bytes (larger requests are refused with 413 before being read) [COSIGN_DOCUMENTS_MAX_UPLOAD].
max_upload = 67108864
# Concurrent CPU-heavy document jobs (signing, verification, image conversion).
workers = 2
# DOC/DOCX → PDF: the LibreOffice binary [COSIGN_SOFFICE], processes at once, and the time one
# conversion may take before its process group is killed.
soffice = "soffice"
converters = 2
convert_timeout_secs = 60
# Keep document files in an S3-compatible bucket (MinIO, Ceph RGW, AWS) instead of
# <data_dir>/documents, e.g. when several servers share the files. The keys come from
# COSIGN_S3_ACCESS_KEY_ID and COSIGN_S3_SECRET_ACCESS_KEY (never from this file).
# s3_bucket = "yiqian-documents"
# s3_endpoint = "http://minio.hospital.local:9000"
# s3_region = "us-east-1"
# s3_prefix = "documents"
# s3_allow_http = false

[cosign]
# Wrong PINs before a doctor's signing key locks (an administrator unlocks it).
max_pin_failures = 5
# Hospital message platform (企业微信/钉钉 gateway or the hospital app's push service) told about
# every new signing request, as JSON POSTs with a Bearer token from COSIGN_NOTIFIER_TOKEN.
# notifier_url = "http://msg.hospital.local/api/yiqian"
# The terminal demo page /terminal/demo (hospital IT staff try a signature in a browser; it
# needs an administrator login and signs requests as the built-in "demo terminal" app). Off
# unless set here or by COSIGN_DEMO_TERMINAL=true (`make run` sets it).
# demo_terminal = false
# Second factor when a phone is activated: "sms" (a one-time code to the staff member's
# phone on record through [sms]) or "none". Default: "sms" when an SMS gateway is configured.
# activation_second_factor = "sms"
# Identity check at activation, through [identity] (the `liveness` service): "none",
# "id_card" (the ID card's name and number must match the staff record), "face" (id_card plus a
# selfie matching the card's portrait) or "liveness" (id_card plus an active liveness check
# whose best frame matches the portrait).
# activation_identity = "none"

[audit]
# Anchor the audit chain head with a token from the local TSA every N entries or T minutes.
anchor_every_entries = 1000
anchor_every_minutes = 10

[sms]
# The hospital's SMS gateway (HTTP adapter: JSON POST {phone, template, params, text} with a
# Bearer token from COSIGN_SMS_TOKEN; any 2xx means accepted). Unset: no SMS. Used for staff
# activation codes and for patients (links, codes). [COSIGN_SMS_GATEWAY_URL]
# url = "http://sms.hospital.local/api/send"
# Signature (签名) put in front of every text.
sign_name = "医签"

[identity]
# The hospital's `liveness serve` (ID-card OCR, face match, liveness; docs/identity/api.md).
# Unset: only SMS verification; patient tasks asking for id_ocr, face or liveness are refused.
# [COSIGN_LIVENESS_URL]
# liveness_url = "http://127.0.0.1:8090"
# File holding its bearer token (`liveness serve --token-file`) [COSIGN_LIVENESS_TOKEN_FILE].
# liveness_token_file = "/etc/yiqian/liveness.token"
# Seconds one call may take (liveness checks carry up to 60 frames) [COSIGN_LIVENESS_TIMEOUT_SECS].
timeout_secs = 30
# Keep the ID-card portraits judged, SM4-GCM-encrypted under a key in the crypto device. Off:
# only the results and the images' SHA-256 values are recorded (personal information law).
keep_portraits = false

[autosign]
# Longest time window a doctor may authorise for auto-sign (hours; 1–8760).
max_window_hours = 168
# Certificate policy OID marking delegated (auto-sign) certificates (project arc).
policy_oid = "1.2.156.112233.3.1"

[patient]
# Patient texts (links, codes) go through [sms]. Print SMS codes to the console when no gateway is configured (local trials only, never in production).
sms_dev_echo = false

[web]
# Directory of the built patient signing page served at /h5/ (scripts/build-h5.sh writes it;
# `make run` builds it) [COSIGN_WEB_H5_DIR]. Empty means web-h5/dist of the source tree this
# server was built from.
h5_dir = ""
"#;

/// The file format. Unknown keys are rejected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    #[serde(default)]
    http: HttpFile,
    #[serde(default)]
    security: SecurityFile,
    #[serde(default)]
    keys: KeysFile,
    #[serde(default)]
    pki: PkiFile,
    #[serde(default)]
    documents: DocumentsFile,
    #[serde(default)]
    cosign: CosignFile,
    #[serde(default)]
    audit: AuditFile,
    #[serde(default)]
    sms: SmsFile,
    #[serde(default)]
    autosign: AutosignFile,
    #[serde(default)]
    identity: IdentityFile,
    #[serde(default)]
    patient: PatientFile,
    #[serde(default)]
    web: WebFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutosignFile {
    max_window_hours: Option<u32>,
    policy_oid: Option<String>,
}

/// Auto-sign settings (`[autosign]`).
#[derive(Debug, Clone)]
pub struct AutosignConfig {
    /// Longest authorised window.
    pub max_window: Duration,
    /// Certificate policy OID of delegated certificates (dotted).
    pub policy_oid: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    liveness_url: Option<String>,
    liveness_token_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    keep_portraits: Option<bool>,
}

/// The identity service (`[identity]`, issue 10): `liveness serve`.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Base URL; `None`: no identity checks besides SMS.
    pub liveness_url: Option<String>,
    /// File with the bearer token (read at start-up, never logged).
    pub liveness_token_file: Option<PathBuf>,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Keep the judged ID portraits, encrypted.
    pub keep_portraits: bool,
}

/// The identity check asked at phone activation (`[cosign] activation_identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActivationIdentity {
    /// None besides the activation code (and the SMS second factor).
    None,
    /// The ID card matches the staff record.
    IdCard,
    /// ID card, and a selfie matching its portrait.
    Face,
    /// ID card, and an active liveness check matching its portrait.
    Liveness,
}

impl ActivationIdentity {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::IdCard => "id_card",
            Self::Face => "face",
            Self::Liveness => "liveness",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientFile {
    sms_dev_echo: Option<bool>,
}

/// Patient signing settings (`[patient]`, issue 8; texts go through `[sms]`).
#[derive(Debug, Clone, Default)]
pub struct PatientConfig {
    /// Without an `[sms]` gateway, print codes to the console (local trials only).
    pub sms_dev_echo: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    h5_dir: Option<PathBuf>,
}

/// Web pages served by this server.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The built patient signing page (web-h5/dist), served at `/h5/`.
    pub h5_dir: PathBuf,
}

impl WebConfig {
    /// The web-h5/dist of the source tree this binary was built from.
    pub fn default_h5_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-h5/dist")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignFile {
    max_pin_failures: Option<u32>,
    notifier_url: Option<String>,
    demo_terminal: Option<bool>,
    activation_second_factor: Option<String>,
    activation_identity: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    anchor_every_entries: Option<i64>,
    anchor_every_minutes: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsFile {
    url: Option<String>,
    sign_name: Option<String>,
}

/// Audit anchoring (`[audit]`).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Anchor after this many new entries (1–1 000 000).
    pub anchor_every_entries: i64,
    /// …or after this long when the head moved.
    pub anchor_every: Duration,
}

/// The SMS gateway (`[sms]`); the token comes from `COSIGN_SMS_TOKEN` only.
#[derive(Clone)]
pub struct SmsConfig {
    /// Gateway URL; `None`: no SMS.
    pub url: Option<String>,
    /// Signature put in front of texts (【医签】).
    pub sign_name: String,
    /// Bearer token.
    pub token: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("sign_name", &self.sign_name)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The second factor asked at phone activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A one-time code sent by SMS to the phone on record.
    Sms,
    /// The activation code alone.
    None,
}

/// Doctor co-signing settings.
#[derive(Clone)]
pub struct CosignConfig {
    /// Wrong PINs before the key locks (1–20).
    pub max_pin_failures: u32,
    /// Message platform told about new signing requests.
    pub notifier_url: Option<String>,
    /// Bearer token for the message platform (`COSIGN_NOTIFIER_TOKEN`, never from the file).
    pub notifier_token: Option<zeroize::Zeroizing<String>>,
    /// Serve `/terminal/demo` (`demo_terminal`, `COSIGN_DEMO_TERMINAL`).
    pub demo_terminal: bool,
    /// Second factor at activation.
    pub activation_second_factor: SecondFactor,
    /// Identity check at activation (through `[identity]`).
    pub activation_identity: ActivationIdentity,
}

impl std::fmt::Debug for CosignConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignConfig")
            .field("max_pin_failures", &self.max_pin_failures)
            .field("notifier_url", &self.notifier_url)
            .field(
                "notifier_token",
                &self.notifier_token.as_ref().map(|_| "***"),
            )
            .field("demo_terminal", &self.demo_terminal)
            .field("activation_second_factor", &self.activation_second_factor)
            .field("activation_identity", &self.activation_identity)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentsFile {
    max_upload: Option<usize>,
    workers: Option<usize>,
    soffice: Option<PathBuf>,
    converters: Option<usize>,
    convert_timeout_secs: Option<u64>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_prefix: Option<String>,
    s3_allow_http: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    device: Option<String>,
    sdf_library: Option<PathBuf>,
    sdf_sign_keys: Option<String>,
    sdf_kek_index: Option<u32>,
    key_file: Option<PathBuf>,
    passphrase_iterations: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PkiFile {
    organisation: Option<String>,
    crl_validity_hours: Option<u64>,
    ocsp_validity_hours: Option<u64>,
    tsa_policy: Option<String>,
    licence_oid: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    body_limit: Option<usize>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    session_ttl_secs: Option<u64>,
    max_failed_logins: Option<u32>,
    lockout_secs: Option<u64>,
    password_iterations: Option<u32>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Security knobs.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Administrator session lifetime.
    pub session_ttl: Duration,
    /// Failed logins before lock.
    pub max_failed_logins: u32,
    /// Lock duration.
    pub lockout: Duration,
    /// PBKDF2 iterations.
    pub password_iterations: u32,
}

/// The crypto device in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// crypto-device's software device (the embedded default).
    Soft,
    /// A GM/T 0018 (SDF) crypto device through its vendor library.
    Sdf {
        /// Path of the vendor's `libsdf.so`.
        library: PathBuf,
        /// Internal SM2 signing key indices this server may allocate.
        sign_key_indices: Vec<u32>,
        /// Internal KEK index.
        kek_index: u32,
    },
}

/// Parses "1-16" or "1,2,5" (or a mix) into key indices; indices start at 1.
pub fn parse_indices(text: &str) -> Result<Vec<u32>> {
    let bad = || {
        Error::Config(format!(
            "keys.sdf_sign_keys: expected e.g. \"1-16\" or \"1,2,5\", not {text:?}"
        ))
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| bad());
        let (lo, hi) = if let Some((a, b)) = part.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            (num(part)?, num(part)?)
        };
        if lo == 0 || hi < lo || hi - lo >= 4096 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// How the crypto device is opened.
#[derive(Debug, Clone)]
pub struct KeysConfig {
    /// Which device holds the keys.
    pub device: DeviceKind,
    /// Master key file of the software device (used when no passphrase is given).
    pub key_file: PathBuf,
    /// PBKDF2-HMAC-SM3 iterations when sealing with a passphrase.
    pub passphrase_iterations: u32,
}

/// PKI settings.
#[derive(Debug, Clone)]
pub struct PkiConfig {
    /// O= in our CA, TSA and OCSP certificates.
    pub organisation: String,
    /// CRL lifetime.
    pub crl_validity: Duration,
    /// OCSP response lifetime.
    pub ocsp_validity: Duration,
    /// TSA policy OID (dotted).
    pub tsa_policy: String,
    /// OID of the practising-licence extension in staff certificates (dotted).
    pub licence_oid: String,
}

/// The validated runtime configuration.
#[derive(Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (never printed in full: it may hold a password).
    pub database_url: String,
    /// Public base URL without a trailing slash.
    pub public_url: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Body limit for JSON endpoints.
    pub body_limit: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// How often a patient-task WebSocket re-reads its task besides the announcements
    /// (`hub::POLL_INTERVAL`; tests lengthen it to prove the announcements arrive).
    pub hub_poll_interval: Duration,
    /// On PostgreSQL, how often a signing-request WebSocket re-reads its request besides the
    /// announcements, in case a notification from another instance was lost
    /// (`hub::FALLBACK_POLL`; not used on SQLite, where every change is announced in process).
    pub hub_fallback_poll: Duration,
    /// Security settings.
    pub security: SecurityConfig,
    /// Crypto device.
    pub keys: KeysConfig,
    /// PKI services.
    pub pki: PkiConfig,
    /// Document archive and signing.
    pub documents: crate::documents::Settings,
    /// Doctor co-signing.
    pub cosign: CosignConfig,
    /// Audit anchoring.
    pub audit: AuditConfig,
    /// SMS gateway.
    pub sms: SmsConfig,
    /// Auto-sign with delegated keys.
    pub autosign: AutosignConfig,
    /// The identity service.
    pub identity: IdentityConfig,
    /// Patient signing.
    pub patient: PatientConfig,
    /// Web pages (the H5 signing page).
    pub web: WebConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("public_url", &self.public_url)
            .field("log_format", &self.log_format)
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Removes a password from a database URL for display.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}://{}:***{}",
                    &url[..scheme_end],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Overrides from the command line (already merged with their environment variables by clap).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `COSIGN_LISTEN`.
    pub listen: Option<String>,
    /// `--data` / `COSIGN_DATA`.
    pub data_dir: Option<PathBuf>,
}

/// Where an environment value comes from; a function so tests can inject values.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Loads `path`, writing the default file first if it does not exist.
    pub fn load_or_create(path: &Path, overrides: &Overrides) -> Result<Self> {
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(path, DEFAULT_TOML).map_err(|e| Error::io(path, e))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_parts(&text, &|k| std::env::var(k).ok(), overrides)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Joins file text, environment and overrides, then validates.
    pub fn from_parts(toml_text: &str, env: EnvLookup<'_>, overrides: &Overrides) -> Result<Self> {
        let file: FileConfig =
            toml::from_str(toml_text).map_err(|e| Error::Config(e.to_string()))?;
        let pick = |flag: Option<String>, var: &str, file: Option<String>, default: &str| {
            flag.or_else(|| env(var))
                .or(file)
                .unwrap_or_else(|| default.to_owned())
        };
        let listen_text = pick(
            overrides.listen.clone(),
            "COSIGN_LISTEN",
            file.listen,
            "127.0.0.1:8080",
        );
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| Error::Config(format!("listen: not an address:port: {listen_text:?}")))?;
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("COSIGN_DATA").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let mut database_url = pick(None, "COSIGN_DATABASE_URL", file.database_url, "");
        if database_url.is_empty() {
            database_url = format!("sqlite://{}?mode=rwc", data_dir.join("yiqian.db").display());
        }
        crate::store::DbKind::from_url(&database_url).map_err(|e| Error::Config(e.to_string()))?;
        let mut public_url = pick(None, "COSIGN_PUBLIC_URL", file.public_url, "");
        if public_url.is_empty() {
            public_url = format!("http://{listen}");
        }
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "public_url must start with http:// or https://: {public_url:?}"
            )));
        }
        let log_format = match pick(None, "COSIGN_LOG_FORMAT", file.log_format, "human").as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(Error::Config(format!(
                    "log_format must be \"human\" or \"json\", not {other:?}"
                )));
            }
        };
        let log_level = pick(None, "COSIGN_LOG", file.log_level, "info");
        let body_limit = parse_env(env, "COSIGN_HTTP_BODY_LIMIT")?
            .or(file.http.body_limit)
            .unwrap_or(2 * 1024 * 1024);
        let timeout_secs = parse_env(env, "COSIGN_HTTP_TIMEOUT_SECS")?
            .or(file.http.timeout_secs)
            .unwrap_or(30);
        if body_limit < 1024 || timeout_secs == 0 {
            return Err(Error::Config(
                "http.body_limit must be ≥ 1024 and http.timeout_secs ≥ 1".into(),
            ));
        }
        let s = file.security;
        let security = SecurityConfig {
            session_ttl: Duration::from_secs(s.session_ttl_secs.unwrap_or(8 * 3600)),
            max_failed_logins: s.max_failed_logins.unwrap_or(5).max(1),
            lockout: Duration::from_secs(s.lockout_secs.unwrap_or(900)),
            password_iterations: s.password_iterations.unwrap_or(100_000).max(10_000),
        };
        let k = file.keys;
        let device = match env("COSIGN_KEYS_DEVICE")
            .or(k.device)
            .as_deref()
            .unwrap_or("soft")
        {
            "soft" => DeviceKind::Soft,
            "sdf" => {
                let library = env("COSIGN_SDF_LIBRARY")
                    .map(PathBuf::from)
                    .or(k.sdf_library)
                    .filter(|p| !p.as_os_str().is_empty())
                    .ok_or_else(|| {
                        Error::Config(
                            "keys.device = \"sdf\" needs keys.sdf_library (the vendor's libsdf.so)"
                                .into(),
                        )
                    })?;
                DeviceKind::Sdf {
                    library,
                    sign_key_indices: parse_indices(k.sdf_sign_keys.as_deref().unwrap_or("1-16"))?,
                    kek_index: k.sdf_kek_index.unwrap_or(1).max(1),
                }
            }
            other => {
                return Err(Error::Config(format!(
                    "keys.device must be \"soft\" or \"sdf\", not {other:?} (see docs/crypto/key-management.md)"
                )));
            }
        };
        let key_file = env("COSIGN_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(k.key_file.filter(|p| !p.as_os_str().is_empty()))
            .unwrap_or_else(|| data_dir.join("master.key"));
        let keys = KeysConfig {
            device,
            key_file,
            passphrase_iterations: k.passphrase_iterations.unwrap_or(600_000).max(1000),
        };
        let p = file.pki;
        let hours = |h: Option<u64>, var: &str| -> Result<Duration> {
            let h = h.unwrap_or(24);
            if h == 0 || h > 24 * 31 {
                return Err(Error::Config(format!("pki.{var} must be 1..=744 hours")));
            }
            Ok(Duration::from_secs(h * 3600))
        };
        let dotted_oid = |value: Option<String>, default: &str, var: &str| -> Result<String> {
            let oid = value.unwrap_or_else(|| default.to_owned());
            if oid.split('.').count() < 2
                || !oid
                    .split('.')
                    .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(Error::Config(format!(
                    "pki.{var} is not a dotted OID: {oid:?}"
                )));
            }
            Ok(oid)
        };
        let tsa_policy = dotted_oid(p.tsa_policy, "1.2.156.112233.2.1", "tsa_policy")?;
        let licence_oid = dotted_oid(p.licence_oid, "1.2.156.112233.1.1", "licence_oid")?;
        let pki = PkiConfig {
            organisation: p.organisation.unwrap_or_else(|| "医签 Yiqian".to_owned()),
            crl_validity: hours(p.crl_validity_hours, "crl_validity_hours")?,
            ocsp_validity: hours(p.ocsp_validity_hours, "ocsp_validity_hours")?,
            tsa_policy,
            licence_oid,
        };
        let defaults = crate::documents::Settings::default();
        let s3 = s3_settings(&file.documents, env)?;
        let documents = crate::documents::Settings {
            max_upload: parse_env(env, "COSIGN_DOCUMENTS_MAX_UPLOAD")?
                .or(file.documents.max_upload)
                .unwrap_or(defaults.max_upload),
            workers: file
                .documents
                .workers
                .unwrap_or(defaults.workers)
                .clamp(1, 64),
            convert: crate::documents::convert::ConvertSettings {
                soffice: env("COSIGN_SOFFICE")
                    .map(PathBuf::from)
                    .or(file.documents.soffice)
                    .unwrap_or(defaults.convert.soffice.clone()),
                converters: file
                    .documents
                    .converters
                    .unwrap_or(defaults.convert.converters)
                    .clamp(1, 32),
                timeout: file
                    .documents
                    .convert_timeout_secs
                    .map_or(defaults.convert.timeout, |s| {
                        Duration::from_secs(s.clamp(1, 3600))
                    }),
                ..defaults.convert.clone()
            },
            s3,
        };
        if documents.max_upload < 1024 {
            return Err(Error::Config("documents.max_upload must be ≥ 1024".into()));
        }
        let max_pin_failures = file.cosign.max_pin_failures.unwrap_or(5);
        if !(1..=20).contains(&max_pin_failures) {
            return Err(Error::Config("cosign.max_pin_failures must be 1–20".into()));
        }
        let notifier_url = file.cosign.notifier_url.clone().filter(|u| !u.is_empty());
        if notifier_url
            .as_deref()
            .is_some_and(|u| !crate::signing::webhooks::valid_url(u))
        {
            return Err(Error::Config(
                "cosign.notifier_url must be an http(s) URL".into(),
            ));
        }
        let sms_url = env("COSIGN_SMS_GATEWAY_URL")
            .or_else(|| file.sms.url.clone())
            .filter(|u| !u.is_empty());
        if sms_url
            .as_deref()
            .is_some_and(|u| !crate::signing::webhooks::valid_url(u))
        {
            return Err(Error::Config("sms.url must be an http(s) URL".into()));
        }
        let sign_name = file.sms.sign_name.clone().unwrap_or_else(|| "医签".into());
        if sign_name.chars().count() > 16 {
            return Err(Error::Config(
                "sms.sign_name must have at most 16 characters".into(),
            ));
        }
        let sms = SmsConfig {
            url: sms_url,
            sign_name,
            token: env("COSIGN_SMS_TOKEN").map(zeroize::Zeroizing::new),
        };
        let activation_second_factor = match file.cosign.activation_second_factor.as_deref() {
            None | Some("sms") if sms.url.is_some() => SecondFactor::Sms,
            None | Some("none") => SecondFactor::None,
            Some("sms") => {
                return Err(Error::Config(
                    "cosign.activation_second_factor = \"sms\" needs [sms] url".into(),
                ));
            }
            Some(other) => {
                return Err(Error::Config(format!(
                    "cosign.activation_second_factor must be \"sms\" or \"none\", not {other:?}"
                )));
            }
        };
        let demo_terminal = match env("COSIGN_DEMO_TERMINAL").as_deref() {
            Some("1" | "true" | "yes") => true,
            Some("0" | "false" | "no") => false,
            Some(other) => {
                return Err(Error::Config(format!(
                    "COSIGN_DEMO_TERMINAL must be true or false, not {other:?}"
                )));
            }
            None => file.cosign.demo_terminal.unwrap_or(false),
        };
        let max_window_hours = file.autosign.max_window_hours.unwrap_or(168);
        if !(1..=8760).contains(&max_window_hours) {
            return Err(Error::Config(
                "autosign.max_window_hours must be 1–8760".into(),
            ));
        }
        let autosign = AutosignConfig {
            max_window: Duration::from_secs(u64::from(max_window_hours) * 3600),
            policy_oid: dotted_oid(
                file.autosign.policy_oid.clone(),
                "1.2.156.112233.3.1",
                "autosign.policy_oid",
            )?,
        };
        let identity = identity_settings(&file.identity, env)?;
        let activation_identity = match file.cosign.activation_identity.as_deref() {
            None | Some("none") => ActivationIdentity::None,
            Some("id_card") => ActivationIdentity::IdCard,
            Some("face") => ActivationIdentity::Face,
            Some("liveness") => ActivationIdentity::Liveness,
            Some(other) => {
                return Err(Error::Config(format!(
                    "cosign.activation_identity must be \"none\", \"id_card\", \"face\" or \"liveness\", not {other:?}"
                )));
            }
        };
        if activation_identity != ActivationIdentity::None && identity.liveness_url.is_none() {
            return Err(Error::Config(format!(
                "cosign.activation_identity = \"{}\" needs [identity] liveness_url",
                activation_identity.as_str()
            )));
        }
        let cosign = CosignConfig {
            max_pin_failures,
            notifier_url,
            notifier_token: env("COSIGN_NOTIFIER_TOKEN").map(zeroize::Zeroizing::new),
            demo_terminal,
            activation_second_factor,
            activation_identity,
        };
        let anchor_every_entries = file.audit.anchor_every_entries.unwrap_or(1000);
        let anchor_every_minutes = file.audit.anchor_every_minutes.unwrap_or(10);
        if !(1..=1_000_000).contains(&anchor_every_entries)
            || !(1..=1440).contains(&anchor_every_minutes)
        {
            return Err(Error::Config(
                "audit.anchor_every_entries must be 1–1000000 and anchor_every_minutes 1–1440"
                    .into(),
            ));
        }
        let audit = AuditConfig {
            anchor_every_entries,
            anchor_every: Duration::from_secs(
                u64::try_from(anchor_every_minutes).unwrap_or(10) * 60,
            ),
        };
        let patient = PatientConfig {
            sms_dev_echo: file.patient.sms_dev_echo.unwrap_or(false),
        };
        let web = WebConfig {
            h5_dir: env("COSIGN_WEB_H5_DIR")
                .map(PathBuf::from)
                .or(file.web.h5_dir)
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(WebConfig::default_h5_dir),
        };
        Ok(Self {
            listen,
            data_dir,
            database_url,
            public_url,
            log_format,
            log_level,
            body_limit,
            request_timeout: Duration::from_secs(timeout_secs),
            hub_poll_interval: crate::hub::POLL_INTERVAL,
            hub_fallback_poll: crate::hub::FALLBACK_POLL,
            security,
            keys,
            pki,
            documents,
            cosign,
            audit,
            sms,
            autosign,
            identity,
            patient,
            web,
        })
    }

    /// A configuration for tests: loopback on an ephemeral port, the given data dir and database.
    pub fn for_test(data_dir: &Path, database_url: Option<&str>) -> Self {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.to_owned()),
        };
        let env = |k: &str| {
            (k == "COSIGN_DATABASE_URL")
                .then(|| database_url.map(str::to_owned))
                .flatten()
        };
        let mut cfg =
            Self::from_parts("", &env, &overrides).unwrap_or_else(|e| unreachable_config(&e));
        // Fast password hashing keeps tests quick; production keeps the configured cost.
        cfg.security.password_iterations = 10_000;
        cfg
    }
}

#[allow(clippy::panic)] // only reachable if the built-in defaults are invalid, which a test checks
fn unreachable_config(e: &Error) -> Config {
    panic!("built-in test configuration is invalid: {e}")
}

fn parse_env<T: std::str::FromStr>(env: EnvLookup<'_>, var: &str) -> Result<Option<T>> {
    env(var)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Error::Config(format!("{var}: not a valid number: {v:?}")))
        })
        .transpose()
}

/// `[identity]` with its environment overrides.
fn identity_settings(f: &IdentityFile, env: EnvLookup<'_>) -> Result<IdentityConfig> {
    let liveness_url = env("COSIGN_LIVENESS_URL")
        .or_else(|| f.liveness_url.clone())
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned());
    if liveness_url
        .as_deref()
        .is_some_and(|u| !crate::signing::webhooks::valid_url(u))
    {
        return Err(Error::Config(
            "identity.liveness_url must be an http(s) URL".into(),
        ));
    }
    let timeout_secs = parse_env(env, "COSIGN_LIVENESS_TIMEOUT_SECS")?
        .or(f.timeout_secs)
        .unwrap_or(30);
    if !(1..=600).contains(&timeout_secs) {
        return Err(Error::Config("identity.timeout_secs must be 1–600".into()));
    }
    Ok(IdentityConfig {
        liveness_url,
        liveness_token_file: env("COSIGN_LIVENESS_TOKEN_FILE")
            .map(PathBuf::from)
            .or_else(|| f.liveness_token_file.clone())
            .filter(|p| !p.as_os_str().is_empty()),
        timeout: Duration::from_secs(timeout_secs),
        keep_portraits: f.keep_portraits.unwrap_or(false),
    })
}

/// `[documents] s3_*` with the keys from `COSIGN_S3_ACCESS_KEY_ID` / `COSIGN_S3_SECRET_ACCESS_KEY`
/// (`None`: the local store).
fn s3_settings(
    d: &DocumentsFile,
    env: EnvLookup<'_>,
) -> Result<Option<crate::documents::S3Settings>> {
    let Some(bucket) = d.s3_bucket.clone() else {
        return Ok(None);
    };
    let endpoint = d.s3_endpoint.clone().ok_or_else(|| {
        Error::Config("documents.s3_endpoint is required with documents.s3_bucket".into())
    })?;
    let allow_http = d.s3_allow_http.unwrap_or(false);
    if !(endpoint.starts_with("https://") || (allow_http && endpoint.starts_with("http://"))) {
        return Err(Error::Config(
            "documents.s3_endpoint must be an https:// URL (http:// needs s3_allow_http = true)"
                .into(),
        ));
    }
    let key = |name: &str| {
        env(name)
            .ok_or_else(|| Error::Config(format!("{name} is required with documents.s3_bucket")))
    };
    Ok(Some(crate::documents::S3Settings {
        endpoint,
        bucket,
        region: d.s3_region.clone().unwrap_or_else(|| "us-east-1".into()),
        access_key_id: key("COSIGN_S3_ACCESS_KEY_ID")?,
        secret_access_key: zeroize::Zeroizing::new(key("COSIGN_S3_SECRET_ACCESS_KEY")?),
        prefix: d.s3_prefix.clone().unwrap_or_else(|| "documents".into()),
        allow_http,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn patient_settings() {
        let o = Overrides::default();
        let cfg = Config::from_parts("", &no_env, &o).unwrap();
        assert!(cfg.sms.url.is_none() && !cfg.patient.sms_dev_echo);
        let file = "[sms]\nurl = \"http://sms.local/send\"\n[patient]\nsms_dev_echo = true\n";
        let token = |k: &str| (k == "COSIGN_SMS_TOKEN").then(|| "sms-secret".to_owned());
        let cfg = Config::from_parts(file, &token, &o).unwrap();
        assert_eq!(cfg.sms.url.as_deref(), Some("http://sms.local/send"));
        assert!(cfg.patient.sms_dev_echo);
        assert_eq!(
            cfg.sms.token.as_deref().map(String::as_str),
            Some("sms-secret")
        );
        assert!(!format!("{:?}", cfg.sms).contains("sms-secret"));
        let url = |k: &str| (k == "COSIGN_SMS_GATEWAY_URL").then(|| "http://gw.local/".to_owned());
        let cfg = Config::from_parts("", &url, &o).unwrap();
        assert_eq!(cfg.sms.url.as_deref(), Some("http://gw.local/"));
        let bad = "[sms]\nurl = \"ftp://x\"\n";
        assert!(Config::from_parts(bad, &no_env, &o).is_err());
        assert!(Config::from_parts("[patient]\nsurprise = 1\n", &no_env, &o).is_err());
    }

    #[test]
    fn identity_settings() {
        let o = Overrides::default();
        let cfg = Config::from_parts("", &no_env, &o).unwrap();
        assert!(cfg.identity.liveness_url.is_none() && !cfg.identity.keep_portraits);
        assert_eq!(cfg.identity.timeout, Duration::from_secs(30));
        assert_eq!(cfg.cosign.activation_identity, ActivationIdentity::None);
        let file = "[identity]\nliveness_url = \"http://127.0.0.1:8090/\"\ntimeout_secs = 5\n\
                    keep_portraits = true\n[cosign]\nactivation_identity = \"liveness\"\n";
        let cfg = Config::from_parts(file, &no_env, &o).unwrap();
        assert_eq!(
            cfg.identity.liveness_url.as_deref(),
            Some("http://127.0.0.1:8090")
        );
        assert_eq!(cfg.identity.timeout, Duration::from_secs(5));
        assert!(cfg.identity.keep_portraits);
        assert_eq!(cfg.cosign.activation_identity, ActivationIdentity::Liveness);
        let env = |k: &str| match k {
            "COSIGN_LIVENESS_URL" => Some("http://vision.local:9000".to_owned()),
            "COSIGN_LIVENESS_TOKEN_FILE" => Some("/run/secrets/liveness".to_owned()),
            "COSIGN_LIVENESS_TIMEOUT_SECS" => Some("12".to_owned()),
            _ => None,
        };
        let cfg = Config::from_parts(file, &env, &o).unwrap();
        assert_eq!(
            cfg.identity.liveness_url.as_deref(),
            Some("http://vision.local:9000")
        );
        assert_eq!(
            cfg.identity.liveness_token_file.as_deref(),
            Some(Path::new("/run/secrets/liveness"))
        );
        assert_eq!(cfg.identity.timeout, Duration::from_secs(12));
        for bad in [
            "[identity]\nliveness_url = \"ftp://x\"\n",
            "[identity]\ntimeout_secs = 0\n",
            "[identity]\nliveness = \"x\"\n",
            "[cosign]\nactivation_identity = \"face\"\n",
            "[identity]\nliveness_url = \"http://v\"\n[cosign]\nactivation_identity = \"iris\"\n",
        ] {
            assert!(Config::from_parts(bad, &no_env, &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn web_settings() {
        let o = Overrides::default();
        let cfg = Config::from_parts("", &no_env, &o).unwrap();
        assert!(cfg.web.h5_dir.ends_with("web-h5/dist"), "{:?}", cfg.web);
        assert!(
            cfg.web.h5_dir.join("../Cargo.toml").is_file(),
            "the source tree's page"
        );
        let file = "[web]\nh5_dir = \"/srv/yiqian/h5\"\n";
        let cfg = Config::from_parts(file, &no_env, &o).unwrap();
        assert_eq!(cfg.web.h5_dir, Path::new("/srv/yiqian/h5"));
        let env = |k: &str| (k == "COSIGN_WEB_H5_DIR").then(|| "/opt/h5".to_owned());
        let cfg = Config::from_parts(file, &env, &o).unwrap();
        assert_eq!(cfg.web.h5_dir, Path::new("/opt/h5"));
        assert!(Config::from_parts("[web]\nh5 = \"x\"\n", &no_env, &o).is_err());
    }

    #[test]
    fn s3_store_settings() {
        let o = Overrides::default();
        let http = "[documents]\ns3_bucket = \"b\"\ns3_endpoint = \"http://minio:9000\"\n";
        let keys = |k: &str| match k {
            "COSIGN_S3_ACCESS_KEY_ID" => Some("id".to_owned()),
            "COSIGN_S3_SECRET_ACCESS_KEY" => Some("secret-key".to_owned()),
            _ => None,
        };
        // Default: the local store.
        assert!(
            Config::from_parts("", &keys, &o)
                .unwrap()
                .documents
                .s3
                .is_none()
        );
        // Keys are required, and plain http only when allowed.
        assert!(Config::from_parts(http, &no_env, &o).is_err());
        assert!(Config::from_parts(http, &keys, &o).is_err());
        let allowed = format!("{http}s3_allow_http = true\n");
        let cfg = Config::from_parts(&allowed, &keys, &o).unwrap();
        let s3 = cfg.documents.s3.clone().unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
            ("b", "documents", "us-east-1")
        );
        assert_eq!(s3.secret_access_key.as_str(), "secret-key");
        assert!(!format!("{cfg:?}").contains("secret-key"));
        // An endpoint without a bucket name is not enough to switch stores; a bucket needs one.
        assert!(Config::from_parts("[documents]\ns3_bucket = \"b\"\n", &keys, &o).is_err());
    }

    #[test]
    fn defaults_parse_and_match_the_example_file() {
        let cfg = Config::from_parts(DEFAULT_TOML, &no_env, &Overrides::default()).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.public_url, "http://127.0.0.1:8080");
        assert!(cfg.database_url.starts_with("sqlite://"));
        let example = include_str!("../../deploy/cosign.example.toml");
        assert_eq!(
            example, DEFAULT_TOML,
            "deploy/cosign.example.toml must equal config::DEFAULT_TOML"
        );
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = "listen = \"127.0.0.1:1000\"\nlog_format = \"json\"\n";
        let env = |k: &str| match k {
            "COSIGN_LISTEN" => Some("127.0.0.1:2000".to_owned()),
            "COSIGN_LOG_FORMAT" => Some("human".to_owned()),
            _ => None,
        };
        let cfg = Config::from_parts(file, &env, &Overrides::default()).unwrap();
        assert_eq!(cfg.listen.port(), 2000);
        assert_eq!(cfg.log_format, LogFormat::Human);
        let over = Overrides {
            listen: Some("127.0.0.1:3000".into()),
            data_dir: None,
        };
        assert_eq!(
            Config::from_parts(file, &env, &over).unwrap().listen.port(),
            3000
        );
    }

    #[test]
    fn typos_and_bad_values_are_rejected() {
        for bad in [
            "lissen = \"x\"",
            "listen = \"nowhere\"",
            "log_format = \"xml\"",
            "database_url = \"mongodb://x\"",
            "[http]\nbody_limit = 5",
            "[keys]\ndevice = \"hsm\"",
            "[keys]\nkey_fil = \"x\"",
            "[pki]\ntsa_policy = \"policy\"",
            "[pki]\ncrl_validity_hours = 0",
        ] {
            assert!(
                Config::from_parts(bad, &no_env, &Overrides::default()).is_err(),
                "{bad}"
            );
        }
        let env = |k: &str| (k == "COSIGN_HTTP_TIMEOUT_SECS").then(|| "soon".to_owned());
        assert!(Config::from_parts("", &env, &Overrides::default()).is_err());
    }

    #[test]
    fn sdf_device_settings() {
        assert_eq!(parse_indices("1-3, 7,2").unwrap(), vec![1, 2, 3, 7]);
        for bad in ["", "0", "3-1", "a", "1-99999", "1,,x"] {
            assert!(parse_indices(bad).is_err(), "{bad:?}");
        }
        let cfg = Config::from_parts(
            "[keys]\ndevice = \"sdf\"\nsdf_library = \"/opt/x/libsdf.so\"\nsdf_sign_keys = \"2-3\"",
            &no_env,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            cfg.keys.device,
            DeviceKind::Sdf {
                library: "/opt/x/libsdf.so".into(),
                sign_key_indices: vec![2, 3],
                kek_index: 1
            }
        );
        assert!(
            Config::from_parts("[keys]\ndevice = \"sdf\"", &no_env, &Overrides::default()).is_err(),
            "library required"
        );
    }

    #[test]
    fn debug_hides_database_password() {
        let env =
            |k: &str| (k == "COSIGN_DATABASE_URL").then(|| "postgres://u:secret@h/db".to_owned());
        let cfg = Config::from_parts("", &env, &Overrides::default()).unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgres://u:***@h/db"));
    }
}
