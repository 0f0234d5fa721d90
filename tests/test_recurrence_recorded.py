"""Recurrence counted from the recorded exceptions (the event worker's path once the whole book has
been triaged and recorded) finds exactly what loading the neighbours finds — and is used only then."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from agent.governance.requests import decide, request_action
from agent.policy import load_policy
from agent.triage.detection import (
    detect_many,
    detect_recorded,
    load_contexts,
    load_contexts_with_neighbours,
)
from agent.triage.service import triage_batch, triage_open_book, triage_order
from tests.factories import clean_fixture, line, order
from tests.test_governance import shortfall_fixture, world
from tests.test_triage_batch import _exceptions
from tools import writes
from tools.dataset import (
    exceptions_recorded,
    forget_exceptions_recorded,
    mark_exceptions_recorded,
    open_order_ids,
)
from tools.db import session_factory
from tools.demo import generate
from tools.demo import reset as reset_data
from tools.errors import Conflict
from tools.events import captured_changes
from tools.fixtures import load_fixture
from tools.models import ExceptionRecord, Order
from tools.rules import OPEN_ORDER_STATUSES

POLICY = load_policy()
AS_OF = dt.date(2026, 11, 25)


@pytest.fixture
def recorded(engine):
    """A demo book (recurrence patterns forced from 150 open orders) triaged and recorded whole."""
    generate(engine, orders=3000, seed=5, as_of=AS_OF, progress=False)
    factory = session_factory(engine)
    with factory() as s:
        assert not exceptions_recorded(s)
        for _ in triage_open_book(s, POLICY):
            pass
        s.commit()
        assert exceptions_recorded(s)
    return factory


def _both_ways(s, ids, policy=POLICY):
    neighbours = detect_many(load_contexts_with_neighbours(s, ids, policy), policy)
    from_rows = detect_recorded(s, load_contexts(s, ids), policy)
    return neighbours, from_rows


def _recurrence(min_orders: int):
    """The policy with another recurrence threshold (the base rules, and so the rows, unchanged)."""
    rule = POLICY.thresholds.recurrence.model_copy(update={"min_orders": min_orders})
    thresholds = POLICY.thresholds.model_copy(update={"recurrence": rule})
    return POLICY.model_copy(update={"thresholds": thresholds})


@pytest.mark.parametrize(("min_orders", "at_least"), [(None, 5), (2, 15)])
def test_recurrence_from_the_recorded_exceptions_equals_the_neighbours(recorded, min_orders, at_least):
    """Every open order alone (all the others counted from their rows), then in random batches of
    several sizes with closed orders among them (the batch's own counted by their fresh hits);
    with the policy's threshold and with 2 orders a pattern (many more patterns recur)."""
    policy = POLICY if min_orders is None else _recurrence(min_orders)
    with recorded() as s:
        ids = open_order_ids(s)
        closed = sorted(s.scalars(select(Order.order_id).where(Order.status.not_in(OPEN_ORDER_STATUSES))))
        recurring = 0
        for oid in ids:
            neighbours, from_rows = _both_ways(s, [oid], policy)
            assert from_rows == neighbours, oid
            recurring += sum(d.type == "RECURRING_ANOMALY" for d in from_rows[oid])
        assert recurring >= at_least  # the recorded rows carried real patterns
        rng = random.Random(3)
        pool = ids + closed[:200]
        for size in (2, 7, 40, 300):
            batch = rng.sample(pool, min(size, len(pool)))
            neighbours, from_rows = _both_ways(s, batch, policy)
            assert from_rows == neighbours, size


def test_the_batch_triage_of_the_worker_is_the_same_either_way(recorded):
    """triage_batch (results and exceptions rows written) with and without the recorded mark."""
    with recorded() as s:
        ids = open_order_ids(s)[::5]
        with_mark = triage_batch(s, ids, POLICY)
        s.flush()
        table_with = _exceptions(s)
        s.rollback()
    with recorded() as s:
        forget_exceptions_recorded(s)
        assert not exceptions_recorded(s)
        without = triage_batch(s, ids, POLICY)
        s.flush()
        table_without = _exceptions(s)
        s.rollback()
    assert any(e["type"] == "RECURRING_ANOMALY" for r in with_mark for e in r["exceptions"])
    assert with_mark == without and table_with == table_without


def test_without_a_whole_pass_recorded_the_worker_loads_the_neighbours(engine):
    """Seeded but never triaged: no mark, so triage_batch counts recurrence from the neighbours —
    counting it from the (empty) exceptions table would miss every pattern."""
    generate(engine, orders=3000, seed=5, as_of=AS_OF, progress=False)
    factory = session_factory(engine)
    with factory() as s:
        assert not exceptions_recorded(s)
        ids = open_order_ids(s)
        per_order = [triage_order(s, oid, POLICY, record=False) for oid in ids]
        s.rollback()
    with factory() as s:
        alone = {}
        for oid in ids:
            [result] = triage_batch(s, [oid], POLICY)
            alone[oid] = result
            s.rollback()
        assert [alone[oid] for oid in ids] == per_order
        recurring = {
            r["order_id"] for r in per_order if any(e["type"] == "RECURRING_ANOMALY" for e in r["exceptions"])
        }
        assert recurring
        # what ignoring the guard would give: no recurrence at all from an empty table
        wrong = {oid: detect_recorded(s, load_contexts(s, [oid]), POLICY)[oid] for oid in sorted(recurring)}
        assert all(not any(d.type == "RECURRING_ANOMALY" for d in found) for found in wrong.values())


def test_the_mark_is_set_by_a_whole_recording_pass_only(engine):
    generate(engine, orders=300, seed=5, as_of=AS_OF, progress=False)
    factory = session_factory(engine)
    with factory() as s:
        list(triage_open_book(s, POLICY, record=False))
        assert not exceptions_recorded(s)
        list(triage_open_book(s, POLICY, limit=20))
        assert not exceptions_recorded(s)
        book = triage_open_book(s, POLICY)
        next(book)  # a pass stopped half-way records part of the book only
        assert not exceptions_recorded(s)
        list(book)
        assert exceptions_recorded(s)
        s.commit()
    reset_data(engine)  # `copilot seed --reset`: the data goes, and the mark with it
    with factory() as s:
        assert not exceptions_recorded(s)


def test_loading_records_outside_events_forgets_the_mark(engine):
    factory = session_factory(engine)
    with factory() as s:
        mark_exceptions_recorded(s)
        s.commit()
    with factory() as s:
        load_fixture(s, shortfall_fixture(), case_id="load")
    with factory() as s:
        assert not exceptions_recorded(s)


def _open_recorded(factory) -> set[tuple]:
    with factory() as s:
        rows = s.execute(
            select(ExceptionRecord.order_id, ExceptionRecord.type, ExceptionRecord.instance_key)
            .join(Order, Order.order_id == ExceptionRecord.order_id)
            .where(ExceptionRecord.status == "open", Order.status.in_(OPEN_ORDER_STATUSES))
        )
        return {(o, t, i) for o, t, i in rows}


def _from_scratch(factory) -> set[tuple]:
    with factory() as s:
        found = {
            (r["order_id"], e["type"], e["instance"])
            for r in triage_open_book(s, POLICY, record=False)
            for e in r["exceptions"]
        }
        s.rollback()
    return found


def test_an_executed_action_triages_again_the_orders_it_affects(engine):
    """SO1 moves its 10 A to WH3, where SO2's 95 A then no longer fit the 90 left: SO2 shows an
    INVENTORY_SHORTFALL at once — the executor triages again what the write reaches, as the event
    worker does, so the recorded exceptions stay those of the data."""
    fx = shortfall_fixture()
    fx["orders"].append(order("SO2", customer_id="C2", warehouse_id="WH3", lines=[line(qty=95)]))
    factory = world(engine, fx)
    with factory() as s:
        list(triage_open_book(s, POLICY))
        s.commit()
        assert exceptions_recorded(s)
    assert ("SO2", "INVENTORY_SHORTFALL", "line:1") not in _open_recorded(factory)
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["params"] == {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH3"}, req
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    recorded = _open_recorded(factory)
    assert ("SO2", "INVENTORY_SHORTFALL", "line:1") in recorded
    assert recorded == _from_scratch(factory)
    from agent.governance import audit as audit_log

    with factory() as s:
        [executed] = audit_log.list_events(s, request_id=req["id"], event_type=audit_log.EVENT_EXECUTION)
    assert executed["payload"]["retriaged"]["opened"] >= 1  # SO2's shortfall, in the audit log too


def test_captured_changes_are_the_records_a_write_changed_before_and_after(sqlite_engine):
    factory = world(sqlite_engine, shortfall_fixture())
    with factory() as s:
        with captured_changes(s) as changed:
            writes.apply(
                s, "REALLOCATE_WAREHOUSE", {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH3"}
            )
            s.get(Order, "SO1").promised_date = s.get(Order, "SO1").promised_date  # no net change
        s.rollback()
    by_table = {(c.table, c.after.get("order_id") or c.after["warehouse_id"]): c for c in changed}
    assert set(by_table) == {("order_lines", "SO1"), ("inventory", "WH3")}
    moved, stock = by_table[("order_lines", "SO1")], by_table[("inventory", "WH3")]
    assert moved.before is not None and stock.before is not None
    assert (moved.before["warehouse_id"], moved.before["allocated_qty"]) == (None, 0)
    assert (moved.after["warehouse_id"], moved.after["allocated_qty"], moved.after["status"]) == (
        "WH3",
        10,
        "allocated",
    )
    assert (stock.before["allocated"], stock.after["allocated"]) == (0, 10)


def test_the_mark_holds_for_the_policy_it_was_recorded_under_only(engine):
    """Rows recorded under other thresholds say what that policy detected: a changed policy goes
    back to the neighbours until a whole pass records the book under it."""
    generate(engine, orders=300, seed=5, as_of=AS_OF, progress=False)
    factory = session_factory(engine)
    t = POLICY.thresholds
    rule = t.recurrence.model_copy(update={"min_orders": t.recurrence.min_orders + 1})
    stricter = POLICY.model_copy(update={"thresholds": t.model_copy(update={"recurrence": rule})})
    assert stricter.policy_hash != POLICY.policy_hash
    with factory() as s:
        list(triage_open_book(s, POLICY))
        s.commit()
        assert exceptions_recorded(s, POLICY.policy_hash)
        assert not exceptions_recorded(s, stricter.policy_hash)
        list(triage_open_book(s, stricter))
        assert exceptions_recorded(s, stricter.policy_hash)
        assert not exceptions_recorded(s, POLICY.policy_hash)


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg's DeadlockDetected carries


def _reallocation_request(engine):
    factory = world(engine, shortfall_fixture())
    req = request_action(factory, POLICY, order_id="SO1", requested_by="csr")
    assert req["params"]["to_warehouse_id"] == "WH3", req
    return factory, req


def test_a_deadlock_in_the_executed_actions_retriage_runs_the_step_again(engine, monkeypatch):
    """PostgreSQL aborts one of two transactions waiting on each other's order locks (the executor's
    re-triage and the event worker's): nothing of it was written, so the step runs again — the
    action executes once, it is not failed for it."""
    from sqlalchemy.exc import OperationalError

    import agent.governance.requests as requests_module

    factory, req = _reallocation_request(engine)
    real, calls = requests_module.retriage, []

    def once_deadlocked(s, policy, ids, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT pg_advisory_xact_lock(...)", {}, _Deadlock("deadlock detected"))
        return real(s, policy, ids, **kw)

    monkeypatch.setattr(requests_module, "retriage", once_deadlocked)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    assert len(calls) == 2
    with factory() as s:
        from tools.models import Execution

        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1
        assert s.get(Order, "SO1").lines[0].warehouse_id == "WH3"


def test_busy_orders_in_the_executed_actions_retriage_run_the_step_again(engine, monkeypatch):
    """A worker held orders the executed write reached (a second round of order locks: refused at
    once, not deadlocked): nothing of the step was written; it runs again taking those locks first
    (not counted as a try) — the action executes once."""
    import agent.governance.requests as requests_module
    from agent.triage.retriage import OrdersBusy, order_lock_key

    factory, req = _reallocation_request(engine)
    real, calls = requests_module.retriage, []

    busy = order_lock_key("public", "SO1")

    def once_busy(s, policy, ids, *, prelock=()):
        calls.append(set(prelock))
        if len(calls) == 1:
            raise OrdersBusy([busy])
        return real(s, policy, ids, prelock=prelock)

    monkeypatch.setattr(requests_module, "retriage", once_busy)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    assert calls == [set(), {busy}]
    with factory() as s:
        from tools.models import Execution

        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1
        assert s.get(Order, "SO1").lines[0].warehouse_id == "WH3"


def test_a_lock_conflict_that_persists_fails_the_request_with_its_reason(engine, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import agent.governance.requests as requests_module

    factory, req = _reallocation_request(engine)
    calls = []

    def always_deadlocked(s, policy, ids, **kw):
        calls.append(1)
        raise OperationalError("SELECT pg_advisory_xact_lock(...)", {}, _Deadlock("deadlock detected"))

    monkeypatch.setattr(requests_module, "retriage", always_deadlocked)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "failed", done
    assert len(calls) == requests_module._STEP_TRIES
    with factory() as s:
        assert s.get(Order, "SO1").lines[0].warehouse_id != "WH3"  # nothing of the write was kept


def test_a_bug_in_the_executed_actions_retriage_keeps_the_write_and_audits_the_error(engine, monkeypatch):
    """The approved write is done; a follow-up re-triage that fails for a reason not the database's
    rolls back alone: the request is executed once (not left approved with nothing audited), the
    execution's audit event names the error, and the book is no longer taken as recorded whole
    (the reached orders' exceptions may be stale), so recurrence goes back to the neighbours."""
    import agent.governance.requests as requests_module
    from agent.governance import audit as audit_log
    from tools.models import Execution

    factory, req = _reallocation_request(engine)
    with factory() as s:
        mark_exceptions_recorded(s, policy_hash=POLICY.policy_hash)
        s.commit()
    real = requests_module.retriage

    def half_then_bug(s, policy, ids, **kw):
        real(s, policy, ids, **kw)  # writes exception rows, then fails: the savepoint takes them back
        raise ZeroDivisionError("a rule divided by zero")

    monkeypatch.setattr(requests_module, "retriage", half_then_bug)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1
        assert s.get(Order, "SO1").lines[0].warehouse_id == "WH3"
        assert not exceptions_recorded(s)
        [executed] = audit_log.list_events(s, request_id=req["id"], event_type=audit_log.EVENT_EXECUTION)
        assert audit_log.verify_chain(s)["ok"]
    assert executed["payload"]["status"] == "executed"
    assert executed["payload"]["retriage_error"] == "ZeroDivisionError: a rule divided by zero"
    assert "retriaged" not in executed["payload"]
    with pytest.raises(Conflict, match="is executed"):  # a double click runs nothing a second time
        decide(factory, POLICY, req["id"], username="planner", decision="approve")
    with factory() as s:
        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1


def test_a_rule_bug_that_also_breaks_the_orders_own_triage_after_execution_keeps_the_write(
    engine, monkeypatch
):
    """A bug in a rule is not confined to the batch re-triage: the order's own triage after the
    execution (and its donor's) runs the same planner. It fails in its savepoint too: the approved
    write is kept and executed once, audited with the error, not rolled back with the request left
    approved and nothing audited."""
    import agent.triage.service as service_module
    from agent.governance import audit as audit_log
    from tools import writes as writes_module
    from tools.models import ActionRequest, Execution

    factory, req = _reallocation_request(engine)
    real_execute, real_plan, executed = writes_module.execute_request, service_module.plan_order, []

    def execute(*args, **kwargs):
        out = real_execute(*args, **kwargs)
        executed.append(1)
        return out

    def plan_after_the_write(*args, **kwargs):
        if executed:
            raise ZeroDivisionError("a rule divided by zero")
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(writes_module, "execute_request", execute)
    monkeypatch.setattr(service_module, "plan_order", plan_after_the_write)
    done = decide(factory, POLICY, req["id"], username="planner", decision="approve")
    assert done["status"] == "executed", done
    with factory() as s:
        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1
        assert s.get(ActionRequest, req["id"]).status == "executed"
        assert s.get(Order, "SO1").lines[0].warehouse_id == "WH3"
        assert not exceptions_recorded(s)
        [event] = audit_log.list_events(s, request_id=req["id"], event_type=audit_log.EVENT_EXECUTION)
        assert audit_log.verify_chain(s)["ok"]
    assert event["payload"]["retriage_error"] == "ZeroDivisionError: a rule divided by zero"


def test_an_order_dated_on_the_last_day_a_date_holds_is_counted_from_the_rows_too(engine):
    """An order dated 9999-12-31 (a date an event or a fixture may carry) with a base hit: recurrence
    counted from the recorded rows finds what the neighbours find, as before the window was found
    by bisection (the day after it is no date: no OverflowError)."""
    far = order("SO1", order_date="9999-12-31", ship_to_city="")
    with session_factory(engine)() as s:
        load_fixture(s, clean_fixture(far, order("SO2", ship_to_city="")), case_id="far")
    factory = session_factory(engine)
    with factory() as s:
        for _ in triage_open_book(s, POLICY):
            pass
        s.commit()
        assert exceptions_recorded(s)
    with factory() as s:
        neighbours, from_rows = _both_ways(s, ["SO1", "SO2"])
        assert from_rows == neighbours
        assert [r["order_id"] for r in triage_batch(s, ["SO1", "SO2"], POLICY)] == ["SO1", "SO2"]


def test_a_whole_pass_refreshes_the_planner_statistics_of_the_exceptions(engine):
    """PostgreSQL: the pass that records the book ANALYZEs the exceptions in its transaction (the
    worker's recurrence lookups range over the open rows it has just written; with statistics from
    before, PostgreSQL scanned every open exception for each); SQLite keeps no statistics."""
    from sqlalchemy import func, inspect, text

    factory = world(engine, shortfall_fixture())
    with factory() as s:
        if engine.dialect.name == "postgresql":
            before = s.scalar(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('exceptions')"))
            assert before == -1  # never analyzed
        for _ in triage_open_book(s, POLICY):
            pass
        s.commit()
        rows = s.scalar(select(func.count()).select_from(ExceptionRecord))
        assert rows > 0
        if engine.dialect.name == "postgresql":
            after = s.scalar(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('exceptions')"))
            assert after == rows
        else:
            assert "sqlite_stat1" not in inspect(engine).get_table_names()
