"""The graph itself: wiring, JSON-only state, run context, and what a triage run costs in model calls."""

from __future__ import annotations

import json
import typing

from langgraph.checkpoint.memory import InMemorySaver

from agent.copilot.context import CopilotContext, MeteredLLM
from agent.copilot.graph import build_graph
from agent.copilot.state import CopilotState
from agent.llm import FakeLLM
from agent.policy import load_policy
from tests.copilot_world import grounded_explainer, route, script, sop_collection


def test_the_graph_is_wired_as_documented():
    graph = build_graph().get_graph()
    edges = {(e.source, e.target) for e in graph.edges}
    assert set(graph.nodes) == {
        "__start__",
        "resolve",
        "triage",
        "explain",
        "select",
        "act",
        "answer",
        "confirm",
        "__end__",
    }
    assert {
        ("__start__", "resolve"),
        ("__start__", "select"),
        ("__start__", "confirm"),
        ("confirm", "__end__"),
        ("resolve", "triage"),
        ("resolve", "__end__"),
        ("triage", "explain"),
        ("select", "act"),
        ("act", "select"),
        ("act", "answer"),
        ("select", "answer"),
        ("answer", "__end__"),
    } <= edges


def test_triage_run_through_the_graph_costs_one_model_call_per_order(world, tmp_path):
    llm = MeteredLLM(FakeLLM(grounded_explainer))
    context = CopilotContext(
        factory=world, policy=load_policy(), llm=llm, collection=sop_collection(tmp_path)
    )
    out = build_graph().invoke(
        {
            "mode": "triage",
            "order_ids": ["SO-100002", "SO-100003", "SO-100001"],
            "text": None,
            "explain": True,
        },
        context=context,
    )
    assert [r["explanation"]["fallback"] for r in out["results"]] == [False, False, False]
    assert llm.usage()["calls"] == 2  # the two orders with exceptions; the clean one needs no words
    assert llm.usage()["prompt_tokens"] > 0 and llm.usage()["completion_tokens"] > 0


def test_chat_state_is_plain_json_and_documented(world):
    saver = InMemorySaver()
    graph = build_graph(checkpointer=saver)
    llm = FakeLLM(script(routes=[route("triage_order", order_id="SO-100003")]))
    context = CopilotContext(factory=world, policy=load_policy(), llm=llm, username="planner", thread_id="t")
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke(
        {
            "mode": "chat",
            "question": "what is blocking SO-100003?",
            "observations": [],
            "pending": [],
            "rounds": 0,
            "draft": None,
            "fallback": False,
            "fallback_reason": None,
            "request": None,
        },
        config,
        context=context,
    )
    values = graph.get_state(config).values
    assert json.loads(json.dumps(values)) == values  # nothing but JSON: survives any checkpointer
    assert set(values) <= set(typing.get_type_hints(CopilotState))
    assert values["focus"]["order_id"] == "SO-100003"
    assert values["focus"]["action"]["action"] == "SPLIT_SHIPMENT"
    assert [m["role"] for m in values["messages"]] == ["user", "assistant"]
