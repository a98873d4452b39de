#!/usr/bin/env bash
# Builds the doctor / nurse app's UI (mobile-ui, Leptos CSR) into mobile-app/ui/dist/, which the
# Tauri shell (mobile-app/src-tauri, tauri.conf.json frontendDist) embeds at compile time, so
# this runs before any build of mobile-tauri. Same steps as the patient page (build-wasm-ui.sh),
# plus pdf.js (npm package pdfjs-dist, pinned in mobile-app/ui/package-lock.json) copied into
# dist/pdfjs/: the app renders PDF documents itself before the PIN, with no network.
# `scripts/build-app.sh --lint` runs clippy over the wasm build instead (make test does).
set -euo pipefail
cd "$(dirname "$0")/.."

ui=mobile-app/ui
if [ "${1:-}" = --lint ]; then
  exec scripts/build-wasm-ui.sh mobile-ui "$ui" --lint
fi
scripts/build-wasm-ui.sh mobile-ui "$ui"

# The legacy build: it runs on the older WebKit of Debian 12 and of older phones.
pdfjs=$ui/node_modules/pdfjs-dist
want=$(node -p "require('./$ui/package-lock.json').packages['node_modules/pdfjs-dist'].version")
have=$(node -p "require('./$pdfjs/package.json').version" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "[build-app] installing pdfjs-dist $want from npm (mobile-app/ui/package-lock.json)"
  (cd "$ui" && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
fi
out=$ui/dist/pdfjs
mkdir -p "$out"
cp -u "$pdfjs/legacy/build/pdf.min.mjs" "$pdfjs/legacy/build/pdf.worker.min.mjs" "$pdfjs/LICENSE" "$out/"
# Character maps (Chinese PDFs often name fonts they do not embed) and the standard 14 fonts.
cp -ru "$pdfjs/cmaps" "$pdfjs/standard_fonts" "$out/"
echo "[build-app] pdf.js $want in $out"
