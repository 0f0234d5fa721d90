"""Explanations of one order's triage: written by the model from the facts and SOP passages, checked, cited.

Facts decide, the model explains. ``explain_order`` asks the model for a few sentences built only
from the triage result (exceptions with their evidence, the recommendation) and the retrieved SOP
passages, citing ``[SOP-CREDIT-001 §3.2]`` exactly as ``knowledge.retrieve.citation`` writes them.
``grounding_errors`` then checks every number, date, record id, action/type name and citation in
the text against those facts and passages. On failure the model gets one retry with the errors;
if that fails too — or the model times out, errors or writes nothing — the explanation is the
fact-only template, marked ``fallback: true`` with the reason (logged; and written to the audit log
as ``llm_fallback`` when the caller passes its database session).

    passages = passages_for(result, collection)          # SOPs for the order's exception types
    explanation = explain_order(result, passages, llm, on_token=print)
    explanation["text"], explanation["citations"], explanation["fallback"], explanation["reason"]
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from agent.governance.audit import append_event
from agent.llm import LLM, LLMError
from knowledge.retrieve import retrieve
from prompts import load

__all__ = [
    "MAX_TOKENS",
    "build_messages",
    "explain_order",
    "fact_template",
    "grounding_errors",
    "passages_for",
    "recommended_type",
]

log = logging.getLogger(__name__)

MAX_TOKENS = 160  # a few sentences; the small local model writes ~36 tokens/s on 2 cores
_PASSAGE_CHARS = 300  # each passage as the model sees it: enough for the rule, short for the prompt
_PROMPT_PASSAGES = 2  # the best for the recommendation's type first; all passages may be cited

# Citations as knowledge.retrieve.citation writes them, inside square brackets; several may share
# one pair of brackets, separated by ';' or ','.
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_SOP_REF = re.compile(r"\b(?:SOP-[A-Z0-9]+(?:-[A-Z0-9]+)*)(?:\s*(?:§\s*[\d.]*\d|p\.\s*\d+))?")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# Record ids: hyphenated upper-case codes (SO-100042, WH-DFW, FAS-10234, PO-5001) or letters+digits (SO1, WH2).
_ID = re.compile(r"(?<![\w-])(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Z]+\d+[A-Z0-9]*)(?![\w-])")
_NAME = re.compile(r"\b[A-Z]{2,}(?:_[A-Z]+)+\b")  # CREDIT_HOLD, RELEASE_CREDIT_HOLD
_UNCITED = "no SOP is cited"
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_PERCENT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent\b)")


# --- retrieval ---------------------------------------------------------------------------------------


def _types(result: dict) -> list[str]:
    seen: list[str] = []
    for exc in result.get("exceptions") or []:
        if exc.get("type") and exc["type"] not in seen:
            seen.append(exc["type"])
    return seen


def recommended_type(result: dict) -> str | None:
    """The exception type the order's recommendation resolves (domain.md §4: the plan's first item).

    The instance whose best feasible candidate is the recommendation (same action and params); else
    the first instance with that action feasible; else the order's first exception type."""
    rec = result.get("recommendation") or {}
    types = _types(result)
    if not rec.get("action"):
        return types[0] if types else None
    options = result.get("options") or []
    for opt in options:
        best = next((c for c in opt.get("candidates") or [] if c.get("feasible")), None)
        if (
            best
            and best.get("action") == rec["action"]
            and (best.get("params") or {}) == (rec.get("params") or {})
        ):
            return opt.get("type")
    for opt in options:
        if any(c.get("feasible") and c.get("action") == rec["action"] for c in opt.get("candidates") or []):
            return opt.get("type")
    return types[0] if types else None


def _fitting(result: dict, passages: Sequence) -> list:
    """The passages whose SOP applies to the recommendation's exception type (best first)."""
    kind = recommended_type(result)
    return [p for p in passages if kind and kind in (getattr(p, "applies_to", None) or ())]


def _label_first(result: dict, passages: Sequence) -> list:
    """``passages`` with the first one for the recommendation's type moved to the front."""
    passages = list(passages)
    fitting = _fitting(result, passages)
    if fitting and fitting[0] is not passages[0]:
        passages.remove(fitting[0])
        passages.insert(0, fitting[0])
    return passages


def passages_for(result: dict, collection, k: int = 4) -> list:
    """The SOP passages for the order's exceptions: for each type — the recommendation's first,
    then the others in the order's priority — the passages closest to that exception's evidence
    among the SOPs that apply to it; ``k`` in all."""
    types = _types(result)
    first = recommended_type(result)
    if first in types:
        types = [first] + [t for t in types if t != first]
    if not types or k <= 0:
        return []
    per_type = max(1, k // len(types))
    out, seen = [], set()
    for kind in types:
        evidence = next((e["evidence"] for e in result["exceptions"] if e.get("type") == kind), [])
        query = f"{kind.replace('_', ' ').lower()}: {'; '.join(evidence[:2])}"
        for passage in retrieve(query, [kind], k=per_type, collection=collection):
            if passage.citation not in seen and len(out) < k:
                seen.add(passage.citation)
                out.append(passage)
    return out


# --- facts as the model reads them -------------------------------------------------------------------


def _action_line(action: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (action.get("params") or {}).items())
    role = action.get("approver_role") or "none"
    return f"{action['action']}({params}), risk {action.get('risk')}, approver {role}"


def facts_text(result: dict) -> str:
    """The triage result as compact lines: exceptions with evidence, the recommendation, the plan."""
    lines = [f"Order {result['order_id']} (status {result.get('status', 'unknown')})"]
    exceptions = result.get("exceptions") or []
    if not exceptions:
        lines.append("No exceptions: nothing blocks this order.")
    for exc in exceptions:
        lines.append(f"- {exc['type']}: " + "; ".join(exc.get("evidence") or []))
    rec = result.get("recommendation")
    if rec:
        lines.append(f"Recommended action: {_action_line(rec)}. Why: {rec.get('reason', '')}")
        if rec.get("inputs_required"):
            lines.append(f"The approver must supply: {', '.join(rec['inputs_required'])}")
    for action in (result.get("plan") or [])[1:2]:
        lines.append(f"Then: {_action_line(action)}")
    if result.get("missing"):
        lines.append("Not in the records: " + "; ".join(map(str, result["missing"])))
    return "\n".join(lines)


def _passages_text(passages: Sequence) -> str:
    if not passages:
        return "(none retrieved)"
    chunks = []
    for p in list(passages)[:_PROMPT_PASSAGES]:
        body = " ".join(p.text.split())
        if len(body) > _PASSAGE_CHARS:
            body = body[:_PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
        chunks.append(f"[{p.citation}] {p.title}: {body}")
    return "\n".join(chunks)


def build_messages(result: dict, passages: Sequence) -> list[dict[str, str]]:
    """The explanation prompt for one order (prompts/explain.txt). The passage shown first and named
    as the label to cite is the first one whose SOP applies to the recommendation's exception type
    (the grounding check demands one of those when any was given); else the first passage."""
    passages = _label_first(result, passages)
    label = (
        f"[{passages[0].citation}] (or another one above)"
        if passages
        else "none was retrieved, so cite none."
    )
    return load("explain").messages(facts=facts_text(result), passages=_passages_text(passages), label=label)


# --- the grounding check --------------------------------------------------------------------------------


def _number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _scrub(text: str) -> str:
    """Text without citations, dates and ids, so that their digits are not read as numbers."""
    text = _BRACKETS.sub(" ", text)
    text = _SOP_REF.sub(" ", text)
    text = _DATE.sub(" ", text)
    return _ID.sub(" ", text)


def _numbers(text: str) -> set[Decimal]:
    return {n for n in (_number(t) for t in _NUMBER.findall(_scrub(text))) if n is not None}


def _citations_in(text: str) -> list[str]:
    found = []
    for inside in _BRACKETS.findall(text):
        for part in re.split(r"\s*[;,]\s*", inside.strip()):
            if part:
                found.append(" ".join(part.split()))
    return found


def _source_text(result: dict, passages: Sequence) -> tuple[str, str]:
    facts = json.dumps(result, default=str, ensure_ascii=False) + "\n" + facts_text(result)
    return facts, "\n".join(f"{p.citation} {p.title} {p.text}" for p in passages)


def _names(result: dict) -> set[str]:
    """The exception types and action names of the triage result's structured fields."""
    names = set(_types(result))
    actions = [
        result.get("recommendation") or {},
        *(result.get("alternatives") or []),
        *(result.get("plan") or []),
    ]
    actions += [c for o in result.get("options") or [] for c in o.get("candidates") or []]
    names |= {a["action"] for a in actions if a.get("action")}
    names |= {o["type"] for o in result.get("options") or [] if o.get("type")}
    return names


def grounding_errors(text: str, result: dict, passages: Sequence) -> list[str]:
    """What in ``text`` the facts and passages do not support; empty when the text is grounded.

    Checked: every bracketed citation is one of the passages' (exactly); at least one passage is
    cited when any was given, and one whose SOP applies to the recommendation's exception type when
    any such passage was given (an order on compliance and credit hold whose recommendation is
    COMPLIANCE_REVIEW does not pass on a credit SOP alone); every SOP mentioned was retrieved;
    every record id (order, line's SKU, warehouse, PO, shipment, carrier, customer), date, action
    or exception name and number appears in the triage result or a passage (numbers compared by
    value: 48,000.00 = 48000), and a value written as a percentage is a percentage there (a price
    difference of 4.74 is not "4.74 %").
    Exception and action names count only from the result's structured fields and the passages,
    never from a customer's note quoted in the evidence.
    """
    if not text or not text.strip():
        return ["the explanation is empty"]
    errors: list[str] = []
    facts, sources = _source_text(result, passages)
    known = {p.citation for p in passages}
    cited = _citations_in(text)
    for c in cited:
        if c not in known:
            errors.append(
                f"citation [{c}] is not one of the SOP passages given ({', '.join(sorted(known)) or 'none'})"
            )
    fitting = list(dict.fromkeys(p.citation for p in _fitting(result, passages)))
    if passages and not any(c in known for c in cited):
        errors.append(
            f"{_UNCITED}; cite one of: {', '.join('[' + c + ']' for c in (fitting or sorted(known)))}"
        )
    elif fitting and not any(c in fitting for c in cited):
        rec = (result.get("recommendation") or {}).get("action") or "the recommendation"
        errors.append(
            f"no SOP cited applies to {recommended_type(result)}, the exception {rec} resolves; "
            f"cite one of: {', '.join('[' + c + ']' for c in fitting)}"
        )
    everything = facts + "\n" + sources
    doc_ids = {p.doc_id for p in passages}
    outside = _BRACKETS.sub(" ", text)
    for ref in _SOP_REF.findall(outside):
        doc = ref.split()[0]
        if doc not in doc_ids and doc not in sources:
            errors.append(f"{doc} is not among the SOPs given")
    body = _SOP_REF.sub(" ", outside)
    for date in sorted(set(_DATE.findall(body))):
        if date not in everything:
            errors.append(f"date {date} is not in the facts")
    known_ids = set(_ID.findall(everything))
    for ident in sorted(set(_ID.findall(_DATE.sub(" ", body)))):
        if ident not in known_ids:
            errors.append(f"{ident} is not in the facts")
    names = _names(result) | set(_NAME.findall(sources))  # structured fields only: not a customer's note
    for name in sorted(set(_NAME.findall(body)) - names):
        errors.append(f"{name} is not an exception or action of this order")
    allowed = _numbers(everything) | {
        Decimal(len(result.get("exceptions") or [])).normalize(),
        Decimal(len(result.get("plan") or [])).normalize(),
        Decimal(len(_types(result))).normalize(),
    }
    for number in sorted(_numbers(text) - allowed):
        errors.append(f"the number {number:f} is not in the facts")
    percents = {_number(t) for t in _PERCENT.findall(_scrub(everything))}
    for number in sorted({_number(t) for t in _PERCENT.findall(_scrub(text))} - percents - {None}):
        if number in allowed:  # the value exists, but not as a percentage (e.g. a price difference)
            errors.append(f"{number:f} is not a percentage in the facts")
    return errors


# --- the fact-only template -----------------------------------------------------------------------------


def fact_template(result: dict, passages: Sequence) -> str:
    """A plain explanation made only of the facts, citing every passage given (no model involved)."""
    exceptions = result.get("exceptions") or []
    order = result["order_id"]
    if not exceptions:
        return f"{order} has no exceptions: nothing blocks it."
    parts = [f"{order} has {len(exceptions)} exception{'s' if len(exceptions) != 1 else ''}:"]
    for exc in exceptions:
        evidence = "; ".join(exc.get("evidence") or []) or "no evidence recorded"
        parts.append(f"{exc['type']} ({evidence}).")
    rec = result.get("recommendation")
    if rec:
        role = rec.get("approver_role")
        who = f", approved by {role}" if role else ""
        parts.append(f"Recommended: {_action_line(rec).split(', risk')[0]} (risk {rec.get('risk')}{who}).")
    else:
        parts.append("No action is feasible; escalate.")
    if passages:  # the recommendation's SOP first
        parts.append("See " + ", ".join(f"[{p.citation}]" for p in _label_first(result, passages)) + ".")
    return " ".join(parts)


# --- explain -----------------------------------------------------------------------------------------------


def _cited(text: str, passages: Sequence) -> list[str]:
    known = {p.citation for p in passages}
    out: list[str] = []
    for c in _citations_in(text):
        if c in known and c not in out:
            out.append(c)
    return out


def _audit_fallback(session, result: dict, reason: str, model: str) -> None:
    if session is None:
        return

    append_event(
        session, "llm_fallback", order_id=result.get("order_id"), payload={"reason": reason, "model": model}
    )


def explain_order(
    result: dict,
    passages: Sequence,
    llm: LLM | None,
    *,
    on_token: Callable[[str], Any] | None = None,
    session=None,
    max_tokens: int = MAX_TOKENS,
) -> dict:
    """The explanation of one order's triage ``result`` (a ``copilot triage --json`` object).

    Returns ``{"text", "citations", "fallback", "reason", "cited_by", "model", "usage"}``; ``usage``
    counts the model calls, tokens and seconds spent. ``cited_by``: "model"; "retrieval" when the
    model's text was grounded but cited nothing and the first passage for the recommendation's
    exception type (else the first passage) was appended (instead of a retry); "template" for the
    fallback. ``on_token`` receives the model's text as it is written (the first attempt only): the
    returned ``text`` is final, and replaces what was streamed when a retry or the fallback was
    needed. Never raises for a model failure: the decisions are already
    made, only the language falls back. ``session``: when given, a fallback is also written to the
    audit log (``llm_fallback``) inside the caller's transaction.
    """
    usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    cited_by = "model"
    model = f"{llm.provider}:{llm.name}" if llm is not None else "none"

    def done(text: str, fallback: bool, reason: str | None) -> dict:
        if fallback:
            log.warning(
                "explanation of %s falls back to the fact template: %s", result.get("order_id"), reason
            )
            _audit_fallback(session, result, reason or "", model)
        usage["seconds"] = round(usage["seconds"], 3)
        return {
            "text": text,
            "citations": _cited(text, passages),
            "fallback": fallback,
            "reason": reason,
            "cited_by": "template" if fallback else cited_by,
            "model": model,
            "usage": usage,
        }

    if llm is None:
        return done(fact_template(result, passages), True, "no language model configured")
    messages = build_messages(result, passages)
    try:
        text = _bracket_citations(_ask(llm, messages, usage, on_token, max_tokens), passages)
        errors = grounding_errors(text, result, passages)
        if len(errors) == 1 and errors[0].startswith(_UNCITED):
            # Grounded but uncited: attach the passage for the recommendation's exception type
            # rather than pay for a retry; "cited_by" says so.
            text, cited_by = f"{text.rstrip()} [{_label_first(result, passages)[0].citation}]", "retrieval"
            errors = grounding_errors(text, result, passages)
        if not errors:
            return done(text, False, None)
        cited_by = "model"
        retry = [
            *messages,
            {"role": "assistant", "content": text},
            {
                "role": "user",
                "content": load("explain_retry").render(errors="\n".join(f"- {e}" for e in errors[:6])),
            },
        ]
        text = _bracket_citations(_ask(llm, retry, usage, None, max_tokens), passages)
        second = grounding_errors(text, result, passages)
        if not second:
            return done(text, False, None)
        reason = "not grounded after a retry: " + "; ".join(second[:3])
    except LLMError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a provider bug must not break triage either; logged with its traceback
        log.exception("language model failed while explaining %s", result.get("order_id"))
        reason = f"{type(exc).__name__}: {exc}"
    return done(fact_template(result, passages), True, reason)


def _bracket_citations(text: str, passages: Sequence) -> str:
    """Known citations the model wrote without square brackets — ``(SOP-CREDIT-001 §3.2)`` or bare —
    get their brackets: a formatting repair, not a change of content."""
    known = sorted({p.citation for p in passages}, key=len, reverse=True)
    if not known:
        return text
    bare = re.compile(
        r"\(\s*("
        + "|".join(map(re.escape, known))
        + r")\s*\)|(?<![\w-])("
        + "|".join(map(re.escape, known))
        + r")(?![\w-]|\.?\d)"
    )
    parts = re.split(r"(\[[^\[\]]*\])", text)  # bracketed groups stay as they are
    return "".join(
        part if part.startswith("[") else bare.sub(lambda m: f"[{m.group(1) or m.group(2)}]", part)
        for part in parts
    )


def _ask(llm: LLM, messages: list[dict], usage: dict, on_token, max_tokens: int) -> str:
    usage["calls"] += 1
    started = time.perf_counter()
    if on_token is None:
        reply = llm.complete(messages, max_tokens=max_tokens)
        usage["prompt_tokens"] += reply.prompt_tokens
        usage["completion_tokens"] += reply.completion_tokens
        usage["seconds"] += time.perf_counter() - started
        return reply.text.strip()
    pieces = []
    for piece in llm.stream(messages, max_tokens=max_tokens):
        pieces.append(piece)
        on_token(piece)
    last = llm.last_usage()
    usage["prompt_tokens"] += last.prompt_tokens if last else 0
    usage["completion_tokens"] += last.completion_tokens if last else 0
    usage["seconds"] += time.perf_counter() - started
    return "".join(pieces).strip()
