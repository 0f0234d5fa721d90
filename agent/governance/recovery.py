"""Requests a crash left half-way, carried on by any process.

A decision and its execution are two transactions (the decision commits, then the request's graph
resumes and executes). A process that dies between them — killed, out of memory, its machine gone —
leaves the request ``approved`` with no execution; one that dies right after filing a request
leaves it ``proposed`` (not guarded yet). Both are visible in ``action_requests`` and carried on by
whichever process looks next: every ``copilot serve`` and ``copilot worker`` runs a
:class:`RecoveryLoop` that resumes such a request once it has been still for ``after_s`` seconds
(``COPILOT_RESUME_AFTER_S``).

Resuming is safe however many processes try at once: the request row is claimed ``FOR UPDATE SKIP
LOCKED`` and its ``updated_at`` moved on with a ``request_resumed`` audit event (so the next
looker waits another ``after_s``), and the execution itself runs at most once by its idempotency
key (``agent.governance.requests``). A request still being worked on by a live but slow process is
at worst executed by the other one; never twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agent.governance import audit
from agent.governance.requests import resume_request, write_session
from agent.policy import Policy
from tools.errors import ToolError
from tools.models import ActionRequest, AuditEvent, Execution

__all__ = ["RecoveryLoop", "process_name", "resume_stalled", "stalled_requests"]

log = logging.getLogger("copilot.recovery")

BATCH = 20
# A request that three resumes did not carry on (e.g. approved with no approval recorded, or a write
# that keeps failing unexpectedly) is left for a person (`copilot actions resume ID` says why)
# instead of being claimed, and audited, every COPILOT_RESUME_AFTER_S for ever.
MAX_RESUMES = 3


def process_name(kind: str) -> str:
    """Who resumes, as the audit log names it: ``serve@host:pid`` or ``worker@host:pid``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"[:64]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _stalled(cutoff: dt.datetime):
    """Approved without an execution, or proposed and never guarded, and untouched since ``cutoff``."""
    executed = exists().where(Execution.request_id == ActionRequest.id)
    resumes = (
        select(func.count())
        .where(AuditEvent.event_type == audit.EVENT_RESUMED, AuditEvent.request_id == ActionRequest.id)
        .scalar_subquery()
    )
    return (
        or_(
            (ActionRequest.status == "approved") & ~executed,
            ActionRequest.status == "proposed",
        ),
        ActionRequest.updated_at < cutoff,
        resumes < MAX_RESUMES,
    )


def stalled_requests(session: Session, *, after_s: float, now: dt.datetime | None = None) -> list[int]:
    """Ids of the requests left half-way for at least ``after_s`` seconds, oldest first."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=after_s)
    query = select(ActionRequest.id).where(*_stalled(cutoff)).order_by(ActionRequest.id).limit(BATCH)
    return list(session.scalars(query))


def _claim(factory: sessionmaker[Session], request_id: int, after_s: float, actor: str) -> bool:
    """Take the request for resuming, with its audit event; False when another process has it now."""
    now = dt.datetime.now(dt.UTC)
    with write_session(factory) as s:
        req = s.get(ActionRequest, request_id, with_for_update={"skip_locked": True})
        if req is None:  # locked by a process working on it this moment (or gone)
            return False
        ran = s.scalar(select(Execution.id).where(Execution.request_id == request_id)) is not None
        still = (req.status == "approved" and not ran) or req.status == "proposed"
        if not still or _aware(req.updated_at) > now - dt.timedelta(seconds=after_s):
            return False
        tried = s.scalar(
            select(func.count()).where(
                AuditEvent.event_type == audit.EVENT_RESUMED, AuditEvent.request_id == request_id
            )
        )
        if (tried or 0) >= MAX_RESUMES:
            return False
        audit.append_event(
            s,
            audit.EVENT_RESUMED,
            actor=actor,
            order_id=req.order_id,
            request_id=req.id,
            payload={
                "status": req.status,
                "still_for_s": round((now - _aware(req.updated_at)).total_seconds(), 1),
                "reason": "approved, not executed" if req.status == "approved" else "proposed, not guarded",
            },
        )
        req.updated_at = now
    return True


def resume_stalled(
    factory: sessionmaker[Session], policy: Policy, *, after_s: float, actor: str
) -> list[dict[str, Any]]:
    """Carry on every request left half-way for ``after_s`` seconds; returns them as they are now."""
    with factory() as s:
        ids = stalled_requests(s, after_s=after_s)
    done = []
    for request_id in ids:
        if not _claim(factory, request_id, after_s, actor):
            continue
        try:
            done.append(resume_request(factory, policy, request_id))
        except ToolError as exc:  # e.g. approved with no recorded approval: logged, left for a person
            log.warning("request %s could not be resumed: %s", request_id, exc)
            continue
        log.warning(
            "request %s resumed by %s after a process left it half-way: now %s",
            request_id,
            actor,
            done[-1]["status"],
        )
    return done


class RecoveryLoop:
    """:func:`resume_stalled` on a daemon thread, every ``every_s`` seconds, until :meth:`stop`."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        policy: Policy,
        *,
        after_s: float,
        actor: str,
        every_s: float | None = None,
    ) -> None:
        self._factory, self._policy, self._after_s, self._actor = factory, policy, after_s, actor
        self._every_s = every_s if every_s is not None else max(0.5, min(after_s / 3, 10.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copilot-recovery", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                resume_stalled(self._factory, self._policy, after_s=self._after_s, actor=self._actor)
            except OperationalError as exc:  # the database busy or away: the next pass tries again
                log.warning("recovery: %s", str(getattr(exc, "orig", exc)).splitlines()[0])
            except Exception:
                log.exception("recovery pass failed; trying again")

    def start(self) -> RecoveryLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
