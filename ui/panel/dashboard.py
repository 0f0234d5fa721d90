"""The Dashboard tab: exception counts by type, warehouse and customer tier, open exceptions by age,
recommendation acceptance and override rates; the workflow (touchless rate, queue sizes and SLA
breaches per role, how often people agreed with each autopilot rule); the model-monitoring warnings (drift of the risk
model's inputs, override rates) and the recurring anomalies, most costly first."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from agent.flow import queue_sizes
from agent.governance.autopilot import autopilot_report
from ui.api.service import Services
from ui.panel.common import guarded, signed_in

__all__ = ["ANOMALY_COLUMNS", "DashboardTab"]

ANOMALY_COLUMNS = [
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


class DashboardTab:
    def __init__(self, services: Services) -> None:
        self.services = services

    def dashboard(self, token: str | None):
        """Exception counts by type, warehouse and tier, aging, acceptance and override rates."""
        who = signed_in(self.services, token)
        k = self.services.kpis(who)
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

    def dashboard_ops(self, token: str | None):
        """Model-monitoring warnings (drift of the risk model's inputs, override rates) and the
        recurring anomalies, most costly first, with their process-redesign suggestions."""
        who = signed_in(self.services, token)
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
            for a in self.services.anomalies(who)
        ]
        return pd.DataFrame(rows, columns=ANOMALY_COLUMNS), self.monitoring_md() + "\n\n" + (
            f"**Recurring anomalies:** {len(rows)}, most costly first."
            if rows
            else "**Recurring anomalies:** none."
        )

    def workflow_md(self, token: str | None) -> str:
        """The workflow KPIs: touchless rate, queue sizes and SLA breaches per role, and per autopilot
        rule how often people agreed with what it would have approved."""
        who = signed_in(self.services, token)
        with self.services.factory_for(who)() as session:
            report = autopilot_report(session, self.services.policy)
            queues = queue_sizes(session, self.services.policy)  # a scoped user: their sites
            session.rollback()
        rate = report["touchless_rate"]
        lines = [
            f"### Workflow\nAutomation **{'on' if report['enabled'] else 'off (kill switch)'}**; touchless: "
            f"{report['touchless']} of {report['executed_requests']} executed requests"
            + (f" ({rate:.0%})." if rate is not None else "."),
            "",
            "| queue | open | past SLA | escalated | claimed |",
            "|---|---|---|---|---|",
            *(
                f"| {r} | {q['open']} | {q['sla_breached']} | {q['escalated']} | {q['claimed']} |"
                for r, q in queues.items()
            ),
            "",
            "| autopilot rule | mode | shadow matches | people decided | agreed | auto-approved |",
            "|---|---|---|---|---|---|",
            *(
                f"| {name} | {r.get('mode')} | {r['shadow']} | {r['decided']} | "
                f"{'n/a' if r.get('agreement_rate') is None else format(r['agreement_rate'], '.0%')} | {r['auto_approved']} |"
                for name, r in report["rules"].items()
            ),
        ]
        return "\n".join(lines)

    def monitoring_md(self) -> str:
        m = self.services.monitoring()
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

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("Dashboard", id="dashboard"):
            refresh_d = gr.Button("Refresh", elem_id="refresh-dashboard")
            dash_md = gr.Markdown(elem_id="dashboard-summary")
            with gr.Row():
                by_type = gr.BarPlot(x="type", y="count", title="Exceptions by type", x_label_angle=-40)
                by_wh = gr.BarPlot(x="warehouse", y="count", title="By warehouse")
            with gr.Row():
                by_tier = gr.BarPlot(x="tier", y="count", title="By customer tier")
                by_age = gr.BarPlot(x="age", y="count", title="Open exceptions by age")
                rates = gr.BarPlot(
                    x="rate", y="share", title="Recommendations: acceptance and override", y_lim=[0, 1]
                )
            monitoring_out = gr.Markdown(elem_id="dashboard-monitoring")
            workflow_out = gr.Markdown(elem_id="dashboard-workflow")
            anomaly_table = gr.Dataframe(
                headers=ANOMALY_COLUMNS,
                interactive=False,
                wrap=True,
                label="Recurring anomalies, most costly first",
                elem_id="anomalies-table",
            )
            refresh_d.click(
                guarded(self.dashboard, 6, 5),
                [token_state],
                [by_type, by_wh, by_tier, by_age, rates, dash_md],
                api_name="dashboard",
            )
            refresh_d.click(
                guarded(self.dashboard_ops, 2, 1),
                [token_state],
                [anomaly_table, monitoring_out],
                api_name="dashboard_ops",
            )
            refresh_d.click(
                guarded(self.workflow_md, 1, 0), [token_state], [workflow_out], api_name="dashboard_workflow"
            )
