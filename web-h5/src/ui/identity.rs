//! The camera checks a task may ask for (docs/api/patient.md “身份核验”): the ID card's photo
//! side, a selfie and active liveness, in the server's order (`camera_checks_for_task`, shared with it). The page
//! only captures pictures; the server asks the hospital's `liveness` service and decides.
//! Photos come from `<input type="file" capture>` (the phone's own camera app: works in the
//! WeChat browser and mini-program web-views), liveness frames from `getUserMedia`.

use std::time::Duration;

use base64::Engine as _;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, MediaStream};

use super::{AppCtx, ErrorLine, Step, api};
use crate::i18n::{Lang, T};
use crate::model::{
    CameraCheck, FacePhoto, IdCardPhoto, IdentityCheckResult, LivenessChallenge, LivenessFrames,
    LivenessStep, camera_checks_for_task, data_url_payload, fit_within, photo_as_is,
};

/// Longer side of a photo that has to be redrawn (the card's text stays readable).
const PHOTO_MAX_SIDE: u32 = 2000;
/// Liveness frames: longer side (a JPEG far under the server's 1 MB a frame).
const FRAME_SIDE: u32 = 640;
/// Frames taken per action, and the gap between them (about 3 s an action).
const FRAMES_PER_ACTION: u32 = 8;
const FRAME_GAP: Duration = Duration::from_millis(350);
/// Time to read a prompt before the frames of that action are taken.
const PROMPT_LEAD: Duration = Duration::from_millis(900);

#[component]
pub fn IdentityStep() -> impl IntoView {
    let ctx = AppCtx::get();
    let stages = StoredValue::new(camera_checks_for_task(&ctx.task_now().identity));
    let at = RwSignal::new(0usize);
    // The sealed portrait from the ID card step; the face and liveness steps send it back.
    let ticket = StoredValue::new(None::<String>);
    let next = Callback::new(move |()| {
        let n = at.get_untracked() + 1;
        if n >= stages.with_value(Vec::len) {
            ctx.step.set(Step::Sign);
        } else {
            at.set(n);
        }
    });
    let label = |s: CameraCheck| match s {
        CameraCheck::IdCard => T::IdCardTitle,
        CameraCheck::Face => T::FaceTitle,
        CameraCheck::Liveness => T::LiveTitle,
    };
    view! {
        <section class="card step-identity">
            <h2>{ctx.t(T::StepIdentity)}</h2>
            <ol class="id-stages">
                {stages.get_value().into_iter().enumerate().map(|(i, s)| view! {
                    <li class:current=move || i == at.get() class:past=move || i < at.get()>{ctx.t(label(s))}</li>
                }).collect_view()}
            </ol>
            {move || match stages.with_value(|s| s.get(at.get()).copied()) {
                Some(CameraCheck::IdCard) => view! { <PhotoStage kind=CameraCheck::IdCard ticket done=next/> }.into_any(),
                Some(CameraCheck::Face) => view! { <PhotoStage kind=CameraCheck::Face ticket done=next/> }.into_any(),
                Some(CameraCheck::Liveness) => view! { <LivenessStage ticket done=next/> }.into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

/// What the page says about a failed call: the server's own text, or (no answer) a network hint.
fn failure_text(e: &api::Failure, lang: Lang) -> String {
    match e {
        api::Failure::Network => T::NetworkRetry.get(lang).to_owned(),
        api::Failure::Api { .. } => e.text(lang),
    }
}

/// Sends one camera check; `Ok(result)` only when it passed. A lost session goes back to the
/// SMS step (the caller sees `Err(None)`).
async fn check<B: serde::Serialize>(
    ctx: AppCtx,
    action: &str,
    body: &B,
) -> Result<IdentityCheckResult, Option<String>> {
    let lang = ctx.lang.get_untracked();
    let token = ctx.token.get_value();
    let session = ctx.session.get_untracked();
    match api::post::<_, IdentityCheckResult>(&token, action, body, session.as_deref()).await {
        Ok(r) if r.passed => Ok(r),
        Ok(_) => Err(Some(T::CheckFailed.get(lang).into())),
        Err(e) if e.code() == Some("SESSION_REQUIRED") => {
            ctx.session_lost();
            Err(None)
        }
        Err(e) => Err(Some(failure_text(&e, lang))),
    }
}

/// The ID card or the selfie: one photo from the phone's camera, sent, judged by the server.
#[component]
fn PhotoStage(
    kind: CameraCheck,
    ticket: StoredValue<Option<String>>,
    done: Callback<()>,
) -> impl IntoView {
    let ctx = AppCtx::get();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let (input_id, capture, intro, take) = match kind {
        CameraCheck::Face => ("face-file", "user", T::FaceIntro, T::FaceTake),
        _ => ("id-card-file", "environment", T::IdCardIntro, T::IdCardTake),
    };
    let chosen = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        // The same file may be chosen again after a refusal.
        input.set_value("");
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let lang = ctx.lang.get_untracked();
            let outcome = match photo_base64(&file).await {
                None => Err(Some(T::PhotoUnreadable.get(lang).to_owned())),
                Some(image) if kind == CameraCheck::Face => {
                    let portrait_ticket = ticket.get_value().unwrap_or_default();
                    let body = FacePhoto {
                        image,
                        portrait_ticket,
                    };
                    check(ctx, "identity/face", &body).await
                }
                Some(image) => check(ctx, "identity/id-card", &IdCardPhoto { image }).await,
            };
            busy.set(false);
            match outcome {
                Ok(result) => {
                    if kind == CameraCheck::IdCard {
                        ticket.set_value(result.portrait_ticket);
                    }
                    done.run(());
                }
                Err(text) => error.set(text),
            }
        });
    };
    view! {
        <div class="id-stage" data-stage=input_id>
            <p>{ctx.t(intro)}</p>
            <label class="btn primary big file-btn" for=input_id class:disabled=move || busy.get()>
                {ctx.t(take)}
            </label>
            <input type="file" class="file-input" id=input_id accept="image/*" capture=capture
                disabled=move || busy.get() on:change=chosen/>
            <Show when=move || busy.get()>
                <p class="muted" id="id-checking" role="status">{ctx.t(T::Checking)}</p>
            </Show>
            <ErrorLine text=error/>
        </div>
    }
}

/// The photo as base64: unchanged when small and of a type the service reads, else redrawn
/// (at most [`PHOTO_MAX_SIDE`] pixels, JPEG). `None` when the browser cannot read it.
async fn photo_base64(file: &web_sys::File) -> Option<String> {
    if photo_as_is(&file.type_(), file.size()) {
        let buffer = JsFuture::from(file.array_buffer()).await.ok()?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        return Some(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    let url = web_sys::Url::create_object_url_with_blob(file).ok()?;
    let img = web_sys::HtmlImageElement::new().ok()?;
    let loaded = js_sys::Promise::new(&mut |resolve, reject| {
        img.set_onload(Some(&resolve));
        img.set_onerror(Some(&reject));
    });
    img.set_src(&url);
    let ok = JsFuture::from(loaded).await.is_ok();
    let _ = web_sys::Url::revoke_object_url(&url);
    if !ok || img.natural_width() == 0 {
        return None;
    }
    let (w, h) = fit_within(img.natural_width(), img.natural_height(), PHOTO_MAX_SIDE);
    jpeg(w, h, 0.9, |c| {
        c.draw_image_with_html_image_element_and_dw_and_dh(&img, 0.0, 0.0, w.into(), h.into())
    })
}

/// Draws a picture of `w`×`h` with `draw` and encodes it as JPEG; the base64 payload.
fn jpeg(
    w: u32,
    h: u32,
    quality: f64,
    draw: impl FnOnce(&CanvasRenderingContext2d) -> Result<(), JsValue>,
) -> Option<String> {
    let canvas: HtmlCanvasElement = document().create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(w);
    canvas.set_height(h);
    let c: CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    draw(&c).ok()?;
    let url = canvas
        .to_data_url_with_type_and_encoder_options("image/jpeg", &JsValue::from_f64(quality))
        .ok()?;
    data_url_payload(&url).map(str::to_owned)
}

/// What the liveness stage shows.
#[derive(Debug, Clone, PartialEq)]
enum Live {
    /// Before starting (and after a failure, with its text).
    Ready(Option<String>),
    /// Opening the camera and fetching the challenge.
    Starting,
    /// Doing action `index` of `total`.
    Acting {
        index: usize,
        total: usize,
        action: String,
    },
    /// Frames sent, waiting for the verdict.
    Sending,
}

fn action_prompt(action: &str, lang: Lang) -> String {
    let t = match action {
        "blink" => T::ActBlink,
        "open_mouth" => T::ActOpenMouth,
        "turn_left" => T::ActTurnLeft,
        "turn_right" => T::ActTurnRight,
        other => return other.to_owned(),
    };
    t.get(lang).to_owned()
}

/// Active liveness: a challenge of 2–4 actions; each is prompted, then filmed as a few frames;
/// all frames go to the server with the card's portrait ticket.
#[component]
fn LivenessStage(ticket: StoredValue<Option<String>>, done: Callback<()>) -> impl IntoView {
    let ctx = AppCtx::get();
    let state = RwSignal::new(Live::Ready(None));
    let video = NodeRef::<leptos::html::Video>::new();
    let stream = StoredValue::new_local(None::<MediaStream>);
    let stop = move || {
        if let Some(s) = stream.try_update_value(Option::take).flatten() {
            stop_tracks(&s);
        }
    };
    on_cleanup(stop);
    let start = move |_| {
        if !matches!(state.get_untracked(), Live::Ready(_)) {
            return;
        }
        state.set(Live::Starting);
        leptos::task::spawn_local(async move {
            let lang = ctx.lang.get_untracked();
            let outcome = run_liveness(ctx, video, stream, state, ticket).await;
            stop();
            match outcome {
                Ok(()) => done.run(()),
                Err(Some(text)) => state.set(Live::Ready(Some(text))),
                Err(None) => state.set(Live::Ready(Some(T::CheckFailed.get(lang).into()))),
            }
        });
    };
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Live::Ready(text) = state.get() {
            error.set(text);
        }
    });
    let prompt = move || match state.get() {
        Live::Acting {
            index,
            total,
            action,
        } => {
            let lang = ctx.lang.get();
            Some(view! {
                <p class="live-count">{T::LiveStepOf.get(lang)}" " {index + 1}" / " {total}</p>
                <p class="live-prompt" id="live-prompt" data-action=action.clone() data-index=index
                    role="status">
                    {action_prompt(&action, lang)}
                </p>
            })
        }
        _ => None,
    };
    view! {
        <div class="id-stage live-stage">
            <p>{ctx.t(T::LiveIntro)}</p>
            // The prompt above the picture: a phone held at arm's length shows both at once.
            {prompt}
            <div class="live-view" class:on=move || !matches!(state.get(), Live::Ready(_))>
                <video node_ref=video id="live-video" autoplay=true muted=true playsinline=true></video>
            </div>
            <Show when=move || matches!(state.get(), Live::Starting | Live::Sending)>
                <p class="muted" id="live-busy" role="status">{move || match state.get() {
                    Live::Sending => T::LiveSending.get(ctx.lang.get()),
                    _ => T::Checking.get(ctx.lang.get()),
                }}</p>
            </Show>
            <ErrorLine text=error/>
            <Show when=move || matches!(state.get(), Live::Ready(_))>
                <button class="btn primary big" id="live-start" on:click=start>
                    {move || if matches!(state.get(), Live::Ready(Some(_))) {
                        T::LiveAgain.get(ctx.lang.get())
                    } else {
                        T::LiveStart.get(ctx.lang.get())
                    }}
                </button>
            </Show>
        </div>
    }
}

/// Opens the front camera, fetches a challenge, films each action and sends the frames.
/// `Err(None)`: the session was lost (the page went back to the SMS step).
async fn run_liveness(
    ctx: AppCtx,
    video: NodeRef<leptos::html::Video>,
    stream: StoredValue<Option<MediaStream>, LocalStorage>,
    state: RwSignal<Live>,
    ticket: StoredValue<Option<String>>,
) -> Result<(), Option<String>> {
    let lang = ctx.lang.get_untracked();
    let camera_failed = || Some(T::CameraUnavailable.get(lang).to_owned());
    let media = open_camera().await.ok_or_else(camera_failed)?;
    stream.set_value(Some(media.clone()));
    let el = video.get_untracked().ok_or_else(camera_failed)?;
    el.set_src_object(Some(&media));
    if let Ok(p) = el.play() {
        JsFuture::from(p).await.map_err(|_| camera_failed())?;
    }
    let token = ctx.token.get_value();
    let session = ctx.session.get_untracked();
    let challenge = match api::post::<_, LivenessChallenge>(
        &token,
        "identity/liveness/challenge",
        &serde_json::json!({}),
        session.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) if e.code() == Some("SESSION_REQUIRED") => {
            ctx.session_lost();
            return Err(None);
        }
        Err(e) => return Err(Some(failure_text(&e, lang))),
    };
    let per_action = FRAMES_PER_ACTION.min(challenge.max_frames_per_step).max(1);
    let total = challenge.actions.len();
    let mut steps = Vec::with_capacity(total);
    for (index, action) in challenge.actions.iter().enumerate() {
        state.set(Live::Acting {
            index,
            total,
            action: action.clone(),
        });
        sleep(PROMPT_LEAD).await;
        let mut frames = Vec::new();
        for _ in 0..per_action {
            if let Some(f) = frame_of(&el) {
                frames.push(f);
            }
            sleep(FRAME_GAP).await;
        }
        if frames.is_empty() {
            return Err(camera_failed());
        }
        steps.push(LivenessStep {
            action: action.clone(),
            frames,
        });
    }
    if let Some(s) = stream.try_update_value(Option::take).flatten() {
        stop_tracks(&s);
    }
    state.set(Live::Sending);
    let body = LivenessFrames {
        challenge: challenge.challenge,
        steps,
        portrait_ticket: ticket.get_value().unwrap_or_default(),
    };
    check(ctx, "identity/liveness", &body).await.map(drop)
}

/// The front camera (`getUserMedia`); `None` when refused or missing.
async fn open_camera() -> Option<MediaStream> {
    let devices = window().navigator().media_devices().ok()?;
    let video = js_sys::Object::new();
    js_sys::Reflect::set(&video, &"facingMode".into(), &"user".into()).ok()?;
    let width = js_sys::Object::new();
    js_sys::Reflect::set(&width, &"ideal".into(), &JsValue::from_f64(640.0)).ok()?;
    js_sys::Reflect::set(&video, &"width".into(), &width).ok()?;
    let constraints = web_sys::MediaStreamConstraints::new();
    constraints.set_video(&video);
    constraints.set_audio(&JsValue::FALSE);
    let promise = devices.get_user_media_with_constraints(&constraints).ok()?;
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}

fn stop_tracks(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(t) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            t.stop();
        }
    }
}

/// The video's current picture, at most [`FRAME_SIDE`] pixels, as base64 JPEG.
fn frame_of(video: &web_sys::HtmlVideoElement) -> Option<String> {
    let (vw, vh) = (video.video_width(), video.video_height());
    if vw == 0 || vh == 0 {
        return None;
    }
    let (w, h) = fit_within(vw, vh, FRAME_SIDE);
    jpeg(w, h, 0.85, |c| {
        c.draw_image_with_html_video_element_and_dw_and_dh(video, 0.0, 0.0, w.into(), h.into())
    })
}

async fn sleep(d: Duration) {
    let ms = i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
