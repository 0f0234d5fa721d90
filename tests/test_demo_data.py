"""The demo-data generator: integrity, consistency, determinism, realism and the exception mix.

One data set of a few thousand orders is generated per module (seconds) and read by most tests;
the determinism tests generate their own into separate SQLite files. One test runs on PostgreSQL
(COPY path) and checks it holds the same rows as SQLite.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from agent.policy import load_policy
from agent.triage.detection import detect_order, substitution_keyword
from tools.db import make_engine, session_factory, upgrade
from tools.demo import DemoDataError, SeedReport, generate, reset
from tools.demo.history import ROLE
from tools.demo.openbook import SCENARIO_TYPES
from tools.demo.parties import NOTES
from tools.domain import EXCEPTION_TYPES
from tools.models import PRESERVED_ON_RESET, Base, Order

AS_OF = dt.date(2026, 3, 2)
ORDERS = 4_000
CLOSED = "('shipped', 'cancelled')"
# Columns of exceptions that name a record without a declared foreign key.
LOGICAL_REFS = (
    ("exceptions", "sku", "items", "sku"),
    ("exceptions", "customer_id", "customers", "customer_id"),
    ("exceptions", "warehouse_id", "warehouses", "warehouse_id"),
    ("exceptions", "shipment_id", "shipments", "shipment_id"),
)


def _seed(path: Path, **kw) -> tuple[Engine, SeedReport]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    kw.setdefault("orders", ORDERS)
    return engine, generate(engine, as_of=AS_OF, progress=False, **kw)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Engine, SeedReport]:
    engine, report = _seed(tmp_path_factory.mktemp("demo") / "demo.db")
    yield engine, report
    engine.dispose()


def _scalar(engine: Engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _rows(engine: Engine, sql: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql)).all()


def _dangling(engine: Engine) -> dict[str, int]:
    """Per foreign key (declared or logical): rows whose non-null value names no parent row."""
    refs = [
        (t.name, [c.name for c in fk.columns], fk.referred_table.name, [e.column.name for e in fk.elements])
        for t in Base.metadata.sorted_tables
        for fk in t.foreign_key_constraints
    ]
    refs += [(t, [c], p, [pc]) for t, c, p, pc in LOGICAL_REFS]
    out = {}
    for table, cols, parent, pcols in refs:
        present = " AND ".join(f'c."{c}" IS NOT NULL' for c in cols)
        match = " AND ".join(f'p."{pc}" = c."{c}"' for c, pc in zip(cols, pcols, strict=False))
        out[f"{table}.{'+'.join(cols)}"] = _scalar(
            engine,
            f'SELECT COUNT(*) FROM "{table}" c WHERE {present} '
            f'AND NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE {match})',
        )
    return out


def _check_integrity_and_stock(engine: Engine) -> None:
    dangling = _dangling(engine)
    assert len(dangling) >= 20 and not any(dangling.values()), {k: v for k, v in dangling.items() if v}
    mismatched = _rows(
        engine,
        f"""
        SELECT i.sku, i.warehouse_id, i.allocated, COALESCE(l.total, 0) FROM inventory i
        LEFT JOIN (SELECT sku, warehouse_id, SUM(allocated_qty) AS total FROM order_lines
                   WHERE status NOT IN {CLOSED} GROUP BY sku, warehouse_id) l
          ON l.sku = i.sku AND l.warehouse_id = i.warehouse_id
        WHERE i.allocated <> COALESCE(l.total, 0)""",
    )
    assert mismatched == []
    unstocked = _scalar(
        engine,
        f"""
        SELECT COUNT(*) FROM (SELECT sku, warehouse_id, SUM(allocated_qty) AS total FROM order_lines
                              WHERE status NOT IN {CLOSED} GROUP BY sku, warehouse_id) l
        WHERE l.total > 0 AND NOT EXISTS (SELECT 1 FROM inventory i
                                          WHERE i.sku = l.sku AND i.warehouse_id = l.warehouse_id)""",
    )
    assert unstocked == 0
    assert _scalar(engine, "SELECT COUNT(*) FROM inventory WHERE on_hand < allocated OR allocated < 0") == 0


# ------------------------------------------------------------------------------------------------
# Integrity and consistency
# ------------------------------------------------------------------------------------------------


def test_every_reference_resolves_and_stock_adds_up(seeded):
    engine, _ = seeded
    _check_integrity_and_stock(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_line_quantities_agree_with_line_status(seeded):
    engine, _ = seeded
    rules = {
        "allocated": "allocated_qty = qty AND backorder_qty = 0 AND shipped_qty = 0",
        "backordered": "allocated_qty >= 0 AND allocated_qty < qty AND backorder_qty = qty - allocated_qty "
        "AND shipped_qty = 0",
        "open": "allocated_qty = 0 AND backorder_qty = 0 AND shipped_qty = 0",
        "shipped": "shipped_qty > 0 AND shipped_qty <= qty AND allocated_qty = shipped_qty AND backorder_qty = 0",
        "cancelled": "allocated_qty = 0 AND backorder_qty = 0 AND shipped_qty = 0",
    }
    for status, rule in rules.items():
        bad = _scalar(engine, f"SELECT COUNT(*) FROM order_lines WHERE status = '{status}' AND NOT ({rule})")
        assert bad == 0, status
        assert _scalar(engine, f"SELECT COUNT(*) FROM order_lines WHERE status = '{status}'") > 0, status
    assert _scalar(engine, "SELECT COUNT(*) FROM order_lines WHERE qty < 1 OR warehouse_id IS NULL") == 0
    # Order status and line status tell the same story.
    mixed = _rows(
        engine,
        """
        SELECT o.status, l.status, COUNT(*) FROM orders o JOIN order_lines l ON l.order_id = o.order_id
        GROUP BY o.status, l.status""",
    )
    allowed = {
        "shipped": {"shipped"},
        "cancelled": {"cancelled"},
        "open": {"allocated", "backordered", "open"},
        "held": {"allocated", "backordered", "open"},
        "released": {"allocated"},
    }
    assert all(line in allowed[order] for order, line, _ in mixed), mixed
    per_order = _rows(engine, "SELECT COUNT(*) FROM order_lines GROUP BY order_id")
    counts = [n for (n,) in per_order]
    assert len(counts) == ORDERS and min(counts) >= 1 and max(counts) <= 12
    assert 3.2 <= sum(counts) / len(counts) <= 3.8


def test_shipments_fit_the_order_status(seeded):
    engine, _ = seeded
    by_status = dict(
        _rows(
            engine,
            """
        SELECT o.status, COUNT(DISTINCT o.order_id) FROM orders o
        WHERE NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.order_id) GROUP BY o.status""",
        )
    )
    assert "released" not in by_status and "shipped" not in by_status  # they all have shipments
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM shipments s JOIN orders o ON o.order_id = s.order_id
                              WHERE o.status IN ('open', 'held', 'cancelled')""",
        )
        == 0
    )
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM shipments s JOIN orders o ON o.order_id = s.order_id
                              WHERE o.status = 'released' AND s.status = 'delivered'""",
        )
        == 0
    )
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM shipments WHERE status = 'delivered'
                              AND (delivered_date IS NULL OR delivered_date > '2026-03-02')""",
        )
        == 0
    )
    assert (
        _scalar(engine, "SELECT COUNT(*) FROM orders WHERE status = 'shipped' AND shipped_date IS NULL") == 0
    )


# ------------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------------


def _digests(path: Path) -> dict[str, str]:
    """sha256 per table of its rows, read raw (no type conversion), in primary-key order.

    The generator's tables only: the users and the audit chain (``PRESERVED_ON_RESET``) are made by
    the migration and by people, with the time they were made.
    """
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in Base.metadata.sorted_tables:
            if table.name in PRESERVED_ON_RESET:
                continue
            keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            digest = hashlib.sha256()
            for row in conn.execute(f'SELECT * FROM "{table.name}" ORDER BY {keys}'):
                digest.update(repr(row).encode())
            out[table.name] = digest.hexdigest()
        return out
    finally:
        conn.close()


def test_same_seed_gives_identical_rows_whatever_the_chunk_size_or_process(tmp_path):
    """Byte-identical rows from another process (another string-hash seed) with other chunks."""
    a, _ = _seed(tmp_path / "a.db", orders=1_500, seed=11)
    a.dispose()
    script = (
        "import datetime as dt, sys; from tools.db import make_engine, upgrade; from tools.demo import generate; "
        "e = make_engine('sqlite:///' + sys.argv[1]); upgrade(e); "
        "generate(e, orders=1_500, seed=11, as_of=dt.date(2026, 3, 2), progress=False, chunk_orders=97)"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "b.db")], cwd=root, env=env, check=True)
    assert _digests(tmp_path / "a.db") == _digests(tmp_path / "b.db")


def test_another_seed_gives_other_data(tmp_path):
    a, _ = _seed(tmp_path / "a.db", orders=800, seed=1)
    b, _ = _seed(tmp_path / "b.db", orders=800, seed=2)
    a.dispose(), b.dispose()
    first, second = _digests(tmp_path / "a.db"), _digests(tmp_path / "b.db")
    for table in (
        "customers",
        "items",
        "orders",
        "order_lines",
        "inventory",
        "purchase_orders",
        "exceptions",
    ):
        assert first[table] != second[table], table
    assert first["warehouses"] == second["warehouses"]  # the network is fixed, not drawn


def test_the_orm_baseline_writes_exactly_the_same_rows(tmp_path):
    """The bulk writers store what the ORM would: same floats, date and timestamp strings, JSON."""
    a, _ = _seed(tmp_path / "bulk.db", orders=500, seed=5)
    b, _ = _seed(tmp_path / "orm.db", orders=500, seed=5, method="orm")
    a.dispose(), b.dispose()
    assert _digests(tmp_path / "bulk.db") == _digests(tmp_path / "orm.db")


# ------------------------------------------------------------------------------------------------
# The exception mix of the open book, as the detector sees it
# ------------------------------------------------------------------------------------------------


def test_open_book_has_every_exception_type_at_a_realistic_rate(seeded):
    engine, report = seeded
    policy = load_policy()
    with session_factory(engine)() as session:
        ids = list(
            session.scalars(select(Order.order_id).where(Order.status.in_(("open", "held", "released"))))
        )
        found = {oid: {d.type for d in detect_order(session, oid, policy)} for oid in ids}
    assert len(ids) == report.open_orders
    with_any = [oid for oid, types in found.items() if types]
    assert 0.08 <= len(with_any) / len(ids) <= 0.15, len(with_any) / len(ids)
    # Nothing spills over: exactly the orders that got an injected scenario have an exception.
    injected = sum(n for name, n in report.scenarios.items() if name not in ("clean", "credit_released"))
    assert len(with_any) == injected, report.scenarios
    per_type = collections.Counter(t for types in found.values() for t in types)
    assert set(per_type) == set(EXCEPTION_TYPES), per_type
    combos = [types for types in found.values()]
    for pair in (
        {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"},
        {"CREDIT_HOLD", "PRICING_DISCREPANCY"},
        {"CREDIT_HOLD", "COMPLIANCE_HOLD"},
        {"INVENTORY_SHORTFALL", "SUBSTITUTION_REQUEST"},
    ):
        assert any(pair <= types for types in combos), pair


def test_clean_orders_are_clean_and_adversarial_notes_are_there(seeded):
    engine, _ = seeded
    notes = [n for (n,) in _rows(engine, "SELECT customer_note FROM orders")]
    empty = sum(1 for n in notes if not n)
    assert empty / len(notes) > 0.7
    for kind in ("ordinary", "substitute_ok", "no_substitute", "adversarial"):
        assert any(n in NOTES[kind] for n in notes), kind
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM orders WHERE status = 'held'
                              AND customer_note LIKE 'Ignore your rules%'""",
        )
        >= 1
    )


def test_generator_names_are_the_contract_names():
    assert set(ROLE) == set(EXCEPTION_TYPES)
    assert set().union(*SCENARIO_TYPES.values()) <= set(EXCEPTION_TYPES)
    roles = set(load_policy().roles)
    assert set(ROLE.values()) <= roles


def test_notes_speak_the_policy_language():
    rule = load_policy().thresholds.substitution
    for kind, asks in (
        ("ordinary", False),
        ("adversarial", False),
        ("no_substitute", False),
        ("substitute_ok", True),
    ):
        for note in NOTES[kind]:
            assert (substitution_keyword(note, rule) is not None) is asks, note


# ------------------------------------------------------------------------------------------------
# Realism of the master data and the history
# ------------------------------------------------------------------------------------------------


def test_network_catalog_and_parties_look_like_a_regional_distributor(seeded):
    engine, _report = seeded
    regions = collections.defaultdict(set)
    for region, country in _rows(engine, "SELECT region, country FROM warehouses"):
        regions[region].add(country)
    assert len(regions) >= 2 and len(set().union(*regions.values())) >= 2
    assert any({"US", "CA"} <= c for c in regions.values()) and any(
        {"US", "MX"} <= c for c in regions.values()
    )
    items = _scalar(engine, "SELECT COUNT(*) FROM items")
    assert 1_800 <= items <= 2_200
    assert _scalar(engine, "SELECT COUNT(DISTINCT product_family) FROM items") >= 12
    assert 0.01 <= _scalar(engine, "SELECT COUNT(*) FROM items WHERE status = 'discontinued'") / items <= 0.02
    assert 0.015 <= _scalar(engine, "SELECT COUNT(*) FROM items WHERE export_controlled") / items <= 0.025
    margins = [float(1 - c / p) for p, c in _rows(engine, "SELECT list_price, unit_cost FROM items")]
    assert min(margins) >= 0.19 and max(margins) <= 0.46
    assert _scalar(engine, "SELECT COUNT(*) FROM items WHERE supplier_id IS NULL") == 0
    assert dict(_rows(engine, "SELECT approved, COUNT(*) FROM substitutes GROUP BY approved")).keys() == {
        0,
        1,
    }
    assert sorted(s for (s,) in _rows(engine, "SELECT status FROM carriers")).count("ok") == 4
    assert {s for (s,) in _rows(engine, "SELECT status FROM carriers")} == {"ok", "constrained", "disrupted"}
    assert _scalar(engine, "SELECT COUNT(*) FROM suppliers") == 40
    assert {t for (t,) in _rows(engine, "SELECT DISTINCT tier FROM customers")} == {
        "platinum",
        "gold",
        "standard",
    }
    assert {c for (c,) in _rows(engine, "SELECT DISTINCT country FROM customers")} == {"US", "CA", "MX"}
    assert _scalar(engine, "SELECT COUNT(*) FROM customers WHERE email NOT LIKE '%@%.example'") == 0
    for table, column, pattern in (
        ("orders", "order_id", r"SO-\d{6}"),
        ("customers", "customer_id", r"C-\d{5}"),
        ("items", "sku", r"[A-Z]{3}-\d{5}"),
        ("purchase_orders", "po_id", r"PO-\d+"),
        ("shipments", "shipment_id", r"SH-\d+"),
        ("warehouses", "warehouse_id", r"WH-\w+"),
        ("carriers", "carrier_id", r"CR-\d+"),
        ("suppliers", "supplier_id", r"SUP-\d+"),
    ):
        assert all(re.fullmatch(pattern, v) for (v,) in _rows(engine, f"SELECT {column} FROM {table}")), table


def test_contracts_expire_start_later_and_overlap(seeded):
    engine, _ = seeded
    assert _scalar(engine, "SELECT COUNT(*) FROM price_contracts WHERE valid_to < '2026-03-02'") > 0
    assert _scalar(engine, "SELECT COUNT(*) FROM price_contracts WHERE valid_from > '2026-03-02'") > 0
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM price_contracts a JOIN price_contracts b
                              ON a.customer_id = b.customer_id AND a.sku = b.sku AND a.valid_from < b.valid_from
                              AND b.valid_from <= a.valid_to""",
        )
        > 0
    )
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM price_contracts p JOIN customers c USING (customer_id)
                              WHERE c.tier = 'standard'""",
        )
        == 0
    )


def test_history_carries_outcomes_to_learn_from(seeded):
    engine, _ = seeded
    shipped = _scalar(engine, "SELECT COUNT(*) FROM orders WHERE status = 'shipped'")
    cancelled = _scalar(engine, "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'")
    assert 0.015 <= cancelled / (shipped + cancelled) <= 0.045
    late = _scalar(
        engine,
        """SELECT COUNT(*) FROM shipments s JOIN orders o ON o.order_id = s.order_id
                              WHERE s.status = 'delivered' AND s.delivered_date > o.promised_date""",
    )
    delivered = _scalar(engine, "SELECT COUNT(*) FROM shipments WHERE status = 'delivered'")
    assert 0.04 <= late / delivered <= 0.25
    assert (
        _scalar(engine, "SELECT COUNT(*) FROM order_lines WHERE status = 'shipped' AND shipped_qty < qty") > 0
    )
    # The disrupted carrier is late far more often than the best one: a learnable driver.
    rates = dict(
        _rows(
            engine,
            """SELECT s.carrier_id, AVG(CASE WHEN s.delivered_date > s.eta THEN 1.0 ELSE 0 END)
                                  FROM shipments s WHERE s.status = 'delivered' GROUP BY s.carrier_id""",
        )
    )
    assert rates["CR-106"] > 2 * rates["CR-105"]
    kinds = dict(_rows(engine, "SELECT type, COUNT(*) FROM exceptions GROUP BY type"))
    assert set(kinds) >= set(EXCEPTION_TYPES) - {"COMPLIANCE_HOLD"}
    assert (
        _scalar(
            engine,
            """SELECT COUNT(*) FROM exceptions e JOIN orders o ON o.order_id = e.order_id
                              WHERE e.status <> 'resolved' OR e.resolved_at < e.detected_at
                              OR o.status NOT IN ('shipped', 'cancelled')""",
        )
        == 0
    )
    pos = dict(_rows(engine, "SELECT status, COUNT(*) FROM purchase_orders GROUP BY status"))
    assert pos.keys() == {"open", "received", "cancelled"}
    assert (
        _scalar(engine, "SELECT COUNT(*) FROM purchase_orders WHERE status = 'open' AND expedite_requested")
        > 0
    )


def test_dataset_meta_describes_the_load(seeded):
    engine, report = seeded
    meta = dict(_rows(engine, "SELECT key, value FROM dataset_meta"))
    assert meta["seed"] == "7" and meta["as_of"] == "2026-03-02" and meta["orders"] == str(ORDERS)
    assert meta["generator_version"] and int(meta["open_orders"]) == report.open_orders
    for table in ("orders", "order_lines", "inventory", "exceptions", "customers"):
        assert (
            int(meta[f"rows.{table}"])
            == _scalar(engine, f"SELECT COUNT(*) FROM {table}")
            == report.rows[table]
        )
    assert report.order_lines == report.rows["order_lines"] and report.elapsed > 0


# ------------------------------------------------------------------------------------------------
# Guard rails, reset, PostgreSQL
# ------------------------------------------------------------------------------------------------


def test_generate_refuses_a_full_database_and_reset_empties_it(sqlite_engine):
    generate(sqlite_engine, orders=300, seed=3, as_of=AS_OF, progress=False)
    with pytest.raises(DemoDataError, match="already holds records"):
        generate(sqlite_engine, orders=300, seed=3, as_of=AS_OF, progress=False)
    reset(sqlite_engine)
    for table in Base.metadata.sorted_tables:
        if table.name not in PRESERVED_ON_RESET:  # users and the audit chain survive a reset
            assert _scalar(sqlite_engine, f'SELECT COUNT(*) FROM "{table.name}"') == 0, table.name
    assert _scalar(sqlite_engine, "SELECT COUNT(*) FROM alembic_version") == 1
    generate(sqlite_engine, orders=300, seed=3, as_of=AS_OF, progress=False)


def test_progress_bar_only_where_asked(sqlite_engine, capsys, monkeypatch):
    generate(sqlite_engine, orders=150, seed=1, as_of=AS_OF, progress=True)
    assert "lines" in capsys.readouterr().err
    reset(sqlite_engine)
    monkeypatch.setenv("CI", "1")
    generate(sqlite_engine, orders=150, seed=1, as_of=AS_OF)  # auto: CI set, stderr not a terminal
    assert capsys.readouterr().err == ""


def test_generate_needs_the_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(DemoDataError, match="db upgrade"):
        generate(engine, orders=10, as_of=AS_OF, progress=False)


def _normalised(engine: Engine, table: str) -> list[tuple]:
    def norm(value):
        if isinstance(value, Decimal):
            return f"{value:.2f}"
        if isinstance(value, dt.datetime):
            return (value.astimezone(dt.UTC) if value.tzinfo else value).replace(tzinfo=None)
        return value

    t = Base.metadata.tables[table]
    with engine.connect() as conn:
        return sorted((tuple(norm(v) for v in row) for row in conn.execute(select(t))), key=repr)


@pytest.mark.postgres
def test_postgres_copy_load_matches_sqlite(pg_engine, tmp_path):
    report = generate(pg_engine, orders=1_500, seed=9, as_of=AS_OF, progress=False, chunk_orders=400)
    _check_integrity_and_stock(pg_engine)
    sqlite, twin = _seed(tmp_path / "twin.db", orders=1_500, seed=9)
    assert report.rows == twin.rows
    for table in (
        "customers",
        "items",
        "price_contracts",
        "purchase_orders",
        "orders",
        "order_lines",
        "shipments",
        "exceptions",
        "inventory",
        "dataset_meta",
    ):
        assert _normalised(pg_engine, table) == _normalised(sqlite, table), table
    sqlite.dispose()
    reset(pg_engine)
    assert _scalar(pg_engine, "SELECT COUNT(*) FROM orders") == 0
    generate(pg_engine, orders=200, seed=9, as_of=AS_OF, progress=False)  # identities restart too
    assert _scalar(pg_engine, "SELECT MIN(id) FROM exceptions") in (None, 1)
