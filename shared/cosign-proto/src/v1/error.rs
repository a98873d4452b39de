//! The error body every endpoint returns: `{ "code", "message", "message_en" }`.
//!
//! `code` is stable and greppable: clients branch on it, never on the text. `message` is
//! Simplified Chinese (shown to users first), `message_en` the English text.

use serde::{Deserialize, Serialize};

/// Stable error codes. Adding a variant is a forward-compatible change; renaming one is not.
///
/// Each code fixes its HTTP status and its user-facing text in both languages (see
/// [`ErrorCode::status`] and [`ErrorCode::messages`]); the match is exhaustive so a new code
/// forces a choice of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request body is not valid JSON or does not match the expected shape.
    MalformedJson,
    /// The request has the wrong `Content-Type`.
    UnsupportedMediaType,
    /// The request body exceeds the configured limit.
    PayloadTooLarge,
    /// A field is present but its value is invalid.
    InvalidArgument,
    /// No route matches the path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// No or invalid credentials.
    Unauthenticated,
    /// Wrong user name or password (deliberately not saying which).
    BadCredentials,
    /// The account is locked after too many failed attempts.
    AccountLocked,
    /// Authenticated, but the password must be changed before anything else.
    PasswordChangeRequired,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// The new password does not meet the password policy.
    WeakPassword,
    /// Too many requests; retry later.
    RateLimited,
    /// The request took too long to process.
    Timeout,
    /// The database or another dependency is unavailable.
    Unavailable,
    /// A certificate signing request (PKCS#10) is malformed, not SM2, or its signature
    /// (proof of possession) does not verify.
    InvalidCsr,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// An uploaded document is empty, corrupt, encrypted, or unsafe to convert (e.g. a zip bomb).
    InvalidDocument,
    /// An uploaded file is not of a supported kind (PDF, DOCX, DOC, JPEG, PNG).
    UnsupportedDocumentType,
    /// The document changed while the request was processed (another signature); retry.
    DocumentConflict,
    /// An unexpected server-side failure; details are in the server log, never in the response.
    Internal,
    /// No issuing CA of that name (PKI: use staff, patient or seal).
    UnknownCa,
    /// A certificate profile is unknown, does not match the CA, or one of its fields is invalid
    /// (the message names the field).
    InvalidProfile,
    /// A resident ID number (GB 11643) has the wrong length, characters or check digit.
    InvalidResidentId,
    /// The certificate cannot be renewed (CA, TSA, OCSP or patient event certificate).
    NotRenewable,
    /// A signed API call's signature (HMAC-SM3 for client systems, SM2 for devices) is
    /// missing, malformed or wrong, or its timestamp is outside the allowed window.
    BadSignature,
    /// A signed API call reused a nonce inside the replay window.
    Replayed,
    /// The activation code is wrong, used or expired.
    ActivationInvalid,
    /// Too many wrong PINs: the signing key is locked until an administrator unlocks it.
    KeyLocked,
    /// Something with that identifier already exists.
    AlreadyExists,
    /// The signing request has expired.
    RequestExpired,
    /// The signing request is already completed or cancelled.
    RequestClosed,
    /// The signers must sign in order and an earlier signer has not signed yet.
    NotYourTurn,
    /// This staff member is not a signer of the request.
    NotASigner,
    /// A co-signing message broke the protocol (wrong session, bad proof, failed check).
    ProtocolViolation,
    /// Uploaded certificate data is not a PEM / DER X.509 certificate (or bundle) with an SM2
    /// key, is truncated, or is too large.
    InvalidCertificate,
    /// A certificate uploaded as a trust anchor or intermediate is not a CA certificate
    /// (basicConstraints cA and keyUsage keyCertSign).
    NotACaCertificate,
    /// A certificate (or one in its chain) has expired.
    CertificateExpired,
    /// A certificate (or one in its chain) is not valid yet.
    CertificateNotYetValid,
    /// The certificate chain does not end at a configured external trust anchor.
    UnknownTrustAnchor,
    /// The certificate chain is incomplete or a signature in it does not verify.
    BrokenChain,
    /// A certificate's key usage does not allow this use.
    WrongKeyUsage,
    /// A certificate in the chain is revoked (by a supplied CRL).
    CertificateRevoked,
    /// The certificate's public key is not one of this hospital's recorded requests.
    KeyMismatch,
    /// The certificate (or trust anchor) is already imported.
    AlreadyImported,
    /// Activation needs the SMS code sent to the phone on record (ask for it first).
    SmsCodeRequired,
    /// The SMS code is wrong, expired or used up; ask for a new one.
    SmsCodeInvalid,
    /// Auto-sign was required but no active authorisation of the signer covers the request
    /// (document type, department, time), or it was revoked.
    AutoSignNotAuthorised,
    /// Patient signing (issue 8): the task's link has expired.
    TaskExpired,
    /// Patient signing: the task is already signed (or another submission was accepted).
    TaskUsed,
    /// Patient signing: the task was cancelled by the hospital system.
    TaskCancelled,
    /// Patient signing: the SMS code is wrong or expired (`attempts_left` in the body).
    OtpInvalid,
    /// Patient signing: too many wrong SMS codes; the task is locked.
    OtpLocked,
    /// Patient signing: the call needs the session from SMS verification.
    SessionRequired,
    /// Patient signing: the document must be read to the end first.
    ReadRequired,
    /// Patient signing: handwriting strokes or the signature image are malformed or too many.
    BadStrokes,
    /// Patient signing: a proxy task needs the proxy's details before submission.
    ProxyRequired,
    /// Patient signing: an ID number fails GB 11643 (length, birth date or check digit).
    InvalidIdNumber,
    // --- Bedside pads (issue 8, `docs/api/patient.md` §5) ---
    /// Bedside pad: the body of `/api/v1/pad/call` is not a request envelope, or cannot be
    /// decrypted.
    PadEnvelopeInvalid,
    /// Bedside pad: no enrolled pad has this certificate serial, or the envelope's signature
    /// does not verify with the enrolled key.
    PadUnknown,
    /// Bedside pad: the pad was revoked by an administrator.
    PadRevoked,
    /// Bedside pad: the envelope's nonce was already seen (a replay).
    PadReplay,
    /// Bedside pad: the pad's clock differs from the server's by more than five minutes.
    PadClock,
    /// Bedside pad: the enrolment code is wrong, used or expired.
    PadCodeInvalid,
    // --- Identity checks through the `liveness` service (issues 8 and 10) ---
    /// The identity service (`liveness serve`) is down, overloaded or timed out; retry later.
    IdentityServiceUnavailable,
    /// The identity checks the task or the activation policy asks for have not all passed.
    IdentityCheckRequired,
    /// The photo could not be judged: not an image, empty, too large, no card or no single
    /// face in it (the message says which).
    IdentityImageInvalid,
    /// The ID card or the face does not belong to the expected person.
    IdentityMismatch,
    /// The liveness check failed (action not seen, static frames, face changed...).
    LivenessFailed,
    /// The liveness challenge is unknown, expired or already used; ask for a new one.
    ChallengeInvalid,
    /// An identity method other than SMS was asked for but no identity service is configured.
    IdentityNotConfigured,
}

impl ErrorCode {
    /// The HTTP status for this code.
    pub const fn status(self) -> u16 {
        match self {
            Self::MalformedJson
            | Self::InvalidArgument
            | Self::WeakPassword
            | Self::InvalidCsr
            | Self::UnknownCa
            | Self::InvalidProfile
            | Self::InvalidResidentId
            | Self::ActivationInvalid
            | Self::ProtocolViolation
            | Self::InvalidCertificate
            | Self::NotACaCertificate
            | Self::SmsCodeRequired
            | Self::SmsCodeInvalid
            | Self::OtpInvalid
            | Self::ReadRequired
            | Self::BadStrokes
            | Self::ProxyRequired
            | Self::InvalidIdNumber
            | Self::PadEnvelopeInvalid
            | Self::PadCodeInvalid
            | Self::IdentityCheckRequired
            | Self::ChallengeInvalid
            | Self::IdentityNotConfigured => 400,
            Self::Unauthenticated
            | Self::BadCredentials
            | Self::BadSignature
            | Self::Replayed
            | Self::SessionRequired
            | Self::PadUnknown
            | Self::PadClock => 401,
            Self::Forbidden
            | Self::PasswordChangeRequired
            | Self::NotASigner
            | Self::AutoSignNotAuthorised
            | Self::PadRevoked => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType | Self::UnsupportedDocumentType => 415,
            Self::AlreadyRevoked
            | Self::NotRenewable
            | Self::DocumentConflict
            | Self::AlreadyExists
            | Self::RequestClosed
            | Self::NotYourTurn
            | Self::AlreadyImported
            | Self::TaskUsed
            | Self::PadReplay => 409,
            Self::RequestExpired | Self::TaskExpired | Self::TaskCancelled => 410,
            Self::InvalidDocument
            | Self::CertificateExpired
            | Self::CertificateNotYetValid
            | Self::UnknownTrustAnchor
            | Self::BrokenChain
            | Self::WrongKeyUsage
            | Self::CertificateRevoked
            | Self::KeyMismatch
            | Self::IdentityImageInvalid
            | Self::IdentityMismatch
            | Self::LivenessFailed => 422,
            Self::AccountLocked | Self::KeyLocked | Self::OtpLocked => 423,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable | Self::IdentityServiceUnavailable => 503,
        }
    }

    /// Default user-facing text: (Simplified Chinese, English). Each says what to do next.
    pub const fn messages(self) -> (&'static str, &'static str) {
        match self {
            Self::MalformedJson => (
                "请求内容不是有效的 JSON，或字段不符合接口说明，请检查后重试。",
                "The request body is not valid JSON or does not match the API; check it and retry.",
            ),
            Self::UnsupportedMediaType => (
                "请求的 Content-Type 不受支持，请使用 application/json。",
                "Unsupported Content-Type; send application/json.",
            ),
            Self::PayloadTooLarge => (
                "请求内容过大，请缩小后重试。",
                "The request body is too large; make it smaller and retry.",
            ),
            Self::InvalidArgument => (
                "请求参数无效，请检查后重试。",
                "A request parameter is invalid; check it and retry.",
            ),
            Self::NotFound => (
                "请求的地址不存在，请核对接口路径。",
                "No such resource; check the API path.",
            ),
            Self::MethodNotAllowed => (
                "该地址不支持此请求方法，请核对接口说明。",
                "This method is not allowed here; check the API documentation.",
            ),
            Self::Unauthenticated => (
                "未登录或登录已过期，请重新登录。",
                "Not signed in or the session has expired; sign in again.",
            ),
            Self::BadCredentials => ("用户名或密码错误。", "Wrong user name or password."),
            Self::AccountLocked => (
                "账号因多次登录失败已被锁定，请稍后再试或联系系统管理员解锁。",
                "The account is locked after repeated failures; wait, or ask an administrator to unlock it.",
            ),
            Self::PasswordChangeRequired => (
                "首次登录或密码已重置，请先修改密码。",
                "You must change your password before continuing.",
            ),
            Self::Forbidden => (
                "您没有执行此操作的权限，如需开通请联系系统管理员。",
                "You are not allowed to do this; ask an administrator if you need access.",
            ),
            Self::WeakPassword => (
                "新密码不符合要求：至少 12 位，且包含字母和数字，不能与旧密码相同。",
                "The new password must have at least 12 characters, letters and digits, and differ from the old one.",
            ),
            Self::RateLimited => (
                "请求过于频繁，请稍后再试。",
                "Too many requests; try again later.",
            ),
            Self::Timeout => (
                "请求处理超时，请稍后重试。",
                "The request timed out; try again later.",
            ),
            Self::Unavailable => (
                "服务暂时不可用（数据库或依赖服务无响应），请稍后重试或联系信息科。",
                "The service is temporarily unavailable; try again later or contact IT.",
            ),
            Self::InvalidCsr => (
                "证书请求（CSR）无效：须为 PEM 或 DER 格式的 PKCS#10 SM2 请求且签名正确，请重新生成后提交。",
                "The certificate signing request is invalid: send an SM2 PKCS#10 request (PEM or DER) with a valid signature.",
            ),
            Self::AlreadyRevoked => (
                "该证书已被吊销，无需重复操作。",
                "The certificate is already revoked; nothing to do.",
            ),
            Self::InvalidDocument => (
                "文件为空、已损坏、已加密或无法安全转换，请检查文件后重新上传。",
                "The file is empty, corrupt, encrypted or cannot be converted safely; check it and upload again.",
            ),
            Self::UnsupportedDocumentType => (
                "不支持的文件类型，请上传 PDF、DOCX、DOC、JPG 或 PNG 文件。",
                "Unsupported file type; upload a PDF, DOCX, DOC, JPG or PNG file.",
            ),
            Self::DocumentConflict => (
                "文档已被其他操作更新（例如他人已签名），请刷新后重试。",
                "The document was changed meanwhile (e.g. signed by someone else); reload and retry.",
            ),
            Self::Internal => (
                "服务器内部错误，已记录日志，请联系信息科并提供请求编号。",
                "Internal server error; it has been logged. Contact IT with the request id.",
            ),
            Self::UnknownCa => (
                "未知的签发 CA，请使用 staff（医护人员）、patient（患者事件）或 seal（机构印章）。",
                "Unknown issuing CA; use staff, patient or seal.",
            ),
            Self::InvalidProfile => (
                "证书模板或其字段无效，请按提示修改后重试。",
                "The certificate profile or one of its fields is invalid; correct it and retry.",
            ),
            Self::InvalidResidentId => (
                "居民身份证号码无效：须为 18 位，且校验码正确（GB 11643）。",
                "The resident ID number is invalid: it must have 18 characters and a correct check digit (GB 11643).",
            ),
            Self::NotRenewable => (
                "该证书不能更新（CA、时间戳、OCSP 证书及患者事件证书不支持更新），请重新签发。",
                "This certificate cannot be renewed (CA, TSA, OCSP and patient event certificates are not renewed); issue a new one.",
            ),
            Self::BadSignature => (
                "接口签名无效或时间戳超出允许范围，请检查应用密钥与系统时间。",
                "The request signature is invalid or its timestamp is out of range; check the app secret and the clock.",
            ),
            Self::Replayed => (
                "请求已被处理过（随机数重复），请用新的随机数重新签名后再试。",
                "This request was already seen (nonce reused); sign it again with a fresh nonce.",
            ),
            Self::ActivationInvalid => (
                "激活码错误、已使用或已过期，请联系管理员重新获取。",
                "The activation code is wrong, used or expired; ask an administrator for a new one.",
            ),
            Self::SmsCodeRequired => (
                "激活需要短信验证码：请先获取发送到您登记手机号的验证码，再填写后激活。",
                "Activation needs the SMS code sent to your phone on record: request it, then enter it.",
            ),
            Self::SmsCodeInvalid => (
                "短信验证码错误或已过期，请重新获取。",
                "The SMS code is wrong or expired; request a new one.",
            ),
            Self::KeyLocked => (
                "PIN 码错误次数过多，签名密钥已锁定，请联系管理员解锁。",
                "Too many wrong PINs: the signing key is locked. Ask an administrator to unlock it.",
            ),
            Self::AlreadyExists => (
                "该记录已存在，请勿重复创建。",
                "It already exists; do not create it twice.",
            ),
            Self::RequestExpired => (
                "签名请求已过期，请在业务系统中重新发起。",
                "The signing request has expired; start it again from the hospital system.",
            ),
            Self::RequestClosed => (
                "签名请求已完成或已取消，无需再次签名。",
                "The signing request is already completed or cancelled; nothing to sign.",
            ),
            Self::NotYourTurn => (
                "请等待前一位签名人签名后再签。",
                "Wait until the previous signer has signed.",
            ),
            Self::NotASigner => (
                "您不是该请求指定的签名人。",
                "You are not a signer of this request.",
            ),
            Self::ProtocolViolation => (
                "协同签名消息无效（会话不符或校验失败），请重新发起签名。",
                "The co-signing message is invalid (wrong session or a failed check); start signing again.",
            ),
            Self::InvalidCertificate => (
                "证书数据无效：须为 PEM 或 DER 格式的 SM2 X.509 证书（可为证书链），且未被截断。",
                "The certificate data is invalid: send SM2 X.509 certificates as PEM or DER (a bundle is allowed), complete and untruncated.",
            ),
            Self::NotACaCertificate => (
                "该证书不是 CA 证书（缺少 cA 基本约束或 keyCertSign 密钥用法），不能作为信任锚或中级 CA 导入。",
                "This is not a CA certificate (basicConstraints cA and keyUsage keyCertSign are required); it cannot be a trust anchor or intermediate.",
            ),
            Self::CertificateExpired => (
                "证书（或其证书链中的证书）已过期，请向 CA 申请新证书。",
                "The certificate (or one in its chain) has expired; obtain a new one from the CA.",
            ),
            Self::CertificateNotYetValid => (
                "证书（或其证书链中的证书）尚未生效，请检查服务器时间或稍后再导入。",
                "The certificate (or one in its chain) is not valid yet; check the server clock or import it later.",
            ),
            Self::UnknownTrustAnchor => (
                "证书链未终止于已配置的外部信任根，请先由管理员导入签发 CA 的根证书。",
                "The chain does not end at a configured external trust anchor; an administrator must upload the issuing CA's root first.",
            ),
            Self::BrokenChain => (
                "证书链不完整或签名验证失败，请提供完整的中级 CA 证书并核对证书未被篡改。",
                "The certificate chain is incomplete or a signature in it does not verify; supply the intermediate CA certificates and check the certificate is unaltered.",
            ),
            Self::WrongKeyUsage => (
                "证书的密钥用法不允许此用途，请向 CA 申请签名用途的证书。",
                "The certificate's key usage does not allow this use; request a signing certificate from the CA.",
            ),
            Self::CertificateRevoked => (
                "证书（或其证书链中的证书）已被吊销。",
                "The certificate (or one in its chain) is revoked.",
            ),
            Self::KeyMismatch => (
                "证书的公钥与本院记录的任何证书请求都不匹配，只能导入为本院密钥签发的证书。",
                "The certificate's public key matches none of this hospital's recorded requests; only certificates for keys we hold can be imported.",
            ),
            Self::AlreadyImported => (
                "该证书已导入，无需重复操作。",
                "The certificate is already imported; nothing to do.",
            ),
            Self::AutoSignNotAuthorised => (
                "该医师没有覆盖此文书类型、科室和时间的有效自动签名授权（或授权已撤销），请改为扫码签名。",
                "No active auto-sign authorisation of the signer covers this document type, department and time (or it was revoked); use normal signing.",
            ),
            Self::TaskExpired => (
                "签署链接已过期，请联系医护人员重新发送。",
                "The signing link has expired; ask the ward staff to send a new one.",
            ),
            Self::TaskUsed => (
                "该文书已签署完成，链接不能再次使用。",
                "This document is already signed; the link cannot be used again.",
            ),
            Self::TaskCancelled => (
                "该签署任务已被医院撤销，无需签署。",
                "The hospital has withdrawn this signing task; nothing to sign.",
            ),
            Self::OtpInvalid => (
                "短信验证码错误或已过期，请核对后重新输入。",
                "The SMS code is wrong or has expired; check it and try again.",
            ),
            Self::OtpLocked => (
                "验证码错误次数过多，签署任务已锁定，请联系医护人员重新发起。",
                "Too many wrong codes: the signing task is locked. Ask the ward staff to start it again.",
            ),
            Self::SessionRequired => (
                "请先完成短信验证后再继续。",
                "Verify with the SMS code first.",
            ),
            Self::ReadRequired => (
                "请先完整阅读文书（滑动到最后一页）后再签署。",
                "Read the whole document (scroll to the last page) before signing.",
            ),
            Self::BadStrokes => (
                "签名笔迹数据无效或过多，请清除后重新签名。",
                "The handwriting data is invalid or too large; clear it and sign again.",
            ),
            Self::ProxyRequired => (
                "代签须先填写代签人信息（关系、姓名、身份证号、原因）。",
                "A proxy must give their details (relationship, name, ID number, reason) first.",
            ),
            Self::InvalidIdNumber => (
                "身份证号码无效：须为 18 位，出生日期有效，且校验码正确。",
                "The ID number is invalid: it needs 18 characters, a valid birth date and a correct check digit.",
            ),
            Self::PadEnvelopeInvalid => (
                "平板请求无法解开，请刷新页面后重试；仍不行时，平板可能长期未开机、错过了服务器的通道密钥更换，请联系管理员重新登记。",
                "The pad's request could not be opened; reload the page and retry. If it persists, the pad may have been off through a channel key change: ask an administrator to enrol it again.",
            ),
            Self::PadUnknown => (
                "未登记的平板设备，请联系管理员重新登记。",
                "This pad is not enrolled; ask an administrator to enrol it again.",
            ),
            Self::PadRevoked => (
                "该平板已被停用，请联系管理员。",
                "This pad has been revoked; contact an administrator.",
            ),
            Self::PadReplay => (
                "请求重复（可能是重放），已拒绝。",
                "Duplicate request (possibly a replay); refused.",
            ),
            Self::PadClock => (
                "平板时间与服务器相差过大，请校正平板时间后重试。",
                "The pad's clock differs too much from the server's; correct it and retry.",
            ),
            Self::PadCodeInvalid => (
                "平板登记码错误、已使用或已过期，请联系管理员重新生成。",
                "The pad enrolment code is wrong, used or expired; ask an administrator for a new one.",
            ),
            Self::IdentityServiceUnavailable => (
                "身份核验服务暂不可用，请稍后重试或联系信息科。",
                "The identity check service is unavailable; try again later or contact IT.",
            ),
            Self::IdentityCheckRequired => (
                "请先完成要求的身份核验（身份证识别、人脸比对或活体检测）后再继续。",
                "Complete the required identity checks (ID card, face match or liveness) first.",
            ),
            Self::IdentityImageInvalid => (
                "照片无法识别，请在光线充足处重新拍摄。",
                "The photo could not be read; take it again in good light.",
            ),
            Self::IdentityMismatch => (
                "身份信息与登记信息不符，请确认由本人操作。",
                "The identity does not match the person on record; the person in question must do this.",
            ),
            Self::LivenessFailed => (
                "活体检测未通过，请按提示动作重新检测。",
                "The liveness check failed; follow the prompts and try again.",
            ),
            Self::ChallengeInvalid => (
                "活体检测已过期或已使用，请重新开始检测。",
                "The liveness challenge has expired or was already used; start again.",
            ),
            Self::IdentityNotConfigured => (
                "本院未配置身份核验服务，只能使用短信验证（identity 只能为 [\"sms\"]）。",
                "No identity check service is configured; only SMS verification is available (identity must be [\"sms\"]).",
            ),
        }
    }
}

/// The JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Simplified Chinese text for people.
    pub message: String,
    /// English text for people.
    pub message_en: String,
}

impl ApiError {
    /// An error with the code's default texts.
    pub fn new(code: ErrorCode) -> Self {
        let (zh, en) = code.messages();
        Self {
            code,
            message: zh.to_owned(),
            message_en: en.to_owned(),
        }
    }

    /// An error with specific texts (for example naming the invalid field).
    pub fn with_messages(code: ErrorCode, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            code,
            message: zh.into(),
            message_en: en.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message_en)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_serialises_as_stable_screaming_snake_case() {
        let e = ApiError::new(ErrorCode::MalformedJson);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "MALFORMED_JSON");
        assert!(v["message"].as_str().unwrap().contains("JSON"));
        let back: ApiError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn only_internal_and_unavailable_are_5xx() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
            ErrorCode::InvalidArgument,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Unauthenticated,
            ErrorCode::BadCredentials,
            ErrorCode::AccountLocked,
            ErrorCode::PasswordChangeRequired,
            ErrorCode::Forbidden,
            ErrorCode::WeakPassword,
            ErrorCode::RateLimited,
            ErrorCode::Timeout,
            ErrorCode::InvalidCsr,
            ErrorCode::AlreadyRevoked,
            ErrorCode::UnknownCa,
            ErrorCode::InvalidProfile,
            ErrorCode::InvalidResidentId,
            ErrorCode::NotRenewable,
            ErrorCode::InvalidDocument,
            ErrorCode::UnsupportedDocumentType,
            ErrorCode::DocumentConflict,
            ErrorCode::BadSignature,
            ErrorCode::Replayed,
            ErrorCode::ActivationInvalid,
            ErrorCode::KeyLocked,
            ErrorCode::AlreadyExists,
            ErrorCode::RequestExpired,
            ErrorCode::RequestClosed,
            ErrorCode::NotYourTurn,
            ErrorCode::NotASigner,
            ErrorCode::ProtocolViolation,
            ErrorCode::InvalidCertificate,
            ErrorCode::NotACaCertificate,
            ErrorCode::CertificateExpired,
            ErrorCode::CertificateNotYetValid,
            ErrorCode::UnknownTrustAnchor,
            ErrorCode::BrokenChain,
            ErrorCode::WrongKeyUsage,
            ErrorCode::CertificateRevoked,
            ErrorCode::KeyMismatch,
            ErrorCode::AlreadyImported,
            ErrorCode::SmsCodeRequired,
            ErrorCode::SmsCodeInvalid,
            ErrorCode::AutoSignNotAuthorised,
            ErrorCode::TaskExpired,
            ErrorCode::TaskUsed,
            ErrorCode::TaskCancelled,
            ErrorCode::OtpInvalid,
            ErrorCode::OtpLocked,
            ErrorCode::SessionRequired,
            ErrorCode::ReadRequired,
            ErrorCode::BadStrokes,
            ErrorCode::ProxyRequired,
            ErrorCode::InvalidIdNumber,
            ErrorCode::PadEnvelopeInvalid,
            ErrorCode::PadUnknown,
            ErrorCode::PadRevoked,
            ErrorCode::PadReplay,
            ErrorCode::PadClock,
            ErrorCode::PadCodeInvalid,
            ErrorCode::IdentityCheckRequired,
            ErrorCode::IdentityImageInvalid,
            ErrorCode::IdentityMismatch,
            ErrorCode::LivenessFailed,
            ErrorCode::ChallengeInvalid,
            ErrorCode::IdentityNotConfigured,
        ] {
            assert!((400..500).contains(&code.status()), "{code:?}");
        }
        assert_eq!(ErrorCode::Internal.status(), 500);
        assert_eq!(ErrorCode::Unavailable.status(), 503);
        // The identity service being down is the caller's cue to retry, never a 500.
        assert_eq!(ErrorCode::IdentityServiceUnavailable.status(), 503);
    }
}
