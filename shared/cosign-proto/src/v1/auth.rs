//! How client systems (HIS, EMR, LIS, PACS...) and enrolled devices sign API calls.
//!
//! Every call carries four headers: the caller id ([`HEADER_APP_ID`] for a client system,
//! [`HEADER_DEVICE_ID`] for a phone), [`HEADER_TIMESTAMP`] (Unix milliseconds),
//! [`HEADER_NONCE`] (16–64 characters `[A-Za-z0-9_-]`, never reused within the window) and
//! [`HEADER_SIGNATURE`], computed over the [`canonical_request`] string:
//!
//! ```text
//! YQ1
//! POST
//! /api/v1/sign-requests?x=1
//! 1764201600000
//! 3f9c0d2a77b14e0c
//! <lowercase hex SM3 of the exact body bytes; SM3 of the empty string for GET>
//! ```
//! Client systems sign with HMAC-SM3 under their app secret (lowercase hex, 64 characters);
//! devices with their SM2 device key (hex `r‖s`, 128 characters, SM2 ID `1234567812345678`).
//! The server refuses timestamps more than [`MAX_SKEW_MS`] away from its clock and nonces it
//! has seen inside that window. Full walkthrough with a test vector: `docs/api/signing.md`.

/// Client system id header.
pub const HEADER_APP_ID: &str = "x-yiqian-app-id";
/// Device id header (enrolled phones).
pub const HEADER_DEVICE_ID: &str = "x-yiqian-device-id";
/// Unix milliseconds header.
pub const HEADER_TIMESTAMP: &str = "x-yiqian-timestamp";
/// Nonce header.
pub const HEADER_NONCE: &str = "x-yiqian-nonce";
/// Signature header.
pub const HEADER_SIGNATURE: &str = "x-yiqian-signature";
/// Allowed distance between the caller's timestamp and the server clock.
pub const MAX_SKEW_MS: i64 = 300_000;
/// First line of the canonical string (the scheme version).
pub const SCHEME: &str = "YQ1";

/// The string a caller signs: scheme, method (upper case), path with query exactly as sent,
/// timestamp, nonce and the body's SM3 in lowercase hex, joined by `\n`.
pub fn canonical_request(
    method: &str,
    path_and_query: &str,
    timestamp_ms: i64,
    nonce: &str,
    body_sm3_hex: &str,
) -> String {
    format!(
        "{SCHEME}\n{}\n{path_and_query}\n{timestamp_ms}\n{nonce}\n{body_sm3_hex}",
        method.to_ascii_uppercase()
    )
}

/// Whether a nonce has the allowed shape (16–64 characters of `[A-Za-z0-9_-]`).
pub fn nonce_is_valid(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_has_six_lines_in_order() {
        let s = canonical_request("post", "/api/v1/x?a=1", 42, "n0nce-n0nce-n0nce", "ab");
        assert_eq!(s, "YQ1\nPOST\n/api/v1/x?a=1\n42\nn0nce-n0nce-n0nce\nab");
    }

    #[test]
    fn nonce_shape() {
        assert!(nonce_is_valid("0123456789abcdef"));
        assert!(!nonce_is_valid("short"));
        assert!(!nonce_is_valid("0123456789abcdef\n"));
        assert!(!nonce_is_valid(&"a".repeat(65)));
    }
}
