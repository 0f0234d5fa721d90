"""Customers of the demo distributor (accounts, ship-to sites, buying habits) and their price contracts.

Most accounts are in good standing: within credit, nothing overdue, no hold. A few are in credit
trouble (``trouble`` says how); only they raise credit holds on the open book.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from dataclasses import dataclass, field

from tools.demo.catalog import FAMILIES
from tools.demo.items import Sku
from tools.demo.parties import (
    CHANNELS,
    CITIES,
    COMPANY_WORDS,
    EMAIL_MAILBOXES,
    MX_COMPANY_WORDS,
    STREETS,
    SUFFIXES,
    City,
)

__all__ = ["Account", "Contract", "Site", "build_contracts", "build_customers", "customer_count"]

TIERS = (("platinum", 0.06), ("gold", 0.22), ("standard", 0.72))
CREDIT = {"platinum": (250_000, 1_000_000), "gold": (75_000, 300_000), "standard": (15_000, 90_000)}
SIZE = {"platinum": (2.0, 3.5), "gold": (1.2, 2.2), "standard": (0.5, 1.3)}
TROUBLE_SHARE = 0.05
LICENSE = {"US": 0.12, "CA": 0.35, "MX": 0.3}


def customer_count(orders: int) -> int:
    """About 300 accounts for 10,000 orders, growing with the square root of the volume."""
    return max(24, min(3000, round(300 * (orders / 10_000) ** 0.5)))


@dataclass(slots=True)
class Site:
    street: str
    city: str
    postal: str
    country: str
    warehouse_id: str  # the warehouse that serves it


@dataclass(slots=True)
class Account:
    idx: int
    customer_id: str
    name: str
    tier: str
    credit_limit: int  # cents
    open_balance: int
    overdue: int
    credit_hold: bool
    allow_subs: bool
    allow_partial: bool
    export_license: bool
    country: str
    email: str
    sites: list[Site]
    activity: float  # relative order frequency
    size: float  # multiplies line quantities
    basket: list[int] = field(default_factory=list)  # item indexes it usually buys
    channels: tuple[tuple[str, float], ...] = ()
    trouble: str | None = None  # credit trouble: "hold", "overdue" or "limit"

    @property
    def headroom(self) -> int:
        return self.credit_limit - self.open_balance


def _postal(rng: random.Random, city: City) -> str:
    if city.country == "CA":
        letters = "ABCEGHJKLMNPRSTVWXYZ"
        return f"{city.postal} {rng.randint(0, 9)}{rng.choice(letters)}{rng.randint(0, 9)}"
    return city.postal + "".join(str(rng.randint(0, 9)) for _ in range(5 - len(city.postal)))


def _site(rng: random.Random, city: City) -> Site:
    street = f"{rng.randint(100, 9899)} {rng.choice(STREETS[city.country])}"
    if city.country == "MX":
        street = f"{rng.choice(STREETS['MX'])} {rng.randint(100, 3999)}"
    return Site(street, f"{city.city}, {city.state}", _postal(rng, city), city.country, city.warehouse_id)


def _name(rng: random.Random, country: str, used: set[str]) -> str:
    for _ in range(50):
        words = MX_COMPANY_WORDS if country == "MX" else COMPANY_WORDS
        name = f"{rng.choice(words[0])} {rng.choice(words[1])} {rng.choice(SUFFIXES[country])}"
        if name not in used:
            used.add(name)
            return name
    name = f"{name} #{len(used)}"
    used.add(name)
    return name


def _email(rng: random.Random, name: str, country: str, number: int) -> str:
    for suffix in SUFFIXES[country]:
        if name.endswith(" " + suffix):
            name = name[: -len(suffix) - 1]
    slug = re.sub(r"[^a-z0-9]+", "", name.lower())[:24] or "customer"
    return f"{rng.choice(EMAIL_MAILBOXES)}@{slug}{number % 100:02d}.example"


def build_customers(rng: random.Random, items: list[Sku], count: int) -> list[Account]:
    cities, city_w = CITIES, [c.weight for c in CITIES]
    fam_w = [f.demand for f in FAMILIES]
    used: set[str] = set()
    out: list[Account] = []
    for i in range(count):
        city = rng.choices(cities, city_w)[0]
        tier = rng.choices([t for t, _ in TIERS], [w for _, w in TIERS])[0]
        size = rng.uniform(*SIZE[tier])
        low, high = CREDIT[tier]
        limit = round(rng.uniform(low, high) * size / SIZE[tier][1] / 5000) * 5000 * 100 or 1_500_000
        name = _name(rng, city.country, used)
        sites = [_site(rng, city)]
        if rng.random() < 0.35:
            near = [c for c in cities if c.warehouse_id == city.warehouse_id and c.country == city.country]
            sites.append(_site(rng, rng.choice(near)))
        if (
            city.country == "US"
            and city.warehouse_id in ("WH-DFW", "WH-HOU", "WH-DET")
            and rng.random() < 0.1
        ):
            abroad = [c for c in cities if c.country != "US" and c.warehouse_id in ("WH-MTY", "WH-TOR")]
            plant = _site(rng, rng.choice(abroad))
            plant.warehouse_id = city.warehouse_id  # served from home across the border
            sites.append(plant)
        acct = Account(
            idx=i,
            customer_id=f"C-{10001 + i}",
            name=name,
            tier=tier,
            credit_limit=limit,
            open_balance=round(limit * rng.uniform(0.05, 0.7)),
            overdue=0,
            credit_hold=False,
            allow_subs=rng.random() < (0.75 if tier == "platinum" else 0.62),
            allow_partial=rng.random() < 0.7,
            export_license=rng.random() < LICENSE[city.country],
            country=city.country,
            email=_email(rng, name, city.country, i),
            sites=sites,
            activity=size * rng.uniform(0.6, 1.4),
            size=size,
            channels=CHANNELS[tier],
        )
        families = set(rng.choices(range(len(FAMILIES)), fam_w, k=rng.randint(3, 7)))
        pool = [it for it in items if it.family in families and not it.discontinued]
        if not acct.export_license and any(s.country != "US" for s in sites):
            pool = [it for it in pool if not it.controlled]
        k = min(len(pool), int(12 + 22 * size))
        basket: list[int] = []
        seen: set[int] = set()
        cum = list(itertools.accumulate(it.pop for it in pool))
        while len(basket) < k:
            it = rng.choices(pool, cum_weights=cum)[0]
            if it.idx not in seen:
                seen.add(it.idx)
                basket.append(it.idx)
        acct.basket = basket
        out.append(acct)
    _trouble(rng, out)
    return out


def _trouble(rng: random.Random, accounts: list[Account]) -> None:
    """A few accounts in credit trouble: on hold, overdue, or at/over their limit."""
    n = max(4, round(TROUBLE_SHARE * len(accounts)))
    # At least one of them could also break export control (no license, a ship-to abroad).
    abroad = [a for a in accounts if not a.export_license and any(s.country != "US" for s in a.sites)]
    first = [rng.choice(abroad)] if abroad else []
    rest = [a for a in accounts if not first or a.idx != first[0].idx]
    for k, acct in enumerate(first + rng.sample(rest, n - len(first))):
        kind = ("overdue", "limit", "hold", "overdue", "limit")[k % 5]
        acct.trouble = kind
        if kind == "overdue":
            acct.open_balance = round(acct.credit_limit * rng.uniform(0.55, 0.95))
            acct.overdue = round(acct.open_balance * rng.uniform(0.05, 0.3))
        elif kind == "limit":
            acct.open_balance = round(acct.credit_limit * rng.uniform(1.0, 1.05))  # any order goes over
        else:
            acct.credit_hold = True
            acct.open_balance = round(acct.credit_limit * rng.uniform(0.3, 0.9))
            if rng.random() < 0.4:
                acct.overdue = round(acct.open_balance * rng.uniform(0.1, 0.4))


Contract = tuple[dt.date, dt.date | None, int]  # valid_from, valid_to (None: open-ended), price cents


def _contract_price(rng: random.Random, item: Sku) -> int:
    return max(round(item.list_cents * rng.uniform(0.78, 0.94)), round(item.cost_cents * 1.06))


def build_contracts(
    rng: random.Random, accounts: list[Account], items: list[Sku], as_of: dt.date
) -> dict[tuple[int, int], tuple[Contract, ...]]:
    """Contracts of gold and platinum accounts: current, expired, renewed, overlapping, future.

    Where two overlap, the latest valid_from wins (domain.md §2); the tuples are sorted by it.
    """
    day = dt.timedelta
    out: dict[tuple[int, int], tuple[Contract, ...]] = {}
    for acct in accounts:
        if acct.tier == "standard":
            continue
        skus = rng.sample(acct.basket, max(1, round(len(acct.basket) * rng.uniform(0.3, 0.6))))
        for idx in skus:
            item, price = items[idx], _contract_price(rng, items[idx])
            kind = rng.choices(("current", "renewed", "overlap", "future", "expired"), (65, 12, 10, 8, 5))[0]
            if kind == "current":
                start = as_of - day(rng.randint(20, 330))
                end = None if rng.random() < 0.1 else start + day(rng.choice((364, 729)))
                rows = [(start, end, price)]
            elif kind == "renewed":
                end0 = as_of - day(rng.randint(15, 60))
                start1 = end0 + day(rng.choice((1, 1, 1, rng.randint(2, 20))))  # a lapse sometimes
                rows = [
                    (end0 - day(364), end0, price),
                    (start1, start1 + day(364), round(price * rng.uniform(1.02, 1.08))),
                ]
            elif kind == "overlap":
                start0, start1 = as_of - day(rng.randint(200, 400)), as_of - day(rng.randint(10, 120))
                rows = [
                    (start0, start0 + day(729), price),
                    (
                        start1,
                        start1 + day(364),
                        max(round(price * rng.uniform(0.9, 1.06)), round(item.cost_cents * 1.06)),
                    ),
                ]
            elif kind == "future":
                start0 = as_of - day(rng.randint(200, 330))
                end0 = as_of + day(rng.randint(5, 40))
                rows = [
                    (start0, end0, price),
                    (end0 + day(1), end0 + day(365), round(price * rng.uniform(1.03, 1.06))),
                ]
            else:
                end0 = as_of - day(rng.randint(100, 200))
                rows = [(end0 - day(364), end0, price)]
            out[(acct.idx, idx)] = tuple(rows)
    return out
