"""The RabbitMQ consumer against the local broker: ack only once stored, a redelivery is a
duplicate that is ignored, poison messages go to the dead-letter queue with the reason."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.cli_run import run
from tests.factories import clean_fixture
from tools.db import session_factory
from tools.events.broker import consume, dead_letter_queue
from tools.fixtures import load_fixture
from tools.models import EventInbox

pytestmark = pytest.mark.rabbitmq
URL = "amqp://guest:guest@127.0.0.1:5672/"


def ev(event_id: str, on_hand: int = 3) -> dict:
    return {
        "event_id": event_id,
        "source": "wms",
        "type": "inventory.adjusted",
        "occurred_at": "2026-11-02T08:00:00Z",
        "records": {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": on_hand}]},
    }


@pytest.fixture
def queue():
    name = f"copilot-test-{uuid.uuid4().hex[:10]}"
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    ch.queue_declare(queue=name, durable=True)
    ch.queue_declare(queue=dead_letter_queue(name), durable=True)
    yield ch, name
    ch.queue_delete(queue=name)
    ch.queue_delete(queue=dead_letter_queue(name))
    conn.close()


def publish(ch, queue: str, body: bytes) -> None:
    ch.basic_publish(
        exchange="", routing_key=queue, body=body, properties=pika.BasicProperties(delivery_mode=2)
    )


@pytest.fixture
def factory(sqlite_engine):
    factory = session_factory(sqlite_engine)
    with factory() as s:
        load_fixture(s, clean_fixture(), case_id="broker")
    return factory


def test_messages_are_stored_duplicates_ignored_poison_dead_lettered(queue, factory):
    ch, name = queue
    publish(ch, name, json.dumps(ev("e1")).encode())
    publish(ch, name, json.dumps([ev("e2"), ev("e3")]).encode())
    publish(ch, name, json.dumps(ev("e1")).encode())  # a redelivery: the same event again
    publish(ch, name, b"{not json")
    publish(
        ch,
        name,
        json.dumps(ev("e4") | {"records": {"inventory": [{"sku": "NOPE", "warehouse_id": "WH1"}]}}).encode(),
    )
    publish(ch, name, json.dumps(ev("e5", on_hand=-5)).encode())  # stock below zero: poison too
    result = consume(factory, URL, name, drain=True, idle_s=0.5)
    assert (result.messages, result.stored, result.duplicates, result.dead_lettered) == (6, 3, 1, 3)
    with factory() as s:
        assert sorted(s.scalars(select(EventInbox.event_id))) == ["e1", "e2", "e3"]
        assert set(s.scalars(select(EventInbox.channel))) == {"broker"}
    assert ch.queue_declare(queue=name, passive=True).method.message_count == 0  # all acknowledged
    reasons = []
    for _ in range(3):
        _, props, _ = ch.basic_get(queue=dead_letter_queue(name), auto_ack=True)
        reasons.append(props.headers["x-copilot-reason"])
    assert any("not a JSON event" in r for r in reasons)
    assert any("records.inventory[0].sku" in r and "dangling" in r for r in reasons)
    assert any("records.inventory[0].on_hand: cannot be negative" in r for r in reasons)


def test_a_message_not_stored_is_not_acknowledged(queue, factory, sqlite_engine):
    ch, name = queue
    publish(ch, name, json.dumps(ev("e1")).encode())
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE event_inbox")  # the store fails: nothing may be acked
    with pytest.raises(OperationalError):
        consume(factory, URL, name, drain=True, idle_s=0.5)
    assert ch.queue_declare(queue=name, passive=True).method.message_count == 1  # still on the broker


def test_consume_cli(monkeypatch, capsys, tmp_path, queue, sqlite_engine):
    ch, name = queue
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, clean_fixture(), case_id="broker")
    publish(ch, name, json.dumps(ev("c1", on_hand=1)).encode())
    code, out, err = run(
        monkeypatch, capsys, "events", "consume", "--broker", URL, "--queue", name, "--drain", "--apply"
    )
    assert code == 0, err
    assert "1 events stored" in out
    code, out, _ = run(monkeypatch, capsys, "events", "list", "--json")
    assert json.loads(out)["counts"]["applied"] == 1
