// 医签终端演示：管理员登录后，由服务器以内置“演示终端”应用发起签名请求，
// 显示二维码，并通过请求的 WebSocket 实时更新签署状态。
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "yiqian-demo-token";
  let currentText = "";
  let socket = null;

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      const msg = data && data.message ? data.message : ("HTTP " + resp.status);
      const err = new Error(msg);
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  function show(id, visible) { $(id).classList.toggle("hidden", !visible); }

  function formatTime(ms) {
    if (!ms) return "—";
    return new Date(ms).toLocaleString("zh-CN", { hour12: false });
  }

  async function loadForm() {
    const data = await api("GET", "/api/v1/demo/staff");
    const doctor = $("doctor");
    doctor.textContent = "";
    for (const s of data.staff) {
      const o = document.createElement("option");
      o.value = s.staff_id;
      o.textContent = s.name + "（" + s.department + "，" + s.staff_id + "）";
      doctor.appendChild(o);
    }
    if (data.staff.length === 0) {
      $("form-error").textContent = "还没有已激活手机的医生：请先在管理接口创建人员并用医签 App 激活。 No enrolled doctor yet.";
    }
    const type = $("doc-type");
    type.textContent = "";
    for (const t of data.doc_types) {
      const o = document.createElement("option");
      o.value = t; o.textContent = t;
      type.appendChild(o);
    }
    show("login", false);
    show("form", true);
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const r = await api("POST", "/api/v1/auth/login", {
        username: $("username").value, password: $("password").value,
      });
      $("password").value = "";
      if (r.must_change_password) {
        $("login-error").textContent = "请先修改一次性密码后再使用演示页。 Change the one-time password first.";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, r.token);
      $("who").textContent = "已登录 Signed in: " + $("username").value;
      await loadForm();
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });

  function setStatus(view) {
    const st = $("status");
    st.className = "";
    if (view.status === "completed") {
      st.textContent = "已签署"; st.classList.add("signed");
    } else if (view.status === "pending") {
      st.textContent = "待签署"; st.classList.add("pending");
    } else if (view.status === "expired") {
      st.textContent = "已过期"; st.classList.add("closed");
    } else if (view.status === "cancelled") {
      st.textContent = "已取消"; st.classList.add("closed");
    } else {
      st.textContent = view.status; st.classList.add("closed");
    }
    st.dataset.status = view.status;
    const signer = view.signers[0];
    if (signer) {
      $("signer").textContent = signer.name + "（" + signer.staff_id + "）";
      $("signed-at").textContent = formatTime(signer.signed_at);
    }
    const sig = view.signatures[0];
    if (sig) {
      const bytes = Uint8Array.from(atob(sig.cms), (c) => c.charCodeAt(0));
      const cms = $("download-cms");
      cms.href = URL.createObjectURL(new Blob([bytes], { type: "application/pkcs7-signature" }));
      cms.download = view.request_id + ".p7s";
      const doc = $("download-doc");
      doc.href = URL.createObjectURL(new Blob([currentText], { type: "text/plain;charset=utf-8" }));
      doc.download = view.request_id + ".txt";
      show("downloads", true);
      show("verify-hint", true);
    }
  }

  function watch(requestId, watchToken) {
    if (socket) socket.close();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + "/api/v1/sign-requests/" + encodeURIComponent(requestId) +
      "/events?token=" + encodeURIComponent(watchToken);
    socket = new WebSocket(url);
    $("ws-state").textContent = "正在连接实时通道… connecting";
    socket.onopen = () => { $("ws-state").textContent = "实时通道已连接 live"; };
    socket.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      if (ev.type === "status") setStatus(ev.request);
    };
    socket.onclose = () => {
      const done = ["completed", "expired", "cancelled"].includes($("status").dataset.status);
      $("ws-state").textContent = done ? "请求已结束 finished" : "实时通道已断开，正在重连… reconnecting";
      if (!done) setTimeout(() => watch(requestId, watchToken), 2000);
    };
  }

  $("request-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("form-error").textContent = "";
    $("create-button").disabled = true;
    try {
      currentText = $("text").value.trim();
      const r = await api("POST", "/api/v1/demo/sign-requests", {
        staff_id: $("doctor").value,
        doc_type: $("doc-type").value,
        patient_id: $("patient-id").value,
        text: currentText,
      });
      $("qr").innerHTML = r.qr_svg; // SVG rendered by our server
      $("qr-link").textContent = r.qr_payload;
      $("request-id").textContent = r.request_id;
      $("signed-at").textContent = "—";
      show("downloads", false);
      show("verify-hint", false);
      setStatus({ request_id: r.request_id, status: "pending", signers: [], signatures: [] });
      show("result", true);
      watch(r.request_id, r.watch_token);
    } catch (e) {
      $("form-error").textContent = e.message;
    } finally {
      $("create-button").disabled = false;
    }
  });

  if (token()) {
    loadForm().catch(() => sessionStorage.removeItem(TOKEN_KEY));
  }
})();
