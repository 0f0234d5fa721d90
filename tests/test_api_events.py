"""POST /api/v1/events: signed per source, 202 once stored, duplicates ignored, 422 naming the path;
the worker inside the service applies what was stored."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import ui.api.events as events_api
from agent.flow import drain
from tests import api_world
from tools.events.signing import signed_headers
from tools.models import EventInbox, ExceptionRecord, Shipment
from ui.server import create_app

SECRETS = {"wms": "wms-secret-0123456789", "erp": "erp-secret-0123456789"}


@pytest.fixture
def services(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_EVENT_SECRETS", ",".join(f"{k}={v}" for k, v in SECRETS.items()))
    monkeypatch.setenv("COPILOT_EVENT_WORKER", "off")  # the tests drain the inbox themselves
    svc = api_world.services(monkeypatch, tmp_path / "api.db")
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services=services, panel=False)) as c:
        yield c


def ev(event_id: str, on_hand: int = 1, *, source: str = "wms", **extra) -> dict:
    return {
        "event_id": event_id,
        "source": source,
        "type": "inventory.adjusted",
        "occurred_at": "2026-11-02T08:00:00Z",
        "records": {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": on_hand, **extra}]},
    }


def post(client, payload, *, source="wms", secret=None, now=None, headers=None):
    body = json.dumps(payload).encode()
    h = signed_headers(source, secret or SECRETS[source], body, now=now)
    return client.post("/api/v1/events", content=body, headers={**h, **(headers or {})})


def test_a_signed_event_is_stored_202_and_a_repeat_is_ignored(client, services):
    r = post(client, ev("e1"))
    assert r.status_code == 202, r.text
    assert r.json() == {"stored": 1, "duplicates": 0}
    assert post(client, ev("e1")).json() == {"stored": 0, "duplicates": 1}
    assert post(client, [ev("e2", 3), ev("e3", 2)]).json() == {"stored": 2, "duplicates": 0}
    with services.factory() as s:
        assert s.scalars(select(EventInbox.status)).all() == ["received"] * 3
    done = drain(services.factory, services.policy)
    assert [d.status for d in done] == ["applied"] * 3
    with services.factory() as s:
        open_ = s.scalars(
            select(ExceptionRecord.order_id).where(
                ExceptionRecord.type == "INVENTORY_SHORTFALL", ExceptionRecord.status == "open"
            )
        ).all()
    assert sorted(open_) == ["SO-100001", "SO-100002", "SO-100003"]  # every order of A at WH1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "X-Copilot-Signature"}, "sign the request"),
        (lambda h: h | {"X-Copilot-Signature": "sha256=" + "0" * 64}, "does not match"),
        (lambda h: h | {"X-Copilot-Source": "tms"}, "no secret configured"),
    ],
)
def test_unsigned_or_badly_signed_requests_are_401(client, services, mutate, message):
    body = json.dumps(ev("e1")).encode()
    h = mutate(signed_headers("wms", SECRETS["wms"], body))
    r = client.post("/api/v1/events", content=body, headers=h)
    assert r.status_code == 401 and message in r.json()["message"]
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


def test_a_replay_outside_the_window_is_refused(client):
    r = post(client, ev("e1"), now=time.time() - 3600)
    assert r.status_code == 401 and "window" in r.json()["message"]
    assert post(client, ev("e1"), now=time.time() - 10).status_code == 202


def test_a_secret_of_another_source_does_not_sign(client):
    r = post(client, ev("e1"), source="wms", secret=SECRETS["erp"])
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ([ev("e1"), ev("e2", on_hand="lots")], "[1].records.inventory[0].on_hand"),
        ([ev("e1"), ev("e2", on_hand=-5)], "[1].records.inventory[0].on_hand"),  # below zero: refused
        ([ev("e1"), ev("e2", warehouse_id="WH9")], "[1].records.inventory[0].warehouse_id"),
        (ev("e1", colour="red"), "records.inventory[0].colour"),
        (ev("e1", source="erp"), "source"),
        ({"records": {}}, "event_id"),
    ],
)
def test_a_bad_event_is_422_naming_the_path_and_nothing_is_stored(client, services, payload, path):
    r = post(client, payload)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_event" and body["details"] == [path] and path in body["message"]
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


def test_a_batch_names_its_first_bad_event_in_its_order(client, services):
    """A dangling key in [0] is named before a wrong type in [1], though the shape is checked
    before the references; a wrong type in [0] before a dangling key in [1]."""
    dangling, wrong = ev("e1", warehouse_id="WH9"), ev("e2", on_hand="lots")
    for payload, path in (
        ([dangling, wrong], "[0].records.inventory[0].warehouse_id"),
        ([wrong, dangling], "[0].records.inventory[0].on_hand"),
    ):
        r = post(client, payload)
        assert r.status_code == 422 and r.json()["details"] == [path], r.text
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


def test_a_record_an_accepted_event_creates_may_be_named_before_the_worker_applies_it(client, services):
    """ERP reports a new order (202, waiting in the inbox); WMS reports its shipment in the next
    request, before the worker ran: no dangling key. A key nobody reported is still refused."""
    created = {
        "event_id": "o1",
        "source": "erp",
        "type": "order.created",
        "occurred_at": "2026-11-02T08:00:00Z",
        "records": {"orders": [{"order_id": "SO-NEW", "customer_id": "C1", "warehouse_id": "WH1"}]},
    }
    assert post(client, created, source="erp").status_code == 202
    shipped = {
        "event_id": "s1",
        "source": "wms",
        "type": "shipment.delayed",
        "occurred_at": "2026-11-02T08:05:00Z",
        "records": {"shipments": [{"shipment_id": "SH-NEW", "order_id": "SO-NEW", "status": "delayed"}]},
    }
    r = post(client, shipped)
    assert r.status_code == 202, r.text
    stray = shipped | {
        "event_id": "s2",
        "records": {"shipments": [{"shipment_id": "SH-X", "order_id": "SO-X"}]},
    }
    r = post(client, stray)
    assert r.status_code == 422 and r.json()["details"] == ["records.shipments[0].order_id"], r.text
    # one that happened before the order was reported would apply before it: still dangling
    early = shipped | {"event_id": "s3", "occurred_at": "2026-11-02T07:59:00Z"}
    r = post(client, early)
    assert r.status_code == 422 and r.json()["details"] == ["records.shipments[0].order_id"], r.text
    assert [d.status for d in drain(services.factory, services.policy)] == ["applied", "applied"]
    with services.factory() as s:
        assert s.get(Shipment, "SH-NEW").order_id == "SO-NEW"


def test_the_worker_inside_the_service_applies_what_is_posted(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_EVENT_SECRETS", f"wms={SECRETS['wms']}")
    svc = api_world.services(monkeypatch, tmp_path / "api.db")  # COPILOT_EVENT_WORKER: auto, SQLite
    try:
        with TestClient(create_app(services=svc, panel=False)) as c:
            worker = c.app.state.event_worker
            assert worker is not None
            assert post(c, ev("e1")).status_code == 202
            assert worker.wait_idle(timeout=60)
            with svc.factory() as s:
                assert s.scalars(select(EventInbox.status)).one() == "applied"
                found = s.execute(
                    select(ExceptionRecord.type, ExceptionRecord.status).where(
                        ExceptionRecord.order_id == "SO-100001"
                    )
                ).all()
                assert ("INVENTORY_SHORTFALL", "open") in found
    finally:
        svc.close()


def test_a_busy_database_is_503_with_retry_after_and_nothing_is_stored(client, services, monkeypatch):
    def busy(*_a, **_k):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(events_api, "receive", busy)
    r = post(client, ev("e1"))
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


# --- found by the robustness audit: odd headers and bodies were 500s, or stored what no column holds


def _raw_headers(timestamp: str, signature: str | bytes) -> dict:
    return {"X-Copilot-Source": "wms", "X-Copilot-Timestamp": timestamp, "X-Copilot-Signature": signature}


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("1" + "0" * 400, None),  # int() took it, the window's float arithmetic overflowed: 500
        ("+{now}", None),  # int() took a sign, spaces and '_' the signer never sent
        ("{now_}", None),
        ("{now}", "sha256=\u00e9".encode("latin-1")),  # hmac.compare_digest raised TypeError: 500
    ],
)
def test_a_malformed_timestamp_or_signature_header_is_401_not_500(client, services, timestamp, signature):
    body = json.dumps(ev("e1")).encode()
    now = str(int(time.time()))
    ts = timestamp.format(now=now, now_=f"{now[:4]}_{now[4:]}")
    from tools.events.signing import sign

    sig = signature if signature is not None else sign(SECRETS["wms"], now, body)
    r = client.post("/api/v1/events", content=body, headers=_raw_headers(ts, sig))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body", "nested too deeply"),  # RecursionError: 500
        (json.dumps(ev("e1", on_hand=float("nan"))).encode(), "records.inventory[0].on_hand", "whole number"),
        (json.dumps(ev("e1", on_hand=float("inf"))).encode(), "records.inventory[0].on_hand", "whole number"),
        (json.dumps(ev("e1", on_hand=10**30)).encode(), "records.inventory[0].on_hand", "out of range"),
        (json.dumps(ev("a\u0000b")).encode(), "event_id", "NUL"),
    ],
)
def test_an_event_no_column_can_hold_is_422_and_nothing_is_stored(client, services, body, path, message):
    """NaN and Infinity (Python's json reads them) were a 500; 10**30 and a NUL were stored (202)
    and failed later, on PostgreSQL at the write."""
    r = client.post("/api/v1/events", content=body, headers=signed_headers("wms", SECRETS["wms"], body))
    assert r.status_code == 422, r.text
    assert r.json()["details"] == [path] and message in r.json()["message"]
    with services.factory() as s:
        assert s.scalars(select(EventInbox)).all() == []


def test_a_refused_event_with_a_huge_id_is_named_briefly(client):
    r = post(client, ev("x" * 100_000))
    assert r.status_code == 422 and r.json()["details"] == ["event_id"]
    assert len(r.text) < 1_000
