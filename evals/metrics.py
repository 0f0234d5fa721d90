"""Metrics of an eval run: pass rate, pass^k, per-type precision/recall, accuracies, latency, usage."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from evals.runner import NOT_RUN, SKIPPED, CaseResult
from tools.domain import EXCEPTION_TYPES

__all__ = ["confusion", "percentile", "summarize"]

NONE = "(none)"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def confusion(results: list[CaseResult]) -> dict[str, dict[str, int]]:
    """Rows: expected type (or (none) for a type detected but not expected); columns: detected type
    (or (none) for an expected type that was missed). The diagonal counts hits. Only the cases that
    state ``exceptions`` count (a case checks only what it states), as in the per-type figures."""
    m: dict[str, Counter] = defaultdict(Counter)
    for r in _scored(results, "exceptions"):
        if r.status == "error":
            continue
        expected, detected = set(r.expected_types), set(r.detected_types)
        for t in expected:
            m[t][t if t in detected else NONE] += 1
        for t in detected - expected:
            m[NONE][t] += 1
    return {row: dict(cols) for row, cols in m.items()}


def _scored(results: list[CaseResult], name: str) -> list[CaseResult]:
    return [r for r in results if any(c.name == name and c.status != NOT_RUN for c in r.checks)]


def summarize(runs: list[list[CaseResult]]) -> dict[str, Any]:
    """The summary of a run (``runs``: one list of results per repetition)."""
    first = runs[0] if runs else []
    everything = [r for run in runs for r in run]
    keys = [r.key for r in first]
    passed_all = [k for k in keys if all(any(r.key == k and r.status == "pass" for r in run) for run in runs)]
    failed = sorted({r.key for r in everything if r.status in ("fail", "error")})
    incomplete = sorted({r.key for r in everything if r.status == "incomplete"} - set(failed))
    violations = [f"{r.key}: {v}" for r in everything for v in r.violations]

    per_type = {}
    typed = _scored(everything, "exceptions")
    for t in EXCEPTION_TYPES:
        tp = sum(1 for r in typed if t in r.expected_types and t in r.detected_types)
        fp = sum(1 for r in typed if t not in r.expected_types and t in r.detected_types)
        fn = sum(1 for r in typed if t in r.expected_types and t not in r.detected_types)
        per_type[t] = {
            "support": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
        }

    acted = _scored(everything, "action")
    routed = _scored(everything, "approver_role")
    explained = [r for r in everything if r.fallback is not None]
    cited = sum(len(r.citations) for r in everything)
    invalid = sum(len(r.invalid_citations) for r in everything)
    secs = [r.seconds for r in everything if r.status != "error"]
    not_run: Counter = Counter()
    reasons: dict[str, set[str]] = defaultdict(set)
    skipped: dict[str, list[str]] = defaultdict(list)
    for r in everything:
        for c in r.checks:
            if c.status == NOT_RUN:
                not_run[c.name] += 1
                reasons[c.name].add(c.detail)
            elif c.status == SKIPPED:
                skipped[c.name].append(f"{r.key}: {c.detail}")
    n = len(everything) or 1
    per_run_pass = [sum(r.status == "pass" for r in run) / len(run) for run in runs if run]
    return {
        "cases": len(first),
        "repeat": len(runs),
        "passed": len(passed_all),
        "failed": failed,
        "incomplete": incomplete,
        "violations": len(violations),
        "violation_details": violations,
        "pass_rate": _ratio(len(passed_all), len(first)),
        "pass_rate_per_run": [round(x, 4) for x in per_run_pass],
        "pass_hat_k": _ratio(len(passed_all), len(first)) if len(runs) > 1 else None,
        "action_accuracy": _ratio(sum(r.action in (r.expected_action or []) for r in acted), len(acted)),
        "approver_role_accuracy": _ratio(sum(r.role == r.expected_role for r in routed), len(routed)),
        "per_type": per_type,
        "confusion": confusion(everything),
        "citations": cited,
        "citation_validity": _ratio(cited - invalid, cited),
        "explanations": len(explained),
        "llm_fallbacks": sum(1 for r in explained if r.fallback),
        "grounding_failures": sum(1 for r in explained if r.grounding_failure),
        "latency_p50_s": _round(percentile(secs, 50)),
        "latency_p95_s": _round(percentile(secs, 95)),
        "llm_calls": sum(r.llm_calls for r in everything),
        "llm_calls_per_case": round(sum(r.llm_calls for r in everything) / n, 3),
        "tokens_per_case": round(sum(r.prompt_tokens + r.completion_tokens for r in everything) / n, 1),
        "not_run": {
            name: {"checks": count, "reasons": sorted(reasons[name])}
            for name, count in sorted(not_run.items())
        },
        "skipped": {name: sorted(set(why)) for name, why in sorted(skipped.items())},
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
