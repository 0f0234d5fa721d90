"""Load on the HTTP API over loopback: N concurrent clients for a fixed duration.

Seeds a scratch SQLite database with the demo generator, starts ``copilot serve``'s app (API and
panel, one uvicorn process) in a subprocess on a free port, then runs closed-loop clients (each
sends its next request when the last one answered) against two workloads:

- ``triage``: ``POST /api/v1/triage`` with one random open order (detection, ranking, recording);
- ``list``: ``GET /api/v1/exceptions`` pages (random offset) and ``GET /api/v1/requests``.

It reports throughput, p50/p95/max latency and errors per workload, for 1 client and for N
clients in the same run (the ratio is the concurrency gain). Target: 0 errors.

    .venv/bin/python benchmarks/api_load.py --clients 50 --seconds 20 --orders 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-0123456789abcdef"

SERVER = """
import uvicorn
from ui.server import create_app
uvicorn.run(create_app(warm_up=True), host="127.0.0.1", port={port}, log_level="warning", timeout_keep_alive=30)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(folder: Path, orders: int) -> tuple[dict[str, str], list[str]]:
    import datetime as dt

    from tools.dataset import open_order_ids
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate
    from tools.models import User

    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, orders=orders, seed=7, progress=False)
    with session_factory(engine)() as session:
        if session.get(User, "planner") is None:
            session.add(
                User(username="planner", role="planner", active=True, created_at=dt.datetime.now(dt.UTC))
            )
            session.commit()
        ids = open_order_ids(session)
    engine.dispose()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "COPILOT_VAR_DIR": str(folder / "var"),
        "LLM_PROVIDER": "fake",
        "COPILOT_API_TOKENS": f"{TOKEN}=planner",
        "COPILOT_LOG_LEVEL": "WARNING",
        "OPENBLAS_NUM_THREADS": "1",
    }
    return env, ids


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def _run(base: str, workload: str, clients: int, seconds: float, ids: list[str]) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(client: httpx.AsyncClient, rng: random.Random) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                if workload == "triage":
                    resp = await client.post("/api/v1/triage", json={"order_ids": [rng.choice(ids)]})
                elif rng.random() < 0.5:
                    resp = await client.get(
                        "/api/v1/exceptions", params={"limit": 50, "offset": rng.randrange(0, 500)}
                    )
                else:
                    resp = await client.get("/api/v1/requests", params={"limit": 50})
                if resp.status_code >= 400:
                    errors[str(resp.status_code)] = errors.get(str(resp.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, random.Random(i)) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "workload": workload,
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(elapsed, 1),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(latencies, 50) * 1000, 1),
        "p95_ms": round(_pct(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies, default=0) * 1000, 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--orders", type=int, default=2_000)
    args = parser.parse_args(argv)
    import httpx

    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        env, ids = _prepare(Path(tmp), args.orders)
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.perf_counter() - t0 > 120:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            # one request of each kind first: the measured runs start from a warm server
            headers = {"Authorization": f"Bearer {TOKEN}"}
            for warm in (
                httpx.post(
                    f"{base}/api/v1/triage", json={"order_ids": ids[:1]}, headers=headers, timeout=300
                ),
                httpx.get(f"{base}/api/v1/exceptions", headers=headers, timeout=300),
                httpx.get(f"{base}/api/v1/requests", headers=headers, timeout=300),
            ):
                warm.raise_for_status()
            rows = []
            for workload in ("triage", "list"):
                for clients in (1, args.clients):
                    rows.append(asyncio.run(_run(base, workload, clients, args.seconds, ids)))
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"\n{len(ids):,} open orders of {args.orders:,}; {args.seconds:g} s per run, closed-loop clients\n")
    print("| workload | clients | requests | req/s | p50 ms | p95 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workload']} | {r['clients']} | {r['requests']:,} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['max_ms']} | {r['errors']} |"
        )
    for workload in ("triage", "list"):
        one, many = (r for r in rows if r["workload"] == workload)
        if one["rps"] and one["p95_ms"]:
            print(
                f"{workload}: {many['clients']} clients give {many['rps'] / one['rps']:.2f}x the throughput of 1 "
                f"(p95 {many['p95_ms'] / one['p95_ms']:.1f}x)"
            )
    print(json.dumps({"runs": rows}))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
