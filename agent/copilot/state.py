"""The graph's state: what one run carries and what a chat thread remembers.

Checkpointed per thread (``agent.checkpoint``), so every value is plain JSON: strings, numbers,
booleans, lists and dicts — no ORM objects, no LangChain messages, no dates (ISO strings). Who is
asking, the database, the policy and the model are run context (:mod:`agent.copilot.context`), never state.

Fields written for one run (a triage request or one chat turn) are reset by the caller's input;
``messages`` and ``focus`` are the thread's memory and persist across turns.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

__all__ = ["CopilotState", "Message", "Observation"]


class Message(TypedDict):
    """One turn of the conversation: ``role`` is ``user`` or ``assistant``."""

    role: Literal["user", "assistant"]
    content: str


class Observation(TypedDict, total=False):
    """One tool call of a chat turn and what it returned (a READ tool's dict, or its error message)."""

    tool: str
    args: dict[str, Any]
    result: Any
    error: str | None
    id: str  # the model's tool-call id on the native tool-calling path
    round: int  # the chat round that made the call (the native path replays calls round by round)


class CopilotState(TypedDict, total=False):
    # --- which way in ---------------------------------------------------------------------------
    mode: Literal["triage", "chat"]
    """``triage``: order ids or a pasted text in, triage results out. ``chat``: one question in a thread."""

    # --- triage ---------------------------------------------------------------------------------
    text: str | None
    """Pasted text or e-mail to find order numbers in (``triage_text``); None when ids are given."""
    order_ids: list[str]
    """In: the ids asked for. After ``resolve``: the ids the database holds, in the order asked."""
    not_found: list[str]
    """Ids asked for (or found in the text) that no order has: reported, never invented."""
    near_misses: dict[str, list[str]]
    """For an id in ``not_found``: existing ids one edit away ("SO-10042" → ["SO-100042"])."""
    notes: list[str]
    """What the reading of the numbers should tell the user: "SO-10042 not found; did you mean
    SO-100042?", "S0-10042 read as SO-10042"."""
    customer_request: str | None
    """The sentence of the pasted text that says what the customer wants, verbatim (data, not an order)."""
    explain: bool
    """Whether each triaged order gets an explanation from the model (one call per order)."""
    results: list[dict[str, Any]]
    """One triage dict per id asked for (``agent.triage.service.triage_result`` plus ``explanation``), or
    ``{"order_id", "error"}`` for an unknown id."""

    # --- chat: the thread's memory (kept across turns) -------------------------------------------
    messages: Annotated[list[Message], operator.add]
    """The conversation so far, oldest first."""
    focus: dict[str, Any]
    """What "it" and "that" refer to: ``order_id`` (the order under discussion), ``action`` (the
    action under discussion: ``{"action", "params", "order_id"}``), ``customer`` (a name), ``customer_id``, ``sku``,
    ``warehouse_id``, ``po_id`` (:mod:`agent.copilot.chat_focus`)."""

    proposal: dict[str, Any] | None
    """The approval request the last turn proposed, awaiting the user's "yes": ``{"order_id",
    "action", "params", "risk", "approver_role", "ok", "reasons", "citations"}``. The next turn files
    exactly it on a confirmation and drops it otherwise."""

    # --- chat: this turn -------------------------------------------------------------------------
    dropped: dict[str, Any] | None
    """A proposal this turn dropped (the user did not confirm it), so the answer can say so."""
    question: str
    """The user's message of this turn."""
    pending: list[dict[str, Any]]
    """Tool calls chosen and validated, not yet run: ``{"tool", "args", "id"}``."""
    observations: list[Observation]
    """The tool calls of this turn with their results."""
    chosen_by: Literal["rule", "intent", "model", "fallback"] | None
    """How the turn's first tool call was chosen: by the rules, by meaning (the embedding router,
    :mod:`agent.copilot.intents`), by the model, or by the deterministic reading when the model
    could not choose; None when no tool ran."""
    rounds: int
    """Model rounds taken this turn (native tool calling loops; bounded)."""
    draft: str | None
    """The model's own final text on the native path, before the grounding check."""
    answer: str
    """The reply shown to the user (also appended to ``messages``)."""
    citations: list[str]
    """SOP citations (``SOP-CREDIT-001 §3.2``) the answer rests on."""
    request: dict[str, Any] | None
    """The approval request filed this turn (a confirmed proposal) (``agent.governance.requests.request_action``), if any."""
    injected: bool
    """The model answered without a tool and the question's tool ran for it (one more round)."""
    clarify: bool
    """The question is about an order but names none and none is under discussion: ask which."""
    fallback: bool
    """True when the model's language was replaced by fact-only text (or the model was bypassed)."""
    fallback_reason: str | None
    """Why it fell back: a timeout, a model error, invalid tool arguments, a grounding failure."""
