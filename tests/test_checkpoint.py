"""Durable graph checkpoints: a thread written by one checkpointer is read back by a new one."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agent.checkpoint import checkpoint_location, open_checkpointer


class _State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(saver):
    def ask(state: _State) -> dict:
        answer = interrupt({"question": "approve?"})
        return {"log": [f"decided:{answer}"]}

    g = StateGraph(_State)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver)


def test_sqlite_checkpoints_live_beside_the_database(tmp_path):
    assert checkpoint_location(f"sqlite:///{tmp_path}/x.db") == str(tmp_path / "x.checkpoints.sqlite")
    assert checkpoint_location("sqlite://") == ":memory:"
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        checkpoint_location("mysql://u@h/db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_url")


def test_a_paused_thread_survives_a_new_checkpointer(db_url):
    config = {"configurable": {"thread_id": "approval-1"}}
    with open_checkpointer(db_url) as saver:
        out = _graph(saver).invoke({"log": ["start"]}, config)
        assert out["__interrupt__"][0].value == {"question": "approve?"}
    # "Another process": a fresh connection sees the pending interrupt and resumes it.
    with open_checkpointer(db_url) as saver:
        graph = _graph(saver)
        pending = graph.get_state(config)
        assert pending.next == ("ask",)
        assert graph.invoke(Command(resume="yes"), config)["log"] == ["start", "decided:yes"]
        assert graph.get_state(config).next == ()
