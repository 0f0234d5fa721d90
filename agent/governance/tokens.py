"""API tokens kept in the database: issued, listed and revoked while the service runs.

A token is 256 random bits (``cpt_`` + 43 URL-safe characters), shown once when it is issued and
stored only as its SHA-256, so a copy of the database gives nobody a working token. A presented
token is hashed and looked up by its hash; the stored hash is compared again in constant time.
Revocation and expiry take effect on the next request, without a restart. Issuing and revoking
are audit events (without the token).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any, overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance import audit
from agent.governance.users import get_user
from tools.errors import NotFound, ToolError
from tools.models import ApiToken

__all__ = [
    "EVENT_TOKEN_ISSUED",
    "EVENT_TOKEN_REVOKED",
    "TOKEN_PREFIX",
    "issue_token",
    "list_tokens",
    "revoke_token",
    "token_hash",
    "username_for_token",
]

TOKEN_PREFIX = "cpt_"
EVENT_TOKEN_ISSUED = "api_token_issued"
EVENT_TOKEN_REVOKED = "api_token_revoked"
MAX_DAYS = 366


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).hexdigest()


@overload
def _aware(value: dt.datetime) -> dt.datetime: ...
@overload
def _aware(value: dt.datetime | None) -> dt.datetime | None: ...
def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite gives naive values back: they were stored as UTC


def _as_dict(row: ApiToken, now: dt.datetime) -> dict[str, Any]:
    expires, revoked = _aware(row.expires_at), _aware(row.revoked_at)
    state = "revoked" if revoked else ("expired" if expires is not None and expires <= now else "active")
    return {
        "id": row.id,
        "username": row.username,
        "label": row.label,
        "state": state,
        "created_by": row.created_by,
        "created_at": _aware(row.created_at).isoformat(timespec="seconds"),
        "expires_at": expires and expires.isoformat(timespec="seconds"),
        "revoked_at": revoked and revoked.isoformat(timespec="seconds"),
    }


def issue_token(
    session: Session,
    username: str,
    *,
    days: int = 90,
    label: str | None = None,
    issued_by: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """A new token for the active user ``username``: ``(token, its record)``. The caller commits.

    The token is returned once and never stored; ``days`` (1–366) until it expires.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ToolError(f"a token is valid for 1 to {MAX_DAYS} days, not {days}")
    user = get_user(session, username)
    if not user.get("active", True):
        raise ToolError(f"user {username} is not active")
    now = now or dt.datetime.now(dt.UTC)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=token_hash(token),
        username=user["username"],
        label=(label or None) and label[:64],
        created_by=issued_by and issued_by[:64],
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.append_event(
        session,
        EVENT_TOKEN_ISSUED,
        actor=issued_by,
        payload={"token_id": row.id, "username": row.username, "label": row.label, "days": days},
    )
    return token, _as_dict(row, now)


def revoke_token(
    session: Session, token_id: int, *, revoked_by: str | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Revoke token ``token_id`` (idempotent); refused on the next request. The caller commits."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("API token", str(token_id))
    now = now or dt.datetime.now(dt.UTC)
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        audit.append_event(
            session,
            EVENT_TOKEN_REVOKED,
            actor=revoked_by,
            payload={"token_id": row.id, "username": row.username},
        )
    return _as_dict(row, now)


def list_tokens(session: Session, *, username: str | None = None) -> list[dict[str, Any]]:
    """Every token's record (never the token), oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if username is not None:
        query = query.where(ApiToken.username == username)
    now = dt.datetime.now(dt.UTC)
    return [_as_dict(row, now) for row in session.scalars(query)]


def username_for_token(session: Session, token: str, *, now: dt.datetime | None = None) -> str | None:
    """The user of an active token, or None (unknown, revoked or expired: the caller says which not)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_hash(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    expires = _aware(row.expires_at)
    if expires is not None and expires <= (now or dt.datetime.now(dt.UTC)):
        return None
    return row.username
