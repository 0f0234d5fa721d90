"""`copilot audit ...`: verify the hash chain (also against a signed checkpoint), take checkpoints,
export and list events.

Heavy modules are imported inside the commands, for the CLI's start-up time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ui.cli.common import CliError, engine, id_option, policy, print_json

audit_app = typer.Typer(
    help="The hash-chained audit log: verify, checkpoint, export, list.", no_args_is_help=True
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _factory():
    from tools.db import session_factory

    return session_factory(engine())


def _read_checkpoint(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise CliError(f"{path} is not a checkpoint (not JSON)") from None


@audit_app.command("verify")
def audit_verify(
    against: Annotated[
        Path | None,
        typer.Option(
            "--against", help="A checkpoint file (copilot audit checkpoint): also prove no rewrite since."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Recompute the hash chain; exit 0 only when it is intact (else name the first bad event, exit 1).

    With an audit key (COPILOT_AUDIT_KEY) the keyed events are checked with it. With --against, the
    chain must also still hold the checkpoint's head: a chain cut back or rewritten since fails.
    """
    from agent.governance.audit import verify_chain
    from agent.governance.audit_checkpoint import verify_against
    from agent.governance.audit_key import AuditKeyError

    checkpoint = _read_checkpoint(against) if against is not None else None
    with _factory()() as s:
        try:
            result = verify_chain(s) if against is None else verify_against(s, checkpoint)
        except AuditKeyError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        print_json(result)
    elif result["ok"]:
        keyed = result.get("keyed_from_seq")
        how = f"keyed from seq {keyed}" if keyed else "not keyed: set COPILOT_AUDIT_KEY"
        since = f"; holds the checkpoint of {result['checkpoint']['taken_at']}" if against else ""
        typer.echo(f"audit chain intact: {result['events']:,} events ({how}){since}")
    else:
        typer.echo(f"audit chain BROKEN at seq {result['first_bad_seq']}: {result['reason']}", err=True)
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the signed head to this file (mode 0600).")
    ] = None,
) -> None:
    """Sign the chain's head with the audit key and print it (or write it with --out).

    Keep the checkpoint where the database's writers cannot reach it; `copilot audit verify
    --against FILE` later proves the chain was not rewritten or cut back since. Appends an
    `audit_checkpoint` event (which keys a chain that was not keyed yet).
    """
    from agent.governance.audit_checkpoint import take_checkpoint
    from agent.governance.audit_key import AuditKeyError
    from agent.governance.origin import current_origin
    from agent.governance.requests import write_session

    origin = current_origin()
    try:
        with write_session(_factory()) as s:
            checkpoint = take_checkpoint(s, actor=origin.os_user if origin else None)
    except (AuditKeyError, ValueError) as exc:
        raise CliError(str(exc)) from None
    text = json.dumps(checkpoint, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"checkpoint of seq {checkpoint['seq']} written to {out}")


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option(help="File to write (default: standard output).")] = None,
) -> None:
    """Write every audit event in seq order (with prev_hash and hash, so others can re-verify)."""
    from agent.governance.audit import export_events

    if fmt not in ("jsonl", "csv"):
        raise CliError(f"--format must be jsonl or csv, not {fmt!r}")
    with _factory()() as s:
        if output is None:
            n = export_events(s, fmt, sys.stdout)
        else:
            try:
                with output.open("w", encoding="utf-8", newline="") as fh:
                    n = export_events(s, fmt, fh)
            except OSError as exc:
                raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    if output is not None:
        typer.echo(f"wrote {n:,} events to {output}")


@audit_app.command("list")
def audit_list(
    order: Annotated[str | None, typer.Option("--order", help="Only this order's events.")] = None,
    request: Annotated[int | None, id_option("--request", help="Only this request's events.")] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="e.g. decision, execution, override.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Json = False,
) -> None:
    """Show audit events in order."""
    from agent.governance.audit import list_events

    with _factory()() as s:
        rows = list_events(
            s,
            order_id=order,
            request_id=request,
            event_type=event_type,
            limit=limit,
            order_numbers=policy().order_numbers,
        )
    if as_json:
        print_json(rows)
        return
    for e in rows:
        who = f"{e['actor'] or '-'}" + (f" ({e['role']})" if e["role"] else "")
        typer.echo(
            f"{e['seq']:>7} {e['ts']} {e['event_type']:<18} {who:<32} {e['order_id'] or '':<12} "
            f"{'#' + str(e['request_id']) if e['request_id'] else ''} {json.dumps(e['payload'])[:160]}"
        )
    if not rows:
        typer.echo("no audit events")
