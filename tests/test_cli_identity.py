"""The command line's identity: every CLI event records the OS account and host, the policy can
refuse decisions from the CLI, API tokens are issued and revoked here, and the audit chain is
checkpointed and verified against the checkpoint."""

from __future__ import annotations

import json
import os
import pwd
import socket

import pytest
import yaml
from sqlalchemy import text

from agent.settings import get_settings
from tests.cli_run import run
from tests.test_governance import shortfall_fixture
from tools.db import make_engine


@pytest.fixture
def loaded(monkeypatch, capsys, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump({"suite": "id", "cases": [{"id": "short", "fixture": shortfall_fixture()}]})
    )
    assert run(monkeypatch, capsys, "db", "upgrade")[0] == 0
    assert run(monkeypatch, capsys, "db", "load-fixture", str(suite), "--case", "short")[0] == 0


def _events(monkeypatch, capsys, *args: str) -> list[dict]:
    code, out, err = run(monkeypatch, capsys, "audit", "list", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_cli_requests_decisions_and_triage_record_the_os_account_and_host(loaded, monkeypatch, capsys):
    monkeypatch.setenv("USER", "someone-else")  # the environment is not trusted for who ran it
    account = pwd.getpwuid(os.geteuid()).pw_name
    assert run(monkeypatch, capsys, "triage", "SO1")[0] == 0
    assert run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")[0] == 0
    assert run(monkeypatch, capsys, "actions", "approve", "1", "--as", "planner")[0] == 0
    events = _events(monkeypatch, capsys)
    expected = {"door": "cli", "os_user": account, "host": socket.gethostname()}
    by_type = {e["event_type"]: e for e in events}
    for kind in ("triage", "action_requested", "decision", "execution"):
        origin = by_type[kind]["payload"]["origin"]
        assert {k: origin[k] for k in expected} == expected, kind
    triage = [e for e in events if e["event_type"] == "triage" and e["actor"] != "csr"]
    assert triage[0]["actor"] == account  # who asked for the triage, not "cli" or "copilot"


def test_the_policy_can_refuse_decisions_from_the_cli(loaded, monkeypatch, capsys, tmp_path):
    from agent.policy import DEFAULT_POLICY_PATH

    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    policy["governance"] = {"cli_decisions": False}
    path = tmp_path / "api-only.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("COPILOT_POLICY", str(path))
    get_settings.cache_clear()
    assert run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")[0] == 0  # requests still go
    for verb in (("approve", "1"), ("reject", "1", "--reason", "no"), ("edit", "1", "--params", "{}")):
        code, _, err = run(monkeypatch, capsys, "actions", *verb, "--as", "planner")
        assert code == 2 and "through the API only" in err, verb
    code, out, _ = run(monkeypatch, capsys, "actions", "show", "1", "--json")
    assert json.loads(out)["status"] == "pending_approval"
    refused = _events(monkeypatch, capsys, "--type", "decision_refused")
    assert len(refused) == 3 and refused[0]["payload"]["origin"]["door"] == "cli"
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0


def test_the_cli_refusal_holds_for_a_messages_edit_too(loaded, monkeypatch, capsys, tmp_path):
    """`copilot messages edit` approves the edited message: with decisions from the CLI off it is
    refused like `actions approve`, nothing is queued, and the refusal is logged."""
    from agent.policy import DEFAULT_POLICY_PATH

    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    policy["governance"] = {"cli_decisions": False}
    path = tmp_path / "api-only.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("COPILOT_POLICY", str(path))
    get_settings.cache_clear()
    assert run(monkeypatch, capsys, "users", "add", "csr2", "--role", "csr")[0] == 0
    code, _, err = run(monkeypatch, capsys, "messages", "draft", "SO1", "--as", "csr")
    assert code == 0, err
    code, out, _ = run(monkeypatch, capsys, "messages", "list", "--json")
    [message] = json.loads(out)
    code, _, err = run(
        monkeypatch, capsys, "messages", "edit", str(message["id"]), "--as", "csr2", "--subject", "SO1"
    )
    assert code == 2 and "through the API only" in err
    code, out, _ = run(monkeypatch, capsys, "messages", "list", "--json")
    assert json.loads(out)[0]["status"] == "pending_approval"
    refused = _events(monkeypatch, capsys, "--type", "decision_refused")
    assert [e["actor"] for e in refused] == ["csr2"] and refused[0]["payload"]["origin"]["door"] == "cli"
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0


def test_tokens_are_issued_listed_and_revoked_from_the_cli(loaded, monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "users", "token", "issue", "planner", "--days", "7", "--json")
    assert code == 0, err
    issued = json.loads(out)
    assert issued["token"].startswith("cpt_") and issued["state"] == "active"
    code, out, _ = run(monkeypatch, capsys, "users", "token", "list", "--json")
    listed = json.loads(out)
    assert [t["id"] for t in listed] == [issued["id"]] and "token" not in listed[0]
    assert run(monkeypatch, capsys, "users", "token", "revoke", str(issued["id"]))[0] == 0
    code, out, _ = run(monkeypatch, capsys, "users", "token", "list", "--json")
    assert json.loads(out)[0]["state"] == "revoked"
    code, _, err = run(monkeypatch, capsys, "users", "token", "issue", "nobody")
    assert code == 2 and "nobody" in err
    code, _, err = run(monkeypatch, capsys, "users", "token", "revoke", "999")
    assert code == 2


def test_checkpoint_then_verify_against_it(loaded, monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "audit", "checkpoint")
    assert code == 2 and "COPILOT_AUDIT_KEY" in err  # no key, no signature
    monkeypatch.setenv("COPILOT_AUDIT_KEY", "s" * 64)
    get_settings.cache_clear()
    assert run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")[0] == 0
    out_file = tmp_path / "head.json"
    code, out, err = run(monkeypatch, capsys, "audit", "checkpoint", "--out", str(out_file))
    assert code == 0, err
    assert out_file.stat().st_mode & 0o777 == 0o600
    checkpoint = json.loads(out_file.read_text())
    assert run(monkeypatch, capsys, "actions", "approve", "1", "--as", "planner")[0] == 0
    code, out, err = run(monkeypatch, capsys, "audit", "verify", "--against", str(out_file))
    assert code == 0 and "holds the checkpoint" in out, err
    # delete the tail from the checkpoint on and fix the anchor up: only --against notices
    engine = make_engine(get_settings().effective_database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": checkpoint["seq"]})
        seq, head = conn.execute(text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).one()
        conn.execute(text("UPDATE audit_anchor SET seq = :s, hash = :h"), {"s": seq, "h": head})
    engine.dispose()
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0
    code, _, err = run(monkeypatch, capsys, "audit", "verify", "--against", str(out_file))
    assert code == 1 and "deleted since" in err
    out_file.write_text(json.dumps({**checkpoint, "hash": "0" * 64}))
    code, _, err = run(monkeypatch, capsys, "audit", "verify", "--against", str(out_file))
    assert code == 2 and "signature" in err
