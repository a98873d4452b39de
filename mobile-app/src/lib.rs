//! Doctor / nurse app core: key share, protocol client; the Tauri shell wraps it. Built under
//! issues 6 and 9.
#![forbid(unsafe_code)]
