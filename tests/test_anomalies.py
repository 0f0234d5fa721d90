"""Recurring anomalies: grouping by type × SKU / customer / warehouse / supplier, the policy's window
and threshold, cost and ranking, suggestions."""

from __future__ import annotations

import datetime as dt

from agent.ops.anomalies import DELAY_COST_RATE, TOUCH_COST_USD, recurring_anomalies, suggestion_for
from agent.policy import load_policy
from tests import factories as f
from tools.db import session_factory
from tools.fixtures import load_fixture
from tools.models import ActionRequest, Approval, ExceptionRecord

POLICY = load_policy()  # 30-day window, 3 orders
SEEN = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


def _orders() -> list[dict]:
    """SO1-SO4 of C1 on A at WH1 (SO1 is 31 days before the last order: outside the window),
    SO5-SO7 of C2 on B, SO8 the latest order (the window ends at its date)."""

    def o(oid, cust, day, sku, *, status="shipped", shipped="2026-12-10", promised="2026-12-05", qty=10):
        return f.order(
            oid,
            customer_id=cust,
            order_date=day,
            promised_date=promised,
            requested_date=promised,
            status=status,
            shipped_date=shipped if status == "shipped" else None,
            lines=[
                f.line(
                    1,
                    sku,
                    qty,
                    100 if sku == "A" else 50,
                    status="shipped" if status == "shipped" else "open",
                    shipped_qty=qty if status == "shipped" else 0,
                )
            ],
        )

    return [
        o("SO1", "C1", "2026-10-30", "A"),
        o("SO2", "C1", "2026-11-05", "A", shipped="2026-11-08", promised="2026-11-10"),  # on time
        o("SO3", "C1", "2026-11-10", "A"),  # late: shipped 12-10 > promised 12-05
        o("SO4", "C1", "2026-11-20", "A", status="open", promised="2026-12-20"),
        o("SO5", "C2", "2026-11-21", "B"),
        o("SO6", "C2", "2026-11-22", "B"),
        o("SO7", "C2", "2026-11-23", "B", qty=2),
        o("SO8", "C2", "2026-11-30", "B", shipped="2026-12-01", promised="2026-12-05"),
    ]


def _populate(engine) -> None:
    fx = f.clean_fixture(*_orders())
    f.edit(fx, "items", "A", supplier_id="SUP1")
    f.edit(fx, "items", "B", supplier_id="SUP1")
    fx["shipments"] = [
        {
            "shipment_id": "SH1",
            "order_id": "SO3",
            "carrier_id": "CA1",
            "service_level": "express",
            "status": "delivered",
            "freight_cost": 120,
            "delivered_date": "2026-12-11",
        }
    ]
    with session_factory(engine)() as session:
        load_fixture(session, fx, case_id="anomalies")
        rows = []
        for oid in ("SO1", "SO2", "SO3", "SO4"):
            rows.append(
                ExceptionRecord(
                    order_id=oid,
                    type="INVENTORY_SHORTFALL",
                    instance_key="line:1",
                    sku="A",
                    customer_id="C1",
                    warehouse_id="WH1",
                    evidence=[],
                    status="open" if oid == "SO4" else "resolved",
                    first_seen_at=SEEN,
                    detected_at=SEEN,
                    resolved_at=None if oid == "SO4" else SEEN,
                )
            )
        for oid in ("SO5", "SO6", "SO7"):
            rows.append(
                ExceptionRecord(
                    order_id=oid,
                    type="PRICING_DISCREPANCY",
                    instance_key="line:1",
                    sku="B",
                    customer_id="C2",
                    warehouse_id="WH1",
                    evidence=[],
                    status="resolved",
                    first_seen_at=SEEN,
                    detected_at=SEEN,
                    resolved_at=SEEN,
                )
            )
        # The flag itself is not a cause: never grouped.
        for oid in ("SO5", "SO6", "SO7"):
            rows.append(
                ExceptionRecord(
                    order_id=oid,
                    type="RECURRING_ANOMALY",
                    instance_key="sku:B",
                    sku="B",
                    customer_id="C2",
                    evidence=[],
                    status="open",
                    first_seen_at=SEEN,
                    detected_at=SEEN,
                )
            )
        # Two CREDIT_HOLD orders only: below the threshold of 3.
        for oid in ("SO5", "SO6"):
            rows.append(
                ExceptionRecord(
                    order_id=oid,
                    type="CREDIT_HOLD",
                    instance_key="order",
                    customer_id="C2",
                    evidence=[],
                    status="resolved",
                    first_seen_at=SEEN,
                    detected_at=SEEN,
                    resolved_at=SEEN,
                )
            )
        session.add_all(rows)
        req = ActionRequest(
            action="REALLOCATE_WAREHOUSE",
            params={},
            params_hash="x",
            order_id="SO3",
            exception_type="INVENTORY_SHORTFALL",
            risk="low",
            approver_role="planner",
            requested_by="csr",
            status="executed",
            created_at=SEEN,
            updated_at=SEEN,
        )
        session.add(req)
        session.flush()
        session.add(
            Approval(
                request_id=req.id,
                decision="approve",
                decided_by="planner",
                role="planner",
                params={},
                params_hash="x",
                decided_at=SEEN,
            )
        )
        session.commit()


def test_groups_over_the_threshold_in_the_window(engine):
    _populate(engine)
    with session_factory(engine)() as session:
        groups = recurring_anomalies(session, POLICY)
    keys = {(g["type"], g["dimension"], g["key"]) for g in groups}
    assert keys == {
        ("INVENTORY_SHORTFALL", "sku", "A"),
        ("INVENTORY_SHORTFALL", "customer", "C1"),
        ("INVENTORY_SHORTFALL", "warehouse", "WH1"),
        ("INVENTORY_SHORTFALL", "supplier", "SUP1"),
        ("PRICING_DISCREPANCY", "sku", "B"),
        ("PRICING_DISCREPANCY", "customer", "C2"),
        ("PRICING_DISCREPANCY", "warehouse", "WH1"),
        ("PRICING_DISCREPANCY", "supplier", "SUP1"),
    }
    short = next(g for g in groups if g["type"] == "INVENTORY_SHORTFALL" and g["dimension"] == "sku")
    assert short["order_ids"] == ["SO2", "SO3", "SO4"]  # SO1 lies 31 days before SO8: outside
    assert short["window"] == {"start": "2026-10-31", "end": "2026-11-30", "min_orders": 3}
    assert short["open_orders"] == 1


def test_cost_and_ranking(engine):
    _populate(engine)
    with session_factory(engine)() as session:
        groups = recurring_anomalies(session, POLICY)
    short = next(g for g in groups if g["type"] == "INVENTORY_SHORTFALL" and g["dimension"] == "sku")
    # touches: 3 instances + 1 approval on SO3; expedite: SO3's express 120;
    # delayed: SO3 shipped late (10 × 100) and SO4 open with the exception open (10 × 100)
    assert (short["touches"], short["expedite_spend"], short["delayed_value"]) == (4, 120.0, 2000.0)
    assert short["cost_usd"] == 4 * TOUCH_COST_USD + 120 + DELAY_COST_RATE * 2000
    price = next(g for g in groups if g["type"] == "PRICING_DISCREPANCY" and g["dimension"] == "sku")
    # touches 3, nothing expedited, SO5-SO7 shipped 12-10 after promised 12-05: 10+10+2 lines × 50
    assert (price["touches"], price["expedite_spend"], price["delayed_value"]) == (3, 0.0, 1100.0)
    assert price["cost_usd"] == 3 * TOUCH_COST_USD + DELAY_COST_RATE * 1100
    assert [g["rank"] for g in groups] == list(range(1, len(groups) + 1))
    costs = [g["cost_usd"] for g in groups]
    assert costs == sorted(costs, reverse=True)
    assert groups[0]["type"] == "INVENTORY_SHORTFALL"


def test_threshold_and_window_come_from_the_policy(engine):
    _populate(engine)
    t = POLICY.thresholds
    two = POLICY.model_copy(
        update={
            "thresholds": t.model_copy(
                update={"recurrence": t.recurrence.model_copy(update={"min_orders": 2})}
            )
        }
    )
    wide = POLICY.model_copy(
        update={
            "thresholds": t.model_copy(
                update={"recurrence": t.recurrence.model_copy(update={"window_days": 40})}
            )
        }
    )
    with session_factory(engine)() as session:
        assert ("CREDIT_HOLD", "customer", "C2") in {
            (g["type"], g["dimension"], g["key"]) for g in recurring_anomalies(session, two)
        }
        short = next(
            g
            for g in recurring_anomalies(session, wide)
            if g["type"] == "INVENTORY_SHORTFALL" and g["dimension"] == "sku"
        )
        assert short["orders"] == 4
        assert recurring_anomalies(session, POLICY, as_of=dt.date(2026, 11, 6)) == []


def test_suggestions_are_process_changes_with_an_owner():
    s = suggestion_for("INVENTORY_SHORTFALL", "sku", "A-1")
    assert (
        "A-1" in s["text"] and s["owner_role"] == "planner" and s["replaces_action"] == "REALLOCATE_WAREHOUSE"
    )
    fallback = suggestion_for("MASTER_DATA_INCOMPLETE", "warehouse", "WH9")
    assert "WH9" in fallback["text"] and fallback["owner_role"] == "ops_manager"


def test_empty_database(session):
    assert recurring_anomalies(session, POLICY) == []
