"""Explanations of one order's triage: written by the model from the facts and SOP passages, checked, cited.

Facts decide, the model explains. ``explain_order`` asks the model for one sentence saying what
holds the order up, built only from the triage result's exceptions and evidence and the SOP
passage shown; code then adds the SOP label for the recommendation's exception type
(``[SOP-CREDIT-001 §3.2]``, as ``knowledge.retrieve.citation`` writes them) unless the sentence
cites one, and the decision — the recommended action with its parameters, risk and approver
(:func:`decision_line`): what the facts decided is stated by them, never worded by the model, and
the model writes a third of the tokens it wrote for two sentences. ``grounding_errors`` then
checks every number, date, record id, action/type name, claim and citation in the whole text
against the facts and passages. On failure the model gets one retry with the errors;
if that fails too — or the model times out, errors or writes nothing — the explanation is the
fact-only template, marked ``fallback: true`` with the reason (logged; and written to the audit log
as ``llm_fallback`` when the caller passes its database session).

    passages = passages_for(result, collection)          # SOPs for the order's exception types
    explanation = explain_order(result, passages, llm, on_token=print)
    explanation["text"], explanation["citations"], explanation["fallback"], explanation["reason"]
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.copilot.grounding import (
    citations_in,
    exception_types,
    explanation_errors,
    fitting_passages,
    recommended_type,
    support_text,
)
from agent.governance.events import log_llm_fallback
from agent.llm import LLM, LLMError
from knowledge.retrieve import Passage, retrieve
from prompts import load
from tools.domain import EXCEPTION_TYPES as _TYPES

__all__ = [
    "MAX_TOKENS",
    "NO_SOP_WARNING",
    "build_messages",
    "cause_text",
    "compose",
    "decision_line",
    "explain_order",
    "fact_template",
    "grounding_errors",
    "keep_explanation_heads",
    "lead_passage",
    "passages_for",
    "recommended_type",
]

log = logging.getLogger(__name__)

NO_SOP_WARNING = (
    "No SOP passage was retrieved for this order, so this explanation cites no procedure: the SOP index "
    "may be empty (run `copilot knowledge ingest`) or hold nothing for these exceptions."
)
# One sentence (~20-60 tokens: Qwen's tokenizer spends a token per digit, and a credit hold's sentence
# carries four amounts); the decision that follows it is written by code. The cap stops a rambling
# answer; one cut at it is shown but not stored. Every generated token costs about 60 ms on two CPU
# cores with the shipped 1.5B model, and every prompt token about 10-25 ms.
MAX_TOKENS = 96
_PASSAGE_CHARS = 300  # the passage as the model sees it: enough for the rule, short for the prompt
# One passage, the label to cite (the recommendation's type first): the second one shown was mostly a
# notice template of the same SOP (~90 prompt tokens the model did not use); all may still be cited.
_PROMPT_PASSAGES = 1

# --- retrieval ---------------------------------------------------------------------------------------


def _label_first(result: dict, passages: Sequence) -> list:
    """``passages`` with the first one for the recommendation's type moved to the front."""
    passages = list(passages)
    fitting = fitting_passages(result, passages)
    if fitting and fitting[0] is not passages[0]:
        passages.remove(fitting[0])
        passages.insert(0, fitting[0])
    return passages


_LEAD_CANDIDATES = 6
_FRAMING = re.compile(r"\s*(?:\d+(?:\.\d+)*\.?\s*)?(?:purpose|scope)\b", re.IGNORECASE)


def lead_passage(kind: str, action: str | None, collection) -> Passage | None:
    """The passage an explanation shows and names as the label to cite when the order's
    recommendation resolves ``kind`` with ``action``: among the SOPs that apply to ``kind``, the
    closest to "<action> for an order with a <kind>" of the three nearest whose shown text names no
    other exception type (the small model then writes of an exception the order does not have) —
    unless that is a Purpose or Scope section, when the nearest of six that is neither and names no
    other type is taken (what the SOP says to do, not what it covers); else the nearest. It does not depend on the order's evidence, so every order with that type and
    action gets the same prompt head (instructions and passage), which the local model evaluates
    once and keeps (:func:`keep_explanation_heads`)."""
    words = kind.replace("_", " ").lower()
    query = f"{action.replace('_', ' ').lower()} for an order with a {words}" if action else words
    found = retrieve(query, [kind], k=_LEAD_CANDIDATES, collection=collection)
    others = re.compile("|".join(t for t in _TYPES if t != kind))
    plain = [p for p in found[:3] if not others.search(_shown(p))]
    if plain and _FRAMING.match(plain[0].heading or ""):
        # a Purpose or Scope section says what the SOP covers, not what to do: the nearest section
        # of the procedure that names no other type, when one is among the candidates
        doing = [p for p in found if not _FRAMING.match(p.heading or "") and not others.search(_shown(p))]
        if doing:
            return doing[0]
    return (plain or found)[0] if found else None


def passages_for(result: dict, collection, k: int = 4) -> list:
    """The SOP passages for the order's exceptions: first the :func:`lead_passage` of the
    recommendation's type and action, then for each type — the recommendation's first, then the
    others in the order's priority — the passages closest to that exception's evidence among the
    SOPs that apply to it; ``k`` in all, about ``k`` / types per type (the lead counts for its type)."""
    types = exception_types(result)
    first = recommended_type(result)
    if first in types:
        types = [first] + [t for t in types if t != first]
    if not types or k <= 0:
        return []
    per_type = max(1, k // len(types))
    out: list[Passage] = []
    seen: set[str] = set()
    lead = lead_passage(types[0], (result.get("recommendation") or {}).get("action"), collection)
    if lead is not None:
        out.append(lead)
        seen.add(lead.citation)
    for kind in types:
        evidence: list[str] = next((e["evidence"] for e in result["exceptions"] if e.get("type") == kind), [])
        query = f"{kind.replace('_', ' ').lower()}: {'; '.join(evidence[:2])}"
        taken = 1 if lead is not None and kind == types[0] else 0
        for passage in retrieve(query, [kind], k=per_type + 1, collection=collection):
            if taken < per_type and passage.citation not in seen and len(out) < k:
                seen.add(passage.citation)
                out.append(passage)
                taken += 1
    return out


# --- facts as the model reads them -------------------------------------------------------------------


def _call(action: dict) -> str:
    """``ACTION(param=value, ...)``: how the facts and the fact template name an action."""
    params = ", ".join(f"{k}={v}" for k, v in (action.get("params") or {}).items())
    return f"{action['action']}({params})"


# What the sentence needs, no more (every prompt token costs the local model time before its first
# word): the exception the recommendation resolves with its first three pieces of evidence, each
# other exception with two, none shown twice, each cut to about 150 characters. The grounding check
# reads these lines with the recommendation (its approver and reason) and the whole triage result.
_EVIDENCE_ITEMS = (3, 2)
_EVIDENCE_CHARS = 150


def _short(item: str) -> str:
    return item if len(item) <= _EVIDENCE_CHARS else item[:_EVIDENCE_CHARS].rsplit(" ", 1)[0] + " …"


def facts_text(result: dict) -> str:
    """The triage result as compact lines: the recommendation's exception first with its evidence,
    the others with less of theirs, the recommendation with its approver and reason (what the
    grounding check reads beside the whole result)."""
    lines = _exception_lines(result)
    rec = result.get("recommendation")
    if rec:
        role = rec.get("approver_role") or "none"
        lines.append(f"Recommended action: {_call(rec)}, approver {role}. Why: {rec.get('reason', '')}")
        if rec.get("inputs_required"):
            lines.append(f"The approver must supply: {', '.join(rec['inputs_required'])}")
    return "\n".join(lines + _missing_lines(result))


def cause_text(result: dict) -> str:
    """What the model reads to say what holds the order up: :func:`facts_text` without the
    recommendation, which :func:`decision_line` states after the model's sentence."""
    return "\n".join(_exception_lines(result) + _missing_lines(result))


def decision_line(result: dict) -> str:
    """The recommendation as code writes it after the model's sentence — action with its
    parameters, approver, risk, what the approver must supply — or that none is feasible. Decided by
    the facts, so stated by them: the model never words the decision."""
    rec = result.get("recommendation")
    if not rec:
        return "No action is feasible; escalate."
    params = rec.get("params") or {}
    if rec["action"] == "ESCALATE" and params.get("role"):  # needs no approval: it routes the work
        why = f": {params['reason']}" if params.get("reason") else ""
        return f"Recommended: ESCALATE to {params['role']}{why}."
    role, risk = rec.get("approver_role"), rec.get("risk")
    said = [f"risk {risk}"] if risk and risk != "none" else []
    said += [f"approved by {role}"] if role else []
    supply = (
        f"; the approver supplies {', '.join(rec['inputs_required'])}" if rec.get("inputs_required") else ""
    )
    return f"Recommended: {_call(rec)} ({', '.join(said) or 'no approval needed'}{supply})."


def _exception_lines(result: dict) -> list[str]:
    lines = [f"Order {result['order_id']} (status {result.get('status', 'unknown')})"]
    exceptions = list(result.get("exceptions") or [])
    if not exceptions:
        lines.append("No exceptions: nothing blocks this order.")
    first = recommended_type(result)
    exceptions.sort(key=lambda e: e.get("type") != first)  # stable: the others keep their order
    shown: set[str] = set()
    for n, exc in enumerate(exceptions):
        items = [e for e in exc.get("evidence") or [] if e not in shown][: _EVIDENCE_ITEMS[n > 0]]
        shown.update(items)
        lines.append(f"- {exc['type']}: " + ("; ".join(map(_short, items)) or "as above"))
    return lines


def _missing_lines(result: dict) -> list[str]:
    missing = result.get("missing")
    return ["Not in the records: " + "; ".join(map(str, missing))] if missing else []


def _shown(p: Passage) -> str:
    """A passage's text as the prompt shows it: at most :data:`_PASSAGE_CHARS` characters."""
    body = " ".join(p.text.split())
    if len(body) > _PASSAGE_CHARS:
        body = body[:_PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
    return body


def _passages_text(passages: Sequence) -> str:
    if not passages:
        return "(none retrieved)"
    return "\n".join(f"[{p.citation}] {p.title}: {_shown(p)}" for p in list(passages)[:_PROMPT_PASSAGES])


@functools.cache
def _examples() -> dict[str, str]:
    """The worked example per exception type (prompts/explain_examples.txt: ``## TYPE``, then a
    ``FACTS:`` line of another order and the ``ANSWER:`` sentence for it; ``#`` lines are comments),
    as the system prompt shows it."""
    parts: dict[str, dict[str, str]] = {}
    kind = None
    for raw in load("explain_examples").text.splitlines():
        line = raw.strip()
        if line.startswith("## "):
            kind = line[3:].strip()
        elif kind and line.startswith(("FACTS:", "ANSWER:")):
            key, _, value = line.partition(":")
            parts.setdefault(kind, {})[key] = value.strip()
    return {
        kind: f"For example, another order's FACTS:\n{p['FACTS']}\nand the sentence for them:\n{p['ANSWER']}"
        for kind, p in parts.items()
        if p.keys() >= {"FACTS", "ANSWER"}
    }


def _messages(facts: str, passages: Sequence, kind: str | None) -> list[dict[str, str]]:
    example = _examples().get(kind or "", "")
    return load("explain").messages(passages=_passages_text(passages), facts=facts, example=example)


def build_messages(result: dict, passages: Sequence) -> list[dict[str, str]]:
    """The explanation prompt for one order (prompts/explain.txt): the model says in one sentence
    what holds the order up (:func:`cause_text`); the label and the decision follow from code
    (:func:`compose`). The passage shown is the first one whose SOP applies to the
    recommendation's exception type (the grounding check demands one of those when any was given);
    else the first passage.

    Its head — the instructions, then that passage, up to the FACTS — depends only on the passage:
    with :func:`passages_for`'s lead passage it is the same for every order whose recommendation has
    the same type and action, and :func:`keep_explanation_heads` evaluates it once for the local
    model, so an order's prompt costs only its facts."""
    return _messages(cause_text(result), _label_first(result, passages), recommended_type(result))


def compose(sentence: str, result: dict, passages: Sequence) -> tuple[str, str]:
    """The explanation from the model's ``sentence``: the sentence, the SOP label for the
    recommendation's exception type unless the sentence cites one that applies, then the
    :func:`decision_line`. Returns the text and who cited ("model" or "retrieval")."""
    sentence = sentence.strip()
    fitting = {p.citation for p in fitting_passages(result, passages)} or {p.citation for p in passages}
    cited_by = "model"
    if passages and not fitting & set(citations_in(sentence)):
        sentence, cited_by = f"{sentence} [{_label_first(result, passages)[0].citation}]", "retrieval"
    return f"{sentence} {decision_line(result)}", cited_by


_FACTS_SLOT = "\x00FACTS\x00"  # where an order's facts go in a prompt head kept ahead of time


def keep_explanation_heads(llm: LLM, collection, policy) -> dict[str, int]:
    """Evaluate and keep (``LLM.keep_prefix``) the prompt head of every explanation the policy can
    ask for: one per exception type and candidate action of its decision order (with the
    :func:`lead_passage` of each), in the order's priority, distinct heads once. A provider that
    keeps no prompt state keeps nothing. Returns ``{"heads", "kept", "tokens"}``."""
    order = policy.decision_order
    kinds = [*order.priority, *(k for k in order.candidates if k not in order.priority)]
    heads: dict[str, list[dict[str, str]]] = {}
    for kind in kinds:
        for candidate in order.candidates.get(kind, []):
            lead = lead_passage(kind, candidate.action, collection)
            messages = _messages(_FACTS_SLOT, [lead] if lead is not None else [], kind)
            heads.setdefault(messages[0]["content"] + messages[1]["content"].split(_FACTS_SLOT)[0], messages)
    kept = tokens = 0
    for messages in heads.values():
        n = llm.keep_prefix(messages, _FACTS_SLOT)
        kept, tokens = kept + (n > 0), tokens + n
    return {"heads": len(heads), "kept": kept, "tokens": tokens}


# --- the grounding check --------------------------------------------------------------------------------


def grounding_errors(text: str, result: dict, passages: Sequence) -> list[str]:
    """What in ``text`` the triage ``result`` and the ``passages`` do not support; empty when the
    text is grounded (:func:`agent.copilot.grounding.explanation_errors`: every citation is one of
    the passages', one applies to the recommendation's exception type, every record id, date,
    number, percentage, action and exception name is in the facts or a passage)."""
    facts = support_text(result, facts_text(result))
    return explanation_errors(text, result, passages, facts)


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
    parts.append(decision_line(result))
    if passages:  # the recommendation's SOP first
        parts.append("See " + ", ".join(f"[{p.citation}]" for p in _label_first(result, passages)) + ".")
    return " ".join(parts)


# --- explain -----------------------------------------------------------------------------------------------


def _cited(text: str, passages: Sequence) -> list[str]:
    known = {p.citation for p in passages}
    return [c for c in citations_in(text) if c in known]


def _audit_fallback(session, result: dict, reason: str, model: str) -> None:
    if session is not None:
        log_llm_fallback(session, order_id=result.get("order_id"), reason=reason, model=model)


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

    Returns ``{"text", "citations", "fallback", "reason", "cited_by", "model", "usage", "warning"}``;
    ``warning`` is :data:`NO_SOP_WARNING` when no passage was given (else None); ``usage``
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
            # the model stopped at the token budget, not at its end: shown, never stored
            "truncated": not fallback and usage.get("last_completion_tokens", 0) >= max_tokens,
            "text": text,
            "citations": _cited(text, passages),
            "fallback": fallback,
            "reason": reason,
            "cited_by": "template" if fallback else cited_by,
            "model": model,
            "usage": usage,
            "warning": None if passages else NO_SOP_WARNING,
        }

    if llm is None:
        return done(fact_template(result, passages), True, "no language model configured")
    messages = build_messages(result, passages)
    try:
        said = _bracket_citations(_ask(llm, messages, usage, on_token, max_tokens), passages)
        text, cited_by, errors = _composed(said, result, passages)
        if on_token is not None:
            on_token(text[len(said.strip()) :])  # the label and the decision, after the model's words
        if not errors:
            return done(text, False, None)
        retry = [
            *messages,
            {"role": "assistant", "content": said},
            {
                "role": "user",
                "content": load("explain_retry").render(errors="\n".join(f"- {e}" for e in errors[:6])),
            },
        ]
        said = _bracket_citations(_ask(llm, retry, usage, None, max_tokens), passages)
        text, cited_by, second = _composed(said, result, passages)
        if not second:
            return done(text, False, None)
        cited_by = "model"
        reason = "not grounded after a retry: " + "; ".join(second[:3])
    except LLMError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a provider bug must not break triage either; logged with its traceback
        log.exception("language model failed while explaining %s", result.get("order_id"))
        reason = f"{type(exc).__name__}: {exc}"
    return done(fact_template(result, passages), True, reason)


def _composed(said: str, result: dict, passages: Sequence) -> tuple[str, str, list[str]]:
    """The explanation from the model's words (:func:`compose`), who cited, and what the grounding
    check finds in it (the model's words empty: only that)."""
    text, cited_by = compose(said, result, passages)
    return text, cited_by, grounding_errors(text, result, passages) if said else ["the explanation is empty"]


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
        usage["last_completion_tokens"] = reply.completion_tokens
        usage["seconds"] += time.perf_counter() - started
        return reply.text.strip()
    # what is streamed is the stripped text the label and the decision are added to: whitespace
    # before the first word is dropped, whitespace after a word waits for the next one
    pieces, held, started_text = [], "", False
    for piece in llm.stream(messages, max_tokens=max_tokens):
        pieces.append(piece)
        text = held + piece if started_text else piece.lstrip()
        body = text.rstrip()
        held = text[len(body) :]
        if body:
            started_text = True
            on_token(body)
    last = llm.last_usage()
    usage["prompt_tokens"] += last.prompt_tokens if last else 0
    usage["completion_tokens"] += last.completion_tokens if last else 0
    usage["last_completion_tokens"] = last.completion_tokens if last else 0
    usage["seconds"] += time.perf_counter() - started
    return "".join(pieces).strip()
