"""Work-queue commands: `copilot queue [--role R | --as USER] [--json]`, `copilot queue claim|release|reassign`.

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands,
for start-up time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from ui.cli.common import CliError, engine, id_argument, policy, print_json

queue_app = typer.Typer(
    help="Role work queues: open exceptions by priority, with owner, SLA and recommendation.",
    invoke_without_command=True,
)
AsUser = Annotated[str, typer.Option("--as", help="Your user name (e.g. planner, credit_analyst).")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.add_typer(queue_app, name="queue")
    app.add_typer(autopilot_app, name="autopilot")


def _factory(as_user: str | None = None):
    """Sessions on the database; with ``as_user``, limited to that user's sites (``tools.sites``)."""
    from agent.governance.users import factory_for
    from tools.db import session_factory

    return factory_for(session_factory(engine()), as_user)


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in item.items():
        out[k] = (
            v.isoformat() if isinstance(v, dt.date | dt.datetime) else str(v) if k == "order_value" else v
        )
    return out


@queue_app.callback()
def show(
    ctx: typer.Context,
    role: Annotated[
        str | None, typer.Option(help="The queue of this role (and the roles it covers).")
    ] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Your queue: your role's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, highest priority first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Open exceptions by priority: owner role, SLA due (breached ones escalate by policy), who
    claimed it, and the recommended action. Without --role or --as: every queue."""
    if ctx.invoked_subcommand is not None:
        return
    from agent.flow import load_queue, queue_sizes
    from agent.governance.users import require_user
    from tools.db import read_only

    if role is not None and as_user:  # --as shows that user's role's queue: one would silently lose
        raise CliError("give --role or --as, not both (--as shows that user's role's queue)")
    pol = policy()
    factory = _factory(as_user)  # --as: that user's sites only
    with read_only(factory) as session:
        if as_user:
            role = require_user(session, as_user)["role"]
        if role is not None and role not in pol.roles:
            raise CliError(f"unknown role {role!r}; roles: {', '.join(pol.roles)}")
        items = load_queue(session, pol, role=role, limit=limit)
        sizes = queue_sizes(session, pol)
    if as_json:
        print_json({"role": role, "sizes": sizes, "items": [_jsonable(i) for i in items]})
        return
    typer.echo(
        "queues: "
        + (
            "; ".join(f"{r} {s['open']} open, {s['sla_breached']} past SLA" for r, s in sizes.items())
            or "no open exceptions"
        )
    )
    if not items and sizes:
        typer.echo(f"nothing open in the queue of {role}" if role else "nothing open")
    for i in items:
        rec = i.get("recommendation")
        flags = " SLA BREACHED" if i["sla_breached"] else ""
        flags += f" escalated to {i['escalated_to']}" if i["escalated_to"] else ""
        flags += f" claimed by {i['claimed_by']}" if i["claimed_by"] else ""
        typer.echo(
            f"#{i['id']:<6} {i['priority']:>5}  {i['order_id']} {i['type']} ({i['instance']})  "
            f"owner {i['owner_role']}, due {i['sla_due_at']:%Y-%m-%d %H:%M}{flags}"
        )
        if rec:
            typer.echo(
                f"         recommend {rec['action']} {rec['params']} ({rec['risk']}, {rec['approver_role']})"
            )


def _act(fn, exception_id: int, user: str, **kw) -> dict[str, Any]:
    from agent.governance.users import require_user

    pol = policy()
    with _factory(user)() as session:
        role = require_user(session, user)["role"]
        result = fn(session, pol, exception_id, user=user, role=role, **kw)
        session.commit()
    return result


@queue_app.command("claim")
def claim_cmd(
    exception_id: Annotated[int, id_argument("Exception id (#… in the queue).")],
    as_user: AsUser,
) -> None:
    """Take an open exception: you work on it now (audited)."""
    from agent.flow import claim

    _act(claim, exception_id, as_user)
    typer.echo(f"exception {exception_id} claimed by {as_user}")


@queue_app.command("release")
def release_cmd(exception_id: Annotated[int, id_argument("Exception id.")], as_user: AsUser) -> None:
    """Give a claimed exception back to its queue (audited)."""
    from agent.flow import release

    _act(release, exception_id, as_user)
    typer.echo(f"exception {exception_id} released")


@queue_app.command("reassign")
def reassign_cmd(
    exception_id: Annotated[int, id_argument("Exception id.")],
    to: Annotated[str, typer.Option("--to", help="The role whose queue it moves to.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    as_user: AsUser,
) -> None:
    """Move an exception to another role's queue (audited, with the reason)."""
    from agent.flow import reassign

    _act(reassign, exception_id, as_user, to_role=to, reason=reason)
    typer.echo(f"exception {exception_id} reassigned to {to}")


autopilot_app = typer.Typer(
    help="Policy auto-approval: how often people agreed with each rule.", no_args_is_help=True
)


@autopilot_app.command("report")
def autopilot_report_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per autopilot rule: requests it matched in shadow mode, how people decided them (agreement
    rate), how many it approved live; the touchless rate; queue sizes and SLA breaches per role."""
    from agent.flow import queue_sizes
    from agent.governance.autopilot import autopilot_report
    from tools.db import read_only

    pol = policy()
    with read_only(_factory()) as session:
        report = autopilot_report(session, pol) | {"queues": queue_sizes(session, pol)}
    if as_json:
        print_json(report)
        return
    rate = report["touchless_rate"]
    typer.echo(
        f"automation {'ON' if report['enabled'] else 'OFF (kill switch)'}; touchless: {report['touchless']} of "
        f"{report['executed_requests']} executed requests" + (f" ({rate:.0%})" if rate is not None else "")
    )
    for name, r in report["rules"].items():
        agree = "n/a" if r.get("agreement_rate") is None else f"{r['agreement_rate']:.0%}"
        typer.echo(
            f"  {name} ({r.get('action')}, {r.get('risk')}, {r.get('mode')}): shadow {r['shadow']}, people decided "
            f"{r['decided']}, agreed {r['agreed']} ({agree}), pending {r['pending']}; auto-approved {r['auto_approved']}"
        )
    for role, q in report["queues"].items():
        typer.echo(
            f"  queue {role}: {q['open']} open, {q['sla_breached']} past SLA, {q['escalated']} escalated"
        )
