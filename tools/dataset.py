"""What is in the database: row counts, the open book, and the generator's metadata."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, literal, select
from sqlalchemy.orm import Session

from tools.models import ERP_TABLES, Base, DatasetMeta, Order, Warehouse
from tools.rules import OPEN_ORDER_STATUSES

__all__ = [
    "EXCEPTIONS_RECORDED",
    "dataset_summary",
    "exceptions_recorded",
    "forget_exceptions_recorded",
    "mark_exceptions_recorded",
    "occupied_tables",
    "open_order_ids",
]

# dataset_meta key: present (its value the time and "policy <hash>") when every order of the open book had its exceptions
# recorded by one whole pass of triage since the data was loaded, and every change since went
# through the paths that triage again what they affect (events, executed actions). Recurrence is
# then counted from the recorded exceptions (agent.triage.detection.detect_recorded).
EXCEPTIONS_RECORDED = "exceptions.recorded"

_ERP_TABLE_NAMES = tuple(m.__tablename__ for m in ERP_TABLES)


def occupied_tables(conn: Connection | Session, tables: Iterable[str] = _ERP_TABLE_NAMES) -> list[str]:
    """The ``tables`` that hold at least one row (one ``LIMIT 1`` probe each, never a count)."""
    return [
        name
        for name in tables
        if conn.execute(select(literal(1)).select_from(Base.metadata.tables[name]).limit(1)).first()
    ]


def open_order_ids(session: Session, limit: int | None = None) -> list[str]:
    query = select(Order.order_id).where(Order.status.in_(OPEN_ORDER_STATUSES)).order_by(Order.order_id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def dataset_summary(session: Session) -> dict[str, Any]:
    rows = {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in ERP_TABLES}
    by_status = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    warehouses = session.execute(select(Warehouse.region, Warehouse.country)).all()
    return {
        "meta": {m.key: m.value for m in session.scalars(select(DatasetMeta).order_by(DatasetMeta.key))},
        "rows": rows,
        "orders_by_status": by_status,
        "open_orders": sum(by_status.get(s, 0) for s in OPEN_ORDER_STATUSES),
        "regions": sorted({r for r, _ in warehouses if r}),
        "countries": sorted({c for _, c in warehouses if c}),
    }


def exceptions_recorded(session: Session, policy_hash: str | None = None) -> bool:
    """Whether the exceptions table holds every open-book order's exceptions for the data as it is
    (:data:`EXCEPTIONS_RECORDED`) — and, given ``policy_hash``, recorded under that policy: rows
    recorded under other thresholds or rules do not stand for what this policy detects."""
    row = session.get(DatasetMeta, EXCEPTIONS_RECORDED)
    if row is None:
        return False
    return policy_hash is None or row.value.rpartition(" policy ")[2] == policy_hash


def mark_exceptions_recorded(
    session: Session, at: dt.datetime | None = None, *, policy_hash: str = ""
) -> None:
    """Record that a whole pass of triage has just recorded the open book under the policy of
    ``policy_hash`` (the caller commits)."""
    when = (at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    value = f"{when} policy {policy_hash}"
    row = session.get(DatasetMeta, EXCEPTIONS_RECORDED)
    if row is None:
        session.add(DatasetMeta(key=EXCEPTIONS_RECORDED, value=value))
    else:
        row.value = value
    session.flush()


def forget_exceptions_recorded(conn: Connection | Session) -> None:
    """Data is being loaded outside the paths that triage again what they change: the recorded
    exceptions no longer stand for the whole book until the next whole pass."""
    conn.execute(delete(DatasetMeta).where(DatasetMeta.key == EXCEPTIONS_RECORDED))
