"""Asking again for an action that has not run yet files nothing new (domain.md §3: an action runs
at most once, whatever retries or double clicks happen): a client's retry or a second click in any
door gets the request already waiting, and the ask is audited; another person is told to decide
that one (409) rather than becoming one of its requesters."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from agent.governance.audit import list_events
from agent.governance.requests import decide, get_request, request_action
from tests.test_governance import POLICY, chain_ok, count, shortfall_fixture, world
from tools.errors import Conflict
from tools.models import ActionRequest, Execution


def test_the_same_ask_while_one_waits_gets_that_one_and_files_nothing(engine):
    factory = world(engine, shortfall_fixture())
    first = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert first["status"] == "pending_approval" and not first.get("repeated")
    again = request_action(  # the same action and parameters named explicitly, through another door
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action=first["action"],
        params=first["params"],
        source="api",
    )
    assert again["id"] == first["id"] and again["repeated"]
    with pytest.raises(Conflict, match=f"request {first['id']} already asks .* filed by csr"):
        request_action(factory, POLICY, order_id="SO1", requested_by="ops_manager")
    assert count(factory, ActionRequest) == 1
    with factory() as s:
        kinds = [e["event_type"] for e in list_events(s, request_id=first["id"])]
        refused = [e for e in list_events(s) if e["event_type"] == "request_refused"]
    assert kinds.count("action_requested") == 1 and kinds.count("action_request_repeated") == 1
    assert refused and refused[-1]["actor"] == "ops_manager"
    # other parameters are another request
    moved = dict(first["params"], to_warehouse_id="WH2")
    assert (
        request_action(
            factory, POLICY, order_id="SO1", requested_by="csr", action=first["action"], params=moved
        )["id"]
        != first["id"]
    )
    done = decide(factory, POLICY, first["id"], username="planner", decision="approve")
    assert done["status"] == "executed" and count(factory, Execution) == 1
    assert chain_ok(factory)


def test_after_it_ran_or_was_rejected_asking_again_files_a_new_request(engine):
    factory = world(engine, shortfall_fixture())
    first = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    decide(factory, POLICY, first["id"], username="planner", decision="reject", reason="not now")
    second = request_action(
        factory, POLICY, order_id="SO1", requested_by="csr", action=first["action"], params=first["params"]
    )
    assert second["id"] != first["id"] and not second.get("repeated")


def test_concurrent_identical_asks_file_one_request(engine):
    factory = world(engine, shortfall_fixture())
    ids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def ask() -> None:
        try:
            start.wait()
            ids.append(request_action(factory, POLICY, order_id="SO1", requested_by="csr")["id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ids) == 4 and len(set(ids)) == 1
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ActionRequest)) == 1


def test_a_retry_after_the_first_ask_died_before_its_guard_gets_that_request_guarded(engine, monkeypatch):
    # The first ask stored its request (proposed) and died before the approval graph guarded it (a
    # crash, a lost connection): the client's retry got that request back as repeated and nothing
    # guarded it, so it reached no approver's queue until someone ran `copilot actions resume`.
    import agent.governance.requests as requests

    factory = world(engine, shortfall_fixture())

    def dies(*_args, **_kwargs):
        raise ConnectionError("the process died before the guard ran")

    with monkeypatch.context() as m:
        m.setattr(requests, "_graph", dies)
        try:
            request_action(factory, POLICY, order_id="SO1", requested_by="csr")
        except ConnectionError:
            pass
    with factory() as s:
        assert s.scalars(select(ActionRequest.status)).all() == ["proposed"]
    again = request_action(factory, POLICY, order_id="SO1", requested_by="csr", source="api")
    assert again["repeated"] and again["status"] == "pending_approval"
    assert count(factory, ActionRequest) == 1
    done = decide(factory, POLICY, again["id"], username="planner", decision="approve")
    assert done["status"] == "executed" and count(factory, Execution) == 1
    assert chain_ok(factory)


def test_a_second_run_of_the_graph_after_an_auto_approval_executes_it_with_that_approval(engine):
    # A second run of a request's graph (a retry that found it proposed, a resume in another
    # process) whose guard step finds it approved already (auto-approved, not yet executed) went
    # on to execute without the approval id: the executor refused ("no approval") and the
    # request was recorded failed, so the first run's execution never happened.
    from langgraph.checkpoint.memory import InMemorySaver

    import agent.governance.requests as requests
    from agent.governance.approval import thread_config
    from tools.models import Approval

    factory = world(engine, shortfall_fixture())
    first = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    with factory() as s, s.begin():  # what the guard's auto-approval leaves before the execution
        req = s.get(ActionRequest, first["id"])
        s.add(
            Approval(
                request_id=req.id,
                decision="approve",
                decided_by="policy",
                role="policy",
                reason="auto-approved by policy: low risk",
                params=req.params,
                params_hash=req.params_hash,
                decided_at=req.updated_at,
            )
        )
        req.status = "approved"
    graph = requests._graph(factory, POLICY, InMemorySaver())  # another process: no checkpoint
    graph.invoke({"request_id": first["id"]}, thread_config(first["id"]))
    done = get_request(factory, first["id"])
    assert done["status"] == "executed", done.get("error")
    assert count(factory, Execution) == 1


def test_a_user_who_may_not_request_actions_is_refused_not_handed_the_waiting_request(engine):
    # admin administers users and may not request actions (the guard blocks their requests): with
    # a request already waiting, their ask came back 200 "repeated" as though it were theirs to make
    factory = world(engine, shortfall_fixture())
    first = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    admin = request_action(
        factory, POLICY, order_id="SO1", requested_by="admin", action=first["action"], params=first["params"]
    )
    assert not admin.get("repeated") and admin["id"] != first["id"]
    assert admin["status"] == "blocked" and "administers users" in admin["guard"]["reasons"][0]
    assert get_request(factory, first["id"])["status"] == "pending_approval"
