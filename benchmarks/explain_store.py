"""Stored explanations and pre-explaining with the local model: cold against stored, the queue's top
explained ahead of time, and what a background explanation costs a person who needs the model.

Seeds a scratch SQLite demo database (seed 7, as-of 2026-11-25), records the open book's exceptions
(the work queues), indexes the shipped SOPs (all-MiniLM-L6-v2) and loads the pinned model. Then:

- **cold vs stored**: ``explain_one`` (what chat, the CLI, the API and the panel call) of the first
  ``--orders`` orders of the queue, twice: the first time the model writes it (seconds to the
  first token and in all), the second time it is read from ``stored_explanations``;
- **pre-explaining**: the stored rows are dropped and one :class:`PreExplainer` round explains the
  orders of the queue's top ``--preexplain`` exceptions: seconds in all and per order;
- **preemption**: the rows are dropped again, a pre-explaining round runs on a thread, and once its
  background generation holds the model a foreground call (a one-token completion, as the readiness
  check makes) is timed, against the same call on an idle model.

Prints one JSON object; one line per figure on stderr.

    .venv/bin/python benchmarks/explain_store.py                              # 3 orders, top 10
    .venv/bin/python benchmarks/explain_store.py --orders 1 --preexplain 2 --var-dir /path/to/var
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from agent.settings import apply_offline_defaults

apply_offline_defaults()

AS_OF = "2026-11-25"
SEED = 7
PROBE = [{"role": "user", "content": "Reply with OK."}]


def _timed_explanation(ctx, result) -> dict:
    from agent.copilot.nodes import explain_one

    first: list[float] = []
    started = time.perf_counter()
    out = explain_one(
        ctx, result, on_token=lambda _p: first.append(time.perf_counter()) if not first else None
    )
    total = time.perf_counter() - started
    return {
        "order_id": result["order_id"],
        "first_token_s": round(first[0] - started, 3) if first else None,
        "total_s": round(total, 3),
        "stored": bool(out.get("stored")),
        "fallback": out["fallback"],
        "calls": out["usage"]["calls"],
    }


def _drop_stored(factory) -> None:
    from sqlalchemy import delete

    from tools.models import StoredExplanation

    with factory() as s:
        s.execute(delete(StoredExplanation))
        s.commit()


def _probe_s(llm) -> float:
    started = time.perf_counter()
    llm.complete(PROBE, max_tokens=1)
    return time.perf_counter() - started


def run(args) -> dict:
    from agent.copilot.context import CopilotContext
    from agent.copilot.nodes import plain
    from agent.copilot.preexplain import PreExplainer
    from agent.llm import LlamaCppLLM
    from agent.llm.local_model import MODELS, ensure_model
    from agent.policy import load_policy
    from agent.triage.service import triage_open_book, triage_order
    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection
    from tools.db import make_engine, read_only, session_factory, upgrade
    from tools.demo import generate
    from ui.api.preexplain import queue_orders

    path = Path(args.model_path) if args.model_path else ensure_model(Path(args.var_dir), MODELS[args.model])
    policy = load_policy()
    with tempfile.TemporaryDirectory(prefix="explain-store-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        generate(
            engine, orders=args.seed_orders, seed=SEED, as_of=dt.date.fromisoformat(AS_OF), progress=False
        )
        factory = session_factory(engine)
        with factory() as session:  # the work queues: the open book's exceptions recorded
            for _ in triage_open_book(session, policy):
                pass
            session.commit()
        collection = open_collection(MiniLMEmbeddingFunction(), var_dir=Path(tmp) / "var")
        ingest(collection, None, echo=lambda _: None)
        llm = LlamaCppLLM(path, n_threads=args.threads, timeout_s=args.timeout)
        started = time.perf_counter()
        llm.load()
        load_s = time.perf_counter() - started
        with read_only(factory) as session:
            top = queue_orders(session, policy, max(args.preexplain, args.orders))
        ctx = CopilotContext(factory=factory, policy=policy, llm=llm, collection=collection)

        cold, stored = [], []
        for order_id in top[: args.orders]:
            with read_only(factory) as session:
                result = plain(triage_order(session, order_id, policy, record=False))
            cold.append(_timed_explanation(ctx, result))
            stored.append(_timed_explanation(ctx, result))

        def preexplainer() -> PreExplainer:
            return PreExplainer(
                factory,
                policy,
                orders=lambda session, n: queue_orders(session, policy, n),
                llm=lambda: llm,
                collection=lambda: collection,
                limit=args.preexplain,
            )

        _drop_stored(factory)
        started = time.perf_counter()
        done = preexplainer().run_round()
        preexplain_s = time.perf_counter() - started

        idle_probe = statistics.median(_probe_s(llm) for _ in range(3))
        _drop_stored(factory)
        gate = llm._model()[1]
        background = threading.Thread(target=preexplainer().run_round)
        background.start()
        while not gate._lock.locked() and background.is_alive():  # a benchmark may poll
            time.sleep(0.01)
        time.sleep(args.preempt_after)  # well into the background explanation
        busy_probe = _probe_s(llm) if background.is_alive() else None
        background.join()
        engine.dispose()

    def p50(rows, key):
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "model": llm.name,
        "threads": llm.n_threads,
        "load_s": round(load_s, 2),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "cold_first_token_p50_s": p50(cold, "first_token_s"),
        "cold_total_p50_s": p50(cold, "total_s"),
        "stored_first_token_p50_s": p50(stored, "first_token_s"),
        "stored_total_p50_s": p50(stored, "total_s"),
        "stored_hits": f"{sum(r['stored'] for r in stored)}/{len(stored)}",
        # a fallback is never stored: its order is explained live again (and falls back again)
        "stored_hit_total_p50_s": p50([r for r in stored if r["stored"]], "total_s"),
        "preexplain_orders": done.orders,
        "preexplain_explained": done.explained,
        "preexplain_fallback": done.fallback,
        "preexplain_s": round(preexplain_s, 2),
        "preexplain_per_order_s": round(preexplain_s / done.orders, 2) if done.orders else None,
        "probe_idle_s": round(idle_probe, 3),
        "probe_while_preexplaining_s": round(busy_probe, 3) if busy_probe is not None else None,
        "cold": cold,
        "stored": stored,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    from agent.llm.local_model import DEFAULT_MODEL, MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--model-path", default="", help="any GGUF file instead of the pinned model")
    parser.add_argument("--orders", type=int, default=3, help="orders explained cold, then stored")
    parser.add_argument("--preexplain", type=int, default=10, help="COPILOT_PREEXPLAIN for the round")
    parser.add_argument("--preempt-after", type=float, default=2.0, help="seconds into the background work")
    parser.add_argument("--seed-orders", type=int, default=3000, help="orders in the seeded demo database")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLM_THREADS", "0") or 0))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--var-dir",
        default=os.environ.get("COPILOT_VAR_DIR", "var"),
        help="where the pinned model is assembled (its models/ folder)",
    )
    report = run(parser.parse_args())
    for key, value in report.items():
        if not isinstance(value, list):
            print(f"{key}: {value}", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
