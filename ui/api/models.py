"""Request and response models of the HTTP API (they are its OpenAPI schema).

Names of exception types, actions and roles are those of ``domain.md``; records the API passes
through from the agent (triage results, action requests, audit events) keep their fields and may
carry more (``extra="allow"``), so a field the agent adds later is not silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Size limits: a request body, a pasted text, a batch of order ids, a chat message.
MAX_BODY_BYTES = 1_000_000
MAX_TEXT_CHARS = 100_000
MAX_TEXT_LINES = 2_000
MAX_ORDER_IDS = 200
MAX_MESSAGE_CHARS = 4_000
NO_NUL = r"^[^\x00]*$"  # text that is stored (a chat turn, a reason): no PostgreSQL column holds NUL

# An order id in a body as people type it (so-100042, SO 100042, SO#100042; blanks around it dropped):
# read as the orders table spells it by agent.triage.order_numbers, as `POST /triage` reads it.
OrderId = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.#/ \-]*$", examples=["SO-100042"]),
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    """Every error: a machine-readable code and a message a person can act on."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["order SO-9 not found"])
    details: list[str] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


class Me(BaseModel):
    username: str
    role: str
    display_name: str | None = None
    may_decide_for: list[str] = Field(
        description="Roles whose approvals this user may decide (own role and delegates)."
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Regions the user is limited to (with warehouses; none: every site).",
    )
    warehouses: list[str] = Field(default_factory=list, description="Warehouses the user is limited to.")


# --- triage ---------------------------------------------------------------------------------------


class TriageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_ids: list[Annotated[str, Field(pattern=NO_NUL)]] = Field(
        min_length=1, max_length=MAX_ORDER_IDS, examples=[["SO-100042"]]
    )
    explain: bool = Field(
        default=False, description="Also write the explanation (the language model; falls back to facts)."
    )


class TextTriageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        description=f"A pasted e-mail or list; at most {MAX_TEXT_LINES:,} lines "
        f"and {MAX_TEXT_CHARS:,} characters.",
    )
    explain: bool = False


class ExceptionOut(_Open):
    type: str
    instance: str | None = None
    line_no: int | None = None
    shipment_id: str | None = None
    sku: str | None = None
    warehouse_id: str | None = None
    evidence: list[Any] = Field(default_factory=list)
    facts: dict[str, Any] = Field(
        default_factory=dict, description="The evidence's numbers and ids as JSON (money as decimal strings)."
    )


class ActionOut(_Open):
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    risk: str | None = None
    approver_role: str | None = None
    reason: str | None = None


class Explanation(_Open):
    text: str = ""
    citations: list[Any] = Field(default_factory=list)
    fallback: bool = False
    reason: str | None = None
    warning: str | None = Field(
        default=None, description="Set when no SOP passage was retrieved: the text cites no procedure."
    )


class TriageResult(_Open):
    """One order: its exceptions with evidence, the recommendation and alternatives — or ``error``."""

    order_id: str
    status: str | None = None
    exceptions: list[ExceptionOut] = Field(default_factory=list)
    recommendation: ActionOut | None = None
    alternatives: list[ActionOut] = Field(default_factory=list)
    plan: list[ActionOut] = Field(default_factory=list)
    explanation: Explanation | None = None
    error: str | None = None


class TriageResponse(BaseModel):
    results: list[TriageResult]
    not_found: list[str] = Field(default_factory=list)


class TextTriageResponse(BaseModel):
    order_ids: list[str]
    not_found: list[str]
    near_misses: dict[str, list[str]] = Field(
        default_factory=dict,
        description="For a number in `not_found`: existing order ids one edit away.",
        examples=[{"SO-10042": ["SO-100042"]}],
    )
    notes: list[str] = Field(
        default_factory=list,
        description="One line per number read differently or not found, for people.",
        examples=[["SO-10042 not found; did you mean SO-100042?"]],
    )
    answer: str | None = Field(default=None, description="A question back when no existing order is named.")
    customer_request: Any = None
    results: list[TriageResult]


class OrderDetail(BaseModel):
    order: dict[str, Any]
    triage: TriageResult


# --- exceptions -----------------------------------------------------------------------------------


class ExceptionRow(BaseModel):
    id: int
    order_id: str
    type: str
    instance_key: str
    line_no: int | None
    shipment_id: str | None
    sku: str | None
    customer_id: str | None
    customer_tier: str | None
    warehouse_id: str | None
    status: str
    assigned_role: str | None
    evidence: list[Any]
    first_seen_at: str
    detected_at: str
    resolved_at: str | None
    age_days: float


class ExceptionPage(BaseModel):
    items: list[ExceptionRow]
    total: int
    limit: int
    offset: int


# --- action requests ------------------------------------------------------------------------------


class Guard(_Open):
    ok: bool
    reasons: list[str] = Field(default_factory=list)


class ActionRequestOut(_Open):
    id: int
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    order_id: str | None = None
    exception_type: str | None = None
    evidence: list[Any] = Field(default_factory=list)
    citations: list[Any] = Field(default_factory=list)
    risk: str | None = None
    approver_role: str | None = None
    requested_by: str
    status: str
    guard: Guard | None = None
    is_recommendation: bool = False
    created_at: Any = None
    updated_at: Any = None
    execution: dict[str, Any] | None = None
    repeated: bool = Field(
        default=False,
        description="true when this request was already waiting and the same ask filed nothing new",
    )


class MessageOut(_Open):
    """A customer notice or supplier request: why it is due, its facts, draft, request and delivery."""

    id: int
    kind: str
    order_id: str | None = None
    po_id: str | None = None
    status: str
    reason: str
    facts: dict[str, Any] = Field(default_factory=dict)
    draft: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None


class MessagePage(BaseModel):
    items: list[MessageOut]
    limit: int
    offset: int


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=4000)
    reason: str | None = Field(default=None, max_length=2_000)


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: OrderId


class ActionRequestPage(BaseModel):
    items: list[ActionRequestOut]
    limit: int
    offset: int


class NewActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    action: str | None = Field(default=None, max_length=32, description="Empty: the order's recommendation.")
    params: dict[str, Any] | None = None
    citations: list[Annotated[str, Field(max_length=80)]] | None = Field(
        default=None,
        max_length=20,
        description="SOP section ids of the index, e.g. 'SOP-CREDIT-001 §3.2' (422 for any other text).",
    )
    thread_id: str | None = Field(default=None, max_length=64)


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    action: str | None = Field(default=None, max_length=32, description="Empty: the order's recommendation.")
    params: dict[str, Any] | None = None


class WhatIf(_Open):
    """What the action would do to the other open orders (domain.md §6); nothing was written."""

    order_id: str
    action: str
    params: dict[str, Any]
    feasible: bool
    reason: str | None = None
    rolled_back: bool = True
    touched: list[list[str]] = Field(default_factory=list, description="(sku, warehouse) pairs it touches.")
    checked_orders: int = 0
    this_order: dict[str, Any] | None = None
    other_orders: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per affected order: tier, order value, exceptions to appear / clear.",
    )
    other_orders_affected: int = 0
    elapsed_ms: float | None = None


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2_000)


class RejectDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2_000, description="Why it is rejected (required).")


class EditDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(description="The corrected parameters; the guard checks them again.")
    reason: str = Field(min_length=1, max_length=2_000)


# --- audit ----------------------------------------------------------------------------------------


class AuditEventOut(_Open):
    seq: int | None = None
    event_type: str
    actor: str | None = None
    role: str | None = None
    order_id: str | None = None
    request_id: int | None = None
    payload: Any = None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    limit: int
    offset: int


class ChainCheck(_Open):
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None


# --- chat -----------------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=NO_NUL)
    stream: bool = Field(
        default=True, description="Server-sent events (text/event-stream); false: one JSON answer."
    )

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        # a blank turn has no question: 422 before the stream starts (it broke the stream, 200 sent)
        if not value.strip():
            raise ValueError("the message is blank")
        return value


class ChatAnswer(_Open):
    answer: str
    tool_calls: list[Any] = Field(default_factory=list)
    citations: list[Any] = Field(default_factory=list)
    request: dict[str, Any] | None = Field(
        default=None, description="The approval request filed this turn (a confirmed proposal)."
    )
    proposal: dict[str, Any] | None = Field(
        default=None,
        description='An approval request proposed this turn: the next message "yes" or "confirm" on '
        "the same thread files exactly it; anything else drops it.",
    )
    fallback: bool = False


# --- KPIs -----------------------------------------------------------------------------------------


class KpiReport(BaseModel):
    kpis: dict[str, Any]


class AnomalySuggestion(_Open):
    text: str
    owner_role: str
    replaces_action: str | None = None


class Anomaly(_Open):
    """One recurring (type × sku/customer/warehouse/supplier) group, with what it costs."""

    rank: int
    type: str
    dimension: Literal["sku", "customer", "warehouse", "supplier"]
    key: str
    orders: int
    open_orders: int
    touches: int
    expedite_spend: float
    delayed_value: float
    cost_usd: float
    suggestion: AnomalySuggestion


class Anomalies(BaseModel):
    """Most costly first."""

    items: list[Anomaly]


class Drift(_Open):
    """PSI of each risk-model input between the training period and the open orders now."""

    status: Literal["ok", "no_model", "too_few_orders"]
    reason: str | None = Field(
        default=None, description="Why drift is not measured (e.g. no model: `copilot risk train`)."
    )
    features: dict[str, dict[str, Any]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class OverrideRates(_Open):
    """Per recommended action type: decided, overridden, override_rate and whether it passes the threshold."""

    by_action: dict[str, dict[str, Any]]
    warnings: list[str] = Field(default_factory=list)


class Monitoring(BaseModel):
    """Model monitoring; ``warnings`` lists every threshold passed (empty: all quiet)."""

    drift: Drift
    override_rate: OverrideRates
    warnings: list[str]
    thresholds: dict[str, float]


class RiskScores(BaseModel):
    items: list[dict[str, Any]]
