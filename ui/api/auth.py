"""Bearer tokens of the API and the panel: token → user → role.

Where the tokens come from (read once when the app is created):

- ``COPILOT_API_TOKENS``: ``token=username`` pairs separated by commas (operators' own tokens);
- else ``<COPILOT_VAR_DIR>/api_tokens.json``, written by ``copilot demo``: one random token per demo
  user (one user per role, named after the role), each with an expiry date; re-read when it
  changes, so a token removed from it is refused without a restart.

Tokens issued with ``copilot users token issue`` live hashed in the database
(``agent.governance.tokens``) and are checked first by ``Services.authenticate``.

The user's role comes from the ``users`` table (``agent.governance.users``), so a token names a
person, never a role: a deactivated or deleted user is refused even with a valid token. Tokens are
compared in constant time against every configured token, and never logged or echoed: an error
says "invalid or expired token", not which.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from agent.governance.users import get_user
from tools.errors import NotFound
from tools.sites import ALL, Scope

__all__ = [
    "TOKENS_FILE",
    "AuthError",
    "Principal",
    "TokenConfigError",
    "TokenStore",
    "load_token_store",
    "parse_token_pairs",
    "read_demo_tokens",
    "resolve_user",
    "write_demo_tokens",
]

TOKENS_FILE = "api_tokens.json"
DEMO_TOKEN_DAYS = 30
# 22 URL-safe characters carry 128 bits when drawn at random (`secrets.token_urlsafe(16)`); the
# demo's tokens have 192 bits, `copilot users token issue` gives 256.
_MIN_TOKEN_CHARS = 22


class TokenConfigError(ValueError):
    """COPILOT_API_TOKENS or the tokens file is malformed; the message names it, never a token."""


class AuthError(Exception):
    """A request without a valid token (HTTP 401). The message never contains the token."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user a token belongs to, the role the users table gives them, and the
    sites they are limited to (``tools.sites``; :data:`~tools.sites.ALL` when none)."""

    username: str
    role: str
    display_name: str | None = None
    scope: Scope = ALL


@dataclass(frozen=True)
class _Entry:
    token: bytes
    username: str
    expires_at: dt.datetime | None


class TokenStore:
    """The configured tokens. ``username_for`` checks a presented token against all of them."""

    def __init__(
        self, entries: Iterable[_Entry], *, source: str, path: Path | None = None, mtime_ns: int | None = None
    ) -> None:
        self._entries = tuple(entries)
        self.source = source  # "COPILOT_API_TOKENS", the file path, or "none"
        self._path, self._mtime_ns = path, mtime_ns

    def reloaded(self) -> TokenStore:
        """This store, or a fresh one when its tokens file changed (or appeared) since it was read."""
        if self._path is None:
            return self
        try:
            mtime = self._path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime == self._mtime_ns:
            return self
        if mtime is None:
            return TokenStore((), source="none", path=self._path, mtime_ns=None)
        return TokenStore(_read_file(self._path), source=str(self._path), path=self._path, mtime_ns=mtime)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # never the tokens
        return f"TokenStore({len(self._entries)} tokens from {self.source})"

    @property
    def usernames(self) -> list[str]:
        return sorted({e.username for e in self._entries})

    def username_for(self, token: str | None, *, now: dt.datetime | None = None) -> str:
        """The user of ``token``; :class:`AuthError` when it is missing, unknown or expired.

        Every configured token is compared (``hmac.compare_digest``), so the time taken does not
        depend on which token, or how much of one, matched.
        """
        if not token:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        presented = token.strip().encode("utf-8", "surrogateescape")
        match: _Entry | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.token, presented):
                match = entry
        if match is None:
            raise AuthError("invalid or expired token")
        if match.expires_at is not None and (now or dt.datetime.now(dt.UTC)) >= match.expires_at:
            raise AuthError("invalid or expired token")
        return match.username


def parse_token_pairs(value: str) -> list[_Entry]:
    """``"tok1=alice,tok2=bob"`` → entries. Malformed pairs are named by position, not content."""
    entries: list[_Entry] = []
    for n, pair in enumerate((p for p in value.split(",") if p.strip()), 1):
        token, sep, username = pair.strip().partition("=")
        token, username = token.strip(), username.strip()
        if not sep or not token or not username:
            raise TokenConfigError(f"COPILOT_API_TOKENS: pair {n} is not 'token=username'")
        if len(token) < _MIN_TOKEN_CHARS:
            raise TokenConfigError(
                f"COPILOT_API_TOKENS: the token of pair {n} (user {username}) is shorter than {_MIN_TOKEN_CHARS} characters"
            )
        entries.append(_Entry(token.encode("utf-8"), username, None))
    return entries


def _parse_time(value: Any, where: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise TokenConfigError(f"{where}: expires_at is not an ISO date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _read_file(path: Path) -> list[_Entry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenConfigError(f"{path}: cannot read the API tokens file ({type(exc).__name__})") from exc
    rows = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise TokenConfigError(f'{path}: expected {{"tokens": [{{"username", "token", "expires_at"}}, ...]}}')
    entries = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("token") or not row.get("username"):
            raise TokenConfigError(f"{path}: entry {n} needs a username and a token")
        entries.append(
            _Entry(
                str(row["token"]).encode("utf-8"),
                str(row["username"]),
                _parse_time(row.get("expires_at"), f"{path} entry {n}"),
            )
        )
    return entries


def load_token_store(api_tokens: str, var_dir: Path | str) -> TokenStore:
    """The tokens of ``COPILOT_API_TOKENS`` if set, else those of ``<var_dir>/api_tokens.json``."""
    if api_tokens.strip():
        return TokenStore(parse_token_pairs(api_tokens), source="COPILOT_API_TOKENS")
    path = Path(var_dir) / TOKENS_FILE
    if path.exists():
        return TokenStore(_read_file(path), source=str(path), path=path, mtime_ns=path.stat().st_mtime_ns)
    return TokenStore((), source="none", path=path, mtime_ns=None)


def write_demo_tokens(
    var_dir: Path | str,
    usernames: Iterable[str],
    *,
    days: int = DEMO_TOKEN_DAYS,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Write ``<var_dir>/api_tokens.json`` with a fresh random token for each user (file mode 0600).

    Returns ``{username: token}`` for the demo to print. Tokens expire after ``days``.
    """
    now = now or dt.datetime.now(dt.UTC)
    expires = (now + dt.timedelta(days=days)).isoformat(timespec="seconds")
    tokens = {u: secrets.token_urlsafe(24) for u in sorted(set(usernames))}
    path = Path(var_dir) / TOKENS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"tokens": [{"username": u, "token": t, "expires_at": expires} for u, t in tokens.items()]}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=2)
    os.replace(tmp, path)
    return tokens


def read_demo_tokens(var_dir: Path | str) -> dict[str, str]:
    """``{username: token}`` from the demo tokens file (empty when there is none)."""
    path = Path(var_dir) / TOKENS_FILE
    if not path.exists():
        return {}
    return {e.username: e.token.decode() for e in _read_file(path)}


def resolve_user(session: Session, username: str) -> Principal:
    """The active user ``username`` with their role; :class:`AuthError` when there is none."""
    try:
        user = get_user(session, username)
    except NotFound:
        raise AuthError("invalid or expired token") from None
    if not user.get("active", True):
        raise AuthError("invalid or expired token")
    return Principal(
        username=user["username"],
        role=user["role"],
        display_name=user.get("display_name"),
        scope=Scope.of(user.get("regions") or (), user.get("warehouses") or ()),
    )
