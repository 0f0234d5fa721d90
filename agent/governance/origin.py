"""Who is asking, and through which door: recorded in every audit event appended on their behalf.

The CLI acts with the database's authority and its ``--as`` is a claim, so its events also carry
the operating-system account and the host the command ran on; API and panel events carry the
signed-in user. A door sets the origin for the work it does (:func:`acting`); ``append_event``
adds it to each event's payload as ``"origin"``, so a triage, a request or a decision names who
asked even when the acting component is the copilot itself.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass

__all__ = ["Origin", "acting", "cli_origin", "current_origin", "set_origin", "unset_origin"]


@dataclass(frozen=True)
class Origin:
    """``door``: cli, api or panel; ``user``: the signed-in or ``--as`` user; the OS account and host for the
    CLI; ``request_id``: the HTTP request's ``X-Request-ID`` (API), which its log lines carry too."""

    door: str
    user: str | None = None
    os_user: str | None = None
    host: str | None = None
    request_id: str | None = None

    def as_payload(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}


_CURRENT: ContextVar[Origin | None] = ContextVar("copilot_origin", default=None)


def current_origin() -> Origin | None:
    return _CURRENT.get()


def set_origin(origin: Origin | None) -> Token:
    """Set the origin for the rest of this context; returns the token :func:`unset_origin` takes."""
    return _CURRENT.set(origin)


def unset_origin(token: Token) -> None:
    _CURRENT.reset(token)


@contextmanager
def acting(origin: Origin | None) -> Iterator[Origin | None]:
    token = _CURRENT.set(origin)
    try:
        yield origin
    finally:
        _CURRENT.reset(token)


def _os_account() -> str:
    # The effective uid's name, not $USER or $LOGNAME, which the caller can set to anything.
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid:{os.geteuid()}"


def cli_origin(user: str | None = None) -> Origin:
    """The origin of a command-line process: the OS account it runs as and the host's name."""
    return Origin(door="cli", user=user, os_user=_os_account()[:64], host=socket.gethostname()[:255])
