"""The audit chain's key and its signed checkpoints.

Anyone who can write the database could delete or edit audit events and recompute every plain
SHA-256 hash. Keying the chain with an HMAC key that lives outside the database (the environment,
or a file beside it) takes that away: without the key nobody can forge an event hash.

Where the key comes from: ``COPILOT_AUDIT_KEY`` (at least 32 characters; production sets it from its
secret store), else ``<COPILOT_VAR_DIR>/audit_key`` (written with mode 0600 by ``copilot demo``),
else there is none and the chain stays plain SHA-256 (verification says so).

Signed checkpoints of the chain's head are ``agent.governance.audit_checkpoint``'s.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from agent.settings import get_settings

__all__ = [
    "KEY_FILE",
    "MIN_KEY_CHARS",
    "AuditKeyError",
    "current_key",
    "keyed_hash",
    "write_demo_key",
]

KEY_FILE = "audit_key"
MIN_KEY_CHARS = 32


class AuditKeyError(ValueError):
    """The key is missing where it is needed, too short, or unreadable. Never contains the key."""


def _check(key: str, where: str) -> bytes:
    key = key.strip()
    if len(key) < MIN_KEY_CHARS:
        raise AuditKeyError(f"{where}: the audit key must be at least {MIN_KEY_CHARS} characters")
    return key.encode("utf-8")


@functools.lru_cache(maxsize=4)
def _read_file(path: str, _mtime_ns: int) -> bytes:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"{path}: cannot read the audit key ({type(exc).__name__})") from None
    return _check(text, path)


def current_key() -> bytes | None:
    """The audit key of this process: ``COPILOT_AUDIT_KEY``, else the var folder's key file, else None."""
    settings = get_settings()
    if settings.audit_key.strip():
        return _check(settings.audit_key, "COPILOT_AUDIT_KEY")
    path = Path(settings.var_dir) / KEY_FILE
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_file(str(path), mtime)


def keyed_hash(key: bytes, prev_hash: str, canonical: str) -> str:
    """``HMAC-SHA256(key, prev_hash + canonical JSON of the event)`` as hex."""
    return hmac.new(key, (prev_hash + canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def write_demo_key(var_dir: Path | str) -> Path:
    """Create ``<var_dir>/audit_key`` (mode 0600) with a fresh 256-bit key unless one exists."""
    path = Path(var_dir) / KEY_FILE
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path
