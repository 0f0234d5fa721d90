"""Order numbers in pasted text (an e-mail, a chat line, a ticket), read in linear time.

The text is cut into tokens (runs of letters, digits and ``# / _ -``) by one character class, so
cutting is one pass; a token longer than ``MAX_TOKEN_CHARS`` is never an order number and is passed
over. A token is a candidate when one of its spellings matches a shape of the policy whole (RE2,
linear). The spellings of a token are what a person may have meant by it: upper case, the
separator people leave out or vary (``SO100042``, ``SO#100042``, ``so_100042`` → ``SO-100042``), and
the letter O and the digit zero swapped where the segment says which was meant (``S0-10042`` →
``SO-10042``, ``SO-1OO42`` → ``SO-10042``). Two tokens join in two cases: a short letter prefix and a
number one space apart (``SO 100042``), and a number after a keyword of the policy (``order
100042``, ``order no. 100042``, ``orders 100042, 100043 and 100044``), which stands for the policy's
prefix + digits (``SO-100042``) or the digits themselves. The gap between two tokens that join is
at most ``MAX_GAP_CHARS``: a keyword followed by a thousand spaces is not followed by a number.

Nothing here knows which orders exist; :mod:`agent.triage.order_numbers.lookup` confirms the
candidates against the orders table. A bare number that fits no shape (``100042``, a quantity, a
PO) is never a candidate, and the text is data: nothing in it is obeyed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.policy import DEFAULT_ORDER_NUMBERS, MAX_TOKEN_CHARS, OrderNumbers

__all__ = ["MAX_GAP_CHARS", "MAX_MENTIONS", "Mention", "find_order_ids", "order_mentions", "spellings"]

MAX_GAP_CHARS = 6  # "order no. 100042": at most this many characters between tokens that join
MAX_MENTIONS = 1000  # order numbers read from one text; the rest of a longer list is not read

# One character class with one quantifier and nothing after it: each match is a single greedy run,
# so cutting a text of any content into tokens is linear (Python's re never backtracks here).
_TOKEN = re.compile(r"[A-Za-z0-9#/_-]+")
_EDGE = "#/_-"
_PART = re.compile(r"[^/]+")
_DIGIT = re.compile(r"[0-9]")
# Applied to one token of at most MAX_TOKEN_CHARS: bounded work whatever the text.
_PREFIXED = re.compile(r"([A-Z]+)[-_#]?([0-9]+)")
_SEGMENTS = re.compile(r"([-_/#])")
_NUMBER_WORDS = frozenset({"no", "nr", "number", "num"})
_LIST_JOINERS = frozenset(",/&+")
_GAP_AFTER_KEYWORD = frozenset(" \t\n\r:#.")


@dataclass(frozen=True)
class Mention:
    """One order number in the text: as written, the ids it may stand for (best first), and whether
    to report it when no order has any of them (``report``)."""

    raw: str
    candidates: tuple[str, ...]
    report: bool = True

    @property
    def canonical(self) -> str:
        return self.candidates[0]


# A token: (text without the separators at its ends, start, end) — plain tuples, there are many.
_Token = tuple[str, int, int]


def _swap_o_zero(value: str) -> str:
    """The letter O and the digit zero put back where a segment shows which was meant."""
    out = []
    for seg in _SEGMENTS.split(value):
        letters = [c for c in seg if c.isalpha()]
        if any(c != "O" for c in letters) and all(c.isalpha() or c == "0" for c in seg):
            seg = seg.replace("0", "O")  # S0 -> SO, 0RD -> ORD
        elif any(c.isdigit() for c in seg) and all(c.isdigit() or c == "O" for c in seg):
            seg = seg.replace("O", "0")  # 1OO42 -> 10042
        out.append(seg)
    return "".join(out)


def spellings(token: str) -> tuple[str, ...]:
    """What ``token`` may stand for: as written (upper case), with the usual separator, O/0 swapped."""
    upper = token.upper()
    out: list[str] = []
    for form in dict.fromkeys((upper, _swap_o_zero(upper))):
        if m := _PREFIXED.fullmatch(form):
            out += [f"{m.group(1)}-{m.group(2)}", form, f"{m.group(1)}{m.group(2)}"]
        else:
            out.append(form)
    return tuple(dict.fromkeys(out))


def _tokens(text: str, whole: Callable[[str], bool]) -> list[_Token]:
    """The tokens of ``text``; one with a slash that is not an order number whole (``whole``) is
    cut at its slashes: "SO-1/SO-2" is two numbers, "DE/2026/00017" one."""
    out: list[_Token] = []
    for m in _TOKEN.finditer(text):
        raw, at = m.group(0), m.start()
        if "/" in raw and not (len(raw) <= MAX_TOKEN_CHARS and whole(raw.strip(_EDGE))):
            parts = [(p.group(0), at + p.start()) for p in _PART.finditer(raw)]
        else:
            parts = [(raw, at)]
        for part, start in parts:
            core = part.strip(_EDGE)
            if core and len(core) <= MAX_TOKEN_CHARS:
                begin = start + part.find(core)  # after the separators stripped from its start
                out.append((core, begin, begin + len(core)))
    return out


class _Reader:
    def __init__(self, config: OrderNumbers) -> None:
        self.config = config
        self._seen: dict[str, Mention | None] = {}  # a text repeats its words: each is read once

    def shaped(self, token: str) -> Mention | None:
        """A mention when a spelling of ``token`` has one of the shapes."""
        if token not in self._seen:
            self._seen[token] = self._shaped(token)
        return self._seen[token]

    def _shaped(self, token: str) -> Mention | None:
        forms = spellings(token)
        matching = [f for f in forms if self.config.any_shape.fullmatch(f) is not None]
        if not matching:
            return None
        report = any(
            program.fullmatch(f) is not None
            for f in matching
            for program, loud in self.config.programs
            if loud
        )
        return Mention(token, tuple(dict.fromkeys([*matching, *forms])), report)

    def numbered(self, digits: str) -> Mention:
        """A number after a keyword: the policy's prefix + digits, or the digits themselves (first
        when they have a shape of their own, "order 4500098761")."""
        prefixed = f"{self.config.number_prefix}{digits}"
        if self.config.any_shape.fullmatch(digits) is not None:
            return Mention(digits, (digits, prefixed), True)
        return Mention(digits, (prefixed, digits), True)


def _gap(text: str, a: _Token, b: _Token) -> str | None:
    """The characters between two tokens, or None when they are too far apart to join."""
    return text[a[2] : b[1]] if b[1] - a[2] <= MAX_GAP_CHARS else None


def _is_number(token: _Token) -> bool:
    return token[0].isdigit() and 4 <= len(token[0]) <= 12


def _after_keyword(text: str, toks: list[_Token], i: int) -> int | None:
    """Index of the token that follows the keyword at ``i`` ("order no. 100042"), if close enough."""
    j = i + 1
    if j < len(toks) and toks[j][0].casefold() in _NUMBER_WORDS:
        gap = _gap(text, toks[i], toks[j])
        if gap is None or not set(gap) <= _GAP_AFTER_KEYWORD:
            return None
        j += 1
    if j >= len(toks):
        return None
    gap = _gap(text, toks[j - 1], toks[j])
    return j if gap is not None and set(gap) <= _GAP_AFTER_KEYWORD else None


def _next_in_list(text: str, toks: list[_Token], j: int) -> int | None:
    """Index of the next number of a list ("100042, 100043 and 100044") after the one at ``j``."""
    k = j + 1
    if k >= len(toks) or (gap := _gap(text, toks[j], toks[k])) is None:
        return None
    if toks[k][0].casefold() == "and" and not gap.strip():
        k += 1
        if k >= len(toks) or (gap := _gap(text, toks[k - 1], toks[k])) is None or gap.strip(" #"):
            return None
    else:
        joiner = gap.strip(" #")
        if len(joiner) != 1 or joiner not in _LIST_JOINERS:
            return None
    return k if _is_number(toks[k]) else None


def order_mentions(text: str, config: OrderNumbers | None = None, *, exact: bool = False) -> list[Mention]:
    """The order numbers of ``text`` in the order they first appear, each once (at most
    :data:`MAX_MENTIONS`). Linear in the length of the text; a token without a digit is never an
    order number, so most words cost one test.

    ``exact``: also every other token with a digit, as written (domain.md §5: a message is triaged
    for every token that names an existing order, whatever its shape — ``ORD1``, ``X-77``), not
    reported when no order has it; at most :data:`MAX_MENTIONS` of them besides the shaped ones,
    so a text full of numbers never crowds out an order number."""
    reader = _Reader(config or DEFAULT_ORDER_NUMBERS)
    keywords = set(reader.config.keywords)
    toks = _tokens(text, lambda token: reader.shaped(token) is not None)
    found: list[Mention] = []
    seen: set[str] = set()
    loose = 0  # exact mentions added

    def add(mention: Mention | None, *, as_written: bool = False) -> None:
        nonlocal loose
        if mention is None or mention.canonical in seen:
            return
        if as_written:
            if loose >= MAX_MENTIONS:
                return
            loose += 1
        elif len(found) - loose >= MAX_MENTIONS:
            return
        seen.add(mention.canonical)
        found.append(mention)

    has_digit = _DIGIT.search
    i, n = 0, len(toks)
    while i < n:
        word, _, end = toks[i]
        if not has_digit(word):
            if word.casefold() in keywords and (j := _after_keyword(text, toks, i)) is not None:
                if _is_number(toks[j]):  # "order 100042", "orders 100042, 100043 and 100044"
                    while j is not None:
                        add(reader.numbered(toks[j][0]))
                        last, j = j, _next_in_list(text, toks, j)
                    i = last + 1
                    continue
                i = j  # "order SO-K7781": the token after the keyword is read on its own
                continue
            if (
                len(word) <= 4
                and i + 1 < n
                and toks[i + 1][1] == end + 1
                and text[end] == " "
                and word.isalpha()
                and (joined := reader.shaped(f"{word}-{toks[i + 1][0]}")) is not None
            ):  # "SO 100042"
                add(Mention(f"{word} {toks[i + 1][0]}", joined.candidates, joined.report))
                i += 2
                continue
        elif (mention := reader.shaped(word)) is not None:
            add(mention)
        else:  # "order100042", "Order#100042": the keyword written onto its number
            lower = word.casefold()
            for kw in keywords:
                rest = lower[len(kw) :].lstrip("#:") if lower.startswith(kw) else ""
                if rest.isdigit() and 4 <= len(rest) <= 12:
                    add(reader.numbered(rest))
                    break
            else:
                if exact:  # any other id, as written ("ORD1", "X-77"): confirmed or left unsaid
                    add(Mention(word, tuple(dict.fromkeys((word, word.upper()))), False), as_written=True)
        i += 1
    return found


def find_order_ids(text: str, config: OrderNumbers | None = None) -> list[str]:
    """The canonical ids (``SO-100042``) of the order numbers in ``text``, without a database."""
    return [m.canonical for m in order_mentions(text, config)]
