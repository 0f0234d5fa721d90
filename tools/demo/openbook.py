"""The open book: orders of the last two weeks that are still open, held or released.

Every order is built clean first — within credit, priced at its effective price, allocated from
stock, booked with a working carrier, a complete ship-to, export-controlled items only where they
may go — and then faulted as its plan slot says (:mod:`tools.demo.inject`). A budget keeps each
(type, customer) and (type, SKU) to at most two injected orders, so RECURRING_ANOMALY appears only
where the plan puts it on purpose. Allocations are summed per (SKU, warehouse) while the orders
stream by; :meth:`OpenBook.inventory` turns them into stock at the end.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from tools.demo import inject
from tools.demo.customers import Account, Site
from tools.demo.inject import PRICE, PROC, SHORT, SUB, Budget, OpenOrder
from tools.demo.ordering import Draft, Sim
from tools.demo.parties import NOTES
from tools.demo.plan import Slot

__all__ = ["SCENARIO_TYPES", "OpenBook"]

SCENARIO_TYPES: dict[str, tuple[str, ...]] = {
    "pricing": (PRICE,),
    "short": (SHORT,),
    "short_po": (SHORT, PROC),
    "disc": (SUB,),
    "disc_short": (SUB, SHORT, PROC),
    "note_short": (SUB, SHORT),
    "carrier": ("CARRIER_DISRUPTION",),
    "master_data": ("MASTER_DATA_INCOMPLETE",),
    "compliance": ("COMPLIANCE_HOLD",),
    "short_pricing": (SHORT, PRICE),
    "spike": (SHORT, PROC),
    "conflict": ("ALLOCATION_CONFLICT", SHORT, PROC),
}
SHORT_KIND = {"short": "early", "short_po": "late", "note_short": "early", "short_pricing": "early"}


class OpenBook:
    def __init__(self, sim: Sim, rng: random.Random) -> None:
        self.sim, self.plan, self.rng = sim, sim.plan, rng
        self.budget = Budget()
        self.allocated: dict[tuple[int, str], int] = {}
        self.unallocated: dict[tuple[int, str], int] = {}  # open qty of clean, not yet allocated lines
        self.short_min: dict[tuple[int, str], int] = {}  # smallest open qty of an injected short line
        self.scenarios: dict[str, int] = {}
        self.wanted: list[list] = []  # conflicts still waiting for standard orders to hold their units

    # -- one order ---------------------------------------------------------------------------------

    def order(self, order_id: str, day: dt.date, slot: Slot | None) -> tuple[tuple, list[tuple], list[tuple]]:
        rng, sim = self.rng, self.sim
        scenario = slot.scenario if slot else None
        acct = self._account(scenario, slot)
        if acct is None:
            scenario, acct = None, sim.customer(rng, clean=True)
        site = self._site(acct, scenario, slot)
        requested, promised = sim.dates(rng, day, site)
        order = OpenOrder(
            order_id,
            acct,
            site.warehouse_id,
            day,
            requested,
            promised,
            "open",
            [site.street, site.city, site.postal, site.country],
        )
        channel = sim.channel(rng, acct)
        order.lines = self._clean_lines(acct, site, day)
        if scenario is None:
            self._donate(order)
        order.status = self._status(day, scenario)
        if not self._inject(order, scenario, slot):
            scenario = None
        self.scenarios[scenario or "clean"] = self.scenarios.get(scenario or "clean", 0) + 1
        self._fit(order)
        self._allocate(order)
        self._note(order, scenario)
        as_of = sim.world.as_of
        if order.promised <= as_of:
            order.promised = as_of + dt.timedelta(days=rng.randint(1, 3))  # re-promised
        if order.po_floor:
            order.promised = max(order.promised, order.po_floor + dt.timedelta(days=rng.randint(1, 3)))
        if order.status == "released":
            self._book(order)
        if scenario == "carrier":
            inject.carrier(self, order)
        self._register(order)
        return self._rows(order, channel)

    def _account(self, scenario: str | None, slot: Slot | None) -> Account | None:
        sim = self.sim
        if slot and slot.customer is not None:
            return sim.world.customers[slot.customer]
        if scenario is None:
            return sim.customer(self.rng, clean=True)
        types = SCENARIO_TYPES[scenario]
        for _ in range(12 if scenario != "conflict" else 60):
            acct = sim.customer(self.rng, clean=True)
            if scenario == "conflict" and (acct.tier not in ("platinum", "gold") or acct.allow_subs):
                continue  # a key account that takes no substitute: only the allocation can serve it
            if scenario == "compliance" and (
                acct.export_license or all(s.country == "US" for s in acct.sites)
            ):
                continue
            if self.budget.customer_ok(types, acct.customer_id):
                return acct
        return None

    def _site(self, acct: Account, scenario: str | None, slot: Slot | None) -> Site:
        if scenario == "compliance" or (slot and "compliance" in slot.extras):
            abroad = [s for s in acct.sites if s.country != "US"]
            if abroad:
                return abroad[int(self.rng.random() * len(abroad))]
        return self.sim.site(self.rng, acct)

    def _status(self, day: dt.date, scenario: str | None) -> str:
        rng, age = self.rng, (self.sim.world.as_of - day).days
        if scenario in ("carrier", "credit_released"):
            return "released"
        if scenario == "credit":
            return "held" if rng.random() < 0.75 else "open"
        if scenario not in (None, "pricing"):
            return "open"
        p = 0.1 if age == 0 else 0.35 if age == 1 else 0.6 if age <= 3 else 0.7
        x = rng.random()
        return "released" if x < p else "held" if x > 0.98 else "open"

    def _clean_lines(self, acct: Account, site: Site, day: dt.date) -> list[Draft]:
        rng, sim, world = self.rng, self.sim, self.sim.world
        cap = acct.headroom / 3 if not acct.trouble else float("inf")
        drafts: list[Draft] = []
        seen: set[int] = set()
        for _ in range(sim.n_lines(rng)):
            for _attempt in range(6):
                item = sim.pick_item(rng, acct, day, history=False)
                spec = world.items[item]
                wh = world.source(spec, site.warehouse_id)
                if (
                    item not in seen
                    and not spec.discontinued
                    and spec.list_cents * spec.typical_qty < cap
                    and sim.compliant(acct, item, wh, site.country)
                ):
                    break
            else:
                continue
            seen.add(item)
            line = Draft(item, wh, sim.qty(rng, item, acct), world.effective_cents(acct.idx, item, day))
            subs = world.subs_of.get(item) if acct.allow_subs and rng.random() < 0.01 else None
            for sub, approved in subs or ():
                sub_wh = world.source(world.items[sub], site.warehouse_id)
                if approved and sub not in seen and sim.compliant(acct, sub, sub_wh, site.country):
                    line.original, line.item, line.wh = item, sub, sub_wh  # substituted earlier
                    seen.add(sub)
                    break
            drafts.append(line)
        if not drafts:
            item = next(i for i in acct.basket if not world.items[i].controlled)
            drafts.append(
                Draft(
                    item,
                    world.source(world.items[item], site.warehouse_id),
                    1,
                    world.effective_cents(acct.idx, item, day),
                )
            )
        return drafts

    def _inject(self, order: OpenOrder, scenario: str | None, slot: Slot | None) -> bool:
        if slot is None or scenario is None or scenario in ("carrier", "credit_released"):
            order.credit_released = scenario == "credit_released"
            return True
        if scenario == "pricing":
            return inject.pricing(self, order)
        if scenario in SHORT_KIND:
            if not inject.shortfall(self, order, SHORT_KIND[scenario]):
                return False
            if scenario == "short_pricing":
                inject.pricing(self, order)
            return True
        if scenario == "spike":
            return inject.shortfall(self, order, "spike", item=slot.item)
        if scenario == "conflict":
            return slot.item is not None and inject.conflict(self, order, slot.item)
        if scenario in ("disc", "disc_short"):
            return inject.discontinued(self, order, short=scenario == "disc_short")
        if scenario == "master_data":
            return inject.master_data(self, order)
        if scenario == "compliance":
            return inject.compliance(self, order)
        order.hit("CREDIT_HOLD")  # credit: the account's standing does it; extras on top
        if "pricing" in slot.extras and self.budget.customer_ok((PRICE,), order.acct.customer_id):
            inject.pricing(self, order)
        if "compliance" in slot.extras:
            inject.compliance(self, order)
        if "adversarial" in slot.extras:
            order.note_kind, order.note = "adversarial", NOTES["adversarial"][0]
        return True

    def _donate(self, order: OpenOrder) -> None:
        """A clean standard order takes a line of a conflict's hot SKU at its warehouse, allocated
        (the units a key account's backordered line waits for), when its credit has room for it."""
        if not self.wanted or order.acct.tier != "standard" or order.acct.trouble:
            return
        want = self.wanted[0]
        item, wh, qty = want
        if any(d.item == item for d in order.lines):
            return
        line = Draft(item, wh, qty, self.sim.world.effective_cents(order.acct.idx, item, order.day))
        if order.value() + line.value() > order.acct.headroom:
            return
        line.injected = True  # kept whole by trimming; allocated like any clean line
        order.lines.append(line)
        self.wanted.pop(0)

    def _fit(self, order: OpenOrder) -> None:
        """A clean account stays within credit; an account at its limit goes over with this order."""
        acct, lines = order.acct, order.lines
        if acct.trouble == "limit" and order.value() <= acct.headroom:  # only when exactly at the limit
            line = max(lines, key=lambda d: d.price)
            extra = (acct.headroom - order.value()) // line.price + 1
            line.qty += extra
            if line.status == "backordered":
                line.backorder += extra
        if acct.trouble:
            return
        while order.value() > acct.headroom:
            halvable = [d for d in lines if not d.injected and d.qty > 1]
            droppable = [d for d in lines if not d.injected]
            if halvable:
                biggest = max(halvable, key=Draft.value)
                biggest.qty //= 2
            elif droppable and len(lines) > 1:
                lines.remove(droppable[-1])
            else:
                break

    def _allocate(self, order: OpenOrder) -> None:
        rng, tight = self.rng, self.plan.tight
        for line in order.lines:
            if (
                not line.injected
                and not line.short
                and order.status != "released"
                and rng.random() < 0.12
                and (line.item, line.wh) not in tight
            ):
                line.status, line.alloc = "open", 0
            elif line.status == "allocated":
                line.alloc = line.qty

    def _note(self, order: OpenOrder, scenario: str | None) -> None:
        if order.note_kind:
            return
        forced = "substitute_ok" if scenario == "note_short" else None
        kind, text = self.sim.note(self.rng, forced)
        if kind == "substitute_ok" and scenario != "note_short" and any(d.short for d in order.lines):
            kind, text = self.sim.note(self.rng, "no_substitute")
        order.note_kind, order.note = kind, text

    def _book(self, order: OpenOrder) -> None:
        """Shipments of a released order, one per warehouse, all due by the promise."""
        rng, sim, as_of = self.rng, self.sim, self.sim.world.as_of
        age, dest = (as_of - order.day).days, order.ship_to[3]
        for wh in dict.fromkeys(d.wh for d in order.lines):
            express = rng.random() < (0.25 if order.acct.tier == "platinum" else 0.06)
            carrier = sim.carrier(rng, wh, avoid_disrupted=True)
            transit = sim.transit(rng, wh, dest, express)
            x = rng.random()
            if age >= 1 and x < 0.3:
                status, planned = "in_transit", max(order.day, as_of - dt.timedelta(days=rng.randint(0, 3)))
                eta = max(planned + dt.timedelta(days=transit), as_of)
            else:
                status = "booked" if x < 0.75 else "planned"
                planned = as_of + dt.timedelta(
                    days=rng.randint(0, 2) if status == "booked" else rng.randint(1, 4)
                )
                eta = planned + dt.timedelta(days=transit)
            value = sum(d.value() for d in order.lines if d.wh == wh)
            freight = sim.freight(value, express, sim.world.country(wh) != dest)
            order.shipments.append(
                [
                    sim.shipment_id(),
                    order.order_id,
                    carrier,
                    "express" if express else "ground",
                    status,
                    planned,
                    eta,
                    freight,
                    None,
                ]
            )
            order.promised = max(order.promised, eta)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _register(self, order: OpenOrder) -> None:
        for line in order.lines:
            pair = (line.item, line.wh)
            if line.alloc:
                self.allocated[pair] = self.allocated.get(pair, 0) + line.alloc
            if line.short:
                self.short_min[pair] = min(self.short_min.get(pair, line.qty), line.qty - line.alloc)
            elif line.status == "open":
                self.unallocated[pair] = self.unallocated.get(pair, 0) + line.qty
        self.budget.add(order.patterns)

    def _rows(self, order: OpenOrder, channel: str) -> tuple[tuple, list[tuple], list[tuple]]:
        items, oid = self.sim.world.items, order.order_id
        street, city, postal, country = order.ship_to
        row = (
            oid,
            order.acct.customer_id,
            channel,
            order.day,
            order.requested,
            order.promised,
            order.status,
            order.credit_released,
            order.home,
            street,
            city,
            postal,
            country,
            order.note,
            "USD",
            None,
        )
        lines = [
            (
                oid,
                n,
                items[d.item].sku,
                d.qty,
                d.price,
                d.wh,
                d.alloc,
                d.backorder,
                d.status,
                items[d.original].sku if d.original is not None else None,
                0,
            )
            for n, d in enumerate(order.lines, 1)
        ]
        return row, lines, [tuple(s) for s in order.shipments]

    def inventory(self, rng: random.Random) -> Iterator[tuple]:
        """Stock per stocked pair: allocated as summed, on hand = allocated + free stock."""
        plan = self.plan
        spikes = set(plan.spikes)  # membership only
        for item in self.sim.world.items:
            for wh in self.sim.world.warehouses:
                pair = (item.idx, wh.warehouse_id)
                alloc = self.allocated.get(pair, 0)
                if wh.warehouse_id not in item.stocked and not alloc:
                    continue
                if pair in self.short_min:  # below every injected short line's open quantity
                    free = rng.randint(0, min(self.short_min[pair] - 1, 1 if item.idx in spikes else 6))
                elif item.idx in spikes:
                    free = rng.randint(0, 1)  # the spike has emptied every shelf
                elif pair in plan.tight:
                    free = rng.randint(0, 4)
                else:
                    free = self.unallocated.get(pair, 0) + round(item.typical_qty * rng.uniform(2, 30))
                yield (item.sku, wh.warehouse_id, alloc + free, alloc)
