"""Detection (domain.md §2): one positive and one negative case per type and per boundary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, text

from agent.policy import load_policy
from agent.triage.detection import (
    ContractRec,
    CustomerRec,
    ItemRec,
    LineRec,
    OrderContext,
    OrderNotFound,
    OrderRec,
    StockRec,
    WarehouseRec,
    detect,
    detect_order,
    load_context,
    load_contexts,
    substitution_keyword,
)
from tests.factories import clean_fixture, edit, line, order
from tools.fixtures import load_fixture

POLICY = load_policy()

Fixture = dict
Edit = Callable[[Fixture], object]


def _(table: str, key: str, **changes) -> Edit:
    return lambda fx: edit(fx, table, key, **changes)


def contract(
    price: float, valid_from: str = "2026-10-01", valid_to: str | None = None, sku: str = "A"
) -> Edit:
    return _("price_contracts", f"C1/{sku}/{valid_from}", contract_price=price, valid_to=valid_to)


def shipment(**fields) -> Edit:
    defaults = {"order_id": "SO1", "carrier_id": "CA1", "status": "booked", "eta": "2026-11-18"}
    return _("shipments", "SH-1", **{**defaults, **fields})


def po(po_id: str = "PO-1", expected: str | None = "2026-11-25", **fields) -> Edit:
    defaults = {"sku": "A", "warehouse_id": "WH1", "qty": 50, "status": "open", "supplier_id": "SUP1"}
    return _("purchase_orders", po_id, expected_date=expected, **{**defaults, **fields})


BACKORDERED = _("lines", "SO1/1", allocated_qty=0, backorder_qty=10, status="backordered")
SHORT = _("inventory", "A/WH1", on_hand=9)
EXPORT = _("items", "A", export_controlled=True)

# (case id, edits, expected {(type, instance_key)})
CASES: list[tuple[str, list[Edit], set[tuple[str, str]]]] = [
    ("clean", [], set()),
    # CREDIT_HOLD: order value 10 × 100 = 1000
    ("credit-flag", [_("customers", "C1", credit_hold=True)], {("CREDIT_HOLD", "order")}),
    (
        "credit-over-limit",
        [_("customers", "C1", credit_limit=1000, open_balance="0.01")],
        {("CREDIT_HOLD", "order")},
    ),
    ("credit-exactly-at-limit", [_("customers", "C1", credit_limit=1000, open_balance=0)], set()),
    ("credit-overdue", [_("customers", "C1", overdue_balance="0.01")], {("CREDIT_HOLD", "order")}),
    (
        "credit-held-order",
        [_("customers", "C1", credit_hold=True), _("orders", "SO1", status="held")],
        {("CREDIT_HOLD", "order")},
    ),
    (
        "credit-released-flag",
        [_("customers", "C1", credit_hold=True), _("orders", "SO1", credit_released=True)],
        set(),
    ),
    (
        "credit-released-status",
        [_("customers", "C1", credit_hold=True), _("orders", "SO1", status="released")],
        set(),
    ),
    (
        "credit-value-ignores-shipped-lines",
        [
            _("customers", "C1", credit_limit=1000),
            _("lines", "SO1/2", sku="B", qty=10, unit_price=50, status="shipped"),
        ],
        set(),
    ),
    # PRICING_DISCREPANCY: effective 100 (list price) or the contract's price
    ("price-exactly-2pct-above", [_("lines", "SO1/1", unit_price=102)], set()),
    ("price-above-2pct", [_("lines", "SO1/1", unit_price="102.01")], {("PRICING_DISCREPANCY", "line:1")}),
    ("price-exactly-2pct-below", [_("lines", "SO1/1", unit_price=98)], set()),
    ("price-below-2pct", [_("lines", "SO1/1", unit_price="97.99")], {("PRICING_DISCREPANCY", "line:1")}),
    ("price-contract-wins", [contract(90)], {("PRICING_DISCREPANCY", "line:1")}),
    ("price-contract-matches", [contract(90), _("lines", "SO1/1", unit_price=90)], set()),
    ("price-latest-contract-wins", [contract(90), contract(100, valid_from="2026-10-15")], set()),
    ("price-contract-expired", [contract(90, valid_to="2026-10-31")], set()),
    (
        "price-contract-valid-to-order-date",
        [contract(90, valid_to="2026-11-01")],
        {("PRICING_DISCREPANCY", "line:1")},
    ),
    (
        "price-contract-starts-on-order-date",
        [contract(90, valid_from="2026-11-01")],
        {("PRICING_DISCREPANCY", "line:1")},
    ),
    ("price-contract-not-yet-valid", [contract(90, valid_from="2026-11-02")], set()),
    (
        "price-contract-open-ended",
        [contract(90, valid_from="2020-01-01")],
        {("PRICING_DISCREPANCY", "line:1")},
    ),
    (
        "price-substituted-uses-original-contract",
        [contract(90), _("lines", "SO1/1", sku="B", original_sku="A", unit_price=90)],
        set(),
    ),
    (
        "price-substituted-not-on-substitute-list-price",
        [_("lines", "SO1/1", sku="B", original_sku="A", unit_price=50)],
        {("PRICING_DISCREPANCY", "line:1")},
    ),
    ("price-shipped-line-ignored", [_("lines", "SO1/1", unit_price=1, status="shipped")], set()),
    # INVENTORY_SHORTFALL: available 500 − allocated at WH1; open qty = qty − allocated_qty
    ("stock-exactly-enough", [_("inventory", "A/WH1", on_hand=10)], set()),
    ("stock-short", [SHORT], {("INVENTORY_SHORTFALL", "line:1")}),
    (
        "stock-allocated-reduces-available",
        [_("inventory", "A/WH1", on_hand=20, allocated=11)],
        {("INVENTORY_SHORTFALL", "line:1")},
    ),
    ("stock-line-allocation-reduces-open-qty", [SHORT, _("lines", "SO1/1", allocated_qty=1)], set()),
    (
        "stock-no-inventory-row",
        [_("lines", "SO1/1", warehouse_id="WH2")],
        {("INVENTORY_SHORTFALL", "line:1")},
    ),
    (
        "stock-line-warehouse-overrides-order",
        [SHORT, _("inventory", "A/WH2", on_hand=10), _("lines", "SO1/1", warehouse_id="WH2")],
        set(),
    ),
    ("stock-shipped-line-ignored", [SHORT, _("lines", "SO1/1", status="shipped")], set()),
    ("stock-cancelled-line-ignored", [SHORT, _("lines", "SO1/1", status="cancelled")], set()),
    # SUBSTITUTION_REQUEST
    ("subst-discontinued", [_("items", "A", status="discontinued")], {("SUBSTITUTION_REQUEST", "line:1")}),
    (
        "subst-note-and-short",
        [SHORT, _("orders", "SO1", customer_note="Please send an equivalent if needed.")],
        {("SUBSTITUTION_REQUEST", "line:1"), ("INVENTORY_SHORTFALL", "line:1")},
    ),
    (
        "subst-note-negated",
        [SHORT, _("orders", "SO1", customer_note="No substitutions please")],
        {("INVENTORY_SHORTFALL", "line:1")},
    ),
    ("subst-note-not-short", [_("orders", "SO1", customer_note="substitute ok")], set()),
    (
        "subst-note-already-substituted",
        [
            _("inventory", "B/WH1", on_hand=0),
            _("orders", "SO1", customer_note="alternatives welcome"),
            _("lines", "SO1/1", sku="B", original_sku="A", unit_price=100),
            _("price_contracts", "C1/A/2026-10-01", contract_price=100),
        ],
        {("INVENTORY_SHORTFALL", "line:1")},
    ),
    # CARRIER_DISRUPTION: promised 2026-11-20
    ("carrier-eta-equals-promised", [shipment(eta="2026-11-20")], set()),
    ("carrier-eta-after-promised", [shipment(eta="2026-11-21")], {("CARRIER_DISRUPTION", "shipment:SH-1")}),
    (
        "carrier-disrupted",
        [_("carriers", "CA1", status="disrupted"), shipment()],
        {("CARRIER_DISRUPTION", "shipment:SH-1")},
    ),
    ("carrier-constrained-is-fine", [_("carriers", "CA1", status="constrained"), shipment()], set()),
    ("carrier-delayed", [shipment(status="delayed")], {("CARRIER_DISRUPTION", "shipment:SH-1")}),
    (
        "carrier-delivered-ignored",
        [_("carriers", "CA1", status="disrupted"), shipment(status="delivered")],
        set(),
    ),
    # PROCUREMENT_DELAY
    ("po-none", [BACKORDERED], {("PROCUREMENT_DELAY", "line:1")}),
    ("po-after-promised", [BACKORDERED, po(expected="2026-11-21")], {("PROCUREMENT_DELAY", "line:1")}),
    ("po-on-promised", [BACKORDERED, po(expected="2026-11-20")], set()),
    (
        "po-earliest-counts",
        [BACKORDERED, po("PO-2", expected="2026-12-30"), po("PO-1", expected="2026-11-10")],
        set(),
    ),
    (
        "po-received-ignored",
        [BACKORDERED, po(expected="2026-11-10", status="received")],
        {("PROCUREMENT_DELAY", "line:1")},
    ),
    (
        "po-other-warehouse-ignored",
        [BACKORDERED, po(expected="2026-11-10", warehouse_id="WH2")],
        {("PROCUREMENT_DELAY", "line:1")},
    ),
    ("po-without-expected-date", [BACKORDERED, po(expected=None)], {("PROCUREMENT_DELAY", "line:1")}),
    ("po-no-backorder", [po(expected="2026-12-30")], set()),
    # MASTER_DATA_INCOMPLETE
    (
        "ship-to-blank-street",
        [_("orders", "SO1", ship_to_street="   ")],
        {("MASTER_DATA_INCOMPLETE", "order")},
    ),
    (
        "ship-to-null-postal-code",
        [_("orders", "SO1", ship_to_postal_code=None)],
        {("MASTER_DATA_INCOMPLETE", "order")},
    ),
    # COMPLIANCE_HOLD: WH1 is in the US, WH2 in DE
    ("export-abroad", [EXPORT, _("orders", "SO1", ship_to_country="CA")], {("COMPLIANCE_HOLD", "line:1")}),
    ("export-domestic", [EXPORT], set()),
    (
        "export-licensed",
        [EXPORT, _("orders", "SO1", ship_to_country="CA"), _("customers", "C1", export_license=True)],
        set(),
    ),
    (
        "export-from-line-warehouse",
        [EXPORT, _("inventory", "A/WH2", on_hand=100), _("lines", "SO1/1", warehouse_id="WH2")],
        {("COMPLIANCE_HOLD", "line:1")},
    ),
    ("export-not-controlled", [_("orders", "SO1", ship_to_country="CA")], set()),
    # No rule applies to a shipped or cancelled order
    (
        "cancelled-order",
        [
            SHORT,
            EXPORT,
            _("customers", "C1", credit_hold=True),
            _("orders", "SO1", status="cancelled", ship_to_country="CA", ship_to_city=""),
        ],
        set(),
    ),
    (
        "shipped-order",
        [SHORT, _("customers", "C1", credit_hold=True), _("orders", "SO1", status="shipped")],
        set(),
    ),
]


def _load(session, fixture: Fixture, case_id: str = "test") -> None:
    load_fixture(session, fixture, case_id=case_id)


@pytest.mark.parametrize(("case_id", "edits", "expected"), CASES, ids=[c[0] for c in CASES])
def test_detection_table(session, case_id: str, edits: list[Edit], expected: set[tuple[str, str]]) -> None:
    fixture = clean_fixture()
    for change in edits:
        change(fixture)
    _load(session, fixture, case_id)
    found = detect_order(session, "SO1", POLICY)
    assert {(d.type, d.instance_key) for d in found} == expected
    for d in found:
        assert d.evidence and all(isinstance(e, str) and e for e in d.evidence)


def _one(session, fixture: Fixture, kind: str):
    _load(session, fixture)
    [hit] = [d for d in detect_order(session, "SO1", POLICY) if d.type == kind]
    return hit


def test_shortfall_evidence_names_the_numbers(session) -> None:
    fixture = clean_fixture(order(lines=[line(1, "B", qty=1, unit_price=50), line(2, "A", qty=120)]))
    edit(fixture, "inventory", "A/WH1", on_hand=50, allocated=10)
    hit = _one(session, fixture, "INVENTORY_SHORTFALL")
    assert (hit.line_no, hit.sku, hit.warehouse_id) == (2, "A", "WH1")
    assert "available 40 (on hand 50 - allocated 10) at WH1 < open qty 120" in hit.evidence[0]
    assert "for SKU A on line 2" in hit.evidence[0]
    assert dict(hit.facts) == {
        "line_no": 2,
        "open_qty": 120,
        "available": 40,
        "shortfall": 80,
        "warehouse_id": "WH1",
    }


def test_pricing_facts_carry_the_effective_price(session) -> None:
    fixture = clean_fixture()
    contract(90)(fixture)
    contract(95, valid_from="2026-10-20")(fixture)
    hit = _one(session, fixture, "PRICING_DISCREPANCY")
    assert hit.facts["effective_price"] == "95.00" and hit.facts["price_source"] == "contract"
    assert hit.facts["contract_valid_from"] == "2026-10-20"
    assert "effective price 95.00 (contract valid from 2026-10-20 for SKU A)" in hit.evidence[0]


def test_substituted_line_names_its_original_sku(session) -> None:
    fixture = clean_fixture(order(lines=[line(1, "B", unit_price=80, original_sku="A")]))
    contract(90)(fixture)
    hit = _one(session, fixture, "PRICING_DISCREPANCY")
    assert hit.facts["price_sku"] == "A" and hit.facts["effective_price"] == "90.00"
    assert any("substituted from A to B" in e for e in hit.evidence)


def test_credit_hold_facts(session) -> None:
    fixture = clean_fixture()
    edit(fixture, "customers", "C1", credit_limit=50000, open_balance=49500)
    hit = _one(session, fixture, "CREDIT_HOLD")
    assert hit.facts["overage"] == "500.00" and hit.facts["order_value"] == "1000.00"
    assert any(
        "open balance 49500.00 + order value 1000.00 = 50500.00 > credit limit 50000.00" in e
        for e in hit.evidence
    )


def test_master_data_lists_every_empty_field(session) -> None:
    fixture = clean_fixture()
    edit(fixture, "orders", "SO1", ship_to_city="", ship_to_country=None)
    hit = _one(session, fixture, "MASTER_DATA_INCOMPLETE")
    assert hit.facts["empty_fields"] == ["ship_to_city", "ship_to_country"]


def test_results_follow_the_plan_priority(session) -> None:
    fixture = clean_fixture(order(lines=[line(1, unit_price=200), line(2, "B", qty=900, unit_price=50)]))
    edit(fixture, "items", "A", export_controlled=True)
    edit(fixture, "orders", "SO1", ship_to_country="CA")
    edit(fixture, "customers", "C1", credit_hold=True)
    _load(session, fixture)
    found = detect_order(session, "SO1", POLICY)
    assert [(d.type, d.line_no) for d in found] == [
        ("COMPLIANCE_HOLD", 1),
        ("CREDIT_HOLD", None),
        ("PRICING_DISCREPANCY", 1),
        ("INVENTORY_SHORTFALL", 2),
    ]


def test_unknown_order(session) -> None:
    with pytest.raises(OrderNotFound, match="SO-404"):
        detect_order(session, "SO-404", POLICY)


def test_dangling_sku_is_triaged_as_far_as_facts_allow(session) -> None:
    fixture = clean_fixture(order(lines=[line(1), line(2, "B", qty=5, unit_price=50)]))
    _load(session, fixture)
    session.connection().exec_driver_sql("PRAGMA foreign_keys = OFF")
    session.execute(text("UPDATE order_lines SET sku = 'GONE' WHERE line_no = 2"))
    session.commit()
    ctx = load_context(session, "SO1", POLICY)
    assert ctx.missing == ("sku GONE of line 2 is not in items (dangling reference)",)
    [hit] = detect(ctx, POLICY)  # no price or export facts for GONE; no stock row means 0 available
    assert (hit.type, hit.line_no) == ("INVENTORY_SHORTFALL", 2)
    assert "SKU GONE is not in items" in hit.evidence


def test_dangling_customer_and_warehouse(session) -> None:
    _load(session, clean_fixture())
    session.connection().exec_driver_sql("PRAGMA foreign_keys = OFF")
    session.execute(text("UPDATE orders SET customer_id = 'C-GONE', warehouse_id = 'WH-GONE'"))
    session.commit()
    ctx = load_context(session, "SO1", POLICY)
    assert "customer 'C-GONE' of order SO1 is not in customers" in ctx.missing
    assert "warehouse WH-GONE of line 1 is not in warehouses" in ctx.missing
    assert {d.type for d in detect(ctx, POLICY)} == {"INVENTORY_SHORTFALL"}


# ----------------------------------------------------------------------------------------------
# RECURRING_ANOMALY: 3 orders (this one included) within 30 days up to this order's date
# ----------------------------------------------------------------------------------------------


def _recurring_world(dates: dict[str, str], **order_fields) -> Fixture:
    """Orders of C1 on credit hold (CREDIT_HOLD holds on each open one), dated as given."""
    fixture = clean_fixture(*(order(oid, order_date=day, **order_fields) for oid, day in dates.items()))
    edit(fixture, "customers", "C1", credit_hold=True)
    return fixture


RECURRING_CASES = [
    ("three-orders", {"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-02"}, ["SO1", "SO2", "SO3"]),
    ("two-orders", {"SO1": "2026-11-01", "SO2": "2026-10-20"}, None),
    ("third-31-days-before", {"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-01"}, None),
    (
        "third-30-days-before",
        {"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-02"},
        ["SO1", "SO2", "SO3"],
    ),
    ("later-orders-dont-count", {"SO1": "2026-11-01", "SO2": "2026-11-02", "SO3": "2026-11-03"}, None),
    (
        "same-day-counts",
        {"SO1": "2026-11-01", "SO2": "2026-11-01", "SO3": "2026-11-01"},
        ["SO1", "SO2", "SO3"],
    ),
]


@pytest.mark.parametrize(("case_id", "dates", "orders"), RECURRING_CASES, ids=[c[0] for c in RECURRING_CASES])
def test_recurring_by_customer(
    session, case_id: str, dates: dict[str, str], orders: list[str] | None
) -> None:
    _load(session, _recurring_world(dates), case_id)
    found = [d for d in detect_order(session, "SO1", POLICY) if d.type == "RECURRING_ANOMALY"]
    if orders is None:
        assert found == []
    else:
        [hit] = found
        assert hit.instance_key == "customer:C1:CREDIT_HOLD"
        assert hit.facts["order_ids"] == orders and hit.facts["pattern_type"] == "CREDIT_HOLD"
        assert "CREDIT_HOLD holds for customer C1 on 3 orders" in hit.evidence[0]


@pytest.mark.parametrize("status", ["shipped", "cancelled"])
def test_recurring_ignores_closed_orders(session, status: str) -> None:
    fixture = _recurring_world({"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-10"})
    edit(fixture, "orders", "SO3", status=status)
    _load(session, fixture)
    assert "RECURRING_ANOMALY" not in {d.type for d in detect_order(session, "SO1", POLICY)}


def test_recurring_counts_only_types_that_hold_on_the_other_orders(session) -> None:
    fixture = _recurring_world({"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-10"})
    edit(fixture, "orders", "SO3", credit_released=True)
    _load(session, fixture)
    assert "RECURRING_ANOMALY" not in {d.type for d in detect_order(session, "SO1", POLICY)}


def test_recurring_by_sku_across_customers(session) -> None:
    # A is short at WH1 for every order: the (INVENTORY_SHORTFALL, A) pattern recurs across C1 and C2.
    fixture = clean_fixture(
        order("SO1", lines=[line(1, "A", qty=600)]),
        order("SO2", customer_id="C2", order_date="2026-10-25", lines=[line(1, "A", qty=600)]),
        order(
            "SO3",
            customer_id="C2",
            order_date="2026-10-15",
            lines=[line(1, "B", qty=1), line(2, "A", qty=700)],
        ),
    )
    _load(session, fixture)
    recurring = [d for d in detect_order(session, "SO1", POLICY) if d.type == "RECURRING_ANOMALY"]
    assert [(d.instance_key, d.sku, d.facts["order_ids"]) for d in recurring] == [
        ("sku:A:INVENTORY_SHORTFALL", "A", ["SO1", "SO2", "SO3"])
    ]


def test_recurring_needs_the_type_on_this_order(session) -> None:
    fixture = _recurring_world({"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-10"})
    edit(fixture, "orders", "SO1", credit_released=True)
    _load(session, fixture)
    assert detect_order(session, "SO1", POLICY) == []


def test_recurring_threshold_comes_from_the_policy(session) -> None:
    policy = POLICY.model_copy(
        update={
            "thresholds": POLICY.thresholds.model_copy(
                update={"recurrence": POLICY.thresholds.recurrence.model_copy(update={"min_orders": 2})}
            )
        }
    )
    _load(session, _recurring_world({"SO1": "2026-11-01", "SO2": "2026-10-20"}))
    assert "RECURRING_ANOMALY" in {d.type for d in detect_order(session, "SO1", policy)}


def test_query_count_is_bounded(sqlite_engine, session) -> None:
    dates = {
        f"SO{i}": (dt.date(2026, 11, 1) - dt.timedelta(days=(i - 1) % 25)).isoformat() for i in range(1, 60)
    }
    _load(session, _recurring_world(dates))
    statements: list[str] = []
    event.listen(sqlite_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    ctx = load_context(session, "SO1", POLICY)
    assert len(ctx.neighbours) == 58
    assert len(statements) <= 2 * (10 + 2) + 2  # two batches: ten, and two for the donors of short lines
    [hit] = [d for d in detect(ctx, POLICY) if d.type == "RECURRING_ANOMALY"]
    assert len(hit.facts["order_ids"]) == 59


# ----------------------------------------------------------------------------------------------
# Both backends: the same records give the same exceptions on SQLite and PostgreSQL
# ----------------------------------------------------------------------------------------------


def test_same_result_on_both_backends(engine) -> None:
    from tools.db import session_factory

    fixture = _recurring_world(
        {"SO1": "2026-11-01", "SO2": "2026-10-20", "SO3": "2026-10-02"},
        lines=[line(1, unit_price="102.01"), line(2, "B", qty=600, unit_price=50)],
        customer_note="No substitutes; an alternative brand is fine",
        ship_to_city=" ",
    )
    edit(fixture, "items", "B", export_controlled=True, status="discontinued")
    edit(fixture, "orders", "SO1", ship_to_country="CA")
    fixture["shipments"] = [
        {
            "shipment_id": "SH-1",
            "order_id": "SO1",
            "carrier_id": "CA1",
            "status": "in_transit",
            "eta": "2026-11-21",
        }
    ]
    with session_factory(engine)() as session:
        _load(session, fixture)
        found = detect_order(session, "SO1", POLICY)
    assert [(d.type, d.instance_key) for d in found] == [
        ("COMPLIANCE_HOLD", "line:2"),
        ("CREDIT_HOLD", "order"),
        ("MASTER_DATA_INCOMPLETE", "order"),
        ("PRICING_DISCREPANCY", "line:1"),
        ("SUBSTITUTION_REQUEST", "line:2"),
        ("INVENTORY_SHORTFALL", "line:2"),
        ("CARRIER_DISRUPTION", "shipment:SH-1"),
        # not COMPLIANCE_HOLD: only SO1 ships abroad
        ("RECURRING_ANOMALY", "customer:C1:CREDIT_HOLD"),
        ("RECURRING_ANOMALY", "customer:C1:INVENTORY_SHORTFALL"),
        ("RECURRING_ANOMALY", "customer:C1:MASTER_DATA_INCOMPLETE"),
        ("RECURRING_ANOMALY", "customer:C1:PRICING_DISCREPANCY"),
        ("RECURRING_ANOMALY", "customer:C1:SUBSTITUTION_REQUEST"),
        ("RECURRING_ANOMALY", "sku:A:PRICING_DISCREPANCY"),
        ("RECURRING_ANOMALY", "sku:B:INVENTORY_SHORTFALL"),
        ("RECURRING_ANOMALY", "sku:B:SUBSTITUTION_REQUEST"),
    ]
    [price] = [d for d in found if d.type == "PRICING_DISCREPANCY"]
    assert price.facts["unit_price"] == "102.01" and Decimal(price.facts["effective_price"]) == 100


# ----------------------------------------------------------------------------------------------
# The substitution note
# ----------------------------------------------------------------------------------------------

NOTES = [
    ("Please send an equivalent if out of stock", "equivalent"),
    ("Substitutes OK", "substitute"),
    ("alternatives welcome", "alternative"),
    ("Replacement is fine, no rush", "replacement"),
    ("No backorders, substitutes welcome", "substitute"),
    ("send a substitute if not in stock", "substitute"),
    ("No substitutions", None),
    ("Please do not substitute.", None),
    ("Don\u2019t send an alternative", None),
    ("never any replacement", None),
    ("ship without an equivalent", None),
    ("not the blue one, any alternate", "alternate"),  # the negation is in another clause
    ("not the blue one or any other alternate", "alternate"),  # 6 words before: outside the window
    ("not: substitute ok", "substitute"),  # another clause
    # a negation after the keyword, unless a conditional comes first
    ("Substitutes are not acceptable", None),
    ("a replacement won't work for this project", None),
    ("Substitution of this part is not allowed", None),
    ("alternatives: unacceptable", "alternative"),  # another clause
    ("equivalents refused by our engineers", None),
    ("Substitute if not in stock", "substitute"),
    ("an equivalent is fine when the original isn't available", "equivalent"),
    ("substitute ok otherwise we cannot build", "substitute"),
    ("substitutes or equivalents not accepted", None),
    ("replacement welcome, we won't wait", "replacement"),  # the negation is in another clause
    (
        "send a replacement as soon as you can, we are not in a hurry otherwise",
        "replacement",
    ),  # 6+ words after
    ("Deliver to dock 4", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("note", "keyword"), NOTES)
def test_substitution_keyword(note: str | None, keyword: str | None) -> None:
    assert substitution_keyword(note, POLICY.thresholds.substitution) == keyword


@given(
    negation=st.sampled_from(POLICY.thresholds.substitution.negations_after),
    keyword=st.sampled_from(POLICY.thresholds.substitution.keywords),
    filler=st.lists(st.sampled_from(["are", "is", "the", "really"]), max_size=2),
    conditional=st.sampled_from(POLICY.thresholds.substitution.conditionals),
)
def test_a_negation_after_the_keyword_wins_unless_a_conditional_comes_first(
    negation: str, keyword: str, filler: list[str], conditional: str
) -> None:
    rule = POLICY.thresholds.substitution
    assert substitution_keyword(f"{keyword} {' '.join(filler)} {negation}", rule) is None
    assert substitution_keyword(f"{keyword} {conditional} {negation} in stock", rule) == keyword


@given(
    negation=st.sampled_from(POLICY.thresholds.substitution.negations),
    keyword=st.sampled_from(POLICY.thresholds.substitution.keywords),
    filler=st.lists(st.sampled_from(["a", "any", "the", "please"]), max_size=2),
    plural=st.booleans(),
)
def test_negation_within_the_window_always_wins(
    negation: str, keyword: str, filler: list[str], plural: bool
) -> None:
    rule = POLICY.thresholds.substitution
    word = keyword + ("s" if plural else "")
    assert substitution_keyword(f"{negation} {' '.join(filler)} {word}", rule) is None
    assert substitution_keyword(f"{' '.join(filler)} {word}".upper(), rule) == keyword


def test_load_contexts_is_one_batch(session) -> None:
    _load(session, clean_fixture(order("SO1"), order("SO2", customer_id="C2")))
    contexts = load_contexts(session, ["SO1", "SO2", "SO-404"])
    assert sorted(contexts) == ["SO1", "SO2"]
    assert contexts["SO2"].customer is not None and contexts["SO2"].customer.customer_id == "C2"


# ----------------------------------------------------------------------------------------------
# Property: every evidence line is true of the records, and every line where a rule holds is found
# ----------------------------------------------------------------------------------------------

DAY = dt.date(2026, 11, 1)
WAREHOUSES = {"WH1": WarehouseRec("WH1", "US"), "WH2": WarehouseRec("WH2", "DE")}
cents = st.integers(0, 20000).map(lambda c: Decimal(c) / 100)


@st.composite
def contexts(draw) -> OrderContext:
    """A pure context: one order of C1 (from WH1) with a few lines, stock rows and contracts."""
    statuses = st.sampled_from(["open", "allocated", "shipped", "cancelled"])
    lines = tuple(
        LineRec(
            "SO1",
            n,
            sku=draw(st.sampled_from("ABC")),
            qty=qty,
            unit_price=draw(cents),
            warehouse_id=draw(st.sampled_from([None, "WH1", "WH2"])),
            allocated_qty=draw(st.integers(0, qty)),
            backorder_qty=0,
            status=draw(statuses),
            original_sku=None,
        )
        for n, qty in enumerate(draw(st.lists(st.integers(0, 50), min_size=1, max_size=4)), 1)
    )
    stock = {
        (sku, wh): StockRec(sku, wh, draw(st.integers(0, 60)), draw(st.integers(0, 60)))
        for sku in "ABC"
        for wh in WAREHOUSES
        if draw(st.booleans())
    }
    contracts = {}
    for sku in "ABC":
        spans = draw(
            st.lists(
                st.tuples(st.integers(-60, 10), st.one_of(st.none(), st.integers(0, 90)), cents),
                max_size=3,
                unique_by=lambda t: t[0],
            )
        )
        contracts[("C1", sku)] = tuple(
            ContractRec(
                "C1",
                sku,
                DAY + dt.timedelta(days=start),
                None if length is None else DAY + dt.timedelta(days=start + length),
                price,
            )
            for start, length, price in spans
        )
    customer = CustomerRec(
        "C1",
        credit_limit=draw(cents) * 10,
        open_balance=draw(cents) * 10,
        overdue_balance=draw(st.sampled_from([Decimal(0), Decimal(5)])),
        credit_hold=draw(st.booleans()),
        export_license=False,
    )
    order_ = OrderRec(
        "SO1",
        "C1",
        DAY,
        DAY + dt.timedelta(days=10),
        status=draw(st.sampled_from(["open", "held", "released"])),
        credit_released=draw(st.booleans()),
        warehouse_id="WH1",
        ship_to_street="1 Main St",
        ship_to_city="Boston",
        ship_to_postal_code="02101",
        ship_to_country="US",
        customer_note="",
    )
    items = {sku: ItemRec(sku, draw(cents), "active", False) for sku in "ABC"}
    return OrderContext(
        order=order_,
        lines=lines,
        customer=customer,
        items=items,
        warehouses=WAREHOUSES,
        stock=stock,
        contracts=contracts,
        shipments=(),
        open_pos={},
    )


def _effective(ctx: OrderContext, sku: str) -> Decimal:
    valid = sorted(
        (c.valid_from, c.contract_price)
        for c in ctx.contracts[("C1", sku)]
        if c.valid_from <= DAY and (c.valid_to is None or c.valid_to >= DAY)
    )
    return valid[-1][1] if valid else ctx.items[sku].list_price


@given(contexts())
def test_evidence_is_true_of_the_records(ctx: OrderContext) -> None:
    found = detect(ctx, POLICY)
    active = [x for x in ctx.lines if x.status not in ("shipped", "cancelled")]

    def available(x) -> int:
        s = ctx.stock.get((x.sku, x.warehouse_id or "WH1"))
        return s.on_hand - s.allocated if s else 0

    short = {x.line_no: x for x in active if x.qty - x.allocated_qty > available(x)}
    mispriced = {
        x.line_no: x
        for x in active
        if abs(x.unit_price - _effective(ctx, x.sku)) > _effective(ctx, x.sku) * 2 / 100
    }
    assert {d.line_no for d in found if d.type == "INVENTORY_SHORTFALL"} == set(short)
    assert {d.line_no for d in found if d.type == "PRICING_DISCREPANCY"} == set(mispriced)
    c, value = ctx.customer, sum((x.qty * x.unit_price for x in active), Decimal(0))
    on_hold = (
        ctx.order.status in ("open", "held")
        and not ctx.order.credit_released
        and (c.credit_hold or c.open_balance + value > c.credit_limit or c.overdue_balance > 0)
    )
    assert on_hold == any(d.type == "CREDIT_HOLD" for d in found)
    for d in found:
        if d.type == "INVENTORY_SHORTFALL":
            x = short[d.line_no]
            assert (d.facts["open_qty"], d.facts["available"]) == (x.qty - x.allocated_qty, available(x))
            assert f"available {available(x)} " in d.evidence[0]
            assert f"open qty {x.qty - x.allocated_qty} " in d.evidence[0]
        elif d.type == "PRICING_DISCREPANCY":
            x = mispriced[d.line_no]
            assert Decimal(d.facts["effective_price"]) == _effective(ctx, x.sku)
            assert Decimal(d.facts["unit_price"]) == x.unit_price
        elif d.type == "CREDIT_HOLD":
            assert Decimal(d.facts["order_value"]) == value
            assert Decimal(d.facts["overage"]) == c.open_balance + value - c.credit_limit
        else:
            raise AssertionError(f"unexpected {d.type}: {d.evidence}")
