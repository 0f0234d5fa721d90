"""Next-best action: every branch of the decision order (domain.md §4), table-driven."""

from __future__ import annotations

import copy

import pytest

from agent.policy import load_policy
from agent.triage.detection import detect, load_context
from agent.triage.plan import load_planning_facts, plan_order
from tools.db import session_factory
from tools.fixtures import load_fixture

POLICY = load_policy()

BASE = {
    "customers": [
        {
            "customer_id": "C1",
            "name": "Acme",
            "tier": "gold",
            "credit_limit": 100000,
            "country": "US",
            "allow_substitutions": True,
            "allow_partial_shipments": True,
        }
    ],
    "items": [
        {"sku": "A", "list_price": 10},
        {"sku": "B", "list_price": 9},
        {"sku": "B2", "list_price": 12},
        {"sku": "Z", "list_price": 10, "export_controlled": True},
    ],
    "substitutes": [],
    "warehouses": [
        {"warehouse_id": "WH1", "region": "east", "country": "US"},
        {"warehouse_id": "WH2", "region": "east", "country": "CA"},
        {"warehouse_id": "WH3", "region": "west", "country": "US"},
    ],
    "inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 500}],
    "carriers": [
        {"carrier_id": "CR1", "status": "ok", "on_time_rate": 0.95},
        {"carrier_id": "CR2", "status": "disrupted", "on_time_rate": 0.80},
        {"carrier_id": "CR3", "status": "ok", "on_time_rate": 0.95},
    ],
    "suppliers": [{"supplier_id": "S1"}],
    "purchase_orders": [],
    "orders": [
        {
            "order_id": "SO1",
            "customer_id": "C1",
            "order_date": "2026-11-20",
            "requested_date": "2026-11-27",
            "promised_date": "2026-11-30",
            "status": "open",
            "warehouse_id": "WH1",
            "ship_to_street": "1 Main St",
            "ship_to_city": "Newark",
            "ship_to_postal_code": "07102",
            "ship_to_country": "US",
            "lines": [
                {"line_no": 1, "sku": "A", "qty": 100, "unit_price": 10, "allocated_qty": 0, "status": "open"}
            ],
        }
    ],
    "shipments": [],
}


def stock(f, sku, wh, qty):
    f["inventory"] = [r for r in f["inventory"] if (r["sku"], r["warehouse_id"]) != (sku, wh)]
    f["inventory"].append({"sku": sku, "warehouse_id": wh, "on_hand": qty})


def short(f, here=20):
    stock(f, "A", "WH1", here)


def plan_for(engine, fixture, order_id="SO1"):
    with session_factory(engine)() as s:
        load_fixture(s, fixture, case_id="t")
        ctx = load_context(s, order_id, POLICY)
        found = detect(ctx, POLICY)
        return found, plan_order(ctx, found, load_planning_facts(s, ctx), POLICY)


def case(name, mutate, action, params=None, risk=None, role=None, types=None):
    return pytest.param(mutate, action, params or {}, risk, role, types, id=name)


def _sub(f, sub="B", approved=True, qty=200, wh="WH1"):
    f["substitutes"].append({"sku": "A", "substitute_sku": sub, "approved": approved})
    stock(f, sub, wh, qty)


def _no_subs(f):
    f["customers"][0]["allow_substitutions"] = False


def _no_partials(f):
    f["customers"][0]["allow_partial_shipments"] = False


def _po(f, po="PO1", day="2026-12-05", wh="WH1", sku="A"):
    f["purchase_orders"].append(
        {
            "po_id": po,
            "supplier_id": "S1",
            "sku": sku,
            "warehouse_id": wh,
            "qty": 500,
            "expected_date": day,
            "status": "open",
        }
    )


def _ship(f, carrier="CR2", status="booked", eta="2026-11-29"):
    f["orders"][0]["lines"][0].update(allocated_qty=100, status="allocated")
    f["shipments"].append(
        {"shipment_id": "SH1", "order_id": "SO1", "carrier_id": carrier, "status": status, "eta": eta}
    )


def _all(*fns):
    def run(f):
        for fn in fns:
            fn(f)

    return run


CASES = [
    # INVENTORY_SHORTFALL
    case(
        "shortfall-reallocate-same-region-first",
        _all(short, lambda f: stock(f, "A", "WH2", 150), lambda f: stock(f, "A", "WH3", 900)),
        "REALLOCATE_WAREHOUSE",
        {"to_warehouse_id": "WH2"},
        "low",
        "planner",
        {"INVENTORY_SHORTFALL"},
    ),
    case(
        "shortfall-reallocate-most-available-then-id",
        _all(
            short,
            lambda f: f["warehouses"].append({"warehouse_id": "WH4", "region": "west", "country": "US"}),
            lambda f: stock(f, "A", "WH3", 300),
            lambda f: stock(f, "A", "WH4", 300),
            lambda f: stock(f, "A", "WH2", 50),
        ),
        "REALLOCATE_WAREHOUSE",
        {"to_warehouse_id": "WH3"},
    ),
    case(
        "shortfall-reallocate-never-raises-compliance",
        _all(
            lambda f: f["orders"][0]["lines"][0].update(sku="Z"),
            lambda f: stock(f, "Z", "WH1", 10),
            lambda f: stock(f, "Z", "WH2", 900),
            lambda f: stock(f, "Z", "WH3", 150),
        ),
        "REALLOCATE_WAREHOUSE",
        {"to_warehouse_id": "WH3"},
    ),
    case(
        # substituted A -> B before, and B is short: the write keeps the ordered SKU and refuses a
        # second substitution (B -> B2), so it is not recommended; the next branch is
        "shortfall-on-a-substituted-line-is-not-substituted-again",
        _all(
            lambda f: f["orders"][0]["lines"][0].update(sku="B", original_sku="A"),
            lambda f: stock(f, "B", "WH1", 20),
            lambda f: f["substitutes"].append({"sku": "B", "substitute_sku": "B2", "approved": True}),
            lambda f: stock(f, "B2", "WH1", 900),
        ),
        "SPLIT_SHIPMENT",
        {"ship_qty": 20},
        "medium",
        "planner",
        {"INVENTORY_SHORTFALL"},
    ),
    case(
        "shortfall-substitute-cheaper-first",
        _all(short, lambda f: _sub(f, "B2", qty=900), lambda f: _sub(f, "B", qty=150)),
        "APPROVE_SUBSTITUTION",
        {"substitute_sku": "B"},
        "low",
        "csr",
    ),
    case(
        "shortfall-substitute-pricier-is-medium",
        _all(short, lambda f: _sub(f, "B2", qty=900)),
        "APPROVE_SUBSTITUTION",
        {"substitute_sku": "B2"},
        "medium",
        "csr",
    ),
    case(
        "shortfall-unapproved-substitute-ignored-then-split",
        _all(short, lambda f: _sub(f, "B", approved=False)),
        "SPLIT_SHIPMENT",
        {"ship_qty": 20},
        "medium",
        "planner",
    ),
    case(
        "shortfall-customer-refuses-substitutes-split",
        _all(short, lambda f: _sub(f, "B"), _no_subs),
        "SPLIT_SHIPMENT",
        {"ship_qty": 20},
    ),
    case(
        "shortfall-no-partials-promise-from-po",
        _all(
            short,
            _no_subs,
            _no_partials,
            lambda f: _po(f, "PO2", "2026-12-09"),
            lambda f: _po(f, "PO1", "2026-12-05"),
        ),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-12-05"},
        "medium",
        "csr",
    ),
    case(
        "shortfall-po-before-promise-keeps-promise",
        _all(short, _no_subs, _no_partials, lambda f: _po(f, "PO1", "2026-11-25")),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-11-30"},
    ),
    case(
        "shortfall-nothing-escalates-to-procurement",
        _all(lambda f: stock(f, "A", "WH1", 0), _no_subs),
        "ESCALATE",
        {"role": "procurement_buyer"},
        "none",
        "procurement_buyer",
    ),
    # SUBSTITUTION_REQUEST
    case(
        "discontinued-substitute",
        _all(lambda f: f["items"][0].update(status="discontinued"), lambda f: _sub(f, "B")),
        "APPROVE_SUBSTITUTION",
        {"substitute_sku": "B"},
        "low",
        "csr",
        {"SUBSTITUTION_REQUEST"},
    ),
    case(
        "discontinued-customer-refuses-escalates-to-csr",
        _all(lambda f: f["items"][0].update(status="discontinued"), lambda f: _sub(f, "B"), _no_subs),
        "ESCALATE",
        {"role": "csr"},
        "none",
        "csr",
    ),
    # CREDIT_HOLD
    case(
        "credit-within-10pct-medium",
        lambda f: f["customers"][0].update(open_balance=109000),
        "RELEASE_CREDIT_HOLD",
        {"order_id": "SO1"},
        "medium",
        "credit_analyst",
        {"CREDIT_HOLD"},
    ),
    case(
        "credit-above-10pct-high",
        lambda f: f["customers"][0].update(open_balance=110500),
        "RELEASE_CREDIT_HOLD",
        {},
        "high",
        "credit_manager",
    ),
    case(
        "credit-overdue-high",
        lambda f: f["customers"][0].update(overdue_balance=1),
        "RELEASE_CREDIT_HOLD",
        {},
        "high",
        "credit_manager",
    ),
    case(
        "credit-flag-alone-medium",
        lambda f: f["customers"][0].update(credit_hold=True),
        "RELEASE_CREDIT_HOLD",
        {},
        "medium",
        "credit_analyst",
    ),
    case(
        "credit-zero-limit-high",
        lambda f: f["customers"][0].update(credit_limit=0),
        "RELEASE_CREDIT_HOLD",
        {},
        "high",
        "credit_manager",
    ),
    # PRICING_DISCREPANCY
    case(
        "pricing-correct-to-effective",
        lambda f: f["orders"][0]["lines"][0].update(unit_price=11, allocated_qty=100, status="allocated"),
        "CORRECT_PRICE",
        {"new_unit_price": "10.00", "line_no": 1},
        "low",
        "pricing_analyst",
        {"PRICING_DISCREPANCY"},
    ),
    # CARRIER_DISRUPTION
    case(
        "carrier-rebook-best-ok-then-lower-id",
        _ship,
        "REBOOK_CARRIER",
        {"carrier_id": "CR1", "shipment_id": "SH1"},
        "medium",
        "logistics_coordinator",
        {"CARRIER_DISRUPTION"},
    ),
    case(
        "carrier-platinum-expedite",
        _all(
            _ship,
            lambda f: [c.update(status="constrained") for c in f["carriers"] if c["carrier_id"] != "CR2"],
            lambda f: f["customers"][0].update(tier="platinum"),
        ),
        "EXPEDITE_FREIGHT",
        {"shipment_id": "SH1"},
        "high",
        "ops_manager",
    ),
    case(
        # already express (expedited before, the carrier still disrupted): expediting again is no
        # action — the write refuses it — so the next branch is recommended, not a blocked request
        "carrier-platinum-already-express-promise-to-eta",
        _all(
            lambda f: _ship(f, eta="2026-12-03"),
            lambda f: f["shipments"][0].update(service_level="express"),
            lambda f: [c.update(status="constrained") for c in f["carriers"] if c["carrier_id"] != "CR2"],
            lambda f: f["customers"][0].update(tier="platinum"),
        ),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-12-03"},
        "medium",
        "csr",
    ),
    case(
        "carrier-gold-promise-to-eta",
        _all(
            lambda f: _ship(f, carrier="CR1", status="delayed", eta="2026-12-03"),
            lambda f: [c.update(status="disrupted") for c in f["carriers"] if c["carrier_id"] != "CR1"],
        ),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-12-03"},
        "medium",
        "csr",
    ),
    case(
        "carrier-nothing-escalates",
        _all(_ship, lambda f: [c.update(status="disrupted") for c in f["carriers"]]),
        "ESCALATE",
        {"role": "logistics_coordinator"},
        "none",
        "logistics_coordinator",
    ),
    # PROCUREMENT_DELAY (backordered, fully short, nothing elsewhere: shortfall escalates, delay expedites)
    case(
        "procurement-expedite-earliest-po",
        _all(
            lambda f: stock(f, "A", "WH1", 0),
            _no_subs,
            lambda f: f["orders"][0]["lines"][0].update(backorder_qty=100, status="backordered"),
            lambda f: _po(f, "PO2", "2026-12-09"),
            lambda f: _po(f, "PO1", "2026-12-09"),
        ),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-12-09"},
        "medium",
        "csr",
        {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"},
    ),
    case(
        "procurement-already-expedited-promises-its-date",
        _all(
            lambda f: stock(f, "A", "WH1", 0),
            _no_subs,
            lambda f: f["orders"][0]["lines"][0].update(backorder_qty=100, status="backordered"),
            lambda f: _po(f, "PO1", "2026-12-07"),
            lambda f: f["purchase_orders"][0].update(expedite_requested=True),
            lambda f: _po(f, "PO2", "2026-12-09"),
        ),
        "UPDATE_PROMISE_DATE",
        {"new_promised_date": "2026-12-07"},
        "medium",
        "csr",
        {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"},
    ),
    # MASTER_DATA / COMPLIANCE / priority
    case(
        "master-data-fix",
        lambda f: f["orders"][0].update(ship_to_city=" "),
        "FIX_MASTER_DATA",
        {"order_id": "SO1"},
        "medium",
        "csr",
        {"MASTER_DATA_INCOMPLETE"},
    ),
    case(
        "compliance-first-credit-blocked",
        _all(
            lambda f: f["orders"][0]["lines"][0].update(sku="Z", allocated_qty=100, status="allocated"),
            lambda f: stock(f, "Z", "WH1", 500),
            lambda f: f["orders"][0].update(ship_to_country="CA"),
            lambda f: f["customers"][0].update(credit_hold=True),
        ),
        "COMPLIANCE_REVIEW",
        {"order_id": "SO1"},
        "high",
        "compliance_officer",
        {"COMPLIANCE_HOLD", "CREDIT_HOLD"},
    ),
    case(
        "credit-before-stock-move",
        _all(
            short, lambda f: stock(f, "A", "WH2", 500), lambda f: f["customers"][0].update(overdue_balance=50)
        ),
        "RELEASE_CREDIT_HOLD",
        {},
        "high",
        "credit_manager",
        {"CREDIT_HOLD", "INVENTORY_SHORTFALL"},
    ),
]


@pytest.mark.parametrize(("mutate", "action", "params", "risk", "role", "types"), CASES)
def test_decision_order(sqlite_engine, mutate, action, params, risk, role, types):
    fixture = copy.deepcopy(BASE)
    mutate(fixture)
    found, plan = plan_for(sqlite_engine, fixture)
    if types is not None:
        assert {d.type for d in found} == types
    rec = plan.recommendation
    assert rec is not None and rec.action == action, [o.as_dict() for o in plan.actions]
    assert rec.feasible
    for key, value in params.items():
        assert str(rec.params[key]) == str(value)
    if risk:
        assert rec.risk == risk
    if role:
        assert rec.approver_role == role


def test_compliance_blocks_credit_release_and_says_why(sqlite_engine):
    fixture = copy.deepcopy(BASE)
    CASES[-2].values[0](fixture)
    _, plan = plan_for(sqlite_engine, fixture)
    credit = next(i for i in plan.instances if i.exception.type == "CREDIT_HOLD")
    assert credit.recommended is None
    assert "COMPLIANCE_HOLD" in credit.options[0].reason
    assert [o.action for o in plan.actions] == ["COMPLIANCE_REVIEW"]


def test_plan_lists_identical_actions_once_and_keeps_infeasible_reasons(sqlite_engine):
    fixture = copy.deepcopy(BASE)
    fixture["orders"][0]["lines"].append({"line_no": 2, "sku": "A", "qty": 50, "unit_price": 10})
    _all(short, _no_subs, _no_partials, lambda f: _po(f, "PO1", "2026-12-05"))(fixture)
    _, plan = plan_for(sqlite_engine, fixture)
    assert [o.action for o in plan.actions] == ["UPDATE_PROMISE_DATE"]  # both lines: same date, listed once
    shortfall = plan.instances[0]
    reasons = {o.action: o.reason for o in shortfall.options}
    assert "no other warehouse" in reasons["REALLOCATE_WAREHOUSE"]
    assert "does not allow substitutions" in reasons["APPROVE_SUBSTITUTION"]
    assert "does not allow partial" in reasons["SPLIT_SHIPMENT"]


def test_recurring_anomaly_escalates_to_ops_manager(sqlite_engine):
    fixture = copy.deepcopy(BASE)
    fixture["customers"][0]["overdue_balance"] = 100
    for n, day in ((2, "2026-11-01"), (3, "2026-11-10")):
        o = copy.deepcopy(fixture["orders"][0])
        o.update(order_id=f"SO{n}", order_date=day)
        for ln in o["lines"]:
            ln.update(allocated_qty=100, status="allocated")
        fixture["orders"].append(o)
    fixture["orders"][0]["lines"][0].update(allocated_qty=100, status="allocated")
    found, plan = plan_for(sqlite_engine, fixture)
    assert {d.type for d in found} == {"CREDIT_HOLD", "RECURRING_ANOMALY"}
    assert [o.action for o in plan.actions] == ["RELEASE_CREDIT_HOLD", "ESCALATE"]
    assert plan.actions[1].params["role"] == "ops_manager" and plan.actions[1].risk == "none"


def _procurement_plan(engine, expedited, promised="2026-11-30"):
    fixture = copy.deepcopy(BASE)
    _all(
        lambda f: f["orders"][0].update(promised_date=promised),
        lambda f: f["orders"][0]["lines"][0].update(allocated_qty=60, backorder_qty=40, status="backordered"),
        lambda f: stock(f, "A", "WH1", 200),
        lambda f: _po(f, "PO1", "2026-12-07"),
        lambda f: _po(f, "PO2", "2026-12-04"),
    )(fixture)
    fixture["inventory"][-1]["allocated"] = 60
    fixture["purchase_orders"][1]["expedite_requested"] = expedited
    found, plan = plan_for(engine, fixture)
    assert {d.type for d in found} == {"PROCUREMENT_DELAY"}
    return plan


def test_procurement_delay_expedites_the_earliest_po_once(sqlite_engine):
    plan = _procurement_plan(sqlite_engine, expedited=False)
    assert plan.recommendation.action == "EXPEDITE_PO" and plan.recommendation.params == {"po_id": "PO2"}
    assert "UPDATE_PROMISE_DATE" not in {o.action for o in plan.alternatives}


def test_procurement_delay_with_an_expedited_po_moves_the_promise_to_its_date(sqlite_engine):
    plan = _procurement_plan(sqlite_engine, expedited=True)
    rec = plan.recommendation
    assert rec.action == "UPDATE_PROMISE_DATE" and rec.params["new_promised_date"] == "2026-12-04"
    reasons = {o.action: o.reason for o in plan.instances[0].options}
    assert "already expedited" in reasons["EXPEDITE_PO"]
    # never a second expedite of the same PO, never the later PO's date
    assert all(o.action != "EXPEDITE_PO" for o in plan.alternatives)


def test_reallocation_needs_the_whole_line_qty_at_the_target(sqlite_engine):
    """A partly allocated line moves whole: a target holding only its open qty cannot take it."""
    fixture = copy.deepcopy(BASE)
    _all(
        lambda f: f["orders"][0]["lines"][0].update(allocated_qty=60, status="open"),
        lambda f: stock(f, "A", "WH1", 60),
        lambda f: stock(f, "A", "WH2", 50),  # ≥ open qty 40, < qty 100
        _no_subs,
        _no_partials,
    )(fixture)
    fixture["inventory"][-2]["allocated"] = 60
    _found, plan = plan_for(sqlite_engine, fixture)
    shortfall = next(i for i in plan.instances if i.exception.type == "INVENTORY_SHORTFALL")
    reallocate = next(o for o in shortfall.options if o.action == "REALLOCATE_WAREHOUSE")
    assert not reallocate.feasible and "100" in reallocate.reason
    assert plan.recommendation.action != "REALLOCATE_WAREHOUSE"


def test_reallocation_to_a_target_holding_the_whole_line(sqlite_engine):
    fixture = copy.deepcopy(BASE)
    _all(
        lambda f: f["orders"][0]["lines"][0].update(allocated_qty=60, status="open"),
        lambda f: stock(f, "A", "WH1", 60),
        lambda f: stock(f, "A", "WH2", 100),
    )(fixture)
    fixture["inventory"][-2]["allocated"] = 60
    _, plan = plan_for(sqlite_engine, fixture)
    assert plan.recommendation.action == "REALLOCATE_WAREHOUSE"
    assert plan.recommendation.params["to_warehouse_id"] == "WH2"
