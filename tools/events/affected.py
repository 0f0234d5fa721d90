"""Which open orders a changed record can affect: the orders an event makes triage again.

Triage of an order reads its own records, the customer, the items of its lines (and their
substitutes), stock and purchase orders of those SKUs, the warehouses its lines ship from, price
contracts and its shipments' carriers; and two things of other orders: the recurrence patterns of
the orders dated in its window (``agent.triage.retriage`` follows those) and, for a short line, the
lines of other orders holding its stock (domain.md §6 donors). What is recorded is the exceptions
(type, instance, evidence, facts); the recommendation is planned again whenever it is read (the
queue, the API), so a change that moves only a plan reaches nothing here. A change reaches:

- ``orders`` / ``order_lines`` / ``shipments``: that order (whatever its status: a shipped or
  cancelled order has its exceptions resolved);
- **a line that holds stock** (``allocated_qty`` > 0, old or new values): the orders with a short
  line of its SKU where it ships from — it is (or was) one of their donors. A line whose own
  warehouse is empty inherits its order's, which may move in the same batch: then every short
  line of the SKU. A line holding nothing is nobody's donor: a new order whose lines are not
  allocated reaches itself only;
- **an order whose rank moved** (new, or its promised or order date, status, customer or warehouse
  changed) and the open orders of a customer whose tier changed: the short lines at the (sku,
  warehouse) pairs where its lines hold stock (and, its warehouse moved, where its inheriting
  lines held it) — the donors' order priority decides ``ALLOCATION_CONFLICT``. A change of balance
  or credit hold reaches the customer's own open orders only;
- ``customers``: the customer's open orders; ``price_contracts``: those of its orders with a line
  of the SKU;
- ``items`` / ``substitutes``: the open lines of the SKU (and of an original SKU: pricing) at any
  warehouse, and the lines the SKU substitutes for;
- ``inventory`` (sku, warehouse), its available stock (on hand − allocated; a missing row is 0)
  going from *a* to *b*. A line that is not **short** (open qty above the available where it
  ships from) reads no stock beyond finding that it is not: ``INVENTORY_SHORTFALL``, the stock
  test of ``SUBSTITUTION_REQUEST`` and ``ALLOCATION_CONFLICT`` all start from the shortage. So it
  reaches the open lines of the SKU shipping from that warehouse that are short before or after
  (open qty > min(a, b): their shortage, its evidence — on hand and allocated — and the donors'
  take read this stock); of the lines elsewhere, a short one — ``ALLOCATION_CONFLICT`` holds only when no other
  warehouse has the line's whole qty (``reallocation_choice``: a warehouse is a candidate when its
  available ≥ qty; its country, not its stock, decides whether it is blocked) — and that answer
  changes only when this warehouse's candidacy does: (a ≥ qty) ≠ (b ≥ qty). The same for the lines
  this SKU substitutes for: only a short one shipping from this warehouse reads the substitute's
  stock there (``substitute_choice``: available ≥ open qty), when (a ≥ open qty) ≠ (b ≥ open qty).
  Shortage is read after the batch: a line whose shortage the batch changed is reached by the
  change that did it (its line, its order's warehouse, or its own stock);
- ``purchase_orders``: the open lines of its SKU at its warehouse with a backorder qty — only such a
  line reads purchase orders (``PROCUREMENT_DELAY``; a line's backorder changed in the batch is
  reached by its own change);
- ``warehouses``: the open lines that ship from it; a new one, or a country change, also every
  short line of the open book (the country decides whether a line may move there: rare master
  data, so the whole book's lines are read);
- ``carriers``: triage reads a carrier's status only, in ``CARRIER_DISRUPTION`` (it holds on an
  undelivered shipment whose carrier is ``disrupted``, or that is delayed or due after the
  promised date) and its facts (the carrier's status). When whether the carrier is ``disrupted``
  flips (or it is new and disrupted: a shipment's missing carrier), the open orders of all its
  shipments not yet delivered; when its status changes otherwise (``ok`` ↔ ``constrained``), only
  those of its undelivered shipments that are delayed or due after their order's promised date —
  the others hold no disruption before or after, and their exception's facts are the only thing
  it changes. A shipped or cancelled order holds no exception (no rule applies to it), and the
  change that closed it reached it and resolved what it held: it is not triaged again;
- ``suppliers``: nothing triage reads.

Every lookup is an index range (lines by SKU and status, orders by customer, shipments by carrier),
so the cost grows with the orders a change touches, not with the book — but those orders are the
open lines of a SKU or a carrier, which grow with the orders per SKU or carrier. Both the old and
the new values of a record count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session

from tools.db import one_of
from tools.events.apply import Change
from tools.fixtures import MODELS
from tools.models import Inventory, Order, OrderLine, Shipment, Substitute
from tools.rules import (
    ACTIVE_LINE_STATUSES,
    OPEN_ORDER_STATUSES,
    UNDELIVERED_SHIPMENT_STATUSES,
    in_chunks,
    is_empty,
    ship_from,
)

__all__ = ["Reach", "affected_by_event", "affected_orders", "reach_of_events", "redated_orders"]

_O, _L, _S, _I = Order.__table__, OrderLine.__table__, Shipment.__table__, Inventory.__table__
_ANY = ""  # a donor pair's warehouse when the line's own is empty (its order's may have moved)


@dataclass
class _Keys:
    orders: set[str] = field(default_factory=set)  # directly, any status
    ranked: set[str] = field(default_factory=set)  # orders whose priority may have changed (domain.md §6)
    moved_from: dict[str, set[str]] = field(default_factory=dict)  # order -> its warehouse before a move
    customers: set[str] = field(default_factory=set)
    tiers: set[str] = field(default_factory=set)  # customers whose tier (part of their orders' rank) changed
    skus: set[str] = field(default_factory=set)  # items / substitutes: every open line of the SKU
    stock: set[tuple[str, str, int, int]] = field(default_factory=set)  # (sku, wh, available before, after)
    donors: set[tuple[str, str]] = field(default_factory=set)  # (sku, wh or _ANY) a line held stock at
    sku_wh: set[tuple[str, str]] = field(default_factory=set)  # purchase orders: backordered lines there
    warehouses: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)  # warehouses new or whose country changed
    carriers: set[str] = field(default_factory=set)  # whether disrupted flipped: every undelivered shipment
    carrier_facts: set[str] = field(
        default_factory=set
    )  # status moved otherwise: the disrupted shipments' facts
    contracts: set[tuple[str, str]] = field(default_factory=set)
    credit: set[str] = field(default_factory=set)  # customers of which only credit fields changed


# What an order's rank among the orders sharing its stock reads (tools.rules.order_priority_key: the
# customer's tier, promised date, order date; status and warehouse decide whether and where it competes).
_RANK = {
    "orders": ("promised_date", "order_date", "status", "customer_id", "warehouse_id"),
    "customers": ("tier",),
}


def _rank_moved(change: Change) -> bool:
    fields = _RANK.get(change.table, ())
    return bool(fields) and (
        change.before is None or any(change.before[f] != change.after[f] for f in fields)
    )


def _available(row: dict[str, Any] | None) -> int:
    """Available stock of an inventory row's image; a missing row is stock 0 (as triage reads it)."""
    return 0 if row is None else row["on_hand"] - row["allocated"]


# What of a customer only CREDIT_HOLD reads (with the order's lines): a change of these alone
# reaches the customer's open orders for that rule only (tools.events.Reach.scoped).
_CREDIT = frozenset({"open_balance", "credit_limit", "overdue_balance", "credit_hold"})


def _collect(keys: _Keys, change: Change) -> None:
    table, before, after = change.table, change.before, change.after
    if table == "customers" and before is not None:
        moved = {k for k, v in after.items() if before.get(k) != v}
        if moved and moved <= _CREDIT:
            keys.credit.add(after["customer_id"])
            return
    if table == "inventory":
        keys.stock.add((after["sku"], after["warehouse_id"], _available(before), _available(after)))
        return
    if table == "carriers":  # triage reads a carrier's status only
        was = None if before is None else before["status"]
        if (was == "disrupted") != (after["status"] == "disrupted"):
            keys.carriers.add(after["carrier_id"])
        elif was != after["status"]:
            keys.carrier_facts.add(after["carrier_id"])
        return
    if table == "warehouses" and (before is None or before["country"] != after["country"]):
        keys.countries.add(after["warehouse_id"])
    ranks = _rank_moved(change)
    if table == "orders" and ranks and before is not None and before["warehouse_id"] != after["warehouse_id"]:
        if not is_empty(before["warehouse_id"]):
            keys.moved_from.setdefault(after["order_id"], set()).add(before["warehouse_id"])
    for r in (before, after):
        if r is None:
            continue
        if table in ("orders", "shipments") and r.get("order_id"):
            keys.orders.add(r["order_id"])
            if table == "orders" and ranks:  # its rank among the orders sharing its stock moved
                keys.ranked.add(r["order_id"])
        elif table == "order_lines":
            keys.orders.add(r["order_id"])
            if not is_empty(r.get("sku")) and (r.get("allocated_qty") or 0) > 0:  # a donor (§6)
                own = r.get("warehouse_id")
                keys.donors.add((r["sku"], _ANY if own is None or is_empty(own) else own))
        elif table == "customers":
            keys.customers.add(r["customer_id"])
            if ranks:
                keys.tiers.add(r["customer_id"])
        elif table in ("items", "substitutes"):
            keys.skus.add(r["sku"])
        elif table == "purchase_orders" and r.get("sku") and r.get("warehouse_id"):
            keys.sku_wh.add((r["sku"], r["warehouse_id"]))
        elif table == "warehouses":
            keys.warehouses.add(r["warehouse_id"])
        elif table == "price_contracts":
            keys.contracts.add((r["customer_id"], r["sku"]))


def redated_orders(changes: Iterable[Change]) -> dict[str, set[dt.date]]:
    """The orders whose ``order_date`` a change moved, each with the dates it had before (none
    when it had none). Whether an order counts in another's ``RECURRING_ANOMALY`` depends on its
    date (and the evidence lists it with that date), but its exceptions do not: such an order's
    patterns reach the orders of both windows, the old one's and the new one's
    (:func:`agent.triage.retriage.retriage`, ``redated``)."""
    out: dict[str, set[dt.date]] = {}
    for change in changes:
        before, after = change.before, change.after
        if change.table != "orders" or before is None or before["order_date"] == after["order_date"]:
            continue
        dates = out.setdefault(after["order_id"], set())
        was = before["order_date"]
        if isinstance(was, str) and was.strip():
            was = dt.date.fromisoformat(was.strip()[:10])
        if isinstance(was, dt.date):
            dates.add(was)
    return out


def affected_orders(session: Session, changes: list[Change]) -> set[str]:
    """The ids of the orders to triage again after ``changes`` (flushed, in the same session)."""
    return affected_by_event(session, [changes])[0]


def _add(index: dict[Any, set[str]], key: Any, order_id: str | None) -> None:
    if order_id:
        index.setdefault(key, set()).add(order_id)


@dataclass(frozen=True, slots=True)
class _OpenLine:
    """An active line of an open order, as triage sees it where it ships from."""

    order_id: str
    ship_from: str | None  # tools.rules.ship_from: its own warehouse, else its order's
    qty: int
    open_qty: int
    short: bool  # open qty above the available stock where it ships from (INVENTORY_SHORTFALL)
    backordered: bool  # backorder_qty > 0: only such a line reads purchase orders (PROCUREMENT_DELAY)


def _open_lines(session: Session, skus: set[str]) -> dict[str, list[_OpenLine]]:
    """The active lines of open orders of each SKU (an index range per SKU), with their shortage
    computed as triage's does (agent.triage.detection._shortage: a missing inventory row is 0)."""
    stock: dict[tuple[str, str], int] = {}
    out: dict[str, list[_OpenLine]] = {}
    for part in in_chunks(skus):
        q0 = select(_I.c.sku, _I.c.warehouse_id, _I.c.on_hand, _I.c.allocated).where(
            one_of(session, _I.c.sku, part)
        )
        stock.update(
            {(sku, wh): on_hand - allocated for sku, wh, on_hand, allocated in session.execute(q0).all()}
        )
        q = (
            select(
                _L.c.order_id,
                _L.c.sku,
                _L.c.warehouse_id,
                _O.c.warehouse_id,
                _L.c.qty,
                _L.c.allocated_qty,
                _L.c.backorder_qty,
            )
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(
                _O.c.status.in_(OPEN_ORDER_STATUSES),
                _L.c.status.in_(ACTIVE_LINE_STATUSES),
                one_of(session, _L.c.sku, part),
            )
        )
        for oid, sku, own, home, qty, allocated, backorder in session.execute(q).all():
            wh = ship_from(own, home)
            short = wh is not None and qty - allocated > stock.get((sku, wh), 0)
            out.setdefault(sku, []).append(_OpenLine(oid, wh, qty, qty - allocated, short, backorder > 0))
    return out


def _stock_reach(
    lines: dict[str, list[_OpenLine]], subs: dict[str, set[str]], sku: str, wh: str, before: int, after: int
) -> set[str]:
    """The orders a change of the available stock of (sku, wh) from ``before`` to ``after`` reaches."""
    out = set()
    for line in lines.get(sku, ()):
        if line.ship_from == wh:
            if line.open_qty > min(before, after):
                out.add(line.order_id)  # short before or after: its shortage, evidence and §6 read it
        elif line.short and (before >= line.qty) != (after >= line.qty):
            out.add(line.order_id)  # a short line elsewhere: whether it can move here changed
    for original in subs.get(sku, ()):
        for line in lines.get(original, ()):
            if line.ship_from == wh and line.short and (before >= line.open_qty) != (after >= line.open_qty):
                out.add(line.order_id)  # whether this substitute can serve it here changed
    return out


def _short_at(lines: dict[str, list[_OpenLine]], sku: str, wh: str) -> set[str]:
    """The orders with a short line of ``sku`` shipping from ``wh`` (any warehouse for _ANY)."""
    return {x.order_id for x in lines.get(sku, ()) if x.short and (wh == _ANY or x.ship_from == wh)}


def affected_by_event(session: Session, changes: list[list[Change]]) -> list[set[str]]:
    """:func:`affected_orders` of each event's changes (a worker's batch, applied in turn): the same
    sets, with each lookup made once for the batch — keyed lookups whose rows are then handed to
    the events that named each key."""
    return reach_of_events(session, changes).orders


@dataclass(frozen=True)
class Reach:
    """The orders each event of a batch reaches; and those of them that only changes read by some
    rules reached, with those rules (:func:`agent.triage.service.record_batch`, ``scoped``): a
    carrier's status (only ``CARRIER_DISRUPTION`` reads it) and a customer's balance or credit
    (only ``CREDIT_HOLD``)."""

    orders: list[set[str]]
    scoped: dict[str, frozenset[str]]


def _net(changes: list[list[Change]]) -> list[list[Change]]:
    """The changes of a batch without those of the records it leaves as they were: a record that
    one event changes and a later one changes back (a carrier disrupted, then ok again) reaches no
    order — every order reads at the end what it read before — so neither event is charged with
    its orders (a carrier's status reaches thousands). A record the batch creates always counts."""
    first: dict[tuple, dict[str, Any] | None] = {}
    last: dict[tuple, dict[str, Any]] = {}
    for group in changes:
        for change in group:
            key = _record(change)
            first.setdefault(key, change.before)
            last[key] = change.after
    same = {key for key, before in first.items() if before is not None and before == last[key]}
    if not same:
        return changes
    return [[c for c in group if _record(c) not in same] for group in changes]


def _record(change: Change) -> tuple:
    """The record a change is of: its table and primary key."""
    return (change.table, *(change.after[c.name] for c in MODELS[change.table].__table__.primary_key.columns))


def reach_of_events(session: Session, changes: list[list[Change]]) -> Reach:
    """:func:`affected_by_event`, and which of the orders only changes read by some rules reached.
    The changes of records the batch leaves as they were reach nothing (:func:`_net`)."""
    changes = _net(changes)
    keys = [_Keys() for _ in changes]
    for k, event_changes in zip(keys, changes, strict=True):
        for change in event_changes:
            _collect(k, change)
    out = [set(k.orders) for k in keys]
    open_order = _O.c.status.in_(OPEN_ORDER_STATUSES)
    active = _L.c.status.in_(ACTIVE_LINE_STATUSES)
    lines = select(_L.c.order_id).join(_O, _O.c.order_id == _L.c.order_id).where(open_order, active)
    # the SKUs these substitute for: their lines may now take the substitute
    subs: dict[str, set[str]] = {}
    for part in in_chunks({s for k in keys for s in k.skus | {st[0] for st in k.stock}}):
        q1 = select(Substitute.substitute_sku, Substitute.sku).where(
            one_of(session, Substitute.substitute_sku, part)
        )
        for sub, sku in session.execute(q1).all():
            subs.setdefault(sub, set()).add(sku)
    skus = {s for k in keys for s in k.skus}
    if skus:
        wanted = skus | {s for sku in skus for s in subs.get(sku, ())}
        by_sku: dict[str, set[str]] = {}
        both = select(_L.c.sku, _L.c.original_sku, _L.c.order_id).join(_O, _O.c.order_id == _L.c.order_id)
        for part in in_chunks(wanted):
            for column in (_L.c.sku, _L.c.original_sku):
                q2 = both.where(open_order, active, one_of(session, column, part))
                for sku, original, oid in session.execute(q2).all():
                    for s in (sku, original):
                        if s in part:
                            _add(by_sku, s, oid)
        for k, found in zip(keys, out, strict=True):
            for sku in k.skus | {s for x in k.skus for s in subs.get(x, ())}:
                found |= by_sku.get(sku, set())
    customers: dict[str, set[str]] = {}
    for part in in_chunks({c for k in keys for c in k.customers | k.credit}):
        q3 = select(_O.c.customer_id, _O.c.order_id).where(
            one_of(session, _O.c.customer_id, part), open_order
        )
        for customer, oid in session.execute(q3).all():
            _add(customers, customer, oid)
    for k, found in zip(keys, out, strict=True):
        for customer in k.customers:
            mine = customers.get(customer, set())
            found |= mine
            if customer in k.tiers:
                k.ranked |= mine  # a tier changes the rank of every order of the customer
    # Order priority (domain.md §6): a ranked order's lines holding stock are donors where they ship
    # from (and, its warehouse moved, where they shipped from): the short lines there may change.
    held: dict[str, list[tuple[str, str | None, str | None]]] = {}  # order -> (sku, own wh, order's wh)
    for part in in_chunks({o for k in keys for o in k.ranked}):
        rows = session.execute(
            select(_L.c.order_id, _L.c.sku, _L.c.warehouse_id, _O.c.warehouse_id)
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(one_of(session, _L.c.order_id, part), active, _L.c.allocated_qty > 0)
        )
        for oid, sku, own, home in rows:
            if not is_empty(sku):
                held.setdefault(oid, []).append((sku, own, home))
    for k in keys:
        for oid in k.ranked:
            for sku, own, home in held.get(oid, ()):
                inherited = k.moved_from.get(oid, set()) if is_empty(own) else set()
                for wh in {ship_from(own, home), *inherited}:
                    if wh is not None:
                        k.donors.add((sku, wh))
    countries = any(k.countries for k in keys)
    book_skus: set[str] = set()
    if countries:  # a warehouse's country decides whether a short line of any SKU may move there
        q6 = select(_L.c.sku).join(_O, _O.c.order_id == _L.c.order_id).where(open_order, active)
        book_skus = {s for s in session.scalars(q6.distinct()) if s is not None}
    need = (
        {s for k in keys for s, *_ in k.stock}
        | {s for k in keys for st in k.stock for s in subs.get(st[0], ())}
        | {s for k in keys for s, _ in k.donors | k.sku_wh}
        | book_skus
    )
    open_lines = _open_lines(session, need) if need else {}
    for k, found in zip(keys, out, strict=True):
        for sku, wh, before, after in k.stock:
            found |= _stock_reach(open_lines, subs, sku, wh, before, after)
        for sku, wh in k.donors:
            found |= _short_at(open_lines, sku, wh)
        for sku, wh in k.sku_wh:
            found |= {x.order_id for x in open_lines.get(sku, ()) if x.ship_from == wh and x.backordered}
        if k.countries:
            found |= {x.order_id for group in open_lines.values() for x in group if x.short}
    by_contract: dict[tuple[str, str], set[str]] = {}
    for customer, sku in sorted({c for k in keys for c in k.contracts}):
        by_contract[(customer, sku)] = set(
            session.scalars(
                lines.where(_O.c.customer_id == customer, or_(_L.c.sku == sku, _L.c.original_sku == sku))
            )
        )
    for k, found in zip(keys, out, strict=True):
        for contract in k.contracts:
            found |= by_contract[contract]
    by_wh: dict[str, set[str]] = {}
    for part in in_chunks({w for k in keys for w in k.warehouses}):
        ships_from = or_(
            one_of(session, _L.c.warehouse_id, part),
            and_(_L.c.warehouse_id.is_(None), one_of(session, _O.c.warehouse_id, part)),
        )
        q4 = (
            select(_L.c.warehouse_id, _O.c.warehouse_id, _L.c.order_id)
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(open_order, active, ships_from)
        )
        for own, home, oid in session.execute(q4).all():
            _add(by_wh, own if own is not None else home, oid)
    for k, found in zip(keys, out, strict=True):
        for wh in k.warehouses:
            found |= by_wh.get(wh, set())
    carriers = {c for k in keys for c in k.carriers}
    facts_only = {c for k in keys for c in k.carrier_facts} - carriers
    whole = set().union(*out)  # reached by a change that any rule may read
    by_carrier: dict[str, set[str]] = {}
    if carriers or facts_only:
        # a flip of disrupted: every undelivered shipment; otherwise only those already disrupted by
        # their own delay or eta (their disruption's facts name the carrier's status)
        late = or_(_S.c.status == "delayed", and_(_S.c.eta.is_not(None), _S.c.eta > _O.c.promised_date))
        for group, which in ((carriers, true()), (facts_only, late)):
            for part in in_chunks(group):
                q5 = (
                    select(_S.c.carrier_id, _S.c.order_id)
                    .join(_O, _O.c.order_id == _S.c.order_id)
                    .where(
                        one_of(session, _S.c.carrier_id, part),
                        _S.c.status.in_(UNDELIVERED_SHIPMENT_STATUSES),
                        open_order,
                        which,
                    )
                )
                for carrier, oid in session.execute(q5).all():
                    _add(by_carrier, carrier, oid)
    scoped: dict[str, set[str]] = {}
    for k, found in zip(keys, out, strict=True):
        for carrier in k.carriers | k.carrier_facts:
            for oid in by_carrier.get(carrier, set()):
                found.add(oid)
                scoped.setdefault(oid, set()).add("CARRIER_DISRUPTION")
        for customer in k.credit:
            for oid in customers.get(customer, set()):
                found.add(oid)
                scoped.setdefault(oid, set()).add("CREDIT_HOLD")
    return Reach(out, {oid: frozenset(rules) for oid, rules in scoped.items() if oid not in whole})
