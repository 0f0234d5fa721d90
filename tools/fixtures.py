"""Load an eval case's ``fixture`` (domain.md §5) into an empty database, all or nothing.

A fixture maps table names of domain.md §1 to lists of records. Order lines may be nested under
their order as ``lines`` or given as an ``order_lines`` table. Fields that are not given take the
model defaults (false, 0, empty). Everything is validated before the first insert — unknown table
or field, bad type or enumeration value, missing or duplicate key, dangling reference — and each
problem is reported with the case id and the path of the offending key, e.g.
``case credit-1: fixture.orders[0].lines[1].sku: 'X-9' is not in items.sku (dangling reference)``.
The inserts then run in one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import BigInteger, Boolean, Date, Float, Integer, Numeric, SmallInteger, String, Text, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tools.dataset import forget_exceptions_recorded, occupied_tables
from tools.models import ENUMS, ERP_TABLES, Base

__all__ = [
    "MODELS",
    "OMIT",
    "FixtureError",
    "SuiteError",
    "coerce_value",
    "find_case",
    "flatten_records",
    "load_fixture",
    "read_suite",
    "validate_fixture",
]

MODELS: dict[str, type[Base]] = {m.__tablename__: m for m in ERP_TABLES}

# Which enumeration of tools.models.ENUMS a column takes its values from.
ENUM_COLUMNS: dict[tuple[str, str], str] = {
    ("customers", "tier"): "customer_tier",
    ("items", "status"): "item_status",
    ("carriers", "status"): "carrier_status",
    ("purchase_orders", "status"): "po_status",
    ("orders", "status"): "order_status",
    ("order_lines", "status"): "line_status",
    ("shipments", "service_level"): "service_level",
    ("shipments", "status"): "shipment_status",
}

# Counts, amounts and rates of domain.md §1 that cannot be below zero (stock, quantities, prices,
# limits, costs): a negative one is refused, never stored. open_balance may be (a customer's credit
# on account).
NON_NEGATIVE: frozenset[tuple[str, str]] = frozenset(
    {
        ("customers", "credit_limit"),
        ("customers", "overdue_balance"),
        ("suppliers", "on_time_rate"),
        ("suppliers", "lead_time_days"),
        ("items", "list_price"),
        ("items", "unit_cost"),
        ("inventory", "on_hand"),
        ("inventory", "allocated"),
        ("price_contracts", "contract_price"),
        ("carriers", "on_time_rate"),
        ("purchase_orders", "qty"),
        ("order_lines", "qty"),
        ("order_lines", "unit_price"),
        ("order_lines", "allocated_qty"),
        ("order_lines", "backorder_qty"),
        ("order_lines", "shipped_qty"),
        ("shipments", "freight_cost"),
    }
)


class FixtureError(ValueError):
    """A fixture that cannot be loaded; nothing of it was written."""

    def __init__(self, case_id: str, key: str, message: str) -> None:
        self.case_id, self.key, self.message = case_id, key, message
        super().__init__(f"case {case_id}: {key}: {message}")


class SuiteError(ValueError):
    """An eval-suite file that cannot be read."""


@dataclass
class _Row:
    table: str
    path: str
    values: dict[str, Any]


def coerce_value(table: str, column, value: Any, fail) -> Any:
    """Convert a YAML or JSON value to the column's Python type, or call ``fail(message)``.

    An empty value of a column that cannot be empty returns :data:`OMIT` (take the default); a
    negative value of a :data:`NON_NEGATIVE` column is refused.
    """
    number = _coerce(table, column, value, fail)
    if (table, column.name) in NON_NEGATIVE and number is not None and number is not OMIT and number < 0:
        fail(f"cannot be negative, got {value!r}")
    return number


def _coerce(table: str, column, value: Any, fail) -> Any:
    if value is None:
        if not column.nullable and not column.primary_key:
            return OMIT  # take the model default
        if column.primary_key:
            fail("a key field cannot be empty")
        return None
    kind = column.type
    if isinstance(kind, Boolean):
        if isinstance(value, bool):
            return value
        fail(f"expected true or false, got {value!r}")
    if isinstance(kind, Integer):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
            or value != int(value)
        ):
            fail(f"expected a whole number, got {value!r}")
        whole = int(value)
        bits = 64 if isinstance(kind, BigInteger) else 16 if isinstance(kind, SmallInteger) else 32
        if not -(2 ** (bits - 1)) <= whole < 2 ** (bits - 1):
            fail(f"{whole} is out of range: the column holds {-(2 ** (bits - 1))} to {2 ** (bits - 1) - 1}")
        return whole
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        if isinstance(value, bool):
            fail(f"expected an amount, got {value!r}")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            fail(f"expected an amount, got {value!r}")
        if not amount.is_finite():
            fail(f"expected a finite amount, got {value!r}")
        if kind.precision is not None and abs(amount) >= Decimal(10) ** (kind.precision - (kind.scale or 0)):
            fail(
                f"{amount} is too large: the column holds {kind.precision - (kind.scale or 0)} digits before the point"
            )
        return amount
    if isinstance(kind, Float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            fail(f"expected a finite number, got {value!r}")
        return float(value)
    if isinstance(kind, Date):
        if isinstance(value, dt.datetime):
            fail(f"expected a date (YYYY-MM-DD), got a timestamp {value!r}")
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            fail(f"expected a date (YYYY-MM-DD), got {value!r}")
    if isinstance(kind, String | Text):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            fail(f"expected text, got {value!r}")
        text = str(value)
        if "\x00" in text:  # PostgreSQL text cannot hold it; no record field means one
            fail("contains a NUL character (\\x00)")
        if column.foreign_keys and not text.strip():
            return None  # an empty reference is a missing one
        if isinstance(kind, String) and kind.length and len(text) > kind.length:
            fail(f"longer than {kind.length} characters")
        enum = ENUM_COLUMNS.get((table, column.name))
        if enum and text not in ENUMS[enum]:
            fail(f"{text!r} is not one of {', '.join(ENUMS[enum])}")
        return text
    raise AssertionError(f"no coercion for {table}.{column.name}: {kind!r}")  # a bug, not bad input


OMIT = object()


def flatten_records(fixture: Any, fail_at, root: str = "fixture") -> list[_Row]:
    """Table name -> records as rows with their paths; lines nested under an order become order_lines."""
    if not isinstance(fixture, dict):
        fail_at(root, "expected a mapping of table name to a list of records")
    rows: list[_Row] = []
    for table, records in fixture.items():
        path = f"{root}.{table}"
        if table not in MODELS:
            fail_at(path, f"unknown table; known tables: {', '.join(MODELS)}")
        if records is None:
            continue
        if not isinstance(records, list):
            fail_at(path, "expected a list of records")
        for i, record in enumerate(records):
            rpath = f"{path}[{i}]"
            if not isinstance(record, dict):
                fail_at(rpath, "expected a mapping of field to value")
            record = dict(record)
            lines = record.pop("lines", None) if table == "orders" else None
            rows.append(_Row(table, rpath, record))
            if lines is None:
                continue
            if not isinstance(lines, list):
                fail_at(f"{rpath}.lines", "expected a list of order lines")
            for j, line in enumerate(lines):
                lpath = f"{rpath}.lines[{j}]"
                if not isinstance(line, dict):
                    fail_at(lpath, "expected a mapping of field to value")
                line = dict(line)
                parent = record.get("order_id")
                if "order_id" in line and line["order_id"] != parent:
                    fail_at(f"{lpath}.order_id", f"{line['order_id']!r} differs from its order {parent!r}")
                line["order_id"] = parent
                line.setdefault("line_no", j + 1)
                rows.append(_Row("order_lines", lpath, line))
    return rows


def _validate(rows: list[_Row], fail_at) -> dict[str, list[dict[str, Any]]]:
    by_table: dict[str, list[dict[str, Any]]] = {name: [] for name in MODELS}
    keys: dict[str, dict[tuple, str]] = {name: {} for name in MODELS}
    for row in rows:
        table = MODELS[row.table].__table__
        values: dict[str, Any] = {}
        for field, raw in row.values.items():
            if field not in table.c:
                fail_at(
                    f"{row.path}.{field}",
                    f"unknown field of {row.table}; fields: {', '.join(table.c.keys())}",
                )
            value = coerce_value(
                row.table, table.c[field], raw, lambda m, f=f"{row.path}.{field}": fail_at(f, m)
            )
            if value is not OMIT:
                values[field] = value
        pk = tuple(values.get(c.name) for c in table.primary_key.columns)
        for c, v in zip(table.primary_key.columns, pk, strict=True):
            if v is None:
                fail_at(f"{row.path}.{c.name}", "missing key field")
        if pk in keys[row.table]:
            fail_at(row.path, f"duplicate key {pk} (already at {keys[row.table][pk]})")
        keys[row.table][pk] = row.path
        by_table[row.table].append(values)
        row.values = values
    for row in rows:  # references, once every record's key is known
        for column in MODELS[row.table].__table__.c:
            value = row.values.get(column.name)
            for fk in column.foreign_keys:
                target = fk.column
                if value is not None and (value,) not in keys[target.table.name]:
                    fail_at(
                        f"{row.path}.{column.name}",
                        f"{value!r} is not in {target.table.name}.{target.name} (dangling reference)",
                    )
    return by_table


def validate_fixture(fixture: Any, *, case_id: str) -> None:
    """Check ``fixture`` as :func:`load_fixture` does before its first insert, with no database.

    A case is hermetic (its fixture alone is loaded into an empty database), so every problem
    :func:`load_fixture` could name is found here; raises :class:`FixtureError`.
    """

    def fail_at(key: str, message: str):
        raise FixtureError(case_id, key, message)

    _validate(flatten_records(fixture, fail_at), fail_at)


def load_fixture(session: Session, fixture: Any, *, case_id: str) -> dict[str, int]:
    """Validate ``fixture`` and insert it in one transaction; return rows inserted per table.

    The database must hold no ERP records (a case is hermetic). Commits on success; on any error
    rolls back and raises :class:`FixtureError`.
    """

    def fail_at(key: str, message: str):
        raise FixtureError(case_id, key, message)

    by_table = _validate(flatten_records(fixture, fail_at), fail_at)
    try:
        occupied = occupied_tables(session, MODELS)
        if occupied:
            fail_at(
                "fixture",
                f"the database is not empty (rows in {', '.join(occupied)}); load into an empty one",
            )
        forget_exceptions_recorded(session)  # loaded outside events: no whole pass has recorded it
        for model in ERP_TABLES:  # parents first
            rows = by_table[model.__tablename__]
            # One statement per distinct field set: executemany needs uniform keys.
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for values in rows:
                groups.setdefault(tuple(sorted(values)), []).append(values)
            for group in groups.values():
                session.execute(insert(model), group)
        session.commit()
    except FixtureError:
        session.rollback()
        raise
    except SQLAlchemyError as exc:
        session.rollback()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise FixtureError(case_id, "fixture", f"the database refused it: {reason}") from exc
    return {name: len(rows) for name, rows in by_table.items() if rows}


def read_suite(path: str | Path) -> dict[str, Any]:
    """Read and check the outline of an eval suite (``suite:`` and ``cases:`` with unique ids)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        # one line: PyYAML's own report (e.g. of a NUL character) runs over several
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"{path}: malformed YAML{where}: {problem}") from exc
    except RecursionError:
        raise SuiteError(f"{path}: malformed YAML: nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise SuiteError(f"{path}: expected a mapping with 'suite' (a name) and 'cases' (a list)")
    if not isinstance(data.get("suite"), str) or not data["suite"].strip():
        raise SuiteError(f"{path}: 'suite' must name the suite")
    seen: set[str] = set()
    for i, case in enumerate(data["cases"]):
        if not isinstance(case, dict) or not isinstance(case.get("id"), str) or not case["id"].strip():
            raise SuiteError(f"{path}: cases[{i}] has no 'id'")
        if case["id"] in seen:
            raise SuiteError(f"{path}: case id {case['id']!r} appears twice")
        seen.add(case["id"])
    return data


def find_case(suite: dict[str, Any], case_id: str) -> dict[str, Any]:
    for case in suite["cases"]:
        if case["id"] == case_id:
            return case
    known = ", ".join(c["id"] for c in suite["cases"][:20])
    raise SuiteError(f"suite {suite['suite']!r} has no case {case_id!r}; cases: {known}")
