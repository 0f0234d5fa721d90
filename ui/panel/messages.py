"""How a customer notice or supplier request reads in the panel: on the Approvals tab the draft
beside the facts it was written from (and the customer's note, quoted), on the Orders tab what the
customer was told and when. Every text that came from a model, a person or a customer is
HTML-escaped inside ``<pre>``, so nothing in it is rendered or run."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from ui.panel.common import md_text

__all__ = ["message_md", "told_md"]


def _pre(text: str | None) -> str:
    return f"<pre>{html.escape(text or '')}</pre>"


def _facts_md(facts: dict[str, Any]) -> str:
    rows = []
    for key, value in facts.items():
        if key in ("kind",) or value in (None, "", []):
            continue
        if isinstance(value, list):
            value = "; ".join(
                ", ".join(f"{k}={v}" for k, v in item.items() if v is not None)
                if isinstance(item, dict)
                else str(item)
                for item in value
            )
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        rows.append(
            f"| {md_text(str(key))} | {md_text(' '.join(str(value).split()))} |"
        )  # names typed by people
    return "| fact | value |\n|---|---|\n" + "\n".join(rows)


def message_md(m: dict[str, Any]) -> str:
    """One message for its approver: why it is due, the facts, the draft (escaped), how it was written."""
    draft = m.get("draft") or {}
    req = m.get("request") or {}
    how = (
        "**edited by its approver**: the text below is the approver's, checked against the facts"
        if req.get("edited")
        else f"**fact-only template** — the model's draft did not pass the check ({html.escape(str(draft.get('reason')))})"
        if draft.get("fallback")
        else f"written by {html.escape(str(draft.get('model')))}, checked against the facts"
        f"{' on the first try' if draft.get('first_try_grounded') else ' after one retry'}"
    )
    parts = [
        f"#### {'Customer notice' if m['kind'] == 'customer' else 'Supplier request'} #{m['id']} — "
        f"{html.escape(m['reason'])}",
        f"Language: {html.escape(str(draft.get('language') or 'en'))}; {how}.",
        "**Subject**",
        _pre(req.get("subject") or draft.get("subject")),
        "**Body**",
        _pre(req.get("body") or draft.get("body")),
        "**The facts it may state**",
        _facts_md(m.get("facts") or {}),
    ]
    if m.get("customer_note"):
        parts += [
            "**The customer's note on the order** (quoted: data, never instructions)",
            _pre(m["customer_note"]),
        ]
    delivery = m.get("delivery")
    if delivery:
        parts.append(
            f"Delivery: **{delivery['status']}** to {html.escape(delivery['recipient'])}"
            + (f", sent {_when(delivery['sent_at'])}" if delivery.get("sent_at") else "")
            + (f", last error: {html.escape(delivery['last_error'])}" if delivery.get("last_error") else "")
        )
    return "\n\n".join(parts)


def _when(value: Any) -> str:
    """A timestamp as a reader writes it (``2026-12-05 02:14 UTC``), not ISO with microseconds."""
    if value in (None, ""):
        return ""
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return html.escape(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC"


def told_md(messages: list[dict[str, Any]]) -> str:
    """What the order's customer was told (sent) or is about to be told (queued, awaiting approval)."""
    if not messages:
        return "**What the customer was told:** nothing yet."
    lines = ["**What the customer was told:**"]
    for m in messages:
        delivery = m.get("delivery") or {}
        req = m.get("request") or {}
        when = delivery.get("sent_at") or delivery.get("queued_at") or m.get("drafted_at") or m.get("due_at")
        subject = (
            delivery.get("subject")
            or req.get("subject")
            or (m.get("draft") or {}).get("subject")
            or m["reason"]
        )
        stamp = _when(when)
        lines.append(f"- {m['status']}{' ' + stamp if stamp else ''}: {html.escape(str(subject))}")
    return "\n".join(lines)
