"""Alembic environment: runs on the connection that tools.db.upgrade hands over.

For writing a new migration: ``.venv/bin/python -m tools.migrations.revise "message"`` compares the
models with a scratch SQLite database at head and writes the revision file.
"""

from alembic import context

from tools.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` command line
    raise SystemExit("run migrations through `copilot db upgrade` (tools.db.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
