"""What the benchmarks share: scratch databases on both backends, one process per measured run.

A scratch database is a temporary SQLite file, or a fresh schema on the PostgreSQL server named by
``TEST_POSTGRES_URL`` (default: the local server), dropped afterwards. Each measured run is its own
process so that its peak memory (``getrusage(RUSAGE_CHILDREN)`` of the launcher) is its own; it
prints one JSON object as its last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def scratch_database(backend: str, prefix: str) -> Iterator[str]:
    """The URL of an empty database on ``backend`` (sqlite or postgres), removed on exit."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as folder:
            yield f"sqlite:///{folder}/{prefix}.db"
        return
    from tools.db import scratch_schema

    with scratch_schema(PG_URL, prefix, variable="TEST_POSTGRES_URL") as url:
        yield url


def launch(script: str, *args: str) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter; return the JSON object it printed last."""
    done = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr or done.stdout)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread_over_types(results: list[dict], n: int) -> list[dict]:
    """Up to ``n`` triage results with exceptions, taken in turn from each first-exception type
    (by order id within a type): a sample that covers every type before repeating one."""
    by_type: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda r: r["order_id"]):
        if result["exceptions"]:
            by_type.setdefault(result["exceptions"][0]["type"], []).append(result)
    chosen, rank = [], 0
    while len(chosen) < n and any(rank < len(v) for v in by_type.values()):
        for kind in sorted(by_type):
            if rank < len(by_type[kind]) and len(chosen) < n:
                chosen.append(by_type[kind][rank])
        rank += 1
    return chosen
