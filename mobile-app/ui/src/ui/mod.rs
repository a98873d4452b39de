//! The app's screens. Shared state lives in [`Ctx`] (provided as context). Layout: on a phone one
//! screen at a time with a bottom tab bar; from 900 px wide two panes, the task list always on
//! the left (nurses batch-sign from it) and the current screen on the right.

mod activate;
mod autosign;
mod history;
mod ipc;
mod me;
mod pdf;
mod scan;
mod tasks;

use std::time::Duration;

use cosign_proto::v1::cosign::PhoneTask;
use leptos::prelude::*;

use crate::model::{
    BatchItem, Capabilities, IncomingLink, Progress, Status, UiError, badge, failed_ids,
};

/// Inactivity before the app locks (hides patient data until the PIN is entered).
const LOCK_AFTER_MS: f64 = 5.0 * 60_000.0;

/// Which screen the main pane shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Reading the state.
    Loading,
    /// Not enrolled: activation.
    Activate,
    /// The task list (phone: full screen; tablet: the left pane is the list).
    Tasks,
    /// Batch signing of the selected tasks.
    Batch,
    /// Scan to sign (paste the link on desktop).
    Scan,
    /// Auto-sign authorisations.
    AutoSign,
    /// Signing history.
    History,
    /// Certificate, PIN change, lock, unbind.
    Me,
}

/// Interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文 (default).
    Zh,
    /// English.
    En,
}

/// State shared by the screens.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Main pane.
    pub screen: RwSignal<Screen>,
    /// Language.
    pub lang: RwSignal<Lang>,
    /// Enrolment.
    pub status: RwSignal<Option<Status>>,
    /// Pending tasks as last pushed or fetched.
    pub tasks: RwSignal<Vec<PhoneTask>>,
    /// Selected request ids (batch).
    pub selected: RwSignal<Vec<String>>,
    /// Push connection up.
    pub online: RwSignal<bool>,
    /// Locked by inactivity.
    pub locked: RwSignal<bool>,
    /// Last input, `Date.now()`.
    pub last_active: StoredValue<f64>,
    /// Progress of the running batch.
    pub progress: RwSignal<Option<Progress>>,
    /// A `yiqian://` link the system opened the app with, until its screen takes it.
    pub incoming: RwSignal<Option<IncomingLink>>,
    /// What this device offers (camera scanning, biometric unlock).
    pub caps: RwSignal<Capabilities>,
    /// Results of the last batch (also of its automatic retry).
    pub batch_results: RwSignal<Option<Vec<BatchItem>>>,
    /// Confirmed requests waiting for the network (retried when it is back).
    pub queued: RwSignal<usize>,
    /// When the task list was last read from the server (`Date.now()`).
    pub refreshed_at: RwSignal<Option<f64>>,
}

impl Ctx {
    /// The context.
    pub fn get() -> Self {
        expect_context::<Self>()
    }

    /// Fetches the task list (refresh button, pull to refresh, back from the background, after
    /// signing, after unlocking).
    pub fn refresh_tasks(self) {
        leptos::task::spawn_local(async move {
            if let Ok(list) = ipc::call0::<Vec<PhoneTask>>("tasks").await {
                self.tasks.set(list);
                self.refreshed_at.set(Some(js_sys::Date::now()));
            }
        });
    }

    /// Re-reads the enrolment and shows the first screen.
    pub fn reload(self) {
        leptos::task::spawn_local(async move {
            match ipc::call0::<Status>("status").await {
                Ok(s) => {
                    let enrolled = s.enrolled;
                    self.status.set(Some(s));
                    if enrolled {
                        self.screen.set(Screen::Tasks);
                        self.refresh_tasks();
                    } else {
                        self.tasks.set(Vec::new());
                        self.screen.set(Screen::Activate);
                    }
                    self.take_link();
                }
                Err(_) => self.screen.set(Screen::Activate),
            }
        });
    }

    /// Takes the link the system opened the app with, if any, and opens its screen.
    pub fn take_link(self) {
        leptos::task::spawn_local(async move {
            if let Ok(Some(link)) = ipc::call0::<Option<IncomingLink>>("take_link").await {
                self.open_link(link);
            }
        });
    }

    /// Opens the screen a link leads to: a sign link the review of its request (after
    /// activation), an activation link the activation screen (before it); anything else is
    /// left alone.
    pub fn open_link(self, link: IncomingLink) {
        let enrolled = self.status.get_untracked().is_some_and(|s| s.enrolled);
        match (&link, enrolled) {
            (IncomingLink::Sign(_), true) => self.screen.set(Screen::Scan),
            (IncomingLink::Activate(_), false) => self.screen.set(Screen::Activate),
            _ => return,
        }
        self.incoming.set(Some(link));
    }
}

/// A text in the current language.
pub fn t(zh: &'static str, en: &'static str) -> impl Fn() -> &'static str + Copy + 'static {
    let lang = Ctx::get().lang;
    move || if lang.get() == Lang::En { en } else { zh }
}

/// The error's text in the current language.
pub fn err_text(e: &UiError) -> String {
    if Ctx::get().lang.get_untracked() == Lang::En {
        e.message_en.clone()
    } else {
        e.message.clone()
    }
}

/// A unix-ms time as the user's locale shows it.
pub fn fmt_time(ms: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    String::from(d.to_locale_string("zh-CN", &wasm_bindgen::JsValue::UNDEFINED))
}

/// A `Date.now()` time as hours, minutes and seconds.
pub fn fmt_clock(ms: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    String::from(d.to_locale_time_string("zh-CN"))
}

/// An error line (role=alert) shown when `error` holds one, scrolled into view when it appears
/// (it sits under the button that caused it, which may be at the bottom of a phone screen).
#[component]
pub fn ErrorLine(error: RwSignal<Option<UiError>>) -> impl IntoView {
    let line = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if error.with(Option::is_some) {
            request_animation_frame(move || {
                if let Some(p) = line.get_untracked() {
                    p.scroll_into_view_with_bool(false);
                }
            });
        }
    });
    move || {
        error.get().map(|e| {
            view! { <p class="error" role="alert" id="error" node_ref=line>{err_text(&e)}" "<small class="code">{e.code}</small></p> }
        })
    }
}

/// Mounts the app into `<body>`.
pub fn mount() {
    if let Some(boot) = document().get_element_by_id("boot") {
        boot.remove();
    }
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let ctx = Ctx {
        screen: RwSignal::new(Screen::Loading),
        lang: RwSignal::new(Lang::Zh),
        status: RwSignal::new(None),
        tasks: RwSignal::new(Vec::new()),
        selected: RwSignal::new(Vec::new()),
        online: RwSignal::new(false),
        locked: RwSignal::new(false),
        last_active: StoredValue::new(js_sys::Date::now()),
        progress: RwSignal::new(None),
        incoming: RwSignal::new(None),
        caps: RwSignal::new(Capabilities::default()),
        batch_results: RwSignal::new(None),
        queued: RwSignal::new(0),
        refreshed_at: RwSignal::new(None),
    };
    provide_context(ctx);
    ipc::listen::<usize>("queued", move |n| ctx.queued.set(n));
    // The shell signed the queued requests once the connection was back.
    ipc::listen::<Vec<BatchItem>>("batch-retried", move |items| {
        ctx.selected.set(failed_ids(&items));
        ctx.batch_results.set(Some(items));
        ctx.refresh_tasks();
    });
    // A link opened while the app runs: the shell keeps it until taken (so a reload cannot
    // miss it), then announces it.
    ipc::listen::<IncomingLink>("link", move |_| ctx.take_link());
    ipc::listen::<Vec<PhoneTask>>("tasks", move |list| ctx.tasks.set(list));
    ipc::listen::<bool>("push", move |up| ctx.online.set(up));
    ipc::listen::<Progress>("batch-progress", move |p| ctx.progress.set(Some(p)));
    // The shell may have connected before this page listened: ask once.
    leptos::task::spawn_local(async move {
        if let Ok(up) = ipc::call0::<bool>("online").await {
            ctx.online.set(up);
        }
        if let Ok(caps) = ipc::call0::<Capabilities>("capabilities").await {
            ctx.caps.set(caps);
        }
    });
    ctx.reload();

    // Lock after inactivity: any touch or key counts as activity.
    let touch = move || ctx.last_active.set_value(js_sys::Date::now());
    // The root lives as long as the page: its listeners and timer are never removed.
    let _ = window_event_listener(leptos::ev::pointerdown, move |_| touch());
    let _ = window_event_listener(leptos::ev::keydown, move |_| touch());
    // Back from the background (a phone's app switcher, a locked screen): the push socket may
    // have been cut while away, so the list is read again at once.
    let _ = window_event_listener(leptos::ev::visibilitychange, move |_| {
        if !document().hidden() && !ctx.locked.get_untracked() {
            ctx.refresh_tasks();
        }
    });
    let _ = set_interval_with_handle(
        move || {
            let enrolled = ctx.status.get_untracked().is_some_and(|s| s.enrolled);
            if enrolled
                && !ctx.locked.get_untracked()
                && js_sys::Date::now() - ctx.last_active.get_value() > LOCK_AFTER_MS
            {
                lock(ctx);
            }
        },
        Duration::from_secs(10),
    );
    Effect::new(move |_| {
        let lang = ctx.lang.get();
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("lang", if lang == Lang::Zh { "zh-CN" } else { "en" });
        }
    });

    view! {
        {move || if ctx.locked.get() { view! { <me::LockScreen/> }.into_any() } else { view! { <Shell/> }.into_any() }}
    }
}

/// Hides patient data until the PIN is entered again.
pub fn lock(ctx: Ctx) {
    ctx.locked.set(true);
    ctx.tasks.set(Vec::new());
    ctx.selected.set(Vec::new());
}

#[component]
fn Shell() -> impl IntoView {
    let ctx = Ctx::get();
    let enrolled = move || ctx.status.get().is_some_and(|s| s.enrolled);
    let class = move || {
        let mut c = String::from("shell");
        if ctx.screen.get() == Screen::Tasks {
            c.push_str(" on-tasks");
        }
        if !enrolled() {
            c.push_str(" single");
        }
        c
    };
    view! {
        <header class="toolbar">
            <span class="brand">{t("医签 · 医护签名", "Yiqian · Clinician signing")}</span>
            <span class="tools">
                {move || enrolled().then(|| view! {
                    <span class="net" id="net" class:online=move || ctx.online.get()>
                        {move || if ctx.online.get() { t("在线", "online")() } else { t("离线", "offline")() }}
                    </span>
                })}
                <button class="tool" id="lang" on:click=move |_| ctx.lang.update(|l| *l = if *l == Lang::Zh { Lang::En } else { Lang::Zh })>
                    {move || if ctx.lang.get() == Lang::Zh { "EN" } else { "中文" }}
                </button>
            </span>
        </header>
        <div class=class>
            {move || enrolled().then(|| view! { <aside class="pane-list"><tasks::TaskList/></aside> })}
            <main class="pane-main">
                {move || match ctx.screen.get() {
                    Screen::Loading => view! { <p class="muted center">{t("正在加载…", "Loading…")}</p> }.into_any(),
                    Screen::Activate => view! { <activate::Activate/> }.into_any(),
                    Screen::Tasks => view! { <p class="muted center wide-only">{t("在左侧选择任务批量签署，或使用扫码签署。", "Select tasks on the left to batch-sign, or scan to sign.")}</p> }.into_any(),
                    Screen::Batch => view! { <tasks::Batch/> }.into_any(),
                    Screen::Scan => view! { <scan::Scan/> }.into_any(),
                    Screen::AutoSign => view! { <autosign::AutoSign/> }.into_any(),
                    Screen::History => view! { <history::History/> }.into_any(),
                    Screen::Me => view! { <me::Me/> }.into_any(),
                }}
            </main>
        </div>
        {move || enrolled().then(|| view! { <Nav/> })}
    }
}

#[component]
fn Nav() -> impl IntoView {
    let ctx = Ctx::get();
    let tab = move |screen: Screen, id: &'static str, zh: &'static str, en: &'static str| {
        let s2 = screen.clone();
        view! {
            <button class="tab" id=id class:current=move || ctx.screen.get() == s2
                on:click=move |_| ctx.screen.set(screen.clone())>
                {t(zh, en)}
            </button>
        }
    };
    view! {
        <nav class="tabs">
            <button class="tab" id="tab-tasks" class:current=move || matches!(ctx.screen.get(), Screen::Tasks | Screen::Batch)
                on:click=move |_| ctx.screen.set(Screen::Tasks)>
                {t("待签", "Tasks")}
                {move || {
                    let n = badge(&ctx.tasks.get());
                    (n > 0).then(|| view! { <span class="badge" id="badge">{n}</span> })
                }}
            </button>
            {tab(Screen::Scan, "tab-scan", "扫码签", "Scan")}
            {tab(Screen::AutoSign, "tab-autosign", "自动签", "Auto-sign")}
            {tab(Screen::History, "tab-history", "记录", "History")}
            {tab(Screen::Me, "tab-me", "我的", "Me")}
        </nav>
    }
}

/// How a screen opens a link from outside: put it in the screen's link `field`, then `open` it.
/// Also follows every incoming link `pick` accepts (the system opened the app with it); the
/// returned function is what the camera button calls with a code it read.
pub fn open_links(
    field: RwSignal<String>,
    open: impl Fn() + Copy + Send + Sync + 'static,
    pick: fn(&IncomingLink) -> Option<&str>,
) -> impl Fn(String) + Copy + Send + Sync + 'static {
    let ctx = Ctx::get();
    let read = move |text: String| {
        field.set(text);
        open();
    };
    Effect::new(move |_| {
        let taken = ctx
            .incoming
            .with(|l| l.as_ref().and_then(pick).map(str::to_owned));
        if let Some(link) = taken {
            ctx.incoming.set(None);
            read(link);
        }
    });
    read
}

/// What the barcode scanner plugin answers.
#[derive(serde::Deserialize)]
struct Scanned {
    content: String,
}

/// 「扫描二维码」: reads a QR code with the camera (only where the shell has one: Android, iOS)
/// and hands its text to `on_read`; a refused camera permission says what to do.
#[component]
pub fn CameraButton(
    id: &'static str,
    on_read: impl Fn(String) + Copy + Send + Sync + 'static,
    error: RwSignal<Option<UiError>>,
) -> impl IntoView {
    let ctx = Ctx::get();
    let scan = move |_| {
        error.set(None);
        leptos::task::spawn_local(async move {
            let args = serde_json::json!({ "windowed": false, "formats": ["QR_CODE"] });
            match ipc::call::<_, Scanned>("plugin:barcode-scanner|scan", &args).await {
                Ok(s) => on_read(s.content),
                Err(e) => error.set(Some(UiError::new(
                    "CAMERA",
                    format!("无法使用相机扫码（{}）。请在系统设置中允许医签使用相机，或粘贴二维码链接。", e.message),
                    format!("The camera could not scan ({})", e.message_en),
                ))),
            }
        });
    };
    move || {
        ctx.caps.get().camera.then(|| {
            view! { <button class="btn primary big" id=id on:click=scan>{t("扫描二维码", "Scan QR code")}</button> }
        })
    }
}

/// A PIN field (digits, masked, large).
#[component]
pub fn PinInput(
    value: RwSignal<String>,
    id: &'static str,
    zh: &'static str,
    en: &'static str,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{t(zh, en)}</span>
            <input type="password" inputmode="numeric" autocomplete="off" maxlength="12" class="pin" id=id
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev).chars().filter(char::is_ascii_digit).collect())/>
        </label>
    }
}
