"""The My queue, Orders and Approvals tabs' handlers over the API world (no browser, no server):
what a click does when it is repeated, when the dropdown holds a typed value, and whom the audit
names for a queue action."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
from sqlalchemy import select

from tests import api_world
from tools.errors import Conflict
from tools.models import AuditEvent
from ui.panel.approvals import ApprovalsTab
from ui.panel.common import failure_md, guarded
from ui.panel.orders import OrdersTab
from ui.panel.queue import QueueTab

T = api_world.TOKENS


@pytest.fixture
def svc(tmp_path, monkeypatch):
    services = api_world.services(monkeypatch, tmp_path / "panel-queue.db")
    planner = services.authenticate(T["planner"])
    services.triage(planner, ["SO-100002", "SO-100003"])  # their exceptions reach the work queues
    return services


def _requests(svc, order_id: str) -> list[dict]:
    return svc.list_requests(svc.authenticate(T["admin"]), order_id=order_id)


def test_a_queue_claim_is_audited_as_the_panel_user_not_the_servers_os_account(svc):
    tab = QueueTab(svc)
    _table, pick, status = tab.load(T["planner"])
    assert "open for planner" in status
    out = guarded(tab.claim, 1, 0)(T["planner"], pick["value"])
    assert "done (claim by planner)" in out
    with svc.factory() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.event_type == "queue_claimed")).one()
    # it said {"door": "cli", "os_user": "root"}: the queue handlers skipped the panel's sign-in step
    assert event.payload["origin"] == {"door": "panel", "user": "planner"}


def test_a_typed_pick_that_is_no_number_reads_as_one_line_not_a_bare_error(svc):
    queue, approvals = QueueTab(svc), ApprovalsTab(svc)
    queue.load(T["planner"])
    for handler in (queue.detail, queue.claim, queue.release, queue.request):
        out = guarded(handler, 1, 0)(T["planner"], "abc")  # was a ValueError: Gradio showed "Error"
        assert out == "**Error:** 'abc' is not an exception number: pick one from the list", handler
    detail, _params = guarded(approvals.request_detail, 2, 0)(T["credit_analyst"], "first one")
    assert "is not a request number" in detail
    out = guarded(approvals.decide("approve"), 1, 0)(T["credit_analyst"], "x1", "ok", "{}")
    assert "is not a request number" in out
    assert queue.detail(T["planner"], "") == "Select an exception."


def test_a_second_click_on_request_files_no_second_request(svc):
    orders = OrdersTab(svc)
    _table, _status, cache, _pick = orders.triage_paste(T["planner"], "SO-100003")
    first = orders.request_approval(T["planner"], "SO-100003", cache)
    again = orders.request_approval(T["planner"], "SO-100003", cache)
    [req] = _requests(svc, "SO-100003")
    assert f"#{req['id']}" in first and "pending_approval" in first
    assert f"#{req['id']}" in again and "not filed again" in again

    # the same from My queue, by another user of a role that covers it: refused, naming that one
    # request (they may decide it, not become one of its requesters); the panel shows it as a 409
    queue = QueueTab(svc)
    queue.load(T["ops_manager"])
    shown = queue._shown["ops_manager"]
    item_id = next(i for i, item in shown.items() if item["order_id"] == "SO-100003")
    with pytest.raises(Conflict, match=f"request {req['id']} already asks .* filed by planner") as refused:
        queue.request(T["ops_manager"], str(item_id))
    assert failure_md(refused.value).startswith("**Conflict (409):**")
    assert len(_requests(svc, "SO-100003")) == 1


def test_an_executed_decision_reads_as_a_line_not_a_json_dump(svc):
    orders, approvals = OrdersTab(svc), ApprovalsTab(svc)
    _table, _status, cache, _pick = orders.triage_paste(T["planner"], "SO-100002")
    assert "pending_approval" in orders.request_approval(T["planner"], "SO-100002", cache)
    [req] = _requests(svc, "SO-100002")
    out = approvals.decide("approve")(T["credit_analyst"], str(req["id"]), "paid", "{}")
    assert "is now **executed**" in out and "Execution: **executed**" in out
    assert "{" not in out and '"' not in out, out  # was: Execution: executed {"changes": {...}}


def test_the_question_in_the_chat_bubble_is_shown_as_typed_not_rendered(svc):
    """A pasted e-mail's image would load from wherever it points (seen in the browser: a GET of
    /ui/x for ``<img src=x>``): the user's own bubble is escaped like the answer."""
    from ui.panel.chat import ChatTab

    question = "What is blocking SO-100002? <img src=https://evil.test/p.png> ![p](https://evil.test/q.png)"
    history, *_ = next(iter(ChatTab(svc).chat(T["planner"], None, question, [])))
    shown = str(history[0]["content"])
    assert history[0]["role"] == "user"
    assert "<img" not in shown and "![" not in shown and "&lt;img" in shown


def test_what_the_customer_was_told_gives_the_time_as_a_reader_writes_it():
    from ui.panel.messages import told_md

    md = told_md(
        [
            {
                "status": "sent",
                "reason": "substitution",
                "delivery": {"sent_at": "2026-12-05T02:14:29.748443+00:00", "subject": "Order SO-1 <b>"},
            },
            {"status": "awaiting_approval", "reason": "promise date", "drafted_at": None, "due_at": None},
        ]
    )
    assert "- sent 2026-12-05 02:14 UTC: Order SO-1 &lt;b&gt;" in md  # was 2026-12-05T02:14:29.748443+00:00
    assert "- awaiting_approval: promise date" in md


def test_a_click_before_sign_in_says_how_to_sign_in_not_which_header_to_send(svc):
    from ui.panel.dashboard import DashboardTab

    queue, dashboard = QueueTab(svc), DashboardTab(svc)
    for out in (
        guarded(queue.load, 3, 2)(None)[2],
        guarded(queue.claim, 1, 0)(None, "1"),
        guarded(dashboard.workflow_md, 1, 0)(""),
    ):
        # was: "Not signed in: missing bearer token: send 'Authorization: Bearer <token>'"
        assert out == "**Not signed in:** paste your API token at the top and press Sign in", out


def test_an_unknown_order_or_request_reads_as_not_found_like_the_api_404(svc):
    orders, approvals = OrdersTab(svc), ApprovalsTab(svc)
    out = guarded(orders.request_approval, 1, 0)(T["planner"], "SO-404", {})
    assert out.startswith("**Not found (404):** order SO-404 not found"), out  # was "**Error:** ..."
    detail, _params = guarded(approvals.request_detail, 2, 0)(T["credit_analyst"], "99999")
    assert detail.startswith("**Not found (404):**") and "99999" in detail, detail
