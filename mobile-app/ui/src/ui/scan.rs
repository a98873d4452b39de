//! Scan to sign. The camera reads the terminal's QR code on a phone; on the desktop its
//! `yiqian://sign` link is pasted, or opened by the system (deep link). The app shows
//! what will be signed (document type, patient, documents and their SM3, who signed before),
//! then signs every document of the request after the PIN.

use cosign_proto::v1::cosign::{DocumentView, RoundOutcome, SignRequestView};
use leptos::prelude::*;

use super::pdf::PdfPages;
use super::{CameraButton, Ctx, ErrorLine, PinInput, err_text, fmt_time, ipc, open_links, t};
use crate::model::{IncomingLink, Preview, UiError, signed_before, state_zh};

/// A request that can no longer be signed (expired, completed, cancelled), with the reason.
fn closed(v: &SignRequestView) -> Option<UiError> {
    #[allow(clippy::cast_precision_loss)]
    let expired = v.status == "expired"
        || (v.status == "pending" && (v.expires_at as f64) < js_sys::Date::now());
    if expired {
        return Some(UiError::new(
            "REQUEST_EXPIRED",
            "该签署请求已过期，无法签署，请在终端重新发起。",
            "This request has expired",
        ));
    }
    (v.status != "pending").then(|| {
        UiError::new(
            "REQUEST_CLOSED",
            format!("该签署请求{}，无需再签。", state_zh(&v.status)),
            format!("This request is {}", v.status),
        )
    })
}

#[component]
pub fn Scan() -> impl IntoView {
    let ctx = Ctx::get();
    let link = RwSignal::new(String::new());
    let view_req = RwSignal::new(None::<SignRequestView>);
    let pin = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let done = RwSignal::new(None::<RoundOutcome>);
    let error = RwSignal::new(None::<UiError>);

    let open = move || {
        error.set(None);
        done.set(None);
        view_req.set(None);
        let l = link.get_untracked();
        leptos::task::spawn_local(async move {
            match ipc::call::<_, SignRequestView>("open_link", &serde_json::json!({ "link": l }))
                .await
            {
                Ok(v) => {
                    if let Some(e) = closed(&v) {
                        error.set(Some(e));
                    } else {
                        view_req.set(Some(v));
                    }
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let read = open_links(link, open, IncomingLink::sign);
    let sign = move |_| {
        if busy.get_untracked() || pin.get_untracked().is_empty() {
            return;
        }
        busy.set(true);
        error.set(None);
        let args = serde_json::json!({ "link": link.get_untracked(), "pin": pin.get_untracked() });
        pin.set(String::new());
        leptos::task::spawn_local(async move {
            match ipc::call::<_, RoundOutcome>("sign_link", &args).await {
                Ok(o) => {
                    done.set(Some(o));
                    link.set(String::new());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
            ctx.refresh_tasks();
        });
    };

    view! {
        <section class="card" id="screen-scan">
            <h2>{t("扫码签署", "Scan to sign")}</h2>
            <p class="muted">{t("扫描终端上的签名二维码；电脑上请粘贴二维码链接（yiqian://sign…）。", "Scan the terminal's QR code; on a computer paste its link (yiqian://sign…).")}</p>
            <CameraButton id="sign-camera" on_read=read error/>
            <label class="field">
                <span>{t("二维码链接", "QR link")}</span>
                <textarea id="sign-link" rows="3" prop:value=move || link.get()
                    on:input=move |ev| link.set(event_target_value(&ev))></textarea>
            </label>
            <button class="btn" id="sign-open" on:click=move |_| open()>{t("查看签署内容", "Show what will be signed")}</button>
            {move || view_req.get().map(|r| {
                let before = signed_before(&r);
                view! {
                    <div class="request" id="request">
                        <h3 id="req-title">{r.title.clone()}</h3>
                        <dl class="facts">
                            <dt>{t("文书类型", "Document type")}</dt><dd id="req-type">{r.doc_type.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>{t("患者", "Patient")}</dt><dd id="req-patient">{r.patient_id.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>{t("就诊号", "Visit")}</dt><dd>{r.visit_id.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>{t("科室", "Department")}</dt><dd>{r.department.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>{t("状态", "Status")}</dt><dd id="req-status">{state_zh(&r.status)}</dd>
                            <dt>{t("截止", "Due")}</dt><dd>{fmt_time(r.expires_at)}</dd>
                            {(!before.is_empty()).then(|| view! { <dt>{t("已签", "Signed by")}</dt><dd>{before.join("、")}</dd> })}
                        </dl>
                        <h4>{t("将签署的文件", "Documents to sign")}</h4>
                        <ul class="docs" id="req-docs">
                            {r.documents.iter().map(|d| view! { <DocPreview request_id=r.request_id.clone() doc=d.clone()/> }).collect_view()}
                        </ul>
                        {move || done.with(Option::is_none).then(|| view! {
                            <PinInput value=pin id="sign-pin" zh="PIN 码" en="PIN"/>
                            <button class="btn primary big" id="sign-confirm" disabled=move || busy.get() on:click=sign>
                                {move || if busy.get() { t("正在签署…", "Signing…")() } else { t("确认签署", "Sign")() }}
                            </button>
                        })}
                    </div>
                }
            })}
            {move || done.get().map(|o| view! {
                <p class="ok big-ok" id="sign-done">{t("签署成功", "Signed")}" · "{o.items.len()}" "{t("份文件", "documents")}</p>
            })}
            <ErrorLine error/>
        </section>
    }
}

/// One document of the request: name and SM3, and on demand its content (text, images and PDF
/// shown; Word through the server's PDF of it; other formats named). The shell checks the
/// content against the SM3 shown here.
#[component]
fn DocPreview(request_id: String, doc: DocumentView) -> impl IntoView {
    let shown = RwSignal::new(None::<Result<Preview, UiError>>);
    let index = doc.index;
    let args =
        serde_json::json!({ "requestId": request_id, "index": index, "digestSm3": doc.digest_sm3 });
    let load = move |_| {
        let args = args.clone();
        leptos::task::spawn_local(async move {
            shown.set(Some(ipc::call::<_, Preview>("preview", &args).await));
        });
    };
    let name = doc.name.clone();
    view! {
        <li>
            <strong>{doc.name}</strong><br/><small class="mono">"SM3 "{doc.digest_sm3}</small>
            {doc.has_content.then(|| view! {
                <button class="btn small" id=format!("preview-{index}") on:click=load>{t("预览内容", "Preview")}</button>
            })}
            {move || shown.get().map(|r| match r {
                Ok(Preview::Text { text, truncated }) => view! {
                    <pre class="preview" id=format!("preview-text-{index}")>{text}</pre>
                    {truncated.then(|| view! { <p class="muted">{t("（内容较长，仅显示开头部分；签署的是全文。）", "(Long: only the beginning is shown; the whole is signed.)")}</p> })}
                }.into_any(),
                Ok(Preview::Image { data_url }) => view! {
                    <img class="preview" id=format!("preview-image-{index}") src=data_url alt=name.clone()/>
                }.into_any(),
                Ok(Preview::Pdf { data, size, converted }) => view! {
                    {converted.then(|| view! {
                        <p class="muted" id=format!("preview-converted-{index}")>
                            {t("Word 文件（", "Word file (")}{size}{t(" 字节），由服务器转换为 PDF 供阅读，版式可能略有差异；签署的是上方 SM3 所对应的 Word 原文件。", " bytes), converted to PDF by the server for reading; the layout may differ slightly. The Word file with the SM3 above is what is signed.")}
                        </p>
                    })}
                    <PdfPages id=format!("preview-pdf-{index}") data/>
                }.into_any(),
                Ok(Preview::Other { format, size }) => view! {
                    <p class="muted" id=format!("preview-other-{index}")>
                        {format}" · "{size}" "{t("字节。手机上不显示此格式，请在终端查看；签署的是上方 SM3 所对应的文件。", "bytes. Not shown on the phone: see it on the terminal; the file with the SM3 above is what is signed.")}
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="error">{err_text(&e)}</p> }.into_any(),
            })}
        </li>
    }
}
