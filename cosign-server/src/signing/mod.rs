//! Doctor co-signing (issue 6): client systems and their signed calls (`clients`), staff and
//! activation codes (`staff`), phone enrolment and device signatures (`devices`), signing
//! requests from terminals (`requests`), the phone's co-signing rounds (`rounds`) and auto-sign
//! with delegated keys under a co-signed authorisation (`autosign`).
//! The WebSocket hand-off to terminals lives in `crate::hub`, the HTTP routes in
//! `crate::api::cosign`. Design and wire format: docs/cosign-service.md.

pub mod autosign;
pub mod clients;
pub mod devices;
pub mod requests;
pub mod rounds;
pub mod staff;
pub mod webhooks;

/// A reason kept in the audit log (revoking an authorisation, unbinding a phone): at most 200
/// characters, no control characters.
pub fn check_reason(reason: Option<&str>) -> Result<(), crate::api::ApiFailure> {
    match reason {
        Some(r) if r.chars().count() > 200 || r.chars().any(char::is_control) => {
            Err(crate::api::ApiFailure::with(
                cosign_proto::v1::ErrorCode::InvalidArgument,
                "原因须不超过 200 个字符且不含控制字符。",
                "The reason must have at most 200 characters and no control characters.",
            ))
        }
        _ => Ok(()),
    }
}
