//! Patient and bedside-pad signing pages (Leptos CSR compiled to wasm, served by cosign-server).
//! Built under issue 8.
#![forbid(unsafe_code)]
