"""`copilot serve` and the demo's API tokens: the command wires the app, reports readiness with the
reason when a part is missing, refuses a busy port in one line; tokens are parsed strictly, stored
privately and never echoed in errors."""

from __future__ import annotations

import datetime as dt
import json
import socket
import stat

import pytest

from tests.cli_run import run
from tools.db import make_engine, session_factory, upgrade
from ui.api.auth import (
    AuthError,
    TokenConfigError,
    load_token_store,
    parse_token_pairs,
    read_demo_tokens,
    write_demo_tokens,
)

_run = run


@pytest.fixture
def migrated(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    return url


def test_serve_builds_the_app_and_says_what_is_not_ready(migrated, monkeypatch, capsys):
    import uvicorn
    from fastapi.testclient import TestClient

    seen = {}

    def fake_run(app, host, port, **kwargs):  # instead of listening: start the app as uvicorn would
        seen.update(host=host, port=port)
        with TestClient(app) as client:
            seen["ready"] = client.get("/ready").json()
            seen["ui"] = client.get("/ui/").status_code

    monkeypatch.setattr(uvicorn, "run", fake_run)
    code, out, _ = _run(monkeypatch, capsys, "serve", "--port", "8123")
    assert code == 0 and seen["host"] == "127.0.0.1" and seen["port"] == 8123 and seen["ui"] == 200
    # A fresh var dir: the shipped SOPs are indexed at start-up (first use), so the service is ready.
    assert seen["ready"]["ready"] is True, seen["ready"]
    assert seen["ready"]["checks"]["sop_index"]["detail"].endswith("chunks")
    assert "copilot serve: ready in" in out
    assert "panel http://127.0.0.1:8123/ui" in out


def test_serve_refuses_a_busy_port_in_one_line(migrated, monkeypatch, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _run(monkeypatch, capsys, "serve", "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_demo_tokens_one_per_demo_user_private_file(migrated, tmp_path, monkeypatch, capsys):
    from ui.cli.serve import demo_tokens

    tokens = demo_tokens()
    out = capsys.readouterr().out
    var = tmp_path / "var"
    path = var / "api_tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {"planner", "credit_analyst", "ops_manager", "admin"} <= set(tokens) and len(
        set(tokens.values())
    ) == len(tokens)
    assert read_demo_tokens(var) == tokens and all(t in out for t in tokens.values())
    store = load_token_store("", var)
    assert store.username_for(tokens["planner"]) == "planner" and tokens["planner"] not in repr(store)

    monkeypatch.setenv("COPILOT_API_TOKENS", "a-long-enough-token-123=planner")
    from agent.settings import get_settings

    get_settings.cache_clear()
    assert demo_tokens() == {} and "COPILOT_API_TOKENS is set" in capsys.readouterr().out


def test_token_settings_are_strict_and_never_echo_a_token(tmp_path):
    with pytest.raises(TokenConfigError, match="pair 2 is not 'token=username'") as info:
        parse_token_pairs("a-long-enough-token-123=planner,secret-without-user")
    assert "secret-without-user" not in str(info.value)
    with pytest.raises(TokenConfigError, match="shorter than 22"):
        parse_token_pairs("short=planner")
    store = load_token_store("a-long-enough-token-123=planner, another-long-token-456=csr", tmp_path)
    assert store.username_for("another-long-token-456") == "csr" and store.source == "COPILOT_API_TOKENS"
    for bad in (None, "", "a-long-enough-token-12", "a-long-enough-token-1234"):
        with pytest.raises(AuthError) as err:
            store.username_for(bad)
        assert "a-long-enough" not in str(err.value)
    (tmp_path / "api_tokens.json").write_text(json.dumps({"tokens": [{"username": "planner"}]}))
    with pytest.raises(TokenConfigError, match="entry 1 needs a username and a token"):
        load_token_store("", tmp_path)
    expired = write_demo_tokens(tmp_path, ["csr"], days=1, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    with pytest.raises(AuthError, match="invalid or expired"):
        load_token_store("", tmp_path).username_for(expired["csr"])


def test_demo_users_get_tokens_only_when_there_are_users(tmp_path, monkeypatch, capsys):
    from tools.models import User
    from ui.cli.serve import demo_tokens

    url = f"sqlite:///{tmp_path / 'nousers.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as s:
        s.query(User).delete()
        s.commit()
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    assert demo_tokens() == {} and "no users" in capsys.readouterr().out
