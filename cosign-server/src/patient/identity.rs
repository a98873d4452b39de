//! A patient task's identity checks beyond the SMS code (`id_ocr`, `face`, `liveness`): whom
//! the ID card must show, and the evidence the submission carries.

use cosign_proto::v1::ErrorCode;
use cosign_proto::v1::patient::SignerRole;
use crypto_device::KeyId;
use zeroize::Zeroizing;

use super::secret_text;
use super::tasks::TaskRow;
use crate::api::{ApiFailure, AppState};
use crate::identity::checks::{self, Expected, Subject};

/// The checks of `task` count for the task itself.
pub fn subject(task: &TaskRow) -> Subject {
    Subject {
        kind: "patient_task",
        id: task.task_id.clone(),
        binding: task.task_id.clone(),
        actor: format!("patient:{}", task.task_id),
    }
}

/// The person the ID card must show: the proxy (once their details are given) for a proxy
/// task, else the patient.
pub async fn expected(state: &AppState, task: &TaskRow) -> Result<Expected, ApiFailure> {
    let device = state.keys.device();
    let (role, name, key) = if task.role() == SignerRole::Proxy {
        let proxy: serde_json::Value = task
            .proxy
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| ApiFailure::new(ErrorCode::ProxyRequired))?;
        let key = task
            .proxy_id_key
            .clone()
            .ok_or_else(|| ApiFailure::new(ErrorCode::ProxyRequired))?;
        (
            "proxy",
            proxy["name"].as_str().unwrap_or_default().to_owned(),
            key,
        )
    } else {
        let key = task.id_number_key.clone().ok_or_else(|| {
            ApiFailure::with(
                ErrorCode::IdentityCheckRequired,
                "该签署任务没有登记身份证号，无法进行身份证核验，请联系医护人员。",
                "The task has no ID number on record to compare with; ask the ward staff.",
            )
        })?;
        ("signer", task.signer_name.clone(), key)
    };
    Ok(Expected {
        role,
        name,
        id_number: Zeroizing::new(secret_text(&*device, &KeyId(key)).await?),
    })
}

/// The evidence of the task's required checks (empty for SMS only), or
/// `IDENTITY_CHECK_REQUIRED`.
pub async fn evidence(
    state: &AppState,
    task: &TaskRow,
) -> Result<Vec<serde_json::Value>, ApiFailure> {
    let required = cosign_proto::v1::identity::camera_checks_for_task(&task.identity);
    if required.is_empty() {
        return Ok(Vec::new());
    }
    let who = expected(state, task).await?;
    checks::satisfied(
        &state.db,
        &task.task_id,
        &who.digest(&task.task_id),
        &required,
    )
    .await
}
