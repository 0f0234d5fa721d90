"""Retention: chat threads and closed exceptions older than the policy's limits are purged.

``copilot retention purge [--dry-run]`` (run it daily) removes

- **chat threads** whose last turn (``chat_threads.last_at``) is older than
  ``retention.chat_threads_days``: their LangGraph checkpoints (``delete_thread``) and their record;
- **closed exceptions**: rows of ``exceptions`` resolved more than
  ``retention.closed_exceptions_days`` ago. An action request that named one keeps everything
  else; its ``exception_id`` link is cleared (the request, its decisions, execution and audit
  events stay);
- **stored explanations** (``stored_explanations``, ``agent.copilot.stored``) of orders that have no
  open exception any more, whatever their age: they are a cache of model text, and an order that
  opens an exception again gets a new one.

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

Threads started before the thread records existed (migration 0009) have checkpoints but no record
until their next turn. ``scan_checkpoints=True`` (``--scan-checkpoints``) reads every checkpoint
once and records each such thread with the time of its last checkpoint, so the usual rule then
applies; every thread but the approval graph's (``approval-<id>``) is a chat thread. It reads the
whole checkpoint store: run it once after the upgrade, not daily.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent.governance import audit
from agent.governance.requests import checkpointer_for, write_session
from agent.policy import Policy
from tools.models import ActionRequest, ChatThread, ExceptionRecord, StoredExplanation
from tools.rules import in_chunks

__all__ = ["adopt_untracked_threads", "purge", "retention_plan"]

_APPROVAL_PREFIX = "approval-"  # the approval graph's threads (agent.governance.approval.thread_config)


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


def _closed_explanations():
    """Stored explanations whose order has no open exception."""
    return ~exists().where(
        ExceptionRecord.order_id == StoredExplanation.order_id, ExceptionRecord.status == "open"
    )


def _count_closed_explanations(session: Session) -> int:
    stmt = select(func.count()).select_from(StoredExplanation).where(_closed_explanations())
    return session.scalar(stmt) or 0


def retention_plan(
    factory: sessionmaker[Session], policy: Policy, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """What a purge would remove now: cutoffs and counts (nothing is changed)."""
    now = now or dt.datetime.now(dt.UTC)
    threads_before, exceptions_before = _cutoffs(policy, now)
    with factory() as session:
        threads, exceptions = _due(session, threads_before, exceptions_before)
        linked = _linked(session, exceptions)
        explanations = _count_closed_explanations(session)
    report = _report(policy, threads_before, exceptions_before, threads, exceptions, linked, dry_run=True)
    return {**report, "stored_explanations": explanations}


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


def _untracked(factory: sessionmaker[Session], checkpointer: Any = None) -> dict[str, dt.datetime]:
    """Chat threads with checkpoints but no record, each with its last checkpoint's time."""
    last: dict[str, dt.datetime] = {}
    with checkpointer_for(factory, checkpointer) as saver:
        for item in saver.list(None):
            thread_id = str(item.config["configurable"]["thread_id"])
            if thread_id.startswith(_APPROVAL_PREFIX) or len(thread_id) > 160:
                continue
            ts = dt.datetime.fromisoformat(str(item.checkpoint["ts"]))
            ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
            last[thread_id] = max(ts, last.get(thread_id, ts))
    with factory() as s:
        for part in in_chunks(last):
            for known in s.scalars(select(ChatThread.thread_id).where(ChatThread.thread_id.in_(part))):
                last.pop(known, None)
    return last


def adopt_untracked_threads(factory: sessionmaker[Session], *, checkpointer: Any = None) -> int:
    """Record the chat threads that have checkpoints but no ``chat_threads`` row (started before
    the records existed), each with its last checkpoint's time; returns how many were recorded."""
    found = _untracked(factory, checkpointer)
    with write_session(factory) as s:
        for part in in_chunks(found):  # one recorded meanwhile (a new turn) keeps its own row
            for known in s.scalars(select(ChatThread.thread_id).where(ChatThread.thread_id.in_(part))):
                found.pop(known, None)
        s.add_all(
            ChatThread(thread_id=t, username=None, started_at=ts, last_at=ts, turns=0)
            for t, ts in found.items()
        )
    return len(found)


def purge(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    checkpointer: Any = None,
    scan_checkpoints: bool = False,
) -> dict[str, Any]:
    """Purge what the policy's retention limits say is due (see the module docstring); returns
    the report (cutoffs, counts) that the ``retention_purge`` audit event also records.
    ``scan_checkpoints``: first record the threads started before thread records existed."""
    if dry_run:
        plan = retention_plan(factory, policy, now=now)
        if scan_checkpoints:  # would be recorded, then purged: counted, nothing written
            cutoff = dt.datetime.fromisoformat(plan["chat_threads_before"])
            plan["untracked_chat_threads"] = sum(
                ts < cutoff for ts in _untracked(factory, checkpointer).values()
            )
            plan["chat_threads"] += plan["untracked_chat_threads"]
        return plan
    if scan_checkpoints:
        adopt_untracked_threads(factory, checkpointer=checkpointer)
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
        # after the exceptions went: an order whose last open exception closed loses its text too
        report["stored_explanations"] = _count_closed_explanations(s)
        if report["stored_explanations"]:
            s.execute(delete(StoredExplanation).where(_closed_explanations()))
        audit.append_event(s, audit.EVENT_RETENTION_PURGE, actor=actor, payload=report)
    return report
