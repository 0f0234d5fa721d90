"""The event worker: apply each stored event once, in order per source, then triage what it affects.

One transaction per batch of events (at most :data:`BATCH_EVENTS`, the ones waiting — a worker that
keeps up applies them one or a few at a time): the claim (:func:`tools.events.claim_batch`), each
event's records upserted in turn, the orders any of them affects triaged again once
(:func:`agent.triage.retriage.retriage`), the inbox rows marked ``applied`` and one audit event per
event all commit together, or nothing does — a worker killed mid-batch leaves its events
``received`` and another worker (or the same after a restart) applies them. The events apply one
after the other inside one savepoint (their references checked in order first, their records read
together); when one is refused — its references dangle at apply time, or the database refuses it
(a CHECK constraint) — that savepoint is rolled back and each applies inside its own: the refused
one is marked ``failed`` with the reason and applies nothing, and the others of the batch still
apply. A transient database error (a lock timeout, a deadlock between two workers)
rolls the batch back and leaves its events for the next pass.

Batching changes no outcome: the events apply in the same order, and triaging an order once after
all of them finds what triaging it after each would have left at the end. An order's exception
changes (opened, changed, resolved) are counted on the last event of the batch that reaches it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agent.flow.work import escalate_breached
from agent.governance.audit import EVENT_SOURCE_APPLIED, EVENT_SOURCE_FAILED, AuditEntry, append_events
from agent.policy import Policy
from agent.triage.retriage import OrdersBusy, retriage
from tools.events import (
    Change,
    Event,
    EventError,
    apply_event,
    check_references,
    claim_batch,
    preload,
    reach_of_events,
    redated_orders,
    stored_event,
)

__all__ = [
    "BATCH_EVENTS",
    "Applied",
    "BackgroundWorker",
    "Batches",
    "apply_batch",
    "apply_next",
    "drain",
    "run_worker",
    "sweep",
    "writer_pause",
]

log = logging.getLogger(__name__)

# Events per transaction at most. Larger batches share more of the re-triage (orders reached by
# several events are triaged once) but hold the writer longer: on a small book 200 events take well
# under a second, on a 1M-line book 8-20 s, so on SQLite :func:`drain` sizes each batch by time.
BATCH_EVENTS = 200


@dataclass(frozen=True)
class Applied:
    """The outcome of one event: applied (with what its re-triage did) or failed (with the reason)."""

    inbox_id: int
    label: str
    status: str
    error: str | None = None
    orders: int = 0
    opened: int = 0
    changed: int = 0
    resolved: int = 0


@dataclass(frozen=True)
class _Step:
    """One applied event of a batch: its records changed, and the orders its changes reach."""

    inbox_id: int
    event: Event
    changes: list[Change]
    reached: list[str]  # filled once the whole batch is applied


def _reason(exc: Exception) -> str:
    if isinstance(exc, EventError):
        return f"{exc.path}: {exc.message}"
    return "the database refused it: " + str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def apply_batch(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    limit: int = BATCH_EVENTS,
    prelock: Collection[int] = (),
) -> list[Applied]:
    """Apply up to ``limit`` waiting events in one transaction; their outcomes in apply order
    (empty when the inbox has none waiting, or the others are claimed). ``prelock``: order-lock
    keys the re-triage takes first (:class:`Batches`). On PostgreSQL beside other workers it may
    raise :class:`agent.triage.retriage.OrdersBusy` (rolled back: nothing of the batch applied)."""
    with factory() as session:
        rows = claim_batch(session, limit)
        if not rows:
            session.rollback()
            return []
        failed: dict[int, str] = {}
        labels = {row.id: (f"{row.source}/{row.event_id}", row.source) for row in rows}
        applied = _apply_together(session, rows)
        if applied is None:  # one of them is refused: each in its own savepoint, to know which
            applied = []
            for row in rows:
                try:
                    with session.begin_nested():  # a refused event rolls back alone
                        event = stored_event(row)
                        check_references(session, [event])
                        changes = apply_event(session, event)
                except OperationalError:
                    session.rollback()
                    raise  # transient (locked, deadlock, connection): the batch stays received
                except (EventError, DBAPIError) as exc:
                    failed[row.id] = _reason(exc)
                    continue
                applied.append(_Step(row.id, event, changes, []))
        try:
            reach = reach_of_events(session, [s.changes for s in applied])
            for step, reached in zip(applied, reach.orders, strict=True):
                step.reached.extend(sorted(reached))
            done = retriage(
                session,
                policy,
                (o for step in applied for o in step.reached),
                redated=redated_orders(c for step in applied for c in step.changes),
                scoped=reach.scoped,
                prelock=prelock,
            )
        except OperationalError:
            session.rollback()
            raise
        # each order's exception changes go to the last event that reached it; the recurrence
        # followers (reached by none of them) to the batch's last applied event
        owner: dict[str, int] = {}
        for step in applied:
            owner.update(dict.fromkeys(step.reached, step.inbox_id))
        counts: dict[int, list[int]] = {step.inbox_id: [0, 0, 0, 0] for step in applied}
        for oid in done.orders:
            target = owner.get(oid, applied[-1].inbox_id if applied else None)
            if target is None:
                continue
            tally = counts[target]
            tally[0] += 1
            for i, n in enumerate(done.by_order.get(oid, (0, 0, 0)), 1):
                tally[i] += n
        now = dt.datetime.now(dt.UTC)
        by_id = {row.id: row for row in rows}
        audit: list[AuditEntry] = []
        for step in applied:
            row, event = by_id[step.inbox_id], step.event
            label, source = labels[step.inbox_id]
            orders, opened, moved, resolved = counts[step.inbox_id]
            row.status, row.applied_at, row.error, row.orders_retriaged = "applied", now, None, orders
            entry = AuditEntry(
                EVENT_SOURCE_APPLIED,
                actor=f"source:{source}",
                payload={
                    "event": label,
                    "type": event.type,
                    "occurred_at": event.occurred_at.isoformat(),
                    "records": {t: len(r) for t, r in event.records.items()},
                    "records_changed": len(step.changes),
                    "orders": orders,
                    "opened": opened,
                    "changed": moved,
                    "resolved": resolved,
                    "order_ids": step.reached[:50],
                    "batch_events": len(rows),
                },
            )
            audit.append(entry)
        for inbox_id, reason in failed.items():
            label, source = labels[inbox_id]
            by_id[inbox_id].status, by_id[inbox_id].error = "failed", reason[:2000]  # claimed: one attempt
            audit.append(
                AuditEntry(
                    EVENT_SOURCE_FAILED, actor=f"source:{source}", payload={"event": label, "reason": reason}
                )
            )
        append_events(session, audit)  # one event each, in this order, appended together
        session.commit()
    out = []
    for row_id in (row.id for row in rows):
        label = labels[row_id][0]
        if row_id in failed:
            out.append(Applied(row_id, label, "failed", error=failed[row_id]))
        else:
            orders, opened, moved, resolved = counts[row_id]
            out.append(
                Applied(
                    row_id, label, "applied", orders=orders, opened=opened, changed=moved, resolved=resolved
                )
            )
    return out


def _apply_together(session: Session, rows: list) -> list[_Step] | None:
    """Apply the claimed events one after the other in one savepoint — their references checked
    in order before any applies, their records read in one query per table, flushed once — or
    None, with nothing of them applied, when one is refused (the caller then applies each in its
    own savepoint to tell which). What each applies is what applying it alone would."""
    try:
        with session.begin_nested():
            events = [stored_event(row) for row in rows]
            check_references(session, events, in_order=True)
            records = preload(session, events)
            steps = [
                _Step(row.id, event, apply_event(session, event, flush=False, records=records), [])
                for row, event in zip(rows, events, strict=True)
            ]
            session.flush()
            return steps
    except OperationalError:
        session.rollback()
        raise  # transient (locked, deadlock, connection): the batch stays received
    except (EventError, DBAPIError):
        return None


class Batches:
    """A worker's batches one after the other (:func:`apply_batch`), with what a refused try leaves
    the next: when another worker held orders a batch reached in its second round (the recurrence
    followers: :class:`agent.triage.retriage.OrdersBusy`, rolled back, its events still waiting),
    the next try takes those order locks in its first round, waiting in key order until that worker
    lets go — so it cannot be refused for them again. :func:`drain`'s loop, and any loop applying
    batches beside other workers (the benchmarks' worker processes)."""

    def __init__(self, factory: sessionmaker[Session], policy: Policy) -> None:
        self._factory, self._policy = factory, policy
        self.prelock: frozenset[int] = frozenset()

    def next(self, limit: int = BATCH_EVENTS) -> list[Applied] | None:
        """The next batch's outcomes (empty: none waiting), or None when it was refused for busy
        orders (nothing of it applied; call again)."""
        try:
            done = apply_batch(self._factory, self._policy, limit=limit, prelock=self.prelock)
        except OrdersBusy as busy:
            self.prelock |= frozenset(busy.keys)
            return None
        self.prelock = frozenset()
        return done


def apply_next(factory: sessionmaker[Session], policy: Policy) -> Applied | None:
    """Apply the next waiting event alone; None when the inbox has none (or the others are claimed).
    Beside other workers on PostgreSQL it may raise :class:`agent.triage.retriage.OrdersBusy` (see
    :class:`Batches`)."""
    done = apply_batch(factory, policy, limit=1)
    return done[0] if done else None


def drain(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    on_event: Callable[[Applied], None] | None = None,
    stop: threading.Event | None = None,
    batch: int = BATCH_EVENTS,
    pause_s: float = 0.0,
) -> list[Applied]:
    """Apply waiting events, ``batch`` per transaction at most, until none is left (or ``stop`` is
    set); return their outcomes in apply order. ``pause_s``: wait that long after each batch (the
    loops on SQLite: see :func:`writer_pause`)."""
    out: list[Applied] = []
    stop = stop or threading.Event()
    # SQLite (pause_s > 0): a batch holds the only writer, so it is sized to about SQLITE_BATCH_S
    # from the last one's time per event — on a 1M-line book 200 events held it 8-20 s and the
    # intake storing new events gave up with "database is locked".
    limit = min(batch, SQLITE_FIRST_BATCH) if pause_s else batch
    batches = Batches(factory, policy)
    while not stop.is_set():
        started = time.monotonic()
        done = batches.next(limit)
        if done is None:
            continue  # another worker held orders it reached: the next try waits for them first
        if not done:
            break
        out.extend(done)
        if on_event:
            for one in done:
                on_event(one)
        if pause_s:
            per_event = (time.monotonic() - started) / len(done)
            limit = max(1, min(batch, int(SQLITE_BATCH_S / per_event) if per_event > 0 else batch))
            stop.wait(pause_s)
    return out


# A writer that finds SQLite's lock taken retries at most 100 ms apart (its busy handler's longest
# sleep), so 100 ms lets every waiting writer in once; the intake then stores what it holds in a
# few ms a transaction. At 1M lines and 100 events/s: 0.2 -> 0.1 s halved the p50 latency (258 ->
# 127 ms) with the feed still stored at its full rate (docs/benchmarks.md).
SQLITE_PAUSE_S = 0.1
SQLITE_BATCH_S = 1.0  # about how long one batch may hold SQLite's writer
SQLITE_FIRST_BATCH = 20  # the first batch's size on SQLite, before a time per event is known


def writer_pause(factory: sessionmaker[Session]) -> float:
    """How long a worker loop leaves the database's writer free between batches.

    SQLite has one writer, and a writer that finds it taken sleeps in steps of up to 100 ms before
    trying again: a worker starting its next batch the moment the last one commits would hold it
    almost all the time and starve the intake storing new events (the API, a broker consumer, a
    replay). So on SQLite the loops pause :data:`SQLITE_PAUSE_S` between batches — the events that
    arrive meanwhile join the next batch, which is what makes a batch — and on PostgreSQL (row
    locks, concurrent writers) not at all.
    """
    with factory() as session:
        dialect = session.get_bind().dialect.name
    return SQLITE_PAUSE_S if dialect == "sqlite" else 0.0


SWEEP_EVERY_S = 30.0  # SLAs are hours long: looking for breaches twice a minute is plenty
_last_sweep: dict[int, float] = {}


def sweep(factory: sessionmaker[Session], policy: Policy, *, every_s: float = 0.0) -> int:
    """Escalate the exceptions whose SLA is breached (once each); return how many.

    ``every_s``: skip when this factory was swept less than that many seconds ago (the loops).
    """
    now = time.monotonic()
    if every_s and now - _last_sweep.get(id(factory), -every_s) < every_s:
        return 0
    _last_sweep[id(factory)] = now
    with factory() as session:
        count = escalate_breached(session, policy)
        session.commit()
    return count


def run_worker(
    factory: sessionmaker[Session],
    policy: Policy,
    stop: threading.Event,
    wake: threading.Event | None = None,
    *,
    poll_s: float = 1.0,
) -> None:
    """Drain, then wait for ``wake`` (set when events are stored) or ``poll_s``; until ``stop``."""
    wake = wake or threading.Event()
    pause_s = writer_pause(factory)
    while not stop.is_set():
        try:
            drain(factory, policy, stop=stop, pause_s=pause_s)
            sweep(factory, policy, every_s=SWEEP_EVERY_S)
        except OperationalError as exc:  # transient: try again on the next pass
            log.warning("event worker: %s", str(getattr(exc, "orig", exc)).splitlines()[0])
        except Exception:
            log.exception("event worker failed; retrying")
        wake.wait(poll_s)
        wake.clear()


class BackgroundWorker:
    """The worker on a daemon thread beside the API (``copilot serve``).

    ``wake()`` when events were stored; ``wait_idle()`` returns once everything stored before the
    last wake has been applied (or failed) — how a caller synchronises with it.
    """

    def __init__(self, factory: sessionmaker[Session], policy: Policy, *, poll_s: float = 1.0) -> None:
        self._factory, self._policy, self._poll_s = factory, policy, poll_s
        self._stop, self._wake, self._idle = threading.Event(), threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="copilot-event-worker", daemon=True)

    def _run(self) -> None:
        pause_s = writer_pause(self._factory)
        while not self._stop.is_set():
            self._wake.clear()  # a wake while draining makes another pass
            try:
                drain(self._factory, self._policy, stop=self._stop, pause_s=pause_s)
                sweep(self._factory, self._policy, every_s=SWEEP_EVERY_S)
            except OperationalError as exc:  # transient: try again on the next pass
                log.warning("event worker: %s", str(getattr(exc, "orig", exc)).splitlines()[0])
            except Exception:
                log.exception("event worker failed; retrying")
            with self._lock:
                if not self._wake.is_set():
                    self._idle.set()
            self._wake.wait(self._poll_s)

    def start(self) -> None:
        """Start the thread; again after :meth:`stop` (an app whose lifespan runs a second time)."""
        if self._thread.is_alive():
            return
        if self._thread.ident is not None:  # ran and stopped: a thread starts once, so make another
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="copilot-event-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        with self._lock:
            self._idle.clear()
            self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
