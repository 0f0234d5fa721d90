"""The API's approval workflow, audit log and KPIs: request → decide as the signed-in user → execute
once → audited; 403 beyond one's role, 409 already decided, 422 blocked by the guard."""

from __future__ import annotations

import json

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


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code and body["message"], body
    return body


def _request(client, who: str, order_id: str, **extra) -> dict:
    resp = client.post("/api/v1/requests", json={"order_id": order_id, **extra}, headers=H[who])
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_request_the_recommendation_then_approve_once_as_the_approver(client):
    req = _request(client, "planner", "SO-100002")
    assert (req["action"], req["risk"], req["approver_role"]) == (
        "RELEASE_CREDIT_HOLD",
        "medium",
        "credit_analyst",
    )
    assert req["requested_by"] == "planner" and req["is_recommendation"] and req["guard"]["ok"]
    assert req["status"] == "pending_approval" and req["execution"] is None
    assert [
        r["id"] for r in client.get("/api/v1/requests/queue", headers=H["credit_analyst"]).json()["items"]
    ] == [req["id"]]
    assert [
        r["id"] for r in client.get("/api/v1/requests/queue", headers=H["ops_manager"]).json()["items"]
    ] == [req["id"]]
    assert client.get("/api/v1/requests/queue", headers=H["planner"]).json()["items"] == []

    # beyond one's role: 403, and nothing changes
    body = _error(
        client.post(f"/api/v1/requests/{req['id']}/approve", headers=H["planner"]), 403, "forbidden"
    )
    assert "planner" in body["message"]
    _error(client.post(f"/api/v1/requests/{req['id']}/approve", headers=H["csr"]), 403, "forbidden")
    assert (
        client.get(f"/api/v1/requests/{req['id']}", headers=H["csr"]).json()["status"] == "pending_approval"
    )

    done = client.post(
        f"/api/v1/requests/{req['id']}/approve",
        json={"reason": "paid yesterday"},
        headers=H["credit_analyst"],
    )
    assert done.status_code == 200, done.text
    done = done.json()
    assert done["status"] == "executed" and done["execution"]["status"] in (
        "succeeded",
        "success",
        "executed",
        "ok",
    )
    order = client.get("/api/v1/orders/SO-100002", headers=H["csr"]).json()["order"]
    assert order["credit_released"] is True and order["status"] == "released"

    # already decided: 409, executed at most once
    _error(client.post(f"/api/v1/requests/{req['id']}/approve", headers=H["credit_manager"]), 409, "conflict")
    _error(
        client.post(
            f"/api/v1/requests/{req['id']}/reject", json={"reason": "late"}, headers=H["credit_analyst"]
        ),
        409,
        "conflict",
    )

    events = client.get("/api/v1/audit", params={"request_id": req["id"]}, headers=H["csr"]).json()["items"]
    kinds = [e["event_type"] for e in events]
    assert any("request" in k for k in kinds) and any("execut" in k for k in kinds), kinds
    assert {e["actor"] for e in events} >= {"planner", "credit_analyst"}
    assert client.get("/api/v1/audit/verify", headers=H["csr"]).json()["ok"] is True


def test_nobody_approves_their_own_request(client):
    req = _request(client, "credit_analyst", "SO-100002")
    _error(
        client.post(f"/api/v1/requests/{req['id']}/approve", headers=H["credit_analyst"]), 403, "forbidden"
    )


def test_ones_own_request_is_not_in_ones_approval_queue(client):
    """The queue lists what the signed-in user may decide; nobody decides their own request."""
    mine = _request(client, "planner", "SO-100003")  # SPLIT_SHIPMENT, decided by a planner
    assert mine["approver_role"] == "planner"
    assert client.get("/api/v1/requests/queue", headers=H["planner"]).json()["items"] == []
    queued = client.get("/api/v1/requests/queue", headers=H["planner2"]).json()["items"]
    assert [r["id"] for r in queued] == [mine["id"]]


def test_reject_needs_a_reason_and_edit_is_guarded(client):
    req = _request(client, "csr", "SO-100003")
    assert req["action"] == "SPLIT_SHIPMENT" and req["approver_role"] == "planner"
    _error(client.post(f"/api/v1/requests/{req['id']}/reject", json={}, headers=H["planner"]), 422, "invalid")
    blocked = client.post(
        f"/api/v1/requests/{req['id']}/edit",
        headers=H["planner"],
        json={"params": {**req["params"], "ship_qty": 100_000}, "reason": "ship everything"},
    )
    body = _error(blocked, 422, "guard_blocked")
    assert body["details"], body
    edited = client.post(
        f"/api/v1/requests/{req['id']}/edit",
        headers=H["planner"],
        json={"params": {**req["params"], "ship_qty": 400}, "reason": "keep 100 for a rush order"},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["params"]["ship_qty"] == 400 and edited.json()["status"] == "executed"

    other = _request(client, "csr", "SO-100002")
    rejected = client.post(
        f"/api/v1/requests/{other['id']}/reject",
        json={"reason": "customer pays first"},
        headers=H["credit_analyst"],
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    _error(
        client.post(f"/api/v1/requests/{other['id']}/approve", headers=H["credit_analyst"]), 409, "conflict"
    )


def test_request_errors(client):
    _error(
        client.post("/api/v1/requests", json={"order_id": "SO-404"}, headers=H["planner"]), 404, "not_found"
    )
    _error(
        client.post("/api/v1/requests", json={"order_id": "SO-100001"}, headers=H["planner"]), 409, "conflict"
    )  # nothing to do
    _error(
        client.post(
            "/api/v1/requests",
            json={"order_id": "SO-100002", "action": "NOT_AN_ACTION"},
            headers=H["planner"],
        ),
        422,
        "guard_blocked",
    )
    _error(client.get("/api/v1/requests/999999", headers=H["planner"]), 404, "not_found")
    _error(client.post("/api/v1/requests/999999/approve", headers=H["credit_analyst"]), 404, "not_found")
    _error(client.post("/api/v1/requests/abc/approve", headers=H["credit_analyst"]), 422, "invalid")


def test_list_requests_filters(client):
    a = _request(client, "planner", "SO-100002")
    b = _request(client, "csr", "SO-100003")
    rows = client.get("/api/v1/requests", params={"order_id": "SO-100003"}, headers=H["csr"]).json()["items"]
    assert [r["id"] for r in rows] == [b["id"]]
    pending = client.get(
        "/api/v1/requests", params={"status": "pending_approval", "role": "credit_analyst"}, headers=H["csr"]
    ).json()
    assert [r["id"] for r in pending["items"]] == [a["id"]]
    _error(client.get("/api/v1/requests", params={"status": "bogus"}, headers=H["csr"]), 422, "invalid")


def test_audit_export_is_for_audit_roles(client):
    _request(client, "planner", "SO-100002")
    _error(client.get("/api/v1/audit/export", headers=H["planner"]), 403, "forbidden")
    resp = client.get("/api/v1/audit/export", params={"format": "jsonl"}, headers=H["compliance_officer"])
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in resp.text.splitlines()]
    assert lines and all("hash" in e and "prev_hash" in e for e in lines)
    csv_text = client.get("/api/v1/audit/export", params={"format": "csv"}, headers=H["admin"]).text
    assert csv_text.splitlines()[0].startswith("seq") and len(csv_text.splitlines()) == len(lines) + 1
    _error(client.get("/api/v1/audit/export", params={"format": "xml"}, headers=H["admin"]), 422, "invalid")


def test_kpis(client):
    client.post("/api/v1/triage", json={"order_ids": ["SO-100002", "SO-100003"]}, headers=H["csr"])
    req = _request(client, "planner", "SO-100002")
    client.post(f"/api/v1/requests/{req['id']}/approve", headers=H["credit_analyst"])
    kpis = client.get("/api/v1/kpis", headers=H["ops_manager"]).json()["kpis"]
    freq = kpis["exception_frequency"]
    assert freq["by_type"] == {"CREDIT_HOLD": 1, "INVENTORY_SHORTFALL": 1}
    assert kpis["recommendation_acceptance_rate"]["value"] == 1.0 and kpis["override_rate"]["value"] == 0.0
    _error(
        client.get("/api/v1/kpis", params={"since": "yesterday"}, headers=H["ops_manager"]), 422, "invalid"
    )
    assert client.get("/api/v1/anomalies", headers=H["ops_manager"]).json() == {"items": []}
    body = _error(client.get("/api/v1/risk", headers=H["ops_manager"]), 503, "unavailable")
    assert "copilot risk train" in body["message"]


def test_a_retried_request_is_the_one_waiting_200_not_a_second_201(client):
    """A client that retries POST /requests (a timeout, a double click) gets the request that has
    not run yet, with 200 and repeated: true; approving it runs the action once."""
    first = _request(client, "planner", "SO-100002")
    again = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["planner"])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"] and again.json()["repeated"] is True and not first["repeated"]
    pending = client.get("/api/v1/requests", params={"order_id": "SO-100002"}, headers=H["ops_manager"])
    assert [r["id"] for r in pending.json()["items"]] == [first["id"]]
    done = client.post(f"/api/v1/requests/{first['id']}/approve", headers=H["credit_analyst"])
    assert done.status_code == 200 and done.json()["status"] == "executed", done.text
