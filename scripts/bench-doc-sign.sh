#!/bin/sh
# Issue 7 throughput, one run: doc-sign signs and verifies a 10-page PDF (visible appearance,
# signature time stamp: PAdES B-T) under criterion, then pyHanko signs the same document the
# same way (scripts/pyhanko_sign_bench.py) as the anchor. Prints the machine, both numbers and
# the ratio. Installs nothing: pyHanko comes from the test venv made by scripts/setup.sh.
#
#   CARGO_TARGET_DIR=/var/cache/yiqian/target-docs scripts/bench-doc-sign.sh [pyhanko-seconds]
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
: "${CARGO_TARGET_DIR:=$root/target}"
export CARGO_TARGET_DIR
py="${YIQIAN_PYTHON:-/var/cache/yiqian/venv/bin/python}"
secs="${1:-10}"
dir="${DOC_SIGN_BENCH_DIR:-$CARGO_TARGET_DIR/doc-sign-bench}"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export DOC_SIGN_BENCH_DIR="$dir"
"$py" -c "import pyhanko" || { echo "pyHanko missing in $py: run scripts/setup.sh test" >&2; exit 1; }

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== doc-sign (criterion, release)"
cargo bench -p doc-sign --bench pdf -- doc-sign-throughput 2>&1 | tee "$dir/criterion.txt"
echo "== pyHanko $("$py" -c 'import importlib.metadata as m; print(m.version("pyHanko"))') on the same document"
"$py" scripts/pyhanko_sign_bench.py "$dir/ten-pages.pdf" "$dir/seal.pdf" --seconds "$secs" \
  --out "$dir/pyhanko-signed.pdf" | tee "$dir/pyhanko.json"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median throughput of a criterion benchmark, in elements per second.
thrpt() {
  awk -v name="$1" '
    index($0, name) { found = 1 }
    found && /thrpt:/ {
      gsub(/[\[\]]/, ""); v = $4; u = $5
      if (u ~ /^Kelem/) v *= 1000; else if (u ~ /^Melem/) v *= 1000000
      print v; exit
    }' "$dir/criterion.txt"
}
ours=$(thrpt sign_10_page_visible_bt)
verify=$(thrpt verify_10_page_visible_bt)
[ -n "$ours" ] && [ -n "$verify" ] || { echo "criterion throughput not found in $dir/criterion.txt" >&2; exit 1; }
theirs=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['signatures_per_second'])" "$dir/pyhanko.json")
echo "== summary"
awk -v o="$ours" -v v="$verify" -v t="$theirs" 'BEGIN {
  printf "doc-sign sign   %8.1f signatures/s (10 pages, visible, B-T, SM2/SM3)\n", o
  printf "doc-sign verify %8.1f verifications/s\n", v
  printf "pyHanko sign    %8.1f signatures/s (same document, visible, B-T, ECDSA P-256/SHA-256)\n", t
  printf "ratio           %8.1f x (goal >= 10 x)\n", o / t
}'
