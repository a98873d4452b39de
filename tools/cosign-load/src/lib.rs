//! Load generator for the co-signing service (issue 6, "Benchmarks").
//!
//! Everything goes through the real interfaces of a running `cosign-server`, as a hospital
//! deployment would use them:
//!
//! * **setup** — an administrator signs in (replacing the one-time password if asked),
//!   registers a client system (the terminals' HIS) and enrols N doctors: create the staff
//!   member, issue an activation code, then the phone library `yiqian_phone` runs the device-key
//!   enrolment and the two-party key generation, several doctors at a time;
//! * **signing** — each simulated phone runs a closed loop: its terminal creates a request
//!   (HMAC-SM3-signed call), opens the request's WebSocket, hands the `yiqian://sign` link to
//!   the phone (a scan) or lets the phone learn of it from its push WebSocket, the phone
//!   co-signs through the protocol (PIN, round, commit, result) and the terminal waits for the
//!   final state. Latency is measured from just before the create call until the terminal's
//!   WebSocket delivers `completed`;
//! * **idle** — opens many WebSockets that then stay silent and reads the server's resident
//!   memory (`/proc/PID/status`) before and after.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cosign_proto::v1::auth::canonical_request;
use cosign_proto::v1::cosign::{
    ClientAppCreated, CreateClientApp, CreateSignRequest, CreateStaff, DocumentToSign,
    RequestEvent, SignRequestCreated,
};
use cosign_proto::v1::qr::QrLink;
use futures_util::StreamExt;
use hmac::{KeyInit, Mac};
use sm3::{Digest, Sm3};
use tokio_tungstenite::tungstenite::Message;
use yiqian_phone::{PhoneState, enroll, sign};

/// The PIN every simulated doctor chooses.
pub const PIN: &str = "246810";
/// GB 11643's published example number (valid check digit).
const ID_NUMBER: &str = "11010519491231002X";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(4096)
        .build()?)
}

async fn json_or_error<T: serde::de::DeserializeOwned>(
    r: reqwest::Response,
    what: &str,
) -> Result<T> {
    let status = r.status();
    if !status.is_success() {
        let text = r.text().await.unwrap_or_default();
        bail!("{what}: HTTP {status}: {text}");
    }
    Ok(r.json().await?)
}

/// A signed-in administrator.
#[derive(Debug, Clone)]
pub struct Admin {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Admin {
    /// Signs in as `user`; if the server asks for a new password (the first start's one-time
    /// password), sets `new_password`, which the caller must use next time.
    pub async fn login(base: &str, user: &str, password: &str, new_password: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let http = http_client()?;
        let login: serde_json::Value = json_or_error(
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"username": user, "password": password}))
                .send()
                .await?,
            "login",
        )
        .await?;
        let token = login["token"]
            .as_str()
            .ok_or_else(|| anyhow!("login answered without a token"))?
            .to_owned();
        if login["must_change_password"].as_bool() == Some(true) {
            let r = http
                .post(format!("{base}/api/v1/auth/password"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"old_password": password, "new_password": new_password}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("password change: HTTP {}", r.status());
            }
        }
        Ok(Self { base, http, token })
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        json_or_error(req.send().await?, path).await
    }

    /// Registers a client system with both permissions and the highest call rate.
    pub async fn register_terminal(&self) -> Result<Terminal> {
        let created: ClientAppCreated = self
            .post(
                "/api/v1/admin/apps",
                Some(&CreateClientApp {
                    name: "压测终端 load terminal".into(),
                    permissions: vec!["sign_request:create".into(), "sign_request:read".into()],
                    rate_per_minute: Some(6_000_000),
                    rate_per_second: None,
                    // The whole load comes from this one app: no throttling by its bucket.
                    burst: Some(100_000),
                    webhook_url: None,
                }),
            )
            .await?;
        Ok(Terminal {
            app_id: created.app_id,
            secret: hex::decode(&created.secret)?,
            base: self.base.clone(),
            http: http_client()?,
            qr_image: true,
            documents: 1,
        })
    }

    /// Creates staff member `staff_id` and enrols a phone for them.
    pub async fn enrol(&self, staff_id: &str) -> Result<Phone> {
        let _: serde_json::Value = self
            .post(
                "/api/v1/admin/staff",
                Some(&CreateStaff {
                    staff_id: staff_id.to_owned(),
                    name: format!("压测医生{staff_id}"),
                    department: "心内科".into(),
                    role: "医师".into(),
                    phone: "13812345678".into(),
                    id_number: Some(ID_NUMBER.into()),
                    licence_no: Some("110110000012345".into()),
                }),
            )
            .await
            .with_context(|| format!("create staff {staff_id}"))?;
        let issued: serde_json::Value = self
            .post(
                &format!("/api/v1/admin/staff/{staff_id}/activation"),
                None::<&()>,
            )
            .await?;
        let link: QrLink = issued["qr_payload"]
            .as_str()
            .ok_or_else(|| anyhow!("activation without qr_payload"))?
            .parse()
            .map_err(|e| anyhow!("activation link: {e}"))?;
        let QrLink::Activate { staff_id, code, .. } = link else {
            bail!("activation answered with a signing link");
        };
        let state = enroll::enroll(&self.base, &staff_id, &code, "压测手机", PIN)
            .await
            .with_context(|| format!("enrol {staff_id}"))?;
        Phone::new(state)
    }

    /// Enrols `n` doctors `{prefix}00000`… with `parallel` enrolments in flight.
    pub async fn enrol_many(&self, prefix: &str, n: usize, parallel: usize) -> Result<Vec<Phone>> {
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i:05}")).collect();
        let results: Vec<Result<Phone>> = futures_util::stream::iter(ids)
            .map(|id| {
                let admin = self.clone();
                async move { admin.enrol(&id).await }
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// A simulated doctor's phone: its enrolled state and a signed client that keeps its
/// connection between calls.
#[derive(Debug)]
pub struct Phone {
    /// What the app stores.
    pub state: PhoneState,
    client: yiqian_phone::Client,
}

impl Phone {
    fn new(state: PhoneState) -> Result<Self> {
        let client = sign::client(&state)?;
        Ok(Self { state, client })
    }

    /// Opens the phone's push WebSocket (device-signed upgrade) and reads the first task list.
    pub async fn push_socket(&self) -> Result<Ws> {
        let mut ws = sign::task_events(&self.client).await?;
        next_text(&mut ws).await?;
        Ok(ws)
    }

    /// Scan to sign: every document of the request named by `link`, with the QR nonce.
    async fn sign_scanned(&self, link: &str) -> Result<()> {
        let QrLink::Sign {
            request_id, nonce, ..
        } = link.parse().map_err(|e| anyhow!("signing link: {e}"))?
        else {
            bail!("not a signing link");
        };
        let view = sign::request(&self.client, &request_id).await?;
        let outcome =
            sign::sign_reviewed(&self.client, &self.state, PIN, &[view], Some(nonce)).await?;
        check_outcome(&outcome)
    }

    /// Push to sign: waits on the push socket until `request_id` is in the task list, then
    /// signs its documents.
    async fn sign_pushed(&self, ws: &mut Ws, request_id: &str) -> Result<()> {
        let task = loop {
            let text = next_text(ws).await?;
            if let RequestEvent::Tasks { tasks } = serde_json::from_str(&text)?
                && let Some(t) = tasks
                    .into_iter()
                    .find(|t| t.request.request_id == request_id)
            {
                break t;
            }
        };
        let outcome =
            sign::sign_reviewed(&self.client, &self.state, PIN, &[task.request], None).await?;
        check_outcome(&outcome)
    }
}

fn check_outcome(outcome: &cosign_proto::v1::cosign::RoundOutcome) -> Result<()> {
    match outcome.items.iter().find(|i| !i.ok) {
        None => Ok(()),
        Some(i) => bail!("item refused: {:?}", i.code),
    }
}

/// The next text message of a WebSocket (pings are answered by the library), within 30 s.
async fn next_text(ws: &mut Ws) -> Result<String> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(Message::Close(_))) | None => bail!("WebSocket closed"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no WebSocket message within 30 s"))?
}

/// A client system (HIS) making HMAC-SM3-signed calls.
#[derive(Debug)]
pub struct Terminal {
    app_id: String,
    secret: Vec<u8>,
    base: String,
    http: reqwest::Client,
    /// Ask for the QR code's SVG with each request, as a terminal showing it does.
    pub qr_image: bool,
    /// Documents per request (1: one prescription; more: a batch the phone signs in one
    /// round with one PIN, as a nurse's tablet signs a ward round's records).
    pub documents: usize,
}

impl Terminal {
    fn hmac(&self, canonical: &str) -> Result<String> {
        let mut mac = <hmac::Hmac<Sm3> as KeyInit>::new_from_slice(&self.secret)
            .map_err(|_| anyhow!("HMAC key"))?;
        mac.update(canonical.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Creates a request of [`Self::documents`] documents for `signer` (SM3 digests only, as
    /// most HIS calls).
    pub async fn create(&self, signer: &str, seq: u64) -> Result<SignRequestCreated> {
        let documents = (0..self.documents.max(1))
            .map(|d| DocumentToSign {
                name: format!("门诊处方 {seq}-{d}"),
                digest_sm3: Some(hex::encode(Sm3::digest(
                    format!("{signer}/{seq}/{d}").as_bytes(),
                ))),
                content: None,
                media_type: None,
            })
            .collect();
        let body = serde_json::to_vec(&CreateSignRequest {
            signers: vec![signer.to_owned()],
            ordered: false,
            documents,
            title: "门诊处方".into(),
            patient_id: Some("P0001".into()),
            visit_id: None,
            doc_type: Some("处方".into()),
            department: Some("心内科".into()),
            expires_in: Some(3600),
            auto_sign: Some(false),
            qr_image: Some(self.qr_image),
        })?;
        let path = "/api/v1/sign-requests";
        let ts = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let canonical =
            canonical_request("POST", path, ts, &nonce, &hex::encode(Sm3::digest(&body)));
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-yiqian-app-id", &self.app_id)
            .header("x-yiqian-timestamp", ts.to_string())
            .header("x-yiqian-nonce", nonce)
            .header("x-yiqian-signature", self.hmac(&canonical)?)
            .body(body)
            .send()
            .await?;
        json_or_error(r, "create request").await
    }

    /// Opens the request's WebSocket and reads its first state (`pending`).
    pub async fn watch(&self, created: &SignRequestCreated) -> Result<Ws> {
        let url = format!(
            "{}/api/v1/sign-requests/{}/events?token={}",
            self.base.replacen("http", "ws", 1),
            created.request_id,
            created.watch_token
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let first = next_text(&mut ws).await?;
        if status_of(&first)? != "pending" {
            bail!("a new request is not pending: {first}");
        }
        Ok(ws)
    }
}

fn status_of(text: &str) -> Result<String> {
    match serde_json::from_str(text)? {
        RequestEvent::Status { request } => Ok(request.status),
        RequestEvent::Tasks { .. } => bail!("task list on a request socket"),
    }
}

/// How a phone learns of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The doctor scans the terminal's QR code (`yiqian://sign` with its nonce).
    Scan,
    /// The phone's push WebSocket announces it.
    Push,
}

/// One request end to end: create → terminal watches → phone co-signs its documents in one
/// round → terminal hears `completed`. Returns the latency.
async fn one_cosignature(
    terminal: &Terminal,
    phone: &Phone,
    push: Option<&mut Ws>,
    seq: u64,
) -> Result<Duration> {
    let start = Instant::now();
    let created = terminal.create(&phone.state.staff_id, seq).await?;
    let mut watch = terminal.watch(&created).await?;
    let signing = async {
        match push {
            Some(ws) => phone.sign_pushed(ws, &created.request_id).await,
            None => phone.sign_scanned(&created.qr_payload).await,
        }
    };
    let hearing = async {
        loop {
            let status = status_of(&next_text(&mut watch).await?)?;
            if status != "pending" {
                return Ok::<_, anyhow::Error>((status, start.elapsed()));
            }
        }
    };
    let (signed, heard) = tokio::join!(signing, hearing);
    signed?;
    let (status, latency) = heard?;
    if status != "completed" {
        bail!("the terminal heard {status}, not completed");
    }
    let _ = watch.close(None).await;
    Ok(latency)
}

/// How long a level runs and how its phones pace themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pacing {
    /// Not counted, before the window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// Each phone signs exactly this many times and the window is the whole run (the smoke
    /// test's deterministic mode).
    pub per_phone: Option<u64>,
    /// A phone's pause after each co-signature (a doctor turning to the next patient); zero
    /// is a closed loop, every phone signing back to back, which measures the server
    /// saturated. With a pause the phones offer about `phones ÷ (pause + latency)`
    /// co-signatures per second and start spread over one pause, so the latency is that of
    /// a server below saturation.
    pub pause: Duration,
}

/// Numbers of one concurrency level.
#[derive(Debug, Clone)]
pub struct LevelReport {
    /// Concurrent phones (each with its own terminal loop).
    pub phones: usize,
    /// Each phone's pause between co-signatures.
    pub pause: Duration,
    /// How phones learnt of requests.
    pub via: Via,
    /// Documents per request, each one co-signature (all of a request in one round).
    pub documents: usize,
    /// Length of the measured window.
    pub window: Duration,
    /// Requests completed inside the window (each [`Self::documents`] co-signatures).
    pub completed: usize,
    /// Failed attempts inside the window.
    pub errors: usize,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Latencies (sorted) of the window's requests, create to `completed`.
    pub latencies: Vec<Duration>,
    /// Server CPU time (user + system) used during the window, when its PID was given.
    pub server_cpu: Option<Duration>,
}

impl LevelReport {
    /// Co-signatures (documents signed) completed inside the window.
    pub fn cosignatures(&self) -> usize {
        self.completed * self.documents
    }

    /// Co-signatures per second over the window.
    pub fn per_second(&self) -> f64 {
        usize_f64(self.cosignatures()) / self.window.as_secs_f64()
    }

    /// Server CPU time per co-signature of the window.
    pub fn server_cpu_per_cosignature(&self) -> Option<Duration> {
        let n = u32::try_from(self.cosignatures()).ok().filter(|n| *n > 0)?;
        Some(self.server_cpu? / n)
    }

    /// The `q` quantile (0–1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * usize_f64(self.latencies.len())).ceil();
        // Truncation is the intent: the rank is a small positive integer.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let idx = (rank as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[idx]
    }
}

#[allow(clippy::cast_precision_loss)]
fn usize_f64(n: usize) -> f64 {
    n as f64
}

/// Runs every phone's loop for `warmup + window` (see [`Pacing`]); counts what ends inside
/// the window (loops stop starting new co-signatures when it closes). With `server_pid`, the
/// server's CPU time over the window is read from `/proc`.
pub async fn run_level(
    terminal: Arc<Terminal>,
    phones: &[Arc<Phone>],
    via: Via,
    pacing: Pacing,
    server_pid: Option<u32>,
) -> Result<LevelReport> {
    let Pacing {
        warmup,
        window,
        per_phone,
        pause,
    } = pacing;
    let mut pushes = Vec::with_capacity(phones.len());
    if via == Via::Push {
        for p in phones {
            pushes.push(Some(p.push_socket().await?));
        }
    } else {
        pushes.resize_with(phones.len(), || None);
    }
    let t0 = Instant::now();
    let (from, until) = match per_phone {
        Some(_) => (t0, None),
        None => (t0 + warmup, Some(t0 + warmup + window)),
    };
    // Samples the server's CPU time at the window's edges (not in the deterministic mode).
    let cpu_probe = match (server_pid, per_phone) {
        (Some(pid), None) => Some(tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let a = cpu_ticks(pid)?;
            tokio::time::sleep(window).await;
            Ok::<_, anyhow::Error>(Duration::from_millis((cpu_ticks(pid)? - a) * 10))
        })),
        _ => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    let count = u32::try_from(phones.len().max(1)).unwrap_or(u32::MAX);
    for (i, (phone, mut push)) in phones.iter().cloned().zip(pushes).enumerate() {
        let terminal = terminal.clone();
        let start = pause / count * u32::try_from(i).unwrap_or(u32::MAX);
        tasks.spawn(async move {
            tokio::time::sleep(start).await;
            let mut done = Vec::new();
            let mut errors = 0usize;
            let mut first_error = None;
            let mut seq = (i as u64) << 32;
            loop {
                let now = Instant::now();
                if until.is_some_and(|u| now >= u)
                    || per_phone.is_some_and(|k| seq - ((i as u64) << 32) >= k)
                {
                    break;
                }
                seq += 1;
                let r = one_cosignature(&terminal, &phone, push.as_mut(), seq).await;
                // Counted when it ends inside the window (with 1,000 phones one co-signature
                // can take longer than the window itself).
                let ended = Instant::now();
                let counted = ended >= from && until.is_none_or(|u| ended <= u);
                match r {
                    Ok(lat) => {
                        if counted {
                            done.push(lat);
                        }
                        tokio::time::sleep(pause).await;
                    }
                    Err(e) => {
                        if counted {
                            errors += 1;
                        }
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        // A broken push socket is reopened; pause so errors do not spin.
                        if via == Via::Push {
                            push = phone.push_socket().await.ok();
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (done, errors, first_error)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (done, e, first) = joined?;
        latencies.extend(done);
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    latencies.sort_unstable();
    let server_cpu = match cpu_probe {
        Some(p) => Some(p.await??),
        None => None,
    };
    let window = match per_phone {
        Some(_) => t0.elapsed(),
        None => window,
    };
    Ok(LevelReport {
        phones: phones.len(),
        pause,
        via,
        documents: terminal.documents.max(1),
        window,
        completed: latencies.len(),
        errors,
        first_error,
        latencies,
        server_cpu,
    })
}

/// Which idle WebSockets to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleKind {
    /// Terminals watching pending requests (token in the query).
    Terminal,
    /// Phones' push sockets (device-signed upgrades), several per enrolled phone.
    Phone,
}

/// Memory (and CPU) of a server holding idle WebSockets.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// What was opened.
    pub kind: IdleKind,
    /// Sockets open at the second sample.
    pub sockets: usize,
    /// Server RSS before opening them, KiB.
    pub rss_before_kib: u64,
    /// Server RSS with them open (after settling), KiB.
    pub rss_after_kib: u64,
    /// Server CPU time used while they sat idle, as a share of one core.
    pub idle_cpu_share: f64,
    /// Length of the idle sample.
    pub idle_sample: Duration,
}

impl IdleReport {
    /// Resident memory added per connection, KiB.
    pub fn kib_per_socket(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let delta = self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64;
        delta / usize_f64(self.sockets.max(1))
    }
}

/// `VmRSS` of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for {pid}"))
}

/// User + system CPU time of `pid` in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

/// How the idle test waits and samples.
#[derive(Debug, Clone, Copy)]
pub struct IdleTiming {
    /// Pause before each RSS sample (the server finishes its handshakes, the allocator settles).
    pub settle: Duration,
    /// How long the server's CPU time is sampled while the sockets sit idle.
    pub sample: Duration,
}

/// Opens `n` idle WebSockets (`parallel` handshakes at a time), waits for the server to
/// settle, samples its RSS and CPU, and returns the sockets' numbers. The sockets are
/// closed when this returns.
pub async fn idle(
    terminal: &Terminal,
    phones: &[Arc<Phone>],
    kind: IdleKind,
    n: usize,
    parallel: usize,
    server_pid: u32,
    timing: IdleTiming,
) -> Result<IdleReport> {
    let IdleTiming { settle, sample } = timing;
    let first = phones
        .first()
        .ok_or_else(|| anyhow!("the idle test needs one enrolled phone"))?;
    // Terminal sockets watch 100 pending requests, created before the first sample.
    let mut requests = Vec::new();
    if kind == IdleKind::Terminal {
        for seq in 0..n.div_ceil(100).max(1) {
            requests.push(
                terminal
                    .create(&first.state.staff_id, (1 << 40) | seq as u64)
                    .await?,
            );
        }
    }
    // One socket of each kind first, so lazily built server state is in the baseline.
    let warm = open_idle(terminal, phones, &requests, kind, 0).await?;
    tokio::time::sleep(settle).await;
    let rss_before_kib = rss_kib(server_pid)?;
    let opened: Vec<Result<Ws>> = futures_util::stream::iter(1..=n)
        .map(|i| open_idle(terminal, phones, &requests, kind, i))
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut sockets = Vec::with_capacity(n);
    for s in opened {
        sockets.push(s?);
    }
    tokio::time::sleep(settle).await;
    let ticks0 = cpu_ticks(server_pid)?;
    let t0 = Instant::now();
    // The clients answer pings while idle: read whatever arrives.
    let drain = async {
        let mut all = futures_util::stream::select_all(sockets.iter_mut().map(StreamExt::by_ref));
        while all.next().await.is_some() {}
    };
    let _ = tokio::time::timeout(sample, drain).await;
    let idle_sample = t0.elapsed();
    let ticks1 = cpu_ticks(server_pid)?;
    let rss_after_kib = rss_kib(server_pid)?;
    #[allow(clippy::cast_precision_loss)]
    let idle_cpu_share = (ticks1 - ticks0) as f64 / 100.0 / idle_sample.as_secs_f64();
    let count = sockets.len();
    drop(sockets);
    drop(warm);
    Ok(IdleReport {
        kind,
        sockets: count,
        rss_before_kib,
        rss_after_kib,
        idle_cpu_share,
        idle_sample,
    })
}

async fn open_idle(
    terminal: &Terminal,
    phones: &[Arc<Phone>],
    requests: &[SignRequestCreated],
    kind: IdleKind,
    i: usize,
) -> Result<Ws> {
    match kind {
        IdleKind::Terminal => terminal.watch(&requests[i % requests.len()]).await,
        IdleKind::Phone => phones[i % phones.len()].push_socket().await,
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The Markdown table of the signing levels.
pub fn level_table(levels: &[LevelReport]) -> String {
    let mut out = String::from(
        "| phones | pause ms | via | documents per request | window s | co-signatures | errors | per second | p50 ms | p99 ms | max ms | server CPU per co-signature ms |\n\
         |---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for l in levels {
        let _ = writeln!(
            out,
            "| {} | {} | {:?} | {} | {:.1} | {} | {} | {:.1} | {} | {} | {} | {} |",
            l.phones,
            l.pause.as_millis(),
            l.via,
            l.documents,
            l.window.as_secs_f64(),
            l.cosignatures(),
            l.errors,
            l.per_second(),
            ms(l.quantile(0.5)),
            ms(l.quantile(0.99)),
            ms(l.latencies.last().copied().unwrap_or_default()),
            l.server_cpu_per_cosignature()
                .map_or_else(|| "–".to_owned(), ms),
        );
    }
    out
}

/// The Markdown table of the idle tests.
pub fn idle_table(idle: &[IdleReport]) -> String {
    let mut out = String::from(
        "| idle sockets | kind | server RSS before MiB | after MiB | KiB per socket | server CPU while idle |\n\
         |---:|---|---:|---:|---:|---:|\n",
    );
    for r in idle {
        #[allow(clippy::cast_precision_loss)]
        let mib = |k: u64| k as f64 / 1024.0;
        let _ = writeln!(
            out,
            "| {} | {:?} | {:.1} | {:.1} | {:.1} | {:.0} % of a core |",
            r.sockets,
            r.kind,
            mib(r.rss_before_kib),
            mib(r.rss_after_kib),
            r.kib_per_socket(),
            r.idle_cpu_share * 100.0,
        );
    }
    out
}
