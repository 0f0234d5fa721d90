"""Which of the order numbers read from a text name existing orders, and what a wrong one meant.

Two indexed queries for a message: one ``order_id IN (...)`` with every spelling of every mention
(the confirmation; a list longer than ``IN_CHUNK`` spellings is split like every ``IN`` of the
product), and, only when some reported number names no order, one more
with the ids one edit away from each of them (a near miss: a digit dropped, added, changed, or two
neighbours swapped — ``SO-10042`` → ``SO-100042``). Both look up the orders table's primary key;
neither scans the book. The candidate sets are bounded (:data:`MAX_MENTIONS` numbers of at most
40 characters; near misses for the first :data:`MAX_NEAR_MISS_LOOKUPS` unknown ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.policy import MAX_TOKEN_CHARS, OrderNumbers
from agent.triage.order_numbers.reader import Mention, order_mentions
from tools.errors import OrderNotFound
from tools.models import Order
from tools.rules import in_chunks
from tools.sites import orders_where

__all__ = [
    "MAX_NEAR_MISS_LOOKUPS",
    "MAX_SUGGESTIONS",
    "Resolution",
    "filter_id",
    "one_edit_away",
    "order_id_of",
    "params_ids",
    "resolve",
    "resolve_one",
    "typed",
]

MAX_NEAR_MISS_LOOKUPS = 20
MAX_SUGGESTIONS = 3
_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[-_#/ ]")


@dataclass
class Resolution:
    """The orders a text names. ``found``: ids the database holds, in the order of the text, each
    once. ``not_found``: the numbers no order has (reported shapes only), as read. ``near_misses``:
    for such a number, the existing ids one edit away. ``read_as``: a number written with the letter
    O and the digit zero mixed up, and the id it was read as."""

    found: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    near_misses: dict[str, list[str]] = field(default_factory=dict)
    read_as: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line per number read differently or not found ("SO-10042 not found; did you mean
        SO-100042?")."""
        lines = [f"{written} read as {oid}" for written, oid in self.read_as.items()]
        for oid in self.not_found:
            near = self.near_misses.get(oid)
            lines.append(
                f"{oid} not found; did you mean {' or '.join(near)}?" if near else f"{oid} not found"
            )
        return lines


def one_edit_away(value: str) -> list[str]:
    """The strings one digit edit away from ``value``: in each run of digits one digit deleted,
    changed or inserted, or two neighbours swapped. At most about 22 per digit."""
    out: dict[str, None] = {}
    for run in _DIGITS.finditer(value):
        a, b = run.span()
        for i in range(a, b + 1):
            for d in "0123456789":
                out[value[:i] + d + value[i:]] = None  # inserted
            if i == b:
                continue
            out[value[:i] + value[i + 1 :]] = None  # deleted
            for d in "0123456789":
                out[value[:i] + d + value[i + 1 :]] = None  # changed
            if i + 1 < b:
                out[value[:i] + value[i + 1] + value[i] + value[i + 2 :]] = None  # swapped
    out.pop(value, None)
    return [v for v in out if v]


def _squash(value: str) -> str:
    return _SEPARATORS.sub("", value.upper())


def _existing(session: Session, ids: Iterable[str]) -> set[str]:
    """The ids of ``ids`` that orders have: one ``IN`` query (per ``IN_CHUNK`` ids, as every ``IN``)."""
    found: set[str] = set()
    for part in in_chunks(ids):
        found.update(
            session.scalars(select(Order.order_id).where(Order.order_id.in_(part), orders_where(session)))
        )
    return found


def resolve(session: Session, mentions: Sequence[Mention]) -> Resolution:
    """Confirm ``mentions`` against the orders table (one query) and look up near misses for the
    reported ones no order has (one more query, only then)."""
    known = _existing(session, (c for m in mentions for c in m.candidates))
    res = Resolution()
    for m in mentions:
        hit = next((c for c in m.candidates if c in known), None)
        if hit is not None:
            if hit not in res.found:
                res.found.append(hit)
            if not m.raw.isdigit() and _squash(hit) != _squash(m.raw):
                res.read_as[m.raw] = hit
        elif m.report and m.canonical not in res.not_found:
            res.not_found.append(m.canonical)
    edits = {oid: one_edit_away(oid) for oid in res.not_found[:MAX_NEAR_MISS_LOOKUPS]}
    near = _existing(session, (v for vs in edits.values() for v in vs))
    for oid, variants in edits.items():
        hits = [v for v in variants if v in near]
        if hits:
            res.near_misses[oid] = sorted(hits)[:MAX_SUGGESTIONS]
    return res


def typed(value: str, config: OrderNumbers | None = None) -> Mention:
    """An id a person typed in a field (``so-100042``, ``SO 100042``, ``SO1``): the exact text first
    (blanks around it dropped), in upper case, then what the reader makes of it when it reads the
    whole value as one order number. A value with anything else in it (``SO-1'--``, ``SO-1 SO-2``)
    stands for no other order than its own text: a typed id is never read as a part of it. A value
    too long to be an order number stands for none."""
    raw = value.strip()
    if len(raw) > MAX_TOKEN_CHARS:
        return Mention(raw[:MAX_TOKEN_CHARS], (raw[:MAX_TOKEN_CHARS],), True)
    candidates = [raw, raw.upper()]
    mentions = order_mentions(raw, config)
    if len(mentions) == 1 and mentions[0].raw == raw:
        candidates += list(mentions[0].candidates)
    # a blank value names no order: reported as not found, never an IndexError
    return Mention(raw, tuple(dict.fromkeys(c for c in candidates if c)) or (raw,), True)


def resolve_one(
    session: Session, value: str, config: OrderNumbers | None = None
) -> tuple[str | None, list[str]]:
    """(the existing order ``value`` names, None) or (None, the near misses): for one typed id."""
    res = resolve(session, [typed(value, config)])
    if res.found:
        return res.found[0], []
    return None, next(iter(res.near_misses.values()), [])


def order_id_of(session: Session, value: str, config: OrderNumbers | None = None) -> str:
    """The id of the existing order a typed id names (``so-100042`` → ``SO-100042``), the one reading
    of an order id for every door that takes one; raises :class:`OrderNotFound` with the near misses
    (another site's order is as unknown: the lookup reads the session's sites only)."""
    found, near = resolve_one(session, value, config)
    if found is None:
        raise OrderNotFound(value.strip(), near)
    return found


def filter_id(session: Session, value: str | None, config: OrderNumbers | None = None) -> str | None:
    """An order id typed as a list filter, read as :func:`order_id_of` reads it; one that names no
    order is kept as typed (without its blanks): it filters everything out."""
    if value is None or not value.strip():
        return value
    found, _ = resolve_one(session, value, config)
    return found or value.strip()


def params_ids(session: Session, params: Any, config: OrderNumbers | None = None) -> Any:
    """An action's parameters with the order ids they name (``order_id``; ``from_order_id``, the
    donor of domain.md §6) read as :func:`filter_id` reads them; anything else as it is (the guard
    judges it)."""
    if not isinstance(params, dict):
        return params
    return {
        k: filter_id(session, v, config) if k in ("order_id", "from_order_id") and isinstance(v, str) else v
        for k, v in params.items()
    }
