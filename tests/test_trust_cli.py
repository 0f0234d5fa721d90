"""The approval step's refusals as a CLI user meets them (one line, exit 2, nothing changed), and a
malformed ``DATABASE_URL`` that never shows its password — in the CLI, in /ready, in the log."""

from __future__ import annotations

import logging

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from agent.settings import get_settings
from tests import api_world
from tests.cli_run import run
from tests.factories import clean_fixture, line, order
from tools.db import DatabaseError, make_engine, redact
from ui.server import create_app

SECRET = "s3cretPw"
MALFORMED = [
    f"postgresql://copilot:{SECRET}@db.internal:notaport/copilot",
    f"postgresql://copilot:{SECRET}@[::1/copilot",
    f"postgres//copilot:{SECRET}@db.internal/copilot",
    f"copilot:{SECRET}@db.internal/copilot",
    f"postgresql+nodriver://copilot:{SECRET}@db.internal/copilot",
]


@pytest.fixture
def loaded(monkeypatch, capsys, tmp_path):
    fx = clean_fixture(
        order("SO1", lines=[line(1, "A", unit_price=90), line(2, "A", unit_price=100)]),
        order("SO2", customer_id="C2"),
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"suite": "trust", "cases": [{"id": "two", "fixture": fx}]}))
    assert run(monkeypatch, capsys, "db", "upgrade")[0] == 0
    assert run(monkeypatch, capsys, "db", "load-fixture", str(suite), "--case", "two")[0] == 0


def test_the_audits_cli_attacks_exit_2_with_one_line(loaded, monkeypatch, capsys):
    code, out, err = run(
        monkeypatch,
        capsys,
        "actions",
        "request",
        "SO1",
        "--as",
        "csr",
        "--action",
        "CORRECT_PRICE",
        "--params",
        '{"order_id":"SO2","line_no":1,"new_unit_price":"0.01"}',
    )
    assert code == 2 and "blocked" in out and "not the request's order SO1" in out, (out, err)
    code, out, err = run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")
    assert code == 0 and out.startswith("request 2: CORRECT_PRICE"), (out, err)
    code, _, err = run(
        monkeypatch,
        capsys,
        "actions",
        "edit",
        "2",
        "--as",
        "pricing_analyst",
        "--params",
        '{"order_id":"SO2","line_no":1,"new_unit_price":"0.01"}',
    )
    assert code == 2 and "never which records" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(
        monkeypatch,
        capsys,
        "actions",
        "edit",
        "2",
        "--as",
        "pricing_analyst",
        "--params",
        '{"new_unit_price":"80.00"}',
    )
    assert code == 0 and "back to pending for pricing_analyst" in out, (out, err)
    code, _, err = run(monkeypatch, capsys, "actions", "approve", "2", "--as", "pricing_analyst")
    assert code == 2 and "another person with the role decides" in err
    for params, words in (
        ('{"order_id":"SO1","line_no":1,"new_unit_price":NaN}', "NaN"),
        ('{"order_id":"SO1","line_no":1,"new_unit_price":-Infinity}', "-Infinity"),
        ('{"order_id":"SO1","line_no":1,"note":"' + "x" * 900_000 + '"}', "limit is 4,000"),
    ):
        code, _, err = run(
            monkeypatch,
            capsys,
            "actions",
            "request",
            "SO1",
            "--as",
            "csr",
            "--action",
            "CORRECT_PRICE",
            "--params",
            params,
        )
        assert code == 2 and words in err and len(err) < 500, err[:500]
    code, out, _ = run(monkeypatch, capsys, "actions", "list", "--json")
    assert code == 0 and out.count('"id"') == 2  # the refused ones stored nothing
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0


def test_resume_of_a_failed_request_says_so(loaded, monkeypatch, capsys):

    code, out, _ = run(
        monkeypatch,
        capsys,
        "actions",
        "request",
        "SO1",
        "--as",
        "csr",
        "--action",
        "CORRECT_PRICE",
        "--params",
        '{"order_id":"SO1","line_no":2,"new_unit_price":"95.00"}',
    )
    assert code == 0
    engine = make_engine(get_settings().effective_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER frozen BEFORE UPDATE OF unit_price ON order_lines "
                "BEGIN SELECT RAISE(ABORT, 'prices are frozen'); END"
            )
        )
    engine.dispose()
    code, out, _ = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "pricing_analyst")
    assert code == 1 and "execution failed" in out and "prices are frozen" in out
    code, out, _ = run(monkeypatch, capsys, "actions", "resume", "1")
    assert code == 1 and "request 1 failed: the database refused the write" in out


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        # an unencoded '@' in the password: the parser reads its tail as the host
        ("postgresql+psycopg://copilot:s3c@retPw@127.0.0.1:1/copilot", "retPw"),
        # libpq takes the password as a query parameter too
        (f"postgresql+psycopg://copilot@127.0.0.1:1/copilot?password={SECRET}", SECRET),
        (f"postgresql+psycopg://copilot@127.0.0.1:1/copilot?sslmode=bogus&password={SECRET}", SECRET),
    ],
)
def test_no_form_of_the_password_is_shown(url, hidden, monkeypatch, capsys, caplog):
    assert hidden not in redact(url)
    monkeypatch.setenv("DATABASE_URL", url)
    with caplog.at_level(logging.DEBUG):
        code, out, err = run(monkeypatch, capsys, "actions", "list")
    assert code == 2 and "DATABASE_URL" in err and "Traceback" not in err
    assert hidden not in out + err + caplog.text


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_database_url_never_shows_its_password(url, monkeypatch, capsys, caplog):
    with pytest.raises(DatabaseError) as info:
        make_engine(url)
    assert SECRET not in str(info.value) and info.value.__cause__ is None
    assert SECRET not in redact(url)
    monkeypatch.setenv("DATABASE_URL", url)
    with caplog.at_level(logging.DEBUG):
        code, out, err = run(monkeypatch, capsys, "actions", "list")
    assert code == 2 and "DATABASE_URL" in err
    assert SECRET not in out + err + caplog.text


def test_ready_never_shows_the_password(monkeypatch, tmp_path, caplog):

    url = f"postgresql+psycopg://copilot:{SECRET}@127.0.0.1:1/copilot"  # nothing listens on port 1
    svc = api_world.services(monkeypatch, url)
    with caplog.at_level(logging.DEBUG), TestClient(create_app(services=svc, panel=False)) as client:
        resp = client.get("/ready")
    assert resp.status_code == 503 and "database" in resp.text
    assert SECRET not in resp.text and SECRET not in caplog.text
