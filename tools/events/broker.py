"""Consume source-system events from a RabbitMQ queue into the inbox (the way ERP, WMS and TMS
publish changes in real installations).

Each message body is one event or a list of events (domain.md §8 JSON). A message is acknowledged
only after its events are committed to the inbox, so a crash before that leaves it on the broker,
which redelivers it; a redelivered or republished event is a repeated event_id, acknowledged and
ignored. A poison message — not JSON, or an event refused by validation (the reason names the
path) — is published to the dead-letter queue ``<queue>.dead`` with the reason in its
``x-copilot-reason`` header (publisher confirms: the broker has it before the original is acked).
A database failure nacks the message back onto the queue and stops the consumer.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pika
from sqlalchemy.orm import Session, sessionmaker

from tools.events.inbox import receive
from tools.events.validate import EventError, parse_event

__all__ = ["BrokerUrlError", "ConsumeResult", "broker_parameters", "consume", "dead_letter_queue"]


class BrokerUrlError(ValueError):
    """A broker URL pika cannot use (``notaurl`` made pika raise a bare IndexError)."""


def broker_parameters(url: str) -> pika.URLParameters:
    """pika's connection parameters for an ``amqp://`` or ``amqps://`` URL; anything else is a
    :class:`BrokerUrlError` naming what is wrong."""
    if urlsplit(url).scheme not in ("amqp", "amqps"):
        raise BrokerUrlError("not an AMQP URL: expected amqp://user:password@host:5672/")
    try:
        return pika.URLParameters(url)
    except (ValueError, IndexError, TypeError) as exc:
        raise BrokerUrlError(f"not a usable AMQP URL: {exc}") from None


@dataclass
class ConsumeResult:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


def _events(body: bytes) -> list:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError("body", f"not a JSON event: {exc}") from None
    except RecursionError:  # a poison message: dead-lettered like any other bad one
        raise EventError("body", "not a JSON event: nested too deeply") from None
    if isinstance(payload, list):
        if not payload:
            raise EventError("body", "an empty list: a message carries at least one event")
        return [parse_event(raw, f"[{i}]") for i, raw in enumerate(payload)]
    return [parse_event(payload)]


def consume(
    factory: sessionmaker[Session],
    url: str,
    queue: str,
    *,
    drain: bool = False,
    idle_s: float = 1.0,
    stop: threading.Event | None = None,
    on_stored=None,
) -> ConsumeResult:
    """Consume ``queue`` until ``stop`` is set (or, with ``drain``, until it is empty for ``idle_s``)."""
    result = ConsumeResult()
    connection = pika.BlockingConnection(broker_parameters(url))
    try:
        channel = connection.channel()
        dead = dead_letter_queue(queue)
        channel.queue_declare(queue=queue, durable=True)
        channel.queue_declare(queue=dead, durable=True)
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=100)
        for method, props, body in channel.consume(queue, inactivity_timeout=idle_s):
            if stop is not None and stop.is_set():
                break
            if method is None:  # nothing arrived for idle_s
                if drain:
                    break
                continue
            result.messages += 1
            try:
                events = _events(body)
                with factory() as session:
                    stored, duplicates = receive(session, events, channel="broker")
                    session.commit()
            except EventError as exc:
                headers = {"x-copilot-reason": str(exc)[:2000], "x-copilot-queue": queue}
                channel.basic_publish(
                    exchange="",
                    routing_key=dead,
                    body=body,
                    properties=pika.BasicProperties(
                        headers=headers, delivery_mode=2, content_type=props.content_type
                    ),
                )
                channel.basic_ack(method.delivery_tag)
                result.dead_lettered += 1
                continue
            except Exception:
                channel.basic_nack(method.delivery_tag, requeue=True)  # not stored: the broker keeps it
                raise
            channel.basic_ack(method.delivery_tag)  # stored and committed: now the broker may forget it
            result.stored += stored
            result.duplicates += duplicates
            if on_stored is not None and stored:
                on_stored(stored)
        channel.cancel()
    finally:
        if connection.is_open:
            connection.close()
    return result
