//! Key record storage: the [`KeyStore`] trait, an in-memory store and a sqlx store
//! (SQLite / PostgreSQL through `AnyPool`).
//!
//! Records hold only wrapped material (SM4-GCM under a KEK or the master key) and are
//! authenticated as a whole by an HMAC-SM3 tag (`mac`) computed by the software device, so a
//! database administrator can neither read keys nor silently edit a record (state, kind,
//! wrapping). A store write is atomic per record; [`KeyStore::put_all`] is atomic for the
//! batch where the backend has transactions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// One stored key record.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key identifier (primary key).
    pub id: String,
    /// Human label.
    pub label: String,
    /// `KeyKind::as_str`.
    pub kind: String,
    /// `KeyState::as_str`.
    pub state: String,
    /// Id of the wrapping key (a KEK id, `master`, or a device-internal reference).
    pub wrapped_by: String,
    /// Wrapped key material (empty once destroyed).
    pub material: Vec<u8>,
    /// SEC1 public key (SM2 keys) or empty.
    pub public_key: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Incremented on every change.
    pub revision: i64,
    /// HMAC-SM3 over all fields above (empty where the device does not authenticate records).
    pub mac: Vec<u8>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("wrapped_by", &self.wrapped_by)
            .field(
                "material",
                &format_args!("<{} bytes wrapped>", self.material.len()),
            )
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// Canonical byte encoding of every field except `mac` (length-prefixed), the input
    /// of the record MAC.
    pub fn mac_input(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(128 + self.material.len());
        for part in [
            self.id.as_bytes(),
            self.label.as_bytes(),
            self.kind.as_bytes(),
            self.state.as_bytes(),
            self.wrapped_by.as_bytes(),
            &self.material,
            &self.public_key,
        ] {
            v.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            v.extend_from_slice(part);
        }
        v.extend_from_slice(&self.created_at.to_be_bytes());
        v.extend_from_slice(&self.updated_at.to_be_bytes());
        v.extend_from_slice(&self.revision.to_be_bytes());
        v
    }
}

/// Where key records live. The server may implement it over its own database; the crate
/// ships [`MemoryKeyStore`] and [`SqlKeyStore`].
#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// One record, or `None`.
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>>;
    /// Every record, ordered by id.
    async fn list(&self) -> Result<Vec<KeyRecord>>;
    /// A record and the record named by its `wrapped_by` (its KEK), as two `get`s unless the
    /// backend reads both at once. The second is `None` when the first is, or when no record
    /// has that id (a KEK's `wrapped_by` names the master key, which is no record).
    async fn get_with_wrapper(&self, id: &str) -> Result<(Option<KeyRecord>, Option<KeyRecord>)> {
        let Some(r) = self.get(id).await? else {
            return Ok((None, None));
        };
        let wrapper = self.get(&r.wrapped_by).await?;
        Ok((Some(r), wrapper))
    }
    /// Insert or replace one record atomically.
    async fn put(&self, record: &KeyRecord) -> Result<()>;
    /// Insert or replace several records; atomic where the backend supports it.
    async fn put_all(&self, records: &[KeyRecord]) -> Result<()> {
        for r in records {
            self.put(r).await?;
        }
        Ok(())
    }
}

/// In-memory store (tests, the SDF test library).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    map: Mutex<BTreeMap<String, KeyRecord>>,
}

impl MemoryKeyStore {
    /// Empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>> {
        let g = self
            .map
            .lock()
            .map_err(|_| Error::Storage("memory store poisoned".into()))?;
        Ok(g.get(id).cloned())
    }
    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let g = self
            .map
            .lock()
            .map_err(|_| Error::Storage("memory store poisoned".into()))?;
        Ok(g.values().cloned().collect())
    }
    async fn put(&self, record: &KeyRecord) -> Result<()> {
        let mut g = self
            .map
            .lock()
            .map_err(|_| Error::Storage("memory store poisoned".into()))?;
        g.insert(record.id.clone(), record.clone());
        Ok(())
    }
    async fn put_all(&self, records: &[KeyRecord]) -> Result<()> {
        let mut g = self
            .map
            .lock()
            .map_err(|_| Error::Storage("memory store poisoned".into()))?;
        for r in records {
            g.insert(r.id.clone(), r.clone());
        }
        Ok(())
    }
}

/// SQLite DDL of the `crypto_keys` table (also `cosign-server/migrations/sqlite/0002_crypto_device.sql`).
pub const SQLITE_DDL: &str = include_str!("../../migrations/sqlite/0002_crypto_device.sql");
/// PostgreSQL DDL (also `cosign-server/migrations/postgres/0002_crypto_device.sql`).
pub const POSTGRES_DDL: &str = include_str!("../../migrations/postgres/0002_crypto_device.sql");

/// sqlx store over `AnyPool` (SQLite or PostgreSQL), table `crypto_keys`.
///
/// The table comes from the server's migrations (`0002_crypto_device.sql`); call
/// [`SqlKeyStore::create_table`] only where no migrator runs (tests, tools).
#[derive(Debug, Clone)]
pub struct SqlKeyStore {
    pool: sqlx::AnyPool,
    /// Where `get` and `list` read ([`SqlKeyStore::with_read_pool`]); `pool` by default.
    reads: sqlx::AnyPool,
}

const COLS: &str = "id, label, kind, state, wrapped_by, material, public_key, created_at, updated_at, revision, mac";

impl SqlKeyStore {
    /// Use an existing pool (the server's). `sqlx::any::install_default_drivers()` must
    /// have been called before the pool was created.
    pub fn new(pool: sqlx::AnyPool) -> Self {
        Self {
            reads: pool.clone(),
            pool,
        }
    }

    /// Reads records on `reads` (same database): a pool that only ever serves these short
    /// reads, so a secret can be opened by a task that holds a connection of the main pool
    /// in a write transaction without waiting for a connection that others hold while they
    /// wait for that transaction (the server opens the audit MAC key inside such
    /// transactions). Writes stay on the main pool.
    #[must_use]
    pub fn with_read_pool(mut self, reads: sqlx::AnyPool) -> Self {
        self.reads = reads;
        self
    }

    /// Connect to a URL (`sqlite://path?mode=rwc`, `postgres://...`).
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await?;
        Ok(Self::new(pool))
    }

    /// The pool.
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }

    /// Create the table with this crate's DDL for the pool's backend (idempotent).
    pub async fn create_table(&self) -> Result<()> {
        let scheme = self
            .pool
            .connect_options()
            .database_url
            .scheme()
            .to_ascii_lowercase();
        let ddl = if scheme.starts_with("postgres") {
            POSTGRES_DDL
        } else {
            SQLITE_DDL
        };
        sqlx::raw_sql(ddl).execute(&self.pool).await?;
        Ok(())
    }

    fn row_to_record(row: &sqlx::any::AnyRow) -> Result<KeyRecord> {
        use sqlx::Row as _;
        Ok(KeyRecord {
            id: row.try_get("id")?,
            label: row.try_get("label")?,
            kind: row.try_get("kind")?,
            state: row.try_get("state")?,
            wrapped_by: row.try_get("wrapped_by")?,
            material: row.try_get("material")?,
            public_key: row.try_get("public_key")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            revision: row.try_get("revision")?,
            mac: row.try_get("mac")?,
        })
    }

    async fn upsert<'e, E>(exec: E, r: &KeyRecord) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = format!(
            "INSERT INTO crypto_keys ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO UPDATE SET label = excluded.label, kind = excluded.kind, state = excluded.state, \
             wrapped_by = excluded.wrapped_by, material = excluded.material, public_key = excluded.public_key, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, revision = excluded.revision, \
             mac = excluded.mac"
        );
        sqlx::query(&sql)
            .bind(r.id.clone())
            .bind(r.label.clone())
            .bind(r.kind.clone())
            .bind(r.state.clone())
            .bind(r.wrapped_by.clone())
            .bind(r.material.clone())
            .bind(r.public_key.clone())
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.revision)
            .bind(r.mac.clone())
            .execute(exec)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for SqlKeyStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>> {
        let sql = format!("SELECT {COLS} FROM crypto_keys WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .fetch_optional(&self.reads)
            .await?;
        row.as_ref().map(Self::row_to_record).transpose()
    }

    /// One statement: opening a secret needs the record and its KEK, and every statement is
    /// a round trip (to SQLite's connection thread, or to PostgreSQL).
    async fn get_with_wrapper(&self, id: &str) -> Result<(Option<KeyRecord>, Option<KeyRecord>)> {
        let sql = format!(
            "SELECT {COLS} FROM crypto_keys WHERE id = $1 \
             OR id = (SELECT wrapped_by FROM crypto_keys WHERE id = $2)"
        );
        let rows = sqlx::query(&sql)
            .bind(id.to_owned())
            .bind(id.to_owned())
            .fetch_all(&self.reads)
            .await?;
        let mut records = rows
            .iter()
            .map(Self::row_to_record)
            .collect::<Result<Vec<_>>>()?;
        let Some(at) = records.iter().position(|r| r.id == id) else {
            return Ok((None, None));
        };
        let record = records.swap_remove(at);
        let wrapper = records.into_iter().find(|w| w.id == record.wrapped_by);
        Ok((Some(record), wrapper))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let sql = format!("SELECT {COLS} FROM crypto_keys ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.reads).await?;
        rows.iter().map(Self::row_to_record).collect()
    }

    async fn put(&self, record: &KeyRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::upsert(&mut *tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_all(&self, records: &[KeyRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            Self::upsert(&mut *tx, r).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
