"""Values the columns cannot hold, oversize and non-finite parameters, database errors at execution,
and ESCALATE's routing: refused before anything is stored, or recorded as ``failed`` — never a 500,
never an approval that stays ``approved`` forever."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Column, Integer, Numeric, String, func, select, text

from agent.governance.audit import list_events, verify_chain
from agent.governance.intake import MAX_PARAMS_CHARS
from agent.governance.requests import _execute_step, decide, request_action, resume_request, write_session
from agent.governance.users import add_user
from agent.policy import DEFAULT_POLICY_PATH, PolicyError, parse_policy
from tests.factories import clean_fixture, edit, order
from tests.test_governance import POLICY, world
from tests.test_scope import _forge
from tools import writes
from tools.columns import PARAM_COLUMNS, column_problems
from tools.errors import GuardBlocked, ToolError
from tools.models import ActionRequest, Approval, AuditEvent, ExceptionRecord, Execution, OrderLine


@pytest.mark.parametrize(
    "action, params, reason",
    [
        (
            "CORRECT_PRICE",
            {"order_id": "SO1", "line_no": 1, "new_unit_price": "9999999999999.00"},
            "at most 12 digits before the point",
        ),
        ("CORRECT_PRICE", {"order_id": "SO1", "line_no": 2**40, "new_unit_price": "10.00"}, "out of range"),
        ("SPLIT_SHIPMENT", {"order_id": "SO1", "line_no": 1, "ship_qty": 2**31}, "out of range"),
        ("REBOOK_CARRIER", {"shipment_id": "S" * 33, "carrier_id": "CA1"}, "holds at most 32"),
        (
            "UPDATE_PROMISE_DATE",
            {"order_id": "SO1", "new_promised_date": "2026-10-01"},
            "before the order date",
        ),
    ],
)
def test_the_guard_refuses_values_the_columns_cannot_hold(engine, action, params, reason):
    factory = world(engine, clean_fixture(order()))
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr", action=action, params=params)
    assert req["status"] == "blocked" and any(reason in r for r in req["guard"]["reasons"]), req["guard"]


def test_limits_come_from_the_column_types():
    assert column_problems("x", Column("c", String(2)), "US") == []
    assert "x has 3 characters" in column_problems("x", Column("c", String(2)), "USA")[0]
    assert column_problems("p", Column("c", Numeric(6, 2)), "9999.99") == []
    assert "at most 4 digits" in column_problems("p", Column("c", Numeric(6, 2)), "10000.00")[0]
    assert "more than 2 decimals" in column_problems("p", Column("c", Numeric(6, 2)), "1.001")[0]
    assert column_problems("n", Column("c", Integer), 2**31 - 1) == []
    assert "out of range" in column_problems("n", Column("c", Integer), -(2**31) - 1)[0]
    # the shipped columns: money is Numeric(14, 2), ship-to country String(2)
    assert "12 digits" in column_problems("p", PARAM_COLUMNS["new_unit_price"], "1000000000000")[0]
    assert column_problems("c", PARAM_COLUMNS["ship_to_country"], "US") == []


def test_an_edit_with_a_value_the_column_cannot_hold_is_refused(engine):
    factory = world(engine, clean_fixture(order(ship_to_country="")))
    req = request_action(factory, POLICY, order_id="SO1", requested_by="planner")
    assert req["action"] == "FIX_MASTER_DATA"
    with pytest.raises(GuardBlocked, match="holds at most 2"):
        decide(factory, POLICY, req["id"], username="csr", decision="edit", params={"ship_to_country": "USA"})
    with factory() as s:
        assert s.get(ActionRequest, req["id"]).status == "pending_approval"


def _refuse_updates(engine, table: str = "order_lines", column: str = "unit_price") -> None:
    """A database that refuses the write itself (a trigger), as it would refuse an out-of-range value."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    f"CREATE TRIGGER refuse_{column} BEFORE UPDATE OF {column} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'records are frozen'); END"
                )
            )
        else:
            conn.execute(
                text(
                    f"CREATE FUNCTION refuse_{column}() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'records are frozen'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    f"CREATE TRIGGER refuse_{column} BEFORE UPDATE OF {column} ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION refuse_{column}()"
                )
            )


def test_a_database_error_at_execution_records_failed_with_the_reason(engine):
    factory = world(engine, clean_fixture(order()))
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="csr",
        action="CORRECT_PRICE",
        params={"order_id": "SO1", "line_no": 1, "new_unit_price": "95.00"},
    )
    _refuse_updates(engine)
    done = decide(factory, POLICY, req["id"], username="pricing_analyst", decision="approve")
    assert done["status"] == "failed" and "records are frozen" in done["error"]
    assert done["execution"]["status"] == "failed"
    with factory() as s:
        assert f"{s.get(OrderLine, ('SO1', 1)).unit_price:.2f}" == "100.00"
        executions = list_events(s, request_id=req["id"], event_type="execution")
        assert executions[-1]["payload"]["status"] == "failed"
        assert "records are frozen" in executions[-1]["payload"]["result"]["reason"]
        assert verify_chain(s)["ok"]
    again = resume_request(factory, POLICY, req["id"])  # resume says so, and runs nothing twice
    assert again["status"] == "failed" and "records are frozen" in again["error"]


@pytest.mark.postgres
def test_an_approved_out_of_range_price_fails_on_postgres_instead_of_staying_approved(pg_engine):
    """The audit's reproduction, with the guard bypassed: NumericValueOutOfRange at execution."""
    factory = world(pg_engine, clean_fixture(order()))
    rid, _ = _forge(
        factory,
        "SO1",
        "CORRECT_PRICE",
        {"order_id": "SO1", "line_no": 1, "new_unit_price": "9999999999999.00"},
    )
    first = resume_request(factory, POLICY, rid)
    assert first["status"] == "failed" and "NumericValueOutOfRange" in first["error"]
    assert resume_request(factory, POLICY, rid)["status"] == "failed"
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Execution)) == 1
        assert verify_chain(s)["ok"]


def test_oversize_parameters_are_refused_before_anything_is_stored(engine):
    factory = world(engine, clean_fixture(order()))
    with factory() as s:
        events_before = s.scalar(select(func.count()).select_from(AuditEvent))
    huge = {"order_id": "SO1", "line_no": 1, "new_unit_price": "1.00", "note": "x" * 900_000}
    with pytest.raises(GuardBlocked, match=f"limit is {MAX_PARAMS_CHARS:,}"):
        request_action(
            factory, POLICY, order_id="SO1", requested_by="csr", action="CORRECT_PRICE", params=huge
        )
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ActionRequest)) == 0
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > events_before)).all()
        assert len(events) == 1  # the refusal, with the size and digest instead of the value
        assert len(str(events[0].payload)) < 2_000 and events[0].payload["params"]["omitted"] == "oversize"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_not_a_crash(engine, bad):
    factory = world(engine, clean_fixture(order()))
    with pytest.raises(GuardBlocked, match="must be finite"):
        request_action(
            factory,
            POLICY,
            order_id="SO1",
            requested_by="csr",
            action="CORRECT_PRICE",
            params={"order_id": "SO1", "line_no": 1, "new_unit_price": bad},
        )
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ActionRequest)) == 0
        assert verify_chain(s)["ok"]


def test_an_absurd_order_id_or_user_name_is_refused_and_logged(engine):
    factory = world(engine, clean_fixture(order()))
    with pytest.raises(ToolError, match=r"not found|not an active user|unknown user"):
        request_action(factory, POLICY, order_id="SO" + "9" * 5_000, requested_by="csr")
    with pytest.raises(ToolError, match="user"):
        request_action(factory, POLICY, order_id="SO1", requested_by="u" * 5_000)
    with factory() as s:
        assert verify_chain(s)["ok"]


def compliance_world() -> dict:
    """SO1 ships export-controlled A from the US to Germany without a licence: COMPLIANCE_HOLD."""
    fx = clean_fixture(order(ship_to_country="DE"))
    edit(fx, "items", "A", export_controlled=True)
    return fx


@pytest.mark.parametrize("role", ["csr", "planner", "ops_manager", "logistics_coordinator"])
def test_escalate_may_not_move_a_compliance_hold_away_from_compliance(engine, role):
    factory = world(engine, compliance_world())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="ESCALATE",
        params={"role": role, "reason": "please just ship it"},
    )
    assert req["status"] == "blocked"
    assert any(f"COMPLIANCE_HOLD may not be routed to {role}" in r for r in req["guard"]["reasons"])
    with factory() as s:
        rows = s.scalars(select(ExceptionRecord).where(ExceptionRecord.order_id == "SO1")).all()
        assert rows and all(r.assigned_role is None for r in rows)


def test_escalate_to_a_role_the_policy_names_runs(engine):
    factory = world(engine, compliance_world())
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="ESCALATE",
        params={"role": "compliance_officer", "reason": "licence question"},
    )
    assert req["status"] == "executed"


def test_the_policy_names_the_roles_each_type_may_be_routed_to():
    assert POLICY.escalation["COMPLIANCE_HOLD"] == ["compliance_officer"]
    for kind, candidates in POLICY.decision_order.candidates.items():
        for cand in candidates:
            if cand.action == "ESCALATE":
                assert POLICY.may_route(kind, cand.role)
    bad = DEFAULT_POLICY_PATH.read_text().replace(
        "COMPLIANCE_HOLD: [compliance_officer]", "COMPLIANCE_HOLD: [compliance_officer, admin]"
    )
    with pytest.raises(PolicyError, match="administers users"):
        parse_policy(bad)
    missing = DEFAULT_POLICY_PATH.read_text().replace("  RECURRING_ANOMALY: [ops_manager]\n", "", 1)
    with pytest.raises(PolicyError, match="RECURRING_ANOMALY"):
        parse_policy(missing)


def test_the_executor_refuses_an_escalation_the_policy_no_longer_allows(engine):
    factory = world(engine, compliance_world())
    triaged = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="ESCALATE",
        params={"role": "compliance_officer", "reason": "first"},
    )
    assert triaged["status"] == "executed"
    now = dt.datetime.now(dt.UTC)
    params = {"role": "csr", "reason": "bypass"}
    with write_session(factory) as s:  # a request row written around the guard
        req = ActionRequest(
            action="ESCALATE",
            params=params,
            params_hash=writes.params_hash(params),
            order_id="SO1",
            risk="none",
            approver_role="csr",
            requested_by="planner",
            status="proposed",
            created_at=now,
            updated_at=now,
            guard_result={"ok": True},
        )
        s.add(req)
        s.flush()
        rid = req.id
        req.status = "approved"
    assert _execute_step(factory, POLICY, rid, None) == "failed"
    with factory() as s:
        assert "may not be routed to csr" in s.get(ActionRequest, rid).error
        assert all(r.assigned_role == "compliance_officer" for r in s.scalars(select(ExceptionRecord)))


def test_an_approval_for_other_parameters_fails_the_request_instead_of_leaving_it_approved(engine):
    factory = world(engine, clean_fixture(order()))
    rid, aid = _forge(
        factory, "SO1", "CORRECT_PRICE", {"order_id": "SO1", "line_no": 1, "new_unit_price": "95.00"}
    )
    with write_session(factory) as s:  # the approval row says another price than the request
        approval = s.get(Approval, aid)
        approval.params = {"order_id": "SO1", "line_no": 1, "new_unit_price": "1.00"}
        approval.params_hash = writes.params_hash(approval.params)
    done = resume_request(factory, POLICY, rid)
    assert done["status"] == "failed" and "is for other parameters" in done["error"]
    with factory() as s:
        assert f"{s.get(OrderLine, ('SO1', 1)).unit_price:.2f}" == "100.00"
        assert verify_chain(s)["ok"]


def test_an_escalation_that_would_route_nothing_is_blocked(engine):
    factory = world(engine, clean_fixture(order()))
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="ESCALATE",
        params={"role": "csr", "reason": "nothing is wrong"},
    )
    assert req["status"] == "blocked" and "SO1 has no open exception to escalate" in req["guard"]["reasons"]


def test_a_user_whose_display_name_the_column_cannot_hold_is_refused(engine):
    factory = world(engine, clean_fixture(order()))
    with write_session(factory) as s, pytest.raises(ToolError, match="holds at most 200"):
        add_user(s, "ann", "csr", "A" * 201)
    with write_session(factory) as s, pytest.raises(ToolError, match=r"\.\.\.' must be 1-64") as info:
        add_user(s, "x" * 100_000, "csr")
    assert len(str(info.value)) < 200


def test_a_database_error_in_an_escalation_records_it_failed(engine):
    factory = world(engine, compliance_world())
    request_action(factory, POLICY, order_id="SO1", requested_by="planner")  # records the exceptions
    _refuse_updates(engine, "exceptions", "assigned_role")
    req = request_action(
        factory,
        POLICY,
        order_id="SO1",
        requested_by="planner",
        action="ESCALATE",
        params={"role": "compliance_officer", "reason": "licence question"},
    )
    assert req["status"] == "failed" and "records are frozen" in req["error"]
    with factory() as s:
        assert verify_chain(s)["ok"]
