#!/usr/bin/env bash
# Closes a test run: states which database backends were really exercised (from the runner's
# log) and fails if either ran no test, since both are part of what `make test` promises; then
# prints the totals as the run's last line.
set -euo pipefail
log=$1
count() { grep -E "PASS .*::$1\b|test .*::$1 \.\.\. ok" "$log" | wc -l; }
sqlite=$(count sqlite)
postgres=$(count postgres)
echo "database backends exercised: sqlite ${sqlite} tests passed, postgres ${postgres} tests passed"
if [ "$sqlite" -eq 0 ] || [ "$postgres" -eq 0 ]; then
  echo "error: a database backend was not exercised" >&2
  exit 1
fi
# The liveness OCR accuracy over synthetic ID cards (written by liveness/tests/ocr.rs this run).
ocr_report="$(dirname "$log")/liveness-ocr-report.txt"
[ -f "$ocr_report" ] && cat "$ocr_report"
# nextest: "Summary [ 29.9s] 124 tests run: 124 passed, 0 skipped"; cargo test: "test result: ok. N passed; M failed"
passed=$(grep -oE '[0-9]+ tests run: [0-9]+ passed' "$log" | tail -1 | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
if [ -z "$passed" ]; then
  passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
fi
failed=$(grep -oE '[0-9]+ failed' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
