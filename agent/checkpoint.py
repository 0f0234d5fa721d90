"""Durable LangGraph checkpoints: where a paused graph (a pending approval, a chat thread) lives.

The embedded default is a SQLite file beside the SQLite database (``<db>.checkpoints.sqlite``,
so a test's temporary database gets its own checkpoints); when ``DATABASE_URL`` is PostgreSQL the
checkpoints go to the same database (and schema: the URL's ``options=-csearch_path=...`` is kept)
through a small connection pool, so several worker processes share them (DESIGN.md, "path to
scale"). Graph state must hold plain JSON-able values only: strings, numbers, lists, dicts.

On PostgreSQL the checkpoint tables are created (and migrated by LangGraph) under the schema's
advisory lock (``tools.db.schema_lock_key``), once per process and location: processes started at
the same moment take turns instead of running the same DDL at once, which deadlocks.
``copilot db upgrade`` prepares them too (:func:`setup_checkpoints`), so a service usually finds
them ready.

    with open_checkpointer(url) as saver:
        graph = build_graph(..., checkpointer=saver)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from agent.settings import get_settings
from tools.db import await_lock, schema_lock_key

__all__ = ["checkpoint_location", "open_checkpointer", "setup_checkpoints"]

# PostgreSQL checkpoint locations whose tables this process has set up (or found set up).
_PREPARED: set[str] = set()
_PREPARING = threading.Lock()


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def checkpoint_location(database_url: str) -> str:
    """Where the checkpoints of ``database_url`` are kept: a file path, ``:memory:``, or a conninfo."""
    url = make_url(database_url)
    if _is_postgres(database_url):
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"checkpoints need SQLite or PostgreSQL, not {url.get_backend_name()}")
    if not url.database or url.database == ":memory:":
        return ":memory:"
    db = Path(url.database)
    return str(db.with_name(db.stem + ".checkpoints.sqlite"))


def setup_checkpoints(database_url: str) -> None:
    """Create or migrate the checkpoint tables of ``database_url`` (PostgreSQL) under the schema's
    advisory lock, once per process; SQLite files are set up when opened (one writer at a time)."""
    if not _is_postgres(database_url):
        return
    location = checkpoint_location(database_url)
    with _PREPARING:
        if location in _PREPARED:
            return
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        # A connection of its own: the session-level lock is held while LangGraph's migrations
        # (CREATE INDEX CONCURRENTLY among them: autocommit) run on it, released before it closes.
        with Connection.connect(location, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
            schema = conn.execute("SELECT current_schema() AS s").fetchone()
            key = schema_lock_key((schema or {}).get("s") or "")

            def try_lock() -> bool:
                row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()
                return bool(row and row["got"])

            await_lock(try_lock, what="the schema lock")
            try:
                PostgresSaver(conn).setup()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        _PREPARED.add(location)


@contextmanager
def open_checkpointer(
    database_url: str | None = None, *, pool_size: int = 8
) -> Iterator[BaseCheckpointSaver]:
    """A checkpointer for ``database_url`` (default: the settings' database), tables created
    (PostgreSQL: once per process, under the schema's advisory lock)."""
    if database_url is None:
        database_url = get_settings().effective_database_url
    location = checkpoint_location(database_url)
    if _is_postgres(database_url):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import DictRow, dict_row
        from psycopg_pool import ConnectionPool

        setup_checkpoints(database_url)
        pool = ConnectionPool(
            location,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=True,
        )
        try:
            # The pool's connections return dict rows (row_factory above), as PostgresSaver needs.
            yield PostgresSaver(cast("ConnectionPool[Connection[DictRow]]", pool))
        finally:
            pool.close()
        return

    from langgraph.checkpoint.sqlite import SqliteSaver

    if location != ":memory:":
        Path(location).parent.mkdir(parents=True, exist_ok=True)
    # One connection shared by threads: SqliteSaver serialises access with its own lock. WAL lets
    # another process (a second `copilot` command) read while this one writes.
    conn = sqlite3.connect(location, check_same_thread=False, timeout=30)
    try:
        if location != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        sqlite_saver = SqliteSaver(conn)
        sqlite_saver.setup()
        yield sqlite_saver
    finally:
        conn.close()
