"""Action requests: propose, guard, decide, execute once, and log every step.

The lifecycle of a request (``action_requests.status``)::

    proposed ─ guard ─┬─ blocked                        (terminal: the guard's reasons are kept)
                      ├─ pending_approval ─┬─ approved ─┬─ executed
                      │                    │            └─ failed   (a precondition no longer held)
                      │                    └─ rejected  (a reason is required)
                      ├─ approved (auto-approval by policy, recorded as decided by ``policy``)
                      └─ ESCALATE: needs no approval, executes at once (assigns the exception)

A guard-blocked request is ``blocked``: it is never approvable; a person proposes a corrected one
(a new request) instead. An approver's ``edit`` is an approval of edited parameters: they go
through the guard again, and the risk and approver role are recomputed from them.

Who decides: a user whose role is the request's approver role or above it in the policy's
hierarchy (``Policy.may_decide``); never the requester; ``admin`` decides nothing. Decisions are
taken under a lock on the request (PostgreSQL ``FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``), so of
concurrent decisions exactly one is recorded and the others get :class:`Conflict`. Execution is
idempotent besides (``tools.writes.execute_request``).

The graph of ``agent.governance.approval`` carries each request: ``request_action`` starts its thread, which
guards and pauses at the decision; ``decide`` records the decision and resumes the thread, which
executes. Pending approvals are listed from ``action_requests`` (:func:`list_requests`), not from
a stream. Every step appends to the audit chain in the same transaction as its change.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from agent.checkpoint import checkpoint_location, open_checkpointer
from agent.governance import audit, impact
from agent.governance.approval import build_approval_graph, resume_with_decision, thread_config
from agent.governance.autopilot import autopilot_on, matching_rule
from agent.governance.events import log_triage
from agent.governance.guard import GuardResult, normalise_params, risk_facts, routing_problems, run_guard
from agent.governance.intake import (
    clip,
    loggable_params,
    refuse_params_without_action,
    screen_params,
    screen_reason,
)
from agent.governance.origin import current_origin
from agent.governance.users import POLICY_ACTOR, require_user
from agent.policy import Policy, load_policy
from agent.settings import get_settings
from agent.triage.order_numbers import filter_id, order_id_of, params_ids
from agent.triage.retriage import OrdersBusy, lock_orders, retriage
from agent.triage.service import triage_orders
from tools import writes
from tools.dataset import forget_exceptions_recorded
from tools.errors import Conflict, Forbidden, GuardBlocked, NotFound, OrderNotFound, ToolError
from tools.events import affected_orders, captured_changes
from tools.models import ActionRequest, Approval, ExceptionRecord, Execution
from tools.outbox import COPILOT_REQUESTER, MESSAGE_ACTIONS
from tools.scope import not_approver_chosen, retargeted
from tools.sites import factory_scope, order_condition, order_visible, unscoped

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "CLI_DECISIONS_OFF",
    "DECISIONS",
    "checkpointer_for",
    "decide",
    "get_request",
    "list_requests",
    "request_action",
    "resume_request",
    "write_session",
]

DECISIONS = ("approve", "reject", "edit")
CLI_DECISIONS_OFF = (
    "decisions are taken through the API only in this deployment (policy governance.cli_decisions: "
    "false): sign in to the panel or use POST /api/v1/requests/{id}/approve|reject|edit"
)
_MEMORY_SAVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------------------------
# Transactions and checkpoints
# ------------------------------------------------------------------------------------------------


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its start on SQLite (``BEGIN
    IMMEDIATE``: reads and writes in it are atomic against other writers); on PostgreSQL rows are
    locked where it matters (``FOR UPDATE``). Commits on success, rolls back on any error."""
    with factory() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _log_refusal(factory: sessionmaker[Session], event_type: str, exc: Exception, **fields: Any) -> None:
    payload = fields.pop("payload", {})
    # what a caller typed is logged as far as the audit columns hold it
    fields["actor"] = clip(fields.get("actor"), 64)
    fields["order_id"] = clip(fields.get("order_id"), 32)
    with write_session(factory) as s:
        audit.append_event(
            s, event_type, payload={**payload, "refused": type(exc).__name__, "reason": str(exc)}, **fields
        )


def _database_url(factory: sessionmaker[Session]) -> str:
    return factory.kw["bind"].url.render_as_string(hide_password=False)


@contextmanager
def _checkpointer(factory: sessionmaker[Session], given=None):
    """The checkpointer of the factory's database (in-memory databases: one per engine, in-process)."""
    if given is not None:
        yield given
        return

    url = _database_url(factory)
    if checkpoint_location(url) == ":memory:":
        from langgraph.checkpoint.memory import InMemorySaver

        engine = factory.kw["bind"]
        saver = _MEMORY_SAVERS.get(engine)
        if saver is None:
            saver = _MEMORY_SAVERS[engine] = InMemorySaver()
        yield saver
        return
    with open_checkpointer(url) as saver:
        yield saver


checkpointer_for = _checkpointer  # public: retention deletes chat threads from the same place


def _graph(factory: sessionmaker[Session], policy: Policy, saver):
    return build_approval_graph(
        guard_step=lambda rid: _guard_step(factory, policy, rid),
        execute_step=lambda rid, aid: _execute_step(factory, policy, rid, aid),
        checkpointer=saver,
    )


# ------------------------------------------------------------------------------------------------
# Reading requests
# ------------------------------------------------------------------------------------------------


def _decided(g: GuardResult) -> tuple[str, str]:
    """The risk and approver role of a passed guard (the policy's matrix gives both for every action)."""
    if g.risk is None or g.approver_role is None:
        raise RuntimeError(f"the guard passed without a risk or an approver role: {g.as_dict()}")
    return g.risk, g.approver_role


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def _as_dict(session: Session, req: ActionRequest) -> dict[str, Any]:
    ex = session.scalar(select(Execution).where(Execution.request_id == req.id))
    decisions = session.scalars(select(Approval).where(Approval.request_id == req.id).order_by(Approval.id))
    guard = req.guard_result or {"ok": None, "reasons": []}
    return {
        "id": req.id,
        "action": req.action,
        "params": req.params,
        "order_id": req.order_id,
        "exception_type": req.exception_type,
        "evidence": req.evidence,
        "citations": req.citations,
        "risk": req.risk,
        "approver_role": req.approver_role,
        "requested_by": req.requested_by,
        "status": req.status,
        "guard": guard,
        "is_recommendation": req.is_recommendation,
        "recommended": req.recommended,
        "source": req.source,
        "thread_id": req.thread_id,
        "error": req.error,
        "created_at": _iso(req.created_at),
        "updated_at": _iso(req.updated_at),
        "decisions": [
            {
                "id": a.id,
                "decision": a.decision,
                "decided_by": a.decided_by,
                "role": a.role,
                "reason": a.reason,
                "params": a.params,
                "decided_at": _iso(a.decided_at),
            }
            for a in decisions
        ],
        "execution": None
        if ex is None
        else {
            "id": ex.id,
            "status": ex.status,
            "result": ex.result,
            "approval_id": ex.approval_id,
            "idempotency_key": ex.idempotency_key,
            "executed_at": _iso(ex.executed_at),
        },
    }


def _visible(factory: sessionmaker[Session], request_id: int) -> sessionmaker[Session]:
    """``factory`` without its scope, once request ``request_id`` is of an order in the factory's
    sites (``tools.sites``); another site's request is :class:`NotFound`, like an unknown one.
    The guard and the executor then see every fact, whoever asks."""
    if not factory_scope(factory).unrestricted:
        with factory() as s:
            order_id = s.scalar(select(ActionRequest.order_id).where(ActionRequest.id == request_id))
            if order_id is None or not order_visible(s, order_id):
                raise NotFound("action request", str(request_id))
    return unscoped(factory)


def get_request(factory: sessionmaker[Session], request_id: int) -> dict[str, Any]:
    factory = _visible(factory, request_id)
    with factory() as s:
        req = s.get(ActionRequest, request_id)
        if req is None:
            raise NotFound("action request", str(request_id))
        return _as_dict(s, req)


def list_requests(
    factory: sessionmaker[Session],
    *,
    status: str | None = None,
    role: str | None = None,
    order_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    policy: Policy | None = None,
    not_requested_by: str | None = None,
) -> list[dict[str, Any]]:
    """Requests, newest first. ``role``: the queue of that role — requests whose approver role it
    may decide through the policy's hierarchy (``policy`` default: the configured policy file).
    ``not_requested_by``: leave out that user's own requests (nobody decides their own).
    ``order_id`` is read as a typed one (``so-100042``: :func:`agent.triage.order_numbers.filter_id`)."""
    query = select(ActionRequest).order_by(ActionRequest.id.desc())
    if not_requested_by is not None:
        query = query.where(ActionRequest.requested_by != not_requested_by)
    if status is not None:
        query = query.where(ActionRequest.status == status)
    if role is not None:
        if policy is None:
            policy = load_policy(get_settings().policy_path)
        query = query.where(ActionRequest.approver_role.in_(sorted(policy.delegates(role))))
    with factory() as s:
        if order_id is not None:  # as typed (so-100042)
            order_id = filter_id(s, order_id, policy.order_numbers if policy else None)
            query = query.where(ActionRequest.order_id == order_id)
        query = query.where(order_condition(s, ActionRequest.order_id))  # the user's sites only
        return [_as_dict(s, r) for r in s.scalars(query.limit(max(0, limit)).offset(max(0, offset)))]


# ------------------------------------------------------------------------------------------------
# Proposing
# ------------------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _jsonable(value: Any) -> Any:
    return json.loads(audit.canonical_json(value))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return audit.canonical_json(a) == audit.canonical_json(b)


def _locate(
    result: dict[str, Any], action: str, params: dict[str, Any], policy: Policy
) -> tuple[dict | None, bool]:
    """The exception instance an action resolves, and whether it is one of the plan's actions.

    The instance whose feasible candidate is exactly this action; else the first whose candidates
    include the action and that the parameters can be about: the line or shipment they name (an
    action on line 2 carries line 2's evidence to its approver, not line 1's), and for ``ESCALATE``
    an exception type the policy routes to the role named. None when no instance qualifies.
    """
    plan_match = any(p["action"] == action and _same(p["params"], params) for p in result["plan"])
    found = {(e["type"], e["instance"]): e for e in result["exceptions"]}
    best = None
    for option in result["options"]:
        for cand in option["candidates"]:
            if cand["action"] != action:
                continue
            if cand.get("feasible") and _same(cand.get("params", {}), params):
                return option, plan_match
            if best is None and _about(
                found.get((option["type"], option["instance"]), {}), action, params, policy
            ):
                best = option
    return best, plan_match


def _about(exception: dict[str, Any], action: str, params: dict[str, Any], policy: Policy) -> bool:
    """Whether an action with ``params`` can resolve ``exception`` (a triage result's exception)."""
    for key in ("line_no", "shipment_id"):
        mine = exception.get(key)
        if key in params and mine is not None and params[key] != mine:
            return False
    if action == "ESCALATE":
        return policy.may_route(str(exception.get("type")), str(params.get("role")))
    return True


def _log_triage(s: Session, result: dict[str, Any], actor: str | None, role: str | None, why: str) -> None:
    log_triage(s, [result], source="governance", actor=actor, role=role, why=why)
    rec = result.get("recommendation")
    if rec is not None:
        audit.append_event(
            s,
            audit.EVENT_RECOMMENDATION,
            actor="copilot",
            order_id=result["order_id"],
            payload={
                "action": rec["action"],
                "params": rec["params"],
                "risk": rec["risk"],
                "approver_role": rec["approver_role"],
                "reason": rec["reason"],
            },
        )


def request_action(
    factory: sessionmaker[Session],
    policy: Policy,
    *,
    order_id: str,
    requested_by: str,
    action: str | None = None,
    params: dict[str, Any] | None = None,
    source: str = "cli",
    citations: list | None = None,
    thread_id: str | None = None,
    checkpointer=None,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Persist a proposed action for an order, guard it, and route it to approval.

    A message action (``NOTIFY_CUSTOMER``, ``REQUEST_SUPPLIER``) carries the ``facts`` it was
    drafted from (kept as the request's evidence, a list of that one record; its text is checked
    against them) and may be
    filed by the copilot itself (``requested_by`` ``copilot``): then no person is its requester.

    ``action`` None: the order's recommendation (triaged now). Returns the request dict; a request
    the guard blocks comes back with status ``blocked`` and the reasons in ``guard``. Raises
    :class:`NotFound` (order), :class:`Forbidden` (unknown or inactive requester),
    :class:`Conflict` (no recommendation to take), :class:`GuardBlocked` (an action not in the
    catalog: nothing is persisted). Every refusal is logged.
    """
    order_id = (order_id or "").strip()
    scope_factory, factory = factory, unscoped(factory)
    repeated: int | None = None
    try:
        screen_params(params)  # oversize or non-finite values: refused before anything is stored
        refuse_params_without_action(action, params, "request")
        with scope_factory() as s:  # read as typed (so-100042); another site's order: as unknown
            order_id = order_id_of(s, order_id, policy.order_numbers)
            params = params_ids(s, params, policy.order_numbers)
        with write_session(factory) as s:
            # PostgreSQL: the order's triage lock (the worker's), taken before the order is triaged,
            # so a concurrent identical request waits, then finds this one (SQLite: BEGIN IMMEDIATE)
            lock_orders(s, [order_id])
            if requested_by == COPILOT_REQUESTER and str(action or "").strip().upper() in MESSAGE_ACTIONS:
                user = {"username": COPILOT_REQUESTER, "role": None}
            else:
                user = require_user(s, requested_by)
            [result] = triage_orders(s, [order_id], policy)
            if "error" in result:
                raise OrderNotFound(order_id)
            _log_triage(s, result, user["username"], user["role"], f"action requested ({source})")
            rec = result["recommendation"]
            if action is None:
                if rec is None:
                    refused = [
                        f"{c['action']}: {c['reason']}"
                        for o in result.get("options") or []
                        for c in o["candidates"]
                        if not c["feasible"]
                    ]
                    raise Conflict(
                        f"order {order_id} has no feasible action to recommend ({'; '.join(refused)})"
                        if refused
                        else f"order {order_id} has no exception to act on, so no recommendation: "
                        "name an action to request one"
                    )
                action, params = rec["action"], dict(rec["params"])
            action = str(action).strip().upper()
            params = dict(params or {})
            normalised, problems = normalise_params(policy, action, params)
            if action not in policy.actions:
                raise GuardBlocked(problems)
            if action in MESSAGE_ACTIONS and not facts:
                raise GuardBlocked(
                    [f"{action} is drafted from the facts of a notice: use `copilot messages draft ORDER`"]
                )
            option, in_plan = _locate(result, action, normalised or params, policy)
            evidence: list[Any] = next(
                (
                    e["evidence"]
                    for e in result["exceptions"]
                    if option and (e["type"], e["instance"]) == (option["type"], option["instance"])
                ),
                [],
            )
            exception_id = None
            if option is not None:
                s.flush()
                exception_id = s.scalar(
                    select(ExceptionRecord.id).where(
                        ExceptionRecord.order_id == order_id,
                        ExceptionRecord.type == option["type"],
                        ExceptionRecord.instance_key == option["instance"],
                    )
                )
            stored = _jsonable(normalised if normalised is not None else params)
            # only an asker who may request actions gets the waiting one back; anyone else files a
            # request the guard blocks with the reason (copilot/requester), as before twins
            spec = policy.roles.get(str(user["role"])) if user["role"] else None
            may_request = user["username"] == COPILOT_REQUESTER or (
                spec is not None and not spec.administers_users
            )
            twin = _waiting_twin(s, order_id, action, stored) if may_request else None
            if twin is not None and twin.requested_by != user["username"]:
                # another person's request: theirs to have asked, this one's to decide if their role may
                raise Conflict(
                    f"request {twin.id} already asks for {action} with these parameters on order "
                    f"{order_id} ({twin.status}, filed by {twin.requested_by}): decide that one, "
                    "nothing new is filed"
                )
            if twin is not None:  # a retry or a second click: the request waiting is the one
                audit.append_event(
                    s,
                    audit.EVENT_REQUEST_REPEATED,
                    actor=user["username"],
                    role=user["role"],
                    order_id=order_id,
                    request_id=twin.id,
                    payload={"action": action, "params": stored, "source": (source or "cli")[:16]},
                )
                repeated = twin.id
            else:
                risk = "none" if action == "ESCALATE" else policy.risk_of(action)
                approver = (
                    stored.get("role") if action == "ESCALATE" else policy.approver_for(action, risk)
                ) or ""
                now = _now()
                req = ActionRequest(
                    action=action,
                    params=stored,
                    params_hash=writes.params_hash(stored),
                    order_id=order_id,
                    exception_id=exception_id,
                    exception_type=option["type"] if option else None,
                    evidence=_jsonable([facts] if action in MESSAGE_ACTIONS and facts else evidence),
                    citations=_jsonable(citations or []),
                    risk=risk,
                    approver_role=str(approver)[:32],
                    requested_by=user["username"],
                    is_recommendation=in_plan,
                    recommended=_jsonable(rec and {"action": rec["action"], "params": rec["params"]}),
                    status="proposed",
                    thread_id=thread_id,
                    source=(source or "cli")[:16],
                    created_at=now,
                    updated_at=now,
                )
                s.add(req)
                s.flush()
                audit.append_event(
                    s,
                    audit.EVENT_REQUESTED,
                    actor=user["username"],
                    role=user["role"],
                    order_id=order_id,
                    request_id=req.id,
                    payload={
                        "action": action,
                        "params": stored,
                        "source": req.source,
                        "is_recommendation": in_plan,
                        "thread_id": thread_id,
                        "citations": req.citations,
                    },
                )
                if rec is not None and not in_plan and action not in MESSAGE_ACTIONS:
                    audit.append_event(
                        s,
                        audit.EVENT_OVERRIDE,
                        actor=user["username"],
                        role=user["role"],
                        order_id=order_id,
                        request_id=req.id,
                        payload={
                            "kind": "requested_other_action",
                            "recommended": req.recommended,
                            "chosen": {"action": action, "params": stored},
                        },
                    )
                request_id = req.id
    except ToolError as exc:
        _log_refusal(
            factory,
            audit.EVENT_GUARD if isinstance(exc, GuardBlocked) else "request_refused",
            exc,
            actor=requested_by,
            order_id=order_id or None,
            payload={
                "action": clip(str(action), 32) if action is not None else None,
                "params": loggable_params(params) if params is not None else None,
                "ok": False,
                "reasons": getattr(exc, "reasons", [str(exc)]),
            },
        )
        raise
    if repeated is not None:
        waiting = get_request(factory, repeated)
        if waiting["status"] != "proposed":
            return {**waiting, "repeated": True}
        # not guarded yet: the first ask may have died between storing it and its guard (or is
        # guarding it right now). Run its graph as `copilot actions resume` would: the guard step
        # locks the row and speaks once, so a concurrent run finds it done and goes no further.
        request_id = repeated
    with _checkpointer(factory, checkpointer) as saver:
        _graph(factory, policy, saver).invoke({"request_id": request_id}, thread_config(request_id))
    filed = get_request(factory, request_id)
    return {**filed, "repeated": True} if repeated is not None else filed


# A request still on its way to execution: asking for the same action again files nothing new.
_WAITING = ("proposed", "pending_approval", "approved")


def _waiting_twin(s: Session, order_id: str, action: str, params: dict[str, Any]) -> ActionRequest | None:
    """The request of ``action`` with exactly ``params`` on the order that has not run yet
    (proposed, waiting for its approver, or approved), if any: a client's retry or a second click
    gets that one back instead of a twin that could run again once both are approved (domain.md §3:
    an action runs at most once); another person is told to decide that one (asking for it too
    would make them one of its requesters, who may not approve it). A request that executed,
    failed, was rejected or blocked is no twin: asking again files a new one."""
    return s.scalars(
        select(ActionRequest)
        .where(
            ActionRequest.order_id == order_id,
            ActionRequest.action == action,
            ActionRequest.params_hash == writes.params_hash(params),
            ActionRequest.status.in_(_WAITING),
        )
        .order_by(ActionRequest.id)
        .limit(1)
    ).first()


# ------------------------------------------------------------------------------------------------
# The graph's steps
# ------------------------------------------------------------------------------------------------

_ROUTE = {"pending_approval": "pending", "blocked": "blocked", "approved": "auto"}


def _guard_step(factory: sessionmaker[Session], policy: Policy, request_id: int) -> dict[str, Any]:
    """Guard a proposed request: blocked, pending approval, auto-approved, or (ESCALATE) straight on."""
    with write_session(factory) as s:
        req = s.get(ActionRequest, request_id, with_for_update=True)
        if req is None:
            raise NotFound("action request", str(request_id))
        if req.status != "proposed":  # a re-run (resumed thread, a retry): the guard already spoke
            if req.status == "approved":  # auto-approved, not run yet: execute under that approval
                last = s.scalar(
                    select(Approval.id)
                    .where(Approval.request_id == req.id)
                    .order_by(Approval.id.desc())
                    .limit(1)
                )
                return {"outcome": "auto", "approval_id": last}
            return {"outcome": _ROUTE.get(req.status, "done")}
        g = run_guard(
            s,
            policy,
            action=req.action,
            params=req.params,
            requested_by=req.requested_by,
            order_id=req.order_id,
            exception_type=req.exception_type,
            partial=True,
        )
        req.guard_result, req.updated_at = g.as_dict(), _now()
        if g.ok:
            req.params, req.params_hash = g.params, writes.params_hash(g.params)
            req.risk, req.approver_role = _decided(g)
        audit.append_event(
            s,
            audit.EVENT_GUARD,
            actor="guard",
            order_id=req.order_id,
            request_id=req.id,
            payload={"stage": "request", **g.as_dict()},
        )
        if not g.ok:
            req.status = "blocked"
            return {"outcome": "blocked"}
        if req.action == "ESCALATE":
            return {"outcome": "escalate"}
        rule = matching_rule(s, policy, req.action, req.risk, req.params)
        live = rule if rule is not None and rule.mode == "live" else None
        # the kill switch (policy or COPILOT_AUTOPILOT=off) stops the per-risk switches too
        per_risk = autopilot_on(policy) and policy.auto_approves(req.action, req.risk)
        auto = (per_risk or live is not None) and not writes.missing_inputs(s, req.action, req.params)
        if rule is not None and rule.mode == "shadow" and not auto:  # people decide; the report compares
            audit.append_event(
                s,
                audit.EVENT_AUTOPILOT_SHADOW,
                actor=POLICY_ACTOR,
                order_id=req.order_id,
                request_id=req.id,
                payload={
                    "rule": rule.name,
                    "action": req.action,
                    "risk": req.risk,
                    "params_hash": req.params_hash,
                },
            )
        if auto:
            approval = Approval(
                request_id=req.id,
                decision="approve",
                decided_by=POLICY_ACTOR,
                role=POLICY_ACTOR,
                reason=f"auto-approved by policy rule {live.name}"
                if live
                else f"auto-approved by policy: {req.risk} risk",
                params=req.params,
                params_hash=req.params_hash,
                decided_at=_now(),
            )
            s.add(approval)
            s.flush()
            req.status = "approved"
            audit.append_event(
                s,
                audit.EVENT_DECISION,
                actor=POLICY_ACTOR,
                role=POLICY_ACTOR,
                order_id=req.order_id,
                request_id=req.id,
                payload={
                    "decision": "approve",
                    "reason": approval.reason,
                    "approval_id": approval.id,
                    "risk": req.risk,
                    "rule": live.name if live else None,
                },
            )
            return {"outcome": "auto", "approval_id": approval.id}
        req.status = "pending_approval"
        audit.append_event(
            s,
            audit.EVENT_APPROVAL_REQUESTED,
            actor="copilot",
            order_id=req.order_id,
            request_id=req.id,
            payload={
                "approver_role": req.approver_role,
                "risk": req.risk,
                "action": req.action,
                "params": req.params,
            },
        )
        return {"outcome": "pending"}


def _text_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The approver's edit of a message, field by field, as a unified diff."""
    import difflib

    out = {}
    for key in ("subject", "body"):
        old, new = str(before.get(key) or ""), str(after.get(key) or "")
        if old != new:
            out[key] = "\n".join(
                difflib.unified_diff(old.splitlines(), new.splitlines(), "drafted", "edited", lineterm="")
            )
    return out


def _veto(s: Session, policy: Policy, req: ActionRequest) -> str | None:
    """A reason not to run an approved request now: its risk changed since it was approved, or
    (ESCALATE) the policy no longer routes its exceptions to that role."""
    if req.action == "ESCALATE":
        routed = routing_problems(s, policy, req.order_id, req.exception_type, req.params["role"])
        return "; ".join(routed) or None
    risk = policy.risk_of(req.action, risk_facts(s, policy, req.action, req.params))
    if risk != req.risk:
        who = policy.approver_for(req.action, risk)
        return f"the risk of {req.action} is now {risk}, not the {req.risk} it was approved at (needs {who})"
    return None


# PostgreSQL's answers to two transactions waiting on each other's locks: deadlock detected,
# serialization failure, lock not available. The executed write's re-triage takes the order locks
# the event worker takes (agent.triage.retriage), in two sorted rounds, so the two can deadlock;
# PostgreSQL then aborts one transaction, nothing of it is written, and running the step again is
# what the worker does too. A request is not failed for it.
_LOCK_CONFLICTS = frozenset({"40P01", "40001", "55P03"})
_STEP_TRIES = 3
_BUSY_TRIES = 32  # tries refused for busy orders (each takes more of their locks first: few in practice)


def _lock_conflict(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _LOCK_CONFLICTS


def _execute_step(
    factory: sessionmaker[Session],
    policy: Policy,
    request_id: int,
    approval_id: int | None,
    tries: int = _STEP_TRIES,
    prelock: frozenset[int] = frozenset(),
    busy: int = 0,
) -> str:
    """Execute once in one transaction; on failure re-triage the order. Returns the end status.
    A transaction aborted by a lock conflict (:data:`_LOCK_CONFLICTS`) wrote nothing and is run
    again, ``tries`` times in all, before it counts as the database refusing the step. One refused
    because a worker held orders the write reached (:class:`agent.triage.retriage.OrdersBusy`, in
    the re-triage's second round) runs again taking those order locks first (``prelock``: it waits
    there for the worker, in key order), without counting as a try."""
    try:
        with write_session(factory) as s:
            req = s.get(ActionRequest, request_id, with_for_update=True)
            if req is None:
                raise NotFound("action request", str(request_id))
            if s.scalar(select(Execution.id).where(Execution.request_id == request_id)) is not None:
                return req.status  # already ran: a retry, a double resume
            veto = _veto(s, policy, req)
            with captured_changes(s) as changed:
                execution, ran = writes.execute_request(s, request_id, approval_id=approval_id, veto=veto)
            if not ran:
                return req.status
            reached, follow_up_error = None, None
            if execution.status == "executed" and changed:
                # the open orders the write can affect (its order, a donor, the lines sharing the
                # stock it moved, the recurrence followers), triaged again as after an event: their
                # recorded exceptions stay current (tools.dataset.exceptions_recorded); in a
                # savepoint (:func:`_follow_up`)
                reached, follow_up_error = _follow_up(
                    s, req.id, lambda: retriage(s, policy, affected_orders(s, changed), prelock=prelock)
                )
            triaged: list[dict[str, Any]] = []
            if req.order_id:
                # a reassignment leaves its donor order short (domain.md §6): triage it again too.
                # The same rules as the re-triage's run here: a bug in one fails here too, in its
                # own savepoint, and is audited with the execution instead of undoing it
                donor = req.params.get("from_order_id") if req.action == "REASSIGN_ALLOCATION" else None
                again = [req.order_id, *([donor] if donor and execution.status == "executed" else [])]
                ran_again, error = _follow_up(s, req.id, lambda: triage_orders(s, again, policy))
                triaged, follow_up_error = ran_again or [], follow_up_error or error
            audit.append_event(
                s,
                audit.EVENT_EXECUTION,
                actor="executor",
                order_id=req.order_id,
                request_id=req.id,
                payload={
                    "action": req.action,
                    "status": execution.status,
                    "result": execution.result,
                    "approval_id": execution.approval_id,
                    "idempotency_key": execution.idempotency_key,
                    # what the write changed in other orders' exceptions, as the event worker logs it
                    **({"retriaged": reached.as_dict()} if reached is not None else {}),
                    **({"retriage_error": follow_up_error} if follow_up_error else {}),
                },
            )
            if req.action == "ESCALATE" and execution.status == "executed":
                audit.append_event(
                    s,
                    audit.EVENT_ESCALATION,
                    actor=req.requested_by,
                    order_id=req.order_id,
                    request_id=req.id,
                    payload={"role": req.params["role"], "reason": req.params["reason"]},
                )
            why = (
                "execution failed: " + (req.error or "")
                if execution.status == "failed"
                else "after execution"
            )
            for result in triaged:
                if "error" not in result:
                    _log_triage(s, result, "copilot", None, why)
            return execution.status
    except IntegrityError as exc:
        with factory() as s:
            if s.scalar(select(Execution.id).where(Execution.request_id == request_id)) is not None:
                # a concurrent duplicate lost the unique idempotency key: it ran once
                return s.get_one(ActionRequest, request_id).status
        return _record_failure(factory, request_id, approval_id, writes.database_refusal(exc))
    except DBAPIError as exc:  # the whole step was rolled back: record why, never leave it approved
        if isinstance(exc, OrdersBusy) and busy < _BUSY_TRIES and not prelock.issuperset(exc.keys):
            more = prelock | frozenset(exc.keys)
            return _execute_step(factory, policy, request_id, approval_id, tries, more, busy + 1)
        if tries > 1 and _lock_conflict(exc):
            return _execute_step(factory, policy, request_id, approval_id, tries - 1, prelock, busy)
        return _record_failure(factory, request_id, approval_id, writes.database_refusal(exc))
    except Forbidden as exc:  # the executor found no approval of exactly these parameters
        return _record_failure(factory, request_id, approval_id, f"the executor refused: {exc}")


def _follow_up(s: Session, request_id: int, step: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run ``step`` — triage after an execution — in a savepoint of the execution's transaction.
    The write was approved and is done; a failure of this follow-up that is not the database's
    (a bug in a rule, say) must not undo it nor leave the request approved with nothing audited:
    the savepoint is rolled back, the book is no longer known to be recorded whole (the orders it
    reached keep their earlier exceptions until they are triaged again, so recurrence goes back to
    the neighbours: :func:`tools.dataset.forget_exceptions_recorded`), and the error is returned
    for the execution's audit event. A database error (a lock conflict, a lost connection) still
    aborts the whole step, which :func:`_execute_step` runs again or records as refused."""
    try:
        with s.begin_nested():
            return step(), None
    except DBAPIError:
        raise
    except Exception as exc:
        log.exception("triage after request %s failed; the executed write is kept", request_id)
        forget_exceptions_recorded(s)
        return None, f"{type(exc).__name__}: {exc}"[:500]


def _record_failure(
    factory: sessionmaker[Session], request_id: int, approval_id: int | None, reason: str
) -> str:
    """Record a ``failed`` execution for a request whose execution step the database refused as a
    whole (nothing of it was written), with the reason, in the audit log too. Same idempotency key:
    a request that did run meanwhile keeps its execution."""
    with write_session(factory) as s:
        req = s.get(ActionRequest, request_id, with_for_update=True)
        if req is None:
            raise NotFound("action request", str(request_id))
        ran = s.scalar(select(Execution.id).where(Execution.request_id == request_id)) is not None
        # an approved request, or an ESCALATE (it needs no approval and runs straight from the guard)
        if ran or (req.status != "approved" and req.action != "ESCALATE"):
            return req.status
        now = _now()
        execution = Execution(
            request_id=req.id,
            approval_id=approval_id,
            idempotency_key=writes.idempotency_key(req.id, approval_id, req.params_hash),
            status="failed",
            result={"reason": reason},
            executed_at=now,
        )
        s.add(execution)
        req.status, req.error, req.updated_at = "failed", reason, now
        s.flush()
        audit.append_event(
            s,
            audit.EVENT_EXECUTION,
            actor="executor",
            order_id=req.order_id,
            request_id=req.id,
            payload={
                "action": req.action,
                "status": "failed",
                "result": execution.result,
                "approval_id": approval_id,
                "idempotency_key": execution.idempotency_key,
            },
        )
        return "failed"


# ------------------------------------------------------------------------------------------------
# Deciding
# ------------------------------------------------------------------------------------------------


def _impact(s: Session, policy: Policy, req: ActionRequest) -> dict[str, Any]:
    """The request's impact on the other open orders, as the approver sees it beside the request,
    computed on the records the decision acts on (simulated in a savepoint, rolled back)."""
    try:
        result = impact.whatif(s, policy, order_id=req.order_id or "", action=req.action, params=req.params)
    except ToolError as exc:
        return {"error": str(exc)}
    except DBAPIError as exc:
        # the simulation's savepoint is rolled back; the decision stands, and the write itself
        # meets the same refusal at execution, where it is recorded as the request's failure
        return {"error": f"the database refused the simulated write: {type(exc.orig).__name__}: {exc.orig}"}
    return impact.summary(result)


def decide(
    factory: sessionmaker[Session],
    policy: Policy,
    request_id: int,
    *,
    username: str,
    decision: str,
    reason: str | None = None,
    params: dict[str, Any] | None = None,
    checkpointer=None,
    text_checked: bool = False,
    text_problems: Sequence[str] = (),
) -> dict[str, Any]:
    """Approve, reject (a reason is required) or edit (new parameters, guarded again) a pending
    request, then resume its graph thread, which executes an approval once.

    A message's subject and body (``NOTIFY_CUSTOMER``, ``REQUEST_SUPPLIER``) are edited only through
    ``agent.comms.service.edit_message``, which checks the text against the message's facts and
    passes ``text_checked`` with the ``text_problems`` it found (refused here, after the role, like
    any other guard refusal); the diff is logged as ``message_edited``.

    Raises :class:`Forbidden` (unknown user, the requester, a role that may not decide it),
    :class:`Conflict` (already decided or executed), :class:`GuardBlocked` (edited parameters the
    guard refuses), :class:`ToolError` (bad decision, missing reason or parameters). Every refusal
    is logged; a refused decision changes nothing.
    """
    decision = (decision or "").strip().lower()
    reason = (reason or "").strip() or None
    try:
        factory = _visible(factory, request_id)
        with write_session(factory) as s:
            if decision not in DECISIONS:
                raise ToolError(f"decision must be approve, reject or edit, not {decision!r}")
            origin = current_origin()
            if origin is not None and origin.door == "cli" and not policy.governance.cli_decisions:
                # every command that decides (actions approve|reject|edit, messages edit) meets it
                raise Forbidden(CLI_DECISIONS_OFF)
            req = s.get(ActionRequest, request_id, with_for_update=True)
            if req is None:
                raise NotFound("action request", str(request_id))
            user = require_user(s, username)
            if req.status != "pending_approval":
                last = s.scalar(
                    select(Approval).where(Approval.request_id == req.id).order_by(Approval.id.desc())
                )
                by = f" ({last.decision} by {last.decided_by} at {_iso(last.decided_at)})" if last else ""
                raise Conflict(f"request {req.id} is {req.status}{by}: nothing to decide")
            if user["username"] == req.requested_by:
                raise Forbidden(f"{user['username']} requested {req.id}: nobody decides on their own request")
            if not policy.may_decide(user["role"], req.action, req.risk):
                raise Forbidden(
                    f"{user['username']} ({user['role']}) may not decide {req.action} at {req.risk} risk: "
                    f"it needs {req.approver_role} or a role above it"
                )
            if decision == "reject" and not reason:
                raise ToolError("a rejection needs a reason")
            screen_reason(reason)
            editor = _last_editor(s, req.id)
            if decision != "reject" and editor == user["username"]:
                raise Forbidden(
                    f"{editor} edited the parameters of {req.id} into what they are now: "
                    "another person with the role decides them"
                )
            before = dict(req.params)
            if decision == "edit":
                if not isinstance(params, dict) or not params:
                    raise ToolError("an edit needs the changed parameters")
                if req.action in MESSAGE_ACTIONS and not text_checked:
                    raise GuardBlocked(
                        [
                            "a message's text is edited with `copilot messages edit` (or POST "
                            "/api/v1/messages/{id}/edit), which checks it against its facts"
                        ]
                    )
                if req.action in MESSAGE_ACTIONS and text_problems:
                    raise GuardBlocked(list(text_problems))
                screen_params(params)
                edited = {**req.params, **params}
                if req.action in MESSAGE_ACTIONS and set(params) - {"subject", "body"}:
                    raise GuardBlocked(
                        [
                            f"an approver edits a message's subject and body only, not {sorted(set(params) - {'subject', 'body'})}"
                        ]
                    )
                g = run_guard(
                    s,
                    policy,
                    action=req.action,
                    params=edited,
                    requested_by=req.requested_by,
                    order_id=req.order_id,
                    exception_type=req.exception_type,
                )
                moved = retargeted(req.params, g.params if g.ok else edited)
                if moved:
                    raise GuardBlocked(
                        [
                            f"an edit may change the values an approver chooses, never which records "
                            f"{req.action} acts on: {', '.join(moved)} must stay "
                            + ", ".join(f"{k}={req.params.get(k)!r}" for k in moved)
                        ]
                    )
                if not g.ok:
                    raise GuardBlocked(g.reasons)
                fixed = not_approver_chosen(req.params, g.params)
                if fixed:
                    raise GuardBlocked(
                        [
                            f"an edit may change only the values an approver chooses; {', '.join(fixed)} "
                            f"of {req.action} must stay "
                            + ", ".join(f"{k}={req.params.get(k)!r}" for k in fixed)
                        ]
                    )
                if (g.risk, g.approver_role) != (req.risk, req.approver_role):
                    _return_to_pending(s, req, g, user, reason)
                    s.flush()
                    return _as_dict(s, req)
                if not policy.may_decide(user["role"], req.action, g.risk):
                    raise Forbidden(
                        f"the edited {req.action} is {g.risk} risk: {user['username']} ({user['role']}) "
                        f"may not decide it; it needs {g.approver_role}"
                    )
                audit.append_event(
                    s,
                    audit.EVENT_GUARD,
                    actor="guard",
                    order_id=req.order_id,
                    request_id=req.id,
                    payload={"stage": "edit", **g.as_dict()},
                )
                if req.action in MESSAGE_ACTIONS:
                    audit.append_event(
                        s,
                        "message_edited",
                        actor=user["username"],
                        role=user["role"],
                        order_id=req.order_id,
                        request_id=req.id,
                        payload={"diff": _text_diff(req.params, g.params)},
                    )
                req.params, req.params_hash = g.params, writes.params_hash(g.params)
                (req.risk, req.approver_role), req.guard_result = _decided(g), g.as_dict()
            elif decision == "approve":
                missing = writes.missing_inputs(s, req.action, req.params)
                if missing:
                    raise ToolError(
                        f"{req.action} needs values for {', '.join(missing)}: edit the request with them"
                    )
            # what the approver is shown beside the request, on the records this decision acts on
            shown = _impact(s, policy, req)
            approval = Approval(
                request_id=req.id,
                decision=decision,
                decided_by=user["username"],
                role=user["role"],
                reason=reason,
                params=req.params,
                params_hash=req.params_hash,
                decided_at=_now(),
            )
            s.add(approval)
            s.flush()
            req.status = "rejected" if decision == "reject" else "approved"
            req.updated_at = approval.decided_at
            audit.append_event(
                s,
                audit.EVENT_DECISION,
                actor=user["username"],
                role=user["role"],
                order_id=req.order_id,
                request_id=req.id,
                payload={
                    "decision": decision,
                    "reason": reason,
                    "approval_id": approval.id,
                    "action": req.action,
                    "params": req.params,
                    "risk": req.risk,
                    "impact": shown,
                },
            )
            if req.is_recommendation and (decision == "reject" or not _same(before, req.params)):
                audit.append_event(
                    s,
                    audit.EVENT_OVERRIDE,
                    actor=user["username"],
                    role=user["role"],
                    order_id=req.order_id,
                    request_id=req.id,
                    payload={
                        "kind": "rejected_recommendation"
                        if decision == "reject"
                        else "edited_recommendation",
                        "recommended": {"action": req.action, "params": before},
                        "chosen": None
                        if decision == "reject"
                        else {"action": req.action, "params": req.params},
                        "reason": reason,
                    },
                )
            approval_id = approval.id
    except ToolError as exc:
        _log_refusal(
            factory,
            audit.EVENT_DECISION_REFUSED,
            exc,
            actor=username,
            request_id=request_id,
            payload={"decision": decision, "reasons": getattr(exc, "reasons", [str(exc)])},
        )
        raise
    with _checkpointer(factory, checkpointer) as saver:
        resume_with_decision(
            _graph(factory, policy, saver), request_id, decision=decision, approval_id=approval_id
        )
    return get_request(factory, request_id)


def _last_editor(s: Session, request_id: int) -> str | None:
    """Who edited the request's parameters into what they are, when an edit sent it back to pending."""
    last = audit.list_events(s, request_id=request_id, event_type=audit.EVENT_DECISION, limit=1_000)
    if last and (last[-1]["payload"] or {}).get("outcome") == "returned_to_pending":
        return last[-1]["actor"]
    return None


def _return_to_pending(s: Session, req: ActionRequest, g, user: dict[str, Any], reason: str | None) -> None:
    """An edit that changes the risk or the approver role is not an approval: the request takes the
    edited parameters and waits, pending, for a person holding the role they need (not the editor)."""
    audit.append_event(
        s,
        audit.EVENT_GUARD,
        actor="guard",
        order_id=req.order_id,
        request_id=req.id,
        payload={"stage": "edit", **g.as_dict()},
    )
    was = {"risk": req.risk, "approver_role": req.approver_role}
    req.params, req.params_hash = g.params, writes.params_hash(g.params)
    req.risk, req.approver_role, req.guard_result = g.risk, g.approver_role, g.as_dict()
    req.updated_at = _now()
    audit.append_event(
        s,
        audit.EVENT_DECISION,
        actor=user["username"],
        role=user["role"],
        order_id=req.order_id,
        request_id=req.id,
        payload={
            "decision": "edit",
            "outcome": "returned_to_pending",
            "reason": reason,
            "action": req.action,
            "params": req.params,
            "was": was,
            "risk": req.risk,
            "approver_role": req.approver_role,
        },
    )
    audit.append_event(
        s,
        audit.EVENT_APPROVAL_REQUESTED,
        actor="copilot",
        order_id=req.order_id,
        request_id=req.id,
        payload={
            "approver_role": req.approver_role,
            "risk": req.risk,
            "action": req.action,
            "params": req.params,
        },
    )


def resume_request(
    factory: sessionmaker[Session], policy: Policy, request_id: int, *, checkpointer=None
) -> dict[str, Any]:
    """Carry on a request a crash left half-way: ``proposed`` (not guarded yet) is guarded and routed;
    ``approved`` without an execution (the process died between the decision and the execution) is
    executed — once, by the same idempotency key. Anything else is returned unchanged."""
    factory = _visible(factory, request_id)
    with factory() as s:
        req = s.get(ActionRequest, request_id)
        if req is None:
            raise NotFound("action request", str(request_id))
        status = req.status
        ran = s.scalar(select(Execution.id).where(Execution.request_id == request_id)) is not None
        last = s.scalar(
            select(Approval).where(Approval.request_id == request_id).order_by(Approval.id.desc())
        )
    if status == "proposed" or (status == "approved" and not ran):
        with _checkpointer(factory, checkpointer) as saver:
            graph = _graph(factory, policy, saver)
            if status == "proposed":
                graph.invoke({"request_id": request_id}, thread_config(request_id))
            elif last is None:
                raise Conflict(f"request {request_id} is approved but has no recorded approval")
            else:
                resume_with_decision(graph, request_id, decision=last.decision, approval_id=last.id)
    return get_request(factory, request_id)
