"""The event worker: apply each stored event once, in order per source, then triage what it affects.

One transaction per event: the claim (:func:`tools.events.claim_next`), the records upserted, the
affected orders triaged again, the inbox row marked ``applied`` and the audit event all commit
together, or nothing does — a worker killed mid-event leaves the event ``received`` and another
worker (or the same after a restart) applies it. An event whose references dangle at apply time,
or that the database refuses (a CHECK constraint), is marked ``failed`` with the reason and applies
nothing. A transient database error (a lock timeout, a deadlock between two workers) rolls back and
leaves the event for the next pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agent.flow.retriage import retriage
from agent.flow.work import escalate_breached
from agent.governance.audit import EVENT_SOURCE_APPLIED, EVENT_SOURCE_FAILED, append_event
from agent.policy import Policy
from tools.events import EventError, affected_orders, apply_event, check_references, claim_next, stored_event
from tools.events import mark_failed as _mark_failed

__all__ = ["Applied", "BackgroundWorker", "apply_next", "drain", "run_worker", "sweep"]

log = logging.getLogger(__name__)


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


def _fail(factory: sessionmaker[Session], inbox_id: int, label: str, source: str, reason: str) -> Applied:
    with factory() as session:
        _mark_failed(session, inbox_id, reason)
        append_event(
            session, EVENT_SOURCE_FAILED, actor=f"source:{source}", payload={"event": label, "reason": reason}
        )
        session.commit()
    return Applied(inbox_id, label, "failed", error=reason)


def apply_next(factory: sessionmaker[Session], policy: Policy) -> Applied | None:
    """Apply the next waiting event; None when the inbox has none (or the others are claimed)."""
    with factory() as session:
        row = claim_next(session)
        if row is None:
            session.rollback()
            return None
        inbox_id, source, label = row.id, row.source, f"{row.source}/{row.event_id}"
        try:
            event = stored_event(row)
            check_references(session, [event])
            changes = apply_event(session, event)
            done = retriage(session, policy, affected_orders(session, changes))
            now = dt.datetime.now(dt.UTC)
            row.status, row.applied_at, row.error = "applied", now, None
            row.orders_retriaged = len(done.orders)
            append_event(
                session,
                EVENT_SOURCE_APPLIED,
                actor=f"source:{source}",
                payload={
                    "event": label,
                    "type": event.type,
                    "occurred_at": event.occurred_at.isoformat(),
                    "records": {t: len(r) for t, r in event.records.items()},
                    "changed": len(changes),
                    **done.as_dict(),
                    "order_ids": done.orders[:50],
                },
            )
            session.commit()
        except EventError as exc:
            session.rollback()
            return _fail(factory, inbox_id, label, source, f"{exc.path}: {exc.message}")
        except OperationalError:
            session.rollback()
            raise  # transient (locked, deadlock, connection): the event stays received
        except DBAPIError as exc:
            session.rollback()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            return _fail(factory, inbox_id, label, source, f"the database refused it: {reason}")
    return Applied(
        inbox_id,
        label,
        "applied",
        orders=len(done.orders),
        opened=done.opened,
        changed=done.changed,
        resolved=done.resolved,
    )


def drain(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    on_event: Callable[[Applied], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Applied]:
    """Apply waiting events until none is left (or ``stop`` is set); return their outcomes."""
    out = []
    while stop is None or not stop.is_set():
        done = apply_next(factory, policy)
        if done is None:
            break
        out.append(done)
        if on_event:
            on_event(done)
    return out


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
    while not stop.is_set():
        try:
            drain(factory, policy, stop=stop)
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
        while not self._stop.is_set():
            self._wake.clear()  # a wake while draining makes another pass
            try:
                drain(self._factory, self._policy, stop=self._stop)
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
