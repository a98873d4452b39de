//! Doctor / nurse app UI (Leptos 0.8 CSR compiled to wasm, embedded by the Tauri shell in
//! `mobile-app/src-tauri`). Built by scripts/build-app.sh; see docs/mobile-app.md.
//!
//! [`model`] holds the IPC types shared with the shell and the pure helpers (host-tested); the
//! screens (`ui`) exist only in the wasm32 build, as in web-h5.
#![forbid(unsafe_code)]

pub mod model;

#[cfg(target_arch = "wasm32")]
mod ui;

/// Entry point called by wasm-bindgen's generated `app.js` once the module is instantiated.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    ui::mount();
}
