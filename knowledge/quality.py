"""Retrieval quality: recall@1, recall@3 and MRR of ``retrieve`` on a question set.

The question set (``evals/retrieval/questions.yaml``) lists operator questions, each with the
citation of the SOP section that answers it (``expect``, plus optional ``also`` alternatives) and
the exception type it is about (``type``, or null for governance questions).

Each question is asked twice through :func:`knowledge.retrieve.retrieve`: without a filter, and with
``exception_types=[type]`` where ``type`` is set (questions without a type are asked unfiltered in
both runs). Passages are collapsed to their citations (a long section split into parts keeps one
citation), and the rank of the first acceptable citation in the top ``k`` (default 10) gives:

- recall@n: share of questions with an acceptable citation in the first n;
- MRR: mean of 1/rank (0 when none is in the top ``k``).

``python -m knowledge.quality [--json]`` ingests the shipped SOPs into a temporary index with the
real local embedding model and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.embeddings import MiniLMEmbeddingFunction, ModelIntegrityError, ModelNotInstalledError
from knowledge.ingest import ingest
from knowledge.retrieve import retrieve
from knowledge.store import open_collection

__all__ = ["QUESTIONS", "Question", "evaluate", "load_questions", "main", "rank_of", "score"]

QUESTIONS = Path(__file__).resolve().parents[1] / "evals" / "retrieval" / "questions.yaml"
TOP_K = 10
MODES = ("unfiltered", "filtered")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    expect: str
    also: tuple[str, ...] = ()
    type: str | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.expect, *self.also)


class QuestionSetError(ValueError):
    """A question set that cannot be read; the message names the file and what is wrong."""


def load_questions(path: Path | str = QUESTIONS) -> list[Question]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        items = data["questions"] if isinstance(data, dict) else data
        questions = []
        for item in items:
            also = item.get("also") or ()
            questions.append(
                Question(
                    id=str(item["id"]),
                    question=str(item["question"]),
                    expect=str(item["expect"]),
                    also=tuple(str(a) for a in ([also] if isinstance(also, str) else also)),
                    type=item.get("type") or None,
                )
            )
    except OSError as exc:
        raise QuestionSetError(f"{path}: cannot read the question set: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise QuestionSetError(f"{path}: not UTF-8 text") from exc
    except RecursionError:
        raise QuestionSetError(f"{path}: malformed YAML: nested too deeply") from None
    except yaml.YAMLError as exc:  # one line: where and what, not PyYAML's multi-line report
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise QuestionSetError(f"{path}: malformed YAML{where}: {problem}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise QuestionSetError(
            f"{path}: expected a list of questions with id, question and expect ({exc})"
        ) from exc
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise QuestionSetError(f"{path}: duplicate question ids")
    return questions


def rank_of(citations: Sequence[str], accepted: Sequence[str]) -> int | None:
    """1-based rank of the first accepted citation among the distinct ``citations``, or None."""
    distinct: list[str] = []
    for c in citations:
        if c not in distinct:
            distinct.append(c)
    for i, c in enumerate(distinct, 1):
        if c in accepted:
            return i
    return None


def score(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1, recall@3 and MRR from the rank of each question (None: not in the top k)."""
    n = len(ranks)
    if n == 0:
        return {"recall@1": 0.0, "recall@3": 0.0, "mrr": 0.0}
    return {
        "recall@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "recall@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr": sum(1.0 / r for r in ranks if r is not None) / n,
    }


def evaluate(
    questions_path: Path | str = QUESTIONS,
    *,
    collection,
    k: int = TOP_K,
    retriever: Callable[..., list] = retrieve,
) -> dict[str, Any]:
    """Metrics of ``retriever`` over ``collection`` for the questions in ``questions_path``.

    Returns ``{"questions": n, "k": k, "unfiltered": {...}, "filtered": {...}}`` where each mode holds
    ``recall@1``, ``recall@3``, ``mrr`` and ``misses``: the questions whose accepted citations are not
    in the top 3, with the rank found (or None) and the top 3 citations returned.
    """
    questions = load_questions(questions_path)
    result: dict[str, Any] = {"questions": len(questions), "k": k}
    for mode in MODES:
        ranks: list[int | None] = []
        misses = []
        for q in questions:
            types = [q.type] if mode == "filtered" and q.type else None
            passages = retriever(q.question, types, k=k, collection=collection)
            citations = [p.citation for p in passages]
            rank = rank_of(citations, q.accepted)
            ranks.append(rank)
            if rank is None or rank > 3:
                top = list(dict.fromkeys(citations))[:3]
                misses.append(
                    {
                        "id": q.id,
                        "question": q.question,
                        "expect": list(q.accepted),
                        "type": q.type,
                        "rank": rank,
                        "top3": top,
                    }
                )
        result[mode] = {**score(ranks), "misses": misses}
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"retrieval quality: {result['questions']} questions, ranks over the top {result['k']}",
        "",
        f"{'mode':<12} {'recall@1':>9} {'recall@3':>9} {'MRR':>7}",
    ]
    for mode in MODES:
        m = result[mode]
        lines.append(f"{mode:<12} {m['recall@1']:>9.3f} {m['recall@3']:>9.3f} {m['mrr']:>7.3f}")
    for mode in MODES:
        misses = result[mode]["misses"]
        lines += ["", f"misses at 3 ({mode}): {len(misses)}"]
        for miss in misses:
            rank = miss["rank"] if miss["rank"] is not None else f">{result['k']}"
            lines.append(
                f"  {miss['id']}: expected {' | '.join(miss['expect'])}, rank {rank}; "
                f"got {', '.join(miss['top3'])}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question set (YAML)")
    parser.add_argument("-k", type=int, default=TOP_K, help="passages retrieved per question")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        load_questions(args.questions)  # a malformed set fails before the model is loaded
    except QuestionSetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        ef = MiniLMEmbeddingFunction()
    except (ModelNotInstalledError, ModelIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="copilot-quality-") as tmp:
        collection = open_collection(ef, var_dir=tmp)
        ingest(collection, echo=lambda line: print(line, file=sys.stderr), progress=False)
        result = evaluate(args.questions, collection=collection, k=args.k)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
