"""Operations commands: `copilot kpis`, `copilot risk ...`, `copilot anomalies`, `copilot monitor`.

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ui.cli.common import parse_date, print_json

risk_app = typer.Typer(
    help="The risk model: orders likely to hit an exception before release.", no_args_is_help=True
)


AsUser = Annotated[
    str | None, typer.Option("--as", help="As this user: a user limited to some sites gets theirs.")
]


def _session(as_user: str | None = None):
    """A read-only session; with ``as_user``, limited to that user's sites (``tools.sites``)."""
    from tools.db import read_only, session_factory
    from ui.cli.common import engine, scoped_factory

    return read_only(scoped_factory(session_factory(engine()), as_user))  # unknown user: refused


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.1f}{unit}"


def kpis(
    since: Annotated[
        str | None, typer.Option(help="Only orders placed on or after this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON keyed by KPI name.")] = False,
    as_user: AsUser = None,
) -> None:
    """Operations KPIs: exception frequency and aging, touches, cycle time, fill rate, OTIF, expedites,
    SLA adherence, recommendation acceptance and overrides, root-cause recurrence (docs/kpis.md)."""
    from agent.flow import all_kpis
    from ui.cli.common import policy

    day = parse_date(since, "--since")
    rules = policy()  # read and validated once for both sets of figures
    with _session(as_user) as session:
        result = all_kpis(session, rules, day)
    if as_json:
        print_json(result)
        return
    f = result["exception_frequency"]
    typer.echo(
        f"orders{' since ' + since if since else ''}: {f['orders']:,}; with exceptions: "
        f"{f['orders_with_exceptions']:,} ({_pct(f['value'])}); exception instances: {f['total']:,}"
    )
    for name, counts in (
        ("type", f["by_type"]),
        ("warehouse", f["by_warehouse"]),
        ("customer tier", f["by_customer_tier"]),
        ("supplier", f["by_supplier"]),
        ("product family", f["by_product_family"]),
    ):
        top = ", ".join(f"{k} {v:,}" for k, v in list(counts.items())[:6])
        typer.echo(f"  by {name}: {top or '-'}")
    a = result["exception_aging"]
    typer.echo(
        f"open exceptions: {a['open']:,}; age p50 {_num(a['p50_hours'], ' h')}, p90 {_num(a['p90_hours'], ' h')}; "
        + ", ".join(f"{k} {v}" for k, v in a["buckets"].items())
    )
    t = result["manual_touches_per_order"]
    typer.echo(f"manual touches per order: {_num(t['value'])} ({t['touches']:,} approval decisions)")
    c = result["order_cycle_time"]
    typer.echo(
        f"order cycle time: p50 {_num(c['p50_days'], ' d')}, p90 {_num(c['p90_days'], ' d')}, "
        f"mean {_num(c['mean_days'], ' d')} over {c['orders']:,} shipped orders"
    )
    fr, otif, ex = result["fill_rate"], result["on_time_in_full"], result["expedited_freight_incidence"]
    typer.echo(f"fill rate: {_pct(fr['value'])} of units, {_pct(fr['line_fill_rate'])} of lines")
    typer.echo(
        f"on time in full: {_pct(otif['value'])} (on time {_pct(otif['on_time_rate'])}, in full "
        f"{_pct(otif['in_full_rate'])}) over {otif['orders']:,} delivered orders"
    )
    typer.echo(
        f"expedited freight: {_pct(ex['value'])} of orders with a shipment, "
        f"{ex['express_freight_cost']:,.2f} of {ex['freight_cost']:,.2f} freight cost"
    )
    w = result["resolved_within_policy"]
    typer.echo(f"resolved within policy: {_pct(w['value'])} of {w['judged']:,} exceptions")
    acc, ovr = result["recommendation_acceptance_rate"], result["override_rate"]
    typer.echo(
        f"recommendations: accepted {_pct(acc['value'])}, overridden {_pct(ovr['value'])} of {acc['decided']:,} decided"
    )
    r = result["root_cause_recurrence"]
    typer.echo(
        f"root-cause recurrence: {_pct(r['value'])} of the window's exceptions in "
        f"{r['recurring_groups']} recurring groups"
    )
    n = result["notices_sent_within_policy"]
    typer.echo(
        f"customer notices and supplier requests: {n['sent']:,} of {n['due']:,} due sent, "
        f"{_pct(n['value'])} within the SOP's time"
        + "".join(f"; {k} {v['within']}/{v['due']}" for k, v in n["by_type"].items())
    )
    tl, qs = result["touchless_rate"], result["queue_sizes"]
    typer.echo(
        f"touchless: {_pct(tl['value'])} ({tl['touchless']:,} of {tl['executed_requests']:,} executed requests "
        f"decided by policy alone); work queues: {qs['value']:,} open, "
        f"{result['sla_breaches']['value']:,} past SLA"
        + "".join(f"; {k} {v['open']}/{v['sla_breached']}" for k, v in qs["by_role"].items())
    )


def anomalies(
    top: Annotated[int | None, typer.Option(min=1, help="Only the N most costly groups.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, one object per group.")] = False,
    as_user: AsUser = None,
) -> None:
    """Recurring anomalies: exception type × SKU / customer / warehouse / supplier on at least the
    policy's number of orders within its window, ranked by cost, with a process-redesign suggestion."""
    from agent.ops.anomalies import recurring_anomalies
    from ui.cli.common import policy

    with _session(as_user) as session:
        groups = recurring_anomalies(session, policy())
    total = len(groups)
    groups = groups[:top] if top else groups
    if as_json:
        print_json(groups)
        return
    if not groups:
        typer.echo("no recurring anomalies in the recurrence window")
        return
    w = groups[0]["window"]
    shown = f", the {len(groups)} most costly" if len(groups) < total else ""
    typer.echo(
        f"{total} recurring groups{shown}, orders {w['start']}..{w['end']}, at least {w['min_orders']} orders each"
    )
    for g in groups:
        typer.echo(
            f"{g['rank']:>3}. {g['type']} × {g['dimension']} {g['key']}: {g['orders']} orders, "
            f"cost {g['cost_usd']:,.2f} (touches {g['touches']}, expedite {g['expedite_spend']:,.2f}, "
            f"delayed value {g['delayed_value']:,.2f})"
        )
        typer.echo(f"     → {g['suggestion']['text']} [{g['suggestion']['owner_role']}]")


@risk_app.command("train")
def risk_train(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and data give the same model.")] = 0,
    test_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Share of the latest closed orders held out.")
    ] = 0.3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training report as JSON.")] = False,
) -> None:
    """Train the risk model on the closed orders (time-based split) and save it with its report.

    The report gives ROC AUC, PR AUC, Brier score and a reliability table on the held-out later period.
    """
    from agent.ops.risk import train

    with _session() as session:
        report = train(session, seed=seed, test_fraction=test_fraction)
    if as_json:
        print_json(report)
        return
    s, m = report["split"], report["test"]
    typer.echo(
        f"trained on {s['train']['orders']:,} orders {s['train']['from']}..{s['train']['to']}, "
        f"tested on {s['test']['orders']:,} orders {s['test']['from']}..{s['test']['to']}"
    )
    typer.echo(
        f"held-out: ROC AUC {m['roc_auc']}, PR AUC {m['pr_auc']} (positive rate {m['positive_rate']}), "
        f"Brier {m['brier']} (base rate {m['brier_base_rate']}), ECE {m['ece']}"
    )
    typer.echo("calibration (predicted → observed):")
    for b in m["reliability"]:
        typer.echo(
            f"  {b['bin']}: {b['orders']:>6,} orders  {b['mean_predicted']:.3f} → {b['observed_rate']:.3f}"
        )
    typer.echo(
        "top drivers: " + ", ".join(f"{k} {v}" for k, v in list(report["mean_abs_contribution"].items())[:5])
    )
    typer.echo(f"saved {report['artifact']} (sha256 {report['sha256'][:12]}…)")


@risk_app.command("list")
def risk_list(
    top: Annotated[int, typer.Option(min=1, help="How many orders, riskiest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, one object per order.")] = False,
) -> None:
    """Open, unreleased orders most likely to hit an exception, with drivers and a preventive action."""
    from agent.ops.risk import score_open_orders

    with _session() as session:
        scored = score_open_orders(session, top=top)
    if as_json:
        print_json(scored)
        return
    if not scored:
        typer.echo("no open, unreleased orders")
        return
    for o in scored:
        typer.echo(
            f"{o['order_id']}  risk {o['risk']:.1%}  {o['customer_id']}  {o['status']}  promised {o['promised_date']}"
        )
        for d in o["drivers"]:
            typer.echo(
                f"    +{d['contribution'] * 100:.1f} pts  {d['feature']} = {d['value']:g} "
                f"(typical {d['typical']:g}): {d['label']}"
            )
        a = o["suggested_action"]
        if a["action"]:
            params = ", ".join(f"{k}={v}" for k, v in a["params"].items())
            typer.echo(f"    → {a['action']}({params}): {a['why']}")
        else:
            typer.echo(f"    → {a['why']}")


def monitor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Model monitoring: drift (PSI) of the risk model's inputs since training, override rate of
    recommendations by action type, and the warnings past their thresholds."""
    from agent.ops.monitoring import monitoring
    from ui.cli.common import policy

    with _session() as session:
        result = monitoring(session, policy())
    if as_json:
        print_json(result)
        return
    d = result["drift"]
    if d["status"] == "ok":
        typer.echo(f"input drift vs training ({d['orders_now']:,} open orders now), max PSI {d['max_psi']}:")
        for name, f in d["features"].items():
            typer.echo(f"  {name:<24} PSI {f['psi']:.4f}  {f['level']}")
    else:
        typer.echo(f"input drift: {d['reason']}")
    by_action: dict[str, Any] = result["override_rate"]["by_action"]
    if by_action:
        typer.echo("override rate by recommended action:")
        for action, e in by_action.items():
            typer.echo(f"  {action:<22} {e['overridden']}/{e['decided']}  {_pct(e['override_rate'])}")
    else:
        typer.echo("override rate: no decided recommendations yet")
    for w in result["warnings"]:
        typer.echo(f"WARNING: {w}")
    if not result["warnings"]:
        typer.echo("no warnings")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.command("kpis")(kpis)
    app.command("anomalies")(anomalies)
    app.command("monitor")(monitor)
    app.add_typer(risk_app, name="risk")
