"""The triage-ready summary `copilot demo` prints: what the data set holds and what to try."""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import Engine

from tools.dataset import dataset_summary
from tools.db import read_only, session_factory
from tools.rules import OPEN_ORDER_STATUSES
from ui.cli.render import console

__all__ = ["exception_census", "print_summary"]


def exception_census(engine: Engine) -> tuple[int, Counter[str], dict[str, list[str]], int]:
    """Detect exceptions on every open order: (orders with any, orders per type, examples, multi)."""
    from agent.policy import load_policy
    from agent.settings import get_settings
    from agent.triage.detection import detect_open_book

    policy = load_policy(get_settings().policy_path)
    per_type: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    flagged = multi = 0
    with read_only(session_factory(engine)) as session:
        book = detect_open_book(session, policy)
        for order_id in sorted(book):
            types = sorted({d.type for d in book[order_id]})
            if not types:
                continue
            flagged += 1
            multi += len(types) > 1
            for t in types:
                per_type[t] += 1
                if len(examples[t]) < 3:
                    examples[t].append(order_id)
    return flagged, per_type, examples, multi


def print_summary(engine: Engine) -> None:
    out = console()
    with read_only(session_factory(engine)) as session:
        summary = dataset_summary(session)
    rows, meta = summary["rows"], summary["meta"]
    out.print(
        f"[bold]Demo data set[/bold] (seed {meta.get('seed', '?')}, as of {meta.get('as_of', '?')}): "
        f"{rows['orders']:,} orders with {rows['order_lines']:,} lines, {rows['items']:,} SKUs, "
        f"{rows['customers']:,} customers, {rows['warehouses']} warehouses in {len(summary['regions'])} regions "
        f"and {len(summary['countries'])} countries ({', '.join(summary['countries'])}), {rows['carriers']} carriers, "
        f"{rows['suppliers']} suppliers, {rows['purchase_orders']:,} purchase orders, {rows['shipments']:,} shipments"
    )
    statuses = summary["orders_by_status"]
    open_total = summary["open_orders"]
    out.print(
        f"Open book: {open_total:,} orders ("
        + ", ".join(f"{statuses.get(s, 0):,} {s}" for s in OPEN_ORDER_STATUSES)
        + ")"
    )
    flagged, per_type, examples, multi = exception_census(engine)
    share = 100 * flagged / open_total if open_total else 0.0
    out.print(
        f"Open orders with at least one exception: [bold]{flagged:,}[/bold] ({share:.1f} %), "
        f"{multi:,} of them with several"
    )
    for exc_type, n in sorted(per_type.items(), key=lambda kv: (-kv[1], kv[0])):
        out.print(f"  {exc_type:<24} {n:>6,}   e.g. {', '.join(examples[exc_type])}")
    first = next(iter(examples.values()), [None])[0] if examples else None
    out.print("\n[bold]Try:[/bold]")
    if first:
        out.print(f"  .venv/bin/copilot triage {first}          # exceptions, evidence, next-best action")
        out.print(f"  .venv/bin/copilot triage {first} --json")
        out.print(
            f"  .venv/bin/copilot orders show {first}     # the order, its customer, stock and shipments"
        )
    out.print("  .venv/bin/copilot triage --all-open --limit 20")
    out.print('  .venv/bin/copilot knowledge search "who may approve a credit release above 10 % overage?"')
    out.print("  .venv/bin/copilot --help")
