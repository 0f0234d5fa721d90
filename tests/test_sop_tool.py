"""``search_sops``: retrieval as a READ tool, argument checks answered as tool messages."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage

from knowledge.embeddings import FakeEmbeddingFunction
from knowledge.ingest import ingest
from knowledge.store import open_collection
from knowledge.tool import build_sop_tool
from tools.read.registry import kind_of

DOC = """---
id: SOP-TEST-001
title: Test holds
applies_to: [CREDIT_HOLD]
---

## 3. Procedure

### 3.2 Who approves

A credit manager approves releases above 10 % overage.
"""

OTHER = """---
id: SOP-SHIP-001
title: Carrier rebooking
applies_to: [CARRIER_DISRUPTION]
---

## 2. Rebooking

Dispatch rebooks within 4 hours of a missed pickup.
"""


@pytest.fixture
def tool(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(DOC, encoding="utf-8")
    (docs / "b.md").write_text(OTHER, encoding="utf-8")
    collection = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path / "var")
    ingest(collection, [docs], echo=lambda _: None)
    return build_sop_tool(collection)


def test_declared_read_with_a_description_for_the_model(tool):
    assert tool.name == "search_sops" and kind_of(tool) == "READ"
    assert tool.description.startswith("Search the standard operating procedures")
    assert "[SOP-CREDIT-001 §3.2]" in tool.description and "Examples:" in tool.description
    props = tool.args_schema.model_json_schema()["properties"]
    assert set(props) == {"question", "exception_types", "k"}
    assert all(p.get("description") for p in props.values())
    assert "CREDIT_HOLD" in props["exception_types"]["description"]


def test_returns_cited_passages_filtered_by_type(tool):
    result = tool.invoke({"question": "who approves a credit release", "exception_types": ["CREDIT_HOLD"]})
    assert [p["citation"] for p in result["passages"]] == ["SOP-TEST-001 §3.2"]
    passage = result["passages"][0]
    assert passage["title"] == "Test holds" and passage["heading"] == "Who approves"
    assert "credit manager" in passage["text"] and isinstance(passage["score"], float)
    both = tool.invoke({"question": "who approves", "k": 8})
    assert {p["citation"] for p in both["passages"]} == {"SOP-TEST-001 §3.2", "SOP-SHIP-001 §2"}


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            {"question": "who approves", "exception_types": ["CREDIT"]},
            "exception_types: 'CREDIT' not an exception type",
        ),
        ({"question": "who approves", "k": 9}, "k: "),
        ({"exception_types": ["CREDIT_HOLD"]}, "question: "),
    ],
)
def test_bad_arguments_come_back_as_a_tool_message(tool, args, expected):
    reply = tool.invoke({"type": "tool_call", "id": "call-1", "name": "search_sops", "args": args})
    assert isinstance(reply, ToolMessage) and reply.status == "error"
    assert reply.content.startswith("invalid arguments: ") and expected in reply.content


def test_a_tool_call_gets_json_content(tool):
    reply = tool.invoke(
        {"type": "tool_call", "id": "c", "name": "search_sops", "args": {"question": "rebook pickup"}}
    )
    assert isinstance(reply, ToolMessage) and reply.status != "error"
    assert {p["citation"] for p in json.loads(reply.content)["passages"]} == {
        "SOP-TEST-001 §3.2",
        "SOP-SHIP-001 §2",
    }
