"""The copilot's LangGraph graph: wiring only. Nodes live in ``agent.copilot.nodes`` (triage) and ``agent.copilot.chat``.

::

    START ─┬─ mode "triage" ─ resolve ─┬─ triage ─ explain ─ END        (facts decide, the model explains)
           │                           └─ (no order number) ─ END       (the copilot asks for one)
           ├─ mode "chat" ── select ─┬─ act ─┬─ select  (native tool calling: more rounds)
           │                         │       └─ answer ─ END
           │                         └─ answer ─ END
           └─ mode "chat", "yes" to a proposal ── confirm ─ END   (files exactly the proposed action)

State: :class:`agent.copilot.state.CopilotState` (checkpointed per thread). Run context (database,
policy, model, tools, who is asking): :class:`agent.copilot.context.CopilotContext`, passed per run.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from agent.copilot import chat, nodes
from agent.copilot.context import CopilotContext
from agent.copilot.state import CopilotState

__all__ = ["build_graph"]


def _entry(state: CopilotState) -> str:
    return chat.route_chat(state) if state.get("mode") == "chat" else "triage"


def build_graph(*, checkpointer: Any = None):
    """The compiled graph; with ``checkpointer`` (``agent.checkpoint.open_checkpointer``) chat threads persist."""
    graph = StateGraph(CopilotState, context_schema=CopilotContext)
    graph.add_node("resolve", nodes.resolve_orders)
    graph.add_node("triage", nodes.triage_orders)
    graph.add_node("explain", nodes.explain_orders)
    graph.add_node("select", chat.select_tool)
    graph.add_node("act", chat.run_tools)
    graph.add_node("answer", chat.answer)
    graph.add_node("confirm", chat.confirm)

    graph.add_conditional_edges(
        START, _entry, {"triage": "resolve", "select": "select", "confirm": "confirm"}
    )
    graph.add_conditional_edges("resolve", nodes.route_after_resolve, {"triage": "triage", "done": END})
    graph.add_edge("triage", "explain")
    graph.add_edge("explain", END)
    graph.add_conditional_edges(
        "select", chat.route_after_select, {"act": "act", "select": "select", "answer": "answer"}
    )
    graph.add_conditional_edges("act", chat.route_after_act, {"select": "select", "answer": "answer"})
    graph.add_edge("answer", END)
    graph.add_edge("confirm", END)
    return graph.compile(checkpointer=checkpointer)
