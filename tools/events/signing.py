"""Signed event requests: HMAC-SHA256 of ``"<timestamp>." + body`` with the source's secret.

A source system sends three headers with ``POST /api/v1/events``: ``X-Copilot-Source`` (its name),
``X-Copilot-Timestamp`` (Unix seconds) and ``X-Copilot-Signature`` (``sha256=<hex digest>``). The
timestamp is signed with the body, so a captured request cannot be replayed outside the window;
inside it, a replayed event is a repeated event_id, acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

__all__ = [
    "HEADER_SIGNATURE",
    "HEADER_SOURCE",
    "HEADER_TIMESTAMP",
    "SignatureError",
    "sign",
    "signed_headers",
    "verify",
]

HEADER_SOURCE = "X-Copilot-Source"
HEADER_TIMESTAMP = "X-Copilot-Timestamp"
HEADER_SIGNATURE = "X-Copilot-Signature"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)


class SignatureError(ValueError):
    """The request is not signed by a known source within the window; the message says why."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(source: str, secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The three headers a source sends with ``body`` (used by ``copilot events simulate`` and tests)."""
    ts = str(int(time.time() if now is None else now))
    return {HEADER_SOURCE: source, HEADER_TIMESTAMP: ts, HEADER_SIGNATURE: sign(secret, ts, body)}


def verify(
    secrets: dict[str, str],
    source: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    window_s: int,
    now: float | None = None,
) -> str:
    """The verified source name; raises :class:`SignatureError`. Constant-time comparison."""
    if not source or not timestamp or not signature:
        raise SignatureError(f"sign the request: {HEADER_SOURCE}, {HEADER_TIMESTAMP} and {HEADER_SIGNATURE}")
    name = source.strip().lower()
    secret = secrets.get(name)
    if secret is None:
        raise SignatureError(f"source {name!r} has no secret configured (COPILOT_EVENT_SECRETS)")
    # ASCII digits only, at most 12 (int() would also take '+', '_', spaces and 4,000-digit numbers,
    # and the signed text must be the header as sent)
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise SignatureError(f"{HEADER_TIMESTAMP} must be Unix seconds")
    if abs((time.time() if now is None else now) - int(timestamp)) > window_s:
        raise SignatureError(f"{HEADER_TIMESTAMP} is outside the {window_s} s window (a replay?)")
    presented = signature.strip().encode("utf-8", "surrogateescape")  # any bytes compare, never raise
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), presented):
        raise SignatureError("the signature does not match the body and timestamp")
    return name
