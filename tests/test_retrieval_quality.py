"""Retrieval quality: the metric arithmetic, the question set's citations, the real numbers."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from knowledge.embeddings import FakeEmbeddingFunction
from knowledge.ingest import SOP_DIR, ingest, parse_document
from knowledge.quality import QUESTIONS, evaluate, load_questions, main, rank_of, score
from knowledge.retrieve import Passage
from knowledge.store import open_collection

EXCEPTION_TYPES = {
    "CREDIT_HOLD",
    "PRICING_DISCREPANCY",
    "INVENTORY_SHORTFALL",
    "SUBSTITUTION_REQUEST",
    "CARRIER_DISRUPTION",
    "PROCUREMENT_DELAY",
    "MASTER_DATA_INCOMPLETE",
    "COMPLIANCE_HOLD",
    "RECURRING_ANOMALY",
    "ALLOCATION_CONFLICT",  # domain.md §6
}
_NUMBERED_HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s+\S", re.M)


def _corpus_citations() -> dict[str, set[str]]:
    """doc id -> the citations of its numbered headings, parsed from the SOP files themselves."""
    out: dict[str, set[str]] = {}
    for path in sorted(SOP_DIR.glob("*.md")):
        doc = parse_document(path.read_text(encoding="utf-8"), path)
        out[doc.doc_id] = {f"{doc.doc_id} §{n}" for n in _NUMBERED_HEADING.findall(doc.body)}
    return out


def _write_set(path: Path, items: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"questions": items}, allow_unicode=True), encoding="utf-8")
    return path


def _passage(cit: str) -> Passage:
    doc, _, section = cit.partition(" §")
    return Passage(
        citation=cit, text="", score=0.0, doc_id=doc, title="", section=section, heading="", source=""
    )


# --- the arithmetic -------------------------------------------------------------------------


def test_rank_counts_distinct_citations_and_accepts_alternatives():
    got = ["A §1", "A §1", "B §2", "C §3", "D §4"]
    assert rank_of(got, ["A §1"]) == 1
    assert rank_of(got, ["B §2"]) == 2  # the repeated part of A §1 does not push B down
    assert rank_of(got, ["X §9", "C §3"]) == 3
    assert rank_of(got, ["X §9"]) is None
    assert rank_of([], ["A §1"]) is None


def test_score_by_hand():
    # ranks 1, 2, 4, none, 3 -> recall@1 1/5, recall@3 3/5, MRR (1 + 1/2 + 1/4 + 0 + 1/3) / 5
    m = score([1, 2, 4, None, 3])
    assert m["recall@1"] == pytest.approx(0.2)
    assert m["recall@3"] == pytest.approx(0.6)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 1 / 3) / 5)
    assert score([]) == {"recall@1": 0.0, "recall@3": 0.0, "mrr": 0.0}


def test_evaluate_on_a_hand_made_set_with_a_scripted_retriever(tmp_path):
    """Filtered and unfiltered runs, the filter only where a type is set, misses listed."""
    path = _write_set(
        tmp_path / "q.yaml",
        [
            {"id": "a", "question": "qa", "expect": "S-1 §1", "type": "CREDIT_HOLD"},
            {"id": "b", "question": "qb", "expect": "S-2 §2", "also": ["S-2 §3"], "type": "CREDIT_HOLD"},
            {"id": "c", "question": "qc", "expect": "S-3 §1", "type": None},
        ],
    )
    results = {
        # question -> (unfiltered citations, filtered citations)
        "qa": (["S-9 §1", "S-1 §1"], ["S-1 §1"]),
        "qb": (["S-9 §1", "S-9 §2", "S-9 §3", "S-2 §3"], ["S-2 §1", "S-2 §3"]),
        "qc": (["S-8 §1", "S-8 §2"], None),  # no type: never filtered
    }
    calls = []

    def retriever(query, exception_types=None, k=4, *, collection):
        calls.append((query, exception_types, k, collection))
        unfiltered, filtered = results[query]
        return [_passage(c) for c in (filtered if exception_types else unfiltered)]

    result = evaluate(path, collection="COL", retriever=retriever)
    assert result["questions"] == 3 and result["k"] == 10
    assert ("qc", None, 10, "COL") in calls and all(
        types in (None, ["CREDIT_HOLD"]) for _, types, _, _ in calls
    )
    assert [c[1] for c in calls if c[0] == "qc"] == [None, None]
    un, fi = result["unfiltered"], result["filtered"]
    # unfiltered ranks: a 2, b 4, c none
    assert (un["recall@1"], un["recall@3"]) == (0.0, pytest.approx(1 / 3))
    assert un["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 3)
    assert [(m["id"], m["rank"]) for m in un["misses"]] == [("b", 4), ("c", None)]
    assert un["misses"][0]["top3"] == ["S-9 §1", "S-9 §2", "S-9 §3"]
    # filtered ranks: a 1, b 2, c none
    assert fi["recall@1"] == pytest.approx(1 / 3) and fi["recall@3"] == pytest.approx(2 / 3)
    assert fi["mrr"] == pytest.approx((1 + 1 / 2) / 3)
    assert [m["id"] for m in fi["misses"]] == ["c"]


def test_evaluate_through_the_real_index_with_the_fake_embedding(tmp_path):
    """End to end through ingest and retrieve: the type filter removes another type's closer passage."""
    sops = tmp_path / "sops"
    sops.mkdir()
    (sops / "credit.md").write_text(
        "---\nid: SOP-C\ntitle: Credit\napplies_to: [CREDIT_HOLD]\n---\n\n"
        "## 1. Purpose\n\nBlue release approval limits.\n\n"
        "### 3.1 Releases\n\nA credit manager approves a release above the overage limit.\n",
        encoding="utf-8",
    )
    (sops / "pricing.md").write_text(
        "---\nid: SOP-P\ntitle: Pricing\napplies_to: [PRICING_DISCREPANCY]\n---\n\n"
        "### 3.1 Approve release above limit overage\n\nrelease approval above limit overage manager\n",
        encoding="utf-8",
    )
    col = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path / "var")
    ingest(col, [sops], echo=lambda _: None, progress=False)
    path = _write_set(
        tmp_path / "q.yaml",
        [
            {
                "id": "x",
                "question": "release approval above limit overage manager",
                "expect": "SOP-C §3.1",
                "type": "CREDIT_HOLD",
            },
        ],
    )
    result = evaluate(path, collection=col)
    assert result["unfiltered"]["recall@1"] == 0.0  # the pricing passage is the bag-of-words twin
    assert result["filtered"]["recall@1"] == 1.0 and result["filtered"]["mrr"] == 1.0


# --- the shipped question set ---------------------------------------------------------------


def test_question_set_is_complete_and_every_citation_exists_in_the_corpus():
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 64
    corpus = _corpus_citations()
    existing = set().union(*corpus.values())
    missing = [(q.id, c) for q in questions for c in q.accepted if c not in existing]
    assert not missing, missing
    assert {q.expect.split(" §")[0] for q in questions} == set(corpus), "every SOP has a question"
    types = Counter(q.type for q in questions)
    assert set(types) - {None} == EXCEPTION_TYPES and types[None] > 0
    assert all(n >= 5 for t, n in types.items() if t)
    assert len({q.question.strip().lower() for q in questions}) == len(questions)


def test_question_types_match_the_expected_documents_applies_to():
    """With the filter on, the expected passage must be reachable: its document applies to the type."""
    applies = {}
    for path in SOP_DIR.glob("*.md"):
        doc = parse_document(path.read_text(encoding="utf-8"), path)
        applies[doc.doc_id] = set(doc.applies_to)
    unreachable = [
        q.id
        for q in load_questions(QUESTIONS)
        if q.type and not any(q.type in applies[c.split(" §")[0]] for c in q.accepted)
    ]
    assert not unreachable, unreachable


# --- the real model on the shipped set ------------------------------------------------------


@pytest.mark.model
def test_real_model_on_the_shipped_set(capsys):
    """Measured 2026-12-04 on 108 questions: unfiltered recall@1 0.722, recall@3 0.889, MRR 0.815;
    filtered recall@1 0.769, recall@3 0.907, MRR 0.849 (docs/benchmarks.md). The target (recall@3
    ≥ 0.9) is met with the exception-type filter only; unfiltered is held to its measured level."""
    import json

    assert main(["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == len(load_questions(QUESTIONS))
    for mode in ("unfiltered", "filtered"):
        m = result[mode]
        assert 0.0 <= m["recall@1"] <= m["recall@3"] <= 1.0 and 0.0 <= m["mrr"] <= 1.0
    assert result["filtered"]["recall@3"] >= 0.9
    assert result["unfiltered"]["recall@3"] >= 0.88
