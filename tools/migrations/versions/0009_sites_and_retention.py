"""sites and retention: user scopes, chat thread records, orders by warehouse

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 09:40:00

- ``user_scopes``: the regions and warehouses a user is limited to (``tools.sites``); a user
  without rows sees every site, so existing users keep what they see.
- ``chat_threads``: one row per chat thread (owner, first and last turn), written on every turn;
  retention purges threads (and their LangGraph checkpoints) by ``last_at``.
- ``ix_orders_warehouse_id``: a scoped user's lists filter orders by their warehouse.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_scopes",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('region', 'warehouse')", name=op.f("ck_user_scopes_kind_valid")),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name=op.f("fk_user_scopes_username_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("username", "kind", "value", name=op.f("pk_user_scopes")),
    )
    op.create_table(
        "chat_threads",
        sa.Column("thread_id", sa.String(length=160), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("turns", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", name=op.f("pk_chat_threads")),
    )
    with op.batch_alter_table("chat_threads", schema=None) as batch_op:
        batch_op.create_index("ix_chat_threads_last_at", ["last_at"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_warehouse_id", ["warehouse_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_warehouse_id")
    with op.batch_alter_table("chat_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_threads_last_at")
    op.drop_table("chat_threads")
    op.drop_table("user_scopes")
