"""The panel on a running server, driven through its Gradio API with gradio_client: sign in, triage
a paste (unknown orders listed), request approval, decide as another role (403 shown as such), the
dashboard and the audit view."""

from __future__ import annotations

import html
import os
import re

os.environ["HF_HUB_OFFLINE"] = "1"  # before gradio_client is imported: it would look up the hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest

from tests import api_world
from ui.server import create_app

T = api_world.TOKENS


@pytest.fixture
def live(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "panel.db")
    with api_world.LiveServer(create_app(services=svc, warm_up=True)) as server:
        yield server


def _client(live):
    from gradio_client import Client

    return Client(f"{live.url}/ui/", verbose=False, download_files=False)


def _text(message: dict) -> str:
    """A chat message's text as the reader sees it (Gradio 6 sends content as a list of typed parts;
    the panel escapes the answer's Markdown and HTML, which the browser renders back as typed)."""
    content = message["content"]
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text))


def _rows(table) -> list[dict]:
    """A Dataframe output as gradio_client returns it ({"headers", "data"})."""
    return [dict(zip(table["headers"], row, strict=False)) for row in table["data"]]


def test_sign_in_triage_request_and_approve_through_the_panel(live):
    planner = _client(live)
    assert "Not signed in" in planner.predict("wrong-token-0123456789", api_name="/sign_in")
    assert (
        "not signed in" in planner.predict("SO-100002", api_name="/triage")[1].lower()
    )  # refused before sign-in

    assert "role **planner**" in planner.predict(T["planner"], api_name="/sign_in")
    table, status, _pick = planner.predict("Hi, where are SO-100002 and SO-404? Thanks", api_name="/triage")
    rows = _rows(table)
    assert [r["order"] for r in rows] == ["SO-100002"] and "SO-404 not found" in status
    assert rows[0]["exceptions"] == "CREDIT_HOLD" and rows[0]["approver"] == "credit_analyst"
    assert rows[0]["recommendation"].startswith("RELEASE_CREDIT_HOLD") and rows[0]["risk"] == "medium"

    detail = planner.predict("SO-100002", api_name="/order_detail")
    assert "CREDIT_HOLD" in detail and "Recommendation" in detail and "Explanation" in detail
    requested = planner.predict("SO-100002", api_name="/request_approval")
    assert "pending" in requested and "credit_analyst" in requested
    request_id = requested.split("#", 1)[1].split("*", 1)[0]

    # the planner may not decide it: the panel says so
    assert "Not allowed for your role" in planner.predict(request_id, "", "{}", api_name="/approve")
    assert _rows(planner.predict(api_name="/queue")[0]) == []

    analyst = _client(live)
    analyst.predict(T["credit_analyst"], api_name="/sign_in")
    queue, _pick, qstatus = analyst.predict(api_name="/queue")
    assert [str(r["id"]) for r in _rows(queue)] == [request_id] and "1 pending" in qstatus
    md, params = analyst.predict(request_id, api_name="/request_detail")
    assert "Guard:** passed" in md and "Evidence" in md
    done = analyst.predict(request_id, "customer paid", params, api_name="/approve")
    assert "executed" in done and "credit_analyst" in done
    assert "Conflict (409)" in analyst.predict(request_id, "", params, api_name="/approve")

    events, _astatus = analyst.predict("SO-100002", "", "", api_name="/audit_search")
    assert any("execut" in str(r["event"]) for r in _rows(events)), _rows(events)
    assert "Chain intact" in analyst.predict(api_name="/audit_verify")


def test_dashboard_chat_and_limits(live):
    lead = _client(live)
    lead.predict(T["ops_manager"], api_name="/sign_in")
    history, side, _box = lead.predict("What is blocking SO-100002?", [], api_name="/chat")
    assert _text(history[0]) == "What is blocking SO-100002?" and "SO-100002" in _text(history[-1])
    assert "triage_order" in side and "SOP citations" in side
    # An approval request is shown first and filed by the Confirm button.
    history, side, _box = lead.predict("please request approval for SO-100002", history, api_name="/chat")
    assert "I can file this approval request: RELEASE_CREDIT_HOLD on SO-100002" in _text(history[-1])
    history, side, _box = lead.predict(history, api_name="/chat_confirm")
    assert _text(history[-2]) == "yes" and "Requested RELEASE_CREDIT_HOLD on SO-100002" in _text(history[-1])
    lead.predict("SO-100002 SO-100003", api_name="/triage")
    _by_type, _by_wh, _by_tier, _by_age, _rates, summary = lead.predict(api_name="/dashboard")
    assert "2 exceptions" in summary
    anomalies, monitoring = lead.predict(api_name="/dashboard_ops")
    assert _rows(anomalies) == [] and "Model monitoring:** no warning" in monitoring
    workflow = lead.predict(api_name="/dashboard_workflow")
    assert "touchless" in workflow and "| planner | 1 |" in workflow and "reallocate-same-region" in workflow
    _table, _pick, queue_status = lead.predict(api_name="/my_queue")
    assert "open for ops_manager" in queue_status
    paste = "\n".join(f"SO{i}" for i in range(10_000))
    status = lead.predict(paste, api_name="/triage")[1]
    assert "10,000 lines" in status and "limit is 2,000 lines" in status
