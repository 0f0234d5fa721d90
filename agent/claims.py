"""Claims: whether a text says of each number, date and name what the facts say of it.

The grounding checks (:mod:`agent.copilot.grounding` for explanations and chat answers,
:mod:`agent.comms.grounding` for message drafts) make sure every number, date and record id in a
model's text exists in the facts. That is not enough: "the overdue balance of 5429.31 exceeds the
credit limit of 45000.00" uses two numbers of the facts and is false when 5429.31 is the overage.
This module learns the *relations* the facts state and refuses a text that breaks one:

- **roles of values** — which value is the credit limit, the open or overdue balance, the order
  value, the overage, the available stock, the open quantity, the shortfall, the unit or effective
  price, the price difference, the backorder, the eta, the promised or expected date. They are
  learned from the keys of the facts (``credit_limit``, ``overage``, ``eta`` …, at any depth) and
  from the facts' own sentences (the evidence and reasons the deterministic code wrote, read with
  the same reader as the text). A value of the facts that the text attaches to a role ("credit
  limit of 45000.00", "5 units available") must be one the facts give that role; a role the facts
  do not state is not judged, nor a value they lack (the existence checks report that);
- **comparisons** — "A exceeds / is above / is below B" between two numbers must be true;
- **exceptions** — a sentence that says an exception holds in words ("on credit hold", "a pricing
  discrepancy", "the shipment is delayed") or by name (``CREDIT_HOLD``) must name one of the
  order's exceptions (when the facts list exceptions at all); negated sentences are not claims;
- **warehouses** — a warehouse said to have the stock (or to be the one to move the line to) is not
  one that is short, and one said to be short is not only the one that has the stock;
- **carriers** — a carrier said to be disrupted or delayed is not only the replacement carrier, and
  the carrier a shipment is rebooked to is not the one that failed.

:func:`claim_errors` is the one check; the facts are any JSON-able value (a triage result, a chat
turn's tool results, a notice's fact record). Deterministic: no model reads the facts here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.domain import EXCEPTION_TYPES

__all__ = ["EXCEPTION_TYPES", "Relations", "claim_errors", "learn"]


# --- roles: what a value is, the words that name it, the fact keys that hold it -----------------------


@dataclass(frozen=True)
class Role:
    name: str  # as the error message says it
    before: str  # words written before the value ("credit limit of 45000.00")
    after: str = ""  # words written after it ("5 units available")
    keys: tuple[str, ...] = ()
    date: bool = False
    scope: str = ""  # "warehouse" or "order": the values differ by the warehouse or the order named


_LIM = r"(?:the |its |their |the customer's |his |her )?(?:credit )?limit"
ROLES: tuple[Role, ...] = (
    Role(
        "overage",
        r"overage|excess|over[- ]limit amount|"
        r"(?:exceed\w*|is over|goes over|is above|above|over)\s+" + _LIM + r"(?:\s+of\s+[\d.,]+)?\s+by",
        r"over\s+" + _LIM + r"|above\s+" + _LIM + r"|in excess of\s+" + _LIM,
        ("overage",),
    ),
    Role("credit limit", r"credit limit|limit", keys=("credit_limit",)),
    Role(
        "overdue balance",
        r"overdue (?:balance|amount)|past[- ]due (?:balance|amount)|overdue|past[- ]due",
        r"overdue|past[- ]due",
        ("overdue_balance",),
    ),
    Role(
        "open balance",
        r"(?:open|outstanding|current|existing) balance|balance",
        keys=("open_balance",),
    ),
    Role(
        "order value",
        r"order (?:value|total|amount)|value of (?:the |this )?order|order is worth|order worth",
        keys=("order_value",),
    ),
    Role(
        "shortfall",
        r"shortfall|short by|shortage of",
        r"(?:units? )?short\b",
        ("shortfall",),
        scope="warehouse",
    ),
    Role("on-hand stock", r"on[- ]hand|on hand", r"(?:units? )?on[- ]hand", ("on_hand",), scope="warehouse"),
    Role(
        "available stock",
        r"available(?: stock| quantity| qty)?|stock of|in stock",
        r"(?:units? )?(?:of )?(?:[A-Z][\w-]* )?(?:are |is )?(?:available|in stock|free)",
        ("available",),
        scope="warehouse",
    ),
    Role(
        "open quantity",
        r"open (?:quantity|qty)|ordered quantity|quantity ordered|needs?|requires?",
        r"(?:units? )?(?:ordered|needed|required|open)",
        ("open_qty",),
    ),
    Role(
        "unit price",
        r"unit price|order price|line price|priced at|charged|billed at",
        keys=("unit_price",),
    ),
    Role(
        "effective price",
        r"effective price|contract price|list price|agreed price|correct price|should be",
        keys=("effective_price", "new_unit_price"),
    ),
    Role("price difference", r"differs? by|difference(?: of)?|off by|gap of", keys=("difference",)),
    Role("tolerance", r"tolerance(?: of)?", keys=("tolerance_pct",)),
    Role(
        "backorder",
        r"backorder(?:ed)? (?:qty|quantity)|backorder(?:ed)?|on backorder",
        r"(?:units? )?(?:backordered|on backorder)",
        ("backorder_qty", "backordered_qty"),
    ),
    Role(
        "new promised date",
        r"new (?:promised |delivery |promise )?date|promised date to|promise date to|(?:now|newly) (?:promised|scheduled|expected)(?: for| on| by)?|"
        r"rescheduled (?:for|to)|moved to",
        keys=("new_promised_date",),
        date=True,
    ),
    Role(
        "promised date",
        r"(?:originally |previously |was )?promised(?: date)?(?: for| on| by)?|promise date|due date|due(?: on| by)?",
        keys=("promised_date",),
        date=True,
        scope="order",
    ),
    Role(
        "eta",
        r"eta|estimated (?:time of )?arrival|arriv(?:e|es|al)(?: on| date| by)?|expected to arrive(?: on| by)?",
        keys=("eta",),
        date=True,
    ),
    Role(
        "expected date",
        r"expected(?: date| on| by)?|due in(?: on)?",
        keys=("expected_date",),
        date=True,
    ),
)
_ROLE_BY_NAME = {r.name: r for r in ROLES}
_BEFORE = re.compile("|".join(f"(?P<b{i}>(?<![\\w-])(?:{r.before}))" for i, r in enumerate(ROLES)), re.I)
_AFTER = [(r, re.compile(r"\s*(?:" + r.after + r")(?![\w-])")) for r in ROLES if r.after]
# Words that may stand between a role and its value ("the credit limit is only 45000.00"); not "to":
# "correct the unit price to 100.00" gives a new value, it does not say what the price is.
_FILLER = re.compile(
    r"(?:\s|[:=(\"'$€£]|\b(?:of|is|was|are|were|at|the|its|their|a|an|only|just|currently|now|stands|"
    r"amounts to|totals?|totall?ing|reaches|USD|EUR|about|roughly|approximately|on|for|set|just|of about|"
    r"units?|qty|pcs)\b)*",
    re.I,
)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_ID = re.compile(r"(?<![\w-])(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Z]+\d+[A-Z0-9]*)(?![\w-])")
_NUMBER = re.compile(r"(?<![\w.-])\d[\d,]*(?:\.\d+)?(?![\w-])")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_SOP = re.compile(r"\bSOP-[A-Z0-9]+(?:-[A-Z0-9]+)*(?:\s*§\s*[\d.]*\d)?")
_PERCENT_AFTER = re.compile(r"\s*(?:%|percent\b)", re.I)


def _number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _value(raw: Any) -> Decimal | str | None:
    """A fact's value as the text would be compared with it: a number by value, a date as written."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float | Decimal):
        return _number(str(raw))
    if isinstance(raw, str):
        if _DATE.fullmatch(raw.strip()):
            return raw.strip()
        return _number(raw.strip()) if re.fullmatch(r"-?\d[\d,]*(?:\.\d+)?", raw.strip()) else None
    return None


def _blank(text: str) -> str:
    """``text`` with citations and SOP references blanked out (same length, so positions hold)."""
    text = _BRACKETS.sub(lambda m: " " * len(m.group()), text)
    return _SOP.sub(lambda m: " " * len(m.group()), text)


@dataclass(frozen=True)
class Attached:
    role: Role
    value: Decimal | str
    token: str
    start: int
    near: tuple[str, ...] = ()  # the record ids of the value's clause, nearest first


def _tokens(text: str) -> Iterator[tuple[int, int, str, Decimal | str]]:
    """(start, end, token, value) of every date and number of ``text`` outside ids and dates."""
    taken: list[tuple[int, int]] = []
    for m in _DATE.finditer(text):
        taken.append(m.span())
        yield m.start(), m.end(), m.group(), m.group()
    for m in _ID.finditer(text):
        taken.append(m.span())
    for m in _NUMBER.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        value = _number(m.group())
        if value is not None:
            yield m.start(), m.end(), m.group(), value


_CLAUSE = re.compile(r",|;|\.(?!\d)|\b(?:so|but|while|whereas|and|because|since|which|where)\b", re.I)


def _clause_ids(text: str, pos: int) -> tuple[str, ...]:
    """The record ids of the clause around ``pos``, nearest to it first."""
    start = max((m.end() for m in _CLAUSE.finditer(text, 0, pos)), default=0)
    nxt = _CLAUSE.search(text, pos)
    end = nxt.start() if nxt else len(text)
    found = [(abs(m.start() - pos), m.group()) for m in _ID.finditer(text, start, end)]
    return tuple(dict.fromkeys(i for _, i in sorted(found)))


def attached(text: str) -> list[Attached]:
    """Each date or number of ``text`` that a role's words name, with that role (the role written
    just before the value wins over one written just after it)."""
    text = _blank(text)
    out: list[Attached] = []
    tokens = sorted(_tokens(text))
    for n, (start, end, token, value) in enumerate(tokens):
        percent = isinstance(value, Decimal) and _PERCENT_AFTER.match(text, end) is not None
        floor = tokens[n - 1][1] if n else 0
        window_start = max(floor, start - 80)
        window = text[window_start:start]
        role = None
        matches = list(_BEFORE.finditer(window))
        last = matches[-1] if matches else None
        if last is not None and _FILLER.fullmatch(window[last.end() :]):
            role = ROLES[int(next(k for k, v in last.groupdict().items() if v is not None)[1:])]
        if role is None:
            nxt = tokens[n + 1][0] if n + 1 < len(tokens) else len(text)
            rest = text[end:nxt]
            for candidate, pattern in _AFTER:
                if pattern.match(rest):
                    role = candidate
                    break
        if role is None or role.date != isinstance(value, str):
            continue
        if percent and role.name != "tolerance":
            continue  # "1.0 % of the limit" is a share, not the limit
        out.append(Attached(role, value, token, start, _clause_ids(text, start)))
    return out


# --- what the facts state ------------------------------------------------------------------------------


@dataclass
class Relations:
    """What the facts state: values by role, exception types, short and stocked warehouses, failed
    and replacement carriers."""

    values: dict[str, set[Decimal | str]] = field(default_factory=dict)
    exception_types: set[str] = field(default_factory=set)
    lists_exceptions: bool = False
    short_warehouses: set[str] = field(default_factory=set)
    stock_warehouses: set[str] = field(default_factory=set)
    failed_carriers: set[str] = field(default_factory=set)
    new_carriers: set[str] = field(default_factory=set)
    seen: set[Decimal | str] = field(default_factory=set)  # every number and date of the facts
    scoped: dict[tuple[str, str], set[Decimal | str]] = field(default_factory=dict)
    scopes: dict[str, set[str]] = field(default_factory=dict)  # "warehouse"/"order": the ids known

    def add_scoped(self, role: str, scope: str | None, value: Decimal | str | None) -> None:
        if scope and value is not None:
            self.scoped.setdefault((role, scope), set()).add(value)

    def scope_of(self, role: Role, near: Iterable[str]) -> str | None:
        """The warehouse or order a value of ``role`` is said of: the nearest one named."""
        known = self.scopes.get(role.scope, set()) if role.scope else set()
        return next((i for i in near if i in known), None)

    def allowed(self, role: Role, near: Iterable[str]) -> set[Decimal | str]:
        """The values the facts give ``role`` where the text says it (all of them when unscoped)."""
        scope = self.scope_of(role, near)
        if scope is not None and (role.name, scope) in self.scoped:
            return self.scoped[(role.name, scope)]
        return self.values.get(role.name, set())

    def add(self, role: str, value: Decimal | str | None) -> None:
        if value is not None:
            self.values.setdefault(role, set()).add(value)

    def roles_of(self, value: Decimal | str) -> list[str]:
        return sorted(name for name, vals in self.values.items() if value in vals)


_KEY_ROLE = {key: role.name for role in ROLES for key in role.keys}


_WAREHOUSE_KEYS = ("warehouse_id", "to_warehouse_id", "from_warehouse_id")
_ORDER_KEYS = ("order_id", "from_order_id")


def _walk(node: Any, rel: Relations, texts: list[str], order: str | None = None) -> None:
    if isinstance(node, dict):
        for key in _WAREHOUSE_KEYS + _ORDER_KEYS:
            if isinstance(node.get(key), str):
                rel.scopes.setdefault("warehouse" if key in _WAREHOUSE_KEYS else "order", set()).add(
                    node[key]
                )
        order = node["order_id"] if isinstance(node.get("order_id"), str) else order
        for key, raw in node.items():
            if key in _KEY_ROLE:
                role = _ROLE_BY_NAME[_KEY_ROLE[key]]
                rel.add(role.name, _value(raw))
                if role.scope == "order":
                    rel.add_scoped(role.name, order, _value(raw))
                elif role.scope == "warehouse" and isinstance(node.get("warehouse_id"), str):
                    rel.add_scoped(role.name, node["warehouse_id"], _value(raw))
            if key == "exceptions" and isinstance(raw, list):
                rel.lists_exceptions = True
                rel.exception_types |= {
                    e["type"] for e in raw if isinstance(e, dict) and isinstance(e.get("type"), str)
                }
        inner = node.get("facts")
        facts: dict[str, Any] = inner if isinstance(inner, dict) else node
        shortfall = _value(facts.get("shortfall"))
        if isinstance(facts.get("warehouse_id"), str) and isinstance(shortfall, Decimal) and shortfall > 0:
            rel.short_warehouses.add(facts["warehouse_id"])
        given = node.get("params")
        params: dict[str, Any] = given if isinstance(given, dict) else {}
        if isinstance(params.get("to_warehouse_id"), str):
            rel.stock_warehouses.add(params["to_warehouse_id"])
        if node.get("action") == "REBOOK_CARRIER" and isinstance(params.get("carrier_id"), str):
            rel.new_carriers.add(params["carrier_id"])
        if isinstance(facts.get("carrier_id"), str) and (
            facts.get("carrier_status") in ("disrupted", "constrained")
            or facts.get("status") == "delayed"
            or (
                isinstance(facts.get("eta"), str)
                and isinstance(facts.get("promised_date"), str)
                and facts["eta"] > facts["promised_date"]
            )
        ):
            rel.failed_carriers.add(facts["carrier_id"])
        for raw in node.values():
            _walk(raw, rel, texts, order)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item, rel, texts, order)
    elif isinstance(node, str):
        texts.append(node)
        rel.seen |= {value for _, _, _, value in _tokens(node)}
    elif (value := _value(node)) is not None:
        rel.seen.add(value)


def learn(facts: Any) -> Relations:
    """The relations ``facts`` (any JSON-able value) state: from their keys at any depth, and from
    their sentences (evidence, reasons) read with :func:`attached`."""
    rel = Relations()
    texts: list[str] = []
    _walk(facts, rel, texts)
    for text in texts:
        for a in attached(text):
            rel.add(a.role.name, a.value)
            rel.add_scoped(a.role.name, rel.scope_of(a.role, a.near), a.value)
    # The open balance plus the order value is the customer's exposure, which prose calls a balance.
    for bal in [v for v in rel.values.get("open balance", ()) if isinstance(v, Decimal)]:
        for val in [v for v in rel.values.get("order value", ()) if isinstance(v, Decimal)]:
            rel.add("open balance", (bal + val).normalize())
    return rel


# --- the checks ----------------------------------------------------------------------------------------


def _show(value: Decimal | str) -> str:
    return value if isinstance(value, str) else f"{value:f}"


# Roles whose mere mention is a claim: the text may not give a new date the facts do not have.
_UNSTATED = ("new promised date",)


def _role_errors(text: str, rel: Relations) -> list[str]:
    errors = []
    for a in attached(text):
        known = rel.allowed(a.role, a.near)
        if not known and a.role.name in _UNSTATED and a.value in rel.seen:
            errors.append(
                f"the facts state no {a.role.name}; {a.token} is the {' / '.join(rel.roles_of(a.value))}"
            )
            continue
        if not known or a.value in known or a.value not in rel.seen:
            continue  # a value the facts lack is the existence check's to report
        is_also = [r for r in rel.roles_of(a.value) if r != a.role.name]
        scope = rel.scope_of(a.role, a.near)
        where = f" of {scope}" if scope and (a.role.name, scope) in rel.scoped else ""
        also = f"; {a.token} is the {' / '.join(is_also)}" if is_also else ""
        errors.append(
            f"the text calls {a.token} the {a.role.name}{where}, but the facts give it as "
            f"{', '.join(sorted(map(_show, known)))}{also}"
        )
    return errors


_SENTENCE = re.compile(r"[^.;!?\n]+(?:\.(?=\d)[^.;!?\n]*)*")
# Only a verb makes a comparison: "10.00 above the list price" is a difference, not a claim.
_MORE = re.compile(
    r"\b(?:exceed(?:s|ed|ing)?|(?:is|are|was|were) (?:above|over|higher than|greater than|more than))\b",
    re.I,
)
_LESS = re.compile(
    r"\b(?:(?:is|are|was|were|falls|stays) (?:below|under|within|lower than|less than))\b",
    re.I,
)
_JOIN = re.compile(r"\b(?:plus|and|with|together|combined|sum|total|added)\b|\+", re.I)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;!?])\s+(?=[A-Z(])|\n+|;", text) if s.strip()]


def _comparison_errors(text: str) -> list[str]:
    errors = []
    for sentence in _sentences(_blank(text)):
        numbers = [(s, e, t, v) for s, e, t, v in _tokens(sentence) if isinstance(v, Decimal)]
        for verb in list(_MORE.finditer(sentence)) + list(_LESS.finditer(sentence)):
            left = [n for n in numbers if n[1] <= verb.start()]
            right = [n for n in numbers if n[0] >= verb.end()]
            if not left or not right:
                continue
            a, b = left[-1], right[0]
            if len(left) > 1 and _JOIN.search(sentence[left[-2][1] : a[0]]):
                continue  # "48500 plus 1000 exceeds 49000": a sum, not one number
            if _JOIN.search(sentence[a[1] : verb.start()]) or _PERCENT_AFTER.match(sentence, a[1]):
                continue
            if _PERCENT_AFTER.match(sentence, b[1]) or re.match(r"\s*by\b", sentence[b[1] :]):
                continue
            gap = sentence[verb.end() : b[0]]
            if re.search(r"\d|\bby\b", gap):
                continue
            more = _MORE.fullmatch(verb.group()) is not None
            holds = a[3] > b[3] if more else a[3] <= b[3]
            if not holds:
                word = verb.group().strip()
                errors.append(f"'{a[2]} {word} {b[2]}' is false")
    return errors


# "57 available ... is not enough for the open qty 3": whether stock covers a quantity is a comparison
# too, stated with other words. The available number is the last one before the verdict that the word
# "available" follows (within five words) or comes right after; the quantity the first one after it
# that follows "qty" / "quantity".
_AVAILABLE = re.compile(
    r"(?<![\w.-])(?P<a>\d[\d,]*(?:\.\d+)?)(?![\w-])(?:\s+(?![\d])[\w-]+){0,5}?\s+(?:are\s+|is\s+)?available\b"
    r"|\bavailable(?:\s+(?:stock|quantity|qty))?(?:\s+(?:is|of))?\s+(?P<b>\d[\d,]*(?:\.\d+)?)(?![\w-])",
    re.I,
)
_NOT_ENOUGH = re.compile(
    r"\b(?:not enough|insufficient|too few|(?:does not|doesn't|do not|don't|cannot|can't|can not) (?:cover|fill|meet)|"
    r"falls? short|short of)\b",
    re.I,
)
_ENOUGH = re.compile(r"(?<!not )\b(?:enough|sufficient|(?<!not )covers?|can (?:cover|fill))\b", re.I)
_QTY = re.compile(r"\b(?:qty|quantity)\s+(?:of\s+)?(?P<q>\d[\d,]*(?:\.\d+)?)(?![\w-])", re.I)


def _sufficiency_errors(text: str) -> list[str]:
    errors = []
    for sentence in _sentences(_blank(text)):
        verdicts = [(m, False) for m in _NOT_ENOUGH.finditer(sentence)]
        verdicts += [
            (m, True)
            for m in _ENOUGH.finditer(sentence)
            if not _NOT_ENOUGH.search(sentence, max(0, m.start() - 12), m.end())
        ]
        for verdict, enough in verdicts:
            before = [m for m in _AVAILABLE.finditer(sentence, 0, verdict.start())]
            after = _QTY.search(sentence, verdict.end())
            if not before or after is None:
                continue
            raw = before[-1].group("a") or before[-1].group("b")
            have, need = _number(raw), _number(after.group("q"))
            if have is None or need is None or (have >= need) == enough:
                continue
            word = verdict.group().strip()
            errors.append(f"'{raw} available … {word} … qty {after.group('q')}' is false")
    return errors


_NEGATION = re.compile(
    r"\b(?:no|not|never|without|none|neither|nor|rather than|instead of|unrelated|avoid\w*|prevent\w*|"
    r"if|would|could|might|unless|once|after|risk of)\b|n't\b",
    re.I,
)
# Words that claim an exception holds, by the exception types that make the claim true.
_SHORT_TYPES = ("INVENTORY_SHORTFALL", "ALLOCATION_CONFLICT", "SUBSTITUTION_REQUEST", "PROCUREMENT_DELAY")
_EXCEPTION_WORDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(p, re.I), types)
    for p, types in (
        (
            r"\bcredit[- ]hold\b|\bcredit block\w*|\bheld for credit\b|\bon hold for credit\b",
            ("CREDIT_HOLD",),
        ),
        (
            r"\bpric(?:e|ing) (?:discrepanc\w*|mismatch\w*|error|deviation)|\bwrong price\b|\bmispric\w*|"
            r"\bovercharg\w*|\bundercharg\w*",
            ("PRICING_DISCREPANCY",),
        ),
        (
            r"\b(?:inventory|stock) (?:shortfall|shortage)|\bout of stock\b|\bstock-?out\b|"
            r"\binsufficient (?:stock|inventory)\b|\bnot enough (?:stock|inventory)\b|\black of (?:stock|inventory)\b",
            _SHORT_TYPES,
        ),
        (
            r"\bsubstitution request\b|\b(?:asks?|asked|requests?|requested) (?:for )?a substitute\b",
            ("SUBSTITUTION_REQUEST",),
        ),
        (
            r"\bcarrier disruption\b|\bcarrier (?:is |was )?disrupted\b|\bshipment (?:is |was )?delayed\b|"
            r"\bdelayed shipment\b|\bcarrier delay\b",
            ("CARRIER_DISRUPTION",),
        ),
        (
            r"\bprocurement delay\b|\b(?:purchase order|PO) (?:is |was )?(?:late|delayed)\b|"
            r"\blate (?:purchase order|PO)\b|\bsupplier delay\b",
            ("PROCUREMENT_DELAY",),
        ),
        (
            r"\bmaster data\b|\bincomplete (?:ship-to|address)\b|\b(?:ship-to )?address is incomplete\b|"
            r"\bmissing (?:ship-to|address|street|city|postal code)\b",
            ("MASTER_DATA_INCOMPLETE",),
        ),
        (r"\bcompliance hold\b|\bexport[- ]control\w*|\bexport licen[cs]e\b", ("COMPLIANCE_HOLD",)),
        (r"\brecurring anomal\w*|\brecurring (?:pattern|problem|issue)\b", ("RECURRING_ANOMALY",)),
        (r"\ballocation conflict\b|\bcompeting order", ("ALLOCATION_CONFLICT",)),
        *((rf"\b{t}\b", (t,)) for t in EXCEPTION_TYPES),
    )
)


def _exception_errors(text: str, rel: Relations) -> list[str]:
    if not rel.lists_exceptions:
        return []
    errors: list[str] = []
    for sentence in _sentences(_blank(text)):
        for pattern, types in _EXCEPTION_WORDS:
            for m in pattern.finditer(sentence):
                if _NEGATION.search(sentence[: m.start()]) or rel.exception_types & set(types):
                    continue
                holds = ", ".join(sorted(rel.exception_types)) or "none"
                msg = f"'{m.group()}' is not an exception of this order (it has: {holds})"
                if msg not in errors:
                    errors.append(msg)
    return errors


_CLAUSE = re.compile(r",|;|\.(?!\d)|\b(?:so|but|while|whereas|and|because|since|which|where)\b", re.I)
_STOCKED = re.compile(
    r"\b(?:has|have|holds?) (?:the |enough |sufficient )?(?:stock|units|inventory)\b|\benough stock\b|"
    r"\bsufficient stock\b|\bcan (?:fill|cover|supply)\b|\breallocat\w*|\btransfer\w*|\bmov\w* (?:\w+ )?to\b|"
    r"\bswitch\w* (?:\w+ )?to\b|\bsourc\w* from\b|\bin stock\b",
    re.I,
)
_SHORT = re.compile(
    r"\bshort\w*|\bout of stock\b|\bno stock\b|\binsufficient\b|\bnot enough\b|\black\w*|\bonly\b|"
    r"\bstock-?out\b|\bcannot (?:fill|cover)\b",
    re.I,
)
_FAILED = re.compile(r"\bdisrupt\w*|\bdelay\w*|\bfail\w*|\blate\b|\bconstrained\b|\bbehind\b", re.I)
_REBOOK = re.compile(
    r"\brebook\w*|\bswitch\w* (?:[\w-]+ )?to\b|\bmov\w* (?:[\w-]+ )?to\b|\bnew carrier\b|\balternative carrier\b|"
    r"\bhand\w* (?:it |\w+ )?(?:over )?to\b|\binstead\b|\bre-?assign\w* to\b",
    re.I,
)


def _clauses(text: str) -> list[str]:
    pieces, last = [], 0
    for m in _CLAUSE.finditer(text):
        pieces.append(text[last : m.start()])
        last = m.end()
    pieces.append(text[last:])
    return [p for p in pieces if p.strip()]


def _named(clause: str, ids: Iterable[str]) -> list[str]:
    """The ids of ``ids`` the clause names, except one written right after "from" (a source)."""
    out = []
    for ident in ids:
        for m in re.finditer(rf"(?<![\w-]){re.escape(ident)}(?![\w-])", clause):
            if not re.search(r"\bfrom\s+(?:warehouse\s+|carrier\s+)?$", clause[: m.start()], re.I):
                out.append(ident)
                break
    return out


def _party_errors(text: str, rel: Relations) -> list[str]:
    errors: list[str] = []
    warehouses = rel.short_warehouses | rel.stock_warehouses
    carriers = rel.failed_carriers | rel.new_carriers
    for clause in _clauses(_blank(text)):
        if _NEGATION.search(clause):
            continue
        stocked, short = bool(_STOCKED.search(clause)), bool(_SHORT.search(clause))
        for wh in _named(clause, warehouses):
            if stocked and not short and wh in rel.short_warehouses - rel.stock_warehouses:
                errors.append(f"{wh} is the warehouse that is short, not one with the stock")
            if short and not stocked and wh in rel.stock_warehouses - rel.short_warehouses:
                errors.append(
                    f"{wh} has the stock; the short warehouse is {', '.join(sorted(rel.short_warehouses)) or 'none'}"
                )
        failed, rebook = bool(_FAILED.search(clause)), bool(_REBOOK.search(clause))
        for ca in _named(clause, carriers):
            if failed and not rebook and ca in rel.new_carriers - rel.failed_carriers:
                errors.append(
                    f"{ca} is the carrier to rebook to; the disrupted one is {', '.join(sorted(rel.failed_carriers)) or 'none'}"
                )
            if rebook and not failed and ca in rel.failed_carriers - rel.new_carriers:
                errors.append(f"{ca} is the carrier that failed, not the one to rebook to")
    return list(dict.fromkeys(errors))


def claim_errors(text: str, facts: Any, *, relations: Relations | None = None) -> list[str]:
    """What ``text`` says of the facts' values, exceptions, warehouses and carriers that the facts
    (any JSON-able value) contradict; empty when every claim it makes holds."""
    if not text or not text.strip():
        return []
    rel = relations if relations is not None else learn(facts)
    return (
        _role_errors(text, rel)
        + _comparison_errors(text)
        + _sufficiency_errors(text)
        + _exception_errors(text, rel)
        + _party_errors(text, rel)
    )
