#!/usr/bin/env bash
# Builds the patient signing page (web-h5, Leptos CSR) into web-h5/dist/: index.html, app.css,
# app.js and app_bg.wasm, which cosign-server serves at /h5/ (docs/h5.md).
# Fast when nothing changed: cargo's own check (about a second), then wasm-bindgen and the
# static copies run only when their inputs are newer than the output.
# `scripts/build-h5.sh --lint` runs clippy over the wasm build instead (make test does).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${YIQIAN_CACHE:-/var/cache/yiqian}
dist=web-h5/dist
# Its own target dir: the wasm build uses another compiler (Debian's rustc-web) than the host
# build, and the two must never share one (../shared/toolchain.md).
export CARGO_TARGET_DIR=${H5_TARGET_DIR:-$cache/target-wasm-h5}
# Small wasm: size over speed, no debug sections (only in this build, not in Cargo.toml).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=false

wbg_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
wbg=$(scripts/setup.sh wasm-bindgen-path)
if [ ! -x "$wbg" ]; then
  echo "[build-h5] wasm-bindgen $wbg_version missing: run scripts/setup.sh (make run does)" >&2
  exit 1
fi

build() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    cargo build --release -p web-h5 --target wasm32-unknown-unknown "$@"
  else
    # No rustup wasm target here: Debian's rustc-web rebuilds std from rust-web-src.
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
      cargo build --release -p web-h5 --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
  fi
}

if [ "${1:-}" = --lint ]; then
  # The UI code exists only for wasm32, so host clippy never sees it: run Debian's clippy-driver
  # (rust-web-clippy, same compiler as rustc-web) over the wasm build of the workspace crates
  # and fail on any warning in web-h5 (the workspace lints apply).
  driver=/usr/bin/clippy-driver
  [ -x "$driver" ] || { echo "[build-h5] $driver missing (Debian rust-web-clippy)" >&2; exit 1; }
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then driver=clippy-driver; fi
  log=$(mktemp)
  RUSTC_WORKSPACE_WRAPPER=$driver build 2>&1 | tee "$log" | grep -E '^(warning|error)' || true
  if grep -qE '^(warning|error)' "$log" && grep -q 'web-h5/src' "$log"; then
    grep -A8 -E '^(warning|error)' "$log" >&2
    rm -f "$log"
    echo "[build-h5] clippy: web-h5 has warnings" >&2
    exit 1
  fi
  rm -f "$log"
  echo "[build-h5] clippy (wasm32): web-h5 clean"
  exit 0
fi

build

wasm=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/web_h5.wasm
mkdir -p "$dist"
if [ ! -f "$dist/app_bg.wasm" ] || [ "$wasm" -nt "$dist/app_bg.wasm" ] || [ "$wbg" -nt "$dist/app_bg.wasm" ]; then
  "$wbg" --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$dist" --out-name app "$wasm"
  touch "$dist/app_bg.wasm"
fi
for f in web-h5/static/*; do
  cp -u "$f" "$dist/"
done
echo "[build-h5] $dist ready ($(du -k "$dist/app_bg.wasm" | cut -f1) KiB wasm)"
