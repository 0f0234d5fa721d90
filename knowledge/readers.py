"""Format readers: a file's bytes → the Markdown-like text that :func:`knowledge.ingest.parse_document` takes.

Every format goes through the same parser and chunker; a reader only has to say where the headings
are. Markdown and text pass through as they are. DOCX paragraphs styled Heading 1/2/3 and HTML
``h1``–``h3`` become ``#``/``##``/``###`` headings (a heading that starts with a number such as
"3.2 Who approves" gives section 3.2). PDF text is read per page: when the pages carry numbered
headings ("3.2 Who approves" alone on a line) those become the sections, otherwise every page is one
section ``p.N``. None of these formats carries front matter, so the document gets the defaults
(id from the file name, title from the first level-1 heading or the file name, no applies_to).

A file a parser cannot read raises :class:`UnreadableFile` with the reason; the caller skips it.
The parsers are imported only when a file of their type is read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

__all__ = ["READERS", "UnreadableFile", "read_docx", "read_html", "read_pdf", "to_markdown"]

Block = tuple[int, str]  # (heading level 1-4, text) or (0, paragraph text)


class UnreadableFile(Exception):
    """The file could not be parsed; the message says why."""


_HEADING_STYLE = re.compile(r"^Heading ([1-3])$")
# A numbered heading alone on a PDF line: "3. Procedure", "3.2 Who approves" — short, capitalised, not ending
# in punctuation (so a numbered step "1. Call the customer." stays text).
_PDF_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+([A-Z][^\n]{0,78}?[^.,;:\s])\s*$")
_SENTENCE_END = re.compile(r"[.:;!?]\s*$")
_BLOCK_TAGS = frozenset(
    "p div li ul ol table thead tbody tr td th section article header footer main nav aside blockquote "
    "pre dl dt dd h4 h5 h6 br hr form figure figcaption address body".split()
)
_DROP_TAGS = "//script|//style|//noscript|//template|//head"


def _render(blocks: Iterable[Block]) -> str:
    """Markdown: headings as ``#`` lines, paragraphs separated by blank lines. Paragraph lines that
    would read as a heading or as front matter are indented by one space so they stay text."""
    out = []
    for level, text in blocks:
        if level:
            out.append("#" * level + " " + " ".join(text.split()))
        else:
            out.append(re.sub(r"^(?=#|---)", " ", text.strip(), flags=re.M))
    return "\n\n".join(part for part in out if part.strip()) + "\n"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")  # UnicodeDecodeError: the caller reports it as unreadable


def read_docx(raw: bytes) -> str:
    try:
        import docx

        document = docx.Document(io.BytesIO(raw))
        blocks: list[Block] = []
        for item in document.iter_inner_content():
            if isinstance(item, docx.table.Table):
                for row in item.rows:
                    cells = [c.text.strip() for c in row.cells]
                    if any(cells):
                        blocks.append((0, " | ".join(cells)))
                continue
            text = item.text.strip()
            if not text:
                continue
            style = item.style.name if item.style is not None else ""
            heading = _HEADING_STYLE.match(style or "")
            level = int(heading.group(1)) if heading else 1 if style == "Title" else 0
            blocks.append((level, text))
    except Exception as exc:  # a damaged zip or XML: python-docx raises many kinds
        raise UnreadableFile(f"not a readable DOCX: {exc.__class__.__name__}: {exc}") from exc
    return _render(blocks)


def _paragraphs(lines: list[str]) -> Iterable[str]:
    """PDF lines joined into paragraphs: a blank line or a sentence end after ~40 words closes one."""
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        if current and (
            not line.strip() or (_SENTENCE_END.search(line) and len(" ".join(current).split()) >= 40)
        ):
            yield " ".join(current)
            current = []


def read_pdf(raw: bytes) -> str:
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("encrypted PDF (needs a password)")
        pages = [(page.extract_text() or "").splitlines() for page in reader.pages]
        meta = reader.metadata
        title = str((meta.get("/Title") if meta else None) or "").strip()
    except UnreadableFile:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise UnreadableFile(f"not a readable PDF: {exc.__class__.__name__}: {exc}") from exc
    blocks: list[Block] = [(1, title)] if title else []
    numbered = any(_PDF_HEADING.match(line.strip()) for lines in pages for line in lines)
    for number, lines in enumerate(pages, 1):
        if not numbered:
            if any(line.strip() for line in lines):
                blocks.append((2, f"p.{number} Page {number}"))
                blocks.extend((0, p) for p in _paragraphs(lines))
            continue
        pending: list[str] = []
        for line in lines:
            match = _PDF_HEADING.match(line.strip())
            if match:
                blocks.extend((0, p) for p in _paragraphs(pending))
                pending = []
                blocks.append((min(2 + match.group(1).count("."), 4), line.strip()))
            else:
                pending.append(line)
        blocks.extend((0, p) for p in _paragraphs(pending))
    return _render(blocks)


def read_html(raw: bytes) -> str:
    try:
        import lxml.html

        root = lxml.html.document_fromstring(raw)
    except Exception as exc:  # empty or undecodable document
        raise UnreadableFile(f"not readable HTML: {exc.__class__.__name__}: {exc}") from exc
    for element in root.xpath(_DROP_TAGS):
        element.drop_tree()
    blocks: list[Block] = []
    buffer: list[str] = []

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            blocks.append((0, text))

    def walk(element) -> None:
        tag = element.tag if isinstance(element.tag, str) else None  # comments, processing instructions
        if tag in ("h1", "h2", "h3"):
            flush()
            text = " ".join(element.text_content().split())
            if text:
                blocks.append((int(tag[1]), text))
        elif tag is not None:
            if tag in _BLOCK_TAGS:
                flush()
            buffer.append(element.text or "")
            for child in element:
                walk(child)
            if tag in _BLOCK_TAGS:
                flush()
        buffer.append(element.tail or "")

    try:
        walk(root)
    except RecursionError as exc:
        raise UnreadableFile("HTML nested too deeply to read") from exc
    flush()
    return _render(blocks)


READERS: dict[str, Callable[[bytes], str]] = {
    ".md": _text,
    ".markdown": _text,
    ".txt": _text,
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".html": read_html,
    ".htm": read_html,
}


def to_markdown(suffix: str, raw: bytes) -> str:
    """The Markdown-like text of a file of type ``suffix`` (one of :data:`READERS`)."""
    return READERS[suffix.lower()](raw)
