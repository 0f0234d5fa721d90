"""The customer's own documents: DOCX, PDF and HTML readers feeding the one parser and chunker."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest

from knowledge.embeddings import FakeEmbeddingFunction
from knowledge.ingest import ingest
from knowledge.readers import read_html, read_pdf
from knowledge.store import open_collection


@pytest.fixture
def collection(tmp_path):
    return open_collection(FakeEmbeddingFunction(), var_dir=tmp_path / "var")


def _pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per entry, a correct xref table."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT /F1 11 Tf 14 TL 72 760 Td"] + [f"({line}) Tj T*" for line in lines] + ["ET"]
        stream = "\n".join(ops).encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    if title:
        objects.append(f"<< /Title ({title}) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _docx(path: Path) -> None:
    document = docx.Document()
    document.add_heading("Damaged pallet claims", level=1)
    document.add_paragraph("How the warehouse handles pallets that arrive damaged.")
    document.add_heading("1. Purpose", level=2)
    document.add_paragraph("Claims are filed within 48 hours of delivery.")
    document.add_heading("2.1 Photographs", level=3)
    document.add_paragraph("Take four photographs of every damaged pallet.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Carrier"
    table.rows[0].cells[1].text = "Claim window 7 days"
    document.add_paragraph("Normal text styled as a paragraph.", style="List Bullet")
    document.save(path)


HTML = b"""<!doctype html><html><head><title>Ignored</title><style>h2 { color: red }</style></head>
<body><script>var secret = "do not index";</script>
<h1>Returns portal</h1>
<p>Customers   return goods
   through the portal.</p>
<h2>3. Eligibility</h2><p>Unopened goods within <b>30 days</b>.</p><ul><li>Keep the label.</li><li># not a heading</li></ul>
<!-- a comment --><h3>3.1 Refunds</h3><div>Refunds are issued within 5 working days.</div>
</body></html>"""


def _metas(col, name: str) -> list[dict]:
    metas = col.get(include=["metadatas"])["metadatas"]
    return sorted((m for m in metas if m["source"].endswith(name)), key=lambda m: m["section"])


def test_folder_of_mixed_formats_is_ingested_with_citations_and_skips(tmp_path, collection):
    docs = tmp_path / "docs"
    docs.mkdir()
    _docx(docs / "claims.docx")
    (docs / "returns.html").write_bytes(HTML)
    (docs / "manual.pdf").write_bytes(
        _pdf(
            [["Forklift safety briefing for night shifts."], ["Second page: charging the batteries."]],
            title="Forklift manual",
        )
    )
    (docs / "procedure.pdf").write_bytes(
        _pdf(
            [
                ["1. Purpose", "Carrier rebooking is done by dispatch."],
                ["2.1 Deadlines", "Rebook within 4 hours of the missed pickup."],
            ]
        )
    )
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage")
    (docs / "rates.xlsx").write_bytes(b"PK\x03\x04 not really")
    lines: list[str] = []
    report = ingest(collection, [docs], echo=lines.append)
    text = "\n".join(lines)

    assert {Path(s).name for s in report.added} == {
        "claims.docx",
        "returns.html",
        "manual.pdf",
        "procedure.pdf",
    }
    assert {Path(s).name for s in report.skipped} == {"corrupt.pdf", "rates.xlsx"}
    assert "corrupt.pdf: unreadable (not a readable PDF" in text
    assert "rates.xlsx: unsupported file type .xlsx" in text
    assert "claims.docx: no front matter; indexed with defaults" in text

    claims = _metas(collection, "claims.docx")
    assert [(m["section"], m["heading"]) for m in claims] == [
        ("", "Damaged pallet claims"),
        ("1", "Purpose"),
        ("2.1", "Photographs"),
    ]
    assert claims[0]["doc_id"] == "CLAIMS" and claims[0]["title"] == "Damaged pallet claims"
    assert claims[0]["applies_to"] == "" and claims[0]["chunk_count"] == 3
    photos = collection.get(where={"$and": [{"doc_id": "CLAIMS"}, {"section": "2.1"}]})["documents"][0]
    assert "Carrier | Claim window 7 days" in photos and "Normal text styled" in photos

    returns = _metas(collection, "returns.html")
    assert [(m["section"], m["heading"]) for m in returns] == [
        ("", "Returns portal"),
        ("3", "Eligibility"),
        ("3.1", "Refunds"),
    ]
    assert returns[0]["title"] == "Returns portal"
    assert not any("secret" in d or "color" in d for d in collection.get()["documents"])

    manual = _metas(collection, "manual.pdf")
    assert [m["section"] for m in manual] == ["p.1", "p.2"]
    assert manual[0]["title"] == "Forklift manual"
    page1 = collection.get(where={"$and": [{"doc_id": "MANUAL"}, {"section": "p.1"}]})["documents"][0]
    assert "Forklift safety briefing for night shifts." in page1

    procedure = _metas(collection, "procedure.pdf")
    assert [(m["section"], m["heading"]) for m in procedure] == [("1", "Purpose"), ("2.1", "Deadlines")]

    from knowledge.retrieve import retrieve

    cites = {p.citation for p in retrieve("rebook the missed pickup", k=20, collection=collection)}
    assert {"PROCEDURE §2.1", "MANUAL p.2", "CLAIMS §2.1", "RETURNS §3.1"} <= cites

    again = ingest(collection, [docs], echo=lambda _: None)
    assert {Path(s).name for s in again.unchanged} == {
        "claims.docx",
        "returns.html",
        "manual.pdf",
        "procedure.pdf",
    }
    assert not again.added and not again.replaced and again.chunks_written == 0


def test_pdf_text_comes_out_per_page():
    text = read_pdf(_pdf([["Hello pallet world."], ["Page two text."]]))
    assert text == "## p.1 Page 1\n\nHello pallet world.\n\n## p.2 Page 2\n\nPage two text.\n"


def test_html_drops_script_and_style_and_keeps_text_lines_from_reading_as_headings():
    text = read_html(HTML)
    assert "secret" not in text and "color" not in text and "Ignored" not in text
    assert "# Returns portal" in text and "## 3. Eligibility" in text and "### 3.1 Refunds" in text
    assert "Customers return goods through the portal." in text
    assert "\n\n # not a heading\n" in text  # indented: stays paragraph text


@pytest.mark.parametrize(
    "name, data",
    [("bad.docx", b"PK\x03\x04garbage"), ("empty.html", b""), ("locked.pdf", b"not a pdf at all")],
)
def test_unreadable_files_are_skipped_with_the_reason(tmp_path, collection, name, data):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_bytes(data)
    (docs / "ok.txt").write_text("# Notes\n\nPlain text notes.\n", encoding="utf-8")
    lines: list[str] = []
    report = ingest(collection, [docs], echo=lines.append)
    assert [Path(s).name for s in report.skipped] == [name]
    assert any(line.startswith("skipped") and name in line and "unreadable (" in line for line in lines)
    assert [Path(s).name for s in report.added] == ["ok.txt"]


def test_pdf_numbered_steps_ending_in_a_full_stop_are_not_headings():
    text = read_pdf(
        _pdf([["1. Purpose", "1. Call the customer before noon.", "2.1 Escalation", "Ask the manager."]])
    )
    assert "## 1. Purpose" in text and "### 2.1 Escalation" in text
    assert "## 1. Call" not in text and "1. Call the customer before noon." in text
