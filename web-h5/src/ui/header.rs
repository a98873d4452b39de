//! The top bar: language toggle and font-size control (for elderly readers).

use leptos::prelude::*;

use super::AppCtx;
use crate::i18n::T;

/// Root font sizes in px; every size in the style sheet is in rem, so the whole page scales.
const FONT_PX: [u32; 4] = [18, 21, 24, 28];

/// Sets the root font size for a step.
pub fn apply_font(step: usize) {
    let px = FONT_PX[step.min(FONT_PX.len() - 1)];
    if let Some(html) = document().document_element() {
        let _ = html.set_attribute("style", &format!("font-size:{px}px"));
    }
}

#[component]
pub fn Toolbar() -> impl IntoView {
    let ctx = AppCtx::get();
    let smaller = move |_: leptos::ev::MouseEvent| ctx.font.update(|f| *f = f.saturating_sub(1));
    let larger =
        move |_: leptos::ev::MouseEvent| ctx.font.update(|f| *f = (*f + 1).min(FONT_PX.len() - 1));
    view! {
        <header class="toolbar">
            <span class="brand">{ctx.t(if ctx.kiosk { T::PadTitle } else { T::AppTitle })}</span>
            <span class="tools">
                <button class="tool" id="font-smaller" aria-label=ctx.t(T::FontSmaller)
                    disabled=move || ctx.font.get() == 0 on:click=smaller>"A-"</button>
                <button class="tool" id="font-larger" aria-label=ctx.t(T::FontLarger)
                    disabled=move || { ctx.font.get() + 1 >= FONT_PX.len() } on:click=larger>"A+"</button>
                <button class="tool" id="lang-toggle"
                    on:click=move |_| ctx.lang.update(|l| *l = l.other())>{ctx.t(T::LangToggle)}</button>
            </span>
        </header>
    }
}
