"""The guard: whether a proposed action may go to approval, with reasons a person can read.

Built on guardrails-ai with four custom validators (no hub download), run over the canonical JSON
of the request:

- ``copilot/action-schema``: the action is in the policy's catalog; its parameters are exactly
  the declared ones (optional ones allowed, nothing else: an injected ``approver_role`` or
  ``auto_approve`` is refused) and each has its type (int, ISO date, money with two decimals, a
  role that decides);
- ``copilot/records``: every record the parameters name belongs to the request's order
  (``tools.scope``), and the parameters are consistent with the records as they are now — the
  same precondition checks the write itself runs at execution (``tools.writes.check``): the target
  warehouse has the stock, the substitute is approved, the carrier is not disrupted, the order is
  still open, no credit release while a compliance hold holds, …;
- ``copilot/policy-matrix``: risk tier and approver role come from the policy's matrix computed on
  the records (never from the request), and a risk or role the request claims must match them;
  an ``ESCALATE`` routes only to a role the policy's ``escalation`` lists for each exception it
  moves;
- ``copilot/requester``: the requester is an active user whose role may request actions, or the
  copilot itself for a customer notice or supplier request it drafted (domain.md §7; ``admin``
  administers users and requests nothing).

Metrics collection (guardrails 0.11 exports OpenTelemetry traces to a remote endpoint by
default) is switched off in code before the first guard is built: the hub tracer singleton is
created disabled, ``guard.configure(allow_metrics_collection=False)``, and the rc setting
``enable_metrics=False`` is applied in memory (``tests/test_guard.py`` proves no socket is opened).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance.audit import canonical_json
from agent.policy import ACTIONS, Policy
from tools import rules, writes
from tools.columns import param_problems
from tools.models import Customer, Item, Order, OrderLine, PriceContract, Substitute, User
from tools.outbox import COPILOT_REQUESTER, MESSAGE_ACTIONS
from tools.scope import scope_problems

__all__ = [
    "GuardResult",
    "line_effective_price",
    "normalise_params",
    "risk_facts",
    "routing_problems",
    "run_guard",
]


@dataclass
class GuardResult:
    ok: bool
    reasons: list[str]
    params: dict[str, Any]  # normalised (the raw ones when the schema failed)
    risk: str | None = None
    approver_role: str | None = None
    facts: dict[str, bool] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)  # validator name -> passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reasons": list(self.reasons),
            "risk": self.risk,
            "approver_role": self.approver_role,
            "checks": dict(self.checks),
        }


# ------------------------------------------------------------------------------------------------
# Parameters: schema and normalisation
# ------------------------------------------------------------------------------------------------


def _norm(kind: str, name: str, value: Any, policy: Policy) -> Any:
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return value
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(f"{name} must be a date like 2026-11-25, got {value!r}") from None
    if kind == "decimal":
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an amount like 12.50, got {value!r}")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{name} must be an amount like 12.50, got {value!r}") from None
        if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
            raise ValueError(f"{name} must be an amount with at most two decimals, got {value!r}")
        return f"{amount:.2f}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be non-empty text, got {value!r}")
    text = value.strip()
    if kind == "role":
        if text not in policy.roles:
            raise ValueError(f"{name}: unknown role {text!r}")
        if policy.roles[text].administers_users:
            raise ValueError(f"{name}: {text} administers users and decides nothing")
        return text
    limit = 4000 if kind == "text" else 500 if name == "reason" else 200
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return text


def normalise_params(policy: Policy, action: str, params: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """(normalised params, problems): exactly the declared parameters, each of its type."""
    if action not in ACTIONS or action not in policy.actions:
        return None, [f"unknown action {action!r}; actions: {', '.join(sorted(policy.actions))}"]
    if not isinstance(params, dict):
        return None, [f"parameters must be an object of names to values, got {type(params).__name__}"]
    spec = policy.actions[action]
    declared = {**spec.params, **spec.optional_params}
    problems = [
        f"{action} has no parameter {k!r} (it takes {', '.join(declared)})"
        for k in params
        if k not in declared
    ]
    problems += [f"{action} needs the parameter {k!r}" for k in spec.params if k not in params]
    out: dict[str, Any] = {}
    for name, kind in declared.items():
        if name not in params or (name in spec.optional_params and params[name] in (None, "")):
            continue
        try:
            out[name] = _norm(kind, name, params[name], policy)
        except ValueError as exc:
            problems.append(str(exc))
    problems += param_problems(out)  # what the ERP columns can hold
    return (None, problems) if problems else (out, [])


# ------------------------------------------------------------------------------------------------
# Risk facts (domain.md §3) computed on the records
# ------------------------------------------------------------------------------------------------


def line_effective_price(session: Session, order: Order, line: OrderLine) -> Decimal | None:
    """The effective price of an order line on its order_date (:func:`tools.rules.effective_price`)."""
    sku = rules.priced_sku(line.sku, line.original_sku)
    if sku is None or order.order_date is None:
        return None
    contracts = session.scalars(
        select(PriceContract).where(PriceContract.customer_id == order.customer_id, PriceContract.sku == sku)
    ).all()
    item = session.get(Item, sku)
    found = rules.effective_price(contracts, item.list_price if item else None, order.order_date)
    return found[0] if found else None


def risk_facts(session: Session, policy: Policy, action: str, params: dict[str, Any]) -> dict[str, bool]:
    """The truth of the policy's risk conditions for this action on the records now."""
    order = session.get(Order, params.get("order_id")) if params.get("order_id") else None
    if order is None:
        return {}
    if action == "APPROVE_SUBSTITUTION":
        line = session.get(OrderLine, (order.order_id, params["line_no"]))
        sub = (
            session.get(Substitute, (line.sku, params["substitute_sku"]))
            if line is not None and line.sku
            else None
        )
        item = session.get(Item, params["substitute_sku"])
        return rules.substitution_risk_facts(
            approved=bool(sub and sub.approved),
            list_price=item.list_price if item else None,
            unit_price=line.unit_price if line else None,
        )
    if action == "RELEASE_CREDIT_HOLD":
        c = session.get(Customer, order.customer_id) if order.customer_id else None
        if c is None:
            return {}
        return rules.CreditPosition.of(c, order.lines).release_risk_facts(
            policy.thresholds.credit_release_medium_max_overage_pct
        )
    if action == "REASSIGN_ALLOCATION":
        donor = session.get(Order, params.get("from_order_id")) if params.get("from_order_id") else None
        tier = donor.customer.tier if donor is not None and donor.customer is not None else None
        return {"donor_customer_platinum_or_gold": tier in ("platinum", "gold")}
    if action == "CORRECT_PRICE":
        line = session.get(OrderLine, (order.order_id, params["line_no"]))
        effective = line_effective_price(session, order, line) if line is not None else None
        return rules.correct_price_risk_facts(Decimal(params["new_unit_price"]), effective)
    return {}


# ------------------------------------------------------------------------------------------------
# guardrails-ai: offline, custom validators
# ------------------------------------------------------------------------------------------------


@functools.cache
def _offline_guardrails() -> None:
    """Switch guardrails' hub metrics off before any Guard or validator exists, and run validators
    sequentially in the calling thread (no event loop of its own; the validators are fast and
    ordered). Called once, before the first guard is built."""
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    os.environ.setdefault("GUARDRAILS_RUN_SYNC", "true")
    from guardrails.settings import settings as gr_settings
    from guardrails.utils.hub_telemetry_utils import HubTelemetry

    HubTelemetry(enabled=False)  # the process-wide hub tracer singleton starts, and stays, disabled
    gr_settings.disable_tracing = True  # no spans for the (local) OpenTelemetry tracer either


def _metrics_off() -> None:
    from guardrails.utils.hub_telemetry_utils import HubTelemetry

    _rc_offline()
    HubTelemetry()._enabled = False


def _rc_offline() -> None:
    """The rc setting: what ``~/.guardrailsrc`` would say with ``enable_metrics=false``. A Guard's
    ``configure()`` reloads the rc file, so this is applied after it and before the validators."""
    from guardrails.classes.rc import RC
    from guardrails.settings import settings as gr_settings

    current = gr_settings.rc
    gr_settings.rc = RC(
        id=current.id, token=current.token, enable_metrics=False, use_remote_inferencing=False
    )


@dataclass
class _Context:
    session: Session
    policy: Policy
    action: str
    raw_params: Any
    requested_by: str | None
    claimed: dict[str, Any]
    partial: bool
    order_id: str | None = None
    exception_type: str | None = None
    params: dict[str, Any] | None = None
    risk: str | None = None
    approver_role: str | None = None
    facts: dict[str, bool] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    schema_problems: list[str] = field(default_factory=list)


def _schema(ctx: _Context) -> list[str]:
    return list(ctx.schema_problems)


def _records(ctx: _Context) -> list[str]:
    if ctx.params is None:
        return []
    outside = scope_problems(ctx.session, ctx.order_id, ctx.action, ctx.params)
    if outside:  # another order's records: their preconditions are beside the point
        return outside
    return writes.check(ctx.session, ctx.action, ctx.params, partial=ctx.partial)


def routing_problems(
    session: Session, policy: Policy, order_id: str | None, exception_type: str | None, role: str
) -> list[str]:
    """Why ESCALATE may not route the order's open exceptions (those it would assign) to ``role``."""
    types = {row.type for row in writes.escalation_targets(session, order_id, exception_type)}
    if order_id and not types:  # an escalation that moves nothing would log one that did not happen
        of = f" of type {exception_type}" if exception_type else ""
        return [f"{order_id} has no open exception{of} to escalate"]
    return [
        f"{kind} may not be routed to {role}: the policy routes it to {', '.join(policy.routes_for(kind)) or 'nobody'}"
        for kind in sorted(types)
        if not policy.may_route(kind, role)
    ]


def _matrix(ctx: _Context) -> list[str]:
    if ctx.params is None:
        return []
    if ctx.action == "ESCALATE":
        ctx.risk, ctx.approver_role = "none", ctx.params["role"]
        routed = routing_problems(
            ctx.session, ctx.policy, ctx.order_id, ctx.exception_type, ctx.params["role"]
        )
        if routed:
            return routed
    else:
        ctx.facts = risk_facts(ctx.session, ctx.policy, ctx.action, ctx.params)
        ctx.risk = ctx.policy.risk_of(ctx.action, ctx.facts)
        ctx.approver_role = ctx.policy.approver_for(ctx.action, ctx.risk)
    problems = []
    for key, actual in (("risk", ctx.risk), ("approver_role", ctx.approver_role)):
        claimed = ctx.claimed.get(key)
        if claimed is not None and claimed != actual:
            problems.append(f"the request claims {key} {claimed!r}, the policy's matrix gives {actual!r}")
    return problems


def _requester(ctx: _Context) -> list[str]:
    if ctx.requested_by is None:
        return []
    if ctx.requested_by == COPILOT_REQUESTER and ctx.action in MESSAGE_ACTIONS:
        return []  # a notice the copilot drafted and filed itself: no person requested it
    user = ctx.session.get(User, ctx.requested_by)
    if user is None or not user.active:
        return [f"{ctx.requested_by!r} is not an active user"]
    spec = ctx.policy.roles.get(user.role)
    if spec is None:
        return [f"{user.username}'s role {user.role!r} is not in the policy"]
    if spec.administers_users:
        return [f"{user.username} ({user.role}) administers users and may not request actions"]
    return []


_CHECKS = (
    ("copilot/action-schema", _schema),
    ("copilot/records", _records),
    ("copilot/policy-matrix", _matrix),
    ("copilot/requester", _requester),
)
# The context of the call in progress, handed to the validators beside guardrails (which runs them
# in a context of its own and keeps call history: a Session must not go there). One call at a
# time: a Guard keeps per-call state (history, options) too.
_LOCK = threading.Lock()
_CURRENT: list[_Context] = []


@functools.cache
def _guard():
    """One guardrails Guard with the four validators (built once; validators are stateless)."""
    _offline_guardrails()
    from guardrails import Guard, OnFailAction
    from guardrails.validator_base import FailResult, PassResult, Validator, register_validator

    guard = Guard(name="copilot-action-guard")
    guard.configure(allow_metrics_collection=False)
    _rc_offline()
    validators = []
    for name, fn in _CHECKS:

        def validate(self, value: Any, metadata: dict[str, Any], _fn=fn, _name=name):
            ctx = _CURRENT[-1]
            problems = _fn(ctx)
            ctx.reasons.extend(problems)
            ctx.checks[_name] = not problems
            return FailResult(error_message="; ".join(problems)) if problems else PassResult()

        cls = type(name.split("/")[1].title().replace("-", ""), (Validator,), {"validate": validate})
        validators.append(register_validator(name=name, data_type="string")(cls))
    return guard.use(*(v(on_fail=OnFailAction.NOOP) for v in validators))


def run_guard(
    session: Session,
    policy: Policy,
    *,
    action: str,
    params: Any,
    requested_by: str | None,
    order_id: str | None,
    exception_type: str | None = None,
    claimed: dict[str, Any] | None = None,
    partial: bool = False,
) -> GuardResult:
    """Run the guard on a proposed action against the records now (read-only).

    ``order_id``: the order the request is filed for; every record the parameters name must be
    its own (``tools.scope``). ``exception_type``: the exception the request resolves (ESCALATE
    routes it, or every open one of the order when None). ``claimed``: risk / approver_role the
    proposer asserted (checked against the matrix, never used). ``partial``: approver-supplied
    values may still be missing (at request time).
    """
    ctx = _Context(
        session, policy, action, params, requested_by, dict(claimed or {}), partial, order_id, exception_type
    )
    # Normalised once up front: the validators are independent of each other's order.
    ctx.params, ctx.schema_problems = normalise_params(policy, action, params)
    body = canonical_json(
        {
            "action": action,
            "params": params if isinstance(params, dict) else str(params),
            "requested_by": requested_by,
        }
    )
    with _LOCK:
        guard = _guard()
        _metrics_off()  # any Guard built elsewhere since (configure() re-reads the rc) must not re-enable it
        _CURRENT.append(ctx)
        try:
            outcome = guard.validate(body, metadata={})
        finally:
            _CURRENT.pop()
            guard.history.clear()
    ok = bool(outcome.validation_passed) and not ctx.reasons and len(ctx.checks) == len(_CHECKS)
    if not ok and not ctx.reasons:  # guardrails itself failed: never pass silently
        ctx.reasons.append(f"the guard could not run every check: {outcome.error or 'no verdict'}")
    return GuardResult(
        ok=ok,
        reasons=list(ctx.reasons),
        params=ctx.params if ctx.params is not None else params,
        risk=ctx.risk,
        approver_role=ctx.approver_role,
        facts=ctx.facts,
        checks=dict(ctx.checks),
    )
