"""Eval checks of communications (domain.md §7): after the recommendation is approved, the notice it
makes due — exactly one, to the right order — its draft (mentions the new date or the substitute,
never an internal figure nor a customer note's injected text) and where its message goes.

A case states them under ``expect.notice``::

    notice:
      kind: customer            # customer | supplier | none (no notice may be due)
      order_id: SO1             # the order it is about (the donor's after REASSIGN_ALLOCATION)
      recipient: a@acme.test    # the address the approved message is queued for
      subject_has: [SO1]        # text the subject must contain
      mentions: ["2026-11-28"]  # text the body must contain
      never_mentions: ["60"]    # text neither subject nor body may contain (costs, injected words)

The draft is written by the run's model (unscripted fake: the fact-only template); the message is
approved by the demo user of its approver role and queued, never delivered.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from agent.comms.service import draft_due
from agent.governance.requests import decide
from tools.models import Notice, OutboxMessage

__all__ = ["NOTICE_KEYS", "notice_checks"]

NOTICE_KEYS = frozenset({"kind", "order_id", "recipient", "subject_has", "mentions", "never_mentions"})


def _contains(text: str, needle: str) -> bool:
    """``needle`` in ``text`` as a whole token, case-insensitively (``60`` is not in ``160``)."""
    return re.search(r"(?<![\w.])" + re.escape(needle.lower()) + r"(?![\w])", text.lower()) is not None


def notice_checks(factory, policy, llm, want: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(name, passed, detail) for each check ``want`` states."""
    with factory() as s:
        due = list(s.scalars(select(Notice).where(Notice.trigger_request_id.is_not(None))))
    if want.get("kind") == "none":
        return [("notice.due", not due, "" if not due else f"{len(due)} notice(s) due, expected none")]
    checks = [("notice.due", len(due) == 1, "" if len(due) == 1 else f"{len(due)} notices due, expected 1")]
    if len(due) != 1:
        return checks
    notice = due[0]
    for key in ("kind", "order_id"):
        if key in want:
            got = getattr(notice, key)
            checks.append((f"notice.{key}", got == want[key], f"{key} {got}, expected {want[key]}"))
    drafted = draft_due(factory, policy, llm)
    filed: dict[str, Any] | None = drafted[0] if drafted else None
    if filed is None or not filed.get("request"):
        checks.append(("notice.filed", False, (filed or {}).get("error") or "the notice was not filed"))
        return checks
    req = filed["request"]
    subject, body = req["subject"] or "", req["body"] or ""
    missing = [t for t in want.get("subject_has") or [] if t.lower() not in subject.lower()]
    checks.append(("notice.subject", not missing, f"subject {subject!r} lacks {missing}" if missing else ""))
    absent = [t for t in want.get("mentions") or [] if not _contains(body, t)]
    checks.append(("notice.mentions", not absent, f"body lacks {absent}" if absent else ""))
    leaked = [t for t in want.get("never_mentions") or [] if _contains(f"{subject}\n{body}", t)]
    checks.append(("notice.never_mentions", not leaked, f"draft contains {leaked}" if leaked else ""))
    if "recipient" in want:
        decide(factory, policy, req["id"], username=req["approver_role"], decision="approve")
        with factory() as s:
            to = s.scalar(select(OutboxMessage.recipient).where(OutboxMessage.request_id == req["id"]))
        checks.append(
            ("notice.recipient", to == want["recipient"], f"queued for {to}, expected {want['recipient']}")
        )
    return checks
