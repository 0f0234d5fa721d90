"""event inbox: every event a source system reported, with its status

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:40:00

- ``event_inbox``: one row per (source, event_id) — a repeated event is acknowledged and ignored —
  with the event's records as JSON, its status (received, applied, failed with the reason), how
  many orders it made triage again, and where it came from (api, replay, broker, simulate).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "event_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), server_default="received", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("orders_retriaged", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("channel", sa.String(length=16), server_default="api", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('received', 'applied', 'failed')", name=op.f("ck_event_inbox_status_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_inbox")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_event_inbox_source_event_id")),
    )
    op.create_index(
        "ix_event_inbox_status_source_occurred",
        "event_inbox",
        ["status", "source", "occurred_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_event_inbox_status_source_occurred", table_name="event_inbox")
    op.drop_table("event_inbox")
