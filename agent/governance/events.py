"""The audit events the product writes more than one place, each with one payload shape.

The event names are the ``EVENT_*`` constants of :mod:`agent.governance.audit`; this module builds
the payloads of those written from several places, so that an auditor reading the chain sees one
shape per event type whoever wrote it:

- ``triage``: ``{"source", "why", "exceptions": [type, ...], "recommendation": {"action", "params",
  "risk", "approver_role"} | null}`` — one per order triaged (the CLI, the copilot graph, governance
  before a request and after an execution);
- ``triage_book``: ``{"source", "orders", "with_exceptions"}`` — one for a triage of the open book;
- ``llm_fallback``: ``{"reason", "model"}``, plus ``"thread"`` when a chat turn fell back;
- ``chat_request``: ``{"request_id", "action", "thread"}`` — chat filed an approval request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from agent.governance.audit import (
    EVENT_CHAT_PROPOSAL,
    EVENT_CHAT_REQUEST,
    EVENT_LLM_FALLBACK,
    EVENT_TRIAGE,
    EVENT_TRIAGE_BOOK,
    append_event,
)

__all__ = [
    "log_chat_proposal",
    "log_chat_request",
    "log_llm_fallback",
    "log_triage",
    "log_triage_book",
    "triage_payload",
]


def triage_payload(result: dict[str, Any], *, source: str, why: str | None = None) -> dict[str, Any]:
    """The ``triage`` payload of one triage result (``agent.triage.service.triage_result``)."""
    rec = result.get("recommendation")
    return {
        "source": source,
        "why": why,
        "exceptions": [e["type"] for e in result.get("exceptions") or []],
        "recommendation": None
        if not rec
        else {
            "action": rec["action"],
            "params": rec.get("params") or {},
            "risk": rec.get("risk"),
            "approver_role": rec.get("approver_role"),
        },
    }


def log_triage(
    session: Session,
    results: Iterable[dict[str, Any]],
    *,
    source: str,
    actor: str | None,
    role: str | None = None,
    why: str | None = None,
) -> None:
    """One ``triage`` event per triaged order of ``results`` (unknown ids are left out), in the
    caller's transaction."""
    for result in results:
        if "error" in result:
            continue
        append_event(
            session,
            EVENT_TRIAGE,
            actor=actor,
            role=role,
            order_id=result["order_id"],
            payload=triage_payload(result, source=source, why=why),
        )


def log_triage_book(
    session: Session, results: Iterable[dict[str, Any]], *, source: str, actor: str | None
) -> None:
    """One ``triage_book`` event summarising a triage of the open book."""
    found = [r for r in results if "error" not in r]
    append_event(
        session,
        EVENT_TRIAGE_BOOK,
        actor=actor,
        payload={
            "source": source,
            "orders": len(found),
            "with_exceptions": sum(1 for r in found if r["exceptions"]),
        },
    )


def log_llm_fallback(
    session: Session,
    *,
    order_id: str | None,
    reason: str,
    model: str,
    actor: str | None = None,
    thread: str | None = None,
) -> None:
    """The model failed (or strayed from the facts) and the fact-only text was used."""
    payload: dict[str, Any] = {"reason": reason, "model": model}
    if thread is not None:
        payload["thread"] = thread
    append_event(session, EVENT_LLM_FALLBACK, actor=actor, order_id=order_id, payload=payload)


def log_chat_request(
    session: Session,
    *,
    actor: str | None,
    order_id: str | None,
    request_id: int | None,
    action: str | None,
    thread: str | None,
) -> None:
    """Chat filed an approval request (the request's own events follow it in the chain)."""
    append_event(
        session,
        EVENT_CHAT_REQUEST,
        actor=actor,
        order_id=order_id,
        payload={"request_id": request_id, "action": action, "thread": thread},
    )


def log_chat_proposal(
    session: Session,
    *,
    actor: str | None,
    order_id: str,
    action: str,
    params: dict[str, Any],
    guard_ok: bool,
    thread: str | None,
) -> None:
    """Chat showed an approval request for the person to confirm; nothing is filed until they do."""
    append_event(
        session,
        EVENT_CHAT_PROPOSAL,
        actor=actor,
        order_id=order_id,
        payload={"action": action, "params": params, "guard_ok": guard_ok, "thread": thread},
    )
