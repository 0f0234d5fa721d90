"""The policy file: the shipped default, its interpretation, and errors that name the line."""

from __future__ import annotations

import pytest

from agent.policy import ACTIONS, DEFAULT_POLICY_PATH, EXCEPTION_TYPES, PolicyError, load_policy, parse_policy

DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def policy():
    return load_policy()


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_policy_holds_the_contract(policy) -> None:
    assert set(policy.actions) == set(ACTIONS)
    assert set(policy.decision_order.candidates) == set(EXCEPTION_TYPES)
    assert policy.decision_order.priority == [
        "COMPLIANCE_HOLD",
        "CREDIT_HOLD",
        "MASTER_DATA_INCOMPLETE",
        "PRICING_DISCREPANCY",
        "SUBSTITUTION_REQUEST",
        "ALLOCATION_CONFLICT",  # domain.md §6: right before INVENTORY_SHORTFALL
        "INVENTORY_SHORTFALL",
        "PROCUREMENT_DELAY",
        "CARRIER_DISRUPTION",
        "RECURRING_ANOMALY",
    ]
    assert [c.action for c in policy.decision_order.candidates["PROCUREMENT_DELAY"]] == [
        "EXPEDITE_PO",
        "UPDATE_PROMISE_DATE",
        "ESCALATE",
    ]
    assert [c.action for c in policy.decision_order.candidates["ALLOCATION_CONFLICT"]] == [
        "REASSIGN_ALLOCATION"
    ]
    t = policy.thresholds
    assert (t.price_tolerance_pct, t.recurrence.window_days, t.recurrence.min_orders) == (2, 30, 3)
    assert t.credit_release_medium_max_overage_pct == 10
    assert "no" in t.substitution.negations and "do not" in t.substitution.negations
    assert [c.action for c in policy.decision_order.candidates["INVENTORY_SHORTFALL"]] == [
        "REALLOCATE_WAREHOUSE",
        "APPROVE_SUBSTITUTION",
        "SPLIT_SHIPMENT",
        "UPDATE_PROMISE_DATE",
        "ESCALATE",
    ]
    assert policy.decision_order.candidates["INVENTORY_SHORTFALL"][-1].role == "procurement_buyer"
    assert policy.actions["FIX_MASTER_DATA"].optional_params == {
        "ship_to_street": "str",
        "ship_to_city": "str",
        "ship_to_postal_code": "str",
        "ship_to_country": "str",
    }


# (action, conditions that hold, risk, approver) — domain.md §3
RISKS = [
    ("REALLOCATE_WAREHOUSE", {}, "low", "planner"),
    ("REASSIGN_ALLOCATION", {}, "medium", "planner"),
    ("REASSIGN_ALLOCATION", {"donor_customer_platinum_or_gold": True}, "high", "ops_manager"),
    (
        "APPROVE_SUBSTITUTION",
        {"substitute_approved": True, "substitute_list_price_within_unit_price": True},
        "low",
        "csr",
    ),
    ("APPROVE_SUBSTITUTION", {"substitute_approved": True}, "medium", "csr"),
    ("APPROVE_SUBSTITUTION", {"substitute_list_price_within_unit_price": True}, "medium", "csr"),
    ("SPLIT_SHIPMENT", {}, "medium", "planner"),
    ("UPDATE_PROMISE_DATE", {}, "medium", "csr"),
    (
        "RELEASE_CREDIT_HOLD",
        {"overage_within_medium_limit": True, "no_overdue_balance": True},
        "medium",
        "credit_analyst",
    ),
    (
        "RELEASE_CREDIT_HOLD",
        {"overage_within_medium_limit": True, "no_overdue_balance": False},
        "high",
        "credit_manager",
    ),
    ("RELEASE_CREDIT_HOLD", {"no_overdue_balance": True}, "high", "credit_manager"),
    ("CORRECT_PRICE", {"restores_effective_price": True}, "low", "pricing_analyst"),
    ("CORRECT_PRICE", {}, "medium", "pricing_analyst"),
    ("REBOOK_CARRIER", {}, "medium", "logistics_coordinator"),
    ("EXPEDITE_FREIGHT", {}, "high", "ops_manager"),
    ("EXPEDITE_PO", {}, "medium", "procurement_buyer"),
    ("FIX_MASTER_DATA", {}, "medium", "csr"),
    ("COMPLIANCE_REVIEW", {}, "high", "compliance_officer"),
    ("ESCALATE", {}, "none", None),
]


@pytest.mark.parametrize(("action", "facts", "risk", "approver"), RISKS)
def test_risk_and_approver(policy, action: str, facts: dict, risk: str, approver: str | None) -> None:
    assert policy.risk_of(action, facts) == risk
    assert policy.approver_for(action, risk) == approver


# (role, action, risk, may decide)
DECIDERS = [
    ("credit_analyst", "RELEASE_CREDIT_HOLD", "medium", True),
    ("credit_analyst", "RELEASE_CREDIT_HOLD", "high", False),
    ("credit_manager", "RELEASE_CREDIT_HOLD", "high", True),
    ("credit_manager", "RELEASE_CREDIT_HOLD", "medium", True),  # through the hierarchy
    ("credit_manager", "CORRECT_PRICE", "low", False),
    ("ops_manager", "RELEASE_CREDIT_HOLD", "high", True),  # transitively
    ("ops_manager", "REALLOCATE_WAREHOUSE", "low", True),
    ("ops_manager", "EXPEDITE_FREIGHT", "high", True),
    ("ops_manager", "COMPLIANCE_REVIEW", "high", False),
    ("compliance_officer", "COMPLIANCE_REVIEW", "high", True),
    ("planner", "APPROVE_SUBSTITUTION", "low", False),
    ("admin", "REALLOCATE_WAREHOUSE", "low", False),
    ("admin", "COMPLIANCE_REVIEW", "high", False),
    ("ops_manager", "ESCALATE", "none", False),  # nothing to decide
]


@pytest.mark.parametrize(("role", "action", "risk", "allowed"), DECIDERS)
def test_who_may_decide(policy, role: str, action: str, risk: str, allowed: bool) -> None:
    assert policy.may_decide(role, action, risk) is allowed


def test_auto_approval_is_off_by_default_and_never_for_compliance() -> None:
    text = DEFAULT_TEXT.replace("  low: false", "  low: true").replace("  medium: false", "  medium: true")
    policy = parse_policy(text)
    assert policy.auto_approves("REALLOCATE_WAREHOUSE", "low")
    assert policy.auto_approves("REBOOK_CARRIER", "medium")
    assert not policy.auto_approves("EXPEDITE_FREIGHT", "high")
    assert not policy.auto_approves("COMPLIANCE_REVIEW", "medium")  # never, whatever the risk
    assert not policy.auto_approves("ESCALATE", "none")
    assert not any(load_policy().auto_approves(a, r) for a in ACTIONS for r in ("low", "medium", "high"))


def test_policy_hash_is_stable_and_semantic(policy) -> None:
    assert policy.policy_hash == load_policy().policy_hash
    assert len(policy.policy_hash) == 64
    reformatted = "# a comment\n" + DEFAULT_TEXT.replace(
        "price_tolerance_pct: 2", "price_tolerance_pct:   2.0"
    )
    assert parse_policy(reformatted).policy_hash == policy.policy_hash
    changed = DEFAULT_TEXT.replace("price_tolerance_pct: 2", "price_tolerance_pct: 3")
    assert parse_policy(changed).policy_hash != policy.policy_hash


def test_load_policy_from_a_path(tmp_path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(DEFAULT_TEXT.replace("window_days: 30", "window_days: 14"), encoding="utf-8")
    assert load_policy(path).thresholds.recurrence.window_days == 14
    assert load_policy(str(path)).thresholds.recurrence.window_days == 14


# (case, old text, new text, the line that holds the error is the one containing, key, message part)
ERRORS = [
    (
        "unknown-action",
        "  REBOOK_CARRIER:",
        "  REBOOK_CARIER:",
        "REBOOK_CARIER:",
        "actions.REBOOK_CARIER",
        "got 'REBOOK_CARIER'",
    ),
    (
        "missing-action",
        "  EXPEDITE_PO:\n    params: {po_id: str}\n    risk: medium\n    approver: procurement_buyer\n",
        "",
        "actions:",
        "actions",
        "action 'EXPEDITE_PO' of the catalog is missing",
    ),
    (
        "unknown-approver-role",
        "    approver: logistics_coordinator",
        "    approver: logistics",
        "approver: logistics",
        "actions.REBOOK_CARRIER.approver",
        "unknown role 'logistics'",
    ),
    (
        "unknown-role-by-risk",
        "{medium: credit_analyst, high: credit_manager}",
        "{medium: credit_analyst, high: credit_boss}",
        "credit_boss",
        "actions.RELEASE_CREDIT_HOLD.approver.high",
        "unknown role 'credit_boss'",
    ),
    (
        "uncovered-risk",
        "{medium: credit_analyst, high: credit_manager}",
        "{medium: credit_analyst}",
        "approver: {medium: credit_analyst}",
        "actions.RELEASE_CREDIT_HOLD.approver",
        "no approver for risk 'high'",
    ),
    (
        "unknown-condition",
        "if_all: [restores_effective_price]",
        "if_all: [price_restored]",
        "price_restored",
        "actions.CORRECT_PRICE.risk.rules.0.if_all.0",
        "got 'price_restored'",
    ),
    (
        "unknown-risk",
        "    risk: low\n",
        "    risk: tiny\n",
        "risk: tiny",
        "actions.REALLOCATE_WAREHOUSE.risk",
        "got 'tiny'",
    ),
    (
        "unknown-param-type",
        "ship_qty: int",
        "ship_qty: integer",
        "ship_qty: integer",
        "actions.SPLIT_SHIPMENT.params.ship_qty",
        "got 'integer'",
    ),
    (
        "unknown-exception-type",
        "    CREDIT_HOLD: [RELEASE_CREDIT_HOLD]",
        "    CREDIT_HOLDS: [RELEASE_CREDIT_HOLD]",
        "CREDIT_HOLDS:",
        "decision_order.candidates.CREDIT_HOLDS",
        "got 'CREDIT_HOLDS'",
    ),
    (
        "unknown-type-in-priority",
        "    - CARRIER_DISRUPTION\n    - RECURRING",
        "    - CARRIER_DELAY\n    - RECURRING",
        "- CARRIER_DELAY",
        "decision_order.priority.8",
        "got 'CARRIER_DELAY'",
    ),
    (
        "unknown-candidate-action",
        "      - SPLIT_SHIPMENT",
        "      - SPLIT_ORDER",
        "- SPLIT_ORDER",
        "decision_order.candidates.INVENTORY_SHORTFALL.2",
        "got 'SPLIT_ORDER'",
    ),
    (
        "escalate-to-unknown-role",
        "{action: ESCALATE, role: ops_manager}",
        "{action: ESCALATE, role: ops_lead}",
        "role: ops_lead",
        "decision_order.candidates.RECURRING_ANOMALY.0",
        "unknown role 'ops_lead'",
    ),
    (
        "escalate-without-role",
        "{action: ESCALATE, role: ops_manager}",
        "ESCALATE",
        "      - ESCALATE",
        "decision_order.candidates.RECURRING_ANOMALY.0",
        "ESCALATE, and only ESCALATE, names the role",
    ),
    (
        "unknown-top-level-key",
        "version: 1\n",
        "version: 1\nthreshold: {}\n",
        "threshold: {}",
        "threshold",
        "unknown key 'threshold'",
    ),
    (
        "unknown-nested-key",
        "    min_orders: 3",
        "    min_orders: 3\n    max_orders: 9",
        "max_orders",
        "thresholds.recurrence.max_orders",
        "unknown key 'max_orders'",
    ),
    (
        "missing-key",
        "    window_days: 30\n",
        "",
        "recurrence:",
        "thresholds.recurrence.window_days",
        "required key is missing",
    ),
    (
        "bad-number",
        "min_orders: 3",
        "min_orders: 1",
        "min_orders: 1",
        "thresholds.recurrence.min_orders",
        "greater than or equal to 2",
    ),
    (
        "unquoted-no-is-a-boolean",
        'negations: ["no",',
        "negations: [no,",
        "negations: [no,",
        "thresholds.substitution.negations.0",
        "valid string",
    ),
    (
        "unknown-hierarchy-role",
        "  credit_manager: [credit_analyst]",
        "  credit_manager: [credit_clerk]",
        "[credit_clerk]",
        "hierarchy.credit_manager.0",
        "unknown role 'credit_clerk'",
    ),
    (
        "contract-role-missing",
        '  planner: {description: "Plans',
        '  planer: {description: "Plans',
        "roles:",
        "roles",
        "role 'planner' of the contract is missing",
    ),
    (
        "admin-may-not-decide",
        "    approver: csr\n  SPLIT",
        "    approver: admin\n  SPLIT",
        "approver: admin",
        "actions.APPROVE_SUBSTITUTION.approver",
        "administers users and may not decide",
    ),
    (
        "auto-approve-high",
        "  high: false",
        "  high: true",
        "high: true",
        "auto_approve.high",
        "never allowed for high risk",
    ),
    (
        "compliance-auto-approvable",
        "    never_auto_approve: true\n",
        "",
        "  COMPLIANCE_REVIEW:",
        "actions.COMPLIANCE_REVIEW",
        "must set never_auto_approve",
    ),
    (
        "escalate-with-approver",
        "    params: {role: role, reason: str}\n    risk: none",
        "    params: {role: role, reason: str}\n    risk: none\n    approver: ops_manager",
        "  ESCALATE:",
        "actions.ESCALATE",
        "approver exactly when its risk is not none",
    ),
    (
        "priority-duplicate",
        "    - RECURRING_ANOMALY\n",
        "    - RECURRING_ANOMALY\n    - CREDIT_HOLD\n",
        "  priority:",
        "decision_order.priority",
        "CREDIT_HOLD must appear exactly once",
    ),
    (
        "duplicate-key",
        "  FIX_MASTER_DATA:\n",
        "  EXPEDITE_PO: {params: {}, risk: low, approver: planner}\n  FIX_MASTER_DATA:\n",
        "EXPEDITE_PO: {params",
        "actions.EXPEDITE_PO",
        "duplicate key (first at line",
    ),
    ("wrong-version", "version: 1", "version: 2", "version: 2", "version", "Input should be 1"),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "line_with", "key", "message"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_errors_name_file_line_and_key(case, old, new, line_with, key, message) -> None:
    assert old in DEFAULT_TEXT, f"{case}: the default file changed; update the test"
    text = DEFAULT_TEXT.replace(old, new, 1)
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="site.yaml")
    problems = [(line, k, m) for line, k, m in info.value.problems if k == key and message in m]
    assert problems, f"{case}: {info.value}"
    line = problems[0][0]
    assert line == _line_of(text, line_with), f"{case}: {info.value}"
    assert f"site.yaml:{line}: {key}: " in str(info.value)


def test_malformed_yaml_names_the_line() -> None:
    text = DEFAULT_TEXT.replace("    min_orders: 3", "    min_orders: [3")
    with pytest.raises(PolicyError, match=r"^site.yaml:\d+: malformed YAML") as info:
        parse_policy(text, source="site.yaml")
    assert info.value.problems[0][0] >= _line_of(text, "min_orders: [3")


@pytest.mark.parametrize("content", ["", "# only a comment\n", "- a list\n"])
def test_empty_or_not_a_mapping(content: str) -> None:
    with pytest.raises(PolicyError, match=r"site\.yaml:1"):
        parse_policy(content, source="site.yaml")


def test_unreadable_file_names_it(tmp_path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml"):
        load_policy(tmp_path / "nope.yaml")


def test_a_copy_with_other_content_has_its_own_hash():
    """pydantic copies the instance dict, where cached values live: a copy must not keep them."""
    policy = load_policy()
    before = policy.policy_hash
    t = policy.thresholds
    rule = t.recurrence.model_copy(update={"window_days": t.recurrence.window_days + 1})
    other = policy.model_copy(update={"thresholds": t.model_copy(update={"recurrence": rule})})
    assert other.policy_hash != before
    assert policy.model_copy().policy_hash == before
