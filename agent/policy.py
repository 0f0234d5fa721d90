"""The policy file: thresholds, roles, auto-approval, the action catalog and the decision order.

The shipped default is ``agent/policies/default.yaml``; a deployment may point at its own file.
:func:`load_policy` validates the whole file against :class:`Policy` (pydantic, unknown keys
refused) and raises :class:`PolicyError` naming the file, the YAML line and the offending key of
every problem, e.g. ``default.yaml:12: actions.REBOOK_CARIER: ... (got 'REBOOK_CARIER')``.

Exception types, action names and risk conditions are the contract of ``domain.md``: they are
fixed here, not in the file. Roles are declared in the file; the ten of the contract must be.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast, get_args

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tools.domain import EXCEPTION_TYPES, ExceptionType

__all__ = [
    "ACTIONS",
    "CONDITIONS",
    "DEFAULT_ORDER_NUMBERS",
    "DEFAULT_POLICY_PATH",
    "EXCEPTION_TYPES",
    "MAX_TOKEN_CHARS",
    "ActionName",
    "ActionSpec",
    "Autopilot",
    "AutopilotRule",
    "Candidate",
    "Condition",
    "ExceptionType",
    "Governance",
    "OrderNumbers",
    "Policy",
    "PolicyError",
    "QueueRule",
    "Queues",
    "Retention",
    "Risk",
    "Shape",
    "Thresholds",
    "compile_shape",
    "load_policy",
    "parse_policy",
]

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"

ActionName = Literal[
    "REALLOCATE_WAREHOUSE",
    "APPROVE_SUBSTITUTION",
    "SPLIT_SHIPMENT",
    "UPDATE_PROMISE_DATE",
    "RELEASE_CREDIT_HOLD",
    "CORRECT_PRICE",
    "REBOOK_CARRIER",
    "EXPEDITE_FREIGHT",
    "EXPEDITE_PO",
    "FIX_MASTER_DATA",
    "COMPLIANCE_REVIEW",
    "REASSIGN_ALLOCATION",
    "ESCALATE",
    "NOTIFY_CUSTOMER",
    "REQUEST_SUPPLIER",
]
Risk = Literal["none", "low", "medium", "high"]
ApprovalRisk = Literal["low", "medium", "high"]
ParamType = Literal["str", "text", "int", "date", "decimal", "role"]  # text: a message body
# The facts a conditional risk may test; the policy engine computes them for a proposed action.
Condition = Literal[
    "substitute_approved",
    "substitute_list_price_within_unit_price",
    "overage_within_medium_limit",
    "no_overdue_balance",
    "restores_effective_price",
    "donor_customer_platinum_or_gold",
]

ACTIONS: tuple[str, ...] = get_args(ActionName)
CONDITIONS: dict[str, str] = {
    "substitute_approved": "the substitutes row (sku, substitute_sku) is approved",
    "substitute_list_price_within_unit_price": "the substitute's list_price <= the line's unit_price",
    "overage_within_medium_limit": "overage <= credit_release_medium_max_overage_pct % of credit_limit",
    "no_overdue_balance": "the customer's overdue_balance is 0",
    "restores_effective_price": "new_unit_price equals the line's effective price",
    "donor_customer_platinum_or_gold": "the donor order's customer (REASSIGN_ALLOCATION) is platinum or gold",
}
CONTRACT_ROLES = (
    "planner",
    "csr",
    "credit_analyst",
    "credit_manager",
    "pricing_analyst",
    "logistics_coordinator",
    "ops_manager",
    "procurement_buyer",
    "compliance_officer",
    "admin",
)

RoleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` holds (line, key, message) per problem.

    Line 0 means the file as a whole (unreadable); an empty key means the document itself.
    """

    def __init__(self, source: str, problems: list[tuple[int, str, str]]) -> None:
        self.source, self.problems = source, problems
        super().__init__(
            "\n".join(
                f"{source}{f':{line}' if line else ''}: {f'{key}: ' if key else ''}{msg}"
                for line, key, msg in problems
            )
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose values derived from the content (``functools.cached_property``: the policy's
        hash, compiled patterns) are computed again: pydantic copies the instance's ``__dict__``,
        where they are kept, so a copy with other thresholds kept the original's hash."""
        copied = super().model_copy(update=update, deep=deep)
        for cls in type(self).__mro__:
            for name, attr in vars(cls).items():
                if isinstance(attr, functools.cached_property):
                    copied.__dict__.pop(name, None)
        return copied


class Recurrence(_Strict):
    window_days: int = Field(gt=0)
    min_orders: int = Field(ge=2)


class Substitution(_Strict):
    """When a customer note asks for a substitute (detection of SUBSTITUTION_REQUEST).

    A keyword asks unless a ``negations`` phrase is within ``negation_window_words`` words before it,
    or a ``negations_after`` word within ``negation_after_window_words`` words after it ("substitutes
    are not acceptable") with no ``conditionals`` word between ("substitute if not in stock" asks).
    """

    keywords: list[str] = Field(min_length=1)
    negations: list[str]
    negation_window_words: int = Field(ge=0)
    negations_after: list[str] = Field(default_factory=list)
    negation_after_window_words: int = Field(default=0, ge=0)
    conditionals: list[str] = Field(default_factory=list)


class Thresholds(_Strict):
    """Percentages are decimals, so boundaries compare exactly (2 % of 100.00 is 2.00)."""

    price_tolerance_pct: Decimal = Field(ge=0)
    recurrence: Recurrence
    credit_release_medium_max_overage_pct: Decimal = Field(ge=0)
    substitution: Substitution


class RoleSpec(_Strict):
    description: str
    administers_users: bool = False


class Governance(_Strict):
    """Which doors may decide: ``cli_decisions: false`` makes the API (signed-in users) the only one."""

    cli_decisions: bool = True


class Retention(_Strict):
    """How long chat threads (since their last turn) and closed exceptions (since they were
    resolved) are kept; ``copilot retention purge`` removes older ones. The audit log is never purged."""

    chat_threads_days: int = Field(default=90, gt=0, le=36_500)
    closed_exceptions_days: int = Field(default=365, gt=0, le=36_500)


class RiskRule(_Strict):
    if_all: list[Condition] = Field(min_length=1)
    risk: Risk


class ConditionalRisk(_Strict):
    """The first rule whose conditions all hold gives the risk; else ``otherwise``."""

    rules: list[RiskRule] = Field(min_length=1)
    otherwise: Risk


# Tags of the scalar-or-mapping unions; pydantic puts them in error locations, _walk skips them.
_SCALAR, _MAPPING = "<scalar>", "<mapping>"


def _shape(value: Any) -> str:
    return _MAPPING if isinstance(value, dict | BaseModel) else _SCALAR


class ActionSpec(_Strict):
    params: dict[str, ParamType]
    optional_params: dict[str, ParamType] = {}
    risk: Annotated[
        Annotated[Risk, Tag(_SCALAR)] | Annotated[ConditionalRisk, Tag(_MAPPING)], Discriminator(_shape)
    ]
    approver: (
        Annotated[
            Annotated[RoleName, Tag(_SCALAR)] | Annotated[dict[ApprovalRisk, RoleName], Tag(_MAPPING)],
            Discriminator(_shape),
        ]
        | None
    ) = None
    never_auto_approve: bool = False

    def risks(self) -> set[str]:
        """Every risk this action can take."""
        if isinstance(self.risk, ConditionalRisk):
            return {self.risk.otherwise, *(rule.risk for rule in self.risk.rules)}
        return {self.risk}


class Candidate(_Strict):
    """One candidate of a decision order; an ``ESCALATE`` names the role it is routed to."""

    action: ActionName
    role: RoleName | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"action": value} if isinstance(value, str) else value


class DecisionOrder(_Strict):
    candidates: dict[ExceptionType, list[Candidate]]
    priority: list[ExceptionType]

    def candidates_for(self, kind: str) -> list[Candidate]:
        """The candidates of exception type ``kind`` (a detected type, a plain string)."""
        return self.candidates[cast(ExceptionType, kind)]

    def rank(self) -> dict[str, int]:
        """Each exception type's place in ``priority`` (0 first)."""
        return {kind: i for i, kind in enumerate(self.priority)}


# --- order numbers in text --------------------------------------------------------------------------
# ERPs number sales orders in their own ways — SO-100042, SO-K7781, 4500098761, ORD-2025-1193,
# DE/2026/00017 — and a deployment names its own in the policy file (``order_numbers:``); the reader
# is agent.triage.order_numbers. A shape is a regular expression matched against one whole token of a
# text (upper-cased, at most MAX_TOKEN_CHARS characters). Shapes run on RE2, an automaton engine
# without backtracking: its matching time is linear in the input for every pattern, so no shape a
# deployment writes can freeze the server. The loader refuses what RE2 cannot run (backreferences,
# lookaround — the features that need backtracking), a pattern longer than MAX_PATTERN_CHARS or
# whose compiled program is over MAX_PROGRAM_SIZE, and one that matches the empty token.
# ``report_unknown: false`` marks a shape that other documents share (a bare ten-digit number may be
# a purchase order or a phone number): such a token is triaged when an order has it and otherwise
# passed over in silence, not reported as an unknown order.

MAX_TOKEN_CHARS = 40  # no ERP numbers an order with more; longer tokens are never order numbers
MAX_PATTERN_CHARS = 200
MAX_PROGRAM_SIZE = 2000  # RE2 program instructions; the shipped shapes need under 60 each

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported by the policy loader, not on stderr
_OPTIONS.max_mem = 1 << 20


def compile_shape(pattern: str) -> Any:
    """The RE2 program of ``pattern``; ValueError says why a pattern is refused."""
    if not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"a shape has 1 to {MAX_PATTERN_CHARS} characters (got {len(pattern)})")
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"not a linear-time (RE2) pattern: {detail} (RE2 refuses backreferences and lookaround)"
        ) from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(f"pattern too complex: {compiled.programsize} RE2 instructions > {MAX_PROGRAM_SIZE}")
    if compiled.fullmatch("") is not None:
        raise ValueError("pattern matches an empty token")
    return compiled


class Shape(BaseModel):
    """One shape of order number: an RE2 pattern for a whole upper-case token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str
    report_unknown: bool = True

    @field_validator("pattern")
    @classmethod
    def _linear(cls, value: str) -> str:
        compile_shape(value)
        return value


class OrderNumbers(BaseModel):
    """Where order numbers are in a text: tokens of a ``shapes`` shape, and numbers after a keyword.

    ``keywords`` ("order", "orders"): a number of 4 to 12 digits after one of them ("order 100042",
    "order no. 100042", "orders 100042, 100043 and 100044") stands for ``number_prefix`` + the
    digits (``SO-100042``), or the digits themselves where an order is numbered so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    shapes: tuple[Shape, ...] = Field(
        default=(
            Shape(pattern=r"SO-[0-9]{1,12}"),
            Shape(pattern=r"SO-[A-Z]{1,3}[0-9]{1,10}"),
            Shape(pattern=r"ORD-(?:19|20)[0-9]{2}-[0-9]{1,8}"),
            Shape(pattern=r"[A-Z]{2}/(?:19|20)[0-9]{2}/[0-9]{1,8}"),
            Shape(pattern=r"[0-9]{10}", report_unknown=False),
        ),
        min_length=1,
        max_length=32,
    )
    keywords: tuple[str, ...] = Field(default=("order", "orders"), max_length=32)
    number_prefix: str = Field(default="SO-", max_length=16)

    @field_validator("keywords")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for word in value:
            if not word.isalpha() or len(word) > 32:
                raise ValueError(f"a keyword is one word of letters (got {word!r})")
        return tuple(w.casefold() for w in value)

    @functools.cached_property
    def programs(self) -> tuple[tuple[Any, bool], ...]:
        """Each shape's RE2 program with its ``report_unknown``."""
        return tuple((compile_shape(s.pattern), s.report_unknown) for s in self.shapes)

    @functools.cached_property
    def any_shape(self) -> Any:
        """One RE2 program matching a token of any shape (the fast first test of every token)."""
        return compile_shape("|".join(f"(?:{s.pattern})" for s in self.shapes))


DEFAULT_ORDER_NUMBERS = OrderNumbers()


class QueueRule(_Strict):
    """An override of an exception type's owner role; the first rule that matches decides."""

    type: ExceptionType
    owner: RoleName
    tier: Literal["platinum", "gold", "standard"] | None = None
    min_order_value: Decimal | None = None


class QueuePriority(_Strict):
    """Weights of the priority score (0-100): urgency (promise, SLA) and business impact."""

    promise: float = Field(default=0.35, ge=0)
    sla: float = Field(default=0.25, ge=0)
    value: float = Field(default=0.2, ge=0)
    tier: float = Field(default=0.1, ge=0)
    waiting: float = Field(default=0.1, ge=0)
    promise_horizon_days: int = Field(default=14, gt=0)  # promise urgency 0 this far out, 1 when due
    value_full: Decimal = Field(default=Decimal("100000"), gt=0)  # an order worth this scores 1
    waiting_full: int = Field(default=10, gt=0)  # this many other orders waiting score 1
    tiers: dict[Literal["platinum", "gold", "standard"], float] = {
        "platinum": 1.0,
        "gold": 0.6,
        "standard": 0.2,
    }


AUTOPILOT_CONDITIONS = {  # an autopilot condition -> the one action it is defined for
    "same_region": "REALLOCATE_WAREHOUSE",
    "approved_substitute_no_higher_price": "APPROVE_SUBSTITUTION",
    "amount_within": "CORRECT_PRICE",
}


class AutopilotRule(_Strict):
    """A low-risk, repeatable decision policy may take: one action at one risk, when all conditions hold.

    ``mode: shadow`` records what it would have approved while people still decide; ``live`` approves.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$")
    action: ActionName
    risk: Literal["low", "medium"]
    when: list[Literal["same_region", "approved_substitute_no_higher_price", "amount_within"]] = []
    max_amount: Decimal | None = Field(default=None, ge=0)
    mode: Literal["shadow", "live"] = "shadow"


class Autopilot(_Strict):
    """Policy auto-approval by rule. ``enabled: false`` is the kill switch: no automation at all."""

    enabled: bool = True
    rules: list[AutopilotRule] = []


class Queues(_Strict):
    """Role work queues: who owns each open exception, by when (SLA), and where a breach escalates."""

    owners: dict[ExceptionType, RoleName] = {}
    default_owner: RoleName = "ops_manager"
    rules: list[QueueRule] = []
    sla_hours: dict[ExceptionType, float] = {}
    default_sla_hours: float = Field(default=24, gt=0)
    escalate_to: dict[RoleName, RoleName] = {}
    default_escalation: RoleName = "ops_manager"
    scoring: QueuePriority = QueuePriority()

    def owner(self, kind: str, tier: str | None, order_value: Decimal) -> str:
        for rule in self.rules:
            if rule.type != kind or (rule.tier is not None and rule.tier != tier):
                continue
            if rule.min_order_value is not None and order_value < rule.min_order_value:
                continue
            return rule.owner
        return self.owners.get(kind, self.default_owner)  # type: ignore[call-overload]

    def sla(self, kind: str) -> float:
        return self.sla_hours.get(kind, self.default_sla_hours)  # type: ignore[call-overload]

    def escalation(self, role: str) -> str:
        return self.escalate_to.get(role, self.default_escalation)


class Policy(_Strict):
    """A validated policy file. Build it with :func:`load_policy` or :func:`parse_policy`."""

    version: Literal[1]
    thresholds: Thresholds
    roles: dict[RoleName, RoleSpec]
    hierarchy: dict[RoleName, list[RoleName]] = {}
    auto_approve: dict[ApprovalRisk, bool]
    governance: Governance = Governance()
    actions: dict[ActionName, ActionSpec]
    # ESCALATE: exception type -> the roles it may be routed to
    escalation: dict[ExceptionType, list[RoleName]]
    decision_order: DecisionOrder
    order_numbers: OrderNumbers = DEFAULT_ORDER_NUMBERS
    """How order numbers look in pasted text and chat (shapes in RE2 syntax, keywords)."""
    queues: Queues = Queues()
    autopilot: Autopilot = Autopilot()
    retention: Retention = Retention()

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = list(self._problems())
        if problems:
            summary = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems)
            raise PydanticCustomError(
                "policy_inconsistent", "{summary}", {"summary": summary, "problems": problems}
            )
        return self

    def _problems(self) -> Iterator[tuple[tuple, str]]:
        """Yield (location, message) for each cross-reference the field types cannot check."""
        roles = set(self.roles)
        admins = {name for name, spec in self.roles.items() if spec.administers_users}

        def role(loc: tuple, name: str | None) -> Iterator[tuple[tuple, str]]:
            if name is not None and name not in roles:
                yield loc, f"unknown role {name!r}; roles: {', '.join(sorted(roles))}"
            elif name in admins:
                yield loc, f"role {name!r} administers users and may not decide actions"

        for name in CONTRACT_ROLES:
            if name not in roles:
                yield ("roles",), f"role {name!r} of the contract is missing"
        for boss, subordinates in self.hierarchy.items():
            yield from role(("hierarchy", boss), boss)
            for i, sub in enumerate(subordinates):
                yield from role(("hierarchy", boss, i), sub)
        if self.auto_approve.get("high"):
            yield ("auto_approve", "high"), "auto-approval is never allowed for high risk"
        for name in ACTIONS:
            if name not in self.actions:
                yield ("actions",), f"action {name!r} of the catalog is missing"
        for name, spec in self.actions.items():
            loc = ("actions", name)
            if (spec.approver is None) != (spec.risks() == {"none"}):
                yield loc, "an action has an approver exactly when its risk is not none"
            if isinstance(spec.approver, dict):
                for tier, who in spec.approver.items():
                    yield from role((*loc, "approver", tier), who)
                for missing in sorted(spec.risks() - set(spec.approver)):
                    yield (*loc, "approver"), f"no approver for risk {missing!r}"
            else:
                yield from role((*loc, "approver"), spec.approver)
        review = self.actions.get("COMPLIANCE_REVIEW")
        if review is not None and not review.never_auto_approve:
            yield ("actions", "COMPLIANCE_REVIEW"), "COMPLIANCE_REVIEW must set never_auto_approve: true"
        for routed_kind, routed in self.escalation.items():
            for i, who in enumerate(routed):
                yield from role(("escalation", routed_kind, i), who)
        names: set[str] = set()
        for n, auto in enumerate(self.autopilot.rules):
            at, named = ("autopilot", "rules", n), f"rule {auto.name!r}"
            if auto.name in names:
                yield at, f"{named}: a second rule of that name (the report counts per name)"
            names.add(auto.name)
            if auto.action == "COMPLIANCE_REVIEW" or self.spec(auto.action).never_auto_approve:
                yield at, f"{named}: {auto.action} is never auto-approved"
            elif auto.risk not in self.spec(auto.action).risks():
                can = ", ".join(sorted(self.spec(auto.action).risks()))
                yield at, f"{named}: {auto.action} is never {auto.risk} risk (its risks: {can})"
            for cond in auto.when:
                if AUTOPILOT_CONDITIONS[cond] != auto.action:
                    yield at, f"{named}: condition {cond} applies to {AUTOPILOT_CONDITIONS[cond]} only"
            if "amount_within" in auto.when and auto.max_amount is None:
                yield at, f"{named}: amount_within needs max_amount"
        q = self.queues
        for owned_kind, owner in q.owners.items():
            yield from role(("queues", "owners", owned_kind), owner)
        for n, rule in enumerate(q.rules):
            yield from role(("queues", "rules", n, "owner"), rule.owner)
        for source_role, target_role in q.escalate_to.items():
            yield from role(("queues", "escalate_to", source_role), source_role)
            yield from role(("queues", "escalate_to", source_role), target_role)
        yield from role(("queues", "default_owner"), q.default_owner)
        yield from role(("queues", "default_escalation"), q.default_escalation)
        order = self.decision_order
        for kind in EXCEPTION_TYPES:
            if kind not in self.escalation:
                yield ("escalation",), f"no roles {kind} may be routed to"
            if kind not in order.candidates:
                yield ("decision_order", "candidates"), f"no candidates for {kind}"
            if sum(p == kind for p in order.priority) != 1:
                yield ("decision_order", "priority"), f"{kind} must appear exactly once"
        for kind, candidates in order.candidates.items():
            for i, cand in enumerate(candidates):
                where = ("decision_order", "candidates", kind, i)
                if (cand.action == "ESCALATE") != (cand.role is not None):
                    yield where, "ESCALATE, and only ESCALATE, names the role it is routed to"
                yield from role(where, cand.role)
                if cand.role is not None and cand.role not in self.escalation.get(kind, []):
                    yield where, f"{kind} may not be routed to {cand.role} (escalation.{kind})"

    @functools.cached_property
    def policy_hash(self) -> str:
        """sha256 of the canonical JSON of the validated content: comments and layout don't count."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"), default=_canonical)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def delegates(self, role: str) -> frozenset[str]:
        """``role`` and every role whose decisions it may take through the hierarchy."""
        seen, todo = {role}, [role]
        while todo:
            for sub in self.hierarchy.get(todo.pop(), []):
                if sub not in seen:
                    seen.add(sub)
                    todo.append(sub)
        return frozenset(seen)

    def spec(self, action: str) -> ActionSpec:
        """The catalog entry of ``action``. Action names and risks reach the policy as plain strings
        (from stored requests, the guard, the model); a name the catalog lacks raises KeyError."""
        return self.actions[cast(ActionName, action)]

    def risk_of(self, action: str, facts: Mapping[str, bool] | None = None) -> Risk:
        """The risk of ``action`` given the truth of its conditions (absent means false)."""
        risk = self.spec(action).risk
        if isinstance(risk, str):
            return risk
        facts = facts or {}
        for rule in risk.rules:
            if all(facts.get(cond, False) for cond in rule.if_all):
                return rule.risk
        return risk.otherwise

    def approver_for(self, action: str, risk: str | None) -> str | None:
        """The role that approves ``action`` at ``risk``; None for an action that needs none."""
        approver = self.spec(action).approver
        if isinstance(approver, dict):
            return approver.get(cast(ApprovalRisk, risk)) if risk != "none" else None
        return approver

    def may_decide(self, role: str, action: str, risk: str | None) -> bool:
        """Whether a person holding ``role`` may approve or reject ``action`` at ``risk``."""
        approver = self.approver_for(action, risk)
        return approver is not None and approver in self.delegates(role)

    def routes_for(self, exception_type: str) -> list[str]:
        """The roles ESCALATE may route an exception of ``exception_type`` to."""
        return list(self.escalation.get(cast(ExceptionType, exception_type), []))

    def may_route(self, exception_type: str, role: str) -> bool:
        """Whether ESCALATE may route an exception of ``exception_type`` to ``role``."""
        return role in self.routes_for(exception_type)

    def auto_approves(self, action: str, risk: str | None) -> bool:
        """Whether policy approves ``action`` at ``risk`` without a person."""
        if risk == "none" or self.spec(action).never_auto_approve or not self.autopilot.enabled:
            return False
        return self.auto_approve.get(cast(ApprovalRisk, risk), False)


def _canonical(value: Any) -> str:
    if isinstance(value, Decimal):  # 2, 2.0 and 2.00 are the same threshold
        return format(value.normalize(), "f")
    raise TypeError(f"not canonicalisable: {value!r}")


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file; ``None`` reads the shipped default."""
    path = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            str(path), [(0, "", f"cannot read the policy file: {exc.strerror or exc}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [(0, "", "not UTF-8 text")]) from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML ``text``; ``source`` names it in error messages."""
    try:
        loader = yaml.SafeLoader(text)  # refuses a NUL or other control character at once
    except yaml.YAMLError as exc:
        raise PolicyError(source, [(0, "", f"malformed YAML: {str(exc).splitlines()[0]}")]) from exc
    try:
        root = loader.get_single_node()
        if root is None:
            raise PolicyError(source, [(1, "", "the policy file is empty")])
        duplicates = list(_duplicate_keys(root, ()))
        if duplicates:
            raise PolicyError(source, duplicates)
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(source, [(line, "", f"malformed YAML: {problem}")]) from exc
    except RecursionError:
        raise PolicyError(source, [(0, "", "malformed YAML: nested too deeply")]) from None
    finally:
        loader.dispose()
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, _locate(root, exc)) from None


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...]) -> Iterator[tuple[int, str, str]]:
    """PyYAML keeps the last of duplicate keys silently; a policy file must not have any."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in first:
                yield line, ".".join((*path, name)), f"duplicate key (first at line {first[name]})"
            first.setdefault(name, line)
            yield from _duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, str(i)))


def _locate(root: yaml.Node, exc: ValidationError) -> list[tuple[int, str, str]]:
    """Map each pydantic error to (line, dotted key, message) through the composed YAML nodes."""
    problems = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        found = ctx.get("problems") or [(err["loc"], None)]
        for loc, message in found:
            line, path = _walk(root, loc)
            if err["type"] == "missing":
                path.append(str(loc[-1]))
                message = "required key is missing"
            elif err["type"] == "extra_forbidden":
                message = f"unknown key {path[-1]!r}"
            elif message is None:
                message = err["msg"] + (f" (got {err['input']!r})" if err["type"] == "literal_error" else "")
            problems.append((line, ".".join(path), message))
    return sorted(problems)


def _walk(root: yaml.Node, loc: tuple) -> tuple[int, list[str]]:
    """Follow ``loc`` down the node tree as far as the YAML has it: (line, keys walked)."""
    node, line, path = root, root.start_mark.line + 1, []
    for part in loc:
        if part in (_SCALAR, _MAPPING):
            continue
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                break
            node, line = match[1], match[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
        path.append(str(part))
    return line, path
