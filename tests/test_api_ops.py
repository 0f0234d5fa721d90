"""Operations analytics in the service (issues 7 and 9): recurring anomalies ranked by cost with their
process-redesign suggestion, model monitoring (drift of the risk model's inputs, override rate by
recommended action) through the API, and the panel's Dashboard showing both, with a warning once
the override rate passes its threshold."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from agent.ops.anomalies import DELAY_COST_RATE, TOUCH_COST_USD
from agent.ops.monitoring import OVERRIDE_MIN_DECIDED, OVERRIDE_WARN
from tests import api_world
from tests.factories import edit, line, order
from tools.db import make_engine, session_factory, upgrade
from tools.fixtures import load_fixture
from ui.server import create_app

H = api_world.HEADERS
SHORT = (
    "SO-100003",
    "SO-100004",
    "SO-100005",
)  # 600 × A at WH1, which has 500: three shortfalls of one cause


def _database(path) -> str:
    """The API world plus two more orders short of A at WH1 (item A from supplier SUP1)."""
    world = api_world.fixture()
    world["orders"] += [order(oid, lines=[line(qty=600)]) for oid in SHORT[1:]]
    edit(world, "items", "A", supplier_id="SUP1")
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        load_fixture(session, world, case_id="api-ops")
    api_world.ensure_users(engine)
    engine.dispose()
    return url


@pytest.fixture
def services(tmp_path, monkeypatch):
    # A var folder of its own: no trained risk model.
    svc = api_world.services(monkeypatch, _database(tmp_path / "ops.db"), var_dir=tmp_path / "var")
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services=services, panel=False)) as c:
        yield c


def _reject_recommendations(client, n: int) -> None:
    """``n`` recommendations (release SO-100002's credit hold) requested and rejected by the approver."""
    for _ in range(n):
        req = client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["planner"])
        assert req.status_code == 201, req.text
        done = client.post(
            f"/api/v1/requests/{req.json()['id']}/reject",
            json={"reason": "customer has not paid"},
            headers=H["credit_analyst"],
        )
        assert done.status_code == 200 and done.json()["status"] == "rejected", done.text


@pytest.mark.parametrize("path", ["/api/v1/anomalies", "/api/v1/monitoring"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}])
def test_ops_endpoints_need_a_token(client, path, headers):
    resp = client.get(path, headers=headers)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


def test_anomalies_ranked_by_cost_with_suggestions(client):
    assert client.get("/api/v1/anomalies", headers=H["ops_manager"]).json() == {"items": []}
    resp = client.post(
        "/api/v1/triage", json={"order_ids": ["SO-100001", "SO-100002", *SHORT]}, headers=H["csr"]
    )
    assert resp.status_code == 200, resp.text
    items = client.get("/api/v1/anomalies", headers=H["ops_manager"]).json()["items"]
    # One shortfall per order, each still open: 3 touches, the three orders' value delayed, no expedite.
    cost = round(3 * TOUCH_COST_USD + DELAY_COST_RATE * 3 * 600 * 100, 2)
    assert [(a["rank"], a["type"], a["dimension"], a["key"]) for a in items] == [
        (1, "INVENTORY_SHORTFALL", "customer", "C1"),
        (2, "INVENTORY_SHORTFALL", "sku", "A"),
        (3, "INVENTORY_SHORTFALL", "supplier", "SUP1"),
        (4, "INVENTORY_SHORTFALL", "warehouse", "WH1"),
    ]
    for a in items:
        assert (a["orders"], a["open_orders"], a["touches"], a["expedite_spend"]) == (3, 3, 3, 0.0)
        assert (a["delayed_value"], a["cost_usd"]) == (180_000.0, cost) and a["order_ids"] == list(SHORT)
    sku = items[1]["suggestion"]
    assert sku["owner_role"] == "planner" and sku["replaces_action"] == "REALLOCATE_WAREHOUSE"
    assert sku["text"].startswith("Raise the safety stock and reorder point of A")
    assert "CREDIT_HOLD" not in {a["type"] for a in items}  # one order only: not recurring


def test_monitoring_without_a_model_still_reports_override_rates(client):
    body = client.get("/api/v1/monitoring", headers=H["planner"]).json()
    assert body["drift"]["status"] == "no_model" and "copilot risk train" in body["drift"]["reason"]
    assert body["override_rate"]["by_action"] == {} and body["warnings"] == []
    assert body["thresholds"]["override_warn"] == OVERRIDE_WARN
    assert body["thresholds"]["override_min_decided"] == OVERRIDE_MIN_DECIDED


def test_monitoring_warns_once_the_override_rate_passes_its_threshold(client):
    _reject_recommendations(client, OVERRIDE_MIN_DECIDED - 1)
    body = client.get("/api/v1/monitoring", headers=H["ops_manager"]).json()
    entry = body["override_rate"]["by_action"]["RELEASE_CREDIT_HOLD"]
    assert (entry["decided"], entry["overridden"], entry["warning"]) == (
        OVERRIDE_MIN_DECIDED - 1,
        OVERRIDE_MIN_DECIDED - 1,
        False,
    )
    assert body["warnings"] == []  # too few decisions to judge
    _reject_recommendations(client, 1)
    body = client.get("/api/v1/monitoring", headers=H["ops_manager"]).json()
    entry = body["override_rate"]["by_action"]["RELEASE_CREDIT_HOLD"]
    assert (entry["decided"], entry["override_rate"], entry["warning"]) == (OVERRIDE_MIN_DECIDED, 1.0, True)
    assert len(body["warnings"]) == 1 and "RELEASE_CREDIT_HOLD" in body["warnings"][0]
    assert body["warnings"] == body["override_rate"]["warnings"]


def _panel_fn(blocks, api_name: str):
    return next(f.fn for f in blocks.fns.values() if f.api_name == api_name)


def test_dashboard_shows_anomalies_and_the_monitoring_warning(client, services):
    from ui.panel import build_panel

    dashboard_ops = _panel_fn(build_panel(services), "dashboard_ops")
    token = api_world.TOKENS["ops_manager"]
    table, md = dashboard_ops(token)
    assert (
        table.empty
        and "no warning" in md
        and "copilot risk train" in md
        and "Recurring anomalies:** none" in md
    )
    assert "Not signed in" in dashboard_ops("wrong-token-0123456789")[1]

    client.post("/api/v1/triage", json={"order_ids": list(SHORT)}, headers=H["csr"])
    _reject_recommendations(client, OVERRIDE_MIN_DECIDED)
    table, md = dashboard_ops(token)
    assert list(table["key"]) == ["C1", "A", "SUP1", "WH1"] and set(table["type"]) == {"INVENTORY_SHORTFALL"}
    assert (
        table.iloc[1]["suggestion"].startswith("Raise the safety stock")
        and table.iloc[1]["owner"] == "planner"
    )
    assert "Warning: model monitoring" in md and "RELEASE_CREDIT_HOLD" in md and "10/10" in md
