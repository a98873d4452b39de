//! Co-signing: client systems, staff and enrolment, signing requests, and the phone's rounds.
//! The two-party protocol messages themselves are `sm2-cosign`'s, carried as they are.

use serde::{Deserialize, Serialize};
use sm2_cosign::keygen::{KeygenConfirm, KeygenRequest, KeygenResponse};
use sm2_cosign::seal::{OprfRequest, OprfResponse};
use sm2_cosign::sign::{SignCommit, SignPartial, SignRequest, SignResult};

// ---------------------------------------------------------------------------------------
// administration

/// `POST /api/v1/admin/apps`: register a client system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientApp {
    /// Display name, e.g. `HIS 门诊`.
    pub name: String,
    /// Granted permissions ([`PERMISSIONS`]).
    pub permissions: Vec<String>,
    /// Token-bucket refill in calls per minute (the older way to say the rate; give at most
    /// one of this and `rate_per_second`). Default: 50 per second.
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
    /// Token-bucket refill in calls per second (default 50).
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Token-bucket size: calls allowed at once after a quiet spell (default: the smaller of
    /// 100 and one minute's refill).
    #[serde(default)]
    pub burst: Option<u32>,
    /// URL POSTed to (HMAC-SM3 signed) when one of the app's requests completes.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

/// Permissions a client system may hold. A grant `<resource>:*` (e.g. `documents:*`) holds
/// every permission of that resource.
pub const PERMISSIONS: [&str; 7] = [
    "auto_sign",
    "documents:read",
    "documents:write",
    "patient_task:create",
    "patient_task:read",
    "sign_request:create",
    "sign_request:read",
];

/// Whether `granted` (as stored) includes `permission`, wildcards included.
pub fn permission_granted(granted: &[String], permission: &str) -> bool {
    granted.iter().any(|g| {
        g == permission
            || g.strip_suffix(":*").is_some_and(|resource| {
                permission
                    .strip_prefix(resource)
                    .is_some_and(|rest| rest.starts_with(':'))
            })
    })
}

/// Whether `grant` may be stored: a known permission, or `<resource>:*` for a known resource.
pub fn permission_is_known(grant: &str) -> bool {
    PERMISSIONS.contains(&grant)
        || grant.strip_suffix(":*").is_some_and(|resource| {
            PERMISSIONS
                .iter()
                .any(|p| p.split_once(':').is_some_and(|(r, _)| r == resource))
        })
}

/// `POST /api/v1/admin/apps/{app_id}/update`: change a client system's permissions, rate limit or
/// enabled flag (fields left out stay as they are). A JSON object only (no `#[serde(default)]`,
/// so an array is refused rather than read as "change nothing").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientApp {
    /// The complete new permission set.
    pub permissions: Option<Vec<String>>,
    /// Refill in calls per minute.
    pub rate_per_minute: Option<u32>,
    /// Refill in calls per second.
    pub rate_per_second: Option<u32>,
    /// Bucket size.
    pub burst: Option<u32>,
    /// Whether the app may call at all.
    pub enabled: Option<bool>,
}

/// A client system as administrators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAppView {
    /// App id.
    pub app_id: String,
    /// Name.
    pub name: String,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Token-bucket refill per minute.
    pub rate_per_minute: u32,
    /// Token-bucket size.
    pub burst: u32,
    /// Whether it may call.
    pub enabled: bool,
    /// Completion callback URL.
    pub webhook_url: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// The registered app; `secret` is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAppCreated {
    /// App id (header `x-yiqian-app-id`).
    pub app_id: String,
    /// HMAC-SM3 secret, lowercase hex.
    pub secret: String,
    /// Name.
    pub name: String,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Token-bucket refill per minute.
    pub rate_per_minute: u32,
    /// Token-bucket size.
    pub burst: u32,
}

/// `POST /api/v1/admin/staff`: one staff member (also one CSV row of a HIS export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    /// Hospital staff number.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Role (医师, 护士, 药师, 技师...).
    pub role: String,
    /// Mobile number (11 digits).
    pub phone: String,
    /// Resident ID number (GB 11643); kept in the crypto device, put in the certificate.
    #[serde(default)]
    pub id_number: Option<String>,
    /// Practising-licence number.
    #[serde(default)]
    pub licence_no: Option<String>,
}

/// A staff member as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffView {
    /// Staff number.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Mobile number with the middle digits hidden.
    pub phone_masked: String,
    /// `new` (no phone yet), `active`, `locked` (PIN failures) or `disabled`.
    pub status: String,
    /// Wrong PINs since the last good signature.
    pub pin_failures: u32,
    /// The current signing certificate's serial.
    pub certificate_serial: Option<String>,
    /// The enrolled phone.
    pub device_id: Option<String>,
}

/// Result of a CSV import: rows created, and per-row errors (1-based line numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffImportReport {
    /// Rows created.
    pub created: u32,
    /// Rows refused, with the reason.
    pub errors: Vec<ImportRowError>,
}

/// One refused CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// 1-based line number.
    pub line: u32,
    /// Stable code.
    pub code: super::ErrorCode,
    /// What is wrong (Chinese).
    pub message: String,
}

/// `POST /api/v1/admin/staff/{id}/activation`: a one-time activation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationIssued {
    /// Staff number.
    pub staff_id: String,
    /// The code (12 characters), shown once.
    pub code: String,
    /// Unix ms after which the code no longer works.
    pub expires_at: i64,
    /// `yiqian://activate?...` for a QR code.
    pub qr_payload: String,
}

// ---------------------------------------------------------------------------------------
// enrolment (phone)

/// `POST /api/v1/phone/enroll`: start enrolment with the activation code and the phone's
/// own SM2 device key (which signs every later call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBegin {
    /// Staff number.
    pub staff_id: String,
    /// Activation code.
    pub activation_code: String,
    /// Phone name shown to administrators.
    pub device_name: String,
    /// Device public key, uncompressed SEC1, hex (130 characters).
    pub device_public_key: String,
    /// The SMS code sent to the phone on record (`POST /api/v1/phone/enroll/sms`), when the
    /// server asks for a second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_code: Option<String>,
}

/// `POST /api/v1/phone/enroll/sms`: send the activation SMS code to the staff member's phone
/// on record (the activation code proves the caller got it from an administrator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollSms {
    /// Staff number.
    pub staff_id: String,
    /// Activation code.
    pub activation_code: String,
}

/// The answer: where the code went and how long it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollSmsSent {
    /// The phone number, masked (`138****5678`).
    pub phone_masked: String,
    /// Unix ms after which the code no longer works.
    pub expires_at: i64,
    /// Unix ms before which no new code is sent.
    pub resend_after: i64,
}

/// The server's answer: the device id to sign with and the key-generation session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollBegun {
    /// Device id (header `x-yiqian-device-id` from now on).
    pub device_id: String,
    /// Session id for the two-party key generation.
    pub session: sm2_cosign::SessionId,
}

/// `POST /api/v1/phone/enroll/keygen` (device-signed): the phone's key-generation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollKeygen {
    /// Key generation, first message.
    pub keygen: KeygenRequest,
}

/// `POST /api/v1/phone/enroll/finish` (device-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinish {
    /// The phone's own joint public key.
    pub confirm: KeygenConfirm,
    /// The blinded PIN, to derive the key that seals the phone's share.
    pub oprf: OprfRequest,
}

/// Enrolment done: the certificate and the OPRF answer to seal the share with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollFinished {
    /// The signing certificate, DER base64.
    pub certificate: String,
    /// Issuer chain up to the root, DER base64 each.
    pub chain: Vec<String>,
    /// Certificate serial (hex).
    pub serial: String,
    /// OPRF evaluation of the blinded PIN.
    pub oprf: OprfResponse,
}

/// Key-generation answer.
pub type EnrollKeygenReply = KeygenResponse;

// ---------------------------------------------------------------------------------------
// signing requests (client systems)

/// One document to sign: either its SM3 digest, or the content itself (base64, shown on
/// the phone; the server computes the digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentToSign {
    /// Name shown on the phone, e.g. `门诊处方 2026-11-27`.
    pub name: String,
    /// SM3 of the document, lowercase hex.
    #[serde(default)]
    pub digest_sm3: Option<String>,
    /// The document, base64.
    #[serde(default)]
    pub content: Option<String>,
    /// Media type of `content` (`application/pdf`, `text/plain`, `application/xml`...).
    #[serde(default)]
    pub media_type: Option<String>,
}

/// `POST /api/v1/sign-requests` (app-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSignRequest {
    /// Staff numbers of the signers.
    pub signers: Vec<String>,
    /// Whether they must sign in the listed order.
    #[serde(default)]
    pub ordered: bool,
    /// The documents (1 to 1000).
    pub documents: Vec<DocumentToSign>,
    /// Title shown on the phone.
    pub title: String,
    /// Patient id (HIS).
    #[serde(default)]
    pub patient_id: Option<String>,
    /// Visit id.
    #[serde(default)]
    pub visit_id: Option<String>,
    /// Document type (处方, 病历, 检验报告...).
    #[serde(default)]
    pub doc_type: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Seconds until the request expires (60 to 86 400, default 600).
    #[serde(default)]
    pub expires_in: Option<u32>,
    /// Auto-sign: `true` requires the server to sign at once with the signers' delegated
    /// keys (refused with `AUTO_SIGN_NOT_AUTHORISED` when an authorisation does not cover
    /// it); `false` never; absent: the server auto-signs when the app holds `auto_sign` and
    /// every signer's active authorisation covers the request, else it stays pending.
    #[serde(default)]
    pub auto_sign: Option<bool>,
    /// Whether the answer carries the QR code as SVG (default `true`). A terminal that draws
    /// the code itself from `qr_payload`, fetches `qr.png`, or only pushes to phones sends
    /// `false`: the server then skips rendering it (about a tenth of its CPU per request).
    #[serde(default)]
    pub qr_image: Option<bool>,
}

/// The created request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestCreated {
    /// Request id.
    pub request_id: String,
    /// Unix ms.
    pub expires_at: i64,
    /// `yiqian://sign?...` for the QR code.
    pub qr_payload: String,
    /// The QR code as SVG; absent when the request said `qr_image: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// Token for the terminal's WebSocket (`/api/v1/sign-requests/{id}/events?token=`),
    /// which browsers cannot sign.
    pub watch_token: String,
}

/// One signer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerState {
    /// Position (0-based).
    pub position: u32,
    /// Staff number.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Unix ms, when signed.
    pub signed_at: Option<i64>,
}

/// One signature made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureView {
    /// Document index.
    pub document: u32,
    /// Signer.
    pub staff_id: String,
    /// Detached CMS SignedData (CAdES-T), DER base64.
    pub cms: String,
    /// Signer certificate serial.
    pub certificate_serial: String,
    /// Unix ms.
    pub signed_at: i64,
    /// Set for an auto-signature: the authorisation whose delegated key made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_id: Option<String>,
}

/// A request's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestView {
    /// Request id.
    pub request_id: String,
    /// `pending`, `completed`, `expired` or `cancelled`.
    pub status: String,
    /// Title.
    pub title: String,
    /// Whether order is enforced.
    pub ordered: bool,
    /// Signers.
    pub signers: Vec<SignerState>,
    /// Documents: name and digest.
    pub documents: Vec<DocumentView>,
    /// Signatures made so far.
    pub signatures: Vec<SignatureView>,
    /// Unix ms.
    pub expires_at: i64,
    /// Patient id.
    pub patient_id: Option<String>,
    /// Visit id.
    pub visit_id: Option<String>,
    /// Document type.
    pub doc_type: Option<String>,
    /// Department.
    pub department: Option<String>,
}

/// A document of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentView {
    /// Index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// SM3 of the document, hex.
    pub digest_sm3: String,
    /// Whether the content can be fetched (`GET .../documents/{index}`).
    pub has_content: bool,
}

/// WebSocket event to the terminal (and the phone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestEvent {
    /// The request's current state (sent first, then after each change).
    Status {
        /// The request.
        request: Box<SignRequestView>,
    },
    /// The phone's pending tasks (sent on connect, then whenever they change).
    Tasks {
        /// Pending requests where this signer still has to sign.
        tasks: Vec<PhoneTask>,
    },
}

// ---------------------------------------------------------------------------------------
// the phone's signing rounds

/// `POST /api/v1/phone/pin` (device-signed): evaluate the blinded PIN. Each call is charged
/// as a failure until a signature in a following round verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinUnlock {
    /// The blinded PIN.
    pub oprf: OprfRequest,
}

/// The OPRF answer and the attempts left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinUnlocked {
    /// OPRF evaluation.
    pub oprf: OprfResponse,
    /// Wrong PINs still allowed before the key locks.
    pub attempts_left: u32,
}

/// One item of a round: a document of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundItem {
    /// Request id.
    pub request_id: String,
    /// Document index.
    pub document: u32,
}

/// `POST /api/v1/phone/rounds` (device-signed): start a co-signing round over items of one or
/// several requests (batch: up to 1000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRound {
    /// What to sign.
    pub items: Vec<RoundItem>,
    /// The nonce from the scanned QR code, when the round follows a scan.
    #[serde(default)]
    pub qr_nonce: Option<String>,
}

/// What the phone checks before it commits: per item the document digest and the DER
/// signed attributes the joint key will sign (their messageDigest must be the digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundStarted {
    /// Round id.
    pub round_id: String,
    /// Per item, in order.
    pub items: Vec<RoundItemView>,
    /// The protocol's first message.
    pub request: SignRequest,
}

/// One item as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundItemView {
    /// Request id.
    pub request_id: String,
    /// Document index.
    pub document: u32,
    /// Document name.
    pub name: String,
    /// SM3 of the document, hex.
    pub digest_sm3: String,
    /// DER signed attributes, base64.
    pub signed_attributes: String,
}

/// `POST /api/v1/phone/rounds/{id}/commit` (device-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundCommit {
    /// Nonce commitments.
    pub commit: SignCommit,
}

/// The server's partial signatures.
pub type RoundPartial = SignPartial;

/// `POST /api/v1/phone/rounds/{id}/result` (device-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundResult {
    /// The finished signatures.
    pub result: SignResult,
}

/// Per-item outcome of a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundOutcome {
    /// Round id.
    pub round_id: String,
    /// One per item, in order.
    pub items: Vec<ItemOutcome>,
}

/// One item's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOutcome {
    /// Request id.
    pub request_id: String,
    /// Document index.
    pub document: u32,
    /// Whether the signature was stored.
    pub ok: bool,
    /// The error code when not.
    pub code: Option<super::ErrorCode>,
}

/// A pending task on the phone's list (`GET /api/v1/phone/tasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneTask {
    /// The request, as the terminal sees it.
    pub request: SignRequestView,
    /// Whether it is this signer's turn.
    pub my_turn: bool,
}

// ---------------------------------------------------------------------------------------
// auto-sign authorisations

/// `POST /api/v1/phone/autosign` (device-signed): ask for an auto-sign authorisation. The
/// server answers with the authorisation document inside a signing request for this doctor;
/// the phone co-signs it like any document, and the server then creates the delegated key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAuthorisation {
    /// Document types covered (1–32, each 1–64 characters), as terminals send `doc_type`.
    pub doc_types: Vec<String>,
    /// Departments covered (1–32), as terminals send `department`.
    pub departments: Vec<String>,
    /// Start, unix ms (default: now; at most 5 minutes in the past).
    #[serde(default)]
    pub not_before: Option<i64>,
    /// End, unix ms (the window is at most `[autosign] max_window_hours` long).
    pub not_after: i64,
}

/// The authorisation document the doctor co-signs: canonical JSON (RFC 8785 form: keys
/// sorted, no whitespace, UTF-8). Field order here is the sorted order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationDocument {
    /// Authorisation id.
    pub authorisation_id: String,
    /// Unix ms.
    pub created_at: i64,
    /// Serial (hex) of the delegated certificate the server will issue on acceptance.
    pub delegated_certificate_serial: String,
    /// The doctor.
    pub doctor: AuthorisationDoctor,
    /// Hospital (O of the certificates).
    pub hospital: String,
    /// What is covered.
    pub scope: AuthorisationScope,
    /// Always `yiqian.autosign.authorisation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Format version (1).
    pub version: u32,
    /// When.
    pub window: AuthorisationWindow,
}

/// The doctor of an authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationDoctor {
    /// Department.
    pub department: String,
    /// Name.
    pub name: String,
    /// Signing certificate serial (the co-signing key's).
    pub signing_certificate_serial: String,
    /// Staff number.
    pub staff_id: String,
}

/// Scope of an authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationScope {
    /// Departments, sorted.
    pub departments: Vec<String>,
    /// Document types, sorted.
    pub doc_types: Vec<String>,
}

/// Time window of an authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationWindow {
    /// End, unix ms.
    pub not_after: i64,
    /// Start, unix ms.
    pub not_before: i64,
}

/// An authorisation as the doctor, administrators and relying parties see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorisationView {
    /// Authorisation id.
    pub authorisation_id: String,
    /// Doctor.
    pub staff_id: String,
    /// `pending` (waiting for the co-signature), `active`, `expired` or `revoked`.
    pub state: String,
    /// Document types covered.
    pub doc_types: Vec<String>,
    /// Departments covered.
    pub departments: Vec<String>,
    /// Unix ms.
    pub not_before: i64,
    /// Unix ms.
    pub not_after: i64,
    /// Serial of the delegated certificate.
    pub delegated_certificate_serial: String,
    /// The delegated certificate, DER base64 (once active).
    pub delegated_certificate: Option<String>,
    /// The signing request that carries the document.
    pub request_id: String,
    /// The canonical JSON document.
    pub document: String,
    /// SM3 of the document, hex.
    pub document_sm3: String,
    /// Auto-signatures made under it.
    pub uses: u64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub activated_at: Option<i64>,
    /// Unix ms.
    pub revoked_at: Option<i64>,
    /// Who revoked it (`staff:<id>`, `admin:<name>`).
    pub revoked_by: Option<String>,
}

/// `POST /api/v1/phone/unbind` (解绑本机): the phone gives up its enrolment. The device is
/// revoked at once and the server's key share destroyed; with `revoke_certificate` (the app asks
/// for a second confirmation) the doctor's signing certificate is revoked too
/// (cessationOfOperation) and their auto-sign authorisations with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnbindDevice {
    /// Also revoke the signing certificate (and the auto-sign authorisations).
    #[serde(default)]
    pub revoke_certificate: bool,
    /// Reason, kept in the audit log (at most 200 characters).
    pub reason: Option<String>,
}

/// The answer to [`UnbindDevice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUnbound {
    /// The device, now revoked.
    pub device_id: String,
    /// The signing certificate's serial (hex), if the device had one.
    pub certificate_serial: Option<String>,
    /// Whether the certificate is now revoked (asked for, or already revoked).
    pub certificate_revoked: bool,
    /// Auto-sign authorisations revoked with the certificate.
    pub authorisations_revoked: u32,
}

/// `POST /api/v1/admin/autosign/{id}/revoke`: why (optional, at most 200 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAuthorisation {
    /// Reason, kept in the audit log.
    pub reason: Option<String>,
}
