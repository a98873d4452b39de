#!/usr/bin/env bash
# Builds the crates that the H5 page and the phone app embed for wasm32-unknown-unknown, so a
# dependency that does not build there is caught by `make test` (../shared/toolchain.md: no
# rustup wasm target here, so Debian's rustc-web rebuilds std from rust-web-src).
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(-p cosign-proto -p sm2-cosign -p pad-channel --features cosign-proto/cosign)
export CARGO_TARGET_DIR=${WASM_TARGET_DIR:-${YIQIAN_CACHE:-/var/cache/yiqian}/target-wasm}   # never shared with the host compiler
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  cargo build --release "${crates[@]}" --target wasm32-unknown-unknown
else
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    cargo build --release "${crates[@]}" --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
fi
echo "wasm32 build: ok (${crates[*]})"
