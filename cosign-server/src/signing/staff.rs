//! Staff records (created by administrators or imported from a HIS CSV export), one-time
//! activation codes, and the PIN lock an administrator lifts.
//!
//! The resident ID number is kept in the crypto device (it goes into the signing certificate,
//! as the health-sector profile asks) and never in a table; only its device key id is stored.

use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::cosign::{
    ActivationIssued, CreateStaff, ImportRowError, StaffImportReport, StaffView,
};
use cosign_proto::v1::qr::QrLink;
use crypto_device::{CryptoDevice, KeyId, with_secret};
use gm_pki::profile::StaffInfo;
use sm3::{Digest, Sm3};
use sqlx::Row;
use zeroize::Zeroizing;

use super::clients::dev;
use crate::api::ApiFailure;
use crate::store::Db;

/// How long an activation code works.
pub const ACTIVATION_TTL_MS: i64 = 24 * 3600 * 1000;
/// Wrong activation codes before the code is void.
pub const MAX_ACTIVATION_FAILURES: i64 = 5;
/// Largest CSV import (rows).
pub const MAX_IMPORT_ROWS: usize = 5000;
/// Alphabet of activation codes: no 0/O, 1/I/L, so they survive being read aloud.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A staff row as the signing code needs it.
#[derive(Debug, Clone)]
pub struct StaffRow {
    /// Staff number.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Mobile.
    pub phone: String,
    /// Device key holding the ID number.
    pub id_number_key: Option<String>,
    /// Licence.
    pub licence_no: Option<String>,
    /// Status.
    pub status: String,
    /// Wrong PINs since the last good signature.
    pub pin_failures: i64,
}

fn invalid(field: &str, zh: &str, en: &str) -> ApiFailure {
    ApiFailure::with(
        ErrorCode::InvalidArgument,
        format!("字段 {field} 无效：{zh}"),
        format!("Invalid {field}: {en}"),
    )
}

/// Checks a staff record against the certificate profile (so enrolment cannot fail later on
/// a field) and the phone number's shape.
pub fn validate(req: &CreateStaff, hospital: &str) -> Result<(), ApiFailure> {
    let info = staff_info(req, hospital);
    info.validate()
        .map_err(|e| crate::api::pki_failure(crate::pki::PkiError::from(e)))?;
    if req.phone.len() != 11
        || !req.phone.bytes().all(|b| b.is_ascii_digit())
        || !req.phone.starts_with('1')
    {
        return Err(invalid(
            "phone",
            "须为 11 位手机号码",
            "must be an 11-digit mobile number",
        ));
    }
    let role = req.role.trim();
    if role.is_empty() || role.chars().count() > 16 || role != req.role {
        return Err(invalid(
            "role",
            "须为 1–16 个字符",
            "must have 1–16 characters",
        ));
    }
    Ok(())
}

fn staff_info(req: &CreateStaff, hospital: &str) -> StaffInfo {
    StaffInfo {
        name: req.name.clone(),
        staff_id: req.staff_id.clone(),
        department: req.department.clone(),
        hospital: hospital.to_owned(),
        resident_id: req.id_number.clone(),
        licence: req.licence_no.clone(),
    }
}

/// Creates one staff member (`ALREADY_EXISTS` if the number is taken).
pub async fn create(
    db: &Db,
    device: &dyn CryptoDevice,
    hospital: &str,
    req: &CreateStaff,
    now_ms: i64,
) -> Result<StaffView, ApiFailure> {
    validate(req, hospital)?;
    if load(db, &req.staff_id).await?.is_some() {
        return Err(ApiFailure::new(ErrorCode::AlreadyExists));
    }
    let id_key = match &req.id_number {
        Some(id) => Some(
            device
                .import_secret(
                    &format!("staff-id-number:{}", req.staff_id),
                    Zeroizing::new(id.as_bytes().to_vec()),
                )
                .await
                .map_err(dev)?,
        ),
        None => None,
    };
    let inserted = sqlx::query(
        "INSERT INTO staff (staff_id, name, department, role, phone, id_number_key, licence_no, \
         status, pin_failures, activation_failures, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'new', 0, 0, $8, $8) ON CONFLICT (staff_id) DO NOTHING",
    )
    .bind(&req.staff_id)
    .bind(&req.name)
    .bind(&req.department)
    .bind(&req.role)
    .bind(&req.phone)
    .bind(id_key.as_ref().map(KeyId::as_str))
    .bind(&req.licence_no)
    .bind(now_ms)
    .execute(db.pool())
    .await;
    let conflict = matches!(&inserted, Ok(r) if r.rows_affected() == 0);
    if inserted.is_err() || conflict {
        if let Some(k) = &id_key {
            let _ = device.destroy(k).await;
        }
        inserted?;
        return Err(ApiFailure::new(ErrorCode::AlreadyExists));
    }
    view(db, &req.staff_id).await
}

/// Imports a HIS CSV export: header `staff_id,name,department,role,phone,id_number` (and an
/// optional `licence_no` column), UTF-8 (a BOM is allowed). Good rows are created, bad rows
/// reported by line; nothing is half-created for a row.
pub async fn import_csv(
    db: &Db,
    device: &dyn CryptoDevice,
    hospital: &str,
    csv: &str,
    now_ms: i64,
) -> Result<StaffImportReport, ApiFailure> {
    let csv = csv.strip_prefix('\u{feff}').unwrap_or(csv);
    let mut lines = csv.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(invalid("csv", "文件为空", "the file is empty"));
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let expected = [
        "staff_id",
        "name",
        "department",
        "role",
        "phone",
        "id_number",
    ];
    if columns.len() < expected.len()
        || columns[..expected.len()] != expected
        || (columns.len() == 7 && columns[6] != "licence_no")
        || columns.len() > 7
    {
        return Err(invalid(
            "csv",
            "表头须为 staff_id,name,department,role,phone,id_number[,licence_no]",
            "the header must be staff_id,name,department,role,phone,id_number[,licence_no]",
        ));
    }
    let rows: Vec<(usize, &str)> = lines.filter(|(_, l)| !l.trim().is_empty()).collect();
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(ApiFailure::with(
            ErrorCode::PayloadTooLarge,
            format!("一次最多导入 {MAX_IMPORT_ROWS} 行，请分批导入。"),
            format!("At most {MAX_IMPORT_ROWS} rows per import; split the file."),
        ));
    }
    let mut report = StaffImportReport {
        created: 0,
        errors: Vec::new(),
    };
    for (index, line) in rows {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            report.errors.push(ImportRowError {
                line: line_no,
                code: ErrorCode::InvalidArgument,
                message: format!("应有 {} 列，实际 {} 列", columns.len(), cells.len()),
            });
            continue;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let req = CreateStaff {
            staff_id: cells[0].to_owned(),
            name: cells[1].to_owned(),
            department: cells[2].to_owned(),
            role: cells[3].to_owned(),
            phone: cells[4].to_owned(),
            id_number: opt(cells[5]),
            licence_no: cells.get(6).and_then(|s| opt(s)),
        };
        match create(db, device, hospital, &req, now_ms).await {
            Ok(_) => report.created += 1,
            Err(e) if e.code() == ErrorCode::Internal || e.code() == ErrorCode::Unavailable => {
                return Err(e);
            }
            Err(e) => report.errors.push(ImportRowError {
                line: line_no,
                code: e.code(),
                message: e.message_zh().to_owned(),
            }),
        }
    }
    Ok(report)
}

/// Loads a staff row.
pub async fn load(db: &Db, staff_id: &str) -> Result<Option<StaffRow>, ApiFailure> {
    if staff_id.is_empty() || staff_id.len() > 64 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT staff_id, name, department, role, phone, id_number_key, licence_no, status, \
         pin_failures FROM staff WHERE staff_id = $1",
    )
    .bind(staff_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(r) => Some(StaffRow {
            staff_id: r.try_get("staff_id")?,
            name: r.try_get("name")?,
            department: r.try_get("department")?,
            role: r.try_get("role")?,
            phone: r.try_get("phone")?,
            id_number_key: r.try_get("id_number_key")?,
            licence_no: r.try_get("licence_no")?,
            status: r.try_get("status")?,
            pin_failures: r.try_get("pin_failures")?,
        }),
        None => None,
    })
}

/// The administrators' view (`NOT_FOUND` if absent).
pub async fn view(db: &Db, staff_id: &str) -> Result<StaffView, ApiFailure> {
    let s = load(db, staff_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    let device = sqlx::query(
        "SELECT device_id, cert_serial FROM devices WHERE staff_id = $1 AND status = 'active'",
    )
    .bind(staff_id)
    .fetch_optional(db.pool())
    .await?;
    let (device_id, certificate_serial) = match device {
        Some(r) => (Some(r.try_get("device_id")?), r.try_get("cert_serial")?),
        None => (None, None),
    };
    Ok(StaffView {
        phone_masked: mask_phone(&s.phone),
        staff_id: s.staff_id,
        name: s.name,
        department: s.department,
        role: s.role,
        status: s.status,
        pin_failures: u32::try_from(s.pin_failures).unwrap_or(0),
        certificate_serial,
        device_id,
    })
}

/// `138****5678` (one masking rule for staff and patients, in cosign-proto).
pub use cosign_proto::v1::patient::mask_phone;

/// The resident ID number from the device, for the certificate.
pub async fn id_number(
    device: &dyn CryptoDevice,
    s: &StaffRow,
) -> Result<Option<String>, ApiFailure> {
    match &s.id_number_key {
        Some(k) => Ok(Some(
            with_secret(device, &KeyId(k.clone()), |b| {
                Ok(String::from_utf8_lossy(b).into_owned())
            })
            .await
            .map_err(dev)?,
        )),
        None => Ok(None),
    }
}

/// The certificate profile fields of a staff member.
pub async fn certificate_info(
    device: &dyn CryptoDevice,
    hospital: &str,
    s: &StaffRow,
) -> Result<StaffInfo, ApiFailure> {
    Ok(StaffInfo {
        name: s.name.clone(),
        staff_id: s.staff_id.clone(),
        department: s.department.clone(),
        hospital: hospital.to_owned(),
        resident_id: id_number(device, s).await?,
        licence: s.licence_no.clone(),
    })
}

/// Issues a fresh activation code (the previous one stops working). Only SM3 of the code is
/// stored.
pub async fn issue_activation(
    db: &Db,
    device: &dyn CryptoDevice,
    public_url: &str,
    staff_id: &str,
    now_ms: i64,
) -> Result<ActivationIssued, ApiFailure> {
    let s = load(db, staff_id)
        .await?
        .ok_or_else(|| ApiFailure::new(ErrorCode::NotFound))?;
    if s.status == "disabled" {
        return Err(ApiFailure::new(ErrorCode::Forbidden));
    }
    let random = Zeroizing::new(device.random(12).await.map_err(dev)?);
    let code: String = random
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect();
    let expires_at = now_ms + ACTIVATION_TTL_MS;
    sqlx::query(
        "UPDATE staff SET activation_hash = $1, activation_expires = $2, activation_failures = 0, \
         sms_code_hash = NULL, sms_failures = 0, sms_sent_at = NULL, sms_sends = 0, \
         updated_at = $3 WHERE staff_id = $4",
    )
    .bind(code_hash(&code))
    .bind(expires_at)
    .bind(now_ms)
    .bind(staff_id)
    .execute(db.pool())
    .await?;
    let qr_payload = QrLink::Activate {
        server: public_url.to_owned(),
        staff_id: staff_id.to_owned(),
        code: code.clone(),
    }
    .to_string();
    Ok(ActivationIssued {
        staff_id: staff_id.to_owned(),
        code,
        expires_at,
        qr_payload,
    })
}

/// SM3 of a normalised activation code (case and spaces ignored).
pub fn code_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sm3::digest(norm.as_bytes()))
}

/// Clears the PIN lock (`locked` → `active`).
pub async fn unlock(db: &Db, staff_id: &str, now_ms: i64) -> Result<StaffView, ApiFailure> {
    let done = sqlx::query(
        "UPDATE staff SET status = CASE WHEN status = 'locked' THEN 'active' ELSE status END, \
         pin_failures = 0, updated_at = $1 WHERE staff_id = $2",
    )
    .bind(now_ms)
    .bind(staff_id)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiFailure::new(ErrorCode::NotFound));
    }
    view(db, staff_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_codes_ignore_case_spaces_and_dashes() {
        assert_eq!(code_hash("abcd-efgh 2345"), code_hash("ABCDEFGH2345"));
        assert_ne!(code_hash("ABCDEFGH2345"), code_hash("ABCDEFGH2346"));
    }
}
