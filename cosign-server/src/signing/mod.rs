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
