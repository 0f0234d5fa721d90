"""Communications commands: `copilot messages list|show|draft|edit|send`.

Customer notices and supplier requests (domain.md §7): the copilot drafts them when an executed
action makes one due and files them for approval; a person approves (or edits, then approves)
with these commands or `copilot actions approve`; `send` drafts what is due and delivers what is
approved, once. Import only light modules at the top (typer, ``ui.cli.common``): the model and the
database layers load inside the commands (start-up time).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ui.cli.common import check_choice, engine, id_argument, policy, print_json

messages_app = typer.Typer(
    help="Customer notices and supplier requests: drafts, approval, delivery.", no_args_is_help=True
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.add_typer(messages_app, name="messages")


def _factory(as_user: str | None = None):
    """Sessions on the database; with ``as_user``, limited to that user's sites (``tools.sites``)."""
    from agent.governance.users import factory_for
    from tools.db import session_factory

    return factory_for(session_factory(engine()), as_user)


def _llm():
    from agent.llm import get_llm

    return get_llm()


def _line(m: dict[str, Any]) -> str:
    draft = m.get("draft") or {}
    to = m["order_id"] if m["kind"] == "customer" else m["po_id"]
    req = m.get("request") or {}
    marks = (
        " [edited by its approver]"
        if req.get("edited")
        else " [fact-only template]"
        if draft.get("fallback")
        else ""
    )
    return (
        f"#{m['id']:<5} {m['status']:<16} {m['kind']:<8} {to or '':<12} "
        f"request {req.get('id') or '-':<5} {(req.get('subject') or draft.get('subject') or m['reason'])[:70]}{marks}"
    )


def _show(m: dict[str, Any]) -> None:
    typer.echo(_line(m))
    typer.echo(f"  due because: {m['reason']} (at {m['due_at']})")
    typer.echo("  facts:")
    for key, value in (m.get("facts") or {}).items():
        typer.echo(f"    {key}: {value}")
    if m.get("customer_note"):
        typer.echo(f"  customer's note (quoted, never followed): {m['customer_note']!r}")
    draft = m.get("draft") or {}
    req = m.get("request") or {}
    if draft:
        how = (
            f"fact-only template ({draft.get('reason')})"
            if draft.get("fallback")
            else f"{draft.get('model')}, grounded on the first try: {draft.get('first_try_grounded')}"
        )
        typer.echo(f"  drafted by {how}; language {draft.get('language')}")
    if req:
        typer.echo(
            f"  request {req['id']} {req['action']}: {req['status']} (approver {req['approver_role']})"
        )
        typer.echo(f"  Subject: {req['subject']}")
        for line in (req.get("body") or "").splitlines():
            typer.echo(f"  | {line}")
    delivery = m.get("delivery")
    if delivery:
        typer.echo(
            f"  delivery: {delivery['status']} to {delivery['recipient']}, {delivery['message_id']}, "
            f"attempts {delivery['attempts']}"
            + (f", sent {delivery['sent_at']} by {delivery['transport']}" if delivery.get("sent_at") else "")
            + (f", last error: {delivery['last_error']}" if delivery.get("last_error") else "")
        )
    if m.get("error"):
        typer.echo(f"  error: {m['error']}")


@messages_app.command("list")
def messages_list(
    order: Annotated[str | None, typer.Option("--order", help="Only this order's messages.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="due, pending_approval, rejected, queued, sending, sent, failed, blocked."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Json = False,
) -> None:
    """List customer notices and supplier requests, newest first, with their status."""
    from agent.comms.service import MESSAGE_STATUSES, list_messages

    check_choice(status, MESSAGE_STATUSES, "--status")
    rows = list_messages(
        _factory(), order_id=order, status=status, limit=limit, order_numbers=policy().order_numbers
    )
    if as_json:
        print_json(rows)
        return
    for m in rows:
        typer.echo(_line(m))
    if not rows:
        typer.echo("no messages")


@messages_app.command("show")
def messages_show(message_id: Annotated[int, id_argument("Message id.")], as_json: Json = False) -> None:
    """One message: why it is due, its facts, the draft, its approval and its delivery."""
    from agent.comms.service import get_message

    m = get_message(_factory(), message_id)
    print_json(m) if as_json else _show(m)


@messages_app.command("draft")
def messages_draft(
    order_id: Annotated[str, typer.Argument(help="Order id such as SO-100042.")],
    as_user: Annotated[str, typer.Option("--as", help="Your user name (e.g. planner, csr).")],
    as_json: Json = False,
) -> None:
    """Ask for a note to the order's customer: drafted from the facts by the model, filed for approval.

    A notice already due for the order is drafted now; one already waiting for approval is shown."""
    from agent.comms.service import ask_notice

    m = ask_notice(_factory(as_user), policy(), _llm(), order_id=order_id, username=as_user)
    print_json(m) if as_json else _show(m)


@messages_app.command("edit")
def messages_edit(
    message_id: Annotated[int, id_argument("Message id.")],
    as_user: Annotated[
        str, typer.Option("--as", help="Your user name (an approver: csr, procurement_buyer).")
    ],
    subject: Annotated[str | None, typer.Option(help="The new subject.")] = None,
    body: Annotated[str | None, typer.Option(help="The new body ('-' reads it from standard input).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why you changed it (kept with the decision).")] = None,
    as_json: Json = False,
) -> None:
    """Approve the message with an edited subject and/or body: checked against the facts again, the
    diff kept in the audit log."""
    from agent.comms.service import edit_message

    text = sys.stdin.read() if body == "-" else body
    m = edit_message(
        _factory(as_user), policy(), message_id, username=as_user, subject=subject, body=text, reason=reason
    )
    print_json(m) if as_json else _show(m)


@messages_app.command("send")
def messages_send(
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many of each.")] = None,
    draft: Annotated[bool, typer.Option(help="Draft and file the due notices first.")] = True,
    as_json: Json = False,
) -> None:
    """Draft and file every due notice, then deliver every approved message once (SMTP or .eml files,
    per OUTBOX_TRANSPORT); failures are retried with backoff by later runs or by `copilot serve`."""
    from tqdm import tqdm

    from agent.comms.delivery import deliver_due, transport_from_settings
    from agent.comms.service import draft_due
    from agent.settings import get_settings

    settings, factory = get_settings(), _factory()
    quiet = not sys.stderr.isatty()
    drafted = []
    if draft:
        with tqdm(desc="drafting", unit="notice", disable=quiet) as bar:
            drafted = draft_due(factory, policy(), _llm(), limit=limit, on_progress=bar.update)
    with tqdm(desc="delivering", unit="message", disable=quiet) as bar:
        delivered = deliver_due(
            factory,
            transport_from_settings(settings),
            sender=settings.smtp_from,
            max_attempts=settings.outbox_max_attempts,
            backoff_s=settings.outbox_backoff_s,
            lease_s=settings.outbox_lease_s,
            limit=limit,
            on_progress=bar.update,
        )
    if as_json:
        print_json({"drafted": drafted, "delivered": delivered})
        return
    for m in drafted:
        typer.echo("drafted " + _line(m))
    for d in delivered:  # named by the message id `messages list` and `messages show` use
        name = f"message #{d['notice_id']}" if d.get("notice_id") else f"outbox #{d['id']}"
        typer.echo(
            f"{name}"
            + (f" (request {d['request_id']}) to {d['recipient']}" if d.get("recipient") else "")
            + f": {d['status']}"
            + (f" (attempt {d.get('attempts')}: {d['error']})" if d.get("error") else "")
        )
    typer.echo(f"{len(drafted)} drafted, {sum(d['status'] == 'sent' for d in delivered)} sent")
