"""Route the common READ questions by meaning, with the embedding model already loaded for the SOPs.

The rules of :func:`agent.copilot.chat.rule_choice` read the questions whose words are certain; a
paraphrase they miss ("what's holding up SO-102921?", "how many of that part are on the shelf?")
would cost a model call of a thousand prompt tokens just to pick the tool. Here each READ intent has
a handful of example questions (``intents.yaml``); the question is embedded, compared (cosine) with
every example, and routed only when

- its best intent scores at least ``threshold`` and beats every other intent by ``margin``;
- that intent names a READ tool (the file's other intents, small talk, instructions and approval
  asks, attract what must not be routed);
- every argument resolves from the question or the thread's focus without guessing
  (:func:`arguments`): the one order it names or the order under discussion, the sku, purchase
  order or customer named or under discussion, the action its words name.

Otherwise the model chooses, as before. ``threshold`` and ``margin`` were measured for one embedding
function (``evals/routing``); another embedding (the hash-based fake of the tests) has none in the
file, so :func:`router_for` gives no router and nothing changes. Ids are masked before embedding
("SO-102921" reads "the order"), so the example questions need none.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agent.copilot.chat_focus import mentioned_ids
from agent.copilot.chat_tools import COPILOT_TOOL_SCHEMAS, action_from_words
from agent.triage.order_numbers import OrderNumbers, find_order_ids, order_mentions

__all__ = [
    "INTENTS_FILE",
    "Intent",
    "IntentRouter",
    "Match",
    "arguments",
    "load_intents",
    "mask_ids",
    "router_for",
]

INTENTS_FILE = Path(__file__).resolve().with_name("intents.yaml")
ROUTABLE = frozenset(
    {
        "triage_order",
        "why_not",
        "find_requests",
        "find_customer_orders",
        "find_late_orders",
        "get_customer_credit",
        "get_stock",
        "get_substitutes",
        "get_open_purchase_orders",
        "get_orders_waiting_on_po",
        "get_order_shipments",
        "search_sops",
    }
)  # READ tools only: nothing here proposes, drafts or files

_I = re.IGNORECASE
_PO = re.compile(r"\bPO-\d+\b", _I)
_SKU = re.compile(r"\b[A-Z]{2,5}-\d{3,6}\b")
_CUSTOMER_ID = re.compile(r"\bC-\d+\b")
_REFERS = re.compile(r"\b(?:it|its|this|that|they|them|their|the order|the customer)\b", _I)
_OTHER = re.compile(r"\b(?:other|others|else|besides|apart from|except|remaining)\b", _I)
_WORD = re.compile(r"[\w&'-]+")
# An id written in a form the id readers do not take ("purchase order 4411", "sku 88213", "order 12345").
_UNREAD_ID = re.compile(
    r"\b(?:po|purchase order|sku|item|part|order|so)\s*#?\s*\d{3,}\b|\b\d{4,}\b|\b[A-Z]{1,5}-\d{1,3}\b", _I
)
# Another order or shipment named in words ("the Acme order", "Acme's shipment", "the new order").
_NAMED = re.compile(
    r"\b(?:the|an?)\s+(?:(?P<a>[A-Z][\w&-]+)|new|next|other|previous|last)\s+(?:order|shipment)s?\b|"
    r"\b(?P<b>[A-Z][\w&-]+)'s\s+(?:order|shipment)s?\b"
)
# Capitalised words that name no customer; a question's first word is a name unless a starter.
_NOT_NAMES = frozenset({"I", "SKU", "SKUs", "PO", "POs", "ETA", "ERP", "OK"})
_STARTERS = frozenset(
    "what which how is are does do did can could will would should show list tell give has have "
    "any anything and so please when where who whose why the this that their they it its".split()
)
_CUSTOMER_WORDS = re.compile(r"\b(?:they|them|their|theirs|customer|customer's|account|client)\b", _I)


@dataclass(frozen=True, slots=True)
class Intent:
    """One kind of question: the READ tool that answers it (None: no tool routes it) and examples."""

    name: str
    tool: str | None
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """The best intent of a question, its cosine ``score`` and its lead over the best other intent."""

    intent: Intent
    score: float
    runner_up: str
    margin: float


def load_intents(path: Path = INTENTS_FILE) -> tuple[list[Intent], dict[str, dict[str, float]]]:
    """The intents of the file and its calibration (``{embedding name: {threshold, margin}}``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    intents = []
    for name, raw in (data.get("intents") or {}).items():
        tool = raw.get("tool")
        if tool is not None and tool not in ROUTABLE:
            raise ValueError(f"{path}: intent {name}: {tool!r} is not a READ tool the router may choose")
        examples = tuple(str(e) for e in raw.get("examples") or [])
        if not examples:
            raise ValueError(f"{path}: intent {name}: no examples")
        intents.append(Intent(name, tool, examples))
    calibration = {
        str(k): {"threshold": float(v["threshold"]), "margin": float(v["margin"])}
        for k, v in (data.get("calibration") or {}).items()
    }
    return intents, calibration


def mask_ids(question: str, numbers: OrderNumbers | None) -> str:
    """The question with its ids replaced by what they are ("SO-1 stuck?" → "the order stuck?")."""
    text = question
    for mention in order_mentions(question, numbers):
        text = text.replace(mention.raw, "the order")
    text = _PO.sub("the purchase order", text)
    text = _CUSTOMER_ID.sub("the customer", text)
    return _SKU.sub("the item", text)


class IntentRouter:
    """Nearest example by cosine similarity, with a threshold and a margin (see the module)."""

    def __init__(self, embed: Any, intents: list[Intent], *, threshold: float, margin: float) -> None:
        self.embed = embed
        self.intents = intents
        self.threshold = threshold
        self.margin = margin
        self._examples: np.ndarray | None = None
        self._owner: np.ndarray | None = None  # the intent index of each example row
        self._lock = threading.Lock()

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """The examples' unit vectors, embedded once (the embedding function is deterministic)."""
        with self._lock:
            if self._examples is None or self._owner is None:
                texts = [e for intent in self.intents for e in intent.examples]
                self._examples = _unit(np.asarray(self.embed(texts), dtype=np.float32))
                self._owner = np.asarray(
                    [i for i, intent in enumerate(self.intents) for _ in intent.examples]
                )
            return self._examples, self._owner

    def warm(self) -> None:
        """Embed the examples now (a service at start-up), not at the first question."""
        self._matrix()

    def match(self, question: str, numbers: OrderNumbers | None = None) -> Match:
        """The question's best intent (its nearest example) and its margin over the next intent."""
        examples, owner = self._matrix()
        vector = _unit(np.asarray(self.embed([mask_ids(question, numbers)]), dtype=np.float32))[0]
        similarity = examples @ vector
        best = np.full(len(self.intents), -1.0, dtype=np.float32)
        np.maximum.at(best, owner, similarity)
        first, second = np.argsort(-best)[:2]
        return Match(
            self.intents[int(first)],
            float(best[first]),
            self.intents[int(second)].name,
            float(best[first] - best[second]),
        )

    def choose(
        self,
        question: str,
        focus: dict[str, Any],
        *,
        numbers: OrderNumbers | None = None,
        tools: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]] | None:
        """The READ call the question asks for, or None when the meaning or an argument is uncertain."""
        found = self.match(question, numbers)
        tool = found.intent.tool
        if tool is None or found.score < self.threshold or found.margin < self.margin:
            return None
        if tool not in COPILOT_TOOL_SCHEMAS and tool not in (tools or {}):
            return None  # e.g. search_sops without an SOP index
        args = arguments(tool, question, focus, numbers)
        return None if args is None else (tool, args)


def arguments(
    tool: str, question: str, focus: dict[str, Any], numbers: OrderNumbers | None
) -> dict[str, Any] | None:
    """The arguments of ``tool`` for the question, each from its words or the focus; None when one
    does not resolve or two candidates compete (two orders named, a name that is not the customer's)."""
    orders = find_order_ids(question, numbers)
    ids = mentioned_ids(question, numbers)
    if len(orders) > 1 or len(ids["sku"]) > 1 or len(ids["po_id"]) > 1:
        return None
    # Another order named than the one under discussion: its customer and sku are not in the focus.
    same_order = not orders or orders[0] == focus.get("order_id")
    # The record under discussion stands in for one the question does not name, never for one it
    # names in words ("what's holding up the Acme order?", "is the new order stuck?").
    if _named_elsewhere(question, focus, [*orders, *ids["sku"], *ids["po_id"]]):
        return None
    order = orders[0] if orders else focus.get("order_id")
    if tool in ("triage_order", "find_requests", "get_order_shipments"):
        return {"order_id": order} if order else None
    if tool == "why_not":
        action = action_from_words(question)
        return {"order_id": order, "action": action} if order and action else None
    if tool in ("get_stock", "get_substitutes", "get_open_purchase_orders"):
        sku = ids["sku"][0] if ids["sku"] else (focus.get("sku") if same_order else None)
        return {"sku": sku} if sku else None
    if tool == "get_orders_waiting_on_po":
        po = ids["po_id"][0] if ids["po_id"] else (focus.get("po_id") if not orders else None)
        return {"po_id": po} if po else None
    if tool in ("find_customer_orders", "find_late_orders", "get_customer_credit"):
        customer = _customer(question, focus) if same_order else None
        if customer is None:
            return None
        args: dict[str, Any] = {"customer_id": customer}
        if tool == "find_customer_orders" and focus.get("order_id") and _OTHER.search(question):
            args["exclude_order_id"] = focus["order_id"]
        return args
    if tool == "search_sops":  # a procedure in general, not a question about the records discussed
        general = not orders and not ids["sku"] and not ids["po_id"] and not _REFERS.search(question)
        return {"question": question} if general else None
    return None


def _named_elsewhere(question: str, focus: dict[str, Any], read: list[str]) -> bool:
    """The question names an id in a form the readers do not take ("purchase order 4411": not among
    the ids ``read`` from it) or an order or shipment in words that is not the focus customer's."""
    read_digits = {re.sub(r"\D", "", i) for i in [*read, *_CUSTOMER_ID.findall(question)]}
    for m in _UNREAD_ID.finditer(question):
        digits = re.sub(r"\D", "", m.group(0))
        if digits and digits not in read_digits:
            return True
    known = _customer_words(focus)
    for m in _NAMED.finditer(question):
        name = m.group("a") or m.group("b")
        if name is None or name.lower() not in known:
            return True
    return False


def _customer_words(focus: dict[str, Any]) -> set[str]:
    """The words of the name of the customer under discussion, lower-case."""
    return {w.lower() for w in _WORD.findall(focus.get("customer") or "")}


def _customer(question: str, focus: dict[str, Any]) -> str | None:
    """The customer a question means: the id it names, else the one under discussion when the
    question refers to it ("they", "this customer", its name) and names no one else ("what does
    Bolt have open?" while Acme is discussed: None)."""
    if m := _CUSTOMER_ID.search(question):
        return m.group(0)
    customer = focus.get("customer_id")
    known = _customer_words(focus)
    names = [
        w.removesuffix("'s")
        for i, w in enumerate(_WORD.findall(question))
        if w[0].isupper()
        and not any(c.isdigit() for c in w)
        and w not in _NOT_NAMES
        and (i > 0 or w.lower() not in _STARTERS)
    ]
    if not customer or any(n.lower() not in known for n in names):
        return None
    return customer if names or _CUSTOMER_WORDS.search(question) else None


_ROUTERS: dict[str, IntentRouter | None] = {}
_ROUTERS_LOCK = threading.Lock()


def router_for(embed: Any, path: Path = INTENTS_FILE) -> IntentRouter | None:
    """The router of ``embed`` (one per embedding function name and process, its examples embedded
    at first use), or None when the file has no threshold measured for that embedding."""
    if embed is None or not hasattr(embed, "name"):
        return None
    key = f"{embed.name()}:{path}"
    with _ROUTERS_LOCK:
        if key not in _ROUTERS:
            intents, calibration = load_intents(path)
            measured = calibration.get(embed.name())
            _ROUTERS[key] = IntentRouter(embed, intents, **measured) if measured else None
        return _ROUTERS[key]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
