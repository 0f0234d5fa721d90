"""`copilot whatif ORDER`: what a proposed action would do to the other open orders (domain.md §6).

The action (default: the order's recommendation) is applied in a transaction that is rolled back;
nothing is written. Heavy modules are imported inside the command (start-up time of the CLI).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ui.cli.common import engine, policy, print_json
from ui.cli.governance import _params


def register(app: typer.Typer) -> None:
    """Add this module's command to the ``copilot`` application."""
    app.command("whatif")(whatif)


def _exceptions(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{i['type']}" + (f" (line {i['line_no']})" if i.get("line_no") else "") for i in items)


def render(result: dict[str, Any]) -> list[str]:
    """The impact as lines of text (also used by the panel's and chat's plain renderings)."""
    params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
    out = [f"what if {result['action']}({params}) on {result['order_id']}:"]
    if result.get("reason"):
        out.append(f"  {'' if result['feasible'] else 'not feasible: '}{result['reason']}")
        return out
    mine = result.get("this_order") or {}
    if mine.get("clear") or mine.get("appear"):
        out.append(
            f"  {result['order_id']} itself: clears [{_exceptions(mine['clear'])}]"
            + (f", raises [{_exceptions(mine['appear'])}]" if mine["appear"] else "")
        )
    n = result["other_orders_affected"]
    out.append(
        f"  {result['checked_orders']} other open order(s) share a (sku, warehouse) it touches; "
        f"{n} would change"
    )
    for o in result["other_orders"]:
        parts = []
        if o["appear"]:
            parts.append(f"gains [{_exceptions(o['appear'])}]")
        if o["clear"]:
            parts.append(f"clears [{_exceptions(o['clear'])}]")
        out.append(
            f"  - {o['order_id']} ({o['tier'] or 'no tier'} customer {o['customer_id']}, order value "
            f"{o['order_value']}): {'; '.join(parts)}"
        )
    if n > len(result["other_orders"]):
        out.append(f"  … and {n - len(result['other_orders'])} more")
    out.append("  (simulated in a transaction that was rolled back: nothing was written)")
    return out


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
    from agent.governance.impact import whatif as compute
    from tools.db import session_factory

    values = _params(params)
    if action and values is None:
        values = {"order_id": order_id}
    with session_factory(engine())() as session:
        try:
            result = compute(session, policy(), order_id=order_id, action=action, params=values)
        finally:
            session.rollback()
    if as_json:
        print_json(result)
        return
    for line in render(result):
        typer.echo(line)
