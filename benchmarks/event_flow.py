"""Events to the work queue: latency at a sustained rate, and re-triage per event against book size.

For each book size (orders of the demo generator; about 3.3 lines an order) a scratch database is
seeded and its open book triaged, then ``--events`` simulated events (tools.events.simulate) are
stored at ``--rate`` a second while one worker (agent.flow.BackgroundWorker, as in `copilot serve`)
applies them. Latency = applied_at − received_at of each event: once applied, its exceptions are
committed and the queue shows them. Re-triage cost = the worker's time per event and per order it
triaged; the ratio largest/smallest book is printed (flat ≈ 1). With ``--workers 2`` on PostgreSQL
the throughput of two workers draining the same stored batch is compared with one.

    python benchmarks/event_flow.py --backend sqlite --orders 2000 20000 --events 300 --rate 100
    python benchmarks/event_flow.py --backend postgres --orders 5000 --events 300 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from agent.flow import BackgroundWorker, apply_next
from agent.policy import load_policy
from agent.triage.service import triage_open_book
from benchmarks._harness import scratch_database
from tools.db import make_engine, session_factory, upgrade
from tools.demo import generate
from tools.events import parse_event, receive
from tools.events.simulate import Simulator
from tools.models import EventInbox, OrderLine


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _book(url: str, orders: int):
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, orders=orders, seed=7, as_of=dt.date(2026, 11, 20), progress=False)
    factory, policy = session_factory(engine), load_policy()
    with factory() as s:
        for _ in triage_open_book(s, policy):
            pass
        s.commit()
        lines = s.scalar(select(func.count()).select_from(OrderLine))
    return engine, factory, policy, lines


def paced(url: str, orders: int, events: int, rate: float) -> dict:
    engine, factory, policy, lines = _book(url, orders)
    with factory() as s:
        sim = Simulator(s, seed=3, prefix="bench")
    worker = BackgroundWorker(factory, policy, poll_s=0.05)
    worker.start()
    started = time.monotonic()
    for n in range(events):
        event = parse_event(sim.event(dt.datetime.now(dt.UTC)))
        with factory() as s:
            receive(s, [event], channel="simulate")
            s.commit()
        worker.wake()
        delay = started + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the feed at the rate, not synchronising anything
    worker.wake()
    worker.wait_idle(600)
    worker.stop()
    with factory() as s:
        rows = s.execute(
            select(EventInbox.received_at, EventInbox.applied_at, EventInbox.orders_retriaged)
        ).all()
    lat = [(a - r).total_seconds() * 1000 for r, a, _ in rows if a is not None]
    engine.dispose()
    return {
        "orders": orders,
        "lines": lines,
        "events": len(rows),
        "rate_offered": rate,
        "p50_ms": round(_pct(lat, 0.5), 1),
        "p95_ms": round(_pct(lat, 0.95), 1),
        "orders_triaged_per_event": round(statistics.mean(o for *_, o in rows), 2),
    }


def drained(url: str, orders: int, events: int, workers: int) -> dict:
    engine, factory, policy, lines = _book(url, orders)
    with factory() as s:
        sim = Simulator(s, seed=3, prefix="bench")
        receive(s, [parse_event(e) for e in sim.stream(events)], channel="simulate")
        s.commit()
    done = [0] * workers

    def work(i: int) -> None:
        while True:
            try:
                out = apply_next(factory, policy)
            except OperationalError:
                continue
            if out is None:
                return
            done[i] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "orders": orders,
        "lines": lines,
        "workers": workers,
        "events": sum(done),
        "events_per_s": round(sum(done) / seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--orders", type=int, nargs="+", default=[2_000, 20_000])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=0, help="compare 1 and this many workers draining a batch")
    args = ap.parse_args()
    results = []
    for orders in args.orders:
        with scratch_database(args.backend, "events") as url:
            results.append(paced(url, orders, args.events, args.rate))
        print(json.dumps(results[-1]), flush=True)
    out: dict = {"backend": args.backend, "paced": results}
    if len(results) > 1:
        out["p50_ratio_largest_vs_smallest"] = round(results[-1]["p50_ms"] / results[0]["p50_ms"], 2)
    if args.workers > 1:
        runs = []
        for n in (1, args.workers):
            with scratch_database(args.backend, "events") as url:
                runs.append(drained(url, args.orders[0], args.events, n))
            print(json.dumps(runs[-1]), flush=True)
        out["drain"] = runs
        out["throughput_ratio"] = round(runs[1]["events_per_s"] / runs[0]["events_per_s"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
