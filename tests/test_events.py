"""Events from source systems (domain.md §8): validation, the inbox, apply, and re-triage."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from agent.flow import drain
from agent.policy import load_policy
from tests.cli_run import run
from tests.factories import clean_fixture, line, order
from tools.db import session_factory
from tools.events import EventError, parse_event, receive
from tools.fixtures import load_fixture
from tools.models import AuditEvent, EventInbox, ExceptionRecord, Inventory, Order, OrderLine


def event(event_id: str, records: dict, *, source: str = "wms", at: str = "2026-11-02T08:00:00Z") -> dict:
    return {"event_id": event_id, "source": source, "type": "test", "occurred_at": at, "records": records}


def two_orders() -> dict:
    """SO1 (C1: 10 × A at WH1) and SO2 (C2: 5 × B at WH1), both clean."""
    return clean_fixture(
        order("SO1"), order("SO2", customer_id="C2", lines=[line(sku="B", qty=5, unit_price=50)])
    )


@pytest.fixture
def factory(engine):
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, two_orders(), case_id="events")
    return factory


def _send(factory, *raws, channel="api"):
    with factory() as s:
        stored = receive(s, [parse_event(r) for r in raws], channel=channel)
        s.commit()
    return stored


def _open(factory) -> set[tuple[str, str, str]]:
    with factory() as s:
        rows = s.execute(
            select(ExceptionRecord.order_id, ExceptionRecord.type, ExceptionRecord.instance_key).where(
                ExceptionRecord.status == "open"
            )
        )
        return set(rows)


@pytest.mark.parametrize(
    ("records", "path", "message"),
    [
        ({"stock": [{"sku": "A"}]}, "records.stock", "unknown table"),
        (
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "onhand": 3}]},
            "records.inventory[0].onhand",
            "unknown field",
        ),
        (
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": "many"}]},
            "records.inventory[0].on_hand",
            "whole number",
        ),
        (
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": None}]},
            "records.inventory[0].on_hand",
            "cannot be empty",
        ),
        ({"inventory": [{"warehouse_id": "WH1", "on_hand": 3}]}, "records.inventory[0].sku", "missing key"),
        ({"carriers": [{"carrier_id": "CA1", "status": "late"}]}, "records.carriers[0].status", "not one of"),
        (
            {"orders": [{"order_id": "SO1", "lines": [{"line_no": 1, "qty": 1.5}]}]},
            "records.orders[0].lines[0].qty",
            "whole number",
        ),
        ({}, "records", "no records"),
        # JSON tells text from numbers: a number is the wrong type for a date or a text field
        (
            {"orders": [{"order_id": "SO1", "promised_date": 20261130}]},
            "records.orders[0].promised_date",
            "expected a date as text",
        ),
        ({"customers": [{"customer_id": "C1", "name": 42}]}, "records.customers[0].name", "expected text"),
        ({"inventory": [{"sku": 7, "warehouse_id": "WH1"}]}, "records.inventory[0].sku", "expected text"),
        # a count, a quantity or a price below zero (an audit set on_hand -5 and triage read it)
        (
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": -5}]},
            "records.inventory[0].on_hand",
            "cannot be negative, got -5",
        ),
        (
            {"orders": [{"order_id": "SO1", "lines": [{"line_no": 1, "allocated_qty": -1}]}]},
            "records.orders[0].lines[0].allocated_qty",
            "cannot be negative",
        ),
        (
            {"order_lines": [{"order_id": "SO1", "line_no": 1, "qty": 2, "unit_price": "-0.01"}]},
            "records.order_lines[0].unit_price",
            "cannot be negative, got '-0.01'",
        ),
        (
            {"purchase_orders": [{"po_id": "PO1", "qty": -10}]},
            "records.purchase_orders[0].qty",
            "cannot be negative",
        ),
        ({"items": [{"sku": "A", "list_price": -3.5}]}, "records.items[0].list_price", "cannot be negative"),
        (
            {"order_lines": [{"order_id": "SO1", "line_no": 1, "qty": 10, "allocated_qty": 12}]},
            "records.order_lines[0].allocated_qty",
            "12 is more than the line's qty 10: the open quantity cannot be negative",
        ),
    ],
)
def test_a_malformed_event_is_refused_naming_the_path(records, path, message):
    with pytest.raises(EventError) as info:
        parse_event(event("e1", records))
    assert info.value.path == path and message in info.value.message
    assert "event wms/e1" in str(info.value)


def test_zero_and_a_negative_open_balance_are_no_negative_quantity():
    """A customer's credit on account is a negative open balance; nothing else here may be below 0."""
    parsed = parse_event(
        event(
            "e1",
            {
                "customers": [{"customer_id": "C1", "open_balance": -250}],
                "inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 0, "allocated": 0}],
            },
        )
    )
    assert parsed.records["customers"][0]["open_balance"] == -250
    assert parsed.records["inventory"][0]["on_hand"] == 0


def test_event_fields_are_checked():
    raw = event("e1", {"carriers": [{"carrier_id": "CA1"}]})
    with pytest.raises(EventError, match="occurred_at"):
        parse_event(raw | {"occurred_at": "yesterday"})
    with pytest.raises(EventError, match="colour: unknown field of an event"):
        parse_event(raw | {"colour": "red"})
    with pytest.raises(EventError, match="event_id: missing") as missing:
        parse_event({k: v for k, v in raw.items() if k != "event_id"})
    assert str(missing.value).startswith("event wms/?: ")  # was "event wms/None"


def test_a_dangling_key_refuses_the_batch_and_stores_nothing(factory):
    good = event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1}]})
    bad = event("e2", {"order_lines": [{"order_id": "SO1", "line_no": 2, "sku": "NOPE", "qty": 1}]})
    with factory() as s, pytest.raises(EventError) as info:
        receive(s, [parse_event(good), parse_event(bad)], channel="api")
    assert info.value.event == "wms/e2"
    assert info.value.path == "records.order_lines[0].sku"
    assert "'NOPE' is not in items.sku (dangling reference)" in info.value.message
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(EventInbox)) == 0


def test_a_reference_to_a_record_of_the_same_batch_is_not_dangling(factory):
    new_item = event("e1", {"items": [{"sku": "C", "list_price": 10}]})
    uses_it = event(
        "e2",
        {
            "orders": [
                {"order_id": "SO3", "customer_id": "C1", "lines": [{"line_no": 1, "sku": "C", "qty": 1}]}
            ]
        },
    )
    assert _send(factory, new_item, uses_it) == (2, 0)


def test_stock_drop_opens_a_shortfall_and_a_receipt_resolves_it_in_place(factory, engine):
    policy = load_policy()
    assert drain(factory, policy) == [] and _open(factory) == set()
    _send(factory, event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 4}]}))
    [done] = drain(factory, policy)
    assert done.status == "applied" and done.opened == 1 and done.orders == 1  # SO2 (SKU B) untouched
    assert ("SO1", "INVENTORY_SHORTFALL", "line:1") in _open(factory)
    _send(
        factory,
        event(
            "e2",
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 3}]},
            at="2026-11-02T09:00:00Z",
        ),
    )
    [done] = drain(factory, policy)
    assert (done.opened, done.changed, done.resolved) == (0, 1, 0)  # the same exception, new evidence
    _send(
        factory,
        event(
            "e3",
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 400}]},
            at="2026-11-02T10:00:00Z",
        ),
    )
    [done] = drain(factory, policy)
    assert done.resolved == 1 and _open(factory) == set()
    with factory() as s:
        rows = s.scalars(select(ExceptionRecord).where(ExceptionRecord.order_id == "SO1")).all()
        assert len(rows) == 1 and rows[0].status == "resolved"  # updated in place, never duplicated
        statuses = s.scalars(select(EventInbox.status)).all()
        assert statuses == ["applied"] * 3
        applied = s.scalars(select(AuditEvent).where(AuditEvent.event_type == "source_event_applied")).all()
        assert [a.payload["event"] for a in applied] == ["wms/e1", "wms/e2", "wms/e3"]
        assert applied[0].payload["order_ids"] == ["SO1"]


def test_a_repeated_event_id_is_acknowledged_and_ignored(factory):
    e = event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 4}]})
    assert _send(factory, e, e) == (1, 1)  # twice in one batch
    assert _send(factory, e) == (0, 1)  # and again later
    assert _send(factory, e | {"source": "erp"}) == (1, 0)  # unique per source
    drain(factory, load_policy())
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(EventInbox)) == 2


def test_events_of_a_source_apply_in_occurred_at_order(factory):
    later = event(
        "late", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 7}]}, at="2026-11-02T10:00:00Z"
    )
    earlier = event(
        "early", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 2}]}, at="2026-11-02T09:00:00Z"
    )
    _send(factory, later, earlier)
    assert [d.label for d in drain(factory, load_policy())] == ["wms/early", "wms/late"]
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == 7


def test_fields_not_given_keep_their_values_and_a_new_record_takes_defaults(factory):
    _send(
        factory,
        event(
            "e1",
            {
                "orders": [{"order_id": "SO1", "promised_date": "2026-12-01"}],
                "carriers": [{"carrier_id": "CA9", "name": "New"}],
            },
        ),
    )
    drain(factory, load_policy())
    with factory() as s:
        so1 = s.get(Order, "SO1")
        assert str(so1.promised_date) == "2026-12-01" and so1.ship_to_city == "Boston"
        from tools.models import Carrier

        assert s.get(Carrier, "CA9").status == "ok"


def test_a_line_left_with_more_allocated_than_ordered_fails_at_apply_and_applies_nothing(factory):
    """An upsert keeps the fields it does not give: allocated_qty 12 alone is valid until it meets
    the line's qty 10 (an open quantity of -2). The event fails whole, naming the path."""
    over = event(
        "e1",
        {
            "inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1}],
            "order_lines": [{"order_id": "SO1", "line_no": 1, "allocated_qty": 12}],
        },
    )
    assert _send(factory, over) == (1, 0)
    [outcome] = drain(factory, load_policy())
    assert (
        outcome.status == "failed"
        and "records.order_lines[0].allocated_qty: 12 is more than" in outcome.error
    )
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == 500  # nothing of the failed event
        assert s.get(OrderLine, ("SO1", 1)).allocated_qty == 0


def test_an_event_that_fails_at_apply_time_applies_nothing_and_says_why(factory):
    # Stored in one order, applied in another: the line's item only exists after the later event.
    uses = event(
        "e1",
        {
            "order_lines": [{"order_id": "SO1", "line_no": 2, "sku": "C", "qty": 1}],
            "inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1}],
        },
        at="2026-11-02T08:00:00Z",
    )
    creates = event("e2", {"items": [{"sku": "C"}]}, at="2026-11-02T09:00:00Z")
    _send(factory, uses, creates)
    first, second = drain(factory, load_policy())
    assert (
        first.status == "failed" and "records.order_lines[0].sku" in first.error and "dangling" in first.error
    )
    assert second.status == "applied"
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == 500  # nothing of the failed event
        row = s.scalars(select(EventInbox).where(EventInbox.event_id == "e1")).one()
        assert row.status == "failed" and "dangling" in row.error


def test_a_customer_change_retriages_only_its_open_orders(factory):
    _send(factory, event("e1", {"customers": [{"customer_id": "C2", "credit_hold": True}]}, source="erp"))
    [done] = drain(factory, load_policy())
    assert done.orders == 1 and done.opened == 1
    assert {(o, t) for o, t, _ in _open(factory)} == {("SO2", "CREDIT_HOLD")}


def test_recurrence_reaches_the_later_orders_of_the_customer(factory):
    """Three of C1's orders short of A: the third (by order date) shows RECURRING_ANOMALY, and
    fixing one order's shortfall removes it from the others, though their own records did not change."""
    more = [
        {
            "order_id": f"SO{n}",
            "customer_id": "C1",
            "order_date": f"2026-11-0{n}",
            "promised_date": "2026-11-20",
            "warehouse_id": "WH1",
            "ship_to_street": "1 Main St",
            "ship_to_city": "Boston",
            "ship_to_postal_code": "02101",
            "ship_to_country": "US",
            "lines": [{"line_no": 1, "sku": "A", "qty": 10, "unit_price": 100}],
        }
        for n in (3, 4)
    ]
    _send(factory, event("e0", {"orders": more}, source="erp"))
    _send(
        factory,
        event(
            "e1",
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 5}]},
            at="2026-11-02T09:00:00Z",
        ),
    )
    drain(factory, load_policy())
    recurring = {o for o, t, _ in _open(factory) if t == "RECURRING_ANOMALY"}
    assert recurring == {"SO4"}  # SO1 (11-01), SO3, SO4 short of A: the third counts three
    # SO1 no longer short: it moves to WH2 with its own stock; only SO1's records change
    _send(
        factory,
        event(
            "e2",
            {
                "inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": 50}],
                "order_lines": [{"order_id": "SO1", "line_no": 1, "warehouse_id": "WH2"}],
            },
            at="2026-11-02T10:00:00Z",
        ),
    )
    drain(factory, load_policy())
    assert {o for o, t, _ in _open(factory) if t == "RECURRING_ANOMALY"} == set()


def test_replay_cli_applies_a_file_and_refuses_a_bad_one(monkeypatch, capsys, tmp_path, sqlite_engine):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, two_orders(), case_id="events")
    good = tmp_path / "good.jsonl"
    good.write_text(
        "\n".join(
            json.dumps(e)
            for e in (
                event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1}]}),
                event("e2", {"carriers": [{"carrier_id": "CA1", "status": "disrupted"}]}, source="tms"),
            )
        )
        + "\n"
    )
    code, out, err = run(monkeypatch, capsys, "events", "replay", str(good))
    assert code == 0, err
    assert "2 stored" in out and "2 applied" in out and "1 exceptions opened" in out
    code, out, _ = run(monkeypatch, capsys, "events", "replay", str(good))
    assert code == 0 and "2 already received" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(event("e3", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 5}]}))
        + "\n"
        + json.dumps(event("e4", {"orders": [{"order_id": "SO1", "customer_id": "C404"}]}))
        + "\n"
    )
    code, _, err = run(monkeypatch, capsys, "events", "replay", str(bad))
    assert code == 2
    assert "bad.jsonl line 2: event wms/e4: records.orders[0].customer_id: 'C404' is not in customers" in err
    assert "nothing was stored" in err
    code, out, _ = run(monkeypatch, capsys, "events", "list", "--json")
    listed = json.loads(out)
    assert listed["counts"] == {"received": 0, "applied": 2, "failed": 0}
    assert {e["event_id"] for e in listed["events"]} == {"e1", "e2"}
    code, out, _ = run(monkeypatch, capsys, "worker", "--once")
    assert code == 0 and "0 events applied" in out


def test_replay_refuses_stock_below_zero_and_a_file_without_events(
    monkeypatch, capsys, tmp_path, sqlite_engine
):
    """`events replay` stored an on_hand of -5 (triage then read negative stock) and took an empty
    file for a replay of nothing (exit 0, "0 events read"). Both exit 2 in one line now; nothing of
    the refused file is stored or applied."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    factory = session_factory(sqlite_engine)
    with factory() as s:
        load_fixture(s, two_orders(), case_id="events")
        before = s.get(Inventory, ("A", "WH1")).on_hand
    bad = tmp_path / "negative.jsonl"
    bad.write_text(
        json.dumps(event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 7}]}))
        + "\n"
        + json.dumps(event("e2", {"inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": -5}]}))
        + "\n"
    )
    code, out, err = run(monkeypatch, capsys, "events", "replay", str(bad))
    assert code == 2 and out == ""
    assert err == (
        f"copilot: {bad} line 2: event wms/e2: records.inventory[0].on_hand: cannot be negative, "
        "got -5; nothing was stored\n"
    )
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == before
        assert s.scalar(select(func.count()).select_from(EventInbox)) == 0
    for name, text in (("empty.jsonl", ""), ("blank.jsonl", "\n   \n\n")):
        empty = tmp_path / name
        empty.write_text(text)
        code, out, err = run(monkeypatch, capsys, "events", "replay", str(empty))
        assert (code, out, err) == (2, "", f"copilot: {empty} holds no events\n")


def test_a_refused_event_inside_a_batch_applies_nothing_and_the_others_apply(factory, monkeypatch):
    # The worker applies the waiting events in one transaction, each in its own savepoint: the
    # database refusing one (a CHECK constraint our checks are made to let through) rolls back that
    # event alone, and the events before and after it in the batch still apply and re-triage.
    from tools import fixtures

    monkeypatch.setitem(fixtures.ENUM_COLUMNS, ("orders", "status"), "order_status")
    monkeypatch.setitem(fixtures.ENUMS, "order_status", ("open", "bogus"))
    _send(
        factory,
        event(
            "e1",
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 1}]},
            at="2026-11-02T08:00:00Z",
        ),
        event(
            "e2",
            {
                "orders": [{"order_id": "SO2", "status": "bogus"}],
                "inventory": [{"sku": "B", "warehouse_id": "WH1", "on_hand": 0}],
            },
            at="2026-11-02T08:01:00Z",
        ),
        event("e3", {"customers": [{"customer_id": "C2", "credit_hold": True}]}, at="2026-11-02T08:02:00Z"),
    )
    first, refused, third = drain(factory, load_policy())
    assert (first.status, refused.status, third.status) == ("applied", "failed", "applied")
    assert refused.error.startswith("the database refused it")
    assert (first.orders, first.opened, third.orders, third.opened) == (1, 1, 1, 1)
    with factory() as s:
        assert s.get(Order, "SO2").status == "open"
        assert s.get(Inventory, ("B", "WH1")).on_hand == 500  # nothing of the refused event
        assert s.get(Inventory, ("A", "WH1")).on_hand == 1
        assert set(s.scalars(select(EventInbox.attempts))) == {1}
        assert s.scalars(select(EventInbox.status).where(EventInbox.event_id == "e2")).one() == "failed"
        kinds = s.scalars(select(AuditEvent.event_type).where(AuditEvent.event_type.like("source_event%")))
        assert sorted(kinds) == ["source_event_applied", "source_event_applied", "source_event_failed"]
    assert {(o, t) for o, t, _ in _open(factory)} == {("SO1", "INVENTORY_SHORTFALL"), ("SO2", "CREDIT_HOLD")}


def test_affected_orders_of_a_batch_are_each_events_own(engine):
    # The worker finds the orders a whole batch affects with one lookup per key: each event must
    # still get exactly the orders its own changes reach (they are counted on it, and audited) —
    # but for the records the batch changes and changes back, which reach nothing.
    import datetime as dt

    from tools.demo import generate
    from tools.events import affected_by_event, affected_orders, apply_event
    from tools.events.affected import _net
    from tools.events.simulate import Simulator

    generate(engine, orders=300, seed=5, as_of=dt.date(2026, 11, 20), progress=False)
    with session_factory(engine)() as s:
        sim = Simulator(s, seed=11, prefix="batch")
        changes = [apply_event(s, parse_event(e)) for e in sim.stream(150)]
        net = _net(changes)
        alone = [affected_orders(s, c) for c in net]
        together = affected_by_event(s, changes)
        s.rollback()
    assert together == alone
    assert sum(map(len, net)) < sum(map(len, changes))  # the feed flips a carrier and back in 150
    assert len({frozenset(a) for a in alone}) > 20 and len(set().union(*alone)) > 30  # varied, not empty


def test_occurred_at_order_holds_across_utc_offsets(factory):
    """10:00+05:00 is 05:00 UTC: it happened before 06:00Z and applies first, on every backend."""
    later = event(
        "late", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 7}]}, at="2026-11-02T06:00:00Z"
    )
    earlier = event(
        "early",
        {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 2}]},
        at="2026-11-02T10:00:00+05:00",
    )
    _send(factory, later, earlier)
    applied = drain(factory, load_policy())
    assert [d.label for d in applied] == ["wms/early", "wms/late"]
    with factory() as s:
        assert s.get(Inventory, ("A", "WH1")).on_hand == 7


def test_replay_names_the_first_bad_event_in_the_files_order(monkeypatch, capsys, tmp_path, sqlite_engine):
    """A dangling key on line 2 is the first bad event even when line 3 has a wrong type or is not
    JSON (the shape is checked before the references); nothing is stored."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, two_orders(), case_id="events")
    good = json.dumps(event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 5}]}))
    dangling = json.dumps(event("e2", {"orders": [{"order_id": "SO1", "customer_id": "C404"}]}))
    wrong = json.dumps(event("e3", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": "x"}]}))
    for third, later in ((wrong, "line 3: event wms/e3"), ("{not json", "line 3: not a JSON object")):
        path = tmp_path / "bad.jsonl"
        path.write_text(f"{good}\n{dangling}\n{third}\n")
        code, _, err = run(monkeypatch, capsys, "events", "replay", str(path))
        assert code == 2
        assert "bad.jsonl line 2: event wms/e2: records.orders[0].customer_id: 'C404'" in err, err
        path.write_text(f"{good}\n{third}\n{dangling}\n")  # the other way round: line 2 is first
        code, _, err = run(monkeypatch, capsys, "events", "replay", str(path))
        assert code == 2 and f"bad.jsonl {later.replace('line 3', 'line 2')}" in err, err
    with session_factory(sqlite_engine)() as s:
        assert s.scalar(select(func.count()).select_from(EventInbox)) == 0


def test_a_batch_applies_in_one_savepoint_and_a_record_an_earlier_event_creates_counts(factory, engine):
    # The worker applies a batch's events together (one savepoint, references checked in order):
    # an event may name what an earlier event of the batch created, as if each applied alone.
    from sqlalchemy import event as sa_event

    from tools.models import Customer

    statements: list[str] = []

    def seen(conn, cursor, statement, *_):
        statements.append(statement)

    _send(
        factory,
        event(
            "e1",
            {"customers": [{"customer_id": "C9", "name": "New"}]},
            source="erp",
            at="2026-11-02T08:00:00Z",
        ),
        event(
            "e2",
            {"orders": [{"order_id": "SO9", "customer_id": "C9", "warehouse_id": "WH1", "status": "open"}]},
            source="erp",
            at="2026-11-02T08:01:00Z",
        ),
        event(  # the same source: PostgreSQL claims one source's events a batch
            "e3",
            {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 2}]},
            source="erp",
            at="2026-11-02T08:02:00Z",
        ),
    )
    sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        done = drain(factory, load_policy())
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)
    assert [o.status for o in done] == ["applied", "applied", "applied"]
    assert sum(1 for s in statements if s.upper().startswith("SAVEPOINT")) == 1
    with factory() as s:
        assert s.get(Customer, "C9").name == "New" and s.get(Order, "SO9").customer_id == "C9"
        assert s.get(Inventory, ("A", "WH1")).on_hand == 2


def test_a_reference_to_what_a_later_event_of_the_batch_creates_fails_that_event_alone(factory):
    # Stored together (the intake counts a record of the same request), applied in occurred_at
    # order: at e1's turn customer C9, which the later e2 creates, does not exist yet.
    new_order = {"order_id": "SO9", "customer_id": "C9", "warehouse_id": "WH1", "status": "open"}
    _send(
        factory,
        event("e1", {"orders": [new_order]}, source="erp", at="2026-11-02T08:00:00Z"),
        event("e2", {"customers": [{"customer_id": "C9"}]}, source="erp", at="2026-11-02T08:01:00Z"),
    )
    first, second = drain(factory, load_policy())
    assert first.status == "failed" and "records.orders[0].customer_id" in first.error
    assert "dangling" in first.error and second.status == "applied"
    with factory() as s:
        assert s.get(Order, "SO9") is None


def test_a_simulated_new_order_has_an_order_number_chat_and_pasted_text_read(sqlite_engine):
    """The simulated feed numbered new orders SIM7-1796444780-0000023: a planner who saw one arrive
    in the queue and asked chat "what is blocking SIM7-…?" was asked which order they meant."""
    import datetime as dt

    from agent.policy import load_policy
    from agent.triage.order_numbers.reader import find_order_ids
    from tools.demo import generate
    from tools.events.simulate import Simulator

    generate(sqlite_engine, orders=300, seed=5, as_of=dt.date(2026, 11, 20), progress=False)
    with session_factory(sqlite_engine)() as s:
        made = [
            o["order_id"]
            for e in Simulator(s, seed=11, prefix="sim11-1796444780").stream(200)
            for o in e["records"].get("orders", [])
            if "lines" in o
        ]
        other = Simulator(s, seed=11, prefix="sim11-1796444781").stream(200)
        theirs = {o["order_id"] for e in other for o in e["records"].get("orders", []) if "lines" in o}
    assert made and len(set(made)) == len(made) and not set(made) & theirs  # unique, per feed
    config = load_policy().order_numbers
    for oid in made:
        assert find_order_ids(f"what is blocking {oid}?", config) == [oid]


def test_a_simulated_feed_takes_other_weights_for_some_kinds(sqlite_engine):
    """The benchmark's feed with fewer carrier status changes (``--carrier-share``): a kind given
    weight 0 never comes, the others keep theirs; an unknown kind is refused, not ignored."""
    import datetime as dt

    from tools.demo import generate
    from tools.events.simulate import Simulator

    generate(sqlite_engine, orders=300, seed=5, as_of=dt.date(2026, 11, 20), progress=False)
    with session_factory(sqlite_engine)() as s:
        default = [e["type"] for e in Simulator(s, seed=3, prefix="w1").stream(600)]
        none = [e["type"] for e in Simulator(s, seed=3, prefix="w2", weights={"carrier": 0}).stream(600)]
        with pytest.raises(ValueError, match="unknown kinds of event: carriers"):
            Simulator(s, weights={"carriers": 1})
    assert any(t.startswith("carrier.") for t in default)
    assert not any(t.startswith("carrier.") for t in none)
    assert sum(t == "inventory.adjusted" for t in none) > 200  # the others keep their weights


def test_a_simulated_feed_refuses_a_weight_that_is_no_weight(sqlite_engine):
    """``--carrier-share -1`` (or nan) is refused, as an unknown kind is: ``random.choices`` takes a
    negative weight without a word and draws from a mix that is not the one asked for."""
    from tools.events.simulate import Simulator

    with session_factory(sqlite_engine)() as s:
        for bad in (-1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="weight"):
                Simulator(s, weights={"carrier": bad})


def test_a_claim_counts_the_attempt_and_hands_back_the_rows_in_apply_order(factory):
    """One UPDATE … RETURNING claims the rows: each attempt counted once, the rows returned
    earliest first whatever order the database returns them in, and a row the session already
    held is handed back as claimed (not as it was read before)."""
    from tools.events import claim_batch

    stock = [("e2", "08:02", 2), ("e1", "08:01", 1), ("e3", "08:03", 3)]  # stored out of order
    _send(
        factory,
        *(
            event(
                eid,
                {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": n}]},
                at=f"2026-11-02T{t}:00Z",
            )
            for eid, t, n in stock
        ),
    )
    with factory() as s:
        held = s.scalars(select(EventInbox).where(EventInbox.event_id == "e1")).one()
        assert held.attempts == 0
        rows = claim_batch(s, 2)
        assert [(r.event_id, r.attempts) for r in rows] == [("e1", 1), ("e2", 1)]
        assert rows[0] is held and held.attempts == 1
        s.commit()
    with factory() as s:
        counts = dict(s.execute(select(EventInbox.event_id, EventInbox.attempts)).all())
        assert counts == {"e1": 1, "e2": 1, "e3": 0}
