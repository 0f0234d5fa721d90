"""Asking again for an action that has not run yet files nothing new (domain.md §3: an action runs
at most once, whatever retries or double clicks happen): a client's retry, a second click in any
door, or a second person gets the request already waiting, and the ask is audited."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from agent.governance.audit import list_events
from agent.governance.requests import decide, request_action
from tests.test_governance import POLICY, chain_ok, count, shortfall_fixture, world
from tools.models import ActionRequest, Execution


def test_the_same_ask_while_one_waits_gets_that_one_and_files_nothing(engine):
    factory = world(engine, shortfall_fixture())
    first = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert first["status"] == "pending_approval" and not first.get("repeated")
    again = request_action(factory, POLICY, order_id="SO1", requested_by="csr", source="api")
    other = request_action(  # another person, the same action and parameters named explicitly
        factory,
        POLICY,
        order_id="SO1",
        requested_by="ops_manager",
        action=first["action"],
        params=first["params"],
    )
    assert again["id"] == other["id"] == first["id"] and again["repeated"] and other["repeated"]
    assert count(factory, ActionRequest) == 1
    with factory() as s:
        kinds = [e["event_type"] for e in list_events(s, request_id=first["id"])]
    assert kinds.count("action_requested") == 1 and kinds.count("action_request_repeated") == 2
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

    def ask(user: str) -> None:
        try:
            start.wait()
            ids.append(request_action(factory, POLICY, order_id="SO1", requested_by=user)["id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(u,)) for u in ("csr", "planner", "ops_manager", "csr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 1
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ActionRequest)) == 1
