"""Run context of the graph: who is asking, the database, the policy, the model, the tools.

Passed to every run (``graph.invoke(..., context=ctx)``) and never checkpointed: a resumed thread
gets the context of the process that resumes it. Nodes read it as ``runtime.context``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from agent.policy import OrderNumbers, Policy

__all__ = ["CopilotContext", "IntentChooser", "MeteredLLM"]


class IntentChooser(Protocol):
    """What chat needs of the router by meaning (:class:`agent.copilot.intents.IntentRouter`)."""

    def choose(
        self,
        question: str,
        focus: dict[str, Any],
        *,
        numbers: OrderNumbers | None = None,
        tools: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]] | None: ...


class MeteredLLM:
    """An LLM that counts its calls and tokens; everything else is passed through."""

    def __init__(self, llm: Any) -> None:
        self.inner = llm
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def chat_model(self) -> Any:
        return getattr(self.inner, "chat_model", None)

    def complete(self, messages, **kwargs):
        self.calls += 1
        result = self.inner.complete(messages, **kwargs)
        self.prompt_tokens += int(result.prompt_tokens or 0)
        self.completion_tokens += int(result.completion_tokens or 0)
        self.seconds += float(result.seconds or 0.0)
        return result

    def stream(self, messages, **kwargs):
        self.calls += 1
        pieces = 0
        for token in self.inner.stream(messages, **kwargs):
            pieces += 1
            yield token
        last = self.inner.last_usage() if hasattr(self.inner, "last_usage") else None
        if last is not None:
            self.prompt_tokens += int(last.prompt_tokens or 0)
            self.completion_tokens += int(last.completion_tokens or 0)
            self.seconds += float(last.seconds or 0.0)
        else:  # a provider that does not report usage: one streamed piece is about one token
            self.completion_tokens += pieces

    def last_usage(self):
        return self.inner.last_usage() if hasattr(self.inner, "last_usage") else None

    def usage(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
        }

    def __getattr__(self, name: str) -> Any:  # anything else the provider offers
        return getattr(self.inner, name)


@dataclass
class CopilotContext:
    factory: sessionmaker[Session]
    """Sessions on the ERP snapshot and the ops store."""
    policy: Policy
    llm: Any | None = None
    """The language model, or None: every text is then the fact-only template."""
    llm_unavailable: str | None = None
    """Why there is no model (e.g. the local model is not installed), shown as the fallback reason."""
    collection: Any | None = None
    """The SOP index (``knowledge.store.open_collection``), or None: no SOP passages are cited."""
    intents: IntentChooser | None = None
    """Chooses the READ tool of a common question by meaning (:mod:`agent.copilot.intents`), with the
    SOP index's embedding model; None: the rules and the model choose."""
    tools: dict[str, Any] = field(default_factory=dict)
    """The READ tools offered in chat, by name (``tools.read.registry.build_read_tools`` + ``search_sops``)."""
    username: str | None = None
    """Who is asking (chat): the requester of any approval request."""
    thread_id: str | None = None
