//! Audit events emitted by key-management operations.
//!
//! The server implements [`AuditSink`] with its hash-chained audit log. Events carry
//! identifiers and outcomes only, never key material or passphrases.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Result;

/// One key-management event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened: `key.generate`, `key.import`, `key.export`, `key.destroy`,
    /// `key.suspend`, `key.resume`, `secret.import`, `secret.replace`, `kek.rotate`,
    /// `master.init`, `master.unlock_failed`, `master.change_unlock`, `master.backup`,
    /// `master.restore`, `keys.list`, `keys.status`.
    pub action: &'static str,
    /// The key concerned, if any.
    pub key_id: Option<String>,
    /// The key's label or other non-secret detail.
    pub detail: String,
    /// `true` when the operation succeeded.
    pub success: bool,
}

/// Receives audit events. Implementations must be durable before returning `Ok`.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Append one event.
    async fn record(&self, event: AuditEvent) -> Result<()>;
}

/// Keeps events in memory (tests, tools).
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// A copy of the events recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        if let Ok(mut g) = self.events.lock() {
            g.push(event);
        }
        Ok(())
    }
}
