"""The API's messages: a planner asks for a note, a csr edits and approves it, the list shows it
queued; unknown ids are 404, bad input 422, anonymous 401."""

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


def test_ask_edit_approve_and_list_messages(client):
    resp = client.post("/api/v1/messages", json={"order_id": "SO-100003"}, headers=H["planner"])
    assert resp.status_code == 201, resp.text
    m = resp.json()
    assert m["kind"] == "customer" and m["status"] == "pending_approval"
    assert m["draft"]["fallback"] is True  # the fake model is unscripted: the marked template
    assert m["request"]["approver_role"] == "csr" and m["request"]["requested_by"] == "planner"
    rid = m["request"]["id"]
    bad = client.post(
        f"/api/v1/messages/{m['id']}/edit", json={"body": "Ships 2030-01-01."}, headers=H["csr"]
    )
    assert bad.status_code == 422 and "2030-01-01" in bad.json()["message"]
    body = f"Dear customer, your order SO-100003 keeps its promised date {m['facts']['promised_date']}."
    around = client.post(
        f"/api/v1/requests/{rid}/edit", json={"params": {"body": body}, "reason": "shorter"}, headers=H["csr"]
    )
    assert around.status_code == 422  # a message's text is edited only where it is checked
    ok = client.post(
        f"/api/v1/messages/{m['id']}/edit", json={"body": body, "reason": "shorter"}, headers=H["csr"]
    )
    assert ok.status_code == 200, ok.text
    listed = client.get("/api/v1/messages", params={"order_id": "SO-100003"}, headers=H["csr"]).json()
    assert [x["id"] for x in listed["items"]] == [m["id"]]
    shown = client.get(f"/api/v1/messages/{m['id']}", headers=H["csr"]).json()
    assert shown["status"] == "queued" and shown["delivery"]["body"] == body
    assert client.get("/api/v1/messages", params={"status": "sent"}, headers=H["csr"]).json()["items"] == []


def test_message_errors(client):
    assert client.get("/api/v1/messages").status_code == 401
    assert client.get("/api/v1/messages/999", headers=H["csr"]).status_code == 404
    assert client.post("/api/v1/messages", json={"order_id": "SO-9"}, headers=H["planner"]).status_code == 404
    assert client.post("/api/v1/messages", json={"order": "x"}, headers=H["planner"]).status_code == 422
