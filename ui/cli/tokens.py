"""`copilot users token issue|revoke|list`: API tokens kept hashed in the database.

A token is printed once, when it is issued; the database keeps only its SHA-256. Revoking takes
effect on the service's next request, without a restart. Heavy modules load inside the commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import engine, id_argument, print_json

token_app = typer.Typer(help="API tokens: issue, revoke, list (stored hashed).", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _factory():
    from tools.db import session_factory

    return session_factory(engine())


def _by() -> str | None:
    from agent.governance.origin import current_origin

    origin = current_origin()
    return origin.os_user if origin else None


@token_app.command("issue")
def token_issue(
    username: Annotated[str, typer.Argument(help="The user the token signs in as (copilot users list).")],
    days: Annotated[int, typer.Option(min=1, max=366, help="Days until it expires.")] = 90,
    label: Annotated[str | None, typer.Option(help="What it is for, e.g. 'ERP integration'.")] = None,
    as_json: Json = False,
) -> None:
    """Issue a 256-bit token for USERNAME; it is printed once and stored only as its SHA-256."""
    from agent.governance.requests import write_session
    from agent.governance.tokens import issue_token

    with write_session(_factory()) as s:
        token, record = issue_token(s, username, days=days, label=label, issued_by=_by())
    if as_json:
        print_json({**record, "token": token})
        return
    typer.echo(f"token {record['id']} for {record['username']}, valid until {record['expires_at']}:")
    typer.echo(token)
    typer.echo("(shown once: the database keeps only its hash)", err=True)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, id_argument("The token's id (copilot users token list).")],
) -> None:
    """Revoke a token: the service refuses it from its next request on."""
    from agent.governance.requests import write_session
    from agent.governance.tokens import revoke_token

    with write_session(_factory()) as s:
        record = revoke_token(s, token_id, revoked_by=_by())
    typer.echo(f"token {record['id']} of {record['username']} revoked at {record['revoked_at']}")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: Json = False,
) -> None:
    """Tokens with their user, state (active, expired, revoked) and dates; never the tokens."""
    from agent.governance.tokens import list_tokens

    with _factory()() as s:
        rows = list_tokens(s, username=user)
    if as_json:
        print_json(rows)
        return
    for t in rows:
        typer.echo(
            f"{t['id']:>5} {t['username']:<22} {t['state']:<8} expires {t['expires_at'] or '-':<26} "
            f"{t['label'] or ''}"
        )
    if not rows:
        typer.echo("no API tokens in the database (COPILOT_API_TOKENS and the demo tokens file are separate)")
