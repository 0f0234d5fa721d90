"""Database engines, sessions and schema migrations for SQLite and PostgreSQL.

The URL comes from the caller (``agent.settings`` reads ``DATABASE_URL``); nothing here reads the
environment. Every failure to reach or parse the database becomes a :class:`DatabaseError` whose
message names the variable and the redacted URL, never a driver traceback.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

__all__ = [
    "DatabaseError",
    "await_lock",
    "check_connection",
    "current_revision",
    "current_schema",
    "driver_reason",
    "head_revision",
    "is_postgres",
    "make_engine",
    "one_of",
    "read_only",
    "redact",
    "refresh_statistics",
    "schema_lock_key",
    "scratch_schema",
    "session_factory",
    "upgrade",
    "url_secrets",
]

# SQLite has no native DECIMAL: SQLAlchemy converts through float and rounds to the column's
# scale (2 places for money), which is exact for the amounts this product stores.
warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support Decimal")

MIGRATIONS = Path(__file__).parent / "migrations"
# Which setting named each engine, for error messages.
_VARIABLE: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


class DatabaseError(RuntimeError):
    """The database named by a setting cannot be parsed or reached; the message says which."""


# Query parameters libpq reads as secrets (``?password=…`` is a valid way to pass one).
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def url_secrets(url: URL) -> list[str]:
    """The secret values ``url`` carries: its password and any secret query parameter."""
    found = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if key.lower() in _SECRET_PARAMS:
            found += [value] if isinstance(value, str) else list(value)
    return [v for v in found if v]


def redact(url: str | URL) -> str:
    """The URL with its password (and any ``password=`` query parameter) replaced by ``***`` — also
    when it cannot be parsed, or when an unencoded ``@`` in the password made the parser read the
    rest of it as the host."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _redact_text(str(url))
    if parsed.host and "@" in parsed.host:
        raw = url if isinstance(url, str) else parsed.render_as_string(hide_password=False)
        return _redact_text(raw)
    hidden = {k: "***" for k in parsed.query if k.lower() in _SECRET_PARAMS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True)


def _redact_text(url: str) -> str:
    """Hide whatever stands between the first ``:`` and the last ``@`` of the authority part (the
    password of ``user:password@host``), for a URL too malformed for SQLAlchemy to parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if at:
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    return f"{scheme}{sep}{rest}"


def _normalise(url: URL) -> URL:
    # postgres:// and postgresql:// mean the psycopg 3 driver we ship.
    if url.drivername in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg")
    return url


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def one_of(
    session: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:values)``, one array parameter.

    An expanding ``IN`` renders one placeholder per value, so every chunk size is a new statement
    text that SQLAlchemy expands and psycopg parses again (on a 1M-line book's event batches, with
    lists of up to 500 keys, about a seventh of the worker's time); the array form is one text
    whatever the count, prepared once by the server, and the planner reads it as the same index
    lookups."""
    if session.get_bind().dialect.name == "postgresql":
        item = column.type
        if isinstance(item, String) and item.length is not None:
            # the array is cast to its item type: VARCHAR(32)[] would cut a longer value to its
            # first 32 characters (an explicit cast truncates) and match the order named by them
            item = String()
        return column == any_(bindparam(None, list(values), type_=ARRAY(item)))
    return column.in_(values)


def current_schema(session: Session) -> str:
    """PostgreSQL: the schema the session's connection works in (its ``search_path``'s first, as
    the engine set it on connect), read once per pooled connection — the event worker asks twice
    a batch (the advisory-lock keys of sources and orders are per schema)."""
    info = session.connection().info
    if not info.get("current_schema"):  # none yet (its schema not created when it connected): ask again
        info["current_schema"] = session.scalar(text("SELECT current_schema()")) or ""
    return str(info["current_schema"])


def refresh_statistics(session: Session, *tables: str) -> None:
    """PostgreSQL: ``ANALYZE`` ``tables`` in the session's transaction (its own rows counted), after
    a change of a large share of them that autovacuum would not count as one (it analyzes a table
    once 10 % of its rows changed). SQLite: nothing (it keeps no statistics unless asked, and plans
    by its rules and the queries' index hints)."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return
    quote = dialect.identifier_preparer.quote
    for table in tables:
        session.execute(text(f"ANALYZE {quote(table)}"))


def make_engine(
    url: str,
    *,
    variable: str = "DATABASE_URL",
    echo: bool = False,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> Engine:
    """Create an engine for ``url``; raise :class:`DatabaseError` naming ``variable`` if malformed.

    ``pool_size`` / ``max_overflow``: the connection pool of a server database (SQLite ignores them)."""
    try:
        parsed = _normalise(make_url(url))
    except (ArgumentError, ValueError, TypeError):
        # no chained exception: the parser's message repeats the URL, password and all
        raise DatabaseError(
            f"{variable} is not a valid database URL ({_redact_text(str(url))!r}): expected e.g. "
            "sqlite:///var/copilot.db or postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.host and "@" in parsed.host:  # the driver's error would name the host: part of the password
        raise DatabaseError(
            f"{variable} is not a valid database URL ({redact(url)!r}): an '@' in the password must be "
            "percent-encoded as %40"
        )
    kwargs: dict = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # e.g. under a file, or where this account may not write
                raise DatabaseError(
                    f"cannot reach the database named by {variable} ({redact(parsed)}): its folder "
                    f"{str(folder)!r} cannot be created: "
                    + (
                        "a file has that name"
                        if isinstance(exc, FileExistsError)
                        else exc.strerror or str(exc)
                    )
                ) from None
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
        if max_overflow is not None:
            kwargs["max_overflow"] = max_overflow
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise DatabaseError(
            f"{variable} names a database this product cannot use ({redact(parsed)}): {exc}"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _VARIABLE[engine] = variable
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def check_connection(engine: Engine) -> None:
    """Open one connection; raise :class:`DatabaseError` with a one-line reason if it fails."""
    variable = _VARIABLE.get(engine, "DATABASE_URL")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise DatabaseError(
            f"cannot reach the database named by {variable} ({redact(engine.url)}): {driver_reason(exc, engine.url)}"
        ) from exc


def driver_reason(exc: BaseException, url: str | URL) -> str:
    """The first line of the driver's own message (``exc`` a SQLAlchemy ``DBAPIError`` or the
    driver's exception itself), without the SQL SQLAlchemy appends, and without any secret of
    ``url`` (a driver may echo its connection string)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    reason = lines[0].strip() if lines else type(exc).__name__
    try:
        secrets = url_secrets(make_url(url))
    except (ArgumentError, ValueError, TypeError):
        secrets = []
    for secret in secrets:
        reason = reason.replace(secret, "***")
    return reason


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction the database itself refuses to write in.

    PostgreSQL: ``SET TRANSACTION READ ONLY``. SQLite: ``PRAGMA query_only`` for the duration,
    reset on that same connection before it goes back to the pool. The transaction is always rolled back.
    """
    with factory() as session:
        conn = session.connection()
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA query_only = 1")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield session
        finally:
            # Reset on the very connection that was made read-only, before the rollback returns it
            # to the pool: after the rollback, session.connection() may check out another one.
            if sqlite:
                try:
                    conn.exec_driver_sql("PRAGMA query_only = 0")
                finally:
                    session.rollback()
            else:
                session.rollback()


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def schema_lock_key(schema: str) -> int:
    """The PostgreSQL advisory-lock key under which the schema of ``schema`` is created or migrated
    (the tables and the LangGraph checkpoint tables alike): processes that start at the same moment
    take turns, so DDL never runs twice at once (two concurrent ``CREATE TABLE IF NOT EXISTS`` of
    one table deadlock or violate a catalog unique index). Advisory locks are database-wide: the
    schema keeps deployments sharing a database apart."""
    return zlib.crc32(f"copilot.schema-setup:{schema}".encode()) - 2**31


SCHEMA_LOCK_TIMEOUT_S = 300.0


def await_lock(try_lock: Callable[[], bool], *, what: str, timeout_s: float = SCHEMA_LOCK_TIMEOUT_S) -> None:
    """Call ``try_lock`` (a non-blocking ``pg_try_advisory_lock``) until it answers True, waiting
    50 ms, then longer, up to 1 s between tries; :class:`DatabaseError` after ``timeout_s``.

    Why not the blocking ``pg_advisory_lock``: a statement waiting for the lock is an open
    transaction, and the holder's ``CREATE INDEX CONCURRENTLY`` (LangGraph's checkpoint migrations)
    waits for every open transaction to end: a deadlock. Between tries nothing is open.
    """
    deadline, pause = time.monotonic() + timeout_s, 0.05
    while not try_lock():
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"waited {timeout_s:g} s for {what}: another process holds it (a migration still running?)"
            )
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision`` and return the revision the database is then at.

    On PostgreSQL the migration runs under the schema's advisory lock (:func:`schema_lock_key`):
    a second ``copilot db upgrade`` started at the same moment waits, then finds the schema at
    head and does nothing.
    """
    from alembic import command

    check_connection(engine)
    with engine.connect() as conn:
        key = None
        if conn.dialect.name == "postgresql":
            key = schema_lock_key(conn.execute(text("SELECT current_schema()")).scalar() or "")
            conn.commit()

            def try_lock() -> bool:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                conn.commit()
                return got

            await_lock(try_lock, what="the schema lock")
        try:
            with conn.begin():
                command.upgrade(_alembic_config(conn), revision)
        finally:
            if key is not None:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    return current_revision(engine)


def head_revision() -> str:
    """The newest migration in tools/migrations: the schema this code needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise DatabaseError(f"no migrations in {MIGRATIONS}")
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def scratch_schema(url: str, prefix: str, *, variable: str = "DATABASE_URL") -> Iterator[str]:
    """A URL on the PostgreSQL server of ``url`` whose search_path is a fresh, empty schema.

    For tests and benchmarks: the schema is created on entry and dropped, with everything in it,
    on exit.
    """
    admin = make_engine(url, variable=variable)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
