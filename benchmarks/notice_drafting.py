"""Notice drafting with the local model: latency (p50, p95), tokens, and the share of drafts that pass
the grounding check on the first try, against the fact-only template measured in the same run.

The notices are the ones the eval suite ``evals/suites/communications.yaml`` makes due: each case's
fixture is loaded into a scratch SQLite database, its recommended action is requested and approved,
and the notice that execution records (promised date moved, partial shipment, substitution, late
rebooking, expedited freight, supplier expedite request, a customer note with injected instructions,
a Spanish-speaking customer) is drafted by ``agent.comms.draft.draft_notice`` with the model given
(default: the pinned local model). The small sample (8 notices by default) is deliberate: one model
call takes ~10-20 s on the 2-core development machine.

    .venv/bin/python benchmarks/notice_drafting.py                 # the default local model, 8 notices
    .venv/bin/python benchmarks/notice_drafting.py --notices 3 --show
"""

from __future__ import annotations

import argparse
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

from agent.settings import apply_offline_defaults

apply_offline_defaults()

from agent.comms.draft import draft_notice, fact_template  # noqa: E402
from agent.comms.grounding import draft_errors, other_parties  # noqa: E402
from agent.governance.requests import decide, request_action  # noqa: E402
from agent.llm import get_llm  # noqa: E402
from agent.policy import load_policy  # noqa: E402
from agent.settings import Settings  # noqa: E402
from agent.triage.service import triage_order  # noqa: E402
from evals.suite import load_cases  # noqa: E402
from tools.db import make_engine, session_factory, upgrade  # noqa: E402
from tools.fixtures import load_fixture  # noqa: E402
from tools.models import Notice  # noqa: E402

SUITE = Path(__file__).resolve().parents[1] / "evals" / "suites" / "communications.yaml"


def notices(n: int) -> list[tuple[dict, list[str]]]:
    """(facts, other parties) of the first ``n`` notices the communications suite makes due."""
    policy = load_policy()
    out = []
    with tempfile.TemporaryDirectory(prefix="notice-bench-") as folder:
        for i, case in enumerate(
            c for c in load_cases(str(SUITE)) if c.expect.get("notice", {}).get("kind") != "none"
        ):
            if len(out) >= n:
                break
            engine = make_engine(f"sqlite:///{folder}/case{i}.db")
            upgrade(engine)
            factory = session_factory(engine)
            with factory() as s:
                load_fixture(s, case.fixture, case_id=case.id)
                rec = triage_order(s, case.input["order_id"], policy, record=False)["recommendation"]
            req = request_action(factory, policy, order_id=case.input["order_id"], requested_by="planner")
            approver = "ops_manager" if rec["approver_role"] == "planner" else rec["approver_role"]
            decide(factory, policy, req["id"], username=approver, decision="approve")
            with factory() as s:
                notice = s.query(Notice).one()
                out.append((dict(notice.facts), other_parties(s, notice.facts), case.id))
            engine.dispose()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=8)
    parser.add_argument("--show", action="store_true", help="print each draft")
    args = parser.parse_args()
    sample = notices(args.notices)
    # Baseline, same run: the fact-only template (what the copilot sends when the model fails).
    t0 = time.perf_counter()
    for facts, others, _ in sample:
        subject, body, _lang = fact_template(facts)
        assert not draft_errors(subject, body, facts, other_names=others)
    template_s = (time.perf_counter() - t0) / len(sample)
    llm = get_llm(Settings())
    started = time.perf_counter()
    if hasattr(llm, "load"):
        llm.load()
    load_s = time.perf_counter() - started
    rows = []
    for facts, others, case_id in sample:
        c0, t0 = time.process_time(), time.perf_counter()
        draft = draft_notice(facts, llm, other_names=others)
        rows.append(
            {
                "case": case_id,
                "seconds": round(time.perf_counter() - t0, 2),
                "cpu_s": round(time.process_time() - c0, 2),
                "calls": draft["usage"]["calls"],
                "prompt_tokens": draft["usage"]["prompt_tokens"],
                "completion_tokens": draft["usage"]["completion_tokens"],
                "first_try_grounded": draft["first_try_grounded"],
                "fallback": draft["fallback"],
                "first_errors": draft["errors"][:3],
                "reason": draft["reason"],
            }
        )
        if args.show:
            print(
                f"--- {case_id} ({'template' if draft['fallback'] else 'model'})\n{draft['subject']}\n{draft['body']}\n"
            )
    secs = [r["seconds"] for r in rows]
    summary = {
        "model": f"{llm.provider}:{llm.name}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "notices": len(rows),
        "model_load_s": round(load_s, 1),
        "p50_s": pct(secs, 0.5),
        "p95_s": pct(secs, 0.95),
        "mean_calls": round(statistics.mean(r["calls"] for r in rows), 2),
        "mean_prompt_tokens": round(statistics.mean(r["prompt_tokens"] for r in rows)),
        "mean_completion_tokens": round(statistics.mean(r["completion_tokens"] for r in rows)),
        "first_try_grounded": round(sum(r["first_try_grounded"] for r in rows) / len(rows), 3),
        "fallback": round(sum(r["fallback"] for r in rows) / len(rows), 3),
        "template_ms": round(template_s * 1000, 3),
        "p50_vs_template": round(pct(secs, 0.5) / template_s) if template_s else None,
        "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
