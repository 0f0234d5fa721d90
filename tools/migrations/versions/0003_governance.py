"""governance: audit chain anchor, request source, ESCALATE executions without approval, demo users

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:50:00

- ``audit_anchor``: one row (id 1) with the seq and hash of the audit chain's last event; appends
  update it first (serialising them) and verification compares the chain's tail with it. Seeded
  from the existing tail, so a database with events keeps a verifiable chain.
- ``action_requests.source``: where a request came from (cli, chat, api, triage, eval).
- ``executions.approval_id`` nullable: ESCALATE needs no approval.
- Data: one demo user per role, named after the role (existing names are left alone).
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
DEMO_USERS = (
    ("planner", "Demo planner"),
    ("csr", "Demo customer service rep"),
    ("credit_analyst", "Demo credit analyst"),
    ("credit_manager", "Demo credit manager"),
    ("pricing_analyst", "Demo pricing analyst"),
    ("logistics_coordinator", "Demo logistics coordinator"),
    ("procurement_buyer", "Demo procurement buyer"),
    ("compliance_officer", "Demo compliance officer"),
    ("ops_manager", "Demo operations manager"),
    ("admin", "Demo administrator"),
)


def upgrade() -> None:
    anchor = op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_anchor_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchor")),
    )
    with op.batch_alter_table("action_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), server_default="cli", nullable=False))

    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.alter_column("approval_id", existing_type=sa.INTEGER(), nullable=True)

    conn = op.get_bind()
    tail = conn.execute(sa.text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).first()
    op.bulk_insert(anchor, [{"id": 1, "seq": tail[0] if tail else 0, "hash": tail[1] if tail else GENESIS}])
    users = sa.table(
        "users",
        sa.column("username", sa.String),
        sa.column("role", sa.String),
        sa.column("display_name", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    existing = {row[0] for row in conn.execute(sa.text("SELECT username FROM users"))}
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"username": name, "role": name, "display_name": label, "active": True, "created_at": now}
        for name, label in DEMO_USERS
        if name not in existing
    ]
    if rows:
        op.bulk_insert(users, rows)


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM users WHERE username IN ({})".format(", ".join(f"'{n}'" for n, _ in DEMO_USERS)))
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.alter_column("approval_id", existing_type=sa.INTEGER(), nullable=False)

    with op.batch_alter_table("action_requests", schema=None) as batch_op:
        batch_op.drop_column("source")

    op.drop_table("audit_anchor")
