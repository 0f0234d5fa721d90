"""SQLAlchemy models of the ERP/WMS/TMS snapshot and of the copilot's operational tables.

Table and column names follow ../shared/domain.md §1 exactly: they are a contract shared with the
eval-case format, the API and the policy file. Columns marked "added" are ours; nothing named there
is renamed or dropped.

Conventions:
- money is ``Numeric(14, 2)`` (a ``Decimal`` in Python), quantities are integers, rates are floats
  in [0, 1], dates are ``Date`` and timestamps are timezone-aware ``DateTime``;
- every non-key column has a default (false, 0, empty), so an eval fixture may leave it out;
- string enumerations are plain strings checked by a ``CHECK`` constraint, so a bad value is
  refused by the database itself on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ENUMS",
    "ERP_TABLES",
    "PRESERVED_ON_RESET",
    "ActionRequest",
    "Approval",
    "AuditAnchor",
    "AuditEvent",
    "Base",
    "Carrier",
    "Customer",
    "DatasetMeta",
    "EventInbox",
    "ExceptionRecord",
    "Execution",
    "Inventory",
    "Item",
    "Notice",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "PriceContract",
    "PurchaseOrder",
    "Shipment",
    "StoredExplanation",
    "Substitute",
    "Supplier",
    "User",
    "Warehouse",
]

# Deterministic constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The enumerations of domain.md §1, plus the operational ones. Used by CHECK constraints, the
# fixture loader and the demo-data generator.
ENUMS: dict[str, tuple[str, ...]] = {
    "customer_tier": ("platinum", "gold", "standard"),
    "item_status": ("active", "discontinued"),
    "carrier_status": ("ok", "constrained", "disrupted"),
    "po_status": ("open", "received", "cancelled"),
    "order_status": ("open", "held", "released", "shipped", "cancelled"),
    "line_status": ("open", "allocated", "backordered", "shipped", "cancelled"),
    "service_level": ("ground", "express"),
    "shipment_status": ("planned", "booked", "in_transit", "delayed", "delivered"),
    "exception_status": ("open", "resolved"),
    "request_status": (
        "proposed",
        "pending_approval",
        "approved",
        "rejected",
        "blocked",
        "executed",
        "failed",
    ),
    "decision": ("approve", "reject", "edit"),
    "event_status": ("received", "applied", "failed"),
    "message_kind": ("customer", "supplier"),
    "notice_status": ("due", "drafted", "failed"),
    "outbox_status": ("queued", "sending", "sent", "failed"),
    "scope_kind": ("region", "warehouse"),
}

Money = Numeric(14, 2)
Json = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, enum: str) -> CheckConstraint:
    values = ", ".join(f"'{v}'" for v in ENUMS[enum])
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


def _money(**kw: Any) -> Mapped[Decimal]:
    return mapped_column(Money, nullable=False, default=Decimal("0"), server_default=text("0"), **kw)


def _flag() -> Mapped[bool]:
    return mapped_column(Boolean, nullable=False, default=False, server_default=false())


def _qty() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, default=0, server_default=text("0"))


def _rate() -> Mapped[float]:
    return mapped_column(Float, nullable=False, default=0.0, server_default=text("0"))


def _str(length: int = 120) -> Mapped[str | None]:
    return mapped_column(String(length), nullable=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    if TYPE_CHECKING:
        # Every model here is declared with __tablename__, so it maps a Table (SQLAlchemy types the
        # attribute as any FromClause, which has no primary_key.columns or insert()).
        __table__: ClassVar[Table]


# --------------------------------------------------------------------------------------------
# The ERP/WMS/TMS snapshot (domain.md §1)
# --------------------------------------------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (_in("tier", "customer_tier"),)

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = _str(200)
    tier: Mapped[str] = mapped_column(
        String(16), nullable=False, default="standard", server_default="standard"
    )
    credit_limit: Mapped[Decimal] = _money()
    open_balance: Mapped[Decimal] = _money()
    overdue_balance: Mapped[Decimal] = _money()
    credit_hold: Mapped[bool] = _flag()
    allow_substitutions: Mapped[bool] = _flag()
    allow_partial_shipments: Mapped[bool] = _flag()
    export_license: Mapped[bool] = _flag()
    country: Mapped[str | None] = _str(2)
    email: Mapped[str | None] = _str(200)
    # added: the language customer notices are written in (e.g. "es", "fr-CA"); empty means English
    language: Mapped[str | None] = _str(16)


class Supplier(Base):
    __tablename__ = "suppliers"

    supplier_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = _str(200)
    on_time_rate: Mapped[float] = _rate()
    lead_time_days: Mapped[int] = _qty()
    # added: where supplier requests (expedite a purchase order) are sent
    email: Mapped[str | None] = _str(200)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (_in("status", "item_status"),)

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str | None] = _str(200)
    product_family: Mapped[str | None] = _str(64)
    list_price: Mapped[Decimal] = _money()
    unit_cost: Mapped[Decimal] = _money()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    export_controlled: Mapped[bool] = _flag()
    # added: the usual supplier of the item (KPIs by supplier; risk features)
    supplier_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("suppliers.supplier_id"), nullable=True
    )


class Substitute(Base):
    __tablename__ = "substitutes"

    sku: Mapped[str] = mapped_column(String(32), ForeignKey("items.sku"), primary_key=True)
    substitute_sku: Mapped[str] = mapped_column(String(32), ForeignKey("items.sku"), primary_key=True)
    approved: Mapped[bool] = _flag()


class Warehouse(Base):
    __tablename__ = "warehouses"

    warehouse_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = _str(200)
    region: Mapped[str | None] = _str(64)
    country: Mapped[str | None] = _str(2)


class Inventory(Base):
    __tablename__ = "inventory"
    __table_args__ = (Index("ix_inventory_warehouse_sku", "warehouse_id", "sku"),)

    sku: Mapped[str] = mapped_column(String(32), ForeignKey("items.sku"), primary_key=True)
    warehouse_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("warehouses.warehouse_id"), primary_key=True
    )
    on_hand: Mapped[int] = _qty()
    allocated: Mapped[int] = _qty()


class PriceContract(Base):
    __tablename__ = "price_contracts"

    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.customer_id"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(32), ForeignKey("items.sku"), primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    contract_price: Mapped[Decimal] = _money()
    valid_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Carrier(Base):
    __tablename__ = "carriers"
    __table_args__ = (_in("status", "carrier_status"),)

    carrier_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = _str(200)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ok", server_default="ok")
    on_time_rate: Mapped[float] = _rate()


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        _in("status", "po_status"),
        # What triage reads: the earliest open PO for a SKU at a warehouse.
        Index("ix_purchase_orders_sku_wh_status_expected", "sku", "warehouse_id", "status", "expected_date"),
    )

    po_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    supplier_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("suppliers.supplier_id"), nullable=True
    )
    sku: Mapped[str | None] = mapped_column(String(32), ForeignKey("items.sku"), nullable=True)
    warehouse_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("warehouses.warehouse_id"), nullable=True
    )
    qty: Mapped[int] = _qty()
    expected_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    expedite_requested: Mapped[bool] = _flag()
    # added: when the PO was placed (procurement KPIs, risk features)
    order_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        _in("status", "order_status"),
        # Recurrence (same customer within 30 days) and "orders of a customer".
        Index("ix_orders_customer_order_date", "customer_id", "order_date"),
        Index("ix_orders_status_order_date", "status", "order_date"),
        Index("ix_orders_warehouse_id", "warehouse_id"),  # added: site scoping (tools.sites)
    )

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("customers.customer_id"), nullable=True
    )
    channel: Mapped[str | None] = _str(32)
    order_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    requested_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    promised_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    credit_released: Mapped[bool] = _flag()
    warehouse_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("warehouses.warehouse_id"), nullable=True
    )
    ship_to_street: Mapped[str | None] = _str(200)
    ship_to_city: Mapped[str | None] = _str(120)
    ship_to_postal_code: Mapped[str | None] = _str(20)
    ship_to_country: Mapped[str | None] = _str(2)
    customer_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # added
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD", server_default="USD")
    shipped_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", lazy="selectin"
    )
    customer: Mapped[Customer | None] = relationship(lazy="joined")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        _in("status", "line_status"),
        # Recurrence by SKU and "orders containing a SKU".
        Index("ix_order_lines_sku", "sku"),
        # Triage's recurrence candidates: the open lines of a SKU, without reading its shipped history.
        Index("ix_order_lines_sku_status", "sku", "status", "order_id"),
        # Allocation donors (domain.md §6): the lines holding a SKU at one warehouse.
        Index("ix_order_lines_sku_warehouse", "sku", "warehouse_id"),
    )

    order_id: Mapped[str] = mapped_column(String(32), ForeignKey("orders.order_id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str | None] = mapped_column(String(32), ForeignKey("items.sku"), nullable=True)
    qty: Mapped[int] = _qty()
    unit_price: Mapped[Decimal] = _money()
    warehouse_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("warehouses.warehouse_id"), nullable=True
    )
    allocated_qty: Mapped[int] = _qty()
    backorder_qty: Mapped[int] = _qty()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    original_sku: Mapped[str | None] = mapped_column(String(32), ForeignKey("items.sku"), nullable=True)
    # added: quantity actually shipped (fill rate, OTIF)
    shipped_qty: Mapped[int] = _qty()

    order: Mapped[Order] = relationship(back_populates="lines")


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (
        _in("service_level", "service_level"),
        _in("status", "shipment_status"),
        Index("ix_shipments_order_id", "order_id"),
        Index("ix_shipments_carrier_status", "carrier_id", "status"),
    )

    shipment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("orders.order_id"), nullable=True)
    carrier_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("carriers.carrier_id"), nullable=True
    )
    service_level: Mapped[str] = mapped_column(
        String(16), nullable=False, default="ground", server_default="ground"
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="planned", server_default="planned"
    )
    planned_ship_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    eta: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    freight_cost: Mapped[Decimal] = _money()
    # added
    delivered_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


# The snapshot tables in dependency order (parents first): the order loaders insert in.
ERP_TABLES: tuple[type[Base], ...] = (
    Customer,
    Supplier,
    Item,
    Substitute,
    Warehouse,
    Inventory,
    PriceContract,
    Carrier,
    PurchaseOrder,
    Order,
    OrderLine,
    Shipment,
)


# --------------------------------------------------------------------------------------------
# Operational tables: what the copilot itself records
# --------------------------------------------------------------------------------------------


class ExceptionRecord(Base):
    """One exception instance of one order: (order, type, line or shipment), with its evidence.

    ``instance_key`` identifies the instance within the order (``line:3``, ``shipment:SH-1``,
    ``order``); re-triaging an unchanged order updates nothing. ``first_seen_at`` never moves, so
    aging is ``now - first_seen_at``; ``resolved_at`` is set when triage no longer finds it.
    """

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("order_id", "type", "instance_key"),
        _in("status", "exception_status"),
        Index("ix_exceptions_status_type", "status", "type"),
        # recurrence counted from the open rows (agent.triage.detection.detect_recorded): an index
        # range per (type, sku) or (type, customer) that skips the resolved history
        Index("ix_exceptions_type_sku_status", "type", "sku", "status", "order_id"),
        Index("ix_exceptions_type_customer_status", "type", "customer_id", "status", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(32), ForeignKey("orders.order_id"), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    instance_key: Mapped[str] = mapped_column(String(64), nullable=False, default="order")
    line_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shipment_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Denormalised for KPIs and recurrence (exception frequency by sku, customer, warehouse).
    sku: Mapped[str | None] = mapped_column(String(32), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    warehouse_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evidence: Mapped[Any] = mapped_column(Json, nullable=False, default=list)
    evidence_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    assigned_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # added: the work queue — who works on it now, and where a breached SLA escalated it
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalated_to: Mapped[str | None] = mapped_column(String(32), nullable=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ActionRequest(Base):
    """A proposed state-changing action (domain.md §3) on its way through guard and approval."""

    __tablename__ = "action_requests"
    __table_args__ = (
        _in("status", "request_status"),
        Index("ix_action_requests_status_role", "status", "approver_role"),
        Index("ix_action_requests_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    params: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    params_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("orders.order_id"), nullable=True)
    exception_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("exceptions.id"), nullable=True)
    exception_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evidence: Mapped[Any] = mapped_column(Json, nullable=False, default=list)
    citations: Mapped[Any] = mapped_column(Json, nullable=False, default=list)
    risk: Mapped[str] = mapped_column(String(16), nullable=False)
    approver_role: Mapped[str] = mapped_column(String(32), nullable=False)
    requested_by: Mapped[str] = mapped_column(String(64), nullable=False)
    # Whether the request is the copilot's recommendation, and what that was (override tracking).
    is_recommendation: Mapped[bool] = _flag()
    recommended: Mapped[Any | None] = mapped_column(Json, nullable=True)
    guard_result: Mapped[Any | None] = mapped_column(Json, nullable=True)
    status: Mapped[str] = mapped_column(
        String(24), nullable=False, default="proposed", server_default="proposed"
    )
    thread_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # added: where the request came from (cli, chat, api, triage, eval)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="cli", server_default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Approval(Base):
    """A decision on an action request: who, with which role, on exactly which parameters."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint("decision IN ('approve', 'reject', 'edit')", name="decision_valid"),
        Index("ix_approvals_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("action_requests.id"), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    decided_by: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    params_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Execution(Base):
    """At most one execution per request: the unique request id and idempotency key enforce it.

    ``approval_id`` is empty only for ``ESCALATE``, which needs no approval (it changes no ERP
    record); its key is derived from the request instead of an approval.
    """

    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("action_requests.id"), nullable=False, unique=True
    )
    approval_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("approvals.id"), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    result: Mapped[Any | None] = mapped_column(Json, nullable=True)
    executed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Notice(Base):
    """A customer notice or supplier request that became due (domain.md §7), and its draft.

    One row per (executed action, recipient order, kind): the unique constraint makes a retried or
    resumed execution record it once. A planner's own ask has no triggering request. ``facts`` is
    the snapshot the draft may use (old and new dates, quantities, the substitute); ``draft`` holds
    the text with how it was written (model or fact-only template, grounding on the first try);
    ``request_id`` is the NOTIFY_CUSTOMER / REQUEST_SUPPLIER request the draft was filed as.
    """

    __tablename__ = "notices"
    __table_args__ = (
        _in("kind", "message_kind"),
        _in("status", "notice_status"),
        UniqueConstraint("trigger_request_id", "kind", "order_id"),
        Index("ix_notices_status", "status"),
        Index("ix_notices_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    trigger_request_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("action_requests.id"), nullable=True
    )
    trigger_action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exception_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    po_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    facts: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="due", server_default="due")
    asked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("action_requests.id"), nullable=True, unique=True
    )
    draft: Mapped[Any | None] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    drafted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OutboxMessage(Base):
    """An approved message waiting for, or past, delivery: at most one per request.

    Delivery claims a row with a lease (``lease_owner``, ``lease_until``) so that one worker sends
    it; a worker that died mid-send leaves a lease another may take over. ``message_id`` is derived
    from the request, so a resend after such a crash carries the same Message-ID.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        _in("kind", "message_kind"),
        _in("status", "outbox_status"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("action_requests.id"), nullable=False, unique=True
    )
    notice_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("notices.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    po_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    recipient: Mapped[str] = mapped_column(String(200), nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    message_id: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", server_default="queued")
    attempts: Mapped[int] = _qty()
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    transport: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash + canonical_json(event))``."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_order_id", "order_id"),
        Index("ix_audit_events_event_type", "event_type"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    event_type: Mapped[str] = mapped_column(String(48), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class AuditAnchor(Base):
    """The head of the audit chain: one row (id 1) holding the last event's seq and hash.

    Every append updates it first, which serialises appends (the row lock on PostgreSQL, the write
    lock on SQLite) and gives the next seq without scanning; verification compares the chain's
    last event with it, so deleting events at the tail is detected too.
    """

    __tablename__ = "audit_anchor"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # seq of the ``audit_keyed`` event from which every hash is an HMAC; null while the chain is plain
    keyed_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class User(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    display_name: Mapped[str | None] = _str(200)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UserScope(Base):
    """added: the sites a user is limited to (``tools.sites``): one row per region or warehouse.

    A user without rows sees every site. ``kind`` is ``region`` or ``warehouse``.
    """

    __tablename__ = "user_scopes"
    __table_args__ = (_in("kind", "scope_kind"),)

    username: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.username", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)


class ChatThread(Base):
    """added: one chat thread (its messages live in the LangGraph checkpoints under ``thread_id``).

    Written on every turn, so retention (``copilot retention purge``) knows when a thread was last
    used and whose it is.
    """

    __tablename__ = "chat_threads"
    __table_args__ = (Index("ix_chat_threads_last_at", "last_at"),)

    thread_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    username: Mapped[str | None] = _str(64)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    turns: Mapped[int] = _qty()


class EventInbox(Base):
    """Every event a source system reported (domain.md §8), stored before it is applied.

    ``(source, event_id)`` is unique: a repeated event is acknowledged and ignored. ``status`` is
    ``received`` until the worker applies it (``applied``) or refuses it (``failed``, with ``error``);
    ``orders_retriaged`` counts the open orders triaged again because of it.
    """

    __tablename__ = "event_inbox"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        _in("status", "event_status"),
        # The worker's next event: the earliest received one of a source.
        Index("ix_event_inbox_status_source_occurred", "status", "source", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    records: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="received", server_default="received"
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = _qty()
    orders_retriaged: Mapped[int] = _qty()
    # Where it came from: api, replay, broker, simulate.
    channel: Mapped[str] = mapped_column(String(16), nullable=False, default="api", server_default="api")
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiToken(Base):
    """A bearer token of the API and panel, stored as the SHA-256 of the token (never the token).

    Issued and revoked with ``copilot users token``; a revoked or expired token is refused at once,
    without a restart. The token names its user; the role still comes from ``users``.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    username: Mapped[str] = mapped_column(String(64), ForeignKey("users.username"), nullable=False)
    label: Mapped[str | None] = _str(64)
    created_by: Mapped[str | None] = _str(64)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StoredExplanation(Base):
    """added: a grounded explanation the model wrote, kept so that it is not written again
    (``agent.copilot.stored``).

    ``key`` is the SHA-256 of everything the text depends on — the order, the facts the model
    read, the SOP passages shown, the model and the prompt templates — so a change of any of them
    makes a new key and the old text is never served again. Only grounded model text is kept
    (never the fact-only fallback). Rows of orders with no open exception go with retention.
    """

    __tablename__ = "stored_explanations"
    __table_args__ = (Index("ix_stored_explanations_order_id", "order_id"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    citations: Mapped[Any] = mapped_column(Json, nullable=False, default=list)
    cited_by: Mapped[str] = mapped_column(String(16), nullable=False)
    warning: Mapped[str | None] = mapped_column(Text, nullable=True)
    usage: Mapped[Any] = mapped_column(Json, nullable=False, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DatasetMeta(Base):
    """Key/value facts about the loaded data set (generator seed, as-of date, row counts)."""

    __tablename__ = "dataset_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


# Tables `copilot seed --reset` and tools.demo.reset keep: the people (with their sites) and the
# audit log are not demo data, and the hash chain must stay verifiable across a reset; chat thread
# records stay with their checkpoints (which a reset does not touch), for retention to find them.
PRESERVED_ON_RESET: tuple[str, ...] = (
    "users",
    "user_scopes",
    "api_tokens",
    "audit_events",
    "audit_anchor",
    "chat_threads",
)
