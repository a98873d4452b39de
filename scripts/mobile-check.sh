#!/usr/bin/env bash
# The doctor app for phones: checks that its Rust side (the Tauri shell `mobile-tauri`, the core
# library `yiqian_phone`, the keystore and barcode-scanner plugins) compiles for
# aarch64-linux-android and aarch64-apple-ios, then that the Android and iOS projects agree with
# tauri.conf.json (scripts/mobile-config-check.py). Nothing more can be built here: no Android
# SDK/NDK and no Xcode (../shared/toolchain.md). `make test` runs it.
#
# `cargo check` only (no linking, so no NDK or iOS SDK), with Debian's rustc-web rebuilding std
# for each target from its sources (rustup here has only x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${YIQIAN_CACHE:-/var/cache/yiqian}
# Its own target dir: another compiler than the host build (never share one).
export CARGO_TARGET_DIR=${MOBILE_TARGET_DIR:-$cache/target-mobile}
# A dependency's build script looks for Xcode's SDK on iOS targets: an empty one satisfies it
# for `check` (no C code of the app is linked here).
sdk=$CARGO_TARGET_DIR/empty-ios-sdk
mkdir -p "$sdk"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in aarch64-linux-android aarch64-apple-ios; do
  echo "[mobile-check] cargo check -p mobile-tauri --lib --target $target"
  env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CC_aarch64_apple_ios=clang AR_aarch64_apple_ios=llvm-ar SDKROOT="$sdk" \
    cargo check -q -p mobile-tauri --lib --target "$target" -Zbuild-std=std,panic_abort 2>&1 | tee "$log"
  # Code compiled only for phones (cfg(mobile)) must be as clean as the rest: a warning in one
  # of our crates fails the check (cargo replays cached warnings, so this holds on reruns).
  if grep -A4 -E '^warning' "$log" | grep -qE -- '--> (mobile-app|shared)/'; then
    echo "[mobile-check] warnings in the app's code for $target" >&2
    exit 1
  fi
done
echo "[mobile-check] Rust side compiles for aarch64-linux-android and aarch64-apple-ios"

python3 scripts/mobile-config-check.py
python3 scripts/test_mobile_config_check.py -q
