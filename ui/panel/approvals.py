"""The Approvals tab: the pending requests the signed-in role may decide, each with its impact on
the other open orders (domain.md §6: how many would change; the selected request's in full — the
exceptions it would create or clear, per order with its customer tier and order value), one
request's evidence, guard result and citations, and the decision — approve, reject (with a
reason) or edit the parameters and approve (with a reason; the new parameters are guarded again). A customer notice or
supplier request shows its draft (escaped) beside the facts it was written from; its edit changes
subject and body, checked against those facts again."""

from __future__ import annotations

import json
from collections.abc import Callable

import gradio as gr
import pandas as pd

from agent.governance.impact import describe
from tools.errors import ToolError
from tools.outbox import MESSAGE_ACTIONS
from ui.api.service import Services
from ui.panel.common import (
    action_line,
    citation_text,
    evidence_md,
    fmt_params,
    guarded,
    md_text,
    pick_id,
    plain_text,
    signed_in,
)
from ui.panel.messages import message_md

__all__ = ["QUEUE_COLUMNS", "ApprovalsTab", "impact_md"]

QUEUE_COLUMNS = ["id", "order", "action", "params", "risk", "approver", "requested by", "guard", "impact"]
IMPACT_ROWS = 25  # the queue's first rows get their impact computed (each a rolled-back simulation)


def impact_md(result: dict) -> str:
    """The impact of a request as Markdown (the same lines as ``copilot whatif``)."""
    head, *rest = describe(result)
    return f"**Impact on other open orders** — {head}\n\n" + "\n".join(f"    {line.strip()}" for line in rest)


def _impact_cell(result: dict) -> str:
    if result.get("reason"):
        return "n/a" if result["feasible"] else "not feasible now"
    n = result["other_orders_affected"]
    return f"{n} other order{'s' if n != 1 else ''} change" if n else "no other order changes"


class _TextEdit:
    def __init__(self, subject: str | None, body: str | None, reason: str | None) -> None:
        self.subject, self.body, self.reason = subject, body, reason


class ApprovalsTab:
    def __init__(self, services: Services) -> None:
        self.services = services

    def load_queue(self, token: str | None):
        """The pending requests the signed-in role may decide."""
        who = signed_in(self.services, token)
        items = self.services.queue(who)
        impact = {r["id"]: self._impact(who, r, cell=True) for r in items[:IMPACT_ROWS]}
        rows = [
            {
                "id": r["id"],
                "order": r.get("order_id"),
                "action": r["action"],
                "params": fmt_params(r.get("params")),
                "risk": r.get("risk"),
                "approver": r.get("approver_role"),
                "requested by": r.get("requested_by"),
                "guard": "ok" if (r.get("guard") or {}).get("ok", True) else "blocked",
                "impact": impact.get(r["id"], "select it to see"),
            }
            for r in items
        ]
        ids = [str(r["id"]) for r in items]
        status = f"{len(items)} pending for {who.role}." if items else f"Nothing pending for {who.role}."
        return (
            pd.DataFrame(rows, columns=QUEUE_COLUMNS),
            gr.update(choices=ids, value=ids[0] if ids else None),
            status,
        )

    def request_detail(self, token: str | None, request_id: str | None):
        """Evidence, guard result and citations of one request."""
        who = signed_in(self.services, token)
        picked = pick_id(request_id, "a request")
        if picked is None:
            return "Select a request.", ""
        req = self.services.get_request(who, picked)
        message = (
            self.services.message_for_request(who, req["id"]) if req["action"] in MESSAGE_ACTIONS else None
        )
        guard = req.get("guard") or {}
        guard_text = (
            "passed"
            if guard.get("ok", True)
            else "blocked: " + "; ".join(md_text(str(r)) for r in guard.get("reasons") or [])
        )
        md = (
            f"### Request #{req['id']}: `{action_line(req)}`\n\nOrder **{req.get('order_id')}**, exception "
            f"{req.get('exception_type') or '—'}, risk **{req.get('risk')}**, approver **{req.get('approver_role')}**, "
            f"requested by {md_text(str(req.get('requested_by')))}, status **{req['status']}**.\n\n**Evidence:**\n"
            f"{evidence_md(req.get('evidence') or [])}\n\n**Guard:** {guard_text}\n\n**SOP citations:** "
            f"{', '.join(citation_text(c) for c in req.get('citations') or []) or '—'}"
        )
        if message is not None:  # the draft beside its facts; Edit changes subject and body only
            text = {k: req["params"].get(k) for k in ("subject", "body")}
            return md.split("**Evidence:**")[0] + message_md(message), json.dumps(text, indent=1)
        if req["status"] == "pending_approval":
            md += "\n\n" + self._impact(who, req)
        return md, json.dumps(req.get("params") or {}, indent=1)

    def _impact(self, who, req: dict, *, cell: bool = False) -> str:
        """The request's impact on the other open orders (simulated and rolled back)."""
        try:
            result = self.services.whatif(
                who, order_id=req.get("order_id") or "", action=req["action"], params=req["params"]
            )
        except ToolError as exc:
            return "n/a" if cell else f"**Impact on other open orders:** not computed: {exc}"
        return _impact_cell(result) if cell else impact_md(result)

    def decide(self, decision: str) -> Callable[[str | None, str | None, str, str], str]:
        """The handler of one decision button (``approve``, ``reject`` or ``edit``)."""

        def run(token: str | None, request_id: str | None, reason: str, params_text: str) -> str:
            who = signed_in(self.services, token)
            picked = pick_id(request_id, "a request")
            if picked is None:
                return "Select a request first."
            params = None
            if decision == "edit":
                try:
                    params = json.loads(params_text or "{}")
                except ValueError as exc:
                    return f"**Error:** the parameters are not valid JSON: {exc}"
                if not isinstance(params, dict):
                    return "**Error:** the parameters must be a JSON object."
            if decision in ("reject", "edit") and not (reason or "").strip():
                return f"**Error:** a reason is required to {decision}."
            message = self.services.message_for_request(who, picked) if decision == "edit" else None
            if (
                message is not None and params is not None
            ):  # its text: checked against its facts, diff audited
                edit = _TextEdit(params.get("subject"), params.get("body"), (reason or "").strip())
                m = self.services.edit_message(who, message["id"], edit)
                return (
                    f"Message **#{m['id']}** is now **{m['status']}** (edited by {who.username}, {who.role})."
                )
            req = self.services.decide(
                who, picked, decision, reason=(reason or "").strip() or None, params=params
            )
            text = f"Request **#{req['id']}** is now **{req['status']}** (decided by {who.username}, {who.role})."
            execution = req.get("execution")
            if execution:
                text += f"\n\nExecution: **{execution.get('status')}** {plain_text(execution.get('result'))}"
            return text

        run.__name__ = f"{decision}_request"
        return run

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("Approvals", id="approvals"):
            refresh_q = gr.Button("Refresh queue", elem_id="refresh-queue")
            queue_status = gr.Markdown(elem_id="queue-status")
            queue_table = gr.Dataframe(
                headers=QUEUE_COLUMNS, interactive=False, wrap=True, elem_id="queue-table"
            )
            req_pick = gr.Dropdown(
                label="Request", choices=[], elem_id="request-pick", allow_custom_value=True
            )
            req_md = gr.Markdown(elem_id="request-detail")
            params_box = gr.Code(label="Parameters (JSON; used by Edit)", language="json", elem_id="params")
            reason_box = gr.Textbox(label="Reason", elem_id="reason")
            with gr.Row():
                approve_btn = gr.Button("Approve", variant="primary", elem_id="approve")
                reject_btn = gr.Button("Reject", variant="stop", elem_id="reject")
                edit_btn = gr.Button("Edit and approve", elem_id="edit")
            decision_md = gr.Markdown(elem_id="decision-status")
            refresh_q.click(
                guarded(self.load_queue, 3, 2),
                [token_state],
                [queue_table, req_pick, queue_status],
                api_name="queue",
            )
            req_pick.change(
                guarded(self.request_detail, 2, 0),
                [token_state, req_pick],
                [req_md, params_box],
                api_name="request_detail",
            )
            for btn, what in ((approve_btn, "approve"), (reject_btn, "reject"), (edit_btn, "edit")):
                btn.click(
                    guarded(self.decide(what), 1, 0),
                    [token_state, req_pick, reason_box, params_box],
                    [decision_md],
                    api_name=what,
                )
