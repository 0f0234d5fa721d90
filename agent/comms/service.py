"""Notices from due to filed: draft each due notice and file it for approval; a planner's ask; views.

:func:`draft_due` takes every ``due`` notice (recorded by the executor, ``agent.comms.due``),
has it drafted (``agent.comms.draft``) and files it as a ``NOTIFY_CUSTOMER`` or ``REQUEST_SUPPLIER``
request through the approval step (``agent.governance.requests``) with the facts as its evidence.
A notice the executor recorded is filed by the copilot itself, so any holder of the approver role
may decide it; a planner's own ask (:func:`ask_notice`) is filed in their name, so they cannot
approve it themselves. A worker claims a notice with a lease before drafting, so two workers never
file the same notice twice; one that died mid-draft leaves a lease that expires.

:func:`list_messages` and :func:`get_message` are what the CLI, the API and the panel show: each
notice with its draft, its request's status and its delivery.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent.comms.draft import draft_notice
from agent.comms.grounding import message_errors, other_parties
from agent.governance import audit
from agent.governance.requests import decide, request_action, write_session
from agent.governance.users import require_user
from agent.llm import LLM
from agent.policy import OrderNumbers, Policy
from agent.triage.order_numbers import filter_id, order_id_of
from tools.errors import Conflict, NotFound, ToolError
from tools.models import ENUMS, ActionRequest, Notice, Order, OutboxMessage
from tools.notices import customer_facts, stale_facts
from tools.outbox import COPILOT_REQUESTER
from tools.sites import order_condition, order_visible

__all__ = [
    "DRAFT_LEASE_S",
    "MESSAGE_STATUSES",
    "ask_notice",
    "draft_due",
    "edit_message",
    "get_message",
    "list_messages",
    "message_for_request",
]

log = logging.getLogger(__name__)

DRAFT_LEASE_S = 600  # longer than two model calls at the longest timeout a deployment sets
_ACTION = {"customer": "NOTIFY_CUSTOMER", "supplier": "REQUEST_SUPPLIER"}
# The status a message shows (what ``list_messages`` filters on): its delivery's, else its
# request's, else the notice's own.
MESSAGE_STATUSES: tuple[str, ...] = tuple(
    sorted({s for e in ("outbox_status", "request_status", "notice_status") for s in ENUMS[e]})
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _notice(s: Session, notice_id: int) -> Notice:
    notice = s.get(Notice, notice_id)
    if notice is None:
        raise NotFound("message", str(notice_id))
    return notice


def _claim(factory: sessionmaker[Session], notice_id: int, lease_s: float) -> bool:
    """Take the notice for drafting unless another worker holds a live claim (compare-and-set)."""
    now = _now()
    with factory() as s, s.begin():
        took: CursorResult = s.execute(  # type: ignore[assignment]
            update(Notice)
            .where(
                Notice.id == notice_id,
                Notice.status == "due",
                or_(Notice.drafted_at.is_(None), Notice.drafted_at < now - dt.timedelta(seconds=lease_s)),
            )
            .values(drafted_at=now)
        )
        return took.rowcount == 1


def _file(factory: sessionmaker[Session], policy: Policy, notice_id: int, llm: LLM | None) -> dict[str, Any]:
    with factory() as s:
        notice = _notice(s, notice_id)
        facts, kind = dict(notice.facts), notice.kind
        order_id, requester = notice.order_id, notice.asked_by or COPILOT_REQUESTER
        others = other_parties(s, facts)
        stale = stale_facts(s, facts)
    if stale:  # another change of the order came since it was due: its own notice tells the truth
        return _superseded(factory, notice_id, order_id, kind, stale)
    draft = draft_notice(facts, llm, other_names=others)
    target = {"order_id": facts["order_id"]} if kind == "customer" else {"po_id": facts["po_id"]}
    status, request_id, error = "drafted", None, None
    try:
        req = request_action(
            factory,
            policy,
            order_id=order_id or "",
            requested_by=requester,
            action=_ACTION[kind],
            params={**target, "subject": draft["subject"], "body": draft["body"]},
            source="copilot",
            facts=facts,
        )
        request_id = req["id"]
        if req.get("repeated"):
            # the same words to the same recipient already wait as a request (the approval step
            # files no twin): that one is the message; this notice is not filed a second time
            status, request_id = "failed", None
            error = (
                f"the same message already waits as request {req['id']} ({req['status']}): not filed twice"
            )
        elif req["status"] == "blocked":
            status, error = "failed", "; ".join(req["guard"]["reasons"])
    except ToolError as exc:
        status, error = "failed", str(exc)
    with write_session(factory) as s:
        notice = _notice(s, notice_id)
        notice.status, notice.request_id, notice.error = status, request_id, error
        notice.draft = {k: v for k, v in draft.items()}
        notice.drafted_at = _now()
        audit.append_event(
            s,
            "notice_drafted" if status == "drafted" else "notice_failed",
            actor="copilot",
            order_id=order_id,
            request_id=request_id,
            payload={
                "notice_id": notice_id,
                "kind": kind,
                "drafted_by": draft["drafted_by"],
                "fallback": draft["fallback"],
                "reason": draft["reason"],
                "first_try_grounded": draft["first_try_grounded"],
                "model": draft["model"],
                "error": error,
            },
        )
        if draft["fallback"]:
            audit.append_event(
                s,
                audit.EVENT_LLM_FALLBACK,
                actor="copilot",
                order_id=order_id,
                request_id=request_id,
                payload={"what": "notice draft", "reason": draft["reason"], "model": draft["model"]},
            )
    return _view_one(factory, notice_id)


def _superseded(
    factory: sessionmaker[Session], notice_id: int, order_id: str | None, kind: str, stale: list[str]
) -> dict[str, Any]:
    """A due notice whose facts no longer hold is not drafted nor filed: it fails with what changed."""
    error = "superseded before it was drafted: " + "; ".join(stale)
    with write_session(factory) as s:
        notice = _notice(s, notice_id)
        notice.status, notice.error, notice.drafted_at = "failed", error, _now()
        audit.append_event(
            s,
            "notice_failed",
            actor="copilot",
            order_id=order_id,
            payload={"notice_id": notice_id, "kind": kind, "error": error},
        )
    return _view_one(factory, notice_id)


def draft_due(
    factory: sessionmaker[Session],
    policy: Policy,
    llm: LLM | None,
    *,
    limit: int | None = None,
    lease_s: float = DRAFT_LEASE_S,
    on_progress=None,
) -> list[dict[str, Any]]:
    """Draft and file every due notice (oldest first, at most ``limit``); the notices filed."""
    with factory() as s:
        query = select(Notice.id).where(Notice.status == "due").order_by(Notice.id)
        ids = list(s.scalars(query.limit(limit) if limit else query))
    done = []
    for notice_id in ids:
        if _claim(factory, notice_id, lease_s):
            done.append(_file(factory, policy, notice_id, llm))
        if on_progress is not None:
            on_progress()
    return done


def ask_notice(
    factory: sessionmaker[Session],
    policy: Policy,
    llm: LLM | None,
    *,
    order_id: str,
    username: str,
) -> dict[str, Any]:
    """A person asks for a note to the customer about ``order_id`` (chat, panel, CLI).

    A notice already due for the order is drafted now; one already drafted and waiting for approval
    is returned as it is (no second note); otherwise a notice with the order's current facts (its
    lines, their status, the promised date) is drafted and filed in the asker's name."""
    with write_session(factory) as s:
        user = require_user(s, username)
        # read as typed (so-100042); another site's order: as unknown
        order_id = order_id_of(s, order_id or "", policy.order_numbers)
        pending = s.scalar(
            select(Notice)
            .join(ActionRequest, ActionRequest.id == Notice.request_id)
            .where(
                Notice.order_id == order_id,
                Notice.kind == "customer",
                ActionRequest.status == "pending_approval",
            )
            .order_by(Notice.id.desc())
        )
        if pending is not None:
            return _view(s, pending)
        due = s.scalar(
            select(Notice)
            .where(Notice.order_id == order_id, Notice.kind == "customer", Notice.status == "due")
            .order_by(Notice.id)
        )
        if due is None:
            due = Notice(
                kind="customer",
                order_id=order_id,
                reason=f"asked by {user['username']}",
                facts={**customer_facts(s, order_id), "change": "order_status"},
                status="due",
                asked_by=user["username"],
                due_at=_now(),
            )
            s.add(due)
            s.flush()
        notice_id = due.id
    if not _claim(factory, notice_id, DRAFT_LEASE_S):
        return _view_one(factory, notice_id)  # another worker is drafting it right now
    return _file(factory, policy, notice_id, llm)


def edit_message(
    factory: sessionmaker[Session],
    policy: Policy,
    notice_id: int,
    *,
    username: str,
    subject: str | None = None,
    body: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """An approver approves the message with an edited subject and/or body.

    The edited text passes the same check as a draft, against the facts the message was drafted
    from; the approval step checks the approver's role first, then refuses text with problems
    (:class:`GuardBlocked`, logged as a refused decision; nothing changes), else guards it again,
    records the decision and the diff (``message_edited``) and executes it."""
    changes = {k: v for k, v in (("subject", subject), ("body", body)) if v is not None}
    if not changes:
        raise ToolError("an edit needs a new subject or body")
    with factory() as s:
        notice = s.get(Notice, notice_id)
        if notice is None or not order_visible(s, notice.order_id):
            raise NotFound("message", str(notice_id))
        req = s.get(ActionRequest, notice.request_id) if notice.request_id else None
        if req is None:
            raise Conflict(f"message {notice_id} has no request to edit ({notice.status})")
        problems = message_errors(s, req.action, {**req.params, **changes}, req.evidence)
        request_id = req.id
    decide(
        factory,
        policy,
        request_id,
        username=username,
        decision="edit",
        params=changes,
        reason=reason,
        text_checked=True,
        text_problems=problems,
    )
    return get_message(factory, notice_id)


# --- views ---------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()


def _delivery(m: OutboxMessage | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "outbox_id": m.id,
        "status": m.status,
        "recipient": m.recipient,
        "message_id": m.message_id,
        "attempts": m.attempts,
        "last_error": m.last_error,
        "transport": m.transport,
        "queued_at": _iso(m.created_at),
        "sent_at": _iso(m.sent_at),
        "subject": m.subject,
        "body": m.body,
    }


def _view(s: Session, n: Notice) -> dict[str, Any]:
    req = s.get(ActionRequest, n.request_id) if n.request_id else None
    out = s.scalar(select(OutboxMessage).where(OutboxMessage.request_id == n.request_id)) if req else None
    order = s.get(Order, n.order_id) if n.order_id else None
    draft = n.draft or {}
    return {
        "id": n.id,
        "kind": n.kind,
        "order_id": n.order_id,
        "po_id": n.po_id,
        "status": out.status if out is not None else (req.status if req is not None else n.status),
        "notice_status": n.status,
        "reason": n.reason,
        "trigger": {"request_id": n.trigger_request_id, "action": n.trigger_action},
        "exception_type": n.exception_type,
        "asked_by": n.asked_by,
        "facts": n.facts,
        "customer_note": order.customer_note if order is not None and n.kind == "customer" else None,
        "draft": {
            "subject": draft.get("subject"),
            "body": draft.get("body"),
            "language": draft.get("language"),
            "drafted_by": draft.get("drafted_by"),
            "fallback": draft.get("fallback"),
            "reason": draft.get("reason"),
            "first_try_grounded": draft.get("first_try_grounded"),
            "model": draft.get("model"),
            "usage": draft.get("usage"),
        }
        if n.draft
        else None,
        "request": None
        if req is None
        else {
            "id": req.id,
            "action": req.action,
            "status": req.status,
            "approver_role": req.approver_role,
            "requested_by": req.requested_by,
            "subject": req.params.get("subject"),
            "body": req.params.get("body"),
            # the text to send is no longer the draft: an approver edited it (message_edited)
            "edited": bool(n.draft)
            and (req.params.get("subject"), req.params.get("body"))
            != (draft.get("subject"), draft.get("body")),
        },
        "delivery": _delivery(out),
        "error": n.error,
        "due_at": _iso(n.due_at),
        "drafted_at": _iso(n.drafted_at) if n.status != "due" else None,
    }


def _view_one(factory: sessionmaker[Session], notice_id: int) -> dict[str, Any]:
    with factory() as s:
        return _view(s, _notice(s, notice_id))


def get_message(factory: sessionmaker[Session], notice_id: int) -> dict[str, Any]:
    """One notice with its draft, its request and its delivery; :class:`NotFound` when absent."""
    with factory() as s:
        n = s.get(Notice, notice_id)
        if n is None or not order_visible(s, n.order_id):  # another site's message: as unknown
            raise NotFound("message", str(notice_id))
        return _view(s, n)


def message_for_request(factory: sessionmaker[Session], request_id: int) -> dict[str, Any] | None:
    """The message a NOTIFY_CUSTOMER / REQUEST_SUPPLIER request was filed for, if any."""
    with factory() as s:
        n = s.scalar(select(Notice).where(Notice.request_id == request_id))
        return _view(s, n) if n is not None and order_visible(s, n.order_id) else None


def list_messages(
    factory: sessionmaker[Session],
    *,
    order_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_numbers: OrderNumbers | None = None,
) -> list[dict[str, Any]]:
    """Notices newest first; ``status`` filters on the shown status (due, pending_approval,
    queued, sent, failed, rejected, ...), ``order_id`` on the order (read as typed, ``so-100042``,
    with the policy's ``order_numbers``)."""
    query = select(Notice).order_by(Notice.id.desc())
    with factory() as s:
        if order_id:
            query = query.where(Notice.order_id == filter_id(s, order_id, order_numbers))
        rows = [_view(s, n) for n in s.scalars(query.where(order_condition(s, Notice.order_id)))]
    if status:
        rows = [r for r in rows if r["status"] == status]
    return rows[max(0, offset) : max(0, offset) + max(0, limit)]
