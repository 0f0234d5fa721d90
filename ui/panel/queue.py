"""The My queue tab: the signed-in role's open exceptions (and those of the roles it covers) by
priority, with owner, SLA due (breached ones marked and escalated by policy), who claimed it and
the recommended action; claim, release, reassign (audited) and one click to request the
recommendation, which then waits in the Approvals tab of its approver."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from agent.flow import claim, load_queue, reassign, release
from ui.api.service import Services
from ui.panel.common import action_line, evidence_md, guarded, md_text, pick_id, repeated_md, signed_in

__all__ = ["MY_QUEUE_COLUMNS", "QueueTab"]

MY_QUEUE_COLUMNS = ["id", "priority", "order", "type", "owner", "SLA due", "claimed by", "recommendation"]


class QueueTab:
    def __init__(self, services: Services) -> None:
        self.services = services
        # what each user was shown last, by user: one user's pick never reads another's queue
        self._shown: dict[str, dict[int, dict]] = {}

    def load(self, token: str | None):
        """My queue, highest priority first."""
        who = signed_in(self.services, token)
        with self.services.factory_for(who)() as session:  # a scoped user: their sites' exceptions
            items = load_queue(session, self.services.policy, role=who.role, limit=200)
            session.rollback()
        self._shown[who.username] = {i["id"]: i for i in items}
        rows = [
            {
                "id": i["id"],
                "priority": i["priority"],
                "order": i["order_id"],
                "type": i["type"],
                "owner": i["owner_role"] + (f" → {i['escalated_to']}" if i["escalated_to"] else ""),
                "SLA due": f"{i['sla_due_at']:%Y-%m-%d %H:%M}" + (" BREACHED" if i["sla_breached"] else ""),
                "claimed by": i["claimed_by"] or "",
                "recommendation": action_line(i.get("recommendation")),
            }
            for i in items
        ]
        ids = [str(i["id"]) for i in items]
        status = (
            f"{len(items)} open for {who.role} (and the roles it covers)."
            if items
            else "Your queue is empty."
        )
        return (
            pd.DataFrame(rows, columns=MY_QUEUE_COLUMNS),
            gr.update(choices=ids, value=ids[0] if ids else None),
            status,
        )

    def detail(self, token: str | None, pick: str | None) -> str:
        who = signed_in(self.services, token)
        picked = pick_id(pick, "an exception")
        item = self._shown.get(who.username, {}).get(picked) if picked is not None else None
        if item is None:
            return "Select an exception."
        rec = item.get("recommendation")
        return (
            f"### #{item['id']} {item['type']} on **{item['order_id']}** ({item['instance']})\n\n"
            f"Customer {md_text(item['customer_name'] or item['customer_id'])} ({item['customer_tier']}), order value "
            f"{item['order_value']}, promised {item['promised_date']}; {item['waiting']} other orders wait on the "
            f"same. Priority **{item['priority']}**, SLA due {item['sla_due_at']:%Y-%m-%d %H:%M}.\n\n"
            f"**Evidence:**\n{evidence_md(item['evidence'])}\n\n**Recommendation:** `{action_line(rec)}`"
            + (f" — risk {rec['risk']}, approver {rec['approver_role']}" if rec else "")
        )

    def _act(self, fn, token: str | None, pick: str | None, **kw) -> str:
        # signed_in: the claim, release or reassignment is audited as the panel's user, not the
        # server's OS account, and counts against the user's rate limit like every other click
        who = signed_in(self.services, token)
        picked = pick_id(pick, "an exception")
        if picked is None:
            return "Select an exception first."
        with self.services.factory_for(who)() as session:
            fn(session, self.services.policy, picked, user=who.username, role=who.role, **kw)
            session.commit()
        return f"#{picked}: done ({fn.__name__} by {who.username}). Refresh to see the queue."

    def claim(self, token: str | None, pick: str | None) -> str:
        return self._act(claim, token, pick)

    def release(self, token: str | None, pick: str | None) -> str:
        return self._act(release, token, pick)

    def reassign(self, token: str | None, pick: str | None, to_role: str, reason: str) -> str:
        return self._act(reassign, token, pick, to_role=(to_role or "").strip(), reason=reason or "")

    def request(self, token: str | None, pick: str | None) -> str:
        """File the recommendation as an action request (guarded, then waiting for its approver)."""
        who = signed_in(self.services, token)
        picked = pick_id(pick, "an exception")
        item = self._shown.get(who.username, {}).get(picked) if picked is not None else None
        rec = item.get("recommendation") if item else None
        if item is None or not rec:
            return "Select an exception with a recommendation."
        req = self.services.request_action(
            who, order_id=item["order_id"], action=rec["action"], params=rec["params"], source="panel"
        )
        again = repeated_md(req)  # a second click: the request already waiting, nothing filed
        if again is not None:
            return again
        return f"Request **#{req['id']}** `{action_line(req)}` is **{req['status']}** (approver {req.get('approver_role')})."

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("My queue", id="my-queue"):
            refresh = gr.Button("Refresh my queue", elem_id="refresh-my-queue")
            status = gr.Markdown(elem_id="my-queue-status")
            table = gr.Dataframe(
                headers=MY_QUEUE_COLUMNS, interactive=False, wrap=True, elem_id="my-queue-table"
            )
            pick = gr.Dropdown(
                label="Exception", choices=[], elem_id="my-queue-pick", allow_custom_value=True
            )
            detail = gr.Markdown(elem_id="my-queue-detail")
            with gr.Row():
                request_btn = gr.Button(
                    "Request the recommendation", variant="primary", elem_id="queue-request"
                )
                claim_btn = gr.Button("Claim", elem_id="queue-claim")
                release_btn = gr.Button("Release", elem_id="queue-release")
            with gr.Row():
                to_role = gr.Textbox(label="Reassign to role", elem_id="queue-to-role")
                reason = gr.Textbox(label="Reason", elem_id="queue-reason")
                reassign_btn = gr.Button("Reassign", elem_id="queue-reassign")
            outcome = gr.Markdown(elem_id="my-queue-outcome")
            refresh.click(guarded(self.load, 3, 2), [token_state], [table, pick, status], api_name="my_queue")
            pick.change(guarded(self.detail, 1, 0), [token_state, pick], [detail], api_name="my_queue_detail")
            request_btn.click(
                guarded(self.request, 1, 0), [token_state, pick], [outcome], api_name="queue_request"
            )
            claim_btn.click(guarded(self.claim, 1, 0), [token_state, pick], [outcome], api_name="queue_claim")
            release_btn.click(
                guarded(self.release, 1, 0), [token_state, pick], [outcome], api_name="queue_release"
            )
            reassign_btn.click(
                guarded(self.reassign, 1, 0),
                [token_state, pick, to_role, reason],
                [outcome],
                api_name="queue_reassign",
            )
