#!/usr/bin/env bash
# Builds a Leptos CSR crate into <dir>/dist/: its static/ files plus app.js and app_bg.wasm.
#   scripts/build-wasm-ui.sh PACKAGE DIR [--lint]
# Used for the patient signing page (scripts/build-h5.sh: web-h5, served by cosign-server at /h5/)
# and the doctor app's UI (scripts/build-app.sh: mobile-ui, embedded by the Tauri shell).
# Fast when nothing changed: cargo's own check (about a second), then wasm-bindgen and the
# static copies run only when their inputs are newer than the output.
# With --lint it runs clippy over the wasm build instead (make test does).
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=${1:?package}
dir=${2:?crate directory}
shift 2

cache=${YIQIAN_CACHE:-/var/cache/yiqian}
dist=$dir/dist
# Its own target dir: the wasm build uses another compiler (Debian's rustc-web) than the host
# build, and the two must never share one (../shared/toolchain.md). The wasm UIs share it, so
# std is rebuilt once.
export CARGO_TARGET_DIR=${WASM_UI_TARGET_DIR:-${H5_TARGET_DIR:-$cache/target-wasm-h5}}
# Small wasm: size over speed, no debug sections (only in this build, not in Cargo.toml).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=false

wbg_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
wbg=$(scripts/setup.sh wasm-bindgen-path)
if [ ! -x "$wbg" ]; then
  echo "[build-wasm-ui $pkg] wasm-bindgen $wbg_version missing: run scripts/setup.sh (make run does)" >&2
  exit 1
fi

build() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    cargo build --release -p "$pkg" --target wasm32-unknown-unknown "$@"
  else
    # No rustup wasm target here: Debian's rustc-web rebuilds std from rust-web-src.
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
      cargo build --release -p "$pkg" --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
  fi
}

if [ "${1:-}" = --lint ]; then
  # The UI code exists only for wasm32, so host clippy never sees it: run Debian's clippy-driver
  # (rust-web-clippy, same compiler as rustc-web) over the wasm build of the workspace crates
  # and fail on any warning in the package (the workspace lints apply).
  driver=/usr/bin/clippy-driver
  [ -x "$driver" ] || { echo "[build-wasm-ui $pkg] $driver missing (Debian rust-web-clippy)" >&2; exit 1; }
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then driver=clippy-driver; fi
  log=$(mktemp)
  RUSTC_WORKSPACE_WRAPPER=$driver build 2>&1 | tee "$log" | grep -E '^(warning|error)' || true
  if grep -qE '^(warning|error)' "$log" && grep -q "$dir/src" "$log"; then
    grep -A8 -E '^(warning|error)' "$log" >&2
    rm -f "$log"
    echo "[build-wasm-ui $pkg] clippy: warnings" >&2
    exit 1
  fi
  rm -f "$log"
  echo "[build-wasm-ui $pkg] clippy (wasm32): clean"
  exit 0
fi

build

wasm=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/${pkg//-/_}.wasm
mkdir -p "$dist"
if [ ! -f "$dist/app_bg.wasm" ] || [ "$wasm" -nt "$dist/app_bg.wasm" ] || [ "$wbg" -nt "$dist/app_bg.wasm" ]; then
  "$wbg" --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$dist" --out-name app "$wasm"
  touch "$dist/app_bg.wasm"
fi
for f in "$dir"/static/*; do
  cp -u "$f" "$dist/"
done
echo "[build-wasm-ui $pkg] $dist ready ($(du -k "$dist/app_bg.wasm" | cut -f1) KiB wasm)"
