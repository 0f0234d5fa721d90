"""Working a queue: claim, release, reassign (each audited), and the SLA escalation sweep.

Who may act on an exception: a person whose role covers (policy hierarchy) its owner role or the
role it was escalated to. ``admin`` administers users and works no queue. A claim by someone else
is a conflict until they release it; a reassignment names the new role and why, clears the claim
and moves the exception to that role's queue — only to a role the policy routes its type to
(``escalation`` in the policy, as for ESCALATE).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from agent.flow.queue import load_queue
from agent.governance.audit import (
    EVENT_QUEUE_CLAIMED,
    EVENT_QUEUE_REASSIGNED,
    EVENT_QUEUE_RELEASED,
    EVENT_SLA_ESCALATED,
    append_event,
)
from agent.policy import Policy
from tools.errors import Conflict, Forbidden, NotFound, ToolError
from tools.models import ExceptionRecord, User

__all__ = ["claim", "escalate_breached", "reassign", "release"]


def _item(session: Session, policy: Policy, exception_id: int) -> tuple[ExceptionRecord, dict[str, Any]]:
    row = session.get(ExceptionRecord, exception_id, with_for_update=True)
    if row is None or row.status != "open":
        raise NotFound("open exception", str(exception_id))
    found = [
        i for i in load_queue(session, policy, limit=10**9, recommendations=False) if i["id"] == exception_id
    ]
    if not found:  # another site's, or of a closed order: answered exactly as an unknown id
        raise NotFound("open exception", str(exception_id))
    return row, found[0]


def _allowed(policy: Policy, role: str, item: dict[str, Any]) -> None:
    covered = policy.delegates(role)
    if item["owner_role"] not in covered and item["escalated_to"] not in covered:
        raise Forbidden(
            f"exception {item['id']} is in the {item['owner_role']} queue"
            f"{' (escalated to ' + item['escalated_to'] + ')' if item['escalated_to'] else ''}; "
            f"role {role} does not cover it"
        )


def _above(session: Session, policy: Policy, role: str, holder: str, owner_role: str) -> bool:
    """Whether ``role`` is strictly above the claimant's role (the users table's; the item's owner
    role for a name it does not hold): a peer of the same role may not release another's claim."""
    found = session.get(User, holder)
    theirs = found.role if found is not None else owner_role
    return theirs != role and theirs in policy.delegates(role)


def claim(session: Session, policy: Policy, exception_id: int, *, user: str, role: str) -> dict[str, Any]:
    row, item = _item(session, policy, exception_id)
    _allowed(policy, role, item)
    if row.claimed_by not in (None, user):
        raise Conflict(f"exception {exception_id} is claimed by {row.claimed_by}; they must release it first")
    if row.claimed_by != user:
        row.claimed_by, row.claimed_at = user, dt.datetime.now(dt.UTC)
        append_event(
            session,
            EVENT_QUEUE_CLAIMED,
            actor=user,
            role=role,
            order_id=row.order_id,
            payload={"exception_id": row.id, "type": row.type, "instance": row.instance_key},
        )
    return {"id": row.id, "claimed_by": row.claimed_by, "owner_role": item["owner_role"]}


def release(session: Session, policy: Policy, exception_id: int, *, user: str, role: str) -> dict[str, Any]:
    row, item = _item(session, policy, exception_id)
    _allowed(policy, role, item)
    if row.claimed_by is None:
        raise Conflict(f"exception {exception_id} is not claimed")
    if row.claimed_by != user and not _above(session, policy, role, row.claimed_by, item["owner_role"]):
        raise Forbidden(
            f"exception {exception_id} is claimed by {row.claimed_by}; only they or a role above may release it"
        )
    previous = row.claimed_by
    row.claimed_by, row.claimed_at = None, None
    append_event(
        session,
        EVENT_QUEUE_RELEASED,
        actor=user,
        role=role,
        order_id=row.order_id,
        payload={"exception_id": row.id, "type": row.type, "was_claimed_by": previous},
    )
    return {"id": row.id, "claimed_by": None, "owner_role": item["owner_role"]}


def reassign(
    session: Session, policy: Policy, exception_id: int, *, user: str, role: str, to_role: str, reason: str
) -> dict[str, Any]:
    row, item = _item(session, policy, exception_id)
    _allowed(policy, role, item)
    if to_role not in policy.roles or policy.roles[to_role].administers_users:
        raise ToolError(f"cannot reassign to {to_role!r}: not a role that works exceptions")
    if not reason.strip():
        raise ToolError("a reassignment needs a reason")
    if not policy.may_route(row.type, to_role):
        # the policy's routing holds for every door, as for ESCALATE: a compliance hold stays with
        # the compliance officer, a credit hold with credit
        raise Forbidden(
            f"{row.type} may not be routed to {to_role}: the policy routes it to "
            f"{', '.join(policy.routes_for(row.type)) or 'nobody'}"
        )
    before = item["owner_role"]
    if to_role == before:
        raise Conflict(f"exception {exception_id} is already in the {to_role} queue")
    if row.claimed_by not in (None, user) and not _above(session, policy, role, row.claimed_by, before):
        # moving it would drop their claim: only they, or a role above theirs, may
        raise Conflict(f"exception {exception_id} is claimed by {row.claimed_by}; they must release it first")
    row.assigned_role, row.claimed_by, row.claimed_at = to_role, None, None
    row.escalated_to, row.escalated_at = None, None
    append_event(
        session,
        EVENT_QUEUE_REASSIGNED,
        actor=user,
        role=role,
        order_id=row.order_id,
        payload={
            "exception_id": row.id,
            "type": row.type,
            "from_role": before,
            "to_role": to_role,
            "reason": reason.strip(),
        },
    )
    return {"id": row.id, "owner_role": to_role}


def escalate_breached(session: Session, policy: Policy, now: dt.datetime | None = None) -> int:
    """Escalate, once, every open exception whose SLA is breached; return how many (caller commits)."""
    now = now or dt.datetime.now(dt.UTC)
    count = 0
    for item in load_queue(session, policy, now=now, limit=10**9, recommendations=False):
        if not item["sla_breached"] or item["escalated_to"] is not None:
            continue
        to = policy.queues.escalation(item["owner_role"])
        row = session.get(ExceptionRecord, item["id"])
        if row is None:
            continue
        row.escalated_to, row.escalated_at = to, now
        append_event(
            session,
            EVENT_SLA_ESCALATED,
            actor="policy",
            order_id=row.order_id,
            payload={
                "exception_id": row.id,
                "type": row.type,
                "owner_role": item["owner_role"],
                "escalated_to": to,
                "sla_due_at": item["sla_due_at"].isoformat(),
            },
        )
        count += 1
    return count
