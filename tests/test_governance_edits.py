"""An approver's edit changes values, never targets; an edit that changes the risk or the approver
role goes back to pending for that role instead of executing as the editor (domain.md §3)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent.governance.audit import list_events, verify_chain
from agent.governance.requests import decide, request_action
from tests.factories import clean_fixture, line, order
from tests.test_governance import POLICY, world
from tools.errors import Forbidden, GuardBlocked
from tools.models import Execution, OrderLine


def priced_world() -> dict:
    """SO1: line 1 at 90 (list 100: PRICING_DISCREPANCY), line 2 at 100; SO2 clean, no exception."""
    return clean_fixture(
        order("SO1", lines=[line(1, "A", unit_price=90), line(2, "A", unit_price=100)]),
        order("SO2", customer_id="C2"),
    )


def _price(factory, order_id: str, line_no: int) -> str:
    with factory() as s:
        return f"{s.get(OrderLine, (order_id, line_no)).unit_price:.2f}"


@pytest.mark.parametrize(
    "change, moved",
    [
        ({"order_id": "SO2"}, "order_id"),
        ({"line_no": 2}, "line_no"),
        ({"order_id": "SO2", "new_unit_price": "0.01"}, "order_id"),
    ],
)
def test_an_edit_never_retargets(engine, change, moved):
    factory = world(engine, priced_world())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert (req["action"], req["status"], req["risk"]) == ("CORRECT_PRICE", "pending_approval", "low")
    with pytest.raises(GuardBlocked, match=f"never which records CORRECT_PRICE acts on: {moved}"):
        decide(
            factory,
            POLICY,
            req["id"],
            username="pricing_analyst",
            decision="edit",
            params=change,
            reason="retarget",
        )
    assert (_price(factory, "SO1", 2), _price(factory, "SO2", 1)) == ("100.00", "100.00")
    with factory() as s:
        assert s.scalar(select(Execution.id)) is None
        refused = list_events(s, request_id=req["id"], event_type="decision_refused")
        assert refused and "never which records" in refused[-1]["payload"]["reason"]
        assert verify_chain(s)["ok"]


def test_an_edit_of_a_value_that_keeps_the_risk_executes(engine):
    factory = world(engine, priced_world())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="CORRECT_PRICE",
        params={"order_id": "SO1", "line_no": 1, "new_unit_price": "95.00"},
    )
    assert req["risk"] == "medium"
    done = decide(
        factory,
        POLICY,
        req["id"],
        username="pricing_analyst",
        decision="edit",
        params={"new_unit_price": "96.00", "order_id": "SO1", "line_no": 1},
        reason="closer",
    )
    assert done["status"] == "executed" and _price(factory, "SO1", 1) == "96.00"


def test_an_edit_that_changes_the_risk_goes_back_to_pending_for_another_person(engine):
    factory = world(engine, priced_world())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["params"]["new_unit_price"] == "100.00" and req["risk"] == "low"
    edited = decide(
        factory,
        POLICY,
        req["id"],
        username="pricing_analyst",
        decision="edit",
        params={"new_unit_price": "80.00"},
        reason="customer deal",
    )
    # not executed by the editor: pending again, at the edited risk, with the edited values
    assert (edited["status"], edited["risk"], edited["approver_role"]) == (
        "pending_approval",
        "medium",
        "pricing_analyst",
    )
    assert edited["params"]["new_unit_price"] == "80.00" and edited["decisions"] == []
    assert _price(factory, "SO1", 1) == "90.00"
    with pytest.raises(Forbidden, match="edited the parameters"):
        decide(factory, POLICY, req["id"], username="pricing_analyst", decision="approve")
    done = decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
    assert done["status"] == "executed" and _price(factory, "SO1", 1) == "80.00"
    with factory() as s:
        decisions = list_events(s, request_id=req["id"], event_type="decision")
        assert [e["payload"].get("outcome") for e in decisions] == ["returned_to_pending", None]
        assert decisions[0]["actor"] == "pricing_analyst" and decisions[0]["payload"]["was"]["risk"] == "low"
        assert verify_chain(s)["ok"]
