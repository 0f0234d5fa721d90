"""Chat thread records: who a thread belongs to and when it was last used.

The messages of a thread live in the LangGraph checkpoints under its ``thread_id``; this table
(``chat_threads``) keeps one row per thread so retention can find threads past the policy's limit
without reading every checkpoint (``agent.ops.retention``). Written on every turn, from any
process: an upsert, so two processes continuing one thread at once both succeed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tools.models import ChatThread

__all__ = ["touch_thread"]


def touch_thread(
    factory: sessionmaker[Session], thread_id: str, username: str | None, *, now: dt.datetime | None = None
) -> None:
    """Record a turn on ``thread_id``: created on the first, ``last_at`` and ``turns`` after."""
    now = now or dt.datetime.now(dt.UTC)
    row = {"thread_id": thread_id[:160], "username": username, "started_at": now, "last_at": now, "turns": 1}
    with factory() as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(ChatThread).values(**row)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["thread_id"],
                set_={"last_at": now, "turns": ChatThread.turns + 1},
            )
        )
