"""The conversation suite: multi-turn chat threads scored turn by turn (``copilot eval --suite conversation``).

Every thread of ``evals/conversations/threads.yaml`` runs in its own chat thread on one fresh
database holding ``evals/conversations/world.yaml``. Each turn says what the user types and what
the reply must show:

- ``tools``: the tool calls the turn must make, by name, in order (``[]``: none, e.g. asking back);
- ``args``: arguments the first call must have (a subset);
- ``must`` / ``must_not``: text the answer must / must not contain (case-insensitive).

Every answer is also checked for invented facts: an id (order, customer, sku, purchase order,
warehouse, shipment), a date or an amount with cents that appears in no tool result of the thread
and in none of the user's messages (SOP citations are the grounding step's to check). A turn is correct when its tools, its ``must`` and
``must_not`` and the invented-facts check all pass.

Per provider the summary gives correct turns, invented facts (the target is 0), fallbacks (the
model's words replaced by the fact-only text, or no model), model calls, latency p50/p95, and how
each turn's tool was chosen (``chosen_by``: by the rules, by meaning with the SOP embedding model,
by the model, or by the deterministic reading when the model could not).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.copilot import chat_answers
from agent.copilot.service import Copilot
from agent.llm import FakeLLM, LLMError
from agent.policy import load_policy
from evals.metrics import percentile
from evals.runner import new_workdir, template_database
from evals.subjects import scripted_explainer
from tools.db import make_engine, session_factory
from tools.fixtures import SuiteError, load_fixture

__all__ = [
    "CONVERSATIONS_DIR",
    "Thread",
    "Turn",
    "invented_facts",
    "load_threads",
    "run_conversations",
    "score_turn",
    "scripted_model",
]

CONVERSATIONS_DIR = Path(__file__).resolve().parent / "conversations"
TURN_KEYS = frozenset({"say", "tools", "args", "must", "must_not", "why"})

# What an answer may only state when a tool returned it (or the user typed it).
_FACT = re.compile(
    r"\b(?:SO|PO|SH|WH|C)-[A-Z0-9]+\b|\b[A-Z]{2,5}-\d{3,6}\b|\bCA\d+\b|\b\d{4}-\d{2}-\d{2}\b|\b\d[\d,]*\.\d{2}\b"
)
# SOP citations ("SOP-INV-001 §2.1"): the grounding step checks them against the passages retrieved.
_SOP = re.compile(r"\bSOP-[A-Z]+-\d+\b")
# Canned texts of the copilot that quote an example id (e.g. the help and "which order?").
_CANNED = (chat_answers.HELP, chat_answers.ASK)


@dataclass(frozen=True)
class Turn:
    say: str
    tools: list[str] | None = None
    args: dict[str, Any] = field(default_factory=dict)
    must: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Thread:
    id: str
    turns: list[Turn]


def scripted_model() -> Any:
    """The ``fake`` provider of this suite: it explains a triage the way the scenario suites'
    scripted model does (:func:`evals.subjects.scripted_explainer`) and phrases nothing else, so a
    READ tool's answer is its fact-only text (a fallback) and every choice of tool is the rules'."""

    def reply(messages: list[dict[str, str]]) -> str:
        if any(m.get("role") == "user" and m.get("content", "").startswith("FACTS") for m in messages):
            return scripted_explainer(messages)
        raise LLMError("fake model: only triage explanations are scripted")

    return FakeLLM(reply, name="scripted-explainer")


def load_threads(path: Path | None = None) -> list[Thread]:
    """The threads of the suite file; a misspelt key or a missing ``say`` is an error."""
    path = Path(path or CONVERSATIONS_DIR / "threads.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    threads, seen = [], set()
    for n, raw in enumerate(data.get("threads") or []):
        tid = raw.get("id") or f"#{n}"
        if tid in seen:
            raise SuiteError(f"{path}: thread {tid}: duplicate id")
        seen.add(tid)
        turns = []
        for i, t in enumerate(raw.get("turns") or []):
            if unknown := set(t) - TURN_KEYS:
                raise SuiteError(f"{path}: thread {tid} turn {i + 1}: unknown key(s) {sorted(unknown)}")
            if not isinstance(t.get("say"), str) or not t["say"].strip():
                raise SuiteError(f"{path}: thread {tid} turn {i + 1}: 'say' must be a message")
            turns.append(
                Turn(
                    say=t["say"],
                    tools=t.get("tools"),
                    args=dict(t.get("args") or {}),
                    must=[str(x) for x in t.get("must") or []],
                    must_not=[str(x) for x in t.get("must_not") or []],
                )
            )
        if not turns:
            raise SuiteError(f"{path}: thread {tid}: no turns")
        threads.append(Thread(tid, turns))
    if not threads:
        raise SuiteError(f"{path}: no threads")
    return threads


def invented_facts(answer: str, known: str) -> list[str]:
    """Ids, dates and amounts in ``answer`` that ``known`` (tool results and user messages) lacks."""
    text = answer
    for canned in _CANNED:
        text = text.replace(canned, "")
    text = _SOP.sub("", text)
    known_l = known.lower()
    out = []
    for m in _FACT.finditer(text):
        token = m.group(0)
        if token.lower() in known_l or token.replace(",", "").lower() in known_l:
            continue
        out.append(token)
    return sorted(set(out))


def score_turn(turn: Turn, reply: dict[str, Any], known: str) -> dict[str, Any]:
    """The checks of one turn: tools, arguments, must, must_not, invented facts."""
    answer = reply.get("answer") or ""
    low = answer.lower()
    calls = reply.get("tool_calls") or []
    names = [c["name"] for c in calls]
    problems = []
    if turn.tools is not None and names != list(turn.tools):
        problems.append(f"tools {names} != {turn.tools}")
    if turn.args:
        got = calls[0]["args"] if calls else {}
        if any(got.get(k) != v for k, v in turn.args.items()):
            problems.append(f"args {got} lack {turn.args}")
    problems += [f"missing {m!r}" for m in turn.must if m.lower() not in low]
    problems += [f"states {m!r}" for m in turn.must_not if m.lower() in low]
    invented = invented_facts(answer, known)
    problems += [f"invented {x}" for x in invented]
    return {"correct": not problems, "problems": problems, "invented": invented}


def _world(workdir: Path):
    template = template_database(workdir)
    engine = make_engine(f"sqlite:///{template}")
    factory = session_factory(engine)
    world = yaml.safe_load((CONVERSATIONS_DIR / "world.yaml").read_text(encoding="utf-8"))
    with factory() as session:
        load_fixture(session, world, case_id="conversation-world")
        session.commit()
    return engine, factory


def run_conversations(
    llm: Any,
    *,
    provider: str,
    collection: Any = None,
    threads: list[Thread] | None = None,
    only: list[str] | None = None,
    echo: Callable[[str], None] = lambda _: None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the threads through the copilot with ``llm`` (None: no model, the fact-only answers);
    ``echo`` gets each wrong turn's problems (and, with ``progress``, every turn's time)."""
    threads = threads or load_threads()
    if only:
        threads = [t for t in threads if t.id in set(only)]
        if not threads:
            raise SuiteError(f"no thread named {', '.join(only)}")
    workdir = new_workdir()
    engine, factory = _world(workdir)
    try:
        copilot = Copilot(factory, load_policy(), llm=llm, collection=collection)
        results = []
        for thread in threads:
            known = ""
            for n, turn in enumerate(thread.turns, start=1):
                started = time.perf_counter()
                reply = copilot.chat(f"conv-{thread.id}", turn.say, username="qa-eval")
                took = time.perf_counter() - started
                observed = copilot.last_observations(f"conv-{thread.id}")
                known += (
                    "\n"
                    + turn.say
                    + "\n"
                    + json.dumps(
                        [
                            o.get("result") if o.get("result") is not None else o.get("error")
                            for o in observed
                        ],
                        default=str,
                        ensure_ascii=False,
                    )
                )
                score = score_turn(turn, reply, known)
                results.append(
                    {
                        "thread": thread.id,
                        "turn": n,
                        "say": turn.say,
                        "answer": reply.get("answer"),
                        "tools": [c["name"] for c in reply.get("tool_calls") or []],
                        "fallback": bool(reply.get("fallback")),
                        "fallback_reason": reply.get("fallback_reason"),
                        "chosen_by": reply.get("chosen_by"),
                        "seconds": round(took, 3),
                        **score,
                    }
                )
                if progress:
                    echo(f"  {thread.id} turn {n}: {took:.1f} s, {'ok' if score['correct'] else 'WRONG'}")
                if not score["correct"]:
                    echo(f"  {thread.id} turn {n}: {'; '.join(score['problems'])}")
        usage = copilot.usage()
    finally:
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    seconds: list[float] = [r["seconds"] for r in results]
    summary = {
        "provider": provider,
        "model": f"{llm.provider}:{llm.name}" if llm is not None else "none",
        "threads": len(threads),
        "turns": len(results),
        "correct_turns": sum(r["correct"] for r in results),
        "invented_facts": sum(len(r["invented"]) for r in results),
        "fallbacks": sum(r["fallback"] for r in results),
        "model_calls": usage["calls"],
        "chosen_by": {
            how: sum(r["chosen_by"] == how for r in results)
            for how in ("rule", "intent", "model", "fallback")
        },
        "latency_p50_s": percentile(seconds, 50),
        "latency_p95_s": percentile(seconds, 95),
    }
    return {"summary": summary, "turns": results}
