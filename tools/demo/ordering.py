"""What every order of the simulation shares: who buys, what, how much, at what price, shipped how.

:class:`Sim` holds the world, the plan and the counters that run across chunks (shipment numbers);
the history (:mod:`tools.demo.history`) and the open book (:mod:`tools.demo.openbook`) build their
orders with it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from dataclasses import dataclass

from tools.demo.customers import Account, Site
from tools.demo.parties import CARRIERS, DISRUPTED_CARRIER, NOTES, REGION_CARRIERS
from tools.demo.plan import Plan
from tools.demo.world import World

__all__ = ["LINES_PER_ORDER", "Draft", "Sim"]

# Lines per order, 1..12: mean about 3.5.
LINES_PER_ORDER = (27, 19.5, 14, 11, 8.5, 6.4, 4.8, 3.4, 2.4, 1.6, 1.0, 0.7)
REQUESTED_LEAD = ((1, 10), (2, 20), (3, 20), (5, 20), (7, 15), (10, 10), (14, 5))
NOTE_KINDS = (
    ("none", 80.0),
    ("ordinary", 13.0),
    ("substitute_ok", 3.0),
    ("no_substitute", 3.0),
    ("adversarial", 0.4),
)
ON_TIME = {c.carrier_id: c.on_time_rate for c in CARRIERS}
EXPENSIVE = 50_000  # cents: at most a few units of anything dearer


def _cum(weights) -> list[float]:
    return list(itertools.accumulate(weights))


@dataclass(slots=True)
class Draft:
    """One order line being built (money in cents)."""

    item: int
    wh: str
    qty: int
    price: int
    alloc: int = 0
    backorder: int = 0
    status: str = "allocated"
    original: int | None = None
    shipped: int = 0
    injected: bool = False  # carries an injected exception: trimming must leave it alone
    short: bool = False  # injected short: its open quantity sets the pair's stock ceiling

    def value(self) -> int:
        return self.qty * self.price


class Sim:
    def __init__(self, world: World, plan: Plan) -> None:
        self.world, self.plan = world, plan
        customers = world.customers
        self.cum_all = _cum(c.activity for c in customers)
        self.clean = [c.idx for c in customers if not c.trouble]
        self.cum_clean = _cum(customers[i].activity for i in self.clean)
        self.cum_lines = _cum(LINES_PER_ORDER)
        self.cum_note = _cum(w for _, w in NOTE_KINDS)
        self.cum_lead = _cum(w for _, w in REQUESTED_LEAD)
        self.carriers = {
            region: ([c for c, _ in pairs], _cum(w for _, w in pairs))
            for region, pairs in REGION_CARRIERS.items()
        }
        self.next_shipment = 500001
        total = world.cum_all[-1]
        self.spike_windows: dict[int, list[tuple[dt.date, dt.date, float]]] = {}
        for item, start, end, factor in plan.history_spikes:
            self.spike_windows.setdefault(item, []).append((start, end, factor))
        self._spike_day: dt.date | None = None
        self._spike_today: tuple[list[int], list[float]] = ([], [])
        self._total_pop = total

    # -- who and where -----------------------------------------------------------------------------

    def customer(self, rng: random.Random, *, clean: bool) -> Account:
        customers = self.world.customers
        if clean:
            return customers[self.clean[bisect.bisect(self.cum_clean, rng.random() * self.cum_clean[-1])]]
        return customers[bisect.bisect(self.cum_all, rng.random() * self.cum_all[-1])]

    @staticmethod
    def site(rng: random.Random, acct: Account) -> Site:
        if len(acct.sites) == 1 or rng.random() < 0.75:
            return acct.sites[0]
        return acct.sites[1 + int(rng.random() * (len(acct.sites) - 1))]

    @staticmethod
    def channel(rng: random.Random, acct: Account) -> str:
        return rng.choices([c for c, _ in acct.channels], [w for _, w in acct.channels])[0]

    def dates(self, rng: random.Random, day: dt.date, site: Site) -> tuple[dt.date, dt.date]:
        """(requested_date, promised_date) as booked at order entry."""
        lead = REQUESTED_LEAD[bisect.bisect(self.cum_lead, rng.random() * self.cum_lead[-1])][0]
        requested = day + dt.timedelta(days=lead)
        # Standard promise: a day to pick and pack, up to four in transit (two more across a border).
        standard = 5 if self.world.country(site.warehouse_id) == site.country else 7
        return requested, max(requested, day + dt.timedelta(days=standard + rng.randint(0, 2)))

    def note(self, rng: random.Random, kind: str | None = None) -> tuple[str, str | None]:
        if kind is None:
            kind = NOTE_KINDS[bisect.bisect(self.cum_note, rng.random() * self.cum_note[-1])][0]
        return kind, None if kind == "none" else rng.choice(NOTES[kind])

    # -- what ------------------------------------------------------------------------------------------

    def spike_factor(self, item: int, day: dt.date) -> float:
        for start, end, factor in self.spike_windows.get(item, ()):
            if start <= day <= end:
                return factor
        return 1.0

    def _spikes_on(self, day: dt.date) -> tuple[list[int], list[float]]:
        if day != self._spike_day:
            items, weights = [], []
            for item, start, end, factor in self.plan.history_spikes:
                if start <= day <= end:
                    items.append(item)
                    weights.append((factor - 1) * self.world.items[item].pop / self._total_pop)
            self._spike_day, self._spike_today = day, (items, _cum(weights))
        return self._spike_today

    def pick_item(self, rng: random.Random, acct: Account, day: dt.date, *, history: bool) -> int:
        """An item the account buys: its basket mostly, the catalogue sometimes, spikes on top."""
        spiking, cum = self._spikes_on(day)
        x = rng.random()
        if cum and x < cum[-1]:
            return spiking[bisect.bisect(cum, x)]
        world = self.world
        if rng.random() < 0.75:
            return acct.basket[int(rng.random() * len(acct.basket))]
        if history:
            return bisect.bisect(world.cum_all, rng.random() * world.cum_all[-1])
        return world.active[bisect.bisect(world.cum_active, rng.random() * world.cum_active[-1])]

    def qty(self, rng: random.Random, item: int, acct: Account) -> int:
        spec = self.world.items[item]
        qty = max(1, round(spec.typical_qty * acct.size**0.5 * rng.lognormvariate(0, 0.6)))
        return min(qty, 3) if spec.list_cents > EXPENSIVE else qty

    def n_lines(self, rng: random.Random) -> int:
        return 1 + bisect.bisect(self.cum_lines, rng.random() * self.cum_lines[-1])

    def compliant(self, acct: Account, item: int, wh: str, dest: str) -> bool:
        spec = self.world.items[item]
        return not spec.controlled or acct.export_license or self.world.country(wh) == dest

    # -- how it ships ------------------------------------------------------------------------------

    def carrier(self, rng: random.Random, wh: str, *, avoid_disrupted: bool) -> str:
        names, cum = self.carriers[self.world.wh[wh].region]
        while True:
            carrier = names[bisect.bisect(cum, rng.random() * cum[-1])]
            if not (avoid_disrupted and carrier == DISRUPTED_CARRIER):
                return carrier

    def transit(self, rng: random.Random, wh: str, dest: str, express: bool) -> int:
        if self.world.country(wh) == dest:
            return rng.randint(1, 2) if express else rng.randint(1, 4)
        return rng.randint(2, 3) if express else rng.randint(3, 6)

    def shipment_id(self) -> str:
        sid = f"SH-{self.next_shipment}"
        self.next_shipment += 1
        return sid

    def freight(self, value: int, express: bool, cross_border: bool) -> int:
        return round(1800 + value * 0.025 * (2.2 if express else 1.0) * (1.35 if cross_border else 1.0))
