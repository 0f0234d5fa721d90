"""The panel's chat bubble while a turn works: progress labels in the answer's place, replaced by the
answer's first words; driven through the Chat tab's handler (the generator Gradio streams)."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from agent.copilot.progress import progress_label
from tests import api_world
from ui.panel.chat import ChatTab


def _bubbles(svc, message: str) -> list[str]:
    """The assistant bubble's text at each update the panel sends, in order."""
    tab = ChatTab(svc)
    return [
        str(history[-1]["content"])
        for history, *_ in tab.chat(api_world.TOKENS["planner"], None, message, [])
    ]


def test_the_bubble_says_which_tool_runs_before_the_answer(tmp_path, monkeypatch):
    bubbles = _bubbles(api_world.services(monkeypatch, tmp_path / "chat.db"), "What is blocking SO-100002?")
    assert bubbles[0] == "_Reading the question…_", "the first update already says something"
    assert all(b for b in bubbles), "no update shows an empty bubble"
    looking = next(i for i, b in enumerate(bubbles) if "Looking up SO" in b)
    answered = next(i for i, b in enumerate(bubbles) if "CREDIT" in b)
    assert looking < answered
    assert "Looking up" not in bubbles[-1] and "Writing the answer" not in bubbles[-1]
    assert "SO\\-100002" in bubbles[-1] or "SO-100002" in bubbles[-1]


def test_progress_labels_name_the_subject_and_stay_short():
    assert progress_label("triage_order", {"order_id": "SO-100042"}) == "Looking up SO-100042…"
    assert progress_label("why_not", {"order_id": "SO-1", "action": "SPLIT_SHIPMENT"}) == (
        "Checking SPLIT_SHIPMENT for SO-1…"
    )
    assert progress_label("find_late_orders", {"customer_name": "Acme\n  Corp"}) == (
        "Checking the open orders of Acme Corp…"
    )
    assert progress_label("search_sops", {"query": "credit"}) == "Searching the SOPs…"
    assert (
        progress_label("get_stock", {"sku": "SKU-1", "warehouse_id": "WH1"}) == "Checking the stock of SKU-1…"
    )
    assert progress_label("new_tool", None) == "Running new_tool…"
    assert len(progress_label("find_late_orders", {"customer_name": "x" * 500})) < 100
