"""Nodes of the triage path: resolve the orders, triage them (deterministic), explain them (the model).

Each node is a plain function ``(state, runtime) -> update``; ``runtime.context`` is the
:class:`~agent.copilot.context.CopilotContext` of the run. Decisions come from :mod:`agent.triage.service` only;
the model writes the explanation, and when it fails, times out or says something the facts do not
support, the explanation is the fact-only template and says so (``fallback``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime

from agent.copilot import stored
from agent.copilot.context import CopilotContext
from agent.copilot.explain import explain_order, fact_template, grounding_errors, passages_for
from agent.copilot.state import CopilotState
from agent.governance.events import log_llm_fallback, log_triage
from agent.governance.origin import current_origin
from agent.llm import LLMError, parse_json
from agent.llm.priority import in_background
from agent.triage import service as triage
from agent.triage.extract import CustomerRequest, request_sentence, verbatim
from agent.triage.order_numbers import order_mentions, resolve, typed
from prompts import load
from tools.db import read_only

__all__ = [
    "ASK_FOR_ORDER",
    "explain_one",
    "explain_orders",
    "log_event",
    "plain",
    "resolve_orders",
    "route_after_resolve",
    "triage_orders",
]

log = logging.getLogger(__name__)

ASK_FOR_ORDER = (
    "I could not find an order number in your message. Which order is it about? "
    "Give its number, e.g. SO-100042."
)


def not_found_message(near: list[str] | None) -> str:
    """ "order not found", with the existing ids one edit away when there are some."""
    return f"{triage.ORDER_NOT_FOUND}; did you mean {' or '.join(near)}?" if near else triage.ORDER_NOT_FOUND


def plain(value: Any) -> Any:
    """``value`` as plain JSON values (dates and decimals become strings), as `--json` prints it."""
    return json.loads(json.dumps(value, default=str))


def asked_by(ctx: CopilotContext) -> str:
    """Who asked: the chat's user, else the door's (the API's signed-in user, the CLI's OS account)."""
    origin = current_origin()
    return ctx.username or (origin and (origin.user or origin.os_user)) or "copilot"


def log_event(ctx: CopilotContext, log: Callable[..., None], **fields: Any) -> None:
    """Write one audit event with ``log`` (a writer of :mod:`agent.governance.events`) in its own
    transaction."""
    with ctx.factory() as session:
        log(session, **fields)
        session.commit()


# --- resolve --------------------------------------------------------------------------------------


def _customer_request(text: str, llm: Any) -> str | None:
    """The sentence saying what the customer wants, quoted verbatim. The model extracts it when
    there is one (it reads free text better); anything that is not a quote of the text is refused
    and the first sentence with a request cue is taken instead."""
    if llm is not None:
        messages = load("triage_request").messages(text=text[:4000])
        try:
            result = llm.complete(messages, max_tokens=96, json_schema=CustomerRequest)
            quote = parse_json(result.text, CustomerRequest).request
            if quote is None:
                return None  # the model read no request in it
            if verbatim(quote, text):
                return quote.strip(" \"'")
            log.info("customer request %r is not a quote of the text; using the rule", quote[:80])
        except LLMError as exc:
            log.info("customer request extraction fell back: %s", exc)
    return request_sentence(text)


def resolve_orders(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """Which orders: the ids given, or the order numbers in the pasted text (read by the policy's
    shapes, and any other token with a digit as written — domain.md §5: every token that names an
    existing order — confirmed in one query); unknown shaped ones named, with the existing ids one
    edit away."""
    ctx = runtime.context
    text = state.get("text")
    config = ctx.policy.order_numbers
    if text is not None:
        mentions = order_mentions(text, config, exact=True)
    else:
        mentions = [typed(i, config) for i in state.get("order_ids") or []]
    with read_only(ctx.factory) as session:
        res = resolve(session, mentions)
    known = set(res.found)
    # every order number in its place: the existing spelling, or the number as read (when reported)
    asked = [next((c for c in m.candidates if c in known), m.canonical) for m in mentions]
    asked = [a for a, m in zip(asked, mentions, strict=True) if a in known or m.report]
    update: dict[str, Any] = {
        "order_ids": list(dict.fromkeys(asked)),
        "not_found": res.not_found,
        "near_misses": res.near_misses,
        "notes": res.notes(),
    }
    if text is not None:
        update["customer_request"] = _customer_request(text, ctx.llm if state.get("explain") else None)
        if not res.found:
            update["answer"] = ASK_FOR_ORDER if not res.not_found else _none_found(res.notes())
    return update


def _none_found(notes: list[str]) -> str:
    said = " ".join(n if n.rstrip().endswith((".", "?", "!")) else n.rstrip() + "." for n in notes)
    return said + " Which order is it about? Give its number, e.g. SO-100042."


def route_after_resolve(state: CopilotState) -> str:
    return "triage" if state.get("order_ids") else "done"


# --- triage (deterministic) ------------------------------------------------------------------------


def triage_orders(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """Detect and plan each order (the policy decides); record its exceptions; log the triage."""
    ctx = runtime.context
    missing = set(state.get("not_found") or [])
    ids = [o for o in state.get("order_ids") or [] if o not in missing]
    with ctx.factory() as session:
        found = {
            r["order_id"]: plain(r) for r in triage.triage_orders(session, ids, ctx.policy, commit_every=200)
        }
        log_triage(session, found.values(), source="copilot", actor=asked_by(ctx))
        session.commit()
    near = state.get("near_misses") or {}
    results = [
        found.get(o) or {"order_id": o, "error": not_found_message(near.get(o))}
        for o in state.get("order_ids") or []
    ]
    return {"results": results}


# --- explain (the model) ----------------------------------------------------------------------------


def explain_one(ctx: CopilotContext, result: dict[str, Any], *, on_token=None) -> dict[str, Any]:
    """The explanation of one triaged order: at most one model call (plus one retry on a grounding
    failure, inside ``explain_order``); the fact-only template when there is no model or it fails.

    A grounded explanation of the same facts, passages, model and prompts written before is read
    from the store (:mod:`agent.copilot.stored`) instead — ``"stored": true``, no model call — and
    handed to ``on_token`` in one piece; a new grounded one is stored. A fallback is written to the
    audit log (``llm_fallback``) unless it happened in background work nobody saw
    (:func:`agent.llm.priority.background`: the pre-explainer); a background call a person took the
    model from raises ``LLMPreempted`` here, and nothing is stored or logged."""
    if not result.get("exceptions"):  # nothing to explain: no model call
        return {"text": fact_template(result, []), "citations": [], "fallback": False, "reason": None}
    passages = passages_for(result, ctx.collection) if ctx.collection is not None else []
    cited = [p.citation for p in passages]
    key = None
    if ctx.llm is None:
        explanation = {
            "text": fact_template(result, passages),
            "citations": cited,
            "fallback": True,
            "reason": ctx.llm_unavailable or "no language model",
        }
    else:
        key = stored.explanation_key(result, passages, ctx.llm)
        kept = stored.lookup(ctx.factory, key)
        if kept is not None and grounding_errors(kept["text"], result, passages):
            # written under a laxer check than this version's: not served, written again
            log.info(
                "stored explanation of %s fails today's grounding check; explaining again", result["order_id"]
            )
            kept = None
        if kept is not None:
            if on_token is not None:
                on_token(kept["text"])
            return kept
        try:
            explanation = dict(explain_order(result, passages, ctx.llm, on_token=on_token))
        except LLMError as exc:  # explain_order falls back itself; this is the belt to its braces
            explanation = {
                "text": fact_template(result, passages),
                "citations": cited,
                "fallback": True,
                "reason": str(exc),
            }
    explanation = plain(explanation)
    if explanation.get("fallback"):
        if not in_background():
            log_event(
                ctx,
                log_llm_fallback,
                actor=asked_by(ctx),
                order_id=result["order_id"],
                reason=explanation.get("reason") or "",
                model=explanation.get("model")
                or (f"{ctx.llm.provider}:{ctx.llm.name}" if ctx.llm else "none"),
            )
    elif key is not None and not explanation.get("truncated"):
        stored.keep(ctx.factory, key, result["order_id"], explanation)
    return explanation


def explain_orders(state: CopilotState, runtime: Runtime[CopilotContext]) -> dict[str, Any]:
    """Add ``explanation`` to each triaged order (``explain``); unknown orders stay as they are."""
    if not state.get("explain"):
        return {}
    ctx, writer = runtime.context, runtime.stream_writer
    results = []
    for r in state.get("results") or []:
        if "error" in r:
            results.append(r)
            continue
        oid = r["order_id"]
        explanation = explain_one(
            ctx, r, on_token=lambda piece, oid=oid: writer({"type": "token", "order_id": oid, "text": piece})
        )
        results.append({**r, "explanation": explanation})
    return {"results": results}
