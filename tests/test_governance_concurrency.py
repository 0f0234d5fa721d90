"""Exactly once: 50 concurrent approvals, concurrent executor retries, and a process killed between
request and approval that is resumed from another process — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.checkpoint import open_checkpointer
from agent.governance.approval import build_approval_graph, is_waiting
from agent.governance.audit import list_events, verify_chain
from agent.governance.requests import (
    _execute_step,
    decide,
    list_requests,
    request_action,
    resume_request,
    write_session,
)
from tests.test_governance import POLICY, count, shortfall_fixture, world
from tools.errors import Conflict
from tools.models import Approval, Execution, Inventory, OrderLine

ROOT = Path(__file__).resolve().parents[1]


def _approve_concurrently(factory, request_id: int, n: int = 50) -> tuple[list, list]:
    barrier = threading.Barrier(n)
    wins, losses, errors = [], [], []

    def approve(i: int) -> None:
        barrier.wait()
        try:
            wins.append(
                decide(
                    factory,
                    POLICY,
                    request_id,
                    username="planner" if i % 2 else "ops_manager",
                    decision="approve",
                )
            )
        except Conflict as exc:
            losses.append(exc)
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors
    return wins, losses


def test_fifty_concurrent_approvals_execute_once(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    wins, losses = _approve_concurrently(factory, req["id"])
    assert len(wins) == 1 and len(losses) == 49
    assert wins[0]["status"] == "executed"
    assert count(factory, Execution) == 1 and count(factory, Approval) == 1
    with factory() as s:
        assert s.get(Inventory, ("A", "WH3")).allocated == 10  # allocated once, not 50 times
        assert len(list_events(s, event_type="execution")) == 1
        assert len(list_events(s, event_type="decision_refused", limit=100)) == 49
        assert verify_chain(s)["ok"]


def test_concurrent_executor_retries_of_one_approval_run_once(engine):
    """Resumed graphs and retries reach the executor directly: the idempotency key holds."""
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with write_session(factory) as s:  # the decision recorded, the graph not yet resumed
        import datetime as dt

        from tools.models import ActionRequest

        r = s.get(ActionRequest, req["id"])
        a = Approval(
            request_id=r.id,
            decision="approve",
            decided_by="planner",
            role="planner",
            params=r.params,
            params_hash=r.params_hash,
            decided_at=dt.datetime.now(dt.UTC),
        )
        s.add(a)
        r.status = "approved"
        s.flush()
        approval_id = a.id
    barrier = threading.Barrier(20)
    results, errors = [], []

    def run() -> None:
        barrier.wait()
        try:
            results.append(_execute_step(factory, POLICY, req["id"], approval_id))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and set(results) == {"executed"}
    assert count(factory, Execution) == 1
    # carrying the request on after a crash is idempotent too
    assert resume_request(factory, POLICY, req["id"])["execution"]["status"] == "executed"
    assert count(factory, Execution) == 1
    with factory() as s:
        assert s.get(OrderLine, ("SO1", 1)).allocated_qty == 10
        assert s.get(Inventory, ("A", "WH3")).allocated == 10


REQUEST_THEN_DIE = """
import os, sys
from agent.governance.requests import request_action
from agent.policy import load_policy
from tools.db import make_engine, session_factory
factory = session_factory(make_engine(sys.argv[1]))
req = request_action(factory, load_policy(), order_id="SO1", requested_by="csr")
print(req["id"], req["status"], flush=True)
os.kill(os.getpid(), 9)
"""

APPROVE = """
import sys
from agent.governance.requests import decide
from agent.policy import load_policy
from tools.db import make_engine, session_factory
from tools.errors import ToolError
factory = session_factory(make_engine(sys.argv[1]))
try:
    req = decide(factory, load_policy(), int(sys.argv[2]), username="planner", decision="approve")
except ToolError as exc:
    print("refused:", exc)
    sys.exit(2)
print(req["status"])
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_process_killed_after_the_request_is_resumed_from_another_process(engine):
    factory = world(engine, shortfall_fixture())
    url = engine.url.render_as_string(hide_password=False)
    died = _python(REQUEST_THEN_DIE, url)
    assert died.returncode == -9, died.stderr
    request_id, status = died.stdout.split()
    assert status == "pending_approval"
    # the pending approval is listed from the database and its thread waits in the checkpoints
    assert [r["id"] for r in list_requests(factory, status="pending_approval")] == [int(request_id)]
    with open_checkpointer(url) as saver:
        graph = build_approval_graph(
            guard_step=lambda rid: {}, execute_step=lambda rid, aid: "", checkpointer=saver
        )
        assert is_waiting(graph, int(request_id))
    approved = _python(APPROVE, url, request_id)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == "executed"
    with pytest.raises(Conflict, match="executed"):  # and back here, a second approval is refused
        decide(factory, POLICY, int(request_id), username="ops_manager", decision="approve")
    assert count(factory, Execution) == 1
    with factory() as s:
        assert s.get(Inventory, ("A", "WH3")).allocated == 10
        assert s.scalar(select(func.count()).select_from(Approval)) == 1
        assert verify_chain(s)["ok"]


def test_a_decision_recorded_before_a_crash_is_carried_on_by_resume(engine):
    import datetime as dt

    from tools.models import ActionRequest

    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with write_session(factory) as s:  # decide() committed, then the process died before resuming the graph
        r = s.get(ActionRequest, req["id"])
        s.add(
            Approval(
                request_id=r.id,
                decision="approve",
                decided_by="planner",
                role="planner",
                params=r.params,
                params_hash=r.params_hash,
                decided_at=dt.datetime.now(dt.UTC),
            )
        )
        r.status = "approved"
    done = resume_request(factory, POLICY, req["id"])
    assert done["status"] == "executed"
    assert resume_request(factory, POLICY, req["id"])["status"] == "executed"
    assert count(factory, Execution) == 1
