//! The page: one component per screen, each in its own module. Shared state lives in [`AppCtx`]
//! (provided as context); the screen shown is [`Step`].

mod api;
mod copy;
mod done;
mod header;
mod identity;
mod kiosk;
mod long_press;
mod pad;
mod proxy;
mod reading;
mod sign;
mod sms;
mod store;
mod submit;

use leptos::prelude::*;

use crate::i18n::{Lang, T};
use crate::model::{Submitted as SubmitResult, TaskView, empty_task, is_proxy, sign_mode};

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Fetching the task.
    Loading,
    /// The link or the task cannot be used; the text says why.
    Closed(String),
    /// SMS one-time code.
    Sms,
    /// Reading the document.
    Read,
    /// Proxy details (授权人代签).
    Proxy,
    /// ID card, face and liveness checks through the camera (when the task asks for them).
    Identity,
    /// Signing.
    Sign,
    /// A submission was interrupted earlier (network, reload): send it again.
    Resume,
    /// Signed.
    Done(SubmitResult),
}

/// State shared by the screens.
#[derive(Debug, Clone, Copy)]
pub struct AppCtx {
    /// Page language.
    pub lang: RwSignal<Lang>,
    /// Root font size step (0 = normal).
    pub font: RwSignal<usize>,
    /// The screen.
    pub step: RwSignal<Step>,
    /// The link's token.
    pub token: StoredValue<String>,
    /// The task as last fetched.
    pub task: RwSignal<Option<TaskView>>,
    /// The session from the SMS step.
    pub session: RwSignal<Option<String>>,
    /// The reader reached the last page.
    pub read_to_end: RwSignal<bool>,
    /// Running as the bedside pad (`#/pad`), not from a patient's link.
    pub kiosk: bool,
}

impl AppCtx {
    /// The context (provided by [`App`]).
    pub fn get() -> Self {
        expect_context::<Self>()
    }

    /// A reactive text in the current language.
    pub fn t(self, key: T) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
        let lang = self.lang;
        move || key.get(lang.get())
    }

    /// The loaded task (a default one before loading finished).
    pub fn task_now(self) -> TaskView {
        self.task.get_untracked().unwrap_or_else(empty_task)
    }

    /// The step after reading: the proxy form for proxy tasks, else [`Self::after_proxy`].
    pub fn after_reading(self) -> Step {
        if is_proxy(&self.task_now()) {
            Step::Proxy
        } else {
            self.after_proxy()
        }
    }

    /// The step after the proxy form (a proxy's ID card must match what they entered there):
    /// the camera checks when the task asks for them, else signing.
    pub fn after_proxy(self) -> Step {
        if crate::model::camera_checks_for_task(&self.task_now().identity).is_empty() {
            Step::Sign
        } else {
            Step::Identity
        }
    }

    /// The session was refused (expired or unknown): forget it and verify again.
    pub fn session_lost(self) {
        store::clear_session(&self.token.get_value());
        self.session.set(None);
        self.step.set(Step::Sms);
    }
}

/// Mounts the app into `<body>`, replacing the boot placeholder: the bedside pad's kiosk at
/// `#/pad`, else the patient's link `#/t/<token>`.
pub fn mount() {
    if let Some(boot) = document().get_element_by_id("boot") {
        boot.remove();
    }
    let hash = window().location().hash().unwrap_or_default();
    if crate::model::is_pad_route(&hash) {
        leptos::mount::mount_to_body(kiosk::PadApp);
    } else {
        leptos::mount::mount_to_body(App);
    }
}

impl AppCtx {
    /// The context for a page: settings from `localStorage`, nothing loaded yet; provided to
    /// every screen, with the language and font-size settings applied and saved on change.
    fn provide(token: Option<&str>, kiosk: bool) -> Self {
        let ctx = AppCtx {
            lang: RwSignal::new(store::lang()),
            font: RwSignal::new(store::font()),
            step: RwSignal::new(Step::Loading),
            token: StoredValue::new(token.unwrap_or_default().to_owned()),
            task: RwSignal::new(None),
            session: RwSignal::new(token.and_then(store::session)),
            read_to_end: RwSignal::new(false),
            kiosk,
        };
        provide_context(ctx);
        let title = if kiosk { T::PadTitle } else { T::AppTitle };
        Effect::new(move |_| {
            let lang = ctx.lang.get();
            store::set_lang(lang);
            if let Some(html) = document().document_element() {
                let _ = html.set_attribute("lang", if lang == Lang::Zh { "zh-CN" } else { "en" });
            }
            document().set_title(title.get(lang));
        });
        Effect::new(move |_| {
            let step = ctx.font.get();
            store::set_font(step);
            header::apply_font(step);
        });
        ctx
    }
}

#[component]
fn App() -> impl IntoView {
    let token = crate::model::token_from_hash(&window().location().hash().unwrap_or_default());
    let ctx = AppCtx::provide(token.as_deref(), false);
    match token {
        Some(token) => leptos::task::spawn_local(load(ctx, token)),
        None => ctx.step.set(Step::Closed(
            T::BadLink.get(ctx.lang.get_untracked()).into(),
        )),
    }

    view! {
        <header::Toolbar/>
        <main class="page">
            <Flow/>
        </main>
    }
}

/// The signing flow of one task: its card, the step bar and the current screen (the same on a
/// phone and on the bedside pad).
#[component]
fn Flow() -> impl IntoView {
    let ctx = AppCtx::get();
    view! {
        <TaskCard/>
        <StepBar/>
        {move || match ctx.step.get() {
            Step::Loading => view! { <p class="muted center">{ctx.t(T::Loading)}</p> }.into_any(),
            Step::Closed(text) => view! { <div class="card notice" role="alert">{text}</div> }.into_any(),
            Step::Sms => view! { <sms::SmsStep/> }.into_any(),
            Step::Read => view! { <reading::ReadStep/> }.into_any(),
            Step::Proxy => view! { <proxy::ProxyStep/> }.into_any(),
            Step::Identity => view! { <identity::IdentityStep/> }.into_any(),
            Step::Sign => view! { <sign::SignStep/> }.into_any(),
            Step::Resume => view! { <submit::ResumeStep/> }.into_any(),
            Step::Done(result) => view! { <done::DoneStep result/> }.into_any(),
        }}
    }
}

/// Fetches the task and picks the first screen.
async fn load(ctx: AppCtx, token: String) {
    let lang = ctx.lang.get_untracked();
    let pending = store::pending(&token);
    let task = match api::get_task(&token).await {
        Ok(task) => task,
        // The link is spent (perhaps by our own submission whose answer was lost): a pending
        // submission is sent again, and the server answers a repeat with the first result.
        Err(e)
            if e.code() == Some("TASK_USED")
                && pending.is_some()
                && ctx.session.get_untracked().is_some() =>
        {
            ctx.step.set(Step::Resume);
            return;
        }
        Err(e) => {
            if !e.retryable() {
                // Refused for good: nothing left to send; do not keep strokes on the phone.
                store::clear_pending(&token);
            }
            ctx.step.set(Step::Closed(e.text(lang)));
            return;
        }
    };
    let closed = match task.status.as_str() {
        "signed" => Some(T::StatusSigned),
        "expired" => Some(T::StatusExpired),
        "locked" => Some(T::StatusLocked),
        "cancelled" => Some(T::StatusCancelled),
        _ if sign_mode(&task).is_none() => Some(T::UnknownMode),
        _ => None,
    };
    ctx.task.set(Some(task));
    let step = match closed {
        Some(T::StatusSigned) if pending.is_some() => {
            // Our own earlier submission went through; nothing is left to send.
            store::clear_pending(&token);
            Step::Closed(T::StatusSigned.get(lang).into())
        }
        Some(t) => Step::Closed(t.get(lang).into()),
        None if ctx.session.get_untracked().is_none() => Step::Sms,
        None if pending.is_some() => Step::Resume,
        None => Step::Read,
    };
    ctx.step.set(step);
}

/// Title, hospital, signer and expiry of the task.
#[component]
fn TaskCard() -> impl IntoView {
    let ctx = AppCtx::get();
    move || {
        ctx.task.get().map(|task| {
            let signer = if is_proxy(&task) { T::SignerProxy } else { T::Signer };
            let expires = local_time(&task.expires_at);
            view! {
                <section class="card task">
                    <h1 class="doc-title">{task.title.clone()}</h1>
                    <dl>
                        <dt>{ctx.t(T::Hospital)}</dt><dd class="hospital">{task.hospital.clone()}</dd>
                        <dt>{ctx.t(signer)}</dt><dd class="signer">{task.signer_name_masked.clone()}</dd>
                        <dt>{ctx.t(T::ExpiresAt)}</dt><dd>{expires}</dd>
                    </dl>
                </section>
            }
        })
    }
}

/// The steps of this task, the current one highlighted.
#[component]
fn StepBar() -> impl IntoView {
    let ctx = AppCtx::get();
    let index = move || match ctx.step.get() {
        Step::Sms => 0,
        Step::Read => 1,
        Step::Proxy => 2,
        Step::Identity => 3,
        Step::Sign | Step::Resume => 4,
        Step::Done(_) => 5,
        Step::Loading | Step::Closed(_) => 99,
    };
    move || {
        let task = ctx.task.get()?;
        let current = index();
        (current < 99).then(|| {
            let mut steps = vec![(0, T::StepVerify), (1, T::StepRead)];
            if is_proxy(&task) {
                steps.push((2, T::StepProxy));
            }
            if !crate::model::camera_checks_for_task(&task.identity).is_empty() {
                steps.push((3, T::StepIdentity));
            }
            steps.push((4, T::StepSign));
            view! {
                <ol class="steps">
                    {steps.into_iter().map(|(i, t)| view! {
                        <li class:current=move || i == current class:past=move || i < current>{ctx.t(t)}</li>
                    }).collect_view()}
                </ol>
            }
        })
    }
}

/// An RFC 3339 time in the phone's local time zone, `YYYY-MM-DD HH:MM` (the server sends UTC).
pub fn local_time(rfc3339: &str) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
    if d.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// A message line for errors (`role=alert` so screen readers announce it).
#[component]
pub fn ErrorLine(text: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        text.get()
            .map(|t| view! { <p class="error" role="alert">{t}</p> })
    }
}
