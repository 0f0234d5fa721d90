"""Findings of an outside check of the approval step and the communications (domain.md §3, §6, §7)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from agent.comms.service import ask_notice, draft_due, get_message
from agent.governance.audit import list_events, verify_chain
from agent.governance.requests import decide, request_action
from agent.llm import FakeLLM
from tests.factories import clean_fixture, edit, line, order
from tests.test_comms import POLICY, notices, world
from tools.errors import GuardBlocked
from tools.models import Execution, Notice, OrderLine, OutboxMessage, PurchaseOrder


def outbox_count(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage))


def donor_world(*, on_hand: int = 10, allocated: int = 10) -> dict:
    """SO1 (gold Acme) wants 10 A at WH1; SO2 (standard Bolt, promised later) holds 10 of it."""
    fx = clean_fixture(
        order(),
        order(
            "SO2",
            customer_id="C2",
            promised_date="2026-11-25",
            lines=[line(1, "A", allocated_qty=10, status="allocated")],
        ),
    )
    edit(fx, "inventory", "A/WH1", on_hand=on_hand, allocated=allocated)
    edit(fx, "customers", "C2", email="buying@bolt.test")
    return fx


def reassign(factory, qty: int) -> dict:
    return request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="REASSIGN_ALLOCATION",
        params={"order_id": "SO1", "line_no": 1, "from_order_id": "SO2", "from_line_no": 1, "qty": qty},
    )


def test_an_approver_may_not_edit_the_quantity_a_reassignment_takes_from_its_donor(engine):
    """§3: an approver's edit changes only the values the action lets them choose (warehouse,
    substitute, ship_qty, date, price, carrier, ship-to values); REASSIGN_ALLOCATION's qty is
    computed by §6 and is none of them."""
    factory = world(engine, donor_world())
    req = reassign(factory, 10)
    assert req["status"] == "pending_approval", req["guard"]
    with pytest.raises(GuardBlocked, match="only the values an approver chooses; qty"):
        decide(factory, POLICY, req["id"], username="ops_manager", decision="edit", params={"qty": 5})
    with factory() as s:
        assert s.scalar(select(Execution.id)) is None
        assert s.get(OrderLine, ("SO2", 1)).allocated_qty == 10
        refused = list_events(s, request_id=req["id"], event_type="decision_refused")
        assert refused and "qty of REASSIGN_ALLOCATION must stay qty=10" in refused[-1]["payload"]["reason"]
        assert verify_chain(s)["ok"]


def test_a_reassignment_takes_only_the_shortfall_from_a_lower_priority_order(engine):
    """§6: qty = min(donor allocated, open quantity − available). With 4 A free at WH1, SO1's line
    of 10 is 6 short: taking 10 from SO2 would backorder another customer for stock that is free."""
    factory = world(engine, donor_world(on_hand=14, allocated=10))
    too_much = reassign(factory, 10)
    assert too_much["status"] == "blocked"
    assert any("exceeds the shortfall 6" in r for r in too_much["guard"]["reasons"]), too_much["guard"]
    fair = reassign(factory, 6)
    assert fair["status"] == "pending_approval", fair["guard"]
    done = decide(factory, POLICY, fair["id"], username="ops_manager", decision="approve")
    assert done["status"] == "executed"
    with factory() as s:
        assert s.get(OrderLine, ("SO2", 1)).allocated_qty == 4


def test_a_promise_date_update_to_the_date_already_promised_makes_no_notice_due(engine):
    """§7: a notice is due when an executed action changes what the customer was promised; an
    UPDATE_PROMISE_DATE to the promised date itself (§4 can recommend it: the later of the promised
    date and a purchase order expected earlier) changes nothing and tells the customer nothing."""
    factory = world(engine, clean_fixture(order()))
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="UPDATE_PROMISE_DATE",
        params={"order_id": "SO1", "new_promised_date": "2026-11-20"},
    )
    assert decide(factory, POLICY, req["id"], username="csr", decision="approve")["status"] == "executed"
    assert notices(factory) == []


def promise(factory, date: str) -> None:
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="UPDATE_PROMISE_DATE",
        params={"order_id": "SO1", "new_promised_date": date},
    )
    assert decide(factory, POLICY, req["id"], username="csr", decision="approve")["status"] == "executed"


def test_a_notice_whose_facts_changed_before_its_approval_is_not_sent(engine):
    """§7: the text says nothing the facts do not. A notice of the new date 2026-11-28, approved
    after the date moved again to 2026-12-05, would tell the customer a date that no longer holds:
    its execution fails with what changed and nothing is queued; the newer notice goes out."""
    factory = world(engine, clean_fixture(order()))
    promise(factory, "2026-11-28")
    [first] = draft_due(factory, POLICY, FakeLLM([]))
    promise(factory, "2026-12-05")
    [second] = draft_due(factory, POLICY, FakeLLM([]))
    stale = decide(factory, POLICY, first["request"]["id"], username="csr", decision="approve")
    assert stale["status"] == "failed"
    assert "no longer hold: the promised date of SO1 is now 2026-12-05, not 2026-11-28" in stale["error"]
    assert outbox_count(factory) == 0
    assert get_message(factory, first["id"])["status"] == "failed"
    fresh = decide(factory, POLICY, second["request"]["id"], username="csr", decision="approve")
    assert fresh["status"] == "executed" and outbox_count(factory) == 1
    with factory() as s:
        assert "2026-12-05" in s.scalar(select(OutboxMessage.body))
        assert verify_chain(s)["ok"]


def test_a_split_notice_is_not_sent_once_the_rest_of_the_line_was_allocated(engine):
    """The split notice says 5 ship now and 5 follow; once the other 5 were allocated (here by a
    REASSIGN from a lower-priority order) that is no longer true and it is not sent."""
    fx = donor_world(on_hand=15, allocated=10)
    factory = world(engine, fx)
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="SPLIT_SHIPMENT",
        params={"order_id": "SO1", "line_no": 1, "ship_qty": 5},
    )
    assert (
        decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")["status"] == "executed"
    )
    [split] = draft_due(factory, POLICY, FakeLLM([]))
    more = reassign(factory, 5)
    assert (
        decide(factory, POLICY, more["id"], username="ops_manager", decision="approve")["status"]
        == "executed"
    )
    stale = decide(factory, POLICY, split["request"]["id"], username="csr", decision="approve")
    assert stale["status"] == "failed" and "line 1 of SO1 now has allocated_qty 10" in stale["error"]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert s.scalar(select(func.count()).select_from(Notice)) == 2  # the donor's notice is due


def test_a_supplier_request_for_a_purchase_order_redated_meanwhile_is_not_sent(engine):
    """The request names the purchase order's expected date; the supplier moved it since."""
    fx = clean_fixture(order(lines=[line(1, "A", backorder_qty=10, status="backordered")]))
    edit(fx, "inventory", "A/WH1", on_hand=0)
    edit(fx, "suppliers", "SUP1", email="po@forge.test")
    edit(
        fx,
        "purchase_orders",
        "PO1",
        supplier_id="SUP1",
        sku="A",
        warehouse_id="WH1",
        qty=50,
        expected_date="2026-12-10",
        status="open",
    )
    factory = world(engine, fx)
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="planner", action="EXPEDITE_PO", params={"po_id": "PO1"}
    )
    assert (
        decide(factory, POLICY, req["id"], username="procurement_buyer", decision="approve")["status"]
        == "executed"
    )
    [filed] = draft_due(factory, POLICY, FakeLLM([]))
    assert filed["request"]["status"] == "pending_approval", filed
    with factory() as s:
        s.get(PurchaseOrder, "PO1").expected_date = dt.date(2026, 12, 20)
        s.commit()
    done = decide(factory, POLICY, filed["request"]["id"], username="procurement_buyer", decision="approve")
    assert (
        done["status"] == "failed"
        and "PO1 is now 50 expected 2026-12-20, not 50 expected 2026-12-10" in done["error"]
    )
    assert outbox_count(factory) == 0


def test_a_due_notice_superseded_before_its_draft_is_not_filed(engine):
    """Two new dates before the drafting worker ran: the first notice (2026-11-28) no longer holds
    and is failed as superseded, with no request for a csr to decide; the second is filed."""
    factory = world(engine, clean_fixture(order()))
    promise(factory, "2026-11-28")
    promise(factory, "2026-12-05")
    old, new = draft_due(factory, POLICY, FakeLLM([]))
    assert old["status"] == "failed" and old["request"] is None
    assert "superseded" in old["error"] and "now 2026-12-05, not 2026-11-28" in old["error"]
    assert new["status"] == "pending_approval"
    with factory() as s:
        assert [e["payload"]["notice_id"] for e in list_events(s, event_type="notice_failed")] == [old["id"]]
        assert verify_chain(s)["ok"]


def test_the_notice_that_supersedes_another_tells_the_date_the_customer_was_last_told(engine):
    """2026-11-20 -> 2026-11-28 -> 2026-12-05 before any notice left: the customer never heard of
    2026-11-28, so the notice that goes out tells 2026-11-20 -> 2026-12-05 (not "from 2026-11-28").
    Once a notice was sent, the next one starts from the date it told; and a date moved back to
    the one the customer holds makes no notice due."""
    factory = world(engine, clean_fixture(order()))
    promise(factory, "2026-11-28")
    promise(factory, "2026-12-05")
    _, new = draft_due(factory, POLICY, FakeLLM([]))
    with factory() as s:
        facts = s.get(Notice, new["id"]).facts
    assert (facts["old_promised_date"], facts["new_promised_date"]) == ("2026-11-20", "2026-12-05")
    assert (
        decide(factory, POLICY, new["request"]["id"], username="csr", decision="approve")["status"]
        == "executed"
    )
    promise(factory, "2026-12-10")
    [later] = draft_due(factory, POLICY, FakeLLM([]))
    with factory() as s:
        assert s.get(Notice, later["id"]).facts["old_promised_date"] == "2026-12-05"
    promise(factory, "2026-12-05")  # back to what the customer was told: nothing to tell
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.status == "due")) == 0


def test_an_update_on_the_order_that_went_out_is_the_date_the_customer_was_told(engine):
    """The notice of 2026-11-28 was rejected, but a csr's update on the order (``ask_notice``)
    told the customer its promised date 2026-11-28: the next change is told from that date."""
    factory = world(engine, clean_fixture(order()))
    promise(factory, "2026-11-28")
    [first] = draft_due(factory, POLICY, FakeLLM([]))
    decide(factory, POLICY, first["request"]["id"], username="csr", decision="reject", reason="phone call")
    asked = ask_notice(factory, POLICY, FakeLLM([]), order_id="SO1", username="planner")
    done = decide(factory, POLICY, asked["request"]["id"], username="csr", decision="approve")
    assert done["status"] == "executed" and outbox_count(factory) == 1
    promise(factory, "2026-12-05")
    [new] = draft_due(factory, POLICY, FakeLLM([]))
    with factory() as s:
        assert s.get(Notice, new["id"]).facts["old_promised_date"] == "2026-11-28"


def test_a_purchase_order_for_a_cancelled_lines_sku_is_not_the_orders_to_expedite(engine):
    """§3: po_id is an open purchase order for the sku of one of the order's lines at that line's
    warehouse. A cancelled line needs nothing (§2 ignores it): expediting PO1 on SO1's behalf would
    ask the supplier for goods "needed by" a date no line of SO1 waits for."""
    fx = clean_fixture(order(lines=[line(1, "A", status="cancelled"), line(2, "B", qty=5)]))
    edit(
        fx,
        "purchase_orders",
        "PO1",
        supplier_id="SUP1",
        sku="A",
        warehouse_id="WH1",
        qty=50,
        expected_date="2026-12-10",
        status="open",
    )
    factory = world(engine, fx)
    req = request_action(
        factory, POLICY, order_id="SO1", requested_by="planner", action="EXPEDITE_PO", params={"po_id": "PO1"}
    )
    assert req["status"] == "blocked"
    assert any("PO1" in r and "is not an open purchase order" in r for r in req["guard"]["reasons"])


def test_a_backorder_notice_that_supersedes_another_tells_every_unit_backordered(engine):
    """Two reassignments take 4 and then 3 of SO2's 10 A before any notice left: the first notice
    (4 on backorder) no longer holds and is superseded, so the one that goes out tells Bolt the 7
    units now on backorder, not only the last 3."""
    fx = donor_world()
    fx["orders"][0]["lines"][0]["qty"] = 4
    fx["orders"].append(order("SO3", order_date="2026-11-02", lines=[line(1, "A", qty=3)]))
    factory = world(engine, fx)
    for recipient, qty in (("SO1", 4), ("SO3", 3)):
        req = request_action(
            factory,
            POLICY,
            order_id=recipient,
            requested_by="planner",
            action="REASSIGN_ALLOCATION",
            params={
                "order_id": recipient,
                "line_no": 1,
                "from_order_id": "SO2",
                "from_line_no": 1,
                "qty": qty,
            },
        )
        done = decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
        assert done["status"] == "executed", done
    old, new = draft_due(factory, POLICY, FakeLLM([]))
    assert old["status"] == "failed" and "superseded" in old["error"]
    with factory() as s:
        facts = s.get(Notice, new["id"]).facts
    assert facts["order_id"] == "SO2" and facts["backordered_qty"] == 7
    assert facts["line"]["backorder_qty"] == 7
