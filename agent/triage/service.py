"""Triage: detect an order's exceptions, plan the next-best actions, record the exceptions.

:func:`triage_orders` is the one entry every caller uses for orders named by id — the CLI, the
API and the copilot graph (through ``agent.copilot.nodes``), governance before and after an
action, chat (read-only) and the evals; :func:`triage_open_book` is its batch form for the whole
book. An unknown id gives ``{"order_id": id, "error": "order not found"}`` (:data:`ORDER_NOT_FOUND`)
in its place and the others are still triaged.

The result is a plain dictionary in the shape `copilot triage --json` prints:
``{"order_id", "exceptions": [{"type", "evidence": [...]}], "recommendation": {...} | null,
"alternatives": [...]}`` plus the whole plan and the facts the records lack. Recording upserts
the exceptions table so that aging and recurrence can be computed: an unchanged order changes
nothing; an exception no longer found is resolved; one found again is reopened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from agent.policy import Policy
from agent.triage.detection import (
    RULES,
    Detected,
    OrderContext,
    detect,
    detect_many,
    detect_recorded,
    iter_open_book,
    load_context,
    load_contexts,
    load_contexts_with_neighbours,
    load_light_contexts,
    rule_hits,
)
from agent.triage.plan import Plan, load_planning_facts, load_planning_facts_many, plan_order
from tools.dataset import exceptions_recorded, mark_exceptions_recorded, open_order_ids
from tools.db import one_of, refresh_statistics
from tools.errors import OrderNotFound
from tools.models import ExceptionRecord
from tools.rules import in_chunks, is_closed
from tools.sites import order_visible, visible_orders

__all__ = [
    "ORDER_NOT_FOUND",
    "OpenRows",
    "OrderNotFound",
    "Recorded",
    "record_batch",
    "record_exceptions",
    "triage_batch",
    "triage_open_book",
    "triage_order",
    "triage_orders",
    "triage_result",
]

# Core inserts: one statement for rows of any shape (the ORM groups them by the keys given)
_XT = ExceptionRecord.__table__

ORDER_NOT_FOUND = "order not found"  # the error of an unknown id in a list of results


def _evidence_hash(d: Detected, memo: dict[int, str] | None = None) -> str:
    """The digest of a hit's evidence and facts; ``memo``: digests already taken in this batch, by
    the hit's identity (one recurrence finding is shared by every order of its pattern and date:
    :func:`agent.triage.detection.detect_recorded`; the caller keeps the hits alive meanwhile)."""
    if memo is not None and (known := memo.get(id(d))) is not None:
        return known
    body = json.dumps({"evidence": list(d.evidence), "facts": dict(d.facts)}, sort_keys=True, default=str)
    digest = hashlib.sha256(body.encode()).hexdigest()
    if memo is not None:
        memo[id(d)] = digest
    return digest


class _Row:
    """An exceptions row read with Core for a batch (:func:`_batch_rows`), with the attributes
    :func:`record_exceptions` reads and sets; what it sets is collected and written back by
    :func:`_write_rows` — one ``UPDATE`` statement per set of changed columns for the whole batch
    instead of the ORM's unit of work (a carrier's disruption changes thousands of rows)."""

    id: int
    _dirty: set[str]

    def __init__(self, values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        self.__dict__.update(values)
        self.__dict__["_dirty"] = set()

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get(name, _UNREAD) != value:
            self._dirty.add(name)
        self.__dict__[name] = value


_UNREAD = object()  # a column _batch_rows does not read (a value set on it is always written)
# every column but the evidence (the largest, JSON to decode; record_exceptions only sets it)
_ROW_COLUMNS = [c for c in _XT.c if c.name != "evidence"]


def _batch_rows(session: Session, order_ids: Iterable[str]) -> dict[str, list[_Row]]:
    """:func:`_exception_rows` as :class:`_Row` objects (Core, no ORM instances)."""
    out: dict[str, list[_Row]] = {}
    names = [c.name for c in _ROW_COLUMNS]
    at = names.index("order_id")
    for part in in_chunks(order_ids):
        stmt = select(*_ROW_COLUMNS).where(one_of(session, _XT.c.order_id, part))
        for values in session.execute(stmt).all():
            out.setdefault(values[at], []).append(_Row(zip(names, values, strict=True)))
    return out


def _write_rows(session: Session, rows: Iterable[_Row]) -> None:
    """Write back what was set on ``rows``: one executemany ``UPDATE`` per set of changed columns.
    Exceptions instances the session holds are expired (the ORM did not see these writes)."""
    groups: dict[tuple[str, ...], list[_Row]] = {}
    for row in rows:
        if row._dirty:
            groups.setdefault(tuple(sorted(row._dirty)), []).append(row)
    dialect = session.get_bind().dialect
    for names, group in groups.items():
        if dialect.name == "postgresql":
            session.execute(*_bulk_update(dialect, names, group))
        else:
            stmt = (
                update(_XT)
                .where(_XT.c.id == bindparam("row_id"))
                .values({n: bindparam(f"new_{n}", type_=_XT.c[n].type) for n in names})
            )
            session.execute(
                stmt, [{"row_id": r.id, **{f"new_{n}": getattr(r, n) for n in names}} for r in group]
            )
        for row in group:
            row._dirty.clear()
    if groups:
        for obj in list(session.identity_map.values()):
            if isinstance(obj, ExceptionRecord):
                session.expire(obj)


def _bulk_update(dialect: Any, names: tuple[str, ...], group: list[_Row]) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: one ``UPDATE ... FROM jsonb_to_recordset(rows)`` setting ``names`` on every row
    of ``group`` (one statement and one round trip, not one statement a row)."""
    quote = dialect.identifier_preparer.quote
    columns = ["id", *names]
    source, params = _recordset(dialect, columns, ([getattr(r, n) for n in columns] for r in group))
    sets = ", ".join(f"{quote(n)} = v.{quote(n)}" for n in names)
    sql = f"UPDATE {quote(_XT.name)} SET {sets} FROM {source} WHERE {quote(_XT.name)}.id = v.id"
    return text(sql), params


def _recordset(dialect: Any, columns: list[str], rows: Iterable[list[Any]]) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: rows of exceptions ``columns`` as one ``jsonb_to_recordset`` of one JSON
    parameter (``v``, each column typed as the table's) and its parameter. One JSON text encoded
    in C, where an array per column had the driver quote every value (every evidence list's
    JSON) in Python: a carrier's disruption writes thousands of rows."""
    quote = dialect.identifier_preparer.quote
    spec = ", ".join(f"{quote(n)} {_XT.c[n].type.compile(dialect=dialect)}" for n in columns)
    body = json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=_json_value)
    return f"jsonb_to_recordset(CAST(:rows AS JSONB)) AS v({spec})", {"rows": body}


def _json_value(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):  # a datetime with its zone, as PostgreSQL reads it
        return value.isoformat()
    raise TypeError(f"an exceptions column holds {type(value).__name__}")


def _exception_rows(session: Session, order_ids: Iterable[str]) -> dict[str, list[ExceptionRecord]]:
    """The exceptions rows of many orders, by order id (one query per 500 orders)."""
    out: dict[str, list[ExceptionRecord]] = {}
    for part in in_chunks(order_ids):
        for row in session.scalars(
            select(ExceptionRecord).where(one_of(session, ExceptionRecord.order_id, part))
        ).all():
            out.setdefault(row.order_id, []).append(row)
    return out


def record_exceptions(
    session: Session,
    ctx: OrderContext,
    found: list[Detected],
    *,
    now: dt.datetime | None = None,
    rows: Iterable[Any] | None = None,
    pending: list[dict[str, Any]] | None = None,
    types: Collection[str] | None = None,
    digests: dict[int, str] | None = None,
) -> int:
    """Upsert ``found`` for the order; resolve what is no longer found. Returns rows written.

    ``rows``: the order's exceptions rows when the caller has loaded them (a batch: ORM instances,
    or :class:`_Row` objects the caller writes back); else read here.
    ``pending``: first sightings are appended there for the caller to insert with a batch's others
    (:func:`_insert_new`, one statement for the batch); else inserted here.
    ``types``: only the exceptions of these types were detected again (``found`` is read for them
    alone); the order's rows of other types are left as they are.
    ``digests``: a batch's memo of evidence digests (:func:`_evidence_hash`).
    """
    now = now or dt.datetime.now(dt.UTC)
    order = ctx.order
    if rows is None:
        rows = session.scalars(select(ExceptionRecord).where(ExceptionRecord.order_id == order.order_id))
    if types is not None:
        rows = [r for r in rows if r.type in types]
        found = [d for d in found if d.type in types]
    existing = {(r.type, r.instance_key): r for r in rows}
    written, new = 0, []
    for d in found:
        digest = _evidence_hash(d, digests)
        row = existing.pop((d.type, d.instance_key), None)
        if row is None:
            new.append(
                dict(
                    order_id=order.order_id,
                    type=d.type,
                    instance_key=d.instance_key,
                    line_no=d.line_no,
                    shipment_id=d.shipment_id,
                    sku=d.sku,
                    customer_id=order.customer_id,
                    warehouse_id=d.warehouse_id,
                    evidence=list(d.evidence),
                    evidence_hash=digest,
                    status="open",
                    first_seen_at=now,
                    detected_at=now,
                )
            )
            written += 1
            continue
        moved = _describe(row, order.customer_id, d)
        if row.status != "open" or row.evidence_hash != digest:
            if row.status != "open":  # found again after it was resolved: a new episode
                row.first_seen_at, row.resolved_at = now, None
                # a new episode starts unclaimed and unescalated in the queue the policy routes it
                # to (where an earlier episode was reassigned or escalated to is that one's story)
                row.claimed_by = row.claimed_at = row.escalated_to = row.escalated_at = None
                row.assigned_role = None
            row.status, row.evidence, row.evidence_hash, row.detected_at = (
                "open",
                list(d.evidence),
                digest,
                now,
            )
            written += 1
        elif moved:
            written += 1
    for row in existing.values():
        if row.status == "open":
            row.status, row.resolved_at = "resolved", now
            written += 1
    if pending is not None:
        pending.extend(new)
    elif new:
        _insert_new(session, new)
    return written


def _describe(row: ExceptionRecord, customer_id: str | None, d: Detected) -> bool:
    """Bring the row's denormalised columns up to date with the order and the hit (an order's
    customer or a line's SKU may have changed since it was first recorded; recurrence is counted by
    them: :func:`agent.triage.detection.detect_recorded`). Whether any changed."""
    now = {
        "customer_id": customer_id,
        "sku": d.sku,
        "line_no": d.line_no,
        "shipment_id": d.shipment_id,
        "warehouse_id": d.warehouse_id,
    }
    stale = {k: v for k, v in now.items() if getattr(row, k) != v}
    for k, v in stale.items():
        setattr(row, k, v)
    return bool(stale)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert first sightings; one that another transaction recorded meanwhile is left as it is.

    Two requests triaging the same order at once (the API serves them side by side) both find no
    row and both insert: ``ON CONFLICT DO NOTHING`` on the (order, type, instance) key makes the
    second a no-op instead of an integrity error that would fail the whole triage.
    """
    bound = session.get_bind().dialect
    dialect = bound.name
    key = ["order_id", "type", "instance_key"]
    names = list(rows[0]) if rows else []
    if dialect == "postgresql" and len(rows) > 1 and all(list(r) == names for r in rows):
        # one statement for the batch (a carrier's disruption opens thousands): ``INSERT … SELECT``
        # from one JSON parameter (:func:`_recordset`), not one INSERT a row
        quote = bound.identifier_preparer.quote
        source, params = _recordset(bound, names, ([r[n] for n in names] for r in rows))
        sql = (
            f"INSERT INTO {quote(_XT.name)} ({', '.join(map(quote, names))}) SELECT * FROM {source} "
            f"ON CONFLICT ({', '.join(map(quote, key))}) DO NOTHING"
        )
        session.execute(text(sql), params)
    elif dialect == "postgresql":
        session.execute(postgresql.insert(_XT).on_conflict_do_nothing(index_elements=key), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(_XT).on_conflict_do_nothing(index_elements=key), rows)
    else:  # pragma: no cover - the two supported backends are above
        session.add_all(ExceptionRecord(**r) for r in rows)


def triage_result(ctx: OrderContext, found: list[Detected], plan: Plan) -> dict[str, Any]:
    rec = plan.recommendation
    return {
        "order_id": ctx.order.order_id,
        "status": ctx.order.status,
        "exceptions": [
            {
                "type": i.exception.type,
                "instance": i.exception.instance_key,
                "line_no": i.exception.line_no,
                "shipment_id": i.exception.shipment_id,
                "sku": i.exception.sku,
                "warehouse_id": i.exception.warehouse_id,
                "evidence": list(i.exception.evidence),
                "facts": dict(i.exception.facts),
            }
            for i in plan.instances
        ],
        "recommendation": rec.as_dict() if rec else None,
        "alternatives": [o.as_dict() for o in plan.alternatives],
        "plan": [o.as_dict() for o in plan.actions],
        "options": [
            {
                "type": i.exception.type,
                "instance": i.exception.instance_key,
                "candidates": [
                    {
                        "action": o.action,
                        "feasible": o.feasible,
                        "reason": o.reason,
                        **({"params": dict(o.params)} if o.feasible else {}),
                    }
                    for o in i.options
                ],
            }
            for i in plan.instances
        ],
        "missing": list(ctx.missing),
    }


def triage_order(session: Session, order_id: str, policy: Policy, *, record: bool = True) -> dict[str, Any]:
    """Triage one order; raises :class:`OrderNotFound` (also for an order outside the session's
    sites: ``tools.sites``). With ``record``, upserts its exceptions."""
    if not order_visible(session, order_id):
        raise OrderNotFound(order_id)
    ctx = load_context(session, order_id, policy)
    found = detect(ctx, policy)
    plan = plan_order(ctx, found, load_planning_facts(session, ctx), policy)
    if record:
        record_exceptions(session, ctx, found)
    return triage_result(ctx, found, plan)


def triage_orders(
    session: Session,
    order_ids: Iterable[str],
    policy: Policy,
    *,
    record: bool = True,
    commit_every: int | None = None,
) -> list[dict[str, Any]]:
    """Triage each order named (ids stripped), in the order given: one result each, an unknown id
    as ``{"order_id": id, "error": ORDER_NOT_FOUND}``. With ``record``, upserts the exceptions in
    the caller's transaction; ``commit_every`` N commits it after every N orders (a long list
    then holds no write lock for its whole run)."""
    results: list[dict[str, Any]] = []
    for n, order_id in enumerate((str(o).strip() for o in order_ids), 1):
        try:
            results.append(triage_order(session, order_id, policy, record=record))
        except OrderNotFound:
            results.append({"order_id": order_id, "error": ORDER_NOT_FOUND})
        if commit_every and n % commit_every == 0:
            session.commit()
    return results


def triage_batch(session: Session, order_ids: Iterable[str], policy: Policy) -> list[dict[str, Any]]:
    """Triage and record many orders at once: for each known id (in the session's sites) the same
    result and the same recorded exceptions as :func:`triage_order`, in id order; unknown ids are
    left out. Contexts, planning facts and exceptions rows are loaded once for the batch
    (:func:`agent.triage.detection.load_contexts_with_neighbours`), so the number of queries does
    not grow with the orders — how the event worker triages what a batch of events affects.
    Once a whole pass has recorded the book (:func:`tools.dataset.exceptions_recorded`), recurrence
    is counted from the other orders' recorded exceptions instead of their loaded contexts
    (:func:`agent.triage.detection.detect_recorded`; why that is safe: ``agent.triage.retriage``).
    Nothing is committed: the caller owns the transaction.
    """
    ids = visible_orders(session, (str(o).strip() for o in order_ids))
    contexts, found, _ = _detect_batch(session, ids, policy)
    facts = load_planning_facts_many(session, contexts.values())
    _record_batch(session, contexts, found)
    return [
        triage_result(contexts[oid], found[oid], plan_order(contexts[oid], found[oid], facts[oid], policy))
        for oid in sorted(contexts)
    ]


# An order's open exceptions: (type, instance) -> (evidence hash, customer, SKU)
OpenRows = dict[str, dict[tuple[str, str], tuple[str | None, str | None, str | None]]]


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_batch` did: the orders triaged (known, in the session's sites; sorted)
    and their open exceptions before and after, by order (orders without one left out)."""

    orders: list[str]
    before: OpenRows
    after: OpenRows
    dates: dict[str, dt.date | None]  # each order's order_date, as triaged


def _open_of(rows: Mapping[str, Iterable[Any]], new: Iterable[Mapping[str, Any]] = ()) -> OpenRows:
    """The open exceptions of the rows read (as set by recording, when it has run) and of the
    first sightings inserted."""
    out: OpenRows = {}
    for oid, group in rows.items():
        for r in group:
            if r.status == "open":
                out.setdefault(oid, {})[(r.type, r.instance_key)] = (r.evidence_hash, r.customer_id, r.sku)
    for r in new:
        key = (r["type"], r["instance_key"])
        out.setdefault(r["order_id"], {})[key] = (r["evidence_hash"], r["customer_id"], r["sku"])
    return out


def record_batch(
    session: Session,
    order_ids: Iterable[str],
    policy: Policy,
    *,
    scoped: Mapping[str, frozenset[str]] | None = None,
) -> Recorded:
    """Detect and record many orders' exceptions as :func:`triage_batch` does, without planning
    their actions: the ids triaged (known, in the session's sites), sorted, and their open
    exceptions before and after — the rows this reads and writes anyway, not read again. What the
    event worker and an executed action's re-triage need — what is recorded is the exceptions; a
    recommendation is planned again whenever it is read (the queue, the API).

    ``scoped``: orders whose records changed only where the named base rules read them (a
    carrier's status: ``CARRIER_DISRUPTION``; a customer's balance or credit: ``CREDIT_HOLD``; a
    recurrence follower: none) — with the recorded exceptions (:func:`tools.dataset.exceptions_recorded`)
    only those rules run again on them, on contexts holding what those rules read
    (:func:`agent.triage.detection.load_light_contexts`); their other base hits are their open rows (what
    the same rules found on the same records), and their recurrence is counted as every order's.
    Only the exceptions of those types and ``RECURRING_ANOMALY`` are recorded for them. Without the
    recorded exceptions they are triaged whole, as the others."""
    ids = visible_orders(session, (str(o).strip() for o in order_ids))
    rows = _batch_rows(session, ids)
    before = _open_of(rows)
    contexts, found, only = _detect_batch(session, ids, policy, rows=rows, scoped=scoped or {})
    new = _record_batch(session, contexts, found, rows=rows, only=only)
    _write_rows(session, (r for group in rows.values() for r in group))
    # after: the rows as recording set them, and the first sightings (a first sighting another
    # transaction inserted meanwhile is kept as it is, ``_insert_new``: the after is then this
    # triage's, whose evidence the next triage of the order writes)
    dates = {oid: ctx.order.order_date for oid, ctx in contexts.items()}
    return Recorded(sorted(contexts), before, _open_of(rows, new), dates)


def _detect_batch(
    session: Session,
    ids: Collection[str],
    policy: Policy,
    *,
    rows: Mapping[str, list[Any]] | None = None,
    scoped: Mapping[str, frozenset[str]] | None = None,
) -> tuple[dict[str, OrderContext], dict[str, list[Detected]], dict[str, frozenset[str]]]:
    """Contexts and detections of ``ids`` (visible ones), and the types recorded for each scoped
    order (:func:`record_batch`)."""
    if not exceptions_recorded(session, policy.policy_hash):
        contexts = load_contexts_with_neighbours(session, ids, policy)
        return contexts, detect_many(contexts, policy), {}
    # recurrence from the other orders' recorded rows
    scoped = scoped or {}
    narrow = {oid: frozenset(scoped[oid]) for oid in ids if oid in scoped}
    contexts = load_contexts(session, [oid for oid in ids if oid not in narrow])
    if not narrow:
        return contexts, detect_recorded(session, contexts, policy), {}
    rows = rows if rows is not None else _exception_rows(session, narrow)
    light = load_light_contexts(session, narrow)
    base = {}
    for oid, ctx in light.items():
        rescan = narrow[oid]
        kept = [
            _as_hit(r)
            for r in rows.get(oid, ())
            if r.status == "open" and r.type in RULES and r.type not in rescan
        ]
        base[oid] = rule_hits(ctx, policy, sorted(rescan)) + kept if not is_closed(ctx.order.status) else []
    contexts |= light
    only = {oid: narrow[oid] | {"RECURRING_ANOMALY"} for oid in light}
    return contexts, detect_recorded(session, contexts, policy, base=base), only


def _as_hit(row: Any) -> Detected:
    """A recorded open exception as the hit that recorded it, for counting recurrence (its type,
    SKU and order are what count; it is not recorded again, so its evidence is not read)."""
    return Detected(
        type=row.type,
        instance_key=row.instance_key,
        evidence=(),
        line_no=row.line_no,
        shipment_id=row.shipment_id,
        sku=row.sku,
        warehouse_id=row.warehouse_id,
    )


def _record_batch(
    session: Session,
    contexts: dict[str, OrderContext],
    found: dict[str, list[Detected]],
    *,
    rows: Mapping[str, list[Any]] | None = None,
    only: Mapping[str, frozenset[str]] | None = None,
) -> list[dict[str, Any]]:
    """Record each order's exceptions (rows loaded once, first sightings inserted in one statement);
    ``only``: the types recorded for an order detected in part (:func:`record_batch`). The first
    sightings inserted."""
    rows = rows if rows is not None else _exception_rows(session, contexts)
    now = dt.datetime.now(dt.UTC)
    pending: list[dict[str, Any]] = []
    digests: dict[int, str] = {}  # the hits are held by ``found`` until this returns
    for oid in sorted(contexts):
        record_exceptions(
            session,
            contexts[oid],
            found[oid],
            now=now,
            rows=rows.get(oid, ()),
            pending=pending,
            types=(only or {}).get(oid),
            digests=digests,
        )
    if pending:
        _insert_new(session, pending)
    return pending


def triage_open_book(
    session: Session, policy: Policy, *, limit: int | None = None, record: bool = True, chunk: int = 1_000
) -> Iterator[dict[str, Any]]:
    """Triage every open, held or released order: the same result (and the same recorded
    exceptions) as :func:`triage_order` on each, without its per-order queries.

    The book is read once in batches of about ``chunk`` orders (:func:`agent.triage.detection.iter_open_book`:
    contexts loaded once, recurrence counted from an index); planning facts and existing exceptions
    rows are loaded once per batch. Results come batch by batch in (order_date, order_id) order;
    sort by ``order_id`` for the order of :func:`tools.dataset.open_order_ids`. With ``limit``, the
    first ``limit`` open-book order ids (sorted) are triaged; recurrence still counts the whole
    book. Nothing is committed: the caller owns the transaction. A whole pass that records (no
    ``limit``, ``record``) ends by marking the book recorded (:func:`tools.dataset.mark_exceptions_recorded`,
    in the caller's transaction): the event worker then counts recurrence from the rows; on
    PostgreSQL it also refreshes the exceptions table's planner statistics (:func:`tools.db.refresh_statistics`).
    """
    only = open_order_ids(session, limit) if limit is not None else None
    started = dt.datetime.now(dt.UTC)
    for batch in iter_open_book(session, policy, chunk=chunk, only=only):
        contexts = [ctx for ctx, _ in batch]
        facts = load_planning_facts_many(session, contexts)
        rows = _exception_rows(session, facts) if record else {}
        now = dt.datetime.now(dt.UTC)
        for ctx, found in batch:
            oid = ctx.order.order_id
            plan = plan_order(ctx, found, facts[oid], policy)
            if record:
                record_exceptions(session, ctx, found, now=now, rows=rows.get(oid, ()))
            yield triage_result(ctx, found, plan)
    if record and only is None:  # the whole book recorded: the worker may count recurrence from it
        mark_exceptions_recorded(session, started, policy_hash=policy.policy_hash)
        # The pass opens the book's exceptions wholesale — thousands of open rows beside a history
        # of resolved ones, under the 10 % of the table autovacuum waits for — and the worker's
        # recurrence lookups range over the open rows: with statistics from before (no open row)
        # PostgreSQL scanned every open exception for each lookup (2.2 ms instead of 0.5 at 1M).
        refresh_statistics(session, _XT.name)
