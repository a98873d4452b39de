//! Yiqian doctor / nurse app: the Tauri 2 shell. The UI (`mobile-ui`, Leptos compiled to wasm,
//! embedded from `mobile-app/ui/dist`) calls the commands below through Tauri's IPC; every
//! protocol step is `yiqian_phone`'s (the same code as the `cosign-phone` CLI). The task list
//! is pushed over the phone's WebSocket and forwarded to the window as `tasks` events.
//!
//! A `yiqian://` link opened by the system (deep link: `tauri-plugin-deep-link`; on Linux and
//! Windows the link is the program's one argument) is kept until the window takes it
//! (`take_link`) and announced as a `link` event while the app runs; on Android and iOS the
//! camera reads QR codes through `tauri-plugin-barcode-scanner` (the UI calls it directly).
//!
//! Data directory: `$YIQIAN_APP_DIR` when set (tests), otherwise the platform's app data
//! directory. It holds `phone.json` (device key and the share `d1` sealed under the PIN and the
//! server's OPRF key, file mode 0600) and `history.json`.
#![forbid(unsafe_code)]

pub mod logic;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cosign_proto::v1::cosign::{
    AuthorisationView, EnrollSmsSent, PhoneTask, RequestEvent, RoundOutcome, SignRequestView,
};
use futures_util::StreamExt;
use tauri::{AppHandle, Emitter, Manager, State};
use tauri_plugin_deep_link::DeepLinkExt;
#[cfg(mobile)]
use tauri_plugin_yiqian_keystore::KeystoreExt;
use yiqian_phone::{autosign, enroll, sign};
use zeroize::Zeroizing;

use crate::logic::{
    BatchItem, CertInfo, HistoryEntry, IncomingLink, Progress, Status, Store, UiError, UiResult,
    activation_parts, cert_info, now_ms, request_result, sign_link_parts, ui,
};

/// App state shared by the commands.
#[derive(Debug)]
pub struct App {
    store: Store,
    push: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Whether the push connection is up (the `push` events tell the window about changes; the
    /// window asks with `online` when it loads, since events sent before that are lost).
    online: Arc<AtomicBool>,
    /// The last `yiqian://` link the system opened the app with, until the window takes it.
    incoming: Mutex<Option<IncomingLink>>,
    /// Requests the doctor confirmed (PIN entered) that failed for want of a network, retried
    /// when the push connection is back.
    queued: Mutex<Option<Queued>>,
}

/// How long confirmed requests wait for the network, the PIN held in memory only: long enough
/// for a lift or a dead spot on the ward, short enough that a phone left behind holds no PIN.
const QUEUE_FOR: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A confirmed batch waiting for the network.
struct Queued {
    request_ids: Vec<String>,
    pin: Zeroizing<String>,
    until: std::time::Instant,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("request_ids", &self.request_ids.len())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Keeps a link the system opened the app with (the newest wins) and tells the window.
    fn link_opened(&self, app: &AppHandle, raw: &str) {
        let Some(link) = IncomingLink::classify(raw) else {
            return;
        };
        *self
            .incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link.clone());
        let _ = app.emit("link", link);
    }

    fn stop_push(&self) {
        if let Some(h) = self
            .push
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            h.abort();
        }
        self.online.store(false, Ordering::SeqCst);
    }

    /// Signs `request_ids` in rounds with `pin` (progress as `batch-progress` events); the
    /// requests that failed only for want of a network are queued with the PIN until `until`
    /// (`queued` event: how many), replacing an earlier queue. A retry keeps the first
    /// deadline, so a flapping network never holds the PIN longer than [`QUEUE_FOR`].
    async fn sign_batch(
        &self,
        handle: &AppHandle,
        request_ids: &[String],
        pin: Zeroizing<String>,
        until: std::time::Instant,
    ) -> UiResult<Vec<BatchItem>> {
        let items = logic::sign_batch(&self.store, request_ids, &pin, |done, total| {
            let _ = handle.emit("batch-progress", Progress { done, total });
        })
        .await?;
        let waiting = logic::network_failures(&items);
        let _ = handle.emit("queued", waiting.len());
        *self.lock_queue() = (!waiting.is_empty()).then(|| Queued {
            request_ids: waiting,
            pin,
            until,
        });
        Ok(items)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Option<Queued>> {
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection is back: signs the queued requests (if still within [`QUEUE_FOR`]) and
    /// sends the results as a `batch-retried` event.
    async fn retry_queued(&self, handle: &AppHandle) {
        let Some(q) = self.lock_queue().take() else {
            return;
        };
        let _ = handle.emit("queued", 0usize);
        if q.until < std::time::Instant::now() {
            return;
        }
        if let Ok(items) = self
            .sign_batch(handle, &q.request_ids, q.pin, q.until)
            .await
        {
            let _ = handle.emit("batch-retried", items);
        }
    }

    /// (Re)starts the push connection for the enrolled state.
    fn start_push(self: &Arc<Self>, app: &AppHandle) {
        self.stop_push();
        let Ok(state) = self.store.state() else {
            return;
        };
        let app = app.clone();
        let online = self.online.clone();
        let me = Arc::clone(self);
        let handle = tauri::async_runtime::spawn(async move {
            loop {
                if let Ok(client) = sign::client(&state)
                    && let Ok(mut ws) = sign::task_events(&client).await
                {
                    online.store(true, Ordering::SeqCst);
                    let _ = app.emit("push", true);
                    let (me2, app2) = (me.clone(), app.clone());
                    tauri::async_runtime::spawn(async move { me2.retry_queued(&app2).await });
                    while let Some(Ok(msg)) = ws.next().await {
                        if let Ok(text) = msg.to_text()
                            && let Ok(RequestEvent::Tasks { tasks }) = serde_json::from_str(text)
                        {
                            let _ = app.emit("tasks", tasks);
                        }
                    }
                }
                online.store(false, Ordering::SeqCst);
                let _ = app.emit("push", false);
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
        *self
            .push
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
    }
}

type AppState<'a> = State<'a, Arc<App>>;

#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn status(app: AppState<'_>) -> Status {
    app.store.status()
}

/// Whether the push connection is up now.
#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn online(app: AppState<'_>) -> bool {
    app.online.load(Ordering::SeqCst)
}

/// The `yiqian://` link the system opened the app with, once (the window asks when it loads,
/// since a `link` event sent before it listens is lost).
#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn take_link(app: AppState<'_>) -> Option<IncomingLink> {
    app.incoming
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// What this device offers: on Android and iOS the camera reads QR codes and fingerprint /
/// face unlocks the inactivity lock; on the desktop links are pasted or opened by the system
/// and the lock takes the PIN.
#[tauri::command]
fn capabilities() -> logic::Capabilities {
    logic::Capabilities {
        camera: cfg!(mobile),
        biometric: cfg!(mobile),
    }
}

/// Parses an activation link: (server, staff id) for the confirmation screen.
#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn parse_activation(link: String) -> UiResult<(String, String)> {
    let (server, staff_id, _) = activation_parts(&link)?;
    Ok((server, staff_id))
}

#[tauri::command]
async fn request_sms(link: String) -> UiResult<EnrollSmsSent> {
    let (server, staff_id, code) = activation_parts(&link)?;
    enroll::request_sms_code(&server, &staff_id, &code)
        .await
        .map_err(ui)
}

/// Activation: two-party key generation, certificate, the share sealed under the PIN.
#[tauri::command]
async fn activate(
    handle: AppHandle,
    app: AppState<'_>,
    link: String,
    sms_code: Option<String>,
    pin: String,
) -> UiResult<CertInfo> {
    let pin = Zeroizing::new(pin);
    let (server, staff_id, code) = activation_parts(&link)?;
    let sms = sms_code.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let state = enroll::enroll_with_sms(&server, &staff_id, &code, sms, "医签桌面端 desktop", &pin)
        .await
        .map_err(ui)?;
    let info = cert_info(&state)?;
    app.store.save(state)?;
    app.start_push(&handle);
    Ok(info)
}

#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn certificate(app: AppState<'_>) -> UiResult<CertInfo> {
    cert_info(&app.store.state()?)
}

#[tauri::command]
async fn tasks(app: AppState<'_>) -> UiResult<Vec<PhoneTask>> {
    let client = sign::client(&app.store.state()?).map_err(ui)?;
    sign::tasks(&client).await.map_err(ui)
}

/// What a pasted or scanned `yiqian://sign` link asks to sign.
#[tauri::command]
async fn open_link(app: AppState<'_>, link: String) -> UiResult<SignRequestView> {
    let state = app.store.state()?;
    let (request_id, _) = sign_link_parts(&state, &link)?;
    let client = sign::client(&state).map_err(ui)?;
    sign::request(&client, &request_id).await.map_err(ui)
}

/// What a document of a request looks like, for the review before signing; its content must
/// have `digest_sm3`, the digest the screen shows (see `yiqian_phone::sign::document`).
#[tauri::command]
async fn preview(
    app: AppState<'_>,
    request_id: String,
    index: u32,
    digest_sm3: String,
) -> UiResult<logic::Preview> {
    let state = app.store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    let content = sign::document(&client, &request_id, index, &digest_sm3)
        .await
        .map_err(ui)?;
    if logic::is_word(&content) {
        // Shown through the server's PDF of it; if there is none, the file is named as before.
        if let Ok(pdf) = sign::word_as_pdf(&client, &request_id, index).await {
            return Ok(logic::converted_preview(&pdf, content.len()));
        }
    }
    Ok(logic::preview(&content))
}

/// Scan to sign: every document of the link's request, one round, after the PIN.
#[tauri::command]
async fn sign_link(app: AppState<'_>, link: String, pin: String) -> UiResult<RoundOutcome> {
    let pin = Zeroizing::new(pin);
    let state = app.store.state()?;
    let (request_id, _) = sign_link_parts(&state, &link)?;
    let client = sign::client(&state).map_err(ui)?;
    let view = sign::request(&client, &request_id).await.map_err(ui)?;
    let outcome = sign::sign_link(&state, link.trim(), &pin)
        .await
        .map_err(ui)?;
    if let Some(e) = request_result(&outcome.items, &request_id) {
        return Err(e);
    }
    app.store
        .record(vec![HistoryEntry::signed(&view, "scan", now_ms())]);
    Ok(outcome)
}

/// Batch signing with one PIN; `batch-progress` events after each round.
#[tauri::command]
async fn sign_batch(
    handle: AppHandle,
    app: AppState<'_>,
    request_ids: Vec<String>,
    pin: String,
) -> UiResult<Vec<BatchItem>> {
    let until = std::time::Instant::now() + QUEUE_FOR;
    app.sign_batch(&handle, &request_ids, Zeroizing::new(pin), until)
        .await
}

#[tauri::command]
async fn autosign_list(app: AppState<'_>) -> UiResult<Vec<AuthorisationView>> {
    let client = sign::client(&app.store.state()?).map_err(ui)?;
    autosign::list(&client).await.map_err(ui)
}

#[tauri::command]
async fn autosign_create(
    app: AppState<'_>,
    doc_types: Vec<String>,
    departments: Vec<String>,
    hours: u32,
    pin: String,
) -> UiResult<AuthorisationView> {
    let pin = Zeroizing::new(pin);
    let state = app.store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    let clean = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let req =
        autosign::request_for_hours(clean(doc_types), clean(departments), hours).map_err(ui)?;
    autosign::authorise(&client, &state, &pin, &req)
        .await
        .map_err(ui)
}

#[tauri::command]
async fn autosign_revoke(app: AppState<'_>, id: String) -> UiResult<AuthorisationView> {
    let client = sign::client(&app.store.state()?).map_err(ui)?;
    autosign::revoke(
        &client,
        &id,
        Some("医生在手机端撤销 / revoked on the phone".into()),
    )
    .await
    .map_err(ui)
}

#[allow(clippy::needless_pass_by_value)] // Tauri passes command arguments by value
#[tauri::command]
fn history(app: AppState<'_>, query: String) -> Vec<HistoryEntry> {
    app.store.history(&query)
}

/// Unlocks the inactivity lock: the PIN is checked the only way it can be, by opening the
/// share (one server-counted attempt, forgiven at the next verified signature).
#[tauri::command]
async fn verify_pin(app: AppState<'_>, pin: String) -> UiResult<()> {
    let pin = Zeroizing::new(pin);
    let state = app.store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    sign::unlock(&client, &state, &pin).await.map_err(ui)?;
    Ok(())
}

#[tauri::command]
async fn change_pin(app: AppState<'_>, old_pin: String, new_pin: String) -> UiResult<()> {
    let (old_pin, new_pin) = (Zeroizing::new(old_pin), Zeroizing::new(new_pin));
    let state = app.store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    let next = sign::change_pin(&client, &state, &old_pin, &new_pin)
        .await
        .map_err(ui)?;
    app.store.save(next)
}

/// Unbinds this device: the server revokes it and destroys its key share (and, when the user
/// confirmed that too, revokes the signing certificate and the auto-sign authorisations);
/// then the push connection stops and the sealed share, the device key and the history are
/// deleted from this device. Offline, nothing changes anywhere (`logic::unbind_outcome`).
#[tauri::command]
async fn unbind(app: AppState<'_>, revoke_certificate: bool) -> UiResult<()> {
    let state = app.store.state()?;
    let client = sign::client(&state).map_err(ui)?;
    logic::unbind_outcome(enroll::unbind(&client, revoke_certificate, None).await)?;
    app.stop_push();
    *app.lock_queue() = None;
    app.store.unbind()
}

/// The hardware key store that wraps the state file on Android and iOS (see
/// [`logic::DeviceWrap`]).
#[cfg(mobile)]
#[derive(Debug)]
struct HardwareKey(AppHandle);

#[cfg(mobile)]
impl logic::DeviceWrap for HardwareKey {
    fn wrap(&self, plain: &[u8]) -> Result<Vec<u8>, String> {
        self.0.keystore().wrap(plain).map_err(|e| e.to_string())
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        self.0
            .keystore()
            .unwrap(wrapped)
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
    }
    fn delete_key(&self) -> Result<(), String> {
        self.0.keystore().delete_key().map_err(|e| e.to_string())
    }
}

#[cfg(mobile)]
#[allow(clippy::unnecessary_wraps)]
fn device_wrap(app: &AppHandle) -> Option<Box<dyn logic::DeviceWrap>> {
    Some(Box::new(HardwareKey(app.clone())))
}

/// On the desktop the state file is sealed under the PIN and the OPRF key only.
#[cfg(not(mobile))]
fn device_wrap(_app: &AppHandle) -> Option<Box<dyn logic::DeviceWrap>> {
    None
}

/// The entry point Android and iOS call (their projects load the library, not the binary).
#[cfg(mobile)]
#[tauri::mobile_entry_point]
pub fn mobile_main() {
    if let Err(e) = run() {
        eprintln!("yiqian-doctor: {} / {}", e.message, e.message_en);
    }
}

/// Runs the app.
pub fn run() -> Result<(), UiError> {
    let builder = tauri::Builder::default().plugin(tauri_plugin_deep_link::init());
    #[cfg(mobile)]
    let builder = builder
        .plugin(tauri_plugin_barcode_scanner::init())
        .plugin(tauri_plugin_biometric::init())
        .plugin(tauri_plugin_yiqian_keystore::init());
    builder
        .setup(|tauri_app| {
            let dir = match std::env::var_os("YIQIAN_APP_DIR") {
                Some(d) => std::path::PathBuf::from(d),
                None => tauri_app.path().app_data_dir()?,
            };
            let store =
                Store::open(&dir, device_wrap(tauri_app.handle())).map_err(|e| e.message)?;
            let app = Arc::new(App {
                store,
                push: Mutex::new(None),
                online: Arc::new(AtomicBool::new(false)),
                incoming: Mutex::new(None),
                queued: Mutex::new(None),
            });
            app.start_push(tauri_app.handle());
            let handle = tauri_app.handle().clone();
            let opened = tauri_app.deep_link().get_current().ok().flatten();
            for url in opened.iter().flatten() {
                app.link_opened(&handle, url.as_str());
            }
            let (app2, handle2) = (app.clone(), handle.clone());
            tauri_app.deep_link().on_open_url(move |event| {
                for url in event.urls() {
                    app2.link_opened(&handle2, url.as_str());
                }
            });
            tauri_app.manage(app);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            status,
            online,
            take_link,
            capabilities,
            parse_activation,
            request_sms,
            activate,
            certificate,
            tasks,
            open_link,
            preview,
            sign_link,
            sign_batch,
            autosign_list,
            autosign_create,
            autosign_revoke,
            history,
            verify_pin,
            change_pin,
            unbind,
        ])
        .run(tauri::generate_context!())
        .map_err(|e| UiError::new("STARTUP", format!("应用无法启动：{e}"), e.to_string()))
}
