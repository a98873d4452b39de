//! The hand-off between phones and terminals: a signing round that stores signatures
//! announces the request here, and every terminal WebSocket watching that request sends the
//! new state at once.
//!
//! In one process an announcement wakes only the watchers of that id ([`Hub::watch`]: one
//! `watch` channel per watched id, found in a map), and every phone push socket
//! ([`Hub::subscribe`]: a broadcast of every id, since any request may concern a signer).
//! Across instances (several servers behind a load balancer on one PostgreSQL) announcements
//! travel as PostgreSQL notifications on channel [`PG_CHANNEL`] ([`Hub::announce`] sends, or
//! [`Hub::announce_in`] inside the transaction that made the change,
//! [`Hub::listen_postgres`] relays them into this process). Notifications can be missed only
//! while the listening connection is down, so after every (re)connection the listener wakes
//! every watcher once ([`Watch::changed`] returns) to re-read its object. The state always
//! comes from the database, never from the message.
//!
//! Watchers of signing requests therefore do not poll on SQLite (one process owns the file);
//! on PostgreSQL they re-read every [`FALLBACK_POLL`] in case a sender's `pg_notify` failed.
//! Patient-task watchers still poll every [`POLL_INTERVAL`]: some task changes are not
//! announced (see `api::cosign::relay`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

/// PostgreSQL notification channel for request announcements.
pub const PG_CHANNEL: &str = "yiqian_hub";

/// How often a watcher of an object whose changes are not all announced (patient tasks)
/// re-reads it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How often a signing-request watcher re-reads its request on PostgreSQL, in case an
/// announcement from another instance was lost (a failed `pg_notify`). Not used on SQLite.
pub const FALLBACK_POLL: Duration = Duration::from_secs(30);

type Watched = HashMap<Arc<str>, watch::Sender<u64>>;

/// Announces changed requests to watchers in this process.
#[derive(Debug, Clone)]
pub struct Hub {
    all: broadcast::Sender<Arc<str>>,
    watched: Arc<Mutex<Watched>>,
    resync: Arc<watch::Sender<u64>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub whose slow [`subscribe`](Self::subscribe)rs may miss announcements (they see
    /// `Lagged` and re-read).
    pub fn new() -> Self {
        Self {
            all: broadcast::channel(1024).0,
            watched: Arc::default(),
            resync: Arc::new(watch::channel(0).0),
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces that `request_id` changed, in this process only.
    pub fn notify(&self, request_id: &str) {
        // No subscriber is not an error.
        let _ = self.all.send(Arc::from(request_id));
        if let Some(tx) = self.watched().get(request_id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every watcher once (announcements may have been missed).
    pub fn resync(&self) {
        self.resync.send_modify(|n| *n = n.wrapping_add(1));
        // Subscribers of every id re-read on any message; the empty id names none.
        let _ = self.all.send(Arc::from(""));
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
                // Watchers on other instances still see the change at their fallback poll.
                tracing::warn!(error = %e, "could not send the hub notification");
            }
        }
    }

    /// Announces `request_id` to the other instances from inside the transaction that
    /// changed it, on PostgreSQL (nothing on SQLite): a notification is delivered when, and
    /// only if, its transaction commits, so it needs no commit of its own (a `pg_notify`
    /// alone is one more commit, with its WAL flush: docs/performance.md, run 9). Listeners
    /// then never hear of a change before it is visible. [`Hub::notify`] after the commit
    /// tells this process.
    pub async fn announce_in(
        kind: crate::store::DbKind,
        tx: &mut sqlx::AnyConnection,
        request_id: &str,
    ) -> Result<(), sqlx::Error> {
        if kind == crate::store::DbKind::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PG_CHANNEL)
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Relays PostgreSQL notifications into this process until aborted, reconnecting after
    /// a lost connection; each time it listens again it wakes every watcher once, since
    /// notifications sent meanwhile were lost.
    pub fn listen_postgres(&self, url: String) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if listener.listen(PG_CHANNEL).await.is_ok() {
                            hub.resync();
                            while let Ok(n) = listener.recv().await {
                                hub.notify(n.payload());
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "hub listener cannot connect"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// Receives every announcement (for watchers that care about many ids).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.all.subscribe()
    }

    /// Watches one id: [`Watch::changed`] returns after an announcement of `id` (or a
    /// resync) made after this call or after the previous `changed`.
    pub fn watch(&self, id: &str) -> Watch {
        let mut watched = self.watched();
        let rx = watched
            .entry(Arc::from(id))
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        drop(watched);
        let mut resync = self.resync.subscribe();
        resync.mark_unchanged();
        Watch {
            hub: self.clone(),
            id: Arc::from(id),
            rx,
            resync,
        }
    }

    /// Ids with at least one watcher (tests: watchers leave no entry behind).
    pub fn watched_ids(&self) -> usize {
        self.watched().len()
    }
}

/// One watcher of one id ([`Hub::watch`]); dropping it removes the id's entry once no other
/// watcher holds it.
#[derive(Debug)]
pub struct Watch {
    hub: Hub,
    id: Arc<str>,
    rx: watch::Receiver<u64>,
    resync: watch::Receiver<u64>,
}

impl Watch {
    /// Waits for the next announcement of this id or resync. Cancel-safe.
    pub async fn changed(&mut self) {
        tokio::select! {
            r = self.rx.changed() => {
                if r.is_err() {
                    // The sender is dropped only with the hub; never spin on it.
                    std::future::pending::<()>().await;
                }
            }
            r = self.resync.changed() => {
                if r.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.hub.watched();
        // Our own receiver still counts here; under the lock no new watcher can subscribe.
        if watched
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            watched.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(w: &mut Watch) -> bool {
        use std::future::Future;
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let fut = w.changed();
        let mut fut = std::pin::pin!(fut);
        fut.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn only_the_announced_id_wakes_and_entries_go_with_their_watchers() {
        let hub = Hub::new();
        let mut a1 = hub.watch("a");
        let mut a2 = hub.watch("a");
        let mut b = hub.watch("b");
        assert_eq!(hub.watched_ids(), 2);
        assert!(!ready(&mut a1) && !ready(&mut b));
        hub.notify("a");
        hub.notify("c"); // nobody watches it: nothing happens
        assert!(ready(&mut a1));
        assert!(ready(&mut a2));
        assert!(!ready(&mut b));
        // Consumed: the next wait blocks again until the next announcement.
        assert!(!ready(&mut a1));
        hub.resync();
        assert!(ready(&mut a1) && ready(&mut a2) && ready(&mut b));
        drop(a1);
        assert_eq!(hub.watched_ids(), 2);
        drop(a2);
        assert_eq!(hub.watched_ids(), 1);
        drop(b);
        assert_eq!(hub.watched_ids(), 0);
    }

    #[test]
    fn an_announcement_before_the_wait_is_not_lost() {
        let hub = Hub::new();
        let mut w = hub.watch("r");
        hub.notify("r");
        // The watcher was busy (rendering) when it came; the wait returns at once.
        assert!(ready(&mut w));
    }
}
