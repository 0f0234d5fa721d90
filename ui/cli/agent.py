"""Agent commands: `copilot chat`, and the explanation helpers of `copilot triage --explain`.

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer

from ui.cli import common as cli_common
from ui.cli.common import CliError


def _collection():
    """The SOP index (the shipped SOPs indexed on first use), or None (with a note) when the local
    embedding model is not available: explanations then carry a warning that they cite no SOP."""
    try:
        return cli_common.retrieval_collection()
    except CliError as exc:
        typer.echo(f"copilot: no SOP passages ({exc})", err=True)
        return None


# The thread ids the API takes (``ui/api/routes.py`` ``ThreadIdPath``): a thread started here can
# be continued from the panel or the API, and a typo'd --thread is not silently a new thread name.
THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def _llm():
    from agent.llm import get_llm

    return get_llm()


def explain_results(factory, policy, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``copilot triage --explain``: each triaged order gains ``explanation`` (one model call per order;
    the fact-only template, marked ``fallback``, when the model fails)."""
    from agent.copilot.service import Copilot

    copilot = Copilot(factory, policy, llm=_llm(), collection=_collection())
    return copilot.explain(results)


def render_explained(results: list[dict[str, Any]]) -> None:
    """The triage report of each order with its explanation printed under it."""
    from ui.cli.render import console, escape, render_triage

    out = console()
    for r in results:
        render_triage([r])
        explanation = r.get("explanation")
        if not explanation:
            continue
        label = (
            "explanation (fact-only: " + escape(explanation.get("reason") or "fallback") + ")"
            if explanation.get("fallback")
            else "explanation"
        )
        out.print(f"  [bold]{label}[/bold]")
        if explanation.get("warning"):
            out.print("  [bold yellow]warning:[/bold yellow] " + escape(explanation["warning"]))
        out.print("  " + escape(explanation["text"], newlines=True))
        out.print()


def _turn(copilot, thread: str, message: str, username: str, scope=None) -> None:
    from tools.sites import ALL
    from ui.cli.render import inert

    streamed: list[str] = []
    final: dict[str, Any] = {}
    for event in copilot.chat_stream(thread, message, username=username, scope=scope or ALL):
        kind = event["type"]
        if kind == "token":
            streamed.append(event["text"])
            sys.stdout.write(inert(event["text"], newlines=True))
            sys.stdout.flush()
        elif kind == "tool":
            args = ", ".join(f"{k}={v}" for k, v in event["args"].items())
            typer.secho(f"[{event['name']}({args})]", dim=True)
        elif kind == "final":
            final = event
    answer = final.get("answer", "")
    shown = "".join(streamed)
    # the answer may quote a customer's note or a pasted e-mail: its control characters are shown,
    # never sent to the terminal
    if not streamed:
        typer.echo(inert(answer, newlines=True))
    elif answer.startswith(shown):  # the facts first, then the model's words: print what is left
        typer.echo(inert(answer[len(shown) :], newlines=True))
    else:  # what was streamed was replaced (a retry or the fact-only fallback)
        typer.echo()
        typer.secho("(replaced by:)", dim=True)
        typer.echo(inert(answer, newlines=True))
    if final.get("fallback"):
        typer.secho(f"(fact-only: {final.get('fallback_reason')})", dim=True)
    if final.get("citations"):
        typer.secho("sources: " + ", ".join(f"[{c}]" for c in final["citations"]), dim=True)
    request = final.get("request")
    if request:
        typer.secho(f"approval request {request.get('id')}: {request.get('status')}", bold=True)
    if final.get("proposal"):
        typer.secho('type "yes" to file this request; anything else cancels it', bold=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""

    @app.command("chat")
    def chat(
        thread: Annotated[
            str | None, typer.Option("--thread", help="Conversation to continue (default: a new one).")
        ] = None,
        as_user: Annotated[
            str, typer.Option("--as", help="Who is asking (the requester of any approval request).")
        ] = "planner",
        message: Annotated[
            list[str] | None,
            typer.Option("--message", "-m", help="Ask this and exit (repeatable).", show_default=False),
        ] = None,
    ) -> None:
        """Chat with the copilot about orders and SOPs, on a thread it remembers.

        Ask "what is blocking SO-100042?", "why not split it?", "which of Acme's orders will ship
        late?", "request approval for that" (shown first; "yes" files it). Answers rest on the triage
        facts and the SOPs; approval requests go to a person with the policy's role. Type your questions (end with Ctrl-D or
        "exit"), or pass them with -m. The thread lives beside the database: resume it with --thread.
        """
        import uuid

        from agent.checkpoint import open_checkpointer
        from agent.copilot.service import Copilot
        from agent.governance.users import require_user, user_scope
        from agent.settings import get_settings
        from tools.db import session_factory

        if thread is not None and not THREAD_ID.fullmatch(thread):
            raise CliError(
                f"--thread must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; "
                f"got {thread!r}"
            )
        if message is not None and any(not m.strip() for m in message):
            raise CliError("--message is blank: ask a question")  # was skipped in silence, exit 0
        engine = cli_common.engine()
        policy = cli_common.policy()
        with session_factory(engine)() as s:
            require_user(s, as_user)  # a typo'd --as is refused, not answered for every site
            scope = user_scope(s, as_user)  # a user limited to some sites chats about theirs only
        thread_id = thread or uuid.uuid4().hex[:12]
        with open_checkpointer(get_settings().effective_database_url) as saver:
            copilot = Copilot(
                session_factory(engine), policy, llm=_llm(), collection=_collection(), checkpointer=saver
            )
            before = len(copilot.history(thread_id))
            interactive = message is None and sys.stdin.isatty()
            typer.secho(
                f"thread {thread_id}"
                + (f" ({before} messages so far)" if before else "")
                + f" — resume with: copilot chat --thread {thread_id}",
                dim=True,
                err=True,
            )
            questions = iter(message) if message is not None else _lines(interactive)
            for question in questions:
                if question.strip().lower() in {"exit", "quit"}:
                    break
                if question.strip():
                    _turn(copilot, thread_id, question, as_user, scope)


def _lines(interactive: bool):
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not interactive and line == "":
            return
        yield line.rstrip("\n")
