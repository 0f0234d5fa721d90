"""`copilot retention purge [--dry-run]`: delete chat threads and closed exceptions past the policy's limits.

The limits are the policy's ``retention`` section (``chat_threads_days``, ``closed_exceptions_days``).
The audit log is never purged; the purge is itself an audit event. Heavy modules load inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import engine, policy, print_json

retention_app = typer.Typer(
    help="Retention: purge chat threads and closed exceptions older than the policy's limits.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.add_typer(retention_app, name="retention")


@retention_app.command("purge")
def purge_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be purged; change nothing.")
    ] = False,
    scan_checkpoints: Annotated[
        bool,
        typer.Option(
            "--scan-checkpoints",
            help="Also find chat threads started before thread records existed (reads every checkpoint: "
            "once, after upgrading).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete chat threads idle longer than retention.chat_threads_days (checkpoints and records)
    and exceptions resolved more than retention.closed_exceptions_days ago, and the stored
    explanations of orders with no open exception.

    Open exceptions, requests, decisions, messages and the audit log stay; `copilot audit verify`
    stays green. The purge is recorded as a `retention_purge` audit event (a dry run records nothing).
    """
    from agent.governance.origin import current_origin
    from agent.governance.retention import purge
    from tools.db import session_factory

    origin = current_origin()
    report = purge(
        session_factory(engine()),
        policy(),
        dry_run=dry_run,
        scan_checkpoints=scan_checkpoints,
        actor=(origin.os_user if origin else None) or "cli",
    )
    if as_json:
        print_json(report)
        return
    verb = "would purge" if dry_run else "purged"
    typer.echo(
        f"{verb} {report['chat_threads']} chat thread(s) idle since before {report['chat_threads_before']} "
        f"({report['chat_threads_days']} days) and {report['closed_exceptions']} exception(s) resolved before "
        f"{report['closed_exceptions_before']} ({report['closed_exceptions_days']} days)"
        + (
            f"; {report['requests_unlinked']} request(s) unlinked from them"
            if report["requests_unlinked"]
            else ""
        )
        + (
            f"; {report['stored_explanations']} stored explanation(s) of orders with no open exception"
            if report.get("stored_explanations")
            else ""
        )
    )
    if not dry_run:
        typer.echo("recorded as audit event retention_purge; the audit log itself is kept")
