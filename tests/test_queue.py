"""Role work queues: owner, priority, SLA and escalation, claim / release / reassign, and events
taking resolved exceptions off the queue."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from agent.flow import claim, drain, escalate_breached, load_queue, queue_sizes, reassign, release
from agent.policy import load_policy
from agent.triage.service import triage_order
from tests.cli_run import run
from tests.factories import clean_fixture, edit, line, order
from tools.db import session_factory
from tools.errors import Conflict, Forbidden, ToolError
from tools.events import parse_event, receive
from tools.fixtures import load_fixture
from tools.models import AuditEvent, ExceptionRecord, User


def world() -> dict:
    """SO1: 600 × A at WH1 (500 there) → shortfall (planner). SO2: C2 over its credit limit →
    credit hold (credit_analyst). SO3: no ship-to city → master data (csr), promised sooner."""
    fx = clean_fixture(
        order("SO1", lines=[line(qty=600)]),
        order("SO2", customer_id="C2", lines=[line(sku="B", qty=10, unit_price=50)]),
        order(
            "SO3", lines=[line(sku="B", qty=1, unit_price=50)], ship_to_city="", promised_date="2026-11-05"
        ),
    )
    edit(fx, "customers", "C2", credit_limit=100, open_balance=90)
    return fx


@pytest.fixture
def factory(engine):
    factory = session_factory(engine)
    policy = load_policy()
    with factory() as s:
        load_fixture(s, world(), case_id="queue")
        for oid in ("SO1", "SO2", "SO3"):
            triage_order(s, oid, policy)
        s.commit()
    return factory


NOW = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)


def _types(items) -> set[tuple[str, str]]:
    return {(i["order_id"], i["type"]) for i in items}


def test_each_role_sees_its_queue_and_those_it_covers(factory):
    policy = load_policy()
    with factory() as s:
        planner = load_queue(s, policy, role="planner", now=NOW)
        assert _types(planner) == {("SO1", "INVENTORY_SHORTFALL")}
        [item] = planner
        assert item["owner_role"] == "planner" and item["recommendation"]["action"] == "SPLIT_SHIPMENT"
        assert item["recommendation"]["approver_role"] == "planner"
        assert _types(load_queue(s, policy, role="credit_analyst", now=NOW)) == {("SO2", "CREDIT_HOLD")}
        assert _types(load_queue(s, policy, role="csr", now=NOW)) == {("SO3", "MASTER_DATA_INCOMPLETE")}
        everything = load_queue(s, policy, role="ops_manager", now=NOW)
        assert len(everything) == 3
        assert [i["priority"] for i in everything] == sorted(
            (i["priority"] for i in everything), reverse=True
        )
        assert load_queue(s, policy, role="compliance_officer", now=NOW) == []
        sizes = queue_sizes(s, policy, now=NOW)
        assert sizes["planner"]["open"] == 1 and sizes["csr"]["open"] == 1


def test_priority_rises_as_the_promise_date_nears(factory):
    policy = load_policy()
    with factory() as s:
        [early] = load_queue(s, policy, role="planner", now=NOW - dt.timedelta(days=20))
        [late] = load_queue(s, policy, role="planner", now=NOW + dt.timedelta(days=10))
    assert late["priority"] > early["priority"]


def test_a_breached_sla_escalates_once_by_policy_and_is_audited(factory):
    policy = load_policy()
    with factory() as s:
        first_seen = s.scalars(select(ExceptionRecord.first_seen_at)).first()
        later = (first_seen if first_seen.tzinfo else first_seen.replace(tzinfo=dt.UTC)) + dt.timedelta(
            hours=25
        )
        assert all(not i["sla_breached"] for i in load_queue(s, policy, now=later - dt.timedelta(hours=2)))
        assert escalate_breached(s, policy, now=later) == 3
        s.commit()
        assert escalate_breached(s, policy, now=later) == 0
        by_order = {i["order_id"]: i for i in load_queue(s, policy, now=later)}
        assert by_order["SO2"]["escalated_to"] == "credit_manager"  # the policy's escalate_to
        assert by_order["SO1"]["escalated_to"] == "ops_manager"  # the default escalation
        assert all(i["sla_breached"] for i in by_order.values())
        # the credit manager now sees the credit hold
        assert ("SO2", "CREDIT_HOLD") in _types(load_queue(s, policy, role="credit_manager", now=later))
        events = s.scalars(select(AuditEvent).where(AuditEvent.event_type == "sla_escalated")).all()
        assert len(events) == 3 and {e.actor for e in events} == {"policy"}


def test_claim_release_reassign_are_checked_and_audited(factory):
    policy = load_policy()
    with factory() as s:
        [item] = load_queue(s, policy, role="planner")
        xid = item["id"]
        with pytest.raises(Forbidden):
            claim(s, policy, xid, user="csr", role="csr")
        claim(s, policy, xid, user="planner", role="planner")
        with pytest.raises(Conflict, match="claimed by planner"):
            claim(s, policy, xid, user="planner2", role="planner")
        assert load_queue(s, policy, role="planner")[0]["claimed_by"] == "planner"
        release(s, policy, xid, user="planner", role="planner")
        claim(s, policy, xid, user="planner2", role="planner")
        with pytest.raises(ToolError, match="reason"):
            reassign(s, policy, xid, user="planner", role="planner", to_role="csr", reason=" ")
        reassign(
            s, policy, xid, user="ops_manager", role="ops_manager", to_role="csr", reason="customer call"
        )
        s.commit()
        assert load_queue(s, policy, role="planner") == []
        [moved] = [i for i in load_queue(s, policy, role="csr") if i["id"] == xid]
        assert moved["owner_role"] == "csr" and moved["claimed_by"] is None
        kinds = [e.event_type for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        queue_kinds = [k for k in kinds if k.startswith("queue_")]
        assert queue_kinds == ["queue_claimed", "queue_released", "queue_claimed", "queue_reassigned"]


def test_an_event_that_resolves_an_exception_takes_it_off_the_queue(factory):
    policy = load_policy()
    with factory() as s:
        raw = {
            "event_id": "r1",
            "source": "wms",
            "type": "inventory.received",
            "occurred_at": "2026-11-04T08:00:00Z",
            "records": {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1000}]},
        }
        receive(s, [parse_event(raw)], channel="api")
        s.commit()
    drain(factory, policy)
    with factory() as s:
        assert load_queue(s, policy, role="planner") == []
        assert len(load_queue(s, policy)) == 2


def test_an_exception_found_again_starts_unclaimed(factory):
    policy = load_policy()
    with factory() as s:
        [item] = load_queue(s, policy, role="planner")
        claim(s, policy, item["id"], user="planner", role="planner")
        s.commit()

    def stock(event_id: str, on_hand: int, at: str) -> None:
        raw = {
            "event_id": event_id,
            "source": "wms",
            "type": "inventory.counted",
            "occurred_at": at,
            "records": {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": on_hand}]},
        }
        with factory() as s:
            receive(s, [parse_event(raw)], channel="api")
            s.commit()
        drain(factory, policy)

    stock("c1", 1000, "2026-11-04T08:00:00Z")
    stock("c2", 10, "2026-11-04T09:00:00Z")
    with factory() as s:
        [again] = load_queue(s, policy, role="planner")
    assert again["id"] == item["id"] and again["claimed_by"] is None
    # moved to ops_manager's queue, then resolved and found again: the new episode is routed by the
    # policy again, not left where the earlier one was sent
    with factory() as s:
        reassign(s, policy, item["id"], user="planner", role="planner", to_role="ops_manager", reason="big")
        s.commit()
        assert [i["id"] for i in load_queue(s, policy, role="planner") if i["owner_role"] == "planner"] == []
    stock("c3", 1000, "2026-11-04T10:00:00Z")
    stock("c4", 10, "2026-11-04T11:00:00Z")
    with factory() as s:
        [back] = load_queue(s, policy, role="planner")
        assert s.get_one(ExceptionRecord, item["id"]).assigned_role is None
    assert back["id"] == item["id"] and back["owner_role"] == "planner"


def test_queue_cli(monkeypatch, capsys, tmp_path, sqlite_engine):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, world(), case_id="queue")
        for oid in ("SO1", "SO2", "SO3"):
            triage_order(s, oid, load_policy())
        s.commit()
    code, out, err = run(monkeypatch, capsys, "queue", "--as", "planner", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["role"] == "planner" and [i["order_id"] for i in data["items"]] == ["SO1"]
    xid = data["items"][0]["id"]
    code, out, err = run(monkeypatch, capsys, "queue", "claim", str(xid), "--as", "csr")
    assert code == 2 and "does not cover" in err
    code, out, _ = run(monkeypatch, capsys, "queue", "claim", str(xid), "--as", "planner")
    assert code == 0 and "claimed by planner" in out
    code, out, _ = run(monkeypatch, capsys, "queue", "--role", "ops_manager")
    assert code == 0 and "SO1 INVENTORY_SHORTFALL" in out and "claimed by planner" in out
    assert "recommend SPLIT_SHIPMENT" in out
    code, out, _ = run(
        monkeypatch, capsys, "queue", "reassign", str(xid), "--to", "csr", "--reason", "x", "--as", "planner"
    )
    assert code == 0


def test_a_reassignment_follows_the_policys_routing_like_escalate(factory):
    """A credit hold stays with credit (the policy's ``escalation`` routes): moving it to the csr's
    queue is refused and changes nothing; a role the policy routes it to is accepted."""
    policy = load_policy()
    with factory() as s:
        [item] = load_queue(s, policy, role="credit_analyst")
        xid = item["id"]
        assert not policy.may_route("CREDIT_HOLD", "csr")
        with pytest.raises(Forbidden, match="CREDIT_HOLD may not be routed to csr"):
            reassign(
                s, policy, xid, user="ops_manager", role="ops_manager", to_role="csr", reason="out of sight"
            )
        s.rollback()
        assert s.get_one(ExceptionRecord, xid).assigned_role is None
        assert not s.scalars(select(AuditEvent).where(AuditEvent.event_type == "queue_reassigned")).all()
        reassign(
            s,
            policy,
            xid,
            user="credit_analyst",
            role="credit_analyst",
            to_role="credit_manager",
            reason="big",
        )
        s.commit()
        assert s.get_one(ExceptionRecord, xid).assigned_role == "credit_manager"


def test_a_peer_may_not_release_anothers_claim_only_a_role_above_may(factory):
    """Two credit managers on a credit analyst's item: the second may not release the first's claim
    (same role, not above); the claimant may, and so may the ops manager above a planner's claim."""
    policy = load_policy()
    with factory() as s:
        now = dt.datetime.now(dt.UTC)
        for name, role in (("cm1", "credit_manager"), ("cm2", "credit_manager"), ("pl1", "planner")):
            s.add(User(username=name, role=role, created_at=now))
        s.flush()
        [credit] = load_queue(s, policy, role="credit_analyst")
        claim(s, policy, credit["id"], user="cm1", role="credit_manager")
        with pytest.raises(Forbidden, match="claimed by cm1"):
            release(s, policy, credit["id"], user="cm2", role="credit_manager")
        assert s.get_one(ExceptionRecord, credit["id"]).claimed_by == "cm1"
        release(s, policy, credit["id"], user="cm1", role="credit_manager")
        [short] = load_queue(s, policy, role="planner")
        claim(s, policy, short["id"], user="pl1", role="planner")
        release(s, policy, short["id"], user="ops_manager", role="ops_manager")
        assert s.get_one(ExceptionRecord, short["id"]).claimed_by is None


def test_a_reassignment_neither_moves_an_item_to_its_own_queue_nor_drops_a_peers_claim(factory):
    """Reassigning to the queue it is in changed nothing but dropped the claim (and was audited as a
    move); a second planner could move the first's claimed item away. Both are refused, nothing
    changes; the claimant and a role above may still move it."""
    policy = load_policy()
    with factory() as s:
        now = dt.datetime.now(dt.UTC)
        for name in ("pl1", "pl2"):
            s.add(User(username=name, role="planner", created_at=now))
        s.flush()
        [item] = load_queue(s, policy, role="planner")
        xid = item["id"]
        claim(s, policy, xid, user="pl1", role="planner")
        with pytest.raises(Conflict, match="already in the planner queue"):
            reassign(s, policy, xid, user="pl1", role="planner", to_role="planner", reason="again")
        with pytest.raises(Conflict, match="claimed by pl1"):
            reassign(s, policy, xid, user="pl2", role="planner", to_role="csr", reason="not mine")
        row = s.get_one(ExceptionRecord, xid)
        assert (row.assigned_role, row.claimed_by) == (None, "pl1")
        assert not s.scalars(select(AuditEvent).where(AuditEvent.event_type == "queue_reassigned")).all()
        reassign(s, policy, xid, user="ops_manager", role="ops_manager", to_role="csr", reason="customer")
        assert s.get_one(ExceptionRecord, xid).assigned_role == "csr"


def test_queue_cli_refuses_role_and_as_together(monkeypatch, capsys, tmp_path, sqlite_engine):
    """`--role csr --as planner` showed the planner's queue under a csr request, silently."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, world(), case_id="queue")
        triage_order(s, "SO1", load_policy())
        s.commit()
    code, out, err = run(monkeypatch, capsys, "queue", "--role", "csr", "--as", "planner")
    assert code == 2 and "not both" in err and out == ""


def test_an_escalate_moves_the_item_unclaimed_so_its_new_role_can_work_it(factory):
    """ESCALATE kept the planner's claim (and an SLA escalation) on the moved item: the procurement
    buyer could neither claim it (claimed by planner) nor release it, nor could the planner
    (no longer their queue). Like a reassignment, it now arrives unclaimed in the new queue."""
    from agent.governance.requests import request_action

    policy = load_policy()
    with factory() as s:
        [item] = load_queue(s, policy, role="planner")
        claim(s, policy, item["id"], user="planner", role="planner")
        s.commit()
    req = request_action(
        factory,
        policy,
        order_id="SO1",
        requested_by="csr",
        action="ESCALATE",
        params={"role": "procurement_buyer", "reason": "no stock anywhere soon"},
    )
    assert req["status"] == "executed"
    with factory() as s:
        [moved] = [i for i in load_queue(s, policy, role="procurement_buyer") if i["id"] == item["id"]]
        assert moved["claimed_by"] is None and moved["escalated_to"] is None
        claim(s, policy, item["id"], user="procurement_buyer", role="procurement_buyer")


def test_another_sites_exception_is_answered_as_an_unknown_one(factory):
    """A user limited to another site got 'open exception (of an open order) N not found' for an
    existing exception and 'open exception N not found' for an unknown id: it learnt which exist."""
    from tools.errors import NotFound
    from tools.sites import Scope, scoped

    policy = load_policy()
    with factory() as s:
        [item] = load_queue(s, policy, role="planner")
        unknown = 1 + max(s.scalars(select(ExceptionRecord.id)))
    with scoped(factory, Scope.of(warehouses=["WH9"]))() as s:
        with pytest.raises(NotFound) as theirs:
            claim(s, policy, item["id"], user="planner", role="planner")
        with pytest.raises(NotFound) as none:
            claim(s, policy, unknown, user="planner", role="planner")
    assert str(theirs.value).replace(str(item["id"]), "N") == str(none.value).replace(str(unknown), "N")


def test_two_exceptions_on_one_line_each_show_their_own_recommendation(engine):
    """A short, backordered line holds INVENTORY_SHORTFALL and PROCUREMENT_DELAY, both on instance
    'line:1'. The queue keyed recommendations by (order, instance), so the shortfall showed the
    delay's EXPEDITE_PO (and My queue's one click filed that) instead of its own SPLIT_SHIPMENT."""
    fx = clean_fixture(order("SO1", lines=[line(qty=600, backorder_qty=600, status="backordered")]))
    edit(
        fx,
        "purchase_orders",
        "P1",
        supplier_id="SUP1",
        sku="A",
        warehouse_id="WH1",
        qty=600,
        expected_date="2026-12-01",
        status="open",
    )
    policy = load_policy()
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, fx, case_id="queue-two-on-a-line")
        result = triage_order(s, "SO1", policy)
        s.commit()
    assert {e["type"] for e in result["exceptions"]} == {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"}
    with factory() as s:
        items = {i["type"]: i for i in load_queue(s, policy, now=NOW)}
    assert items["INVENTORY_SHORTFALL"]["instance"] == items["PROCUREMENT_DELAY"]["instance"] == "line:1"
    assert items["INVENTORY_SHORTFALL"]["recommendation"]["action"] == "SPLIT_SHIPMENT"
    assert items["INVENTORY_SHORTFALL"]["recommendation"]["approver_role"] == "planner"
    assert items["PROCUREMENT_DELAY"]["recommendation"]["action"] == "EXPEDITE_PO"


def test_queue_cli_says_when_nothing_is_open(monkeypatch, capsys, tmp_path, sqlite_engine):
    """On a book with no open exception `copilot queue` printed a bare 'queues: '."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, clean_fixture(), case_id="queue-empty")
        triage_order(s, "SO1", load_policy())
        s.commit()
    code, out, err = run(monkeypatch, capsys, "queue")
    assert code == 0, err
    assert out.splitlines() == ["queues: no open exceptions"]
