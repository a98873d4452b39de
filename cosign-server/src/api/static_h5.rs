//! The patient signing page (web-h5) at `/h5/`: the files scripts/build-h5.sh writes into
//! `[web] h5_dir`. Only plain file names inside that directory are served (no sub-paths, no
//! dot files); if the page is not built, a short page says how to build it.

use std::path::Path;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use cosign_proto::v1::ErrorCode;

use super::{ApiFailure, AppState};

/// Scripts and wasm from this origin only (`'unsafe-eval'` is for WebAssembly compilation in
/// browsers older than `'wasm-unsafe-eval'`, e.g. older WeChat kernels); page images arrive as
/// blob URLs; Leptos sets `style` attributes.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; \
    img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'none'";

/// Largest file served (the wasm module is well below).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// The `/h5` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/h5", get(|| async { Redirect::permanent("/h5/") }))
        .route("/h5/", get(index))
        .route("/h5/{file}", get(file))
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state.config.web.h5_dir, "index.html", &headers).await
}

async fn file(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&state.config.web.h5_dir, &name, &headers).await
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

/// A plain file name: `[A-Za-z0-9_.-]`, not starting with a dot, bounded.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

async fn serve(dir: &Path, name: &str, headers: &HeaderMap) -> Response {
    let Some(kind) = content_type(name).filter(|_| safe_name(name)) else {
        return ApiFailure::new(ErrorCode::NotFound).into_response();
    };
    let path = dir.join(name);
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE => m,
        _ if name == "index.html" => return not_built(dir),
        _ => return ApiFailure::new(ErrorCode::NotFound).into_response(),
    };
    // Names carry no content hash, so browsers revalidate every time; the ETag makes that cheap.
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if kind.starts_with("text/html") {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => (out, bytes).into_response(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "h5 file unreadable");
            ApiFailure::new(ErrorCode::NotFound).into_response()
        }
    }
}

/// The page is not built: say so (in both languages) instead of a bare 404.
fn not_built(dir: &Path) -> Response {
    tracing::warn!(dir = %dir.display(), "web-h5 is not built: run scripts/build-h5.sh");
    let body = "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
        <title>医签 · 页面未就绪</title></head><body style=\"font-family:sans-serif;padding:1.5rem;line-height:1.6\">\
        <h1>签署页面暂不可用</h1><p>服务器尚未构建患者签署页面（web-h5）。请联系信息科：\
        运行 <code>scripts/build-h5.sh</code>（<code>make run</code> 会自动构建），\
        或在 cosign.toml 的 <code>[web] h5_dir</code> 中指定已构建页面的目录。</p>\
        <p lang=\"en\">The patient signing page (web-h5) is not built on this server. Run \
        <code>scripts/build-h5.sh</code> (<code>make run</code> does), or point \
        <code>[web] h5_dir</code> in cosign.toml at a built page.</p></body></html>";
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "index.html",
            "app.js",
            "app_bg.wasm",
            "app.css",
            "compat.js",
        ] {
            assert!(safe_name(ok) && content_type(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            ".env",
            "..",
            "../x.js",
            "a/b.js",
            "a%2Fb.js",
            "x.exe",
            "cosign.toml",
        ] {
            assert!(!safe_name(bad) || content_type(bad).is_none(), "{bad}");
        }
    }
}
