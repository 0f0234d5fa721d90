"""Action requests end to end: propose, guard, decide, execute once, audit — on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from agent.governance.audit import list_events, verify_chain
from agent.governance.requests import decide, get_request, list_requests, request_action, write_session
from agent.governance.users import add_user, get_user, list_users
from agent.policy import CONTRACT_ROLES, DEFAULT_POLICY_PATH, load_policy, parse_policy
from tests.factories import clean_fixture, edit, line, order
from tools.db import session_factory
from tools.errors import Conflict, Forbidden, GuardBlocked, NotFound, ToolError
from tools.fixtures import load_fixture
from tools.models import ActionRequest, ExceptionRecord, Execution, Inventory, Order, OrderLine

POLICY = load_policy()


def shortfall_fixture(note: str = "") -> dict:
    """SO1 needs 10 A at WH1, which has 4: WH3 (same region) has 100 -> REALLOCATE_WAREHOUSE (low, planner)."""
    fx = clean_fixture(order(customer_note=note))
    edit(fx, "inventory", "A/WH1", on_hand=4)
    edit(fx, "warehouses", "WH3", name="Albany", region="east", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=100)
    return fx


def credit_fixture(*, overdue: float = 0, note: str = "") -> dict:
    """SO1 worth 1,000 for a customer at 50 of a 1,000 limit: RELEASE_CREDIT_HOLD, medium (or high if overdue)."""
    fx = clean_fixture(order(customer_note=note))
    edit(fx, "customers", "C1", credit_limit=1000, open_balance=50, overdue_balance=overdue)
    return fx


def world(engine, fixture: dict):
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, fixture, case_id="governance")
    return factory


def count(factory, model) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model))


def chain_ok(factory) -> bool:
    with factory() as s:
        return verify_chain(s)["ok"]


# ------------------------------------------------------------------------------------------------


def test_every_database_has_one_demo_user_per_role(engine):
    factory = session_factory(engine)
    with factory() as s:
        users = {u["username"]: u["role"] for u in list_users(s)}
    assert users == {name: name for name in CONTRACT_ROLES}  # one demo user per role, named after it
    with write_session(factory) as s:
        assert add_user(s, "ann", "planner", "Ann Lee")["role"] == "planner"
    with factory() as s, pytest.raises(Conflict):
        add_user(s, "ann", "csr")
    with factory() as s:
        with pytest.raises(ToolError, match="unknown role"):
            add_user(s, "bob", "wizard")
        with pytest.raises(Forbidden, match="reserved"):
            add_user(s, "policy", "planner")
        with pytest.raises(NotFound):
            get_user(s, "nobody")
    assert chain_ok(factory)


def test_the_recommendation_is_requested_guarded_approved_and_executed_once(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["action"] == "REALLOCATE_WAREHOUSE"
    assert req["params"] == {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH3"}
    assert (req["status"], req["risk"], req["approver_role"]) == ("pending_approval", "low", "planner")
    assert req["exception_type"] == "INVENTORY_SHORTFALL" and req["is_recommendation"] is True
    assert req["guard"]["ok"] is True and req["execution"] is None and req["evidence"]
    assert [r["id"] for r in list_requests(factory, status="pending_approval")] == [req["id"]]
    assert [r["id"] for r in list_requests(factory, role="planner", policy=POLICY)] == [req["id"]]
    assert [r["id"] for r in list_requests(factory, role="ops_manager", policy=POLICY)] == [req["id"]]
    assert list_requests(factory, role="csr", policy=POLICY) == []

    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed"
    assert done["execution"]["status"] == "executed" and done["execution"]["idempotency_key"]
    assert done["decisions"][0]["decided_by"] == "planner"
    with factory() as s:
        ln = s.get(OrderLine, ("SO1", 1))
        assert (ln.warehouse_id, ln.allocated_qty, ln.status) == ("WH3", 10, "allocated")
        assert s.get(Inventory, ("A", "WH3")).allocated == 10
        shortfall = s.scalar(select(ExceptionRecord).where(ExceptionRecord.type == "INVENTORY_SHORTFALL"))
        assert shortfall.status == "resolved"  # re-triaged after execution
        types = [e["event_type"] for e in list_events(s, request_id=req["id"])]
    for expected in ("action_requested", "guard_result", "approval_requested", "decision", "execution"):
        assert expected in types
    # a second approval, a retry: refused, never a second execution
    with pytest.raises(Conflict, match="executed"):
        decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
    assert count(factory, Execution) == 1
    assert chain_ok(factory)


def test_a_request_carries_the_evidence_of_the_line_or_shipment_it_acts_on(sqlite_engine):
    """Two short lines and a disrupted shipment: a reallocation of line 2 to another warehouse than
    recommended is about line 2's shortfall (its evidence goes to the approver), and an escalation to
    logistics_coordinator routes the carrier disruption, not line 1's shortfall (which the policy
    may not route there)."""
    fx = clean_fixture(order(lines=[line(1, "A", qty=10), line(2, "B", qty=10, unit_price=50)]))
    for sku in ("A", "B"):
        edit(fx, "inventory", f"{sku}/WH1", on_hand=2)
        edit(fx, "inventory", f"{sku}/WH3", on_hand=50)
        edit(fx, "inventory", f"{sku}/WH4", on_hand=50)
    edit(fx, "warehouses", "WH3", name="Albany", region="east", country="US")
    edit(fx, "warehouses", "WH4", name="Reno", region="west", country="US")
    edit(fx, "carriers", "CA2", name="Slow", status="disrupted", on_time_rate=0.5)
    edit(
        fx, "shipments", "SH1", order_id="SO1", carrier_id="CA2", service_level="ground",
        status="planned", planned_ship_date="2026-11-15", eta="2026-11-25", freight_cost=100,
    )  # fmt: skip
    factory = world(sqlite_engine, fx)
    moved = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="REALLOCATE_WAREHOUSE",
        params={"order_id": "SO1", "line_no": 2, "to_warehouse_id": "WH4"},
    )
    assert moved["status"] == "pending_approval" and moved["exception_type"] == "INVENTORY_SHORTFALL"
    assert "line 2" in moved["evidence"][0] and "SKU B" in moved["evidence"][0], moved["evidence"]
    with factory() as s:
        linked = s.get(ExceptionRecord, s.get(ActionRequest, moved["id"]).exception_id)
        assert (linked.type, linked.line_no) == ("INVENTORY_SHORTFALL", 2)

    routed = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="ESCALATE",
        params={"role": "logistics_coordinator", "reason": "the carrier is out"},
    )
    assert routed["status"] == "executed", routed["guard"]
    assert routed["exception_type"] == "CARRIER_DISRUPTION"
    with factory() as s:
        assigned = {
            r.type: r.assigned_role
            for r in s.scalars(select(ExceptionRecord).where(ExceptionRecord.status == "open"))
        }
    assert assigned["CARRIER_DISRUPTION"] == "logistics_coordinator"
    assert assigned["INVENTORY_SHORTFALL"] != "logistics_coordinator"


def test_parameters_without_an_action_are_refused_not_dropped(sqlite_engine):
    """The recommendation brings its own parameters: a price or quantity given without naming the
    action would be dropped unread and another value filed; refused, nothing stored."""
    factory = world(sqlite_engine, shortfall_fixture())
    with pytest.raises(ToolError, match="without an action"):
        request_action(
            factory,
            POLICY,
            order_id="SO1",
            requested_by="csr",
            params={"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"},
        )
    assert count(factory, ActionRequest) == 0
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr", params={})
    assert req["action"] == "REALLOCATE_WAREHOUSE" and req["params"]["to_warehouse_id"] == "WH3"


def test_reject_needs_a_reason_and_is_an_override_of_the_recommendation(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with pytest.raises(ToolError, match="reason"):
        decide(factory, POLICY, req["id"], username="planner", decision="reject")
    done = decide(
        factory, POLICY, req["id"], username="planner", decision="reject", reason="customer will wait"
    )
    assert done["status"] == "rejected" and done["execution"] is None
    with factory() as s:
        assert s.get(OrderLine, ("SO1", 1)).warehouse_id is None
        overrides = list_events(s, event_type="override")
        refused = list_events(s, event_type="decision_refused")
    assert overrides[0]["payload"]["kind"] == "rejected_recommendation"
    assert refused and "reason" in refused[0]["payload"]["reason"]
    assert chain_ok(factory)


def test_requesting_another_action_than_recommended_is_logged_as_an_override(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="SPLIT_SHIPMENT",
        params={"order_id": "SO1", "line_no": "1", "ship_qty": 4},
    )
    assert req["status"] == "pending_approval" and req["is_recommendation"] is False
    assert req["params"] == {"order_id": "SO1", "line_no": 1, "ship_qty": 4}  # normalised
    with factory() as s:
        (override,) = list_events(s, event_type="override")
    assert override["payload"]["recommended"]["action"] == "REALLOCATE_WAREHOUSE"
    assert override["payload"]["chosen"]["action"] == "SPLIT_SHIPMENT"
    # the requester may not approve; another planner may
    with pytest.raises(Forbidden, match="own request"):
        decide(factory, POLICY, req["id"], username="planner", decision="approve")
    with write_session(factory) as s:
        add_user(s, "pat", "planner")
    assert decide(factory, POLICY, req["id"], username="pat", decision="approve")["status"] == "executed"
    with factory() as s:
        ln = s.get(OrderLine, ("SO1", 1))
        assert (ln.allocated_qty, ln.backorder_qty, ln.status) == (4, 6, "backordered")


def test_edit_regards_the_new_parameters_then_executes_them(sqlite_engine):
    fx = shortfall_fixture()
    edit(fx, "warehouses", "WH4", name="Tiny", region="east", country="US")
    edit(fx, "inventory", "A/WH4", on_hand=3)
    factory = world(sqlite_engine, fx)
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with pytest.raises(GuardBlocked, match="WH4 has 3 A available"):
        decide(
            factory, POLICY, req["id"], username="planner", decision="edit", params={"to_warehouse_id": "WH4"}
        )
    with pytest.raises(GuardBlocked, match="no parameter 'approver_role'"):
        decide(
            factory, POLICY, req["id"], username="planner", decision="edit", params={"approver_role": "csr"}
        )
    assert get_request(factory, req["id"])["status"] == "pending_approval"  # a refused edit changes nothing
    with write_session(factory) as s:
        s.get(Inventory, ("A", "WH4")).on_hand = 50
    done = decide(
        factory,
        POLICY,
        req["id"],
        username="planner",
        decision="edit",
        params={"to_warehouse_id": "WH4"},
        reason="WH4 is closer",
    )
    assert done["status"] == "executed" and done["params"]["to_warehouse_id"] == "WH4"
    assert done["decisions"][-1]["decision"] == "edit"
    with factory() as s:
        assert s.get(OrderLine, ("SO1", 1)).warehouse_id == "WH4"
        assert list_events(s, event_type="override")[-1]["payload"]["kind"] == "edited_recommendation"


def test_a_precondition_gone_at_execution_fails_safely_and_retriages(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with write_session(factory) as s:  # someone else takes the stock meanwhile
        s.get(Inventory, ("A", "WH3")).allocated = 95
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "failed"
    assert "WH3 has 5 A available" in done["execution"]["result"]["reason"]
    with factory() as s:
        ln = s.get(OrderLine, ("SO1", 1))
        assert (ln.warehouse_id, ln.allocated_qty) == (None, 0)  # nothing written
        assert s.get(Inventory, ("A", "WH3")).allocated == 95
        triages = list_events(s, event_type="triage")
    assert triages[-1]["payload"]["why"].startswith("execution failed")
    with pytest.raises(Conflict):
        decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
    assert count(factory, Execution) == 1


def test_a_guard_blocked_request_is_kept_blocked_with_reasons(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="REALLOCATE_WAREHOUSE",
        params={"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"},
    )
    assert req["status"] == "blocked"
    assert any("WH2 has 0 A available" in r for r in req["guard"]["reasons"])
    with pytest.raises(Conflict, match="blocked"):
        decide(factory, POLICY, req["id"], username="planner", decision="approve")
    with pytest.raises(GuardBlocked, match="unknown action"):
        request_action(factory, POLICY, order_id="SO1", requested_by="csr", action="DELETE_ORDER", params={})
    with pytest.raises(NotFound):
        request_action(factory, POLICY, order_id="SO-404", requested_by="csr")
    with pytest.raises(Forbidden, match="unknown user"):
        request_action(factory, POLICY, order_id="SO1", requested_by="mallory")
    admin = request_action(factory, POLICY, order_id="SO1", requested_by="admin")
    assert admin["status"] == "blocked" and "administers users" in admin["guard"]["reasons"][0]
    assert count(factory, Execution) == 0
    assert chain_ok(factory)


def test_escalate_needs_no_approval_and_assigns_the_exception(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="ESCALATE",
        params={"role": "procurement_buyer", "reason": "no stock anywhere soon"},
    )
    assert (req["status"], req["risk"], req["approver_role"]) == ("executed", "none", "procurement_buyer")
    assert req["decisions"] == [] and req["execution"]["approval_id"] is None
    with factory() as s:
        rows = s.scalars(select(ExceptionRecord).where(ExceptionRecord.order_id == "SO1")).all()
        assert rows and all(r.assigned_role == "procurement_buyer" for r in rows)
        assert s.get(Order, "SO1").status == "open"  # no ERP record changed
    blocked = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="ESCALATE",
        params={"role": "admin", "reason": "x"},
    )
    assert blocked["status"] == "blocked"


def test_auto_approval_by_risk_tier_is_recorded_as_policy(sqlite_engine):
    text = DEFAULT_POLICY_PATH.read_text().replace("  low: false", "  low: true")
    policy = parse_policy(text)
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, policy, order_id="SO1", requested_by="csr")
    assert req["status"] == "executed"
    assert req["decisions"][0]["decided_by"] == "policy" and req["decisions"][0]["role"] == "policy"
    # never for high risk: the loader refuses it
    with pytest.raises(Exception, match="never allowed for high"):
        parse_policy(DEFAULT_POLICY_PATH.read_text().replace("  high: false", "  high: true"))


def test_fix_master_data_takes_the_values_from_the_approver(sqlite_engine):
    fx = clean_fixture(order(ship_to_city="", ship_to_postal_code=None))
    factory = world(sqlite_engine, fx)
    req = request_action(factory, POLICY, order_id="SO1", requested_by="planner")
    assert req["action"] == "FIX_MASTER_DATA" and req["status"] == "pending_approval"
    with pytest.raises(ToolError, match="ship_to_city, ship_to_postal_code"):
        decide(factory, POLICY, req["id"], username="csr", decision="approve")
    with pytest.raises(GuardBlocked, match="ship_to_street of SO1 is not empty"):
        decide(
            factory,
            POLICY,
            req["id"],
            username="csr",
            decision="edit",
            params={"ship_to_street": "2 Elm", "ship_to_city": "Boston", "ship_to_postal_code": "02101"},
        )
    done = decide(
        factory,
        POLICY,
        req["id"],
        username="csr",
        decision="edit",
        params={"ship_to_city": "Boston", "ship_to_postal_code": "02101"},
    )
    assert done["status"] == "executed"
    with factory() as s:
        o = s.get(Order, "SO1")
        assert (o.ship_to_city, o.ship_to_postal_code) == ("Boston", "02101")


def test_credit_release_waits_for_the_role_its_risk_needs(sqlite_engine):
    factory = world(sqlite_engine, credit_fixture(overdue=10))
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert (req["action"], req["risk"], req["approver_role"]) == (
        "RELEASE_CREDIT_HOLD",
        "high",
        "credit_manager",
    )
    with pytest.raises(Forbidden, match="needs credit_manager"):
        decide(factory, POLICY, req["id"], username="credit_analyst", decision="approve")
    done = decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
    assert done["status"] == "executed"
    with factory() as s:
        o = s.get(Order, "SO1")
        assert (o.credit_released, o.status) == (True, "released")
        refused = list_events(s, event_type="decision_refused")
    assert refused[0]["actor"] == "credit_analyst" and "may not decide" in refused[0]["payload"]["reason"]


def test_a_risk_that_rose_after_approval_stops_the_execution(sqlite_engine):
    factory = world(sqlite_engine, credit_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert (req["risk"], req["approver_role"]) == ("medium", "credit_analyst")
    with write_session(factory) as s:
        from tools.models import Customer

        s.get(Customer, "C1").overdue_balance = 500
    # the decision is checked against the recorded risk, the execution against the records now
    done = decide(factory, POLICY, req["id"], username="credit_analyst", decision="approve")
    assert done["status"] == "failed" and "now high" in done["execution"]["result"]["reason"]
    with factory() as s:
        assert s.get(Order, "SO1").credit_released is False


def test_unknown_request_and_bad_decisions(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    with pytest.raises(NotFound):
        decide(factory, POLICY, 999, username="planner", decision="approve")
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with pytest.raises(ToolError, match="approve, reject or edit"):
        decide(factory, POLICY, req["id"], username="planner", decision="yolo")
    with pytest.raises(Forbidden, match="unknown user"):
        decide(factory, POLICY, req["id"], username="ghost", decision="approve")
    with pytest.raises(ToolError, match="changed parameters"):
        decide(factory, POLICY, req["id"], username="planner", decision="edit")
    assert get_request(factory, req["id"])["status"] == "pending_approval"


def test_reset_keeps_users_and_a_verifiable_audit_chain(sqlite_engine):
    from tools.demo import reset

    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    decide(factory, POLICY, req["id"], username="planner", decision="approve")
    reset(sqlite_engine)
    with factory() as s:
        assert len(list_users(s)) == len(CONTRACT_ROLES)
        result = verify_chain(s)
    assert result["ok"] and result["events"] > 5
    factory = world(sqlite_engine, shortfall_fixture())
    request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert chain_ok(factory)
