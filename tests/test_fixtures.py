"""The eval-fixture loader: domain.md §5 records in, clear errors out, nothing half-loaded."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import func, select

from tools.db import session_factory
from tools.fixtures import FixtureError, SuiteError, find_case, load_fixture, read_suite
from tools.models import Customer, Order, OrderLine

CASE = yaml.safe_load(
    """
customers: [{customer_id: C1, name: Acme, tier: gold, credit_limit: 50000, open_balance: 48000,
             overdue_balance: 0, credit_hold: false, allow_substitutions: true,
             allow_partial_shipments: true, export_license: false, country: US, email: a@acme.test}]
items: [{sku: A, description: Widget, list_price: 400, unit_cost: 250}]
warehouses: [{warehouse_id: WH1, region: east, country: US}]
inventory: [{sku: A, warehouse_id: WH1, on_hand: 100}]
orders:
  - order_id: SO1
    customer_id: C1
    order_date: 2026-11-20
    promised_date: "2026-11-28"
    warehouse_id: WH1
    lines: [{line_no: 1, sku: A, qty: 10, unit_price: 400}, {sku: A, qty: 2, unit_price: 399.5}]
"""
)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_loads_records_with_defaults_and_nested_lines(engine):
    with session_factory(engine)() as s:
        counts = load_fixture(s, CASE, case_id="c1")
        assert counts == {
            "customers": 1,
            "items": 1,
            "warehouses": 1,
            "inventory": 1,
            "orders": 1,
            "order_lines": 2,
        }
        order = s.get(Order, "SO1")
        assert order.status == "open" and order.credit_released is False
        assert order.promised_date == dt.date(2026, 11, 28)
        assert [(ln.line_no, ln.qty, ln.unit_price) for ln in order.lines] == [
            (1, 10, Decimal("400.00")),
            (2, 2, Decimal("399.50")),
        ]
        assert order.lines[0].allocated_qty == 0 and order.lines[0].original_sku is None
        assert s.get(Customer, "C1").open_balance == Decimal("48000")


def test_order_lines_may_be_a_table(sqlite_engine):
    fixture = {k: v for k, v in CASE.items() if k != "orders"}
    fixture["order_lines"] = [{"order_id": "SO1", "line_no": 1, "sku": "A", "qty": 1}]
    fixture["orders"] = [{"order_id": "SO1", "customer_id": "C1"}]  # after its lines: order is free
    with session_factory(sqlite_engine)() as s:
        assert load_fixture(s, fixture, case_id="c2")["order_lines"] == 1
        assert s.get(Order, "SO1").lines[0].sku == "A"


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda f: f.update(widgets=[{"id": 1}]), "fixture.widgets", "unknown table"),
        (lambda f: f["customers"][0].update(colour="red"), "fixture.customers[0].colour", "unknown field"),
        (
            lambda f: f["orders"][0]["lines"][1].update(sku="NOPE"),
            "fixture.orders[0].lines[1].sku",
            "'NOPE' is not in items.sku (dangling reference)",
        ),
        (
            lambda f: f["orders"][0].update(customer_id="C9"),
            "fixture.orders[0].customer_id",
            "dangling reference",
        ),
        (
            lambda f: f["inventory"][0].update(warehouse_id="WH9"),
            "fixture.inventory[0].warehouse_id",
            "dangling reference",
        ),
        (lambda f: f["customers"][0].update(tier="diamond"), "fixture.customers[0].tier", "is not one of"),
        (
            lambda f: f["orders"][0]["lines"][0].update(qty=1.5),
            "fixture.orders[0].lines[0].qty",
            "whole number",
        ),
        (
            lambda f: f["orders"][0]["lines"][0].update(qty="ten"),
            "fixture.orders[0].lines[0].qty",
            "whole number",
        ),
        (
            lambda f: f["customers"][0].update(credit_hold="yes"),
            "fixture.customers[0].credit_hold",
            "true or false",
        ),
        (
            lambda f: f["customers"][0].update(credit_limit="lots"),
            "fixture.customers[0].credit_limit",
            "amount",
        ),
        (
            lambda f: f["orders"][0].update(order_date="20/11/2026"),
            "fixture.orders[0].order_date",
            "YYYY-MM-DD",
        ),
        (lambda f: f["items"].append({"sku": "A"}), "fixture.items[1]", "duplicate key"),
        (lambda f: f["items"].append({"description": "no key"}), "fixture.items[1].sku", "missing key field"),
        (
            lambda f: f["orders"][0]["lines"][1].update(line_no=1),
            "fixture.orders[0].lines[1]",
            "duplicate key",
        ),
        (
            lambda f: f["orders"][0]["lines"][0].update(order_id="SO2"),
            "fixture.orders[0].lines[0].order_id",
            "differs from its order",
        ),
        (lambda f: f.update(items={"sku": "A"}), "fixture.items", "list of records"),
    ],
)
def test_bad_fixture_is_rejected_with_case_and_key_and_nothing_is_loaded(engine, mutate, key, message):
    fixture = yaml.safe_load(yaml.safe_dump(CASE))
    mutate(fixture)
    with session_factory(engine)() as s:
        with pytest.raises(FixtureError) as info:
            load_fixture(s, fixture, case_id="bad-case")
        assert info.value.case_id == "bad-case" and info.value.key == key
        assert message in str(info.value) and str(info.value).startswith(f"case bad-case: {key}: ")
        assert count(s, Customer) == 0 and count(s, OrderLine) == 0


def test_a_database_error_mid_load_rolls_back_everything(sqlite_engine, monkeypatch):
    # When the database itself refuses a row the loader's checks let through (here: the loader is
    # made to accept an order status the CHECK constraint refuses), nothing is left behind.
    fixture = yaml.safe_load(yaml.safe_dump(CASE))
    with session_factory(sqlite_engine)() as s:
        from tools import fixtures

        monkeypatch.setitem(fixtures.ENUM_COLUMNS, ("orders", "status"), "order_status")
        monkeypatch.setitem(fixtures.ENUMS, "order_status", ("open", "bogus"))
        fixture["orders"][0]["status"] = "bogus"  # passes our check, violates the CHECK constraint
        with pytest.raises(FixtureError, match="the database refused it"):
            load_fixture(s, fixture, case_id="db-refuses")
        assert count(s, Customer) == 0


def test_refuses_a_database_that_already_holds_records(sqlite_engine):
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, CASE, case_id="first")
        with pytest.raises(FixtureError, match="not empty"):
            load_fixture(s, CASE, case_id="second")


def test_read_suite_and_find_case(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"suite": "credit", "cases": [{"id": "a", "fixture": CASE}, {"id": "b"}]}))
    suite = read_suite(path)
    assert find_case(suite, "a")["fixture"]["items"][0]["sku"] == "A"
    with pytest.raises(SuiteError, match="has no case 'zz'"):
        find_case(suite, "zz")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suite: x\ncases: [{id: a}, {id: a}]\n", "appears twice"),
        ("suite: x\ncases:\n  - id: a\n    fixture: {a: [1, 2}\n", "malformed YAML at line 4"),
        ("- just a list\n", "expected a mapping"),
        ("suite: x\ncases: [{fixture: {}}]\n", "cases[0] has no 'id'"),
        ("cases: []\n", "'suite' must name"),
    ],
)
def test_malformed_suite_files_are_reported(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_suite(path)


def test_missing_suite_file(tmp_path):
    with pytest.raises(SuiteError, match="cannot read"):
        read_suite(tmp_path / "absent.yaml")
