"""Seeding throughput: order lines per second and peak memory of ``tools.demo.generate``.

Seeds about 100k and 1M order lines with the bulk writers (SQLite: executemany on the raw DBAPI
connection; PostgreSQL: psycopg 3 COPY), and, as the baseline of the same run, 100k lines the
naive ORM way (``session.add_all`` of ORM objects, flushed per table of each chunk). Every run is
its own process, started by a fresh launcher process, so ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
of the launcher is that run's peak RSS alone. SQLite writes to a temporary file; PostgreSQL
(``TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to a fresh
schema the run creates and drops.

    .venv/bin/python benchmarks/seed_throughput.py                 # everything, Markdown table
    .venv/bin/python benchmarks/seed_throughput.py --backends sqlite --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

from _harness import ROOT, launch, scratch_database

AS_OF = "2026-03-02"
SEED = 7


def _run(backend: str, lines: int, method: str) -> dict:
    """Inside the worker process: seed one database, report what it took."""
    import datetime as dt

    from tools.db import make_engine, upgrade
    from tools.demo import generate
    from tools.demo.generator import MEAN_LINES

    orders = round(lines / MEAN_LINES)
    with scratch_database(backend, "seedbench") as url:
        engine = make_engine(url, variable="TEST_POSTGRES_URL")
        try:
            upgrade(engine)
            report = generate(
                engine,
                orders=orders,
                seed=SEED,
                as_of=dt.date.fromisoformat(AS_OF),
                progress=False,
                method=method,
            )
        finally:
            engine.dispose()
    return {
        "backend": backend,
        "method": method,
        "orders": orders,
        "lines": report.order_lines,
        "rows": sum(report.rows.values()),
        "seconds": report.elapsed,
    }


def _measure(args: list[str]) -> dict:
    """Inside the launcher: run one worker; its peak RSS is the only child this process has had."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "_run", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"run {args} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["wall"] = time.perf_counter() - started
    return result


def _launch(backend: str, lines: int, method: str) -> dict:
    return launch(__file__, "_measure", backend, str(lines), method)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[100_000, 1_000_000], help="order lines per run"
    )
    parser.add_argument("--baseline-lines", type=int, default=100_000, help="lines of the ORM baseline run")
    args = parser.parse_args(argv)
    results = []
    for backend in args.backends:
        baseline = _launch(backend, args.baseline_lines, "orm")
        results.append(baseline)
        base_rate = baseline["lines"] / baseline["seconds"]
        print(
            f"{backend} orm {baseline['lines']:,} lines: {base_rate:,.0f} lines/s, "
            f"{baseline['peak_mib']:.0f} MiB",
            file=sys.stderr,
        )
        for size in args.sizes:
            run = _launch(backend, size, "bulk")
            run["ratio"] = run["lines"] / run["seconds"] / base_rate
            results.append(run)
            print(
                f"{backend} bulk {run['lines']:,} lines: {run['lines'] / run['seconds']:,.0f} lines/s, "
                f"{run['peak_mib']:.0f} MiB",
                file=sys.stderr,
            )
    cpus = os.cpu_count()
    print(
        f"\nPython {platform.python_version()}, {platform.system()} {platform.machine()}, {cpus} CPUs, "
        f"seed {SEED}, as_of {AS_OF}\n"
    )
    print(
        "| backend | writer | orders | order lines | rows (all tables) | seconds | order lines/s | peak RSS MiB "
        "| vs ORM baseline |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        writer = (
            "ORM add_all (baseline)"
            if r["method"] == "orm"
            else ("executemany" if r["backend"] == "sqlite" else "COPY")
        )
        ratio = "1.0×" if r["method"] == "orm" else f"{r['ratio']:.1f}×"
        print(
            f"| {r['backend']} | {writer} | {r['orders']:,} | {r['lines']:,} | {r['rows']:,} | "
            f"{r['seconds']:.1f} | {r['lines'] / r['seconds']:,.0f} | {r['peak_mib']:.0f} | {ratio} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_run(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_measure":
        print(json.dumps(_measure(sys.argv[2:])))
    else:
        main()
