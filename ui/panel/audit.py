"""The Audit tab: the hash-chained audit log filtered by order, event type or request, and a check
that recomputes the chain."""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from ui.api.service import Services
from ui.panel.common import guarded, signed_in

__all__ = ["AUDIT_COLUMNS", "AuditTab"]

AUDIT_COLUMNS = ["seq", "time", "event", "actor", "role", "order", "request", "payload"]


class AuditTab:
    def __init__(self, services: Services) -> None:
        self.services = services

    def audit_search(self, token: str | None, order_id: str, event_type: str, request_id: str):
        """Audit events (the chain's first 500 that match, shown newest first), filtered by order, event type or request."""
        who = signed_in(self.services, token)
        rid = int(request_id) if (request_id or "").strip().isdigit() else None
        events = self.services.audit_events(
            who,
            order_id=(order_id or "").strip() or None,
            event_type=(event_type or "").strip() or None,
            request_id=rid,
            limit=500,
        )
        rows = [
            {
                "seq": e.get("seq"),
                "time": str(e.get("ts", "")),
                "event": e.get("event_type"),
                "actor": e.get("actor"),
                "role": e.get("role"),
                "order": e.get("order_id"),
                "request": e.get("request_id"),
                "payload": json.dumps(e.get("payload"), default=str)[:300],
            }
            for e in reversed(events)
        ]
        return pd.DataFrame(rows, columns=AUDIT_COLUMNS), f"{len(rows)} event(s)."

    def audit_verify(self, token: str | None):
        """Recompute the hash chain."""
        signed_in(self.services, token)
        res = self.services.verify_chain()
        if res.get("ok"):
            return f"**Chain intact:** {res.get('events', 0):,} events."
        return f"**Chain broken**  at seq {res.get('first_bad_seq')}: {res.get('reason')}"

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("Audit", id="audit"):
            with gr.Row():
                a_order = gr.Textbox(label="Order", elem_id="audit-order")
                a_type = gr.Textbox(label="Event type", elem_id="audit-type")
                a_req = gr.Textbox(label="Request id", elem_id="audit-request")
            with gr.Row():
                search_btn = gr.Button("Search", elem_id="audit-search")
                verify_btn = gr.Button("Verify chain", elem_id="audit-verify")
            audit_status = gr.Markdown(elem_id="audit-status")
            audit_table = gr.Dataframe(
                headers=AUDIT_COLUMNS, interactive=False, wrap=True, elem_id="audit-table"
            )
            search_btn.click(
                guarded(self.audit_search, 2, 1),
                [token_state, a_order, a_type, a_req],
                [audit_table, audit_status],
                api_name="audit_search",
            )
            verify_btn.click(
                guarded(self.audit_verify, 1, 0), [token_state], [audit_status], api_name="audit_verify"
            )
