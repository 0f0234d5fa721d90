"""Retrieval: the SOP passages nearest to a question, optionally only those for given exception types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.ingest import type_field

__all__ = ["CITATION_PATTERN", "Passage", "applies_to_of", "citation", "retrieve", "unknown_citations"]

# What :func:`citation` writes: a document id, then a numbered section (§3.2) or a PDF page (p.3).
CITATION_PATTERN = r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)* (?:§[0-9]+(?:\.[0-9]+)*|p\.[0-9]+)$"
_CITATION = re.compile(CITATION_PATTERN)


@dataclass(frozen=True)
class Passage:
    citation: str  # "SOP-CREDIT-001 §3.2"
    text: str  # the section text, without the title line used for embedding
    score: float  # cosine similarity, higher is closer
    doc_id: str
    title: str
    section: str
    heading: str
    source: str
    # The exception types the passage's document applies to (its ``applies_to``), e.g. ("CREDIT_HOLD",).
    applies_to: tuple[str, ...] = ()


def applies_to_of(meta: dict) -> tuple[str, ...]:
    """The exception types a chunk's document applies to, from its index metadata."""
    listed = [t for t in str(meta.get("applies_to") or "").split(",") if t.strip()]
    flagged = [
        k[len(type_field("")) :] for k, v in meta.items() if k.startswith(type_field("")) and v is True
    ]
    return tuple(dict.fromkeys(t.strip() for t in listed + flagged))


def citation(doc_id: str, section: str) -> str:
    """``SOP-CREDIT-001 §3.2`` for a numbered section; ``MANUAL p.3`` for a page of a PDF."""
    if not section:
        return doc_id
    return f"{doc_id} {section}" if section.startswith("p.") else f"{doc_id} §{section}"


def unknown_citations(citations: Iterable[str], *, collection) -> list[str]:
    """The citations that are not ``DOC §section`` (or ``DOC p.N``) of a chunk in ``collection``."""
    unknown = []
    for text in citations:
        if not isinstance(text, str) or not _CITATION.fullmatch(text):
            unknown.append(text)
            continue
        doc_id, _, section = text.partition(" ")
        section = section.removeprefix("§")
        found = collection.get(
            where={"$and": [{"doc_id": doc_id}, {"section": section}]}, limit=1, include=[]
        )
        if not found["ids"]:
            unknown.append(text)
    return unknown


def _where(exception_types: Iterable[str] | None) -> dict | None:
    types = sorted(set(exception_types or ()))
    if not types:
        return None
    clauses = [{type_field(t): True} for t in types]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def retrieve(
    query: str, exception_types: Iterable[str] | None = None, k: int = 4, *, collection
) -> list[Passage]:
    """The ``k`` passages of ``collection`` closest to ``query``, best first.

    ``exception_types`` (e.g. ``["CREDIT_HOLD"]``) keeps only passages of documents whose
    ``applies_to`` names at least one of them.
    """
    if k <= 0 or not query.strip():
        return []
    result = collection.query(
        query_texts=[query],
        n_results=k,
        where=_where(exception_types),
        include=["documents", "metadatas", "distances"],
    )
    passages = []
    for text, meta, distance in zip(
        result["documents"][0], result["metadatas"][0], result["distances"][0], strict=False
    ):
        body = text.split("\n\n", 1)[1] if "\n\n" in text else text
        section = str(meta.get("section") or "")
        passages.append(
            Passage(
                citation=citation(str(meta["doc_id"]), section),
                text=body,
                score=round(1.0 - float(distance), 4),
                doc_id=str(meta["doc_id"]),
                title=str(meta.get("title", "")),
                section=section,
                heading=str(meta.get("heading", "")),
                source=str(meta.get("source", "")),
                applies_to=applies_to_of(meta),
            )
        )
    return passages
