"""The customer's request in pasted text (an e-mail, a chat line, a ticket), quoted, never obeyed.

The request (the sentence that says what the customer wants) is what regular expressions cannot
find; :func:`request_sentence` is the deterministic fallback (the first sentence with a request
cue) and :func:`verbatim` the check that whatever the model extracted is a quote of the text. The
order numbers of the same text are read by :mod:`agent.triage.order_numbers`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

__all__ = ["CustomerRequest", "request_sentence", "verbatim"]


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
    if quote is None or not quote.strip():
        return False
    return _squash(quote.strip(" \"'")) in _squash(text)


class CustomerRequest(BaseModel):
    """What the model returns when asked for the customer's request: a quote, or null."""

    request: str | None = Field(
        default=None,
        max_length=400,
        description="the sentence that says what the customer wants, copied word for word",
    )
