//! Patient and bedside-pad signing page (Leptos CSR compiled to wasm, served by cosign-server
//! at `/h5/`). Built under issue 8; see docs/h5.md.
//!
//! The pure parts (texts, helpers around cosign-proto's patient wire types, whose ID-number
//! check the page shares with the server) compile everywhere and are unit-tested
//! on the host; the UI (`ui`) exists only in the wasm32 build made by scripts/build-h5.sh.
#![forbid(unsafe_code)]

pub mod i18n;
pub mod model;

#[cfg(target_arch = "wasm32")]
mod ui;

/// Entry point called by wasm-bindgen's generated `app.js` once the module is instantiated.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    ui::mount();
}
