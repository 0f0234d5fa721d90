"""The graph's overhead on an explanation, and the model calls and tokens a triaged order costs.

For each of a few open orders with exceptions (a scratch SQLite demo database, seed 7, as-of
2026-11-25; SOPs indexed with the production embedding model), it times:

- **through the graph:** ``Copilot.triage([order], explain=True)`` — resolve, triage (policy),
  SOP retrieval, the explanation prompt, the model's streamed answer, the grounding check (and
  its retry, when there is one), the audit events;
- **direct:** the same prompt(s), replayed straight into llama-cpp-python's ``create_completion``
  (the same ``Llama`` object, streaming, temperature 0, ``max_tokens`` = the number of tokens the
  graph's call produced, so the output is the same text and the same token count).

Overhead = (graph − direct) / direct, per order, in wall time and in the process's CPU time (all
threads; on a machine shared with other work CPU time depends much less on the load than wall time).
The model's context is reset before each timed run so that neither reuses the other's prompt cache
(llama-cpp-python keeps the last prompt). A third measure needs no model: the same graph run with a
model that answers at once (the scripted fake provider) is the graph's own time ("graph alone", as a
share of the direct call). All are of the same run.

    .venv/bin/python benchmarks/graph_overhead.py                       # default local model, 3 orders
    .venv/bin/python benchmarks/graph_overhead.py --orders 5 --model-path var/models/other.gguf
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


class Recording:
    """An LLM that records each call's messages and token counts, passing everything through."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def complete(self, messages, **kwargs):
        result = self.inner.complete(messages, **kwargs)
        self.calls.append(
            {
                "messages": list(messages),
                "max_tokens": kwargs.get("max_tokens", 256),
                "completion_tokens": result.completion_tokens,
                "prompt_tokens": result.prompt_tokens,
                "stream": False,
            }
        )
        return result

    def stream(self, messages, **kwargs):
        pieces = list(self.inner.stream(messages, **kwargs))
        last = self.inner.last_usage() if hasattr(self.inner, "last_usage") else None
        self.calls.append(
            {
                "messages": list(messages),
                "max_tokens": kwargs.get("max_tokens", 256),
                "completion_tokens": last.completion_tokens if last else len(pieces),
                "prompt_tokens": last.prompt_tokens if last else 0,
                "stream": True,
            }
        )
        yield from pieces


def _orders(factory, policy, n: int) -> list[str]:
    from agent.triage.service import triage_open_book

    with factory() as session:
        results = list(triage_open_book(session, policy, record=False))
    return [r["order_id"] for r in spread_over_types(results, n)]


def _llama(llm):
    """The provider's ``Llama`` object (``_model()`` gives it, or it with its lock)."""
    loaded = llm._model()
    return loaded[0] if isinstance(loaded, tuple) else loaded


def _direct(llm, call: dict) -> tuple[float, float, int]:
    """The recorded call replayed straight into llama-cpp-python: wall and CPU seconds, completion tokens."""
    from agent.llm.base import normalize

    llama = _llama(llm)
    prompt, stop = llm._prompt(normalize(call["messages"]))
    llama.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    out = llama.create_completion(
        tokens, max_tokens=max(1, call["completion_tokens"]), temperature=0.0, stop=stop
    )
    return time.perf_counter() - wall, time.process_time() - cpu, int(out["usage"]["completion_tokens"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3)
    parser.add_argument("--seed-orders", type=int, default=2_000, help="demo orders to generate")
    parser.add_argument(
        "--model-path", type=Path, default=None, help="a GGUF file (default: the pinned model)"
    )
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LLM_THREADS") or 0))
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model call")
    args = parser.parse_args(argv)

    from agent.copilot.service import Copilot
    from agent.llm import FakeLLM, LlamaCppLLM
    from agent.policy import load_policy
    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate

    with tempfile.TemporaryDirectory(prefix="graph-overhead-") as folder:
        os.environ["COPILOT_VAR_DIR"] = folder
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        upgrade(engine)
        generate(engine, orders=args.seed_orders, seed=SEED, as_of=dt.date.fromisoformat(AS_OF))
        factory, policy = session_factory(engine), load_policy()
        collection = open_collection(MiniLMEmbeddingFunction(), var_dir=Path(folder))
        ingest(collection, None, echo=lambda _: None)
        orders = _orders(factory, policy, args.orders)

        # The graph's own time: a model that answers at once (grounded or not does not matter here).
        fake = Copilot(factory, policy, llm=FakeLLM(lambda m: "ok"), collection=collection)
        fake.triage(orders[:1])  # warm-up: imports, first queries
        own_ms = []
        for oid in orders:
            started = time.perf_counter()
            fake.triage([oid])
            own_ms.append((time.perf_counter() - started) * 1000)

        model = LlamaCppLLM(
            args.model_path, var_dir=Path("var").resolve(), n_threads=args.threads, timeout_s=args.timeout
        )
        recording = Recording(model)
        copilot = Copilot(factory, policy, llm=recording, collection=collection)
        model.complete([{"role": "user", "content": "Say ok."}], max_tokens=2)  # load the model, untimed
        rows = []
        for oid in orders:

            def graph_run(oid=oid):
                recording.calls.clear()
                _llama(model).reset()
                wall, cpu = time.perf_counter(), time.process_time()
                [result] = copilot.triage([oid])
                return time.perf_counter() - wall, time.process_time() - cpu, result, list(recording.calls)

            graph_s, graph_cpu, result, calls = graph_run()
            timed = [_direct(model, c) for c in calls]
            direct_s, direct_cpu = sum(t[0] for t in timed), sum(t[1] for t in timed)
            produced = [t[2] for t in timed]
            rows.append(
                {
                    "order_id": oid,
                    "types": [e["type"] for e in result["exceptions"]],
                    "graph_s": round(graph_s, 2),
                    "direct_s": round(direct_s, 2),
                    "overhead_pct": round(100 * (graph_s - direct_s) / direct_s, 1),
                    "graph_cpu_s": round(graph_cpu, 2),
                    "direct_cpu_s": round(direct_cpu, 2),
                    "cpu_overhead_pct": round(100 * (graph_cpu - direct_cpu) / direct_cpu, 1),
                    "graph_only_pct": round(100 * own_ms[orders.index(oid)] / 1000 / direct_s, 2),
                    "calls": len(calls),
                    "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                    "completion_tokens": sum(c["completion_tokens"] for c in calls),
                    "direct_completion_tokens": sum(produced),
                    "same_tokens": produced == [c["completion_tokens"] for c in calls],
                    "fallback": result["explanation"]["fallback"],
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)

    report = {
        "model": model.name,
        "threads": model.n_threads,
        "machine": f"{os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
        "orders": rows,
        "graph_only_ms": {"median": round(statistics.median(own_ms), 1), "max": round(max(own_ms), 1)},
        "overhead_pct_median": round(statistics.median(r["overhead_pct"] for r in rows), 1),
        "cpu_overhead_pct_median": round(statistics.median(r["cpu_overhead_pct"] for r in rows), 1),
        "graph_only_pct_median": round(statistics.median(r["graph_only_pct"] for r in rows), 2),
        "calls_per_order": round(sum(r["calls"] for r in rows) / len(rows), 2),
        "tokens_per_order": {
            "prompt": round(statistics.mean(r["prompt_tokens"] for r in rows)),
            "completion": round(statistics.mean(r["completion_tokens"] for r in rows)),
        },
    }
    print(
        "\n| order | exceptions | graph s | direct s | wall overhead | graph CPU s | direct CPU s | CPU overhead "
        "| graph alone | calls | prompt tok | completion tok | same tokens | fallback |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['order_id']} | {', '.join(r['types'])} | {r['graph_s']} | {r['direct_s']} | {r['overhead_pct']} % | "
            f"{r['graph_cpu_s']} | {r['direct_cpu_s']} | {r['cpu_overhead_pct']} % | {r['graph_only_pct']} % | "
            f"{r['calls']} | {r['prompt_tokens']} | {r['completion_tokens']} | {r['same_tokens']} | {r['fallback']} |"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
