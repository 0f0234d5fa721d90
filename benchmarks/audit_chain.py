"""Audit chain: append throughput (vs. a plain un-chained insert) and verify time for 1M events.

Per backend (SQLite file, PostgreSQL schema), each in its own process:

- **append**: ``agent.governance.audit.append_event`` (anchor row update + tail hash + sha256 over canonical
  JSON + insert) for N events one event per transaction (how the product appends: each step
  commits with its own change) and 10×N events 100 per transaction; the baseline of the same run
  inserts the same rows with the same Core insert and a precomputed seq, no chain, no anchor, the
  same transaction sizes. Ratio = chained events/s ÷ plain events/s.
- **verify**: loads 1M chained events in bulk (hashes computed by ``agent.governance.audit.event_hash``, the
  code verification uses), then times ``verify_chain`` and, as its baseline, a plain keyset scan
  reading the same rows without hashing.

    .venv/bin/python benchmarks/audit_chain.py                         # both backends, 3k + 30k appends, 1M verify
    .venv/bin/python benchmarks/audit_chain.py --backends sqlite --appends 5000 --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from _harness import launch, scratch_database

PAYLOAD = {
    "action": "REALLOCATE_WAREHOUSE",
    "params": {"order_id": "SO-100042", "line_no": 1, "to_warehouse_id": "WH-3"},
    "risk": "low",
    "reason": "WH-3 (same region) has 240 available >= open qty 40",
}


def _append(url: str, n: int, batch: int, chained: bool) -> dict:
    import datetime as dt
    import uuid

    from agent.governance.audit import append_event
    from agent.governance.requests import write_session
    from tools.db import make_engine, session_factory, upgrade
    from tools.models import AuditEvent

    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    table = AuditEvent.__table__
    start = time.perf_counter()
    seq = 0
    for first in range(0, n, batch):
        with write_session(factory) as s:
            for i in range(first, min(n, first + batch)):
                if chained:
                    append_event(
                        s,
                        "recommendation",
                        actor="copilot",
                        order_id=f"SO-{i}",
                        request_id=i,
                        payload=PAYLOAD,
                    )
                else:  # the same row, the same Core insert, no anchor, no hashing
                    seq += 1
                    s.connection().execute(
                        table.insert(),
                        {
                            "seq": seq,
                            "event_id": str(uuid.uuid4()),
                            "ts": dt.datetime.now(dt.UTC),
                            "event_type": "recommendation",
                            "actor": "copilot",
                            "role": None,
                            "order_id": f"SO-{i}",
                            "request_id": i,
                            "payload": PAYLOAD,
                            "prev_hash": "",
                            "hash": uuid.uuid4().hex,
                        },
                    )
    seconds = time.perf_counter() - start
    return {"events": n, "batch": batch, "chained": chained, "seconds": seconds, "per_s": n / seconds}


def _verify(url: str, n: int) -> dict:
    import datetime as dt
    import uuid

    from sqlalchemy import select

    from agent.governance.audit import GENESIS, event_hash, verify_chain
    from tools.db import make_engine, session_factory, upgrade
    from tools.models import AuditAnchor, AuditEvent

    engine = make_engine(url)
    upgrade(engine)
    table = AuditEvent.__table__
    t0 = time.perf_counter()
    prev, base = GENESIS, dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        rows = []
        for seq in range(1, n + 1):
            ts = base + dt.timedelta(microseconds=seq)
            content = {
                "seq": seq,
                "event_id": str(uuid.UUID(int=seq)),
                "ts": ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
                "event_type": "recommendation",
                "actor": "copilot",
                "role": None,
                "order_id": f"SO-{seq}",
                "request_id": seq,
                "payload": PAYLOAD,
            }
            digest = event_hash(prev, content)
            rows.append({**content, "ts": ts, "prev_hash": prev, "hash": digest})
            prev = digest
            if len(rows) == 20_000:
                conn.execute(table.insert(), rows)
                rows = []
        if rows:
            conn.execute(table.insert(), rows)
        conn.execute(AuditAnchor.__table__.update().where(AuditAnchor.id == 1).values(seq=n, hash=prev))
    load = time.perf_counter() - t0
    factory = session_factory(engine)
    t0 = time.perf_counter()
    with factory() as s:
        result = verify_chain(s)
    verify = time.perf_counter() - t0
    assert result["ok"] and result["events"] == n, result
    t0 = time.perf_counter()
    with factory() as s:  # baseline: the same keyset scan, no hashing
        last, seen = 0, 0
        while True:
            chunk = s.execute(
                select(table).where(table.c.seq > last).order_by(table.c.seq).limit(5_000)
            ).all()
            if not chunk:
                break
            seen, last = seen + len(chunk), chunk[-1].seq
    scan = time.perf_counter() - t0
    return {"events": n, "load_s": load, "verify_s": verify, "scan_s": scan}


def worker(argv: list[str]) -> None:
    kind, url = argv[0], argv[1]
    if kind == "append":
        out = _append(url, int(argv[2]), int(argv[3]), argv[4] == "chained")
    else:
        out = _verify(url, int(argv[2]))
    print(json.dumps(out))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--appends", type=int, default=3_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; verify {args.events:,}"
    )
    print(
        "\n| backend | events per transaction | events | chained events/s | plain insert events/s | chained / plain |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    verify_rows = []
    for backend in args.backends.split(","):
        for batch in (1, 100):
            res = {}
            n = args.appends if batch == 1 else 10 * args.appends
            for mode in ("chained", "plain"):
                with scratch_database(backend, "auditbench") as url:
                    res[mode] = launch(__file__, "--worker", "append", url, str(n), str(batch), mode)
            print(
                f"| {backend} | {batch} | {n:,} | {res['chained']['per_s']:,.0f} | {res['plain']['per_s']:,.0f} | "
                f"{res['chained']['per_s'] / res['plain']['per_s']:.2f}× |",
                flush=True,
            )
        with scratch_database(backend, "auditbench") as url:
            verify_rows.append((backend, launch(__file__, "--worker", "verify", url, str(args.events))))
    print(
        "\n| backend | events | bulk load s | `verify_chain` s | verified events/s | plain scan s | verify / scan |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, r in verify_rows:
        print(
            f"| {backend} | {r['events']:,} | {r['load_s']:.1f} | {r['verify_s']:.1f} | {r['events'] / r['verify_s']:,.0f} | "
            f"{r['scan_s']:.1f} | {r['verify_s'] / r['scan_s']:.1f}× |"
        )


if __name__ == "__main__":
    main()
