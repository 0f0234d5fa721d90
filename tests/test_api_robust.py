"""The API and the panel when their configuration or database fails under them: a JSON 503 (the
panel's one-line 503), never a 500 — found by the robustness audit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from agent.settings import Settings
from tests import api_world
from tests.test_api_approval_attacks import any_client  # noqa: F401 (the fixture: SQLite and PostgreSQL)
from ui.api.auth import TokenConfigError, write_demo_tokens
from ui.api.service import Services
from ui.panel.common import EXPECTED, failure_md
from ui.server import create_app


def test_a_broken_tokens_file_is_503_and_accepts_no_token_of_it(monkeypatch, tmp_path):
    """The demo tokens file half-written (an editor saving it, a full disk) made every request whose
    token is not a database token a 500 — the panel's sign-in too."""
    var = tmp_path / "var"
    var.mkdir()
    tokens = write_demo_tokens(var, ["planner"])
    api_world.services(monkeypatch, tmp_path / "api.db", var_dir=var).close()  # the world's database
    monkeypatch.setenv("COPILOT_API_TOKENS", "")  # the file's tokens, not the world's
    services = Services(Settings(), collection=api_world.sop_collection())
    try:
        with TestClient(create_app(services=services, panel=False), raise_server_exceptions=False) as c:
            good = {"Authorization": f"Bearer {tokens['planner']}"}
            assert c.get("/api/v1/me", headers=good).status_code == 200
            (var / "api_tokens.json").write_text('{"tokens": [')
            for headers in (good, {"Authorization": "Bearer not-a-token-of-anyone-0123"}):
                r = c.get("/api/v1/me", headers=headers)
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "tokens_unavailable" and r.headers["Retry-After"] == "5"
                assert str(var) not in r.text and tokens["planner"] not in r.text
            write_demo_tokens(var, ["planner"])  # fixed (new tokens): the old one is refused, no restart
            assert c.get("/api/v1/me", headers=good).status_code == 401
    finally:
        services.close()


def test_the_panel_answers_a_database_failure_in_one_line_without_the_sql():
    """A panel handler whose database went away mid-request raised past the panel's handlers (the
    API answered 503; the panel had no answer of its own)."""
    exc = OperationalError("UPDATE orders SET customer_note = 'secret'", {}, Exception("disk I/O error"))
    assert isinstance(exc, EXPECTED) and isinstance(TokenConfigError("x"), EXPECTED)
    text = failure_md(exc)
    assert text.startswith("**Unavailable (503):**") and "nothing was changed" in text
    assert "UPDATE" not in text and "secret" not in text


def test_a_body_nested_too_deeply_is_422_like_any_malformed_body(monkeypatch, tmp_path):
    """FastAPI answered 400 {"error": "error"} — a status and code the API documents nowhere."""
    services = api_world.services(monkeypatch, tmp_path / "api.db")
    try:
        with TestClient(create_app(services=services, panel=False), raise_server_exceptions=False) as c:
            headers = {**api_world.HEADERS["csr"], "Content-Type": "application/json"}
            for path in ("/api/v1/triage", "/api/v1/requests", "/api/v1/chat/t1"):
                r = c.post(path, content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
                assert r.status_code == 422, (path, r.text)
                assert r.json()["error"] == "invalid" and r.json()["details"] == ["body"]
    finally:
        services.close()


def test_a_nul_in_an_order_number_or_a_filter_is_422_on_both_databases(any_client):  # noqa: F811
    """PostgreSQL refuses NUL in any text parameter (psycopg DataError): `POST /triage` with
    "SO-100002\\u0000" and `GET /exceptions?sku=%00` (any filter) were 500s there; SQLite read the
    first as SO-100002. Now 422 on both."""
    h = api_world.HEADERS["ops_manager"]
    r = any_client.post("/api/v1/triage", json={"order_ids": ["SO-100002\u0000"]}, headers=h)
    assert r.status_code == 422, r.text
    for query in (
        "exceptions?sku=%00",
        "exceptions?order_id=a%00",
        "requests?order_id=%00",
        "requests?role=%00",
    ):
        r = any_client.get(f"/api/v1/{query}", headers=h)
        assert r.status_code == 422 and r.json()["error"] == "invalid", (query, r.text)


def test_an_order_number_typed_in_lower_case_or_with_blanks_names_the_order_on_every_door(
    any_client,  # noqa: F811
):
    """`POST /triage` read "so-100002" as SO-100002, but `GET /orders/so-100002`, `POST /requests`,
    `POST /whatif`, `POST /messages` and the order filters answered 404 or an empty page. Every door
    now reads an order id as the triage does; one with characters no order number has ("SO-100002'--")
    is not found, never read as the order inside it."""
    c, h = any_client, api_world.HEADERS
    r = c.get("/api/v1/orders/so-100003", headers=h["planner"])
    assert r.status_code == 200 and r.json()["order"]["order_id"] == "SO-100003", r.text
    assert c.get("/api/v1/orders/SO100003", headers=h["planner"]).json()["order"]["order_id"] == "SO-100003"
    first = c.post("/api/v1/requests", json={"order_id": " so-100002 "}, headers=h["planner"])
    assert first.status_code == 201 and first.json()["order_id"] == "SO-100002", first.text
    assert first.json()["status"] == "pending_approval"
    # the parameters' order id is read the same way: the same request, not one the guard blocks
    again = c.post(
        "/api/v1/requests",
        json={"order_id": "so-100002", "action": "RELEASE_CREDIT_HOLD", "params": {"order_id": "so-100002"}},
        headers=h["planner"],
    ).json()
    assert again["id"] == first.json()["id"] and again["repeated"] is True, again
    r = c.post("/api/v1/whatif", json={"order_id": "so-100003"}, headers=h["planner"])
    assert r.status_code == 200 and r.json()["order_id"] == "SO-100003", r.text
    r = c.post("/api/v1/messages", json={"order_id": "so-100003"}, headers=h["csr"])
    assert r.status_code == 201 and r.json()["order_id"] == "SO-100003", r.text
    for query, key in (
        ("requests?order_id=so-100002", "items"),
        ("exceptions?order_id=%20so-100003%20", "items"),
        ("messages?order_id=so-100003", "items"),
        ("audit?order_id=so-100002", "items"),
    ):
        r = c.get(f"/api/v1/{query}", headers=h["ops_manager"])
        assert r.status_code == 200 and r.json()[key], (query, r.text)
        assert {i["order_id"] for i in r.json()[key]} <= {"SO-100002", "SO-100003"}, query
    for path, body in (
        ("/api/v1/requests", {"order_id": "SO-100002--"}),
        ("/api/v1/whatif", {"order_id": "SO-100003/"}),
        ("/api/v1/messages", {"order_id": "SO-100003 SO-100002"}),
    ):
        r = c.post(path, json=body, headers=h["csr"])
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.text)
        assert r.json()["message"] == f"order {body['order_id']} not found", r.text
    for path in ("/api/v1/requests", "/api/v1/whatif", "/api/v1/messages"):
        r = c.post(path, json={"order_id": "SO-100002'--"}, headers=h["csr"])
        assert r.status_code == 422 and "order_id" in r.json()["message"], (path, r.text)
    r = c.post("/api/v1/triage", json={"order_ids": ["SO-100003'--"]}, headers=h["planner"])
    assert r.json()["not_found"] == ["SO-100003'--"], r.text
