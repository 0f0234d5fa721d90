"""index for allocation donors: order lines by (sku, warehouse_id)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 05:40:00

Detection of ALLOCATION_CONFLICT (domain.md §6) looks up the lines holding a SKU's allocation at
one warehouse for every short line it triages; this makes that lookup an index range.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_sku_warehouse", ["sku", "warehouse_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_sku_warehouse")
