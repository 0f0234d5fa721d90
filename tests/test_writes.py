"""The WRITE operations: each action's effect (domain.md §3), and the executor's refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from agent.governance.requests import decide, request_action, write_session
from agent.triage.service import triage_orders
from tests.factories import clean_fixture, edit, line, order
from tests.test_governance import POLICY, world
from tools import writes
from tools.errors import Conflict, Forbidden
from tools.models import ActionRequest, Approval, Inventory, Order, OrderLine, PurchaseOrder, Shipment


def _full_world() -> dict:
    fx = clean_fixture(order())
    edit(fx, "items", "S", description="Substitute", list_price=90, status="active")
    edit(fx, "substitutes", "A/S", approved=True)
    edit(fx, "inventory", "S/WH1", on_hand=50)
    edit(fx, "carriers", "CA2", name="Steady", status="ok", on_time_rate=0.9)
    edit(fx, "shipments", "SH1", order_id="SO1", carrier_id="CA1", status="planned")
    edit(
        fx,
        "purchase_orders",
        "PO1",
        supplier_id="SUP1",
        sku="A",
        warehouse_id="WH1",
        qty=100,
        expected_date="2026-12-01",
        status="open",
    )
    return fx


@pytest.mark.parametrize(
    "action, params, approver, check",
    [
        (
            "APPROVE_SUBSTITUTION",
            {"order_id": "SO1", "line_no": 1, "substitute_sku": "S"},
            "csr",
            lambda s: (
                (
                    s.get(OrderLine, ("SO1", 1)).sku,
                    s.get(OrderLine, ("SO1", 1)).original_sku,
                    s.get(Inventory, ("S", "WH1")).allocated,
                )
                == ("S", "A", 10)
            ),
        ),
        (
            "UPDATE_PROMISE_DATE",
            {"order_id": "SO1", "new_promised_date": "2026-12-05"},
            "csr",
            lambda s: s.get(Order, "SO1").promised_date == dt.date(2026, 12, 5),
        ),
        (
            "CORRECT_PRICE",
            {"order_id": "SO1", "line_no": 1, "new_unit_price": "95.50"},
            "pricing_analyst",
            lambda s: str(s.get(OrderLine, ("SO1", 1)).unit_price) in ("95.50", "95.5"),
        ),
        (
            "REBOOK_CARRIER",
            {"shipment_id": "SH1", "carrier_id": "CA2"},
            "logistics_coordinator",
            lambda s: (s.get(Shipment, "SH1").carrier_id, s.get(Shipment, "SH1").status) == ("CA2", "booked"),
        ),
        (
            "EXPEDITE_FREIGHT",
            {"shipment_id": "SH1"},
            "ops_manager",
            lambda s: s.get(Shipment, "SH1").service_level == "express",
        ),
        (
            "EXPEDITE_PO",
            {"po_id": "PO1"},
            "procurement_buyer",
            lambda s: s.get(PurchaseOrder, "PO1").expedite_requested is True,
        ),
        (
            "COMPLIANCE_REVIEW",
            {"order_id": "SO1"},
            "compliance_officer",
            lambda s: s.get(Order, "SO1").status == "held",
        ),
    ],
)
def test_each_write_applies_its_effect_once_approved(sqlite_engine, action, params, approver, check):
    factory = world(sqlite_engine, _full_world())
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="planner", action=action, params=params
    )
    assert req["status"] == "pending_approval", req["guard"]
    assert req["approver_role"] == approver
    done = decide(factory, POLICY, req["id"], username=approver, decision="approve")
    assert done["status"] == "executed", done["execution"]
    with factory() as s:
        assert check(s)


def _approved_request(factory, **approval) -> int:
    with write_session(factory) as s:  # a fresh request each call: one still waiting would be handed back
        for waiting in s.scalars(
            select(ActionRequest).where(
                ActionRequest.status.in_(("proposed", "pending_approval", "approved"))
            )
        ):
            waiting.status = "rejected"
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action="EXPEDITE_PO", params={"po_id": "PO1"}
    )
    with write_session(factory) as s:
        r = s.get(ActionRequest, req["id"])
        fields = {"decision": "approve", "params": r.params, "params_hash": r.params_hash, **approval}
        s.add(
            Approval(
                request_id=r.id,
                decided_by="procurement_buyer",
                role="procurement_buyer",
                decided_at=dt.datetime.now(dt.UTC),
                **fields,
            )
        )
        r.status = "approved"
    return req["id"]


def test_the_executor_refuses_without_an_approval_of_exactly_these_parameters(engine):
    factory = world(engine, _full_world())
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action="EXPEDITE_PO", params={"po_id": "PO1"}
    )
    with write_session(factory) as s, pytest.raises(Forbidden, match="no approval"):
        writes.execute_request(s, req["id"], approval_id=None)
    other = {"po_id": "PO2"}
    rid = _approved_request(factory, params=other, params_hash=writes.params_hash(other))
    with write_session(factory) as s:
        approval_id = s.query(Approval.id).filter_by(request_id=rid).scalar()
    with write_session(factory) as s, pytest.raises(Forbidden, match="other parameters"):
        writes.execute_request(s, rid, approval_id=approval_id)
    rid = _approved_request(factory, decision="reject", reason="no")
    with write_session(factory) as s:
        approval_id = s.query(Approval.id).filter_by(request_id=rid).scalar()
    with write_session(factory) as s, pytest.raises(Forbidden, match="no approval"):
        writes.execute_request(s, rid, approval_id=approval_id)
    with factory() as s:
        assert s.get(PurchaseOrder, "PO1").expedite_requested is False


def test_the_same_approval_runs_once_and_its_key_derives_from_it(engine):
    factory = world(engine, _full_world())
    rid = _approved_request(factory)
    with write_session(factory) as s:
        approval = s.query(Approval).filter_by(request_id=rid).one()
        first, ran = writes.execute_request(s, rid, approval_id=approval.id)
        assert ran and first.idempotency_key == writes.idempotency_key(rid, approval.id, approval.params_hash)
    with write_session(factory) as s:
        again, ran = writes.execute_request(s, rid, approval_id=approval.id)
        assert not ran and again.id == first.id


def test_a_failed_precondition_writes_nothing(engine):
    factory = world(engine, _full_world())
    rid = _approved_request(factory)
    with write_session(factory) as s:
        s.get(PurchaseOrder, "PO1").status = "received"
    with write_session(factory) as s:
        approval_id = s.query(Approval.id).filter_by(request_id=rid).scalar()
        execution, ran = writes.execute_request(s, rid, approval_id=approval_id)
        assert ran and execution.status == "failed" and "received" in execution.result["reason"]
    with factory() as s:
        assert s.get(PurchaseOrder, "PO1").expedite_requested is False
        assert s.get(ActionRequest, rid).status == "failed"


def test_a_credit_release_needs_a_credit_hold_to_release(sqlite_engine):
    """Releasing an order that is not held would pre-authorise its credit (the baseline agent's
    favourite hallucination): the guard blocks it; on a held order it goes to the approver."""
    factory = world(sqlite_engine, clean_fixture(order()))
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="RELEASE_CREDIT_HOLD",
        params={"order_id": "SO1"},
    )
    assert req["status"] == "blocked"
    assert any("not on credit hold" in r and "nothing to release" in r for r in req["guard"]["reasons"]), req[
        "guard"
    ]
    with factory() as s:
        assert s.get(Order, "SO1").credit_released is False
    with write_session(factory) as s:
        s.get(Order, "SO1").customer.overdue_balance = 1
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="RELEASE_CREDIT_HOLD",
        params={"order_id": "SO1"},
    )
    assert req["status"] == "pending_approval" and req["approver_role"] == "credit_manager", req["guard"]


def test_a_credit_release_does_not_lift_the_hold_of_a_compliance_review(engine):
    """A COMPLIANCE_REVIEW put the order on `held`; with no COMPLIANCE_HOLD holding (the review was
    asked for anyway) the credit analyst's RELEASE_CREDIT_HOLD set it `released`, ending the
    review's hold by a credit decision. The guard blocks it now, and so does the executor when the
    review ran after the release was approved; an order held by the ERP alone is released as before."""
    fx = clean_fixture(order(), order("SO2"))
    edit(fx, "customers", "C1", credit_hold=True)  # medium risk: the credit analyst decides
    factory = world(engine, fx)

    def ask(action: str, order_id: str = "SO1") -> dict:
        return request_action(
            factory,
            POLICY,
            order_id=order_id,
            requested_by="planner",
            action=action,
            params={"order_id": order_id},
        )

    release = ask("RELEASE_CREDIT_HOLD")  # approved before the review runs: the executor refuses it
    assert release["status"] == "pending_approval" and release["approver_role"] == "credit_analyst"
    review = ask("COMPLIANCE_REVIEW")
    assert (
        decide(factory, POLICY, review["id"], username="compliance_officer", decision="approve")["status"]
        == "executed"
    )
    done = decide(factory, POLICY, release["id"], username="credit_analyst", decision="approve")
    assert done["status"] == "failed", done
    assert f"held for a compliance review (request {review['id']})" in done["execution"]["result"]["reason"]
    blocked = ask("RELEASE_CREDIT_HOLD")
    assert blocked["status"] == "blocked"
    assert any("held for a compliance review" in r for r in blocked["guard"]["reasons"]), blocked["guard"]
    with factory() as s:  # and the copilot does not recommend it: the same reading as the guard's
        [triaged] = triage_orders(s, ["SO1"], POLICY, record=False)
    assert [e["type"] for e in triaged["exceptions"]] == ["CREDIT_HOLD"] and triaged["recommendation"] is None
    [candidate] = triaged["options"][0]["candidates"]
    assert candidate["action"] == "RELEASE_CREDIT_HOLD" and candidate["feasible"] is False
    assert f"held for a compliance review (request {review['id']})" in candidate["reason"]
    with pytest.raises(
        Conflict, match="no feasible action to recommend \\(RELEASE_CREDIT_HOLD: the order is held"
    ):
        request_action(factory, POLICY, order_id="SO1", requested_by="planner")  # its recommendation
    with factory() as s:
        assert (s.get(Order, "SO1").status, s.get(Order, "SO1").credit_released) == ("held", False)
    with write_session(factory) as s:  # held by the ERP, no review: the credit analyst releases it
        s.get(Order, "SO2").status = "held"
    other = ask("RELEASE_CREDIT_HOLD", "SO2")
    assert (
        decide(factory, POLICY, other["id"], username="credit_analyst", decision="approve")["status"]
        == "executed"
    )
    with factory() as s:
        assert s.get(Order, "SO2").status == "released"


def test_a_reallocation_needs_the_whole_line_qty_at_the_target(sqlite_engine):
    """The whole line moves (its qty is allocated at the target): the guard blocks a target that
    holds only the open quantity, and the executor re-checks it at execution."""
    fx = clean_fixture(order(lines=[line(qty=10, allocated_qty=6, backorder_qty=4, status="backordered")]))
    edit(fx, "inventory", "A/WH1", on_hand=6, allocated=6)
    edit(fx, "inventory", "A/WH2", on_hand=5, allocated=0)  # ≥ open qty 4, < qty 10
    edit(fx, "customers", "C1", export_license=True)
    factory = world(sqlite_engine, fx)
    params = {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"}
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action="REALLOCATE_WAREHOUSE", params=params
    )
    assert req["status"] == "blocked"
    assert any("the line's qty is 10" in r for r in req["guard"]["reasons"]), req["guard"]
    with write_session(factory) as s:
        s.get(Inventory, ("A", "WH2")).on_hand = 10
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action="REALLOCATE_WAREHOUSE", params=params
    )
    assert req["status"] == "pending_approval", req["guard"]
    with write_session(factory) as s:  # stock taken meanwhile: the execution fails with the reason
        s.get(Inventory, ("A", "WH2")).allocated = 1
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "failed" and "the line's qty is 10" in str(done), done
    with write_session(factory) as s:
        s.get(Inventory, ("A", "WH2")).allocated = 0
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action="REALLOCATE_WAREHOUSE", params=params
    )
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        ln = s.get(OrderLine, ("SO1", 1))
        assert (ln.warehouse_id, ln.allocated_qty, ln.backorder_qty, ln.status) == ("WH2", 10, 0, "allocated")
        assert (
            s.get(Inventory, ("A", "WH1")).allocated == 0 and s.get(Inventory, ("A", "WH2")).allocated == 10
        )


def test_a_substitution_of_a_fully_allocated_line_needs_no_substitute_stock_row(sqlite_engine):
    """Found by the contract audit: a discontinued item's fully allocated line (open quantity 0)
    with an approved substitute that has no inventory row at the line's warehouse. Triage
    recommends APPROVE_SUBSTITUTION (a missing row is 0 available, 0 >= the open quantity 0,
    domain.md §4), but the guard blocked it: "WH1 has 0 S available, the line's open quantity is 0".
    """
    fx = clean_fixture(order(lines=[line(qty=10, allocated_qty=10, status="allocated")]))
    edit(fx, "items", "A", status="discontinued")
    edit(fx, "items", "S", description="Substitute", list_price=90, status="active")
    edit(fx, "substitutes", "A/S", approved=True)
    edit(fx, "inventory", "A/WH1", on_hand=10, allocated=10)
    factory = world(sqlite_engine, fx)
    params = {"order_id": "SO1", "line_no": 1, "substitute_sku": "S"}
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="planner", action="APPROVE_SUBSTITUTION", params=params
    )
    assert req["status"] == "pending_approval", req["guard"]
    done = decide(factory, POLICY, req["id"], username="csr", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        ln = s.get(OrderLine, ("SO1", 1))
        assert (ln.sku, ln.original_sku, ln.allocated_qty, ln.backorder_qty, ln.status) == (
            "S",
            "A",
            10,
            0,
            "allocated",
        )
        assert s.get(Inventory, ("S", "WH1")) is None  # nothing was allocated on the substitute


def test_a_split_ships_part_and_backorders_the_rest(sqlite_engine):
    """domain.md §3: SPLIT_SHIPMENT allocates ship_qty, backorders qty − allocated, status
    `backordered`. The whole open quantity is not a split: the guard blocks it with the range."""
    fx = clean_fixture(order(lines=[line(qty=10)]))
    edit(fx, "inventory", "A/WH1", on_hand=6, allocated=0)
    edit(fx, "customers", "C1", allow_partial_shipments=True)
    factory = world(sqlite_engine, fx)

    def ask(qty: int) -> dict:
        params = {"order_id": "SO1", "line_no": 1, "ship_qty": qty}
        return request_action(
            factory, POLICY, order_id="SO1", requested_by="csr", action="SPLIT_SHIPMENT", params=params
        )

    whole = ask(10)
    assert whole["status"] == "blocked"
    assert any("between 1 and 9" in r for r in whole["guard"]["reasons"]), whole["guard"]
    req = ask(6)
    assert req["status"] == "pending_approval", req["guard"]
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        moved = s.get(OrderLine, ("SO1", 1))
        assert (moved.allocated_qty, moved.backorder_qty, moved.status) == (6, 4, "backordered")
        assert s.get(Inventory, ("A", "WH1")).allocated == 6
