"""Apply an event's records to the ERP snapshot: each record upserted by its key (domain.md §8).

Fields not given keep their values; a new record takes the model defaults. Tables go parents
first, so an event may create a customer and its order together. The caller owns the transaction
(one per event: a failure rolls the whole event back). Returns what changed, before and after,
so that the open orders a change can affect are found from both the old and the new values (an
order line moved to another warehouse affects the orders of both).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from tools.db import one_of
from tools.events.validate import Event, EventError, over_allocated
from tools.fixtures import MODELS
from tools.rules import in_chunks

__all__ = ["Change", "apply_event", "captured_changes", "preload"]


@dataclass(frozen=True)
class Change:
    """One record the event created (``before`` is None) or changed: its column values."""

    table: str
    before: dict[str, Any] | None
    after: dict[str, Any]


def _values(obj: Any, columns) -> dict[str, Any]:
    return {c.name: getattr(obj, c.key) for c in columns}


Records = dict[tuple[str, tuple], Any]  # (table, key) -> the record, or None: there is none


def preload(session: Session, events: Iterable[Event]) -> Records:
    """The records the events name, by table and key (None where there is none yet), read with one
    query per table and 500 keys: :func:`apply_event` given them reads nothing. The mapping also
    holds them while they apply (the session keeps only weak references to unchanged records)."""
    keys: dict[str, set[tuple]] = {}
    for event in events:
        for table, rows in event.records.items():
            names = [c.name for c in MODELS[table].__table__.primary_key.columns]
            keys.setdefault(table, set()).update(tuple(values[k] for k in names) for values in rows)
    out: Records = {}
    for table, wanted in keys.items():
        model = MODELS[table]
        pk = list(model.__table__.primary_key.columns)
        out.update(dict.fromkeys(((table, k) for k in wanted), None))
        # by the key's first column (an index prefix on both backends; SQLite scans the whole table
        # for a row-value IN on a composite key), then kept by the whole key
        for part in in_chunks({k[0] for k in wanted}):
            for obj in session.scalars(select(model).where(one_of(session, pk[0], part))).all():
                key = tuple(getattr(obj, c.key) for c in pk)
                if (table, key) in out:
                    out[(table, key)] = obj
    return out


def apply_event(
    session: Session, event: Event, *, flush: bool = True, records: Records | None = None
) -> list[Change]:
    """Upsert every record of ``event``; return the records that are new or differ (flushed, unless
    ``flush`` is false: then the caller flushes, once the events of a batch are applied).

    ``records``: the records the event names (:func:`preload`), kept up to date with those it
    creates; else each is read with ``session.get``. The records an event creates are inserted
    together (one flush), before their images — with the model's defaults — are taken.
    Raises :class:`EventError` (the caller rolls the event back) for an order line the upsert
    leaves with more allocated than ordered (``allocated_qty: 12`` on a line of qty 10 kept).
    """
    changes: list[Change | None] = []
    created: list[tuple[int, str, Any]] = []  # (position in changes, table, record) not yet flushed

    def settle() -> None:  # insert what was created, then take its image
        if created:
            session.flush()
            for at, table, obj in created:
                changes[at] = Change(table, None, _values(obj, MODELS[table].__table__.c))
            created.clear()

    for table, rows in event.records.items():
        model = MODELS[table]
        columns = list(model.__table__.c)
        pk = [c.name for c in model.__table__.primary_key.columns]
        for values, path in zip(rows, event.paths.get(table) or [""] * len(rows), strict=True):
            key = tuple(values[k] for k in pk)
            obj = records.get((table, key)) if records is not None else session.get(model, key)
            if obj is None:
                obj = model(**values)
                session.add(obj)
                if records is not None:
                    records[(table, key)] = obj
                else:
                    session.flush()  # a later session.get of the same key finds it
                created.append((len(changes), table, obj))
                changes.append(None)
            else:
                if any(obj is new for _, _, new in created):
                    settle()  # named twice in the event: its first image, then this change of it
                before = _values(obj, columns)
                if all(before[k] == v for k, v in values.items()):
                    continue  # the same values again: nothing changes, nothing to triage
                for k, v in values.items():
                    setattr(obj, k, v)
                changes.append(Change(table, before, {**before, **values}))
            if table == "order_lines" and (over := over_allocated(obj)):
                raise EventError(f"{path}.allocated_qty", over, event=event.label)
    settle()
    if flush:
        session.flush()
    return [c for c in changes if c is not None]


@contextmanager
def captured_changes(session: Session) -> Iterator[list[Change]]:
    """The ERP records the block creates or changes through the ORM, as :class:`Change` images
    (before: the values when first written in the block; after: at its end, flushed), so that
    what an executed action changed reaches the same open orders as an event that changed it.

    The list is filled when the block ends; a record written back to its old values is left out.
    """
    tables = {model.__table__.name for model in MODELS.values()}
    first: dict[int, tuple[Any, dict[str, Any] | None]] = {}  # id(obj) -> (obj, image before)

    def before_flush(sess: Session, *_: Any) -> None:
        for obj in [*sess.new, *sess.dirty]:
            table = getattr(obj, "__table__", None)
            if table is None or table.name not in tables or id(obj) in first:
                continue
            state = inspect(obj)
            if obj in sess.new:
                first[id(obj)] = (obj, None)
                continue
            before = {}
            for column in table.c:
                history = state.attrs[column.key].history
                old = history.deleted or history.unchanged
                before[column.name] = old[0] if old else None
            first[id(obj)] = (obj, before)

    out: list[Change] = []
    sa_event.listen(session, "before_flush", before_flush)
    try:
        yield out
        session.flush()
    finally:
        sa_event.remove(session, "before_flush", before_flush)
    for obj, before in first.values():
        after = _values(obj, obj.__table__.c)
        if before != after:
            out.append(Change(obj.__table__.name, before, after))
