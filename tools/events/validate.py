"""Read a source system's event (domain.md §8) into typed records, or refuse it naming the path.

An event is ``{event_id, source, type, occurred_at, records}``; ``records`` maps table names of
domain.md §1 to lists of records (order lines may be nested under their order as ``lines``, as in
an eval fixture). Each record is checked like a fixture record — known table and field, the
column's type and enumeration, its key present, no key twice in one event — by the same coercion
(:func:`tools.fixtures.coerce_value`). A field given as ``null`` for a column that cannot be empty
is refused (an upsert keeps fields that are not given; an explicit empty value is a mistake).
References (``orders[0].customer_id``) must name a record in the database, in the events being
checked together or, when they are received, in an event waiting in the inbox
(:func:`check_references`). Any problem raises :class:`EventError` with the path,
e.g. ``records.order_lines[0].sku: 'X-9' is not in items.sku (dangling reference)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, String, Text, literal, select, union_all
from sqlalchemy.orm import Session

from tools.db import one_of
from tools.fixtures import MODELS, OMIT, coerce_value, flatten_records
from tools.models import ERP_TABLES, EventInbox
from tools.rules import in_chunks

__all__ = [
    "Event",
    "EventError",
    "check_references",
    "dangling_before",
    "over_allocated",
    "parse_event",
    "parse_events",
]

FIELDS = ("event_id", "source", "type", "occurred_at", "records")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
TABLE_ORDER = tuple(m.__tablename__ for m in ERP_TABLES)  # parents first


class EventError(ValueError):
    """An event that is refused; nothing of it is stored or applied. ``path`` names the bad key."""

    def __init__(self, path: str, message: str, *, event: str | None = None) -> None:
        self.path, self.message, self.event = path, message, event
        where = f"event {event}: " if event else ""
        super().__init__(f"{where}{path}: {message}")


@dataclass
class Event:
    """One valid event: its records typed and grouped by table (parents first), with their paths."""

    source: str
    event_id: str
    type: str
    occurred_at: dt.datetime
    records: dict[str, list[dict[str, Any]]]
    paths: dict[str, list[str]] = field(default_factory=dict)
    root: str = ""

    @property
    def label(self) -> str:
        return f"{self.source}/{self.event_id}"

    def as_json(self) -> dict[str, list[dict[str, Any]]]:
        """The records as JSON values (dates ISO, money as decimal strings), for the inbox."""
        return {t: [{k: _json(v) for k, v in r.items()} for r in rows] for t, rows in self.records.items()}


def _json(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Decimal


def _text(raw: Any, path: str, limit: int) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).strip():
        raise EventError(path, f"expected a non-empty text, got {raw!r}")
    text = str(raw).strip()
    if len(text) > limit:
        raise EventError(path, f"longer than {limit} characters")
    if "\x00" in text:  # PostgreSQL text cannot hold it
        raise EventError(path, "contains a NUL character (\\x00)")
    return text


def _short(raw: Any, limit: int = 64) -> str:
    """``raw`` for a message: an over-long id is cut, not echoed whole; a missing one is ``?``."""
    text = "?" if raw is None else str(raw)
    return text if len(text) <= limit else text[:limit] + "…"


def _timestamp(raw: Any, path: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(str(raw)) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        raise EventError(path, f"expected an ISO 8601 timestamp such as 2026-11-25T08:30:00Z, got {raw!r}")
    # a naive time is UTC; an offset is converted to UTC, so the inbox's order (SQLite stores the
    # wall time without its offset) is the order the events happened in
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_event(raw: Any, root: str = "") -> Event:
    """Check one event's shape and types (not its references); raise :class:`EventError`."""
    prefix = f"{root}." if root else ""
    if not isinstance(raw, dict):
        raise EventError(root or "event", "expected a JSON object with " + ", ".join(FIELDS))
    label = f"{_short(raw.get('source'))}/{_short(raw.get('event_id'))}"
    try:
        for key in raw:
            if key not in FIELDS:
                raise EventError(f"{prefix}{key}", f"unknown field of an event; fields: {', '.join(FIELDS)}")
        for key in FIELDS:
            if key not in raw:
                raise EventError(f"{prefix}{key}", "missing")
        source = _text(raw["source"], f"{prefix}source", 32).lower()
        if not _SOURCE.match(source):
            raise EventError(f"{prefix}source", "expected a name of letters, digits, '_', '.' or '-'")
        event = Event(
            source=source,
            event_id=_text(raw["event_id"], f"{prefix}event_id", 128),
            type=_text(raw["type"], f"{prefix}type", 64),
            occurred_at=_timestamp(raw["occurred_at"], f"{prefix}occurred_at"),
            records={},
            root=root,
        )
        _records(event, raw["records"], f"{prefix}records")
    except EventError as exc:
        exc.event = exc.event or label
        raise EventError(exc.path, exc.message, event=exc.event) from None
    return event


def _records(event: Event, raw: Any, root: str) -> None:
    def fail_at(path: str, message: str):
        raise EventError(path, message)

    rows = flatten_records(raw, fail_at, root=root)
    if not rows:
        raise EventError(root, "no records: an event changes at least one record")
    seen: dict[tuple[str, tuple], str] = {}
    for row in rows:
        table = MODELS[row.table].__table__
        values: dict[str, Any] = {}
        for name, raw_value in row.values.items():
            path = f"{row.path}.{name}"
            if name not in table.c:
                fail_at(path, f"unknown field of {row.table}; fields: {', '.join(table.c.keys())}")
            column = table.c[name]
            if raw_value is None and not column.nullable:
                fail_at(path, "cannot be empty (leave the field out to keep its value)")
            if raw_value is not None and not isinstance(raw_value, str) and _wants_text(column):
                # JSON tells text from numbers: 20261130 is no date, 42 no name (a fixture's YAML
                # may read an unquoted id as a number; an event's JSON says what it means)
                kind = "a date as text (YYYY-MM-DD)" if isinstance(column.type, Date) else "text"
                fail_at(path, f"expected {kind}, got {raw_value!r}")
            value = coerce_value(row.table, column, raw_value, lambda m, p=path: fail_at(p, m))
            if value is not OMIT:
                values[name] = value
        key = tuple(values.get(c.name) for c in table.primary_key.columns)
        for column, part in zip(table.primary_key.columns, key, strict=True):
            if part is None:
                fail_at(f"{row.path}.{column.name}", "missing key field")
        if row.table == "order_lines" and (over := over_allocated(values)):
            fail_at(f"{row.path}.allocated_qty", over)
        if (row.table, key) in seen:
            fail_at(row.path, f"duplicate key {key} (already at {seen[row.table, key]})")
        seen[row.table, key] = row.path
        event.records.setdefault(row.table, []).append(values)
        event.paths.setdefault(row.table, []).append(row.path)
    event.records = {t: event.records[t] for t in TABLE_ORDER if t in event.records}
    event.paths = {t: event.paths[t] for t in event.records}


def over_allocated(line: Any) -> str | None:
    """Why an order line's values (a dict, or the record) have a negative open quantity
    (qty − allocated_qty, domain.md §2), if they do: more allocated than ordered."""
    get = line.get if isinstance(line, dict) else lambda name: getattr(line, name, None)
    qty, allocated = get("qty"), get("allocated_qty")
    if qty is None or allocated is None or allocated <= qty:
        return None
    return f"{allocated} is more than the line's qty {qty}: the open quantity cannot be negative"


def _wants_text(column: Any) -> bool:
    """A column whose JSON value is a string: text and dates (money may come as a number or a
    decimal string)."""
    return isinstance(column.type, String | Text | Date)


def parse_events(raws: Iterable[Any], root: str = "") -> list[Event]:
    """Several events, each checked with :func:`parse_event` at ``root[i]``."""
    return [parse_event(raw, f"{root}[{i}]") for i, raw in enumerate(raws)]


def check_references(
    session: Session, events: list[Event], *, waiting: bool = False, in_order: bool = False
) -> None:
    """Every reference names a record in the database or in ``events``; else :class:`EventError`.

    The first dangling one (in the events' order) is reported with its event and path.
    ``waiting``: a record that an event already stored in the inbox and not yet applied creates
    counts too, when that event happened no later than the referring one (the worker applies them
    in that order) — what a source reported a moment ago (an order, then its shipment in the next
    request) is no dangling key because the worker has not applied it yet. When the events apply,
    the worker checks again against the database alone.
    ``in_order``: the events apply one after the other in the order given: a record counts for an
    event only when it or an event before it creates it (what checking each against the database
    just before it applies finds, when all the earlier ones applied).
    """
    first: dict[str, dict[Any, int]] = {}  # table -> key -> the first event giving it
    for n, event in enumerate(events):
        for table, rows in event.records.items():
            pk = MODELS[table].__table__.primary_key.columns
            if len(pk) == 1:
                given = first.setdefault(table, {})
                for r in rows:
                    given.setdefault(r[pk[0].name], n)
    wanted: dict[tuple[str, str], set[Any]] = {}
    uses: list[tuple[Event, str, str, Any, tuple[str, str]]] = []
    for n, event in enumerate(events):
        for table, rows in event.records.items():
            for values, path in zip(rows, event.paths[table], strict=True):
                for column in MODELS[table].__table__.c:
                    value = values.get(column.name)
                    for fk in column.foreign_keys:
                        target = (fk.column.table.name, fk.column.name)
                        if value is None:
                            continue
                        given_at = first.get(target[0], {}).get(value)
                        if given_at is not None and (not in_order or given_at <= n):
                            continue
                        wanted.setdefault(target, set()).add(value)
                        uses.append((event, f"{path}.{column.name}", column.name, value, target))
    found = _existing(session, wanted)
    missing = {target for _, _, _, value, target in uses if value not in found[target]}
    pending = _waiting_keys(session, missing) if waiting and missing else {}
    for event, path, _, value, target in uses:
        since = pending.get(target, {}).get(value)
        if value not in found[target] and (since is None or since > event.occurred_at):
            raise EventError(
                path, f"{value!r} is not in {target[0]}.{target[1]} (dangling reference)", event=event.label
            )


def _existing(session: Session, wanted: dict[tuple[str, str], set[Any]]) -> dict[tuple[str, str], set[Any]]:
    """Which of the ``wanted`` keys of each (table, key column) exist: one statement for the text
    keys of every table (a ``UNION ALL``, one round trip: an event names a few records of a few
    tables), one per other column and 500 keys."""
    found: dict[tuple[str, str], set[Any]] = {target: set() for target in wanted}
    text_parts = []
    for n, ((table, column), keys) in enumerate(sorted(wanted.items())):
        col = MODELS[table].__table__.c[column]
        for part in in_chunks(keys):
            if isinstance(col.type, String) and all(isinstance(k, str) for k in part):
                text_parts.append(
                    select(literal(n).label("target"), col.label("key")).where(one_of(session, col, part))
                )
            else:
                found[(table, column)].update(session.scalars(select(col).where(one_of(session, col, part))))
    targets = sorted(wanted)
    if text_parts:
        stmt = text_parts[0] if len(text_parts) == 1 else union_all(*text_parts)
        for target, key in session.execute(stmt).all():
            found[targets[target]].add(key)
    return found


def _waiting_keys(
    session: Session, targets: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[Any, dt.datetime]]:
    """The keys of ``targets`` (table, key column) that events waiting in the inbox create, each
    with the earliest occurred_at of such an event: a reference counts only to a record reported
    as existing no later than the referring event happened (the order the worker applies them in).

    Read only when a reference is not in the database (the rare case), one pass over the waiting
    events' records: the backlog the worker has not applied yet.
    """
    out: dict[tuple[str, str], dict[Any, dt.datetime]] = {t: {} for t in targets}
    rows = session.execute(
        select(EventInbox.occurred_at, EventInbox.records).where(EventInbox.status == "received")
    )
    for occurred_at, records in rows:
        if not isinstance(records, dict):
            continue
        at = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=dt.UTC)  # SQLite: UTC
        for (table, column), keys in out.items():
            for record in records.get(table) or ():
                if isinstance(record, dict) and record.get(column) is not None:
                    key = record[column]
                    keys[key] = min(keys.get(key, at), at)
    return out


def dangling_before(
    session: Session, parsed: list[tuple[int, Event]], position: int
) -> tuple[int, EventError] | None:
    """(position, error) of the first event before ``position`` whose reference dangles, or None.

    ``parsed``: (position, event) of the events of a batch that parse; their references are
    checked against the database and each other, as :func:`check_references` checks a batch, so
    that the first bad event of a batch is named in the batch's order (a dangling reference on an
    earlier event before a wrong type on a later one). Nothing is stored.
    """
    try:
        check_references(session, [e for _, e in parsed], waiting=True)
    except EventError as dangling:
        at = next((i for i, e in parsed if e.label == dangling.event), None)
        if at is not None and at < position:
            return at, dangling
    return None
