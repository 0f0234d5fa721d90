"""communications: due notices and their drafts, the outbox, customer language, supplier e-mail

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 05:26:58.652999

- ``notices``: a customer notice or supplier request that an executed action made due (one per
  action, recipient order and kind), with the facts it may use and its draft.
- ``outbox``: approved messages and their delivery (lease, attempts, sent or failed with the reason).
- ``customers.language``: the language notices to the customer are written in (empty: English).
- ``suppliers.email``: where supplier requests are sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger_request_id", sa.Integer(), nullable=True),
        sa.Column("trigger_action", sa.String(length=32), nullable=True),
        sa.Column("exception_type", sa.String(length=32), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("po_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "facts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), server_default="due", nullable=False),
        sa.Column("asked_by", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column(
            "draft",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('customer', 'supplier')", name=op.f("ck_notices_kind_valid")),
        sa.CheckConstraint("status IN ('due', 'drafted', 'failed')", name=op.f("ck_notices_status_valid")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["action_requests.id"], name=op.f("fk_notices_request_id_action_requests")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_request_id"],
            ["action_requests.id"],
            name=op.f("fk_notices_trigger_request_id_action_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("request_id", name=op.f("uq_notices_request_id")),
        sa.UniqueConstraint(
            "trigger_request_id", "kind", "order_id", name=op.f("uq_notices_trigger_request_id_kind_order_id")
        ),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_notices_status", ["status"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("po_id", sa.String(length=32), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('customer', 'supplier')", name=op.f("ck_outbox_kind_valid")),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed')", name=op.f("ck_outbox_status_valid")
        ),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_outbox_notice_id_notices")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["action_requests.id"], name=op.f("fk_outbox_request_id_action_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_outbox_request_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))

    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.drop_column("email")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("language")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next_attempt_at")
        batch_op.drop_index("ix_outbox_order_id")

    op.drop_table("outbox")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_status")
        batch_op.drop_index("ix_notices_order_id")

    op.drop_table("notices")
