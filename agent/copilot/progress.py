"""What a chat turn is doing while the reader waits: short labels for the ``progress`` events.

A turn on the local model spends seconds choosing a tool and phrasing the answer; the chat shows
these labels ("Looking up SO-100042…") in the answer's place until its first words arrive, so no
empty bubble waits. The labels name the tool's subject as the call's arguments give it (already
validated by :func:`agent.copilot.chat_tools.check_call`); they are display text, never facts.

    progress_label("triage_order", {"order_id": "SO-100042"})   # "Looking up SO-100042…"
"""

from __future__ import annotations

from typing import Any

__all__ = ["READING", "WRITING", "progress_label"]

READING = "Reading the question…"
WRITING = "Writing the answer…"

# What each tool is doing, followed by its subject (an order, customer or SKU) when the call names one.
_DOING = {
    "triage_order": "Looking up",
    "get_order": "Looking up",
    "what_if": "Simulating the effect on other orders of a change to",
    "request_approval": "Preparing an approval request for",
    "find_requests": "Looking up approval requests for",
    "find_late_orders": "Checking the open orders of",
    "draft_customer_note": "Drafting a customer note about",
    "search_sops": "Searching the SOPs",
    "search_orders": "Searching orders",
    "list_open_exceptions": "Listing open exceptions",
    "get_customer_credit": "Looking up the credit of",
    "get_stock": "Checking the stock of",
    "get_substitutes": "Looking up substitutes for",
    "get_open_purchase_orders": "Looking up open purchase orders",
    "get_order_shipments": "Looking up the shipments of",
    "get_line_price": "Checking the prices of",
    "get_effective_price": "Checking the contract price of",
}
_SUBJECTS = ("order_id", "customer_name", "customer_id", "sku")
_MAX_SUBJECT = 60


def progress_label(tool: str, args: dict[str, Any] | None) -> str:
    """The label shown while ``tool`` runs with ``args``."""
    args = args or {}
    subject = next((str(args[k]) for k in _SUBJECTS if args.get(k)), "")
    subject = " ".join(subject.split())[:_MAX_SUBJECT]
    if tool == "why_not" and args.get("action"):
        doing = f"Checking {args['action']} for"
    else:
        doing = _DOING.get(tool, f"Running {tool}")
    if tool == "search_sops" or not subject:
        return f"{doing}…"
    return f"{doing} {subject}…"
