"""Chat and explanation latency with the local model: this checkout against a baseline, interleaved.

Seeds a scratch SQLite demo database (seed 7, as-of 2026-11-25) and an index of the shipped SOPs
(all-MiniLM-L6-v2), then starts one worker process per checkout — this one and the baseline (a
commit exported with ``git archive``, default ``main``; ``--baseline none`` measures this checkout
alone) — each with its own copy of the pinned model loaded. Every measured item is sent to both
workers in turn, the order alternating, so that the load of a shared machine falls on both alike:

- **chat turns**: threads a planner would ask ("What is blocking SO-…?", "why not split the
  shipment?", a customer's late orders, an SOP question, a SKU's stock), through
  ``Copilot.chat_stream`` as the API and panel use it. Per turn: seconds to the first ``progress``
  event (what the reader sees first), to the first words of the answer (the first ``token`` event,
  or the ``final`` one when the answer is rendered from facts without streaming) and to the whole
  answer (``final``); the tool called, and whether the answer fell back to the facts.
- **explanations**: ``explain_order`` of open orders chosen round-robin on their first exception
  type, streaming: seconds to the first token and in all, prompt tokens, fallback.

Each process runs with the same thread count (``--threads``, default 2). A checkout that has
``keep_explanation_heads`` keeps the explanation prompt heads before its first item, as ``copilot
serve`` does at start-up (its summary's ``warm_up``: heads, tokens, seconds). Prints one JSON object.

    .venv/bin/python benchmarks/chat_latency.py                        # this checkout vs main
    .venv/bin/python benchmarks/chat_latency.py --baseline 177f6b4 --explanations 6 --rounds 1
    .venv/bin/python benchmarks/chat_latency.py --baseline none        # this checkout only
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-25"
SEED = 7


# --- the worker: one checkout, its model loaded, items from stdin ----------------------------------------


def _serve(args) -> None:
    sys.path.insert(0, str(Path(args.root).resolve()))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from agent.settings import apply_offline_defaults

    apply_offline_defaults()
    from agent.copilot.explain import explain_order, passages_for
    from agent.copilot.service import Copilot
    from agent.llm import LlamaCppLLM
    from agent.policy import load_policy
    from agent.triage.service import triage_order
    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.store import open_collection
    from tools.db import make_engine, session_factory

    options = {"n_threads": args.threads, "timeout_s": args.timeout}
    if "prompt_cache_mb" in inspect.signature(LlamaCppLLM.__init__).parameters and args.cache_mb is not None:
        options["prompt_cache_mb"] = args.cache_mb
    llm = LlamaCppLLM(Path(args.model_path), **options)
    llm.load()
    policy = load_policy()
    factory = session_factory(make_engine(args.db))
    collection = open_collection(MiniLMEmbeddingFunction(), var_dir=Path(args.index_dir))
    copilot = Copilot(factory, policy, llm=llm, collection=collection)
    ready: dict = {"ready": True}
    import agent.copilot.explain as explain

    if hasattr(explain, "keep_explanation_heads"):  # what `copilot serve` does at warm-up
        t0 = time.perf_counter()
        ready["heads"] = explain.keep_explanation_heads(llm, collection, policy)
        ready["heads_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        item = json.loads(line)
        if item["kind"] == "chat":
            out = _chat_turn(copilot, f"{args.tag}-{item['thread']}", item["message"])
        else:
            with factory() as session:
                result = triage_order(session, item["order_id"], policy, record=False)
            passages = passages_for(result, collection, k=4)
            first: list[float] = []
            t0 = time.perf_counter()
            explanation = explain_order(
                result,
                passages,
                llm,
                on_token=lambda _p, first=first: first.append(time.perf_counter()) if not first else None,
            )
            total = time.perf_counter() - t0
            out = {
                "first_s": round(first[0] - t0, 2) if first else None,
                "total_s": round(total, 2),
                "prompt_tokens": explanation["usage"]["prompt_tokens"],
                "completion_tokens": explanation["usage"]["completion_tokens"],
                "calls": explanation["usage"]["calls"],
                "fallback": bool(explanation["fallback"]),
                "text": explanation["text"],
            }
        stats = getattr(llm, "prefix_stats", None)
        out["prefix"] = stats() if stats else None
        print(json.dumps(out, default=str), flush=True)


def _chat_turn(copilot, thread: str, message: str) -> dict:
    spent = copilot.usage()
    t0 = time.perf_counter()
    progress = words = None
    tools: list[str] = []
    final: dict = {}
    for event in copilot.chat_stream(thread, message, username="planner"):
        now = time.perf_counter() - t0
        kind = event["type"]
        if kind == "progress" and progress is None:
            progress = now
        elif kind == "token" and words is None:
            words = now
        elif kind == "tool":
            tools.append(event["name"])
        elif kind == "final":
            final = event
    total = time.perf_counter() - t0
    after = copilot.usage()
    return {
        "calls": after["calls"] - spent["calls"],
        "prompt_tokens": after["prompt_tokens"] - spent["prompt_tokens"],
        "completion_tokens": after["completion_tokens"] - spent["completion_tokens"],
        "progress_s": round(progress, 2) if progress is not None else None,
        "first_s": round(words if words is not None else total, 2),
        "total_s": round(total, 2),
        "tools": tools,
        "fallback": bool(final.get("fallback")),
        "reason": final.get("fallback_reason"),
        "answer": final.get("answer", ""),
    }


# --- the launcher ---------------------------------------------------------------------------------------


def _prepare(tmp: Path, args) -> dict:
    """The scratch database, the SOP index, and the items to measure (taken from the data)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from agent.settings import apply_offline_defaults

    apply_offline_defaults()
    from sqlalchemy import select

    from agent.policy import load_policy
    from agent.triage.service import triage_open_book
    from knowledge.embeddings import MiniLMEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate
    from tools.models import Customer, Order, OrderLine

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _harness import spread_over_types

    url = f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    generate(engine, orders=args.seed_orders, seed=SEED, as_of=dt.date.fromisoformat(AS_OF), progress=False)
    ingest(open_collection(MiniLMEmbeddingFunction(), var_dir=tmp / "var"), None, echo=lambda _: None)
    with session_factory(engine)() as session:
        results = list(triage_open_book(session, load_policy(), record=False))
        chosen = spread_over_types(results, max(args.explanations, 2 * args.rounds))
        items: list[dict] = []
        for n in range(args.rounds):
            held = chosen[2 * n]
            other = chosen[2 * n + 1]
            customer = session.scalar(
                select(Customer.name)
                .join(Order, Order.customer_id == Customer.customer_id)
                .where(Order.order_id == other["order_id"])
            )
            sku = session.scalar(
                select(OrderLine.sku).where(OrderLine.order_id == other["order_id"]).limit(1)
            )
            thread_a, thread_b = f"a{n}", f"b{n}"
            items += [
                {"kind": "chat", "thread": thread_a, "message": f"What is blocking {held['order_id']}?"},
                {"kind": "chat", "thread": thread_a, "message": "why not split the shipment?"},
                {
                    "kind": "chat",
                    "thread": thread_a,
                    "message": "Is there already an approval request for it?",
                },
                {
                    "kind": "chat",
                    "thread": thread_b,
                    "message": f"Which of {customer}'s orders will ship late?",
                },
                {
                    "kind": "chat",
                    "thread": thread_b,
                    "message": "What does the SOP say about who may release a credit hold?",
                },
                {"kind": "chat", "thread": thread_b, "message": f"How much stock of {sku} do we have?"},
            ]
        items += [
            {"kind": "explain", "order_id": r["order_id"], "type": r["exceptions"][0]["type"]}
            for r in chosen[: args.explanations]
        ]
    engine.dispose()
    return {"db": url, "var": str(tmp / "var"), "items": items}


def _export(ref: str, into: Path) -> Path:
    """The files of commit ``ref`` of this repository, in ``into`` (nothing in the repository changes)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    archive.wait()
    (into / ".commit").write_text(commit)
    return into


class _Worker:
    def __init__(self, name: str, root: Path, setup: dict, args) -> None:
        self.name = name
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            "--root",
            str(root),
            "--tag",
            name,
            "--db",
            setup["db"],
            "--index-dir",
            setup["var"],
            "--model-path",
            args.model_path,
            "--threads",
            str(args.threads),
            "--timeout",
            str(args.timeout),
        ]
        if args.cache_mb is not None:
            command += ["--cache-mb", str(args.cache_mb)]
        env = {**os.environ, "PYTHONPATH": str(root)}
        self.proc = subprocess.Popen(
            command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        ready = self._read()
        if not ready.get("ready"):
            raise SystemExit(f"worker {name} did not start: {ready}")
        self.warm_up = {k: v for k, v in ready.items() if k != "ready"}

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} exited ({self.proc.wait()})")
        return json.loads(line)

    def ask(self, item: dict) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(item) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _p(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def _summary(rows: list[dict]) -> dict:
    chat = [r for r in rows if r["kind"] == "chat"]
    explain = [r for r in rows if r["kind"] == "explain"]
    return {
        "chat_turns": len(chat),
        "chat_first_p50_s": _p([r["first_s"] for r in chat], 50),
        "chat_first_p95_s": _p([r["first_s"] for r in chat], 95),
        "chat_total_p50_s": _p([r["total_s"] for r in chat], 50),
        "chat_total_p95_s": _p([r["total_s"] for r in chat], 95),
        "chat_progress_p50_s": _p([r["progress_s"] for r in chat if r.get("progress_s") is not None], 50),
        "chat_fallbacks": sum(r["fallback"] for r in chat),
        "chat_model_calls_per_turn": round(statistics.mean(r["calls"] for r in chat), 2) if chat else None,
        "chat_prompt_tokens_per_turn": round(statistics.mean(r["prompt_tokens"] for r in chat))
        if chat
        else None,
        "chat_completion_tokens_per_turn": round(statistics.mean(r["completion_tokens"] for r in chat))
        if chat
        else None,
        "explanations": len(explain),
        "explain_first_p50_s": _p([r["first_s"] for r in explain], 50),
        "explain_total_p50_s": _p([r["total_s"] for r in explain], 50),
        "explain_total_p95_s": _p([r["total_s"] for r in explain], 95),
        "explain_prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in explain))
        if explain
        else None,
        "explain_completion_tokens_mean": round(statistics.mean(r["completion_tokens"] for r in explain))
        if explain
        else None,
        "explain_fallbacks": sum(r["fallback"] for r in explain),
    }


def run(args) -> dict:
    from importlib import import_module

    sys.path.insert(0, str(ROOT))
    local_model = import_module("agent.llm.local_model")
    if not args.model_path:
        args.model_path = str(local_model.ensure_model(Path(args.var_dir)))
    args.model_path = str(Path(args.model_path).resolve())
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as folder:
        tmp = Path(folder)
        setup = _prepare(tmp, args)
        variants = [("current", ROOT)]
        baseline_commit = None
        if args.baseline != "none":
            base = _export(args.baseline, Path(tempfile.mkdtemp(prefix="base-", dir=tmp)))
            baseline_commit = (base / ".commit").read_text()
            variants.insert(0, ("baseline", base))
        workers = [_Worker(name, root, setup, args) for name, root in variants]
        rows: dict[str, list[dict]] = {w.name: [] for w in workers}
        try:
            for n, item in enumerate(setup["items"]):
                order = workers if n % 2 == 0 else workers[::-1]
                for worker in order:
                    out = worker.ask(item)
                    out.update(item)
                    rows[worker.name].append(out)
                    print(
                        f"{worker.name:<9} {item.get('message') or item['order_id']}: first {out['first_s']} s, "
                        f"total {out['total_s']} s, fallback {out['fallback']}",
                        file=sys.stderr,
                    )
        finally:
            for worker in workers:
                worker.close()
    summaries = {name: _summary(r) for name, r in rows.items()}
    for worker in workers:  # the prompt heads kept at start-up, where the checkout keeps any
        summaries[worker.name]["warm_up"] = worker.warm_up or None
    ratios = {}
    if "baseline" in summaries:
        b, c = summaries["baseline"], summaries["current"]
        for key in ("chat_first_p50_s", "chat_total_p50_s", "explain_first_p50_s", "explain_total_p50_s"):
            if b[key] and c[key]:
                ratios[key] = round(b[key] / c[key], 2)
    return {
        "baseline_commit": baseline_commit,
        "summaries": summaries,
        "speedup_baseline_over_current": ratios,
        "rows": rows if args.rows else None,
        "threads": args.threads,
        "load_avg_1m_end": round(os.getloadavg()[0], 1),
        "minutes": round((time.time() - started) / 60, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline", default="main", help="git commit to compare with; none: only this checkout"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the two six-turn threads")
    parser.add_argument("--explanations", type=int, default=6)
    parser.add_argument("--seed-orders", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--cache-mb", type=int, default=None, help="LLM_PROMPT_CACHE_MB for this checkout")
    parser.add_argument("--model-path", default="")
    parser.add_argument(
        "--var-dir",
        default=os.environ.get("COPILOT_VAR_DIR", "var"),
        help="where the pinned model is assembled (its models/ folder)",
    )
    parser.add_argument(
        "--rows", action="store_true", help="include every turn and explanation with its text"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="current", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args)
        return
    print(json.dumps(run(args), default=str))


if __name__ == "__main__":
    main()
