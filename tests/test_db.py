"""Engines, migrations and database errors on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tools.db import DatabaseError, check_connection, make_engine, read_only, session_factory, upgrade
from tools.models import Base


def test_migrations_create_every_model_table_and_match_the_models(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from tools.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_upgrade_is_idempotent(engine):
    head = head_revision()
    assert upgrade(engine) == head
    assert upgrade(engine) == head


def test_read_only_session_refuses_writes(engine):
    factory = session_factory(engine)
    with pytest.raises(Exception) as info:
        with read_only(factory) as s:
            s.execute(text("INSERT INTO warehouses (warehouse_id) VALUES ('WH-X')"))
            s.flush()
    assert "read" in str(info.value).lower()
    # The connection goes back to the pool writable again.
    with factory() as s:
        s.execute(text("INSERT INTO warehouses (warehouse_id) VALUES ('WH-Y')"))
        s.commit()
        assert s.execute(text("SELECT count(*) FROM warehouses")).scalar() == 1


@pytest.mark.parametrize(
    "url",
    ["not a url", "://nothing", "mysqlx://x@y/z"],
)
def test_malformed_url_names_the_variable(url):
    with pytest.raises(DatabaseError, match="DATABASE_URL"):
        check_connection(make_engine(url))


def test_unreachable_database_names_the_variable_and_hides_the_password():
    engine = make_engine("postgresql+psycopg://bob:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseError) as info:
        check_connection(engine)
    message = str(info.value)
    assert "DATABASE_URL" in message and "127.0.0.1:1" in message
    assert "s3cret" not in message


def test_sqlite_enforces_foreign_keys(sqlite_engine):
    with sqlite_engine.connect() as conn:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            conn.execute(text("INSERT INTO orders (order_id, customer_id) VALUES ('SO-1', 'C-NONE')"))


def test_read_only_gives_back_a_writable_connection_whatever_the_pool_hands_out(tmp_path):
    # The pool hands out connections first-in first-out: with two idle connections, the one the
    # read-only session used is not the next one checked out. Every pooled connection must be
    # writable again afterwards (the API runs read-only and writing requests side by side).
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    first, second = engine.connect(), engine.connect()
    first.close()
    second.close()
    with read_only(session_factory(engine)) as session:
        session.execute(text("SELECT count(*) FROM t"))
    held = [engine.connect() for _ in range(2)]
    try:
        for conn in held:
            assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 0
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.commit()
    finally:
        for conn in held:
            conn.close()
    engine.dispose()


def test_revise_help_and_no_change_write_no_migration(capsys):
    """The README's `python -m tools.migrations.revise "what changed"`: `--help` was taken as the
    message and wrote `0012_help.py`, and with models and migrations in agreement an empty
    migration was written. Now --help is help, and no difference writes nothing (exit 1)."""
    from tools.migrations import revise

    before = sorted(revise.VERSIONS.glob("*.py"))
    try:
        with pytest.raises(SystemExit) as info:
            revise.main(["--help"])
        assert info.value.code == 0 and "usage: python -m tools.migrations.revise" in capsys.readouterr().out
        assert revise.main(["nothing changed"]) == 1
        assert "no migration written" in capsys.readouterr().err
    finally:
        written = set(revise.VERSIONS.glob("*.py")) - set(before)
        for path in written:  # a failure must not leave a stray migration in the repository
            path.unlink()
    assert not written


def test_one_of_matches_exactly_the_values_given_however_long(engine):
    """``one_of`` is ``IN`` on every backend: on PostgreSQL its array must not be cast to the
    column's VARCHAR(32)[], which cuts a longer value to 32 characters and matches another key."""
    from sqlalchemy import select

    from tools.db import one_of
    from tools.models import Customer

    with session_factory(engine)() as s:
        s.add(Customer(customer_id="C" * 32, name="Exact", tier="gold"))
        s.flush()
        column = Customer.__table__.c.customer_id
        assert s.scalars(select(column).where(one_of(s, column, ["C" * 40]))).all() == []
        assert s.scalars(select(column).where(one_of(s, column, ["C" * 32, "X"]))).all() == ["C" * 32]
        s.rollback()
