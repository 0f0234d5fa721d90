"""People who request and decide actions, each with one role of the policy file.

Every database has one demo user per role, named after the role (``planner``, ``csr``, …,
``admin``): migration 0003 creates them, ``tools.demo.reset`` keeps them. ``policy`` is reserved:
it is the name auto-approvals are recorded under.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance.audit import EVENT_USER_ADDED, append_event
from agent.policy import CONTRACT_ROLES
from tools.columns import column_problems
from tools.errors import Conflict, Forbidden, NotFound, ToolError
from tools.models import User

__all__ = ["POLICY_ACTOR", "RESERVED_NAMES", "add_user", "get_user", "list_users", "require_user"]

POLICY_ACTOR = "policy"  # decided_by of an auto-approval
RESERVED_NAMES = frozenset({POLICY_ACTOR, "system", "copilot"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _as_dict(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "display_name": user.display_name,
        "active": user.active,
        "created_at": user.created_at,
    }


def get_user(session: Session, username: str) -> dict[str, Any]:
    """The user named ``username``; raises :class:`NotFound`."""
    user = session.get(User, (username or "").strip().lower())
    if user is None:
        raise NotFound("user", username)
    return _as_dict(user)


def require_user(session: Session, username: str) -> dict[str, Any]:
    """An active user, or :class:`Forbidden` naming why not (unknown or inactive)."""
    try:
        user = get_user(session, username)
    except NotFound:
        raise Forbidden(f"unknown user {username!r}: `copilot users list` shows who exists") from None
    if not user["active"]:
        raise Forbidden(f"user {username!r} is inactive")
    return user


def add_user(
    session: Session,
    username: str,
    role: str,
    display_name: str | None = None,
    *,
    roles: frozenset[str] | set[str] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Create a user (inside the caller's transaction, logged to the audit chain).

    ``roles``: the roles allowed (default the ten of the contract; pass ``set(policy.roles)`` for
    a policy that declares more). Raises :class:`ToolError` for a bad name or role,
    :class:`Conflict` when the name exists.
    """
    name = (username or "").strip().lower()
    allowed = frozenset(roles) if roles is not None else frozenset(CONTRACT_ROLES)
    if not _NAME.match(name):
        shown = username if len(username or "") <= 64 else f"{username[:61]}..."
        raise ToolError(f"user name {shown!r} must be 1-64 lowercase letters, digits, '.', '_' or '-'")
    too_long = column_problems("display_name", User.__table__.c.display_name, display_name or "")
    if too_long:
        raise ToolError(too_long[0])
    if name in RESERVED_NAMES:
        raise Forbidden(f"user name {name!r} is reserved")
    if role not in allowed:
        raise ToolError(f"unknown role {role!r}; roles: {', '.join(sorted(allowed))}")
    if session.get(User, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(
        username=name, role=role, display_name=display_name, active=True, created_at=dt.datetime.now(dt.UTC)
    )
    session.add(user)
    session.flush()
    append_event(session, EVENT_USER_ADDED, actor=actor, payload={"username": name, "role": role})
    return _as_dict(user)


def list_users(session: Session) -> list[dict[str, Any]]:
    return [_as_dict(u) for u in session.scalars(select(User).order_by(User.role, User.username))]
