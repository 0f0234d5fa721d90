"""Sites: which orders, customers and stock a user scoped to regions or warehouses may see.

The one home of the data-segmentation rule. A user's :class:`Scope` names regions and/or
warehouses (``copilot users scope``); an empty scope sees everything. The rule:

- an **order** is in scope when the warehouse it is booked at (``orders.warehouse_id``, the site
  that owns the customer promise) is one of the scope's warehouses, or lies in one of its regions.
  An order without a warehouse belongs to no site: only unscoped users see it. Lines shipping from
  another warehouse do not move the order: the owning site decides for the whole order;
- a **warehouse**'s stock and purchase orders are in scope when the warehouse is;
- a **customer** is in scope when at least one of its orders is.

Out of scope is answered exactly as unknown (:class:`~tools.errors.NotFound`, "order not found"),
so a scoped user cannot learn that another site's order exists.

The scope travels with the database session (``session.info["scope"]``): :func:`scoped` turns a
session factory into one whose sessions carry it, and every reader, list and triage entry asks
:func:`scope_of` the session it was given — so the API, the panel, chat tools and the CLI's
``--as`` share one enforcement. A session without a scope is unrestricted (the worker, the
evals, unscoped users).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session, sessionmaker

from tools.errors import ToolError
from tools.models import Order, Warehouse

__all__ = [
    "ALL",
    "Scope",
    "check_scope_names",
    "customer_visible",
    "factory_scope",
    "order_condition",
    "order_visible",
    "orders_where",
    "scope_of",
    "scoped",
    "unscoped",
    "visible_orders",
    "warehouse_condition",
    "warehouse_ids",
    "warehouse_visible",
]

_INFO_KEY = "scope"


@dataclass(frozen=True)
class Scope:
    """Regions and warehouses a user may see; both empty: everything."""

    regions: frozenset[str] = frozenset()
    warehouses: frozenset[str] = frozenset()

    @property
    def unrestricted(self) -> bool:
        return not self.regions and not self.warehouses

    @classmethod
    def of(cls, regions: Iterable[str] = (), warehouses: Iterable[str] = ()) -> Scope:
        return cls(
            frozenset(r.strip() for r in regions if r.strip()),
            frozenset(w.strip() for w in warehouses if w.strip()),
        )

    def describe(self) -> str:
        if self.unrestricted:
            return "all sites"
        parts = [f"region {r}" for r in sorted(self.regions)] + [
            f"warehouse {w}" for w in sorted(self.warehouses)
        ]
        return ", ".join(parts)

    def as_payload(self) -> dict[str, list[str]]:
        return {"regions": sorted(self.regions), "warehouses": sorted(self.warehouses)}


ALL = Scope()


def scoped(factory: sessionmaker[Session], scope: Scope | None) -> sessionmaker[Session]:
    """``factory`` itself for an unrestricted scope, else a factory whose sessions carry ``scope``."""
    if scope is None or scope.unrestricted:
        return factory
    info = {**(factory.kw.get("info") or {}), _INFO_KEY: scope}
    return sessionmaker(class_=factory.class_, **{**factory.kw, "info": info})


def unscoped(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """``factory`` without a scope: for the deterministic steps behind a door (guard, execution,
    impact) that must see every fact whatever the asking user may see."""
    info = factory.kw.get("info") or {}
    if _INFO_KEY not in info:
        return factory
    rest = {k: v for k, v in info.items() if k != _INFO_KEY}
    return sessionmaker(class_=factory.class_, **{**factory.kw, "info": rest})


def factory_scope(factory: sessionmaker[Session]) -> Scope:
    """The scope the sessions of ``factory`` carry (:data:`ALL` when none)."""
    scope = (factory.kw.get("info") or {}).get(_INFO_KEY)
    return scope if isinstance(scope, Scope) else ALL


def scope_of(session: Session) -> Scope:
    """The scope the session was opened with (:data:`ALL` when none)."""
    scope = session.info.get(_INFO_KEY)
    return scope if isinstance(scope, Scope) else ALL


def warehouse_ids(session: Session, scope: Scope | None = None) -> frozenset[str] | None:
    """The warehouse ids in scope (the named ones plus those of the named regions); None: all."""
    scope = scope_of(session) if scope is None else scope
    if scope.unrestricted:
        return None
    cache: dict[Scope, frozenset[str]] = session.info.setdefault("scope_warehouses", {})
    if scope not in cache:
        in_regions = (
            set(
                session.scalars(
                    select(Warehouse.warehouse_id).where(Warehouse.region.in_(sorted(scope.regions)))
                )
            )
            if scope.regions
            else set()
        )
        cache[scope] = frozenset(in_regions | set(scope.warehouses))
    return cache[scope]


def warehouse_condition(session: Session, column: Any) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose warehouse ``column`` is in the session's scope."""
    ids = warehouse_ids(session)
    if ids is None:
        return true()
    return column.in_(sorted(ids)) if ids else false()


def orders_where(session: Session) -> ColumnElement[bool]:
    """A WHERE clause on ``orders`` keeping the orders in the session's scope."""
    return warehouse_condition(session, Order.warehouse_id)


def order_condition(session: Session, order_id_column: Any) -> ColumnElement[bool]:
    """A WHERE clause keeping rows whose ``order_id_column`` names an order in scope."""
    if scope_of(session).unrestricted:
        return true()
    return order_id_column.in_(select(Order.order_id).where(orders_where(session)))


def order_visible(session: Session, order_id: str | None) -> bool:
    """Whether ``order_id`` is an order in the session's scope (an unrestricted session: always;
    the caller asks whether it exists). For a scoped session an unknown or empty id is False."""
    if scope_of(session).unrestricted:
        return True
    if not order_id:
        return False
    found = session.scalar(select(Order.order_id).where(Order.order_id == order_id, orders_where(session)))
    return found is not None


def visible_orders(session: Session, order_ids: Iterable[str]) -> set[str]:
    """The ids of ``order_ids`` in scope (existence is the caller's question)."""
    ids = {o for o in order_ids if o}
    if scope_of(session).unrestricted or not ids:
        return ids
    out: set[str] = set()
    part: list[str] = []
    for oid in sorted(ids):
        part.append(oid)
        if len(part) == 500:
            out.update(
                session.scalars(select(Order.order_id).where(Order.order_id.in_(part), orders_where(session)))
            )
            part = []
    if part:
        out.update(
            session.scalars(select(Order.order_id).where(Order.order_id.in_(part), orders_where(session)))
        )
    return out


def warehouse_visible(session: Session, warehouse_id: str | None) -> bool:
    ids = warehouse_ids(session)
    return ids is None or (warehouse_id is not None and warehouse_id in ids)


def customer_visible(session: Session, customer_id: str | None) -> bool:
    """Whether the customer has an order in scope (always, for an unrestricted session)."""
    if scope_of(session).unrestricted:
        return True
    if not customer_id:
        return False
    hit = session.scalar(
        select(Order.order_id).where(Order.customer_id == customer_id, orders_where(session)).limit(1)
    )
    return hit is not None


def check_scope_names(session: Session, scope: Scope) -> None:
    """Refuse a scope naming a region or warehouse the warehouses table does not have."""
    regions = set(session.scalars(select(Warehouse.region).distinct()))
    warehouses = set(session.scalars(select(Warehouse.warehouse_id)))
    unknown = [f"region {r!r}" for r in sorted(scope.regions - regions)]
    unknown += [f"warehouse {w!r}" for w in sorted(scope.warehouses - warehouses)]
    if unknown:
        known = ", ".join(sorted(r for r in regions if r)) or "none"
        some = ", ".join(sorted(warehouses)[:20]) + (", ..." if len(warehouses) > 20 else "")
        raise ToolError(f"unknown {', '.join(unknown)} (regions: {known}; warehouses: {some or 'none'})")
