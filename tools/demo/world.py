"""The master data of one generated data set, and its rows in the column order of the tables.

Each part draws from its own random stream (``Random(f"{seed}/{part}")``), so a change in one part
of the simulation does not reshuffle the others.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tools.demo.catalog import FAMILIES
from tools.demo.customers import Account, Contract, build_contracts, build_customers, customer_count
from tools.demo.items import Sku, SupplierSpec, build_items, build_substitutes, build_suppliers
from tools.demo.parties import CARRIERS, MAIN_DC, WAREHOUSES, Warehouse

__all__ = ["COLUMNS", "World", "build_world", "stream"]

# Column order of the rows every part yields (the writers insert exactly these columns).
COLUMNS: dict[str, tuple[str, ...]] = {
    "suppliers": ("supplier_id", "name", "on_time_rate", "lead_time_days", "email"),
    "items": (
        "sku",
        "description",
        "product_family",
        "list_price",
        "unit_cost",
        "status",
        "export_controlled",
        "supplier_id",
    ),
    "substitutes": ("sku", "substitute_sku", "approved"),
    "warehouses": ("warehouse_id", "name", "region", "country"),
    "carriers": ("carrier_id", "name", "status", "on_time_rate"),
    "customers": (
        "customer_id",
        "name",
        "tier",
        "credit_limit",
        "open_balance",
        "overdue_balance",
        "credit_hold",
        "allow_substitutions",
        "allow_partial_shipments",
        "export_license",
        "country",
        "email",
        "language",
    ),
    "price_contracts": ("customer_id", "sku", "valid_from", "contract_price", "valid_to"),
    "purchase_orders": (
        "po_id",
        "supplier_id",
        "sku",
        "warehouse_id",
        "qty",
        "expected_date",
        "status",
        "expedite_requested",
        "order_date",
    ),
    "orders": (
        "order_id",
        "customer_id",
        "channel",
        "order_date",
        "requested_date",
        "promised_date",
        "status",
        "credit_released",
        "warehouse_id",
        "ship_to_street",
        "ship_to_city",
        "ship_to_postal_code",
        "ship_to_country",
        "customer_note",
        "currency",
        "shipped_date",
    ),
    "order_lines": (
        "order_id",
        "line_no",
        "sku",
        "qty",
        "unit_price",
        "warehouse_id",
        "allocated_qty",
        "backorder_qty",
        "status",
        "original_sku",
        "shipped_qty",
    ),
    "shipments": (
        "shipment_id",
        "order_id",
        "carrier_id",
        "service_level",
        "status",
        "planned_ship_date",
        "eta",
        "freight_cost",
        "delivered_date",
    ),
    "exceptions": (
        "order_id",
        "type",
        "instance_key",
        "line_no",
        "shipment_id",
        "sku",
        "customer_id",
        "warehouse_id",
        "evidence",
        "evidence_hash",
        "status",
        "assigned_role",
        "first_seen_at",
        "detected_at",
        "resolved_at",
    ),
    "inventory": ("sku", "warehouse_id", "on_hand", "allocated"),
    "dataset_meta": ("key", "value"),
}


def stream(seed: int, part: str) -> random.Random:
    """An independent, reproducible random stream for one part of the simulation."""
    return random.Random(f"{seed}/{part}")


@dataclass
class World:
    seed: int
    as_of: dt.date
    orders: int
    suppliers: list[SupplierSpec]
    items: list[Sku]
    substitutes: list[tuple[int, int, bool]]
    customers: list[Account]
    contracts: dict[tuple[int, int], tuple[Contract, ...]]
    warehouses: tuple[Warehouse, ...] = WAREHOUSES
    wh: dict[str, Warehouse] = field(default_factory=dict)
    subs_of: dict[int, list[tuple[int, bool]]] = field(default_factory=dict)
    cum_all: list[float] = field(default_factory=list)  # demand weights over every item (history)
    active: list[int] = field(default_factory=list)  # items that may be sold now
    cum_active: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wh = {w.warehouse_id: w for w in self.warehouses}
        for sku, sub, approved in self.substitutes:
            self.subs_of.setdefault(sku, []).append((sub, approved))
        self.cum_all = list(itertools.accumulate(i.pop for i in self.items))
        self.active = [i.idx for i in self.items if not i.discontinued]
        self.cum_active = list(itertools.accumulate(self.items[i].pop for i in self.active))

    def country(self, warehouse_id: str) -> str:
        return self.wh[warehouse_id].country

    def source(self, item: Sku, home: str) -> str:
        """The warehouse a line ships from: home if it stocks the item, else the region's DC."""
        if home in item.stocked:
            return home
        main = MAIN_DC[self.wh[home].region]
        if main in item.stocked:
            return main
        region = self.wh[home].region
        return next((w for w in item.stocked if self.wh[w].region == region), item.stocked[0])

    def effective_cents(self, cust: int, item: int, day: dt.date) -> int:
        """domain.md §2: the contract valid on ``day`` with the latest valid_from, else list price."""
        price = None
        for start, end, cents in self.contracts.get((cust, item), ()):
            if start <= day and (end is None or day <= end):
                price = cents
        return self.items[item].list_cents if price is None else price

    # -- rows ----------------------------------------------------------------------------------

    def master_rows(self) -> Iterator[tuple[str, list[tuple]]]:
        """(table, rows) of the master data, parents first."""
        items = self.items
        yield (
            "suppliers",
            [
                (s.supplier_id, s.name, s.on_time_rate, s.lead_time_days, _supplier_email(s.name))
                for s in self.suppliers
            ],
        )
        yield (
            "items",
            [
                (
                    i.sku,
                    i.description,
                    FAMILIES[i.family].name,
                    i.list_cents,
                    i.cost_cents,
                    "discontinued" if i.discontinued else "active",
                    i.controlled,
                    self.suppliers[i.supplier].supplier_id,
                )
                for i in items
            ],
        )
        yield "substitutes", [(items[a].sku, items[b].sku, ok) for a, b, ok in self.substitutes]
        yield "warehouses", [(w.warehouse_id, w.name, w.region, w.country) for w in self.warehouses]
        yield "carriers", [(c.carrier_id, c.name, c.status, c.on_time_rate) for c in CARRIERS]
        yield (
            "customers",
            [
                (
                    c.customer_id,
                    c.name,
                    c.tier,
                    c.credit_limit,
                    c.open_balance,
                    c.overdue,
                    c.credit_hold,
                    c.allow_subs,
                    c.allow_partial,
                    c.export_license,
                    c.country,
                    c.email,
                    _language(c),
                )
                for c in self.customers
            ],
        )
        yield (
            "price_contracts",
            [
                (self.customers[c].customer_id, items[i].sku, start, cents, end)
                for (c, i), rows in self.contracts.items()
                for start, end, cents in rows
            ],
        )


def _language(account: Account) -> str | None:
    """The language of correspondence (SOP-CS-001 §3.5): Spanish for Mexico, French for Québec."""
    if account.country == "MX":
        return "es"
    if account.country == "CA" and any(site.city.endswith(", QC") for site in account.sites):
        return "fr"
    return None


def _supplier_email(name: str) -> str:
    return "orders@" + (re.sub(r"[^a-z0-9]+", "", name.lower())[:24] or "supplier") + ".example"


def build_world(seed: int, as_of: dt.date, orders: int) -> World:
    rng = stream(seed, "master")
    suppliers = build_suppliers(rng)
    items = build_items(rng, suppliers)
    substitutes = build_substitutes(rng, items)
    customers = build_customers(rng, items, customer_count(orders))
    contracts = build_contracts(rng, customers, items, as_of)
    return World(seed, as_of, orders, suppliers, items, substitutes, customers, contracts)
