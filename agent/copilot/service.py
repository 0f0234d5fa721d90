"""The copilot as a library: triage (ids or pasted text) and chat (a thread with memory).

    copilot = Copilot(factory, policy, llm=get_llm(), collection=sops, checkpointer=saver)
    copilot.triage(["SO-100042"])                 # each order's triage dict plus "explanation"
    copilot.triage_text(email)                    # {"order_ids", "not_found", "near_misses", "notes",
                                                  #  "customer_request", "results"}
    copilot.chat("thread-1", "what is blocking SO-100042?", username="planner")
    for event in copilot.chat_stream("thread-1", "why not split it?", username="planner"): ...

Used by the command line (``copilot triage --explain``, ``copilot chat``), the API and panel, and
the eval runner. Decisions come from ``agent.triage.service`` (the policy); the model writes the language
and, when it fails, the copilot falls back to fact-only text and says so (``fallback``).

``llm``: None means the configured model (``agent.llm.get_llm``), loaded at its first use; a model
that cannot be loaded makes every text fact-only. ``collection``: the SOP index; None means no
SOP passages (explanations cite none, chat has no ``search_sops``); its embedding model also routes
the common chat questions by meaning (:mod:`agent.copilot.intents`). ``checkpointer``: where chat
threads live (``agent.checkpoint.open_checkpointer``); None keeps them in this object's memory.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.copilot.context import CopilotContext, MeteredLLM
from agent.copilot.graph import build_graph
from agent.copilot.intents import router_for
from agent.copilot.nodes import explain_one
from agent.copilot.progress import READING, WRITING, progress_label
from agent.copilot.threads import touch_thread
from agent.llm import LLMError, get_llm
from agent.policy import Policy
from knowledge.tool import build_sop_tool
from tools.errors import GuardBlocked
from tools.read.registry import build_read_tools
from tools.sites import ALL, Scope, scoped

__all__ = ["Copilot"]

log = logging.getLogger(__name__)

_TURN_RESET = {
    "pending": [],
    "observations": [],
    "rounds": 0,
    "draft": None,
    "answer": "",
    "citations": [],
    "request": None,
    "dropped": None,
    "fallback": False,
    "fallback_reason": None,
    "injected": False,
    "clarify": False,
    "chosen_by": None,
}


class Copilot:
    def __init__(
        self,
        factory: sessionmaker[Session],
        policy: Policy,
        *,
        llm: Any = None,
        collection: Any = None,
        checkpointer: Any = None,
    ) -> None:
        self.factory = factory
        self.policy = policy
        self._llm = MeteredLLM(llm) if llm is not None else None
        self._llm_resolved = llm is not None
        self._llm_unavailable: str | None = None
        self.collection = collection
        # Chroma keeps the collection's embedding function (no public accessor in chromadb 1.5): the
        # model already loaded for the SOPs routes the common questions by meaning.
        self.intents = router_for(getattr(collection, "_embedding_function", None))
        if checkpointer is None:
            from langgraph.checkpoint.memory import InMemorySaver

            checkpointer = InMemorySaver()
        self._chat_graph = build_graph(checkpointer=checkpointer)
        self._triage_graph = build_graph()  # one-shot runs: nothing to keep
        self._tools: dict[Scope, dict[str, Any]] = {}

    # --- run context ----------------------------------------------------------------------------

    @property
    def llm(self) -> MeteredLLM | None:
        """The model (metered: ``.usage()`` counts calls and tokens), or None when none can be had."""
        if not self._llm_resolved:
            self._llm_resolved = True

            try:
                self._llm = MeteredLLM(get_llm())
            except (LLMError, ValueError) as exc:  # e.g. a bad setting: the facts still answer
                self._llm_unavailable = f"no language model: {exc}"
                log.warning(self._llm_unavailable)
        return self._llm

    @property
    def tools(self) -> dict[str, Any]:
        """The READ tools chat may call, by name (built once)."""
        return self.tools_for(ALL)

    def tools_for(self, scope: Scope) -> dict[str, Any]:
        """The READ tools of a user limited to ``scope``'s sites: every call reads through sessions
        carrying the scope (``tools.sites``), so another site's orders, customers and stock stay unseen."""
        if scope not in self._tools:
            tools = {t.name: t for t in build_read_tools(scoped(self.factory, scope))}
            if self.collection is not None:
                tools["search_sops"] = build_sop_tool(self.collection)
            self._tools[scope] = tools
        return self._tools[scope]

    def _context(
        self,
        *,
        explain: bool = True,
        username: str | None = None,
        thread_id: str | None = None,
        tools: bool = False,
        scope: Scope = ALL,
    ) -> CopilotContext:
        return CopilotContext(
            factory=scoped(self.factory, scope),
            policy=self.policy,
            llm=self.llm if explain else None,
            llm_unavailable=self._llm_unavailable,
            collection=self.collection,
            intents=self.intents if tools else None,
            tools=self.tools_for(scope) if tools else {},
            username=username,
            thread_id=thread_id,
        )

    # --- triage ---------------------------------------------------------------------------------

    def triage(
        self, order_ids: Sequence[str], *, explain: bool = True, scope: Scope = ALL
    ) -> list[dict[str, Any]]:
        """Each order's triage dict (plus ``explanation`` when ``explain``), in the order asked;
        an unknown id (or one of a site outside ``scope``) gives ``{"order_id": id, "error": "order not found"}``."""
        state = self._triage_graph.invoke(
            {"mode": "triage", "order_ids": [str(i) for i in order_ids], "text": None, "explain": explain},
            context=self._context(explain=explain, scope=scope),
        )
        return state.get("results") or []

    def triage_stream(
        self, order_ids: Sequence[str], *, explain: bool = True, scope: Scope = ALL
    ) -> Iterator[dict[str, Any]]:
        """:meth:`triage` as events: ``token`` (``order_id``, ``text``: an explanation as the model
        writes it) and, last, ``final`` with ``results``. A streamed explanation that failed its
        grounding check is superseded by the one in ``final``."""
        state: dict[str, Any] = {}
        for mode, chunk in self._triage_graph.stream(
            {"mode": "triage", "order_ids": [str(i) for i in order_ids], "text": None, "explain": explain},
            context=self._context(explain=explain, scope=scope),
            stream_mode=["custom", "values"],
        ):
            if mode == "custom":
                yield chunk
            else:
                state = chunk
        yield {"type": "final", "results": state.get("results") or []}

    def triage_text(self, text: str, *, explain: bool = True, scope: Scope = ALL) -> dict[str, Any]:
        """The orders a pasted text or e-mail names, triaged. ``customer_request`` is the customer's
        request quoted from the text (data: never acted on). No order number of an existing order:
        ``results`` is empty and ``answer`` asks for one; unknown numbers are listed in ``not_found``,
        with ``near_misses`` (existing ids one edit away) and ``notes`` (one line each, for people)."""
        state = self._triage_graph.invoke(
            {"mode": "triage", "text": text, "order_ids": [], "explain": explain},
            context=self._context(explain=explain, scope=scope),
        )
        missing = state.get("not_found") or []
        out = {
            "order_ids": [i for i in state.get("order_ids") or [] if i not in missing],
            "not_found": missing,
            "near_misses": state.get("near_misses") or {},
            "notes": state.get("notes") or [],
            "customer_request": state.get("customer_request"),
            "results": state.get("results") or [],
        }
        if state.get("answer"):
            out["answer"] = state["answer"]
        return out

    def explain(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add ``explanation`` to triage dicts computed elsewhere (e.g. ``triage_open_book``)."""
        ctx = self._context()
        return [r if "error" in r else {**r, "explanation": explain_one(ctx, r)} for r in results]

    # --- chat -----------------------------------------------------------------------------------

    def _chat_input(self, message: str) -> dict[str, Any]:
        return {"mode": "chat", "question": message.strip(), **_TURN_RESET}

    def _config(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def chat(self, thread_id: str, message: str, *, username: str, scope: Scope = ALL) -> dict[str, Any]:
        """One turn of a conversation on ``thread_id`` (its memory persists in the checkpointer)."""
        final: dict[str, Any] = {}
        for event in self.chat_stream(thread_id, message, username=username, scope=scope):
            if event["type"] == "final":
                final = event
        return {k: v for k, v in final.items() if k != "type"}

    def chat_stream(
        self, thread_id: str, message: str, *, username: str, scope: Scope = ALL
    ) -> Iterator[dict[str, Any]]:
        """The turn as events: ``progress`` (``text``: what the turn is doing, to show until the
        answer's first words: first "Reading the question…", then before each tool call a label
        such as "Looking up SO-100042…", then "Writing the answer…"), ``token`` (text as written),
        ``tool`` (a call about to run), ``citation``, ``request`` (an approval request filed) and,
        last, ``final`` with the same fields :meth:`chat` returns. Tokens of a fallback may be
        superseded: ``final`` is the answer.

        ``scope``: the asking user's sites; every order, tool call and request of the turn is
        limited to them. The thread's record (owner, last turn) is written for retention."""
        if not message or not message.strip():
            raise ValueError("empty message")
        if "\x00" in message:  # every door (CLI, panel, API): no PostgreSQL column holds a NUL
            raise GuardBlocked(
                ["the message contains a NUL character"], "the message contains a NUL character"
            )
        thread_id = thread_id or uuid.uuid4().hex
        yield {"type": "progress", "text": READING}
        touch_thread(self.factory, thread_id, username)
        context = self._context(username=username, thread_id=thread_id, tools=True, scope=scope)
        state: dict[str, Any] = {}
        for mode, chunk in self._chat_graph.stream(
            self._chat_input(message),
            self._config(thread_id),
            context=context,
            stream_mode=["custom", "values", "updates"],
        ):
            if mode == "custom":
                if chunk.get("type") == "tool":
                    yield {"type": "progress", "text": progress_label(chunk["name"], chunk.get("args"))}
                yield chunk
            elif mode == "updates":
                if "act" in chunk:  # the tools ran: the answer is being written (or the next round chosen)
                    yield {"type": "progress", "text": WRITING}
            else:
                state = chunk
        yield {
            "type": "final",
            "answer": state.get("answer", ""),
            "tool_calls": [
                {"name": o["tool"], "args": o["args"], "error": o.get("error")}
                for o in state.get("observations") or []
            ],
            "citations": state.get("citations") or [],
            "request": state.get("request"),
            "proposal": state.get("proposal"),
            "fallback": bool(state.get("fallback")),
            "fallback_reason": state.get("fallback_reason"),
            "chosen_by": state.get("chosen_by"),
            "thread_id": thread_id,
        }

    def history(self, thread_id: str) -> list[dict[str, str]]:
        """The messages of a thread so far (empty for a new thread)."""
        snapshot = self._chat_graph.get_state(self._config(thread_id))
        return list((snapshot.values or {}).get("messages") or [])

    def last_observations(self, thread_id: str) -> list[dict[str, Any]]:
        """The tool calls of the thread's last turn with their results (what its answer may state)."""
        snapshot = self._chat_graph.get_state(self._config(thread_id))
        return list((snapshot.values or {}).get("observations") or [])

    def usage(self) -> dict[str, Any]:
        """Model calls and tokens spent by this copilot so far."""
        return (
            self._llm.usage()
            if self._llm is not None
            else {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
        )
