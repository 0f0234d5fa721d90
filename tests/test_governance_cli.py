"""`copilot actions|users ...` through the real entry point."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cli_run import run
from tests.test_governance import shortfall_fixture


@pytest.fixture
def loaded(monkeypatch, capsys, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump({"suite": "gov", "cases": [{"id": "short", "fixture": shortfall_fixture()}]})
    )
    assert run(monkeypatch, capsys, "db", "upgrade")[0] == 0
    assert run(monkeypatch, capsys, "db", "load-fixture", str(suite), "--case", "short")[0] == 0


def test_request_list_approve_and_refusals(loaded, monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")
    assert code == 0, err
    assert out.startswith("request 1: REALLOCATE_WAREHOUSE") and "pending_approval" in out
    code, out, _ = run(monkeypatch, capsys, "actions", "list", "--status", "pending_approval", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [1]
    code, out, _ = run(monkeypatch, capsys, "actions", "list", "--role", "planner")
    assert code == 0 and "#1" in out
    # refused decisions: one line, exit 2, nothing changes
    code, _, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "csr")
    assert code == 2 and "own request" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "pricing_analyst")
    assert code == 2 and "may not decide" in err
    code, _, err = run(monkeypatch, capsys, "actions", "reject", "1", "--as", "planner")
    assert code == 2 and "reason" in err
    code, out, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "planner")
    assert code == 0, err
    assert "executed" in out and "approve by planner (planner)" in out
    code, _, err = run(monkeypatch, capsys, "actions", "approve", "1", "--as", "ops_manager")
    assert code == 2 and "request 1 is executed" in err and "nothing to decide" in err
    code, out, _ = run(monkeypatch, capsys, "actions", "show", "1", "--json")
    assert json.loads(out)["execution"]["status"] == "executed"
    code, out, _ = run(monkeypatch, capsys, "audit", "list", "--request", "1")
    assert code == 0 and "decision_refused" in out and "execution" in out
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0


def test_a_blocked_request_and_bad_input(loaded, monkeypatch, capsys):
    code, out, _ = run(
        monkeypatch,
        capsys,
        "actions",
        "request",
        "SO1",
        "--as",
        "csr",
        "--action",
        "REALLOCATE_WAREHOUSE",
        "--params",
        '{"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH2"}',
    )
    assert code == 2 and "blocked" in out and "guard: WH2 has 0 A available" in out
    code, _, err = run(
        monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr", "--action", "X", "--params", "{oops"
    )
    assert code == 2 and "JSON object" in err
    code, out, _ = run(
        monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr", "--action", "COMPLIANCE_REVIEW"
    )
    assert code == 0 and '{"order_id": "SO1"}' in out and "compliance_officer" in out
    code, _, err = run(monkeypatch, capsys, "actions", "request", "SO-404", "--as", "csr")
    assert code == 2 and "order SO-404 not found" in err
    code, _, err = run(monkeypatch, capsys, "actions", "approve", "99", "--as", "planner")
    assert code == 2 and "not found" in err


def test_users_add_and_list(loaded, monkeypatch, capsys):
    code, out, _ = run(
        monkeypatch, capsys, "users", "add", "dana", "--role", "credit_manager", "--display-name", "Dana"
    )
    assert code == 0 and "added dana (credit_manager)" in out
    code, _, err = run(monkeypatch, capsys, "users", "add", "dana", "--role", "csr")
    assert code == 2 and "already exists" in err
    code, _, err = run(monkeypatch, capsys, "users", "add", "eve", "--role", "superuser")
    assert code == 2 and "unknown role" in err
    code, out, _ = run(monkeypatch, capsys, "users", "list", "--json")
    users = {u["username"]: u["role"] for u in json.loads(out)}
    assert users["dana"] == "credit_manager" and users["planner"] == "planner" and len(users) == 11


def test_triage_from_the_command_line_lands_in_the_audit_chain(loaded, monkeypatch, capsys):
    assert run(monkeypatch, capsys, "triage", "SO1", "--json")[0] == 0
    _code, out, _ = run(monkeypatch, capsys, "audit", "list", "--type", "triage", "--json")
    (event,) = json.loads(out)
    assert event["order_id"] == "SO1" and event["payload"]["exceptions"] == ["INVENTORY_SHORTFALL"]
    assert event["payload"]["recommendation"]["action"] == "REALLOCATE_WAREHOUSE"
    assert run(monkeypatch, capsys, "audit", "verify")[0] == 0


@pytest.mark.parametrize(
    ("args", "option", "typo"),
    [
        (("actions", "list", "--status", "pending"), "--status", "pending"),
        (("actions", "list", "--role", "plannr"), "--role", "plannr"),
        (("messages", "list", "--status", "snt"), "--status", "snt"),
        (("knowledge", "search", "release a credit hold", "--type", "CREDIT_HLD"), "--type", "CREDIT_HLD"),
    ],
)
def test_a_typod_filter_is_refused_not_answered_with_nothing(loaded, monkeypatch, capsys, args, option, typo):
    """A filter value no record can have ("pending" for pending_approval) printed "no action
    requests" / "no messages" / "no passages (is the index empty?)" with exit 0: the user took the
    typo for an empty queue. Now one line naming the choices, exit 2."""
    assert run(monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr")[0] == 0
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2, out + err
    assert err.startswith(f"copilot: {option} must be one of ") and repr(typo) in err
    assert len(err.strip().splitlines()) == 1


def test_audit_list_says_when_nothing_matches(loaded, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "audit", "list", "--type", "decsion")
    assert code == 0 and out.strip() == "no audit events"


def test_an_action_named_without_params_is_not_given_an_order_id_it_does_not_take(
    loaded, monkeypatch, capsys
):
    """`--action ESCALATE` (or EXPEDITE_PO) without --params was sent {"order_id": …}, so the guard
    answered "ESCALATE has no parameter 'order_id'" — a parameter the user never gave."""
    code, out, err = run(
        monkeypatch, capsys, "actions", "request", "SO1", "--as", "csr", "--action", "ESCALATE"
    )
    assert code == 2 and "blocked" in out
    assert "order_id" not in out + err and "needs the parameter 'role'" in out
    code, out, err = run(monkeypatch, capsys, "whatif", "SO1", "--action", "EXPEDITE_PO")
    assert (code, out) == (2, "") and "order_id" not in err and "needs the parameter 'po_id'" in err
    # an action whose only parameter is the order still gets it
    code, out, err = run(monkeypatch, capsys, "whatif", "SO1", "--action", "RELEASE_CREDIT_HOLD")
    assert code == 0 and "RELEASE_CREDIT_HOLD(order_id=SO1)" in out, err
