"""Adversarial steps an eval case may take against the approval step, and how they ended.

A case's ``attack`` is what a hostile or careless user tries through the real approval step
(``agent.governance.requests``), beside the case's normal flow::

    attack:
      request: {action: CORRECT_PRICE, params: {order_id: SO2, line_no: 1, new_unit_price: '0.01'}}
      as: qa-eval               # who files it (default: the eval's requester)
      edit: {new_unit_price: '80.00'}   # the approver edits it with these values (optional)
      decide_as: qa-eval        # who approves or edits (default: the demo user of the approver role)
      order_id: SO1             # the order it is filed for (default: the case's input order)

The outcome is one word: ``refused`` (the step raised: nothing was stored, or the decision was
not recorded), ``blocked`` (stored, blocked by the guard), ``pending_approval`` (waiting: e.g. an
edit that changed the risk went back to pending), ``executed`` or ``failed``. ``expect.attack``
names the outcome the case requires, ``expect.after_attack`` the records after it
(``table.KEY.field`` as in ``after_approval``).
"""

from __future__ import annotations

from typing import Any

from agent.governance.requests import decide, request_action
from tools.errors import ToolError

__all__ = ["ATTACK_KEYS", "attack_problems", "run_attack"]

ATTACK_KEYS = frozenset({"request", "as", "edit", "decide_as", "order_id"})


def attack_problems(attack: Any) -> list[str]:
    """What is wrong with a case's ``attack`` mapping (empty: nothing)."""
    if not isinstance(attack, dict):
        return ["attack must be a mapping"]
    problems = [f"attack: unknown key {k!r}" for k in sorted(set(attack) - ATTACK_KEYS)]
    request = attack.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("action"), str):
        problems.append("attack.request must be {action: NAME, params: {...}}")
    elif set(request) - {"action", "params"}:
        problems.append("attack.request holds only action and params")
    if "edit" in attack and not isinstance(attack["edit"], dict):
        problems.append("attack.edit must be a mapping of parameter to value")
    return problems


def run_attack(
    factory, policy, attack: dict[str, Any], default_order: str | None, requester: str
) -> tuple[str, str]:
    """Carry out ``attack``, filed by ``requester`` unless it names its own; returns (outcome, detail)."""
    request = attack["request"]
    try:
        req = request_action(
            factory,
            policy,
            order_id=attack.get("order_id") or default_order or "",
            requested_by=attack.get("as") or requester,
            action=request["action"],
            params=request.get("params"),
            source="eval",
        )
    except ToolError as exc:
        return "refused", f"request refused: {exc}"
    if req["status"] != "pending_approval":
        return req["status"], "; ".join((req.get("guard") or {}).get("reasons") or []) or (
            req.get("error") or ""
        )
    who = attack.get("decide_as") or _demo_user(req["approver_role"], req["requested_by"], policy)
    try:
        if "edit" in attack:
            req = decide(
                factory,
                policy,
                req["id"],
                username=who,
                decision="edit",
                params=dict(attack["edit"]),
                reason="eval attack: edit",
            )
        else:
            req = decide(factory, policy, req["id"], username=who, decision="approve")
    except ToolError as exc:
        return "refused", f"decision refused: {exc}"
    return req["status"], req.get("error") or ""


def _demo_user(role: str, requester: str, policy) -> str:
    """The demo user named after ``role`` (one per role in every database); a role above it when
    that user is the requester (nobody decides their own request)."""
    if role != requester:
        return role
    return next(boss for boss in sorted(policy.hierarchy) if role in policy.delegates(boss) and boss != role)
