"""Ninety days of closed orders, with outcomes a risk model can learn from.

Each order's fate comes from latent drivers plus noise: the supplier's on-time rate and demand
spikes make lines short (shipped short, substituted, or waited for); the account's credit
utilisation, overdue balance and hold flag hold orders back; the carrier's reliability (and the
disrupted carrier lately) makes deliveries late. What happened is recorded as resolved rows of
``exceptions``, with the same types, instance keys and roles as live triage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections import deque

from tools.demo.ordering import ON_TIME, Draft, Sim
from tools.demo.parties import DISRUPTED_CARRIER, DISRUPTED_SINCE_DAYS

__all__ = ["ROLE", "History", "exception_row", "money"]

ROLE = {
    "CREDIT_HOLD": "credit_analyst",
    "PRICING_DISCREPANCY": "pricing_analyst",
    "INVENTORY_SHORTFALL": "planner",
    "SUBSTITUTION_REQUEST": "csr",
    "CARRIER_DISRUPTION": "logistics_coordinator",
    "PROCUREMENT_DELAY": "procurement_buyer",
    "MASTER_DATA_INCOMPLETE": "csr",
    "COMPLIANCE_HOLD": "compliance_officer",
    "RECURRING_ANOMALY": "ops_manager",
    "ALLOCATION_CONFLICT": "planner",
}
WINDOW_DAYS, MIN_ORDERS = 30, 3
UTC = dt.UTC


def money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def exception_row(
    order_id: str,
    kind: str,
    key: str,
    evidence: list[str],
    *,
    line_no=None,
    shipment_id=None,
    sku=None,
    customer_id=None,
    warehouse_id=None,
    role=None,
    seen: dt.datetime,
    resolved: dt.datetime | None,
) -> tuple:
    digest = hashlib.sha256(json.dumps(evidence, separators=(",", ":")).encode()).hexdigest()
    return (
        order_id,
        kind,
        key,
        line_no,
        shipment_id,
        sku,
        customer_id,
        warehouse_id,
        evidence,
        digest,
        "resolved" if resolved else "open",
        role or ROLE[kind],
        seen,
        seen,
        resolved,
    )


class History:
    def __init__(self, sim: Sim, rng: random.Random) -> None:
        self.sim, self.rng = sim, rng
        self.recent: dict[tuple[str, str, str], deque[tuple[dt.date, str]]] = {}
        self.disrupted_since = sim.world.as_of - dt.timedelta(days=DISRUPTED_SINCE_DAYS)

    def _lines(self, acct, site, day) -> list[Draft]:
        rng, sim, world = self.rng, self.sim, self.sim.world
        drafts: list[Draft] = []
        seen: set[int] = set()
        for _ in range(sim.n_lines(rng)):
            for _attempt in range(4):
                item = sim.pick_item(rng, acct, day, history=True)
                spec = world.items[item]
                wh = world.source(spec, site.warehouse_id)
                if item in seen or (
                    spec.discontinued and (world.as_of - day).days < 30 and rng.random() < 0.8
                ):
                    continue
                if sim.compliant(acct, item, wh, site.country) or rng.random() < 0.2:
                    break
            else:
                continue
            seen.add(item)
            drafts.append(
                Draft(item, wh, sim.qty(rng, item, acct), world.effective_cents(acct.idx, item, day))
            )
        if not drafts:
            item = acct.basket[0]
            wh = world.source(world.items[item], site.warehouse_id)
            drafts.append(
                Draft(item, wh, sim.qty(rng, item, acct), world.effective_cents(acct.idx, item, day))
            )
        return drafts

    def order(self, order_id: str, day: dt.date) -> tuple[tuple, list[tuple], list[tuple], list[tuple]]:
        rng, sim, world = self.rng, self.sim, self.sim.world
        items, as_of = world.items, world.as_of
        acct = sim.customer(rng, clean=False)
        site = sim.site(rng, acct)
        requested, promised = sim.dates(rng, day, site)
        channel = sim.channel(rng, acct)
        _, note = sim.note(rng)
        lines = self._lines(acct, site, day)
        events: list[tuple] = []  # (type, key, line_no, shipment_id, sku, wh, evidence, hours to resolve)
        delay = 0
        value = sum(d.value() for d in lines)
        usage = acct.open_balance / acct.credit_limit
        p_credit = (
            0.01
            + 0.3 * max(0.0, usage - 0.75) / 0.25
            + (0.35 if acct.overdue else 0)
            + (0.6 if acct.credit_hold else 0)
        )
        if rng.random() < min(0.9, p_credit):
            held = rng.randint(1, 4)
            delay = held
            why = [
                f"open_balance {money(acct.open_balance)} + order value {money(value)} vs credit_limit "
                f"{money(acct.credit_limit)}"
            ]
            if acct.overdue:
                why.append(f"overdue_balance {money(acct.overdue)} > 0")
            if acct.credit_hold:
                why.append(f"customer {acct.customer_id} is on credit hold")
            events.append(("CREDIT_HOLD", "order", None, None, None, None, why, held * 24))
        for n, line in enumerate(lines, 1):
            spec = items[line.item]
            supplier = world.suppliers[spec.supplier]
            spike = sim.spike_factor(line.item, day)
            unlicensed = not sim.compliant(acct, line.item, line.wh, site.country)  # as ordered
            line.shipped = line.qty
            p_short = (
                0.012
                + 0.25 * (1 - supplier.on_time_rate)
                + min(0.5, 0.1 * (spike - 1))
                + (0.3 if spec.discontinued else 0)
            )
            if rng.random() < p_short:
                available = rng.randint(0, line.qty - 1)
                short = [f"line {n} {spec.sku} open qty {line.qty} > available {available} at {line.wh}"]
                if spike > 1:
                    short.append(f"demand for {spec.sku} running {spike:.1f}x normal")
                subs = [s for s, ok in world.subs_of.get(line.item, ()) if ok]
                if acct.allow_subs and subs and rng.random() < 0.35:
                    line.original, line.item = line.item, subs[0]
                    short.append(f"substituted by approved {items[subs[0]].sku}")
                    hours = rng.randint(1, 20)
                elif acct.allow_partial and line.qty > 1 and rng.random() < 0.5:
                    line.shipped = max(1, int(line.qty * rng.uniform(0.3, 0.9)))
                    short.append(f"shipped {line.shipped} of {line.qty}, balance cancelled")
                    hours = rng.randint(1, 20)
                else:
                    wait = rng.randint(2, 6) + round(
                        supplier.lead_time_days * (1 - supplier.on_time_rate) * rng.uniform(0.5, 2.0)
                    )
                    delay = max(delay, wait)
                    hours = wait * 24
                    if acct.tier in ("platinum", "gold") and spike > 1:
                        # a hot SKU shared by tiers: the planner took units standard orders held
                        events.append(
                            (
                                "ALLOCATION_CONFLICT",
                                f"line:{n}",
                                n,
                                None,
                                spec.sku,
                                line.wh,
                                [
                                    f"line {n} {spec.sku} short at {line.wh} for {acct.tier} customer "
                                    f"{acct.customer_id} while lower-priority orders held the units",
                                ],
                                max(1, hours // 8),
                            )
                        )
                    if day + dt.timedelta(days=wait) > promised:
                        events.append(
                            (
                                "PROCUREMENT_DELAY",
                                f"line:{n}",
                                n,
                                None,
                                spec.sku,
                                line.wh,
                                [
                                    f"line {n} backordered {line.qty - available}",
                                    f"replenishment from {supplier.supplier_id} (on-time {supplier.on_time_rate:.0%}) "
                                    f"expected {day + dt.timedelta(days=wait)}, after promised {promised}",
                                ],
                                hours,
                            )
                        )
                events.append(("INVENTORY_SHORTFALL", f"line:{n}", n, None, spec.sku, line.wh, short, hours))
            if spec.discontinued:
                events.append(
                    (
                        "SUBSTITUTION_REQUEST",
                        f"line:{n}",
                        n,
                        None,
                        spec.sku,
                        line.wh,
                        [f"line {n} {spec.sku} is discontinued"],
                        rng.randint(2, 30),
                    )
                )
            if unlicensed:
                review = rng.randint(2, 6)
                delay = max(delay, review)
                events.append(
                    (
                        "COMPLIANCE_HOLD",
                        f"line:{n}",
                        n,
                        None,
                        spec.sku,
                        line.wh,
                        [
                            f"line {n} {spec.sku} export_controlled, ships {line.wh} ({world.country(line.wh)}) to "
                            f"{site.country}",
                            f"customer {acct.customer_id} has no export_license",
                        ],
                        review * 24,
                    )
                )
        if rng.random() < 0.02:
            n = rng.randint(1, len(lines))
            line = lines[n - 1]
            wrong = round(line.price * rng.choice((1.06, 1.12, 0.9, 0.85)))
            events.append(
                (
                    "PRICING_DISCREPANCY",
                    f"line:{n}",
                    n,
                    None,
                    items[line.item].sku,
                    line.wh,
                    [f"line {n} unit_price {money(wrong)} vs effective {money(line.price)}, corrected"],
                    rng.randint(1, 30),
                )
            )
        if rng.random() < 0.008:
            delay = max(delay, 1)
            events.append(
                (
                    "MASTER_DATA_INCOMPLETE",
                    "order",
                    None,
                    None,
                    None,
                    None,
                    ["ship_to_postal_code was empty at order entry"],
                    rng.randint(2, 24),
                )
            )
        processing = rng.choices((0, 1, 2), (55, 40, 5))[0]
        cancelled = rng.random() < 0.022 + (0.25 if delay > 10 else 0) + (
            0.1 if acct.overdue and delay else 0
        )
        ship_day = min(as_of, day + dt.timedelta(days=processing + delay))
        shipments: list[tuple] = []
        if not cancelled:
            shipments = self._ship(
                order_id, day, ship_day, processing, delay, acct, site, lines, promised, events
            )
        oid, cid = order_id, acct.customer_id
        order = (
            oid,
            cid,
            channel,
            day,
            requested,
            promised,
            "cancelled" if cancelled else "shipped",
            any(e[0] == "CREDIT_HOLD" for e in events),
            site.warehouse_id,
            site.street,
            site.city,
            site.postal,
            site.country,
            note,
            "USD",
            None if cancelled else ship_day,
        )
        rows = []
        for n, line in enumerate(lines, 1):
            sku, orig = (
                items[line.item].sku,
                (items[line.original].sku if line.original is not None else None),
            )
            if cancelled:
                rows.append((oid, n, sku, line.qty, line.price, line.wh, 0, 0, "cancelled", orig, 0))
            else:
                rows.append(
                    (
                        oid,
                        n,
                        sku,
                        line.qty,
                        line.price,
                        line.wh,
                        line.shipped,
                        0,
                        "shipped",
                        orig,
                        line.shipped,
                    )
                )
        return order, rows, shipments, self._exceptions(oid, cid, day, events)

    def _ship(
        self, oid, day, ship_day, processing, delay, acct, site, lines, promised, events
    ) -> list[tuple]:
        rng, sim, as_of = self.rng, self.sim, self.sim.world.as_of
        out = []
        for wh in dict.fromkeys(d.wh for d in lines):
            value = sum(d.value() for d in lines if d.wh == wh)
            express = rng.random() < (0.25 if acct.tier == "platinum" else 0.06) or (
                delay > 3 and rng.random() < 0.3
            )
            carrier = sim.carrier(rng, wh, avoid_disrupted=False)
            if carrier == DISRUPTED_CARRIER and ship_day >= self.disrupted_since and rng.random() < 0.5:
                carrier = sim.carrier(rng, wh, avoid_disrupted=True)
            transit = sim.transit(rng, wh, site.country, express)
            eta = ship_day + dt.timedelta(days=transit)
            late = rng.randint(1, 4) if rng.random() < (1 - ON_TIME[carrier]) * 1.2 else 0
            if carrier == DISRUPTED_CARRIER and ship_day >= self.disrupted_since and rng.random() < 0.7:
                late = max(late, rng.randint(2, 7))
            delivered = eta + dt.timedelta(days=late)
            sid = sim.shipment_id()
            done = delivered <= as_of
            out.append(
                (
                    sid,
                    oid,
                    carrier,
                    "express" if express else "ground",
                    "delivered" if done else "in_transit",
                    day + dt.timedelta(days=processing),
                    eta if done else delivered,  # the carrier's new eta
                    sim.freight(value, express, sim.world.country(wh) != site.country),
                    delivered if done else None,
                )
            )
            if late >= 2 and done:
                events.append(
                    (
                        "CARRIER_DISRUPTION",
                        f"shipment:{sid}",
                        None,
                        sid,
                        None,
                        wh,
                        [
                            f"shipment {sid} with {carrier} (on-time {ON_TIME[carrier]:.0%}) delivered {delivered}, "
                            f"eta {eta}, promised {promised}"
                        ],
                        late * 24,
                    )
                )
        return out

    def _exceptions(self, oid: str, cid: str, day: dt.date, events: list[tuple]) -> list[tuple]:
        if not events:
            return []
        rng = self.rng
        seen = dt.datetime.combine(day, dt.time(8), UTC) + dt.timedelta(minutes=rng.randint(0, 540))
        end = dt.datetime.combine(self.sim.world.as_of, dt.time(23), UTC)
        rows: list[tuple] = []
        patterns: dict[tuple[str, str, str], None] = {}  # insertion-ordered set
        for kind, key, line_no, sid, sku, wh, evidence, hours in events:
            resolved = min(end, seen + dt.timedelta(hours=hours, minutes=rng.randint(0, 59)))
            rows.append(
                exception_row(
                    oid,
                    kind,
                    key,
                    evidence,
                    line_no=line_no,
                    shipment_id=sid,
                    sku=sku,
                    customer_id=cid,
                    warehouse_id=wh,
                    seen=seen,
                    resolved=resolved,
                )
            )
            patterns[(kind, "customer", cid)] = None
            if sku:
                patterns[(kind, "sku", sku)] = None
        for kind, by, value in patterns:
            window = self.recent.setdefault((kind, by, value), deque())
            window.append((day, oid))
            while (day - window[0][0]).days > WINDOW_DAYS:
                window.popleft()
            if len(window) >= MIN_ORDERS:  # escalated once; a new pattern needs three fresh orders
                ids = [o for _, o in window]
                window.clear()
                listed = ", ".join(ids[-5:]) + (f" and {len(ids) - 5} earlier" if len(ids) > 5 else "")
                rows.append(
                    exception_row(
                        oid,
                        "RECURRING_ANOMALY",
                        f"{by}:{value}:{kind}",
                        [
                            f"{kind} on {len(window)} orders of {by} {value} within {WINDOW_DAYS} days: {listed}"
                        ],
                        sku=value if by == "sku" else None,
                        customer_id=cid,
                        seen=seen,
                        resolved=min(end, seen + dt.timedelta(hours=rng.randint(24, 120))),
                    )
                )
        return rows
