"""`copilot whatif ORDER`: what a proposed action would do to the other open orders (domain.md §6).

The action (default: the order's recommendation) is applied in a transaction that is rolled back;
nothing is written. Heavy modules are imported inside the command (start-up time of the CLI).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import engine, policy, print_json
from ui.cli.governance import _action_params, _params


def register(app: typer.Typer) -> None:
    """Add this module's command to the ``copilot`` application."""
    app.command("whatif")(whatif)


def whatif(
    order_id: Annotated[str, typer.Argument(help="Order id such as SO-100042.")],
    action: Annotated[
        str | None, typer.Option(help="An action of the catalog; default: the order's recommendation.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            help='Parameters as JSON, e.g. \'{"order_id": "SO-1", "line_no": 1, "to_warehouse_id": "WH-2"}\'.'
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What an action would do to the other open orders: the exceptions it would create or clear on
    each, with the customer's tier and the order value. Nothing is written."""
    from agent.governance.impact import describe
    from agent.governance.impact import whatif as compute
    from tools.db import session_factory

    values = _action_params(action, order_id, _params(params))
    with session_factory(engine())() as session:
        try:
            result = compute(session, policy(), order_id=order_id, action=action, params=values)
        finally:
            session.rollback()
    if as_json:
        print_json(result)
        return
    for line in describe(result):
        typer.echo(line)
