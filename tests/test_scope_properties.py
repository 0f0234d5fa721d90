"""Property-based: on a small generated book, any action with random parameters filed on any open
order writes — once approved — only rows of that order, and every order whose rows it wrote is in
the audit log. Compared on snapshots of the ERP tables taken before and after.

Rows of an order: its ``orders`` row, its ``order_lines`` and ``shipments``; the ``inventory`` of a
(sku, warehouse) one of its lines has before or after the write; the open ``purchase_orders`` for
the sku of one of its lines at that line's warehouse (domain.md §3).
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from agent.governance.audit import list_events
from agent.governance.requests import decide, request_action
from agent.policy import ACTIONS, load_policy
from tools.db import make_engine, session_factory, upgrade
from tools.demo import generate
from tools.errors import ToolError
from tools.models import ERP_TABLES, Carrier, Item, Order, OrderLine, PurchaseOrder, Shipment, Warehouse

POLICY = load_policy()
WRITES = [a for a in ACTIONS if a != "ESCALATE"]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> dict:
    """A generated book of 240 orders (seed 7) as a template file, and the ids its parameters draw on."""
    path = tmp_path_factory.mktemp("book") / "book.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    generate(engine, orders=240, seed=7, progress=False)
    with session_factory(engine)() as s:
        pools = {
            "open": sorted(
                s.scalars(select(Order.order_id).where(Order.status.in_(["open", "held", "released"])))
            ),
            "order_id": sorted(s.scalars(select(Order.order_id)))[-60:],
            "line_no": [1, 2, 3, 4, 5, 6],
            "shipment_id": sorted(s.scalars(select(Shipment.shipment_id)))[-40:],
            "po_id": sorted(s.scalars(select(PurchaseOrder.po_id)))[:40],
            "carrier_id": sorted(s.scalars(select(Carrier.carrier_id))),
            "to_warehouse_id": sorted(s.scalars(select(Warehouse.warehouse_id))),
            "substitute_sku": sorted(s.scalars(select(Item.sku)))[:40],
        }
        # each open order's own records, so that many proposals are valid and run
        own = {}
        for oid in pools["open"]:
            order = s.get(Order, oid)
            serving = [
                po.po_id
                for line in order.lines
                for po in s.scalars(
                    select(PurchaseOrder).where(
                        PurchaseOrder.sku == line.sku,
                        PurchaseOrder.warehouse_id == (line.warehouse_id or order.warehouse_id),
                    )
                )
            ]
            own[oid] = {
                "line_no": [line.line_no for line in order.lines],
                "shipment_id": list(s.scalars(select(Shipment.shipment_id).where(Shipment.order_id == oid))),
                "po_id": serving,
            }
        pools["own"] = own
    engine.dispose()
    return {"path": path, "pools": pools}


def _snapshot(session) -> dict[str, dict[tuple, tuple]]:
    out = {}
    for model in ERP_TABLES:
        table = model.__table__
        keys = [c.name for c in table.primary_key.columns]
        out[table.name] = {
            tuple(row._mapping[k] for k in keys): tuple(row) for row in session.execute(select(table))
        }
    return out


def _changed(before, after) -> list[tuple[str, tuple, tuple | None, tuple | None]]:
    rows = []
    for table, old in before.items():
        new = after[table]
        for key in old.keys() | new.keys():
            if old.get(key) != new.get(key):
                rows.append((table, key, old.get(key), new.get(key)))
    return rows


def _owned(table: str, key: tuple, order_id: str, lines: set[tuple[str | None, str | None]], po_rows) -> bool:
    if table == "orders":
        return key == (order_id,)
    if table == "order_lines":
        return key[0] == order_id
    if table == "shipments":
        return True  # checked by its order_id below (the shipment's own row)
    if table == "inventory":
        return (key[0], key[1]) in lines
    if table == "purchase_orders":
        sku, wh = po_rows[key]
        return (sku, wh) in lines
    return False


def _lines_of(snap, order_id: str) -> set[tuple[str | None, str | None]]:
    """(sku, warehouse) of the order's lines (a line without a warehouse ships from the order's)."""
    order = dict(zip([c.name for c in Order.__table__.columns], snap["orders"][(order_id,)], strict=True))
    cols = [c.name for c in OrderLine.__table__.columns]
    return {
        (rec["sku"], rec["warehouse_id"] or order["warehouse_id"])
        for key, row in snap["order_lines"].items()
        if key[0] == order_id
        for rec in [dict(zip(cols, row, strict=True))]
    }


@st.composite
def proposals(draw, pools):
    order_id = draw(st.sampled_from(pools["open"]))
    action = draw(st.sampled_from(WRITES))
    spec = POLICY.actions[action]
    params = {}
    for name, kind in {**spec.params, **spec.optional_params}.items():
        if name in spec.optional_params and draw(st.booleans()):
            continue
        mine = pools["own"][order_id].get(name)
        if name == "order_id":
            params[name] = draw(st.sampled_from([order_id] * 6 + pools["order_id"][:2]))
        elif mine and draw(st.booleans()):
            params[name] = draw(st.sampled_from(mine))
        elif name in pools:
            params[name] = draw(st.sampled_from(pools[name]))
        elif kind == "int":
            params[name] = draw(st.integers(1, 6))
        elif kind == "decimal":
            params[name] = draw(st.sampled_from(["0.01", "12.50", "99.99", "1000.00"]))
        elif kind == "date":
            params[name] = draw(st.sampled_from(["2026-10-01", "2026-12-24", "2027-01-15"]))
        else:
            params[name] = draw(st.sampled_from(["Main St 1", "Boston", "02101", "US"]))
    return order_id, action, params


def _approver(role: str) -> str:
    # the demo user named after the role decides; csr requests, so ops_manager decides csr's
    return "ops_manager" if role == "csr" else role


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_executed_request_writes_only_its_own_order_and_logs_it(book, tmp_path_factory, data):
    order_id, action, params = data.draw(proposals(book["pools"]))
    path = tmp_path_factory.mktemp("case") / "case.db"
    shutil.copyfile(book["path"], path)
    engine = make_engine(f"sqlite:///{path}")
    factory = session_factory(engine)
    try:
        with factory() as s:
            before = _snapshot(s)
            po_rows = {(p.po_id,): (p.sku, p.warehouse_id) for p in s.scalars(select(PurchaseOrder))}
            seq0 = len(list_events(s, limit=100_000))
        try:
            req = request_action(
                factory, POLICY, order_id=order_id, requested_by="csr", action=action, params=params
            )
            if req["status"] == "pending_approval":
                req = decide(
                    factory, POLICY, req["id"], username=_approver(req["approver_role"]), decision="approve"
                )
        except ToolError:
            req = None
        with factory() as s:
            after = _snapshot(s)
            events = list_events(s, limit=100_000)[seq0:]
        changed = _changed(before, after)
        event(f"{action} {req['status'] if req else 'refused'}")
        if not req or req["status"] != "executed":
            assert changed == [], (action, params, req and req["status"])
            return
        own = _lines_of(before, order_id) | _lines_of(after, order_id)
        ship_cols = [c.name for c in Shipment.__table__.columns]
        logged = {e["order_id"] for e in events if e["event_type"] == "execution"}
        for table, key, old, _new in changed:
            assert _owned(table, key, order_id, own, po_rows), (action, params, table, key)
            if table == "shipments":
                assert dict(zip(ship_cols, old, strict=True))["order_id"] == order_id, (action, params, key)
        assert logged == {order_id}
    finally:
        engine.dispose()
