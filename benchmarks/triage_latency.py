"""Triage latency and throughput: single-order triage p50/p95 and ``--all-open`` orders per second.

Seeds databases of about 10k, 100k and 1M order lines with ``tools.demo.generate`` (SQLite: a file
in a temporary folder; PostgreSQL: a fresh schema in ``TEST_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, dropped afterwards), then on each:

- **single order:** ``triage_order`` (recording its exceptions, flushed) on a fixed random sample
  of open-book orders, after a short warm-up; p50 and p95 in milliseconds;
- **all open, batch:** ``triage_open_book`` over the whole open book (what ``copilot triage
  --all-open`` runs), recording, flushed; orders per second;
- **all open, per order (the baseline):** ``triage_order`` on each of the first N open-book order
  ids (what ``--all-open --limit N`` ran before), recording, flushed; orders per second;
- **short orders:** the single-order p50 of the sampled orders with a line short of stock — the
  ones whose triage also looks up the allocation donors (domain.md §6) — and how many of the open
  book carry an ``ALLOCATION_CONFLICT``;
- **what-if:** ``agent.governance.impact.whatif`` of each sampled order's recommendation (the
  impact on the other open orders, simulated in a savepoint that is rolled back); p50 and p95, and
  the ratio to the single-order triage p50 of the same run.

Every measurement runs in a transaction that is rolled back, so all see the same records. Ratios
are of the same run: growth against the 10k database of the same backend, and batch against
per-order on the same database. Each (backend, size) is its own process.

    .venv/bin/python benchmarks/triage_latency.py                  # everything, Markdown table
    .venv/bin/python benchmarks/triage_latency.py --backends sqlite --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time

from _harness import ROOT, launch, scratch_database

AS_OF = "2026-11-25"
SEED = 7
SAMPLE_SEED = 3


def _run(backend: str, lines: int, sample: int, baseline_orders: int) -> dict:
    """Inside the worker process: seed one database, measure, clean up."""
    from tools.db import make_engine
    from tools.demo.generator import MEAN_LINES

    orders = round(lines / MEAN_LINES)
    with scratch_database(backend, "triagebench") as url:
        engine = make_engine(url, variable="TEST_POSTGRES_URL")
        try:
            return _measure(engine, backend, orders, sample, baseline_orders)
        finally:
            engine.dispose()


def _measure(engine, backend: str, orders: int, sample: int, baseline_orders: int) -> dict:
    import datetime as dt

    from sqlalchemy import func, select

    from agent.governance.impact import whatif
    from agent.policy import load_policy
    from agent.triage.detection import detect_order
    from agent.triage.service import triage_open_book, triage_order
    from tools.dataset import open_order_ids
    from tools.db import session_factory, upgrade
    from tools.demo import generate
    from tools.models import Order

    upgrade(engine)
    report = generate(engine, orders=orders, seed=SEED, as_of=dt.date.fromisoformat(AS_OF), progress=False)
    if backend == "postgres":
        from tools.models import Base

        with engine.begin() as conn:  # what autovacuum would do after a bulk load; this schema's
            for table in Base.metadata.sorted_tables:  # tables only (a database-wide ANALYZE
                conn.exec_driver_sql(f'ANALYZE "{table.name}"')  # deadlocks with other sessions)
    policy = load_policy()
    factory = session_factory(engine)
    with factory() as s:
        book = open_order_ids(s)
        total_orders = s.scalar(select(func.count()).select_from(Order))
    picked = random.Random(SAMPLE_SEED).sample(book, min(sample, len(book)))

    with factory() as s:  # single order
        for oid in picked[:20]:  # warm-up: statement caches, pages
            triage_order(s, oid, policy)
            s.flush()
        s.rollback()
        times = []
        for oid in picked:
            started = time.perf_counter()
            triage_order(s, oid, policy)
            s.flush()
            times.append(time.perf_counter() - started)
        s.rollback()
    by_order, short = list(times), []
    times.sort()

    with factory() as s:  # --all-open, batch
        started = time.perf_counter()
        done = 0
        for _ in triage_open_book(s, policy):
            done += 1
        s.flush()
        batch_s = time.perf_counter() - started
        s.rollback()

    with factory() as s:  # what-if of the recommendation, on the sampled orders that have one
        recs = []
        for oid in picked:
            result = triage_order(s, oid, policy, record=False)
            if result["recommendation"]:
                recs.append(oid)
            if any(e["type"] == "INVENTORY_SHORTFALL" for e in result["exceptions"]):
                short.append(oid)
        s.rollback()
        for oid in recs[:10]:  # warm-up
            whatif(s, policy, order_id=oid)
        s.rollback()
        what_times, reached = [], []
        for oid in recs:
            started = time.perf_counter()
            impact = whatif(s, policy, order_id=oid)
            what_times.append(time.perf_counter() - started)
            reached.append(impact["checked_orders"])
        s.rollback()
        conflicts = (
            sum(
                1
                for oid in book
                if any(d.type == "ALLOCATION_CONFLICT" for d in detect_order(s, oid, policy))
            )
            if len(book) <= 3_000
            else None
        )
    what_times.sort()
    short_times = sorted(t for oid, t in zip(picked, by_order, strict=True) if oid in set(short))

    first = book[:baseline_orders]
    with factory() as s:  # --all-open, per order (baseline)
        started = time.perf_counter()
        for oid in first:
            triage_order(s, oid, policy)
        s.flush()
        per_order_s = time.perf_counter() - started
        s.rollback()

    def pct(p: float, values: list[float] | None = None) -> float:
        values = times if values is None else values
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p * (len(values) - 1)))] * 1000

    return {
        "backend": backend,
        "lines": report.order_lines,
        "orders": total_orders,
        "open": len(book),
        "seed_s": report.elapsed,
        "sample": len(times),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "batch_orders": done,
        "batch_s": batch_s,
        "batch_rate": done / batch_s,
        "per_order_orders": len(first),
        "per_order_s": per_order_s,
        "per_order_rate": len(first) / per_order_s,
        "short_sample": len(short_times),
        "short_p50_ms": pct(0.50, short_times),
        "conflicts": conflicts,
        "whatif_sample": len(what_times),
        "whatif_p50_ms": pct(0.50, what_times),
        "whatif_p95_ms": pct(0.95, what_times),
        "whatif_reach_p50": sorted(reached)[len(reached) // 2] if reached else 0,
    }


def _launch(backend: str, lines: int, sample: int, baseline_orders: int) -> dict:
    return launch(__file__, "_run", backend, str(lines), str(sample), str(baseline_orders))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000], help="order lines"
    )
    parser.add_argument("--sample", type=int, default=300, help="orders in the single-order sample")
    parser.add_argument(
        "--baseline-orders",
        type=int,
        default=2_000,
        help="first open-book orders triaged one by one for the per-order baseline",
    )
    args = parser.parse_args(argv)
    results = []
    for backend in args.backends:
        for size in args.sizes:
            r = _launch(backend, size, args.sample, args.baseline_orders)
            results.append(r)
            print(
                f"{backend} {r['lines']:,} lines: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                f"batch {r['batch_rate']:,.0f} orders/s, per-order {r['per_order_rate']:,.0f} orders/s, "
                f"short p50 {r['short_p50_ms']:.1f} ms, what-if p50 {r['whatif_p50_ms']:.1f} ms "
                f"(seeded in {r['seed_s']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\nPython {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"seed {SEED}, as_of {AS_OF}, sample {args.sample} (seed {SAMPLE_SEED}), "
        f"per-order baseline on the first {args.baseline_orders:,} open orders\n"
    )
    print(
        "| backend | order lines | orders | open orders | single p50 ms | single p95 ms | p50 vs 10k "
        "| --all-open batch orders/s | per-order orders/s | batch vs per-order | batch rate vs 10k |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base = next(b for b in results if b["backend"] == r["backend"])  # the smallest size run first
        print(
            f"| {r['backend']} | {r['lines']:,} | {r['orders']:,} | {r['open']:,} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {r['p50_ms'] / base['p50_ms']:.2f}× | {r['batch_rate']:,.0f} | "
            f"{r['per_order_rate']:,.0f} | {r['batch_rate'] / r['per_order_rate']:.1f}× | "
            f"{r['batch_rate'] / base['batch_rate']:.2f}× |"
        )
    print(
        "\n| backend | order lines | short orders sampled | short p50 ms | open orders with ALLOCATION_CONFLICT "
        "| what-if sampled | what-if p50 ms | what-if p95 ms | what-if p50 vs triage p50 | other orders checked (p50) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        conflicts = "—" if r["conflicts"] is None else f"{r['conflicts']:,}"
        print(
            f"| {r['backend']} | {r['lines']:,} | {r['short_sample']} | {r['short_p50_ms']:.1f} | {conflicts} | "
            f"{r['whatif_sample']} | {r['whatif_p50_ms']:.1f} | {r['whatif_p95_ms']:.1f} | "
            f"{r['whatif_p50_ms'] / r['p50_ms']:.1f}× | {r['whatif_reach_p50']} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
