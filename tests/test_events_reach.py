"""What an event reaches (tools.events.affected): no less than triage reads — after the worker
applies it, the recorded exceptions are exactly those of a triage from scratch — and, where triage
provably reads nothing of the change, no more (domain.md §6: a short line's other warehouses,
substitutes and donors)."""

from __future__ import annotations

from sqlalchemy import select

from agent.flow import drain
from agent.policy import load_policy
from agent.triage.retriage import retriage
from agent.triage.service import triage_open_book
from tests.factories import clean_fixture, edit, line, order
from tools.db import session_factory
from tools.events import affected_orders, apply_event, parse_event, receive
from tools.fixtures import load_fixture
from tools.models import ExceptionRecord

POLICY = load_policy()


def _conflict_world(**p1) -> dict:
    """SO1 of platinum P1 wants 10 × A at WH1, where all 30 are allocated to lower orders SO2
    (standard C2, 8, its line's own warehouse WH1) and SO3 (gold C3, 22, its order's warehouse):
    ALLOCATION_CONFLICT. WH2 holds no A; B is an approved substitute of A with 1 in stock at WH1.
    SO4 (C2) ships 5 × A from WH2 and carries a shipment of carrier CA1; SO5 (C2) 1 × B from WH1."""
    fx = clean_fixture(order("SO1", customer_id="P1", lines=[line(qty=10)]))
    edit(fx, "customers", "P1", name="Prime", tier="platinum", credit_limit=100000, country="US")
    edit(fx, "customers", "P1", **{"allow_substitutions": False, "allow_partial_shipments": False, **p1})
    edit(fx, "customers", "C3", name="Crane", tier="gold", credit_limit=100000, country="US")
    edit(fx, "inventory", "A/WH1", on_hand=30, allocated=30)
    edit(fx, "inventory", "B/WH1", on_hand=1, allocated=0)
    edit(fx, "substitutes", "A/B", approved=True)
    for oid, cust, qty, own in (("SO2", "C2", 8, "WH1"), ("SO3", "C3", 22, None)):
        held = line(qty=qty, allocated_qty=qty, warehouse_id=own)
        fx["orders"].append(order(oid, customer_id=cust, promised_date="2026-11-25", lines=[held]))
    fx["orders"].append(order("SO4", customer_id="C2", warehouse_id="WH2", lines=[line(qty=5)]))
    fx["orders"].append(order("SO5", customer_id="C2", lines=[line(sku="B", qty=1, unit_price=50)]))
    edit(fx, "shipments", "SH4", order_id="SO4", carrier_id="CA1", status="in_transit", eta="2026-11-10")
    return fx


def _factory(engine, **p1):
    return _book(engine, _conflict_world(**p1))


def _book(engine, fx: dict):
    """A session factory on ``fx`` loaded and its open book triaged (the exceptions recorded)."""
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, fx, case_id="reach")
        for _ in triage_open_book(s, POLICY):
            pass
        s.commit()
    return factory


def _reach(factory, records: dict) -> set[str]:
    """The orders the event's changes reach (applied and rolled back)."""
    with factory() as s:
        changes = apply_event(s, parse_event(_event("probe", records)))
        found = affected_orders(s, changes)
        s.rollback()
    return found


def _event(event_id: str, records: dict) -> dict:
    return {
        "event_id": event_id,
        "source": "erp",
        "type": "test",
        "occurred_at": "2026-11-02T08:00:00Z",
        "records": records,
    }


def _apply(factory, event_id: str, records: dict) -> None:
    with factory() as s:
        receive(s, [parse_event(_event(event_id, records))], channel="api")
        s.commit()
    assert {o.status for o in drain(factory, POLICY)} == {"applied"}


def _recorded(factory) -> set[tuple]:
    with factory() as s:
        rows = s.execute(
            select(
                ExceptionRecord.order_id,
                ExceptionRecord.type,
                ExceptionRecord.instance_key,
                ExceptionRecord.evidence,
            ).where(ExceptionRecord.status == "open")
        )
        return {(o, t, i, tuple(e)) for o, t, i, e in rows}


def _from_scratch(factory) -> set[tuple]:
    with factory() as s:
        found = {
            (r["order_id"], e["type"], e["instance"], tuple(e["evidence"]))
            for r in triage_open_book(s, POLICY, record=False)
            for e in r["exceptions"]
        }
        s.rollback()
    return found


def _types(factory, order_id: str) -> set[str]:
    return {t for o, t, _, _ in _recorded(factory) if o == order_id}


def test_stock_elsewhere_reaches_a_short_line_only_when_it_decides_whether_the_line_can_move(engine):
    factory = _factory(engine)
    assert "ALLOCATION_CONFLICT" in _types(factory, "SO1")
    # 9 of A at WH2: still less than SO1's qty 10, so WH2 is no candidate before or after
    nine = {"inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": 9}]}
    assert _reach(factory, nine) == {"SO4"}  # short at WH2 before; not SO1, short at WH1
    _apply(factory, "e1", nine)
    assert _recorded(factory) == _from_scratch(factory)
    # 12: WH2 now has the line's qty — SO1 can move there, so its conflict no longer holds
    twelve = {"inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": 12}]}
    assert _reach(factory, twelve) == {"SO1"}  # SO4 (5 at WH2) is short neither before nor after
    _apply(factory, "e2", twelve)
    assert "ALLOCATION_CONFLICT" not in _types(factory, "SO1")
    assert _recorded(factory) == _from_scratch(factory)
    # SO2 and SO3 are not short: stock elsewhere is nothing to them
    assert not _reach(factory, {"inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": 0}]}) & {
        "SO2",
        "SO3",
    }


def test_stock_reaches_the_lines_at_its_warehouse_that_are_short_before_or_after(engine):
    factory = _factory(engine)
    more = {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 35}]}  # available 0 -> 5
    # SO2 and SO3 are fully allocated, never short; SO4, short of 5 at WH2, may now move to WH1
    assert _reach(factory, more) == {"SO1", "SO4"}
    _apply(factory, "e1", more)
    assert _recorded(factory) == _from_scratch(factory)
    out = {"inventory": [{"sku": "B", "warehouse_id": "WH1", "on_hand": 0}]}  # available 1 -> 0
    assert _reach(factory, out) == {"SO5"}  # its 1 × B is short now
    _apply(factory, "e2", out)
    assert "INVENTORY_SHORTFALL" in _types(factory, "SO5")
    assert _recorded(factory) == _from_scratch(factory)


def test_a_substitutes_stock_reaches_the_short_lines_it_can_serve_at_that_warehouse(engine):
    factory = _factory(engine, allow_substitutions=True)
    assert "ALLOCATION_CONFLICT" in _types(factory, "SO1")
    five = {"inventory": [{"sku": "B", "warehouse_id": "WH1", "on_hand": 5}]}
    assert _reach(factory, five) == set()  # below SO1's open qty 10: B still cannot serve it
    enough = {"inventory": [{"sku": "B", "warehouse_id": "WH1", "on_hand": 10}]}
    assert _reach(factory, enough) == {"SO1"}  # SO5 (1 × B) is not short before or after
    _apply(factory, "e1", enough)
    assert "ALLOCATION_CONFLICT" not in _types(factory, "SO1")
    assert _recorded(factory) == _from_scratch(factory)


def test_a_line_that_holds_stock_reaches_the_short_lines_it_is_a_donor_of(engine):
    factory = _factory(engine)
    release = {"order_lines": [{"order_id": "SO2", "line_no": 1, "allocated_qty": 0}]}
    assert _reach(factory, release) == {"SO1", "SO2"}  # not SO4, short of A at WH2
    _apply(factory, "e1", release)  # SO1's donors are now SO3 alone: its evidence changes
    assert _recorded(factory) == _from_scratch(factory)
    [conflict] = [ev for o, t, _, ev in _recorded(factory) if (o, t) == ("SO1", "ALLOCATION_CONFLICT")]
    assert any("of SO3" in e for e in conflict) and not any("SO2" in e for e in conflict)
    # SO3's line inherits its order's warehouse, which an event of the same batch may move: every
    # short line of A (SO4 at WH2 too)
    trim = {"order_lines": [{"order_id": "SO3", "line_no": 1, "allocated_qty": 20}]}
    assert _reach(factory, trim) == {"SO1", "SO2", "SO3", "SO4"}  # SO2 is short since e1
    _apply(factory, "e2", trim)
    assert _recorded(factory) == _from_scratch(factory)


def test_a_new_order_holding_no_stock_reaches_itself_only(engine):
    factory = _factory(engine)
    new = {
        "orders": [
            {
                **order("SO9", customer_id="C3", promised_date="2026-11-02", lines=[]),
                "lines": [{"line_no": 1, "sku": "A", "qty": 4, "unit_price": 100, "warehouse_id": "WH1"}],
            }
        ]
    }
    assert _reach(factory, new) == {"SO9"}
    _apply(factory, "e1", new)
    assert _recorded(factory) == _from_scratch(factory)


def test_a_donor_whose_rank_moves_reaches_the_short_lines_at_its_stock(engine):
    factory = _factory(engine)
    # SO2 becomes platinum P1's, promised before SO1: it outranks SO1 and is no longer its donor
    outrank = {"orders": [{"order_id": "SO2", "customer_id": "P1", "promised_date": "2026-11-01"}]}
    assert _reach(factory, outrank) == {"SO1", "SO2"}
    _apply(factory, "e1", outrank)
    assert _recorded(factory) == _from_scratch(factory)
    # a tier change of a donor's customer: C3 (SO3, 22 held) becomes platinum
    tier = {"customers": [{"customer_id": "C3", "tier": "platinum"}]}
    assert _reach(factory, tier) == {"SO1", "SO3"}
    _apply(factory, "e2", tier)
    assert _recorded(factory) == _from_scratch(factory)
    # a balance change is not a rank change: the customer's own orders only
    assert _reach(factory, {"customers": [{"customer_id": "C2", "open_balance": 10}]}) == {"SO4", "SO5"}


def test_a_purchase_order_reaches_the_backordered_lines_at_its_sku_and_warehouse(engine):
    fx = _conflict_world()
    fx["orders"][0]["lines"][0]["backorder_qty"] = 10  # SO1's 10 × A at WH1
    edit(fx, "purchase_orders", "PO1", supplier_id="SUP1", sku="A", warehouse_id="WH1")
    edit(fx, "purchase_orders", "PO1", expected_date="2026-11-30", status="open", qty=40)
    factory = _book(engine, fx)
    assert "PROCUREMENT_DELAY" in _types(factory, "SO1")  # expected after the promised 2026-11-20
    sooner = {"purchase_orders": [{"po_id": "PO1", "expected_date": "2026-11-10"}]}
    assert _reach(factory, sooner) == {"SO1"}  # SO2 and SO3 ship A from WH1 too, with no backorder
    _apply(factory, "e1", sooner)
    assert "PROCUREMENT_DELAY" not in _types(factory, "SO1")
    assert _recorded(factory) == _from_scratch(factory)


def test_a_carrier_reaches_its_shipments_orders_when_its_status_changes(engine):
    factory = _factory(engine)
    assert _reach(factory, {"carriers": [{"carrier_id": "CA1", "on_time_rate": 0.5}]}) == set()
    disrupted = {"carriers": [{"carrier_id": "CA1", "status": "disrupted"}]}
    assert _reach(factory, disrupted) == {"SO4"}
    _apply(factory, "e1", disrupted)
    assert "CARRIER_DISRUPTION" in _types(factory, "SO4")
    assert _recorded(factory) == _from_scratch(factory)
    _apply(factory, "e2", {"orders": [{"order_id": "SO4", "status": "shipped"}]})  # resolves its own
    assert _types(factory, "SO4") == set()
    ok = {"carriers": [{"carrier_id": "CA1", "status": "ok"}]}
    assert _reach(factory, ok) == set()  # a shipped order's in-transit shipment holds no exception


def test_a_carrier_that_stays_undisrupted_reaches_only_its_late_shipments_orders(engine):
    """ok -> constrained changes no shipment's disruption; it changes the facts (carrier status) of
    the shipments already disrupted by their own delay or eta: their orders only."""
    factory = _factory(engine)
    constrained = {"carriers": [{"carrier_id": "CA1", "status": "constrained"}]}
    assert _reach(factory, constrained) == set()  # SH4 is in transit and due before its promise
    _apply(factory, "e0", {"shipments": [{"shipment_id": "SH4", "status": "delayed"}]})
    assert _reach(factory, constrained) == {"SO4"}
    digest = select(ExceptionRecord.evidence_hash).where(
        ExceptionRecord.order_id == "SO4", ExceptionRecord.type == "CARRIER_DISRUPTION"
    )
    with factory() as s:
        before = s.scalars(digest).one()
    _apply(factory, "e1", constrained)
    with factory() as s:
        assert s.scalars(digest).one() != before  # its facts name the carrier's status
    assert _recorded(factory) == _from_scratch(factory)
    back = {"carriers": [{"carrier_id": "CA1", "status": "disrupted"}]}  # disrupted: every undelivered one
    assert _reach(factory, back) == {"SO4"}


def test_a_record_a_batch_changes_and_changes_back_reaches_nothing(engine):
    """CA1 disrupted, then ok again, in one batch: every order reads at the end what it read before,
    so no order is triaged again for it (a carrier carries thousands at 1M lines); a record that
    ends changed still reaches its orders, and the book ends as a triage from scratch."""
    factory = _factory(engine)
    flips = [
        ("e1", {"carriers": [{"carrier_id": "CA1", "status": "disrupted"}]}),
        ("e2", {"carriers": [{"carrier_id": "CA1", "status": "ok"}]}),
    ]
    with factory() as s:
        receive(s, [parse_event(_event(eid, records)) for eid, records in flips], channel="api")
        s.commit()
    done = drain(factory, POLICY)
    assert [(o.status, o.orders) for o in done] == [("applied", 0), ("applied", 0)]
    assert "CARRIER_DISRUPTION" not in _types(factory, "SO4")
    assert _recorded(factory) == _from_scratch(factory)
    ends_changed = [  # disrupted, then constrained: not as it was, SO4 is triaged (once, for e4)
        ("e3", {"carriers": [{"carrier_id": "CA1", "status": "disrupted"}]}),
        ("e4", {"carriers": [{"carrier_id": "CA1", "status": "constrained", "on_time_rate": 0.5}]}),
        ("e5", {"carriers": [{"carrier_id": "CA1", "on_time_rate": 0.5}]}),  # no change: reaches nothing
    ]
    with factory() as s:
        receive(s, [parse_event(_event(eid, records)) for eid, records in ends_changed], channel="api")
        s.commit()
    done = drain(factory, POLICY)
    assert [o.orders for o in done] == [0, 1, 0]
    assert _recorded(factory) == _from_scratch(factory)


def test_a_warehouse_country_change_reaches_the_short_lines_that_might_move_there(engine):
    factory = _factory(engine)
    with factory() as s:  # A is export-controlled and P1 has no licence: WH2 (DE) is blocked to SO1
        receive(
            s,
            [
                parse_event(_event("e0", {"items": [{"sku": "A", "export_controlled": True}]})),
                parse_event(
                    _event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH2", "on_hand": 50}]})
                ),
            ],
            channel="api",
        )
        s.commit()
    drain(factory, POLICY)
    assert "ALLOCATION_CONFLICT" in _types(factory, "SO1")  # WH2 has the qty but is across a border
    home = {"warehouses": [{"warehouse_id": "WH2", "country": "US"}]}
    assert "SO1" in _reach(factory, home)
    _apply(factory, "e2", home)
    assert "ALLOCATION_CONFLICT" not in _types(factory, "SO1")
    assert _recorded(factory) == _from_scratch(factory)


def test_recurrence_followers_are_the_later_orders_that_hold_the_changed_pattern(engine):
    """A stock change makes SO1 and SO2 (C1, A) short: their (INVENTORY_SHORTFALL, C1) pattern
    changes. SO3 (C1, short of B, dated after them) holds that pattern — its RECURRING_ANOMALY now
    counts three orders — and is triaged again; SO4 (C1, dated after them, nothing short) cannot
    show that anomaly and is not (every open order of the customer in the window was, before)."""
    fx = clean_fixture(
        order("SO1", lines=[line(qty=10)]),
        order("SO2", order_date="2026-11-03", lines=[line(qty=10)]),
        order("SO3", order_date="2026-11-05", lines=[line(sku="B", qty=10, unit_price=50)]),
        order("SO4", order_date="2026-11-06", lines=[line(sku="C", qty=1, unit_price=20)]),
    )
    edit(fx, "items", "C", description="Clamp", list_price=20, unit_cost=10, status="active")
    edit(fx, "inventory", "C/WH1", on_hand=500, allocated=0)
    edit(fx, "inventory", "B/WH1", on_hand=0)
    factory = _book(engine, fx)
    with factory() as s:
        changes = apply_event(
            s, parse_event(_event("e1", {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": 0}]}))
        )
        reached = affected_orders(s, changes)
        assert reached == {"SO1", "SO2"}
        done = retriage(s, POLICY, reached)
        assert done.orders == ["SO1", "SO2", "SO3"]
        s.commit()
    assert "RECURRING_ANOMALY" in _types(factory, "SO3")
    assert _types(factory, "SO4") == set()
    assert _recorded(factory) == _from_scratch(factory)


def _three_short(engine):
    """SO1, SO2, SO3 of C1 (dated 11-01, 11-03, 11-05) all short of A: SO3 shows RECURRING_ANOMALY
    (customer C1 and SKU A), its evidence listing the three orders with their dates."""
    fx = clean_fixture(
        order("SO1", lines=[line(qty=10)]),
        order("SO2", order_date="2026-11-03", lines=[line(qty=10)]),
        order("SO3", order_date="2026-11-05", lines=[line(qty=10)]),
    )
    edit(fx, "inventory", "A/WH1", on_hand=0)
    factory = _book(engine, fx)
    assert "RECURRING_ANOMALY" in _types(factory, "SO3")
    return factory


def test_a_redated_order_reaches_the_followers_of_its_old_and_new_windows(engine):
    """SO1's order date moves; its exceptions do not (its patterns are the same), but SO3's
    recurrence lists it with its date: SO3 is triaged again (it was not: no pattern changed)."""
    factory = _three_short(engine)
    _apply(factory, "e1", {"orders": [{"order_id": "SO1", "order_date": "2026-11-02"}]})
    assert _recorded(factory) == _from_scratch(factory)
    # out of SO3's window (more than 30 days before it): SO3 no longer counts three orders
    _apply(factory, "e2", {"orders": [{"order_id": "SO1", "order_date": "2026-09-01"}]})
    assert "RECURRING_ANOMALY" not in _types(factory, "SO3")
    assert _recorded(factory) == _from_scratch(factory)


def test_an_order_whose_date_is_cleared_or_set_reaches_the_followers_it_counted_for(engine):
    factory = _three_short(engine)
    _apply(factory, "e1", {"orders": [{"order_id": "SO1", "order_date": None}]})  # counts for nobody
    assert "RECURRING_ANOMALY" not in _types(factory, "SO3")
    assert _recorded(factory) == _from_scratch(factory)
    _apply(factory, "e2", {"orders": [{"order_id": "SO1", "order_date": "2026-11-04"}]})
    assert "RECURRING_ANOMALY" in _types(factory, "SO3")
    assert _recorded(factory) == _from_scratch(factory)


def test_orders_dated_at_either_end_of_the_calendar_are_triaged_again_by_the_worker(engine):
    """An order dated 9999-12-31 or 0001-01-01 (dates an event or a fixture may carry) whose
    recurrence pattern an event changes: its followers' window is held at the calendar's end (the
    worker raised OverflowError on every pass, the batch never applied), and the book ends as a
    triage from scratch."""
    fx = clean_fixture(
        order("SO1", order_date="9999-12-31", ship_to_city=""),
        order("SO2", order_date="0001-01-01", ship_to_city=""),
        order("SO3", ship_to_city=""),
    )
    factory = _book(engine, fx)
    _apply(factory, "e1", {"orders": [{"order_id": "SO1", "ship_to_city": "Springfield"}]})
    _apply(factory, "e2", {"orders": [{"order_id": "SO2", "ship_to_city": "Springfield"}]})
    _apply(factory, "e3", {"orders": [{"order_id": "SO1", "ship_to_city": ""}]})
    assert "MASTER_DATA_INCOMPLETE" in _types(factory, "SO1")
    assert _recorded(factory) == _from_scratch(factory)


def test_orders_dated_at_the_calendar_start_are_triaged_by_every_path(engine):
    """An order dated 0001-01-01 with a base hit: the recurrence window of a single order's triage
    (its neighbours), of a batch loaded with neighbours (the book not recorded yet) and of the open
    book's pass (a batch ending on 0001-01-01 forgets what the next day cannot count) is held at the
    calendar's start, as the worker's is (rules.days_from) — all three raised OverflowError."""
    from agent.triage.service import triage_order, triage_orders

    fx = clean_fixture(
        order("SO1", order_date="0001-01-01", ship_to_city=""),
        order("SO2", order_date="0001-01-02", ship_to_city=""),
        order("SO3", ship_to_city=""),
    )
    factory = session_factory(engine)
    with factory() as s:
        load_fixture(s, fx, case_id="calendar")
        assert "MASTER_DATA_INCOMPLETE" in {e["type"] for e in triage_order(s, "SO1", POLICY)["exceptions"]}
        assert len(triage_orders(s, ["SO1", "SO2", "SO3"], POLICY)) == 3
        assert len(list(triage_open_book(s, POLICY, chunk=1))) == 3
        s.commit()
    assert _recorded(factory) == _from_scratch(factory)
