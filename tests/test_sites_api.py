"""Sites through the API and the chat: a user limited to some sites sees, triages, chats about and
decides only their orders, on every route that names or lists orders; another site's order is
answered exactly as an unknown one (``tools.sites``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import api_world, sites_world
from ui.api.auth import load_token_store
from ui.server import create_app

H = sites_world.HEADERS


@pytest.fixture
def services(tmp_path, monkeypatch):
    url = sites_world.make_database(tmp_path / "sites.db")
    svc = api_world.services(monkeypatch, url)
    svc.tokens = load_token_store(sites_world.token_setting(), tmp_path)  # the scoped users' tokens too
    svc.warm_up()
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services=services, panel=False)) as c:
        yield c


def _same_as_unknown(client, method: str, path: str, other: str, unknown: str, **kw):
    """``other`` (another site's id) gets exactly the answer ``unknown`` (no such id) gets."""
    a = client.request(method, path.format(other), **kw)
    b = client.request(method, path.format(unknown), **kw)
    assert a.status_code == b.status_code == 404, (a.text, b.text)
    assert a.text.replace(other, "ID") == b.text.replace(unknown, "ID")


def test_orders_triage_and_text(client):
    eu = H["eu_credit"]
    me = client.get("/api/v1/me", headers=eu).json()
    assert (me["regions"], me["warehouses"]) == (["eu"], [])
    assert client.get("/api/v1/me", headers=H["planner"]).json()["regions"] == []
    # near misses are the user's sites' orders only: the same for an unknown id one edit from SO-200002
    _same_as_unknown(client, "GET", "/api/v1/orders/{}", "SO-100002", "SO-200009", headers=eu)
    _same_as_unknown(client, "GET", "/api/v1/orders/{}", "so-100002", "SO-999999", headers=eu)
    assert client.get("/api/v1/orders/SO-200002", headers=eu).status_code == 200
    body = client.post("/api/v1/triage", json={"order_ids": ["SO-100002", "SO-200002"]}, headers=eu).json()
    assert body["not_found"] == ["SO-100002"]
    assert body["results"][1]["exceptions"][0]["type"] == "CREDIT_HOLD"
    text = client.post(
        "/api/v1/triage/text", json={"text": "Where are SO-100002 and SO-200002?"}, headers=eu
    ).json()
    assert text["order_ids"] == ["SO-200002"] and text["not_found"] == ["SO-100002"]
    hidden = next(r for r in text["results"] if r["order_id"] == "SO-100002")
    assert hidden["error"].startswith("order not found") and hidden["exceptions"] == []
    # the unscoped planner sees both
    both = client.post("/api/v1/triage", json={"order_ids": ["SO-100002", "SO-200002"]}, headers=H["planner"])
    assert both.json()["not_found"] == []


def test_exceptions_queue_kpis_and_risk_are_the_sites(client):
    client.post("/api/v1/triage", json={"order_ids": list(sites_world_orders())}, headers=H["ops_manager"])
    seen = {e["order_id"] for e in client.get("/api/v1/exceptions", headers=H["eu_credit"]).json()["items"]}
    assert seen == {"SO-200002"}
    seen = {e["order_id"] for e in client.get("/api/v1/exceptions", headers=H["wh1_credit"]).json()["items"]}
    assert seen == {"SO-100002"}
    all_seen = {
        e["order_id"] for e in client.get("/api/v1/exceptions", headers=H["ops_manager"]).json()["items"]
    }
    assert all_seen == {"SO-100002", "SO-200002"}
    queue = client.get("/api/v1/queue", headers=H["eu_credit"]).json()
    assert [i["order_id"] for i in queue["items"]] == ["SO-200002"]
    assert queue["sizes"]["credit_analyst"]["open"] == 1
    mine = next(i for i in queue["items"])
    other = next(i for i in client.get("/api/v1/queue", headers=H["wh1_credit"]).json()["items"])
    assert client.post(f"/api/v1/queue/{other['id']}/claim", headers=H["eu_credit"]).status_code == 404
    assert client.post(f"/api/v1/queue/{mine['id']}/claim", headers=H["eu_credit"]).status_code == 200
    kpis = client.get("/api/v1/kpis", headers=H["eu_credit"]).json()["kpis"]
    everyone = client.get("/api/v1/kpis", headers=H["ops_manager"]).json()["kpis"]
    assert (kpis["exception_frequency"]["orders"], kpis["exception_frequency"]["orders_with_exceptions"]) == (
        1,
        1,
    )
    assert set(kpis["exception_frequency"]["by_warehouse"]) == {"WH2"}
    assert everyone["exception_frequency"]["orders"] == 5
    assert kpis["queue_sizes"]["by_role"] == {
        "credit_analyst": {"open": 1, "sla_breached": 0, "escalated": 0, "claimed": 1}
    }


def sites_world_orders():
    return ("SO-100001", "SO-100002", "SO-200002", "SO-300001", "SO-400001")


def test_requests_and_decisions_only_for_the_sites(client, services):
    eu, wh1 = H["eu_credit"], H["wh1_credit"]
    refused = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=eu)
    unknown = client.post("/api/v1/requests", json={"order_id": "SO-200009"}, headers=eu)
    assert refused.status_code == unknown.status_code == 404
    assert refused.text.replace("SO-100002", "ID") == unknown.text.replace("SO-200009", "ID")
    assert "did you mean SO-200002?" in refused.text  # the user's own order one edit away
    filed = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["csr"]).json()
    rid = filed["id"]
    assert filed["status"] == "pending_approval" and filed["approver_role"] == "credit_analyst"
    _same_as_unknown(client, "GET", "/api/v1/requests/{}", str(rid), "999999", headers=eu)
    assert rid not in [r["id"] for r in client.get("/api/v1/requests", headers=eu).json()["items"]]
    assert client.get("/api/v1/requests/queue", headers=eu).json()["items"] == []
    assert [r["id"] for r in client.get("/api/v1/requests/queue", headers=wh1).json()["items"]] == [rid]
    approve = client.post(f"/api/v1/requests/{rid}/approve", headers=eu)
    assert approve.status_code == 404
    assert client.get(f"/api/v1/requests/{rid}", headers=wh1).json()["status"] == "pending_approval"
    whatif = client.post("/api/v1/whatif", json={"order_id": "SO-100002"}, headers=eu)
    assert whatif.status_code == 404
    done = client.post(f"/api/v1/requests/{rid}/approve", headers=wh1)
    assert done.status_code == 200 and done.json()["status"] == "executed"
    assert client.get("/api/v1/messages", headers=eu).json()["items"] == []


def test_audit_is_the_sites_and_the_export_is_refused(client):
    client.post("/api/v1/triage", json={"order_ids": ["SO-100002", "SO-200002"]}, headers=H["ops_manager"])
    east = client.get("/api/v1/audit", headers=H["east_compliance"]).json()["items"]
    assert east and {e["order_id"] for e in east} == {"SO-100002"}
    everyone = client.get("/api/v1/audit", headers=H["compliance_officer"]).json()["items"]
    assert {"SO-100002", "SO-200002"} <= {e["order_id"] for e in everyone}
    refused = client.get("/api/v1/audit/export", headers=H["east_compliance"])
    assert refused.status_code == 403 and "limited to region east" in refused.json()["message"]
    assert client.get("/api/v1/audit/export", headers=H["compliance_officer"]).status_code == 200


def test_chat_tools_do_not_reach_another_site(client):
    def ask(user: str, thread: str, message: str) -> dict:
        resp = client.post(
            f"/api/v1/chat/{thread}", json={"message": message, "stream": False}, headers=H[user]
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    other = ask("eu_credit", "t1", "What is blocking SO-100002?")
    unknown = ask("eu_credit", "t2", "What is blocking SO-200003?")  # as SO-100002: one edit from SO-200002
    assert other["answer"].replace("SO-100002", "ID") == unknown["answer"].replace("SO-200003", "ID")
    assert "Bolt" not in other["answer"] and "CREDIT_HOLD" not in other["answer"]
    mine = ask("eu_credit", "t3", "What is blocking SO-200002?")
    assert "SO-200002" in mine["answer"] and any(t["name"] == "triage_order" for t in mine["tool_calls"])
    unscoped = ask("planner", "t1", "What is blocking SO-100002?")
    assert unscoped["answer"] != other["answer"]


def test_chat_read_tools_are_built_for_the_users_sites(services):
    from tools.sites import Scope

    tools = services.copilot().tools_for(Scope.of(regions=["eu"]))
    other = tools["get_order"].invoke({"order_id": "SO-100002"})
    unknown = tools["get_order"].invoke({"order_id": "SO-999999"})
    assert other.replace("SO-100002", "ID") == unknown.replace("SO-999999", "ID") and "not found" in other
    found = tools["search_orders"].invoke({})
    assert [o["order_id"] for o in found["orders"]] == ["SO-200002"]
    stock = tools["get_stock"].invoke({"sku": "A"})
    assert [w["warehouse_id"] for w in stock["warehouses"]] == ["WH2"]
    assert "not found" in tools["get_customer_credit"].invoke({"customer_id": "C2"})
    assert "not found" in tools["get_open_purchase_orders"].invoke({"sku": "A", "warehouse_id": "WH1"})
    everyone = services.copilot().tools["search_orders"].invoke({})
    assert everyone["total"] == 5


def test_the_panel_shows_a_scoped_user_their_sites_only(services, client):
    from tools.errors import NotFound
    from ui.panel.approvals import ApprovalsTab
    from ui.panel.orders import OrdersTab
    from ui.panel.queue import QueueTab

    eu = sites_world.TOKENS["eu_credit"]
    _table, status, cache, _pick = OrdersTab(services).triage_paste(eu, "SO-100002 and SO-200002 please")
    assert set(cache) == {"SO-200002"} and "SO-100002" in status and "not found" in status
    detail = "".join(OrdersTab(services).order_detail(eu, "SO-100002", {}))
    assert "Not found" in detail and "CREDIT_HOLD" not in detail
    rid = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["csr"]).json()["id"]
    with pytest.raises(NotFound):
        ApprovalsTab(services).request_detail(eu, str(rid))
    assert "Nothing pending" in ApprovalsTab(services).load_queue(eu)[-1]
    queue_tab = QueueTab(services)
    client.post("/api/v1/triage", json={"order_ids": list(sites_world_orders())}, headers=H["ops_manager"])
    queue_tab.load(sites_world.TOKENS["wh1_credit"])
    table, _choices, _status = queue_tab.load(eu)
    assert list(table["order"]) == ["SO-200002"]
    wh1_item = next(iter(queue_tab._shown["wh1_credit"]))
    assert queue_tab.detail(eu, str(wh1_item)) == "Select an exception."  # another user's pick: not shown
