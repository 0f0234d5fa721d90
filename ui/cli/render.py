"""Terminal rendering of records for people (rich tables). JSON output lives in the commands."""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.table import Table

from tools.rules import is_closed

__all__ = ["console", "escape", "inert", "render_order", "render_triage"]

# Characters a customer's note, an e-mail or a model's text must not send to the terminal as they
# are: C0/C1 controls (ESC starts a terminal command: clear the screen, retitle the window, fake
# colours; CR and LF forge whole lines) and the bidirectional overrides that reorder what is shown.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def inert(value: Any, *, newlines: bool = False) -> str:
    """``value`` with every control character shown as its escape (``\\x1b``, ``\\r``) instead of
    sent to the terminal (plain output: ``typer.echo``); see :func:`escape` for rich output."""
    pattern = _CONTROLS_BUT_NEWLINE if newlines else _CONTROLS
    return pattern.sub(lambda m: ascii(m.group())[1:-1], str(value))


def escape(value: Any, *, newlines: bool = False) -> str:
    """``value`` as inert text for a rich console: markup escaped, and every control character
    shown as its escape (``\\x1b``, ``\\r``), never sent to the terminal; ``newlines`` keeps line
    breaks (a multi-line text of the copilot's own), else they show as ``\\n`` too."""
    return _escape_markup(inert(value, newlines=newlines))


def console() -> Console:
    """The terminal's width on a terminal; wide enough for the tables when piped or captured."""
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _v(value: Any) -> str:
    if value is None or value == "":
        return "[red]—[/red]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def render_order(view: dict[str, Any]) -> None:
    out = console()
    customer = view["customer"] or {}
    credit = view["credit"] or {}
    ship = view["ship_to"]
    out.print(
        f"[bold]{view['order_id']}[/bold]  status [bold]{view['status']}[/bold]"
        f"{'  (credit released)' if view['credit_released'] else ''}  channel {_v(view['channel'])}"
    )
    out.print(
        f"ordered {_v(view['order_date'])}  requested {_v(view['requested_date'])}  "
        f"promised {_v(view['promised_date'])}  warehouse {_v(view['warehouse_id'])}  "
        f"value {view['order_value']} {view['currency']}"
    )
    out.print(
        f"ship to: {_v(ship['street'])}, {_v(ship['city'])} {_v(ship['postal_code'])}, {_v(ship['country'])}"
    )
    if customer:
        out.print(
            f"customer {customer['customer_id']} {_v(customer['name'])} ({customer['tier']}, {_v(customer['country'])})"
            f"  substitutions {_v(customer['allow_substitutions'])}  partials {_v(customer['allow_partial_shipments'])}"
            f"  export licence {_v(customer['export_license'])}  other open orders {customer['other_open_orders']}"
        )
        out.print(
            f"credit: limit {credit['credit_limit']}  open {credit['open_balance']}  overdue {credit['overdue_balance']}"
            f"  hold {_v(credit['credit_hold'])}  headroom after this order {credit['headroom_after_order']}"
        )
    else:
        out.print("[red]customer record missing[/red]")
    if view["customer_note"]:
        # A customer's words are data: shown quoted, never interpreted.
        out.print(f'customer note (verbatim): "{escape(view["customer_note"])}"')

    lines = Table(title="lines", title_justify="left")
    for header in (
        "#",
        "sku",
        "description",
        "qty",
        "unit price",
        "wh",
        "alloc",
        "backord",
        "open",
        "status",
        "avail here",
        "avail all",
    ):
        lines.add_column(
            header,
            justify="right"
            if header in {"qty", "unit price", "alloc", "backord", "open", "avail here", "avail all"}
            else "left",
        )
    for ln in view["lines"]:
        sku = _v(ln["sku"]) + (f" (was {ln['original_sku']})" if ln["original_sku"] else "")
        if ln["item_status"] != "active":
            sku += f" [red]{ln['item_status']}[/red]"
        short = ln["open_qty"] > ln["available_here"] and not is_closed(ln["status"])
        lines.add_row(
            str(ln["line_no"]),
            sku,
            _v(ln["description"]),
            str(ln["qty"]),
            _v(ln["unit_price"]),
            _v(ln["warehouse_id"]),
            str(ln["allocated_qty"]),
            str(ln["backorder_qty"]),
            f"[red]{ln['open_qty']}[/red]" if short else str(ln["open_qty"]),
            ln["status"],
            str(ln["available_here"]),
            str(ln["available_all_warehouses"]),
        )
    out.print(lines)
    if view["shipments"]:
        shipments = Table(title="shipments", title_justify="left")
        for header in (
            "shipment",
            "carrier",
            "carrier status",
            "service",
            "status",
            "planned",
            "eta",
            "freight",
        ):
            shipments.add_column(header)
        for sh in view["shipments"]:
            shipments.add_row(
                sh["shipment_id"],
                f"{_v(sh['carrier_id'])} {_v(sh['carrier_name'])}",
                sh["carrier_status"],
                sh["service_level"],
                sh["status"],
                _v(sh["planned_ship_date"]),
                _v(sh["eta"]),
                _v(sh["freight_cost"]),
            )
        out.print(shipments)
    else:
        out.print("no shipments yet")


def _action(option: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in option["params"].items())
    return (
        f"[bold]{option['action']}[/bold]({escape(params)})  risk {option['risk']}, "
        f"approver {option['approver_role']} — {escape(option['reason'])}"
    )


def render_triage(results: list[dict[str, Any]]) -> None:
    """A readable report per order: exceptions with evidence, the recommendation, the plan."""
    out = console()
    for r in results:
        if "error" in r:
            out.print(f"[bold]{escape(r['order_id'])}[/bold]: [red]{r['error']}[/red]\n")
            continue
        n = len(r["exceptions"])
        out.print(
            f"[bold]{r['order_id']}[/bold] ({r['status']}): "
            + (f"{n} exception{'s' if n != 1 else ''}" if n else "[green]flows — no exception[/green]")
        )
        for exc in r["exceptions"]:
            where = (
                f" line {exc['line_no']}"
                if exc["line_no"]
                else (f" shipment {exc['shipment_id']}" if exc["shipment_id"] else "")
            )
            out.print(f"  [yellow]{exc['type']}[/yellow]{where}")
            for fact in exc["evidence"]:
                out.print(f"    · {escape(fact)}")
        if r["recommendation"]:
            out.print(f"  → recommend {_action(r['recommendation'])}")
        for step in r["plan"][1:]:
            out.print(f"    then {_action(step)}")
        for alt in r["alternatives"][:3]:
            out.print(f"    [dim]alternative {_action(alt)}[/dim]")
        for blocked in (c for o in r["options"] for c in o["candidates"] if not c["feasible"]):
            out.print(f"    [dim]not {blocked['action']}: {escape(blocked['reason'])}[/dim]")
        for gap in r["missing"]:
            out.print(f"  [red]missing:[/red] {escape(gap)}")
        out.print()
