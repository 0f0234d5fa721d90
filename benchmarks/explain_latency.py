"""Explanation latency and quality with a local model: time to first token, total, LLM calls and tokens per order.

Seeds a scratch SQLite demo database (seed 7, as-of 2026-11-25), triages open orders chosen to cover
the exception types (round-robin on each order's first exception), retrieves their SOP passages
from an index of the shipped SOPs (all-MiniLM-L6-v2, as in production), and explains each with
``agent.copilot.explain.explain_order`` streaming, on the local model given (default: the pinned default).
Per order it records time to first token, total seconds, model calls, prompt/completion tokens,
whether the first answer was grounded, and whether the final text is the model's (not the fallback)
and correct: it names the order's first exception (its words) and cites an SOP passage.
``cpu_s`` is the process's CPU time for the explanation (all threads): on a machine shared with other
work, wall time depends on the load and CPU time much less; on an idle machine with 2 threads,
wall time is about half of it.

    .venv/bin/python benchmarks/explain_latency.py                        # default model, 8 orders
    .venv/bin/python benchmarks/explain_latency.py --orders 5 --model qwen2.5-coder-1.5b-instruct-q4_k_m \\
        qwen2.5-coder-0.5b-instruct-q4_k_m                                # both, on the same orders
    .venv/bin/python benchmarks/explain_latency.py --model-path /models/other.gguf --show
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _harness import spread_over_types

from agent.settings import apply_offline_defaults

apply_offline_defaults()

AS_OF = "2026-11-25"
SEED = 7
# Words an explanation uses for each exception type (any one of them counts).
WORDS = {
    "CREDIT_HOLD": ("credit",),
    "PRICING_DISCREPANCY": ("price", "pricing"),
    "INVENTORY_SHORTFALL": ("stock", "inventory", "short", "available"),
    "SUBSTITUTION_REQUEST": ("substitut", "discontinued"),
    "CARRIER_DISRUPTION": ("carrier", "shipment", "delay", "disrupt"),
    "PROCUREMENT_DELAY": ("purchase order", "backorder", "po-", "procure"),
    "MASTER_DATA_INCOMPLETE": ("address", "ship-to", "ship_to", "master data", "missing", "empty"),
    "COMPLIANCE_HOLD": ("export", "compliance"),
    "RECURRING_ANOMALY": ("recurr", "repeat", "pattern"),
}


def _orders(session, policy, n: int) -> list[dict]:
    from agent.triage.service import triage_open_book

    return spread_over_types(list(triage_open_book(session, policy, record=False)), n)


def _explain_all(llm, results, collection, show: bool) -> dict:
    from agent.copilot.explain import explain_order, passages_for

    started = time.perf_counter()
    llm.load()  # outside the measured explanations
    load_s = time.perf_counter() - started
    rows = []
    for result in results:
        passages = passages_for(result, collection, k=4)
        first: list[float] = []
        c0, t0 = time.process_time(), time.perf_counter()
        out = explain_order(
            result,
            passages,
            llm,
            on_token=lambda _p, first=first: first.append(time.perf_counter()) if not first else None,
        )
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        kind = result["exceptions"][0]["type"]
        text = out["text"].lower()
        rows.append(
            {
                "order_id": result["order_id"],
                "type": kind,
                "exceptions": len(result["exceptions"]),
                "ttft_s": round(first[0] - t0, 2) if first else None,
                "total_s": round(total, 2),
                "cpu_s": round(cpu, 2),
                "calls": out["usage"]["calls"],
                "prompt_tokens": out["usage"]["prompt_tokens"],
                "completion_tokens": out["usage"]["completion_tokens"],
                "grounded_first": out["usage"]["calls"] == 1 and not out["fallback"],
                "model_text": not out["fallback"],
                "cited_by": out["cited_by"],
                "correct": (not out["fallback"])
                and any(w in text for w in WORDS[kind])
                and bool(out["citations"]),
                "reason": out["reason"],
                "text": out["text"] if show else None,
            }
        )
    n = len(rows)
    timed = [r for r in rows if r["ttft_s"] is not None]
    return {
        "model": llm.name,
        "threads": llm.n_threads,
        "load_s": round(load_s, 2),
        "orders": n,
        "ttft_p50_s": round(statistics.median(r["ttft_s"] for r in timed), 2) if timed else None,
        "total_p50_s": round(statistics.median(r["total_s"] for r in rows), 2),
        "total_max_s": max(r["total_s"] for r in rows),
        "cpu_p50_s": round(statistics.median(r["cpu_s"] for r in rows), 2),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "calls_per_order": round(sum(r["calls"] for r in rows) / n, 2),
        "prompt_tokens_per_order": round(sum(r["prompt_tokens"] for r in rows) / n),
        "completion_tokens_per_order": round(sum(r["completion_tokens"] for r in rows) / n),
        "grounded_first_try": f"{sum(r['grounded_first'] for r in rows)}/{n}",
        "uncited_repaired": f"{sum(r['cited_by'] == 'retrieval' for r in rows)}/{n}",
        "model_text_after_retry": f"{sum(r['model_text'] for r in rows)}/{n}",
        "correct": f"{sum(r['correct'] for r in rows)}/{n}",
        "rows": rows,
    }


def run(args) -> dict:
    from agent.llm import LlamaCppLLM
    from agent.llm.local_model import MODELS, ensure_model
    from agent.policy import load_policy
    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate

    paths = [Path(p) for p in args.model_path] or [
        ensure_model(Path(args.var_dir), MODELS[m]) for m in args.model
    ]
    policy = load_policy()
    with tempfile.TemporaryDirectory(prefix="explain-bench-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        generate(
            engine, orders=args.seed_orders, seed=SEED, as_of=dt.date.fromisoformat(AS_OF), progress=False
        )
        collection = open_collection(MiniLMEmbeddingFunction(), var_dir=Path(tmp) / "var")
        ingest(collection, None, echo=lambda _: None)
        with session_factory(engine)() as session:
            results = _orders(session, policy, args.orders)
        engine.dispose()
        runs = [
            _explain_all(
                LlamaCppLLM(path, n_threads=args.threads, timeout_s=args.timeout),
                results,
                collection,
                args.show,
            )
            for path in paths
        ]
    return {"runs": runs, "python": platform.python_version(), "cpus": os.cpu_count()}


def main() -> None:
    from agent.llm.local_model import DEFAULT_MODEL, MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        nargs="+",
        default=[DEFAULT_MODEL],
        help="pinned models to compare on the same orders",
    )
    parser.add_argument("--model-path", nargs="*", default=[], help="any GGUF files instead of pinned models")
    parser.add_argument("--orders", type=int, default=8)
    parser.add_argument("--seed-orders", type=int, default=3000, help="orders in the seeded demo database")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLM_THREADS", "0") or 0))
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--var-dir",
        default=os.environ.get("COPILOT_VAR_DIR", "var"),
        help="where the pinned model is assembled (its models/ folder)",
    )
    parser.add_argument("--show", action="store_true", help="include each explanation's text")
    args = parser.parse_args()
    report = run(args)
    for one in report["runs"]:
        print(f"== {one['model']}", file=sys.stderr)
        for r in one["rows"]:
            print(
                f"{r['order_id']} {r['type']:<22} ttft {r['ttft_s']} s total {r['total_s']} s cpu {r['cpu_s']} s calls {r['calls']} "
                f"tokens {r['prompt_tokens']}+{r['completion_tokens']} correct {r['correct']} {r['reason'] or ''}",
                file=sys.stderr,
            )
            if r["text"]:
                print(f"    {r['text']}", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
