"""Grounding: whether the model's words stay within the facts — one checker for explanations and chat.

Facts decide, the model explains: every record id, date, number, percentage and SOP citation the
model writes must appear in the facts it was given (a triage result, a tool's result, the user's
question) or in the SOP passages retrieved for it. The explanation of an order
(:mod:`agent.copilot.explain`) and a chat answer (:mod:`agent.copilot.chat`) are checked by the same
readers of the text, so an id, a number or a citation counts the same in both:

- citations are written as ``knowledge.retrieve.citation`` writes them, inside square brackets,
  several to a pair separated by ``;`` or ``,`` (``[SOP-CREDIT-001 §3.2; SOP-PRICE-002 §1]``);
- record ids are hyphenated upper-case codes (``SO-100042``, ``WH-DFW``, ``PO-5001``) or letters
  followed by digits (``SO1``, ``WH2``);
- numbers compare by value (``48,000.00`` is ``48000``), once citations, dates and ids are taken
  out of the text; a value written as a percentage must be a percentage in the facts.

What the text says of those values — which number is the credit limit and which the overage,
which exception holds, which warehouse has the stock, which carrier failed — is checked by
:func:`agent.claims.claim_errors` for both, and for message drafts too.

:func:`unsupported` is the common check; :func:`explanation_errors` adds what an explanation owes
(a citation of an SOP that applies to the recommendation, names of this order's exceptions and
actions only) and :func:`answer_errors` what a chat answer owes (citations only of the passages
retrieved in the turn; a count such as "2 orders" must be the length of a list in the facts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from agent.claims import claim_errors

__all__ = [
    "UNCITED",
    "answer_errors",
    "citations_in",
    "exception_types",
    "explanation_errors",
    "fitting_passages",
    "recommended_type",
    "sop_citations_in",
    "support_text",
    "unsupported",
]

BRACKETS = re.compile(r"\[([^\[\]]*)\]")
SOP_REF = re.compile(r"\b(?:SOP-[A-Z0-9]+(?:-[A-Z0-9]+)*)(?:\s*(?:§\s*[\d.]*\d|p\.\s*\d+))?")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
ID = re.compile(r"(?<![\w-])(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Z]+\d+[A-Z0-9]*)(?![\w-])")
NAME = re.compile(r"\b[A-Z]{2,}(?:_[A-Z]+)+\b")  # CREDIT_HOLD, RELEASE_CREDIT_HOLD
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
PERCENT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent\b)")
UNCITED = "no SOP is cited"


# --- reading the text ---------------------------------------------------------------------------------


def _uncite(text: str) -> str:
    """``text`` without its bracketed SOP citations; other brackets keep what they hold ("[40]
    available" is a number like any other, not a citation)."""
    return BRACKETS.sub(lambda m: " " if SOP_REF.search(m.group(1)) else f" {m.group(1)} ", text)


def citations_in(text: str) -> list[str]:
    """The bracketed citations of ``text`` in order, each once (whitespace normalised)."""
    found: list[str] = []
    for inside in BRACKETS.findall(text):
        for part in re.split(r"\s*[;,]\s*", inside.strip()):
            part = " ".join(part.split())
            if part and part not in found:
                found.append(part)
    return found


def sop_citations_in(text: str) -> list[str]:
    """The bracketed citations of ``text`` that name an SOP (``[SOP-… §…]``), in order, each once."""
    return [c for c in citations_in(text) if c.upper().startswith("SOP-")]


def _number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _scrub(text: str, *, brackets: bool = True) -> str:
    """Text without citations, SOP references, dates and ids, so that their digits are not numbers.
    ``brackets=False`` for the support: square brackets there are JSON lists, not citations."""
    if brackets:
        text = _uncite(text)
    text = SOP_REF.sub(" ", text)
    text = DATE.sub(" ", text)
    return ID.sub(" ", text)


def _numbers(text: str, *, brackets: bool = True) -> set[Decimal]:
    return {n for n in (_number(t) for t in NUMBER.findall(_scrub(text, brackets=brackets))) if n is not None}


def _percents(text: str, *, brackets: bool = True) -> set[Decimal]:
    return {
        n for n in (_number(t) for t in PERCENT.findall(_scrub(text, brackets=brackets))) if n is not None
    }


def support_text(facts: Any, *extra: str) -> str:
    """The facts (any JSON-able value) and any extra text, as one text to search."""
    return "\n".join([json.dumps(facts, default=str, ensure_ascii=False), *extra])


# --- the common check ----------------------------------------------------------------------------------


def _dates(body: str, support: str) -> list[str]:
    return [f"date {d} is not in the facts" for d in sorted(set(DATE.findall(body))) if d not in support]


def _ids(body: str, support: str) -> list[str]:
    known = set(ID.findall(support))
    return [
        f"{i} is not in the facts" for i in sorted(set(ID.findall(DATE.sub(" ", body)))) if i not in known
    ]


def _unsupported_numbers(text: str, support: str, allowed: Iterable[Decimal], percentages: bool) -> list[str]:
    errors = []
    known = _numbers(support, brackets=False) | set(allowed)  # a number inside a JSON list counts
    written: dict[Decimal, str] = {}  # each value as the text first writes it
    for token in NUMBER.findall(_scrub(text)):
        value = _number(token)
        if value is not None:
            written.setdefault(value, token)
    for number in sorted(set(written) - known):
        as_written = f" (written {written[number]})" if written[number] != f"{number:f}" else ""
        errors.append(f"the number {number:f} is not in the facts{as_written}")
    if percentages:
        for number in sorted(_percents(text) - _percents(support, brackets=False)):
            if number in known:  # the value exists, but not as a percentage (e.g. a price difference)
                errors.append(f"{number:f} is not a percentage in the facts")
    return errors


def unsupported(
    text: str,
    support: str,
    *,
    numbers_allowed: Iterable[Decimal] = (),
    percentages: bool = True,
) -> list[str]:
    """The dates, record ids and numbers of ``text`` (outside its citations and SOP references) that
    ``support`` does not contain, and, with ``percentages``, values written as a percentage that
    are not one there; empty when every one is supported."""
    body = SOP_REF.sub(" ", _uncite(text))
    return (
        _dates(body, support)
        + _ids(body, support)
        + _unsupported_numbers(text, support, numbers_allowed, percentages)
    )


# --- explanations of one order's triage ----------------------------------------------------------------


def exception_types(result: dict) -> list[str]:
    """The exception types of a triage result, each once, in the result's order."""
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
    types = exception_types(result)
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


def fitting_passages(result: dict, passages: Sequence) -> list:
    """The passages whose SOP applies to the recommendation's exception type (best first)."""
    kind = recommended_type(result)
    return [p for p in passages if kind and kind in (getattr(p, "applies_to", None) or ())]


def _names(result: dict) -> set[str]:
    """The exception types and action names of the triage result's structured fields."""
    names = set(exception_types(result))
    actions = [
        result.get("recommendation") or {},
        *(result.get("alternatives") or []),
        *(result.get("plan") or []),
    ]
    actions += [c for o in result.get("options") or [] for c in o.get("candidates") or []]
    names |= {a["action"] for a in actions if a.get("action")}
    names |= {o["type"] for o in result.get("options") or [] if o.get("type")}
    return names


def explanation_errors(text: str, result: dict, passages: Sequence, facts: str) -> list[str]:
    """What in an order's explanation the triage ``result`` (``facts``: its text as the model read
    it) and the ``passages`` do not support; empty when the text is grounded.

    Besides :func:`unsupported`: every bracketed citation is one of the passages' (exactly); at
    least one passage is cited when any was given, and one whose SOP applies to the
    recommendation's exception type when any such passage was given; every SOP mentioned was
    retrieved; every action or exception name is one of this order's or a passage's — never one
    from a customer's note quoted in the evidence.
    """
    if not text or not text.strip():
        return ["the explanation is empty"]
    errors: list[str] = []
    sources = "\n".join(f"{p.citation} {p.title} {p.text}" for p in passages)
    known = {p.citation for p in passages}
    cited = citations_in(text)
    for c in cited:
        if c not in known:
            errors.append(
                f"citation [{c}] is not one of the SOP passages given ({', '.join(sorted(known)) or 'none'})"
            )
    fitting = list(dict.fromkeys(p.citation for p in fitting_passages(result, passages)))
    if passages and not any(c in known for c in cited):
        errors.append(
            f"{UNCITED}; cite one of: {', '.join('[' + c + ']' for c in (fitting or sorted(known)))}"
        )
    elif fitting and not any(c in fitting for c in cited):
        rec = (result.get("recommendation") or {}).get("action") or "the recommendation"
        errors.append(
            f"no SOP cited applies to {recommended_type(result)}, the exception {rec} resolves; "
            f"cite one of: {', '.join('[' + c + ']' for c in fitting)}"
        )
    doc_ids = {p.doc_id for p in passages}
    outside = BRACKETS.sub(" ", text)
    for ref in SOP_REF.findall(outside):
        doc = ref.split()[0]
        if doc not in doc_ids and doc not in sources:
            errors.append(f"{doc} is not among the SOPs given")
    body = SOP_REF.sub(" ", outside)
    support = facts + "\n" + sources
    errors += _dates(body, support) + _ids(body, support)
    names = _names(result) | set(NAME.findall(sources))  # structured fields only: not a customer's note
    for name in sorted(set(NAME.findall(body)) - names):
        errors.append(f"{name} is not an exception or action of this order")
    counts = (
        len(result.get("exceptions") or []),
        len(result.get("plan") or []),
        len(exception_types(result)),
    )
    allowed = {Decimal(n).normalize() for n in counts}
    errors += _unsupported_numbers(text, support, allowed, True)
    return errors + claim_errors(outside, result)


# --- chat answers --------------------------------------------------------------------------------------


def answer_errors(
    text: str, facts: Any, *, question: str = "", citations: Collection[str] | None = None
) -> list[str]:
    """What a chat answer says that the turn's ``facts`` (any JSON-able value) and the user's
    question do not support; ``citations``: those of the passages retrieved in the turn."""
    if not text:
        return ["empty answer"]
    allowed = set(citations or [])
    errors = [
        f"citation [{c}] is not among the retrieved passages"
        for c in sop_citations_in(text)
        if c not in allowed
    ]
    support = support_text(facts, question)
    # "2 orders", "3 warehouses": a count of records the facts hold as the length of one of their
    # lists; any other number found nowhere is refused ("line 1" is its line_no in the facts, "12
    # units" must be a quantity there).
    lengths = _list_lengths(facts)
    counts = {Decimal(int(m.group(1))) for m in _COUNT.finditer(text) if int(m.group(1)) in lengths}
    errors += unsupported(text, support, numbers_allowed=counts, percentages=False)
    return errors + claim_errors(text, facts)


_COUNT = re.compile(
    r"\b(\d+)\s+(?:(?:open|other|late|short|pending|more|of\s+\w+(?:'s)?)\s+)*"
    r"(?:orders|lines|warehouses|shipments|purchase orders|pos|requests|exceptions|customers|skus|items|"
    r"passages|substitutes|carriers|notices|messages|ones)\b",
    re.IGNORECASE,
)


def _list_lengths(value: Any) -> set[int]:
    """The lengths of every list in ``value`` (a tool result: dicts, lists and scalars); a list of
    results (the native path's several tool calls) counts its members' lists, not itself."""
    out: set[int] = set()
    stack = list(value) if isinstance(value, list) else [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            out.add(len(item))
            stack.extend(item)
    return out
