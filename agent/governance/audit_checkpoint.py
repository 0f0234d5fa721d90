"""Signed checkpoints of the audit chain: proof, kept outside the database, that it was not rewritten.

``take_checkpoint`` appends an ``audit_checkpoint`` event (which keys a plain chain, see
``agent.governance.audit``) and returns the new head — its seq and hash — with the time and an
HMAC signature by the audit key. Store it anywhere the database's writers cannot reach (a ticket,
a WORM bucket, an e-mail to the auditors). ``verify_against`` later checks the signature, that the
chain verifies, and that the event at the checkpoint's seq still carries the checkpoint's hash:
a chain cut back below it, or rewritten at or before it, fails by name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance.audit import EVENT_CHECKPOINT, append_event, verify_chain
from agent.governance.audit_key import AuditKeyError, current_key
from tools.models import AuditEvent

__all__ = ["take_checkpoint", "verify_against"]

_DOMAIN = b"copilot-audit-checkpoint\x00"


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, _DOMAIN + text.encode("utf-8"), hashlib.sha256).hexdigest()


def _need_key() -> bytes:
    key = current_key()
    if key is None:
        raise AuditKeyError(
            "no audit key: set COPILOT_AUDIT_KEY (copilot demo writes one to <COPILOT_VAR_DIR>/audit_key)"
        )
    return key


def take_checkpoint(
    session: Session, *, actor: str | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Append the checkpoint event and return the signed head ``{"seq", "hash", "taken_at", "signature"}``.

    The caller commits. Refuses (ValueError) when the chain does not verify: signing a broken head
    would vouch for it.
    """
    key = _need_key()
    check = verify_chain(session, key=key)
    if not check["ok"] and check["events"] and "no event is keyed" not in (check["reason"] or ""):
        raise ValueError(f"the audit chain does not verify, no checkpoint taken: {check['reason']}")
    append_event(session, EVENT_CHECKPOINT, actor=actor, payload={"after_seq": check["events"]})
    session.flush()
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).one()
    taken = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    body = {"seq": head.seq, "hash": head.hash, "taken_at": taken}
    return {**body, "signature": _mac(key, body)}


def _signed_body(key: bytes, checkpoint: Any) -> dict[str, Any]:
    if not isinstance(checkpoint, dict):
        raise AuditKeyError("the checkpoint is not a JSON object")
    try:
        body = {
            "seq": int(checkpoint["seq"]),
            "hash": str(checkpoint["hash"]),
            "taken_at": str(checkpoint["taken_at"]),
        }
        signature = str(checkpoint["signature"])
    except (KeyError, TypeError, ValueError):
        raise AuditKeyError("the checkpoint needs seq, hash, taken_at and signature") from None
    if not hmac.compare_digest(_mac(key, body), signature):
        raise AuditKeyError(
            "the checkpoint's signature does not match this audit key (the file was edited, or it "
            "belongs to another key or deployment)"
        )
    return body


def verify_against(session: Session, checkpoint: Any) -> dict[str, Any]:
    """:func:`verify_chain`'s result, also failing when the chain no longer holds ``checkpoint``'s head.

    A checkpoint whose signature is not this key's raises :class:`AuditKeyError`.
    """
    key = _need_key()
    body = _signed_body(key, checkpoint)
    result = {**verify_chain(session, key=key), "checkpoint": body}
    if not result["ok"]:
        return result
    stored = session.execute(
        select(AuditEvent.hash).where(AuditEvent.seq == body["seq"])
    ).scalar_one_or_none()
    if stored is None:
        reason = (
            f"seq {body['seq']}: the checkpoint of {body['taken_at']} names seq {body['seq']} but the chain "
            f"ends at seq {result['head_seq']}: events were deleted since"
        )
    elif stored != body["hash"]:
        reason = (
            f"seq {body['seq']}: the event differs from the checkpoint of {body['taken_at']}: the chain "
            "was rewritten since"
        )
    else:
        return result
    return {
        **result,
        "ok": False,
        "first_bad_seq": min(body["seq"], result["head_seq"] + 1),
        "reason": reason,
    }
