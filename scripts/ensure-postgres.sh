#!/usr/bin/env bash
# Makes sure a PostgreSQL answers at COSIGN_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres)
# for the test suite: starts the Debian cluster if it is installed but stopped, and on a machine
# without one configures the freshly installed cluster for local trust authentication.
set -euo pipefail
url=${COSIGN_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
say() { printf '[postgres] %s\n' "$*"; }

if psql "$url" -qAtc 'SELECT 1' >/dev/null 2>&1; then
  say "answering at ${url%%\?*}"
  exit 0
fi

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$version" ]; then
  say "no PostgreSQL cluster found; install the 'postgresql' package first (scripts/setup.sh test does)"
  exit 1
fi
conf=/etc/postgresql/$version/main
# Trust local loopback connections: this is a test database on a developer or CI machine only.
if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  say "allowing trust authentication on 127.0.0.1 for tests"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all postgres trust' "$conf/pg_hba.conf"
fi
grep -q "^listen_addresses" "$conf/postgresql.conf" || echo "listen_addresses = 'localhost'" >> "$conf/postgresql.conf"
say "starting cluster $version/main"
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 30); do
  psql "$url" -qAtc 'SELECT 1' >/dev/null 2>&1 && { say "answering at ${url%%\?*}"; exit 0; }
  sleep 1
done
say "PostgreSQL did not answer at $url"
exit 1
