"""Asking again for an action that has not run yet files nothing new (domain.md §3: an action runs
at most once, whatever retries or double clicks happen): a client's retry or a second click in any
door gets the request already waiting, and the ask is audited; another person is told to decide
that one (409) rather than becoming one of its requesters."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from agent.governance.audit import list_events
from agent.governance.requests import decide, request_action
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
