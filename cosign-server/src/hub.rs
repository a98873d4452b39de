//! The hand-off between phones and terminals: a signing round that stores signatures
//! announces the request here, and every terminal WebSocket watching that request sends the
//! new state at once.
//!
//! In one process the announcement is a broadcast channel. Across instances (several servers
//! behind a load balancer on one PostgreSQL) each watcher also re-reads its request every
//! [`POLL_INTERVAL`], so a signature stored by another instance reaches the terminal within
//! that interval; the state always comes from the database, never from the message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// How often a watcher re-reads its request (covers announcements from other instances).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Announces changed requests to watchers in this process.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub whose slow watchers may miss announcements (they poll anyway).
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }

    /// Announces that `request_id` changed.
    pub fn notify(&self, request_id: &str) {
        // No watcher is not an error.
        let _ = self.tx.send(Arc::from(request_id));
    }

    /// Receives announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
