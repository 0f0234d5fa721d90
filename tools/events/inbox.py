"""The event inbox: events stored once per (source, event_id), then claimed in order by workers.

:func:`store_events` inserts valid events and ignores the ones already stored (a redelivery or a
retried request): ``ON CONFLICT DO NOTHING`` on the unique key, so two receivers storing the same
event at once never fail. :func:`claim_next` hands a worker the earliest received event (by
``occurred_at``, then arrival) of a source no other worker is applying: on PostgreSQL the source
is taken with a transaction-scoped advisory lock and the row with ``FOR UPDATE SKIP LOCKED``, so
several workers share the inbox, each event is applied once and the events of one source apply in
order; on SQLite the writer lock serialises workers. The claim lives as long as the caller's
transaction: a worker that dies mid-event leaves the event ``received`` for the next one.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tools.db import current_schema
from tools.events.validate import Event, check_references, parse_event
from tools.models import EventInbox

__all__ = [
    "claim_batch",
    "claim_next",
    "inbox_counts",
    "list_events",
    "mark_failed",
    "receive",
    "store_events",
    "stored_event",
]

_T = EventInbox.__table__


def store_events(session: Session, events: Iterable[Event], *, channel: str) -> tuple[int, int]:
    """Insert ``events``; return (stored, duplicates ignored). The caller commits."""
    now = dt.datetime.now(dt.UTC)
    rows, seen, repeats = [], set(), 0
    for e in events:
        if (e.source, e.event_id) in seen:
            repeats += 1  # the same event twice in one batch
            continue
        seen.add((e.source, e.event_id))
        rows.append(
            dict(
                source=e.source,
                event_id=e.event_id,
                type=e.type,
                occurred_at=e.occurred_at,
                records=e.as_json(),
                status="received",
                attempts=0,
                orders_retriaged=0,
                channel=channel,
                received_at=now,
            )
        )
    if not rows:
        return 0, repeats
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stored = 0
    for i in range(0, len(rows), 500):
        stmt = insert(_T).on_conflict_do_nothing(index_elements=["source", "event_id"]).returning(_T.c.id)
        stored += len(session.execute(stmt, rows[i : i + 500]).all())
    return stored, len(rows) - stored + repeats


def receive(session: Session, events: list[Event], *, channel: str) -> tuple[int, int]:
    """Check the events' references (in the database, the events, or events waiting in the inbox)
    and store them, all or none; return (stored, duplicates).

    Raises :class:`tools.events.EventError` naming the first dangling reference (nothing stored).
    The caller commits; once it has, the events are durable and the worker will apply them.
    """
    check_references(session, events, waiting=True)
    return store_events(session, events, channel=channel)


def stored_event(row: EventInbox) -> Event:
    """The typed event of an inbox row (its records read back through the same validation)."""
    return parse_event(
        {
            "event_id": row.event_id,
            "source": row.source,
            "type": row.type,
            "occurred_at": _aware(row.occurred_at).isoformat(),
            "records": row.records,
        }
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def _lock_key(schema: str, source: str) -> int:
    # Advisory locks are database-wide: the schema keeps two deployments (or test schemas) of one
    # database from holding each other's sources.
    return zlib.crc32(f"copilot.events:{schema}:{source}".encode()) - 2**31


def claim_next(session: Session) -> EventInbox | None:
    """The next event to apply, claimed for this transaction, or None when none is waiting."""
    batch = claim_batch(session, 1)
    return batch[0] if batch else None


def claim_batch(session: Session, limit: int) -> list[EventInbox]:
    """Up to ``limit`` waiting events, claimed for this transaction, in the order they must apply.

    Each is the event :func:`claim_next` would hand out next if the ones before it had been applied:
    on SQLite the earliest waiting events of every source (one ``UPDATE`` takes the writer lock and
    claims them); on PostgreSQL the earliest waiting events of one source no other worker holds
    (its advisory lock, the rows ``FOR UPDATE SKIP LOCKED``), so events of one source stay in order
    and another worker takes another source — the source whose earliest waiting event is the
    earliest first. Empty when none is waiting (or all are claimed).
    """
    if limit < 1:
        raise ValueError(f"a batch holds at least one event, got {limit}")
    received = _T.c.status == "received"
    order = (_T.c.occurred_at, _T.c.id)
    if session.get_bind().dialect.name != "postgresql":
        # One UPDATE picks and claims the rows, so the transaction holds SQLite's write lock from
        # its first statement: a second worker waits, then finds the events no longer received.
        first = select(_T.c.id).where(received).order_by(*order).limit(limit)
        return _claimed(session, first.scalar_subquery(), received)
    # the sources by their earliest waiting event: the one waiting longest goes first, so a busy
    # source (one that always has an event waiting) cannot keep the others' events waiting
    earliest = func.min(_T.c.occurred_at)
    sources = session.scalars(
        select(_T.c.source).where(received).group_by(_T.c.source).order_by(earliest, func.min(_T.c.id))
    ).all()
    schema = current_schema(session)
    for source in sources:
        if not session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(schema, source)))):
            continue  # another worker is applying this source's events
        oldest = (
            select(_T.c.id)
            .where(received, _T.c.source == source)
            .order_by(*order)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = _claimed(session, oldest.scalar_subquery())
        if rows:
            return rows
    return []


def _claimed(session: Session, ids: Any, *where: Any) -> list[EventInbox]:
    """Claim the rows of ``ids`` (a subquery picking them): one ``UPDATE … RETURNING`` counts the
    attempt and hands back the rows, in the order they apply."""
    stmt = (
        update(EventInbox)
        .where(_T.c.id.in_(ids), *where)
        .values(attempts=_T.c.attempts + 1)
        .returning(EventInbox)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(session.scalars(stmt), key=lambda row: (row.occurred_at, row.id))


def mark_failed(session: Session, inbox_id: int, reason: str) -> None:
    """Record why an event was refused at apply time (nothing of it was applied)."""
    session.execute(
        update(_T)
        .where(_T.c.id == inbox_id)
        .values(status="failed", error=reason[:2000], attempts=_T.c.attempts + 1)
    )


def list_events(session: Session, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(EventInbox).order_by(_T.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(_T.c.status == status)
    return [
        {
            "id": r.id,
            "source": r.source,
            "event_id": r.event_id,
            "type": r.type,
            "occurred_at": _aware(r.occurred_at).isoformat(),
            "received_at": _aware(r.received_at).isoformat(),
            "channel": r.channel,
            "status": r.status,
            "error": r.error,
            "orders_retriaged": r.orders_retriaged,
            "applied_at": r.applied_at and _aware(r.applied_at).isoformat(),
        }
        for r in session.scalars(stmt)
    ]


def inbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(_T.c.status, func.count()).group_by(_T.c.status))
    return {"received": 0, "applied": 0, "failed": 0} | {s: n for s, n in rows}
