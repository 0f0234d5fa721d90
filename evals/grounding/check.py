"""Measure the grounding check on explanations: ``python -m evals.grounding.check [--model N] [--json]``.

Two measurements of :func:`agent.copilot.explain.grounding_errors` (which includes the claim check,
:mod:`agent.claims`):

1. **Hand-written explanations** (``evals/grounding/explanations.yaml``): for each of a dozen eval-suite
   cases (``evals/suites``), explanations a model could write that are WRONG — a swapped number, the
   wrong exception, the wrong warehouse or carrier, an invented or misapplied SOP, a false
   comparison — every one of which must be refused, and RIGHT ones that must pass. Each case's
   fixture is loaded into a fresh SQLite database and triaged by the real code; the SOP passages are
   the shipped SOPs' sections for the order's exception types (read from ``knowledge/sops``, no
   embedding model), so this part needs no model and runs in CI (``tests/test_grounding_eval.py``).
2. **The shipped local model's explanations** (``--model N``: the first N order cases of the eval
   suites spread evenly over them, ``--model all`` for every one): the model explains each case's triage with the passages
   the real retrieval finds; its first answer is checked (a case the model did not answer, e.g. a
   timeout, is counted apart), and every refusal by the claim check is
   listed with its reasons. A refusal by the claim check is a wrong refusal unless the text really
   misstates a fact, so the claim-refusal rate is an upper bound on wrong refusals (target ≤ 5 %);
   the listing is there to read them.

Exit status 1 when a wrong explanation passes or a right one is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.claims import claim_errors
from agent.copilot.explain import _bracket_citations, compose, explain_order, grounding_errors, passages_for
from agent.llm import get_llm
from agent.policy import load_policy
from agent.triage.service import triage_order
from evals.evaluate import sop_index
from evals.runner import template_database
from evals.suite import EvalCase, load_cases
from knowledge.ingest import SOP_DIR, chunk_document, parse_document
from knowledge.retrieve import Passage, citation
from tools.db import make_engine, session_factory
from tools.fixtures import load_fixture

__all__ = ["EXPLANATIONS", "Outcome", "passages_for_types", "run_hand_written", "triage_cases"]

EXPLANATIONS = Path(__file__).resolve().parent / "explanations.yaml"
_BROAD = 5  # an SOP that applies to this many types or more (governance) is not an order's own SOP


@dataclass
class Outcome:
    case: str
    text: str
    expected: str  # "refuse" or "pass"
    errors: list[str]
    why: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.errors) == (self.expected == "refuse")


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, expected: str, ok: bool | None = None) -> int:
        return sum(1 for o in self.outcomes if o.expected == expected and (ok is None or o.ok == ok))


def passages_for_types(types: list[str]) -> list[Passage]:
    """The sections of the shipped SOPs written for any of ``types`` (the narrowest SOPs first)."""
    out: list[Passage] = []
    for path in sorted(SOP_DIR.glob("*.md")):
        doc = parse_document(path.read_text(encoding="utf-8"), path)
        if not set(doc.applies_to) & set(types) or len(doc.applies_to) >= _BROAD:
            continue
        for chunk in chunk_document(doc, source=path.name, content_hash=""):
            meta = chunk.metadata
            out.append(
                Passage(
                    citation=citation(doc.doc_id, str(meta.get("section") or "")),
                    text=chunk.text.split("\n\n", 1)[-1],
                    score=1.0,
                    doc_id=doc.doc_id,
                    title=doc.title,
                    section=str(meta.get("section") or ""),
                    heading=str(meta.get("heading") or ""),
                    source=path.name,
                    applies_to=tuple(doc.applies_to),
                )
            )
    return sorted(out, key=lambda p: len(p.applies_to))


@contextmanager
def _workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="grounding-eval-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def triage_cases(cases: list[EvalCase]) -> dict[str, dict[str, Any]]:
    """Each case's triage result (by case id), each case in a fresh database copied from a template."""
    policy = load_policy()
    results: dict[str, dict[str, Any]] = {}
    with _workdir() as folder:
        template = template_database(folder)
        for case in cases:
            db = folder / "case.db"
            shutil.copyfile(template, db)
            engine = make_engine(f"sqlite:///{db}")
            try:
                with session_factory(engine)() as session:
                    load_fixture(session, case.fixture, case_id=case.id)
                    session.flush()
                    results[case.id] = triage_order(session, case.input["order_id"], policy, record=False)
            finally:
                engine.dispose()
                db.unlink()
    return results


def _load_explanations(path: Path = EXPLANATIONS) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a mapping with a non-empty list 'cases'")
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not entry.get("case")
            or not (entry.get("wrong") or entry.get("right"))
        ):
            raise ValueError(f"{path}: each entry needs 'case' and 'wrong' or 'right' texts: {entry!r}")
    return entries


def run_hand_written(path: Path = EXPLANATIONS) -> Report:
    """Check every hand-written explanation against its case's real triage result."""
    entries = _load_explanations(path)
    by_id = {c.id: c for c in load_cases("all") if "order_id" in c.input}
    unknown = sorted({e["case"] for e in entries} - set(by_id))
    if unknown:
        raise ValueError(f"{path}: unknown eval case(s): {', '.join(unknown)}")
    results = triage_cases([by_id[i] for i in dict.fromkeys(e["case"] for e in entries)])
    report = Report()
    for entry in entries:
        result = results[entry["case"]]
        passages = passages_for_types([e["type"] for e in result.get("exceptions") or []])
        for item in entry.get("wrong") or []:
            text, why = (item["text"], item.get("why", "")) if isinstance(item, dict) else (item, "")
            report.outcomes.append(
                Outcome(entry["case"], text, "refuse", grounding_errors(text, result, passages), why)
            )
        for text in entry.get("right") or []:
            report.outcomes.append(
                Outcome(entry["case"], text, "pass", grounding_errors(text, result, passages))
            )
    return report


# --- the local model's explanations ---------------------------------------------------------------------


class _FirstAnswers:
    """The model, recording the text of each completion (the first one is the model's own answer)."""

    def __init__(self, llm) -> None:
        self.llm = llm
        self.texts: list[str] = []
        self.provider, self.name = llm.provider, llm.name

    def complete(self, messages, **kwargs):
        reply = self.llm.complete(messages, **kwargs)
        self.texts.append(reply.text)
        return reply

    def __getattr__(self, name: str):
        return getattr(self.llm, name)


def run_model(limit: int | None, var_dir: Path, echo=print) -> dict[str, Any]:
    """The local model explains the eval-suite order cases; its first answers are checked."""
    cases = [c for c in load_cases("all") if "order_id" in c.input]
    if limit:  # spread over the suites, not the first suite's cases only
        cases = cases[:: max(1, len(cases) // limit)][:limit]
    collection = sop_index(var_dir, echo=echo)
    results = triage_cases(cases)
    llm = get_llm()
    rows, seconds = [], []
    for case in cases:
        result = results[case.id]
        if not result.get("exceptions"):
            continue
        passages = passages_for(result, collection)
        recorder = _FirstAnswers(llm)
        started = time.perf_counter()
        final = explain_order(result, passages, recorder)  # type: ignore[arg-type]
        seconds.append(time.perf_counter() - started)
        if not recorder.texts:  # the model wrote nothing (a timeout): nothing to check
            rows.append({"case": case.id, "text": None, "reason": final["reason"], "fallback": True})
            echo(f"{case.id}: no answer ({final['reason']})")
            continue
        # the first answer as the planner would have read it: the model's sentence, the label code
        # adds when it cites none that applies, the decision line
        first, cited_by = compose(_bracket_citations(recorder.texts[0].strip(), passages), result, passages)
        errors = grounding_errors(first, result, passages)
        claims = claim_errors(first, result)
        rows.append(
            {
                "case": case.id,
                "text": first,
                "cited_by": cited_by,
                "errors": errors,
                "claim_errors": claims,
                "fallback": final["fallback"],
            }
        )
        if claims:
            echo(f"{case.id}: refused by the claim check: {'; '.join(claims)}\n    text: {first}")
        else:
            echo(f"{case.id}: claims ok{' (other checks: ' + '; '.join(errors) + ')' if errors else ''}")
    answered = [r for r in rows if r["text"] is not None]
    n = len(answered)
    refused_claims = sum(1 for r in answered if r["claim_errors"])
    return {
        "model": f"{llm.provider}:{llm.name}",
        "cases": len(rows),
        "no_answer": len(rows) - n,
        "explanations": n,
        "refused_by_any_check": sum(1 for r in answered if r["errors"]),
        # the model's sentence cited no passage that applies (code appended the label: cited_by retrieval)
        "uncited": sum(1 for r in answered if r["cited_by"] == "retrieval"),
        "refused_by_claim_check": refused_claims,
        "claim_refusal_rate": round(refused_claims / n, 4) if n else 0.0,
        "final_fallbacks": sum(1 for r in answered if r["fallback"]),
        "seconds_p50": round(sorted(seconds)[len(seconds) // 2], 2) if seconds else None,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.grounding.check", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", help="also run the local model on the first N order cases ('all' for every one)"
    )
    parser.add_argument("--var-dir", default="var", help="where the SOP index for --model is cached")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    report = run_hand_written()
    wrong_ok, wrong_n = report.count("refuse", True), report.count("refuse")
    right_ok, right_n = report.count("pass", True), report.count("pass")
    out: dict[str, Any] = {
        "hand_written": {
            "wrong_refused": wrong_ok,
            "wrong": wrong_n,
            "right_passed": right_ok,
            "right": right_n,
            "failures": [
                {"case": o.case, "expected": o.expected, "text": o.text, "errors": o.errors}
                for o in report.outcomes
                if not o.ok
            ],
        }
    }
    if args.model:
        limit = None if args.model == "all" else int(args.model)
        echo = (lambda _: None) if args.json else print
        out["model"] = run_model(limit, Path(args.var_dir), echo=echo)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"hand-written wrong explanations refused: {wrong_ok}/{wrong_n}")
        print(f"hand-written right explanations passed: {right_ok}/{right_n}")
        for f in out["hand_written"]["failures"]:
            print(f"  NOT MET {f['case']} (should {f['expected']}): {f['text']}\n    {f['errors']}")
        if "model" in out:
            m = out["model"]
            print(
                f"{m['model']}: {m['cases']} cases, {m['no_answer']} without an answer (timeouts); "
                f"{m['explanations']} explanations; refused by the claim check "
                f"{m['refused_by_claim_check']} ({m['claim_refusal_rate']:.1%}, an upper bound on wrong "
                f"refusals); refused by any check {m['refused_by_any_check']}; citing no SOP "
                f"{m['uncited']}; final fallbacks "
                f"{m['final_fallbacks']}; p50 {m['seconds_p50']} s"
            )
    return 0 if wrong_ok == wrong_n and right_ok == right_n else 1


if __name__ == "__main__":
    sys.exit(main())
