"""trust: keyed audit chain, hashed API tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 05:40:00

- ``audit_anchor.keyed_from``: the seq of the ``audit_keyed`` event from which every audit hash is
  an HMAC with the deployment's audit key. Null here: an existing chain stays plain SHA-256 until
  the first append made with a key, which writes the keyed switch-over event (naming the last plain
  seq and hash) and sets this column. The key itself is never stored in the database.
- ``api_tokens``: bearer tokens issued with ``copilot users token issue``, stored as their SHA-256;
  revoked or expired ones are refused at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["username"], ["users.username"], name=op.f("fk_api_tokens_username_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("audit_anchor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_anchor", schema=None) as batch_op:
        batch_op.drop_column("keyed_from")
    op.drop_table("api_tokens")
