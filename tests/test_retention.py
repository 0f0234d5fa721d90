"""Retention (``agent.governance.retention``, ``copilot retention purge``): chat threads and closed
exceptions past the policy's limits go, with their checkpoints; open exceptions, requests and the
audit log stay; the purge is an audit event and the chain still verifies — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from sqlalchemy import func, select, update

from agent.copilot.threads import touch_thread
from agent.governance import requests
from agent.governance.audit import list_events, verify_chain
from agent.governance.retention import purge
from agent.policy import load_policy
from agent.settings import get_settings
from agent.triage.service import triage_orders
from tests import sites_world
from tests.cli_run import run
from tools.db import session_factory
from tools.models import ActionRequest, ChatThread, ExceptionRecord

NOW = dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _checkpoint(saver, thread_id: str) -> None:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saver.put(config, empty_checkpoint(), {"source": "input", "step": 0}, {})


def _has_checkpoint(saver, thread_id: str) -> bool:
    return saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}) is not None


@pytest.fixture
def book(engine):
    """Two threads (idle 100 days, idle 1 day) with checkpoints; exceptions: one resolved 400 days
    ago that a request names, one resolved 10 days ago, one open since 400 days."""
    sites_world.load(engine)
    factory = session_factory(engine)
    policy = load_policy()
    with factory() as s:
        triage_orders(s, ["SO-100002", "SO-200002"], policy)
        s.commit()
    req = requests.request_action(factory, policy, order_id="SO-100002", requested_by="csr")
    with factory() as s:
        ids = {r.order_id: r.id for r in s.scalars(select(ExceptionRecord))}
        assert s.get(ActionRequest, req["id"]).exception_id == ids["SO-100002"]
        s.execute(
            update(ExceptionRecord)
            .where(ExceptionRecord.id == ids["SO-100002"])
            .values(status="resolved", resolved_at=NOW - 400 * DAY, first_seen_at=NOW - 401 * DAY)
        )
        s.execute(
            update(ExceptionRecord)
            .where(ExceptionRecord.id == ids["SO-200002"])
            .values(first_seen_at=NOW - 400 * DAY)  # old, but open: kept
        )
        s.add(
            ExceptionRecord(
                order_id="SO-100001",
                type="PRICING_DISCREPANCY",
                instance_key="line:1",
                status="resolved",
                evidence=[],
                first_seen_at=NOW - 20 * DAY,
                detected_at=NOW - 20 * DAY,
                resolved_at=NOW - 10 * DAY,
            )
        )
        s.commit()
    touch_thread(factory, "planner:old", "planner", now=NOW - 100 * DAY)
    touch_thread(factory, "planner:new", "planner", now=NOW - 101 * DAY)
    touch_thread(factory, "planner:new", "planner", now=NOW - 1 * DAY)  # continued yesterday
    with requests.checkpointer_for(factory) as saver:
        _checkpoint(saver, "planner:old")
        _checkpoint(saver, "planner:new")
    return factory, policy, req["id"], ids


def test_dry_run_says_what_would_go_and_changes_nothing(book):
    factory, policy, _, _ = book
    with factory() as s:
        events = len(list_events(s, limit=10_000))
    report = purge(factory, policy, now=NOW, dry_run=True)
    assert report["dry_run"] and report["chat_threads"] == 1 and report["closed_exceptions"] == 1
    assert report["requests_unlinked"] == 1
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ChatThread)) == 2
        assert s.scalar(select(func.count()).select_from(ExceptionRecord)) == 3
        assert len(list_events(s, limit=10_000)) == events  # a dry run records nothing


def test_purge_removes_what_is_past_the_limits_and_keeps_the_chain(book):
    factory, policy, request_id, ids = book
    report = purge(factory, policy, now=NOW, actor="ops")
    assert (report["chat_threads"], report["closed_exceptions"], report["requests_unlinked"]) == (1, 1, 1)
    assert report["chat_threads_before"] == (NOW - 90 * DAY).isoformat(timespec="seconds")
    with factory() as s:
        assert list(s.scalars(select(ChatThread.thread_id))) == ["planner:new"]
        assert s.get(ChatThread, "planner:new").turns == 2
        kept = {(r.order_id, r.status) for r in s.scalars(select(ExceptionRecord))}
        assert kept == {("SO-200002", "open"), ("SO-100001", "resolved")}
        req = s.get(ActionRequest, request_id)
        assert req is not None and req.exception_id is None and req.order_id == "SO-100002"
        [event] = list_events(s, event_type="retention_purge")
        assert event["actor"] == "ops" and event["payload"]["closed_exceptions"] == 1
        assert event["payload"]["exception_ids"] == [ids["SO-100002"], ids["SO-100002"]]
        assert list_events(s, request_id=request_id)  # the request's own history stays
        assert verify_chain(s)["ok"]
    with requests.checkpointer_for(factory) as saver:
        assert not _has_checkpoint(saver, "planner:old")
        assert _has_checkpoint(saver, "planner:new")
    again = purge(factory, policy, now=NOW)
    assert (again["chat_threads"], again["closed_exceptions"]) == (0, 0)


def test_purge_from_the_command_line(tmp_path, monkeypatch, capsys):
    url = sites_world.make_database(tmp_path / "cli.db")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    code, out, err = run(monkeypatch, capsys, "retention", "purge", "--dry-run", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (
        body["dry_run"] is True and body["chat_threads_days"] == 90 and body["closed_exceptions_days"] == 365
    )
    code, out, err = run(monkeypatch, capsys, "retention", "purge")
    assert code == 0, err
    assert out.startswith("purged 0 chat thread(s)") and "retention_purge" in out
    code, out, err = run(monkeypatch, capsys, "audit", "verify")
    assert code == 0, out + err


def test_threads_from_before_the_records_are_found_by_a_checkpoint_scan(book):
    factory, policy, request_id, _ = book
    with requests.checkpointer_for(factory) as saver:
        old = empty_checkpoint()
        old["ts"] = (NOW - 200 * DAY).isoformat()
        saver.put({"configurable": {"thread_id": "legacy-1", "checkpoint_ns": ""}}, old, {"step": 0}, {})
        recent = empty_checkpoint()
        recent["ts"] = (NOW - 2 * DAY).isoformat()
        saver.put({"configurable": {"thread_id": "legacy-2", "checkpoint_ns": ""}}, recent, {"step": 0}, {})
        assert _has_checkpoint(saver, f"approval-{request_id}")  # the approval graph's own thread
    assert purge(factory, policy, now=NOW, dry_run=True)["chat_threads"] == 1  # records only
    plan = purge(factory, policy, now=NOW, dry_run=True, scan_checkpoints=True)
    assert (plan["chat_threads"], plan["untracked_chat_threads"]) == (2, 1)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ChatThread)) == 2  # a dry run records nothing
    report = purge(factory, policy, now=NOW, scan_checkpoints=True)
    assert report["chat_threads"] == 2
    with requests.checkpointer_for(factory) as saver:
        assert not _has_checkpoint(saver, "legacy-1") and not _has_checkpoint(saver, "planner:old")
        assert _has_checkpoint(saver, "legacy-2") and _has_checkpoint(saver, f"approval-{request_id}")
    with factory() as s:
        assert set(s.scalars(select(ChatThread.thread_id))) == {"planner:new", "legacy-2"}
