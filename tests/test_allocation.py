"""Across orders (domain.md §6): order priority, ALLOCATION_CONFLICT with its donors, the
REASSIGN_ALLOCATION decision, its risk and approver, the guard and the executor."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from agent.governance.requests import decide, request_action, write_session
from agent.triage.detection import detect, load_context
from agent.triage.plan import load_planning_facts, plan_order
from tests.factories import clean_fixture, edit, line, order
from tests.test_governance import POLICY, world
from tools import models
from tools.models import ActionRequest, Inventory, OrderLine
from tools.rules import order_priority_key as order_priority

ERP = (
    "customers",
    "items",
    "substitutes",
    "warehouses",
    "inventory",
    "price_contracts",
    "carriers",
    "suppliers",
    "purchase_orders",
    "orders",
    "order_lines",
    "shipments",
)


def erp_snapshot(session) -> dict[str, dict[tuple, dict]]:
    """Every ERP record (domain.md §1) by table and primary key."""
    out = {}
    for name in ERP:
        table = models.Base.metadata.tables[name]
        keys = [c.name for c in table.primary_key.columns]
        out[name] = {
            tuple(row[k] for k in keys): dict(row) for row in session.execute(table.select()).mappings()
        }
    return out


def _conflict_world(*, donors=(("SO2", "C2", 8), ("SO3", "C3", 22))) -> dict:
    """SO1 of platinum P1 wants 10 × A at WH1, where everything (30) is allocated to lower
    orders; no other warehouse holds 10, no substitute, no partial shipments."""
    fx = clean_fixture(order("SO1", customer_id="P1", lines=[line(qty=10)]))
    edit(
        fx,
        "customers",
        "P1",
        name="Prime",
        tier="platinum",
        credit_limit=100000,
        country="US",
        allow_substitutions=False,
        allow_partial_shipments=False,
    )
    edit(fx, "customers", "C2", tier="standard")
    edit(fx, "customers", "C3", name="Crane", tier="gold", credit_limit=100000, country="US")
    held = sum(q for _, _, q in donors)
    edit(fx, "inventory", "A/WH1", on_hand=held, allocated=held)
    for oid, cust, qty in donors:
        fx["orders"].append(
            order(
                oid,
                customer_id=cust,
                promised_date="2026-11-25",
                lines=[line(qty=qty, allocated_qty=qty, status="allocated")],
            )
        )
    return fx


def _plan(factory, order_id="SO1"):
    with factory() as s:
        ctx = load_context(s, order_id, POLICY)
        found = detect(ctx, POLICY)
        return found, plan_order(ctx, found, load_planning_facts(s, ctx), POLICY)


def test_order_priority_tier_then_promise_then_order_date_then_id():
    d = dt.date
    keys = [
        order_priority("standard", d(2026, 11, 1), d(2026, 10, 1), "SO1"),
        order_priority("platinum", d(2026, 12, 1), d(2026, 10, 9), "SO9"),
        order_priority("gold", d(2026, 11, 5), d(2026, 10, 2), "SO3"),
        order_priority("gold", d(2026, 11, 5), d(2026, 10, 1), "SO4"),
        order_priority("gold", d(2026, 11, 5), d(2026, 10, 1), "SO2"),
        order_priority("gold", d(2026, 11, 2), None, "SO8"),
        order_priority(None, d(2026, 11, 1), d(2026, 10, 1), "SO0"),
    ]
    ranked = [k[-1] for k in sorted(keys)]
    assert ranked == ["SO9", "SO8", "SO2", "SO4", "SO3", "SO1", "SO0"]


def test_a_conflict_names_its_donors_and_takes_from_the_lowest_priority_first(sqlite_engine):
    factory = world(sqlite_engine, _conflict_world())
    found, plan = _plan(factory)
    assert [d.type for d in found] == ["ALLOCATION_CONFLICT", "INVENTORY_SHORTFALL"]
    conflict = found[0]
    donors = conflict.facts["donors"]
    assert [(x["order_id"], x["tier"], x["promised_date"], x["allocated_qty"]) for x in donors] == [
        ("SO2", "standard", "2026-11-25", 8),
        ("SO3", "gold", "2026-11-25", 22),
    ]
    assert any("SO2" in e and "standard" in e and "holds 8" in e for e in conflict.evidence)
    rec = plan.recommendation
    assert (rec.action, rec.risk, rec.approver_role) == ("REASSIGN_ALLOCATION", "medium", "planner")
    assert dict(rec.params) == {
        "order_id": "SO1",
        "line_no": 1,
        "from_order_id": "SO2",
        "from_line_no": 1,
        "qty": 8,
    }
    # a donor of lower priority is never the recipient: SO2 has no conflict of its own
    found2, _ = _plan(factory, "SO2")
    assert found2 == []


def test_a_gold_donor_makes_it_high_risk_for_the_ops_manager(sqlite_engine):
    factory = world(sqlite_engine, _conflict_world(donors=(("SO3", "C3", 22),)))
    _, plan = _plan(factory)
    rec = plan.recommendation
    assert (rec.action, rec.params["from_order_id"], rec.params["qty"]) == ("REASSIGN_ALLOCATION", "SO3", 10)
    assert (rec.risk, rec.approver_role) == ("high", "ops_manager")


def _partial(fx):  # SO3 gone: SO2's 8 < 10
    fx["orders"].pop()


def _other_warehouse(fx):
    edit(fx, "warehouses", "WH3", name="West", region="west", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=10, allocated=0)


def _substitute(fx):
    edit(fx, "customers", "P1", allow_substitutions=True)
    edit(fx, "substitutes", "A/B", approved=True)  # B: 500 at WH1


def _holders_rank_above(fx):
    for cust in ("C2", "C3"):
        edit(fx, "customers", cust, tier="platinum")
    for o in fx["orders"][1:]:
        o["promised_date"] = "2026-11-10"


def _holders_shipped(fx):
    for o in fx["orders"][1:]:
        o["status"] = "shipped"


@pytest.mark.parametrize(
    "change",
    [_partial, _other_warehouse, _substitute, _holders_rank_above, _holders_shipped],
)
def test_no_conflict_when_a_branch_before_it_is_feasible_or_no_donor_covers(sqlite_engine, change):
    fx = _conflict_world()
    change(fx)
    factory = world(sqlite_engine, fx)
    found, plan = _plan(factory)
    assert "ALLOCATION_CONFLICT" not in {d.type for d in found}
    assert "INVENTORY_SHORTFALL" in {d.type for d in found}
    assert all(o.action != "REASSIGN_ALLOCATION" for o in plan.actions)


def test_a_substitute_for_a_line_substituted_before_does_not_stop_the_conflict(sqlite_engine):
    """A line substituted before (B -> A) is not substituted again (the write keeps the ordered
    SKU), so an approved substitute in stock does not make APPROVE_SUBSTITUTION feasible (§4) and
    the conflict holds (§6)."""
    fx = _conflict_world()
    _substitute(fx)
    edit(fx, "lines", "SO1/1", original_sku="B")
    factory = world(sqlite_engine, fx)
    found, plan = _plan(factory)
    assert "ALLOCATION_CONFLICT" in {d.type for d in found}
    assert "REASSIGN_ALLOCATION" in [o.action for o in plan.actions]
    assert "APPROVE_SUBSTITUTION" not in [o.action for o in (*plan.actions, *plan.alternatives)]


def _request(factory, params=None):
    return request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="REASSIGN_ALLOCATION",
        params=params
        or {"order_id": "SO1", "line_no": 1, "from_order_id": "SO2", "from_line_no": 1, "qty": 8},
    )


def test_the_executor_writes_both_lines_and_nothing_else(engine):
    factory = world(engine, _conflict_world())
    req = _request(factory)
    assert req["status"] == "pending_approval" and req["approver_role"] == "planner", req["guard"]
    with factory() as s:
        before = erp_snapshot(s)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        after = erp_snapshot(s)
        changed = {(t, k) for t in after for k in after[t] if before[t].get(k) != after[t][k]}
        assert changed == {("order_lines", ("SO1", 1)), ("order_lines", ("SO2", 1))}
        mine, donor = s.get(OrderLine, ("SO1", 1)), s.get(OrderLine, ("SO2", 1))
        assert (mine.allocated_qty, mine.backorder_qty, mine.status) == (8, 0, "open")
        assert (donor.allocated_qty, donor.backorder_qty, donor.status) == (0, 8, "backordered")
        assert s.get(Inventory, ("A", "WH1")).allocated == 30  # the units stay allocated
        # the donor order was triaged again: it now shows its shortfall
        types = {
            r[0]
            for r in s.execute(text("SELECT type FROM exceptions WHERE order_id = 'SO2' AND status = 'open'"))
        }
        assert types == {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"}  # backordered, no PO


def test_a_line_completed_by_the_reassignment_is_allocated(sqlite_engine):
    factory = world(sqlite_engine, _conflict_world(donors=(("SO3", "C3", 22),)))
    req = _request(
        factory, {"order_id": "SO1", "line_no": 1, "from_order_id": "SO3", "from_line_no": 1, "qty": 10}
    )
    assert (req["risk"], req["approver_role"]) == ("high", "ops_manager")
    done = decide(factory, POLICY, req["id"], username="ops_manager", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        mine = s.get(OrderLine, ("SO1", 1))
        assert (mine.allocated_qty, mine.status) == (10, "allocated")
        assert s.get(OrderLine, ("SO3", 1)).allocated_qty == 12


def test_the_donor_must_still_hold_the_allocation_at_execution(sqlite_engine):
    factory = world(sqlite_engine, _conflict_world())
    req = _request(factory)
    with write_session(factory) as s:  # the donor line ships part meanwhile
        ln = s.get(OrderLine, ("SO2", 1))
        ln.allocated_qty = 5
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "failed"
    assert "holds 5" in done["error"] and "fewer than qty 8" in done["error"], done
    with factory() as s:
        assert s.get(OrderLine, ("SO1", 1)).allocated_qty == 0
        assert s.get(ActionRequest, req["id"]).status == "failed"


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"from_order_id": "SO1"}, "another order"),
        ({"qty": 9}, "fewer than qty 9"),
        ({"from_order_id": "SO3", "qty": 11}, "exceeds the open quantity"),
        ({"qty": 0}, "positive"),
        ({"from_line_no": 2}, "has no line 2"),
        ({"from_order_id": "SO404"}, "not found"),
    ],
)
def test_the_guard_blocks_a_reassignment_the_records_do_not_allow(sqlite_engine, params, reason):
    factory = world(sqlite_engine, _conflict_world())
    base = {"order_id": "SO1", "line_no": 1, "from_order_id": "SO2", "from_line_no": 1, "qty": 8}
    req = _request(factory, {**base, **params})
    assert req["status"] == "blocked"
    assert any(reason in r for r in req["guard"]["reasons"]), req["guard"]


def test_the_guard_blocks_taking_from_a_higher_priority_order(sqlite_engine):
    fx = _conflict_world()
    edit(fx, "customers", "C2", tier="platinum")
    fx["orders"][1]["promised_date"] = "2026-11-10"
    factory = world(sqlite_engine, fx)
    req = _request(factory)
    assert req["status"] == "blocked"
    assert any("does not rank below" in r for r in req["guard"]["reasons"]), req["guard"]


def test_the_donor_lookup_is_an_index_range_over_the_active_lines_of_the_sku(sqlite_engine):
    """Not over the SKU's shipped history (most of its lines, growing every day): the range is on
    (sku, status) for the active statuses; a line inheriting its order's warehouse is found too."""
    from sqlalchemy.dialects import sqlite

    from agent.triage import allocation

    factory = world(sqlite_engine, _conflict_world())
    captured = []
    with factory() as s:
        real = s.execute

        def spy(stmt, *a, **k):
            captured.append(stmt)
            return real(stmt, *a, **k)

        s.execute = spy
        allocation.load_donors(s, [("A", "WH1")])
        s.execute = real
        assert len(captured) == 1  # lines with their own warehouse and lines inheriting their order's
        for stmt in captured:
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            plan = " ".join(r[-1] for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "SEARCH order_lines USING INDEX ix_order_lines_sku_status (sku=? AND status=?)" in plan, (
                plan
            )


def test_donors_are_the_active_lines_holding_stock_where_they_ship_from(engine):
    """A line with its own warehouse and one inheriting its order's both hold stock at WH1; a line
    of the order's SKU shipping from WH2, a shipped line, a line holding nothing and a line of a
    closed order are nobody's donors at WH1."""
    from agent.triage import allocation

    fx = _conflict_world(donors=(("SO2", "C2", 8), ("SO3", "C3", 22)))
    fx["orders"][1]["lines"][0]["warehouse_id"] = "WH1"  # its own, the same as its order's
    fx["orders"].append(
        order("SO4", customer_id="C2", lines=[line(qty=5, allocated_qty=5, warehouse_id="WH2")])
    )
    fx["orders"].append(
        order("SO5", customer_id="C2", lines=[line(qty=5, allocated_qty=5, status="shipped")])
    )
    fx["orders"].append(order("SO6", customer_id="C2", lines=[line(qty=5)]))
    fx["orders"].append(
        order("SO7", customer_id="C2", status="cancelled", lines=[line(qty=5, allocated_qty=5)])
    )
    factory = world(engine, fx)
    with factory() as s:
        found = allocation.load_donors(s, [("A", "WH1"), ("A", "WH2"), ("B", "WH1")])
    assert {k: [(d.order_id, d.allocated_qty) for d in v] for k, v in found.items()} == {
        ("A", "WH1"): [("SO2", 8), ("SO3", 22)],
        ("A", "WH2"): [("SO4", 5)],
    }


def test_an_order_event_that_changes_priority_retriages_the_orders_sharing_its_stock(engine):
    """SO2 (gold) holds the 10 A that SO1 (gold, promised 11-20) lacks, and is promised earlier:
    it ranks above, no conflict. An ERP event moves SO2's promise after SO1's: SO2 now ranks
    below, and SO1 — whose own records did not change — is triaged again and shows the conflict."""
    from agent.flow import drain
    from agent.triage.service import triage_order
    from tests.test_events import _open, _send, event

    fx = _conflict_world(donors=(("SO2", "C3", 10),))
    edit(fx, "customers", "P1", tier="gold")
    fx["orders"][1]["promised_date"] = "2026-11-10"
    factory = world(engine, fx)
    with factory() as s:
        triage_order(s, "SO1", POLICY)
        s.commit()
    assert {t for o, t, _ in _open(factory) if o == "SO1"} == {"INVENTORY_SHORTFALL"}
    _send(
        factory, event("e1", {"orders": [{"order_id": "SO2", "promised_date": "2026-11-25"}]}, source="erp")
    )
    drain(factory, POLICY)
    assert {t for o, t, _ in _open(factory) if o == "SO1"} == {"ALLOCATION_CONFLICT", "INVENTORY_SHORTFALL"}
