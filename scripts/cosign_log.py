"""Reads a cosign-server log written with COSIGN_LOG_FORMAT=json (shared by the scripts beside it)."""

import json


def json_records(path):
    """Every JSON record of the log, in order; other lines (startup text, torn lines) are skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue
