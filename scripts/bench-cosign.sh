#!/usr/bin/env bash
# Co-signing load (issue 6, "Benchmarks"): builds cosign-server and the load generator
# (tools/cosign-load) in release, starts the server on a fresh data directory (SQLite by
# default; PostgreSQL with --postgres URL, a fresh database that is dropped afterwards), enrols
# the doctors, runs the co-signing levels (1, 100, 1000 concurrent phones) and the idle test
# (10 000 WebSockets), and prints the machine and the numbers. A benchmark, not a test:
# `make test` does not run it (`make bench-cosign` does).
#
#   scripts/bench-cosign.sh [--postgres postgres://postgres@127.0.0.1:5432/postgres] [cosign-load args...]
#   e.g. scripts/bench-cosign.sh --levels 1,100 --duration 10 --idle 0
#        scripts/bench-cosign.sh --levels 100 --pause-ms 1500 --idle 0   # paced phones, not saturated
#        scripts/bench-cosign.sh --levels 1,10 --documents 100 --idle 0  # batch: 100 documents per round
#
# Environment: CARGO_TARGET_DIR (default /var/cache/yiqian/target), BENCH_PORT (18480),
# COSIGN_LOG for the server (default warn: per-request logs would measure the terminal),
# BENCH_BIN: a directory holding already built release `cosign-server` and `cosign-load`
# (skips the build; for comparing two builds in one session), BENCH_PERF=FILE: record the
# server with `perf record` (cpu-clock, call graphs) into FILE for the whole run.
# After the run the server is stopped and `cosign-server audit verify` must find the audit
# trail intact (hash chain, MACs, anchors), or the script fails.
# The server's log is kept as $CARGO_TARGET_DIR/bench-cosign-server.log; with
# COSIGN_LOG_FORMAT=json COSIGN_LOG='warn,sqlx::query=debug,cosign_server::api::middleware=info'
# (and BENCH_PG_LOG=1 on PostgreSQL) scripts/cosign-sql-count.py counts statements and
# transactions per API call from it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=/var/cache/yiqian/target}"
export CARGO_TARGET_DIR
port="${BENCH_PORT:-18480}"
pg=""
if [ "${1:-}" = "--postgres" ]; then
  pg="${2:?--postgres needs a server URL}"
  shift 2
fi

if [ -n "${BENCH_BIN:-}" ]; then
  bin="$BENCH_BIN"
else
  cargo build --release -p cosign-server -p cosign-load
  bin="$CARGO_TARGET_DIR/release"
fi

# 10 000 idle WebSockets need 10 000 descriptors on each side (server and generator).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
  echo "ulimit -n is $(ulimit -n) (hard limit $(ulimit -Hn)): the idle test needs about 11 000 per process" >&2
fi

work=$(mktemp -d /tmp/yiqian-bench-cosign.XXXXXX)
db=""
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
  cp "$work/server.log" "$CARGO_TARGET_DIR/bench-cosign-server.log" 2>/dev/null || true
  if [ -n "$db" ]; then psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export COSIGN_CONFIG="$work/cosign.toml" COSIGN_DATA="$work/data" COSIGN_LISTEN="127.0.0.1:$port"
export COSIGN_LOG="${COSIGN_LOG:-warn}"
if [ -n "$pg" ]; then
  db="yiqian_bench_$$"
  psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
  # BENCH_PG_LOG=1: the server logs every statement of this database (and BEGIN/COMMIT, which
  # sqlx does not log) for scripts/cosign-sql-count.py.
  if [ -n "${BENCH_PG_LOG:-}" ]; then
    psql "$pg" -qc "ALTER DATABASE $db SET log_statement = 'all'" >/dev/null
    echo "== PostgreSQL logs every statement of database $db"
  fi
  # Same server, the new database: replace the path of the URL.
  base="${pg%%\?*}"
  query=""
  [ "$base" != "$pg" ] && query="?${pg#*\?}"
  export COSIGN_DATABASE_URL="${base%/*}/$db$query"
fi

password=$("$bin/cosign-server" init | sed -n 's/.*one-time password: *//p')
[ -n "$password" ] || { echo "cosign-server init printed no one-time password" >&2; exit 1; }
"$bin/cosign-server" serve >"$work/server.log" 2>&1 &
server_pid=$!
perf_pid=""
if [ -n "${BENCH_PERF:-}" ]; then
  perf record -q -e cpu-clock -F 250 --call-graph dwarf,8192 -p "$server_pid" -o "$BENCH_PERF" 2>"$work/perf.log" &
  perf_pid=$!
fi
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), database $([ -n "$pg" ] && echo PostgreSQL || echo SQLite), ulimit -n $(ulimit -n), server log level $COSIGN_LOG"
echo "== cosign-load $*"
"$bin/cosign-load" --server "http://127.0.0.1:$port" --admin-password "$password" \
  --server-pid "$server_pid" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg), server peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status")"
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; fi
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=""
if [ -n "$pg" ]; then
  # Whole run, setup included (backends flush their counters when they exit; give them a moment).
  sleep 1
  echo "== PostgreSQL transactions: $(psql "$pg" -Atc "SELECT 'committed ' || xact_commit || ', rolled back ' || xact_rollback FROM pg_stat_database WHERE datname = '$db'")"
fi
echo "== audit trail after the run:"
"$bin/cosign-server" audit verify
