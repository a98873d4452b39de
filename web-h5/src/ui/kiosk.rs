//! The bedside pad's kiosk mode (`/h5/#/pad`, docs/h5.md): enrolment with a one-time code, the
//! queue of tasks assigned to this pad, and the same signing flow as a phone, with every call
//! sealed in the pad channel (`api::Transport::Pad`). The pad is shared by many patients, so
//! leaving a task wipes what it left in the browser.

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;

use super::{AppCtx, ErrorLine, Flow, Step, api, load, local_time, store};
use crate::i18n::T;
use crate::model::{
    PAD_QUEUE, PadDevice, PadEnrol, PadEnrolled, PadHandoff, PadOpened, PadQueue, PadQueueItem,
    clean_enrol_code, enrol_message, pad_handoff_path, pad_open_path,
};

/// How often the queue asks for new tasks.
const POLL: Duration = Duration::from_secs(3);
/// A finished task goes back to the queue by itself after this long.
const DONE_RETURN: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Enrol,
    Queue,
    Task,
    /// 扫码一名一签: the task's QR code for the signer's own phone.
    Handoff,
    Revoked,
}

/// The server does not know this pad or stopped accepting it: only enrolling again helps.
fn refused_pad(e: &api::Failure) -> bool {
    matches!(e.code(), Some("PAD_REVOKED" | "PAD_UNKNOWN"))
}

/// Uses a stored enrolment for every call; `false` when it is unusable (then enrol again).
fn use_device(device: &PadDevice) -> bool {
    let pad = hex::decode(&device.secret_hex)
        .ok()
        .zip(hex::decode(&device.channel_public_hex).ok())
        .and_then(|(secret, channel)| {
            pad_channel::Pad::new(&secret, &device.serial, &channel).ok()
        });
    match pad {
        Some(pad) => {
            api::set_transport(api::Transport::Pad(Rc::new(pad)));
            true
        }
        None => false,
    }
}

/// Seals every further envelope to the server's new channel key (after a rotation) and keeps
/// it with the enrolment.
pub fn switch_channel_key(public: &[u8]) {
    let Some(mut device) = store::pad_device() else {
        return;
    };
    device.channel_public_hex = hex::encode(public);
    if use_device(&device) {
        store::set_pad_device(&device);
    }
}

#[component]
pub fn PadApp() -> impl IntoView {
    let ctx = AppCtx::provide(None, true);
    let device = RwSignal::new(store::pad_device().filter(use_device));
    // The task being handed to a phone, and its code.
    let handoff = RwSignal::new(None::<(String, PadHandoff)>);
    let screen = RwSignal::new(if device.get_untracked().is_some() {
        Screen::Queue
    } else {
        Screen::Enrol
    });
    view! {
        <super::header::Toolbar/>
        <main class="page kiosk">
            {move || device.get().map(|d| view! {
                <p class="pad-bar" id="pad-identity">
                    {ctx.t(T::PadDevice)}"：" <strong>{d.name.clone()}</strong>
                    " · " {ctx.t(T::PadWard)}"：" <strong>{d.ward.clone()}</strong>
                </p>
            })}
            {move || match screen.get() {
                Screen::Enrol => view! { <EnrolScreen device screen/> }.into_any(),
                Screen::Queue => view! { <QueueScreen screen handoff/> }.into_any(),
                Screen::Task => view! { <TaskScreen screen/> }.into_any(),
                Screen::Handoff => view! { <HandoffScreen screen handoff/> }.into_any(),
                Screen::Revoked => view! { <RevokedScreen device screen/> }.into_any(),
            }}
        </main>
    }
}

/// Whether the browser has `crypto.getRandomValues` (the device key needs it; no fallback).
fn has_secure_random() -> bool {
    let Ok(crypto) = js_sys::Reflect::get(&window(), &"crypto".into()) else {
        return false;
    };
    !crypto.is_undefined()
        && js_sys::Reflect::get(&crypto, &"getRandomValues".into()).is_ok_and(|f| f.is_function())
}

/// Makes the device key and the enrolment request (the key never leaves the pad).
fn enrol_request(code: &str) -> Result<(PadEnrol, String), T> {
    if !has_secure_random() {
        return Err(T::PadNoCrypto);
    }
    let secret = pad_channel::generate_secret().map_err(|_| T::PadKeyFailed)?;
    let public = hex::encode(pad_channel::public_of(&secret).map_err(|_| T::PadKeyFailed)?);
    let signature =
        pad_channel::sign(&secret, &enrol_message(code, &public)).map_err(|_| T::PadKeyFailed)?;
    let body = PadEnrol {
        code: code.to_owned(),
        public_key: public,
        signature: hex::encode(signature),
    };
    Ok((body, hex::encode(secret.as_slice())))
}

#[component]
fn EnrolScreen(device: RwSignal<Option<PadDevice>>, screen: RwSignal<Screen>) -> impl IntoView {
    let ctx = AppCtx::get();
    let code = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let enrol = move |_| {
        let lang = ctx.lang.get_untracked();
        let Some(c) = clean_enrol_code(&code.get_untracked()) else {
            error.set(Some(T::PadBadCode.get(lang).into()));
            return;
        };
        if busy.get_untracked() {
            return;
        }
        let (body, secret_hex) = match enrol_request(&c) {
            Ok(made) => made,
            Err(t) => {
                error.set(Some(t.get(lang).into()));
                return;
            }
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::enrol::<_, PadEnrolled>(&body).await {
                Ok(e) => {
                    let d = PadDevice {
                        secret_hex,
                        serial: e.certificate_serial,
                        channel_public_hex: e.channel_public_key,
                        pad_id: e.pad_id,
                        name: e.name,
                        ward: e.ward,
                        hospital: e.hospital,
                    };
                    if use_device(&d) {
                        store::set_pad_device(&d);
                        device.set(Some(d));
                        screen.set(Screen::Queue);
                    } else {
                        error.set(Some(
                            lang.pick(
                                "服务器应答无法识别",
                                "The server's answer was not understood",
                            )
                            .into(),
                        ));
                    }
                }
                Err(e) => {
                    error.set(Some(e.text(lang)));
                    code.set(String::new());
                }
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card step-enrol">
            <h2>{ctx.t(T::PadEnrolTitle)}</h2>
            <p>{ctx.t(T::PadEnrolIntro)}</p>
            <label class="field">
                <span>{ctx.t(T::PadCodeLabel)}</span>
                <input id="enrol-code" class="code" type="text" autocomplete="off" autocapitalize="characters"
                    maxlength="40" placeholder=ctx.t(T::PadCodeHint)
                    prop:value=move || code.get()
                    on:input=move |ev| code.set(event_target_value(&ev))/>
            </label>
            <ErrorLine text=error/>
            <Show when=move || busy.get()>
                <p class="muted">{ctx.t(T::PadEnrolling)}</p>
            </Show>
            <button class="btn primary big" id="enrol" on:click=enrol
                disabled=move || busy.get() || clean_enrol_code(&code.get()).is_none()>{ctx.t(T::PadEnrol)}</button>
        </section>
    }
}

fn mode_label(wire: &str) -> Option<T> {
    match wire {
        "button" => Some(T::ModeButton),
        "long_press" => Some(T::ModeLongPress),
        "handwriting" => Some(T::ModeHandwriting),
        "copy" => Some(T::ModeCopy),
        _ => None,
    }
}

/// Polls the queue every [`POLL`] (and now) while the calling screen is shown; each answer
/// goes to `items`, and a pad the server refuses goes to the revoked screen.
fn poll_queue(
    screen: RwSignal<Screen>,
    items: RwSignal<Option<Vec<PadQueueItem>>>,
    error: RwSignal<Option<String>>,
) {
    let ctx = AppCtx::get();
    let polling = StoredValue::new(false);
    let poll = move || {
        if polling.get_value() {
            return;
        }
        polling.set_value(true);
        leptos::task::spawn_local(async move {
            match api::pad_get::<PadQueue>(PAD_QUEUE).await {
                Ok(queue) => {
                    error.set(None);
                    items.set(Some(queue.tasks));
                }
                Err(e) if refused_pad(&e) => screen.set(Screen::Revoked),
                Err(e) => error.set(Some(e.text(ctx.lang.get_untracked()))),
            }
            polling.set_value(false);
        });
    };
    poll();
    let timer = set_interval_with_handle(poll, POLL).ok();
    on_cleanup(move || {
        if let Some(h) = timer {
            h.clear();
        }
    });
}

#[component]
fn QueueScreen(
    screen: RwSignal<Screen>,
    handoff: RwSignal<Option<(String, PadHandoff)>>,
) -> impl IntoView {
    let ctx = AppCtx::get();
    let items = RwSignal::new(None::<Vec<PadQueueItem>>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    poll_queue(screen, items, error);

    // One card action at a time; a refused pad goes to the revoked screen.
    let act = move |path: Option<String>, done: Box<dyn FnOnce(Vec<u8>)>| {
        let Some(path) = path else {
            return;
        };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::pad_post_raw(&path).await {
                Ok(body) => done(body),
                Err(e) if refused_pad(&e) => screen.set(Screen::Revoked),
                Err(e) => error.set(Some(e.text(ctx.lang.get_untracked()))),
            }
            busy.set(false);
        });
    };
    let not_understood = move || {
        let lang = ctx.lang.get_untracked();
        error.set(Some(
            lang.pick(
                "服务器应答无法识别",
                "The server's answer was not understood",
            )
            .into(),
        ));
    };
    let to_phone = move |id: String| {
        act(
            pad_handoff_path(&id),
            Box::new(
                move |body| match serde_json::from_slice::<PadHandoff>(&body) {
                    Ok(code) => {
                        handoff.set(Some((id, code)));
                        screen.set(Screen::Handoff);
                    }
                    Err(_) => not_understood(),
                },
            ),
        );
    };
    let open = move |id: String| {
        act(
            pad_open_path(&id),
            Box::new(move |body| {
                let opened = serde_json::from_slice::<PadOpened>(&body).ok().filter(|o| {
                    crate::model::token_from_hash(&format!("#/t/{}", o.token)).is_some()
                });
                let Some(opened) = opened else {
                    not_understood();
                    return;
                };
                ctx.token.set_value(opened.token.clone());
                ctx.session.set(opened.session);
                ctx.task.set(None);
                ctx.read_to_end.set(false);
                ctx.step.set(Step::Loading);
                screen.set(Screen::Task);
                leptos::task::spawn_local(load(ctx, opened.token));
            }),
        );
    };

    view! {
        <section class="card step-queue">
            <h2>{ctx.t(T::PadQueueTitle)}</h2>
            <ErrorLine text=error/>
            {move || match items.get() {
                None => view! { <p class="muted">{ctx.t(T::Loading)}</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="muted queue-empty" id="queue-empty">{ctx.t(T::PadQueueEmpty)}</p>
                }.into_any(),
                Some(list) => view! {
                    <p class="muted">{ctx.t(T::PadQueueHint)}</p>
                    <div class="pad-queue" id="queue">
                        {list.into_iter().map(|item| {
                            let id = item.task_id.clone();
                            let phone_id = item.task_id.clone();
                            let mode = mode_label(&item.sign_mode);
                            let created = local_time(&item.created_at);
                            // A signer who proves who they are (SMS, ID card, face) may sign on
                            // their own phone instead; "pad" tasks rely on the staff present.
                            let phone = item.identity.iter().any(|i| i != "pad");
                            view! {
                                <div class="queue-item">
                                    <button class="queue-card" data-task=item.task_id.clone() disabled=move || busy.get()
                                        on:click=move |_| open(id.clone())>
                                        <span class="queue-title">{item.title.clone()}</span>
                                        <span class="queue-signer">{ctx.t(T::Signer)}"：" {item.signer_name_masked.clone()}</span>
                                        <span class="queue-meta">
                                            {move || mode.map(|m| m.get(ctx.lang.get()))} " · " {created}
                                        </span>
                                    </button>
                                    {phone.then(|| view! {
                                        <button class="btn secondary queue-handoff" data-task=phone_id.clone()
                                            disabled=move || busy.get()
                                            on:click=move |_| to_phone(phone_id.clone())>
                                            {ctx.t(T::PadHandoff)}
                                        </button>
                                    })}
                                </div>
                            }
                        }).collect_view()}
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// Leaves the task: back to the queue, and nothing of the task stays on the shared pad.
fn finish(ctx: AppCtx, screen: RwSignal<Screen>) {
    store::forget_task(&ctx.token.get_value());
    ctx.token.set_value(String::new());
    ctx.session.set(None);
    ctx.task.set(None);
    ctx.read_to_end.set(false);
    ctx.step.set(Step::Loading);
    screen.set(Screen::Queue);
}

#[component]
fn TaskScreen(screen: RwSignal<Screen>) -> impl IntoView {
    let ctx = AppCtx::get();
    // A signed task returns to the queue by itself (the patient may just hand the pad back).
    Effect::new(move |_| {
        if matches!(ctx.step.get(), Step::Done(_)) {
            let token = ctx.token.get_value();
            set_timeout(
                move || {
                    if screen.get_untracked() == Screen::Task && ctx.token.get_value() == token {
                        finish(ctx, screen);
                    }
                },
                DONE_RETURN,
            );
        }
    });
    view! {
        <button class="btn secondary" id="pad-back" on:click=move |_| finish(ctx, screen)>
            {ctx.t(T::PadBack)}
        </button>
        <Flow/>
    }
}

#[component]
fn HandoffScreen(
    screen: RwSignal<Screen>,
    handoff: RwSignal<Option<(String, PadHandoff)>>,
) -> impl IntoView {
    let ctx = AppCtx::get();
    let items = RwSignal::new(None::<Vec<PadQueueItem>>);
    let error = RwSignal::new(None::<String>);
    poll_queue(screen, items, error);
    let task_id = handoff
        .get_untracked()
        .map(|(id, _)| id)
        .unwrap_or_default();
    // The phone signed it (or it ended): the code is useless now, so it goes away at once.
    let gone = Memo::new(move |_| {
        items
            .get()
            .is_some_and(|list| list.iter().all(|t| t.task_id != task_id))
    });
    let back = move || {
        handoff.set(None);
        screen.set(Screen::Queue);
    };
    Effect::new(move |_| {
        if gone.get() {
            set_timeout(
                move || {
                    if screen.get_untracked() == Screen::Handoff {
                        back();
                    }
                },
                DONE_RETURN,
            );
        }
    });
    view! {
        <button class="btn secondary" id="pad-back" on:click=move |_| back()>
            {ctx.t(T::PadBack)}
        </button>
        <section class="card step-handoff">
            <ErrorLine text=error/>
            {move || if gone.get() {
                view! { <p class="notice" id="handoff-gone" role="status">{ctx.t(T::PadHandoffGone)}</p> }.into_any()
            } else {
                let (_, code) = handoff.get().unwrap_or_default();
                view! {
                    <h2>{ctx.t(T::PadHandoffTitle)}</h2>
                    <p class="handoff-signer">{ctx.t(T::Signer)}"：" <strong>{code.signer_name_masked}</strong></p>
                    <div class="handoff-qr" id="handoff-qr" inner_html=code.qr_svg></div>
                    <p class="muted">{ctx.t(T::PadHandoffText)}</p>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn RevokedScreen(device: RwSignal<Option<PadDevice>>, screen: RwSignal<Screen>) -> impl IntoView {
    let ctx = AppCtx::get();
    let again = move |_| {
        store::clear_pad_device();
        api::set_transport(api::Transport::Direct);
        device.set(None);
        screen.set(Screen::Enrol);
    };
    view! {
        <section class="card notice step-revoked" id="pad-revoked" role="alert">
            <h2>{ctx.t(T::PadRevokedTitle)}</h2>
            <p>{ctx.t(T::PadRevokedText)}</p>
            <button class="btn primary" id="reenrol" on:click=again>{ctx.t(T::PadReenrol)}</button>
        </section>
    }
}
