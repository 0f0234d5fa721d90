"""The Orders tab: triage the orders a paste names (order numbers or a whole e-mail), each order's
evidence, recommendation and alternatives at once and its explanation as the model writes it, what
the customer was told about it and when, and a request for approval of the recommended action as
the signed-in user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from ui.api.service import Services, check_text_limits
from ui.panel.common import (
    action_line,
    citation_text,
    evidence_md,
    guarded,
    guarded_stream,
    md_text,
    repeated_md,
    signed_in,
)
from ui.panel.messages import told_md

__all__ = ["ORDER_COLUMNS", "OrdersTab", "detail_md"]

ORDER_COLUMNS = ["order", "exceptions", "recommendation", "risk", "approver"]


def detail_md(result: dict[str, Any], writing: str | None = None) -> str:
    """One triaged order in Markdown; ``writing``: the explanation so far, while the model writes it."""
    parts = [f"### {result['order_id']} ({result.get('status', '')})"]
    for e in result.get("exceptions", []):
        where = (
            f" line {e['line_no']}"
            if e.get("line_no")
            else (f" shipment {e['shipment_id']}" if e.get("shipment_id") else "")
        )
        parts.append(f"- **{e['type']}**{where}\n{evidence_md(e.get('evidence', []))}")
    if not result.get("exceptions"):
        parts.append("No exception holds on this order.")
    rec = result.get("recommendation")
    if rec:
        parts.append(
            f"**Recommendation:** `{action_line(rec)}` — risk {rec.get('risk')}, approver "
            f"{rec.get('approver_role') or '—'}. {md_text(rec.get('reason') or '')}"
        )
    alts = result.get("alternatives") or []
    if alts:
        parts.append(
            "**Alternatives:**\n"
            + "\n".join(f"- `{action_line(a)}` — {md_text(a.get('reason') or '')}" for a in alts)
        )
    exp = result.get("explanation")
    if exp:
        note = f" _(fact-only fallback: {md_text(str(exp.get('reason')))})_" if exp.get("fallback") else ""
        if exp.get("warning"):
            note += f"\n\n> ⚠ {md_text(str(exp['warning']))}"
        cites = ", ".join(citation_text(c) for c in exp.get("citations", []))
        parts.append(f"**Explanation:**{note}\n\n{md_text(exp.get('text', ''))}\n\nSOPs: {cites or '—'}")
    elif writing is not None:
        parts.append(f"**Explanation** _(the model is writing)_:\n\n{md_text(writing)}")
    return "\n\n".join(parts)


class OrdersTab:
    def __init__(self, services: Services) -> None:
        self.services = services

    def triage_paste(self, token: str | None, text: str):
        """Triage the orders a paste names: order numbers, or a whole e-mail."""
        who = signed_in(self.services, token)
        text = text or ""
        check_text_limits(text)
        if not text.strip():
            return (
                pd.DataFrame(columns=ORDER_COLUMNS),
                "Paste one or more order numbers or an e-mail.",
                {},
                gr.update(choices=[], value=None),
            )
        out = self.services.triage_text(who, text, explain=False)
        results, not_found = out["results"], list(out.get("not_found") or [])
        found = [r for r in results if not r.get("error")]
        rows = []
        for r in found:
            rec = r.get("recommendation") or {}
            rows.append(
                {
                    "order": r["order_id"],
                    "exceptions": ", ".join(sorted({e["type"] for e in r.get("exceptions", [])})) or "none",
                    "recommendation": action_line(rec) if rec else "—",
                    "risk": rec.get("risk") or "—",
                    "approver": rec.get("approver_role") or "—",
                }
            )
        status = f"{len(found)} order(s) triaged."
        if out.get("notes"):  # "SO-10042 not found; did you mean SO-100042?", "S0-10042 read as SO-10042"
            status += " " + " ".join(out["notes"])
        elif not_found:
            status += " Not found: " + ", ".join(not_found)
        if not found and not not_found:
            status = "No order number found in the text."
        ids = [r["order_id"] for r in found]
        return (
            pd.DataFrame(rows, columns=ORDER_COLUMNS),
            status,
            {r["order_id"]: r for r in found},
            gr.update(choices=ids, value=ids[0] if ids else None),
        )

    def order_detail(self, token: str | None, order_id: str | None, cache: dict[str, Any]) -> Iterator[str]:
        """Evidence, alternatives at once; the explanation as the model writes it."""
        who = signed_in(self.services, token)
        if not order_id:
            yield "Select an order."
            return
        result = (cache or {}).get(order_id) or self.services.triage(who, [order_id])[0]
        if result.get("error"):
            yield f"**Not found:** {result['error']}"
            return
        told = "\n\n" + told_md(self.services.list_messages(who, order_id=order_id, limit=20))
        if "explanation" in result or not result.get("exceptions"):
            yield detail_md(result) + told
            return
        yield detail_md(result, "…") + told
        written = ""
        for event in self.services.triage_stream(who, [order_id]):
            if event.get("type") == "token":
                written += str(event.get("text", ""))
                yield detail_md(result, written) + told
            elif event.get("type") == "final" and event.get("results"):
                yield detail_md(event["results"][0]) + told

    def request_approval(self, token: str | None, order_id: str | None, cache: dict[str, Any] | None = None):
        """Request approval of the order's recommended action, as the signed-in user; a click on a
        recommendation that already waits for its approver points at that request."""
        who = signed_in(self.services, token)
        if not order_id:
            return "Select an order first."
        req = self.services.request_action(who, order_id=order_id, source="panel")
        again = repeated_md(req)  # a second click: the request already waiting, nothing filed
        if again is not None:
            return again
        guard = req.get("guard") or {}
        text = (
            f"Request **#{req['id']}** `{action_line(req)}` is **{req['status']}**; approver role "
            f"**{req.get('approver_role') or '—'}**."
        )
        if guard and not guard.get("ok", True):
            text += "\n\nGuard: " + "; ".join(md_text(str(r)) for r in guard.get("reasons") or [])
        return text

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("Orders", id="orders"):
            cache = gr.State({})
            paste = gr.Textbox(
                label="Order numbers or a customer's e-mail",
                lines=5,
                elem_id="paste",
                placeholder="SO-100042 SO-100043 … or paste the whole e-mail",
            )
            triage_btn = gr.Button("Triage", variant="primary", elem_id="triage")
            orders_status = gr.Markdown(elem_id="orders-status")
            orders_table = gr.Dataframe(
                headers=ORDER_COLUMNS, interactive=False, wrap=True, elem_id="orders-table"
            )
            with gr.Row():
                order_pick = gr.Dropdown(
                    label="Order", choices=[], elem_id="order-pick", scale=3, allow_custom_value=True
                )
                request_btn = gr.Button(
                    "Request approval of the recommendation", elem_id="request-approval", scale=2
                )
            order_md = gr.Markdown(elem_id="order-detail")
            request_md = gr.Markdown(elem_id="request-status")
            triage_btn.click(
                guarded(self.triage_paste, 4, 1),
                [token_state, paste],
                [orders_table, orders_status, cache, order_pick],
                api_name="triage",
            )
            order_pick.change(
                guarded_stream(self.order_detail),
                [token_state, order_pick, cache],
                [order_md],
                api_name="order_detail",
            )
            request_btn.click(
                guarded(self.request_approval, 1, 0),
                [token_state, order_pick, cache],
                [request_md],
                api_name="request_approval",
            )
