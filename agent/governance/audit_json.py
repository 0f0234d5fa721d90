"""What the audit chain hashes: canonical JSON, and the form of a payload every backend stores as is.

The hash of an event is computed over the canonical JSON of its fields (sorted keys, no spaces,
UTF-8 kept; Decimal, dates and sets as strings and lists). The payload is first reduced to JSON
that SQLite's JSON text and PostgreSQL's JSONB both give back unchanged, so that verification,
which recomputes the text from what it reads, hashes exactly what was stored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

__all__ = ["canonical_json", "storable", "utc_text"]


def utc_text(value: dt.datetime) -> str:
    """UTC with microseconds; a naive value (SQLite returns them) is UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text kept; Decimal, dates and other values as strings."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(text: str) -> str:
    # JSONB refuses NUL; a lone surrogate cannot be encoded as UTF-8 at all.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _reduce(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list):
        return [_reduce(v) for v in value]
    if isinstance(value, dict):
        return {_clean_text(k): _reduce(v) for k, v in value.items()}
    return value


def storable(value: Any) -> Any:
    """``value`` as plain JSON that every backend stores and gives back unchanged.

    Decimal, dates and sets become strings and lists (as in :func:`canonical_json`); a float with
    an integral value becomes an int (JSONB keeps ``1e20`` as the number 100000000000000000000 and
    gives back an int), other floats keep their shortest repr, which JSONB's numeric round-trips;
    NUL and lone surrogates in strings become U+FFFD. Raises ValueError for NaN and infinities.
    """
    return _reduce(json.loads(canonical_json(value)))
