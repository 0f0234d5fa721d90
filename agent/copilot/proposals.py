"""Approval requests from chat: filed only on the user's explicit instruction, shown first, and
filed on the next turn's "yes".

A chat message files nothing by itself. When the user's own short message instructs it ("request
approval for that", "please submit the split for approval", "can you raise an approval request for
SO-100042?"), the copilot works out the concrete action and parameters from the facts, runs the
guard on them read-only, and shows them with the risk and the approver role; the thread remembers
this ``proposal``. The next message files exactly that action when it is a confirmation ("yes",
"confirm") and drops it otherwise. Filing goes through the approval step, whose guard checks the
records again at that moment: a confirmation that arrives after the facts changed is blocked with
the reasons, never filed on old facts.

A question about requests ("is there already an approval request for SO-…?"), a negation ("don't
request approval for SO-…, I only want to know what is wrong") and a pasted e-mail or note that
says "request approval" are not instructions.
"""

from __future__ import annotations

import re
from typing import Any

from agent.copilot.context import CopilotContext
from agent.governance.guard import run_guard
from agent.governance.requests import list_requests, request_action
from agent.triage.service import triage_order
from tools.db import read_only
from tools.errors import Conflict

__all__ = [
    "asks_for_approval",
    "file_proposal",
    "is_confirmation",
    "make_proposal",
    "render_proposal",
    "render_requests",
    "requests_of",
]

_CLAUSE = re.compile(r"[.;!?\n,]+|\bbut\b|\band then\b", re.IGNORECASE)
# An instruction starts its clause with the verb, after at most a polite lead-in ("please", "can you",
# "I'd like you to"): "don't request…", "is there an approval request…", "why not request…" do not.
_LEAD = (
    r"(?:(?:ok|okay|so|then|now|alright|right|good|great|thanks|yes)\s+)*"
    r"(?:(?:can|could|would|will)\s+you\s+|i(?:\s+(?:want|need|would\s+like)|['’]d\s+like)\s+(?:you\s+)?to\s+|"
    r"let['’]s\s+|go\s+ahead\s+and\s+)?(?:please\s+|kindly\s+)?"
)
_INSTRUCTION = re.compile(
    rf"^{_LEAD}(?:request|submit|raise|file|send|open|create|start|ask\s+for|seek|get)\b"
    r"[^\n]{0,40}?\b(?:approv|sign[- ]?off)\w*",
    re.IGNORECASE,
)
_CONFIRM = frozenset(
    {
        "yes",
        "y",
        "yes please",
        "yes file it",
        "yes, file it",
        "yes confirm",
        "yes, confirm",
        "confirm",
        "confirmed",
        "i confirm",
        "file it",
        "go ahead",
        "ok",
        "okay",
    }
)


def asks_for_approval(message: str) -> bool:
    """Whether the user's own words instruct filing an approval request.

    Only a short message of the user's own counts: a pasted e-mail or note (long, several lines)
    that says "request approval" is data about the order, not the user asking. Within it, a clause
    must start with the instruction (after a polite lead-in): questions about requests and
    negations do not.
    """
    text = message.strip()
    if len(text) > 240 or text.count("\n") > 1:
        return False
    return any(_INSTRUCTION.search(clause.strip()) for clause in _CLAUSE.split(text))


def is_confirmation(message: str) -> bool:
    """Whether ``message`` is a plain "yes" / "confirm" to the proposal on the table, and nothing else."""
    return " ".join(message.strip().rstrip(".!").casefold().split()) in _CONFIRM


def make_proposal(
    ctx: CopilotContext, order_id: str, action: str | None, params: dict[str, Any] | None, citations: list
) -> dict[str, Any]:
    """The action to file, concrete, with the guard's verdict on the records now (nothing written).

    ``action`` None: the order's recommendation, with its parameters as triaged now. Raises
    :class:`Conflict` when there is nothing to propose (no recommendation, no feasible parameters).
    """
    with read_only(ctx.factory) as session:
        if action is None or params is None:
            result = triage_order(session, order_id, ctx.policy, record=False)
            rec = result.get("recommendation")
            if action is None:
                if rec is None:
                    raise Conflict(
                        f"order {order_id} has no exception to act on, so no recommendation to request"
                    )
                action, params = rec["action"], dict(rec["params"])
            elif rec and rec["action"] == action:
                params = dict(rec["params"])
        if params is None:
            raise Conflict(f"{action} has no feasible parameters on {order_id}: nothing to request")
        guard = run_guard(
            session,
            ctx.policy,
            action=action,
            params=params,
            requested_by=ctx.username,
            order_id=order_id,
            partial=action == "FIX_MASTER_DATA",
        )
    return {
        "order_id": order_id,
        "action": action,
        "params": _plain(params),
        "risk": guard.risk,
        "approver_role": guard.approver_role,
        "ok": guard.ok,
        "reasons": list(guard.reasons),
        "citations": list(citations or []),
    }


def render_proposal(p: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items()) or "no parameters"
    head = f"{p['action']} on {p['order_id']} ({params})"
    if not p.get("ok", True):
        return f"I cannot file {head}: the guard would block it: " + "; ".join(p.get("reasons") or []) + "."
    who = f", to be decided by a {p['approver_role']}" if p.get("approver_role") else ""
    return (
        f"I can file this approval request: {head}, {p.get('risk')} risk{who}. "
        'Reply "yes" to file it; anything else cancels it.'
    )


def file_proposal(ctx: CopilotContext, p: dict[str, Any]) -> dict[str, Any]:
    """File exactly the proposed action with the approval step (its guard checks the records again)."""
    return request_action(
        ctx.factory,
        ctx.policy,
        order_id=p["order_id"],
        requested_by=ctx.username or "unknown",
        action=p["action"],
        params=dict(p["params"]),
        source="chat",
        citations=p.get("citations") or None,
        thread_id=ctx.thread_id,
    )


def requests_of(ctx: CopilotContext, order_id: str) -> dict[str, Any]:
    """The approval requests filed for an order, newest first (a READ: "is there already a request?")."""
    rows = list_requests(ctx.factory, order_id=order_id, limit=20, policy=ctx.policy)
    keep = ("id", "action", "params", "status", "risk", "approver_role", "requested_by")
    return {"order_id": order_id, "requests": [{k: r.get(k) for k in keep} for r in rows]}


def render_requests(found: dict[str, Any]) -> str:
    rows = found.get("requests") or []
    if not rows:
        return f"There is no approval request for {found['order_id']}."
    lines = [f"Approval requests for {found['order_id']} ({len(rows)}, newest first):"]
    for r in rows:
        who = f", decided by a {r['approver_role']}" if r.get("approver_role") else ""
        lines.append(f"- request {r['id']}: {r['action']}, status {r['status']}{who}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
