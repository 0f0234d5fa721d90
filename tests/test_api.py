"""The HTTP API with FastAPI's TestClient: every endpoint, authentication, errors and size limits."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from agent.settings import Settings
from tests import api_world
from ui.api.models import MAX_BODY_BYTES, MAX_ORDER_IDS
from ui.api.service import Services
from ui.server import create_app

H = api_world.HEADERS


@pytest.fixture
def services(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "api.db")
    svc.warm_up()
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services=services, panel=False)) as c:
        yield c


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code and body["message"], body
    return body


# --- probes and auth ------------------------------------------------------------------------------


def test_health_and_ready_need_no_token(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] is True and set(body["checks"]) >= {"database", "sop_index", "model"}
    assert body["checks"]["sop_index"]["ok"] and body["checks"]["sop_index"]["detail"].endswith("chunks")


def test_warm_up_indexes_the_shipped_sops_on_first_use(tmp_path, monkeypatch):
    from knowledge.embeddings import FakeEmbeddingFunction
    from knowledge.store import open_collection

    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setenv("DATABASE_URL", api_world.make_database(tmp_path / "r.db"))
    empty = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path / "empty")
    assert empty.count() == 0
    svc = Services(Settings(), collection=empty)
    svc.warm_up()
    with TestClient(create_app(services=svc, panel=False)) as c:
        resp = c.get("/ready")
    assert resp.status_code == 200 and empty.count() > 0
    assert resp.json()["checks"]["sop_index"]["detail"] == f"{empty.count()} chunks"


class _StaysEmpty:
    """A SOP index that takes nothing (a read-only or broken store): ingesting leaves it empty."""

    def count(self) -> int:
        return 0

    def get(self, *args, **kwargs):
        return {"ids": [], "metadatas": [], "documents": []}

    def upsert(self, *args, **kwargs) -> None:
        pass

    def delete(self, *args, **kwargs) -> None:
        pass


def test_ready_is_red_when_the_sop_index_stays_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setenv("DATABASE_URL", api_world.make_database(tmp_path / "r.db"))
    svc = Services(Settings(), collection=_StaysEmpty())
    svc.warm_up()
    with TestClient(create_app(services=svc, panel=False)) as c:
        resp = c.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["sop_index"] == {
        "ok": False,
        "detail": "empty: run `copilot knowledge ingest`",
    }


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Basic abc"}]
)
def test_missing_or_wrong_token_is_401(client, headers):
    resp = client.get("/api/v1/me", headers=headers)
    body = _error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "wrong-token" not in json.dumps(body)


def test_token_maps_to_user_and_role(client):
    body = client.get("/api/v1/me", headers=H["ops_manager"]).json()
    assert body["username"] == "ops_manager" and body["role"] == "ops_manager"
    assert {"planner", "credit_manager"} <= set(body["may_decide_for"]) and "compliance_officer" not in body[
        "may_decide_for"
    ]


def test_expired_demo_token_and_inactive_user_are_refused(tmp_path, monkeypatch):
    from tools.db import make_engine, session_factory
    from tools.models import User
    from ui.api.auth import write_demo_tokens

    monkeypatch.setenv("LLM_PROVIDER", "fake")
    url = api_world.make_database(tmp_path / "t.db")
    monkeypatch.setenv("DATABASE_URL", url)
    var = tmp_path / "var"
    monkeypatch.setenv("COPILOT_VAR_DIR", str(var))
    old = write_demo_tokens(var, ["planner"], days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    with TestClient(
        create_app(services=Services(Settings(), collection=api_world.sop_collection()), panel=False)
    ) as c:
        _error(
            c.get("/api/v1/me", headers={"Authorization": f"Bearer {old['planner']}"}), 401, "unauthorized"
        )
    fresh = write_demo_tokens(var, ["planner", "csr"])
    with TestClient(
        create_app(services=Services(Settings(), collection=api_world.sop_collection()), panel=False)
    ) as c:
        auth = {"Authorization": f"Bearer {fresh['planner']}"}
        assert c.get("/api/v1/me", headers=auth).json()["role"] == "planner"
        engine = make_engine(url)
        with session_factory(engine)() as s:
            s.get(User, "planner").active = False
            s.commit()
        engine.dispose()
        _error(c.get("/api/v1/me", headers=auth), 401, "unauthorized")


def test_tokens_never_reach_the_log(client, caplog):
    caplog.set_level("DEBUG")
    client.get("/api/v1/me", headers=H["planner"])
    client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-real-token-xyz123"})
    assert api_world.TOKENS["planner"] not in caplog.text and "not-a-real-token" not in caplog.text


# --- triage, orders, exceptions ------------------------------------------------------------------


def test_triage_many_orders_lists_unknown_ones_and_triages_the_rest(client):
    resp = client.post(
        "/api/v1/triage", json={"order_ids": ["SO-100002", "SO-404", "SO-100001"]}, headers=H["csr"]
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["not_found"] == ["SO-404"]
    by_id = {r["order_id"]: r for r in body["results"]}
    assert by_id["SO-100001"]["exceptions"] == [] and by_id["SO-100001"]["recommendation"] is None
    assert [e["type"] for e in by_id["SO-100002"]["exceptions"]] == ["CREDIT_HOLD"]
    rec = by_id["SO-100002"]["recommendation"]
    assert (rec["action"], rec["risk"], rec["approver_role"]) == (
        "RELEASE_CREDIT_HOLD",
        "medium",
        "credit_analyst",
    )
    assert "not found" in by_id["SO-404"]["error"]


def test_triage_with_explanation_falls_back_to_facts_and_cites_sops(client):
    body = client.post(
        "/api/v1/triage", json={"order_ids": ["SO-100002"], "explain": True}, headers=H["csr"]
    ).json()
    exp = body["results"][0]["explanation"]
    assert exp["text"] and exp["fallback"] is True  # the fake model has no script: fact-only text, said so


def test_order_detail_and_unknown_order_404(client):
    body = client.get("/api/v1/orders/SO-100003", headers=H["planner"]).json()
    assert body["order"]["order_id"] == "SO-100003" and body["order"]["lines"][0]["qty"] == 600
    assert [e["type"] for e in body["triage"]["exceptions"]] == ["INVENTORY_SHORTFALL"]
    assert (
        _error(client.get("/api/v1/orders/SO-9", headers=H["planner"]), 404, "not_found")["message"]
        == "order SO-9 not found"
    )


@pytest.mark.parametrize(
    "payload, where",
    [
        ({}, "order_ids"),
        ({"order_ids": []}, "order_ids"),
        ({"order_ids": "SO-100001"}, "order_ids"),
        ({"order_ids": ["SO-100001"], "bogus": 1}, "bogus"),
        ({"order_ids": ["SO-100001"] * (MAX_ORDER_IDS + 1)}, "order_ids"),
    ],
)
def test_malformed_triage_is_422_naming_the_field(client, payload, where):
    body = _error(client.post("/api/v1/triage", json=payload, headers=H["csr"]), 422, "invalid")
    assert where in body["message"]


def test_body_over_the_limit_is_413_with_the_limit_named(client):
    big = {"order_ids": ["SO-100001"], "explain": False, "pad": "x" * (MAX_BODY_BYTES + 10)}
    body = _error(
        client.post(
            "/api/v1/triage",
            content=json.dumps(big),
            headers={**H["csr"], "Content-Type": "application/json"},
        ),
        413,
        "too_large",
    )
    assert f"{MAX_BODY_BYTES:,} bytes" in body["message"]


def test_exceptions_filter_and_paginate(client):
    client.post(
        "/api/v1/triage", json={"order_ids": ["SO-100001", "SO-100002", "SO-100003"]}, headers=H["csr"]
    )
    page = client.get("/api/v1/exceptions", params={"limit": 1}, headers=H["planner"]).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    second = client.get("/api/v1/exceptions", params={"limit": 1, "offset": 1}, headers=H["planner"]).json()
    assert {page["items"][0]["order_id"], second["items"][0]["order_id"]} == {"SO-100002", "SO-100003"}
    credit = client.get("/api/v1/exceptions", params={"type": "CREDIT_HOLD"}, headers=H["planner"]).json()
    assert [i["order_id"] for i in credit["items"]] == ["SO-100002"] and credit["items"][0][
        "customer_tier"
    ] == "standard"
    assert (
        client.get(
            "/api/v1/exceptions",
            params={"customer_tier": "gold", "warehouse_id": "WH1"},
            headers=H["planner"],
        ).json()["total"]
        == 1
    )
    _error(client.get("/api/v1/exceptions", params={"type": "NOPE"}, headers=H["planner"]), 422, "invalid")
    _error(client.get("/api/v1/exceptions", params={"limit": 0}, headers=H["planner"]), 422, "invalid")


def test_openapi_documents_every_route_with_response_models(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/health",
        "/ready",
        "/api/v1/me",
        "/api/v1/triage",
        "/api/v1/orders/{order_id}",
        "/api/v1/exceptions",
    ):
        assert path in paths
    for path, ops in paths.items():
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"].get("201") or op["responses"].get("202")
            assert ok and ok.get("content"), f"{method} {path} has no documented response"


def test_concurrent_triage_and_reads_on_sqlite_all_succeed(services):
    """Writers (triage records exceptions and audit events) beside readers, on one SQLite file: the
    pool never hands a writer a connection a reader left read-only."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with api_world.LiveServer(create_app(services=services, panel=False)) as live:

        def work(n: int) -> int:
            with httpx.Client(base_url=live.url, headers=H["csr"], timeout=60) as c:
                if n % 2:
                    return c.get("/api/v1/exceptions", params={"limit": 5}).status_code
                return c.post("/api/v1/triage", json={"order_ids": [f"SO-10000{1 + n % 3}"]}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(work, range(48)))
    assert codes == [200] * 48


def test_a_database_that_goes_away_is_a_503_to_retry_and_nothing_is_lost(services, client, tmp_path):
    """The database becomes unreachable under a running service (here: its file cannot be opened):
    every route answers 503 ``database_unavailable`` with Retry-After — not a 500 — and once it is
    back the service answers again with nothing lost."""
    assert client.get("/api/v1/orders/SO-100002", headers=H["csr"]).status_code == 200
    db = tmp_path / "api.db"
    away = tmp_path / "away"
    away.mkdir()
    services.engine.dispose()
    moved = [p for p in tmp_path.glob("api.db*") if p.is_file()]
    for p in moved:
        p.rename(away / p.name)
    db.mkdir()  # a directory where the file was: SQLite cannot open it
    try:
        for resp in (
            client.get("/api/v1/orders/SO-100002", headers=H["csr"]),
            client.post("/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["csr"]),
        ):
            body = _error(resp, 503, "database_unavailable")
            assert resp.headers["Retry-After"] and "retry" in body["message"]
    finally:
        services.engine.dispose()
        db.rmdir()
        for p in moved:
            (away / p.name).rename(p)
    assert client.get("/api/v1/orders/SO-100002", headers=H["csr"]).status_code == 200
    assert client.get("/api/v1/requests", headers=H["credit_analyst"]).json()["items"] == []


def test_a_typod_role_or_message_status_filter_is_422_not_an_empty_page(client):
    """GET /api/v1/requests?role=plannr and /messages?status=snt answered 200 with no items, which
    reads as an empty queue; now 422 naming the choices. The right spelling still answers 200."""
    body = _error(client.get("/api/v1/requests?role=plannr", headers=H["planner"]), 422, "invalid")
    assert "unknown role 'plannr'" in body["message"] and "planner" in body["message"]
    body = _error(client.get("/api/v1/messages?status=snt", headers=H["csr"]), 422, "invalid")
    assert "unknown message status 'snt'" in body["message"] and "sent" in body["message"]
    assert client.get("/api/v1/requests?role=planner", headers=H["planner"]).status_code == 200
    assert client.get("/api/v1/messages?status=sent", headers=H["csr"]).status_code == 200
