"""work queues: who works on an open exception now, and where a breached SLA escalated it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:00:00

- ``exceptions.claimed_by`` / ``claimed_at``: the person working on it (claim / release).
- ``exceptions.escalated_to`` / ``escalated_at``: the role a breached SLA escalated it to.
The owner role, priority and SLA due time are computed from the policy when a queue is read.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_to", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("escalated_to")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
