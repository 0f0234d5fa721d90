"""An action acts on its request's order only (domain.md §3): the guard blocks a parameter naming
another order's record, and the executor refuses it again where it writes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from agent.governance.audit import list_events, verify_chain
from agent.governance.requests import decide, request_action, write_session
from tests.factories import clean_fixture, edit, line, order
from tests.test_governance import POLICY, world
from tools import writes
from tools.errors import Conflict
from tools.models import ActionRequest, Approval, Execution, OrderLine, PurchaseOrder, Shipment
from tools.scope import TARGETS, retargeted, scope_problems


def two_orders() -> dict:
    """SO1 (10 A) with shipment SH1 and PO1 (A at WH1); SO2 (10 B) with SH2 and PO2 (B at WH1)."""
    fx = clean_fixture(order("SO1"), order("SO2", customer_id="C2", lines=[line(1, "B"), line(2, "B")]))
    edit(fx, "carriers", "CA2", name="Steady", status="ok", on_time_rate=0.9)
    edit(fx, "shipments", "SH1", order_id="SO1", carrier_id="CA1", status="planned")
    edit(fx, "shipments", "SH2", order_id="SO2", carrier_id="CA1", status="planned")
    for po, sku in (("PO1", "A"), ("PO2", "B")):
        edit(
            fx,
            "purchase_orders",
            po,
            supplier_id="SUP1",
            sku=sku,
            warehouse_id="WH1",
            qty=100,
            expected_date="2026-12-01",
            status="open",
        )
    edit(
        fx,
        "purchase_orders",
        "PO3",
        supplier_id="SUP1",
        sku="A",
        warehouse_id="WH2",
        qty=100,
        expected_date="2026-12-01",
        status="open",
    )
    return fx


OUTSIDE = [
    ("CORRECT_PRICE", {"order_id": "SO2", "line_no": 1, "new_unit_price": "0.01"}, "not the request's order"),
    ("CORRECT_PRICE", {"order_id": "SO1", "line_no": 2, "new_unit_price": "99.00"}, "not a line of SO1"),
    (
        "UPDATE_PROMISE_DATE",
        {"order_id": "SO2", "new_promised_date": "2026-12-24"},
        "not the request's order",
    ),
    ("RELEASE_CREDIT_HOLD", {"order_id": "SO2"}, "not the request's order"),
    ("COMPLIANCE_REVIEW", {"order_id": "SO2"}, "not the request's order"),
    ("SPLIT_SHIPMENT", {"order_id": "SO2", "line_no": 1, "ship_qty": 1}, "not the request's order"),
    ("REBOOK_CARRIER", {"shipment_id": "SH2", "carrier_id": "CA2"}, "not a shipment of SO1"),
    ("EXPEDITE_FREIGHT", {"shipment_id": "SH2"}, "not a shipment of SO1"),
    ("EXPEDITE_FREIGHT", {"shipment_id": "SH-NOPE"}, "not a shipment of SO1"),
    ("EXPEDITE_PO", {"po_id": "PO2"}, "not an open purchase order for the sku of a line of SO1"),
    ("EXPEDITE_PO", {"po_id": "PO3"}, "at that line's warehouse"),
]


@pytest.mark.parametrize("action, params, reason", OUTSIDE)
def test_the_guard_blocks_a_record_of_another_order(engine, action, params, reason):
    factory = world(engine, two_orders())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr", action=action, params=params)
    assert req["status"] == "blocked", req
    assert any(reason in r for r in req["guard"]["reasons"]), req["guard"]["reasons"]
    with factory() as s:
        assert s.scalar(select(Execution.id)) is None
        assert str(s.get(OrderLine, ("SO2", 1)).unit_price) in ("100", "100.00")
        assert verify_chain(s)["ok"]


def test_own_records_pass_the_scope_check(sqlite_engine):
    factory = world(sqlite_engine, two_orders())
    with factory() as s:
        assert scope_problems(s, "SO1", "EXPEDITE_PO", {"po_id": "PO1"}) == []
        assert scope_problems(s, "SO1", "REBOOK_CARRIER", {"shipment_id": "SH1", "carrier_id": "CA2"}) == []
        assert scope_problems(s, "SO2", "CORRECT_PRICE", {"order_id": "SO2", "line_no": 2}) == []
        assert scope_problems(s, None, "ESCALATE", {"role": "csr", "reason": "x"}) == []
        assert scope_problems(s, None, "EXPEDITE_PO", {"po_id": "PO1"})  # no order, no records


def test_the_repriced_order_of_the_audit_is_refused_and_its_trail_is_clean(engine):
    """The audit's reproduction: a csr files CORRECT_PRICE under SO1 naming SO2's line."""
    factory = world(engine, two_orders())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="CORRECT_PRICE",
        params={"order_id": "SO2", "line_no": 1, "new_unit_price": "0.01"},
    )
    assert req["status"] == "blocked"
    with pytest.raises(Conflict, match=r"blocked|nothing to decide"):
        decide(factory, POLICY, req["id"], username="pricing_analyst", decision="approve")
    with factory() as s:
        assert str(s.get(OrderLine, ("SO2", 1)).unit_price) in ("100", "100.00")
        assert list_events(s, order_id="SO2") == []


def _forge(factory, order_id: str, action: str, params: dict) -> tuple[int, int]:
    """An approved request whose parameters name ``params`` (as if the guard had been bypassed)."""
    now = dt.datetime.now(dt.UTC)
    with write_session(factory) as s:
        req = ActionRequest(
            action=action,
            params=params,
            params_hash=writes.params_hash(params),
            order_id=order_id,
            risk="medium",
            approver_role="procurement_buyer",
            requested_by="csr",
            status="approved",
            created_at=now,
            updated_at=now,
        )
        s.add(req)
        s.flush()
        approval = Approval(
            request_id=req.id,
            decision="approve",
            decided_by="procurement_buyer",
            role="procurement_buyer",
            params=params,
            params_hash=req.params_hash,
            decided_at=now,
        )
        s.add(approval)
        s.flush()
        return req.id, approval.id


def test_the_executor_refuses_another_orders_record_even_with_an_approval(engine):
    factory = world(engine, two_orders())
    rid, aid = _forge(factory, "SO1", "EXPEDITE_PO", {"po_id": "PO2"})
    with write_session(factory) as s:
        execution, ran = writes.execute_request(s, rid, approval_id=aid)
        assert ran and execution.status == "failed"
        assert "not an open purchase order for the sku of a line of SO1" in execution.result["reason"]
    with factory() as s:
        assert s.get(PurchaseOrder, "PO2").expedite_requested is False
        assert s.get(ActionRequest, rid).status == "failed"


def test_a_shipment_that_changed_orders_before_execution_fails_with_the_reason(engine):
    factory = world(engine, two_orders())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="REBOOK_CARRIER",
        params={"shipment_id": "SH1", "carrier_id": "CA2"},
    )
    assert req["status"] == "pending_approval"
    with write_session(factory) as s:
        s.get(Shipment, "SH1").order_id = "SO2"
    done = decide(factory, POLICY, req["id"], username="logistics_coordinator", decision="approve")
    assert done["status"] == "failed" and "not a shipment of SO1" in done["error"]
    with factory() as s:
        assert s.get(Shipment, "SH1").carrier_id == "CA1"
        assert verify_chain(s)["ok"]


def test_targets_are_the_parameters_that_name_records():
    assert {"order_id", "line_no", "shipment_id", "po_id"} <= TARGETS
    assert not TARGETS & {
        "to_warehouse_id",
        "substitute_sku",
        "ship_qty",
        "new_promised_date",
        "new_unit_price",
        "carrier_id",
        "ship_to_city",
    }
    assert retargeted({"order_id": "SO1", "line_no": 1}, {"order_id": "SO1", "line_no": 2}) == ["line_no"]
    assert (
        retargeted({"shipment_id": "SH1", "carrier_id": "CA1"}, {"shipment_id": "SH1", "carrier_id": "CA2"})
        == []
    )


def test_a_parameter_naming_a_record_needs_a_rule_that_allows_it(sqlite_engine):
    factory = world(sqlite_engine, two_orders())
    with factory() as s:
        problems = scope_problems(
            s, "SO1", "CORRECT_PRICE", {"order_id": "SO1", "line_no": 1, "from_order_id": "SO2"}
        )
    assert problems == ["CORRECT_PRICE: from_order_id names a record outside SO1 and no rule allows it"]


@pytest.mark.parametrize("status", ["cancelled", "shipped"])
def test_the_freight_of_a_closed_order_is_not_rebooked_or_expedited(sqlite_engine, status):
    fx = two_orders()
    edit(fx, "orders", "SO1", status=status)
    factory = world(sqlite_engine, fx)
    with factory() as s:
        for action, params in (
            ("REBOOK_CARRIER", {"shipment_id": "SH1", "carrier_id": "CA2"}),
            ("EXPEDITE_FREIGHT", {"shipment_id": "SH1"}),
        ):
            assert writes.check(s, action, params) == [f"shipment SH1 belongs to SO1, which is {status}"]
