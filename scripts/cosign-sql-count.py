#!/usr/bin/env python3
"""Counts the SQL statements and transactions of one co-signature, per API call.

Reads the cosign-server log of a one-phone run written with COSIGN_LOG_FORMAT=json and
COSIGN_LOG='warn,sqlx::query=debug,cosign_server::api::middleware=info' (every statement sqlx
runs, inside the span of the HTTP call that ran it) and, on PostgreSQL, the server's own
statement log of the bench database (BENCH_PG_LOG=1): sqlx does not log BEGIN and COMMIT, so
transactions are rebuilt from PostgreSQL's log (one backend runs one transaction at a time),
and each is given to the API call that ran its statements.

  COSIGN_LOG_FORMAT=json COSIGN_LOG='warn,sqlx::query=debug,cosign_server::api::middleware=info' \\
    BENCH_PG_LOG=1 scripts/bench-cosign.sh --postgres URL --levels 1 --warmup 0 --duration 5 --idle 0
  scripts/cosign-sql-count.py $CARGO_TARGET_DIR/bench-cosign-server.log \\
    /var/log/postgresql/postgresql-15-main.log yiqian_bench_NNN

Counts only what comes after the first `POST /api/v1/sign-requests` (enrolment is setup) and
divides by the number of `result` calls (one per co-signature). Statements outside any HTTP
call (the terminal's watcher, background tasks) are listed as "(no call)". A transaction is a
BEGIN…COMMIT block or a statement run on its own (autocommit); a "write commit" is one that
changed something (an INSERT, UPDATE, DELETE or pg_notify), which PostgreSQL must flush to
the WAL before it answers.
"""

import collections
import datetime
import re
import sys

from cosign_log import json_records

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b|pg_notify", re.I)
PG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+ \[(\d+)\] \S*?@(\S+) (\w+):\s+(.*)$"
)
PG_STATEMENT = re.compile(r"^(?:statement|execute [^:]+):\s*(.*)$", re.S)


def norm(sql):
    return " ".join(sql.split())


def route_of(rec):
    for span in reversed(rec.get("spans", [])):
        if span.get("name") == "http":
            return f"{span.get('method', '?')} {span.get('route', '?')}", span.get("request_id", "")
    return "(no call)", ""


def read_server_log(path):
    """Statements sqlx ran, in order: (time, route, call id, sql); and the calls made."""
    statements = []
    calls = {}
    for rec in json_records(path):
        route, call = route_of(rec)
        at = datetime.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
        if call:
            calls.setdefault(call, (at, route))
        if rec.get("target") == "sqlx::query":
            fields = rec.get("fields", {})
            sql = norm(fields.get("db.statement") or fields.get("summary") or "")
            statements.append((at, route, call, sql))
    return statements, calls


def read_pg_log(path, db):
    """Transactions per backend of database `db`: (first time, [sql...])."""
    entries = []  # (time, pid, sql)
    with open(path, encoding="utf-8", errors="replace") as f:
        last = None
        for line in f:
            if line.startswith("\t") and last is not None:
                last[2].append(line.strip())
                continue
            m = PG_LINE.match(line.rstrip("\n"))
            last = None
            if not m or m.group(3) != db or m.group(4) != "LOG":
                continue
            s = PG_STATEMENT.match(m.group(5))
            if not s:
                continue
            at = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc
            )
            last = [at, m.group(2), [s.group(1)]]
            entries.append(last)
    open_tx = {}
    txs = []
    for at, pid, parts in entries:
        sql = norm(" ".join(parts))
        verb = sql.split(" ", 1)[0].upper() if sql else ""
        if verb in ("BEGIN", "START"):
            open_tx[pid] = (at, [sql])
        elif pid in open_tx:
            open_tx[pid][1].append(sql)
            if verb in ("COMMIT", "ROLLBACK", "END"):
                txs.append(open_tx.pop(pid))
        else:
            txs.append((at, [sql]))
    txs.sort(key=lambda t: t[0])
    return txs


def main(server_log, pg_log=None, db=None):
    statements, calls = read_server_log(server_log)
    starts = [at for at, route in calls.values() if route == "POST /api/v1/sign-requests"]
    if not starts:
        sys.exit("no POST /api/v1/sign-requests in the log")
    start = min(starts)
    end = max(at for at, _, _, _ in statements)
    n = sum(1 for at, route in calls.values() if route.endswith("/result") and at >= start)
    if not n:
        sys.exit("no co-signature (result call) found in the log")
    per_call = collections.Counter(route for at, route in calls.values() if at >= start)
    stmts = collections.Counter()
    txs = collections.Counter()
    writes = collections.Counter()
    if pg_log:
        # Give each PostgreSQL statement the route of the sqlx record of the same text that
        # finished soonest after it began (sqlx logs on completion).
        by_sql = collections.defaultdict(list)
        for at, route, _, sql in statements:
            by_sql[sql].append([at, route, False])
        for first, sqls in read_pg_log(pg_log, db):
            route = None
            for sql in sqls:
                best = None
                for cand in by_sql.get(sql, ()):
                    lag = (cand[0] - first).total_seconds()
                    if not cand[2] and -0.005 <= lag <= 1 and (best is None or cand[0] < best[0]):
                        best = cand
                if best is not None:
                    best[2] = True
                    route = route or best[1]
                    first = best[0]
            if first < start or first > end:
                continue  # setup, or the `audit verify` after the server stopped
            route = route or "(unmatched)"
            stmts[route] += len(sqls)
            txs[route] += 1
            writes[route] += int(any(WRITE.search(s) for s in sqls))
    else:
        for at, route, _, sql in statements:
            if at >= start:
                stmts[route] += 1
    print(f"co-signatures: {n}")
    if pg_log:
        print("| call | calls | statements | transactions | of which write commits |")
        print("|---|---:|---:|---:|---:|")
    else:
        print("| call | calls | statements (no BEGIN/COMMIT: sqlx does not log them) |")
        print("|---|---:|---:|")
    total = [0.0, 0.0, 0.0]
    for route in sorted(stmts, key=lambda r: (r.startswith("("), r)):
        row = (stmts[route] / n, txs[route] / n, writes[route] / n)
        total = [a + b for a, b in zip(total, row)]
        cells = f"{row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f}" if pg_log else f"{row[0]:.1f}"
        print(f"| {route} | {per_call[route] / n:.2f} | {cells} |")
    cells = (
        f"**{total[0]:.1f}** | **{total[1]:.1f}** | **{total[2]:.1f}**"
        if pg_log
        else f"**{total[0]:.1f}**"
    )
    print(f"| **per co-signature** | | {cells} |")


if __name__ == "__main__":
    main(*sys.argv[1:4])
