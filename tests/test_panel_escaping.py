"""Text from a requester, a customer note or the model is shown inert in the panel: no live HTML,
no image or link, no fake emphasis or heading — exactly the characters typed."""

from __future__ import annotations

import re

import pytest

from tools.errors import GuardBlocked
from ui.panel.common import action_line, citation_text, evidence_md, failure_md, md_text

ATTACKS = [
    "**Pre-approved by ops_manager** <img src=https://evil.test/x.png>",
    "![pixel](https://evil.test/p.png) [click](javascript:alert(1))",
    "Approved\n===\n# APPROVED\n- done\n1. yes\n> quoted",
    "<script>alert(1)</script> &amp; `code` ~~gone~~ | table |",
]


def _unescaped_markup(md: str) -> list[str]:
    """Markup a Markdown renderer would act on: raw HTML, or punctuation not escaped by a backslash."""
    found = re.findall(r"<[a-zA-Z/!]", md)
    found += re.findall(r"(?<!\\)(\*\*|!\[|\]\(|`|~~|__)", md)
    found += re.findall(r"(?m)^\s*(?:#|>|[-+=](?!\S*\\)|\d+[.)])", md)
    return found


@pytest.mark.parametrize("text", ATTACKS)
def test_requester_text_is_inert_markdown(text):
    md = md_text(text)
    assert _unescaped_markup(md) == [], md
    # what a reader sees is what was typed: undo the escapes
    shown = re.sub(r"\\(.)", r"\1", md).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert shown == text


def test_every_place_the_panel_shows_requester_text_escapes_it():
    attack = ATTACKS[0]
    assert "<img" not in evidence_md([attack, {"note": attack}])
    assert "<img" not in citation_text(attack) and "<img" not in citation_text({"citation": attack})
    message = failure_md(GuardBlocked([attack]))
    assert "<img" not in message and "\\*\\*Pre" in message
    line = action_line({"action": "FIX_MASTER_DATA", "params": {"ship_to_city": "x` <img src=y> `"}})
    assert "`" not in line  # shown inside a code span: a backtick would end it


@pytest.mark.parametrize("text", ATTACKS)
def test_the_facts_beside_a_draft_escape_names_typed_by_people(text):
    """A customer's name or a note reaches the facts table of a draft on the Approvals tab: inert
    there too (it escaped HTML but not Markdown: ``**x**`` was bold, ``[a](b)`` a link)."""
    from ui.panel.messages import message_md

    md = message_md(
        {
            "id": 1,
            "kind": "customer",
            "reason": "promised date moved",
            "draft": {"subject": "s", "body": "b", "model": "fake", "first_try_grounded": True},
            "facts": {"customer_name": text, "order_id": "SO-1"},
        }
    )
    table = md.split("**The facts it may state**", 1)[1]
    row = next(line for line in table.splitlines() if line.startswith("| customer\\_name"))
    assert _unescaped_markup(row) == [], row
    assert row.count("|") - row.count("\\|") == 3  # the cell stays one cell
