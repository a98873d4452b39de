//! Test kit: a real server on an ephemeral loopback port with a temporary data directory, on
//! SQLite or on a fresh PostgreSQL database that is dropped afterwards.

use std::time::Duration;

use cosign_server::config::Config;
use cosign_server::serve::Server;
use cosign_server::store::Db;
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs an async test body once per backend, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database on the server at `COSIGN_TEST_PG`, dropped on drop.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("COSIGN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl PgDatabase {
    pub async fn create() -> Self {
        sqlx::any::install_default_drivers();
        let admin_url = admin_url();
        let mut conn = sqlx::AnyConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL must answer at {admin_url} (set COSIGN_TEST_PG; `make test` starts one): {e}")
        });
        let name = format!("yiqian_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url.as_str(), ""), |(b, q)| (b, q));
        let (authority, _) = base.rsplit_once('/').unwrap();
        let url = if query.is_empty() {
            format!("{authority}/{name}")
        } else {
            format!("{authority}/{name}?{query}")
        };
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside a runtime; use a separate thread with its own to run the async DROP.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Where a test's data lives: a temp dir, plus a PostgreSQL database when asked.
pub struct TestData {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

impl TestData {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        Self { dir, pg }
    }

    pub fn config(&self) -> Config {
        Config::for_test(self.dir.path(), self.pg.as_ref().map(|p| p.url.as_str()))
    }
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub admin_password: String,
    pub client: reqwest::Client,
    pub db: Db,
    /// The server's crypto device (tests that check a device secret independently).
    pub keys: cosign_server::keys::Keys,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<cosign_server::error::Result<()>>>,
    /// Kept alive so the temporary directory and database outlive the server.
    _data: TestData,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let data = TestData::new(backend).await;
        let mut config = data.config();
        tweak(&mut config);
        let (server, created) = Server::bind(config).await.unwrap();
        let created = created.expect("a fresh data directory is initialised on first start");
        let addr = server.local_addr().unwrap();
        let db = server.state().db.clone();
        let keys = server.state().keys.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            admin_password: created.admin_password.to_string(),
            client,
            db,
            keys,
            shutdown: Some(tx),
            handle: Some(handle),
            _data: data,
        }
    }

    /// The configuration this server was started with (a second instance on the same data
    /// directory and database uses it).
    pub fn config(&self) -> Config {
        #[allow(clippy::used_underscore_binding)]
        self._data.config()
    }

    /// The server's data directory.
    #[allow(clippy::used_underscore_binding)]
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in as the first administrator and replaces the one-time password; returns a token.
    pub async fn admin_token(&self) -> String {
        let login: serde_json::Value = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": self.admin_password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        let r = self
            .client
            .post(self.url("/api/v1/auth/password"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"old_password": self.admin_password, "new_password": "Ward7-night-shift-2026"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        token
    }

    /// Graceful shutdown; asserts the server stopped without error.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

/// Asserts a response is a 4xx JSON error with the given code and both texts.
pub async fn assert_api_error(
    resp: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
    assert!(
        !body["message_en"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    body
}
