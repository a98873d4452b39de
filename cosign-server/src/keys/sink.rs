//! crypto-device's [`AuditSink`] over the server's hash-chained audit log: every key-management
//! event (generate, rotate, backup, restore, unlock failure...) becomes one chained entry.

use std::sync::Arc;

use async_trait::async_trait;
use crypto_device::{AuditEvent, AuditSink};

use crate::audit::{AuditLog, Event};
use crate::clock::now_ms;
use crate::store::Db;

/// Writes device events into `audit_log`; durable before `record` returns.
#[derive(Debug)]
pub struct ServerAuditSink {
    db: Db,
    log: Arc<AuditLog>,
    actor: String,
}

impl ServerAuditSink {
    /// A sink writing as `actor` (`system`, `cli`, `admin:<name>`).
    pub fn new(db: Db, log: Arc<AuditLog>, actor: &str) -> Self {
        Self {
            db,
            log,
            actor: actor.to_owned(),
        }
    }
}

#[async_trait]
impl AuditSink for ServerAuditSink {
    async fn record(&self, event: AuditEvent) -> crypto_device::Result<()> {
        let entry = Event {
            actor: &self.actor,
            action: event.action,
            target: event.key_id.as_deref().unwrap_or(""),
            outcome: if event.success { "ok" } else { "failed" },
            detail: serde_json::json!({ "detail": event.detail, "device_time": event.at }),
            request_id: "",
        };
        self.log
            .append(&self.db, now_ms(), &entry)
            .await
            .map(|_| ())
            .map_err(|e| crypto_device::Error::Audit(e.to_string()))
    }
}
