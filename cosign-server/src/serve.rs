//! Process lifecycle: prepare the data directory, database, crypto device and PKI, bind, serve until a shutdown
//! signal, let in-flight requests finish, close the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{AppState, router};
use crate::audit::AuditLog;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::init::{Initialised, initialise, prepare_data_dir};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::pki::Pki;
use crate::store::Db;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

/// Opens the data directory and database, applying migrations; initialises a fresh
/// installation (first administrator) and returns what it created.
pub async fn open(config: &Config) -> Result<(Db, Arc<AuditLog>, Option<Initialised>)> {
    prepare_data_dir(config)?;
    let db = Db::open(&config.database_url).await?;
    let audit = Arc::new(AuditLog::new());
    let created = if db.count_accounts().await? == 0 {
        Some(initialise(&db, &audit, config, "admin").await?)
    } else {
        None
    };
    Ok((db, audit, created))
}

/// Opens the crypto device (creating it on a fresh installation) and loads the PKI hierarchy
/// (creating it when the database has none).
pub async fn open_services(
    config: &Config,
    db: &Db,
    audit: &Arc<AuditLog>,
    actor: &str,
) -> Result<(Keys, Arc<Pki>)> {
    let keys = Keys::open_or_init(config, db, audit.clone(), actor).await?;
    let pki = Pki::load_or_create(config, db, keys.device(), audit, actor).await?;
    Ok((keys, Arc::new(pki)))
}

impl Server {
    /// Prepares everything and binds the listen address.
    pub async fn bind(mut config: Config) -> Result<(Self, Option<Initialised>)> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io(config.listen.to_string(), e))?;
        // A public URL derived from an ephemeral listen port (":0") names the real port, so the
        // URLs written into certificates (CRL, OCSP, AIA) work.
        if config.public_url.ends_with(":0")
            && let Ok(addr) = listener.local_addr()
        {
            config.public_url = format!("http://{addr}");
        }
        let (db, audit, created) = open(&config).await?;
        let (keys, pki) = open_services(&config, &db, &audit, "system").await?;
        let documents = Arc::new(crate::documents::Documents::open(
            &config.data_dir,
            config.documents.clone(),
        )?);
        let sms = crate::identity::sms::HttpSmsGateway::from_config(&config.sms)
            .map(|g| Arc::new(g) as Arc<dyn crate::identity::sms::SmsGateway>);
        let patient = crate::patient::Patient::new(sms.clone(), &config.patient);
        let vision = crate::identity::vision::HttpVision::from_config(&config.identity)?
            .map(|v| Arc::new(v) as Arc<dyn crate::identity::vision::IdentityVision>);
        let state = AppState {
            patient,
            db,
            audit,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            keys,
            pki,
            documents,
            clients: Arc::new(crate::signing::clients::Clients::default()),
            hub: crate::hub::Hub::new(),
            sms,
            vision,
        };
        Ok((Self { listener, state }, created))
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("listener", e))
    }

    /// The handler state (tests use its database handle).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let db = self.state.db.clone();
        let relay = (db.kind() == crate::store::DbKind::Postgres).then(|| {
            self.state
                .hub
                .listen_postgres(self.state.config.database_url.clone())
        });
        let webhooks = crate::signing::webhooks::spawn_worker(
            db.clone(),
            self.state.keys.device(),
            self.state.config.cosign.notifier_token.clone(),
        );
        let anchoring = crate::audit::spawn_anchoring(
            db.clone(),
            self.state.pki.clone(),
            self.state.config.audit.anchor_every_entries,
            i64::try_from(self.state.config.audit.anchor_every.as_millis()).unwrap_or(i64::MAX),
        );
        let app = router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(relay) = relay {
            relay.abort();
        }
        webhooks.abort();
        anchoring.abort();
        db.close().await;
        tracing::info!("database closed; shut down cleanly");
        served.map_err(|e| Error::io("http server", e))
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
