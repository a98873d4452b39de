//! The handwriting pad: a canvas capturing strokes (x, y, t, pressure per point: 原笔迹) with
//! pointer events, falling back to touch events where `PointerEvent` is missing (older WeChat
//! X5 kernels). Used by handwriting (one large pad) and copy (one pad per character).

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::CanvasRenderingContext2d;

use crate::model::{Stroke, point};

/// Whether the browser has pointer events.
pub fn has_pointer_events() -> bool {
    js_sys::Reflect::has(&window(), &JsValue::from_str("PointerEvent")).unwrap_or(false)
}

fn now_ms() -> f64 {
    window()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now())
}

fn context(canvas: &web_sys::HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// Makes the backing store match the displayed size times the device pixel ratio.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes ≥ 0, a few thousand px
fn fit(canvas: &web_sys::HtmlCanvasElement) -> f64 {
    let ratio = window().device_pixel_ratio().clamp(1.0, 3.0);
    let w = (f64::from(canvas.client_width()) * ratio).round() as u32;
    let h = (f64::from(canvas.client_height()) * ratio).round() as u32;
    if w > 0 && (canvas.width() != w || canvas.height() != h) {
        canvas.set_width(w);
        canvas.set_height(h);
    }
    ratio
}

/// Draws all strokes (transparent background: the PNG has only ink).
pub fn redraw(canvas: &web_sys::HtmlCanvasElement, strokes: &[Stroke]) {
    let ratio = fit(canvas);
    let Some(ctx) = context(canvas) else { return };
    ctx.clear_rect(
        0.0,
        0.0,
        f64::from(canvas.width()),
        f64::from(canvas.height()),
    );
    ctx.set_stroke_style_str("#111");
    ctx.set_fill_style_str("#111");
    ctx.set_line_cap("round");
    ctx.set_line_join("round");
    for stroke in strokes {
        match stroke.points.as_slice() {
            [] => {}
            [p] => {
                ctx.begin_path();
                let _ = ctx.arc(
                    p.x * ratio,
                    p.y * ratio,
                    (1.5 + 2.5 * p.p.unwrap_or(0.5)) * ratio,
                    0.0,
                    std::f64::consts::TAU,
                );
                ctx.fill();
            }
            points => {
                for w in points.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    ctx.begin_path();
                    ctx.set_line_width((2.0 + 5.0 * b.p.unwrap_or(0.5)) * ratio);
                    ctx.move_to(a.x * ratio, a.y * ratio);
                    ctx.line_to(b.x * ratio, b.y * ratio);
                    ctx.stroke();
                }
            }
        }
    }
}

/// The canvas as a transparent PNG, base64 without the `data:` prefix.
pub fn png_base64(canvas: NodeRef<Canvas>) -> Option<String> {
    let url = canvas
        .get_untracked()?
        .to_data_url_with_type("image/png")
        .ok()?;
    url.split_once(',').map(|(_, b64)| b64.to_owned())
}

/// A pad bound to `strokes`; `canvas` lets the owner render the PNG.
#[component]
#[allow(clippy::needless_pass_by_value)] // Leptos components take their props by value
pub fn Pad(
    strokes: RwSignal<Vec<Stroke>>,
    canvas: NodeRef<Canvas>,
    #[prop(into)] class: String,
    /// Drawing is refused (a submission is under way or pending).
    #[prop(into)]
    locked: Signal<bool>,
    /// Time origin of the whole signature (the first point on any of its pads), so `t` never
    /// goes backwards across strokes or copied characters.
    t0: StoredValue<Option<f64>>,
) -> impl IntoView {
    let drawing = StoredValue::new(false);
    let elapsed = move || {
        let now = now_ms();
        now - t0.get_value().unwrap_or(now)
    };

    Effect::new(move |_| {
        strokes.with(|s| {
            if let Some(c) = canvas.get() {
                redraw(&c, s);
            }
        });
    });

    let local = move |client_x: f64, client_y: f64| -> Option<(f64, f64)> {
        let rect = canvas.get_untracked()?.get_bounding_client_rect();
        Some((client_x - rect.left(), client_y - rect.top()))
    };
    let begin = move |x: f64, y: f64, p: f64| {
        if locked.get_untracked() {
            return;
        }
        if t0.get_value().is_none() {
            t0.set_value(Some(now_ms()));
        }
        drawing.set_value(true);
        let point = point(x, y, elapsed(), p);
        strokes.update(|s| {
            s.push(Stroke {
                points: vec![point],
            });
        });
    };
    let extend = move |x: f64, y: f64, p: f64| {
        if !drawing.get_value() {
            return;
        }
        let point = point(x, y, elapsed(), p);
        strokes.update(|s| {
            if let Some(last) = s.last_mut() {
                // Cap points per stroke so a stuck pointer cannot grow the payload without end.
                if last.points.len() < 2000 && last.points.last() != Some(&point) {
                    last.points.push(point);
                }
            }
        });
    };
    let end = move || drawing.set_value(false);

    // One input path only: without the PointerEvent interface (old kernels) touch events are
    // used, and any pointer events such a browser still fires are ignored, so no point is
    // recorded twice.
    let pointer = has_pointer_events();
    let on_pointer_down = move |ev: web_sys::PointerEvent| {
        if !pointer {
            return;
        }
        ev.prevent_default();
        if let Some(c) = canvas.get_untracked() {
            let _ = c.set_pointer_capture(ev.pointer_id());
        }
        if let Some((x, y)) = local(f64::from(ev.client_x()), f64::from(ev.client_y())) {
            begin(x, y, f64::from(ev.pressure()));
        }
    };
    let on_pointer_move = move |ev: web_sys::PointerEvent| {
        if !pointer {
            return;
        }
        if let Some((x, y)) = local(f64::from(ev.client_x()), f64::from(ev.client_y())) {
            extend(x, y, f64::from(ev.pressure()));
        }
    };
    let touch_point = move |ev: &web_sys::TouchEvent| {
        let t = ev.touches().get(0)?;
        let (x, y) = local(f64::from(t.client_x()), f64::from(t.client_y()))?;
        Some((x, y, f64::from(t.force())))
    };
    let on_touch_start = move |ev: web_sys::TouchEvent| {
        if pointer {
            return;
        }
        ev.prevent_default();
        if let Some((x, y, p)) = touch_point(&ev) {
            begin(x, y, p);
        }
    };
    let on_touch_move = move |ev: web_sys::TouchEvent| {
        if pointer {
            return;
        }
        ev.prevent_default();
        if let Some((x, y, p)) = touch_point(&ev) {
            extend(x, y, p);
        }
    };

    view! {
        <div class=format!("pad {class}")>
            <canvas node_ref=canvas
                on:pointerdown=on_pointer_down
                on:pointermove=on_pointer_move
                on:pointerup=move |_| if pointer { end() }
                on:pointercancel=move |_| if pointer { end() }
                on:touchstart=on_touch_start
                on:touchmove=on_touch_move
                on:touchend=move |_| end()
                on:touchcancel=move |_| end()></canvas>
        </div>
    }
}

/// Clear / undo buttons for a pad.
#[component]
pub fn PadTools(
    strokes: RwSignal<Vec<Stroke>>,
    #[prop(into)] locked: Signal<bool>,
) -> impl IntoView {
    let ctx = super::AppCtx::get();
    view! {
        <div class="pad-tools">
            <button class="btn small" id="pad-undo" disabled=move || locked.get() || strokes.with(Vec::is_empty)
                on:click=move |_| strokes.update(|s| { s.pop(); })>{ctx.t(crate::i18n::T::Undo)}</button>
            <button class="btn small" id="pad-clear" disabled=move || locked.get() || strokes.with(Vec::is_empty)
                on:click=move |_| strokes.set(Vec::new())>{ctx.t(crate::i18n::T::Clear)}</button>
        </div>
    }
}
