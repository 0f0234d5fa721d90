"""Items, suppliers and substitutes of the demo catalog, built from :mod:`tools.demo.catalog`.

Money is carried as integer cents until a writer formats it, so prices compare exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.demo.catalog import FAMILIES
from tools.demo.parties import SUPPLIER_WORDS, WAREHOUSES

__all__ = ["Sku", "SupplierSpec", "build_items", "build_substitutes", "build_suppliers"]

VARIANT_PRICE = (1.0, 1.3, 1.85)
SUPPLIERS_PER_FAMILY = (4, 3, 3, 4, 4, 3, 3, 4, 3, 3, 3, 3)  # 40 in all, in FAMILIES order
SUPPLIER_NOUNS = (
    "Fastener",
    "Bearing",
    "Drive",
    "Electric",
    "Safety",
    "Hydraulics",
    "Pneumatics",
    "Tooling",
    "Abrasives",
    "Sanitation",
    "Instruments",
    "Motion",
)
DISCONTINUED_SHARE = 0.015
US_MAIN_DCS = tuple(w.warehouse_id for w in WAREHOUSES if w.country == "US" and w.size >= 0.9)


@dataclass(slots=True)
class SupplierSpec:
    supplier_id: str
    name: str
    on_time_rate: float
    lead_time_days: int
    family: int


@dataclass(slots=True)
class Sku:
    idx: int
    sku: str
    family: int  # index into FAMILIES
    description: str
    list_cents: int
    cost_cents: int
    discontinued: bool
    controlled: bool
    supplier: int  # index into the suppliers list
    pop: float  # relative demand (sums to about 1 over the catalog)
    typical_qty: float
    group: int  # same product line and size: substitutable
    rank: int  # variant rank within the line, economy first
    stocked: tuple[str, ...]  # warehouses that carry it


def _price(cents: float) -> int:
    cents = max(50, round(cents))
    return cents // 10 * 10 + 9 if cents >= 1000 else cents  # $12.49, not $12.47


def build_suppliers(rng: random.Random) -> list[SupplierSpec]:
    out: list[SupplierSpec] = []
    firsts = rng.sample(SUPPLIER_WORDS[0], len(SUPPLIER_WORDS[0]))
    for fam, count in enumerate(SUPPLIERS_PER_FAMILY):
        low, high = FAMILIES[fam].lead_days
        for _ in range(count):
            n = len(out)
            name = f"{firsts[n % len(firsts)]} {SUPPLIER_NOUNS[fam]} {rng.choice(SUPPLIER_WORDS[1])}"
            # One supplier in five is unreliable: the latent driver of many procurement delays.
            on_time = rng.uniform(0.62, 0.82) if rng.random() < 0.2 else rng.uniform(0.86, 0.985)
            out.append(SupplierSpec(f"SUP-{2001 + n}", name, round(on_time, 3), rng.randint(low, high), fam))
    return out


def build_items(rng: random.Random, suppliers: list[SupplierSpec]) -> list[Sku]:
    items: list[Sku] = []
    group = 0
    for fam_idx, fam in enumerate(FAMILIES):
        combos = []
        for line in fam.lines:
            for s_idx, size in enumerate(line.sizes):
                for rank, variant in enumerate(line.variants):
                    controlled = bool(line.controlled and line.controlled(size, variant))
                    combos.append((line, s_idx, size, rank, variant, group + s_idx, controlled))
            group += len(line.sizes)
        if len(combos) > fam.target:  # drop uncontrolled combos at random, keep catalog order
            droppable = [i for i, c in enumerate(combos) if not c[6]]
            drop = set(rng.sample(droppable, len(combos) - fam.target))
            combos = [c for i, c in enumerate(combos) if i not in drop]
        numbers = sorted(rng.sample(range(10000, 100000), len(combos)))
        fam_suppliers = [i for i, s in enumerate(suppliers) if s.family == fam_idx]
        weights = [rng.paretovariate(1.4) for _ in combos]
        total = sum(weights)
        for (line, s_idx, size, rank, variant, grp, controlled), number, w in zip(
            combos, numbers, weights, strict=False
        ):
            list_cents = _price(
                line.base_price
                * 100
                * (1 + 0.16 * s_idx**0.9)
                * VARIANT_PRICE[min(rank, 2)]
                * rng.uniform(0.92, 1.08)
            )
            cost = round(list_cents * (1 - rng.uniform(*fam.margin)))
            typical = fam.typical_qty * rng.uniform(0.6, 1.6)
            if list_cents > 50_000:
                typical = min(typical, 1.5)
            label = variant if len(line.variants) > 1 or variant != "Standard" else ""
            parts = [line.name, size, label, line.pack if line.pack != "Each" else ""]
            items.append(
                Sku(
                    idx=len(items),
                    sku=f"{fam.prefix}-{number}",
                    family=fam_idx,
                    description=", ".join(p for p in parts if p),
                    list_cents=list_cents,
                    cost_cents=cost,
                    discontinued=False,
                    controlled=controlled,
                    supplier=rng.choice(fam_suppliers),
                    pop=fam.demand * w / total,
                    typical_qty=typical,
                    group=grp,
                    rank=rank,
                    stocked=(),
                )
            )
    _stock(rng, items)
    _discontinue(rng, items)
    return items


def _stock(rng: random.Random, items: list[Sku]) -> None:
    """Main DCs carry nearly everything, branches the faster movers; controlled items US DCs only."""
    ranked = sorted(items, key=lambda i: -i.pop)
    top = {i.idx for i in ranked[: len(ranked) // 3]}
    for item in items:
        stocked = []
        for wh in WAREHOUSES:
            if item.controlled:
                ok = wh.warehouse_id in US_MAIN_DCS and rng.random() < 0.9
            else:
                ok = rng.random() < min(0.99, wh.size + (0.25 if item.idx in top else 0.0))
            if ok:
                stocked.append(wh.warehouse_id)
        if not stocked:
            stocked.append(rng.choice(US_MAIN_DCS))
        item.stocked = tuple(stocked)


def _discontinue(rng: random.Random, items: list[Sku]) -> None:
    """About 1.5 % discontinued, each with an approved successor (same group, rank at least as high)."""
    best_rank: dict[int, int] = {}
    for item in items:
        best_rank[item.group] = max(best_rank.get(item.group, -1), item.rank)
    count: dict[int, int] = {}
    for item in items:
        count[item.group] = count.get(item.group, 0) + 1
    eligible = [i for i in items if not i.controlled and count[i.group] > 1 and i.rank < best_rank[i.group]]
    for item in rng.sample(eligible, min(len(eligible), round(DISCONTINUED_SHARE * len(items)))):
        item.discontinued = True


def build_substitutes(rng: random.Random, items: list[Sku]) -> list[tuple[int, int, bool]]:
    """(item, substitute, approved): same line and size; approved when the variant ranks at least as
    high, and for some economy equivalents one rank lower (cheaper: a low-risk substitution)."""
    by_group: dict[int, list[Sku]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    out = []
    for item in items:
        peers = [p for p in by_group[item.group] if p.idx != item.idx and not p.discontinued]
        chosen = []
        for peer in peers:
            # Equal or better is approved; engineering also signed off some economy equivalents.
            approved = peer.rank >= item.rank or (peer.rank == item.rank - 1 and rng.random() < 0.3)
            if (item.discontinued and approved) or rng.random() < (0.85 if approved else 0.5):
                chosen.append((item.idx, peer.idx, approved))
        out.extend(chosen[:3])
    return out
