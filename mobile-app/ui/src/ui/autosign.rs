//! Auto-sign authorisations: the doctor's list (scope, window, state), a new one (document
//! types, departments, hours; co-signed with the PIN), revoke at once.

use cosign_proto::v1::cosign::AuthorisationView;
use leptos::prelude::*;

use super::{ErrorLine, PinInput, fmt_time, ipc, t};
use crate::model::{UiError, split_list, state_zh};

#[component]
pub fn AutoSign() -> impl IntoView {
    let list = RwSignal::new(Vec::<AuthorisationView>::new());
    let types = RwSignal::new(String::new());
    let depts = RwSignal::new(String::new());
    let hours = RwSignal::new(String::from("8"));
    let pin = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<UiError>);
    let created = RwSignal::new(None::<String>);

    let load = move || {
        leptos::task::spawn_local(async move {
            match ipc::call0::<Vec<AuthorisationView>>("autosign_list").await {
                Ok(v) => list.set(v),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let create = move |_| {
        if busy.get_untracked() || pin.get_untracked().is_empty() {
            return;
        }
        let Ok(h) = hours.get_untracked().trim().parse::<u32>() else {
            error.set(Some(UiError::new(
                "BAD_HOURS",
                "请填写有效的小时数。",
                "Enter a number of hours",
            )));
            return;
        };
        busy.set(true);
        error.set(None);
        created.set(None);
        let args = serde_json::json!({
            "docTypes": split_list(&types.get_untracked()),
            "departments": split_list(&depts.get_untracked()),
            "hours": h,
            "pin": pin.get_untracked(),
        });
        pin.set(String::new());
        leptos::task::spawn_local(async move {
            match ipc::call::<_, AuthorisationView>("autosign_create", &args).await {
                Ok(v) => {
                    created.set(Some(v.authorisation_id));
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let revoke = move |id: String| {
        error.set(None);
        leptos::task::spawn_local(async move {
            match ipc::call::<_, AuthorisationView>(
                "autosign_revoke",
                &serde_json::json!({ "id": id }),
            )
            .await
            {
                Ok(_) => load(),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    view! {
        <section class="card" id="screen-autosign">
            <h2>{t("自动签名授权", "Auto-sign authorisations")}</h2>
            <p class="muted">{t("授权期间，指定科室的指定类型文书将由服务器以授权证书自动签署，可随时撤销。", "During the window, the server signs the given document types of the given departments with a delegated certificate; revoke at any time.")}</p>
            <label class="field"><span>{t("文书类型（逗号分隔）", "Document types (comma separated)")}</span>
                <input id="as-types" prop:value=move || types.get() on:input=move |ev| types.set(event_target_value(&ev))/></label>
            <label class="field"><span>{t("科室（逗号分隔）", "Departments (comma separated)")}</span>
                <input id="as-depts" prop:value=move || depts.get() on:input=move |ev| depts.set(event_target_value(&ev))/></label>
            <label class="field"><span>{t("有效时长（小时）", "Window (hours)")}</span>
                <input id="as-hours" inputmode="numeric" prop:value=move || hours.get() on:input=move |ev| hours.set(event_target_value(&ev))/></label>
            <PinInput value=pin id="as-pin" zh="PIN 码" en="PIN"/>
            <button class="btn primary big" id="as-create" disabled=move || busy.get() on:click=create>
                {move || if busy.get() { t("正在签署授权书…", "Signing the authorisation…")() } else { t("签署授权", "Authorise")() }}
            </button>
            {move || created.get().map(|id| view! { <p class="ok" id="as-created">{t("授权已生效：", "Authorisation active: ")}<span class="mono">{id}</span></p> })}
            <ErrorLine error/>
            <ul class="auths" id="as-list">
                {move || list.get().into_iter().map(|a| {
                    let id = a.authorisation_id.clone();
                    let active = a.state == "active" || a.state == "pending";
                    view! {
                        <li class="auth" data-id=a.authorisation_id.clone() data-state=a.state.clone()>
                            <strong>{a.doc_types.join("、")}</strong>" · "{a.departments.join("、")}<br/>
                            <span class="meta">{fmt_time(a.not_before)}" — "{fmt_time(a.not_after)}</span><br/>
                            <span class="state">{state_zh(&a.state)}</span>" "<small class="mono">{a.authorisation_id.clone()}</small>
                            {active.then(|| view! {
                                <button class="btn small danger as-revoke" on:click=move |_| revoke(id.clone())>{t("撤销", "Revoke")}</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}
