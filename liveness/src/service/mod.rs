//! `liveness serve`: the HTTP service of docs/identity/api.md. Requests are read whole and
//! bounded ([`input`]), then analysed on tokio's blocking pool with at most `workers` at once and
//! a per-request deadline ([`AppState::run`]); the answer is JSON, errors `{code, message,
//! message_en}` ([`error`]).

pub mod challenge;
pub mod error;
pub mod input;
mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::antispoof::AntiSpoof;
use crate::face::FaceEngine;
use crate::imagestore::ImageStore;
use crate::models::{Model, ModelDir};
use crate::ocr::CardReader;
use challenge::Challenges;
use error::ApiError;

/// What `liveness serve` is started with.
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8090` by default; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The models.
    pub models: ModelDir,
    /// Shared bearer token; `None` leaves the service open to whoever reaches the address.
    pub token: Option<Zeroizing<String>>,
    /// Per-request deadline.
    pub timeout: Duration,
    /// Requests analysed at once.
    pub workers: usize,
    /// Challenge MAC key; `None` makes a random one (tokens then valid in this process only).
    pub challenge_key: Option<Zeroizing<Vec<u8>>>,
    /// Where judged images are kept encrypted; `None` keeps nothing.
    pub store: Option<ImageStore>,
    /// The anti-spoof model the hospital supplies, if any.
    pub anti_spoof: Option<Arc<dyn AntiSpoof>>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("models", &self.models)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("workers", &self.workers)
            .field("store", &self.store)
            .field("anti_spoof", &self.anti_spoof.as_ref().map(|a| a.name()))
            .finish_non_exhaustive()
    }
}

/// Every model the service needs, for the start-up check (the library loads the 68-point
/// model only when present; the service has a liveness route, so it requires it).
pub fn required_models() -> Vec<Model> {
    let mut all = Model::OCR.to_vec();
    all.extend(Model::FACE);
    all.push(Model::Landmarks68);
    all
}

/// Every missing model with its path, or `Ok` (start-up names them all at once).
pub fn check_models(models: &ModelDir) -> Result<(), String> {
    let missing: Vec<String> = required_models()
        .into_iter()
        .filter_map(|m| models.require(&[m]).err())
        .map(|e| format!("  - {e}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} model(s) missing in {}:\n{}",
            missing.len(),
            models.dir().display(),
            missing.join("\n")
        ))
    }
}

/// A fixed set of engines handed out one per running request (the OCR session is not
/// shareable between threads without a lock; one per worker keeps workers parallel).
struct Pool<T> {
    items: Mutex<Vec<T>>,
}

/// An engine taken from a [`Pool`], put back on drop.
struct Taken<'a, T> {
    pool: &'a Pool<T>,
    item: Option<T>,
}

impl<T> Pool<T> {
    fn take(&self) -> Result<Taken<'_, T>, ApiError> {
        let item = self
            .items
            .lock()
            .map_err(|_| ApiError::internal("pool lock poisoned"))?
            .pop();
        // The semaphore has as many permits as the pool has engines: one is always free.
        item.map(|i| Taken {
            pool: self,
            item: Some(i),
        })
        .ok_or_else(|| ApiError::internal("engine pool empty"))
    }
}

impl<T> std::ops::Deref for Taken<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        if let (Some(i), Ok(mut items)) = (self.item.take(), self.pool.items.lock()) {
            items.push(i);
        }
    }
}

/// The loaded service.
pub struct AppState {
    readers: Pool<CardReader>,
    face: FaceEngine,
    anti_spoof: Option<Arc<dyn AntiSpoof>>,
    challenges: Challenges,
    token: Option<Zeroizing<String>>,
    store: Option<ImageStore>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Checks every model, then loads one OCR engine per worker and the face engine.
    pub fn load(cfg: ServeConfig) -> Result<Arc<Self>, String> {
        check_models(&cfg.models)?;
        let workers = cfg.workers.max(1);
        let readers = (0..workers)
            .map(|_| CardReader::load(&cfg.models, 1))
            .collect::<crate::Result<Vec<_>>>()
            .map_err(|e| format!("loading the OCR model: {e}"))?;
        let face =
            FaceEngine::load(&cfg.models).map_err(|e| format!("loading the face models: {e}"))?;
        let challenges = match cfg.challenge_key {
            Some(k) => Challenges::with_key(k)?,
            None => Challenges::random(),
        };
        Ok(Arc::new(Self {
            readers: Pool {
                items: Mutex::new(readers),
            },
            face,
            anti_spoof: cfg.anti_spoof,
            challenges,
            token: cfg.token,
            store: cfg.store,
            permits: Arc::new(Semaphore::new(workers)),
            timeout: cfg.timeout,
        }))
    }

    /// Runs an analysis on the blocking pool: waits for a worker until the deadline (`busy`),
    /// then for the result until the deadline (`timeout`). A job past its deadline runs to its
    /// end holding its worker, so no more than `workers` analyses ever run at once.
    async fn run<T, F>(self: &Arc<Self>, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Self) -> Result<T, ApiError> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let permit = tokio::time::timeout_at(deadline, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ApiError::busy())?
            .map_err(|_| ApiError::internal("worker semaphore closed"))?;
        let me = Arc::clone(self);
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&me)
        });
        match tokio::time::timeout_at(deadline, handle).await {
            Err(_) => Err(ApiError::timeout()),
            Ok(Err(_)) => Err(ApiError::internal("analysis panicked")),
            Ok(Ok(r)) => r,
        }
    }

    /// Keeps an image when the store is configured; its SHA-256 either way.
    fn keep(&self, image: &[u8]) -> Result<String, ApiError> {
        match &self.store {
            Some(s) => s.put(image).map_err(|e| ApiError::internal(&e.to_string())),
            None => Ok(crate::imagestore::sha256_hex(image)),
        }
    }
}

/// Bearer-token check (every route but health); constant-time comparison.
async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.token {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return ApiError::new(
                "unauthorized",
                "缺少或错误的访问令牌。",
                "missing or wrong bearer token",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The service's routes over a loaded state.
pub fn router(state: Arc<AppState>) -> Router {
    let guarded = Router::new()
        .route("/v1/idcard/front", post(routes::idcard_front))
        .route("/v1/idcard/back", post(routes::idcard_back))
        .route("/v1/face/match", post(routes::face_match))
        .route("/v1/liveness/challenges", post(routes::new_challenge))
        .route("/v1/liveness/checks", post(routes::liveness_check))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth));
    Router::new()
        .route("/v1/health", get(routes::health))
        .merge(guarded)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Bodies are bounded by `input::Upload::read` itself, with a JSON error.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("handler panicked").into_response()
            },
        ))
        .with_state(state)
}

/// Listens and serves until SIGINT/SIGTERM. Prints `listening on ADDR` on stdout once bound
/// (tests and scripts read the port from it when `--listen` asks for port 0).
pub async fn serve(listen: SocketAddr, state: Arc<AppState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, "liveness serve listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
