"""Nodes of the chat path: choose a tool, run it, answer from its facts.

Rules and the embedding router choose first, on every provider (:func:`choose_without_model`: the
unambiguous questions by their words, their paraphrases by meaning, :mod:`agent.copilot.intents`);
the model chooses the rest, in one of two ways. A model with native tool calling
(``llm.chat_model``, e.g. OpenAI or vLLM) gets the tools bound and may call several, over a few
rounds. The small local model picks one tool and its arguments as JSON under a grammar
(``ROUTE_SCHEMA``). Either way each call is validated before it runs
(:func:`agent.copilot.chat_tools.check_call`); an invalid JSON choice gets one retry with the
error, then the deterministic fallback (an order id in the question: triage it).

Answers rest on facts: "what is blocking SO-…" is the triage result (decided by the policy) with
the model's grounded explanation; "why not", approval requests, late-order lists and what-if
("what happens to other orders if we move SO-… to WH-…?", the approvals' impact computation)
are rendered from the facts; other READ results are phrased by the model and checked
(:func:`agent.copilot.grounding.answer_errors`), falling back to the fact-only text. Nothing here writes
an ERP record; ``request_approval`` proposes a request, and :func:`confirm` files it with the
governance step when the next message says "yes".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime

from agent.comms.service import ask_notice
from agent.copilot import chat_answers as say
from agent.copilot.chat_focus import (
    asks_lookup,
    asks_procedure,
    follow_up_call,
    mentioned_ids,
    needs_order,
    order_entities,
    refers_to_customer_or_sku,
    remember_entities,
)
from agent.copilot.chat_tools import (
    COPILOT_TOOL_SCHEMAS,
    ROUTE_SCHEMA,
    TOOL_NAMES,
    ToolCallError,
    ToolChoice,
    action_from_words,
    asks_for_note,
    catalog,
    check_call,
)
from agent.copilot.context import CopilotContext
from agent.copilot.explain import decision_line
from agent.copilot.grounding import answer_errors, sop_citations_in
from agent.copilot.nodes import explain_one, log_event, plain
from agent.copilot.proposals import (
    asks_for_approval,
    file_proposal,
    is_confirmation,
    make_proposal,
    render_proposal,
    render_requests,
    requests_of,
)
from agent.copilot.state import CopilotState, Observation
from agent.governance.events import log_chat_proposal, log_chat_request, log_llm_fallback
from agent.governance.impact import whatif
from agent.llm import LLMError, parse_json
from agent.triage import service as triage
from agent.triage.order_numbers import find_order_ids, resolve_one
from prompts import facts_json, load
from tools.db import read_only
from tools.errors import OrderNotFound, ToolError
from tools.read.readers import search_orders
from tools.rules import OPEN_ORDER_STATUSES

__all__ = [
    "BEHAVIOUR",
    "MAX_ROUNDS",
    "CopilotTool",
    "answer",
    "choose_without_model",
    "confirm",
    "intent_choice",
    "route_after_act",
    "route_after_select",
    "route_chat",
    "rule_choice",
    "run_tools",
    "select_tool",
]

log = logging.getLogger(__name__)

MAX_ROUNDS = 4  # model rounds of one turn on the native tool-calling path
HISTORY = 6  # messages of the thread shown to the model


def _conversation(state: CopilotState) -> str:
    parts = [m["content"] for m in (state.get("messages") or [])[-HISTORY:]]
    return "\n".join([*parts, state.get("question") or ""])


def _history(state: CopilotState) -> str:
    lines = [
        f"{m['role']}: {' '.join(m['content'].split())[:400]}"
        for m in (state.get("messages") or [])[-HISTORY:]
    ]
    return "\n".join(lines) or "(none)"


def _focus_text(focus: dict[str, Any]) -> str:
    parts = []
    if focus.get("order_id"):
        parts.append(f"order under discussion: {focus['order_id']}")
    if (action := focus.get("action")) and action.get("action"):
        parts.append(f"action under discussion: {action['action']} on {action.get('order_id')}")
    if focus.get("customer"):
        parts.append(f"customer under discussion: {focus['customer']}")
    return "; ".join(parts) or "(nothing yet)"


def _check(state: CopilotState, ctx: CopilotContext, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return check_call(
        tool,
        args,
        question=state.get("question") or "",
        conversation=_conversation(state),
        focus=state.get("focus") or {},
        tools=ctx.tools,
        numbers=ctx.policy.order_numbers,
    )


# --- choose ---------------------------------------------------------------------------------------

_LATE = re.compile(r"\b(late|delay|slip|miss)", re.IGNORECASE)
_OWNER = re.compile(
    r"\b(?:of|for)\s+([A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*?)(?:'s)?\s+orders?\b|\b([A-Z][\w&.-]+)'s\s+orders?\b"
)
_WHY_NOT = re.compile(
    r"\bwhy\s+(?:not|don't|can't|didn't|isn't|wasn't)\b|\binstead\b|\bwhat about\b", re.IGNORECASE
)
_WHY_NOT_STRICT = re.compile(r"\bwhy\s+(?:not|don't|can't|didn't|isn't|wasn't)\b|\binstead\b", re.IGNORECASE)
_REFERS = re.compile(r"\b(it|that|this|the order|this order|its)\b", re.IGNORECASE)
# A question about requests already filed ("is there already an approval request for SO-…?").
_ABOUT_REQUESTS = re.compile(
    r"\b(?:is|are|was|were|has|have|any|already|existing|pending|status)\b[^\n]{0,60}?\b(?:request|approv)",
    re.IGNORECASE,
)
_WHATIF = re.compile(
    r"\bwhat\s+(?:happens|would happen|if)\b|\bimpact\b|\bother orders\b|\bwho (?:gets|would get) hurt\b",
    re.IGNORECASE,
)
_IF_WE = re.compile(r"\bif\s+(?:we|i)\b", re.IGNORECASE)  # "what happens to other orders if we move it"
_PO_WORDS = re.compile(r"\b(?:po|pos|purchase orders?)\b", re.IGNORECASE)
# A question about requests names one ("request", "pending approval"); "have it approved" instructs.
_REQUEST_NOUN = re.compile(
    r"\brequests?\b|\bpending\s+approvals?\b|\bapproval\s+status\b|\bawaiting\s+approval\b", re.IGNORECASE
)
_HAVE_APPROVED = re.compile(r"\b(?:have|get|got|getting)\b[^.?!]{0,40}\bapproved\b", re.IGNORECASE)
_TO_WAREHOUSE = re.compile(r"\b(?:to|into|from)\s+(WH[-_]?[A-Za-z0-9]+)\b", re.IGNORECASE)


def whatif_call(question: str, order: str | None) -> tuple[str, dict[str, Any]] | None:
    """ "What happens to other orders if we move SO-… to WH-…?": the what-if of that move (rules)."""
    if not order or not _WHATIF.search(question):
        return None
    args: dict[str, Any] = {"order_id": order}
    if m := _TO_WAREHOUSE.search(question):
        args["warehouse_id"] = m.group(1).upper()
    return "what_if", args


def fallback_choice(state: CopilotState, ctx: CopilotContext, reason: str) -> dict[str, Any]:
    """The deterministic reading of the question when the model cannot choose (or there is none)."""
    question, focus = state.get("question") or "", state.get("focus") or {}
    ids = find_order_ids(question, ctx.policy.order_numbers)
    order = ids[0] if ids else focus.get("order_id")
    call: tuple[str, dict[str, Any]] | None = rule_choice(state, ctx)
    if call is not None:
        pass
    elif asks_for_note(question) and order:
        call = ("draft_customer_note", {"order_id": order})
    elif asks_for_approval(question) and len(ids) > 1:
        # one request acts on one order (domain §3): never the first of several named; ask which
        return {
            "pending": [],
            "clarify": True,
            "fallback": True,
            "fallback_reason": reason,
            "chosen_by": None,
        }
    elif asks_for_approval(question) and order:
        call = ("request_approval", {"order_id": order})
    elif order and _ABOUT_REQUESTS.search(question):
        call = ("find_requests", {"order_id": order})
    elif whatif := whatif_call(question, order):
        call = whatif
    elif order and _WHY_NOT.search(question) and action_from_words(question):
        call = ("why_not", {"order_id": order, "action": action_from_words(question)})
    elif ids:
        call = ("triage_order", {"order_id": ids[0]})
    elif _LATE.search(question) and (owner := _OWNER.search(question)):
        call = ("find_late_orders", {"customer_name": (owner.group(1) or owner.group(2)).strip()})
    elif order and _REFERS.search(question):
        call = ("triage_order", {"order_id": order})
    pending = []
    if call is not None:
        try:
            pending = [{"tool": call[0], "args": _check(state, ctx, *call), "id": "fallback-1"}]
        except ToolCallError as exc:
            log.info("fallback call refused: %s", exc)
    return {
        "pending": pending,
        "fallback": True,
        "fallback_reason": reason,
        "chosen_by": "fallback" if pending else None,
    }


def _route_prompt(state: CopilotState, ctx: CopilotContext) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": load("chat_system").render()},
        {
            "role": "user",
            "content": load("chat_route").render(
                tools=catalog(ctx.tools),
                history=_history(state),
                focus=_focus_text(state.get("focus") or {}),
                question=state.get("question") or "",
            ),
        },
    ]


def _select_json(state: CopilotState, ctx: CopilotContext, llm: Any) -> dict[str, Any]:
    messages = _route_prompt(state, ctx)
    problem = None
    for attempt in range(2):  # one retry with the error, then the deterministic fallback
        try:
            result = llm.complete(messages, max_tokens=120, json_schema=ROUTE_SCHEMA)
        except LLMError as exc:  # timeout or failure: no retry, the fallback answers now
            return fallback_choice(state, ctx, f"model failed: {exc}")
        try:
            choice = parse_json(result.text, ToolChoice)
            if choice.tool == "none":
                # No tool for a question about an order, customer, sku or shipment: its facts answer.
                grounded = fallback_choice(
                    state, ctx, "the model chose no tool for a question about the records"
                )
                return grounded if grounded["pending"] else {"pending": []}
            args = _check(state, ctx, choice.tool, choice.arguments())
            return {
                "pending": [{"tool": choice.tool, "args": args, "id": f"route-{attempt + 1}"}],
                "chosen_by": "model",
            }
        except (LLMError, ToolCallError) as exc:
            problem = str(exc)
            log.info("tool choice refused (attempt %d): %s", attempt + 1, problem)
            messages = [
                *messages,
                {"role": "assistant", "content": result.text},
                {
                    "role": "user",
                    "content": f"That choice was refused: {problem}\n"
                    "Answer again with one corrected JSON object.",
                },
            ]
    return fallback_choice(state, ctx, f"invalid tool choice: {problem}")


def _lc_tools(ctx: CopilotContext) -> list[Any]:
    """The tools bound to a native tool-calling model: the copilot's own and the READ tools."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    out = []
    for name, schema in COPILOT_TOOL_SCHEMAS.items():
        spec = convert_to_openai_tool(schema)
        spec["function"]["name"] = name
        out.append(spec)
    out += [tool for name, tool in ctx.tools.items() if name in TOOL_NAMES]
    return out


def _lc_messages(state: CopilotState) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    out: list[Any] = [SystemMessage(load("chat_system").render())]
    for m in (state.get("messages") or [])[-HISTORY:]:
        out.append(HumanMessage(m["content"]) if m["role"] == "user" else AIMessage(m["content"]))
    focus = _focus_text(state.get("focus") or {})
    out.append(HumanMessage(f"{state.get('question') or ''}\n\n(context: {focus})"))
    rounds: dict[int, list[Observation]] = {}
    for obs in state.get("observations") or []:
        rounds.setdefault(int(obs.get("round", 0)), []).append(obs)
    for _, calls in sorted(rounds.items()):
        out.append(
            AIMessage("", tool_calls=[{"name": o["tool"], "args": o["args"], "id": o["id"]} for o in calls])
        )
        for o in calls:
            body = o["error"] if o.get("error") else json.dumps(o["result"], default=str)[:6000]
            out.append(
                ToolMessage(body, tool_call_id=o["id"], status="error" if o.get("error") else "success")
            )
    return out


def _select_native(state: CopilotState, ctx: CopilotContext, llm: Any) -> dict[str, Any]:
    rounds = int(state.get("rounds") or 0) + 1
    try:
        reply = llm.chat_model.bind_tools(_lc_tools(ctx)).invoke(_lc_messages(state))
    except Exception as exc:  # the model server: timeout, refusal, network — the facts still answer
        log.warning("native tool calling failed: %s", exc)
        return {
            **fallback_choice(state, ctx, f"model failed: {type(exc).__name__}: {str(exc)[:200]}"),
            "rounds": rounds,
        }
    calls = getattr(reply, "tool_calls", None) or []
    if not calls and not state.get("observations") and not state.get("injected"):
        # The model answered a question about the records without reading them: the tool the
        # question needs runs, its result goes back to the model, and it gets one more round.
        grounded = fallback_choice(state, ctx, "the model answered without calling a tool")
        if grounded["pending"]:
            return {
                "pending": grounded["pending"],
                "rounds": rounds,
                "injected": True,
                "chosen_by": "fallback",
            }
    if not calls:
        return {"pending": [], "draft": str(reply.content or ""), "rounds": rounds}
    pending, refused = [], []
    for n, call in enumerate(calls):
        call_id = call.get("id") or f"call-{rounds}-{n}"
        try:
            pending.append(
                {
                    "tool": call["name"],
                    "args": _check(state, ctx, call["name"], call.get("args") or {}),
                    "id": call_id,
                }
            )
        except ToolCallError as exc:  # back to the model as the tool's message
            refused.append(
                {
                    "tool": call["name"],
                    "args": call.get("args") or {},
                    "result": None,
                    "error": str(exc),
                    "id": call_id,
                    "round": rounds,
                }
            )
    update: dict[str, Any] = {"pending": pending, "rounds": rounds, "chosen_by": "model" if pending else None}
    if refused:
        update["observations"] = [*(state.get("observations") or []), *refused]
    return update


_BLOCKING = re.compile(
    r"\b(block\w*|wrong|hold|held|holding|stuck|problem|issue|status|explain|going on|"
    r"happening|late|delayed)\b",
    re.IGNORECASE,
)


def rule_choice(state: CopilotState, ctx: CopilotContext) -> tuple[str, dict[str, Any]] | None:
    """The questions rules read without a model, on every provider: a short "what is blocking
    SO-…?", a what-if naming one order, a note to draft, "why not split it?" about the order under
    discussion, a customer's late orders by name, and the follow-ups whose tool and ids are certain
    (:func:`agent.copilot.chat_focus.follow_up_call`: "the other orders of this customer", "stock of
    that SKU", "which orders wait on PO-…"). The model then only phrases; it chooses the rest."""
    question = state.get("question") or ""
    focus = state.get("focus") or {}
    ids = find_order_ids(question, ctx.policy.order_numbers)
    if len(ids) == 1 and len(question) <= 200 and (whatif := whatif_call(question, ids[0])):
        return whatif
    plain_question = (
        not _WHY_NOT_STRICT.search(question)
        and not asks_for_approval(question)
        and not (_ABOUT_REQUESTS.search(question) and _REQUEST_NOUN.search(question))
        and not asks_for_note(question)
    )
    if (
        not ids
        and focus.get("order_id")
        and _IF_WE.search(question)
        and len(question) <= 200
        and not (refers_to_customer_or_sku(question) or _PO_WORDS.search(question))
        and not any(mentioned_ids(question, ctx.policy.order_numbers).values())  # no SKU or PO named
    ):
        if (whatif := whatif_call(question, focus["order_id"])) and not asks_for_approval(question):
            return whatif  # "what happens to other orders if we move it to WH-…?" before "other orders"
    if (follow := follow_up_call(question, focus, ctx.policy.order_numbers)) is not None and plain_question:
        return follow
    if len(ids) == 1 and len(question) <= 160 and _BLOCKING.search(question) and plain_question:
        return "triage_order", {"order_id": ids[0]}
    if (
        len(ids) == 1 and len(question.split()) <= 3 and plain_question
    ):  # "SO-…" alone: the answer to "which order?"
        return "triage_order", {"order_id": ids[0]}
    if len(ids) == 1 and asks_for_note(question):  # "draft a note to Acme about SO-…"
        return "draft_customer_note", {"order_id": ids[0]}
    order = ids[0] if len(ids) == 1 else (focus.get("order_id") if not ids else None)
    short = len(question) <= 160
    if order and short and _WHY_NOT.search(question) and (action := action_from_words(question)):
        if not asks_for_approval(question) and not _WHATIF.search(question):
            return "why_not", {"order_id": order, "action": action}
    if (
        not ids
        and order
        and short
        and _REFERS.search(question)
        and _BLOCKING.search(question)
        and plain_question
        and not refers_to_customer_or_sku(question)  # "will this customer get anything late?"
    ):
        return "triage_order", {"order_id": order}
    if (
        not ids
        and order
        and short
        and (whatif := whatif_call(question, order))
        and not asks_for_approval(question)
    ):
        return whatif
    refers = (
        ids[0] if len(ids) == 1 else (focus.get("order_id") if not ids and _REFERS.search(question) else None)
    )
    if refers and short and _ABOUT_REQUESTS.search(question) and _REQUEST_NOUN.search(question):
        # "is there already a request for it?" — not "can you have it approved?" (an instruction, the
        # model's to read) nor "are there approved substitutes?" (about the part)
        if not (
            asks_for_approval(question)
            or asks_for_note(question)
            or _WHATIF.search(question)
            or _HAVE_APPROVED.search(question)
            or refers_to_customer_or_sku(question)
        ):
            return "find_requests", {"order_id": refers}
    if not ids and short and asks_procedure(question) and not _REFERS.search(question):
        if not asks_for_approval(question) and not asks_for_note(
            question
        ):  # "who may release a credit hold?"
            return "search_sops", {"question": question}
    if not ids and short and _LATE.search(question) and (owner := _OWNER.search(question)):
        name = (owner.group(1) or owner.group(2)).strip()
        if name.lower() not in {"this", "that", "the", "this customer", "that customer", "the customer"}:
            return "find_late_orders", {"customer_name": name}
    return None


def select_tool(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """Which tool answers the question: a native tool-calling model chooses; for the small local
    model, rules read the unambiguous "what is blocking SO-…?" (saving a slow call) and the model
    chooses the rest; without a model, the deterministic reading. A proposal the previous turn made
    is dropped here: this turn did not confirm it (a confirmation goes to :func:`confirm`)."""
    ctx = runtime.context
    update = _choose(state, ctx)
    if state.get("chosen_by") or not update.get("chosen_by"):
        update.pop("chosen_by", None)  # the turn's first choice says how it was chosen
    if state.get("proposal") and not int(state.get("rounds") or 0):
        update = {**update, "proposal": None, "dropped": state["proposal"]}
    return update


def intent_choice(state: CopilotState, ctx: CopilotContext) -> tuple[str, dict[str, Any]] | None:
    """After the rules: the READ call a paraphrase asks for, chosen by meaning with the embedding
    model already loaded (:mod:`agent.copilot.intents`), when its intent and every argument are
    certain. Never a question that asks for an approval or a note, nor one about requests unless it
    goes to ``find_requests``, nor a long or double question: the model reads those."""
    question = state.get("question") or ""
    if (
        ctx.intents is None
        or len(question) > 200
        or question.count("?") > 1
        or asks_for_approval(question)
        or asks_for_note(question)
    ):
        return None
    call = ctx.intents.choose(
        question, state.get("focus") or {}, numbers=ctx.policy.order_numbers, tools=ctx.tools
    )
    if call is not None and call[0] != "find_requests" and _ABOUT_REQUESTS.search(question):
        return None
    return call


def choose_without_model(state: CopilotState, ctx: CopilotContext) -> dict[str, Any] | None:
    """The first choice of a turn when no model is needed, on every provider: ask which order (a
    question about "it" with none under discussion), the rules' call (:func:`rule_choice`), else
    the call chosen by meaning (:func:`intent_choice`); ``chosen_by`` says which. None: the model
    chooses."""
    if needs_order(state.get("question") or "", state.get("focus") or {}, ctx.policy.order_numbers):
        return {"pending": [], "clarify": True}  # "why not split the shipment?": which order?
    for how, choose in (("rule", rule_choice), ("intent", intent_choice)):
        if (call := choose(state, ctx)) is None:
            continue
        try:
            args = _check(state, ctx, *call)
        except ToolCallError as exc:  # e.g. an id the rules read that the thread never named
            log.info("%s call refused: %s", how, exc)
            continue
        return {"pending": [{"tool": call[0], "args": args, "id": f"{how}-1"}], "chosen_by": how}
    return None


def _choose(state: CopilotState, ctx: CopilotContext) -> dict[str, Any]:
    llm = ctx.llm
    if int(state.get("rounds") or 0) == 0 and (chosen := choose_without_model(state, ctx)) is not None:
        return chosen
    if llm is None:
        return fallback_choice(state, ctx, ctx.llm_unavailable or "no language model")
    if llm.chat_model is not None:
        return _select_native(state, ctx, llm)
    return _select_json(state, ctx, llm)


def route_chat(state: CopilotState) -> str:
    """A plain "yes" / "confirm" with a proposal on the table files it; anything else is a question."""
    return "confirm" if state.get("proposal") and is_confirmation(state.get("question") or "") else "select"


def confirm(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """File exactly the proposed action with the approval step, whose guard checks the records now."""
    ctx, writer = runtime.context, runtime.stream_writer
    proposal = dict(state.get("proposal") or {})
    args = {k: proposal.get(k) for k in ("order_id", "action", "params")}
    writer({"type": "tool", "name": "request_approval", "args": args})
    request: dict[str, Any] | None
    try:
        filed: dict[str, Any] = plain(file_proposal(ctx, proposal))
        request, text, error = filed, say.render_request(filed), None
    except ToolError as exc:  # the order or the requester is gone, or the action is refused outright
        request, error = None, str(exc)
        text = f"Not filed: {exc}"
    if request is not None:
        writer({"type": "request", "request": request})
        log_event(
            ctx,
            log_chat_request,
            actor=ctx.username or "copilot",
            order_id=request.get("order_id"),
            request_id=request.get("id"),
            action=request.get("action"),
            thread=ctx.thread_id,
        )
    writer({"type": "token", "text": text})
    return {
        "proposal": None,
        "request": request,
        "observations": [
            {"tool": "request_approval", "args": args, "result": request, "error": error, "id": "confirm-1"}
        ],
        "answer": text,
        "messages": [
            {"role": "user", "content": state.get("question") or ""},
            {"role": "assistant", "content": text},
        ],
    }


def route_after_select(state: CopilotState) -> str:
    if state.get("pending"):
        return "act"
    rounds = int(state.get("rounds") or 0)
    if rounds and state.get("draft") is None and not state.get("fallback") and rounds < MAX_ROUNDS:
        return "select"  # native path: every call was refused; the model reads why and tries again
    return "answer"


# --- act ------------------------------------------------------------------------------------------


def _own_order_id(ctx: CopilotContext, order_id: str) -> str:
    """The existing order a typed id names (``SO-1`` read from "SO1" is the order ``SO1``); raises
    :class:`OrderNotFound` with the near misses."""
    with read_only(ctx.factory) as session:
        found, near = resolve_one(session, order_id, ctx.policy.order_numbers)
    if found is None:
        raise OrderNotFound(order_id, near)
    return found


def _triage_readonly(ctx: CopilotContext, order_id: str) -> dict[str, Any]:
    """The order's triage without recording it; raises :class:`OrderNotFound` (a ToolError)."""
    with read_only(ctx.factory) as session:
        found, near = resolve_one(session, order_id, ctx.policy.order_numbers)
        if found is None:  # "SO-10042": not found, perhaps one edit away from an existing order
            raise OrderNotFound(order_id, near)
        [result] = triage.triage_orders(session, [found], ctx.policy, record=False)
    if "error" in result:
        raise OrderNotFound(result["order_id"])
    return plain(result)


def _why_not(ctx: CopilotContext, order_id: str, action: str) -> dict[str, Any]:
    result = _triage_readonly(ctx, order_id)
    rec = result.get("recommendation")
    candidates = []
    for option in result.get("options") or []:
        exc: dict[str, Any] = next(
            (e for e in result["exceptions"] if e["instance"] == option["instance"]), {}
        )
        feasible = [c for c in option["candidates"] if c["feasible"]]
        for c in option["candidates"]:
            if c["action"] == action:
                candidates.append(
                    {
                        "type": option["type"],
                        "line_no": exc.get("line_no"),
                        "shipment_id": exc.get("shipment_id"),
                        "feasible": c["feasible"],
                        "reason": c["reason"],
                        "params": c.get("params"),
                        "recommended": bool(feasible) and feasible[0] is c,
                        "instead": feasible[0]["action"] if feasible and feasible[0] is not c else None,
                    }
                )
    return {
        "order_id": order_id,
        "action": action,
        "candidates": candidates,
        "recommendation": rec,
        "exception_types": [e["type"] for e in result["exceptions"]],
    }


@dataclass
class _CustomerBook:
    """A customer's open orders (earliest promised first) with their triage, not recorded."""

    rows: list[dict[str, Any]]
    results: list[dict[str, Any]]
    checked_all: bool  # every open order was read (no page left)
    known: bool  # the customer has orders at all

    def label(self, customer_name: str | None, customer_id: str | None) -> dict[str, Any]:
        """``customer`` (its names) and ``customer_id`` (when one) as the answer states them."""
        names = sorted({r.get("customer_name") or r["customer_id"] for r in self.rows})
        ids = sorted({r["customer_id"] for r in self.rows})
        return {
            "customer": ", ".join(names) or customer_name or customer_id,
            "customer_id": ids[0] if len(ids) == 1 else customer_id,
        }


def _customer_book(
    ctx: CopilotContext, customer_name: str | None, customer_id: str | None, exclude: str | None = None
) -> _CustomerBook:
    rows, checked_all = [], True
    with read_only(ctx.factory) as session:
        for status in OPEN_ORDER_STATUSES:
            page = search_orders(
                session, customer_id=customer_id, customer_name=customer_name, status=status, limit=50
            )
            rows += [r for r in page["orders"] if r["order_id"] != exclude]
            checked_all = checked_all and page.get("next_offset") is None
        ordered = sorted(rows, key=lambda r: (r.get("promised_date") or "", r["order_id"]))
        results = triage.triage_orders(session, [r["order_id"] for r in ordered], ctx.policy, record=False)
        known = (
            bool(rows)
            or search_orders(session, customer_id=customer_id, customer_name=customer_name, limit=1)["total"]
            > 0
        )
    return _CustomerBook(ordered, results, checked_all, known)


def _customer_orders(
    ctx: CopilotContext, customer_name: str | None, customer_id: str | None, exclude: str | None
) -> dict[str, Any]:
    """A customer's open orders (but ``exclude``), earliest promised first, each with what blocks
    it (its triage, not recorded) and the recommendation: "the other orders of this customer"."""
    book = _customer_book(ctx, customer_name, customer_id, exclude)
    orders = [
        {
            "order_id": r["order_id"],
            "status": row["status"],
            "promised_date": row.get("promised_date"),
            "order_value": row.get("order_value"),
            "at_risk": bool(r.get("exceptions")),
            "exceptions": sorted({e["type"] for e in r.get("exceptions") or []}),
            "recommendation": (r.get("recommendation") or {}).get("action"),
        }
        for row, r in zip(book.rows, book.results, strict=True)
    ]
    return plain(
        {
            **book.label(customer_name, customer_id),
            "known": book.known,
            "excluded": exclude,
            "open_orders": len(orders),
            "at_risk_count": sum(o["at_risk"] for o in orders),
            "orders": orders,
            "more": not book.checked_all,
        }
    )


def _late_orders(ctx: CopilotContext, customer_name: str | None, customer_id: str | None) -> dict[str, Any]:
    book = _customer_book(ctx, customer_name, customer_id)
    at_risk = [
        {
            "order_id": r["order_id"],
            "customer": row.get("customer_name"),
            "promised_date": row.get("promised_date"),
            "exceptions": sorted({e["type"] for e in r["exceptions"]}),
            "recommendation": (r.get("recommendation") or {}).get("action"),
        }
        for row, r in zip(book.rows, book.results, strict=True)
        if r.get("exceptions")
    ]
    return plain(
        {
            **book.label(customer_name, customer_id),
            "known": book.known,
            "open_orders": len(book.rows),
            "at_risk": at_risk,
            "checked": len(book.rows),
            "more": not book.checked_all,
        }
    )


def _what_if(ctx: CopilotContext, state: CopilotState, args: dict[str, Any]) -> dict[str, Any] | str:
    """The impact of the named action (a move to a warehouse, an action in words, the action under
    discussion, else the recommendation) on the other open orders: the what-if of the approvals."""
    order_id, action = _own_order_id(ctx, args["order_id"]), args.get("action")
    params = None
    if action == "REALLOCATE_WAREHOUSE" and args.get("warehouse_id"):
        params = {
            "order_id": order_id,
            "line_no": args.get("line_no") or _line_to_move(ctx, order_id),
            "to_warehouse_id": args["warehouse_id"],
        }
    elif action is not None:
        discussed = (state.get("focus") or {}).get("action") or {}
        if discussed.get("order_id") == order_id and discussed.get("action") == action:
            params = discussed.get("params")
        else:
            feasible = [
                c for c in _why_not(ctx, order_id, action)["candidates"] if c["feasible"] and c.get("params")
            ]
            if not feasible:
                return f"{action} is not feasible for any exception of {order_id}: nothing to simulate"
            params = feasible[0]["params"]
    with ctx.factory() as session:
        try:
            return plain(whatif(session, ctx.policy, order_id=order_id, action=action, params=params))
        finally:
            session.rollback()


def _line_to_move(ctx: CopilotContext, order_id: str) -> int:
    """The line a "move the order to WH-…" means: its first line short of stock, else line 1."""
    result = _triage_readonly(ctx, order_id)
    short = [
        e["line_no"]
        for e in result["exceptions"]
        if e["type"] in ("INVENTORY_SHORTFALL", "ALLOCATION_CONFLICT") and e.get("line_no")
    ]
    return min(short) if short else 1


def _propose(ctx: CopilotContext, state: CopilotState, order_id: str, action: str | None) -> dict[str, Any]:
    """The approval request the user asked for, concrete and guarded, shown before anything is filed."""
    order_id = _triage_readonly(ctx, order_id)["order_id"]  # the order's own id; NotFound otherwise
    focus = state.get("focus") or {}
    discussed = focus.get("action") or {}
    params = (
        discussed.get("params")
        if discussed.get("order_id") == order_id and discussed.get("action") == action
        else None
    )
    if params is None and action is not None:  # an action named in words: its feasible parameters
        feasible = [
            c for c in _why_not(ctx, order_id, action)["candidates"] if c["feasible"] and c.get("params")
        ]
        params = feasible[0]["params"] if feasible else None
    citations = focus.get("citations") if focus.get("order_id") == order_id else None
    return make_proposal(ctx, order_id, action, params, citations or [])


def _remember_action(focus: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> None:
    """After a triage: its recommendation is the action under discussion."""
    if result.get("recommendation"):
        focus["action"] = {**result["recommendation"], "order_id": result["order_id"]}


def _remember_feasible(focus: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> None:
    """After a "why not": the action asked about, with its feasible parameters, if it has any."""
    feasible = [c for c in result["candidates"] if c["feasible"] and c.get("params")]
    if feasible:
        focus["action"] = {
            "action": result["action"],
            "params": feasible[0]["params"],
            "order_id": result["order_id"],
        }


def _remember_customer(focus: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> None:
    focus["customer"] = args.get("customer_name") or args.get("customer_id")


def _remember_nothing(focus: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CopilotTool:
    """What one of the copilot's own tools does in a turn: ``run`` it (expected failures raise a
    ToolError), ``remember`` what it was about in the thread's focus, ``render`` its facts as text
    (the answer, or the fallback when the model's words stray); ``explained``: the answer is the
    model's grounded explanation of the facts; ``proposes``: its result is an approval request to show
    and confirm (:mod:`agent.copilot.proposals`)."""

    run: Callable[[CopilotContext, CopilotState, dict[str, Any]], Any]
    render: Callable[[Any], str]
    remember: Callable[[dict[str, Any], dict[str, Any], Any], None] = _remember_nothing
    explained: bool = False
    proposes: bool = False


# The one mapping of the copilot's tools (agent.copilot.chat_tools.COPILOT_TOOLS) to what they do.
BEHAVIOUR: dict[str, CopilotTool] = {
    "triage_order": CopilotTool(
        run=lambda ctx, state, a: _triage_readonly(ctx, a["order_id"]),
        render=say.render_triage_facts,
        remember=_remember_action,
        explained=True,
    ),
    "why_not": CopilotTool(
        run=lambda ctx, state, a: _why_not(ctx, a["order_id"], a["action"]),
        render=say.render_why_not,
        remember=_remember_feasible,
    ),
    "request_approval": CopilotTool(
        run=lambda ctx, state, a: _propose(ctx, state, a["order_id"], a.get("action")),
        render=render_proposal,
        proposes=True,
    ),
    "find_requests": CopilotTool(
        run=lambda ctx, state, a: requests_of(ctx, _triage_readonly(ctx, a["order_id"])["order_id"]),
        render=render_requests,
    ),
    "find_late_orders": CopilotTool(
        run=lambda ctx, state, a: _late_orders(ctx, a.get("customer_name"), a.get("customer_id")),
        render=say.render_late_orders,
        remember=_remember_customer,
    ),
    "find_customer_orders": CopilotTool(
        run=lambda ctx, state, a: _customer_orders(
            ctx, a.get("customer_name"), a.get("customer_id"), a.get("exclude_order_id")
        ),
        render=say.render_customer_orders,
    ),
    "draft_customer_note": CopilotTool(
        run=lambda ctx, state, a: ask_notice(
            ctx.factory,
            ctx.policy,
            ctx.llm,
            order_id=_own_order_id(ctx, a["order_id"]),
            username=ctx.username or "unknown",
        ),
        render=say.render_note,
    ),
    "what_if": CopilotTool(run=_what_if, render=say.render_whatif),
}


def _execute(ctx: CopilotContext, state: CopilotState, tool: str, args: dict[str, Any]) -> Any:
    """Run one validated call; expected failures (ToolError) come back as their message."""
    own = BEHAVIOUR.get(tool)
    if own is None:
        return plain(ctx.tools[tool].invoke(args))  # READ tools answer expected failures as a string
    try:
        return own.run(ctx, state, args)
    except ToolError as exc:
        return str(exc)


def run_tools(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """Run the pending calls (READ tools and the copilot's own); remember what they were about."""
    ctx, writer = runtime.context, runtime.stream_writer
    observations = list(state.get("observations") or [])
    focus = dict(state.get("focus") or {})
    proposal = state.get("proposal")
    for call in state.get("pending") or []:
        tool, args = call["tool"], call["args"]
        writer({"type": "tool", "name": tool, "args": args})
        result = _execute(ctx, state, tool, args)
        error = result if isinstance(result, str) else None
        observations.append(
            {
                "tool": tool,
                "args": args,
                "result": None if error else result,
                "error": error,
                "id": call["id"],
                "round": int(state.get("rounds") or 1),
            }
        )
        if error:
            continue
        if args.get("order_id"):  # the order's own id ("SO1" when "so-1" was typed), where a tool says it
            order_id = (result.get("order_id") if isinstance(result, dict) else None) or args["order_id"]
            if order_id != focus.get("order_id") or "customer_id" not in focus:
                # a new order under discussion: its customer, short sku and warehouse come with it
                for key in ("customer_id", "customer", "sku", "warehouse_id"):
                    focus.pop(key, None)
                focus.update(order_entities(ctx.factory, order_id))
            focus["order_id"] = order_id
        remember_entities(focus, tool, args, result)
        own = BEHAVIOUR.get(tool)
        if own is None:
            continue
        own.remember(focus, args, result)
        if own.proposes:
            proposal = result if result.get("ok") else None
            writer({"type": "proposal", "proposal": result})
            log_event(
                ctx,
                log_chat_proposal,
                actor=ctx.username or "copilot",
                order_id=result["order_id"],
                action=result["action"],
                params=result["params"],
                guard_ok=bool(result.get("ok")),
                thread=ctx.thread_id,
            )
    return {"observations": observations, "pending": [], "focus": focus, "proposal": proposal}


def route_after_act(state: CopilotState) -> str:
    """Native tool calling (``rounds`` counts its model rounds) goes back to the model; else answer."""
    rounds = int(state.get("rounds") or 0)
    return "select" if rounds and not state.get("fallback") and rounds < MAX_ROUNDS else "answer"


# --- answer ---------------------------------------------------------------------------------------


def _facts_answer(obs: Observation, question: str) -> bool:
    """Whether a lookup chosen without a model is answered by its rendered facts: the router chose
    it by the question's meaning, or the rules did and the question's own words ask for it."""
    how = str(obs.get("id") or "")
    if not say.renders_facts(obs["tool"]) or not how.startswith(CHOSEN_WITHOUT_MODEL):
        return False
    return how.startswith("intent-") or asks_lookup(obs["tool"], question)


# The call ids of tool calls chosen without a model: rules, the deterministic reading (no model or it
# failed) and the intent router; a model's own choice is "route-N" or its native call id.
CHOSEN_WITHOUT_MODEL = ("rule-", "fallback-", "intent-")


def _phrase(
    ctx: CopilotContext, state: CopilotState, facts: Any, fallback_text: str, citations: list[str], writer
) -> tuple[str, bool, str | None]:
    """The model's answer from ``facts``, checked; the fact-only text when it fails or strays."""
    if ctx.llm is None:
        return fallback_text, True, ctx.llm_unavailable or "no language model"
    prompt = load("chat_answer").render(
        question=state.get("question") or "",
        history=_history(state),
        facts=facts_json(facts),
    )
    messages = [
        {"role": "system", "content": load("chat_system").render()},
        {"role": "user", "content": prompt},
    ]
    try:
        pieces = []
        for piece in ctx.llm.stream(messages, max_tokens=220):
            pieces.append(piece)
            writer({"type": "token", "text": piece})
        text = "".join(pieces).strip()
    except LLMError as exc:
        return fallback_text, True, f"model failed: {exc}"
    problems = answer_errors(text, facts, question=state.get("question") or "", citations=citations)
    if problems:
        return fallback_text, True, "not grounded in the facts: " + "; ".join(problems[:3])
    return text, False, None


def _passages(observations: Sequence[Observation]) -> list[str]:
    return [
        p["citation"]
        for o in observations
        if o["tool"] == "search_sops" and isinstance(o.get("result"), dict)
        for p in o["result"].get("passages") or []
    ]


def answer(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """The reply of the turn, from the facts of its tool calls; appended to the thread's memory."""
    ctx, writer = runtime.context, runtime.stream_writer
    observations = state.get("observations") or []
    fallback, reason = bool(state.get("fallback")), state.get("fallback_reason")
    citations: list[str] = []
    ran = [o for o in observations if not o.get("error")]
    draft = state.get("draft")
    if draft is not None and observations:  # native path: the model's own text, checked
        cited = _passages(observations)
        facts = [o.get("result") or o.get("error") for o in observations]
        problems = answer_errors(draft, facts, question=state.get("question") or "", citations=cited)
        if problems:
            text = "\n".join(_render(o) for o in observations)
            fallback, reason = True, "not grounded in the facts: " + "; ".join(problems[:3])
        else:
            text, citations = draft, sop_citations_in(draft)
    elif draft is not None:  # native path, no tool: a greeting or a question outside the records
        problems = answer_errors(draft, [], question=state.get("question") or "", citations=[])
        text = draft if not problems else say.HELP
        if problems:
            fallback, reason = True, "not grounded in the facts: " + "; ".join(problems[:3])
    elif not observations:
        focus_order = (state.get("focus") or {}).get("order_id")
        if fallback and focus_order and not state.get("clarify"):
            text = say.unread(focus_order)  # the thread has its order: never "which order?"
        else:
            text = say.ASK if (fallback or state.get("clarify")) else say.HELP
    else:
        last = observations[-1]
        if last.get("error"):
            text = say.render(last["tool"], last["error"])
        elif (own := BEHAVIOUR.get(last["tool"])) is not None and own.explained:
            text, citations, fb, why = _explain(ctx, last["result"], writer)
            fallback, reason = fallback or fb, reason or why
        elif own is not None:
            text = own.render(last["result"])
        elif _facts_answer(last, state.get("question") or ""):
            # A lookup the rules chose (stock, credit, a PO's waiting orders, ...): its rendered facts
            # answer the question as asked, at once; the model phrases only what it chose itself.
            text = say.render(last["tool"], last["result"])
        else:
            cited = _passages(ran)
            text, fb, why = _phrase(
                ctx, state, last["result"], say.render(last["tool"], last["result"]), cited, writer
            )
            fallback, reason = fallback or fb, reason or why
            citations = sop_citations_in(text) if not fb else cited[:3]
    if (dropped := state.get("dropped")) and not state.get("proposal"):
        text = f"(Not filed: {dropped['action']} on {dropped['order_id']}; you did not confirm it.)\n{text}"
    for c in citations:
        writer({"type": "citation", "citation": c})
    focus = dict(state.get("focus") or {})
    if citations:
        focus["citations"] = citations  # what a request for "that" cites
    if fallback:
        log_event(
            ctx,
            log_llm_fallback,
            actor=ctx.username or "copilot",
            order_id=(state.get("focus") or {}).get("order_id"),
            reason=reason or "",
            model=f"{ctx.llm.provider}:{ctx.llm.name}" if ctx.llm is not None else "none",
            thread=ctx.thread_id,
        )
    return {
        "answer": text,
        "citations": citations,
        "fallback": fallback,
        "fallback_reason": reason,
        "focus": focus,
        "messages": [
            {"role": "user", "content": state.get("question") or ""},
            {"role": "assistant", "content": text},
        ],
    }


def _render(obs: Observation) -> str:
    if obs.get("error"):
        return say.render(obs["tool"], obs["error"])
    own = BEHAVIOUR.get(obs["tool"])
    return own.render(obs["result"]) if own is not None else say.render(obs["tool"], obs["result"])


def _explain(ctx: CopilotContext, result: dict[str, Any], writer) -> tuple[str, list[str], bool, str | None]:
    """What blocks the order (facts) and why, in the model's grounded words."""
    header = say.render_triage_header(result)
    if not result.get("exceptions"):
        return header, [], False, None
    writer({"type": "token", "text": header + "\n"})
    # the header already names the recommendation: the explanation's closing decision line is not
    # repeated, streamed or final (a stored explanation arrives in one piece, a new one ends with it).
    # The header says neither the values the approver must supply nor that no action is feasible:
    # then the decision line stays
    rec = result.get("recommendation")
    tail = " " + decision_line(result) if rec and not rec.get("inputs_required") else ""

    def emit(piece: str) -> None:
        piece = piece.removesuffix(tail)
        if piece:
            writer({"type": "token", "text": piece})

    explanation = explain_one(ctx, result, on_token=emit)
    text = explanation["text"].removesuffix(tail)
    if tail and explanation.get("fallback"):  # the fact template states it before its SOP list
        text = text.replace(tail, "", 1)
    return (
        f"{header}\n{text}",
        list(explanation.get("citations") or []),
        bool(explanation.get("fallback")),
        explanation.get("reason"),
    )
