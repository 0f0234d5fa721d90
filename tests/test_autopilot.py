"""Policy auto-approval by rule: shadow mode, live mode, the kill switch and the agreement report."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from agent.governance.autopilot import autopilot_report
from agent.governance.requests import decide, request_action
from agent.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy
from agent.settings import get_settings
from tests.cli_run import run
from tests.factories import clean_fixture, edit, order
from tests.test_governance import shortfall_fixture, world
from tools.models import AuditEvent, Order, OrderLine
from tools.sites import Scope, scoped

SHADOW = load_policy()
LIVE = parse_policy(
    DEFAULT_POLICY_PATH.read_text().replace(
        "when: [same_region], mode: shadow", "when: [same_region], mode: live"
    )
)


def _events(factory, kind: str) -> list:
    with factory() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.event_type == kind)).all()


def test_shadow_records_what_it_would_approve_and_people_still_decide(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, SHADOW, order_id="SO1", requested_by="csr")
    assert (req["action"], req["risk"], req["status"]) == ("REALLOCATE_WAREHOUSE", "low", "pending_approval")
    [shadow] = _events(factory, "autopilot_shadow")
    assert shadow.payload["rule"] == "reallocate-same-region" and shadow.request_id == req["id"]
    with factory() as s:
        row = autopilot_report(s, SHADOW)["rules"]["reallocate-same-region"]
    assert (row["shadow"], row["pending"], row["agreement_rate"]) == (1, 1, None)
    decide(factory, SHADOW, req["id"], username="planner", decision="approve")
    with factory() as s:
        report = autopilot_report(s, SHADOW)
    row = report["rules"]["reallocate-same-region"]
    assert (row["decided"], row["agreed"], row["agreement_rate"]) == (1, 1, 1.0)
    assert report["touchless"] == 0 and report["executed_requests"] == 1


def test_a_live_rule_approves_as_policy_once_and_audits_it(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, LIVE, order_id="SO1", requested_by="csr")
    assert req["status"] == "executed"
    assert req["decisions"][0]["decided_by"] == "policy"
    assert "reallocate-same-region" in req["decisions"][0]["reason"]
    with factory() as s:
        assert s.get(OrderLine, ("SO1", 1)).warehouse_id == "WH3"
        report = autopilot_report(s, LIVE)
    assert report["rules"]["reallocate-same-region"]["auto_approved"] == 1
    assert report["touchless_rate"] == 1.0


def test_conditions_must_hold_another_region_is_left_to_people(sqlite_engine):
    fx = clean_fixture(order())
    edit(fx, "inventory", "A/WH1", on_hand=4)
    edit(fx, "warehouses", "WH3", name="Reno", region="west", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=100)
    factory = world(sqlite_engine, fx)
    req = request_action(factory, LIVE, order_id="SO1", requested_by="csr")
    assert req["action"] == "REALLOCATE_WAREHOUSE" and req["status"] == "pending_approval"
    assert _events(factory, "autopilot_shadow") == []


def test_the_kill_switch_turns_all_automation_off(sqlite_engine, monkeypatch):
    monkeypatch.setenv("COPILOT_AUTOPILOT", "off")
    get_settings.cache_clear()
    factory = world(sqlite_engine, shortfall_fixture())
    assert request_action(factory, LIVE, order_id="SO1", requested_by="csr")["status"] == "pending_approval"
    assert _events(factory, "autopilot_shadow") == []
    off = parse_policy(
        DEFAULT_POLICY_PATH.read_text()
        .replace("  low: false", "  low: true")
        .replace("  enabled: true", "  enabled: false")
    )
    assert not off.auto_approves("REALLOCATE_WAREHOUSE", "low")


def test_the_policy_refuses_rules_that_may_never_be_automatic():
    text = DEFAULT_POLICY_PATH.read_text()
    with pytest.raises(PolicyError, match="never auto-approved"):
        parse_policy(text.replace("action: CORRECT_PRICE, risk: low", "action: COMPLIANCE_REVIEW, risk: low"))
    with pytest.raises(PolicyError, match=r"autopilot\.rules\.2\.risk"):
        parse_policy(text.replace("action: CORRECT_PRICE, risk: low", "action: CORRECT_PRICE, risk: high"))


def test_autopilot_report_cli(monkeypatch, capsys, tmp_path, sqlite_engine):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    factory = world(sqlite_engine, shortfall_fixture())
    request_action(factory, SHADOW, order_id="SO1", requested_by="csr")
    code, out, err = run(monkeypatch, capsys, "autopilot", "report")
    assert code == 0, err
    assert (
        "automation ON" in out
        and "reallocate-same-region (REALLOCATE_WAREHOUSE, low, shadow): shadow 1" in out
    )
    code, out, _ = run(monkeypatch, capsys, "autopilot", "report", "--json")
    assert json.loads(out)["rules"]["approved-substitute"]["shadow"] == 0


def test_the_environment_kill_switch_also_stops_the_per_risk_switches(sqlite_engine, monkeypatch):
    """COPILOT_AUTOPILOT=off turns every auto-approval off, the policy's auto_approve per risk too."""
    monkeypatch.setenv("COPILOT_AUTOPILOT", "off")
    get_settings.cache_clear()
    per_risk = parse_policy(DEFAULT_POLICY_PATH.read_text().replace("  low: false", "  low: true"))
    assert per_risk.auto_approve["low"] is True
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, per_risk, order_id="SO1", requested_by="csr")
    assert (req["risk"], req["status"]) == ("low", "pending_approval")
    assert req["decisions"] == []


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (  # a condition of another action would never hold: the rule would silently do nothing
            "action: CORRECT_PRICE, risk: low, when: [amount_within]",
            "action: CORRECT_PRICE, risk: low, when: [same_region]",
            "rule 'restore-contract-price': condition same_region applies to REALLOCATE_WAREHOUSE only",
        ),
        (  # two rules of one name: the report would merge them
            "name: approved-substitute,",
            "name: reallocate-same-region,",
            "rule 'reallocate-same-region': a second rule of that name",
        ),
        (  # a risk the action never takes
            "name: approved-substitute, action: APPROVE_SUBSTITUTION, risk: low,"
            " when: [approved_substitute_no_higher_price]",
            "name: approved-substitute, action: UPDATE_PROMISE_DATE, risk: low",
            "rule 'approved-substitute': UPDATE_PROMISE_DATE is never low risk",
        ),
    ],
)
def test_a_malformed_autopilot_rule_is_refused_naming_it(old, new, says):
    text = DEFAULT_POLICY_PATH.read_text()
    assert old in text
    with pytest.raises(PolicyError, match=re.escape(says)):
        parse_policy(text.replace(old, new))


def test_a_site_scoped_users_report_counts_their_sites_requests_only(sqlite_engine):
    """The touchless rate (also a KPI of GET /api/v1/kpis) of a user limited to another site counted
    this site's auto-approved request: a scoped user's KPIs are their sites'."""
    factory = world(sqlite_engine, shortfall_fixture())
    assert request_action(factory, LIVE, order_id="SO1", requested_by="csr")["status"] == "executed"
    with factory() as s:
        assert s.get_one(Order, "SO1").warehouse_id == "WH1"
    with scoped(factory, Scope.of(warehouses=["WH3"]))() as s:
        report = autopilot_report(s, LIVE)
    assert (report["executed_requests"], report["touchless"], report["touchless_rate"]) == (0, 0, None)
    assert report["rules"]["reallocate-same-region"]["auto_approved"] == 0
    with scoped(factory, Scope.of(warehouses=["WH1"]))() as s:
        assert autopilot_report(s, LIVE)["touchless"] == 1


def test_a_request_the_per_risk_switch_approves_is_no_shadow_sample(sqlite_engine):
    """With auto_approve.low on, a request matching a shadow rule was approved by policy and also
    recorded in shadow: the report then counted policy's own approval as people agreeing."""
    per_risk = parse_policy(DEFAULT_POLICY_PATH.read_text().replace("  low: false", "  low: true"))
    factory = world(sqlite_engine, shortfall_fixture())
    req = request_action(factory, per_risk, order_id="SO1", requested_by="csr")
    assert req["status"] == "executed" and req["decisions"][0]["decided_by"] == "policy"
    assert _events(factory, "autopilot_shadow") == []
    with factory() as s:
        row = autopilot_report(s, per_risk)["rules"]["reallocate-same-region"]
    assert (row["shadow"], row["decided"], row["agreed"]) == (0, 0, 0)
