"""An event storm — 10,000 events in one batch, duplicates and out-of-order arrival included — ends
with exactly the exceptions a triage of the final state from scratch finds (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random

import pytest
from sqlalchemy import select

from agent.flow import drain
from agent.policy import load_policy
from agent.triage.service import triage_open_book
from tests.cli_run import run
from tools.dataset import OPEN_ORDER_STATUSES
from tools.db import session_factory
from tools.demo import generate
from tools.events import parse_events, receive
from tools.events.simulate import Simulator
from tools.models import ExceptionRecord, Order

AS_OF = dt.date(2026, 11, 20)
# The storm of the issue is 10,000 events: `STORM_EVENTS=10000 pytest --timeout 3600 tests/test_event_storm.py`
# (3 to 10+ min a backend on the 2 shared cores, depending on their load; docs/benchmarks.md). The suite
# runs 2,000 to keep within about a minute per backend: the 300-order book grows with the storm's
# new orders, so every batch re-triages more of it and the time grows faster than the events.
EVENTS = int(os.environ.get("STORM_EVENTS", "2000"))


def _recorded(factory, what=ExceptionRecord.evidence) -> set[tuple]:
    """(order, type, instance, ``what``) of the open exceptions of open orders (a list as a tuple)."""
    with factory() as s:
        rows = s.execute(
            select(ExceptionRecord.order_id, ExceptionRecord.type, ExceptionRecord.instance_key, what)
            .join(Order, Order.order_id == ExceptionRecord.order_id)
            .where(ExceptionRecord.status == "open", Order.status.in_(OPEN_ORDER_STATUSES))
        )
        return {(o, t, i, tuple(e) if isinstance(e, list) else e) for o, t, i, e in rows}


def _from_scratch(factory, policy, *, hashed: bool = False) -> set[tuple]:
    """(order, type, instance, evidence) a triage of the open book from scratch finds; ``hashed``:
    the evidence hash the recording stores (evidence and facts) in place of the evidence."""
    from agent.triage.detection import Detected
    from agent.triage.service import _evidence_hash

    def last(e: dict):
        if not hashed:
            return tuple(e["evidence"])
        hit = Detected(
            type=e["type"], instance_key=e["instance"], evidence=tuple(e["evidence"]), facts=e["facts"]
        )
        return _evidence_hash(hit)

    with factory() as s:
        found = {
            (r["order_id"], e["type"], e["instance"], last(e))
            for r in triage_open_book(s, policy, record=False)
            for e in r["exceptions"]
        }
        s.rollback()
    return found


def _recorded_book(engine, orders: int):
    """A demo book of ``orders`` orders, its open book triaged and recorded: (factory, policy)."""
    generate(engine, orders=orders, seed=5, as_of=AS_OF, progress=False)
    factory, policy = session_factory(engine), load_policy()
    with factory() as s:
        for _ in triage_open_book(s, policy):
            pass
        s.commit()
    return factory, policy


@pytest.mark.slow
def test_an_event_storm_ends_with_the_exceptions_of_a_triage_from_scratch(engine):
    factory, policy = _recorded_book(engine, 300)
    with factory() as s:
        sim = Simulator(s, seed=11, prefix="storm")
    events = list(sim.stream(EVENTS, start=dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC), step_s=2))
    rng = random.Random(5)
    repeats = rng.sample(events, EVENTS // 10)
    batch = events + repeats
    rng.shuffle(batch)  # arrival order is not occurred_at order
    with factory() as s:
        assert receive(s, parse_events(batch), channel="replay") == (EVENTS, len(repeats))
        s.commit()
    outcomes = drain(factory, policy)
    assert len(outcomes) == EVENTS and {o.status for o in outcomes} == {"applied"}
    assert sum(o.opened + o.changed + o.resolved for o in outcomes) > 0  # the storm did move things
    assert _recorded(factory) == _from_scratch(factory, policy)


def _carrier_flips(s) -> list[dict]:
    from tools.models import Carrier

    carriers = sorted(s.scalars(select(Carrier.carrier_id)))
    statuses = ["disrupted", "constrained", "disrupted", "ok", "constrained", "ok", "disrupted"]
    return [
        {"carriers": [{"carrier_id": carriers[n % len(carriers)], "status": status}]}
        for n, status in enumerate([*(s for s in statuses for _ in range(2)), *["disrupted"] * len(carriers)])
    ]


def _credit_moves(s) -> list[dict]:
    from tools.models import Customer

    rows = s.execute(select(Customer.customer_id, Customer.credit_limit).order_by(Customer.customer_id)).all()
    out = []
    for n, (customer, limit) in enumerate(rows[:40]):
        change = {"customer_id": customer, "open_balance": float(limit or 0) * (0.2 + (n % 5) * 0.3)}
        if n % 7 == 0:
            change["credit_hold"] = n % 2 == 0
        if n % 9 == 0:
            change["overdue_balance"] = 1_000.0 * (n % 3)
        out.append({"customers": [change]})
    return out


@pytest.mark.parametrize("changes", [_carrier_flips, _credit_moves], ids=["carrier", "credit"])
def test_changes_one_rule_reads_end_as_a_triage_from_scratch_facts_included(engine, monkeypatch, changes):
    # A carrier's status reaches every open order of its shipments, a customer's balance or credit
    # all its open orders, and one rule alone reads each (CARRIER_DISRUPTION, CREDIT_HOLD): those
    # orders (and the recurrence followers) have that rule run again, their other hits taken from
    # their rows. Applied one event a batch (no other change shares their re-triage), they end with
    # the exceptions — evidence and facts — and the recurrence of a triage from scratch, without
    # one order loaded whole.
    from agent.triage import service

    factory, policy = _recorded_book(engine, 1_500)  # enough orders for recurring patterns
    with factory() as s:
        records = changes(s)
    events = [
        {
            "event_id": f"c{n}",
            "source": "src",
            "type": "change",
            "occurred_at": (
                dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
            ).isoformat(),
            "records": r,
        }
        for n, r in enumerate(records)
    ]
    with factory() as s:
        receive(s, parse_events(events), channel="replay")
        s.commit()
    whole: list[str] = []
    load = service.load_contexts
    monkeypatch.setattr(service, "load_contexts", lambda s, ids: whole.extend(ids) or load(s, ids))
    outcomes = drain(factory, policy, batch=1)
    assert {o.status for o in outcomes} == {"applied"} and len(outcomes) == len(events)
    assert sum(o.orders for o in outcomes) > 20 and sum(o.opened + o.resolved for o in outcomes) > 0
    assert whole == []
    monkeypatch.setattr(service, "load_contexts", load)

    recorded = _recorded(factory, ExceptionRecord.evidence_hash)
    scratch = _from_scratch(factory, policy, hashed=True)
    assert recorded == scratch
    assert any(kind == "RECURRING_ANOMALY" for _, kind, _, _ in recorded)


def test_simulate_cli_feeds_the_inbox_and_the_queues(monkeypatch, capsys, tmp_path, sqlite_engine):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    generate(sqlite_engine, orders=300, seed=5, as_of=AS_OF, progress=False)
    code, out, err = run(
        monkeypatch, capsys, "events", "simulate", "--rate", "1000", "--count", "40", "--apply"
    )
    assert code == 0, err
    assert "40 simulated events stored and applied" in out
    code, out, _ = run(monkeypatch, capsys, "events", "list", "--json")
    counts = json.loads(out)["counts"]
    assert counts["applied"] == 40 and counts["failed"] == 0
