"""Governance commands: `copilot actions ...`, `copilot users ...` (the audit log's are ``ui.cli.audit``,
API tokens' ``ui.cli.tokens``).

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands.
A refused decision (wrong role, own request, already decided, guard) prints one line and exits 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ui.cli.common import CliError, check_choice, engine, id_argument, policy, print_json, scoped_factory

actions_app = typer.Typer(help="Action requests: propose, list, approve, reject, edit.", no_args_is_help=True)
users_app = typer.Typer(help="People and their roles.", no_args_is_help=True)

AsUser = Annotated[str, typer.Option("--as", help="Your user name (e.g. planner, credit_manager).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OptionalAs = Annotated[
    str | None, typer.Option("--as", help="As this user: a user limited to some sites sees only theirs.")
]
Regions = Annotated[
    list[str] | None, typer.Option("--region", help="A region the user is limited to (repeatable).")
]
Warehouses = Annotated[
    list[str] | None, typer.Option("--warehouse", help="A warehouse the user is limited to (repeatable).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    from ui.cli import audit as cli_audit
    from ui.cli import tokens as cli_tokens

    app.add_typer(actions_app, name="actions")
    app.add_typer(cli_audit.audit_app, name="audit")
    users_app.add_typer(cli_tokens.token_app, name="token")
    app.add_typer(users_app, name="users")


def _factory(as_user: str | None = None):
    """Sessions on the database; with ``as_user``, limited to that user's sites (``tools.sites``)."""
    from agent.governance.users import factory_for
    from tools.db import session_factory

    return factory_for(session_factory(engine()), as_user)


def _reader(as_user: str | None):
    """Sessions for a read command's ``--as``: that user's sites; an unknown user is refused."""
    from tools.db import session_factory

    return scoped_factory(session_factory(engine()), as_user)


def _not_a_number(name: str) -> Any:
    raise CliError(f"--params: {name} is not a value a parameter may hold (numbers must be finite)")


def _params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=_not_a_number)
    except json.JSONDecodeError as exc:
        raise CliError(f"--params must be a JSON object, e.g. '{{\"line_no\": 1}}': {exc.msg}") from None
    if not isinstance(value, dict):
        raise CliError("--params must be a JSON object, e.g. '{\"line_no\": 1}'")
    return value


def _action_params(action: str | None, order_id: str, given: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parameters of ``--action`` without ``--params``: the order when the action takes
    ``order_id`` (e.g. RELEASE_CREDIT_HOLD, whose only parameter it is), else none — so the guard
    names what is missing, not an ``order_id`` the user never gave (EXPEDITE_PO, ESCALATE)."""
    if not action or given is not None:
        return given
    spec = policy().actions.get(action.strip().upper())
    takes = {} if spec is None else {**spec.params, **spec.optional_params}
    return {"order_id": order_id} if spec is None or "order_id" in takes else {}


def _line(req: dict[str, Any]) -> str:
    from ui.cli.render import inert

    params = inert(
        ", ".join(f"{k}={v}" for k, v in req["params"].items())
    )  # e.g. a ship-to an approver typed
    return (
        f"#{req['id']:<5} {req['status']:<16} {req['action']:<21} {req['order_id'] or '':<12} "
        f"risk {req['risk']:<6} approver {req['approver_role']:<22} by {req['requested_by']:<16} {params}"
    )


def _show(req: dict[str, Any]) -> None:
    from ui.cli.render import inert

    typer.echo(_line(req))
    guard = req.get("guard") or {}
    for reason in guard.get("reasons") or []:
        typer.echo(f"  guard: {reason}")
    for d in req.get("decisions") or []:
        typer.echo(
            f"  {d['decision']} by {d['decided_by']} ({d['role']}) at {d['decided_at']}"
            + (f": {inert(d['reason'])}" if d.get("reason") else "")
        )
    ex = req.get("execution")
    if ex:
        detail = (ex.get("result") or {}).get("reason") or json.dumps((ex.get("result") or {}).get("changes"))
        typer.echo(f"  execution {ex['status']}: {detail}")


@actions_app.command("list")
def actions_list(
    status: Annotated[
        str | None,
        typer.Option(help="pending_approval, approved, rejected, blocked, executed, failed, proposed."),
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="The queue of a role: what it may decide (hierarchy included).")
    ] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this order's requests.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_user: OptionalAs = None,
    as_json: Json = False,
) -> None:
    """List action requests, newest first (read from the database: pending approvals survive restarts)."""
    from agent.governance.requests import list_requests
    from tools.models import ENUMS

    pol = policy()
    check_choice(status, ENUMS["request_status"], "--status")
    check_choice(role, pol.roles, "--role")
    rows = list_requests(_reader(as_user), status=status, role=role, order_id=order, limit=limit, policy=pol)
    if as_json:
        print_json(rows)
        return
    for req in rows:
        typer.echo(_line(req))
    if not rows:
        typer.echo("no action requests")


@actions_app.command("show")
def actions_show(
    request_id: Annotated[int, id_argument("Request id.")],
    as_user: OptionalAs = None,
    as_json: Json = False,
) -> None:
    """One request with its guard result, decisions and execution."""
    from agent.governance.requests import get_request

    req = get_request(_reader(as_user), request_id)
    print_json(req) if as_json else _show(req)


@actions_app.command("request")
def actions_request(
    order_id: Annotated[str, typer.Argument(help="Order id such as SO-100042.")],
    as_user: AsUser,
    action: Annotated[
        str | None, typer.Option(help="An action of the catalog; default: the order's recommendation.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            help='Parameters as JSON, e.g. \'{"order_id": "SO-1", "line_no": 1, "to_warehouse_id": "WH-2"}\'; default with --action: {"order_id": ORDER_ID}.'
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Propose an action for an order: it is guarded and waits for a person with the role to decide.

    Prints the request id (with --json the request). A request the guard blocks is kept, with its
    reasons, and the command exits 2. The same action with the same parameters asked again by its
    requester while the first has not run files nothing: that one is printed (``repeated`` in
    --json); another user is refused, naming it.
    """
    from agent.governance.requests import request_action

    values = _action_params(action, order_id, _params(params))
    req = request_action(
        _factory(as_user),
        policy(),
        order_id=order_id,
        requested_by=as_user,
        action=action,
        params=values,
        source="cli",
    )
    if as_json:
        print_json(req)
    else:
        typer.echo(
            f"request {req['id']}: {req['action']} {json.dumps(req['params'])} -> {req['status']}"
            + (
                f" (approver: {req['approver_role']}, risk {req['risk']})"
                if req["status"] == "pending_approval"
                else ""
            )
        )
        for reason in (req["guard"] or {}).get("reasons") or []:
            typer.echo(f"  guard: {reason}")
        if req.get("repeated"):
            typer.echo(
                f"  already asked: request {req['id']} (by {req['requested_by']}) has not run yet; nothing new filed"
            )
    if req["status"] == "blocked":
        raise typer.Exit(2)


def _refuse_cli_decision(request_id: int, user: str, decision: str) -> None:
    """Log the refused attempt (with the OS account and host, as every CLI event) and exit 2."""
    from agent.governance.audit import EVENT_DECISION_REFUSED, append_event
    from agent.governance.requests import write_session

    with write_session(_factory()) as s:
        append_event(
            s,
            EVENT_DECISION_REFUSED,
            actor=user[:64],
            request_id=request_id,
            payload={"decision": decision, "reason": "decisions from the command line are off"},
        )
    from agent.governance.requests import CLI_DECISIONS_OFF

    raise CliError(CLI_DECISIONS_OFF)


def _decide(
    request_id: int, user: str, decision: str, reason: str | None, params: str | None, as_json: bool
) -> None:
    from agent.governance.requests import decide

    pol = policy()
    if not pol.governance.cli_decisions:
        _refuse_cli_decision(request_id, user, decision)
    req = decide(
        _factory(user),
        pol,
        request_id,
        username=user,
        decision=decision,
        reason=reason,
        params=_params(params),
    )
    if as_json:
        print_json(req)
    else:
        _show(req)
        if decision == "edit" and req["status"] == "pending_approval":
            typer.echo(
                f"  the edit changed the risk or the approver role: back to pending for "
                f"{req['approver_role']} ({req['risk']} risk); another person with that role decides it"
            )
    if req["status"] == "failed":
        raise typer.Exit(1)


@actions_app.command("approve")
def actions_approve(
    request_id: Annotated[int, id_argument("Request id.")],
    as_user: AsUser,
    reason: Annotated[str | None, typer.Option(help="Why (optional).")] = None,
    as_json: Json = False,
) -> None:
    """Approve a pending request; it executes at once (exactly once). Exits 1 if the execution failed."""
    _decide(request_id, as_user, "approve", reason, None, as_json)


@actions_app.command("reject")
def actions_reject(
    request_id: Annotated[int, id_argument("Request id.")],
    as_user: AsUser,
    reason: Annotated[str, typer.Option(help="Why (required).")] = "",
    as_json: Json = False,
) -> None:
    """Reject a pending request (a reason is required)."""
    _decide(request_id, as_user, "reject", reason, None, as_json)


@actions_app.command("edit")
def actions_edit(
    request_id: Annotated[int, id_argument("Request id.")],
    as_user: AsUser,
    params: Annotated[
        str, typer.Option(help='Changed parameters as JSON, e.g. \'{"ship_to_city": "Boston"}\'.')
    ],
    reason: Annotated[str | None, typer.Option(help="Why (optional).")] = None,
    as_json: Json = False,
) -> None:
    """Approve with changed parameters: they go through the guard again, then execute."""
    _decide(request_id, as_user, "edit", reason, params, as_json)


@actions_app.command("resume")
def actions_resume(request_id: Annotated[int, id_argument("Request id.")], as_json: Json = False) -> None:
    """Carry on a request a crash left half-way (proposed, or approved but not executed); idempotent.

    Exits 1 when the request failed (now or before), with the reason."""
    from agent.governance.requests import resume_request

    req = resume_request(_factory(), policy(), request_id)
    if as_json:
        print_json(req)
    else:
        _show(req)
        if req["status"] == "failed":
            typer.echo(f"request {req['id']} failed: {req.get('error') or 'no reason recorded'}")
    if req["status"] == "failed":
        raise typer.Exit(1)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name: lowercase letters, digits, '.', '_' or '-'.")],
    role: Annotated[str, typer.Option(help="A role of the policy file, e.g. planner or credit_manager.")],
    display_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    region: Regions = None,
    warehouse: Warehouses = None,
) -> None:
    """Add a user with a role (optionally limited to regions and/or warehouses: see `users scope`)."""
    from agent.governance.requests import write_session
    from agent.governance.users import add_user, set_scope

    pol = policy()
    with write_session(_factory()) as s:
        user = add_user(s, name, role, display_name, roles=set(pol.roles))
        if region or warehouse:
            user = set_scope(s, user["username"], regions=region, warehouses=warehouse, actor=_by())
    limited = f"; {_sites(user)}" if user["regions"] or user["warehouses"] else ""
    typer.echo(f"added {user['username']} ({user['role']}{limited})")


def _sites(user: dict) -> str:
    parts = [f"region {r}" for r in user["regions"]] + [f"warehouse {w}" for w in user["warehouses"]]
    return ", ".join(parts) if parts else "all sites"


def _by() -> str | None:
    from agent.governance.origin import current_origin

    origin = current_origin()
    return origin.os_user if origin else None


@users_app.command("scope")
def users_scope(
    name: Annotated[str, typer.Argument(help="The user (copilot users list).")],
    region: Regions = None,
    warehouse: Warehouses = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the limits: every site again.")] = False,
    as_json: Json = False,
) -> None:
    """Show or set the sites a user sees: orders booked at these warehouses or in these regions.

    With --region/--warehouse (repeatable) the user's scope is replaced; with --clear it is
    removed; with neither it is shown. A scoped user sees, triages, chats about and decides only
    orders of their sites, through every door (API, panel, chat, CLI --as).
    """
    from agent.governance.requests import write_session
    from agent.governance.users import get_user, set_scope

    if clear and (region or warehouse):
        raise typer.BadParameter("--clear takes no --region or --warehouse")
    if clear or region or warehouse:
        with write_session(_factory()) as s:
            user = set_scope(s, name, regions=region, warehouses=warehouse, actor=_by())
    else:
        with _factory()() as s:
            user = get_user(s, name)
    if as_json:
        print_json({k: user[k] for k in ("username", "role", "regions", "warehouses")})
        return
    typer.echo(f"{user['username']} ({user['role']}): {_sites(user)}")


@users_app.command("list")
def users_list(as_json: Json = False) -> None:
    """List users and their roles."""
    from agent.governance.users import list_users

    with _factory()() as s:
        rows = list_users(s)
    if as_json:
        print_json(rows)
        return
    for u in rows:
        typer.echo(
            f"{u['username']:<24} {u['role']:<22} {'active' if u['active'] else 'inactive':<8} "
            f"{_sites(u):<28} {u['display_name'] or ''}".rstrip()
        )
