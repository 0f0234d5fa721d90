"""index for recurrence: open exceptions by (type, sku) and (type, customer)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:00:00

The event worker counts an order's recurring patterns from the recorded open exceptions of the
other orders (``agent.triage.detection.detect_recorded``): one index range per (type, sku) and
(type, customer) of the batch, reading only the open rows and the order ids, not the resolved
history. The two-column indexes they replace are prefixes of these.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_exceptions_type_sku")
        batch_op.drop_index("ix_exceptions_type_customer")
        batch_op.create_index(
            "ix_exceptions_type_sku_status", ["type", "sku", "status", "order_id"], unique=False
        )
        batch_op.create_index(
            "ix_exceptions_type_customer_status", ["type", "customer_id", "status", "order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_exceptions_type_customer_status")
        batch_op.drop_index("ix_exceptions_type_sku_status")
        batch_op.create_index("ix_exceptions_type_customer", ["type", "customer_id"], unique=False)
        batch_op.create_index("ix_exceptions_type_sku", ["type", "sku"], unique=False)
