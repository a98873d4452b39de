#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for `make run` (no argument) or `make test`
# (argument "test"). Idempotent: when nothing is missing it only checks and takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
cache=${YIQIAN_CACHE:-/var/cache/yiqian}

# wasm-bindgen CLI for the H5 page: exactly the wasm-bindgen version in Cargo.lock, kept in a
# per-version directory of the cache (scripts/build-h5.sh asks for the path with this mode).
wbg_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
wbg_root="$cache/tools/wasm-bindgen-$wbg_version"
if [ "$mode" = wasm-bindgen-path ]; then
  echo "$wbg_root/bin/wasm-bindgen"
  exit 0
fi
# tauri-driver (WebDriver for the doctor app's end-to-end test, tests/it/tauri_app.rs): a pinned
# version in its own directory of the cache; the test asks for the path with this mode.
tauri_driver_version=2.1.0
tauri_driver="$cache/tools/tauri-driver-$tauri_driver_version/bin/tauri-driver"
if [ "$mode" = tauri-driver-path ]; then
  echo "$tauri_driver"
  exit 0
fi
mkdir -p "$cache"

say() { printf '[setup] %s\n' "$*"; }

lists=(scripts/apt-packages.txt)
[ "$mode" = test ] && lists+=(scripts/apt-packages-test.txt)
mapfile -t wanted < <(cat "${lists[@]}" | sed 's/#.*//' | awk 'NF {print $1}' | sort -u)
# npm installs the app UI's pdf.js (scripts/build-app.sh). Debian's nodejs and npm only when no
# npm is there: a machine with Node.js from elsewhere keeps it.
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then
  wanted+=(nodejs npm)
fi
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo not found: install Rust with rustup (the project needs Rust >= 1.85), then re-run."
  exit 1
fi

if [ ! -x "$wbg_root/bin/wasm-bindgen" ]; then
  # Without --locked: its lockfile names a crate version the registry does not serve.
  say "installing wasm-bindgen-cli $wbg_version into $wbg_root (a few minutes, once)"
  cargo install -q wasm-bindgen-cli --version "=$wbg_version" --root "$wbg_root"
fi

if [ "$mode" = test ] && [ ! -x "$tauri_driver" ]; then
  say "installing tauri-driver $tauri_driver_version (a minute, once)"
  cargo install -q tauri-driver --locked --version "=$tauri_driver_version" --root "$cache/tools/tauri-driver-$tauri_driver_version"
fi

# Models of the `liveness` service and its test images (PyPI, checksummed; out of git).
scripts/fetch-models.sh

if [ "$mode" = test ]; then
  # Python verifiers in a venv outside the clone, rebuilt only when the requirements change.
  venv="$cache/venv"
  want=$(sha256sum scripts/requirements-test.txt | cut -c1-16)
  if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    say "creating Python venv for test verifiers in $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt
    echo "$want" > "$venv/.requirements"
  fi
  scripts/ensure-postgres.sh
fi
say "ready ($mode)"
