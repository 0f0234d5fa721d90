"""GET /api/v1/queue and claim / release / reassign over HTTP."""

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
        ids = ["SO-100001", "SO-100002", "SO-100003"]
        assert c.post("/api/v1/triage", json={"order_ids": ids}, headers=H["planner"]).status_code == 200
        yield c
    svc.close()


def test_my_queue_is_my_roles_by_priority_with_the_recommendation(client):
    r = client.get("/api/v1/queue", headers=H["planner"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "planner" and body["covers"] == ["planner"]
    assert [(i["order_id"], i["type"]) for i in body["items"]] == [("SO-100003", "INVENTORY_SHORTFALL")]
    assert body["items"][0]["recommendation"]["approver_role"] == "planner"
    credit = client.get("/api/v1/queue", headers=H["credit_analyst"]).json()["items"]
    assert [(i["order_id"], i["type"]) for i in credit] == [("SO-100002", "CREDIT_HOLD")]
    ops = client.get("/api/v1/queue", headers=H["ops_manager"]).json()
    assert len(ops["items"]) == 2 and "planner" in ops["covers"]


def test_claim_release_reassign_over_http(client):
    [item] = client.get("/api/v1/queue", headers=H["planner"]).json()["items"]
    url = f"/api/v1/queue/{item['id']}"
    assert client.post(f"{url}/claim", headers=H["csr"]).status_code == 403
    r = client.post(f"{url}/claim", headers=H["planner"])
    # the answer names the queue the item stays in, as GET /queue does (not null: a claim moves nothing)
    assert r.status_code == 200 and r.json() == {
        "id": item["id"],
        "claimed_by": "planner",
        "owner_role": "planner",
    }
    assert client.post(f"{url}/claim", headers=H["planner2"]).status_code == 409
    released = client.post(f"{url}/release", headers=H["planner"]).json()
    assert released == {"id": item["id"], "claimed_by": None, "owner_role": "planner"}
    r = client.post(
        f"{url}/reassign", json={"to_role": "csr", "reason": "customer asked"}, headers=H["planner"]
    )
    assert r.status_code == 200 and r.json()["owner_role"] == "csr"
    assert client.get("/api/v1/queue", headers=H["planner"]).json()["items"] == []
    assert client.post("/api/v1/queue/99999/claim", headers=H["planner"]).status_code == 404
    assert client.get("/api/v1/queue").status_code == 401


def test_kpis_carry_the_workflow_figures(client):
    """Issue 17: the KPIs gain the touchless rate, queue sizes and SLA breaches per role."""
    kpis = client.get("/api/v1/kpis", headers=H["ops_manager"]).json()["kpis"]
    sizes = kpis["queue_sizes"]
    assert sizes["value"] == 2 and sizes["unit"] == "open exceptions in the work queues"
    assert sizes["by_role"]["planner"]["open"] == 1 and sizes["by_role"]["credit_analyst"]["open"] == 1
    assert kpis["sla_breaches"]["value"] == 0
    assert kpis["sla_breaches"]["by_role"] == {"credit_analyst": 0, "planner": 0}
    touchless = kpis["touchless_rate"]
    assert touchless["value"] is None and touchless["executed_requests"] == 0 and touchless["touchless"] == 0
