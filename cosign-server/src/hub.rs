//! The hand-off between phones and terminals: a signing round that stores signatures
//! announces the request here, and every terminal WebSocket watching that request sends the
//! new state at once.
//!
//! In one process the announcement is a broadcast channel. Across instances (several servers
//! behind a load balancer on one PostgreSQL) announcements travel as PostgreSQL notifications
//! on channel [`PG_CHANNEL`] ([`Hub::announce`] sends, [`Hub::listen_postgres`] relays them
//! into the local channel). Each watcher also re-reads its request every [`POLL_INTERVAL`],
//! which covers a lost notification and SQLite deployments; the state always comes from the
//! database, never from the message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// PostgreSQL notification channel for request announcements.
pub const PG_CHANNEL: &str = "yiqian_hub";

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

    /// Announces `request_id` here and, on PostgreSQL, to every other instance.
    pub async fn announce(&self, db: &crate::store::Db, request_id: &str) {
        self.notify(request_id);
        if db.kind() == crate::store::DbKind::Postgres {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PG_CHANNEL)
                .bind(request_id)
                .execute(db.pool())
                .await;
            if let Err(e) = sent {
                // Watchers on other instances still see the change at their next poll.
                tracing::warn!(error = %e, "could not send the hub notification");
            }
        }
    }

    /// Relays PostgreSQL notifications into this process until aborted, reconnecting after
    /// a lost connection.
    pub fn listen_postgres(&self, url: String) -> tokio::task::JoinHandle<()> {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if listener.listen(PG_CHANNEL).await.is_ok() {
                            while let Ok(n) = listener.recv().await {
                                let _ = tx.send(Arc::from(n.payload()));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "hub listener cannot connect"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// Receives announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
