"""The API's answers to the approval-step attacks: blocked or 422 with the reason, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import api_world
from ui.server import create_app

H = api_world.HEADERS


@pytest.fixture
def client(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "api.db")
    with TestClient(create_app(services=svc, panel=False)) as c:
        yield c


def _post(client, who: str, body: str):
    return client.post(
        "/api/v1/requests", content=body, headers={**H[who], "Content-Type": "application/json"}
    )


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_parameters_are_422_not_500(client, number):
    body = '{"order_id": "SO-100003", "action": "SPLIT_SHIPMENT", "params": {"order_id": "SO-100003", "line_no": 1, "ship_qty": %s}}'
    resp = _post(client, "csr", body % number)
    assert resp.status_code == 422, resp.text
    assert "finite" in resp.json()["message"]
    assert client.get("/api/v1/requests", headers=H["csr"]).json()["items"] == []


def test_oversize_parameters_are_422_before_anything_is_stored(client):
    body = '{"order_id": "SO-100003", "action": "CORRECT_PRICE", "params": {"order_id": "SO-100003", "line_no": 1, "new_unit_price": "%s"}}'
    resp = _post(client, "csr", body % ("9" * 500_000))
    assert resp.status_code == 422, resp.text[:300]
    assert "limit is 4,000" in resp.json()["message"]
    assert client.get("/api/v1/requests", headers=H["csr"]).json()["items"] == []


def test_another_orders_record_is_blocked_and_an_edit_may_not_retarget(client):
    resp = client.post(
        "/api/v1/requests",
        json={
            "order_id": "SO-100003",
            "action": "CORRECT_PRICE",
            "params": {"order_id": "SO-100001", "line_no": 1, "new_unit_price": "0.01"},
        },
        headers=H["csr"],
    )
    # refused (422, README "API" errors) like the CLI's exit 2, with the guard's reasons in details
    assert resp.status_code == 422 and resp.json()["error"] == "guard_blocked", resp.text
    assert "not the request's order SO-100003" in resp.json()["details"][0]
    # the blocked request is kept, with its reasons, for people to see what was tried
    kept = client.get("/api/v1/requests", params={"status": "blocked"}, headers=H["csr"]).json()["items"]
    assert [r["action"] for r in kept] == ["CORRECT_PRICE"] and f"request {kept[0]['id']}" in resp.json()[
        "message"
    ]
    assert "not the request's order SO-100003" in kept[0]["guard"]["reasons"][0]
    req = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["planner"]).json()
    assert req["status"] == "pending_approval"
    resp = client.post(
        f"/api/v1/requests/{req['id']}/edit",
        json={"params": {"order_id": "SO-100001"}, "reason": "release the other one"},
        headers=H["credit_analyst"],
    )
    assert resp.status_code == 422 and "never which records" in resp.text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_client(request, tmp_path, monkeypatch):
    """The API over this world on SQLite and on PostgreSQL (a scratch schema of its own)."""
    if request.param == "sqlite":
        database: object = tmp_path / "api.db"
    else:
        from tools.db import make_engine, session_factory, upgrade
        from tools.fixtures import load_fixture

        database = request.getfixturevalue("pg_url")
        engine = make_engine(str(database))
        upgrade(engine)
        with session_factory(engine)() as session:
            load_fixture(session, api_world.fixture(), case_id="api-world")
        api_world.ensure_users(engine)
        engine.dispose()
    svc = api_world.services(monkeypatch, database)  # type: ignore[arg-type]
    with TestClient(create_app(services=svc, panel=False)) as c:
        yield c


def test_a_nul_character_is_422_on_every_door_that_stores_text(any_client):
    """No PostgreSQL text or JSONB column holds NUL: parameters, a decision's reason, a chat turn
    and a queue reassignment's reason carrying one are refused with 422, never a 500, and nothing
    of them is stored; the audit chain stays intact."""
    client = any_client
    resp = client.post(
        "/api/v1/requests",
        json={
            "order_id": "SO-100003",
            "action": "SPLIT_SHIPMENT",
            "params": {"order_id": "SO-100003", "line_no": 1, "ship_qty": 1, "note\u0000": "x"},
        },
        headers=H["csr"],
    )
    assert resp.status_code == 422 and "NUL" in resp.json()["message"], resp.text
    resp = client.post(
        "/api/v1/requests",
        json={"order_id": "SO-100003", "action": "ESCALATE", "params": {"role": "csr", "reason": "a\u0000b"}},
        headers=H["csr"],
    )
    assert resp.status_code == 422 and "NUL" in resp.json()["message"], resp.text
    assert client.get("/api/v1/requests", headers=H["csr"]).json()["items"] == []
    req = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["planner"]).json()
    assert req["status"] == "pending_approval"
    resp = client.post(
        f"/api/v1/requests/{req['id']}/reject", json={"reason": "no\u0000pe"}, headers=H["credit_analyst"]
    )
    assert resp.status_code == 422 and "NUL" in resp.json()["message"], resp.text
    assert (
        client.get(f"/api/v1/requests/{req['id']}", headers=H["csr"]).json()["status"] == "pending_approval"
    )
    resp = client.post(
        "/api/v1/chat/t1", json={"message": "what about SO-100003\u0000", "stream": False}, headers=H["csr"]
    )
    assert resp.status_code == 422, resp.text
    assert client.post("/api/v1/triage", json={"order_ids": ["SO-100003"]}, headers=H["planner"]).is_success
    [item] = client.get("/api/v1/queue", headers=H["planner"]).json()["items"]
    resp = client.post(
        f"/api/v1/queue/{item['id']}/reassign",
        json={"to_role": "csr", "reason": "a\u0000"},
        headers=H["planner"],
    )
    assert resp.status_code == 422, resp.text
    assert client.get("/api/v1/audit/verify", headers=H["admin"]).json()["ok"] is True
