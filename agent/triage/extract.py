"""Order numbers and the customer's request in pasted text (an e-mail, a chat line, a ticket).

Regular expressions find the order numbers: ``SO-100042`` and the spellings people type —
``SO 100042``, ``so-100042``, ``SO100042``, ``SO#100042``, ``order 100042``, ``order no. 100042``,
``order #100042``. A bare number (``100042``) is not taken: it could be a PO, an invoice or a
quantity. Each mention keeps the spellings it could stand for (``SO1`` may be the record ``SO1``
or ``SO-1``); :func:`resolve_mentions` picks the one the database holds.

The customer's request (the sentence that says what they want) is what regular expressions
cannot find; :func:`request_sentence` is the deterministic fallback (the first sentence with a
request cue) and :func:`verbatim` the check that whatever the model extracted is a quote of the
text. The text is data: nothing in it is obeyed, it is only quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, Field

__all__ = [
    "CustomerRequest",
    "Mention",
    "find_order_ids",
    "order_mentions",
    "request_sentence",
    "resolve_mentions",
    "verbatim",
]

_SO = re.compile(r"(?<![A-Za-z0-9])SO[-_ #]?(\d{1,12})(?![A-Za-z0-9-])", re.IGNORECASE)
_ORDER = re.compile(
    r"\b(?:sales\s+)?orders?\s*(?:(?:no\.?|nr\.?|number|num\.?)\s*[:#]?|#|:)?\s*#?\s*(\d{4,12})(?![A-Za-z0-9-])",
    re.IGNORECASE,
)
# "orders 100042 and 100043", "orders 100042, 100043": numbers following an "order(s) N" mention.
_MORE = re.compile(r"\s*(?:,|and|&|/|\+)\s*#?(\d{4,12})(?![A-Za-z0-9-])", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """One order number in the text: how it was written and the ids it may stand for, best first."""

    raw: str
    candidates: tuple[str, ...]

    @property
    def canonical(self) -> str:
        return self.candidates[0]


def _so_candidates(raw: str, digits: str) -> tuple[str, ...]:
    canonical = f"SO-{digits}"
    written = re.sub(r"\s+", "", raw).upper()
    out = [canonical]
    for alt in (written, f"SO{digits}"):
        if alt not in out:
            out.append(alt)
    return tuple(out)


def order_mentions(text: str) -> list[Mention]:
    """The order numbers of ``text`` in the order they first appear, each once."""
    found: list[tuple[int, Mention]] = []
    for m in _SO.finditer(text):
        found.append((m.start(), Mention(m.group(0), _so_candidates(m.group(0), m.group(1)))))
    for m in _ORDER.finditer(text):
        found.append((m.start(1), Mention(m.group(1), (f"SO-{m.group(1)}",))))
        end = m.end()
        while more := _MORE.match(text, end):
            found.append((more.start(1), Mention(more.group(1), (f"SO-{more.group(1)}",))))
            end = more.end()
    seen: set[str] = set()
    out = []
    for _, mention in sorted(found, key=lambda pair: pair[0]):
        if mention.canonical not in seen:
            seen.add(mention.canonical)
            out.append(mention)
    return out


def find_order_ids(text: str) -> list[str]:
    """The canonical ids (``SO-100042``) of the order numbers in ``text``, without a database."""
    return [m.canonical for m in order_mentions(text)]


def resolve_mentions(
    mentions: Iterable[Mention], exists: Callable[[str], bool]
) -> tuple[list[str], list[str]]:
    """(ids the database holds, canonical ids it does not), in the order of the text, each once."""
    found: list[str] = []
    missing: list[str] = []
    for mention in mentions:
        hit = next((c for c in mention.candidates if exists(c)), None)
        if hit is not None:
            if hit not in found:
                found.append(hit)
        elif mention.canonical not in missing:
            missing.append(mention.canonical)
    return found, missing


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_CUE = re.compile(
    r"\b(please|pls|could you|can you|would you|we need|i need|need (?:it|them|the)|would like|we'd like|"
    r"i'd like|want|asap|urgent|expedite|ship|deliver|cancel|change|update|split|substitut|replace|"
    r"when will|where is|status)\w*",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|dear|thanks|thank you|best|regards|kind regards|cheers)\b", re.IGNORECASE
)


def request_sentence(text: str) -> str | None:
    """The first sentence of ``text`` that asks for something (a request cue), verbatim; else None."""
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0).strip()
        if len(sentence) < 8 or (_GREETING.match(sentence) and not _CUE.search(sentence)):
            continue
        if _CUE.search(sentence):
            return sentence
    return None


def _squash(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().casefold()


def verbatim(quote: str | None, text: str) -> bool:
    """Whether ``quote`` is a non-empty quote of ``text`` (whitespace and case aside)."""
    return bool(quote and quote.strip()) and _squash(quote.strip(" \"'")) in _squash(text)


class CustomerRequest(BaseModel):
    """What the model returns when asked for the customer's request: a quote, or null."""

    request: str | None = Field(
        default=None,
        max_length=400,
        description="the sentence that says what the customer wants, copied word for word",
    )
