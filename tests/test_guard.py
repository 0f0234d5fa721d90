"""The guard: schema, records, matrix and requester checks on guardrails-ai, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.governance.guard import normalise_params, run_guard
from tests.factories import clean_fixture, edit, order
from tests.test_governance import POLICY, shortfall_fixture, world

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "action, params, problem",
    [
        (
            "REALLOCATE_WAREHOUSE",
            {"order_id": "SO1", "line_no": "one", "to_warehouse_id": "WH3"},
            "whole number",
        ),
        (
            "REALLOCATE_WAREHOUSE",
            {"order_id": "SO1", "line_no": True, "to_warehouse_id": "WH3"},
            "whole number",
        ),
        ("REALLOCATE_WAREHOUSE", {"order_id": "SO1", "line_no": 1}, "needs the parameter 'to_warehouse_id'"),
        ("UPDATE_PROMISE_DATE", {"order_id": "SO1", "new_promised_date": "next week"}, "date like"),
        ("CORRECT_PRICE", {"order_id": "SO1", "line_no": 1, "new_unit_price": "12.345"}, "two decimals"),
        ("CORRECT_PRICE", {"order_id": "SO1", "line_no": 1, "new_unit_price": "NaN"}, "two decimals"),
        ("ESCALATE", {"role": "wizard", "reason": "x"}, "unknown role"),
        ("ESCALATE", {"role": "csr", "reason": "   "}, "non-empty text"),
        ("EXPEDITE_PO", {"po_id": "PO1", "approver_role": "planner"}, "no parameter 'approver_role'"),
        ("NUKE_ORDER", {}, "unknown action"),
        ("EXPEDITE_PO", ["PO1"], "must be an object"),
    ],
)
def test_schema_problems_are_named(action, params, problem):
    normalised, problems = normalise_params(POLICY, action, params)
    assert normalised is None and any(problem in p for p in problems), problems


def test_parameters_are_normalised():
    params, problems = normalise_params(
        POLICY, "CORRECT_PRICE", {"order_id": " SO1 ", "line_no": "2", "new_unit_price": 12.5}
    )
    assert problems == [] and params == {"order_id": "SO1", "line_no": 2, "new_unit_price": "12.50"}
    params, _ = normalise_params(
        POLICY, "FIX_MASTER_DATA", {"order_id": "SO1", "ship_to_city": "Boston", "ship_to_street": ""}
    )
    assert params == {"order_id": "SO1", "ship_to_city": "Boston"}


@pytest.mark.parametrize(
    "action, params, reason",
    [
        (
            "REALLOCATE_WAREHOUSE",
            {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH9"},
            "warehouse WH9 not found",
        ),
        (
            "REALLOCATE_WAREHOUSE",
            {"order_id": "SO1", "line_no": 7, "to_warehouse_id": "WH3"},
            "line 7 is not a line of SO1",
        ),
        (
            "REALLOCATE_WAREHOUSE",
            {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH1"},
            "already ships from WH1",
        ),
        (
            "APPROVE_SUBSTITUTION",
            {"order_id": "SO1", "line_no": 1, "substitute_sku": "B"},
            "not a listed substitute",
        ),
        ("REBOOK_CARRIER", {"shipment_id": "SH1", "carrier_id": "CA2"}, "carrier CA2 is disrupted"),
        ("EXPEDITE_PO", {"po_id": "PO-X"}, "purchase order PO-X not found"),
        (
            "SPLIT_SHIPMENT",
            {"order_id": "SO1", "line_no": 1, "ship_qty": 5},
            "4 A available, fewer than ship_qty 5",
        ),
        (
            "UPDATE_PROMISE_DATE",
            {"order_id": "SO1", "new_promised_date": "2026-10-01"},
            "before the order date",
        ),
        ("CORRECT_PRICE", {"order_id": "SO1", "line_no": 1, "new_unit_price": "0"}, "must be positive"),
    ],
)
def test_records_checks_block_with_readable_reasons(sqlite_engine, action, params, reason):
    fx = shortfall_fixture()
    edit(fx, "carriers", "CA2", name="Slow", status="disrupted", on_time_rate=0.5)
    edit(fx, "shipments", "SH1", order_id="SO1", carrier_id="CA1", status="planned")
    factory = world(sqlite_engine, fx)
    with factory() as s:
        g = run_guard(s, POLICY, action=action, params=params, requested_by="csr", order_id="SO1")
    assert not g.ok and any(reason in r for r in g.reasons), g.reasons
    assert g.checks["copilot/records"] is False


def test_risk_and_role_come_from_the_records(sqlite_engine):
    fx = clean_fixture(order())
    edit(fx, "items", "S", description="Substitute", list_price=120, status="active")
    edit(fx, "substitutes", "A/S", approved=True)
    edit(fx, "inventory", "S/WH1", on_hand=50)
    factory = world(sqlite_engine, fx)
    with factory() as s:
        sub = run_guard(
            s,
            POLICY,
            action="APPROVE_SUBSTITUTION",
            params={"order_id": "SO1", "line_no": 1, "substitute_sku": "S"},
            requested_by="csr",
            order_id="SO1",
        )
        price = run_guard(
            s,
            POLICY,
            action="CORRECT_PRICE",
            params={"order_id": "SO1", "line_no": 1, "new_unit_price": "100"},
            requested_by="csr",
            order_id="SO1",
        )
        other = run_guard(
            s,
            POLICY,
            action="CORRECT_PRICE",
            params={"order_id": "SO1", "line_no": 1, "new_unit_price": "90"},
            requested_by="csr",
            order_id="SO1",
        )
    assert sub.ok and (sub.risk, sub.approver_role) == ("medium", "csr")  # list price 120 > unit price 100
    assert price.ok and price.risk == "low"  # restores the effective (list) price
    assert other.ok and other.risk == "medium"
    assert set(sub.checks) == {
        "copilot/action-schema",
        "copilot/records",
        "copilot/policy-matrix",
        "copilot/requester",
    }


NO_SOCKETS = """
import sys
import urllib3  # its import probes IPv6 by binding a loopback socket (no traffic): not the guard's doing
opened = []
def hook(event, args):
    if event.startswith("socket.") and event != "socket.gethostname":
        opened.append(event)
        sys.__stderr__.write("SOCKET " + event + " " + repr(args)[:200] + "\\n")
sys.addaudithook(hook)
from agent.governance.guard import run_guard
from agent.policy import load_policy
from tools.db import make_engine, session_factory, upgrade
engine = make_engine("sqlite://")
upgrade(engine)
policy = load_policy()
with session_factory(engine)() as s:
    for _ in range(3):
        g = run_guard(s, policy, action="ESCALATE", params={"role": "csr", "reason": "check"}, requested_by="planner", order_id=None)
        assert g.ok, g.reasons
        g = run_guard(s, policy, action="EXPEDITE_PO", params={"po_id": "PO1"}, requested_by="planner", order_id=None)
        assert not g.ok
    from guardrails import Guard
    Guard()  # a Guard built elsewhere re-reads the rc file (metrics on by default): ours stays off
    assert run_guard(s, policy, action="ESCALATE", params={"role": "csr", "reason": "again"}, requested_by="planner", order_id=None).ok
print("guarded", len(opened))
"""


def test_the_guard_opens_no_socket_and_sends_no_metrics():
    """guardrails 0.11 would export OpenTelemetry traces to its hub: not one socket, at run or exit."""
    env = {k: v for k, v in os.environ.items() if k not in ("OTEL_SDK_DISABLED", "GUARDRAILS_RUN_SYNC")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", NO_SOCKETS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "guarded 0"
    assert "SOCKET" not in done.stderr, done.stderr
    assert "Could not obtain an event loop" not in done.stderr
