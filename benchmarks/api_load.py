"""Load on the HTTP API over loopback: 1 vs N API processes, N concurrent clients, three workloads.

Seeds a scratch database with the demo generator (PostgreSQL: a fresh schema on the server of
``--database-url``, dropped afterwards; or ``--database-url sqlite``), triages the open book, then
for each process count starts ``copilot serve --workers P`` on a free port and runs closed-loop
clients (each sends its next request when the last one answered) for ``--seconds`` per workload:

- ``triage``: ``POST /api/v1/triage`` with one random open order (detection, ranking, recording);
- ``list``: ``GET /api/v1/exceptions`` pages (random offset) and ``GET /api/v1/requests``;
- ``approval``: file the recommendation of an order with an exception (``POST /api/v1/requests``
  as csr) and, when it waits for a person, approve it as its approver role (guard, decision,
  execution, audit) — each order used once.

It prints throughput, p50/p95/max latency and errors per workload and process count, and the
throughput ratio of P processes to 1 measured in the same run. Target: 0 errors (a 5xx, a refused
connection, or an unexpected 4xx).

    .venv/bin/python benchmarks/api_load.py --clients 100 --seconds 15 --processes 1,2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from agent.policy import CONTRACT_ROLES  # noqa: E402

ROLES = tuple(r for r in CONTRACT_ROLES if r != "admin")  # admin decides nothing
TOKENS = {role: f"bench-{role}-0123456789abcdef" for role in ROLES}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(url: str, folder: Path, orders: int) -> tuple[dict[str, str], list[str], list[str]]:
    from agent.policy import load_policy
    from agent.triage import triage_open_book
    from tools.dataset import open_order_ids
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate

    engine = make_engine(url)
    upgrade(engine)
    generate(engine, orders=orders, seed=7, progress=False)
    with session_factory(engine)() as session:
        ids = open_order_ids(session)
        flagged = sorted(
            {r["order_id"] for r in triage_open_book(session, load_policy(None)) if r["exceptions"]}
        )
        session.commit()
    engine.dispose()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "COPILOT_VAR_DIR": str(folder / "var"),
        "LLM_PROVIDER": "fake",
        "COPILOT_API_TOKENS": ",".join(f"{t}={u}" for u, t in TOKENS.items()),
        "COPILOT_API_RATE_PER_MINUTE": "10000000",
        "COPILOT_API_MODEL_RATE_PER_MINUTE": "10000000",
        "COPILOT_LOG_LEVEL": "WARNING",
        "COPILOT_EVENT_WORKER": "off",
        "OPENBLAS_NUM_THREADS": "1",
    }
    return env, ids, flagged


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def _run(
    base: str, workload: str, clients: int, seconds: float, ids: list[str], flagged: list[str]
) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    as_ = {role: {"Authorization": f"Bearer {token}"} for role, token in TOKENS.items()}
    todo = list(flagged)
    random.Random(1).shuffle(todo)

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def approval(client: httpx.AsyncClient) -> None:
        filed = await client.post("/api/v1/requests", json={"order_id": todo.pop()}, headers=as_["csr"])
        if filed.status_code == 409 and "no recommendation" in filed.text:
            outcomes["nothing to request"] = outcomes.get("nothing to request", 0) + 1
            return
        if filed.status_code != 201:
            error(f"file {filed.status_code}: {filed.json().get('message', '')[:80]}")
            return
        body = filed.json()
        if body["status"] != "pending_approval":
            outcomes[body["status"]] = outcomes.get(body["status"], 0) + 1
            return
        # nobody decides their own request: what csr may approve goes to a role above it
        approver = body["approver_role"] if body["approver_role"] != "csr" else "ops_manager"
        decided = await client.post(f"/api/v1/requests/{body['id']}/approve", json={}, headers=as_[approver])
        if decided.status_code == 422 and "edit the request with them" in decided.text:
            # FIX_MASTER_DATA: the approver must supply the corrected values (domain.md §3), as a person would
            outcomes["needs the approver's values"] = outcomes.get("needs the approver's values", 0) + 1
            return
        if decided.status_code != 200:
            error(f"approve {decided.status_code}: {decided.json().get('message', '')[:80]}")
            return
        status = decided.json()["status"]
        outcomes[status] = outcomes.get(status, 0) + 1

    async def one(client: httpx.AsyncClient, rng: random.Random) -> None:
        while time.perf_counter() < deadline:
            if workload == "approval" and not todo:
                outcomes["orders exhausted before the end"] = 1  # the run is shorter: seed more orders
                return
            started = time.perf_counter()
            try:
                if workload == "approval":
                    await approval(client)
                else:
                    if workload == "triage":
                        resp = await client.post(
                            "/api/v1/triage", json={"order_ids": [rng.choice(ids)]}, headers=as_["planner"]
                        )
                    elif rng.random() < 0.5:
                        resp = await client.get(
                            "/api/v1/exceptions",
                            params={"limit": 50, "offset": rng.randrange(0, 500)},
                            headers=as_["planner"],
                        )
                    else:
                        resp = await client.get(
                            "/api/v1/requests", params={"limit": 50}, headers=as_["planner"]
                        )
                    if resp.status_code >= 400:
                        error(str(resp.status_code))
            except httpx.HTTPError as exc:
                error(type(exc).__name__)
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
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
        "outcomes": outcomes,
    }


def _serve(env: dict[str, str], processes: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    args = [sys.executable, "-m", "ui.cli.app", "serve", "--port", str(port), "--workers", str(processes)]
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while True:  # every process must be up: one warm request per process is not enough, so ask often
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        if server.poll() is not None or time.perf_counter() - t0 > 300:
            raise SystemExit("the server did not start")
        time.sleep(0.2)
    return server, base


def _warm(base: str, ids: list[str], processes: int) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {TOKENS['planner']}"}
    for _ in range(4 * processes):  # new connections: the kernel spreads them over the processes
        httpx.post(
            f"{base}/api/v1/triage", json={"order_ids": ids[:1]}, headers=headers, timeout=300
        ).raise_for_status()
        httpx.get(f"{base}/api/v1/exceptions", headers=headers, timeout=300).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--processes", default="1,2", help="API process counts to compare, e.g. 1,2")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server (a scratch schema is made there), or 'sqlite' (one process only)",
    )
    args = parser.parse_args(argv)
    counts = [int(p) for p in args.processes.split(",")]
    from tools.db import scratch_schema

    rows = []
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp, contextlib.ExitStack() as stack:
        if args.database_url == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            if counts != [1]:
                raise SystemExit("SQLite serves one process: --processes 1")
        else:
            url = stack.enter_context(scratch_schema(args.database_url, "bench"))
        env, ids, flagged = _prepare(url, Path(tmp), args.orders)
        print(f"{len(ids):,} open orders of {args.orders:,}, {len(flagged):,} with exceptions", flush=True)
        for n, processes in enumerate(counts):
            mine = flagged[n :: len(counts)]  # each process count files requests on orders of its own
            server, base = _serve(env, processes)
            try:
                _warm(base, ids, processes)
                for workload in ("triage", "list", "approval"):
                    row = asyncio.run(_run(base, workload, args.clients, args.seconds, ids, mine))
                    row["processes"] = processes
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                server.terminate()
                server.wait(timeout=60)
            flagged = (
                flagged[len(flagged) // 2 :] if len(counts) > 1 else flagged
            )  # fresh orders for the next
    db = "SQLite" if args.database_url == "sqlite" else "PostgreSQL"
    print(f"\n{db}; {args.clients} closed-loop clients; {args.seconds:g} s per run\n")
    print("| processes | workload | requests | req/s | p50 ms | p95 ms | max ms | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['processes']} | {r['workload']} | {r['requests']:,} | {r['rps']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['max_ms']} | {r['errors']} |"
        )
    base_count = counts[0]
    for workload in ("triage", "list", "approval"):
        one = next(r for r in rows if r["workload"] == workload and r["processes"] == base_count)
        for r in rows:
            if r["workload"] == workload and r["processes"] != base_count and one["rps"]:
                print(
                    f"{workload}: {r['processes']} processes give {r['rps'] / one['rps']:.2f}x the throughput of "
                    f"{base_count} (p95 {r['p95_ms']:g} vs {one['p95_ms']:g} ms)"
                )
    print(json.dumps({"runs": rows}))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
