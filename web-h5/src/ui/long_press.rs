//! Long press: hold the button for 3 s while a ring fills; releasing early cancels. Completes
//! while still held, reporting how long it was held.

use std::time::Duration;

use leptos::prelude::*;

use super::AppCtx;
use super::pad::has_pointer_events;
use crate::i18n::T;
use crate::model::MIN_HOLD_MS;

fn now_ms() -> f64 {
    window()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// [`MIN_HOLD_MS`] as a float (3000 is exact).
#[allow(clippy::cast_precision_loss)]
const HOLD_MS: f64 = MIN_HOLD_MS as f64;

/// Ring circumference for r = 54 (SVG units).
const RING: f64 = 339.292;

#[component]
pub fn LongPress(
    /// Called once with the held milliseconds when the hold completes.
    on_done: Callback<u64>,
    /// Pressing is refused (consent missing, submission under way).
    #[prop(into)]
    disabled: Signal<bool>,
    /// Called when a press starts while disabled.
    on_refused: Callback<()>,
) -> impl IntoView {
    let ctx = AppCtx::get();
    let progress = RwSignal::new(0.0f64);
    let holding = RwSignal::new(false);
    let cancelled = RwSignal::new(false);
    let started = StoredValue::new(0.0f64);
    let timer = StoredValue::new(None::<IntervalHandle>);
    let stop_timer = move || {
        if let Some(h) = timer.get_value() {
            h.clear();
        }
        timer.set_value(None);
    };
    on_cleanup(stop_timer);

    let start = move || {
        if disabled.get_untracked() {
            on_refused.run(());
            return;
        }
        if holding.get_untracked() {
            return;
        }
        holding.set(true);
        cancelled.set(false);
        progress.set(0.0);
        started.set_value(now_ms());
        let handle = set_interval_with_handle(
            move || {
                let held = now_ms() - started.get_value();
                progress.set((held / HOLD_MS).min(1.0));
                if held >= HOLD_MS && holding.get_untracked() {
                    holding.set(false);
                    stop_timer();
                    // A few thousand positive milliseconds.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    on_done.run(held.round() as u64);
                }
            },
            Duration::from_millis(40),
        )
        .ok();
        timer.set_value(handle);
    };
    let release = move || {
        if holding.get_untracked() {
            holding.set(false);
            stop_timer();
            progress.set(0.0);
            cancelled.set(true);
        }
    };
    // One input path (see `pad.rs`): pointer events where the interface exists, else touch.
    let pointer = has_pointer_events();

    let label = move || {
        if holding.get() {
            T::HoldKeep.get(ctx.lang.get())
        } else if progress.get() >= 1.0 {
            T::HoldDone.get(ctx.lang.get())
        } else {
            T::HoldToSign.get(ctx.lang.get())
        }
    };
    view! {
        <div class="long-press">
            <button class="hold" id="hold" class:holding=move || holding.get()
                on:pointerdown=move |ev: web_sys::PointerEvent| { if pointer { ev.prevent_default(); start(); } }
                on:pointerup=move |_| { if pointer { release(); } }
                on:pointerleave=move |_| { if pointer { release(); } }
                on:pointercancel=move |_| { if pointer { release(); } }
                on:touchstart=move |ev: web_sys::TouchEvent| { if !pointer { ev.prevent_default(); start(); } }
                on:touchend=move |_| { if !pointer { release(); } }
                on:touchcancel=move |_| { if !pointer { release(); } }
                on:contextmenu=move |ev: web_sys::MouseEvent| ev.prevent_default()>
                <svg viewBox="0 0 120 120" aria-hidden="true">
                    <circle class="ring-bg" cx="60" cy="60" r="54"/>
                    <circle class="ring" cx="60" cy="60" r="54"
                        stroke-dasharray=RING.to_string()
                        stroke-dashoffset=move || format!("{:.1}", RING * (1.0 - progress.get()))/>
                </svg>
                <span class="hold-label">{label}</span>
            </button>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=move || format!("{:.0}", progress.get() * 100.0)>
                <div class="bar" id="hold-bar" style=move || format!("width:{:.0}%", progress.get() * 100.0)></div>
            </div>
            <Show when=move || cancelled.get()>
                <p class="error" id="hold-cancelled" role="alert">{ctx.t(T::HoldCancelled)}</p>
            </Show>
        </div>
    }
}
