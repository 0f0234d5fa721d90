"""Triage again the open orders a change can affect — not the whole book — and say what moved.

Used after every change that does not go through a whole pass of triage: the event worker's batch
(``agent.flow.worker``) and an executed action (``agent.governance.requests``: the records the
write changed, captured by :func:`tools.events.captured_changes`). The orders come from
:func:`tools.events.affected_orders`. They are triaged together
(:func:`agent.triage.service.record_batch`: for each the exceptions the one triage entry records,
with the contexts loaded once for all of them; no actions are planned): a new one is opened, one
that no longer holds is resolved, a changed one is updated in place. Recurrence reaches further:
whether an order shows ``RECURRING_ANOMALY`` depends on the (type, customer) and (type, SKU)
patterns of the orders dated up to ``window_days`` before it, so when an order's patterns change
the open orders dated in the window after it that hold the changed pattern themselves are
triaged too — only an order whose own base hits give a pattern can show it recurring (its evidence
lists the orders counted); with the recorded exceptions they are found from the rows, else every
open order of that customer or SKU in the window is taken (their own patterns do not change, so
this goes one step only).

**Recurrence from the recorded exceptions.** Counting an order's patterns by loading its
neighbours (the open orders of its customer and of its flagged SKUs in the window, with their whole
contexts, to run their base rules again) grows with the orders per customer and SKU: at 1M order
lines it was most of the time of an event. The exceptions table already holds every other order's
base hits — when it is known to be complete: a whole pass of :func:`agent.triage.service.triage_open_book`
with recording (``copilot demo``, ``copilot triage --all-open``) writes the ``exceptions.recorded``
row of ``dataset_meta`` (:func:`tools.dataset.mark_exceptions_recorded`) in its last transaction, and
from then on every change to the records comes through here — events and executed actions, each
triaging again what it reaches, which the storm test checks ends exactly as a triage from scratch.
Whatever loads records otherwise takes the row away: ``tools.demo.reset`` (``copilot seed
--reset``) empties ``dataset_meta``, ``tools.demo.generate`` needs it empty, and
``tools.fixtures.load_fixture`` deletes the row. The row names the policy it was recorded under
(its hash): after a change of thresholds or rules the rows say what the old policy detected, so
the row counts only for that policy until the next whole pass. With the row, :func:`agent.triage.service.record_batch`
counts recurrence from the open exceptions rows (:func:`agent.triage.detection.detect_recorded`:
two index ranges per batch, the batch's own orders by their fresh hits); without it, from the
neighbours, as before. Both give the same detections (``tests/test_recurrence_recorded.py``).
Not covered: records written to the database by hand or by another program while the row is
there — run ``copilot triage --all-open`` after such a load — and a whole pass racing the event
worker on PostgreSQL (the pass may record an order as it was before an event the worker has just
triaged it for; true of the exceptions the queues show as much as of the row).

On PostgreSQL each order is triaged under a transaction-scoped advisory lock (:func:`order_lock_key`),
so two workers never triage the same order at once: the first round's locks are taken in key
order; the second round (the recurrence followers) waits only for keys above those it holds and
tries the others (:func:`lock_orders`) — one held by another transaction rolls the batch back
(:class:`OrdersBusy`), and the next try takes it in its first round (``prelock``).
"""

from __future__ import annotations

import datetime as dt
import zlib
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from agent.policy import Policy
from agent.triage.service import record_batch
from tools.dataset import exceptions_recorded
from tools.db import current_schema, one_of
from tools.models import ExceptionRecord, Order, OrderLine
from tools.rules import ACTIVE_LINE_STATUSES, OPEN_ORDER_STATUSES, days_from, in_chunks

__all__ = ["OrderLockBusy", "OrdersBusy", "Retriage", "lock_orders", "order_lock_key", "retriage"]

_X, _O, _L = ExceptionRecord.__table__, Order.__table__, OrderLine.__table__
Pattern = tuple[str, str, str]  # (type, "customer" | "sku", value)


@dataclass
class Retriage:
    """What triaging again did: the orders triaged and the exceptions opened, changed, resolved."""

    orders: list[str] = field(default_factory=list)
    opened: int = 0
    changed: int = 0
    resolved: int = 0
    by_order: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # (opened, changed, resolved)

    def as_dict(self) -> dict[str, object]:
        return {
            "orders": len(self.orders),
            "opened": self.opened,
            "changed": self.changed,
            "resolved": self.resolved,
        }


def _patterns(rows: dict[tuple[str, str], tuple]) -> set[Pattern]:
    keys: set[Pattern] = set()
    for (kind, _), (_, customer, sku) in rows.items():
        if kind == "RECURRING_ANOMALY":
            continue
        if customer:
            keys.add((kind, "customer", customer))
        if sku:
            keys.add((kind, "sku", sku))
    return keys


ORDER_LOCK_BUCKETS = 1024


def order_lock_key(schema: str, order_id: str) -> int:
    """The PostgreSQL advisory-lock key under which an order of ``schema`` is triaged by a worker
    (advisory locks are database-wide: the schema keeps deployments sharing a database apart).

    Orders share :data:`ORDER_LOCK_BUCKETS` keys (an order always maps to the same one): a batch
    that re-triages thousands of orders holds at most that many locks until it commits, within
    PostgreSQL's lock table (``max_locks_per_transaction`` × connections), where one lock per
    order ran out of shared memory on a 1M-line book. Two orders of one bucket are not triaged at
    the same time either, which costs some parallelism, never correctness."""
    bucket = zlib.crc32(order_id.encode()) % ORDER_LOCK_BUCKETS
    return zlib.crc32(f"copilot.order:{schema}:{bucket}".encode()) - 2**31


class OrderLockBusy(Exception):
    """Why :class:`OrdersBusy` was raised (its ``orig``), with PostgreSQL's code for a lock not
    available (``55P03``): the executor runs a step again on it, as on a deadlock."""

    sqlstate = "55P03"


class OrdersBusy(OperationalError):
    """Another transaction holds the triage locks ``keys`` of orders this one reached after it had
    taken others (a second round: the recurrence followers). It must not wait for them — the
    other may be waiting for a lock this one holds — so it is rolled back; the next try takes
    ``keys`` in its first round (``prelock``), waiting there in key order until the other lets go."""

    def __init__(self, keys: list[int]) -> None:
        super().__init__(
            "pg_try_advisory_xact_lock",
            None,
            OrderLockBusy(f"another worker is triaging orders under {len(keys)} of the same lock(s)"),
        )
        self.keys = keys

    def __reduce__(self) -> tuple[Any, ...]:
        return (OrdersBusy, (self.keys,))


_HELD = "copilot.order_locks"  # session.info: (its transaction, the order-lock keys it took)


def lock_orders(session: Session, ids: Iterable[str], *, keys: Iterable[int] = ()) -> None:
    """PostgreSQL: hold the triage locks of ``ids`` (:func:`order_lock_key`) and the lock ``keys``
    until the transaction ends; on SQLite nothing (the writer lock already serialises whole
    transactions).

    A transaction only ever waits for a key above every key it holds, so no two wait for each
    other: the first round takes its keys in order (one statement feeds them to the lock in key
    order: one round trip, not one per key); a later one (the recurrence followers of what the
    first triaged) waits only for its keys above those it holds and tries the others — one taken
    by another transaction raises :class:`OrdersBusy`, which rolls this one back. Two workers whose
    second rounds crossed deadlocked instead (PostgreSQL broke it after a second). The keys held
    are remembered per transaction (a savepoint rolled back may have let go of some: the set is
    an upper bound, which only ever makes a round try a key it could have waited for)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    schema = current_schema(session)
    wanted = sorted({order_lock_key(schema, oid) for oid in ids} | set(keys))
    tx = session.get_transaction()
    mark = session.info.get(_HELD)
    held: set[int] = mark[1] if mark is not None and mark[0] is tx else set()
    top = max(held, default=None)
    early = [k for k in wanted if top is not None and k <= top]  # taken again at once when held
    if early:
        busy = session.scalars(
            text(
                "SELECT k FROM unnest(CAST(:keys AS bigint[])) AS t(k) WHERE NOT pg_try_advisory_xact_lock(k)"
            ),
            {"keys": early},
        ).all()
        if busy:
            raise OrdersBusy(sorted(busy))
    late = wanted[len(early) :]
    if late:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(CAST(:keys AS bigint[])) AS t(k) ORDER BY k) AS ordered"
            ),
            {"keys": late},
        )
    session.info[_HELD] = (tx, held | set(wanted))


def _followers(
    session: Session,
    changed: dict[str, set[Pattern]],
    window_days: int,
    *,
    recorded: bool,
    earlier: Mapping[str, Iterable[dt.date]] | None = None,
    known: Mapping[str, dt.date | None] | None = None,
) -> set[str]:
    """Open orders whose recurrence counts these orders' changed patterns: for each changed order
    and (type, customer|SKU) pattern, the open orders dated from its order_date to ``window_days``
    after that hold the pattern themselves — only an order whose own base hits give a pattern shows
    ``RECURRING_ANOMALY`` for it, and its evidence lists the orders counted. ``recorded``: the open
    exceptions rows are every open order's base hits (:func:`tools.dataset.exceptions_recorded`),
    so the holders are found from them (an index range per type and chunk of customers or SKUs);
    else every open order of that customer (or with an active line of that SKU) in the window.
    One query per kind and chunk of values over the span of all the changed orders' windows; each
    row is then kept only if it falls in the window of a changed order with that pattern.
    ``earlier``: the dates a redated order had before (its old window's orders counted it too).
    ``known``: the order dates of orders just triaged (the others are read)."""
    dates = {oid: day for oid, day in (known or {}).items() if oid in changed}
    for part in in_chunks(oid for oid in changed if oid not in dates):
        stmt = select(_O.c.order_id, _O.c.order_date).where(one_of(session, _O.c.order_id, part))
        dates.update(session.execute(stmt).all())
    days: dict[Pattern, set[dt.date]] = {}  # pattern -> the order dates whose window counts it
    for oid, keys in changed.items():
        starts = {d for d in (dates.get(oid), *(earlier or {}).get(oid, ())) if d is not None}
        for key in keys if starts else ():  # an order without a date counts for nobody
            days.setdefault(key, set()).update(starts)
    if not days:
        return set()
    span = dt.timedelta(days=window_days)
    lo = min(d for group in days.values() for d in group)
    hi = days_from(max(d for group in days.values() for d in group), window_days)
    window = _O.c.order_date.between(lo, hi)
    open_order = _O.c.status.in_(OPEN_ORDER_STATUSES)
    # the window starts of each pattern (recorded; else of each value), sorted: a row is kept when
    # one start is at most ``span`` before its date (a carrier's disruption brings thousands)
    ordered = {key: sorted(group) for key, group in days.items()}
    out: set[str] = set()
    for by in ("customer", "sku"):
        wanted = {key for key in days if key[1] == by}
        by_value: dict[str, set[dt.date]] = {}
        for kind, _, value in wanted:
            by_value.setdefault(value, set()).update(days[(kind, by, value)])
        starts_of = {value: sorted(group) for value, group in by_value.items()}
        for part in in_chunks(by_value):
            if recorded:
                column = _X.c.customer_id if by == "customer" else _X.c.sku
                stmt = (
                    select(_X.c.type, column.label("value"), _O.c.order_id, _O.c.order_date)
                    .join(_O, _O.c.order_id == _X.c.order_id)
                    .where(
                        one_of(session, column, part),
                        _X.c.type.in_(sorted({kind for kind, _, _ in wanted})),
                        _X.c.status == "open",
                        open_order,
                        window,
                    )
                )
            elif by == "customer":
                stmt = select(_O.c.customer_id.label("value"), _O.c.order_id, _O.c.order_date).where(
                    one_of(session, _O.c.customer_id, part), open_order, window
                )
            else:
                stmt = (
                    select(_L.c.sku.label("value"), _O.c.order_id, _O.c.order_date)
                    .join(_O, _O.c.order_id == _L.c.order_id)
                    .where(
                        one_of(session, _L.c.sku, part),
                        _L.c.status.in_(ACTIVE_LINE_STATUSES),
                        open_order,
                        window,
                    )
                )
            for row in session.execute(stmt.distinct()).all():
                since = ordered.get((row.type, by, row.value), []) if recorded else starts_of[row.value]
                if _in_a_window(since, row.order_date, span):
                    out.add(row.order_id)
    return out


def _in_a_window(starts: list[dt.date], day: dt.date, span: dt.timedelta) -> bool:
    """Whether ``day`` falls in ``[start, start + span]`` for one of the sorted ``starts``."""
    i = bisect_right(starts, day)
    return i > 0 and day - starts[i - 1] <= span


def _triage(
    session: Session,
    policy: Policy,
    ids: list[str],
    result: Retriage,
    redated: Collection[str] = (),
    scoped: Mapping[str, frozenset[str]] | None = None,
    prelock: Collection[int] = (),
) -> tuple[dict[str, set[Pattern]], dict[str, dt.date | None]]:
    """Triage and record ``ids`` under their locks (and the lock keys ``prelock``): the orders
    whose recurrence patterns changed (with those patterns), and the order date of each order
    triaged."""
    lock_orders(session, ids, keys=prelock)
    done = record_batch(session, ids, policy, scoped=scoped)
    result.orders.extend(done.orders)
    before, after = done.before, done.after
    changed: dict[str, set[Pattern]] = {}
    for oid in ids:
        old, new = before.get(oid, {}), after.get(oid, {})
        opened, resolved = len(new.keys() - old.keys()), len(old.keys() - new.keys())
        moved = sum(1 for k in new.keys() & old.keys() if new[k][0] != old[k][0])
        result.opened, result.changed, result.resolved = (
            result.opened + opened,
            result.changed + moved,
            result.resolved + resolved,
        )
        if opened or moved or resolved:
            result.by_order[oid] = (opened, moved, resolved)
        # a redated order counts (with its date) for other orders of its old and new windows,
        # whether or not its own patterns changed: all of them reach their followers
        diff = _patterns(old) | _patterns(new) if oid in redated else _patterns(old) ^ _patterns(new)
        if diff:
            changed[oid] = diff
    return changed, done.dates


def retriage(
    session: Session,
    policy: Policy,
    order_ids: Iterable[str],
    *,
    redated: Mapping[str, Iterable[dt.date]] | None = None,
    scoped: Mapping[str, frozenset[str]] | None = None,
    prelock: Collection[int] = (),
) -> Retriage:
    """Triage ``order_ids`` again and the orders whose recurrence they change; nothing committed.

    ``redated``: the orders whose order_date the changes moved, with the dates they had before
    (:func:`tools.events.redated_orders`): the orders of the old window and of the new one are
    followers too, though the order's own patterns did not change (their evidence lists it, dated).
    ``scoped``: those of ``order_ids`` whose changes only some base rules read, with those rules
    (:class:`tools.events.Reach`: a carrier's status, ``CARRIER_DISRUPTION``; a customer's balance or
    credit, ``CREDIT_HOLD``).
    ``prelock``: order-lock keys to take with the first round's (:class:`OrdersBusy` of an earlier
    try: its second round found them held, this one waits for them in key order before it starts).

    With the recorded exceptions, such orders and the recurrence followers (whose own records did
    not change at all) have only those rules run again (:func:`agent.triage.service.record_batch`,
    ``scoped``): a carrier's disruption reaches thousands of open orders, which need their shipments
    read, not their lines, stock and contracts."""
    result = Retriage()
    redated = {oid: set(days) for oid, days in (redated or {}).items()}
    ids = sorted(set(order_ids) | set(redated))
    if not ids:
        return result
    narrow = {oid: rules for oid, rules in (scoped or {}).items() if oid not in redated}
    changed, dates = _triage(session, policy, ids, result, redated, narrow, prelock)
    if changed:
        window_days = policy.thresholds.recurrence.window_days
        recorded = exceptions_recorded(session, policy.policy_hash)
        found = _followers(session, changed, window_days, recorded=recorded, earlier=redated, known=dates)
        more = sorted(found - set(ids))
        if more:
            _triage(session, policy, more, result, scoped=dict.fromkeys(more, frozenset()))
    return result
