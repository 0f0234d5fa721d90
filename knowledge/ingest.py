"""Ingestion: SOP documents → section chunks with metadata → the vector store, incrementally.

A document is Markdown with YAML front matter (``id``, ``title``, ``applies_to``, ...) and numbered
headings (``## 3. Procedure``, ``### 3.2 Calculating the overage``). Each leaf section becomes one
chunk (a long one is split on paragraphs into parts that keep the same citation), embedded with
the document title and section heading in front of it. PDF, DOCX and HTML files are first turned
into that Markdown form by :mod:`knowledge.readers` (headings become sections; a PDF without
numbered headings gets one section per page, ``p.3``), then parsed and chunked the same way.

Incremental: every chunk carries the SHA-256 of its file and the file's chunk count. A file whose
hash and chunk count match what is indexed is skipped; a changed file's chunks are replaced; chunks
of files that disappeared from an ingested folder are deleted. A file is written in one ``add``
after its old chunks are deleted, so an interrupted run leaves at most that file missing or
incomplete, and the next run sees it and writes it again.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.readers import READERS, UnreadableFile, to_markdown

__all__ = [
    "EMPTY_INDEX",
    "SOP_DIR",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "Document",
    "IngestReport",
    "chunk_document",
    "ensure_index",
    "ingest",
    "parse_document",
    "type_field",
]

SOP_DIR = Path(__file__).resolve().parent / "sops"
REPO_ROOT = SOP_DIR.parents[1]
SUPPORTED_SUFFIXES = tuple(READERS)  # .md .markdown .txt .pdf .docx .html .htm
MAX_WORDS = 180  # ≈ 240 word pieces: the model reads at most 256

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,4})\s+(?:(\d+(?:\.\d+)*|p\.\d+)\.?\s+)?(.+?)\s*#*\s*$", re.M)
_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def type_field(exception_type: str) -> str:
    """The boolean metadata field that marks a chunk as applying to ``exception_type``."""
    return f"t_{exception_type}"


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class Document:
    doc_id: str
    title: str
    applies_to: list[str]
    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks_written: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.unchanged)} unchanged, "
            f"{len(self.deleted)} deleted, {len(self.skipped)} skipped; {self.chunks_written} chunks written"
        )


def parse_document(text: str, path: Path) -> Document:
    """Front matter and body. Without (valid) front matter: defaults from the file name and first heading."""
    match = _FRONT_MATTER.match(text)
    notes: list[str] = []
    meta: dict[str, Any] = {}
    body = text
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            loaded = None
            notes.append(f"front matter is not valid YAML ({str(exc).splitlines()[0]}); using defaults")
        except RecursionError:
            loaded = None
            notes.append("front matter is not valid YAML (nested too deeply); using defaults")
        if isinstance(loaded, dict):
            meta = loaded
        elif loaded is not None or not notes:
            notes.append("front matter is not a mapping; using defaults")
        body = text[match.end() :]
    else:
        notes.append("no front matter; indexed with defaults (id from the file name, no applies_to)")
    first_heading = next((m.group(3) for m in _HEADING.finditer(body) if len(m.group(1)) == 1), None)
    doc_id = str(meta.get("id") or path.stem.upper())
    title = str(meta.get("title") or first_heading or path.stem)
    raw_types = meta.get("applies_to") or []
    if isinstance(raw_types, str):
        raw_types = [t for t in re.split(r"[,\s]+", raw_types) if t]
    applies_to = []
    for t in raw_types:
        if isinstance(t, str) and _TYPE.match(t.strip()):
            applies_to.append(t.strip())
        else:
            notes.append(f"applies_to entry {t!r} is not an exception type; ignored")
    return Document(doc_id, title, applies_to, body, meta, notes)


def _sections(body: str) -> Iterable[tuple[str, str, str]]:
    """(section number, heading, text) for each heading that has text under it before the next heading."""
    matches = list(_HEADING.finditer(body))
    preamble = body[: matches[0].start()] if matches else body
    if preamble.strip():
        yield "", "", preamble.strip()
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        text = body[m.end() : end].strip()
        if text:
            yield m.group(2) or "", m.group(3).strip(), text


def _split(text: str) -> list[str]:
    """Paragraph groups of at most MAX_WORDS words (a longer single paragraph stays whole)."""
    parts: list[str] = []
    current: list[str] = []
    words = 0
    for para in re.split(r"\n\s*\n", text):
        n = len(para.split())
        if current and words + n > MAX_WORDS:
            parts.append("\n\n".join(current))
            current, words = [], 0
        current.append(para)
        words += n
    if current:
        parts.append("\n\n".join(current))
    return parts


def chunk_document(doc: Document, *, source: str, content_hash: str) -> list[Chunk]:
    base = {
        "doc_id": doc.doc_id,
        "title": doc.title,
        "applies_to": ",".join(doc.applies_to),
        "source": source,
        "content_hash": content_hash,
        **{type_field(t): True for t in doc.applies_to},
    }
    for key in ("owner_role", "version", "effective_date"):
        if doc.meta.get(key) is not None:
            base[key] = str(doc.meta[key])
    chunks: list[Chunk] = []
    for section, heading, text in _sections(doc.body):
        label = f"§{section} {heading}".strip() if section else heading
        for part, piece in enumerate(_split(text)):
            header = f"{doc.doc_id} {doc.title}" + (f" — {label}" if label else "")
            chunks.append(
                Chunk(
                    id=f"{source}#{section or heading or 'text'}#{len(chunks)}",
                    text=f"{header}\n\n{piece}",
                    metadata={**base, "section": section, "heading": heading, "part": part},
                )
            )
    for chunk in chunks:
        chunk.metadata["chunk_count"] = len(chunks)
    return chunks


def _source_key(path: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _collect(paths: Iterable[Path], echo: Callable[[str], None]) -> tuple[list[Path], list[Path], list[str]]:
    """Files to ingest, the folders they came from (for deletions), and lines for what was not found."""
    files: list[Path] = []
    roots: list[Path] = []
    missing: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            roots.append(p.resolve())
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(str(p))
            echo(f"skipped {p}: no such file or folder")
    return files, roots, missing


def _progress(items: list[Path], show: bool | None) -> Iterable[Path]:
    if show is None:
        show = sys.stderr.isatty() and not os.environ.get("CI")
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="ingest", unit="file")


def ingest(
    collection,
    paths: Iterable[Path | str] | None = None,
    *,
    echo: Callable[[str], None] = print,
    progress: bool | None = None,
) -> IngestReport:
    """Index ``paths`` (files or folders; default: the shipped SOPs) into ``collection``.

    Prints one line per file that is skipped or indexed with defaults, saying why.
    """
    report = IngestReport()
    files, roots, missing = _collect([Path(p) for p in (paths or [SOP_DIR])], echo)
    report.skipped.extend(missing)
    indexed = collection.get(include=["metadatas"])
    by_source: dict[str, list[dict]] = {}
    for meta in indexed["metadatas"] or []:
        by_source.setdefault(str(meta.get("source")), []).append(meta)

    seen: set[str] = set()
    for path in _progress(files, progress):
        source = _source_key(path)
        seen.add(source)
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.skipped.append(source)
            echo(
                f"skipped {source}: unsupported file type {path.suffix or '(none)'} "
                f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
            )
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            report.skipped.append(source)
            echo(f"skipped {source}: unreadable ({exc.__class__.__name__}: {exc})")
            continue
        digest = hashlib.sha256(raw).hexdigest()
        old = by_source.get(source, [])
        if (
            old
            and all(m.get("content_hash") == digest for m in old)
            and len(old) == old[0].get("chunk_count")
        ):
            report.unchanged.append(source)
            continue
        try:
            text = to_markdown(path.suffix, raw)
        except (UnreadableFile, UnicodeDecodeError) as exc:
            report.skipped.append(source)
            reason = str(exc) if isinstance(exc, UnreadableFile) else f"{exc.__class__.__name__}: {exc}"
            echo(f"skipped {source}: unreadable ({reason})")
            continue
        doc = parse_document(text, path)
        for note in doc.notes:
            echo(f"{source}: {note}")
        chunks = chunk_document(doc, source=source, content_hash=digest)
        if old:
            collection.delete(where={"source": source})
        if not chunks:
            report.skipped.append(source)
            echo(f"skipped {source}: no text")
            continue
        collection.add(
            ids=[c.id for c in chunks],
            documents=[c.text for c in chunks],
            metadatas=[c.metadata for c in chunks],
        )
        report.chunks_written += len(chunks)
        (report.replaced if old else report.added).append(source)

    named_missing = {_source_key(Path(m)) for m in missing}
    for source in sorted(set(by_source) - seen):
        full = (REPO_ROOT / source).resolve() if not Path(source).is_absolute() else Path(source)
        in_root = any(full.is_relative_to(root) for root in roots)
        if (in_root or source in named_missing) and not full.exists():
            collection.delete(where={"source": source})
            report.deleted.append(source)
    return report


EMPTY_INDEX = "the SOP index is empty: run `copilot knowledge ingest`"


def ensure_index(collection, *, echo: Callable[[str], None] = print) -> IngestReport | None:
    """The SOP index is never silently empty: on first use (an empty ``collection``) index the
    shipped SOPs, saying so through ``echo``; None when the index already held chunks. Raises
    ``RuntimeError`` (:data:`EMPTY_INDEX`, the command that fixes it) when it is still empty."""
    if collection.count() > 0:
        return None
    echo("the SOP index is empty: indexing the shipped SOPs (first use) ...")
    report = ingest(collection, None, echo=echo, progress=False)
    echo(report.summary())
    if collection.count() == 0:
        raise RuntimeError(EMPTY_INDEX)
    return report
