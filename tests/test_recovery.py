"""A request a crashed process left half-way is carried on by any other process, once: approved
and not executed (the process died between the decision and the write), or filed and not guarded;
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from agent.governance import requests as governance
from agent.governance.audit import EVENT_RESUMED, list_events, verify_chain
from agent.governance.recovery import RecoveryLoop, process_name, resume_stalled, stalled_requests
from agent.governance.requests import decide, get_request, request_action
from tests.test_governance import POLICY, count, shortfall_fixture, world
from tools.models import ActionRequest, Execution, Inventory


class _Died(BaseException):
    """The process dies here (not an error anything catches)."""


def _approved_then_died(engine, monkeypatch) -> tuple:
    """A request approved by a person whose serving process died before resuming its graph."""
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["status"] == "pending_approval"

    def die(*_a, **_k):
        raise _Died

    with monkeypatch.context() as m:
        m.setattr(governance, "resume_with_decision", die)
        with pytest.raises(_Died):
            decide(factory, POLICY, req["id"], username="planner", decision="approve")
    after = get_request(factory, req["id"])
    assert after["status"] == "approved" and after["execution"] is None  # decided, not executed
    _a_minute_passes(factory, req["id"])
    return factory, req["id"]


def _a_minute_passes(factory, request_id: int) -> None:
    with governance.write_session(factory) as s:
        req = s.get(ActionRequest, request_id)
        req.updated_at = req.updated_at - dt.timedelta(seconds=60)


def test_an_approved_request_left_unexecuted_is_executed_once_by_another_process(engine, monkeypatch):
    factory, rid = _approved_then_died(engine, monkeypatch)
    with factory() as s:
        assert stalled_requests(s, after_s=3600) == []  # not still for long enough yet
    assert resume_stalled(factory, POLICY, after_s=3600, actor="worker@b:2") == []
    [done] = resume_stalled(factory, POLICY, after_s=30, actor="worker@b:2")
    assert done["id"] == rid and done["status"] == "executed"
    assert resume_stalled(factory, POLICY, after_s=0, actor="worker@b:2") == []  # nothing left
    assert count(factory, Execution) == 1
    with factory() as s:
        assert s.get(Inventory, ("A", "WH3")).allocated == 10
        [event] = list_events(s, event_type=EVENT_RESUMED)
        assert event["actor"] == "worker@b:2" and event["request_id"] == rid
        assert event["payload"]["reason"] == "approved, not executed"
        assert verify_chain(s)["ok"]


def test_processes_resuming_at_once_execute_once_and_log_one_resumption(engine, monkeypatch):
    factory, rid = _approved_then_died(engine, monkeypatch)
    barrier, results, errors = threading.Barrier(6), [], []

    def resume(i: int) -> None:
        barrier.wait()
        try:
            results.append(resume_stalled(factory, POLICY, after_s=30, actor=f"serve@h:{i}"))
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=resume, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [d["id"] for r in results for d in r] == [rid] and count(factory, Execution) == 1
    with factory() as s:
        assert len(list_events(s, event_type=EVENT_RESUMED)) == 1
        assert len(list_events(s, event_type="execution")) == 1
        assert s.get(Inventory, ("A", "WH3")).allocated == 10
        assert verify_chain(s)["ok"]


def test_a_pending_request_waits_for_a_person_whatever_its_age(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert resume_stalled(factory, POLICY, after_s=0, actor="worker@b:2") == []
    assert get_request(factory, req["id"])["status"] == "pending_approval"


def test_a_filed_request_never_guarded_is_guarded_and_routed(engine, monkeypatch):
    factory = world(engine, shortfall_fixture())

    def die(*_a, **_k):
        raise _Died

    with monkeypatch.context() as m:  # the process dies after storing the request, before its guard
        m.setattr(governance, "_graph", die)
        with pytest.raises(_Died):
            request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    [rid] = [r["id"] for r in governance.list_requests(factory)]
    assert get_request(factory, rid)["status"] == "proposed"
    assert resume_stalled(factory, POLICY, after_s=30, actor="serve@b:1") == []  # maybe still at work
    _a_minute_passes(factory, rid)
    [done] = resume_stalled(factory, POLICY, after_s=30, actor="serve@b:1")
    assert done["status"] == "pending_approval"  # guarded now, waiting for the planner


def test_the_background_loop_carries_it_on_by_itself(engine, monkeypatch):
    factory, rid = _approved_then_died(engine, monkeypatch)
    loop = RecoveryLoop(factory, POLICY, after_s=30, actor=process_name("serve"), every_s=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while get_request(factory, rid)["status"] != "executed":
            assert time.monotonic() < deadline, "the recovery loop did not carry the request on"
            time.sleep(0.05)
    finally:
        loop.stop()
    with factory() as s:
        [event] = list_events(s, event_type=EVENT_RESUMED)
        assert event["actor"].startswith("serve@")


def test_a_request_three_resumes_could_not_carry_on_is_left_for_a_person(engine, monkeypatch):
    """A resume that keeps failing is tried MAX_RESUMES times, each audited, then no more: the loop
    does not claim and log it every COPILOT_RESUME_AFTER_S for ever, nor let it block the batch."""
    from agent.governance import recovery
    from tools.errors import ToolError

    factory, rid = _approved_then_died(engine, monkeypatch)

    def fails(*_a, **_k):
        raise ToolError("the write keeps failing")

    monkeypatch.setattr(recovery, "resume_request", fails)
    for _ in range(recovery.MAX_RESUMES + 2):
        assert resume_stalled(factory, POLICY, after_s=30, actor="worker@b:2") == []
        _a_minute_passes(factory, rid)
    with factory() as s:
        assert len(list_events(s, event_type=EVENT_RESUMED)) == recovery.MAX_RESUMES
        assert stalled_requests(s, after_s=30) == []  # out of the loop's batch
        assert verify_chain(s)["ok"]
    assert get_request(factory, rid)["status"] == "approved"  # still there for `actions resume`
