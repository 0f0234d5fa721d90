"""Exception scenarios injected into a clean open order, one function per kind of fault.

Each function changes one :class:`OpenOrder` (the order being built) so that exactly the intended
rules of domain.md §2 hold, and returns False (changing nothing) when it cannot, e.g. no SKU left
whose :class:`Budget` allows another exception without making a recurrence. Shared facts (stock of
tight pairs, purchase orders) were fixed by the plan; what the order needs from them (a promise
after a PO, the open quantity a pair's stock must stay below) is recorded on the order.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Protocol

from tools.demo.customers import Account
from tools.demo.ordering import Draft, Sim
from tools.demo.parties import DISRUPTED_CARRIER, MAIN_DC
from tools.demo.plan import Plan

__all__ = [
    "Book",
    "Budget",
    "OpenOrder",
    "carrier",
    "compliance",
    "conflict",
    "discontinued",
    "master_data",
    "pricing",
    "shortfall",
]

SHORT, PROC, SUB, PRICE, CONFLICT = (
    "INVENTORY_SHORTFALL",
    "PROCUREMENT_DELAY",
    "SUBSTITUTION_REQUEST",
    "PRICING_DISCREPANCY",
    "ALLOCATION_CONFLICT",
)


class Budget:
    """Injected orders per (type, "customer"|"sku", key); a third would make a recurrence."""

    LIMIT = 2

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}

    def customer_ok(self, types, customer_id: str) -> bool:
        return all(self.counts.get((t, "customer", customer_id), 0) < self.LIMIT for t in types)

    def sku_ok(self, types, sku: str) -> bool:
        return all(self.counts.get((t, "sku", sku), 0) < self.LIMIT for t in types)

    def add(self, patterns) -> None:
        for key in patterns:
            self.counts[key] = self.counts.get(key, 0) + 1


class Book(Protocol):
    """What an injection needs of the open book it writes into (tools.demo.openbook.OpenBook)."""

    sim: Sim
    plan: Plan
    rng: random.Random
    budget: Budget
    wanted: list[list]  # [item, warehouse, qty] a key account's conflict still needs donors for


@dataclass(slots=True)
class OpenOrder:
    """An open-book order under construction (money in cents, ship-to fields in a list)."""

    order_id: str
    acct: Account
    home: str  # the order's warehouse: the one serving the ship-to site
    day: dt.date
    requested: dt.date
    promised: dt.date
    status: str
    ship_to: list  # street, city, postal code, country (None or blank once faulted)
    lines: list[Draft] = field(default_factory=list)
    note_kind: str | None = None
    note: str | None = None
    credit_released: bool = False
    shipments: list[list] = field(default_factory=list)
    patterns: dict[tuple[str, str, str], None] = field(default_factory=dict)
    po_floor: dt.date | None = None  # the promise must come after this PO

    def hit(self, kind: str, sku: str | None = None) -> None:
        self.patterns[(kind, "customer", self.acct.customer_id)] = None
        if sku:
            self.patterns[(kind, "sku", sku)] = None

    def promise_after(self, expected: dt.date) -> None:
        self.po_floor = max(self.po_floor or expected, expected)

    def value(self) -> int:
        return sum(d.value() for d in self.lines)


def _place(book: Book, order: OpenOrder, line: Draft) -> None:
    """Put an injected line on the order: replace a clean line, or add one."""
    clean = [i for i, d in enumerate(order.lines) if not d.injected]
    if clean and (len(order.lines) >= 12 or book.rng.random() < 0.7):
        order.lines[clean[int(book.rng.random() * len(clean))]] = line
    else:
        order.lines.append(line)
    order.lines = [d for i, d in enumerate(order.lines) if d.injected or d.item != line.item or d is line]


def pricing(book: Book, order: OpenOrder) -> bool:
    """A line priced off its effective price: list instead of contract, an expired contract, a typo."""
    rng, world = book.rng, book.sim.world
    choices = [
        d for d in order.lines if d.original is None and book.budget.sku_ok((PRICE,), world.items[d.item].sku)
    ]
    if not choices:
        return False
    line = choices[int(rng.random() * len(choices))]
    effective, item = line.price, world.items[line.item]
    options = [
        cents
        for start, end, cents in world.contracts.get((order.acct.idx, line.item), ())
        if end is not None and end < order.day
    ]
    if world.effective_cents(order.acct.idx, line.item, order.day) != item.list_cents:
        options.append(item.list_cents)  # the contract price was not applied
    options.append(round(effective * rng.choice((rng.uniform(1.05, 1.18), rng.uniform(0.82, 0.95)))))
    wrong = next((c for c in options if abs(c - effective) * 40 > effective), round(effective * 1.1))
    line.price, line.injected = wrong, True
    order.hit(PRICE, item.sku)
    return True


def shortfall(book: Book, order: OpenOrder, kind: str, item: int | None = None) -> bool:
    """A line whose open quantity exceeds the stock of a tight pair.

    ``early``: the pair's first PO lands before the (re-)promise, so no procurement delay; a third
    of them are not even allocated yet. ``late``: the first PO comes after the promise or there is
    none. ``spike``: the given item, short at every warehouse, with late POs.
    """
    rng, sim, plan = book.rng, book.sim, book.plan
    items, home = sim.world.items, order.home
    types = (SHORT,) if kind == "early" else (SHORT, PROC)
    if item is None:
        pools = plan.tight_early if kind == "early" else plan.tight_late
        region_dc = MAIN_DC[sim.world.wh[home].region]
        candidates = [(i, home) for i in pools.get(home, ())] + [
            (i, region_dc) for i in pools.get(region_dc, ())
        ]
        candidates = [
            (i, wh)
            for i, wh in candidates
            if book.budget.sku_ok(types, items[i].sku) and all(d.item != i for d in order.lines)
        ]
        if not candidates:
            return False
        item, wh = candidates[int(rng.random() * len(candidates))]
    else:
        wh = sim.world.source(items[item], home)
    qty = max(2, sim.qty(rng, item, order.acct))
    line = Draft(item, wh, qty, sim.world.effective_cents(order.acct.idx, item, order.day), injected=True)
    if kind == "early" and rng.random() < 0.3:
        line.status = "open"
    else:
        line.alloc = rng.randint(1, qty - 1) if rng.random() < 0.3 else 0
        line.backorder, line.status = qty - line.alloc, "backordered"
        expected = plan.po_dates.get((item, wh))
        if kind == "early" and expected is not None:
            order.promise_after(expected)
    line.short = True
    _place(book, order, line)
    for t in types:
        order.hit(t, items[item].sku)
    return True


def conflict(book: Book, order: OpenOrder, item: int) -> bool:
    """A key account's line on a hot SKU, backordered while standard customers' later orders hold
    the units (domain.md §6): the item of a demand spike, short at every warehouse, so neither
    another warehouse nor a substitute (the account takes none) can serve it. The open quantity is
    recorded as a donation the next clean standard orders make: each takes a line of the SKU at
    that warehouse, allocated, until it is covered (:meth:`OpenBook.donate`)."""
    if not shortfall(book, order, "spike", item=item):
        return False
    line = next(d for d in order.lines if d.short and d.item == item)
    line.alloc, line.backorder, line.status = 0, line.qty, "backordered"
    order.hit(CONFLICT, book.sim.world.items[item].sku)
    book.wanted.append([item, line.wh, line.qty])
    return True


def discontinued(book: Book, order: OpenOrder, short: bool) -> bool:
    """A line on a discontinued item: still allocated from what is left, or backordered with no PO."""
    rng, world = book.rng, book.sim.world
    types = (SUB, SHORT, PROC) if short else (SUB,)
    candidates = [
        i.idx
        for i in world.items
        if i.discontinued and book.budget.sku_ok(types, i.sku) and all(d.item != i.idx for d in order.lines)
    ]
    if not candidates:
        return False
    item = candidates[int(rng.random() * len(candidates))]
    wh = world.source(world.items[item], order.home)
    qty = book.sim.qty(rng, item, order.acct)
    line = Draft(item, wh, qty, world.effective_cents(order.acct.idx, item, order.day), injected=True)
    line.alloc = qty
    if short:
        qty = line.qty = max(2, qty)
        line.alloc = rng.randint(1, qty - 1) if rng.random() < 0.3 else 0
        line.backorder, line.status, line.short = qty - line.alloc, "backordered", True
    _place(book, order, line)
    for t in types:
        order.hit(t, world.items[item].sku)
    return True


def compliance(book: Book, order: OpenOrder) -> bool:
    """An export-controlled item shipped across the border to an account without a license."""
    rng, sim = book.rng, book.sim
    world, acct, dest = sim.world, order.acct, order.ship_to[3]
    room = acct.headroom if not acct.trouble else 10**12
    candidates = []
    for item in world.items:
        if item.controlled and not item.discontinued and item.list_cents * 4 < room:
            wh = world.source(item, order.home)
            if world.country(wh) != dest and book.budget.sku_ok(("COMPLIANCE_HOLD",), item.sku):
                candidates.append((item.idx, wh))
    if acct.export_license or not candidates:
        return False
    idx, wh = candidates[int(rng.random() * len(candidates))]
    qty = rng.randint(1, 2)
    line = Draft(idx, wh, qty, world.effective_cents(acct.idx, idx, order.day), alloc=qty, injected=True)
    _place(book, order, line)
    order.hit("COMPLIANCE_HOLD", world.items[idx].sku)
    return True


def master_data(book: Book, order: OpenOrder) -> bool:
    """Ship-to fields left empty (a new job site, an EDI feed without a postal code)."""
    rng = book.rng
    exported = any(book.sim.world.items[d.item].controlled for d in order.lines)
    fields = rng.choices(((2,), (0,), (1,), (0, 2), (3,)), (40, 25, 20, 10, 5))[0]
    if fields == (3,) and exported:
        fields = (2,)
    for f in fields:
        order.ship_to[f] = rng.choices((None, "", "  "), (70, 20, 10))[0]
    order.hit("MASTER_DATA_INCOMPLETE")
    return True


def carrier(book: Book, order: OpenOrder) -> bool:
    """One undelivered shipment in trouble: a disrupted carrier, a delay, or an eta past the promise."""
    rng, as_of = book.rng, book.sim.world.as_of
    if not order.shipments:
        return False
    ship = order.shipments[int(rng.random() * len(order.shipments))]
    how = rng.choices(("disrupted", "delayed", "late_eta"), (45, 30, 25))[0]
    if how == "disrupted":
        ship[2] = DISRUPTED_CARRIER
    elif how == "delayed":
        ship[4] = "delayed"
        ship[5] = max(order.day, min(ship[5], as_of - dt.timedelta(days=1)))
    else:
        ship[6] = order.promised + dt.timedelta(days=rng.randint(1, 4))
    order.hit("CARRIER_DISRUPTION")
    return True
