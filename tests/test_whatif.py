"""What-if (domain.md §6 "Impact"): what an action would do to the other open orders, computed in
a transaction that is rolled back — through the function, the CLI, the API and the decision's
audit event; nothing is written on SQLite or PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from agent.governance.impact import whatif
from agent.governance.requests import decide, request_action
from tests.cli_run import run
from tests.factories import edit, line, order
from tests.test_allocation import POLICY, _conflict_world, erp_snapshot, world
from tools.errors import ToolError
from tools.models import AuditEvent, ExceptionRecord


def _counts(s) -> tuple[int, int]:
    return (
        s.scalar(select(func.count()).select_from(AuditEvent)),
        s.scalar(select(func.count()).select_from(ExceptionRecord)),
    )


def _moving_world() -> dict:
    """SO1 (gold, 10 × A) is short at WH1; WH2-east... the clean world's WH2 is in DE, so WH3 (US,
    east) holds exactly 30 A, of which SO4 (standard) needs 25 open: moving SO1 there leaves
    SO4 short. SO5 ships from WH1 and is unaffected by stock elsewhere."""
    fx = _conflict_world(donors=())
    edit(fx, "customers", "P1", tier="gold", allow_partial_shipments=True)
    edit(fx, "warehouses", "WH3", name="Newark", region="east", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=30, allocated=0)
    fx["orders"].append(order("SO4", customer_id="C2", warehouse_id="WH3", lines=[line(qty=25)]))
    return fx


def test_a_reassignment_shows_the_donor_going_short_and_writes_nothing(engine):
    factory = world(engine, _conflict_world(donors=(("SO2", "C2", 12), ("SO3", "C3", 22))))
    with factory() as s:
        before, counts = erp_snapshot(s), _counts(s)
        result = whatif(s, POLICY, order_id="SO1")
        s.rollback()
    assert result["action"] == "REASSIGN_ALLOCATION" and result["feasible"] and result["rolled_back"]
    assert result["params"]["from_order_id"] == "SO2"
    mine = result["this_order"]
    assert {i["type"] for i in mine["clear"]} == {"ALLOCATION_CONFLICT", "INVENTORY_SHORTFALL"}
    assert result["checked_orders"] == 2  # SO2 and SO3 hold A at WH1
    [so2] = result["other_orders"]
    assert (so2["order_id"], so2["tier"], so2["customer_id"], so2["order_value"]) == (
        "SO2",
        "standard",
        "C2",
        "1200.00",
    )
    assert {i["type"] for i in so2["appear"]} == {"INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"} and so2[
        "clear"
    ] == []
    with factory() as s:
        assert erp_snapshot(s) == before and _counts(s) == counts


def test_a_reallocation_shows_the_order_it_would_starve(sqlite_engine):
    factory = world(sqlite_engine, _moving_world())
    with factory() as s:
        before = erp_snapshot(s)
        result = whatif(
            s,
            POLICY,
            order_id="SO1",
            action="REALLOCATE_WAREHOUSE",
            params={"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH3"},
        )
        s.rollback()
        assert erp_snapshot(s) == before
    assert ["A", "WH3"] in result["touched"] and ["A", "WH1"] in result["touched"]
    [so4] = result["other_orders"]
    assert so4["order_id"] == "SO4" and so4["tier"] == "standard"
    assert [i["type"] for i in so4["appear"]] == ["INVENTORY_SHORTFALL"]


def test_an_infeasible_action_has_no_impact_and_says_why(sqlite_engine):
    factory = world(sqlite_engine, _moving_world())
    with factory() as s:
        result = whatif(
            s,
            POLICY,
            order_id="SO1",
            action="REALLOCATE_WAREHOUSE",
            params={"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"},
        )
    assert result["feasible"] is False and "WH2 has 0 A available" in result["reason"]
    assert result["other_orders"] == []


def test_parameters_without_an_action_are_refused_not_replaced_by_the_recommendation(sqlite_engine):
    """'copilot whatif SO1 --params {...}' without --action simulated the recommendation's own
    parameters and answered as if for the ones given: refused with a clear error instead."""
    factory = world(sqlite_engine, _moving_world())
    with factory() as s, pytest.raises(ToolError, match="without an action"):
        whatif(s, POLICY, order_id="SO1", params={"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"})
    with factory() as s:
        assert whatif(s, POLICY, order_id="SO1", params={})["action"]  # no parameters: the recommendation


def test_an_action_naming_another_orders_records_is_not_simulated(sqlite_engine):
    """domain.md §3: an action acts on its request's order only. Asked for SO1, a price correction
    of SO4's line is what the guard blocks: what-if says so and writes nothing, rather than answering
    'feasible, no impact' from SO1's own line while it changed SO4's."""
    factory = world(sqlite_engine, _moving_world())
    with factory() as s:
        before = erp_snapshot(s)
        result = whatif(
            s,
            POLICY,
            order_id="SO1",
            action="CORRECT_PRICE",
            params={"order_id": "SO4", "line_no": 1, "new_unit_price": "1.00"},
        )
        s.rollback()
        assert erp_snapshot(s) == before
    assert result["feasible"] is False
    assert "is not the request's order SO1" in result["reason"]
    assert result["other_orders"] == [] and result["touched"] == []


def test_cli_and_api_answer_from_the_same_computation(sqlite_engine, monkeypatch, capsys, tmp_path):
    from fastapi.testclient import TestClient

    from tests.api_world import HEADERS, services
    from ui.server import create_app

    db = tmp_path / "w.db"
    from tools.db import make_engine, session_factory, upgrade
    from tools.fixtures import load_fixture

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with session_factory(engine)() as s:
        load_fixture(s, _conflict_world(), case_id="whatif")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    code, out, _ = run(monkeypatch, capsys, "whatif", "SO1", "--json")
    assert code == 0, out
    cli = json.loads(out)
    code, text_out, _ = run(monkeypatch, capsys, "whatif", "SO1")
    assert (
        code == 0 and "SO2 (standard customer C2, order value 800.00): gains [INVENTORY_SHORTFALL" in text_out
    )
    assert "nothing was written" in text_out
    code, _, err = run(monkeypatch, capsys, "whatif", "SO404")
    assert code == 2 and "SO404" in err
    code, _, err = run(
        monkeypatch, capsys, "whatif", "SO1", "--action", "REASSIGN_ALLOCATION", "--params", "[1]"
    )
    assert code == 2 and "JSON object" in err

    svc = services(monkeypatch, f"sqlite:///{db}")
    client = TestClient(create_app(services=svc, panel=False))
    res = client.post("/api/v1/whatif", json={"order_id": "SO1"}, headers=HEADERS["planner"])
    assert res.status_code == 200, res.text
    api = res.json()
    assert api["other_orders"] == cli["other_orders"] and api["params"] == cli["params"]
    assert client.post("/api/v1/whatif", json={"order_id": "SO1"}).status_code == 401
    bad = client.post(
        "/api/v1/whatif",
        json={"order_id": "SO1", "action": "REASSIGN_ALLOCATION", "params": {"qty": 1}},
        headers=HEADERS["planner"],
    )
    assert bad.status_code == 422 and "needs the parameter" in bad.text
    assert (
        client.post("/api/v1/whatif", json={"order_id": "SO404"}, headers=HEADERS["planner"]).status_code
        == 404
    )


def test_the_decision_records_the_impact_shown_to_the_approver(sqlite_engine):
    factory = world(sqlite_engine, _conflict_world())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["action"] == "REASSIGN_ALLOCATION" and req["status"] == "pending_approval", req
    with factory() as s:
        shown = whatif(s, POLICY, order_id="SO1", action=req["action"], params=req["params"])
        s.rollback()
    decide(factory, POLICY, req["id"], username="planner", decision="approve")
    with factory() as s:
        event = s.scalar(
            select(AuditEvent).where(AuditEvent.request_id == req["id"], AuditEvent.event_type == "decision")
        )
    impact = event.payload["impact"]
    assert impact["other_orders_affected"] == 1
    assert impact["other_orders"] == [
        {
            "order_id": "SO2",
            "tier": "standard",
            "order_value": "800.00",
            "appear": [f"{i['type']}@{i['instance']}" for i in shown["other_orders"][0]["appear"]],
            "clear": [],
        }
    ]


def test_chat_answers_what_happens_to_other_orders_from_the_same_computation(sqlite_engine):
    from agent.llm import FakeLLM
    from tests.copilot_world import make_copilot

    fx = _moving_world()
    for o in fx["orders"]:  # order numbers as customers write them
        o["order_id"] = {"SO1": "SO-200001", "SO4": "SO-200004"}[o["order_id"]]
    factory = world(sqlite_engine, fx)
    llm = FakeLLM([])  # unscripted: rules read the question, no model call is needed
    reply = make_copilot(factory, llm).chat(
        "t1", "what happens to other orders if we move SO-200001 to WH3?", username="planner"
    )
    assert reply["tool_calls"][0]["name"] == "what_if"
    assert reply["tool_calls"][0]["args"] == {
        "order_id": "SO-200001",
        "action": "REALLOCATE_WAREHOUSE",
        "warehouse_id": "WH3",
    }
    with factory() as s:
        expected = whatif(
            s,
            POLICY,
            order_id="SO-200001",
            action="REALLOCATE_WAREHOUSE",
            params={"order_id": "SO-200001", "line_no": 1, "to_warehouse_id": "WH3"},
        )
        s.rollback()
    assert (
        "SO-200004 (standard customer C2" in reply["answer"]
        and "gains [INVENTORY_SHORTFALL" in reply["answer"]
    )
    assert f"{expected['other_orders_affected']} would change" in reply["answer"]
    assert reply["request"] is None


def test_chat_what_if_and_note_find_an_order_numbered_as_in_the_contract(sqlite_engine):
    """Orders numbered ``SO1`` (the contract's own examples): the reader types them as ``SO-1``;
    the what-if and the note must name the existing order, as "what is blocking SO1?" does."""
    from agent.llm import FakeLLM
    from tests.copilot_world import make_copilot

    fx = _conflict_world(donors=(("SO2", "C2", 12),))
    edit(fx, "customers", "P1", email="buyer@prime.test")
    factory = world(sqlite_engine, fx)
    copilot = make_copilot(factory, FakeLLM([]))
    reply = copilot.chat(
        "w1", "what happens to other orders if we approve the recommendation for SO1?", username="planner"
    )
    assert reply["tool_calls"][0]["name"] == "what_if"
    assert "not found" not in reply["answer"]
    assert "SO2 (standard customer C2" in reply["answer"] and "gains [INVENTORY_SHORTFALL" in reply["answer"]
    note = copilot.chat("w2", "draft a note to the customer about SO1", username="planner")
    assert note["tool_calls"][0]["name"] == "draft_customer_note"
    assert "Note 1 to the customer about SO1 is pending_approval" in note["answer"], note["answer"]
