"""A broker URL the consumer cannot use is refused in one line (exit 2), before any connection;
no broker needed."""

from __future__ import annotations

import pytest

from tests.cli_run import run
from tools.events.broker import BrokerUrlError, broker_parameters


@pytest.mark.parametrize(
    "url", ["notaurl", "http://127.0.0.1:5672/", "amqp://h:notaport/", "amqp://h/%2F?heartbeat=x"]
)
def test_a_url_pika_cannot_use_is_a_broker_url_error(url):
    with pytest.raises(BrokerUrlError):
        broker_parameters(url)


def test_a_good_url_gives_its_host_and_port():
    params = broker_parameters("amqp://guest:guest@127.0.0.1:5673/")
    assert (params.host, params.port) == ("127.0.0.1", 5673)


def test_consume_with_a_malformed_broker_url_prints_one_line(monkeypatch, capsys, tmp_path):
    """`--broker notaurl` ended in pika's IndexError traceback (exit 1)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    code, out, err = run(
        monkeypatch, capsys, "events", "consume", "--broker", "notaurl", "--queue", "q", "--drain"
    )
    assert code == 2 and out == ""
    assert err.startswith("copilot: --broker notaurl: not an AMQP URL") and len(err.splitlines()) == 1
    code, _, err = run(
        monkeypatch, capsys, "events", "consume", "--broker", "amqp://u:s3cret@h:bad/", "--drain"
    )
    assert code == 2 and "s3cret" not in err and "Port could not be cast" in err
