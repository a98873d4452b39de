//! PDF pages drawn on the phone by pdf.js (`static/pdf-view.js`, vendored from npm by
//! `scripts/build-app.sh`), so the doctor reads a PDF before the PIN without the terminal.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::t;

#[wasm_bindgen]
extern "C" {
    /// Draws every page (up to 30) of the base64 PDF into `element`, `zoom` times its width;
    /// resolves to the page count.
    #[wasm_bindgen(js_namespace = window, js_name = yiqianRenderPdf, catch)]
    async fn render_pdf(
        element: &web_sys::Element,
        base64: &str,
        zoom: u32,
    ) -> Result<JsValue, JsValue>;
}

/// Pages `pdf-view.js` draws at most (the rest is signed all the same).
const MAX_PAGES: u32 = 30;

/// The pages of `data` (a base64 PDF) in a scrolling box with id `id`, then the page count in
/// `{id}-pages` and a zoom button `{id}-zoom` (small print on a phone screen is unreadable at
/// page width; drawn again at twice the width, not scaled up blurred); a PDF pdf.js cannot
/// read says so, in `{id}-failed`.
#[component]
pub fn PdfPages(id: String, data: String) -> impl IntoView {
    let node = NodeRef::<leptos::html::Div>::new();
    let drawn = RwSignal::new(None::<Result<u32, ()>>);
    let zoom = RwSignal::new(1_u32);
    let data = StoredValue::new(data);
    Effect::new(move |_| {
        let zoom = zoom.get();
        if let Some(div) = node.get() {
            leptos::task::spawn_local(async move {
                let pages = render_pdf(&div, &data.get_value(), zoom).await;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                drawn.set(Some(match pages.ok().and_then(|n| n.as_f64()) {
                    Some(n) if n >= 1.0 => Ok(n as u32),
                    _ => Err(()),
                }));
            });
        }
    });
    let pages_id = format!("{id}-pages");
    let zoom_id = format!("{id}-zoom");
    let failed_id = format!("{id}-failed");
    view! {
        <div class="pdf-view" id=id node_ref=node>
            <p class="muted">{t("正在显示 PDF…", "Drawing the PDF…")}</p>
        </div>
        {move || drawn.get().map(|r| match r {
            Ok(n) => view! {
                <p class="muted">
                    <span id=pages_id.clone()>
                        {t("共 ", "")}{n}{t(" 页", " pages")}
                        {(n > MAX_PAGES).then(|| t("（仅显示前 30 页；签署的是全文。）", " (the first 30 are shown; the whole is signed.)"))}
                    </span>
                    " "
                    <button class="btn small" id=zoom_id.clone() on:click=move |_| zoom.update(|z| *z = if *z == 1 { 2 } else { 1 })>
                        {move || if zoom.get() == 1 { t("放大", "Zoom in")() } else { t("缩小", "Zoom out")() }}
                    </button>
                </p>
            }.into_any(),
            Err(()) => view! {
                <p class="error" id=failed_id.clone()>
                    {t("手机无法显示此 PDF，请在终端查看；签署的是上方 SM3 所对应的文件。", "This PDF cannot be shown here: see it on the terminal; the file with the SM3 above is what is signed.")}
                </p>
            }.into_any(),
        })}
    }
}
