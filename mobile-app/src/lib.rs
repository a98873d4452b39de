//! The phone side of Yiqian co-signing, headless: one implementation for the Tauri app, the
//! `cosign-phone` CLI and the tests.
//!
//! * [`state::PhoneState`]: what the phone keeps — its device key, the key share `d1` sealed
//!   under the PIN (`sm2_cosign::seal`, so a stolen phone cannot test PINs offline), the
//!   certificate;
//! * [`client::Client`]: API calls signed with the device key (`cosign_proto::v1::auth`);
//! * [`enroll`]: activation code → two-party key generation → certificate → sealing;
//! * [`sign`]: PIN unlock → check every item (the digest inside the signed attributes is the
//!   document's, recomputed from the content when the phone has it) → co-signing round;
//! * [`autosign`]: auto-sign authorisations (create by co-signing the document, list, revoke).
#![forbid(unsafe_code)]

pub mod autosign;
pub mod client;
pub mod enroll;
pub mod sign;
pub mod state;

pub use client::Client;
pub use state::PhoneState;

/// What can go wrong on the phone.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The server refused (its stable code and Chinese/English text).
    #[error("server refused: {0}")]
    Server(cosign_proto::v1::ApiError),
    /// The server could not be reached or answered something unreadable.
    #[error("network: {0}")]
    Network(String),
    /// The PIN is wrong (the server counted the attempt).
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin {
        /// Attempts left before the key locks.
        attempts_left: u32,
    },
    /// What the server asked to sign is not what it showed (different digest, key, count).
    #[error("refused to sign: {0}")]
    Mismatch(String),
    /// The co-signing protocol failed a check.
    #[error("co-signing protocol: {0}")]
    Protocol(#[from] sm2_cosign::Error),
    /// Local state is missing or unreadable.
    #[error("local state: {0}")]
    State(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, PhoneError>;
