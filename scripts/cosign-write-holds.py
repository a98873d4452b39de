#!/usr/bin/env python3
"""Sums how long write transactions held their turn at the database, by call site.

Reads a cosign-server log written with COSIGN_LOG_FORMAT=json and
COSIGN_LOG='warn,yiqian::write_lock=debug' (one line per committed write transaction,
`Db::begin_write`: where it began, how long it waited for its turn and BEGIN, how long it held
them until its commit answered):

  COSIGN_LOG_FORMAT=json COSIGN_LOG='warn,yiqian::write_lock=debug' \\
    scripts/bench-cosign.sh --levels 100 --warmup 2 --duration 15 --idle 0
  scripts/cosign-write-holds.py $CARGO_TARGET_DIR/bench-cosign-server.log [--from-last-seconds N]

On SQLite, where one transaction writes at a time, the share of the wall clock that all holds
add up to is how busy the write lock was: near 100 % means writes are the serial section.
"""

import argparse
import collections
import datetime

from cosign_log import json_records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument(
        "--from-last-seconds",
        type=float,
        default=0,
        help="only the last N seconds of the log (the measured window; 0: all)",
    )
    args = ap.parse_args()

    rows = []
    for rec in json_records(args.log):
        if rec.get("target") != "yiqian::write_lock":
            continue
        fields = rec.get("fields", {})
        at = datetime.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
        rows.append((at, fields.get("site", "?"), int(fields["waited_us"]), int(fields["held_us"])))
    if not rows:
        raise SystemExit("no write_lock records: was COSIGN_LOG 'warn,yiqian::write_lock=debug'?")
    if args.from_last_seconds > 0:
        end = rows[-1][0]
        rows = [r for r in rows if (end - r[0]).total_seconds() <= args.from_last_seconds]
    span = max((rows[-1][0] - rows[0][0]).total_seconds(), 1e-9)

    by_site = collections.defaultdict(list)
    for _, site, waited, held in rows:
        by_site[site].append((waited, held))
    total_held = sum(h for _, _, _, h in rows)
    print(f"{len(rows)} write transactions over {span:.1f} s ({len(rows) / span:.0f}/s); "
          f"holds add up to {100 * total_held / 1e6 / span:.0f} % of the wall clock")
    print("| site | count | per second | held mean µs | held p99 µs | waited mean µs | share of holds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for site, vals in sorted(by_site.items(), key=lambda kv: -sum(h for _, h in kv[1])):
        held = sorted(h for _, h in vals)
        waited = [w for w, _ in vals]
        p99 = held[min(len(held) - 1, int(0.99 * len(held)))]
        print(
            f"| {site} | {len(vals)} | {len(vals) / span:.0f} | {sum(held) / len(held):.0f} | {p99} "
            f"| {sum(waited) / len(waited):.0f} | {100 * sum(held) / total_held:.0f} % |"
        )


if __name__ == "__main__":
    main()
