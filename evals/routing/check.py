"""Measure the chat routing that needs no model: ``python -m evals.routing.check [--json] [--verbose]``.

Every question of ``evals/routing/paraphrases.yaml`` (paraphrases of the READ intents, each with the
call it must get, and questions that must not be routed) goes through the first choice of a chat
turn, :func:`agent.copilot.chat.choose_without_model`: the rules, then the router by meaning with
the shipped embedding model (all-MiniLM-L6-v2, :mod:`agent.copilot.intents`), then the checks every
call passes. No database and no language model: choosing reads no record.

Reported: questions routed by the rules and by meaning, right and wrong; the share of the
paraphrases routed without a model (coverage; the rest go to the model, as before); negatives routed
(each one a wrong route); the time of one decision. Every wrong route is listed. Exit status 1 when a
route by meaning is wrong (the rules' wrong routes are listed, not counted against the router).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import yaml
from sqlalchemy.orm import sessionmaker

from agent.copilot.chat import choose_without_model
from agent.copilot.context import CopilotContext, IntentChooser
from agent.copilot.intents import router_for
from agent.copilot.state import CopilotState
from agent.policy import load_policy
from evals.metrics import percentile
from knowledge.embeddings import MiniLMEmbeddingFunction
from knowledge.store import open_collection
from knowledge.tool import build_sop_tool
from tools.read.registry import build_read_tools

__all__ = ["PARAPHRASES", "Case", "Outcome", "check", "load_cases", "routing_context"]

PARAPHRASES = Path(__file__).resolve().parent / "paraphrases.yaml"


@dataclass(frozen=True)
class Case:
    say: str
    focus: dict[str, Any]
    expect: list[dict[str, Any]] | None
    """The calls that are right (``{"tool", "args"}``; no ``args``: any); None: must not be routed."""


@dataclass(frozen=True)
class Outcome:
    say: str
    expect: list[dict[str, Any]] | None
    call: dict[str, Any] | None
    """The call chosen without a model, or None (the model chooses, or the copilot asks back)."""
    by: str | None  # "rule" or "intent"
    right: bool


def load_cases(path: Path = PARAPHRASES) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    focuses = data["focuses"]
    cases = []
    for raw in data["cases"]:
        expect = raw["expect"]
        cases.append(
            Case(
                say=str(raw["say"]),
                focus=dict(focuses[raw["focus"]]),
                expect=None if expect is None else (expect if isinstance(expect, list) else [expect]),
            )
        )
    return cases


def routing_context(embed: Any, intents: IntentChooser | None = None) -> CopilotContext:
    """A chat context that can choose but not run: the READ tools and ``search_sops`` are built on
    a session factory and an in-memory index that nothing opens. ``intents``: the router (default:
    :func:`agent.copilot.intents.router_for` ``embed``)."""
    factory: sessionmaker = sessionmaker()
    tools = {t.name: t for t in build_read_tools(factory)}
    tools["search_sops"] = build_sop_tool(
        open_collection(embed, client=chromadb.EphemeralClient(), name="routing-check")
    )
    return CopilotContext(
        factory=factory,
        policy=load_policy(),
        tools=tools,
        intents=intents if intents is not None else router_for(embed),
    )


def _right(call: dict[str, Any], expect: list[dict[str, Any]]) -> bool:
    return any(call["tool"] == e["tool"] and ("args" not in e or call["args"] == e["args"]) for e in expect)


def check(cases: list[Case], ctx: CopilotContext) -> dict[str, Any]:
    """Route every case as the first choice of a turn; the outcome of each and the summary."""
    started = time.perf_counter()
    choose_without_model({"question": "warm up", "focus": {}, "messages": []}, ctx)  # embeds the examples
    examples_s = time.perf_counter() - started
    outcomes: list[Outcome] = []
    seconds: list[float] = []
    for case in cases:
        state: CopilotState = {"question": case.say, "focus": case.focus, "messages": []}
        started = time.perf_counter()
        chosen = choose_without_model(state, ctx) or {}
        seconds.append(time.perf_counter() - started)
        pending = chosen.get("pending") or []
        call = {"tool": pending[0]["tool"], "args": pending[0]["args"]} if pending else None
        right = call is None or (case.expect is not None and _right(call, case.expect))
        outcomes.append(
            Outcome(case.say, case.expect, call, chosen.get("chosen_by") if call else None, right)
        )
    positives = [o for o in outcomes if o.expect is not None]
    left = [o for o in positives if o.by != "rule"]  # what the rules leave to the router
    routed_right = [o for o in positives if o.call is not None and o.right]
    summary = {
        "cases": len(outcomes),
        "paraphrases": len(positives),
        "negatives": len(outcomes) - len(positives),
        **{
            f"by_{how}": {
                "routed": sum(o.by == how for o in outcomes),
                "wrong": sum(o.by == how and not o.right for o in outcomes),
            }
            for how in ("rule", "intent")
        },
        "negatives_routed": sum(o.expect is None and o.call is not None for o in outcomes),
        "routed_without_model": round(len(routed_right) / len(positives), 3) if positives else None,
        "intent_coverage": round(sum(o.by == "intent" and o.right for o in left) / len(left), 3)
        if left
        else None,
        "examples_s": round(examples_s, 2),
        "decision_ms_p50": round(1000 * (percentile(seconds, 50) or 0.0), 1),
        "decision_ms_p95": round(1000 * (percentile(seconds, 95) or 0.0), 1),
    }
    return {"summary": summary, "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.routing.check", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="list every question, not only the wrong ones")
    args = parser.parse_args(argv)
    embed = MiniLMEmbeddingFunction()
    ctx = routing_context(embed)
    started = time.perf_counter()
    result = check(load_cases(), ctx)
    s = result["summary"]
    if args.json:
        print(
            json.dumps({**s, "embedding": embed.name(), "seconds": round(time.perf_counter() - started, 2)})
        )
    else:
        print(
            f"routing · {embed.name()}: {s['cases']} questions ({s['paraphrases']} paraphrases, "
            f"{s['negatives']} negatives)\n"
            f"  by the rules:  {s['by_rule']['routed']} routed, {s['by_rule']['wrong']} wrong\n"
            f"  by meaning:    {s['by_intent']['routed']} routed, {s['by_intent']['wrong']} wrong "
            f"({s['intent_coverage']:.0%} of the paraphrases the rules leave)\n"
            f"  paraphrases routed right without a model: {s['routed_without_model']:.0%}; "
            f"negatives routed: {s['negatives_routed']}\n"
            f"  one decision: p50 {s['decision_ms_p50']} ms, p95 {s['decision_ms_p95']} ms "
            f"(the examples embedded once, first: {s['examples_s']} s)"
        )
    for o in result["outcomes"]:
        if args.verbose or not o.right:
            mark = "ok   " if o.right else "WRONG"
            got = f"{o.by}: {o.call['tool']} {o.call['args']}" if o.call else "not routed"
            print(f"  {mark} {o.say!r} -> {got}", file=sys.stdout if args.verbose else sys.stderr)
    return 1 if s["by_intent"]["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
