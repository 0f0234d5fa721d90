"""Retention: chat threads and closed exceptions older than the policy's limits are purged.

``copilot retention purge [--dry-run]`` (run it daily) removes

- **chat threads** whose last turn (``chat_threads.last_at``) is older than
  ``retention.chat_threads_days``: their LangGraph checkpoints (``delete_thread``) and their record;
- **closed exceptions**: rows of ``exceptions`` resolved more than
  ``retention.closed_exceptions_days`` ago. An action request that named one keeps everything
  else; its ``exception_id`` link is cleared (the request, its decisions, execution and audit
  events stay).

Never purged: open exceptions, action requests, approvals, executions, messages, the ERP records,
approval-graph checkpoints, and the audit log. The chain is therefore untouched and ``copilot
audit verify`` stays green; the purge appends one ``retention_purge`` event (cutoffs, counts, the
range of exception ids) in the same transaction as the deletes, so what went, and when, is itself
on the chain. A dry run changes nothing and appends nothing.

Order of work: checkpoints first (they may live in another database file), then the records and
the audit event in one transaction. If that transaction fails the thread records stay and the
next run deletes the (already empty) checkpoints again: ``delete_thread`` of a missing thread is a
no-op. A thread continued while it is being purged loses its history (its checkpoints went); its
new turn starts a fresh one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent.governance import audit
from agent.governance.requests import checkpointer_for, write_session
from agent.policy import Policy
from tools.models import ActionRequest, ChatThread, ExceptionRecord
from tools.rules import in_chunks

__all__ = ["purge", "retention_plan"]


def _cutoffs(policy: Policy, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    r = policy.retention
    return now - dt.timedelta(days=r.chat_threads_days), now - dt.timedelta(days=r.closed_exceptions_days)


def _due(session: Session, threads_before: dt.datetime, exceptions_before: dt.datetime) -> tuple[list, list]:
    threads = list(
        session.scalars(
            select(ChatThread.thread_id)
            .where(ChatThread.last_at < threads_before)
            .order_by(ChatThread.thread_id)
        )
    )
    exceptions = list(
        session.scalars(
            select(ExceptionRecord.id)
            .where(ExceptionRecord.status == "resolved", ExceptionRecord.resolved_at < exceptions_before)
            .order_by(ExceptionRecord.id)
        )
    )
    return threads, exceptions


def retention_plan(
    factory: sessionmaker[Session], policy: Policy, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """What a purge would remove now: cutoffs and counts (nothing is changed)."""
    now = now or dt.datetime.now(dt.UTC)
    threads_before, exceptions_before = _cutoffs(policy, now)
    with factory() as session:
        threads, exceptions = _due(session, threads_before, exceptions_before)
        linked = _linked(session, exceptions)
    return _report(policy, threads_before, exceptions_before, threads, exceptions, linked, dry_run=True)


def _linked(session: Session, exception_ids: list[int]) -> int:
    n = 0
    for part in in_chunks(exception_ids):
        n += session.scalar(select(func.count()).where(ActionRequest.exception_id.in_(part))) or 0
    return n


def _report(
    policy: Policy,
    threads_before: dt.datetime,
    exceptions_before: dt.datetime,
    threads: list[str],
    exceptions: list[int],
    linked: int,
    *,
    dry_run: bool,
) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "chat_threads_days": policy.retention.chat_threads_days,
        "closed_exceptions_days": policy.retention.closed_exceptions_days,
        "chat_threads_before": threads_before.isoformat(timespec="seconds"),
        "closed_exceptions_before": exceptions_before.isoformat(timespec="seconds"),
        "chat_threads": len(threads),
        "closed_exceptions": len(exceptions),
        "exception_ids": [exceptions[0], exceptions[-1]] if exceptions else None,
        "requests_unlinked": linked,
    }


def purge(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    checkpointer: Any = None,
) -> dict[str, Any]:
    """Purge what the policy's retention limits say is due (see the module docstring); returns
    the report (cutoffs, counts) that the ``retention_purge`` audit event also records."""
    if dry_run:
        return retention_plan(factory, policy, now=now)
    now = now or dt.datetime.now(dt.UTC)
    threads_before, exceptions_before = _cutoffs(policy, now)
    with factory() as session:
        threads, _ = _due(session, threads_before, exceptions_before)
    if threads:
        with checkpointer_for(factory, checkpointer) as saver:
            for thread_id in threads:
                saver.delete_thread(thread_id)
    with write_session(factory) as s:
        # read again under the write lock: a thread continued meanwhile keeps its record (and its new turn)
        due_threads, exceptions = _due(s, threads_before, exceptions_before)
        gone = [t for t in due_threads if t in set(threads)]
        linked = 0
        for part in in_chunks(exceptions):
            linked += _linked(s, part)
            s.execute(
                update(ActionRequest).where(ActionRequest.exception_id.in_(part)).values(exception_id=None)
            )
            s.execute(delete(ExceptionRecord).where(ExceptionRecord.id.in_(part)))
        for part in in_chunks(gone):
            s.execute(
                delete(ChatThread).where(ChatThread.thread_id.in_(part), ChatThread.last_at < threads_before)
            )
        report = _report(policy, threads_before, exceptions_before, gone, exceptions, linked, dry_run=False)
        audit.append_event(s, audit.EVENT_RETENTION_PURGE, actor=actor, payload=report)
    return report
