"""Property-based: on random records, every recommended or alternative action is feasible, and
every detected exception's evidence is true of the records. Checked against the fixture itself,
recomputed here independently of the engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.policy import load_policy
from agent.triage.detection import detect, load_context
from agent.triage.plan import load_planning_facts, plan_order
from tools.db import make_engine, session_factory
from tools.fixtures import load_fixture
from tools.models import Base

POLICY = load_policy()
WAREHOUSES = {"WH1": ("east", "US"), "WH2": ("east", "CA"), "WH3": ("west", "US")}
SKUS = ("A", "B", "C")
DAY = dt.date(2026, 11, 20)
PROMISED = dt.date(2026, 11, 30)


@st.composite
def fixtures(draw):
    b = st.booleans()
    items = [
        {
            "sku": s,
            "list_price": draw(st.integers(5, 20)),
            "status": draw(st.sampled_from(["active"] * 4 + ["discontinued"])),
            "export_controlled": s == "C" and draw(st.sampled_from([True, True, False])),
        }
        for s in SKUS
    ]
    inventory = []
    for s in SKUS:
        for wh in WAREHOUSES:
            if draw(st.integers(0, 3)):
                on_hand = draw(st.integers(0, 300))
                inventory.append(
                    {
                        "sku": s,
                        "warehouse_id": wh,
                        "on_hand": on_hand,
                        "allocated": draw(st.integers(0, on_hand)),
                    }
                )
    subs = [{"sku": "A", "substitute_sku": t, "approved": draw(b)} for t in ("B", "C") if draw(b)]
    customer = {
        "customer_id": "C1",
        "tier": draw(st.sampled_from(["platinum", "gold", "standard"])),
        "credit_limit": draw(st.sampled_from([0, 1000, 50000])),
        "open_balance": draw(st.sampled_from([0, 900, 49000])),
        "overdue_balance": draw(st.sampled_from([0, 0, 10])),
        "credit_hold": draw(b),
        "allow_substitutions": draw(b),
        "allow_partial_shipments": draw(b),
        "export_license": draw(st.sampled_from([False, False, True])),
        "country": "US",
    }
    lines = []
    for n in range(1, draw(st.integers(1, 3)) + 1):
        qty = draw(st.integers(1, 200))
        allocated = draw(st.integers(0, qty))
        status = draw(st.sampled_from(["open", "allocated", "backordered", "shipped", "cancelled"]))
        lines.append(
            {
                "line_no": n,
                "sku": draw(st.sampled_from(SKUS)),
                "qty": qty,
                "allocated_qty": allocated,
                "backorder_qty": draw(st.sampled_from([0, qty - allocated])),
                "status": status,
                "unit_price": draw(st.sampled_from([5, 10, 10.1, 12, 20])),
                "warehouse_id": draw(st.sampled_from([None, "WH1", "WH2", "WH3"])),
            }
        )
    order = {
        "order_id": "SO1",
        "customer_id": "C1",
        "order_date": DAY.isoformat(),
        "promised_date": PROMISED.isoformat(),
        "status": draw(st.sampled_from(["open", "held", "released"])),
        "credit_released": draw(b),
        "warehouse_id": draw(st.sampled_from(list(WAREHOUSES))),
        "ship_to_street": draw(st.sampled_from(["1 Main", "", None])),
        "ship_to_city": "X",
        "ship_to_postal_code": "1",
        "ship_to_country": draw(st.sampled_from(["US", "CA", "MX"])),
        "customer_note": draw(st.sampled_from([None, "an equivalent is fine", "do not substitute"])),
        "lines": lines,
    }
    carriers = [
        {
            "carrier_id": f"CR{i}",
            "status": draw(st.sampled_from(["ok", "constrained", "disrupted"])),
            "on_time_rate": draw(st.sampled_from([0.8, 0.9, 0.95])),
        }
        for i in (1, 2, 3)
    ]
    shipments = (
        [
            {
                "shipment_id": "SH1",
                "order_id": "SO1",
                "carrier_id": draw(st.sampled_from(["CR1", "CR2", "CR3"])),
                "status": draw(st.sampled_from(["planned", "booked", "delayed", "delivered"])),
                "eta": (PROMISED + dt.timedelta(days=draw(st.integers(-3, 5)))).isoformat(),
            }
        ]
        if draw(b)
        else []
    )
    pos = [
        {
            "po_id": f"PO{i}",
            "supplier_id": "S1",
            "sku": draw(st.sampled_from(SKUS)),
            "warehouse_id": draw(st.sampled_from(list(WAREHOUSES))),
            "qty": 100,
            "status": draw(st.sampled_from(["open", "received"])),
            "expected_date": (PROMISED + dt.timedelta(days=draw(st.integers(-5, 10)))).isoformat(),
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    contracts = (
        [
            {
                "customer_id": "C1",
                "sku": "A",
                "valid_from": "2026-01-01",
                "valid_to": draw(st.sampled_from([None, "2026-06-30"])),
                "contract_price": 10,
            }
        ]
        if draw(b)
        else []
    )
    return {
        "customers": [customer],
        "suppliers": [{"supplier_id": "S1"}],
        "items": items,
        "substitutes": subs,
        "warehouses": [{"warehouse_id": w, "region": r, "country": c} for w, (r, c) in WAREHOUSES.items()],
        "inventory": inventory,
        "price_contracts": contracts,
        "carriers": carriers,
        "purchase_orders": pos,
        "orders": [order],
        "shipments": shipments,
    }


def _available(f, sku, wh) -> int:
    row = next((r for r in f["inventory"] if (r["sku"], r["warehouse_id"]) == (sku, wh)), None)
    return row["on_hand"] - row["allocated"] if row else 0


def _effective(f, sku) -> Decimal:
    valid = [
        c
        for c in f["price_contracts"]
        if c["sku"] == sku and (c["valid_to"] is None or DAY <= dt.date.fromisoformat(c["valid_to"]))
    ]
    if valid:
        return Decimal(str(valid[0]["contract_price"]))
    return Decimal(str(next(i for i in f["items"] if i["sku"] == sku)["list_price"]))


def _check_option(f, option, types):
    order, customer = f["orders"][0], f["customers"][0]
    p = option.params
    line = next((ln for ln in order["lines"] if ln["line_no"] == p.get("line_no")), None)
    wh = (line["warehouse_id"] or order["warehouse_id"]) if line else None
    open_qty = line["qty"] - line["allocated_qty"] if line else None
    if option.action == "REALLOCATE_WAREHOUSE":
        target = p["to_warehouse_id"]
        assert target != wh and _available(f, line["sku"], target) >= open_qty
        controlled = next(i for i in f["items"] if i["sku"] == line["sku"])["export_controlled"]
        assert not (
            controlled
            and not customer["export_license"]
            and order["ship_to_country"] != WAREHOUSES[target][1]
        )
    elif option.action == "APPROVE_SUBSTITUTION":
        assert customer["allow_substitutions"]
        assert {"sku": line["sku"], "substitute_sku": p["substitute_sku"], "approved": True} in f[
            "substitutes"
        ]
        assert _available(f, p["substitute_sku"], wh) >= open_qty
    elif option.action == "SPLIT_SHIPMENT":
        assert customer["allow_partial_shipments"] and 0 < p["ship_qty"] == _available(f, line["sku"], wh)
    elif option.action == "UPDATE_PROMISE_DATE":
        assert dt.date.fromisoformat(p["new_promised_date"]) >= PROMISED
    elif option.action == "REBOOK_CARRIER":
        carrier = next(c for c in f["carriers"] if c["carrier_id"] == p["carrier_id"])
        assert carrier["status"] == "ok" and carrier["carrier_id"] != f["shipments"][0]["carrier_id"]
    elif option.action == "EXPEDITE_FREIGHT":
        assert customer["tier"] == "platinum"
    elif option.action == "EXPEDITE_PO":
        po = next(x for x in f["purchase_orders"] if x["po_id"] == p["po_id"])
        assert po["status"] == "open"
    elif option.action == "RELEASE_CREDIT_HOLD":
        assert "COMPLIANCE_HOLD" not in types
    elif option.action == "CORRECT_PRICE":
        assert Decimal(p["new_unit_price"]) == _effective(
            f, line["original_sku"] if line.get("original_sku") else line["sku"]
        )


def _check_evidence(f, d):
    order, customer = f["orders"][0], f["customers"][0]
    line = next((ln for ln in order["lines"] if ln["line_no"] == d.line_no), None)
    assert order["status"] in ("open", "held", "released")
    if line is not None:
        assert line["status"] not in ("shipped", "cancelled")
    wh = (line["warehouse_id"] or order["warehouse_id"]) if line else None
    if d.type == "INVENTORY_SHORTFALL":
        assert d.facts["open_qty"] == line["qty"] - line["allocated_qty"]
        assert d.facts["available"] == _available(f, line["sku"], wh) < d.facts["open_qty"]
    elif d.type == "CREDIT_HOLD":
        value = sum(
            Decimal(str(ln["unit_price"])) * ln["qty"]
            for ln in order["lines"]
            if ln["status"] not in ("shipped", "cancelled")
        )
        assert not order["credit_released"]
        assert (
            customer["credit_hold"]
            or customer["open_balance"] + value > customer["credit_limit"]
            or customer["overdue_balance"] > 0
        )
    elif d.type == "CARRIER_DISRUPTION":
        s = f["shipments"][0]
        carrier = next(c for c in f["carriers"] if c["carrier_id"] == s["carrier_id"])
        assert s["status"] != "delivered"
        assert (
            carrier["status"] == "disrupted"
            or s["status"] == "delayed"
            or dt.date.fromisoformat(s["eta"]) > PROMISED
        )
    elif d.type == "MASTER_DATA_INCOMPLETE":
        assert not (order["ship_to_street"] or "").strip()
    elif d.type == "COMPLIANCE_HOLD":
        item = next(i for i in f["items"] if i["sku"] == line["sku"])
        assert (
            item["export_controlled"]
            and not customer["export_license"]
            and order["ship_to_country"] != WAREHOUSES[wh][1]
        )
    elif d.type == "PRICING_DISCREPANCY":
        effective = _effective(f, line["sku"])
        assert abs(Decimal(str(line["unit_price"])) - effective) > effective * Decimal("0.02")
    elif d.type == "PROCUREMENT_DELAY":
        assert line["backorder_qty"] > 0
        pos = [
            x
            for x in f["purchase_orders"]
            if x["status"] == "open" and (x["sku"], x["warehouse_id"]) == (line["sku"], wh)
        ]
        assert not pos or min(dt.date.fromisoformat(x["expected_date"]) for x in pos) > PROMISED
    elif d.type == "SUBSTITUTION_REQUEST":
        item = next(i for i in f["items"] if i["sku"] == line["sku"])
        assert item["status"] == "discontinued" or order["customer_note"] == "an equivalent is fine"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fixtures())
def test_recommendations_are_feasible_and_evidence_is_true(fixture):
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as s:
        load_fixture(s, fixture, case_id="property")
        ctx = load_context(s, "SO1", POLICY)
        found = detect(ctx, POLICY)
        plan = plan_order(ctx, found, load_planning_facts(s, ctx), POLICY)
    types = {d.type for d in found}
    for name in sorted(types) + [o.action for o in plan.actions[:1]]:
        event(name)
    for d in found:
        _check_evidence(fixture, d)
    for option in (*plan.actions, *plan.alternatives):
        assert option.feasible
        _check_option(fixture, option, types)
    if plan.actions and types & {"COMPLIANCE_HOLD", "CREDIT_HOLD"}:
        # An order that may not ship is cleared first: no stock or freight move leads the plan.
        assert (
            plan.actions[0].action in {"COMPLIANCE_REVIEW", "RELEASE_CREDIT_HOLD", "ESCALATE"}
            or "COMPLIANCE_HOLD" not in types
        )
        assert plan.actions[0].action not in {
            "REALLOCATE_WAREHOUSE",
            "SPLIT_SHIPMENT",
            "REBOOK_CARRIER",
            "EXPEDITE_FREIGHT",
            "APPROVE_SUBSTITUTION",
        }
    engine.dispose()
