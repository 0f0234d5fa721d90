"""Delivery of the outbox to a real SMTP server on loopback (aiosmtpd), and into .eml files:
once per approved request, retried with backoff, failed with the reason, and taken over after a
worker was killed mid-send."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import threading
from email import policy as email_policy
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.comms.delivery import EmlTransport, SmtpTransport, deliver_due
from agent.comms.service import draft_due
from agent.governance.audit import list_events
from agent.governance.requests import decide, request_action
from agent.llm import FakeLLM
from agent.policy import load_policy
from tests.factories import clean_fixture, order
from tools.db import make_engine, session_factory, upgrade
from tools.fixtures import load_fixture
from tools.models import OutboxMessage

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

POLICY = load_policy()
ROOT = Path(__file__).resolve().parents[1]


class Inbox:
    """An aiosmtpd handler that keeps every accepted message; ``hold`` pauses the next DATA until
    ``release`` is set (``arrived`` tells the test it is there); ``refuse`` answers with that reply."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: str | None = None
        self.hold = False
        self.accept_held = False
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return self.refuse
        if self.hold:
            self.hold = False
            if self.accept_held:
                self.messages.append(email.message_from_bytes(envelope.content, policy=email_policy.default))
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
            return "250 OK" if self.accept_held else "451 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email_policy.default))
        return "250 OK"


def _free_port() -> int:
    """A free loopback port (aiosmtpd's controller checks its server by connecting to the port it
    was given, so it needs the number up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    inbox.port = _free_port()
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    inbox.release.set()
    controller.stop()


def approved_notices(factory, orders: list[str]) -> list[int]:
    """For each order: a promise-date change executed, its notice drafted and approved -> queued."""
    ids = []
    for oid in orders:
        req = request_action(
            factory,
            POLICY,
            order_id=oid,
            requested_by="planner",
            action="UPDATE_PROMISE_DATE",
            params={"order_id": oid, "new_promised_date": "2026-11-28"},
        )
        decide(factory, POLICY, req["id"], username="csr", decision="approve")
    for filed in draft_due(factory, POLICY, FakeLLM([])):
        decide(factory, POLICY, filed["request"]["id"], username="csr", decision="approve")
        ids.append(filed["request"]["id"])
    return ids


def world(engine, n: int = 2):
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, clean_fixture(*[order(f"SO{i}") for i in range(1, n + 1)]), case_id="outbox")
    return factory


def rows(factory) -> list[OutboxMessage]:
    with factory() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_each_approved_message_reaches_the_smtp_server_once_with_its_ids(engine, smtp):
    factory = world(engine, 2)
    requests = approved_notices(factory, ["SO1", "SO2"])
    transport = SmtpTransport("127.0.0.1", smtp.port, tls="none")
    out = deliver_due(factory, transport, sender="cs@northwind.test")
    assert [r["status"] for r in out] == ["sent", "sent"]
    assert deliver_due(factory, transport, sender="cs@northwind.test") == []  # nothing twice
    assert len(smtp.messages) == 2
    by_order = {m["X-Copilot-Order-Id"]: m for m in smtp.messages}
    assert set(by_order) == {"SO1", "SO2"}
    for row in rows(factory):
        got = by_order[row.order_id]
        assert got["Message-ID"] == row.message_id and got["To"] == "a@acme.test"
        assert got["X-Copilot-Request-Id"] == str(row.request_id) and row.request_id in requests
        assert row.order_id in got["Subject"] and "2026-11-28" in got.get_content()
        assert (row.status, row.transport, row.attempts) == ("sent", "smtp", 1)
    with factory() as s:
        assert len(list_events(s, event_type="message_sent")) == 2


def test_a_temporary_refusal_is_retried_with_backoff_and_a_permanent_one_fails_with_the_reason(engine, smtp):
    factory = world(engine, 1)
    approved_notices(factory, ["SO1"])
    transport = SmtpTransport("127.0.0.1", smtp.port, tls="none")
    smtp.refuse = "451 mailbox busy"
    [first] = deliver_due(factory, transport, sender="cs@x.test", backoff_s=60, max_attempts=3)
    assert first["status"] == "queued" and "451" in first["error"]
    [row] = rows(factory)
    assert row.next_attempt_at.replace(tzinfo=None) > row.created_at.replace(tzinfo=None)
    assert deliver_due(factory, transport, sender="cs@x.test") == []  # not due before the backoff ends
    with factory() as s, s.begin():
        s.get(OutboxMessage, row.id).next_attempt_at = row.created_at  # the backoff has passed
    smtp.refuse = "550 no such user"
    [second] = deliver_due(factory, transport, sender="cs@x.test", max_attempts=3)
    assert second["status"] == "failed" and second["error"] == "SMTP 550: no such user"
    assert rows(factory)[0].attempts == 2 and smtp.messages == []


def test_an_unreachable_server_fails_after_the_last_attempt(engine):
    factory = world(engine, 1)
    approved_notices(factory, ["SO1"])
    transport = SmtpTransport("127.0.0.1", 1, tls="none", timeout_s=5)
    [only] = deliver_due(factory, transport, sender="cs@x.test", max_attempts=1)
    assert only["status"] == "failed" and "ConnectionRefusedError" in only["error"]


def test_the_eml_transport_writes_one_file_per_message_id_atomically(engine, tmp_path):
    factory = world(engine, 2)
    approved_notices(factory, ["SO1", "SO2"])
    transport = EmlTransport(tmp_path / "outbox")
    deliver_due(factory, transport, sender="cs@x.test")
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    row = rows(factory)[0]
    parsed = email.message_from_bytes(
        transport.path_for(row.message_id).read_bytes(), policy=email_policy.default
    )
    assert parsed["Message-ID"] == row.message_id and parsed["X-Copilot-Order-Id"] == "SO1"
    transport.send(parsed)  # a resend of the same message replaces its file
    assert len(list((tmp_path / "outbox").iterdir())) == 2


def _worker(db_url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "OUTBOX_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_TLS": "none",
        "LLM_PROVIDER": "fake",
        "PYTHONPATH": str(ROOT),
    }
    code = "from ui.cli.app import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "messages", "send", "--no-draft"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("accepted_before_the_kill", [False, True])
def test_a_worker_killed_mid_send_is_taken_over_and_each_request_is_one_message(
    tmp_path, smtp, accepted_before_the_kill
):
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = world(engine, 2)
    requests = approved_notices(factory, ["SO1", "SO2"])
    smtp.hold, smtp.accept_held = True, accepted_before_the_kill
    first = _worker(url, smtp.port)
    assert smtp.arrived.wait(60), first.communicate()[0]
    first.send_signal(signal.SIGKILL)  # killed in the middle of the SMTP conversation
    first.wait()
    smtp.release.set()
    [stuck, waiting] = rows(factory)
    assert (stuck.status, waiting.status) == ("sending", "queued")
    second = _worker(url, smtp.port)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert [r.status for r in rows(factory)] == ["sent", "sent"]
    ids = [m["Message-ID"] for m in smtp.messages]
    # one Message-ID per approved request; when the server had accepted the message before the
    # worker died, the resend carries the same Message-ID, so the recipient can tell it is one
    assert sorted(set(ids)) == sorted(r.message_id for r in rows(factory))
    assert len(ids) == (3 if accepted_before_the_kill else 2)
    assert {m["X-Copilot-Request-Id"] for m in smtp.messages} == {str(r) for r in requests}
    assert rows(factory)[0].attempts == 2
    engine.dispose()


def test_messages_send_names_each_message_by_the_id_messages_list_shows(
    monkeypatch, capsys, tmp_path, sqlite_engine
):
    """`messages send` printed 'outbox #1: sent' — the outbox row's id, which is not the message id
    `messages list` and `messages show` use: here outbox #1 was message #2."""
    from tests.cli_run import run

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    monkeypatch.setenv("OUTBOX_TRANSPORT", "eml")
    monkeypatch.setenv("COPILOT_VAR_DIR", str(tmp_path / "var"))
    factory = world(sqlite_engine, 2)
    for oid in ("SO1", "SO2"):
        req = request_action(
            factory,
            POLICY,
            order_id=oid,
            requested_by="planner",
            action="UPDATE_PROMISE_DATE",
            params={"order_id": oid, "new_promised_date": "2026-11-28"},
        )
        decide(factory, POLICY, req["id"], username="csr", decision="approve")
    filed = draft_due(factory, POLICY, FakeLLM([]))
    for f in reversed(filed):  # the second notice is queued first: outbox ids differ from notice ids
        decide(factory, POLICY, f["request"]["id"], username="csr", decision="approve")
    by_outbox = {r.id: r.notice_id for r in rows(factory)}
    assert by_outbox != {i: i for i in by_outbox}
    code, out, err = run(monkeypatch, capsys, "messages", "send", "--no-draft")
    assert code == 0, err
    sent = [line for line in out.splitlines() if line.endswith(": sent")]
    assert len(sent) == 2 and not any(line.startswith("outbox #") for line in sent)
    for r in rows(factory):
        assert f"message #{r.notice_id} (request {r.request_id}) to a@acme.test: sent" in sent
