"""KPI: customer notices and supplier requests due vs sent within the SOP's time, per exception type.

A notice is due when the action that made it due was executed (``notices.due_at``) and counts as
sent within the SOP's time when its message left the outbox (``outbox.sent_at``) within the
allowance: SOP-CS-001 §3.4 gives 4 business hours to tell the customer (2 for platinum), SOP-PROC-001
4 business hours to send the expedite request. As for exception resolution (``RESOLUTION_SLA_HOURS``)
the business-hour target is rounded up to one business day of 24 calendar hours. A notice still
unsent past its allowance is a breach; one still inside it is pending and not judged yet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tools.models import Notice, Order, OutboxMessage
from tools.sites import order_condition

__all__ = ["NOTICE_SLA_HOURS", "notices_within_policy"]

NOTICE_SLA_HOURS: dict[str, int] = {
    "customer": 24,  # SOP-CS-001 §3.4: within 4 business hours (2 for platinum)
    "supplier": 24,  # SOP-PROC-001: the expedite request within 4 business hours of approval
}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def notices_within_policy(session: Session, *, since: dt.date | None, now: dt.datetime) -> dict[str, Any]:
    """Notices due, sent, sent within the SOP's time, breached and pending, per exception type."""
    query = select(
        Notice.kind, Notice.exception_type, Notice.trigger_request_id, Notice.due_at, OutboxMessage.sent_at
    )
    query = query.outerjoin(OutboxMessage, OutboxMessage.request_id == Notice.request_id)
    if since is not None:
        query = query.join(Order, Order.order_id == Notice.order_id).where(Order.order_date >= since)
    query = query.where(order_condition(session, Notice.order_id))  # the session's sites (tools.sites)
    by_type: dict[str, dict[str, Any]] = {}
    for kind, exc_type, trigger, due_at, sent_at in session.execute(query).all():
        key = exc_type or ("asked by a person" if trigger is None else "no exception")
        row = by_type.setdefault(key, {"due": 0, "sent": 0, "within": 0, "breached": 0, "pending": 0})
        allowance = dt.timedelta(hours=NOTICE_SLA_HOURS[kind])
        row["due"] += 1
        if sent_at is not None:
            row["sent"] += 1
            on_time = _aware(sent_at) - _aware(due_at) <= allowance
            row["within" if on_time else "breached"] += 1
        elif now - _aware(due_at) > allowance:
            row["breached"] += 1
        else:
            row["pending"] += 1
    for row in by_type.values():
        judged = row["within"] + row["breached"]
        row["rate"] = round(row["within"] / judged, 4) if judged else None
    within = sum(r["within"] for r in by_type.values())
    judged = sum(r["within"] + r["breached"] for r in by_type.values())
    return {
        "value": round(within / judged, 4) if judged else None,
        "unit": "share of notices",
        "due": sum(r["due"] for r in by_type.values()),
        "sent": sum(r["sent"] for r in by_type.values()),
        "within": within,
        "judged": judged,
        "sla_hours": dict(NOTICE_SLA_HOURS),
        "by_type": dict(sorted(by_type.items())),
    }
