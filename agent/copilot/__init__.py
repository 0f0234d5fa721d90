"""The copilot: the LangGraph graph that triages, explains and chats (DESIGN.md's flow of one order).

- ``service``: the façade the doors call (``Copilot``: triage with explanations, chat turns);
- ``graph``, ``nodes``, ``state``, ``context``: the graph's wiring, its steps, its state and what
  a run carries (database, policy, model, SOP store);
- ``explain``: an order's explanation, written by the model from the facts and SOP passages;
- ``grounding``: the one check that the model's words stay within the facts;
- ``chat``, ``chat_tools``, ``chat_answers``: the chat path — the READ tools it may call, and the
  answers phrased from their results without the model;
- ``chat_focus``, ``intents``: choosing a READ tool without the model — follow-ups read from the
  thread's focus, and common questions routed by meaning with the SOP embedding model;
- ``proposals``: approval requests proposed in chat, filed on the user's word;
- ``progress``: the labels a chat turn shows while it works ("Looking up SO-…").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.surface import lazy_surface

if TYPE_CHECKING:
    from agent.copilot.context import CopilotContext
    from agent.copilot.explain import explain_order
    from agent.copilot.graph import build_graph
    from agent.copilot.service import Copilot
    from agent.copilot.state import CopilotState

__all__ = [
    "Copilot",
    "CopilotContext",
    "CopilotState",
    "build_graph",
    "explain_order",
]
__getattr__, __dir__ = lazy_surface(
    __name__,
    {
        "Copilot": "service",
        "CopilotContext": "context",
        "CopilotState": "state",
        "build_graph": "graph",
        "explain_order": "explain",
    },
)
