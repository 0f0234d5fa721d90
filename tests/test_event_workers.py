"""Several workers on PostgreSQL: each event applied exactly once; a worker killed mid-event
leaves nothing half-applied and the event is applied by the next one."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

from agent.flow import apply_next, drain
from agent.policy import load_policy
from agent.triage.retriage import order_lock_key
from tests.factories import clean_fixture, line, order
from tools.db import make_engine, session_factory, upgrade
from tools.events import claim_batch, parse_event, receive
from tools.fixtures import load_fixture
from tools.models import AuditEvent, EventInbox, Inventory

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.postgres


def _world(url: str):
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    orders = [order(f"SO{n}", lines=[line(sku="A" if n % 2 else "B", qty=5)]) for n in range(1, 9)]
    with factory() as s:
        load_fixture(s, clean_fixture(*orders), case_id="workers")
    return engine, factory


def _event(n: int, source: str, sku: str, on_hand: int) -> dict:
    return {
        "event_id": f"e{n}",
        "source": source,
        "type": "inventory.adjusted",
        "occurred_at": f"2026-11-02T08:{n // 60:02d}:{n % 60:02d}Z",
        "records": {"inventory": [{"sku": sku, "warehouse_id": "WH1", "on_hand": on_hand}]},
    }


def test_two_workers_apply_every_event_exactly_once(pg_url):
    engine, factory = _world(pg_url)
    events = [_event(n, ("wms", "erp")[n % 2], "AB"[n % 2], n % 12) for n in range(60)]  # a SKU per source
    with factory() as s:
        receive(s, [parse_event(e) for e in events], channel="api")
        s.commit()
    policy = load_policy()
    results: list[list] = [[], []]

    def work(i: int) -> None:
        while True:
            try:
                done = apply_next(factory, policy)
            except OperationalError:  # a deadlock between the workers: rolled back, as the worker loop does
                continue
            if done is None:
                return
            results[i].append(done)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = [o.label for r in results for o in r]
    assert len(labels) == 60 and len(set(labels)) == 60
    with factory() as s:
        assert set(s.scalars(select(EventInbox.status))) == {"applied"}
        assert set(s.scalars(select(EventInbox.attempts))) == {1}
        applied = s.scalar(select(func.count()).where(AuditEvent.event_type == "source_event_applied"))
        assert applied == 60
        # per source, in occurred_at order: the last event of each source decided its SKU's stock
        assert s.get(Inventory, ("A", "WH1")).on_hand == 58 % 12
        assert s.get(Inventory, ("B", "WH1")).on_hand == 59 % 12
    engine.dispose()


def test_the_source_waiting_longest_is_claimed_first(pg_url):
    """A worker takes the source whose earliest waiting event is the earliest, not the first by
    name: "erp" (a busy source that always has an event waiting) cannot hold back "wms" events
    that occurred before its own; and it still claims one source's events at a time, in order."""
    engine, factory = _world(pg_url)
    events = [_event(n, "wms", "B", n) for n in (1, 2, 5)] + [_event(n, "erp", "A", n) for n in (3, 4, 6)]
    with factory() as s:
        receive(s, [parse_event(e) for e in events], channel="api")
        s.commit()
    with factory() as s:
        first = claim_batch(s, 10)
        assert [(r.source, r.event_id) for r in first] == [("wms", "e1"), ("wms", "e2"), ("wms", "e5")]
        s.rollback()
    with factory() as s:  # once the wms events before erp's are applied, erp's earliest is the earliest
        s.execute(update(EventInbox).where(EventInbox.event_id.in_(["e1", "e2"])).values(status="applied"))
        assert [r.event_id for r in claim_batch(s, 10)] == ["e3", "e4", "e6"]
        s.rollback()
    engine.dispose()


def test_the_schema_of_the_advisory_keys_is_read_once_per_connection(pg_url):
    """The source and order lock keys are per schema; a worker asks for it twice a batch, so it is
    read once per pooled connection — and still names this deployment's schema."""
    from sqlalchemy import event

    from tools.db import current_schema

    engine, factory = _world(pg_url)
    events = [_event(n, "wms", "A", n) for n in range(1, 6)]
    with factory() as s:
        receive(s, [parse_event(e) for e in events], channel="api")
        s.commit()
    asked: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: asked.append(sql))
    policy = load_policy()
    for _ in range(5):
        assert apply_next(factory, policy) is not None
    assert apply_next(factory, policy) is None
    assert sum("current_schema()" in sql for sql in asked) == 1  # one pooled connection, one read
    with factory() as s:
        assert current_schema(s) == pg_url.split("search_path%3D")[1].split("&")[0]
    engine.dispose()


def test_a_second_round_of_order_locks_never_waits_below_a_key_it_holds(pg_url):
    """Worker 1 holds the high key, worker 2 the low one (their first rounds); each second round
    wants the other's. Worker 2's (above what it holds) waits; worker 1's (below) must not — it is
    refused at once with a lock conflict (PostgreSQL's 55P03, which the executor runs again)
    instead of the two waiting on each other until PostgreSQL breaks the deadlock; once worker 1
    lets go, worker 2 goes on."""
    from agent.triage.retriage import OrdersBusy, lock_orders
    from tools.db import current_schema

    engine, factory = _world(pg_url)
    one, two = factory(), factory()
    schema = current_schema(one)
    ids = sorted((f"SO{n}" for n in range(1, 60)), key=lambda o: order_lock_key(schema, o))
    low, high = ids[0], ids[-1]
    assert order_lock_key(schema, low) < order_lock_key(schema, high)
    lock_orders(one, [high])
    lock_orders(two, [low])
    went_on = threading.Event()

    def second_round_of_two() -> None:
        lock_orders(two, [high])
        went_on.set()

    waiting = threading.Thread(target=second_round_of_two)
    waiting.start()
    with pytest.raises(OrdersBusy) as busy:
        lock_orders(one, [low])
    assert busy.value.keys == [order_lock_key(schema, low)]
    assert busy.value.orig.sqlstate == "55P03"
    copied = pickle.loads(pickle.dumps(busy.value))  # it crosses process and checkpoint boundaries
    assert isinstance(copied, OrdersBusy) and copied.keys == busy.value.keys
    one.rollback()  # worker 1 lets go of the high key: worker 2's second round takes it
    waiting.join(timeout=60)
    assert went_on.is_set()
    two.rollback()
    one.close(), two.close()
    engine.dispose()


def test_a_batch_refused_for_busy_orders_runs_again_once_they_are_free(pg_url, monkeypatch):
    """The worker's loop runs a batch refused for busy orders again (nothing of it was applied),
    taking those order locks first; the events apply once each."""
    from agent.flow import worker
    from agent.triage.retriage import OrdersBusy

    engine, factory = _world(pg_url)
    with factory() as s:
        receive(s, [parse_event(_event(n, "wms", "A", n)) for n in range(1, 6)], channel="api")
        s.commit()
    real, tries = worker.apply_batch, []

    busy = order_lock_key("public", "SO1")

    def busy_once(factory, policy, *, limit, prelock=()):
        tries.append(set(prelock))
        if len(tries) == 1:
            raise OrdersBusy([busy])
        return real(factory, policy, limit=limit, prelock=prelock)

    monkeypatch.setattr(worker, "apply_batch", busy_once)
    done = drain(factory, load_policy())
    assert [a.status for a in done] == ["applied"] * 5
    assert tries[:2] == [set(), {busy}] and all(not t for t in tries[2:])  # taken first once, then not
    with factory() as s:
        assert set(s.scalars(select(EventInbox.attempts))) == {1}  # the refused try claimed nothing
    engine.dispose()


def test_an_executed_action_whose_follow_up_finds_orders_busy_waits_for_them_and_executes(
    pg_url, monkeypatch
):
    """The executor's re-triage takes an order's lock (first round), then a follower's lock below
    it that a worker holds (second round): refused at once; the next try takes that lock first and
    waits there for the worker; once the worker lets go, the action executes — once."""
    import agent.governance.requests as requests_module
    from agent.governance.requests import decide
    from agent.triage.retriage import lock_orders
    from tests.test_recurrence_recorded import POLICY, _reallocation_request
    from tools.db import current_schema
    from tools.models import Execution, Order

    engine = make_engine(pg_url)
    upgrade(engine)
    factory, req = _reallocation_request(engine)
    with factory() as s:
        schema = current_schema(s)
    ids = sorted((f"SO{n}" for n in range(1, 60)), key=lambda o: order_lock_key(schema, o))
    low, high = ids[0], ids[-1]
    real, rounds = requests_module.retriage, []

    def with_a_follower(s, policy, order_ids, *, prelock=()):
        rounds.append(set(prelock))
        lock_orders(s, [high], keys=prelock)  # the first round
        lock_orders(s, [low])  # the recurrence followers' round
        return real(s, policy, order_ids, prelock=prelock)

    monkeypatch.setattr(requests_module, "retriage", with_a_follower)
    worker = factory()
    lock_orders(worker, [low])  # a worker triaging the follower
    outcome: list[dict] = []
    deciding = threading.Thread(
        target=lambda: outcome.append(
            decide(factory, POLICY, req["id"], username="planner", decision="approve")
        )
    )
    deciding.start()
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with factory() as probe:  # the second try waits for the worker's lock (synchronised, not slept)
        while deciding.is_alive() and not probe.scalar(waiting):
            probe.rollback()
    worker.rollback()  # the worker lets go
    deciding.join(timeout=60)
    assert outcome and outcome[0]["status"] == "executed", outcome
    assert rounds == [set(), {order_lock_key(schema, low)}]
    with factory() as s:
        assert len(s.scalars(select(Execution).where(Execution.request_id == req["id"])).all()) == 1
        assert s.get(Order, "SO1").lines[0].warehouse_id == "WH3"
    worker.close()
    engine.dispose()


def test_a_worker_killed_mid_event_leaves_nothing_half_applied(pg_url):
    engine, factory = _world(pg_url)
    with factory() as s:
        receive(s, [parse_event(_event(1, "wms", "A", 2))], channel="api")
        s.commit()
    blocker = engine.connect()
    key = order_lock_key(blocker.execute(select(func.current_schema())).scalar(), "SO1")
    blocker.execute(select(func.pg_advisory_lock(key)))  # the worker will wait on SO1
    env = {**os.environ, "DATABASE_URL": pg_url, "PYTHONPATH": str(ROOT), "LLM_PROVIDER": "fake"}
    worker = subprocess.Popen(
        [sys.executable, "-c", "from ui.cli.app import main; main()", "worker", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        waiting = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = :objid"
        )
        objid = key & 0xFFFFFFFF
        with engine.connect() as watch:  # synchronise on the worker's lock wait, not on a guess of time
            while not watch.execute(waiting, {"objid": objid}).scalar():
                assert worker.poll() is None, worker.communicate()
                watch.rollback()
                time.sleep(0.05)
        worker.kill()  # mid-event: records applied in its transaction, triage waiting
        worker.wait(30)
    finally:
        blocker.execute(select(func.pg_advisory_unlock(key)))
        blocker.close()
    with factory() as s:
        assert s.scalars(select(EventInbox.status)).one() == "received"
        assert s.get(Inventory, ("A", "WH1")).on_hand == 500  # nothing of the event
    [done] = drain(factory, load_policy())
    assert done.status == "applied"
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == 2
        applied = s.scalar(select(func.count()).where(AuditEvent.event_type == "source_event_applied"))
        assert applied == 1
    engine.dispose()


def test_on_sqlite_a_batch_is_sized_to_hold_the_writer_about_a_second(monkeypatch):
    """On a 1M-line book 200 events held SQLite's only writer 8-20 s and the intake storing new
    events failed with "database is locked": the loop sizes each batch from the last one's time
    per event (a clock stands in for the work here; no real time passes)."""
    import agent.flow.worker as worker

    clock = {"now": 0.0}
    limits: list[int] = []
    left = {"batches": 4}

    def batch(factory, policy, *, limit, prelock=()):
        limits.append(limit)
        left["batches"] -= 1
        clock["now"] += 0.25 * limit  # 250 ms an event
        return [object()] * limit if left["batches"] >= 0 else []

    monkeypatch.setattr(worker, "apply_batch", batch)
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock["now"])
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda _s=None: False)
    worker.drain(None, None, stop=stop, pause_s=0.2)
    assert limits[:3] == [worker.SQLITE_FIRST_BATCH, 4, 4]  # 1 s / 250 ms
    limits.clear()
    left["batches"] = 2
    worker.drain(None, None, stop=stop)  # PostgreSQL: no pause, the full batch
    assert limits[0] == worker.BATCH_EVENTS
