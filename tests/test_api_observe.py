"""Operating the service: X-Request-ID in and out and in the audit origin, /metrics (who may read it,
what it holds, a database that is down), JSON logs, pool settings, and `serve --workers` refusals."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from agent.telemetry import JsonFormatter, new_request_id, reset_request_id, set_request_id
from tests import api_world
from tests.cli_run import run
from tools.db import make_engine
from tools.models import AuditEvent
from ui.server import create_app

H = api_world.HEADERS
METRICS_TOKEN = "metrics-secret-0123456789abcdef"


@pytest.fixture
def services(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_METRICS_TOKEN", METRICS_TOKEN)
    svc = api_world.services(monkeypatch, tmp_path / "api.db")
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services=services, panel=False)) as c:
        yield c


@pytest.fixture
def loopback(services):
    with TestClient(create_app(services=services, panel=False), client=("127.0.0.1", 50000)) as c:
        yield c


# --- the request id ---------------------------------------------------------------------------------


def test_every_answer_carries_a_request_id_and_a_callers_plain_id_is_kept(client):
    made = client.get("/health")
    assert len(made.headers["x-request-id"]) == 32
    kept = client.get("/health", headers={"X-Request-ID": "lb-7f3a.42:abc"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42:abc"
    refused = client.get("/api/v1/me")  # an error answer has one too
    assert refused.status_code == 401 and len(refused.headers["x-request-id"]) == 32


@pytest.mark.parametrize("offered", ["two words", "x" * 65, "<script>", "-starts-with-dash", "%0aFAKE"])
def test_an_id_that_is_not_a_plain_token_is_replaced(client, offered):
    got = client.get("/health", headers={"X-Request-ID": offered})
    assert got.headers["x-request-id"] != offered and len(got.headers["x-request-id"]) == 32


def test_the_request_id_reaches_the_audit_events_the_request_appends(client, services):
    resp = client.post(
        "/api/v1/triage",
        json={"order_ids": ["SO-100002"]},
        headers={**H["planner"], "X-Request-ID": "req-123"},
    )
    assert resp.status_code == 200, resp.text
    with services.factory() as s:
        payloads = [
            e.payload for e in s.scalars(select(AuditEvent).where(AuditEvent.order_id == "SO-100002"))
        ]
    origins = [p.get("origin") for p in payloads if p.get("origin")]
    assert origins and all(o == {"door": "api", "user": "planner", "request_id": "req-123"} for o in origins)


def test_new_request_id_keeps_only_plain_tokens():
    assert new_request_id("abc-1") == "abc-1"
    assert new_request_id(None) != new_request_id(None)
    assert new_request_id("a\nb") != "a\nb"


# --- /metrics ---------------------------------------------------------------------------------------


def test_metrics_are_refused_to_a_remote_client_without_the_token(client):
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "COPILOT_METRICS_TOKEN" in wrong.json()["message"]


def test_metrics_hold_latency_by_route_and_the_work_waiting(client, loopback):
    client.post("/api/v1/triage", json={"order_ids": ["SO-100002"]}, headers=H["planner"])
    filed = client.post(
        "/api/v1/requests", json={"order_id": "SO-100002"}, headers=H["csr"]
    )  # the recommendation: pending for credit_analyst
    assert filed.status_code in (200, 201), filed.text
    body = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert loopback.get("/metrics").status_code == 200  # loopback needs no token
    assert (
        'copilot_http_request_duration_seconds_count{method="POST",route="/api/v1/triage",status="200"}'
        in body
    )
    assert "copilot_database_up 1.0" in body
    assert 'copilot_approvals_pending{role="credit_analyst"} 1.0' in body
    assert 'copilot_queue_open_exceptions{role="credit_analyst"}' in body
    assert 'copilot_events{status="received"} 0.0' in body and "copilot_event_lag_seconds 0.0" in body
    assert "copilot_queue_sla_breached" in body


def test_route_labels_are_templates_not_paths(client, loopback):
    for n in range(3):
        client.get(f"/no/such/{n}")
        client.get(f"/api/v1/requests/{n + 900}", headers=H["planner"])
    body = loopback.get("/metrics").text
    assert 'route="unmatched"' in body and "/no/such/1" not in body
    assert 'route="/api/v1/requests/{request_id}"' in body and "/api/v1/requests/901" not in body


def test_metrics_still_answer_when_the_database_is_down(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "api.db")
    try:
        svc.factory.kw["bind"] = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
        with TestClient(create_app(services=svc, panel=False), client=("127.0.0.1", 1)) as c:
            resp = c.get("/metrics")
        assert resp.status_code == 200 and "copilot_database_up 0.0" in resp.text
    finally:
        svc.close()


def test_language_model_calls_are_counted_by_provider():
    from agent.llm.fake import FakeLLM

    def count() -> float:
        return (
            REGISTRY.get_sample_value(
                "copilot_llm_call_duration_seconds_count", {"provider": "fake", "kind": "complete"}
            )
            or 0.0
        )

    before = count()
    FakeLLM(["hello back"]).complete([{"role": "user", "content": "hello"}])
    assert count() == before + 1
    assert (
        REGISTRY.get_sample_value("copilot_llm_tokens_total", {"provider": "fake", "direction": "prompt"})
        or 0
    ) > 0


# --- logs, pools, refusals --------------------------------------------------------------------------


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord(
        "copilot.access", logging.INFO, __file__, 1, "GET %s %s", ("/health", 200), None
    )
    token = set_request_id("req-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        reset_request_id(token)
    assert line["message"] == "GET /health 200" and line["request_id"] == "req-9"
    assert line["level"] == "INFO" and line["logger"] == "copilot.access" and line["time"].endswith("+00:00")


def test_pool_settings_size_a_server_databases_pool():
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/x", pool_size=3, max_overflow=7)
    assert engine.pool.size() == 3 and engine.pool._max_overflow == 7  # type: ignore[attr-defined]


def test_log_format_is_checked(monkeypatch):
    from agent.settings import Settings

    monkeypatch.setenv("COPILOT_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="COPILOT_LOG_FORMAT must be text or json"):
        Settings()


def test_serve_refuses_several_processes_on_sqlite_in_one_line(tmp_path, monkeypatch, capsys):
    from tools.db import upgrade

    url = f"sqlite:///{tmp_path / 'one.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    code, _out, err = run(monkeypatch, capsys, "serve", "--workers", "2")
    assert code == 2 and "--workers needs PostgreSQL" in err and len(err.strip().splitlines()) == 1
