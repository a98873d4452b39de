#!/usr/bin/env bash
# Prints which database backends the test run exercised, from the test runner's log, and fails
# if either backend ran no test: both are part of what `make test` promises.
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
