"""Durable LangGraph checkpoints: where a paused graph (a pending approval, a chat thread) lives.

The embedded default is a SQLite file beside the SQLite database (``<db>.checkpoints.sqlite``,
so a test's temporary database gets its own checkpoints); when ``DATABASE_URL`` is PostgreSQL the
checkpoints go to the same database (and schema: the URL's ``options=-csearch_path=...`` is kept)
through a small connection pool, so several worker processes share them (DESIGN.md, "path to
scale"). Graph state must hold plain JSON-able values only: strings, numbers, lists, dicts.

    with open_checkpointer(url) as saver:
        graph = build_graph(..., checkpointer=saver)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from agent.settings import get_settings

__all__ = ["checkpoint_location", "open_checkpointer"]


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


@contextmanager
def open_checkpointer(
    database_url: str | None = None, *, pool_size: int = 8
) -> Iterator[BaseCheckpointSaver]:
    """A checkpointer for ``database_url`` (default: the settings' database), tables created."""
    if database_url is None:
        database_url = get_settings().effective_database_url
    location = checkpoint_location(database_url)
    if _is_postgres(database_url):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import DictRow, dict_row
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            location,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=True,
        )
        try:
            # The pool's connections return dict rows (row_factory above), as PostgresSaver needs.
            saver = PostgresSaver(cast("ConnectionPool[Connection[DictRow]]", pool))
            saver.setup()
            yield saver
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
