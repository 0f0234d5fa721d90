"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 10:40:17.494833
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_events_event_id")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_event_type", ["event_type"], unique=False)
        batch_op.create_index("ix_audit_events_order_id", ["order_id"], unique=False)

    op.create_table(
        "carriers",
        sa.Column("carrier_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="ok", nullable=False),
        sa.Column("on_time_rate", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('ok', 'constrained', 'disrupted')", name=op.f("ck_carriers_status_valid")
        ),
        sa.PrimaryKeyConstraint("carrier_id", name=op.f("pk_carriers")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("tier", sa.String(length=16), server_default="standard", nullable=False),
        sa.Column(
            "credit_limit", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "open_balance", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "overdue_balance", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("credit_hold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("allow_substitutions", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("allow_partial_shipments", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("export_license", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.CheckConstraint("tier IN ('platinum', 'gold', 'standard')", name=op.f("ck_customers_tier_valid")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "dataset_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dataset_meta")),
    )
    op.create_table(
        "suppliers",
        sa.Column("supplier_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("on_time_rate", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("supplier_id", name=op.f("pk_suppliers")),
    )
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
    )
    op.create_table(
        "warehouses",
        sa.Column("warehouse_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.PrimaryKeyConstraint("warehouse_id", name=op.f("pk_warehouses")),
    )
    op.create_table(
        "items",
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("product_family", sa.String(length=64), nullable=True),
        sa.Column(
            "list_price", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "unit_cost", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("export_controlled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("supplier_id", sa.String(length=32), nullable=True),
        sa.CheckConstraint("status IN ('active', 'discontinued')", name=op.f("ck_items_status_valid")),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["suppliers.supplier_id"], name=op.f("fk_items_supplier_id_suppliers")
        ),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_items")),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("order_date", sa.Date(), nullable=True),
        sa.Column("requested_date", sa.Date(), nullable=True),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("credit_released", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("warehouse_id", sa.String(length=32), nullable=True),
        sa.Column("ship_to_street", sa.String(length=200), nullable=True),
        sa.Column("ship_to_city", sa.String(length=120), nullable=True),
        sa.Column("ship_to_postal_code", sa.String(length=20), nullable=True),
        sa.Column("ship_to_country", sa.String(length=2), nullable=True),
        sa.Column("customer_note", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("shipped_date", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'held', 'released', 'shipped', 'cancelled')",
            name=op.f("ck_orders_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_orders_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.warehouse_id"], name=op.f("fk_orders_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_customer_order_date", ["customer_id", "order_date"], unique=False)
        batch_op.create_index("ix_orders_status_order_date", ["status", "order_date"], unique=False)

    op.create_table(
        "exceptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("instance_key", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("shipment_id", sa.String(length=32), nullable=True),
        sa.Column("sku", sa.String(length=32), nullable=True),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("warehouse_id", sa.String(length=32), nullable=True),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("evidence_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("assigned_role", sa.String(length=32), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_exceptions_status_valid")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_exceptions_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exceptions")),
        sa.UniqueConstraint(
            "order_id", "type", "instance_key", name=op.f("uq_exceptions_order_id_type_instance_key")
        ),
    )
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.create_index("ix_exceptions_status_type", ["status", "type"], unique=False)
        batch_op.create_index("ix_exceptions_type_customer", ["type", "customer_id"], unique=False)
        batch_op.create_index("ix_exceptions_type_sku", ["type", "sku"], unique=False)

    op.create_table(
        "inventory",
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("warehouse_id", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("allocated", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["items.sku"], name=op.f("fk_inventory_sku_items")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.warehouse_id"], name=op.f("fk_inventory_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("sku", "warehouse_id", name=op.f("pk_inventory")),
    )
    with op.batch_alter_table("inventory", schema=None) as batch_op:
        batch_op.create_index("ix_inventory_warehouse_sku", ["warehouse_id", "sku"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=True),
        sa.Column("qty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "unit_price", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("warehouse_id", sa.String(length=32), nullable=True),
        sa.Column("allocated_qty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("backorder_qty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("original_sku", sa.String(length=32), nullable=True),
        sa.Column("shipped_qty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'allocated', 'backordered', 'shipped', 'cancelled')",
            name=op.f("ck_order_lines_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_order_lines_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["original_sku"], ["items.sku"], name=op.f("fk_order_lines_original_sku_items")
        ),
        sa.ForeignKeyConstraint(["sku"], ["items.sku"], name=op.f("fk_order_lines_sku_items")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.warehouse_id"], name=op.f("fk_order_lines_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_sku", ["sku"], unique=False)

    op.create_table(
        "price_contracts",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column(
            "contract_price", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_price_contracts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["sku"], ["items.sku"], name=op.f("fk_price_contracts_sku_items")),
        sa.PrimaryKeyConstraint("customer_id", "sku", "valid_from", name=op.f("pk_price_contracts")),
    )
    op.create_table(
        "purchase_orders",
        sa.Column("po_id", sa.String(length=32), nullable=False),
        sa.Column("supplier_id", sa.String(length=32), nullable=True),
        sa.Column("sku", sa.String(length=32), nullable=True),
        sa.Column("warehouse_id", sa.String(length=32), nullable=True),
        sa.Column("qty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("expedite_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'received', 'cancelled')", name=op.f("ck_purchase_orders_status_valid")
        ),
        sa.ForeignKeyConstraint(["sku"], ["items.sku"], name=op.f("fk_purchase_orders_sku_items")),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["suppliers.supplier_id"], name=op.f("fk_purchase_orders_supplier_id_suppliers")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.warehouse_id"],
            name=op.f("fk_purchase_orders_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("po_id", name=op.f("pk_purchase_orders")),
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_purchase_orders_sku_wh_status_expected",
            ["sku", "warehouse_id", "status", "expected_date"],
            unique=False,
        )

    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("carrier_id", sa.String(length=32), nullable=True),
        sa.Column("service_level", sa.String(length=16), server_default="ground", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="planned", nullable=False),
        sa.Column("planned_ship_date", sa.Date(), nullable=True),
        sa.Column("eta", sa.Date(), nullable=True),
        sa.Column(
            "freight_cost", sa.Numeric(precision=14, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("delivered_date", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "service_level IN ('ground', 'express')", name=op.f("ck_shipments_service_level_valid")
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'booked', 'in_transit', 'delayed', 'delivered')",
            name=op.f("ck_shipments_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.carrier_id"], name=op.f("fk_shipments_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], name=op.f("fk_shipments_order_id_orders")),
        sa.PrimaryKeyConstraint("shipment_id", name=op.f("pk_shipments")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index("ix_shipments_carrier_status", ["carrier_id", "status"], unique=False)
        batch_op.create_index("ix_shipments_order_id", ["order_id"], unique=False)

    op.create_table(
        "substitutes",
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("substitute_sku", sa.String(length=32), nullable=False),
        sa.Column("approved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["items.sku"], name=op.f("fk_substitutes_sku_items")),
        sa.ForeignKeyConstraint(
            ["substitute_sku"], ["items.sku"], name=op.f("fk_substitutes_substitute_sku_items")
        ),
        sa.PrimaryKeyConstraint("sku", "substitute_sku", name=op.f("pk_substitutes")),
    )
    op.create_table(
        "action_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("exception_id", sa.Integer(), nullable=True),
        sa.Column("exception_type", sa.String(length=32), nullable=True),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "citations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("risk", sa.String(length=16), nullable=False),
        sa.Column("approver_role", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("is_recommendation", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "recommended",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "guard_result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.String(length=24), server_default="proposed", nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('proposed', 'pending_approval', 'approved', 'rejected', 'blocked', 'executed', 'failed')",
            name=op.f("ck_action_requests_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["exception_id"], ["exceptions.id"], name=op.f("fk_action_requests_exception_id_exceptions")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_action_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_requests")),
    )
    with op.batch_alter_table("action_requests", schema=None) as batch_op:
        batch_op.create_index("ix_action_requests_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_action_requests_status_role", ["status", "approver_role"], unique=False)

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject', 'edit')", name=op.f("ck_approvals_decision_valid")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["action_requests.id"], name=op.f("fk_approvals_request_id_action_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index("ix_approvals_request_id", ["request_id"], unique=False)

    op.create_table(
        "executions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("approval_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_id"], ["approvals.id"], name=op.f("fk_executions_approval_id_approvals")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["action_requests.id"], name=op.f("fk_executions_request_id_action_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_executions_idempotency_key")),
        sa.UniqueConstraint("request_id", name=op.f("uq_executions_request_id")),
    )


def downgrade() -> None:
    op.drop_table("executions")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_approvals_request_id")

    op.drop_table("approvals")
    with op.batch_alter_table("action_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_action_requests_status_role")
        batch_op.drop_index("ix_action_requests_order_id")

    op.drop_table("action_requests")
    op.drop_table("substitutes")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index("ix_shipments_order_id")
        batch_op.drop_index("ix_shipments_carrier_status")

    op.drop_table("shipments")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_purchase_orders_sku_wh_status_expected")

    op.drop_table("purchase_orders")
    op.drop_table("price_contracts")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_sku")

    op.drop_table("order_lines")
    with op.batch_alter_table("inventory", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_warehouse_sku")

    op.drop_table("inventory")
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_exceptions_type_sku")
        batch_op.drop_index("ix_exceptions_type_customer")
        batch_op.drop_index("ix_exceptions_status_type")

    op.drop_table("exceptions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_order_date")
        batch_op.drop_index("ix_orders_customer_order_date")

    op.drop_table("orders")
    op.drop_table("items")
    op.drop_table("warehouses")
    op.drop_table("users")
    op.drop_table("suppliers")
    op.drop_table("dataset_meta")
    op.drop_table("customers")
    op.drop_table("carriers")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_order_id")
        batch_op.drop_index("ix_audit_events_event_type")

    op.drop_table("audit_events")
