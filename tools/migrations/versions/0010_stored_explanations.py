"""stored explanations: grounded model text kept for reuse

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:00:00

- ``stored_explanations``: one row per grounded explanation the model wrote, keyed by the SHA-256
  of the order, the facts, the SOP passages, the model and the prompt templates
  (``agent.copilot.stored``); explaining the same facts again reads it instead of the model.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_explanations",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "citations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("cited_by", sa.String(length=16), nullable=False),
        sa.Column("warning", sa.Text(), nullable=True),
        sa.Column(
            "usage",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_stored_explanations")),
    )
    with op.batch_alter_table("stored_explanations", schema=None) as batch_op:
        batch_op.create_index("ix_stored_explanations_order_id", ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stored_explanations", schema=None) as batch_op:
        batch_op.drop_index("ix_stored_explanations_order_id")
    op.drop_table("stored_explanations")
