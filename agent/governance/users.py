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
from sqlalchemy.orm import Session, sessionmaker

from agent.governance.audit import EVENT_USER_ADDED, EVENT_USER_SCOPED, append_event
from agent.policy import CONTRACT_ROLES
from tools.columns import column_problems
from tools.errors import Conflict, Forbidden, NotFound, ToolError
from tools.models import User, UserScope
from tools.sites import Scope, check_scope_names, scoped

__all__ = [
    "POLICY_ACTOR",
    "RESERVED_NAMES",
    "add_user",
    "factory_for",
    "get_user",
    "list_users",
    "require_user",
    "set_scope",
    "user_scope",
]

POLICY_ACTOR = "policy"  # decided_by of an auto-approval
RESERVED_NAMES = frozenset({POLICY_ACTOR, "system", "copilot"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _as_dict(user: User, scope: Scope | None = None) -> dict[str, Any]:
    scope = scope if scope is not None else Scope()
    return {
        "username": user.username,
        "role": user.role,
        "display_name": user.display_name,
        "active": user.active,
        "created_at": user.created_at,
        "regions": sorted(scope.regions),
        "warehouses": sorted(scope.warehouses),
    }


def user_scope(session: Session, username: str) -> Scope:
    """The sites ``username`` is limited to (``Scope()``, every site, when none are set)."""
    rows = session.execute(
        select(UserScope.kind, UserScope.value).where(UserScope.username == (username or "").strip().lower())
    ).all()
    return Scope.of((v for k, v in rows if k == "region"), (v for k, v in rows if k == "warehouse"))


def factory_for(factory: sessionmaker[Session], username: str | None) -> sessionmaker[Session]:
    """``factory`` limited to ``username``'s sites (``factory`` itself for an unscoped or unknown
    user: who may act at all is decided elsewhere, by :func:`require_user`)."""
    if not username:
        return factory
    with factory() as session:
        return scoped(factory, user_scope(session, username))


def set_scope(
    session: Session,
    username: str,
    *,
    regions: list[str] | None = None,
    warehouses: list[str] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Limit a user to ``regions`` and/or ``warehouses`` (both empty: every site again).

    Replaces the user's scope; names must exist in the warehouses table (:class:`ToolError`
    otherwise); logged to the audit chain with the old and new scope. Inside the caller's transaction.
    """
    user = session.get(User, (username or "").strip().lower())
    if user is None:
        raise NotFound("user", username)
    new = Scope.of(regions or (), warehouses or ())
    check_scope_names(session, new)
    old = user_scope(session, user.username)
    session.query(UserScope).filter(UserScope.username == user.username).delete()
    session.add_all(
        [UserScope(username=user.username, kind="region", value=r) for r in sorted(new.regions)]
        + [UserScope(username=user.username, kind="warehouse", value=w) for w in sorted(new.warehouses)]
    )
    session.flush()
    append_event(
        session,
        EVENT_USER_SCOPED,
        actor=actor,
        payload={"username": user.username, "before": old.as_payload(), "after": new.as_payload()},
    )
    return _as_dict(user, new)


def get_user(session: Session, username: str) -> dict[str, Any]:
    """The user named ``username``; raises :class:`NotFound`."""
    user = session.get(User, (username or "").strip().lower())
    if user is None:
        raise NotFound("user", username)
    return _as_dict(user, user_scope(session, user.username))


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
    scopes: dict[str, tuple[list[str], list[str]]] = {}
    for name, kind, value in session.execute(select(UserScope.username, UserScope.kind, UserScope.value)):
        scopes.setdefault(name, ([], []))[0 if kind == "region" else 1].append(value)
    return [
        _as_dict(u, Scope.of(*scopes.get(u.username, ([], []))))
        for u in session.scalars(select(User).order_by(User.role, User.username))
    ]
