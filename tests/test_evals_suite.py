"""CI gate: the whole eval suite with the fake (scripted) model fails the build on any
failing case or broken invariant; a few cases with the real local model (marked ``model``).

The fake run indexes the shipped SOPs with the deterministic fake embedding (seconds instead of
the local model's ~25 s); `copilot eval` itself always uses the local embedding model.
"""

from __future__ import annotations

import pytest

from evals.evaluate import evaluate


@pytest.fixture(scope="module")
def sops(tmp_path_factory):
    from knowledge.embeddings import FakeEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection

    collection = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path_factory.mktemp("sops"))
    ingest(collection, None, echo=lambda _: None, progress=False)
    return collection


def _failures(report) -> list[str]:
    out = []
    for r in report["runs"][0]:
        if r["status"] in ("fail", "error"):
            bad = [f"{c['name']}: {c['detail']}" for c in r["checks"] if c["status"] == "fail"]
            out.append(f"{r['key']}: " + "; ".join(bad + r["violations"]))
    return out


def test_full_suite_with_the_fake_model_passes(sops):
    report = evaluate("all", provider="fake", collection=sops, progress=False)
    s = report["summary"]
    assert s["cases"] >= 100
    assert _failures(report) == []
    assert s["violations"] == 0
    assert s["action_accuracy"] == 1.0 and s["approver_role_accuracy"] == 1.0
    # Every check ran: the approval step, the explanation and the audit chain are all part of the build.
    assert s["incomplete"] == [], s["not_run"]
    assert s["llm_fallbacks"] == 0 and s["citation_validity"] == 1.0


CASES = ["credit-flag-only", "stock-realloc-same-region", "text-one-order"]


@pytest.mark.model
def test_a_few_cases_with_the_local_model(sops):
    report = evaluate("all", provider="llamacpp", collection=sops, progress=False, only=CASES)
    s = report["summary"]
    assert s["cases"] == len(CASES)
    assert _failures(report) == [] and s["violations"] == 0
    assert s["llm_calls"] > 0
