#!/usr/bin/env bash
# Builds the patient signing page (web-h5, Leptos CSR) into web-h5/dist/: index.html, app.css,
# app.js and app_bg.wasm, which cosign-server serves at /h5/ (docs/h5.md).
# `scripts/build-h5.sh --lint` runs clippy over the wasm build instead (make test does).
exec "$(dirname "$0")/build-wasm-ui.sh" web-h5 web-h5 "$@"
