//! Auto-sign authorisations from the phone: the doctor asks for a scope (document types,
//! departments, time window); the server answers with the authorisation document inside a
//! signing request; the phone checks that the document says what was asked, co-signs it with
//! the PIN like any document, and the server then holds a delegated key for that scope.
//! Revocation is one device-signed call and takes effect at once.

use cosign_proto::v1::cosign::{
    AuthorisationDocument, AuthorisationView, CreateAuthorisation, RevokeAuthorisation,
};
use sm3::{Digest, Sm3};

use crate::client::Client;
use crate::state::PhoneState;
use crate::{PhoneError, Result, sign};

/// The request for a window of `hours` starting now.
pub fn request_for_hours(
    doc_types: Vec<String>,
    departments: Vec<String>,
    hours: u32,
) -> Result<CreateAuthorisation> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| PhoneError::State("system clock".into()))?;
    Ok(CreateAuthorisation {
        doc_types,
        departments,
        not_before: Some(now),
        not_after: now + i64::from(hours) * 3_600_000,
    })
}

/// Asks the server for an authorisation (state `pending` until co-signed).
pub async fn create(client: &Client, req: &CreateAuthorisation) -> Result<AuthorisationView> {
    client.post("/api/v1/phone/autosign", req).await
}

/// The doctor's authorisations, newest first.
pub async fn list(client: &Client) -> Result<Vec<AuthorisationView>> {
    client.get("/api/v1/phone/autosign/list").await
}

/// One authorisation.
pub async fn get(client: &Client, id: &str) -> Result<AuthorisationView> {
    client.get(&format!("/api/v1/phone/autosign/{id}")).await
}

/// Asks the server to activate a co-signed authorisation (idempotent).
pub async fn activate(client: &Client, id: &str) -> Result<AuthorisationView> {
    client
        .post(
            &format!("/api/v1/phone/autosign/{id}/activate"),
            &serde_json::json!({}),
        )
        .await
}

/// Revokes an authorisation at once.
pub async fn revoke(
    client: &Client,
    id: &str,
    reason: Option<String>,
) -> Result<AuthorisationView> {
    client
        .post(
            &format!("/api/v1/phone/autosign/{id}/revoke"),
            &RevokeAuthorisation { reason },
        )
        .await
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Checks that the server's document is what the doctor asked for, for this doctor, and that
/// its SM3 is the one recorded.
pub fn check_document(
    state: &PhoneState,
    req: &CreateAuthorisation,
    view: &AuthorisationView,
) -> Result<AuthorisationDocument> {
    let doc: AuthorisationDocument = serde_json::from_str(&view.document)
        .map_err(|e| PhoneError::Mismatch(format!("authorisation document: {e}")))?;
    let mismatch = |what: &str| {
        Err(PhoneError::Mismatch(format!(
            "authorisation {what} differs"
        )))
    };
    if hex::encode(Sm3::digest(view.document.as_bytes())) != view.document_sm3 {
        return mismatch("document digest");
    }
    if doc.kind != "yiqian.autosign.authorisation" || doc.version != 1 {
        return mismatch("document type");
    }
    if doc.doctor.staff_id != state.staff_id {
        return mismatch("doctor");
    }
    if doc.scope.doc_types != sorted(&req.doc_types)
        || doc.scope.departments != sorted(&req.departments)
    {
        return mismatch("scope");
    }
    if doc.window.not_after != req.not_after / 1000 * 1000
        || req
            .not_before
            .is_some_and(|nb| doc.window.not_before != nb / 1000 * 1000)
    {
        return mismatch("window");
    }
    if doc.authorisation_id != view.authorisation_id
        || doc.delegated_certificate_serial != view.delegated_certificate_serial
    {
        return mismatch("identifiers");
    }
    Ok(doc)
}

/// The whole flow: create, check the document, co-sign it after one PIN entry (the usual
/// round checks: the phone hashes the content it shows), then activate.
pub async fn authorise(
    client: &Client,
    state: &PhoneState,
    pin: &str,
    req: &CreateAuthorisation,
) -> Result<AuthorisationView> {
    let view = create(client, req).await?;
    check_document(state, req, &view)?;
    let items = sign::items_of(client, &view.request_id).await?;
    let request = sign::request(client, &view.request_id).await?;
    if items.len() != 1
        || request
            .documents
            .first()
            .is_none_or(|d| d.digest_sm3 != view.document_sm3)
    {
        return Err(PhoneError::Mismatch(
            "the signing request does not carry the authorisation document".into(),
        ));
    }
    let outcome = sign::sign_items(client, state, pin, items, None).await?;
    if let Some(bad) = outcome.items.iter().find(|i| !i.ok) {
        return Err(PhoneError::Mismatch(format!(
            "the authorisation was not signed: {:?}",
            bad.code
        )));
    }
    activate(client, &view.authorisation_id).await
}
