"""Detection, recommendation, the guard and the executor read the shared domain rules (tools.rules) the
same way: on the edge cases of each rule, what is detected, what is recommended, what the guard lets
through and what the executor would write agree."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import update

from agent.governance.guard import run_guard
from agent.triage.service import triage_order
from tests.factories import clean_fixture, edit, line, order
from tests.test_governance import POLICY, world
from tools import rules, writes
from tools.models import OrderLine


def _triage(factory, order_id: str = "SO1") -> dict:
    with factory() as s:
        return triage_order(s, order_id, POLICY, record=False)


def _types(result: dict) -> set[str]:
    return {e["type"] for e in result["exceptions"]}


def _candidate(result: dict, action: str) -> dict | None:
    return next(
        (c for o in result["options"] for c in o["candidates"] if c["action"] == action and c["feasible"]),
        None,
    )


def _guard(factory, action: str, params: dict):
    with factory() as s:
        return run_guard(
            s,
            POLICY,
            action=action,
            params=params,
            requested_by=None,
            order_id=params.get("order_id"),
            partial=True,
        )


def _check(factory, action: str, params: dict) -> list[str]:
    with factory() as s:
        return writes.check(s, action, params, partial=True)


# -- export control: normalised countries, blank destination ------------------------------------------

EXPORT_CASES = [
    # ship_to_country, the warehouse's country (two letters, as the columns hold them), whether the
    # hold holds (domain.md §2 as tools.rules reads it)
    ("CA", "US", True),
    ("ca", "US", True),
    ("US", "US", False),
    ("us", "US", False),
    ("CA", "ca", False),
    ("", "US", False),  # blank destination: MASTER_DATA_INCOMPLETE holds instead
    ("  ", "US", False),
    (None, "US", False),
    ("CA", None, False),  # the warehouse's country is unknown: the border cannot be judged
    ("CA", " ", False),
]


def test_countries_compare_trimmed_and_in_upper_case():
    assert rules.country(" ca\t") == "CA" and rules.country("  ") == rules.country(None) == ""
    assert rules.crosses_border(" ca ", "US") and not rules.crosses_border(" us ", "US")
    assert not rules.crosses_border("", "US") and not rules.crosses_border("CA", None)


def _export_world(engine, ship_to_country, origin_country, *, credit_hold: bool):
    fx = clean_fixture(order(ship_to_country=ship_to_country))
    edit(fx, "items", "A", export_controlled=True)
    edit(fx, "warehouses", "WH1", country=origin_country)
    if credit_hold:
        edit(fx, "customers", "C1", credit_limit=500)  # the order's 1,000 is over the limit
    return world(engine, fx)


@pytest.mark.parametrize("ship_to_country, origin_country, holds", EXPORT_CASES)
def test_export_control_agrees_on_the_order_as_it_ships(
    sqlite_engine, ship_to_country, origin_country, holds
):
    factory = _export_world(sqlite_engine, ship_to_country, origin_country, credit_hold=True)
    assert (
        rules.export_hold(
            export_controlled=True,
            export_license=False,
            ship_to_country=ship_to_country,
            origin_country=origin_country,
        )
        is holds
    )
    result = _triage(factory)
    assert ("COMPLIANCE_HOLD" in _types(result)) is holds  # detection
    assert "CREDIT_HOLD" in _types(result)
    assert (_candidate(result, "RELEASE_CREDIT_HOLD") is None) is holds  # recommendation
    params = {"order_id": "SO1"}
    executor = _check(factory, "RELEASE_CREDIT_HOLD", params)
    assert any("COMPLIANCE_HOLD" in r for r in executor) is holds  # executor
    assert _guard(factory, "RELEASE_CREDIT_HOLD", params).ok is not holds  # guard


@pytest.mark.parametrize("ship_to_country, target_country, holds", EXPORT_CASES)
def test_export_control_agrees_on_a_reallocation_target(
    sqlite_engine, ship_to_country, target_country, holds
):
    fx = clean_fixture(order(ship_to_country=ship_to_country))
    edit(fx, "items", "A", export_controlled=True)
    edit(fx, "warehouses", "WH1", country=ship_to_country)  # ships at home now
    edit(fx, "inventory", "A/WH1", on_hand=4)
    edit(fx, "warehouses", "WH3", name="Albany", region="east", country=target_country)
    edit(fx, "inventory", "A/WH3", on_hand=100)
    factory = world(sqlite_engine, fx)
    result = _triage(factory)
    assert "COMPLIANCE_HOLD" not in _types(result) and "INVENTORY_SHORTFALL" in _types(result)
    move = _candidate(result, "REALLOCATE_WAREHOUSE")
    assert (move is None) is holds  # recommendation: never a warehouse that would raise the hold
    params = {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH3"}
    executor = _check(factory, "REALLOCATE_WAREHOUSE", params)
    assert any("COMPLIANCE_HOLD" in r for r in executor) is holds
    assert _guard(factory, "REALLOCATE_WAREHOUSE", params).ok is not holds
    if move is not None:
        assert move["params"] == params


def test_without_a_customer_record_the_licence_is_unknown_and_no_hold_is_judged():
    facts = {"export_controlled": True, "ship_to_country": "CA", "origin_country": "US"}
    assert rules.export_hold(export_license=None, **facts) is False
    assert rules.export_hold(export_license=False, **facts) is True
    assert rules.export_hold(export_license=True, **facts) is False


# -- where a line ships from: a missing or blank line warehouse ------------------------------------------


def test_a_blank_warehouse_is_no_warehouse():
    assert rules.ship_from("  ", "WH1") == rules.ship_from(None, "WH1") == rules.ship_from("", "WH1") == "WH1"
    assert rules.ship_from("WH2", "WH1") == "WH2" and rules.ship_from(None, " ") is None


@pytest.mark.parametrize("line_warehouse", [None, "WH1"])
def test_a_line_without_a_warehouse_ships_from_the_orders(sqlite_engine, line_warehouse):
    fx = clean_fixture(order())
    edit(fx, "inventory", "A/WH1", on_hand=4)
    edit(fx, "warehouses", "WH3", name="Albany", region="east", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=100)
    factory = world(sqlite_engine, fx)
    with factory() as s:
        s.execute(update(OrderLine).values(warehouse_id=line_warehouse))
        s.commit()
    result = _triage(factory)
    shortfall = next(e for e in result["exceptions"] if e["type"] == "INVENTORY_SHORTFALL")
    assert any("at WH1" in ev for ev in shortfall["evidence"])  # detection
    move = _candidate(result, "REALLOCATE_WAREHOUSE")  # recommendation
    assert move["params"]["to_warehouse_id"] == "WH3"
    split = {"order_id": "SO1", "line_no": 1, "ship_qty": 4}  # the 4 available at WH1
    here = {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH1"}
    assert _check(factory, "REALLOCATE_WAREHOUSE", move["params"]) == []  # executor
    assert _check(factory, "SPLIT_SHIPMENT", split) == []
    assert _check(factory, "REALLOCATE_WAREHOUSE", here) == ["line 1 already ships from WH1"]
    assert _guard(factory, "SPLIT_SHIPMENT", split).ok  # guard


# -- a substitute: approved and in stock is enough (domain.md §3, §4) -----------------------------------


@pytest.mark.parametrize("substitute_status", ["active", "discontinued"])
def test_an_approved_substitute_in_stock_is_recommended_guarded_and_written_alike(
    sqlite_engine, substitute_status
):
    """§4 recommends an approved substitute with the open quantity in stock, whatever its item status
    (a discontinued item is sold from what is left); §3 writes it. The executor refused a
    discontinued one the recommendation had named, so the order's recommendation was blocked."""
    fx = clean_fixture(order())
    edit(fx, "customers", "C1", allow_partial_shipments=False)
    edit(fx, "inventory", "A/WH1", on_hand=4)
    edit(fx, "items", "B", status=substitute_status)
    edit(fx, "substitutes", "A/B", approved=True)
    edit(fx, "inventory", "B/WH1", on_hand=500)
    factory = world(sqlite_engine, fx)
    result = _triage(factory)
    assert result["recommendation"]["action"] == "APPROVE_SUBSTITUTION"  # recommendation
    params = result["recommendation"]["params"]
    assert params["substitute_sku"] == "B"
    assert _check(factory, "APPROVE_SUBSTITUTION", params) == []  # executor
    assert _guard(factory, "APPROVE_SUBSTITUTION", params).ok  # guard


# -- the effective price: contracts, a substituted line ----------------------------------------------------


@pytest.mark.parametrize(
    "unit_price, original_sku, contract, effective",
    [
        (80, None, None, "100.00"),  # list price of A
        (100, None, None, None),  # at the list price: no discrepancy
        (80, None, 90, "90.00"),  # the contract in force wins over the list price
        (100, "A", None, None),  # substituted to B (list 50): priced on A, at its price
        (50, "A", None, "100.00"),  # substituted, priced at B's list price: A's price applies
        (50, "A", 95, "95.00"),  # substituted, A's contract applies
    ],
)
def test_the_effective_price_agrees(sqlite_engine, unit_price, original_sku, contract, effective):
    sku = "B" if original_sku else "A"
    fx = clean_fixture(order(lines=[line(sku=sku, unit_price=unit_price, original_sku=original_sku)]))
    if contract is not None:
        edit(
            fx,
            "price_contracts",
            "C1/A/2026-10-01",
            contract_price=contract,
            valid_to="2026-12-31",
        )
    factory = world(sqlite_engine, fx)
    result = _triage(factory)
    assert ("PRICING_DISCREPANCY" in _types(result)) is (effective is not None)  # detection
    fix = _candidate(result, "CORRECT_PRICE")  # recommendation
    if effective is None:
        assert fix is None
        effective = f"{Decimal(unit_price):.2f}"
    else:
        assert fix["params"]["new_unit_price"] == effective
        assert result["recommendation"]["risk"] == "low"
    restore = {"order_id": "SO1", "line_no": 1, "new_unit_price": effective}
    other = {"order_id": "SO1", "line_no": 1, "new_unit_price": "1.00"}
    assert _guard(factory, "CORRECT_PRICE", restore).risk == "low"  # guard: restores the effective price
    assert _guard(factory, "CORRECT_PRICE", other).risk == "medium"
    assert _check(factory, "CORRECT_PRICE", restore) == []  # executor


# -- credit: statuses, the position, the risk facts ---------------------------------------------------------


@pytest.mark.parametrize(
    "status, released, customer, holds, risk",
    [
        ("open", False, {"credit_limit": 500}, True, "high"),  # overage 500 = 100 % of the limit
        ("open", False, {"credit_limit": 950}, True, "medium"),  # overage 50 ≤ 10 %
        ("held", False, {"overdue_balance": 10}, True, "high"),
        ("open", False, {"credit_hold": True}, True, "medium"),  # the flag alone does not raise it
        ("open", False, {}, False, None),
        ("released", False, {"credit_limit": 500}, False, None),
        ("open", True, {"credit_limit": 500}, False, None),
        ("shipped", False, {"credit_limit": 500}, False, None),
    ],
)
def test_the_credit_hold_agrees(sqlite_engine, status, released, customer, holds, risk):
    fx = clean_fixture(order(status=status, credit_released=released))
    edit(fx, "customers", "C1", **customer)
    factory = world(sqlite_engine, fx)
    result = _triage(factory)
    assert ("CREDIT_HOLD" in _types(result)) is holds  # detection
    release = _candidate(result, "RELEASE_CREDIT_HOLD")  # recommendation
    assert (release is not None) is holds
    executor = _check(factory, "RELEASE_CREDIT_HOLD", {"order_id": "SO1"})
    assert (executor == []) is holds  # executor
    verdict = _guard(factory, "RELEASE_CREDIT_HOLD", {"order_id": "SO1"})
    assert verdict.ok is holds  # guard
    if holds:
        assert result["recommendation"]["risk"] == verdict.risk == risk


# -- statuses: nothing applies to or changes a closed order or line -------------------------------------------


@pytest.mark.parametrize("order_status", ["open", "held", "released", "shipped", "cancelled"])
@pytest.mark.parametrize("line_status", ["open", "allocated", "backordered", "shipped", "cancelled"])
def test_closed_orders_and_lines_agree(sqlite_engine, order_status, line_status):
    fx = clean_fixture(order(status=order_status, lines=[line(status=line_status, unit_price=80)]))
    factory = world(sqlite_engine, fx)
    result = _triage(factory)
    closed = rules.is_closed(order_status) or rules.is_closed(line_status)
    assert ("PRICING_DISCREPANCY" in _types(result)) is not closed  # detection
    params = {"order_id": "SO1", "line_no": 1, "new_unit_price": "100.00"}
    assert (_check(factory, "CORRECT_PRICE", params) != []) is closed  # executor
    assert _guard(factory, "CORRECT_PRICE", params).ok is not closed  # guard


# -- ship-to fields: empty means missing, None or blank --------------------------------------------------------


@pytest.mark.parametrize(
    "fields, empty",
    [
        ({"ship_to_street": "   "}, ["ship_to_street"]),
        ({"ship_to_city": "", "ship_to_country": None}, ["ship_to_city", "ship_to_country"]),
        ({"ship_to_postal_code": "\t"}, ["ship_to_postal_code"]),
        ({}, []),
    ],
)
def test_empty_ship_to_fields_agree(sqlite_engine, fields, empty):
    factory = world(sqlite_engine, clean_fixture(order(**fields)))
    result = _triage(factory)
    assert ("MASTER_DATA_INCOMPLETE" in _types(result)) is bool(empty)  # detection
    with factory() as s:
        assert writes.missing_inputs(s, "FIX_MASTER_DATA", {"order_id": "SO1"}) == empty  # executor
    if empty:
        fix = _candidate(result, "FIX_MASTER_DATA")  # recommendation
        assert result["recommendation"]["inputs_required"] == empty and fix is not None
        values = {f: "x" for f in empty}
        assert _check(factory, "FIX_MASTER_DATA", {"order_id": "SO1", **values}) == []
        assert _guard(factory, "FIX_MASTER_DATA", {"order_id": "SO1", **values}).ok  # guard


# -- order priority (domain.md §6) ---------------------------------------------------------------------------


def test_order_priority_is_tier_then_promised_then_ordered_then_id():
    d = dt.date
    orders = [
        ("standard", d(2026, 11, 1), d(2026, 10, 1), "SO1"),
        ("gold", d(2026, 11, 20), d(2026, 10, 1), "SO2"),
        ("platinum", d(2026, 12, 1), d(2026, 10, 5), "SO3"),
        ("gold", d(2026, 11, 10), d(2026, 10, 9), "SO4"),
        ("gold", d(2026, 11, 10), d(2026, 10, 2), "SO6"),
        ("gold", d(2026, 11, 10), d(2026, 10, 2), "SO5"),
        ("gold", None, d(2026, 10, 2), "SO7"),
        (None, d(2026, 11, 1), d(2026, 10, 1), "SO8"),
    ]
    ranked = [o[3] for o in sorted(orders, key=lambda o: rules.order_priority_key(*o))]
    assert ranked == ["SO3", "SO5", "SO6", "SO4", "SO2", "SO7", "SO1", "SO8"]


def test_in_chunks_are_distinct_sorted_and_bounded():
    parts = list(rules.in_chunks([3, 1, None, 2, 3, *range(10, 1_210)], size=500))
    assert [len(p) for p in parts] == [500, 500, 203]
    assert parts[0][:3] == [1, 2, 3] and len({v for p in parts for v in p}) == 1_203


def test_the_active_line_statuses_are_every_line_status_but_the_closed_ones():
    """The line queries select ``status IN ACTIVE_LINE_STATUSES`` (an index range each) where they
    mean "neither shipped nor cancelled": the two lists must split the statuses the table allows."""
    from tools.models import ENUMS

    allowed = ENUMS["line_status"]
    assert set(rules.ACTIVE_LINE_STATUSES) | set(rules.CLOSED_STATUSES) == set(allowed)
    assert not set(rules.ACTIVE_LINE_STATUSES) & set(rules.CLOSED_STATUSES)
    assert not any(rules.is_closed(s) for s in rules.ACTIVE_LINE_STATUSES)


def test_the_undelivered_shipment_statuses_are_every_shipment_status_but_delivered():
    """The carrier reach selects ``status IN UNDELIVERED_SHIPMENT_STATUSES`` where the rule means
    "not delivered" (``CARRIER_DISRUPTION`` skips a delivered shipment)."""
    from tools.models import ENUMS

    assert set(rules.UNDELIVERED_SHIPMENT_STATUSES) == set(ENUMS["shipment_status"]) - {"delivered"}
