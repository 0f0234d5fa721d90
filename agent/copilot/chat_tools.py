"""What chat may do: the copilot's own tools, the READ tools, and the checks a tool call passes first.

The model chooses; this module decides whether the choice may run. A call is refused (and the
model told why, once) when its arguments fail the tool's schema, when it names an order, customer
or sku that appears nowhere in the conversation (an invented id), or when it would request an
approval that the user's own message did not ask for — so instructions hidden in a customer note
or a pasted e-mail cannot make the copilot act. No tool here writes an ERP record:
``request_approval`` only proposes a request (:mod:`agent.copilot.proposals`), filed with the
approval step when the user confirms it on the next turn and decided by a person with the policy's
role.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.copilot.proposals import asks_for_approval
from agent.policy import ACTIONS, ActionName
from agent.triage.order_numbers import OrderNumbers, find_order_ids
from tools.domain import EXCEPTION_TYPES, ExceptionType

__all__ = [
    "COPILOT_TOOLS",
    "COPILOT_TOOL_SCHEMAS",
    "ORDER_TOOLS",
    "ROUTE_SCHEMA",
    "TOOL_NAMES",
    "ToolCallError",
    "ToolChoice",
    "action_from_words",
    "asks_for_note",
    "catalog",
    "check_call",
]


class TriageOrderArgs(BaseModel):
    """Find what is blocking one order and what to do next: its exceptions with evidence, the
    recommended action and its approver. Use it for "what is blocking / wrong with SO-100042",
    "why is it held", "what should we do"."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")


class WhyNotArgs(BaseModel):
    """Explain why an action is or is not the recommendation for an order (feasible or not, and
    why). Use it for "why not split it?", "can we substitute instead?"."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")
    action: ActionName = Field(description="the action asked about, e.g. SPLIT_SHIPMENT")


class RequestApprovalArgs(BaseModel):
    """Propose an approval request for an action on an order: it is shown with its parameters and
    filed only when the user confirms ("yes"); a person with the policy's role then decides. Use it
    ONLY when the user instructs it ("request approval for that"), never for a question about
    requests. Leave action out for the order's recommended action."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")
    action: ActionName | None = Field(default=None, description="the action, e.g. REALLOCATE_WAREHOUSE")


class DraftCustomerNoteArgs(BaseModel):
    """Draft a note to the customer about an order: written from the order's facts, filed for a
    customer-service approver (nothing is sent before). Use it ONLY when the user asks to draft,
    write or send a note, e-mail or message to the customer ("draft a note to Acme about SO-100042")."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")


class FindRequestsArgs(BaseModel):
    """List the approval requests already filed for an order, with their status and approver. Use
    it for "is there already an approval request for SO-100042?", "what happened to the request?"."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")


class WhatIfArgs(BaseModel):
    """Say what an action on an order would do to the other open orders: the exceptions it would
    create or clear on each, with the customer's tier and the order value (simulated and rolled
    back, nothing changes). Use it for "what happens to other orders if we move SO-100042 to
    WH-2?", "who gets hurt if we approve that?". Moving to a warehouse is REALLOCATE_WAREHOUSE
    with warehouse_id; leave action out for the order's recommended action."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(description="order id such as SO-100042")
    action: ActionName | None = Field(default=None, description="the action, e.g. REALLOCATE_WAREHOUSE")
    warehouse_id: str | None = Field(
        default=None, description="the warehouse to move the order to, e.g. WH-2"
    )
    line_no: int | None = Field(default=None, ge=1, description="the line to move (default: the first)")


class FindLateOrdersArgs(BaseModel):
    """List a customer's open orders at risk of shipping late (an exception blocks or delays them),
    with promised dates and what blocks each. Use it for "which of Acme's orders will ship late?"."""

    model_config = ConfigDict(extra="forbid")
    customer_name: str | None = Field(default=None, description="part of the customer's name, e.g. acme")
    customer_id: str | None = Field(default=None, description="customer id such as C-1042")


class FindCustomerOrdersArgs(BaseModel):
    """List a customer's open orders with what blocks each (its risk of shipping late) and the
    recommended action. Use it for "which other orders of this customer are at risk?", "what else
    does Acme have open?"; exclude_order_id leaves out the order under discussion."""

    model_config = ConfigDict(extra="forbid")
    customer_id: str | None = Field(default=None, description="customer id such as C-10001")
    customer_name: str | None = Field(default=None, description="part of the customer's name, e.g. acme")
    exclude_order_id: str | None = Field(default=None, description="an order to leave out, e.g. SO-100042")


COPILOT_TOOL_SCHEMAS: dict[str, type[BaseModel]] = {
    "triage_order": TriageOrderArgs,
    "why_not": WhyNotArgs,
    "request_approval": RequestApprovalArgs,
    "find_requests": FindRequestsArgs,
    "find_late_orders": FindLateOrdersArgs,
    "find_customer_orders": FindCustomerOrdersArgs,
    "draft_customer_note": DraftCustomerNoteArgs,
    "what_if": WhatIfArgs,
}
COPILOT_TOOLS = list(COPILOT_TOOL_SCHEMAS)
READ_TOOL_NAMES = [
    "search_sops",
    "get_order",
    "search_orders",
    "list_open_exceptions",
    "get_customer_credit",
    "get_stock",
    "get_substitutes",
    "get_open_purchase_orders",
    "get_orders_waiting_on_po",
    "get_order_shipments",
    "get_line_price",
    "get_effective_price",
]
TOOL_NAMES = [*COPILOT_TOOLS, *READ_TOOL_NAMES, "none"]
ORDER_TOOLS = {
    "triage_order",
    "what_if",
    "why_not",
    "request_approval",
    "find_requests",
    "draft_customer_note",
    "get_order",
    "get_order_shipments",
    "get_line_price",
}

# The JSON path: one flat object the small model fills under a grammar; each tool takes the fields
# it needs. Kept flat and small on purpose: a 1.5B model fills it reliably, nested unions it does not.
_ID = {"type": "string", "maxLength": 32}
ROUTE_SCHEMA: dict[str, Any] = {
    "title": "ToolChoice",
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": TOOL_NAMES},
        "order_id": _ID,
        "action": {"type": "string", "enum": list(ACTIONS)},
        "customer_name": {"type": "string", "maxLength": 64},
        "customer_id": _ID,
        "sku": _ID,
        "po_id": _ID,
        "warehouse_id": _ID,
        "exception_type": {"type": "string", "enum": list(EXCEPTION_TYPES)},
        "status": {"type": "string", "enum": ["open", "held", "released", "shipped", "cancelled"]},
        "line_no": {"type": "integer", "minimum": 1, "maximum": 999},
        "question": {"type": "string", "maxLength": 200},
    },
    "required": ["tool"],
}


class ToolChoice(BaseModel):
    """The model's choice on the JSON path, validated before anything runs."""

    model_config = ConfigDict(extra="ignore")
    tool: Literal[tuple(TOOL_NAMES)]  # type: ignore[valid-type]
    order_id: str | None = None
    action: ActionName | None = None
    customer_name: str | None = None
    customer_id: str | None = None
    sku: str | None = None
    po_id: str | None = None
    warehouse_id: str | None = None
    exception_type: ExceptionType | None = None
    status: Literal["open", "held", "released", "shipped", "cancelled"] | None = None
    line_no: int | None = None
    question: str | None = None

    def arguments(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"tool"}).items() if v not in (None, "")}


class ToolCallError(ValueError):
    """A tool call that may not run; the message tells the model what to fix."""


_NOTE = re.compile(
    # "tell the customer", never "tell me": "tell me about the customer note" asks about the order
    r"\b(draft|write|prepare|compose|send|tell(?!\w*\s+(?:me|us)\b))\w*\b.{0,60}"
    r"\b(note|e-?mail|message|notice|letter|customer)\b",
    re.IGNORECASE,
)


def asks_for_note(message: str) -> bool:
    """Whether the user's own words ask for a note to the customer (a short message of theirs: a
    pasted e-mail that says "write to us" is data about the order, not the user asking)."""
    text = message.strip()
    return len(text) <= 240 and text.count("\n") <= 1 and bool(_NOTE.search(text))


_ACTION_WORDS: list[tuple[str, str]] = [
    (r"\bsplit", "SPLIT_SHIPMENT"),
    (r"partial", "SPLIT_SHIPMENT"),
    (r"realloc|other warehouse|another warehouse|transfer", "REALLOCATE_WAREHOUSE"),
    (r"substitut|replacement|equivalent", "APPROVE_SUBSTITUTION"),
    (r"promise|new date|push (?:the )?date", "UPDATE_PROMISE_DATE"),
    (r"release|credit", "RELEASE_CREDIT_HOLD"),
    (r"price|pricing", "CORRECT_PRICE"),
    (r"rebook|another carrier|other carrier", "REBOOK_CARRIER"),
    (r"expedite (?:the )?(?:freight|shipping)|express", "EXPEDITE_FREIGHT"),
    (r"expedite (?:the )?(?:po|purchase)", "EXPEDITE_PO"),
    (r"address|master data|ship-to", "FIX_MASTER_DATA"),
    (r"compliance|export", "COMPLIANCE_REVIEW"),
    (r"escalat", "ESCALATE"),
    (r"reassign|take (?:the )?(?:stock|units|allocation)", "REASSIGN_ALLOCATION"),
]


def action_from_words(message: str) -> str | None:
    """The action a sentence names in plain words ("why not split it?" → SPLIT_SHIPMENT)."""
    for name in ACTIONS:
        if name.lower() in message.lower():
            return name
    for pattern, name in _ACTION_WORDS:
        if re.search(pattern, message, re.IGNORECASE):
            return name
    return None


def catalog(tools: dict[str, Any]) -> str:
    """The tools as the routing prompt lists them: name, arguments, first line of the description."""
    lines = []
    for name, schema in COPILOT_TOOL_SCHEMAS.items():
        args = ", ".join(schema.model_fields)
        lines.append(f"- {name}({args}): {_first(schema.__doc__)}")
    for name in READ_TOOL_NAMES:
        tool = tools.get(name)
        if tool is None:
            continue
        fields = [f for f in tool.args_schema.model_fields if f not in {"limit", "offset", "k"}]
        lines.append(f"- {name}({', '.join(fields)}): {_first(tool.description)}")
    lines.append("- none(): nothing to look up (a greeting, thanks, or a question outside orders and SOPs).")
    return "\n".join(lines)


def _first(doc: str | None) -> str:
    text = " ".join((doc or "").split())
    return text.split(". ")[0].rstrip(".") + "."


def _mentioned(value: str, conversation: str, numbers: OrderNumbers | None) -> bool:
    if value.lower() in conversation.lower():
        return True
    ids = set(find_order_ids(conversation, numbers))
    return any(i in ids for i in find_order_ids(value, numbers) or [value])


def check_call(
    tool: str,
    args: dict[str, Any],
    *,
    question: str,
    conversation: str,
    focus: dict[str, Any],
    tools: dict[str, Any],
    numbers: OrderNumbers | None = None,
) -> dict[str, Any]:
    """The validated arguments of a tool call, memory filled in; raises :class:`ToolCallError`.

    ``conversation`` is the text of the thread (its messages and this question); ``focus`` what
    "it" and "that" refer to; ``numbers`` the policy's order-number shapes.
    """
    if tool not in TOOL_NAMES:
        raise ToolCallError(f"unknown tool {tool!r}; choose one of {', '.join(TOOL_NAMES)}")
    args = {k: v for k, v in (args or {}).items() if v not in (None, "")}
    if tool == "none":
        return {}
    named = find_order_ids(question, numbers)
    # An order left out: the one order the question names, else the order under discussion ("it").
    default_order = named[0] if len(named) == 1 else focus.get("order_id")
    if tool in COPILOT_TOOL_SCHEMAS:
        schema = COPILOT_TOOL_SCHEMAS[tool]
        args = {k: v for k, v in args.items() if k in schema.model_fields}
        if "order_id" in schema.model_fields and "order_id" not in args and default_order:
            args["order_id"] = default_order
        if tool == "request_approval" and "action" not in args:
            discussed = focus.get("action") or {}
            if named_action := action_from_words(question):
                # "request approval to split SO-…": the action the user named, never the order's
                # recommendation in its place (a split asked for proposed a credit release)
                args["action"] = named_action
            elif discussed.get("order_id") == args.get("order_id") and discussed.get("action"):
                args["action"] = discussed["action"]  # "that": the action under discussion
        if tool == "why_not" and "action" not in args and (action := action_from_words(question)):
            args["action"] = action
        if tool == "what_if" and "action" not in args:
            if args.get("warehouse_id"):
                args["action"] = "REALLOCATE_WAREHOUSE"  # "move SO-… to WH-…"
            elif (named_action := action_from_words(question)) and not asks_for_approval(question):
                args["action"] = named_action
        if tool in ("find_late_orders", "find_customer_orders") and not (
            args.get("customer_id") or args.get("customer_name")
        ):
            if focus.get("customer_id"):  # "this customer": the customer under discussion
                args["customer_id"] = focus["customer_id"]
            elif focus.get("customer"):
                args["customer_name"] = focus["customer"]
            else:
                raise ToolCallError(f"{tool} needs customer_name or customer_id")
        try:
            args = schema.model_validate(args).model_dump(exclude_none=True)
        except ValidationError as exc:
            raise ToolCallError(_errors(tool, exc)) from None
    else:
        read_tool = tools.get(tool)
        if read_tool is None:
            raise ToolCallError(f"{tool} is not available here")
        fields = read_tool.args_schema.model_fields
        if "order_id" in fields and "order_id" not in args and default_order:
            args["order_id"] = default_order
        for key in ("customer_id", "sku", "po_id"):  # "this customer", "that SKU", "that PO"
            if key in fields and fields[key].is_required() and key not in args and focus.get(key):
                args[key] = focus[key]
        if tool == "search_sops" and "question" not in args:
            args["question"] = question
        if tool == "search_sops" and "exception_type" in args:
            args["exception_types"] = [args.pop("exception_type")]
        args = {k: v for k, v in args.items() if k in fields}
        try:
            read_tool.args_schema.model_validate(args)
        except ValidationError as exc:
            raise ToolCallError(_errors(tool, exc)) from None
    for key in ("order_id", "customer_id", "sku", "warehouse_id", "po_id", "exclude_order_id"):
        value = args.get(key)
        known = focus.get("order_id" if key == "exclude_order_id" else key)  # under discussion: known
        if isinstance(value, str) and value != known and not _mentioned(value, conversation, numbers):
            raise ToolCallError(
                f"{key} {value!r} appears nowhere in the conversation; use only ids the user gave"
            )
    if tool == "draft_customer_note" and not asks_for_note(question):
        raise ToolCallError(
            "draft_customer_note only when the user asks for a note to the customer; the user did not ask for one"
        )
    if tool == "request_approval" and not asks_for_approval(question):
        raise ToolCallError(
            "request_approval only when the user asks to request an approval; the user did not ask for one"
        )
    return args


def _errors(tool: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return f"invalid arguments for {tool}: " + "; ".join(parts)
