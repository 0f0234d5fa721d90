"""The audit events written from several places have one payload shape whoever writes them."""

from __future__ import annotations

from agent.governance.audit import EVENT_TRIAGE, list_events
from agent.governance.requests import request_action
from agent.llm import FakeLLM
from agent.triage.service import ORDER_NOT_FOUND, triage_orders
from tests.copilot_world import grounded_explainer, make_copilot
from tests.test_governance import POLICY

TRIAGE_KEYS = {"source", "why", "exceptions", "recommendation"}
RECOMMENDATION_KEYS = {"action", "params", "risk", "approver_role"}


def test_the_copilot_and_governance_log_a_triage_in_one_shape(world, world_sops):
    make_copilot(world, FakeLLM(grounded_explainer), world_sops).triage(["SO-100002"])
    request_action(world, POLICY, order_id="SO-100002", requested_by="csr")
    with world() as s:
        events = list_events(s, event_type=EVENT_TRIAGE, order_id="SO-100002")
    assert {e["payload"]["source"] for e in events} == {"copilot", "governance"}
    for event in events:
        payload = event["payload"]
        assert set(payload) == TRIAGE_KEYS, payload
        assert payload["exceptions"] == ["CREDIT_HOLD"]
        assert set(payload["recommendation"]) == RECOMMENDATION_KEYS
        assert payload["recommendation"]["action"] == "RELEASE_CREDIT_HOLD"


def test_an_unknown_order_is_one_result_with_one_message_and_the_others_are_triaged(world):
    with world() as s:
        results = triage_orders(s, [" SO-100002 ", "SO-404", "SO-100001"], POLICY, record=False)
    assert [r["order_id"] for r in results] == ["SO-100002", "SO-404", "SO-100001"]
    assert results[1] == {"order_id": "SO-404", "error": ORDER_NOT_FOUND}
    assert "exceptions" in results[0] and "exceptions" in results[2]
