"""The calendar of the data set and the plan of the exceptions injected into the open book.

The open book starts clean; the plan says, per open order, which exception scenario (if any) to
inject, and fixes up front the shared facts those scenarios need: which (sku, warehouse) pairs
are tight, when their earliest purchase order arrives, which SKUs are in a demand spike, and which
accounts in credit trouble place orders. Shared facts are chosen so that an injected exception
never spills onto a clean order.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from tools.demo.world import World

__all__ = ["HISTORY_DAYS", "SCENARIOS", "Calendar", "Plan", "Slot", "build_calendar", "build_plan"]

HISTORY_DAYS = 90
# Share of a day's orders still open, by age in days (0 = as_of). Older orders have all shipped.
OPEN_BY_AGE = (0.97, 0.92, 0.82, 0.7, 0.58, 0.48, 0.4, 0.33, 0.28, 0.24, 0.2, 0.17, 0.15, 0.13)
WEEKDAY = (1.1, 1.05, 1.0, 1.0, 0.9, 0.15, 0.05)  # Monday first

# Per open order (when no forced slot): the probability of each injected scenario.
SCENARIOS: tuple[tuple[str, float], ...] = (
    ("pricing", 0.015),  # PRICING_DISCREPANCY
    ("short", 0.010),  # INVENTORY_SHORTFALL (a PO arrives before the promise)
    ("short_po", 0.008),  # INVENTORY_SHORTFALL + PROCUREMENT_DELAY
    ("disc", 0.004),  # SUBSTITUTION_REQUEST (discontinued item, still allocated)
    ("disc_short", 0.003),  # SUBSTITUTION_REQUEST + INVENTORY_SHORTFALL + PROCUREMENT_DELAY
    ("note_short", 0.005),  # SUBSTITUTION_REQUEST (note) + INVENTORY_SHORTFALL
    ("carrier", 0.012),  # CARRIER_DISRUPTION
    ("master_data", 0.006),  # MASTER_DATA_INCOMPLETE
    ("compliance", 0.005),  # COMPLIANCE_HOLD
    ("short_pricing", 0.003),  # INVENTORY_SHORTFALL + PRICING_DISCREPANCY
)
EARLY_SHARE = 0.010 + 0.005 + 0.003  # scenarios on pairs with an early purchase order
LATE_SHARE = 0.008
# Below this many open orders the book is too small to show every pattern at a realistic rate:
# only the per-order scenarios are drawn.
MIN_BOOK = 150
TARGET_RATE = 0.115  # share of open orders with an exception, forced patterns included


@dataclass
class Calendar:
    days: list[dt.date]
    counts: list[int]
    open_counts: list[int]

    @property
    def open_total(self) -> int:
        return sum(self.open_counts)


@dataclass(slots=True)
class Slot:
    scenario: str  # a SCENARIOS name, or "credit", "credit_released", "spike", "conflict", "master_data"
    customer: int | None = None  # forced account
    item: int | None = None  # forced item (spike)
    extras: tuple[str, ...] = ()  # "pricing", "compliance", "adversarial"


@dataclass
class Plan:
    calendar: Calendar
    slots: list[Slot | None]  # per open order, in order-id order
    spikes: list[int]  # items in a demand spike now (short everywhere, late POs)
    history_spikes: list[tuple[int, dt.date, dt.date, float]]  # item, first day, last day, demand factor
    tight_early: dict[str, list[int]]  # warehouse -> items short there; earliest PO before the promise
    tight_late: dict[str, list[int]]  # warehouse -> items short there; earliest PO late or none
    po_dates: dict[tuple[int, str], dt.date | None]  # planned earliest open PO per tight pair (None: none)
    tight: set[tuple[int, str]] = field(default_factory=set)  # membership only, never iterated


def build_calendar(as_of: dt.date, orders: int) -> Calendar:
    days = [as_of - dt.timedelta(days=HISTORY_DAYS - i) for i in range(HISTORY_DAYS + 1)]
    weights = [WEEKDAY[d.weekday()] * (1 + 0.1 * i / HISTORY_DAYS) for i, d in enumerate(days)]
    total = sum(weights)
    exact = [orders * w / total for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(days)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: orders - sum(counts)]:
        counts[i] += 1
    open_counts = []
    for d, n in zip(days, counts, strict=False):
        age = (as_of - d).days
        open_counts.append(round(n * OPEN_BY_AGE[age]) if age < len(OPEN_BY_AGE) else 0)
    return Calendar(days, counts, open_counts)


def build_plan(world: World, rng: random.Random) -> Plan:
    cal = build_calendar(world.as_of, world.orders)
    n_open = cal.open_total
    items, as_of = world.items, world.as_of
    candidates = [i for i in world.active if not items[i].controlled]
    by_pop = sorted(candidates, key=lambda i: -items[i].pop)
    n_spike = 0 if n_open < MIN_BOOK else max(1, min(40, round(n_open / 250)))
    spikes = rng.sample(by_pop[: max(n_spike, len(by_pop) // 5)], n_spike)
    history_spikes = []
    for i in rng.sample(by_pop[: len(by_pop) // 2], len(by_pop) // 40):
        start = as_of - dt.timedelta(days=rng.randint(20, HISTORY_DAYS))
        history_spikes.append((i, start, start + dt.timedelta(days=rng.randint(7, 21)), rng.uniform(3, 6)))
    for i in spikes:  # the current spike started a few weeks ago: history shows it coming
        history_spikes.append((i, as_of - dt.timedelta(days=rng.randint(12, 25)), as_of, rng.uniform(4, 7)))

    po_dates: dict[tuple[int, str], dt.date | None] = {}
    tight: set[tuple[int, str]] = set()
    for i in spikes:
        for wh_id in items[i].stocked:
            po_dates[(i, wh_id)] = (
                as_of + dt.timedelta(days=rng.randint(21, 45)) if rng.random() < 0.6 else None
            )
            tight.add((i, wh_id))
    taken = set(spikes)
    pool = [i for i in candidates if i not in taken]
    tight_early: dict[str, list[int]] = {}
    tight_late: dict[str, list[int]] = {}
    for wh in world.warehouses:
        stocked = [i for i in pool if wh.warehouse_id in items[i].stocked]
        share = 1.5 * n_open / len(world.warehouses)
        n_early, n_late = math.ceil(share * EARLY_SHARE) + 2, math.ceil(share * LATE_SHARE) + 2
        chosen = rng.sample(stocked, min(len(stocked), n_early + n_late))
        tight_early[wh.warehouse_id], tight_late[wh.warehouse_id] = chosen[:n_early], chosen[n_early:]
        for i in chosen[:n_early]:
            po_dates[(i, wh.warehouse_id)] = as_of + dt.timedelta(days=rng.randint(2, 9))
        for i in chosen[n_early:]:
            late = rng.random() < 0.7
            po_dates[(i, wh.warehouse_id)] = as_of + dt.timedelta(days=rng.randint(21, 45)) if late else None
        tight.update((i, wh.warehouse_id) for i in chosen)
    for item in items:
        if item.discontinued:
            tight.update((item.idx, wh) for wh in item.stocked)
    slots = _slots(world, rng, n_open, spikes)
    return Plan(cal, slots, spikes, history_spikes, tight_early, tight_late, po_dates, tight)


def _slots(world: World, rng: random.Random, n_open: int, spikes: list[int]) -> list[Slot | None]:
    """Forced slots (recurring patterns, credit trouble) at random positions, scenarios elsewhere."""
    forced: list[Slot] = []
    if n_open >= MIN_BOOK:
        for i in spikes:
            forced += [Slot("spike", item=i) for _ in range(rng.randint(3, 5))]
        # a hot SKU shared by tiers: a key account's line backordered while standard customers'
        # later orders hold the units (domain.md §6)
        forced += [Slot("conflict", item=i) for i in spikes[:2]]
        trouble = [c for c in world.customers if c.trouble]
        eligible = [c for c in trouble if not c.export_license and any(s.country != "US" for s in c.sites)]
        eligible_ids = {c.idx for c in eligible}
        others = [c for c in trouble if c.idx not in eligible_ids]
        ordered = rng.sample(eligible, len(eligible)) + rng.sample(others, len(others))
        n_credit = max(2, min(len(trouble), round(n_open * 0.012)))
        n_burst = max(1, n_credit // 4)
        chosen = ordered[:1] + rng.sample(ordered[1:], min(len(ordered) - 1, n_credit - 1))
        for k, acct in enumerate(chosen):
            count = rng.randint(3, 4) if k < n_burst else rng.randint(1, 2)
            for j in range(count):
                extras: tuple[str, ...] = ("pricing",) if rng.random() < 0.25 or (k, j) == (0, 1) else ()
                if k == 0 and j == 0 and acct.idx in eligible_ids:
                    extras += ("compliance",)
                if k == 1 and j == 0:
                    extras += ("adversarial",)
                forced.append(Slot("credit", customer=acct.idx, extras=extras))
        chosen_ids = {c.idx for c in chosen}
        released = [c for c in trouble if c.idx not in chosen_ids] or chosen
        forced.append(Slot("credit_released", customer=rng.choice(released).idx))
        clean = [c for c in world.customers if not c.trouble]
        for acct in rng.sample(clean, round(n_open / 1000) if n_open >= 300 else 0):
            forced += [Slot("master_data", customer=acct.idx) for _ in range(3)]
    forced = forced[:n_open]
    slots: list[Slot | None] = [None] * n_open
    for pos, slot in zip(rng.sample(range(n_open), len(forced)), forced, strict=False):
        slots[pos] = slot
    # The per-order scenarios fill up to the target rate what the forced patterns leave: each gets
    # its expected count (randomly rounded; at least one in a book of MIN_BOOK), at random slots.
    faulty = sum(1 for f in forced if f.scenario != "credit_released")
    base = sum(p for _, p in SCENARIOS)
    scale = max(0.4, (TARGET_RATE - faulty / max(n_open, 1)) / base)
    free = [pos for pos in range(n_open) if slots[pos] is None]
    rng.shuffle(free)
    taken = 0
    for name, p in SCENARIOS:
        want = p * scale * n_open
        count = int(want) + (rng.random() < want - int(want))
        if n_open >= MIN_BOOK:
            count = max(count, 1)
        for pos in free[taken : taken + count]:
            slots[pos] = Slot(name)
        taken += count
    return slots
