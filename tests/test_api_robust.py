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
