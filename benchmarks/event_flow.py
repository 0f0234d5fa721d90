"""Events to the work queue: latency at a sustained rate, re-triage per event against book size,
and the throughput of one and two workers.

For each book size (orders of the demo generator; about 3.5 lines an order: 2,860 orders ≈ 10k
lines, 286,000 ≈ 1M) a scratch database is seeded and its open book triaged, then:

- **paced**: ``--events`` simulated events (tools.events.simulate) are stored one by one at
  ``--rate`` a second while one worker (agent.flow.BackgroundWorker, as in `copilot serve`) applies
  them. Latency = applied_at − received_at of each event: applied_at is stamped in the transaction
  that records its exceptions, so once it commits the queue shows them. The feed's achieved rate
  and the worker's rates are printed: events / time from the first store to the last apply
  (``rate_applied``: the last events' wait counts against it), and the events applied while the
  feed ran / its duration (``rate_applied_during_feed``) with those still waiting when it
  stopped; and the p50 latency of each third of the feed (flat when the rate is sustained,
  growing when the worker falls behind). The feed is its own process (on SQLite it shares the
  writer with the worker).
- **paced, N worker processes** (``--paced-workers N``, PostgreSQL): the same feed, applied by N
  worker processes sharing the inbox (as ``copilot worker`` runs several), each claiming another
  source's events; their CPU and their server processes' CPU per event are printed.
- **paced, fewer carrier status changes** (``--carrier-share W``): the same feed with carrier
  status changes at weight W instead of 3 in the default mix of 100 (a carrier whose disruption
  flips re-triages every open order it carries: thousands at 1M lines; a TMS declares one a few
  times a day, the default mix three times a second at 100 events/s), run after the phases above
  on the book they left. ``--carrier-weight W`` sets that weight for every phase's events
  instead (the first paced phase on the freshly triaged book included): ``0.1`` is one carrier
  status change in about 1,000 events, one every ~10 s at 100 events/s.
- **per event**: ``--single`` events stored at once and applied one per transaction (the worker's
  cost when it keeps up): ms per event and per order it triaged; the largest/smallest book ratio
  is printed (flat ≈ 1). Each event's kind (table.fields), the orders it made triage again and its
  wall ms (claim to commit) are recorded, and two tables go to stderr: median ms per event by
  reach bucket (0, 1, 2-5, 6-20, 21-100, 101-1000, >1000 orders) per book size with the largest /
  smallest book ratio at equal reach, and per event kind the share, median / max orders and
  median ms — whether time is flat at equal reach, and whether reach grows with the book.
- **drain** (``--workers N``): a stored batch of ``--events`` drained by 1 worker, then (N > 1)
  another by N workers (threads, each its own connections), on the same book: events/s, the ratio,
  and events per CPU-second of the workers' process (what a free core would give: the machine
  these runs share is often loaded several times over).

    python benchmarks/event_flow.py --backend sqlite --orders 2860 286000 --events 3000 --rate 100 --workers 1
    python benchmarks/event_flow.py --backend postgres --orders 2860 286000 --events 3000 --rate 100 --workers 2
    python benchmarks/event_flow.py --backend postgres --orders 286000 --events 3000 --single 0 --workers 2 --paced-workers 2 --carrier-share 0.1
    nice -n 15 python benchmarks/event_flow.py --backend sqlite --orders 2860 28600 286000 --events 0 --single 300

``--recurrence neighbours`` takes away the ``exceptions.recorded`` mark once the book is triaged, so
the worker counts recurrence by loading each order's neighbours (the path before issue 17's
recorded counts; ``agent.triage.retriage``): the same events, for a before/after on one commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from agent.flow import BackgroundWorker, Batches, drain
from agent.policy import load_policy
from agent.triage.service import triage_open_book
from benchmarks._harness import scratch_database
from tools.dataset import forget_exceptions_recorded
from tools.db import make_engine, session_factory, upgrade
from tools.demo import generate
from tools.events import parse_event, receive
from tools.events.simulate import Simulator
from tools.fixtures import MODELS
from tools.models import EventInbox, OrderLine


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_BACKENDS: set[int] = set()  # PostgreSQL server processes serving this process's connections


def _track_backends(engine) -> None:
    """Remember the server process of every connection the engine opens (PostgreSQL): the drain
    counts their CPU beside the workers' own, when the server runs on this machine."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _pid(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            _BACKENDS.add(cur.fetchone()[0])


def _backend_cpu() -> float | None:
    """CPU seconds used so far by the tracked server processes; None when /proc cannot tell (a
    server on another machine)."""
    if not _BACKENDS:  # SQLite: no server process
        return None
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in _BACKENDS:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(stat[11]) + int(stat[12])) / tick  # utime + stime
    return total


def _book(url: str, orders: int, recorded: bool = True):
    engine = make_engine(url)
    _track_backends(engine)
    upgrade(engine)
    generate(engine, orders=orders, seed=7, as_of=dt.date(2026, 11, 20), progress=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))  # planner statistics after the bulk load
            conn.commit()
    factory, policy = session_factory(engine), load_policy()
    with factory() as s:
        for _ in triage_open_book(s, policy):
            pass
        if not recorded:
            forget_exceptions_recorded(s)
        s.commit()
        lines = s.scalar(select(func.count()).select_from(OrderLine))
    return engine, factory, policy, lines


def _feed(url: str, events: int, rate: float, prefix: str, weights: dict | None = None) -> None:
    """The source systems: store ``events`` simulated events one by one at ``rate`` a second (its own
    process, as a real feed is: it does not share the worker's interpreter)."""
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as s:
        sim = Simulator(s, seed=3, prefix=prefix, weights=weights)
    started = time.monotonic()
    for n in range(events):
        event = parse_event(sim.event(dt.datetime.now(dt.UTC)))
        with factory() as s:
            receive(s, [event], channel="simulate")
            s.commit()
        delay = started + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the feed at the rate, not synchronising anything
    engine.dispose()


def paced(
    url: str, factory, policy, events: int, rate: float, prefix: str, weights: dict | None = None
) -> dict:
    worker = BackgroundWorker(factory, policy, poll_s=0.02)  # polls: the feed is another process
    worker.start()
    feeder = multiprocessing.get_context("spawn").Process(
        target=_feed, args=(url, events, rate, prefix, weights)
    )
    feeder.start()
    feeder.join()
    worker.wake()
    worker.wait_idle(1800)
    worker.stop()
    if feeder.exitcode:
        raise SystemExit(f"the feed failed (exit {feeder.exitcode})")
    return _latencies(factory, prefix, rate)


def _latencies(factory, prefix: str, rate: float) -> dict:
    """Latency (applied_at - received_at) and rates of the events stored under ``prefix``."""
    with factory() as s:
        rows = s.execute(
            select(EventInbox.received_at, EventInbox.applied_at, EventInbox.orders_retriaged).where(
                EventInbox.event_id.like(f"{prefix}-%")
            )
        ).all()
    lat = [(a - r).total_seconds() * 1000 for r, a, _ in rows if a is not None]
    first = min(r for r, _, _ in rows)
    fed = max(r for r, _, _ in rows)  # the feed's last event
    last = max(a for _, a, _ in rows if a is not None)
    by_arrival = sorted((r, (a - r).total_seconds() * 1000) for r, a, _ in rows if a is not None)
    third = max(1, len(by_arrival) // 3)
    thirds = [by_arrival[:third], by_arrival[third : 2 * third], by_arrival[2 * third :]]
    during = sum(1 for _, a, _ in rows if a is not None and a <= fed)
    return {
        "events": len(rows),
        "applied": len(lat),
        "rate_offered": rate,
        "rate_fed": round((len(rows) - 1) / (fed - first).total_seconds(), 1),
        # first event stored -> last applied: the last events' queueing counts against it
        "rate_applied": round(len(lat) / (last - first).total_seconds(), 1),
        # applied while the feed ran (first to last event stored), and how many were still waiting
        # when it stopped: a worker that keeps up applies what is fed and leaves one batch waiting
        "rate_applied_during_feed": round(during / (fed - first).total_seconds(), 1),
        "waiting_at_feed_end": len(rows) - during,
        "p50_ms": round(_pct(lat, 0.5), 1),
        "p95_ms": round(_pct(lat, 0.95), 1),
        "max_ms": round(max(lat), 1),
        # p50 latency of the events stored in each third of the feed: flat when the rate is
        # sustained, growing when the worker falls behind
        "p50_ms_by_third": [round(_pct([ms for _, ms in part], 0.5), 1) for part in thirds if part],
        "orders_triaged_per_event": round(statistics.mean(o for *_, o in rows), 2),
    }


def _work(url: str, stop, progress, cpu, wake) -> None:
    """One worker process (as `copilot worker` runs beside others on PostgreSQL): apply batches
    until ``stop`` is set; after each, add the events it applied to ``progress`` and wake the
    waiter; at the end put this process's CPU seconds in ``cpu``."""
    engine = make_engine(url)
    _track_backends(engine)
    factory, policy = session_factory(engine), load_policy()
    started, server = time.process_time(), _backend_cpu() or 0.0
    batches = Batches(factory, policy)
    while not stop.is_set():
        try:
            done = batches.next()
        except OperationalError:
            continue  # a deadlock on rows or a lock timeout between the workers: rolled back, try again
        if done is None:
            continue  # another worker held orders it reached: the next try waits for them first
        if done:
            with progress.get_lock():
                progress.value += len(done)
            with wake:
                wake.notify_all()
        else:
            stop.wait(0.02)  # the inbox is empty: poll again, as the worker loop does
    cpu.put((time.process_time() - started, (_backend_cpu() or 0.0) - server))
    engine.dispose()


def paced_processes(
    url: str, factory, events: int, rate: float, prefix: str, workers: int, weights: dict | None = None
) -> dict:
    """:func:`paced` with ``workers`` worker processes sharing the inbox (PostgreSQL: each claims
    another source's events, ``FOR UPDATE SKIP LOCKED``) instead of the thread in `copilot serve`."""
    ctx = multiprocessing.get_context("spawn")
    stop, progress, cpu = ctx.Event(), ctx.Value("i", 0), ctx.Queue()
    wake = ctx.Condition()
    procs = [ctx.Process(target=_work, args=(url, stop, progress, cpu, wake)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    feeder = ctx.Process(target=_feed, args=(url, events, rate, prefix, weights))
    feeder.start()
    feeder.join()
    with wake:
        wake.wait_for(lambda: progress.value >= events, timeout=1800)
    stop.set()
    used = [cpu.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join()
    if feeder.exitcode:
        raise SystemExit(f"the feed failed (exit {feeder.exitcode})")
    out = _latencies(factory, prefix, rate)
    worker_cpu, server_cpu = sum(c for c, _ in used), sum(s for _, s in used)
    return {
        "workers": workers,
        **out,
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / max(out["applied"], 1), 2),
        "server_cpu_ms_per_event": round(server_cpu * 1000 / max(out["applied"], 1), 2),
    }


def _store(factory, events: int, prefix: str, weights: dict | None = None) -> list[dict]:
    with factory() as s:
        sim = Simulator(s, seed=5, prefix=prefix, weights=weights)
        raws = list(sim.stream(events))
        receive(s, [parse_event(e) for e in raws], channel="simulate")
        s.commit()
    return raws


# Reach buckets: the orders one event made triage again (docs/benchmarks.md, issue 17 "flat from
# 10k to 1M order lines" compared at equal reach).
BUCKETS = (
    (0, 0, "0"),
    (1, 1, "1"),
    (2, 5, "2-5"),
    (6, 20, "6-20"),
    (21, 100, "21-100"),
    (101, 1000, "101-1000"),
)


def bucket(orders: int) -> str:
    return next((name for lo, hi, name in BUCKETS if lo <= orders <= hi), ">1000")


BUCKET_NAMES = [name for *_, name in BUCKETS] + [">1000"]


def kind(raw: dict) -> str:
    """What an event changes, as table.fields (its key columns left out); a new order (one given
    with its lines) as ``orders+lines (new)``."""
    out = set()
    for table, rows in raw["records"].items():
        pk = {c.name for c in MODELS[table].__table__.primary_key.columns}
        for row in rows:
            new = table == "orders" and "lines" in row
            out.add("orders+lines (new)" if new else f"{table}.{'+'.join(sorted(set(row) - pk))}")
    return ", ".join(sorted(out))


def per_event(factory, policy, events: int, prefix: str, weights: dict | None = None) -> dict:
    """Each event in its own transaction (a worker that keeps up): the cost of one event's re-triage,
    and per event its kind, the orders it made triage again and its wall ms (claim to commit)."""
    raws = {f"{e['source']}/{e['event_id']}": e for e in _store(factory, events, prefix, weights)}
    timed: list[tuple[str, int, float, float]] = []
    last = [time.perf_counter(), time.process_time()]

    def clock(one) -> None:
        now = [time.perf_counter(), time.process_time()]
        wall, cpu = ((a - b) * 1000 for a, b in zip(now, last, strict=True))
        timed.append((kind(raws[one.label]), one.orders, wall, cpu))
        last[:] = now

    started, cpu = time.perf_counter(), time.process_time()
    done = drain(factory, policy, batch=1, on_event=clock)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    orders = sum(o.orders for o in done)
    by_bucket: dict[str, list[tuple[int, float, float]]] = {}
    by_kind: dict[str, list[tuple[int, float, float]]] = {}
    for k, n, wall, cpu_ms in timed:
        by_bucket.setdefault(bucket(n), []).append((n, wall, cpu_ms))
        by_kind.setdefault(k, []).append((n, wall, cpu_ms))

    def summary(group: list[tuple[int, float, float]]) -> dict:
        reach, ms, cpu_ms = [n for n, _, _ in group], [m for _, m, _ in group], [c for *_, c in group]
        return {
            "events": len(group),
            "share": round(len(group) / len(timed), 3),
            "median_orders": statistics.median(reach),
            "max_orders": max(reach),
            "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(_pct(ms, 0.95), 1),
            "ms_per_order": round(sum(ms) / max(sum(reach), 1), 2),
            # this process's CPU (all of the work on SQLite): what a free core gives, load aside
            "median_cpu_ms": round(statistics.median(cpu_ms), 1),
            "cpu_ms_per_order": round(sum(cpu_ms) / max(sum(reach), 1), 2),
        }

    return {
        "events": len(done),
        "ms_per_event": round(seconds * 1000 / len(done), 2),
        "cpu_ms_per_event": round(cpu * 1000 / len(done), 2),  # this process: all of it on SQLite
        "orders_per_event": round(orders / len(done), 2),
        "median_orders_per_event": statistics.median(n for _, n, *_ in timed),
        "ms_per_order": round(seconds * 1000 / max(orders, 1), 2),
        "by_reach": {b: summary(by_bucket[b]) for b in BUCKET_NAMES if b in by_bucket},
        "by_kind": {k: summary(v) for k, v in sorted(by_kind.items())},
    }


def reach_table(results: list[dict]) -> str:
    """Median ms per event by reach bucket, per book size, and the largest/smallest book ratio."""
    sizes = [r for r in results if "per_event" in r]
    head = ["orders re-triaged"] + [
        f"{r['lines']:,} lines: share, median wall / CPU ms, CPU ms per order" for r in sizes
    ]
    last = "largest / smallest book: wall, CPU, CPU per order"
    rows = ["| " + " | ".join([*head, last]) + " |", "|" + "---|" * (len(head) + 1)]
    for b in BUCKET_NAMES:
        cells, got = [], [r["per_event"]["by_reach"].get(b) for r in sizes]
        for g in got:
            cells.append(
                f"{g['share']:.0%}, {g['median_ms']} / {g['median_cpu_ms']}, {g['cpu_ms_per_order']}"
                if g
                else "—"
            )
        if all(g is None for g in got):
            continue
        first, end = got[0], got[-1]
        ratio = "—"
        if len(got) > 1 and first and end and first["median_ms"] and first["median_cpu_ms"]:
            per_order = f"{end['cpu_ms_per_order'] / first['cpu_ms_per_order']:.2f}" if b != "0" else "—"
            ratio = (
                f"{end['median_ms'] / first['median_ms']:.2f}, "
                f"{end['median_cpu_ms'] / first['median_cpu_ms']:.2f}, {per_order}"
            )
        rows.append("| " + " | ".join([b, *cells, ratio]) + " |")
    per_order = [f"{r['per_event']['ms_per_order']}" for r in sizes]
    rows.append(
        "| ms per order re-triaged (all events) | "
        + " | ".join(per_order)
        + " | "
        + (f"{float(per_order[-1]) / float(per_order[0]):.2f}" if len(sizes) > 1 else "—")
        + " |"
    )
    return "\n".join(rows)


def kind_table(results: list[dict]) -> str:
    """Per event kind and book size: median orders re-triaged and median wall / CPU ms per event."""
    sizes = [r for r in results if "per_event" in r]
    kinds = sorted({k for r in sizes for k in r["per_event"]["by_kind"]})
    head = [
        "event kind",
        *(f"{r['lines']:,} lines: share, median / max orders, median wall / CPU ms" for r in sizes),
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in kinds:
        cells = []
        for r in sizes:
            got = r["per_event"]["by_kind"].get(k)
            cells.append(
                f"{got['share']:.0%}, {got['median_orders']:g} / {got['max_orders']}, "
                f"{got['median_ms']} / {got['median_cpu_ms']}"
                if got
                else "—"
            )
        rows.append("| " + " | ".join([k, *cells]) + " |")
    return "\n".join(rows)


def drained(factory, policy, events: int, workers: int, prefix: str, weights: dict | None = None) -> dict:
    _store(factory, events, prefix, weights)
    done = [0] * workers

    def work(i: int) -> None:
        batches = Batches(factory, policy)
        while True:
            try:
                out = batches.next()
            except OperationalError:
                continue  # a deadlock or lock timeout between the workers: rolled back, try again
            if out is None:
                continue  # another worker held orders it reached: the next try waits for them first
            if not out:
                return
            done[i] += len(out)

    server = _backend_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = _backend_cpu()  # a connection opened by the drain counts from its start
    server_s = None if server is None or after is None else after - server
    return {
        "workers": workers,
        "events": sum(done),
        "events_per_s": round(sum(done) / seconds, 1),
        # the workers' own CPU (on PostgreSQL the server's is not in it): the rate one free core gives
        "events_per_cpu_s": round(sum(done) / cpu, 1),
        # PostgreSQL: the server processes of the workers' connections too (worker + server CPU)
        **(
            {
                "server_cpu_s": round(server_s, 1),
                "events_per_cpu_s_with_server": round(sum(done) / (cpu + server_s), 1),
            }
            if server_s is not None
            else {}
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--orders", type=int, nargs="+", default=[2_860, 286_000])
    ap.add_argument("--events", type=int, default=3_000, help="paced (and drained) events; 0: none")
    ap.add_argument("--single", type=int, default=300, help="events applied one per transaction; 0: none")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="drain a stored batch with 1 worker, and with this many when more than 1",
    )
    ap.add_argument(
        "--paced-workers",
        type=int,
        nargs="*",
        default=[],
        help="also run the paced feed with this many worker processes (PostgreSQL), after the one thread",
    )
    ap.add_argument(
        "--carrier-weight",
        type=float,
        default=None,
        help="carrier status changes at this weight in every phase's events (default: the simulator's "
        "mix, 3 in 100; 0.1 is one in about 1,000)",
    )
    ap.add_argument(
        "--carrier-share",
        type=float,
        nargs="*",
        default=[],
        help="also run the paced feed with carrier status changes at this weight (the default mix: 3 in 100)",
    )
    ap.add_argument(
        "--recurrence",
        choices=["recorded", "neighbours"],
        default="recorded",
        help="how the worker counts recurrence: from the recorded exceptions, or by loading neighbours",
    )
    args = ap.parse_args()
    if args.carrier_weight is not None and not 0 <= args.carrier_weight < float("inf"):
        ap.error(f"--carrier-weight is a finite number, 0 or more: {args.carrier_weight}")
    mix = None if args.carrier_weight is None else {"carrier": args.carrier_weight}
    results = []
    for orders in args.orders:
        with scratch_database(args.backend, "events") as url:
            t = time.perf_counter()
            engine, factory, policy, lines = _book(url, orders, args.recurrence == "recorded")
            row: dict = {"orders": orders, "lines": lines, "seed_s": round(time.perf_counter() - t, 1)}
            if args.single:
                row["per_event"] = per_event(factory, policy, args.single, "single", mix)
            if args.events:
                row["paced"] = paced(url, factory, policy, args.events, args.rate, "paced", mix)
                for share in args.carrier_share:
                    row[f"paced_carrier_{share:g}"] = paced(
                        url,
                        factory,
                        policy,
                        args.events,
                        args.rate,
                        f"pacedc{round(share * 1000)}",
                        {"carrier": share},
                    )
                for n in sorted({w for w in args.paced_workers if w > 1}):
                    row[f"paced_{n}_workers"] = paced_processes(
                        url, factory, args.events, args.rate, f"paced{n}", n, mix
                    )
            if args.workers:
                counts = sorted({1, args.workers})
                runs = [drained(factory, policy, args.events, n, f"drain{n}", mix) for n in counts]
                row["drain"] = runs
                if len(runs) > 1:
                    row["throughput_ratio"] = round(runs[1]["events_per_s"] / runs[0]["events_per_s"], 2)
            engine.dispose()
        results.append(row)
        print(json.dumps(row), flush=True)
    out: dict = {
        "backend": args.backend,
        "recurrence": args.recurrence,
        "carrier_weight": args.carrier_weight,  # None: the simulator's mix
        "sizes": results,
    }
    if len(results) > 1 and args.single:
        small, large = results[0]["per_event"], results[-1]["per_event"]
        out["per_event_ms_ratio_largest_vs_smallest"] = round(
            large["ms_per_event"] / small["ms_per_event"], 2
        )
        out["per_order_ms_ratio_largest_vs_smallest"] = round(
            large["ms_per_order"] / small["ms_per_order"], 2
        )
    if args.single:
        print(reach_table(results), kind_table(results), sep="\n\n", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
