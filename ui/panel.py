"""The web panel (Gradio Blocks), mounted on the API's FastAPI app at ``/ui``.

One page, five tabs — Chat, Orders, Approvals, Dashboard (KPIs, model-monitoring warnings, recurring
anomalies), Audit — behind a sign-in with the same bearer tokens as the API: the token is kept in
the browser session's server-side state and checked again on every action, so every request and
decision is made as the signed-in user, and a decision beyond the role is refused and shown as such. Each handler calls the same
:class:`ui.api.service.Services` methods as the API.

Responsive while the model writes: chat answers stream from a generator with their own
concurrency limit, and the other events run beside them (``default_concurrency_limit``).
Nothing loads from the internet: system fonts instead of Google Fonts, analytics off.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import pandas as pd

from tools.errors import ToolError
from ui.api.auth import AuthError, Principal
from ui.api.service import LimitExceeded, Services, check_text_limits

__all__ = ["PANEL_PATH", "build_panel", "mount_panel", "theme"]

PANEL_PATH = "/ui"
CHAT_CONCURRENCY = 4  # chat answers generated at once; the other events have their own slots
DEFAULT_CONCURRENCY = 16
_SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
_ORDER_COLUMNS = ["order", "exceptions", "recommendation", "risk", "approver"]
_QUEUE_COLUMNS = ["id", "order", "action", "params", "risk", "approver", "requested by", "guard"]
_AUDIT_COLUMNS = ["seq", "time", "event", "actor", "role", "order", "request", "payload"]
_ANOMALY_COLUMNS = [
    "rank",
    "type",
    "on",
    "key",
    "orders",
    "open",
    "touches",
    "expedite $",
    "delayed value $",
    "cost $",
    "suggestion",
    "owner",
]


def theme() -> gr.themes.Base:
    """The default look with the operating system's fonts (Gradio's default fetches Google Fonts)."""
    return gr.themes.Default(font=list(_SYSTEM_FONTS), font_mono=list(_MONO_FONTS))


# --- helpers --------------------------------------------------------------------------------------


def _message(exc: Exception) -> str:
    """The panel's one-line rendering of an expected failure, named like the API's status codes."""
    import tools.errors as errors

    if isinstance(exc, AuthError):
        return f"**Not signed in:** {exc}"
    if isinstance(exc, getattr(errors, "Forbidden", ())):
        return f"**Not allowed for your role (403):** {exc}"
    if isinstance(exc, getattr(errors, "Conflict", ())):
        return f"**Already decided (409):** {exc}"
    if isinstance(exc, getattr(errors, "GuardBlocked", ())):
        reasons = getattr(exc, "reasons", [])
        return (
            "**Blocked by the guard:**\n" + "\n".join(f"- {r}" for r in reasons)
            if reasons
            else f"**Blocked:** {exc}"
        )
    if isinstance(exc, LimitExceeded):
        return f"**Too large:** {exc}"
    return f"**Error:** {exc}"


def _expected() -> tuple[type[BaseException], ...]:
    from tools.db import DatabaseError

    return (ToolError, AuthError, DatabaseError)


def _fmt_params(params: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


def _action_line(a: dict[str, Any] | None) -> str:
    if not a:
        return "—"
    return f"{a['action']}({_fmt_params(a.get('params'))})"


def _evidence_md(evidence: list[Any]) -> str:
    return (
        "\n".join(f"  - {e if isinstance(e, str) else json.dumps(e, default=str)}" for e in evidence or [])
        or "  - —"
    )


def _citation_text(c: Any) -> str:
    if isinstance(c, dict):
        return str(c.get("citation") or c.get("id") or json.dumps(c, default=str))
    return str(c)


# --- the panel ------------------------------------------------------------------------------------


def build_panel(services: Services) -> gr.Blocks:
    """The Blocks of the panel, its handlers bound to ``services``."""

    def principal(token: str | None) -> Principal:
        return services.authenticate(token)

    def guarded_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """:func:`guarded` for a generator with one output."""

        def run(*args):
            try:
                yield from fn(*args)
            except _expected() as exc:
                yield _message(exc)

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run

    def guarded(fn: Callable[..., Any], n_outputs: int, status_index: int) -> Callable[..., Any]:
        """Run ``fn``; on an expected failure put its message in the status output, leave the rest."""

        def run(*args):
            try:
                return fn(*args)
            except _expected() as exc:
                out = [gr.skip()] * n_outputs
                out[status_index] = _message(exc)
                return tuple(out) if n_outputs > 1 else out[0]

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run

    # ---- sign-in ----
    def sign_in(token: str):
        """Check a token; remember it for this browser session."""
        try:
            who = principal(token)
        except _expected() as exc:
            return None, _message(exc)
        roles = services.may_decide_for(who)
        return token.strip(), (
            f"Signed in as **{who.username}** (role **{who.role}**; decides for: "
            f"{', '.join(roles) or 'nothing'})"
        )

    def sign_out():
        return None, "Signed out."

    # ---- orders ----
    def triage_paste(token: str | None, text: str):
        """Triage the orders a paste names: order numbers, or a whole e-mail."""
        principal(token)
        text = text or ""
        check_text_limits(text)
        if not text.strip():
            return (
                pd.DataFrame(columns=_ORDER_COLUMNS),
                "Paste one or more order numbers or an e-mail.",
                {},
                gr.update(choices=[], value=None),
            )
        if services.features["copilot"]:
            out = services.triage_text(text, explain=False)
            results, not_found = out["results"], list(out.get("not_found") or [])
        else:
            ids = [t.strip(" ,;.") for t in text.split() if t.strip(" ,;.")]
            results = services.triage(ids)
            not_found = [r["order_id"] for r in results if r.get("error")]
        found = [r for r in results if not r.get("error")]
        rows = []
        for r in found:
            rec = r.get("recommendation") or {}
            rows.append(
                {
                    "order": r["order_id"],
                    "exceptions": ", ".join(sorted({e["type"] for e in r.get("exceptions", [])})) or "none",
                    "recommendation": _action_line(rec) if rec else "—",
                    "risk": rec.get("risk") or "—",
                    "approver": rec.get("approver_role") or "—",
                }
            )
        status = f"{len(found)} order(s) triaged."
        if not_found:
            status += " Not found: " + ", ".join(not_found)
        if not found and not not_found:
            status = "No order number found in the text."
        ids = [r["order_id"] for r in found]
        return (
            pd.DataFrame(rows, columns=_ORDER_COLUMNS),
            status,
            {r["order_id"]: r for r in found},
            gr.update(choices=ids, value=ids[0] if ids else None),
        )

    def detail_md(result: dict[str, Any], writing: str | None = None) -> str:
        parts = [f"### {result['order_id']} ({result.get('status', '')})"]
        for e in result.get("exceptions", []):
            where = (
                f" line {e['line_no']}"
                if e.get("line_no")
                else (f" shipment {e['shipment_id']}" if e.get("shipment_id") else "")
            )
            parts.append(f"- **{e['type']}**{where}\n{_evidence_md(e.get('evidence', []))}")
        if not result.get("exceptions"):
            parts.append("No exception holds on this order.")
        rec = result.get("recommendation")
        if rec:
            parts.append(
                f"**Recommendation:** `{_action_line(rec)}` — risk {rec.get('risk')}, approver "
                f"{rec.get('approver_role') or '—'}. {rec.get('reason') or ''}"
            )
        alts = result.get("alternatives") or []
        if alts:
            parts.append(
                "**Alternatives:**\n"
                + "\n".join(f"- `{_action_line(a)}` — {a.get('reason') or ''}" for a in alts)
            )
        exp = result.get("explanation")
        if exp:
            note = f" _(fact-only fallback: {exp.get('reason')})_" if exp.get("fallback") else ""
            cites = ", ".join(_citation_text(c) for c in exp.get("citations", []))
            parts.append(f"**Explanation:**{note}\n\n{exp.get('text', '')}\n\nSOPs: {cites or '—'}")
        elif writing is not None:
            parts.append(f"**Explanation** _(the model is writing)_:\n\n{writing}")
        return "\n\n".join(parts)

    def order_detail(token: str | None, order_id: str | None, cache: dict[str, Any]) -> Iterator[str]:
        """Evidence, alternatives at once; the explanation as the model writes it."""
        principal(token)
        if not order_id:
            yield "Select an order."
            return
        result = (cache or {}).get(order_id) or services.triage([order_id])[0]
        if result.get("error"):
            yield f"**Not found:** {result['error']}"
            return
        if "explanation" in result or not result.get("exceptions"):
            yield detail_md(result)
            return
        yield detail_md(result, "…")
        written = ""
        for event in services.triage_stream([order_id]):
            if event.get("type") == "token":
                written += str(event.get("text", ""))
                yield detail_md(result, written)
            elif event.get("type") == "final" and event.get("results"):
                yield detail_md(event["results"][0])

    def request_approval(token: str | None, order_id: str | None):
        """Request approval of the order's recommended action, as the signed-in user."""
        who = principal(token)
        if not order_id:
            return "Select an order first."
        req = services.request_action(who, order_id=order_id, source="panel")
        guard = req.get("guard") or {}
        text = (
            f"Request **#{req['id']}** `{_action_line(req)}` is **{req['status']}**; approver role "
            f"**{req.get('approver_role') or '—'}**."
        )
        if guard and not guard.get("ok", True):
            text += "\n\nGuard: " + "; ".join(guard.get("reasons") or [])
        return text

    # ---- approvals ----
    def load_queue(token: str | None):
        """The pending requests the signed-in role may decide."""
        who = principal(token)
        items = services.queue(who)
        rows = [
            {
                "id": r["id"],
                "order": r.get("order_id"),
                "action": r["action"],
                "params": _fmt_params(r.get("params")),
                "risk": r.get("risk"),
                "approver": r.get("approver_role"),
                "requested by": r.get("requested_by"),
                "guard": "ok" if (r.get("guard") or {}).get("ok", True) else "blocked",
            }
            for r in items
        ]
        ids = [str(r["id"]) for r in items]
        status = f"{len(items)} pending for {who.role}." if items else f"Nothing pending for {who.role}."
        return (
            pd.DataFrame(rows, columns=_QUEUE_COLUMNS),
            gr.update(choices=ids, value=ids[0] if ids else None),
            status,
        )

    def request_detail(token: str | None, request_id: str | None):
        """Evidence, guard result and citations of one request."""
        principal(token)
        if not request_id:
            return "Select a request.", ""
        req = services.get_request(int(request_id))
        guard = req.get("guard") or {}
        guard_text = (
            "passed" if guard.get("ok", True) else "blocked: " + "; ".join(guard.get("reasons") or [])
        )
        md = (
            f"### Request #{req['id']}: `{_action_line(req)}`\n\nOrder **{req.get('order_id')}**, exception "
            f"{req.get('exception_type') or '—'}, risk **{req.get('risk')}**, approver **{req.get('approver_role')}**, "
            f"requested by {req.get('requested_by')}, status **{req['status']}**.\n\n**Evidence:**\n"
            f"{_evidence_md(req.get('evidence') or [])}\n\n**Guard:** {guard_text}\n\n**SOP citations:** "
            f"{', '.join(_citation_text(c) for c in req.get('citations') or []) or '—'}"
        )
        return md, json.dumps(req.get("params") or {}, indent=1)

    def decide(decision: str):
        def run(token: str | None, request_id: str | None, reason: str, params_text: str):
            who = principal(token)
            if not request_id:
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
            req = services.decide(
                who, int(request_id), decision, reason=(reason or "").strip() or None, params=params
            )
            text = f"Request **#{req['id']}** is now **{req['status']}** (decided by {who.username}, {who.role})."
            execution = req.get("execution")
            if execution:
                text += f"\n\nExecution: **{execution.get('status')}** {json.dumps(execution.get('result'), default=str)}"
            return text

        run.__name__ = f"{decision}_request"
        return run

    # ---- dashboard ----
    def dashboard(token: str | None):
        """Exception counts by type, warehouse and tier, aging, acceptance and override rates."""
        principal(token)
        k = services.kpis()
        freq, aging = k.get("exception_frequency", {}), k.get("exception_aging", {})
        acc, over = k.get("recommendation_acceptance_rate", {}), k.get("override_rate", {})

        def frame(counts: dict[str, Any], x: str) -> pd.DataFrame:
            return pd.DataFrame({x: list(counts), "count": [int(v) for v in counts.values()]})

        rates = pd.DataFrame(
            {"rate": ["acceptance", "override"], "share": [acc.get("value") or 0.0, over.get("value") or 0.0]}
        )
        summary = (
            f"{freq.get('total', 0):,} exceptions on {freq.get('orders_with_exceptions', 0):,} of "
            f"{freq.get('orders', 0):,} orders; {aging.get('open', 0):,} open, median age "
            f"{aging.get('p50_hours') or 0:.1f} h. Decided recommendations: {acc.get('decided', 0)} "
            f"(acceptance {acc.get('value') if acc.get('value') is not None else '—'}, override "
            f"{over.get('value') if over.get('value') is not None else '—'})."
        )
        return (
            frame(freq.get("by_type", {}), "type"),
            frame(freq.get("by_warehouse", {}), "warehouse"),
            frame(freq.get("by_customer_tier", {}), "tier"),
            frame(aging.get("buckets", {}), "age"),
            rates,
            summary,
        )

    def dashboard_ops(token: str | None):
        """Model-monitoring warnings (drift of the risk model's inputs, override rates) and the
        recurring anomalies, most costly first, with their process-redesign suggestions."""
        principal(token)
        rows = []
        if services.features["anomalies"]:
            rows = [
                {
                    "rank": a["rank"],
                    "type": a["type"],
                    "on": a["dimension"],
                    "key": a["key"],
                    "orders": a["orders"],
                    "open": a["open_orders"],
                    "touches": a["touches"],
                    "expedite $": a["expedite_spend"],
                    "delayed value $": a["delayed_value"],
                    "cost $": a["cost_usd"],
                    "suggestion": a["suggestion"]["text"],
                    "owner": a["suggestion"]["owner_role"],
                }
                for a in services.anomalies()
            ]
        return pd.DataFrame(rows, columns=_ANOMALY_COLUMNS), monitoring_md() + "\n\n" + (
            f"**Recurring anomalies:** {len(rows)}, most costly first."
            if rows
            else "**Recurring anomalies:** none."
        )

    def monitoring_md() -> str:
        if not services.features["monitoring"]:
            return ""
        m = services.monitoring()
        drift, over = m["drift"], m["override_rate"]
        if m["warnings"]:
            text = "### Warning: model monitoring\n" + "\n".join(f"- {w}" for w in m["warnings"])
        else:
            text = "**Model monitoring:** no warning."
        t = m["thresholds"]
        if drift["status"] == "ok":
            text += f"\n\nInput drift: max PSI {drift['max_psi']} (warning above {t['psi_warn']})."
        else:
            text += f"\n\nInput drift not measured: {drift.get('reason')}."
        rates = ", ".join(f"{a} {e['overridden']}/{e['decided']}" for a, e in over["by_action"].items())
        text += (
            f" Overrides by recommended action: {rates or 'none decided'} (warning above "
            f"{t['override_warn']:.0%} once {int(t['override_min_decided'])} are decided)."
        )
        return text

    # ---- audit ----
    def audit_search(token: str | None, order_id: str, event_type: str, request_id: str):
        """Audit events (the chain's first 500 that match, shown newest first), filtered by order, event type or request."""
        principal(token)
        rid = int(request_id) if (request_id or "").strip().isdigit() else None
        events = services.audit_events(
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
        return pd.DataFrame(rows, columns=_AUDIT_COLUMNS), f"{len(rows)} event(s)."

    def audit_verify(token: str | None):
        """Recompute the hash chain."""
        principal(token)
        res = services.verify_chain()
        if res.get("ok"):
            return f"**Chain intact:** {res.get('events', 0):,} events."
        return f"**Chain broken**  at seq {res.get('first_bad_seq')}: {res.get('reason')}"

    # ---- chat ----
    def chat(
        token: str | None, thread: str | None, message: str, history: list[dict[str, Any]] | None
    ) -> Iterator[tuple[Any, ...]]:
        """Ask the copilot; the answer streams, with the tools it called and the SOPs it cited."""
        history = list(history or [])
        try:
            who = principal(token)
        except _expected() as exc:
            yield history, _message(exc), thread, message
            return
        message = (message or "").strip()
        if not message:
            yield history, "Type a question.", thread, ""
            return
        thread = thread or uuid.uuid4().hex[:16]
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        tools: list[str] = []
        cites: list[str] = []
        notes: list[str] = []

        def side() -> str:
            return (
                f"**Tools called:** {', '.join(tools) or '—'}\n\n**SOP citations:** {', '.join(cites) or '—'}"
            )

        yield history, side(), thread, ""
        try:
            for event in services.chat_stream(f"{who.username}:{thread}", message, who):
                kind = event.get("type")
                if kind == "token":
                    history[-1]["content"] += str(event.get("text", event.get("token", "")))
                elif kind == "tool":
                    tools.append(str(event.get("name") or event.get("tool") or "?"))
                elif kind == "citation":
                    cites.append(_citation_text(event.get("citation", event)))
                elif kind == "request":
                    req = event.get("request") or {}
                    notes.append(f"_Requested #{req.get('id')}: {req.get('action')} ({req.get('status')})_")
                    history[-1]["content"] += "\n\n" + notes[-1]
                elif kind == "final":  # the answer (streamed tokens of a fallback are superseded)
                    history[-1]["content"] = "\n\n".join([str(event.get("answer") or ""), *notes])
                    for c in event.get("citations") or []:
                        if _citation_text(c) not in cites:
                            cites.append(_citation_text(c))
                    if event.get("fallback"):
                        history[-1]["content"] += "\n\n_(the model was unavailable: fact-only answer)_"
                yield history, side(), thread, ""
        except _expected() as exc:
            history[-1]["content"] += f"\n\n{_message(exc)}"
            yield history, side(), thread, ""

    # ---- layout ----
    with gr.Blocks(title="Fulfillment-exception copilot", analytics_enabled=False) as blocks:
        token_state = gr.State(None)
        gr.Markdown("## Fulfillment-exception copilot")
        with gr.Row():
            token_box = gr.Textbox(
                label="API token",
                type="password",
                scale=4,
                elem_id="token",
                placeholder="paste your token (copilot demo prints the demo users' tokens)",
            )
            sign_in_btn = gr.Button("Sign in", variant="primary", scale=1, elem_id="sign-in")
            sign_out_btn = gr.Button("Sign out", scale=1)
        who_md = gr.Markdown("Not signed in.", elem_id="who")
        sign_in_btn.click(sign_in, [token_box], [token_state, who_md], api_name="sign_in")
        token_box.submit(sign_in, [token_box], [token_state, who_md], api_visibility="private")
        sign_out_btn.click(sign_out, None, [token_state, who_md], api_name="sign_out")

        with gr.Tabs():
            if services.features["copilot"]:
                with gr.Tab("Chat", id="chat"):
                    thread_state = gr.State(None)
                    with gr.Row():
                        with gr.Column(scale=3):
                            chatbot = gr.Chatbot(label="Copilot", height=420, elem_id="chatbot")
                            chat_box = gr.Textbox(
                                label="Ask", placeholder="What is blocking SO-100042?", elem_id="chat-input"
                            )
                            send_btn = gr.Button("Send", variant="primary")
                        with gr.Column(scale=1):
                            chat_side = gr.Markdown(
                                "**Tools called:** —\n\n**SOP citations:** —", elem_id="chat-side"
                            )
                    for trigger in (send_btn.click, chat_box.submit):
                        trigger(
                            chat,
                            [token_state, thread_state, chat_box, chatbot],
                            [chatbot, chat_side, thread_state, chat_box],
                            api_name="chat" if trigger == send_btn.click else None,
                            api_visibility="public" if trigger == send_btn.click else "private",
                            concurrency_limit=CHAT_CONCURRENCY,
                            concurrency_id="chat",
                        )

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
                    headers=_ORDER_COLUMNS, interactive=False, wrap=True, elem_id="orders-table"
                )
                with gr.Row():
                    order_pick = gr.Dropdown(
                        label="Order", choices=[], elem_id="order-pick", scale=3, allow_custom_value=True
                    )
                    request_btn = gr.Button(
                        "Request approval of the recommendation",
                        elem_id="request-approval",
                        scale=2,
                        visible=services.features["governance"],
                    )
                order_md = gr.Markdown(elem_id="order-detail")
                request_md = gr.Markdown(elem_id="request-status")
                triage_btn.click(
                    guarded(triage_paste, 4, 1),
                    [token_state, paste],
                    [orders_table, orders_status, cache, order_pick],
                    api_name="triage",
                )
                order_pick.change(
                    guarded_stream(order_detail),
                    [token_state, order_pick, cache],
                    [order_md],
                    api_name="order_detail",
                )
                if services.features["governance"]:
                    request_btn.click(
                        guarded(request_approval, 1, 0),
                        [token_state, order_pick],
                        [request_md],
                        api_name="request_approval",
                    )

            if services.features["governance"]:
                with gr.Tab("Approvals", id="approvals"):
                    refresh_q = gr.Button("Refresh queue", elem_id="refresh-queue")
                    queue_status = gr.Markdown(elem_id="queue-status")
                    queue_table = gr.Dataframe(
                        headers=_QUEUE_COLUMNS, interactive=False, wrap=True, elem_id="queue-table"
                    )
                    req_pick = gr.Dropdown(
                        label="Request", choices=[], elem_id="request-pick", allow_custom_value=True
                    )
                    req_md = gr.Markdown(elem_id="request-detail")
                    params_box = gr.Code(
                        label="Parameters (JSON; used by Edit)", language="json", elem_id="params"
                    )
                    reason_box = gr.Textbox(label="Reason", elem_id="reason")
                    with gr.Row():
                        approve_btn = gr.Button("Approve", variant="primary", elem_id="approve")
                        reject_btn = gr.Button("Reject", variant="stop", elem_id="reject")
                        edit_btn = gr.Button("Edit and approve", elem_id="edit")
                    decision_md = gr.Markdown(elem_id="decision-status")
                    refresh_q.click(
                        guarded(load_queue, 3, 2),
                        [token_state],
                        [queue_table, req_pick, queue_status],
                        api_name="queue",
                    )
                    req_pick.change(
                        guarded(request_detail, 2, 0),
                        [token_state, req_pick],
                        [req_md, params_box],
                        api_name="request_detail",
                    )
                    for btn, what in ((approve_btn, "approve"), (reject_btn, "reject"), (edit_btn, "edit")):
                        btn.click(
                            guarded(decide(what), 1, 0),
                            [token_state, req_pick, reason_box, params_box],
                            [decision_md],
                            api_name=what,
                        )

            if services.features["kpis"]:
                with gr.Tab("Dashboard", id="dashboard"):
                    refresh_d = gr.Button("Refresh", elem_id="refresh-dashboard")
                    dash_md = gr.Markdown(elem_id="dashboard-summary")
                    with gr.Row():
                        by_type = gr.BarPlot(
                            x="type", y="count", title="Exceptions by type", x_label_angle=-40
                        )
                        by_wh = gr.BarPlot(x="warehouse", y="count", title="By warehouse")
                    with gr.Row():
                        by_tier = gr.BarPlot(x="tier", y="count", title="By customer tier")
                        by_age = gr.BarPlot(x="age", y="count", title="Open exceptions by age")
                        rates = gr.BarPlot(
                            x="rate",
                            y="share",
                            title="Recommendations: acceptance and override",
                            y_lim=[0, 1],
                        )
                    monitoring_out = gr.Markdown(elem_id="dashboard-monitoring")
                    anomaly_table = gr.Dataframe(
                        headers=_ANOMALY_COLUMNS,
                        interactive=False,
                        wrap=True,
                        label="Recurring anomalies, most costly first",
                        elem_id="anomalies-table",
                    )
                    refresh_d.click(
                        guarded(dashboard, 6, 5),
                        [token_state],
                        [by_type, by_wh, by_tier, by_age, rates, dash_md],
                        api_name="dashboard",
                    )
                    refresh_d.click(
                        guarded(dashboard_ops, 2, 1),
                        [token_state],
                        [anomaly_table, monitoring_out],
                        api_name="dashboard_ops",
                    )

            if services.features["audit"]:
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
                        headers=_AUDIT_COLUMNS, interactive=False, wrap=True, elem_id="audit-table"
                    )
                    search_btn.click(
                        guarded(audit_search, 2, 1),
                        [token_state, a_order, a_type, a_req],
                        [audit_table, audit_status],
                        api_name="audit_search",
                    )
                    verify_btn.click(
                        guarded(audit_verify, 1, 0), [token_state], [audit_status], api_name="audit_verify"
                    )

    blocks.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    return blocks


def mount_panel(app, services: Services):
    """Mount the panel on ``app`` at :data:`PANEL_PATH` (same process, same port as the API)."""
    blocks = build_panel(services)
    return gr.mount_gradio_app(app, blocks, path=PANEL_PATH, theme=theme(), show_error=True)
