#!/usr/bin/env bash
# Builds the doctor / nurse app's UI (mobile-ui, Leptos CSR) into mobile-app/ui/dist/, which the
# Tauri shell (mobile-app/src-tauri, tauri.conf.json frontendDist) embeds at compile time, so
# this runs before any build of mobile-tauri. Same steps as the patient page (build-wasm-ui.sh).
# `scripts/build-app.sh --lint` runs clippy over the wasm build instead (make test does).
exec "$(dirname "$0")/build-wasm-ui.sh" mobile-ui mobile-app/ui "$@"
